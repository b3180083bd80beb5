-- app-tomcat.lua: the Java application tier on Tomcat trusts the database server's CA and its JDBC
-- URLs require TLS with a verified certificate, so the change works end to end and nobody turns
-- SSL off in despair. Only the reload step talks to the database server (to see the pools' old
-- sessions end), so plan works against a described server (--describe mariadb-10.11) too. Where
-- Tomcat keeps what: lua/myseal/tomcat/layout.lua; driver and quoting rules: lua/myseal/tomcat/init.lua.
local runbook = require "myseal.runbook"
local done = runbook.done

local steps = runbook.outline {
   { name = "truststore",
     doc = "the database server's CA where Tomcat's user reads it: a copy beside context.xml for MariaDB "
        .. "Connector/J, a truststore for MySQL Connector/J or the JVM (other entries kept)" },
   { name = "jvm-options", doc = "[tomcat] jdbc_trust = jvm: Tomcat's JVM uses the truststore (CATALINA_OPTS in "
        .. "setenv.sh, setenv.bat or the defaults file, or the service's options)" },
   { name = "jdbc-url", doc = "each JDBC Resource's url requires TLS and verifies the server, trusting the CA itself "
        .. "where the driver can (context.xml: Tomcat reloads the context, no JVM restart)" },
   { name = "reload", doc = "the data sources trust the CA themselves: Tomcat redeploys the context and its pools "
        .. "reconnect (watched from the database: the pools' old sessions end)" },
   { name = "restart",
     doc = "[tomcat] jdbc_trust = jvm: Tomcat restarts to read its JVM options ([tomcat] restart_command)" },
   { name = "probe",
     doc = "a JVM with Tomcat's options and driver connects with each URL over verified TLS ([tomcat] probe)" },
}

-- ------------------------------------------------------------------------------------------------

local sys = require "sys"
local pki = require "pki"
local keystore = require "keystore"
local xmledit = require "myseal.xmledit"
local jdbcurl = require "myseal.jdbcurl"
local tomcat = require "myseal.tomcat"
local layout = require "myseal.tomcat.layout"
local count = require("myseal.text").count

local PASSWORD = "tomcat.truststore_password"
local CHANGED = "app-tomcat.changed"   -- recorded when a step changed what Tomcat reads at start
local OLD_SESSIONS = "app-tomcat.old_sessions"   -- recorded: the pools' sessions before the new urls
local RECONNECT_SECONDS = 30   -- after a redeploy, how long a pool that had sessions may take to open one
local LOOKUPS = {}   -- ids of the sessions this run opened to look at the pools

-- The truststore password, with the forms it takes in the files written here masked too.
local function password(ctx)
   local pw = ctx:secret(PASSWORD)
   for _, form in ipairs{ tomcat.sh_form(pw), tomcat.bat_form(pw), tomcat.properties_form(pw) } do
      if form ~= pw then ctx:mask(form) end
   end
   return pw
end

-- `v`, or the run fails with `err` (what a world failure said).
local function must(ctx, v, err)
   if not v then ctx:fail("%s", err) end
   return v
end

-- `v`, or the run stops on bad input (exit 2) with `err`.
local function valid(ctx, v, err)
   if not v then ctx:reject("%s", err) end
   return v
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

-- Step 1: the truststore ------------------------------------------------------------------------

-- The database server's CA: [tomcat] ca, else the one in-transit makes (pki.ca_cert, else
-- pki.dir/ca.pem). Read as the run sees it: in a plan, the CA in-transit would make.
local function ca_path(ctx)
   local t, p = ctx.params.tomcat, ctx.params.pki
   return t.ca or p.ca_cert or ((p.dir or ctx:default_dir("tls") or "/etc/mysql/tls") .. "/ca.pem")
end

local function ca_certs(ctx)
   local path = ca_path(ctx)
   local data, err = ctx:read_file(path)
   if not data then
      if ctx.params.tomcat.ca then ctx:fail("[tomcat] ca: %s", err) end
      ctx:fail("the database's CA (the one in-transit makes; [tomcat] ca names another): %s", err)
   end
   local certs
   certs, err = pki.load_certs(data)
   if not certs then ctx:reject("[tomcat] ca %s: %s", path, err) end
   if #certs == 0 then ctx:reject("[tomcat] ca: no certificate in %s", path) end
   return certs
end

local function trust(ctx) return ctx.params.tomcat.jdbc_trust end

local resources   -- the Resources of context.xml (step 3), for the truststore's decision

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

-- What the Resources need: a keystore (the JVM's, or MySQL Connector/J's own), a PEM copy of the
-- CA (MariaDB Connector/J's serverSslCert), or both.
local function needs(ctx)
   if trust(ctx) == "jvm" then return { store = true } end
   local out = {}
   if trust(ctx) == "server-cert" then return out end
   for _, r in ipairs(resources(ctx)) do
      if tomcat.needs_store(r.driver) then out.store = true else out.copy = true end
   end
   return out
end

-- Can Tomcat's user read `path` (every directory on the way)? Only root can ask the kernel.
local function tomcat_reads(ctx, path)
   if sys.user().uid ~= 0 or not sys.stat(path) then return true end
   return sys.access_as(ctx.params.tomcat.user, path, "r")
end

local function must_read(ctx, path)
   local ok, why = tomcat_reads(ctx, path)
   if not ok then ctx:fail("%s: Tomcat's user must read it: %s", path, why) end
end

local function ca_pem(ctx)
   local out = {}
   for _, c in ipairs(ca_certs(ctx)) do out[#out + 1] = c:pem() end
   return table.concat(out)
end

steps.truststore.when = function(ctx)
   local n = needs(ctx)
   return n.store or n.copy or false
end

steps.truststore.check = function(ctx)
   local lay = layout.of(ctx)
   local n = needs(ctx)
   if n.copy then
      local copy = lay:ca_copy_path()
      if ctx:read_file(copy) ~= ca_pem(ctx) then return false, copy .. " does not hold the database's CA" end
      local ok, why = tomcat_reads(ctx, copy)
      if not ok then return false, why end
   end
   if not n.store then return true end
   local path = lay:truststore_path()
   local certs = ca_certs(ctx)
   if not sys.stat(path) then return false, path .. " does not exist" end
   local store <close> = open_store(ctx, path)
   for _, cert in ipairs(certs) do
      if not store_holds(store, cert) then
         return false, ("%s does not trust %s"):format(path, cert:subject())
      end
   end
   local ok, why = attrs_ok(path, lay:truststore_opts())
   if not ok then return false, why end
   return tomcat_reads(ctx, path)
end

-- The copy is public (a CA certificate): 0644, the directory's owner's
local function write_copy(ctx, lay)
   local copy = lay:ca_copy_path()
   if ctx:write_file(copy, ca_pem(ctx), { mode = tonumber("644", 8) }) then ctx:record(CHANGED, true) end
   must_read(ctx, copy)
end

steps.truststore.apply = function(ctx)
   local t = ctx.params.tomcat
   local lay = layout.of(ctx)
   local n = needs(ctx)
   if n.copy then write_copy(ctx, lay) end
   if not n.store then return end
   local path = lay:truststore_path()
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
      if trust(ctx) == "jvm" then
         -- the JVM then trusts only this store: it starts with the JDK's own CAs, so the application's
         -- other TLS (HTTPS, LDAPS) keeps working
         local jdk <close>, jerr = keystore.open(t.jdk_cacerts, { password = "changeit" })
         if not jdk then ctx:fail("[tomcat] jdk_cacerts %s: %s", t.jdk_cacerts, jerr) end
         for _, e in ipairs(jdk:entries()) do
            if e.kind == "trusted" then assert(store:add_trusted(e.alias, jdk:get(e.alias))) end
         end
         ctx:log("the truststore starts with the %d CAs of %s", #store:aliases(), t.jdk_cacerts)
      end
   end
   local added = false
   for i, cert in ipairs(ca_certs(ctx)) do
      if not store_holds(store, cert) then
         local alias = i == 1 and t.truststore_alias or ("%s-%d"):format(t.truststore_alias, i)
         for _, e in ipairs(store:entries()) do
            if e.kind ~= "trusted" and e.alias == alias:lower() then
               ctx:reject("%s: alias %s holds a %s entry, not a trusted certificate, and myseal replaces none: set "
                  .. "[tomcat] truststore_alias to another alias", path, e.alias, e.kind)
            end
         end
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
   -- a new store is written even when it adds nothing: the JDK's CAs may already hold the database's
   local data = (added or not old) and assert(store:encode{ password = pw }) or old
   store:close()
   if ctx:write_file(path, data, lay:truststore_opts()) then ctx:record(CHANGED, true) end
   must_read(ctx, path)
end

-- Step 2: the JVM options -----------------------------------------------------------------------

local function password_in_options(ctx)
   return ctx.params.tomcat.password_in == "jvm-options"
end

-- The options Tomcat's JVM starts with; the password among them unless it goes to catalina.properties.
local function jvm_options(ctx, lay, with_password)
   local opts = { "-Djavax.net.ssl.trustStore=" .. lay:truststore_path() }
   if with_password then opts[#opts + 1] = "-Djavax.net.ssl.trustStorePassword=" .. password(ctx) end
   opts[#opts + 1] = "-Djavax.net.ssl.trustStoreType=" .. lay:store_type():upper()
   return opts
end

-- The files the step manages, each with its wanted text: { path, old, text, opts, syntax, markers }.
local function option_files(ctx)
   local lay = layout.of(ctx)
   local in_opts = password_in_options(ctx)
   local options = jvm_options(ctx, lay, in_opts)
   local specs = lay:option_files(options, in_opts)
   -- catalina.properties: Tomcat makes each of its properties a system property at startup, before
   -- anything opens a TLS connection, so the password can live there instead of the JVM options
   local props = lay:catalina_properties()
   local text = ctx:read_file(props)
   if not in_opts then
      if not text then
         ctx:fail("%s does not exist: Tomcat then uses its built-in catalina.properties, which a new file "
            .. "holding only the password would replace; copy Tomcat's own catalina.properties there first", props)
      end
      specs[#specs + 1] = { path = props, syntax = "properties", markers = layout.SH_BLOCK, eol = "\n",
         lines = { tomcat.properties_line("javax.net.ssl.trustStorePassword", password(ctx)) },
         opts = lay:secret_file_opts(props) }
   elseif text and tomcat.block_lines(text, layout.SH_BLOCK) then
      -- password_in changed: take it out of there
      specs[#specs + 1] = { path = props, syntax = "properties", markers = layout.SH_BLOCK, eol = "\n", opts = {} }
   end
   for _, f in ipairs(specs) do
      f.old = ctx:read_file(f.path)
      f.text = must(ctx, tomcat.block(f.old, { begin = f.markers.begin, finish = f.markers.finish,
                                               title = f.markers.title, lines = f.lines, eol = f.eol, name = f.path }))
   end
   return specs, options, lay
end

local function is_trust_option(o) return o:match("^%-Djavax%.net%.ssl%.trustStore") ~= nil end

-- What the service lacks: ours missing, and other javax.net.ssl.trustStore* options to drop.
local function service_diff(current, options)
   local function absent(list, from, wanted)
      local there, out = {}, {}
      for _, o in ipairs(from) do there[o] = true end
      for _, o in ipairs(list) do
         if not there[o] and wanted(o) then out[#out + 1] = o end
      end
      return out
   end
   return absent(options, current, function() return true end), absent(current, options, is_trust_option)
end

local function service_apply(ctx, lay, options, with_password)
   local t = ctx.params.tomcat
   local exe, svc = lay:service_exe(), "//US//" .. t.windows_service
   local current, why = lay:service_options()
   local add = options
   if current then
      local missing, stale = service_diff(current, options)
      if #stale > 0 then
         -- procrun cannot drop one option: set the list again without any trustStore option, then add ours
         local rest = {}
         for _, o in ipairs(current) do
            if not is_trust_option(o) then
               if o:lower():find("password", 1, true) then
                  ctx:fail("service %s has old javax.net.ssl.trustStore options and another option holding a "
                     .. "password (%s=...), which resetting the list would put on a command line: remove the old "
                     .. "trustStore options in %sw.exe, then run again", t.windows_service, o:match("^[^=]*"),
                     t.windows_service)
               end
               rest[#rest + 1] = o
            end
         end
         ctx:run{ exe, svc, "--JvmOptions=" .. must(ctx, tomcat.procrun_value(rest)) }
         ctx:log("dropped %s", table.concat(stale, " "))
      else
         add = missing
      end
   else
      ctx:warn("%s; this adds the options. Old -Djavax.net.ssl.trustStore options there would stay: check "
         .. "the Java tab of %sw.exe", why, t.windows_service)
   end
   local value = valid(ctx, tomcat.procrun_value(add))
   if with_password then
      -- procrun reads PR_<option> from its environment and, for a list option, appends it like
      -- ++JvmOptions (commons-daemon cmdline.c, apxCmdlineLoadEnvVars): the password stays out of argv
      ctx:run{ exe, svc, env = { PR_JVMOPTIONS = value } }
      ctx:log("with PR_JVMOPTIONS=%s in its environment (the same as ++JvmOptions=..., off the command line)", value)
      ctx:warn("service %s keeps these options in the registry (%s, value Options), which local users can "
         .. "usually read, so the truststore password is there; [tomcat] password_in = catalina.properties keeps it "
         .. "in a file instead", t.windows_service, layout.service_key(t.windows_service, false))
   else
      ctx:run{ exe, svc, "++JvmOptions=" .. value }
   end
end

steps["jvm-options"].when = function(ctx) return trust(ctx) == "jvm" end
steps["jvm-options"].check = function(ctx)
   local files, options, lay = option_files(ctx)
   for _, f in ipairs(files) do
      if f.text ~= f.old then return false, f.path .. (f.old and " changes" or " is created") end
      local ok, why = attrs_ok(f.path, f.opts)
      if not ok then return false, why end
   end
   if not lay.service then return true end
   local current, why = lay:service_options()
   if not current then return false, why end
   local missing, stale = service_diff(current, options)
   return done(#missing + #stale == 0, ("service %s: %d option(s) to add, %d to drop"):format(
      ctx.params.tomcat.windows_service, #missing, #stale))
end

steps["jvm-options"].apply = function(ctx)
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
   if lay.service then
      local bat = layout.join(ctx.params.tomcat.catalina_base, "bin", "setenv.bat")
      if ctx:exists(bat) then
         ctx:warn("%s is not read by the Windows service, only by catalina.bat: options there do not reach "
            .. "the service", bat)
      end
      service_apply(ctx, lay, options, password_in_options(ctx))
      changed = true
   end
   if changed then ctx:record(CHANGED, true) end
end

-- Step 3: the JDBC URLs -------------------------------------------------------------------------

-- The MySQL / MariaDB driver jars Tomcat loads ([tomcat] driver_jar first): { path, driver }.
local function driver_jars(ctx)
   local t = ctx.params.tomcat
   local out = {}
   local function try(path)
      local bytes = sys.read_file(path)
      local driver = bytes and tomcat.jar_driver(bytes)
      if driver then out[#out + 1] = { path = path, driver = driver } end
   end
   if t.driver_jar then try(t.driver_jar) end
   for _, dir in ipairs(layout.of(ctx):lib_dirs()) do
      local names = sys.dir(dir) or {}
      table.sort(names)
      for _, name in ipairs(names) do
         local lower = name:lower()
         if lower:match("%.jar$") and (lower:find("mysql", 1, true) or lower:find("mariadb", 1, true)) then
            try(layout.join(dir, name))
         end
      end
   end
   return out
end

local function is_jdbc(url)
   return url and (url:match("^jdbc:mysql[:+]") or url:match("^jdbc:mariadb:")) ~= nil
end

-- The application's database password: not ours to show, in any spelling.
local function mask_passwords(ctx, text, el, url)
   if el.attrs.password then
      ctx:mask(el.attrs.password.value)
      ctx:mask(text:sub(el.attrs.password.vstart, el.attrs.password.vstop))
   end
   local parsed = jdbcurl.parse(url)
   for _, it in ipairs(parsed.items) do
      if it.key:lower():find("password", 1, true) and it.value then ctx:mask(it.value) end
   end
   -- and before the '?' (Connector/J 8): //user:password@host, address=(...)(password=...), (..., password=...)
   local base = parsed.base
   for pw in base:gmatch("[/,][^/,:@()=]*:([^/,@]+)@") do ctx:mask(pw) end
   for from, to in base:lower():gmatch("password%s*=%s*()[^(),]+()") do ctx:mask(base:sub(from, to - 1)) end
end

-- Each Resource to edit: { name, label, el, url, new, changes, todo, driver, bare_amp }; the path, the text.
function resources(ctx)
   local t = ctx.params.tomcat
   local lay = layout.of(ctx)
   local path = lay:context_xml()
   local text = must(ctx, ctx:read_file(path))
   local els = valid(ctx, xmledit.elements(text, path))
   local named = {}
   for _, n in ipairs(t.resources) do named[n] = false end
   local jars
   local out, lines = {}, {}   -- lines: where each Resource's selector (name, else url) was seen
   for _, el in ipairs(els) do
      local name = el.attrs.name and el.attrs.name.value
      local url = el.attrs.url and el.attrs.url.value
      local pick
      if #t.resources > 0 then pick = name ~= nil and named[name] ~= nil else pick = is_jdbc(url) end
      if el.name == "Resource" and pick then
         if name then named[name] = true end
         if not url then ctx:reject("%s:%d: <Resource name=%q> has no url", path, el.line, name) end
         if not is_jdbc(url) then
            ctx:reject("%s:%d: <Resource name=%q>: its url is not jdbc:mysql: or jdbc:mariadb: (another database's?)",
               path, el.line, name)
         end
         mask_passwords(ctx, text, el, url)
         -- the edit finds a Resource by its name (else its url): two alike would be one
         local key = name and ("name=%q"):format(name) or ("url=%q"):format(url)
         if lines[key] then
            ctx:reject("%s:%d: <Resource %s> again (line %d): give each Resource a name of its own", path, el.line,
               key, lines[key])
         end
         lines[key] = el.line
         local driver = t.driver
         if driver == "auto" then
            jars = jars or driver_jars(ctx)
            local class = el.attrs.driverClassName and el.attrs.driverClassName.value
            local err
            driver, err = tomcat.detect_driver(class, jars)
            if not driver then ctx:reject("%s:%d: <Resource name=%q>: %s", path, el.line, tostring(name), err) end
         end
         local store = t.jdbc_trust == "data-source" and tomcat.needs_store(driver)
            and { url = "file:" .. lay:truststore_path(), password = password(ctx), type = lay:store_type():upper() }
            or nil
         local server_cert = t.jdbc_trust == "data-source" and lay:ca_copy_path() or ca_path(ctx)
         local spec = valid(ctx, tomcat.url_spec(driver, { verify = t.verify, trust = t.jdbc_trust,
                                                           server_cert = server_cert, store = store }))
         local new, changes = jdbcurl.edit(url, spec)
         local raw = text:sub(el.attrs.url.vstart, el.attrs.url.vstop)
         local bare_amp = raw:gsub("&#?%w+;", ""):find("&", 1, true) ~= nil
         out[#out + 1] = { name = name, label = name or url, el = el, url = url, new = new, changes = changes,
                           todo = #changes > 0 or bare_amp, driver = driver, bare_amp = bare_amp }
      end
   end
   for n, found in pairs(named) do
      if not found then ctx:reject("%s: no <Resource name=%q>", path, n) end
   end
   if #out == 0 then ctx:reject("%s: no <Resource> with a jdbc:mysql: or jdbc:mariadb: url", path) end
   return out, path, text
end

-- The first host and port of a JDBC URL (jdbc:mysql://db:3306/app, jdbc:mysql:loadbalance://...),
-- or nil for the forms that name no plain host.
local function url_address(url)
   local hostport = jdbcurl.parse(url).base:match("^jdbc:%a+:[%a:]-//([^/,?]+)")
   if not hostport or hostport:find("=", 1, true) then return nil end
   local host, port = hostport:match("^%[(.-)%]:?(%d*)$")
   if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
   return host, tonumber(port) or 3306
end

-- The ids of the server's sessions of the Resources' accounts, seen the way the application
-- connects (its account, the address of its URL: Tomcat may not be on the database's host, and
-- an account sees its own sessions). nil, why when they cannot be seen.
local function pool_sessions(ctx, list)
   local ids, seen = {}, {}
   for _, r in ipairs(list) do
      local a = r.el.attrs
      local user = a.username and a.username.value
      local host, port = url_address(r.url)
      if not (user and host) then return nil, ("%s names no account and address to look with"):format(r.label) end
      local key = ("%s@%s:%d"):format(user, host, port)
      if not seen[key] then
         seen[key] = true
         local c, err = ctx:connect{ alone = true, host = host, port = port, user = user,
                                     password = a.password and a.password.value, tls = { mode = "preferred" } }
         if not c then return nil, ("%s cannot log in to look: %s"):format(key, err) end
         local rows = c:query("SELECT ID, CONNECTION_ID() FROM information_schema.PROCESSLIST WHERE USER = ?", user)
         c:close()
         -- our own look-ups are not the pools' (a closed one may still be listed for a moment)
         for _, row in ipairs(rows or {}) do LOOKUPS[tonumber(row[2])] = true end
         for _, row in ipairs(rows or {}) do
            local id = tonumber(row[1])
            if not LOOKUPS[id] then ids[#ids + 1] = id end
         end
      end
   end
   return ids
end

-- The pools' sessions now (nil when they cannot be seen, with a warning).
local function sessions(ctx)
   local ids, why = pool_sessions(ctx, resources(ctx))
   if not ids then ctx:warn("%s: Tomcat's redeploy cannot be watched", why) end
   return ids
end

steps["jdbc-url"].check = function(ctx)
   local todo = {}
   for _, r in ipairs(resources(ctx)) do
      if r.todo then todo[#todo + 1] = r.label end
   end
   return done(#todo == 0, "to change: " .. table.concat(todo, ", "))
end

steps["jdbc-url"].apply = function(ctx)
   local list, path, text = resources(ctx)
   -- serverSslCert names [tomcat] ca itself: a pool that cannot open it cannot connect
   if trust(ctx) == "server-cert" then must_read(ctx, ca_path(ctx)) end
   for _, r in ipairs(list) do
      if r.driver == "mysql-5.1" then
         ctx:warn("%s: Connector/J 5.1 checks the certificate chain but not the host name; 8.x does "
            .. "(sslMode=VERIFY_IDENTITY)", r.label)
      end
      if r.todo then
         for _, c in ipairs(r.changes) do
            local why = tomcat.explain(r.driver, c)
            if why then ctx:warn("%s: %s", r.label, why) end
         end
         if r.bare_amp then
            ctx:warn("%s: its url had a bare '&', an XML error that stops the context from loading: now '&amp;'",
               r.label)
         end
         -- one attribute of one element, every other byte kept (what ctx:edit_xml does, here for
         -- each Resource before the one write, so that the file gets one diff and one backup)
         local where = r.name and { name = r.name } or { url = r.url }
         text = must(ctx, xmledit.set(text, { element = "Resource", where = where, attribute = "url", value = r.new },
                                      path))
         ctx:log("%s (%s): %s", r.label, tomcat.DRIVERS[r.driver], r.new)
      end
   end
   -- the sessions the pools have now: the reload step waits for them to end
   local before = not ctx.planning and trust(ctx) ~= "jvm" and sessions(ctx) or nil
   if ctx:write_file(path, text) then
      ctx:record(CHANGED, true)
      ctx:record(OLD_SESSIONS, before)
   end
end

-- Step 4: reload --------------------------------------------------------------------------------

-- Why Tomcat will not redeploy by itself, or nil: a Host in CATALINA_BASE/conf/server.xml with
-- autoDeploy="false" (the default is true), and what to do, `then_what`.
local function no_redeploy(ctx, then_what)
   local path = layout.join(ctx.params.tomcat.catalina_base, "conf", "server.xml")
   local els = xmledit.elements(ctx:read_file(path) or "", path) or {}
   for _, el in ipairs(els) do
      local auto = el.name == "Host" and el.attrs.autoDeploy
      if auto and auto.value:lower() == "false" then
         return ("%s: Host %s has autoDeploy=\"false\", so Tomcat does not redeploy the context when context.xml "
            .. "changes and the pools keep their old urls: restart Tomcat (or reload the applications in its "
            .. "manager), %s"):format(path, el.attrs.name and el.attrs.name.value or "?", then_what)
      end
   end
end

-- Tomcat redeploys every application when CATALINA_BASE/conf/context.xml (or an application's own
-- context file) changes, on its next background check (autoDeploy, every 10 s by default); the old
-- pool is closed, and the new one connects with the new url. Until then the application still
-- connects without TLS, so enforcement must wait: seen from the server, the pools' old sessions
-- end. `ids` are those sessions' ids.
local function wait_reload(ctx, ids)
   local label = "Tomcat to redeploy the context (autoDeploy; without it, reload the application or restart Tomcat)"
   if ctx.planning then
      local fixed = no_redeploy(ctx, "before TLS is required")
      if fixed then ctx:warn("%s", fixed) end
      ctx:wait(label .. ": the pools' sessions end, and new ones connect", function() return true end)
      return
   end
   if not ids or #ids == 0 then
      local fixed = no_redeploy(ctx, "before TLS is required")
      if fixed then return ctx:warn("the pools have no session to watch; %s", fixed) end
      ctx:log("the pools have no session to watch: the application uses the new urls from its next connection")
      return
   end
   -- how many of the pools' sessions now are `wanted`
   local function now(wanted)
      local n = 0
      for _, id in ipairs(sessions(ctx) or {}) do
         if wanted(id) then n = n + 1 end
      end
      return n
   end
   local old = {}
   for _, id in ipairs(ids) do old[id] = true end
   local function old_left() return now(function(id) return old[id] end) end
   -- waiting would only time out; once Tomcat restarts, the old sessions are gone and the next try goes on
   local fixed = no_redeploy(ctx, "then run myseal again (run --resume, or rollback)")
   if fixed and old_left() > 0 then ctx:fail("%s", fixed) end
   ctx:wait(("%s: %s of its pools to end"):format(label, count(#ids, "session")), function()
      return old_left() == 0
   end, { timeout = ctx.params.tomcat.reload_timeout, interval = 0.25 })
   ctx:log("Tomcat redeployed the context: the pools' %s ended", count(#ids, "old session"))
   -- a pool that had sessions opens new ones at once (its initial or minimum idle size): none
   -- means the new url does not connect, and the application is failing now
   local newest = math.max(table.unpack(ids))
   local back = 0
   ctx:wait("the pools to connect again with the new urls", function()
      back = now(function(id) return id > newest end)
      return back > 0
   end, { timeout = RECONNECT_SECONDS, interval = 0.25, ends = true })
   if back == 0 then
      ctx:fail("the application has not connected again in %s since Tomcat redeployed it: its new urls do not "
         .. "work (see catalina.out for the driver's error); 'myseal rollback' puts the old ones back",
         count(RECONNECT_SECONDS, "second"))
   end
   ctx:log("the pools connect again: %s", count(back, "new session"))
end

steps.reload.when = function(ctx) return trust(ctx) ~= "jvm" end
steps.reload.check = function(ctx)
   return done(not ctx:recorded(CHANGED), "Tomcat redeploys the context for the new urls")
end
steps.reload.apply = function(ctx) wait_reload(ctx, ctx:recorded(OLD_SESSIONS)) end

-- after a rollback has put context.xml back: the same wait, for the sessions of the TLS pools (the
-- rollback wrote the file a moment ago; Tomcat looks every few seconds)
steps["jdbc-url"].undo = function(ctx)
   if trust(ctx) ~= "jvm" then wait_reload(ctx, sessions(ctx)) end
end

-- Step 5: restart -------------------------------------------------------------------------------

steps.restart.when = function(ctx) return trust(ctx) == "jvm" end
steps.restart.check = function(ctx)
   return done(not ctx:recorded(CHANGED), "Tomcat reads the changes above when it starts")
end

steps.restart.apply = function(ctx)
   local cmd = ctx.params.tomcat.restart_command
   if not cmd then
      ctx:warn("restart Tomcat for the changes to take effect: %s ([tomcat] restart_command would do it)",
         layout.of(ctx):restart_hint())
      return
   end
   local argv, err = runbook.split_command(cmd)
   if not argv then ctx:fail("[tomcat] restart_command: %s", err) end
   ctx:run(argv)
end
-- after a rollback has put the files back, Tomcat starts with them again
steps.restart.undo = steps.restart.apply

-- Step 6: the probe -----------------------------------------------------------------------------

-- The JVM options as Tomcat gets them. For a shell file: the block as written, through the shell
-- the way catalina.sh expands CATALINA_OPTS (eval), so the probe sees what Tomcat will.
local function options_as_started(ctx)
   if trust(ctx) ~= "jvm" then return {} end   -- the Resource's own trust: no JVM option
   local files, options = option_files(ctx)
   for _, f in ipairs(files) do
      if f.syntax == "sh" then
         local lines = tomcat.block_lines(f.text, layout.SH_BLOCK) or {}
         local script = "CATALINA_OPTS=\n" .. table.concat(lines, "\n")
            .. '\neval "set -- $CATALINA_OPTS"\nfor a do printf "%s\\0" "$a"; done\n'
         local r = ctx:command{ "sh", "-s", stdin = script, timeout = 30 }
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
   local jdbcprobe = require "myseal.jdbcprobe"
   -- programs run to learn, not to change: through ctx:command, which plan mode runs too
   local function run(argv)
      argv.ok = function() return true end
      return ctx:command(argv)
   end
   local classes = must(ctx, jdbcprobe.compile{ javac = t.javac, run = run })
   local options = options_as_started(ctx)
   local db_password
   if ctx:has_secret("tomcat.probe_password") then
      db_password = ctx:secret("tomcat.probe_password")
   end
   for _, r in ipairs(resources(ctx)) do
      local attrs = r.el.attrs
      local jar = probe_jar(ctx, r.driver)
      local ok, out
      if jar then
         ok, out = jdbcprobe.run{ java = t.java, classes = classes, driver_jar = jar, run = run,
            url = r.url, options = options, user = t.probe_user or (attrs.username and attrs.username.value),
            password = db_password or (attrs.password and attrs.password.value) }
      else
         out = ("no %s jar in Tomcat's lib: set [tomcat] driver_jar"):format(tomcat.DRIVERS[r.driver])
      end
      if ok and out:match("^OK %-") then ok, out = false, out .. " (connected without TLS)" end
      if not ok then return false, ("the JDBC probe failed for %s: %s"):format(r.label, tostring(out)) end
      ctx:log("probe %s: %s", r.label, out)
   end
   return true
end

steps.probe.when = function(ctx) return ctx.params.tomcat.probe end
steps.probe.check = function(ctx)
   if ctx:recorded(CHANGED) then return false, "the probe runs after the changes above" end
   return probe(ctx)
end
steps.probe.apply = function(ctx)
   if ctx.planning then
      ctx:log("then a JVM connects with each Resource's url, the JVM options above and %s",
         ctx.params.tomcat.driver_jar or "the driver jar in Tomcat's lib")
      return
   end
   must(ctx, probe(ctx))
end

return runbook.new {
   name = "app-tomcat",
   summary = "the Tomcat application trusts the database's CA and its JDBC URLs require verified TLS",
   needs = { "in-transit" },
   params = {
      ["tomcat.catalina_base"] = { type = "path", required = true,
         doc = "CATALINA_BASE of the Tomcat instance (Debian 12: /var/lib/tomcat10; Windows: C:\\Tomcat)" },
      ["tomcat.catalina_home"] = { type = "path",
         doc = "CATALINA_HOME (default: CATALINA_BASE; Debian /usr/share/tomcatN, RHEL /usr/share/tomcat)" },
      ["tomcat.layout"] = { type = "enum", default = "auto", values = layout.NAMES,
         doc = "how Tomcat is installed and started: auto (from the platform and CATALINA_BASE), linux "
            .. "(setenv.sh), windows-scripts (setenv.bat), windows-service, debian, rhel (their defaults file)" },
      ["tomcat.user"] = { type = "string", default = "tomcat",
         doc = "the user Tomcat runs as (owner of the truststore)" },
      ["tomcat.group"] = { type = "string", default = "tomcat",
         doc = "its group: files holding the truststore password are readable by it and closed to others" },
      ["tomcat.ca"] = { type = "path",
         doc = "the database server's CA certificate, PEM (several certificates: each is trusted; default: the CA "
            .. "in-transit makes, pki.ca_cert or pki.dir/ca.pem)" },
      ["pki.dir"] = require("myseal.intransit").PARAMS["pki.dir"],
      ["pki.ca_cert"] = require("myseal.intransit").PARAMS["pki.ca_cert"],
      ["tomcat.jdk_cacerts"] = { type = "path", default = "/usr/lib/jvm/default-java/lib/security/cacerts",
         doc = "jdbc_trust = jvm: the JDK's own truststore, whose CAs the new truststore starts with" },
      ["tomcat.truststore"] = { type = "path",
         doc = "the JVM truststore (default: CATALINA_BASE/conf/db-truststore.p12, .jks for JKS); an existing one "
            .. "keeps its entries" },
      ["tomcat.truststore_type"] = { type = "enum", values = { "pkcs12", "jks" }, default = "pkcs12",
         doc = "the type of a new truststore" },
      ["tomcat.truststore_password"] = { type = "secret", doc = "the truststore's password" },
      ["tomcat.truststore_alias"] = { type = "string", default = "myseal-db-ca",
         doc = "the alias of the CA in the truststore (more certificates: alias-2, alias-3, ...)" },
      ["tomcat.password_in"] = { type = "enum", values = { "jvm-options", "catalina.properties" },
         default = "catalina.properties",
         doc = "where the truststore password goes: the JVM options, or CATALINA_BASE/conf/catalina.properties "
            .. "(kept out of the process list and the Windows service's registry entry)" },
      ["tomcat.setenv"] = { type = "path",
         doc = "setenv.sh or setenv.bat to edit (default: CATALINA_BASE/bin's, else CATALINA_HOME/bin's)" },
      ["tomcat.defaults_file"] = { type = "path",
         doc = "packaged Tomcat's defaults file (default: Debian /etc/default/tomcatN, RHEL /etc/sysconfig/tomcat "
            .. "or /etc/tomcat/tomcat.conf)" },
      ["tomcat.windows_service"] = { type = "string", default = "Tomcat10", doc = "the Windows service's name" },
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
      ["tomcat.jdbc_trust"] = { type = "enum", values = { "data-source", "jvm", "server-cert" },
         default = "data-source",
         doc = "where the driver finds the CA: data-source (in the Resource itself: MariaDB serverSslCert = the CA, "
            .. "MySQL trustCertificateKeyStore* = the truststore; a context reload, no JVM restart), jvm (the JVM's "
            .. "truststore, started from the JDK's CAs; Tomcat restarts), server-cert (MariaDB only: serverSslCert)" },
      ["tomcat.reload_timeout"] = { type = "integer", default = 120,
         doc = "seconds to wait for Tomcat to redeploy the context after context.xml changed (autoDeploy)" },
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
   steps = steps,
}
