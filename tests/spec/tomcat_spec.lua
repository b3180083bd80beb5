-- myseal.tomcat: driver detection, URL properties per driver, managed blocks and the quoting of
-- JVM options for sh (through catalina.sh's eval), cmd, procrun and properties files.
local tomcat = require "myseal.tomcat"
local jdbcurl = require "myseal.jdbcurl"
local sys = require "sys"

-- A password with every character the quoting must survive.
local NASTY = [[p a'ss"w$rd`%;#\x!&|<>^=:]]

-- What `eval` makes of CATALINA_OPTS after the lines are sourced, as catalina.sh does.
local function eval_sh(lines)
   local script = "CATALINA_OPTS=\n" .. table.concat(lines, "\n")
      .. '\neval "set -- $CATALINA_OPTS"\nfor a do printf "%s\\0" "$a"; done\n'
   local r = assert(sys.run{ "sh", "-s", stdin = script })
   assert(r.ok, r.stderr)
   local out = {}
   for o in r.stdout:gmatch("([^\0]*)\0") do out[#out + 1] = o end
   return out
end

local BLOCK = { begin = "# BEGIN myseal app-tomcat", finish = "# END myseal app-tomcat", title = ": managed" }

local function block(text, lines, extra)
   local opts = { lines = lines }
   for k, v in pairs(BLOCK) do opts[k] = v end
   for k, v in pairs(extra or {}) do opts[k] = v end
   return tomcat.block(text, opts)
end

describe("tomcat", function()
   it("tells the drivers apart by driverClassName and the classes in the jars", function()
      assert.equal("mysql-8", tomcat.jar_driver("PK...com/mysql/cj/jdbc/Driver.class...com/mysql/jdbc/Driver.class"))
      assert.equal("mysql-5.1", tomcat.jar_driver("PK...com/mysql/jdbc/Driver.class"))
      assert.equal("mariadb-3", tomcat.jar_driver("PK...org/mariadb/jdbc/client/Client.class"))
      assert.equal("mariadb-2", tomcat.jar_driver(assert(sys.read_file("/usr/share/java/mariadb-java-client.jar"))))
      assert.is_nil(tomcat.jar_driver("PK...org/postgresql/Driver.class"))

      local m8 = { { path = "lib/mysql-connector-j-8.4.0.jar", driver = "mysql-8" } }
      assert.equal("mysql-8", tomcat.detect_driver("com.mysql.cj.jdbc.Driver", {}))
      assert.equal("mysql-5.1", tomcat.detect_driver("com.mysql.jdbc.Driver", {}))
      assert.equal("mysql-8", tomcat.detect_driver("com.mysql.jdbc.Driver", m8))   -- 8.x's deprecated alias
      local m2, m3 = { path = "a.jar", driver = "mariadb-2" }, { path = "b.jar", driver = "mariadb-3" }
      assert.equal("mariadb-2", tomcat.detect_driver("org.mariadb.jdbc.Driver", { m2 }))
      assert.equal("mariadb-3", tomcat.detect_driver("org.mariadb.jdbc.Driver", { m3 }))
      assert.equal("which MariaDB Connector/J is it? No mariadb-java-client jar was found: set [tomcat] driver "
         .. "= mariadb-2 or mariadb-3 (or [tomcat] driver_jar)",
         select(2, tomcat.detect_driver("org.mariadb.jdbc.Driver", {})))
      assert.equal("both MariaDB Connector/J 2 (a.jar) and 3 (b.jar) are there: set [tomcat] driver",
         select(2, tomcat.detect_driver("org.mariadb.jdbc.Driver", { m2, m3 })))
      assert.equal("driverClassName 'org.postgresql.Driver' is not a MySQL or MariaDB driver: set [tomcat] driver",
         select(2, tomcat.detect_driver("org.postgresql.Driver", {})))
      assert.equal("driverClassName is missing, so the driver is not a MySQL or MariaDB driver: set [tomcat] driver",
         select(2, tomcat.detect_driver(nil, {})))
   end)

   it("makes each driver require TLS and verify the server, and drops what undoes it", function()
      local function edit(driver, url, o)
         local spec = assert(tomcat.url_spec(driver, o or { verify = "identity", trust = "jvm" }))
         return (jdbcurl.edit(url, spec))
      end
      assert.equal("jdbc:mysql://db/app?useUnicode=true&useSSL=true&requireSSL=true&verifyServerCertificate=true",
         edit("mysql-5.1", "jdbc:mysql://db/app?useUnicode=true&useSSL=false&trustCertificateKeyStoreUrl=file:/x"))
      assert.equal("jdbc:mysql://db/app?allowPublicKeyRetrieval=true&sslMode=VERIFY_IDENTITY",
         edit("mysql-8", "jdbc:mysql://db/app?useSSL=true&allowPublicKeyRetrieval=true&sslMode=DISABLED"
            .. "&requireSSL=true"))
      assert.equal("jdbc:mysql://db/app?sslMode=VERIFY_CA",
         edit("mysql-8", "jdbc:mysql://db/app", { verify = "ca", trust = "jvm" }))
      assert.equal("jdbc:mariadb://db/app?useSsl=true",
         edit("mariadb-2", "jdbc:mariadb://db/app?useSSL=false&trustServerCertificate=true"
            .. "&disableSslHostnameVerification=true"))
      assert.equal("jdbc:mariadb://db/app?useSsl=true&disableSslHostnameVerification=true",
         edit("mariadb-2", "jdbc:mariadb://db/app", { verify = "ca", trust = "jvm" }))
      assert.equal("jdbc:mariadb://db/app?useSsl=true&serverSslCert=/etc/mysql/tls/ca.pem",
         edit("mariadb-2", "jdbc:mariadb://db/app", { verify = "identity", trust = "server-cert",
                                                      server_cert = "/etc/mysql/tls/ca.pem" }))
      assert.equal("jdbc:mariadb://db/app?sslMode=verify-full",
         edit("mariadb-3", "jdbc:mariadb://db/app?sslMode=REQUIRED&useSsl=true&serverSslCert=/old.pem"))
      assert.equal("jdbc:mariadb://db/app?sslMode=verify-ca", edit("mariadb-3", "jdbc:mariadb://db/app",
         { verify = "ca", trust = "jvm" }))
      assert.equal("MySQL Connector/J 8.x has no serverSslCert: set [tomcat] jdbc_trust = data-source or jvm",
         select(2, tomcat.url_spec("mysql-8", { trust = "server-cert", server_cert = "/ca.pem" })))
      assert.equal("serverSslCert needs a CA file path without spaces, '&', '?' or '#' (/my ca.pem)",
         select(2, tomcat.url_spec("mariadb-3", { trust = "server-cert", server_cert = "/my ca.pem" })))
      local store = { url = "file:/tomcat/conf/db-truststore.p12", password = "a&b", type = "PKCS12" }
      for _, pw in ipairs{ "a&b", "a#b", "a%41", "a+b" } do
         store.password = pw
         assert.equal("the truststore password goes into the url (trustCertificateKeyStorePassword), where "
            .. "Connector/J reads '&', '#', '%' and '+' as URL syntax: choose a password without them, "
            .. "or set [tomcat] jdbc_trust = jvm", select(2, tomcat.url_spec("mysql-8", { trust = "data-source",
            store = store })))
      end
      store.password, store.url = [[tr'"<$;\pw]], "file:/tomcat#1/conf/db-truststore.p12"
      assert.equal("trustCertificateKeyStoreUrl needs a truststore path without '&', '#', '%' or '+' "
         .. "(file:/tomcat#1/conf/db-truststore.p12)",
         select(2, tomcat.url_spec("mysql-5.1", { trust = "data-source", store = store })))
      store.url = [[file:C:\Program Files\Tomcat 9\conf\db-truststore.p12]]
      assert.same({ "trustCertificateKeyStorePassword", [[tr'"<$;\pw]], exact = true },
         assert(tomcat.url_spec("mysql-8", { trust = "data-source", store = store })).set[3])
      -- a truststore password or a CA path that differs only in case is another one
      store.password = "changeit-2026"
      assert.equal("jdbc:mysql://db/app?sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:/t.p12"
         .. "&trustCertificateKeyStorePassword=changeit-2026&trustCertificateKeyStoreType=PKCS12",
         edit("mysql-8", "jdbc:mysql://db/app?sslMode=VERIFY_IDENTITY&trustCertificateKeyStoreUrl=file:/T.p12"
            .. "&trustCertificateKeyStorePassword=CHANGEIT-2026&trustCertificateKeyStoreType=PKCS12",
            { verify = "identity", trust = "data-source", store = { url = "file:/t.p12", password = "changeit-2026",
              type = "PKCS12" } }))
      assert.equal("jdbc:mariadb://db/app?sslMode=verify-full&serverSslCert=/tomcat/conf/db-ca.pem",
         edit("mariadb-3", "jdbc:mariadb://db/app?sslMode=verify-full&serverSslCert=/Tomcat/conf/db-ca.pem",
            { verify = "identity", trust = "data-source", server_cert = "/tomcat/conf/db-ca.pem" }))
      assert.has_error(function() tomcat.url_spec("postgres", {}) end, "tomcat.url_spec: unknown driver 'postgres'")
   end)

   it("explains the edits that matter", function()
      assert.equal("removed trustServerCertificate=true: it turns certificate validation off",
         tomcat.explain("mariadb-2", { key = "trustServerCertificate", old = "true" }))
      assert.equal("sslMode=REQUIRED on MariaDB Connector/J 3 is 'trust': encryption without any certificate "
         .. "validation; now verify-full",
         tomcat.explain("mariadb-3", { key = "sslMode", old = "REQUIRED", new = "verify-full" }))
      assert.equal("removed useSSL=false", tomcat.explain("mysql-8", { key = "useSSL", old = "false" }))
      assert.is_nil(tomcat.explain("mysql-8", { key = "sslMode", old = "DISABLED", new = "VERIFY_IDENTITY" }))
      assert.is_nil(tomcat.explain("mysql-8", { key = "sslMode", new = "VERIFY_IDENTITY" }))
   end)

   describe("managed blocks", function()
      it("appends a block, replaces it, takes it out, and leaves every other line alone", function()
         local text = "#!/bin/sh\nJAVA_OPTS=-Xmx1g\n"
         local one = assert(block(text, { "A=1" }))
         assert.equal(text .. "# BEGIN myseal app-tomcat: managed\nA=1\n# END myseal app-tomcat\n", one)
         assert.equal(one, block(one, { "A=1" }))
         local edited = one .. "B=2\n"
         assert.equal(text .. "# BEGIN myseal app-tomcat: managed\nA=2\nA=3\n# END myseal app-tomcat\nB=2\n",
            block(edited, { "A=2", "A=3" }))
         assert.equal(text .. "B=2\n", block(edited, nil))
         assert.equal(text, block(text, nil))
         -- a block whose title changed is still ours
         assert.equal(text .. "# BEGIN myseal app-tomcat: managed\nA=1\n# END myseal app-tomcat\n",
            block(text .. "# BEGIN myseal app-tomcat: old words\nA=0\n# END myseal app-tomcat\n", { "A=1" }))
         -- but not another runbook's whose name starts the same
         local other = "# BEGIN myseal app-tomcat2\nX\n# END myseal app-tomcat2\n"
         assert.equal(other .. "# BEGIN myseal app-tomcat: managed\nA=1\n# END myseal app-tomcat\n",
            block(other, { "A=1" }))
      end)

      it("keeps CRLF files CRLF, ends a last line without a newline, and makes new files with opts.eol", function()
         local crlf = "@echo off\r\nrem site\r\nset \"JAVA_OPTS=-Xmx1g\"\r\n"
         local new = assert(tomcat.block(crlf, { begin = "rem BEGIN x", finish = "rem END x", lines = { "set A=1" } }))
         assert.equal(crlf .. "rem BEGIN x\r\nset A=1\r\nrem END x\r\n", new)
         assert.equal("a\nb\n# BEGIN myseal app-tomcat: managed\nA=1\n# END myseal app-tomcat\n",
            block("a\nb", { "A=1" }))
         assert.equal("# BEGIN myseal app-tomcat: managed\r\nA=1\r\n# END myseal app-tomcat\r\n",
            block(nil, { "A=1" }, { eol = "\r\n" }))
         -- a block at the very end, without a final newline, is replaced in place
         assert.equal("a\n# BEGIN myseal app-tomcat: managed\nA=2\n# END myseal app-tomcat",
            block("a\n# BEGIN myseal app-tomcat\nA=1\n# END myseal app-tomcat", { "A=2" }))
      end)

      it("refuses broken blocks, naming the file and line", function()
         assert.equal("f:2: '# BEGIN myseal app-tomcat' is not closed by '# END myseal app-tomcat'",
            select(2, block("a\n# BEGIN myseal app-tomcat\nA=1\n", { "x" }, { name = "f" })))
         assert.equal("f:1: '# END myseal app-tomcat' without its '# BEGIN myseal app-tomcat'",
            select(2, block("# END myseal app-tomcat\n", { "x" }, { name = "f" })))
         assert.equal("f: '# BEGIN myseal app-tomcat' twice (lines 1 and 3)",
            select(2, block("# BEGIN myseal app-tomcat\n# END myseal app-tomcat\n# BEGIN myseal app-tomcat\n"
               .. "# END myseal app-tomcat\n", { "x" }, { name = "f" })))
         assert.equal("f: a line of the block has a line break", select(2, block("", { "a\nb" }, { name = "f" })))
      end)

      it("reads the block back, and finds other lines that mention a name", function()
         local text = "# old: -Djavax.net.ssl.trustStore=/a\nJAVA_OPTS=-Djavax.net.ssl.trustStore=/b\n"
            .. "# BEGIN myseal app-tomcat\nX=-Djavax.net.ssl.trustStore=/c\n# END myseal app-tomcat\n"
         assert.same({ "X=-Djavax.net.ssl.trustStore=/c" }, tomcat.block_lines(text, BLOCK))
         assert.is_nil(tomcat.block_lines("a\n", BLOCK))
         assert.same({ 2 }, tomcat.mentions(text, BLOCK, "javax.net.ssl.trustStore", "^%s*#"))
         assert.same({ 1, 2 }, tomcat.mentions(text, BLOCK, "javax.net.ssl.trustStore"))
      end)
   end)

   describe("quoting", function()
      local options = { "-Djavax.net.ssl.trustStore=/opt/tomcat 9/conf/db truststore.p12",
                        "-Djavax.net.ssl.trustStorePassword=" .. NASTY, "-Djavax.net.ssl.trustStoreType=PKCS12" }

      it("sh: what catalina.sh's eval makes of CATALINA_OPTS is the options, byte for byte", function()
         local lines = tomcat.sh_lines(options)
         assert.same(options, eval_sh(lines))
         assert.equal("export CATALINA_OPTS", lines[2])
         assert.truthy(lines[1]:find(tomcat.sh_form(NASTY), 1, true))
         -- plain options stay readable
         assert.equal('CATALINA_OPTS="$CATALINA_OPTS -Da=/b/c -Dt=PKCS12"',
            tomcat.sh_lines{ "-Da=/b/c", "-Dt=PKCS12" }[1])
         -- after what setenv.sh had already
         local script = "CATALINA_OPTS=-Xmx1g\n" .. table.concat(tomcat.sh_lines{ "-Da=1" }, "\n")
            .. '\nprintf %s "$CATALINA_OPTS"'
         local r = assert(sys.run{ "sh", "-s", stdin = script })
         assert.equal("-Xmx1g -Da=1", r.stdout)
      end)

      it("systemd environment files: single-quoted, nothing that needs escaping", function()
         assert.same({ "CATALINA_OPTS='-Da=/x -Db=y'" }, tomcat.env_file_lines{ "-Da=/x", "-Db=y" })
         assert.equal("an option for a systemd environment file cannot hold spaces, quotes, '\\', '$' or '`': "
            .. "-Dp=a b", select(2, tomcat.env_file_lines{ "-Dp=a b" }))
      end)

      it("cmd: % doubled, words with spaces or & | < > ^ double-quoted, those four with a caret", function()
         assert.same({ 'set "CATALINA_OPTS=%CATALINA_OPTS% -Djavax.net.ssl.trustStore=C:\\Tomcat\\conf\\t.p12 '
            .. '"-Djavax.net.ssl.trustStorePassword=50%% a^&b" -Djavax.net.ssl.trustStoreType=JKS"' },
            tomcat.bat_lines{ "-Djavax.net.ssl.trustStore=C:\\Tomcat\\conf\\t.p12",
                              "-Djavax.net.ssl.trustStorePassword=50% a&b", "-Djavax.net.ssl.trustStoreType=JKS" })
         -- backslashes before the closing quote are doubled (the C runtime's rule)
         assert.equal('set "CATALINA_OPTS=%CATALINA_OPTS% "-Dp=a b\\\\""', tomcat.bat_lines{ "-Dp=a b\\" }[1])
         assert.equal("50%% a^&b^^", tomcat.bat_form("50% a&b^"))
         assert.equal('an option for setenv.bat cannot hold a double quote: -Dp=a"b',
            select(2, tomcat.bat_lines{ '-Dp=a"b' }))
      end)

      it("procrun: ';'-separated, ';' and '#' inside single quotes, no quote at all", function()
         assert.equal("-Da=C:\\x;'-Db=p;w#d';-Dc=JKS", tomcat.procrun_value{ "-Da=C:\\x", "-Db=p;w#d", "-Dc=JKS" })
         assert.equal("procrun reads quotes as quoting: an option cannot hold one: -Db=it's",
            select(2, tomcat.procrun_value{ "-Db=it's" }))
         assert.equal('procrun reads quotes as quoting: an option cannot hold one: -Db="x"',
            select(2, tomcat.procrun_value{ '-Db="x"' }))
      end)

      it("properties: what java.util.Properties reads back", function()
         local value = " lead\\back\tslash é 😀 " .. NASTY
         local line = tomcat.properties_line("javax.net.ssl.trustStorePassword", value)
         assert.equal("javax.net.ssl.trustStorePassword=\\ lead\\\\back\\u0009slash \\u00E9 \\uD83D\\uDE00 "
            .. NASTY:gsub("\\", "\\\\"), line)
         assert.equal(line:match("=(.*)$"), tomcat.properties_form(value))
         -- the JVM agrees
         local dir = assert(sys.tmpdir("props-spec"))
         assert(sys.write_file(dir .. "/t.properties", line .. "\n"))
         assert(sys.write_file(dir .. "/P.java", [[
import java.io.*; import java.util.*;
public class P { public static void main(String[] a) throws Exception {
  Properties p = new Properties(); p.load(new FileInputStream(a[0]));
  System.out.write(p.getProperty("javax.net.ssl.trustStorePassword").getBytes("UTF-8")); System.out.flush(); } }
]]))
         local r = assert(sys.run{ "java", dir .. "/P.java", dir .. "/t.properties", timeout = 60 })
         sys.rmtree(dir)
         assert(r.ok, r.stderr)
         assert.equal(value, r.stdout)
      end)
   end)

   it("reads procrun's JvmOptions from reg query output", function()
      local out = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Apache Software Foundation\\Procrun 2.0\\Tomcat9"
         .. "\\Parameters\\Java\r\n"
         .. "    Options    REG_MULTI_SZ    -Dcatalina.home=C:\\Tomcat\\0-Dcatalina.base=C:\\Tomcat\\0-Xrs\r\n\r\n"
      assert.same({ "-Dcatalina.home=C:\\Tomcat", "-Dcatalina.base=C:\\Tomcat", "-Xrs" },
         tomcat.reg_multi_sz(out, "Options"))
      assert.same({}, tomcat.reg_multi_sz("    Options    REG_MULTI_SZ    \r\n", "Options"))
      assert.is_nil(tomcat.reg_multi_sz(out, "Options9"))
   end)
end)
