-- The whole story on a lab host with Tomcat, as a DBA runs it: the host's own site profile and
-- `tools/main --site FILE --yes` (check, plan encrypt, run encrypt, check), while the page is
-- polled every 250 ms; then independent checks with tools nobody here wrote (the server's own
-- log and INNODB_TABLESPACES_ENCRYPTION, grep on the data files, openssl s_client, the mariadb
-- client, ps, the application's page), a second run, and the rollback. Each stage needs the
-- ones before it.
local sys = require "sys"
local host = require "myseal.sandbox.host"
local lab = require "support.lab"

local HOME = require("myseal.host").home
local MYSEAL = require("myseal.host").exe
local PROFILE = "/root/site.ini"

describe("the story on a lab host with Tomcat #lab", function()
   local s, done, windows = nil, {}, {}
   setup(function()
      if host.available() then
         s = lab.start{ name = "spec-story", app = "tomcat" }
         assert(host.poll_start(s, 0.25))
      end
   end)
   teardown(function()
      if s then
         host.poll_stop(s)
         s:stop()
      end
   end)

   local function now_ms() return math.floor(sys.now() * 1000) end

   -- Runs argv inside the host, timed for the downtime table; the window ends when the page
   -- answers again.
   local function timed(label, argv)
      argv.timeout = argv.timeout or 600
      local w = { label = label, from = now_ms() }
      local r = lab.run(s, argv)
      lab.wait_page(s)
      w.to = now_ms()
      windows[#windows + 1] = w
      return r, w
   end

   local function needs(pending, stage)
      lab.need_hosts(pending)
      if not done[stage] then pending("needs " .. stage) end
   end

   -- the server's starts as the server logs them (syslog on a Debian host)
   local function starts()
      local _, n = (sys.read_file(s.log) or ""):gsub("ready for connections", "")
      return n
   end
   local function tomcat_pid()
      return lab.ok(s, { "cat", "/run/tomcat10.pid" }):match("%d+")
   end

   it("tools/main --site --yes: one MariaDB restart, no Tomcat restart, at most 3 s of failed requests", function()
      lab.need_hosts(pending)
      assert.matches("^patients=2000 cipher=\n$", lab.wait_page(s))
      local started, jvm = starts(), tomcat_pid()
      local r, w = timed("tools/main --site --yes", { HOME .. "/tools/main", "--site", PROFILE, "--yes", timeout = 900 })
      assert.is_true(r.ok, r.stdout .. r.stderr)
      assert.matches("\nplan: encrypt on site spec%-story\n", r.stdout)
      assert.matches("\nrun: done, %d+ steps? changed", r.stdout)
      assert.equal(1, starts() - started, "MariaDB restarts during the story")
      assert.equal(jvm, tomcat_pid(), "Tomcat's JVM was restarted")
      local o = host.outages(host.poll_read(s), w.from, w.to)
      -- at most 3 s of failed requests, the page asked every 250 ms: 12 of them
      assert.is_true(o.requests > 20)
      assert.is_true(o.failed * 0.25 <= 3, ("%d requests failed (%.2f s); the longest outage %.2f s")
         :format(o.failed, o.failed * 0.25, o.longest_ms / 1000))
      done.story = true
   end)

   it("at rest: the server encrypts every application table, and grep finds no patient on disk", function()
      needs(pending, "story")
      local c <close> = assert(s:connect())
      local rows = assert(c:query("SELECT NAME, ENCRYPTION_SCHEME "
         .. "FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'biobank/%' ORDER BY NAME"))
      local got = {}
      for _, row in ipairs(rows) do got[#got + 1] = row[1] .. "=" .. row[2] end
      assert.same({ "biobank/patients=1", "biobank/specimens=1" }, got)
      for _, dir in ipairs{ "/var/lib/mysql/biobank", "/var/lib/mysql" } do
         local grep = lab.run(s, { "grep", "-rl", "--exclude=*.pem", "Bernd Moreau", dir })
         assert.equal(1, grep.status, "plaintext found in " .. grep.stdout)
      end
      -- the key file is encrypted with its filekey: hex keys are not lying beside the data
      local key = lab.ok(s, { "head", "-c", "8", "/etc/mysql/encryption/keyfile.enc" })
      assert.equal("Salted__", key)
   end)

   it("in transit: openssl s_client verifies the server by its name, plain TCP is refused", function()
      needs(pending, "story")
      local sc = lab.run(s, { "openssl", "s_client", "-starttls", "mysql", "-connect", "127.0.0.1:3306",
         "-CAfile", "/etc/mysql/tls/ca.pem", "-verify_return_error", "-verify_hostname", "spec-story",
         stdin = "" })
      assert.matches("Verify return code: 0 %(ok%)", sc.stdout, sc.stdout .. sc.stderr)
      local san = lab.ok(s, { "openssl", "x509", "-in", "/etc/mysql/tls/server-cert.pem", "-noout",
         "-ext", "subjectAltName" })
      for _, name in ipairs{ "DNS:spec%-story", "DNS:localhost", "IP Address:127%.0%.0%.1" } do
         assert.matches(name, san)
      end
      local plain = lab.run(s, { "mariadb", "-h", "127.0.0.1", "-u", s.app_user, "--skip-ssl", "-e", "SELECT 1",
         env = { MYSQL_PWD = s.app_password } })
      assert.equal(1, plain.status)
      assert.matches("^ERROR 1045", plain.stderr)
      local tls = lab.run(s, { "mariadb", "-h", "127.0.0.1", "-u", s.app_user, "--ssl-ca=/etc/mysql/tls/ca.pem",
         "--ssl-verify-server-cert", "-N", "-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
         env = { MYSQL_PWD = s.app_password } })
      assert.is_true(tls.ok, tls.stderr)
      assert.matches("Ssl_cipher%s+%S+", tls.stdout)
   end)

   it("the application: its pool uses TLS, trusting the CA in the data source; no password in ps or logs", function()
      needs(pending, "story")
      assert.matches("^patients=2000 cipher=TLS_%S+\n$", lab.wait_page(s, "cipher=%S"))
      local xml = lab.ok(s, { "cat", "/etc/tomcat10/context.xml" })
      assert.matches('url="jdbc:mariadb://127%.0%.0%.1:3306/biobank%?[^"]*serverSslCert=/var/lib/tomcat10/conf/db%-ca%.pem', xml)
      -- no JVM-wide truststore: nothing in the JVM options, no truststore file
      local ps = lab.ok(s, { "ps", "-eo", "args" })
      assert.is_nil(ps:find("javax.net.ssl.trustStore", 1, true))
      assert.is_nil(ps:find(s.app_password, 1, true))
      local logs = lab.run(s, { "grep", "-rl", s.app_password, "/var/log" })
      assert.equal(1, logs.status, "the database password is in " .. logs.stdout)
   end)

   it("a second run changes nothing", function()
      needs(pending, "story")
      local started = starts()
      local r = timed("run encrypt again", { MYSEAL, "run", "encrypt", "--site", PROFILE, "--yes" })
      assert.is_true(r.ok, r.stdout .. r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      assert.equal(started, starts())
   end)

   it("rolling the story back leaves the application answering over plain TCP as before", function()
      needs(pending, "story")
      local jvm = tomcat_pid()
      local r, w = timed("rollback encrypt", { MYSEAL, "rollback", "encrypt", "--site", PROFILE, "--yes" })
      assert.is_true(r.ok, r.stdout .. r.stderr)
      assert.matches("^patients=2000 cipher=\n$", lab.wait_page(s, "cipher=\n"))
      assert.equal(jvm, tomcat_pid())
      local plain = lab.run(s, { "mariadb", "-h", "127.0.0.1", "-u", s.app_user, "--skip-ssl", "-N", "-e",
         "SELECT COUNT(*) FROM biobank.patients", env = { MYSQL_PWD = s.app_password } })
      assert.is_true(plain.ok, plain.stderr)
      assert.equal("2000\n", plain.stdout)
      local o = host.outages(host.poll_read(s), w.from, w.to)
      print(("\nrollback encrypt: %d requests, %d failed, down %.2f s"):format(o.requests, o.failed,
         o.total_ms / 1000))
   end)

   it("was watched from the application's side: failed requests and outages per run", function()
      lab.need_hosts(pending)
      local samples = host.poll_read(s)
      assert.is_true(#samples >= 4, "the poller answered " .. #samples .. " times")
      local lines = { ("%-26s %9s %7s %12s %10s"):format("run", "requests", "failed", "longest (s)", "down (s)") }
      for _, w in ipairs(windows) do
         local o = host.outages(samples, w.from, w.to)
         lines[#lines + 1] = ("%-26s %9d %7d %12.2f %10.2f"):format(w.label, o.requests, o.failed,
            o.longest_ms / 1000, o.total_ms / 1000)
      end
      print("\n" .. table.concat(lines, "\n"))
   end)
end)
