-- app-tomcat.lua: the Java application tier on Tomcat trusts the database server's CA and its JDBC
-- URLs require TLS with a verified certificate, so the change works end to end and nobody turns
-- SSL off in despair. Facts: DOMAIN.md §4 (Java), §5 (Tomcat), §7 pitfalls 13-16.
--
-- Steps: truststore (the CA into a PKCS#12 or JKS store), jvm-options (that store for Tomcat's JVM:
-- setenv.sh, setenv.bat, the packaged defaults file or the Windows service), jdbc-url (the
-- Resource URLs in context.xml), restart (Tomcat), probe (optional: a JVM connects with exactly
-- those URLs and options). Nothing here talks to the database server itself, so plan works against
-- a described server (--describe mariadb-10.11) too.
local runbook = require "myseal.runbook"
local sys = require "sys"
local pki = require "pki"
local keystore = require "keystore"
local xmledit = require "myseal.xmledit"
local jdbcurl = require "myseal.jdbcurl"
local tomcat = require "myseal.tomcat"

local PASSWORD = "tomcat.truststore_password"
local CHANGED = "app-tomcat.changed"   -- recorded when a step changed what Tomcat reads at start
local TITLE = ": the JVM trusts the database server's CA (written by myseal; edits here are replaced)"
local SH_BLOCK = { begin = "# BEGIN myseal app-tomcat", finish = "# END myseal app-tomcat", title = TITLE }
local BAT_BLOCK = { begin = "rem BEGIN myseal app-tomcat", finish = "rem END myseal app-tomcat", title = TITLE }
local OCTAL_640 = tonumber("640", 8)

-- Paths ----------------------------------------------------------------------------------------

local function join(base, ...)
   local sep = base:find("\\", 1, true) and "\\" or "/"
   local p = base:gsub("[/\\]+$", "")
   for _, part in ipairs{ ... } do p = p .. sep .. part end
   return p
end

local function windows_service_exists(name)
   local r = sys.run{ "sc", "query", name, timeout = 30 }
   return r and r.ok
end

--- The layout: [tomcat] layout, or what this machine and CATALINA_BASE say.
local function layout(ctx)
   local t = ctx.params.tomcat
   if t.layout ~= "auto" then return t.layout end
   if sys.platform() == "windows" then
      return windows_service_exists(t.windows_service) and "windows-service" or "windows-scripts"
   end
   local base = t.catalina_base:gsub("/+$", "")
   local name = base:match("^/var/lib/(tomcat%d*)$")
   if name and sys.stat("/etc/default/" .. name) then return "debian" end
   if (base:match("^/usr/share/tomcat%d*$") or base:match("^/var/lib/tomcat%d*$"))
      and (sys.stat("/etc/sysconfig/tomcat") or sys.stat("/etc/tomcat/tomcat.conf")) then
      return "rhel"
   end
   return "linux"
end

local function is_windows(lay) return lay:match("^windows") ~= nil end

-- Debian: CATALINA_BASE /var/lib/tomcatN, CATALINA_HOME /usr/share/tomcatN; RHEL: /usr/share/tomcat.
local function catalina_home(ctx, lay)
   local t = ctx.params.tomcat
   if t.catalina_home then return t.catalina_home end
   local name = t.catalina_base:match("(tomcat%d*)[/\\]*$")
   if lay == "debian" and name then return "/usr/share/" .. name end
   if lay == "rhel" then return "/usr/share/tomcat" end
   return t.catalina_base
end

local function truststore_path(ctx)
   local t = ctx.params.tomcat
   local ext = t.truststore_type == "jks" and "jks" or "p12"
   return t.truststore or join(t.catalina_base, "conf", "db-truststore." .. ext)
end

-- An existing store keeps its type (JKS starts with FEEDFEED); a new one has [tomcat] truststore_type.
local function store_type(ctx)
   local data = sys.read_file(truststore_path(ctx))
   if data then return data:sub(1, 4) == "\xFE\xED\xFE\xED" and "jks" or "pkcs12" end
   return ctx.params.tomcat.truststore_type
end

local function defaults_file(ctx, lay)
   local t = ctx.params.tomcat
   if t.defaults_file then return t.defaults_file end
   if lay == "debian" then return "/etc/default/" .. (t.catalina_base:match("(tomcat%d*)/*$") or "tomcat9") end
   return ctx:exists("/etc/sysconfig/tomcat") and "/etc/sysconfig/tomcat" or "/etc/tomcat/tomcat.conf"
end

-- setenv.sh / setenv.bat: catalina.sh and catalina.bat read CATALINA_BASE's, else CATALINA_HOME's.
-- Creating one in CATALINA_BASE when CATALINA_HOME has one would hide that one: edit it instead.
local function setenv_path(ctx, lay)
   local t = ctx.params.tomcat
   if t.setenv then return t.setenv end
   local name = lay == "windows-scripts" and "setenv.bat" or "setenv.sh"
   local in_base = join(t.catalina_base, "bin", name)
   if ctx:exists(in_base) then return in_base end
   local in_home = join(catalina_home(ctx, lay), "bin", name)
   if in_home ~= in_base and ctx:exists(in_home) then return in_home end
   return in_base
end

local function context_xml(ctx)
   local t = ctx.params.tomcat
   return t.context_xml or join(t.catalina_base, "conf", "context.xml")
end

-- Secrets --------------------------------------------------------------------------------------

-- The truststore password, with the forms it takes in the files written here masked too.
local function password(ctx)
   local pw = ctx:secret(PASSWORD)
   for _, form in ipairs{ tomcat.sh_form(pw), tomcat.bat_form(pw), tomcat.properties_form(pw) } do
      if form ~= pw then ctx:mask(form) end
   end
   return pw
end

-- Files that hold the password: no access for others, readable by Tomcat's group.
local function secret_file_opts(ctx, lay, path)
   if is_windows(lay) then return {} end
   local st = sys.stat(path)
   local mode = st and ((st.mode & ~tonumber("007", 8)) | tonumber("040", 8)) or OCTAL_640
   return { mode = mode, group = ctx.params.tomcat.group }
end

local function attrs_ok(path, opts)
   if not (opts.mode or opts.owner or opts.group) then return true end
   local st = sys.stat(path)
   if not st then return false, path .. " does not exist" end
   if opts.mode and st.mode ~= opts.mode then
      return false, ("%s has mode %04o, not %04o"):format(path, st.mode, opts.mode)
   end
   if opts.owner and st.user ~= opts.owner and st.uid ~= opts.owner then
      return false, ("%s belongs to %s, not %s"):format(path, tostring(st.user or st.uid), opts.owner)
   end
   if opts.group and st.group ~= opts.group and st.gid ~= opts.group then
      return false, ("%s has group %s, not %s"):format(path, tostring(st.group or st.gid), opts.group)
   end
   return true
end

-- Step 1: the truststore -----------------------------------------------------------------------

local function ca_certs(ctx)
   local certs, err = pki.load_certs(ctx.params.tomcat.ca)
   if not certs then ctx:fail("[tomcat] ca: %s", err) end
   if #certs == 0 then ctx:fail("[tomcat] ca: no certificate in %s", ctx.params.tomcat.ca) end
   return certs
end

local function store_holds(store, cert)
   local fp = cert:fingerprint()
   for _, e in ipairs(store:entries()) do
      if e.kind == "trusted" and e.fingerprint == fp then return true end
   end
   return false
end

local function open_store(ctx, path)
   local store, err = keystore.open(path, { password = password(ctx) })
   if not store then ctx:fail("cannot update the truststore: %s", err) end
   return store
end

local function truststore_opts(ctx)
   if is_windows(layout(ctx)) then return {} end
   return { mode = OCTAL_640, owner = ctx.params.tomcat.user, group = ctx.params.tomcat.group }
end

local truststore_step = {
   name = "truststore",
   doc = "the database server's CA in the JVM truststore ([tomcat] truststore), other entries kept",
   check = function(ctx)
      local path = truststore_path(ctx)
      local certs = ca_certs(ctx)
      if not sys.stat(path) then return false, path .. " does not exist" end
      local store <close> = open_store(ctx, path)
      for _, cert in ipairs(certs) do
         if not store_holds(store, cert) then
            return false, ("%s does not trust %s"):format(path, cert:subject())
         end
      end
      return attrs_ok(path, truststore_opts(ctx))
   end,
   apply = function(ctx)
      local t = ctx.params.tomcat
      local path = truststore_path(ctx)
      local pw = password(ctx)
      local store, old
      if sys.stat(path) then
         store = open_store(ctx, path)
         old = assert(sys.read_file(path))
         if store:type() ~= t.truststore_type then
            ctx:warn("%s is a %s store and stays one ([tomcat] truststore_type is %s)", path, store:type(),
               t.truststore_type)
         end
      else
         store = keystore.new{ type = t.truststore_type }
      end
      local added = false
      for i, cert in ipairs(ca_certs(ctx)) do
         if not store_holds(store, cert) then
            local alias = i == 1 and t.truststore_alias or ("%s-%d"):format(t.truststore_alias, i)
            local before = store:get(alias)
            local ok, note = store:add_trusted(alias, cert, { replace = before ~= nil })
            if not ok then ctx:fail("%s: %s", path, note) end
            if note then ctx:warn("%s", note) end
            if before then
               ctx:warn("alias %s held %s (%s): replaced", alias, before:subject(), before:fingerprint():sub(1, 23))
            end
            ctx:log("trust %s (SHA-256 %s...) as %s", cert:subject(), cert:fingerprint():sub(1, 23), alias)
            added = true
         end
      end
      local data = added and assert(store:encode{ password = pw }) or old
      store:close()
      if ctx:write_file(path, data, truststore_opts(ctx)) then ctx:record(CHANGED, true) end
   end,
}

-- Step 2: the JVM options ----------------------------------------------------------------------

-- The options Tomcat's JVM starts with; the password among them unless it goes to catalina.properties.
local function jvm_options(ctx, with_password)
   local opts = { "-Djavax.net.ssl.trustStore=" .. truststore_path(ctx) }
   if with_password then opts[#opts + 1] = "-Djavax.net.ssl.trustStorePassword=" .. password(ctx) end
   opts[#opts + 1] = "-Djavax.net.ssl.trustStoreType=" .. store_type(ctx):upper()
   return opts
end

local function password_in_options(ctx)
   return ctx.params.tomcat.password_in == "jvm-options"
end

-- The files the step manages: { path, text (wanted), opts, syntax }.
local function option_files(ctx)
   local t = ctx.params.tomcat
   local lay = layout(ctx)
   local files = {}
   local in_opts = password_in_options(ctx)
   local options = jvm_options(ctx, in_opts)
   local function add(path, syntax, markers, lines, eol, opts)
      local text = ctx:read_file(path)
      local new, err = tomcat.block(text, { begin = markers.begin, finish = markers.finish,
                                           title = markers.title, lines = lines, eol = eol, name = path })
      if not new then ctx:fail("%s", err) end
      files[#files + 1] = { path = path, old = text, text = new, opts = opts or {}, syntax = syntax,
                            markers = markers }
   end
   if lay == "linux" or lay == "debian" then
      local path = lay == "linux" and setenv_path(ctx, lay) or defaults_file(ctx, lay)
      add(path, "sh", SH_BLOCK, tomcat.sh_lines(options), "\n", in_opts and secret_file_opts(ctx, lay, path) or {})
   elseif lay == "rhel" then
      local path = defaults_file(ctx, lay)
      local lines, err = tomcat.env_file_lines(options)
      if not lines then ctx:fail("%s: %s", path, err) end
      add(path, "env", SH_BLOCK, lines, "\n", in_opts and secret_file_opts(ctx, lay, path) or {})
   elseif lay == "windows-scripts" then
      local path = setenv_path(ctx, lay)
      local lines, err = tomcat.bat_lines(options)
      if not lines then ctx:fail("%s: %s", path, err) end
      add(path, "bat", BAT_BLOCK, lines, "\r\n")
   end
   -- catalina.properties: Tomcat makes each of its properties a system property at startup, before
   -- anything opens a TLS connection, so the password can live there instead of the JVM options
   local props = join(t.catalina_base, "conf", "catalina.properties")
   local text = ctx:read_file(props)
   if not in_opts then
      if not text then
         ctx:fail("%s does not exist: Tomcat then uses its built-in catalina.properties, which a new file "
            .. "holding only the password would replace; copy Tomcat's own catalina.properties there first", props)
      end
      local line = tomcat.properties_line("javax.net.ssl.trustStorePassword", password(ctx))
      add(props, "properties", SH_BLOCK, { line }, "\n", secret_file_opts(ctx, lay, props))
   elseif text and tomcat.block_lines(text, SH_BLOCK) then
      add(props, "properties", SH_BLOCK, nil, "\n")   -- password_in changed: take it out of there
   end
   return files, options, lay
end

-- Windows service: procrun keeps the JVM options in the registry.
local function service_key(name, wow)
   return ("HKLM\\SOFTWARE\\%sApache Software Foundation\\Procrun 2.0\\%s\\Parameters\\Java"):format(
      wow and "WOW6432Node\\" or "", name)
end

local function service_options(ctx)
   local name = ctx.params.tomcat.windows_service
   if sys.platform() ~= "windows" then
      return nil, ("service %s keeps its JVM options in the Windows registry, which cannot be read from here")
         :format(name)
   end
   for _, wow in ipairs{ false, true } do
      local r = sys.run{ "reg", "query", service_key(name, wow), "/v", "Options", timeout = 30 }
      local list = r and r.ok and tomcat.reg_multi_sz(r.stdout, "Options")
      if list then return list end
   end
   return nil, ("no JVM options of service %s in the registry (is it installed?)"):format(name)
end

local function is_trust_option(o) return o:match("^%-Djavax%.net%.ssl%.trustStore") ~= nil end

-- What the service lacks: ours missing, and other javax.net.ssl.trustStore* options to drop.
local function service_diff(current, options)
   local have, want = {}, {}
   for _, o in ipairs(current) do have[o] = true end
   for _, o in ipairs(options) do want[o] = true end
   local missing, stale = {}, {}
   for _, o in ipairs(options) do
      if not have[o] then missing[#missing + 1] = o end
   end
   for _, o in ipairs(current) do
      if is_trust_option(o) and not want[o] then stale[#stale + 1] = o end
   end
   return missing, stale
end

local function service_exe(ctx)
   local t = ctx.params.tomcat
   return t.service_exe or join(catalina_home(ctx, "windows-service"), "bin", t.windows_service .. ".exe")
end

local function service_apply(ctx, options, with_password)
   local t = ctx.params.tomcat
   local exe, svc = service_exe(ctx), "//US//" .. t.windows_service
   local current, why = service_options(ctx)
   local add = options
   if current then
      local missing, stale = service_diff(current, options)
      if #stale > 0 then
         -- procrun cannot drop one option: set the list again without any trustStore option, then add ours
         local rest = {}
         for _, o in ipairs(current) do
            if not is_trust_option(o) then rest[#rest + 1] = o end
         end
         for _, o in ipairs(rest) do
            if o:lower():find("password", 1, true) then
               ctx:fail("service %s has old javax.net.ssl.trustStore options and another option holding a password "
                  .. "(%s...), which resetting the list would put on a command line: remove the old trustStore "
                  .. "options in %sw.exe, then run again", t.windows_service, o:sub(1, 24), t.windows_service)
            end
         end
         local value, err = tomcat.procrun_value(rest)
         if not value then ctx:fail("%s", err) end
         ctx:run{ exe, svc, "--JvmOptions=" .. value }
         ctx:log("dropped %s", table.concat(stale, " "))
      else
         add = missing
      end
   else
      ctx:warn("%s; this adds the options. Old -Djavax.net.ssl.trustStore options there would stay: check "
         .. "the Java tab of %sw.exe", why, t.windows_service)
   end
   local value, err = tomcat.procrun_value(add)
   if not value then ctx:fail("%s", err) end
   if with_password then
      -- procrun reads PR_<option> from its environment and, for a list option, appends it like
      -- ++JvmOptions (commons-daemon cmdline.c, apxCmdlineLoadEnvVars): the password stays out of argv
      ctx:run{ exe, svc, env = { PR_JVMOPTIONS = value } }
      ctx:log("with PR_JVMOPTIONS=%s in its environment (the same as ++JvmOptions=..., off the command line)", value)
      ctx:warn("service %s keeps these options in the registry (%s, value Options), which local users can "
         .. "usually read, so the truststore password is there; [tomcat] password_in = catalina.properties keeps it "
         .. "in a file instead", t.windows_service, service_key(t.windows_service, false))
   else
      ctx:run{ exe, svc, "++JvmOptions=" .. value }
   end
end

local jvm_options_step = {
   name = "jvm-options",
   doc = "Tomcat's JVM uses the truststore: CATALINA_OPTS in setenv.sh, setenv.bat or the defaults file, "
      .. "or the service's options",
   check = function(ctx)
      local files, options, lay = option_files(ctx)
      for _, f in ipairs(files) do
         if f.text ~= f.old then return false, f.path .. (f.old and " changes" or " is created") end
         local ok, why = attrs_ok(f.path, f.opts)
         if not ok then return false, why end
      end
      if lay == "windows-service" then
         local current, why = service_options(ctx)
         if not current then return false, why end
         local missing, stale = service_diff(current, options)
         if #missing + #stale > 0 then
            return false, ("service %s: %d option(s) to add, %d to drop"):format(
               ctx.params.tomcat.windows_service, #missing, #stale)
         end
      end
      return true
   end,
   apply = function(ctx)
      local files, options, lay = option_files(ctx)
      local changed = false
      for _, f in ipairs(files) do
         if f.syntax == "env" then
            local others = tomcat.mentions(f.text, f.markers, "CATALINA_OPTS", "^%s*#")
            if #others > 0 then
               ctx:fail("%s sets CATALINA_OPTS on line %d too: systemd reads this file as an EnvironmentFile, "
                  .. "without $VAR expansion, so the block cannot add to it; remove that line (its options can go "
                  .. "to JAVA_OPTS), then run again", f.path, others[1])
            end
         elseif f.syntax ~= "properties" then
            local comment = f.syntax == "bat" and "^%s*[Rr][Ee][Mm]%f[%s]" or "^%s*#"
            for _, n in ipairs(tomcat.mentions(f.text, f.markers, "javax.net.ssl.trustStore", comment)) do
               ctx:warn("%s:%d sets javax.net.ssl.trustStore options too; CATALINA_OPTS comes last on the java "
                  .. "command line, so the block's win: remove that line to avoid confusion", f.path, n)
            end
         end
         if ctx:write_file(f.path, f.text, f.opts) then changed = true end
      end
      if lay == "windows-service" then
         local bat = join(ctx.params.tomcat.catalina_base, "bin", "setenv.bat")
         if ctx:exists(bat) then
            ctx:warn("%s is not read by the Windows service, only by catalina.bat: options there do not reach "
               .. "the service", bat)
         end
         service_apply(ctx, options, password_in_options(ctx))
         changed = true
      end
      if changed then ctx:record(CHANGED, true) end
   end,
}

-- Step 3: the JDBC URLs ------------------------------------------------------------------------

-- The MySQL / MariaDB driver jars Tomcat loads ([tomcat] driver_jar first): { path, driver }.
local function driver_jars(ctx)
   local t = ctx.params.tomcat
   local lay = layout(ctx)
   local out = {}
   local function try(path)
      local bytes = sys.read_file(path)
      local driver = bytes and tomcat.jar_driver(bytes)
      if driver then out[#out + 1] = { path = path, driver = driver } end
   end
   if t.driver_jar then try(t.driver_jar) end
   local dirs = { join(t.catalina_base, "lib") }
   local home = catalina_home(ctx, lay)
   if home ~= t.catalina_base then dirs[#dirs + 1] = join(home, "lib") end
   for _, dir in ipairs(dirs) do
      local names = sys.dir(dir) or {}
      table.sort(names)
      for _, name in ipairs(names) do
         local lower = name:lower()
         if lower:match("%.jar$") and (lower:find("mysql", 1, true) or lower:find("mariadb", 1, true)) then
            try(join(dir, name))
         end
      end
   end
   return out
end

local function is_jdbc(url)
   return url and (url:match("^jdbc:mysql[:+]") or url:match("^jdbc:mariadb:")) ~= nil
end

-- Each Resource to edit: { name, el, url, new, changes, driver, bare_amp }.
local function resources(ctx)
   local t = ctx.params.tomcat
   local path = context_xml(ctx)
   local text, err = ctx:read_file(path)
   if not text then ctx:fail("%s", err) end
   local els
   els, err = xmledit.elements(text, path)
   if not els then ctx:fail("%s", err) end
   local named = {}
   for _, n in ipairs(t.resources) do named[n] = false end
   local jars
   local out = {}
   for _, el in ipairs(els) do
      local name = el.attrs.name and el.attrs.name.value
      local url = el.attrs.url and el.attrs.url.value
      local pick
      if #t.resources > 0 then pick = name ~= nil and named[name] ~= nil else pick = is_jdbc(url) end
      if el.name == "Resource" and pick then
         if name then named[name] = true end
         if not url then ctx:fail("%s:%d: <Resource name=%q> has no url", path, el.line, name) end
         -- the application's database password: not ours to show, in any spelling
         if el.attrs.password then
            ctx:mask(el.attrs.password.value)
            ctx:mask(text:sub(el.attrs.password.vstart, el.attrs.password.vstop))
         end
         for _, it in ipairs(jdbcurl.parse(url).items) do
            if it.key:lower():find("password", 1, true) and it.value then ctx:mask(it.value) end
         end
         local driver = t.driver
         if driver == "auto" then
            jars = jars or driver_jars(ctx)
            local class = el.attrs.driverClassName and el.attrs.driverClassName.value
            driver, err = tomcat.detect_driver(class, jars)
            if not driver then ctx:fail("%s:%d: <Resource name=%q>: %s", path, el.line, tostring(name), err) end
         end
         local spec
         spec, err = tomcat.url_spec(driver, { verify = t.verify, trust = t.jdbc_trust, server_cert = t.ca })
         if not spec then ctx:fail("%s", err) end
         local new, changes = jdbcurl.edit(url, spec)
         local raw = text:sub(el.attrs.url.vstart, el.attrs.url.vstop)
         out[#out + 1] = { name = name, el = el, url = url, new = new, changes = changes, driver = driver,
                           bare_amp = raw:gsub("&#?%w+;", ""):find("&", 1, true) ~= nil }
      end
   end
   for n, found in pairs(named) do
      if not found then ctx:fail("%s: no <Resource name=%q>", path, n) end
   end
   if #out == 0 then ctx:fail("%s: no <Resource> with a jdbc:mysql: or jdbc:mariadb: url", path) end
   return out, path
end

local jdbc_step = {
   name = "jdbc-url",
   doc = "each JDBC Resource's url requires TLS and verifies the server, for its driver (context.xml)",
   check = function(ctx)
      local list = resources(ctx)
      local todo = {}
      for _, r in ipairs(list) do
         if #r.changes > 0 or r.bare_amp then todo[#todo + 1] = r.name or r.url end
      end
      if #todo > 0 then return false, "to change: " .. table.concat(todo, ", ") end
      return true
   end,
   apply = function(ctx)
      local list, path = resources(ctx)
      local text = assert(ctx:read_file(path))
      for _, r in ipairs(list) do
         local label = r.name or r.url
         if r.driver == "mysql-5.1" then
            ctx:warn("%s: Connector/J 5.1 checks the certificate chain but not the host name; 8.x does "
               .. "(sslMode=VERIFY_IDENTITY)", label)
         end
         if #r.changes > 0 or r.bare_amp then
            for _, c in ipairs(r.changes) do
               local why = tomcat.explain(r.driver, c)
               if why then ctx:warn("%s: %s", label, why) end
            end
            if r.bare_amp then
               ctx:warn("%s: its url had a bare '&', an XML error that stops the context from loading: now '&amp;'",
                  label)
            end
            -- one attribute of one element, every other byte kept (what ctx:edit_xml does, here for
            -- each Resource before the one write, so that the file gets one diff and one backup)
            local where = r.name and { name = r.name } or { url = r.url }
            local err
            text, err = xmledit.set(text, { element = "Resource", where = where, attribute = "url", value = r.new },
                                    path)
            if not text then ctx:fail("%s", err) end
            ctx:log("%s (%s): %s", label, tomcat.DRIVERS[r.driver], r.new)
         end
      end
      if ctx:write_file(path, text) then ctx:record(CHANGED, true) end
   end,
}

-- Step 4: restart ------------------------------------------------------------------------------

local function restart_hint(ctx)
   local t = ctx.params.tomcat
   local lay = layout(ctx)
   if lay == "debian" then
      return "systemctl restart " .. (t.catalina_base:match("(tomcat%d*)/*$") or "tomcat9")
   elseif lay == "rhel" then
      return "systemctl restart tomcat"
   elseif lay == "windows-service" then
      return ("net stop %s, then net start %s"):format(t.windows_service, t.windows_service)
   elseif lay == "windows-scripts" then
      local bin = join(catalina_home(ctx, lay), "bin")
      return ("%s, then %s"):format(join(bin, "shutdown.bat"), join(bin, "startup.bat"))
   end
   local bin = join(catalina_home(ctx, lay), "bin")
   return ("%s, then %s"):format(join(bin, "shutdown.sh"), join(bin, "startup.sh"))
end

local restart_step = {
   name = "restart",
   doc = "Tomcat restarts to read the truststore, its options and the URLs ([tomcat] restart_command)",
   check = function(ctx)
      if ctx:recorded(CHANGED) then return false, "Tomcat reads the changes above when it starts" end
      return true
   end,
   apply = function(ctx)
      local cmd = ctx.params.tomcat.restart_command
      if not cmd then
         ctx:warn("restart Tomcat for the changes to take effect: %s ([tomcat] restart_command would do it)",
            restart_hint(ctx))
         return
      end
      local argv, err = require("myseal.engine.target").split_command(cmd)
      if not argv then ctx:fail("[tomcat] restart_command: %s", err) end
      ctx:run(argv)
   end,
}

-- Step 5: the probe ----------------------------------------------------------------------------

-- The JVM options as Tomcat gets them. For a shell file: the block as written, through the shell
-- the way catalina.sh expands CATALINA_OPTS (eval), so the probe sees what Tomcat will.
local function options_as_started(ctx)
   local files, options = option_files(ctx)
   for _, f in ipairs(files) do
      if f.syntax == "sh" then
         local lines = tomcat.block_lines(f.text, SH_BLOCK) or {}
         local script = "CATALINA_OPTS=\n" .. table.concat(lines, "\n")
            .. '\neval "set -- $CATALINA_OPTS"\nfor a do printf "%s\\0" "$a"; done\n'
         local r, err = sys.run{ "sh", "-s", stdin = script, timeout = 30 }
         if not r or not r.ok then ctx:fail("the block of %s does not run in sh: %s", f.path, err or r.stderr) end
         options = {}
         for o in r.stdout:gmatch("([^\0]*)\0") do options[#options + 1] = o end
      end
   end
   if not password_in_options(ctx) then
      options[#options + 1] = "-Djavax.net.ssl.trustStorePassword=" .. password(ctx)
   end
   return options
end

-- The jar the probe loads for a driver: [tomcat] driver_jar, else Tomcat's jar of that driver.
local function probe_jar(ctx, driver)
   if ctx.params.tomcat.driver_jar then return ctx.params.tomcat.driver_jar end
   for _, j in ipairs(driver_jars(ctx)) do
      if j.driver == driver then return j.path end
   end
   return nil
end

local function probe(ctx)
   local t = ctx.params.tomcat
   local dir, tmp
   if ctx.planning then
      tmp = assert(sys.tmpdir("myseal-probe"))
      dir = tmp
   else
      local err
      dir, err = require("myseal.state").cache()
      if not dir then ctx:fail("%s", err) end
   end
   local classes, err = require("myseal.jdbcprobe").compile{ dir = dir, javac = t.javac }
   if not classes then
      if tmp then sys.rmtree(tmp) end
      ctx:fail("%s", err)
   end
   local options = options_as_started(ctx)
   local db_password
   if t.probe_password or os.getenv("MYSEAL_SECRET_TOMCAT_PROBE_PASSWORD") then
      db_password = ctx:secret("tomcat.probe_password")
   end
   local result, why = true, nil
   for _, r in ipairs(resources(ctx)) do
      local attrs = r.el.attrs
      local label = r.name or r.url
      local jar = probe_jar(ctx, r.driver)
      local ok, out
      if jar then
         ok, out = require("myseal.jdbcprobe").run{ java = t.java, classes = classes, driver_jar = jar,
            url = r.url, options = options, user = t.probe_user or (attrs.username and attrs.username.value),
            password = db_password or (attrs.password and attrs.password.value) }
      else
         out = ("no %s jar in Tomcat's lib: set [tomcat] driver_jar"):format(tomcat.DRIVERS[r.driver])
      end
      if ok and out:match("^OK %-") then ok, out = false, out .. " (connected without TLS)" end
      if not ok then
         result, why = false, ("the JDBC probe failed for %s: %s"):format(label, tostring(out))
         break
      end
      ctx:log("probe %s: %s", label, out)
   end
   if tmp then sys.rmtree(tmp) end
   return result, why
end

local probe_step = {
   name = "probe",
   doc = "a JVM with Tomcat's options and driver connects with each URL over verified TLS ([tomcat] probe)",
   when = function(ctx) return ctx.params.tomcat.probe end,
   check = function(ctx)
      if ctx:recorded(CHANGED) then return false, "the probe runs after the changes above" end
      return probe(ctx)
   end,
   apply = function(ctx)
      if ctx.planning then
         ctx:log("then a JVM connects with each Resource's url, the JVM options above and %s",
            ctx.params.tomcat.driver_jar or "the driver jar in Tomcat's lib")
         return
      end
      local ok, why = probe(ctx)
      if not ok then ctx:fail("%s", why) end
   end,
}

return runbook.new {
   name = "app-tomcat",
   summary = "the Tomcat application trusts the database's CA and its JDBC URLs require verified TLS",
   params = {
      ["tomcat.catalina_base"] = { type = "path", required = true,
         doc = "CATALINA_BASE of the Tomcat instance (Debian: /var/lib/tomcat9; Windows: C:\\Tomcat)" },
      ["tomcat.catalina_home"] = { type = "path",
         doc = "CATALINA_HOME (default: CATALINA_BASE; Debian /usr/share/tomcatN, RHEL /usr/share/tomcat)" },
      ["tomcat.layout"] = { type = "enum", default = "auto",
         values = { "auto", "linux", "windows-scripts", "windows-service", "debian", "rhel" },
         doc = "how Tomcat is installed and started: auto (from the platform and CATALINA_BASE), linux "
            .. "(setenv.sh), windows-scripts (setenv.bat), windows-service, debian, rhel (their defaults file)" },
      ["tomcat.user"] = { type = "string", default = "tomcat",
         doc = "the user Tomcat runs as (owner of the truststore)" },
      ["tomcat.group"] = { type = "string", default = "tomcat",
         doc = "its group: files holding the truststore password are readable by it and closed to others" },
      ["tomcat.ca"] = { type = "path", required = true,
         doc = "the database server's CA certificate, PEM (several certificates: each is trusted)" },
      ["tomcat.truststore"] = { type = "path",
         doc = "the JVM truststore (default: CATALINA_BASE/conf/db-truststore.p12, .jks for JKS); an existing one "
            .. "keeps its entries" },
      ["tomcat.truststore_type"] = { type = "enum", values = { "pkcs12", "jks" }, default = "pkcs12",
         doc = "the type of a new truststore" },
      ["tomcat.truststore_password"] = { type = "secret", doc = "the truststore's password" },
      ["tomcat.truststore_alias"] = { type = "string", default = "myseal-db-ca",
         doc = "the alias of the CA in the truststore (more certificates: alias-2, alias-3, ...)" },
      ["tomcat.password_in"] = { type = "enum", values = { "jvm-options", "catalina.properties" },
         default = "jvm-options",
         doc = "where the truststore password goes: the JVM options, or CATALINA_BASE/conf/catalina.properties "
            .. "(kept out of the process list and the Windows service's registry entry)" },
      ["tomcat.setenv"] = { type = "path",
         doc = "setenv.sh or setenv.bat to edit (default: CATALINA_BASE/bin's, else CATALINA_HOME/bin's)" },
      ["tomcat.defaults_file"] = { type = "path",
         doc = "packaged Tomcat's defaults file (default: Debian /etc/default/tomcatN, RHEL /etc/sysconfig/tomcat "
            .. "or /etc/tomcat/tomcat.conf)" },
      ["tomcat.windows_service"] = { type = "string", default = "Tomcat9", doc = "the Windows service's name" },
      ["tomcat.service_exe"] = { type = "path",
         doc = "the service's procrun executable (default: CATALINA_HOME\\bin\\SERVICE.exe)" },
      ["tomcat.context_xml"] = { type = "path",
         doc = "the file with the JDBC <Resource>s (default: CATALINA_BASE/conf/context.xml)" },
      ["tomcat.resources"] = { type = "list", default = {},
         doc = "names of the <Resource>s to change (default: each one whose url is jdbc:mysql: or jdbc:mariadb:)" },
      ["tomcat.driver"] = { type = "enum", default = "auto",
         values = { "auto", "mysql-5.1", "mysql-8", "mariadb-2", "mariadb-3" },
         doc = "the JDBC driver: auto (from driverClassName and the jars in Tomcat's lib), or which one" },
      ["tomcat.verify"] = { type = "enum", values = { "identity", "ca" }, default = "identity",
         doc = "what the driver verifies: identity (the CA and the host name), ca (the CA only)" },
      ["tomcat.jdbc_trust"] = { type = "enum", values = { "jvm", "server-cert" }, default = "jvm",
         doc = "where the driver finds the CA: jvm (the truststore), server-cert (MariaDB: serverSslCert = "
            .. "[tomcat] ca)" },
      ["tomcat.restart_command"] = { type = "string",
         doc = "command that restarts Tomcat, run without a shell (none: the command is printed)" },
      ["tomcat.probe"] = { type = "boolean", default = false,
         doc = "after the changes, a JVM connects with each url and Tomcat's options (needs java, javac, the "
            .. "driver jar)" },
      ["tomcat.java"] = { type = "string", default = "java", doc = "the java launcher for the probe" },
      ["tomcat.javac"] = { type = "string", default = "javac", doc = "the Java compiler for the probe" },
      ["tomcat.driver_jar"] = { type = "path",
         doc = "the JDBC driver jar (default: the MySQL or MariaDB jar in Tomcat's lib), for detection and the probe" },
      ["tomcat.probe_user"] = { type = "string",
         doc = "the probe's database account (default: the Resource's username)" },
      ["tomcat.probe_password"] = { type = "secret",
         doc = "its password (default: the Resource's password)" },
   },
   steps = { truststore_step, jvm_options_step, jdbc_step, restart_step, probe_step },
}
