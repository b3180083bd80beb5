-- The whole story on a lab host with Tomcat, as a DBA runs it: the host's own site profile,
-- `tools/main --site` (then the runbooks it runs, confirmed with --yes), and independent
-- checks with tools nobody here wrote (the server's INNODB_TABLESPACES_ENCRYPTION, grep on the
-- data files, openssl s_client, the mariadb client, the application's page, keytool), while
-- the page is polled every 250 ms. Each stage needs the ones before it; a stage that fails
-- the way a known defect makes it fail names the defect and is counted as skipped.
local sys = require "sys"
local host = require "myseal.sandbox.host"
local lab = require "support.lab"

local HOME = require("myseal.host").home
local MYSEAL = require("myseal.host").exe
local PROFILE = "/root/site.ini"
local STORY = { "at-rest", "in-transit", "app-tomcat" }

describe("the story on a lab host with Tomcat", function()
   local s, done, windows, failed = nil, {}, {}, nil
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

   -- Runs a myseal command inside the host, timed for the downtime table.
   local function myseal(label, ...)
      local argv = { MYSEAL, ... }
      argv.timeout = 300
      local w = { label = label, from = now_ms() }
      local r = lab.run(s, argv)
      w.to = now_ms()
      windows[#windows + 1] = w
      return r
   end

   -- A stage whose prerequisite failed is skipped, naming it.
   local function needs(pending, ...)
      lab.need_hosts(pending)
      for _, stage in ipairs{ ... } do
         if not done[stage] then pending("needs " .. stage .. (failed and (", stopped at: " .. failed) or "")) end
      end
   end

   -- Records a stage's outcome: done, or skipped naming the first known defect `{ pattern,
   -- defect }` whose pattern the failure matches, or failed.
   local function stage(pending, name, ok, msg, known)
      if not ok then
         failed = name .. ": " .. (tostring(msg):match("myseal: [^\n]*") or tostring(msg))
         for _, k in ipairs(known or {}) do
            if tostring(msg):find(k[1]) then lab.known(pending, ok, msg, k[1], k[2]) end
         end
         error(msg, 2)
      end
      done[name] = true
   end

   local LOCKOUT = { "lockout%-preflight: %d+ connections? would be cut off .-performance_schema is off",
      "issue 21 item 5: the lockout preflight counts the application's own pool as 'TLS unknown' "
         .. "(performance_schema is off, Debian's default) and refuses" }
   local NO_TLS = { "the server has no TLS",
      "issue 21 item 2: verification over the socket reads the session's Ssl_server_not_after and says "
         .. "the server has no TLS (the server offers it: openssl s_client verifies it)" }

   it("tools/main --site runs the story without a terminal", function()
      lab.need_hosts(pending)
      local r = lab.run(s, { HOME .. "/tools/main", "--site", PROFILE, timeout = 900 })
      if r.ok then
         for _, rb in ipairs(STORY) do done[rb] = true end
      end
      lab.known(pending, r.ok, r.stdout .. r.stderr, "confirm with %-%-yes %(there is no terminal to ask on%)",
         "tools/main --site cannot run without a terminal: it passes no --yes and has no option for it")
   end)

   it("at-rest: every application table encrypted, as the server and grep on its files say", function()
      lab.need_hosts(pending)
      if not done["at-rest"] then
         local r = myseal("at-rest", "run", "at-rest", "--site", PROFILE, "--yes")
         stage(pending, "at-rest", r.ok, r.stdout .. r.stderr)
      end
      local c <close> = assert(s:connect())
      local rows = assert(c:query("SELECT NAME, ENCRYPTION_SCHEME "
         .. "FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'biobank/%' ORDER BY NAME"))
      local got = {}
      for _, row in ipairs(rows) do got[#got + 1] = row[1] .. "=" .. row[2] end
      assert.same({ "biobank/patients=1", "biobank/specimens=1" }, got)
      local grep = lab.run(s, { "grep", "-rl", "Bernd Moreau", "/var/lib/mysql/biobank" })
      assert.equal(1, grep.status, "plaintext found in " .. grep.stdout)
   end)

   it("in-transit: openssl s_client verifies the server, its SAN names the host, plain TCP is refused", function()
      needs(pending, "at-rest")
      local r = myseal("in-transit", "run", "in-transit", "--site", PROFILE, "--yes")
      if not sys.stat(s:paths().etc .. "/tls/ca.pem") then
         stage(pending, "in-transit", r.ok, r.stdout .. r.stderr, { LOCKOUT, NO_TLS })
      end
      -- independent of the runbook's own verdict: what a client sees
      local sc = lab.run(s, { "openssl", "s_client", "-starttls", "mysql", "-connect", "127.0.0.1:3306",
         "-CAfile", "/etc/mysql/tls/ca.pem", "-verify_return_error", "-verify_hostname", "spec-story",
         stdin = "" })
      assert.matches("Verify return code: 0 %(ok%)", sc.stdout, sc.stdout .. sc.stderr)
      local san = lab.ok(s, { "openssl", "x509", "-in", "/etc/mysql/tls/server-cert.pem", "-noout",
         "-ext", "subjectAltName" })
      for _, name in ipairs{ "DNS:spec%-story", "DNS:localhost", "IP Address:127%.0%.0%.1" } do
         assert.matches(name, san)
      end
      stage(pending, "in-transit", r.ok, r.stdout .. r.stderr, { LOCKOUT, NO_TLS })
      local plain = lab.run(s, { "mariadb", "-h", "127.0.0.1", "-u", s.app_user, "--skip-ssl", "-e", "SELECT 1",
         env = { MYSQL_PWD = s.app_password } })
      assert.equal(1, plain.status)
      assert.matches("^ERROR 1045", plain.stderr)
   end)

   it("app-tomcat: the page reports a TLS cipher, keytool -list opens the truststore", function()
      needs(pending, "in-transit")
      local r = myseal("app-tomcat", "run", "app-tomcat", "--site", PROFILE, "--yes")
      stage(pending, "app-tomcat", r.ok, r.stdout .. r.stderr)
      assert.matches("^patients=2000 cipher=TLS_", lab.wait_page(s, "cipher=%S"))
      local ks = lab.run(s, { "sh", "-c", 'keytool -list -keystore /var/lib/tomcat10/conf/db-truststore.p12 '
         .. '-storepass "$(cat /root/.tomcat-truststore-password)"' })
      assert.matches("Your keystore contains 1 entry", ks.stdout, ks.stdout .. ks.stderr)
   end)

   it("a second run changes nothing", function()
      needs(pending, "app-tomcat")
      for _, rb in ipairs(STORY) do
         local r = myseal(rb .. " again", "run", rb, "--site", PROFILE, "--yes")
         assert.is_true(r.ok, r.stdout .. r.stderr)
         assert.matches("run: nothing to do", r.stdout)
      end
   end)

   it("rolling the story back leaves a working application", function()
      needs(pending, "app-tomcat")
      for i = #STORY, 1, -1 do
         local r = myseal("rollback " .. STORY[i], "rollback", STORY[i], "--site", PROFILE)
         assert.is_true(r.ok, r.stdout .. r.stderr)
      end
      assert.equal("patients=2000 cipher=\n", lab.wait_page(s))
   end)

   it("was watched from the application's side: failed requests and the longest outage per runbook", function()
      lab.need_hosts(pending)
      local samples = host.poll_read(s)
      assert.is_true(#samples >= 4, "the poller answered " .. #samples .. " times")
      -- about four requests a second
      local span = (samples[#samples].ms - samples[1].ms) / 1000
      assert.is_true(#samples >= span * 2, ("%d requests in %.1f s"):format(#samples, span))
      local lines = { ("%-24s %9s %7s %12s"):format("runbook", "requests", "failed", "longest (s)") }
      for _, w in ipairs(windows) do
         local o = host.outages(samples, w.from, w.to)
         lines[#lines + 1] = ("%-24s %9d %7d %12.2f"):format(w.label, o.requests, o.failed, o.longest_ms / 1000)
      end
      print("\n" .. table.concat(lines, "\n"))
   end)
end)
