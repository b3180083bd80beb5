--- What the app-tomcat runbook knows about Tomcat and the JDBC drivers, as pure functions: which
-- driver a Resource uses, the URL properties that make it verify the server, the managed block
-- in setenv.sh / setenv.bat / a defaults file, quoting for each of those, and procrun's options.
-- No file or process is touched here; the runbook does that through ctx.
-- @module myseal.tomcat
local M = {}

--- The drivers, by the name `[tomcat] driver` takes.
M.DRIVERS = {
   ["mysql-5.1"] = "MySQL Connector/J 5.1",
   ["mysql-8"] = "MySQL Connector/J 8.x",
   ["mariadb-2"] = "MariaDB Connector/J 2.x",
   ["mariadb-3"] = "MariaDB Connector/J 3.x",
}

--- Which driver a jar holds, from the class paths in its zip directory (stored uncompressed):
-- Connector/J 8 has com/mysql/cj/, 5.1 only com/mysql/jdbc/; MariaDB 3 has org/mariadb/jdbc/client/,
-- 2.x org/mariadb/jdbc/internal/.
-- @param bytes the jar's content
-- @return driver name | nil
function M.jar_driver(bytes)
   if bytes:find("com/mysql/cj/", 1, true) then return "mysql-8" end
   if bytes:find("com/mysql/jdbc/", 1, true) then return "mysql-5.1" end
   if bytes:find("org/mariadb/jdbc/client/", 1, true) then return "mariadb-3" end
   if bytes:find("org/mariadb/jdbc/internal/", 1, true) then return "mariadb-2" end
   return nil
end

--- The driver of a Resource, from its driverClassName and the driver jars Tomcat has.
-- com.mysql.jdbc.Driver is 5.1's class and a deprecated alias in 8.x: the jar tells them apart.
-- @param class driverClassName (or nil)
-- @param jars list of `{ path =, driver = }` (from M.jar_driver)
-- @return driver name | nil, message
function M.detect_driver(class, jars)
   local found = {}
   for _, j in ipairs(jars) do found[j.driver] = found[j.driver] or j.path end
   if class == "com.mysql.cj.jdbc.Driver" then return "mysql-8" end
   if class == "com.mysql.jdbc.Driver" then return found["mysql-8"] and "mysql-8" or "mysql-5.1" end
   if class == "org.mariadb.jdbc.Driver" then
      if found["mariadb-2"] and found["mariadb-3"] then
         return nil, ("both MariaDB Connector/J 2 (%s) and 3 (%s) are there: set [tomcat] driver"):format(
            found["mariadb-2"], found["mariadb-3"])
      end
      if found["mariadb-2"] then return "mariadb-2" end
      if found["mariadb-3"] then return "mariadb-3" end
      return nil, "which MariaDB Connector/J is it? No mariadb-java-client jar was found: set [tomcat] driver "
         .. "= mariadb-2 or mariadb-3 (or [tomcat] driver_jar)"
   end
   return nil, ("driverClassName %s is not a MySQL or MariaDB driver: set [tomcat] driver"):format(
      class and ("'" .. class .. "'") or "is missing, so the driver")
end

-- Per driver, for verify = identity or ca: the properties that require TLS and verify the
-- server, and those that would contradict them.
local TLS = {
   ["mysql-5.1"] = function()
      return { { "useSSL", "true" }, { "requireSSL", "true" }, { "verifyServerCertificate", "true" } }, { "sslMode" }
   end,
   ["mysql-8"] = function(identity)
      return { { "sslMode", identity and "VERIFY_IDENTITY" or "VERIFY_CA" } },
         { "useSSL", "requireSSL", "verifyServerCertificate" }
   end,
   ["mariadb-2"] = function(identity)
      if identity then
         return { { "useSsl", "true" } }, { "trustServerCertificate", "sslMode", "disableSslHostnameVerification" }
      end
      return { { "useSsl", "true" }, { "disableSslHostnameVerification", "true" } },
         { "trustServerCertificate", "sslMode" }
   end,
   ["mariadb-3"] = function(identity)
      return { { "sslMode", identity and "verify-full" or "verify-ca" } },
         { "useSsl", "trustServerCertificate", "disableSslHostnameVerification" }
   end,
}

-- What a JDBC URL's query reads as syntax, not as part of a value.
local URL_SYNTAX = "[&#%%+]"

local function append(list, items)
   return table.move(items, 1, #items, #list + 1, list)
end

--- The URL properties that make a driver require TLS and verify the server, and those that
-- would undo it, for myseal.jdbcurl.edit. Trust comes from the data source itself where the
-- driver allows (MariaDB's serverSslCert: the CA file; MySQL's trustCertificateKeyStore*: a
-- truststore), so a changed context.xml is picked up by a context reload, without restarting the
-- JVM; `jvm` leaves it to the JVM's truststore.
-- @param driver driver name
-- @param o `{ verify = "identity" | "ca", trust = "data-source" | "jvm" | "server-cert", server_cert = CA PEM
--   path (MariaDB), store = { url, password, type } (MySQL, data-source) }`
-- @return `{ set = { { key, value }, ... }, remove = { key, ... } }` | nil, message
function M.url_spec(driver, o)
   if not TLS[driver] then error(("tomcat.url_spec: unknown driver '%s'"):format(tostring(driver)), 2) end
   local set, remove = TLS[driver](o.verify ~= "ca")
   if M.needs_store(driver) then
      if o.trust == "server-cert" then
         return nil, M.DRIVERS[driver] .. " has no serverSslCert: set [tomcat] jdbc_trust = data-source or jvm"
      end
      if o.trust == "data-source" then
         if not o.store then return nil, "a truststore is needed for the data source's trust" end
         -- Connector/J splits the properties at '&', ends the URL at '#' and URL-decodes each value
         if o.store.url:find(URL_SYNTAX) then
            return nil, ("trustCertificateKeyStoreUrl needs a truststore path without '&', '#', '%%' or '+' (%s)")
               :format(o.store.url)
         end
         if o.store.password:find(URL_SYNTAX) then
            return nil, "the truststore password goes into the url (trustCertificateKeyStorePassword), where "
               .. "Connector/J reads '&', '#', '%' and '+' as URL syntax: choose a password without them, "
               .. "or set [tomcat] jdbc_trust = jvm"
         end
         append(set, { { "trustCertificateKeyStoreUrl", o.store.url, exact = true },
                       { "trustCertificateKeyStorePassword", o.store.password, exact = true },
                       { "trustCertificateKeyStoreType", o.store.type } })
      else
         append(remove, { "trustCertificateKeyStoreUrl", "trustCertificateKeyStorePassword",
                          "trustCertificateKeyStoreType" })
      end
   else
      append(remove, { "trustStore", "trustStorePassword", "trustStoreType" })
      if o.trust == "server-cert" or o.trust == "data-source" then
         if not o.server_cert or o.server_cert:find("[%s&?#]") then
            return nil, ("serverSslCert needs a CA file path without spaces, '&', '?' or '#' (%s)"):format(
               tostring(o.server_cert))
         end
         set[#set + 1] = { "serverSslCert", o.server_cert, exact = true }
      else
         remove[#remove + 1] = "serverSslCert"
      end
   end
   return { set = set, remove = remove }
end

--- Does the driver take its trust from a truststore file (not a PEM), in data-source mode?
-- @param driver driver name
-- @return boolean
function M.needs_store(driver)
   return driver == "mysql-5.1" or driver == "mysql-8"
end

local WHY_REMOVED = {
   trustservercertificate = "it turns certificate validation off",
   disablesslhostnameverification = "it turns the host name check off",
   trustcertificatekeystoreurl = "the driver would trust that store instead of the one myseal made",
   truststore = "the driver would trust that store instead of the JVM truststore",
   serversslcert = "the driver would trust that certificate instead of the JVM truststore",
}

--- A warning for an edit the operator should know about, or nil.
-- @param driver driver name
-- @param change `{ key, old, new }` from myseal.jdbcurl.edit
-- @return text | nil
function M.explain(driver, change)
   local key, old = change.key:lower(), change.old and change.old:lower()
   if change.new == nil and WHY_REMOVED[key] then
      return ("removed %s=%s: %s"):format(change.key, change.old, WHY_REMOVED[key])
   end
   if driver == "mariadb-3" and key == "sslmode" and (old == "required" or old == "trust") then
      return ("sslMode=%s on MariaDB Connector/J 3 is 'trust': encryption without any certificate "
         .. "validation; now %s"):format(change.old, change.new)
   end
   if change.new == nil and old == "false" and key:find("ssl") then
      return ("removed %s=false"):format(change.key)
   end
   return nil
end

-- Managed blocks -------------------------------------------------------------------------------

local function split_lines(text)
   local lines, pos = {}, 1
   while pos <= #text do
      local nl = text:find("\n", pos, true)
      local stop = nl or #text
      lines[#lines + 1] = { text = text:sub(pos, stop), body = text:sub(pos, nl and nl - 1 or stop):gsub("\r$", ""),
                            from = pos, to = stop }
      pos = stop + 1
   end
   return lines
end

local function is_begin(body, marker)
   local rest = body:match("^%s*(.*)$")
   if rest:sub(1, #marker) ~= marker then return false end
   local after = rest:sub(#marker + 1, #marker + 1)
   return after == "" or after == ":" or after:match("%s") ~= nil
end

local function is_end(body, marker)
   return body:match("^%s*(.-)%s*$") == marker
end

-- The block's first and last line (indexes into lines), or nil; or nil, message.
local function find_block(lines, opts, name)
   local first, last
   for i, l in ipairs(lines) do
      if is_begin(l.body, opts.begin) then
         if first then return nil, nil, ("%s: '%s' twice (lines %d and %d)"):format(name, opts.begin, first, i) end
         first = i
      elseif is_end(l.body, opts.finish) then
         if not first or last then
            return nil, nil, ("%s:%d: '%s' without its '%s'"):format(name, i, opts.finish, opts.begin)
         end
         last = i
      end
   end
   if first and not last then
      return nil, nil, ("%s:%d: '%s' is not closed by '%s'"):format(name, first, opts.begin, opts.finish)
   end
   return first, last
end

--- Put `lines` between a begin and an end marker line: the block those markers hold is replaced,
-- else a new one goes at the end. `lines = nil` takes the block out. Every line outside the block
-- stays as it was; the block uses the file's line ending (CRLF when the file has one).
-- @param text the file (nil or "" for a new one)
-- @param opts `{ begin = "# BEGIN myseal app-tomcat", title = ": what it is" , finish = "# END myseal
--   app-tomcat", lines = { ... } | nil, eol = "\n" (a new file's line ending), name = file name for messages }`
-- @return new text | nil, message
function M.block(text, opts)
   text = text or ""
   local name = opts.name or "file"
   local lines = split_lines(text)
   local first, last, err = find_block(lines, opts, name)
   if err then return nil, err end
   local eol = text:find("\r\n", 1, true) and "\r\n" or (text:find("\n", 1, true) and "\n" or (opts.eol or "\n"))
   local block = ""
   if opts.lines then
      local out = { opts.begin .. (opts.title or "") }
      for _, l in ipairs(opts.lines) do
         if l:find("[\r\n]") then return nil, name .. ": a line of the block has a line break" end
         out[#out + 1] = l
      end
      out[#out + 1] = opts.finish
      block = table.concat(out, eol) .. eol
   end
   if first then
      if not lines[last].text:find("\n", 1, true) and block ~= "" then block = block:sub(1, -#eol - 1) end
      return text:sub(1, lines[first].from - 1) .. block .. text:sub(lines[last].to + 1)
   end
   if block == "" then return text end
   if text ~= "" and not text:find("\n$") then text = text .. eol end
   return text .. block
end

--- The lines inside the managed block (without the markers), or nil when there is none.
-- @param text the file
-- @param opts the markers, as for M.block
-- @return list of lines | nil
function M.block_lines(text, opts)
   local lines = split_lines(text or "")
   local first, last = find_block(lines, opts, "")
   if not first then return nil end
   local out = {}
   for i = first + 1, last - 1 do out[#out + 1] = lines[i].body end
   return out
end

--- Line numbers outside the managed block whose text holds `needle` (and is not a comment).
-- @param text the file
-- @param opts the markers, as for M.block
-- @param needle plain text
-- @param comment pattern of a comment line's start (e.g. "^%s*#", "^%s*[Rr][Ee][Mm]%f[%s]")
-- @return list of line numbers
function M.mentions(text, opts, needle, comment)
   local lines = split_lines(text or "")
   local first, last = find_block(lines, opts, "")
   local out = {}
   for i, l in ipairs(lines) do
      local inside = first and i >= first and i <= last
      if not inside and l.body:find(needle, 1, true) and not (comment and l.body:find(comment)) then
         out[#out + 1] = i
      end
   end
   return out
end

-- Quoting --------------------------------------------------------------------------------------

-- A word as catalina.sh's `eval` reads it: plain when it can be, else single-quoted.
local function sh_word(s)
   if s:match("^[%w%-%._/:=,@+%%]+$") then return s end
   return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Inside "...": \ $ " ` escaped.
local function sh_dq(s)
   return (s:gsub('[\\$"`]', "\\%0"))
end

--- The lines of a POSIX-shell file (setenv.sh, Debian's /etc/default/tomcatN) that add options to
-- CATALINA_OPTS. catalina.sh expands CATALINA_OPTS through `eval`, so each option is quoted for
-- that eval, and the whole for the assignment.
-- @param options list of JVM options
-- @return lines
function M.sh_lines(options)
   local words = {}
   for i, o in ipairs(options) do words[i] = sh_word(o) end
   return { 'CATALINA_OPTS="$CATALINA_OPTS ' .. sh_dq(table.concat(words, " ")) .. '"', "export CATALINA_OPTS" }
end

--- How a value appears in M.sh_lines' output.
-- @param value string
-- @return string
function M.sh_form(value)
   return sh_dq((value:gsub("'", "'\\''")))
end

--- The lines of a systemd EnvironmentFile that RHEL's Tomcat also sources as shell
-- (/etc/sysconfig/tomcat, /etc/tomcat/tomcat.conf): no $VAR expansion there, so CATALINA_OPTS is
-- set whole, single-quoted, and an option may not hold a quote or a space (the start script
-- splits on spaces).
-- @param options list of JVM options
-- @return lines | nil, message
function M.env_file_lines(options)
   for _, o in ipairs(options) do
      if o:find("[%s'\"\\$`]") then
         return nil, ("an option for a systemd environment file cannot hold spaces, quotes, '\\', '$' or '`': %s")
            :format(o)
      end
   end
   return { "CATALINA_OPTS='" .. table.concat(options, " ") .. "'" }
end

-- A word in setenv.bat's `set "CATALINA_OPTS=... word"`: % doubled; double-quoted when it holds a
-- space or & | < > ^, so that catalina.bat's command line keeps it whole (with the backslashes
-- before the closing quote doubled, as the C runtime reads them). Each inner quote flips cmd's
-- quoting while it reads the set line, so a quoted word's & | < > ^ are outside quotes there and
-- need a caret, which that read takes off again.
local function bat_word(s)
   if s:find('"', 1, true) then return nil, "an option for setenv.bat cannot hold a double quote: " .. s end
   s = s:gsub("%%", "%%%%")
   if s:find("[%s&|<>^]") then
      local body, slashes = s:match("^(.-)(\\*)$")
      return '"' .. body:gsub("[&|<>^]", "^%0") .. slashes .. slashes .. '"'
   end
   return s
end

--- The line of setenv.bat that adds options to CATALINA_OPTS.
-- @param options list of JVM options
-- @return lines | nil, message
function M.bat_lines(options)
   local words = {}
   for i, o in ipairs(options) do
      local w, err = bat_word(o)
      if not w then return nil, err end
      words[i] = w
   end
   return { 'set "CATALINA_OPTS=%CATALINA_OPTS% ' .. table.concat(words, " ") .. '"' }
end

--- How a value appears in M.bat_lines' output.
-- @param value string
-- @return string
function M.bat_form(value)
   return (value:gsub("%%", "%%%%"):gsub("[&|<>^]", "^%0"))
end

--- Options as procrun's JvmOptions value (`++JvmOptions=` or PR_JVMOPTIONS): separated by ';',
-- an option holding ';' or '#' in single quotes. Procrun drops every single quote and reads
-- double quotes as quoting too (commons-daemon cmdline.c), so an option may hold neither.
-- @param options list of JVM options
-- @return string | nil, message
function M.procrun_value(options)
   local items = {}
   for i, o in ipairs(options) do
      if o:find("['\"]") then return nil, "procrun reads quotes as quoting: an option cannot hold one: " .. o end
      items[i] = o:find("[;#]") and ("'" .. o .. "'") or o
   end
   return table.concat(items, ";")
end

--- One `key=value` line of a Java properties file (ISO-8859-1: other characters as \uXXXX).
-- @param key property name (plain: letters, digits, '.', '_', '-')
-- @param value string (UTF-8)
-- @return line
function M.properties_line(key, value)
   return key .. "=" .. M.properties_form(value)
end

--- How a value appears in M.properties_line's output.
-- @param value string (UTF-8)
-- @return string
function M.properties_form(value)
   local out = {}
   for p, c in utf8.codes(value) do
      local s = utf8.char(c)
      if c == 92 then s = "\\\\"
      elseif p == 1 and (c == 32 or c == 9) then s = "\\" .. s
      elseif c > 0xFFFF then
         local v = c - 0x10000
         s = ("\\u%04X\\u%04X"):format(0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
      elseif c < 32 or c > 126 then s = ("\\u%04X"):format(c)
      end
      out[#out + 1] = s
   end
   return table.concat(out)
end

--- The strings of a REG_MULTI_SZ value in `reg query KEY /v NAME` output (reg prints them
-- separated by a literal \0).
-- @param output reg's stdout
-- @param name value name
-- @return list of strings | nil
function M.reg_multi_sz(output, name)
   for line in output:gmatch("[^\r\n]+") do
      local n, v = line:match("^%s+(.-)%s+REG_MULTI_SZ%s*(.*)$")
      if n == name then
         local out = {}
         if v == "" then return out end
         for item in (v .. "\\0"):gmatch("(.-)\\0") do out[#out + 1] = item end
         return out
      end
   end
   return nil
end

return M
