-- runbooks/app-tomcat.lua: a Tomcat-shaped directory against a TLS sandbox, end to end with the
-- JDBC probe (Debian's MariaDB Connector/J); the Windows layouts, Connector/J 5.1 and 8.x, a
-- context.xml with comments, several Resources and CRLF, and the packaged layouts through plan
-- output and file fixtures, byte for byte.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local E = require "support.engine"
local h = require "support.helpers"
local java = require "support.java"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"
local keystore = require "keystore"
local pki = require "pki"
local xmledit = require "myseal.xmledit"
local tomcat = require "myseal.tomcat"

local FIX = E.FIXTURES .. "/tomcat"
-- a truststore password with what shells, cmd and properties files treat specially
local PASSWORD = [[tr ust'st"ore$%;#\pw]]
local PLAIN_PASSWORD = "changeit-2026"

local function copy(from, to)
   assert(sys.write_file(to, assert(sys.read_file(from)), { mode = sys.stat(from).mode }))
end

local function xmllint(path)
   local r = assert(sys.run{ "xmllint", "--noout", path })
   return r.ok, r.stderr
end

-- What catalina.sh passes to java: setenv.sh sourced whole, CATALINA_OPTS through eval.
local function catalina_opts(setenv)
   local script = '. "$1"\neval "set -- $CATALINA_OPTS"\nfor a do printf "%s\\0" "$a"; done\n'
   local r = assert(sys.run{ "sh", "-c", script, "sh", setenv, env = { CATALINA_BASE = "/nonexistent" } })
   assert(r.ok, r.stderr)
   local out = {}
   for o in r.stdout:gmatch("([^\0]*)\0") do out[#out + 1] = o end
   return out
end

-- Every form the password may take in a file myseal writes.
local function forms(pw)
   return { pw, tomcat.sh_form(pw), tomcat.bat_form(pw), tomcat.properties_form(pw) }
end

-- The lists joined: { "run", ..args.., "--yes" }.
local function cat(...)
   local out = {}
   for _, t in ipairs{ ... } do table.move(t, 1, #t, #out + 1, out) end
   return out
end

-- `sub` is in `text`, as it is (no pattern).
local function has(sub, text)
   assert(text:find(sub, 1, true), ("%q is not in:\n%s"):format(sub, text))
end

local function assert_hidden(text, pw, what)
   for _, f in ipairs(forms(pw)) do
      assert.is_nil(text:find(f, 1, true), ("%s shows the password (as %q)"):format(what, f))
   end
end

describe("app-tomcat runbook", function()
   local s, dir, group, user
   setup(function()
      s = assert(sandbox.start{ name = "spec-app-tomcat", tls = true })
   end)
   teardown(function()
      if s then s:stop() end
   end)
   before_each(function()
      dir = assert(sys.tmpdir("app-tomcat-spec"))
      -- Tomcat's user must be able to reach CATALINA_BASE under it, as on a real host
      assert(sys.chmod(dir, tonumber("755", 8)))
      user, group = sys.user().name, sys.stat(dir).group
   end)
   after_each(function() sys.rmtree(dir) end)

   -- Most specs here are about the JVM's truststore, each layout's way to pass it JVM options:
   -- [tomcat] jdbc_trust = jvm, with the password among the options unless a spec says otherwise.
   -- The default, the data source's own trust, has specs of its own (myseal_default).
   local function myseal_default(argv, env)
      return E.myseal(argv, env)
   end
   local function myseal(argv, env)
      local all = table.concat(argv, " ")
      local extra = {}
      if not all:find("tomcat.jdbc_trust=", 1, true) then table.move({ "--set", "tomcat.jdbc_trust=jvm" }, 1, 2, 1, extra) end
      if not all:find("tomcat.password_in=", 1, true) then
         table.move({ "--set", "tomcat.password_in=jvm-options" }, 1, 2, #extra + 1, extra)
      end
      return E.myseal(cat(argv, extra), env)
   end

   -- a Tomcat-shaped directory: bin/setenv.sh, conf/context.xml (one Resource with
   -- org.mariadb.jdbc.Driver), conf/catalina.properties, lib/ with Debian's Connector/J
   local function linux_tomcat(url_query)
      return h.tomcat_dir(dir .. "/tomcat", { port = s.port, database = "mysql", query = url_query,
         user = s.tcp_user, password = s.tcp_password, comment = "the biobank's database", dirs = { "webapps" },
         setenv = FIX .. "/linux/bin/setenv.sh", properties = FIX .. "/windows/conf/catalina.properties",
         driver = java.driver })
   end

   it("by default lets each Resource trust the CA itself: no truststore, no JVM option, no restart", function()
      local base = linux_tomcat("useUnicode=true")
      local original_setenv = assert(sys.read_file(base .. "/bin/setenv.sh"))
      local args = { "app-tomcat", "--sandbox", s.name, "--set", "tomcat.catalina_base=" .. base,
                     "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.probe=true", "--set",
                     "tomcat.restart_command=touch " .. dir .. "/restarted" }
      local r = myseal_default(cat({ "run" }, args, { "--yes" }), {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      -- the CA where Tomcat's user reads it, beside context.xml; no keystore, no JVM option
      assert.matches("%[1/6%] truststore +changed: " .. base:gsub("%p", "%%%0") .. "/conf/db%-ca%.pem does not hold "
         .. "the database's CA", r.stdout)
      assert.matches("%[2/6%] jvm%-options +skipped", r.stdout)
      assert.matches("%[5/6%] restart +skipped", r.stdout)
      assert.matches("probe jdbc/biobank: OK TLSv1%.[23]", r.stdout)
      local copy = base .. "/conf/db-ca.pem"
      assert.same({ (assert(pki.load_cert(s.tls.ca))):pem() }, { assert(sys.read_file(copy)) })
      assert.equal(tonumber("644", 8), sys.stat(copy).mode)
      assert.truthy(sys.access_as("tomcat", copy, "r"))
      assert.is_nil(sys.stat(base .. "/conf/db-truststore.p12"))
      assert.is_nil(sys.stat(dir .. "/restarted"))   -- the JVM keeps running: Tomcat reloads the context itself
      assert.equal(original_setenv, sys.read_file(base .. "/bin/setenv.sh"))
      local els = assert(xmledit.elements(assert(sys.read_file(base .. "/conf/context.xml"))))
      assert.equal(("jdbc:mariadb://127.0.0.1:%d/mysql?useUnicode=true&useSsl=true&serverSslCert=%s"):format(s.port,
         copy), els[2].attrs.url.value)
      assert.is_true(xmllint(base .. "/conf/context.xml"))
      r = myseal_default(cat({ "run" }, args, { "--yes" }), {})
      assert.matches("run: nothing to do", r.stdout)
   end)

   it("says at once when Tomcat will not redeploy (server.xml autoDeploy=\"false\"), and goes on once it has",
      function()
      local base = linux_tomcat("useUnicode=true")
      -- Debian's server.xml (tomcat10), with the Host's autoDeploy turned off
      local xml = assert(sys.read_file("/usr/share/tomcat10/etc/server.xml"))
      local fixed, n = xml:gsub('autoDeploy="true"', 'autoDeploy="false"')
      assert.equal(1, n)
      h.write(base .. "/conf/server.xml", fixed)
      local why = base .. '/conf/server.xml: Host localhost has autoDeploy="false", so Tomcat does not redeploy the '
         .. "context when context.xml changes and the pools keep their old urls: restart Tomcat (or reload the "
         .. "applications in its manager), "
      local args = { "app-tomcat", "--sandbox", s.name, "--set", "tomcat.catalina_base=" .. base,
                     "--set", "tomcat.ca=" .. s.tls.ca }
      local r = myseal_default(cat({ "plan" }, args), {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("warning: " .. why .. "before TLS is required", r.stdout)
      -- a session of the pool's account, as a running application has: the run stops at the reload
      -- step instead of waiting for a redeploy that will not come
      local mysql = require "mysql"
      local pool = assert(mysql.connect{ host = "127.0.0.1", port = s.port, user = s.tcp_user,
                                         password = s.tcp_password })
      r = myseal_default(cat({ "run" }, args, { "--yes" }), {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      has("step reload (", r.stderr)
      has(why .. "then run myseal again (run --resume, or rollback)", r.stderr)
      -- Tomcat restarted by hand: the old session ends, the new pool connects; the run goes on
      pool:close()
      local new_pool <close> = assert(mysql.connect{ host = "127.0.0.1", port = s.port, user = s.tcp_user,
                                                     password = s.tcp_password })
      r = myseal_default(cat({ "run" }, args, { "--yes", "--resume" }), {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("Tomcat redeployed the context: the pools' 1 old session ended", r.stdout)
      has("the pools connect again: 1 new session", r.stdout)
   end)

   it("by default gives MySQL Connector/J a truststore of its own in the Resource's URL", function()
      local base = dir .. "/mysql"
      for _, d in ipairs{ "conf", "lib" } do assert(sys.mkdir(base .. "/" .. d)) end
      assert(sys.write_file(base .. "/conf/context.xml", [[
<Context>
  <Resource name="jdbc/app" type="javax.sql.DataSource" driverClassName="com.mysql.cj.jdbc.Driver"
            url="jdbc:mysql://db.example:3306/app?useSSL=false" username="app" password="s3cret"/>
</Context>
]]))
      local r = myseal_default({ "plan", "app-tomcat", "--describe", "mysql-8.0", "--set", "tomcat.catalina_base=" .. base,
         "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.driver=mysql-8" },
         { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("%[1/6%] truststore +to do", r.stdout)
      assert.matches("%[2/6%] jvm%-options +skipped", r.stdout)
      has("sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:" .. base
         .. "/conf/db-truststore.p12&trustCertificateKeyStorePassword=***&trustCertificateKeyStoreType=PKCS12", r.stdout)
      assert_hidden(r.stdout .. r.stderr, PLAIN_PASSWORD, "plan")
      -- a password the URL cannot carry as it is: refused, never half in the url
      r = myseal_default({ "plan", "app-tomcat", "--describe", "mysql-8.0", "--set", "tomcat.catalina_base=" .. base,
         "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.driver=mysql-8" },
         { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PASSWORD })
      assert.equal(2, r.status, r.stdout .. r.stderr)
      has("the truststore password goes into the url (trustCertificateKeyStorePassword), where Connector/J reads "
         .. "'&', '#', '%' and '+' as URL syntax: choose a password without them, or set [tomcat] jdbc_trust = jvm\n",
         r.stderr)
      assert_hidden(r.stdout .. r.stderr, PASSWORD, "plan")
   end)

   it("on a Linux layout: the probe connects over verified TLS with what Tomcat would use; "
      .. "a second run has nothing to do; the password is never shown", function()
      local base = linux_tomcat("useUnicode=true&amp;useSsl=false&amp;trustServerCertificate=true")
      local original_setenv = assert(sys.read_file(base .. "/bin/setenv.sh"))
      local original_context = assert(sys.read_file(base .. "/conf/context.xml"))
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PASSWORD }
      local args = { "app-tomcat", "--sandbox", s.name, "--set", "tomcat.catalina_base=" .. base,
                     "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.user=" .. user,
                     "--set", "tomcat.group=" .. group, "--set", "tomcat.probe=true" }

      -- plan: nothing changes, the diff of setenv.sh is there with the password masked
      local before = E.snapshot(dir)
      local r = myseal(cat({ "plan" }, args), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same(before, E.snapshot(dir))
      local out = r.stdout
      assert.matches("%[1/6%] truststore +to do", out)
      assert.matches("create " .. base:gsub("%p", "%%%0") .. "/conf/db%-truststore%.p12 %(0640, " .. user, out)
      assert.matches("'%-Djavax%.net%.ssl%.trustStorePassword=%*%*%*'", out)
      has("warning: jdbc/biobank: removed trustServerCertificate=true: it turns certificate validation off", out)
      assert.matches("%[6/6%] probe +to do: the probe runs after the changes above", out)
      assert_hidden(out .. r.stderr, PASSWORD, "plan")
      -- the application's database password, on the line of the url, is masked in the diff too
      has('password="***"', out)
      assert.is_nil(out:find(s.tcp_password, 1, true))

      -- run, in --json
      r = myseal(cat({ "run" }, args, { "--yes", "--json" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert_hidden(r.stdout .. r.stderr, PASSWORD, "run --json")
      assert.is_nil(r.stdout:find(s.tcp_password, 1, true))
      assert.matches('"message":"probe jdbc/biobank: OK TLSv1%.[23] ', r.stdout)

      -- the truststore: 0640, Tomcat's user, the sandbox's CA
      local store_path = base .. "/conf/db-truststore.p12"
      local st = sys.stat(store_path)
      assert.same({ 416, user, group }, { st.mode, st.user, st.group })
      local store <close> = assert(keystore.open(store_path, { password = PASSWORD }))
      assert.equal("pkcs12", store:type())
      assert.equal(assert(pki.load_cert(s.tls.ca)), store:get("myseal-db-ca"))

      -- setenv.sh: the old lines as they were, then one block; no longer readable by others
      local setenv = assert(sys.read_file(base .. "/bin/setenv.sh"))
      assert.equal(original_setenv, setenv:sub(1, #original_setenv))
      assert.matches("^# BEGIN myseal app%-tomcat: [^\n]*\nCATALINA_OPTS=\"%$CATALINA_OPTS [^\n]*\"\nexport CATALINA_OPTS\n"
         .. "# END myseal app%-tomcat\n$", setenv:sub(#original_setenv + 1))
      assert.equal(416, sys.stat(base .. "/bin/setenv.sh").mode)
      local options = catalina_opts(base .. "/bin/setenv.sh")
      assert.same({ "-Xms256m", "-Xmx1g", "-Djavax.net.ssl.trustStore=" .. store_path,
                    "-Djavax.net.ssl.trustStorePassword=" .. PASSWORD, "-Djavax.net.ssl.trustStoreType=PKCS12" }, options)

      -- context.xml: only the url changed, escaped right, and it parses
      local context = assert(sys.read_file(base .. "/conf/context.xml"))
      assert.equal(original_context:gsub("useSsl=false&amp;trustServerCertificate=true", "useSsl=true"), context)
      assert.is_true(xmllint(base .. "/conf/context.xml"))
      local url = assert(xmledit.get(context, { element = "Resource", attribute = "url" }))
      assert.equal(("jdbc:mariadb://127.0.0.1:%d/mysql?useUnicode=true&useSsl=true"):format(s.port), url)

      -- what Tomcat would start with connects over verified TLS ...
      local ok, probe = java.probe(url, s.tcp_user, s.tcp_password, options)
      assert.is_true(ok, probe)
      assert.matches("^OK TLSv1%.[23] ", probe)
      -- ... and the same options and URL refuse a server whose certificate another CA signed
      local other <close> = assert(sandbox.start{ name = "spec-app-tomcat-other", tls = true })
      ok, probe = java.probe(url:gsub(":" .. s.port .. "/", ":" .. other.port .. "/"), other.tcp_user, other.tcp_password,
         options)
      assert.is_false(ok)
      assert.matches("^FAIL .*PKIX path building failed", probe)

      -- a second run: nothing to do, nothing written
      local snap = E.snapshot(base)
      r = myseal(cat({ "run" }, args, { "--yes" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("%[6/6%] probe +already done", r.stdout)
      assert.matches("run: nothing to do; every step was already done", r.stdout)
      assert.same(snap, E.snapshot(base))

      -- the journals hold no password either
      for _, j in ipairs(E.journals(target.state_root(), "sandbox-" .. s.name, "app-tomcat")) do
         assert_hidden(assert(sys.read_file(j)), PASSWORD, j)
      end
   end)

   it("updates an existing truststore, keeping its entries and its type; the password goes to catalina.properties "
      .. "on request; the probe fails clearly when the CA is wrong", function()
      local base = linux_tomcat("useSsl=true")
      local store_path = dir .. "/site-trust.jks"
      local other_ca = assert(pki.self_signed{ key = pki.genkey{ type = "ec" }, subject = "/CN=Site Root" })
      local old = keystore.new{ type = "jks" }
      assert(old:add_trusted("site-root", other_ca))
      assert(old:save(store_path, { password = PLAIN_PASSWORD }))
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD }
      local args = { "app-tomcat", "--sandbox", s.name, "--yes", "--set", "tomcat.catalina_base=" .. base,
                     "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.user=" .. user, "--set", "tomcat.group=" .. group,
                     "--set", "tomcat.truststore=" .. store_path, "--set", "tomcat.password_in=catalina.properties",
                     "--set", "tomcat.probe=true" }
      local r = myseal(cat({ "run" }, args), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("warning: " .. store_path:gsub("%p", "%%%0") .. " is a jks store and stays one", r.stdout)
      local store <close> = assert(keystore.open(store_path, { password = PLAIN_PASSWORD }))
      assert.equal("jks", store:type())
      assert.same({ "site-root", "myseal-db-ca" }, store:aliases())
      -- no password in setenv.sh; catalina.properties has it, closed to others
      local setenv = assert(sys.read_file(base .. "/bin/setenv.sh"))
      assert.is_nil(setenv:find(PLAIN_PASSWORD, 1, true))
      assert.matches("%-Djavax%.net%.ssl%.trustStoreType=JKS\"", setenv)
      local props = assert(sys.read_file(base .. "/conf/catalina.properties"))
      assert.matches("\r\n# BEGIN myseal app%-tomcat: [^\r]*\r\njavax%.net%.ssl%.trustStorePassword=changeit%-2026\r\n"
         .. "# END myseal app%-tomcat\r\n$", props)
      assert.equal(416, sys.stat(base .. "/conf/catalina.properties").mode)
      assert.matches("probe jdbc/biobank: OK TLSv1%.[23]", r.stdout)

      -- a CA that did not sign the server's certificate: the probe step fails and says why
      local wrong = h.write(dir .. "/wrong-ca.pem", other_ca:pem())
      local wrong_args = cat(args, { "--set", "tomcat.ca=" .. wrong, "--set", "tomcat.truststore=" .. dir .. "/wrong.p12" })
      r = myseal(cat({ "run" }, wrong_args), env)
      assert.equal(1, r.status)
      assert.matches("myseal: runbook app%-tomcat, step probe %(.-%): the JDBC probe failed for jdbc/biobank: FAIL "
         .. ".*PKIX path building failed", r.stderr)
      -- put it back for the next test (a failed run would make the next one refuse)
      r = myseal(cat({ "rollback" }, wrong_args), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.equal(setenv, sys.read_file(base .. "/bin/setenv.sh"))
      assert.is_nil(sys.stat(dir .. "/wrong.p12"))
   end)

   it("makes the JVM's truststore from the JDK's CAs when the JDK already trusts the database's CA", function()
      local base = linux_tomcat("useSsl=true")
      -- a JDK cacerts made by keytool that holds the sandbox's CA among others
      local cacerts = dir .. "/cacerts"
      local site_root = h.write(dir .. "/site-root.pem",
         assert(pki.self_signed{ key = pki.genkey{ type = "ec" }, subject = "/CN=Site Root" }):pem())
      for alias, file in pairs{ ["db-ca"] = s.tls.ca, ["site-root"] = site_root } do
         local r = assert(sys.run{ "keytool", "-importcert", "-noprompt", "-alias", alias, "-file", file,
                                   "-keystore", cacerts, "-storetype", "pkcs12", "-storepass", "changeit" })
         assert(r.ok, r.stderr)
      end
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD }
      local args = { "app-tomcat", "--sandbox", s.name, "--yes", "--only", "truststore",
                     "--set", "tomcat.catalina_base=" .. base, "--set", "tomcat.ca=" .. s.tls.ca,
                     "--set", "tomcat.user=" .. user, "--set", "tomcat.group=" .. group,
                     "--set", "tomcat.jdk_cacerts=" .. cacerts }
      local r = myseal(cat({ "run" }, args), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("the truststore starts with the 2 CAs of " .. cacerts, r.stdout)
      local store_path = base .. "/conf/db-truststore.p12"
      assert.equal(416, sys.stat(store_path).mode)
      local store <close> = assert(keystore.open(store_path, { password = PLAIN_PASSWORD }))
      local aliases = store:aliases()
      table.sort(aliases)
      assert.same({ "db-ca", "site-root" }, aliases)
      r = myseal(cat({ "run" }, args), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("%[1/1%] truststore +already done", r.stdout)
   end)

   -- the Windows fixture, copied: bin/setenv.bat, conf/context.xml, conf/catalina.properties (all
   -- CRLF) and lib/ with a MariaDB Connector/J 3 "jar" (its class paths are what tells it apart)
   local function windows_tomcat()
      local base = dir .. "/wintomcat"
      for _, d in ipairs{ "bin", "conf", "lib" } do assert(sys.mkdir(base .. "/" .. d)) end
      copy(FIX .. "/windows/bin/setenv.bat", base .. "/bin/setenv.bat")
      for _, f in ipairs{ "context.xml", "catalina.properties" } do copy(FIX .. "/windows/conf/" .. f, base .. "/conf/" .. f) end
      assert(sys.write_file(base .. "/lib/mariadb-java-client-3.3.3.jar", "PK\3\4 org/mariadb/jdbc/client/Client.class"))
      return base
   end

   -- The fixture's context.xml with each Resource's url as the runbook makes it: nothing else changes.
   local function expected_context(original)
      local out = original
      for _, sub in ipairs{
         { "lims?useUnicode=true&characterEncoding=UTF-8&useSSL=false",
           "lims?useUnicode=true&amp;characterEncoding=UTF-8&amp;useSSL=true&amp;requireSSL=true&amp;verifyServerCertificate=true" },
         { "biobank?sslMode=DISABLED&amp;", "biobank?sslMode=VERIFY_IDENTITY&amp;" },
         { "reports?sslMode=REQUIRED&amp;", "reports?sslMode=verify-full&amp;" } } do
         local at = assert(out:find(sub[1], 1, true))
         out = out:sub(1, at - 1) .. sub[2] .. out:sub(at + #sub[1])
      end
      return out
   end

   it("on Windows run from scripts: a CRLF block in setenv.bat, and each Resource of a context.xml with comments "
      .. "and CRLF gets its driver's properties (5.1, 8.x, MariaDB 3), byte for byte", function()
      local base = windows_tomcat()
      local old_setenv = assert(sys.read_file(base .. "/bin/setenv.bat"))
      local old_context = assert(sys.read_file(base .. "/conf/context.xml"))
      local old_props = assert(sys.read_file(base .. "/conf/catalina.properties"))
      assert.is_false(xmllint(base .. "/conf/context.xml"))   -- a bare '&' (pitfall 15)
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD }
      local args = { "app-tomcat", "--sandbox", s.name, "--set", "tomcat.layout=windows-scripts",
                     "--set", "tomcat.catalina_base=" .. base, "--set", "tomcat.ca=" .. s.tls.ca,
                     "--set", "tomcat.restart_command=touch '" .. dir .. "/restarted'" }
      local r = myseal(cat({ "run" }, args, { "--yes" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(sys.stat(dir .. "/restarted"))
      assert(os.remove(dir .. "/restarted"))
      assert.matches("warning: " .. base:gsub("%p", "%%%0") .. "/bin/setenv%.bat:5 sets javax%.net%.ssl%.trustStore "
         .. "options too; CATALINA_OPTS comes last on the java command line, so the block's win", r.stdout)
      has("warning: jdbc/lims: Connector/J 5.1 checks the certificate chain but not the host name", r.stdout)
      has("warning: jdbc/lims: its url had a bare '&', an XML error that stops the context from loading", r.stdout)
      has("warning: jdbc/reports: sslMode=REQUIRED on MariaDB Connector/J 3 is 'trust': encryption "
         .. "without any certificate validation; now verify-full", r.stdout)
      assert.equal(old_setenv .. "rem BEGIN myseal app-tomcat: the JVM trusts the database server's CA (written by "
         .. "myseal; edits here are replaced)\r\n"
         .. 'set "CATALINA_OPTS=%CATALINA_OPTS% -Djavax.net.ssl.trustStore=' .. base .. "/conf/db-truststore.p12 "
         .. "-Djavax.net.ssl.trustStorePassword=" .. PLAIN_PASSWORD .. ' -Djavax.net.ssl.trustStoreType=PKCS12"\r\n'
         .. "rem END myseal app-tomcat\r\n", sys.read_file(base .. "/bin/setenv.bat"))
      assert.equal(expected_context(old_context), sys.read_file(base .. "/conf/context.xml"))
      assert.is_true(xmllint(base .. "/conf/context.xml"))
      assert.equal(old_props, sys.read_file(base .. "/conf/catalina.properties"))
      -- again: nothing to do, and no restart
      r = myseal(cat({ "run" }, args, { "--yes" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      assert.is_nil(sys.stat(dir .. "/restarted"))
   end)

   it("plans setenv.bat with Windows paths, a password that cmd must not read, and the Resources named", function()
      local base = windows_tomcat()
      local pw = "50% off&on ^x"
      local r = myseal({ "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.layout=windows-scripts",
         "--set", "tomcat.catalina_base=C:\\Tomcat 9", "--set", "tomcat.setenv=" .. base .. "/bin/setenv.bat",
         "--set", "tomcat.context_xml=" .. base .. "/conf/context.xml", "--set", "tomcat.resources=jdbc/biobank",
         "--set", "tomcat.ca=" .. s.tls.ca }, { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = pw })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has('create C:\\Tomcat 9\\conf\\db-truststore.p12\n', r.stdout)
      has('+set "CATALINA_OPTS=%CATALINA_OPTS% "-Djavax.net.ssl.trustStore=C:\\Tomcat 9\\conf\\'
         .. 'db-truststore.p12" "-Djavax.net.ssl.trustStorePassword=***" -Djavax.net.ssl.trustStoreType=PKCS12"',
         r.stdout)
      has("restart Tomcat for the changes to take effect: C:\\Tomcat 9\\bin\\shutdown.bat, then "
         .. "C:\\Tomcat 9\\bin\\startup.bat", r.stdout)
      has("to do: to change: jdbc/biobank\n", r.stdout)
      assert.is_nil(r.stdout:find("jdbc/lims", 1, true))
      assert_hidden(r.stdout .. r.stderr, pw, "plan")
   end)

   it("plans the Windows service: procrun gets the password in its environment, never on its command line", function()
      local base = windows_tomcat()
      local pw = "svc pw;#%&x"
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = pw }
      local args = { "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.layout=windows-service",
         "--set", "tomcat.context_xml=" .. base .. "/conf/context.xml", "--set", "tomcat.ca=" .. s.tls.ca,
         "--set", "tomcat.driver_jar=" .. base .. "/lib/mariadb-java-client-3.3.3.jar" }
      local r = myseal(cat(args, { "--set", "tomcat.catalina_base=C:\\Tomcat" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local out = r.stdout
      has("run: 'C:\\Tomcat\\bin\\Tomcat10.exe' //US//Tomcat10\n", out)
      has("with PR_JVMOPTIONS=-Djavax.net.ssl.trustStore=C:\\Tomcat\\conf\\db-truststore.p12;"
         .. "'-Djavax.net.ssl.trustStorePassword=***';-Djavax.net.ssl.trustStoreType=PKCS12 in its environment", out)
      has("warning: service Tomcat10 keeps these options in the registry (HKLM\\SOFTWARE\\Apache Software "
         .. "Foundation\\Procrun 2.0\\Tomcat10\\Parameters\\Java, value Options), which local users can usually read",
         out)
      has("net stop Tomcat10, then net start Tomcat10", out)
      assert_hidden(out .. r.stderr, pw, "plan")
      -- in --json the command's argv is all there is of it
      r = myseal(cat(args, { "--set", "tomcat.catalina_base=C:\\Tomcat", "--json" }), env)
      assert.equal(0, r.status, r.stderr)
      local runs = {}
      for line in r.stdout:gmatch("[^\n]+") do
         local ev = assert(require("myseal.json").decode(line))
         if ev.kind == "run" then runs[#runs + 1] = ev.argv end
      end
      assert.same({ { "C:\\Tomcat\\bin\\Tomcat10.exe", "//US//Tomcat10" } }, runs)
      assert_hidden(r.stdout, pw, "plan --json")
      -- procrun would read a quote as quoting, setenv.bat's cmd a double quote: bad input, masked
      for _, layout in ipairs{ "windows-service", "windows-scripts" } do
         r = myseal(cat(args, { "--set", "tomcat.catalina_base=C:\\Tomcat", "--set", "tomcat.layout=" .. layout,
            "--set", "tomcat.setenv=" .. base .. "/bin/setenv.bat" }), { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = 'a"b' })
         assert.equal(2, r.status, r.stdout .. r.stderr)
         has(layout == "windows-service" and "procrun reads quotes as quoting: an option cannot hold one: "
            .. "-Djavax.net.ssl.trustStorePassword=***\n" or base .. "/bin/setenv.bat: an option for setenv.bat cannot "
            .. "hold a double quote: -Djavax.net.ssl.trustStorePassword=***\n", r.stderr)
         assert_hidden(r.stdout .. r.stderr, 'a"b', "plan")
      end

      -- the password in catalina.properties instead: the options go on the command line, the password in the file
      r = myseal(cat(args, { "--set", "tomcat.catalina_base=" .. base, "--set", "tomcat.password_in=catalina.properties",
         "--set", "tomcat.service_exe=C:\\Tomcat\\bin\\Tomcat10.exe" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("run: 'C:\\Tomcat\\bin\\Tomcat10.exe' //US//Tomcat10 ++JvmOptions=-Djavax.net.ssl.trustStore="
         .. base .. "/conf/db-truststore.p12;-Djavax.net.ssl.trustStoreType=PKCS12\n", r.stdout)
      has("+javax.net.ssl.trustStorePassword=***", r.stdout)
      assert.is_nil(r.stdout:find("PR_JVMOPTIONS", 1, true))
      has("warning: " .. base .. "/bin/setenv.bat is not read by the Windows service, only by catalina.bat", r.stdout)
      assert_hidden(r.stdout .. r.stderr, pw, "plan")
   end)

   it("edits CATALINA_HOME's setenv.sh when CATALINA_BASE has none (a new one would hide it), "
      .. "and says how to restart", function()
      local home, base = dir .. "/home", dir .. "/base"
      assert(sys.mkdir(home .. "/bin"))
      assert(sys.mkdir(base .. "/conf"))
      copy(FIX .. "/linux/bin/setenv.sh", home .. "/bin/setenv.sh")
      copy(FIX .. "/windows/conf/context.xml", base .. "/conf/context.xml")
      local r = myseal({ "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.catalina_base=" .. base,
         "--set", "tomcat.catalina_home=" .. home, "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.driver=mysql-8",
         "--set", "tomcat.layout=linux" }, { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("write " .. home .. "/bin/setenv.sh (0640, :tomcat)", r.stdout)
      has("warning: restart Tomcat for the changes to take effect: " .. home .. "/bin/shutdown.sh, then "
         .. home .. "/bin/startup.sh ([tomcat] restart_command would do it)", r.stdout)
      -- [tomcat] driver for every Resource: the 5.1 and MariaDB ones get sslMode=VERIFY_IDENTITY too
      has("jdbc/lims (MySQL Connector/J 8.x): jdbc:mysql://db.example:3306/lims?useUnicode=true"
         .. "&characterEncoding=UTF-8&sslMode=VERIFY_IDENTITY", r.stdout)
   end)

   it("plans packaged Tomcat: Debian's and RHEL's defaults files", function()
      local base = windows_tomcat()
      copy(FIX .. "/debian/tomcat9", dir .. "/default-tomcat9")
      copy(FIX .. "/rhel/tomcat.conf", dir .. "/tomcat.conf")
      local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD }
      local common = { "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.ca=" .. s.tls.ca,
                       "--set", "tomcat.context_xml=" .. base .. "/conf/context.xml", "--only", "jvm-options" }
      local r = myseal(cat(common, { "--set", "tomcat.layout=debian", "--set", "tomcat.catalina_base=/var/lib/tomcat9",
         "--set", "tomcat.defaults_file=" .. dir .. "/default-tomcat9" }), env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("write " .. dir .. "/default-tomcat9 (0640, :tomcat)", r.stdout)
      has('\n        +CATALINA_OPTS="$CATALINA_OPTS -Djavax.net.ssl.trustStore=/var/lib/tomcat9/conf/'
         .. 'db-truststore.p12 -Djavax.net.ssl.trustStorePassword=*** -Djavax.net.ssl.trustStoreType=PKCS12"\n'
         .. "        +export CATALINA_OPTS\n", r.stdout)

      local rhel = cat(common, { "--set", "tomcat.layout=rhel", "--set", "tomcat.catalina_base=/usr/share/tomcat",
         "--set", "tomcat.defaults_file=" .. dir .. "/tomcat.conf" })
      r = myseal(rhel, env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("\n        +CATALINA_OPTS='-Djavax.net.ssl.trustStore=/usr/share/tomcat/conf/db-truststore.p12 "
         .. "-Djavax.net.ssl.trustStorePassword=*** -Djavax.net.ssl.trustStoreType=PKCS12'\n", r.stdout)
      assert.is_nil(r.stdout:find("export", 1, true))
      -- systemd reads it without $VAR expansion: a password a shell would read differently is refused, masked
      r = myseal(rhel, { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = "a b$c" })
      assert.equal(2, r.status)
      has("cannot hold spaces, quotes, '\\', '$' or '`': -Djavax.net.ssl.trustStorePassword=***\n",
         r.stderr)
      -- and another CATALINA_OPTS line cannot be added to
      assert(sys.write_file(dir .. "/tomcat.conf", assert(sys.read_file(dir .. "/tomcat.conf")) .. 'CATALINA_OPTS="-Xmx2g"\n'))
      r = myseal(rhel, env)
      assert.equal(1, r.status)
      has(dir .. "/tomcat.conf sets CATALINA_OPTS on line 9 too: systemd reads this file as an "
         .. "EnvironmentFile, without $VAR expansion", r.stderr)
   end)

   it("takes a context.xml that is wrong, or a Resource myseal cannot change, as bad input: exit 2, file and line",
      function()
      local base = dir .. "/bad"
      assert(sys.mkdir(base .. "/conf"))
      local path = base .. "/conf/context.xml"
      local cases = {
         { '<Context>\n  <Resource name="a" url="jdbc:mariadb://db/app"\n</Context>\n', {},
           path .. ":2: <Resource>: bad attribute" },
         { '<Context>\n  <Resource name="a" driverClassName="org.mariadb.jdbc.Driver"/>\n</Context>\n',
           { "--set", "tomcat.resources=a" }, path .. ':2: <Resource name="a"> has no url' },
         { '<Context>\n  <Resource name="pg" url="jdbc:postgresql://db/app"/>\n</Context>\n', {},
           path .. ": no <Resource> with a jdbc:mysql: or jdbc:mariadb: url" },
         { '<Context>\n  <Resource name="pg" url="jdbc:postgresql://db/app"/>\n</Context>\n',
           { "--set", "tomcat.resources=pg", "--set", "tomcat.driver=mariadb-3" },
           path .. ':2: <Resource name="pg">: its url is not jdbc:mysql: or jdbc:mariadb: (another database\'s?)' },
         { '<Context>\n  <Resource name="a" url="jdbc:mariadb://db/app"/>\n</Context>\n',
           { "--set", "tomcat.resources=b" }, path .. ': no <Resource name="b">' },
         { '<Context>\n  <Resource name="a" url="jdbc:mysql://db/app"/>\n</Context>\n', {},
           path .. ':2: <Resource name="a">: driverClassName is missing, so the driver is not a MySQL or MariaDB '
              .. "driver: set [tomcat] driver" },
         { '<Context>\n  <Resource name="a" url="jdbc:mysql://db/app"/>\n</Context>\n',
           { "--set", "tomcat.driver=mysql-8", "--set", "tomcat.jdbc_trust=server-cert" },
           "MySQL Connector/J 8.x has no serverSslCert: set [tomcat] jdbc_trust = data-source or jvm" },
         { '<Context>\n  <Resource name="a" url="jdbc:mariadb://db/app"/>\n  <Resource name="a" '
              .. 'url="jdbc:mariadb://db/app2"/>\n</Context>\n', { "--set", "tomcat.driver=mariadb-3" },
           path .. ':3: <Resource name="a"> again (line 2): give each Resource a name of its own' },
         { '<Context>\n  <Resource url="jdbc:mariadb://db/app?password=s3cr3t"/>\n  <Resource '
              .. 'url="jdbc:mariadb://db/app?password=s3cr3t"/>\n</Context>\n', { "--set", "tomcat.driver=mariadb-3" },
           path .. ':3: <Resource url="jdbc:mariadb://db/app?password=***"> again (line 2): give each Resource a name '
              .. "of its own" },
      }
      for _, c in ipairs(cases) do
         assert(sys.write_file(path, c[1]))
         local r = myseal_default(cat({ "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set",
            "tomcat.catalina_base=" .. base, "--set", "tomcat.ca=" .. s.tls.ca }, c[2]),
            { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD })
         assert.equal(2, r.status, c[3] .. "\n" .. r.stdout .. r.stderr)
         has(c[3] .. "\n", r.stderr)
      end
   end)

   it("leaves a private key under the truststore alias alone and says which alias to set instead", function()
      local base = dir .. "/keyed"
      assert(sys.mkdir(base .. "/conf"))
      h.write(base .. "/conf/context.xml", '<Context>\n  <Resource name="jdbc/app" url="jdbc:mysql://db/app" '
         .. 'driverClassName="com.mysql.cj.jdbc.Driver"/>\n</Context>\n')
      -- a JKS store (keytool's) whose myseal-db-ca alias is a key pair, not a CA
      local store = base .. "/conf/db-truststore.jks"
      local r = assert(sys.run{ "keytool", "-genkeypair", "-alias", "myseal-db-ca", "-keyalg", "EC", "-dname", "CN=app",
                                "-keystore", store, "-storetype", "JKS", "-storepass", PLAIN_PASSWORD })
      assert(r.ok, r.stderr)
      local before = assert(sys.read_file(store))
      r = myseal_default({ "plan", "app-tomcat", "--describe", "mysql-8.0", "--set", "tomcat.catalina_base=" .. base,
         "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.truststore=" .. store },
         { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD })
      assert.equal(2, r.status, r.stdout .. r.stderr)
      has(store .. ": alias myseal-db-ca holds a key entry, not a trusted certificate, and myseal replaces none: "
         .. "set [tomcat] truststore_alias to another alias\n", r.stderr)
      assert.equal(before, sys.read_file(store))
   end)

   it("never shows a database password written before the url's '?' (Connector/J 8's user:password@host forms)",
      function()
      local base = dir .. "/userinfo"
      assert(sys.mkdir(base .. "/conf"))
      h.write(base .. "/conf/context.xml", '<Context>\n'
         .. '  <Resource name="jdbc/a" url="jdbc:mysql://app:Sup3r&amp;Secret@db:3306/app"/>\n'
         .. '  <Resource name="jdbc/b" url="jdbc:mysql://address=(host=db)(user=app)(password=Other5ecret)/app"/>\n'
         .. '  <Resource name="jdbc/c" url="jdbc:mysql://(host=db,user=app,Password=Th1rd)/app"/>\n</Context>\n')
      local r = myseal({ "plan", "app-tomcat", "--describe", "mysql-8.0", "--set", "tomcat.catalina_base=" .. base,
         "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.driver=mysql-8" },
         { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = PLAIN_PASSWORD })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      has("jdbc/a (MySQL Connector/J 8.x): jdbc:mysql://app:***@db:3306/app?sslMode=VERIFY_IDENTITY\n", r.stdout)
      has('+  <Resource name="jdbc/a" url="jdbc:mysql://app:***@db:3306/app?sslMode=VERIFY_IDENTITY"/>', r.stdout)
      has("jdbc:mysql://address=(host=db)(user=app)(password=***)/app?sslMode=VERIFY_IDENTITY\n", r.stdout)
      has("jdbc:mysql://(host=db,user=app,Password=***)/app?sslMode=VERIFY_IDENTITY\n", r.stdout)
      for _, pw in ipairs{ "Sup3r", "Secret", "Other5ecret", "Th1rd" } do assert_hidden(r.stdout .. r.stderr, pw, "plan") end
   end)

   it("runs the JDBC probe with nothing secret in its argv or environment, the url included", function()
      local jdbcprobe = require "myseal.jdbcprobe"
      local started = {}
      local function run(argv)
         started[#started + 1] = argv
         return sys.run(argv)
      end
      -- MariaDB Connector/J takes the account in the url too
      local url = ("jdbc:mariadb://127.0.0.1:%d/mysql?user=%s&password=%s&useSsl=true&serverSslCert=%s"):format(
         s.port, s.tcp_user, s.tcp_password, s.tls.ca)
      local ok, out = jdbcprobe.run{ classes = java.classes(), driver_jar = java.driver, url = url, run = run,
                                     options = { "-Djavax.net.ssl.trustStorePassword=" .. PASSWORD } }
      assert.is_true(ok, out)
      assert.matches("^OK TLSv1%.[23]", out)
      assert.equal(1, #started)
      for _, secret in ipairs{ s.tcp_password, PASSWORD } do
         for _, a in ipairs(started[1]) do assert.is_nil(a:find(secret, 1, true), a) end
         for k, v in pairs(started[1].env or {}) do assert.is_nil(v:find(secret, 1, true), k) end
      end
   end)

   it("with jdbc_trust = server-cert, stops before a url names a CA that Tomcat's user cannot read", function()
      local base = dir .. "/server-cert"
      assert(sys.mkdir(base .. "/conf"))
      h.write(base .. "/conf/context.xml", '<Context>\n  <Resource name="jdbc/a" url="jdbc:mariadb://db/app" '
         .. 'driverClassName="org.mariadb.jdbc.Driver"/>\n</Context>\n')
      local context = assert(sys.read_file(base .. "/conf/context.xml"))
      -- the CA where in-transit keeps it: a directory only root enters
      assert(sys.mkdir(dir .. "/tls", tonumber("700", 8)))
      copy(s.tls.ca, dir .. "/tls/ca.pem")
      local r = myseal_default({ "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.catalina_base="
         .. base, "--set", "tomcat.ca=" .. dir .. "/tls/ca.pem", "--set", "tomcat.jdbc_trust=server-cert",
         "--set", "tomcat.driver=mariadb-3" }, {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      has("step jdbc-url (", r.stderr)
      has(dir .. "/tls/ca.pem: Tomcat's user must read it: tomcat cannot reach " .. dir .. "/tls/ca.pem: it may not "
         .. "enter " .. dir .. "/tls (Permission denied)\n", r.stderr)
      assert.equal(context, sys.read_file(base .. "/conf/context.xml"))
   end)

   it("without [tomcat] ca, names the CA it looked for where in-transit keeps it", function()
      local base = dir .. "/no-ca"
      assert(sys.mkdir(base .. "/conf"))
      h.write(base .. "/conf/context.xml", '<Context>\n  <Resource name="jdbc/a" url="jdbc:mariadb://db/app"/>\n'
         .. '</Context>\n')
      local r = myseal_default({ "plan", "app-tomcat", "--describe", "mariadb-10.11", "--set", "tomcat.catalina_base="
         .. base, "--set", "pki.dir=" .. dir .. "/no-tls", "--set", "tomcat.driver=mariadb-3" }, {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      has("the database's CA (the one in-transit makes; [tomcat] ca names another): " .. dir .. "/no-tls/ca.pem: "
         .. "No such file or directory\n", r.stderr)
   end)

   it("probes with [tomcat] probe_password given on --secrets-stdin, not the Resource's password", function()
      local base = h.tomcat_dir(dir .. "/tomcat", { port = s.port, database = "mysql", user = s.tcp_user,
         password = "not-the-password", driver = java.driver })
      local r = E.myseal({ "run", "app-tomcat", "--sandbox", s.name, "--yes", "--secrets-stdin",
         "--set", "tomcat.catalina_base=" .. base, "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.probe=true" },
         {}, ('{"tomcat.probe_password": "%s"}'):format(s.tcp_password))
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("probe jdbc/biobank: OK TLSv1%.[23]", r.stdout)
      assert_hidden(r.stdout .. r.stderr, s.tcp_password, "run")
   end)
end)
