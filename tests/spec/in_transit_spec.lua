-- runbooks/in-transit.lua and rotate-certs.lua against MariaDB sandboxes, and in-transit's
-- plan for described MySQL servers.
local sandbox = require "myseal.sandbox"
local pki = require "pki"
local sys = require "sys"
local E = require "support.engine"

local function profile(dir, text)
   local path = dir .. "/site.ini"
   assert(sys.write_file(path, text))
   return path
end

local function run(argv)
   return E.myseal(argv, {})
end

describe("in-transit runbook", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("in-transit-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   -- a sandbox with an application account and an X509 one (passwords known to the test)
   local function server(name, options)
      local s = assert(sandbox.start{ name = name, options = options })
      local c <close> = assert(s:connect())
      assert(c:exec("CREATE USER 'app'@'%' IDENTIFIED BY 'app-pass'"))
      assert(c:exec("CREATE USER 'lab'@'%' IDENTIFIED BY 'lab-pass'"))
      assert(c:exec("GRANT SELECT ON mysql.* TO 'lab'@'%'"))
      return s
   end

   it("makes the PKI, offers TLS, then tls-enforce requires it, and a second run does nothing", function()
      local s <close> = server("spec-tls")
      -- the lab account's client certificate reaches its client (this spec) before it is required
      local site = profile(dir, "[accounts]\napp@% = ssl\nlab@% = subject\n[tls]\ndelivered = lab@%\n")
      local r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      -- offered, not forced: plain TCP still gets in, no account requires anything yet
      do
         local o = s:tcp_options()
         o.tls = { mode = "disabled" }
         local c <close> = assert(s:connect(o))
      end
      r = run{ "run", "tls-enforce", "--sandbox", s.name, "--site", site, "--yes", "--set", "tls.watch_seconds=1" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("plain TCP to 127%.0%.0%.1: refused %(myseal_verify_%x+ logs in with TLS%)", r.stdout)
      local tlsdir = s.dir .. "/tls-myseal"
      -- the files: keys 0600, certificates that openssl verifies, distinct CNs
      assert.equal(384, sys.stat(tlsdir .. "/ca-key.pem").mode)
      assert.equal(384, sys.stat(tlsdir .. "/server-key.pem").mode)
      local ca = assert(pki.load_cert(tlsdir .. "/ca.pem"))
      local cert = assert(pki.load_cert(tlsdir .. "/server-cert.pem"))
      local v = assert(sys.run{ "openssl", "verify", "-CAfile", tlsdir .. "/ca.pem", "-purpose", "sslserver",
         tlsdir .. "/server-cert.pem", tlsdir .. "/clients/lab@_-cert.pem" })
      assert.is_false(v.ok)   -- the client certificate is not a server one
      v = assert(sys.run{ "openssl", "verify", "-CAfile", tlsdir .. "/ca.pem", tlsdir .. "/server-cert.pem",
         tlsdir .. "/clients/lab@_-cert.pem" })
      assert.is_true(v.ok, v.stdout .. v.stderr)
      assert.are_not.equal(ca:subject(), cert:subject())
      for _, n in ipairs{ "localhost", "127.0.0.1", "::1", sys.hostname() } do
         assert.is_truthy(require("pki").verify(cert, { trusted = { ca }, hostname = n }), n)
      end
      assert.is_true(cert:days_left() <= 825 and cert:days_left() >= 824)
      -- the mariadb client verifies the server; plain TCP is refused; the socket still works
      local client = { "mariadb", "-h", "127.0.0.1", "-P", tostring(s.port), "-u", "app", "-N", "-e",
         "SHOW STATUS LIKE 'Ssl_version'", env = { MYSQL_PWD = "app-pass" } }
      local verified = table.move(client, 1, #client, 1, { env = client.env })
      table.insert(verified, 2, "--ssl-verify-server-cert")
      table.insert(verified, 2, "--ssl-ca=" .. tlsdir .. "/ca.pem")
      table.insert(verified, 2, "--ssl")
      r = assert(sys.run(verified))
      assert.is_true(r.ok, r.stderr)
      assert.matches("Ssl_version%s+TLSv1%.[23]", r.stdout)
      local plain = table.move(client, 1, #client, 1, { env = client.env })
      table.insert(plain, 2, "--skip-ssl")
      r = assert(sys.run(plain))
      assert.is_false(r.ok)
      local root <close> = assert(s:connect())
      assert.equal(1, root:query("SELECT 1")[1][1])
      -- the accounts: REQUIRE SSL, and SUBJECT/ISSUER from the certificates
      local rows = assert(root:query("SELECT User, ssl_type, x509_subject, x509_issuer FROM mysql.user "
         .. "WHERE User IN ('app', 'lab') ORDER BY User"))
      local lab = assert(pki.load_cert(tlsdir .. "/clients/lab@_-cert.pem"))
      assert.same({ "app", "ANY", "", "" }, { rows[1][1], rows[1][2], rows[1][3], rows[1][4] })
      assert.same({ "lab", "SPECIFIED", lab:subject(), ca:subject() }, { rows[2][1], rows[2][2], rows[2][3], rows[2][4] })
      local o = { host = "127.0.0.1", port = s.port, user = "lab", password = "lab-pass",
                  tls = { mode = "verify_identity", ca = tlsdir .. "/ca.pem" } }
      assert.equal(1045, select(3, s:connect(o)))
      o.tls.cert, o.tls.key = tlsdir .. "/clients/lab@_-cert.pem", tlsdir .. "/clients/lab@_-key.pem"
      local c <close> = assert(s:connect(o))
      assert.equal("lab@%", c:query("SELECT CURRENT_USER()")[1][1])
      -- again: nothing to do, and the certificates are reused; no temporary account is left
      for _, rb in ipairs{ "in-transit", "tls-enforce" } do
         r = run{ "run", rb, "--sandbox", s.name, "--site", site, "--yes" }
         assert.equal(0, r.status, r.stderr)
         assert.matches("run: nothing to do", r.stdout)
      end
      assert.equal(cert, pki.load_cert(tlsdir .. "/server-cert.pem"))
      assert.equal(0, root:query("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'myseal%'")[1][1])
      -- the CA key moved off the host, as the docs say: the CA stays, nothing to do, and what needs
      -- signing names the parameters
      assert(os.rename(tlsdir .. "/ca-key.pem", dir .. "/offline-ca-key.pem"))
      r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      assert.equal(ca, pki.load_cert(tlsdir .. "/ca.pem"))
      assert.is_nil(sys.stat(tlsdir .. "/ca-key.pem"))
      r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes", "--set", "pki.renew_days=900" }
      assert.equal(1, r.status)
      assert.matches("cannot sign: give pki.ca_key with pki.ca_cert", r.stderr)
      assert.equal(ca, pki.load_cert(tlsdir .. "/ca.pem"))
      assert.equal(cert, pki.load_cert(tlsdir .. "/server-cert.pem"))
   end)

   it("refuses an [accounts] entry the server does not have before it requires anything", function()
      local s <close> = server("spec-tls-typo")
      local site = profile(dir, "[accounts]\napp@% = ssl\nnobody@% = ssl\n")
      local r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = run{ "run", "tls-enforce", "--sandbox", s.name, "--site", site, "--yes", "--set", "tls.watch_seconds=0" }
      assert.equal(2, r.status, r.stdout .. r.stderr)
      assert.matches("^myseal: runbook tls%-enforce, step preflight %([^)]*%): %[accounts%] nobody@%%: no such account "
         .. "on the server\n$", r.stderr)
      local root <close> = assert(s:connect())
      assert.equal(0, root:query("SELECT @@require_secure_transport")[1][1])
      assert.equal("", root:query("SELECT ssl_type FROM mysql.user WHERE User = 'app'")[1][1])
      assert.is_nil(sys.read_file(s.cnf):find("require_secure_transport", 1, true))
   end)

   it("logs in as tls.verify_user with its password from --secrets-stdin", function()
      local s <close> = server("spec-tls-stdin")
      local site = profile(dir, "[tls]\nverify_user = app\n")
      local r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = E.myseal({ "run", "tls-enforce", "--sandbox", s.name, "--site", site, "--yes", "--secrets-stdin",
         "--set", "tls.watch_seconds=0" }, {}, '{"tls.verify_password": "app-pass"}')
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("plain TCP to 127%.0%.0%.1: refused %(app logs in with TLS%)", r.stdout)
      local journals = E.journals(require("myseal.engine.target").state_root(), "sandbox-" .. s.name,
         "tls-enforce")
      assert.equal(1, #journals)
      assert.is_nil(sys.read_file(journals[1]):find("app-pass", 1, true))
   end)

   it("puts enforcement back when a client is cut off, and names it (performance_schema off)", function()
      local s <close> = server("spec-tls-lockout")
      assert.equal(0, run{ "run", "in-transit", "--sandbox", s.name, "--yes" }.status)
      -- an application that connects over plain TCP, again and again (a pool reconnecting)
      local script = dir .. "/app.lua"
      assert(sys.write_file(script, ([[
         local sys, mysql = require "sys", require "mysql"
         while not sys.stat("%s/stop") do
            local c = mysql.connect{ host = "127.0.0.1", port = %d, user = "app", password = "app-pass",
                                     tls = { mode = "disabled" } }
            if c then c:close() end
            sys.sleep(0.2)
         end]]):format(dir, s.port)))
      local pid = assert(sys.spawn{ E.MYSEAL, "lua", script, log = dir .. "/app.log" })
      local r = run{ "run", "tls-enforce", "--sandbox", s.name, "--yes", "--set", "tls.watch_seconds=3" }
      assert(sys.write_file(dir .. "/stop", ""))
      assert.equal(1, r.status, r.stdout)
      assert.matches("step watch .-: %d+ logins? failed after enforcing %('app'@'127%.0%.0%.1' %(%d+ times?%)%): "
         .. "the enforcement is put back; move those clients to TLS, or set tls%.confirmed=true", r.stderr)
      local root <close> = assert(s:connect())
      assert.equal("OFF", root:query("SHOW GLOBAL VARIABLES LIKE 'require_secure_transport'")[1][2])
      local o = s:tcp_options()
      o.tls = { mode = "disabled" }
      local plain <close> = assert(s:connect(o))
      while sys.alive(pid) do sys.sleep(0.05) end
   end)

   it("refuses to enforce while a session is known to be without TLS (performance_schema on)", function()
      local p <close> = server("spec-tls-ps", { performance_schema = "ON" })
      assert.equal(0, run{ "run", "in-transit", "--sandbox", p.name, "--yes" }.status)
      local o = p:tcp_options()
      o.tls = { mode = "disabled" }
      local plain <close> = assert(p:connect(o))
      local r = run{ "run", "tls-enforce", "--sandbox", p.name, "--yes" }
      assert.equal(1, r.status)
      assert.matches("step preflight", r.stderr)
      assert.matches("session of tcp_user from 127%.0%.0%.1 without TLS", r.stderr)
      assert.matches("set tls%.accept_lockout=true", r.stderr)
      plain:close()
      -- a TLS session is told apart from a plain one
      local to = p:tcp_options()
      to.tls = { mode = "verify_ca", ca = p.dir .. "/tls-myseal/ca.pem" }
      local secure <close> = assert(p:connect(to))
      r = run{ "plan", "tls-enforce", "--sandbox", p.name }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("preflight%s+ok", r.stdout)
   end)

   it("fails verification when the certificate lacks the address clients use", function()
      local s <close> = server("spec-tls-names")
      local r = run{ "run", "in-transit", "--sandbox", s.name, "--yes", "--set", "pki.server_names=localhost" }
      assert.equal(1, r.status)
      assert.matches("step verify.-127%.0%.0%.1: cannot connect to 127%.0%.0%.1:%d+: TLS/SSL error", r.stderr)
   end)

   it("requires the account the profile names, even with backslashes under NO_BACKSLASH_ESCAPES", function()
      local s <close> = server("spec-tls-nbe", { sql_mode = "NO_BACKSLASH_ESCAPES" })
      do
         local c <close> = assert(s:connect())
         -- two accounts a backslash-escaping literal would confuse
         assert(c:exec([[CREATE USER 'bs\sl'@'%' IDENTIFIED BY 'x']]))
         assert(c:exec([[CREATE USER 'bs\\sl'@'%' IDENTIFIED BY 'x']]))
      end
      local site = profile(dir, "[accounts]\nbs\\sl@% = ssl\n")
      local r = run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = run{ "run", "tls-enforce", "--sandbox", s.name, "--site", site, "--yes", "--set", "tls.watch_seconds=0" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local c <close> = assert(s:connect())
      local rows = {}
      for _, r in ipairs(assert(c:query("SELECT User, ssl_type FROM mysql.user WHERE User LIKE 'bs%' ORDER BY User"))) do
         rows[#rows + 1] = r[1] .. "=" .. r[2]
      end
      assert.same({ "bs\\\\sl=", "bs\\sl=ANY" }, rows)
   end)

   it("rotates certificates and the CA while a client keeps querying", function()
      local s <close> = server("spec-tls-rotate")
      local site = profile(dir, "[accounts]\nlab@% = subject\n[tls]\ndelivered = lab@%\n")
      assert.equal(0, run{ "run", "in-transit", "--sandbox", s.name, "--site", site, "--yes" }.status)
      assert.equal(0, run{ "run", "tls-enforce", "--sandbox", s.name, "--site", site, "--yes",
                           "--set", "tls.watch_seconds=0" }.status)
      local tlsdir = s.dir .. "/tls-myseal"
      -- a client that reconnects and queries over verified TLS, with the CA file as it is now
      local script = dir .. "/client.lua"
      assert(sys.write_file(script, ([[
         local sys, mysql = require "sys", require "mysql"
         local ok, bad = 0, 0
         local deadline = sys.clock() + 60
         while not sys.stat("%s/stop") and sys.clock() < deadline do
            local c, err = mysql.connect{ host = "127.0.0.1", port = %d, user = "app", password = "app-pass",
               tls = { mode = "verify_identity", ca = "%s/ca.pem" } }
            if c and c:query("SELECT 1") then
               ok = ok + 1
               sys.write_file("%s/count", tostring(ok))
            else
               bad = bad + 1; io.stderr:write(tostring(err), "\n")
            end
            if c then c:close() end
            sys.sleep(0.01)
         end
         io.write(ok, " ", bad)]]):format(dir, s.port, tlsdir, dir)))
      local pid = assert(sys.spawn{ E.MYSEAL, "lua", script, log = dir .. "/client.log" })
      local old = assert(pki.load_cert(tlsdir .. "/server-cert.pem"))
      local old_ca = assert(pki.load_cert(tlsdir .. "/ca.pem"))
      -- the client has connected (again) since the last look: each phase is seen by it
      local seen = 0
      local function client_connected()
         assert.is_true(E.wait_for(function()
            local n = tonumber(sys.read_file(dir .. "/count") or "0")
            if n > seen then seen = n return true end
         end, 30), "the client made no new connection")
      end
      client_connected()
      local function rotate(phase)
         local r = run{ "run", "rotate-certs", "--sandbox", s.name, "--site", site, "--yes", "--set", "rotate.ca=" .. phase }
         assert.equal(0, r.status, phase .. ": " .. r.stdout .. r.stderr)
         client_connected()
         return r
      end
      rotate("add")
      assert.equal(2, #assert(pki.load_cert(tlsdir .. "/ca.pem")))
      assert.equal(old, pki.load_cert(tlsdir .. "/server-cert.pem"))   -- still signed by the old CA
      local r = rotate("switch")
      assert.matches("sql: FLUSH NO_WRITE_TO_BINLOG SSL", (assert(sys.read_file(E.journals(require("myseal.engine.target").state_root(),
         "sandbox-" .. s.name, "rotate-certs")[1]))))
      local bundle = assert(pki.load_cert(tlsdir .. "/ca.pem"))
      local new = assert(pki.load_cert(tlsdir .. "/server-cert.pem"))
      assert.are_not.equal(old, new)
      assert.is_true(pki.verify(new, { trusted = { bundle[1] } }))
      assert.is_nil(pki.verify(new, { trusted = { old_ca } }))
      rotate("drop")
      local final = assert(pki.load_cert(tlsdir .. "/ca.pem"))
      assert.equal(bundle[1], final)
      -- the X509 account follows the new issuer
      local o = { host = "127.0.0.1", port = s.port, user = "lab", password = "lab-pass",
                  tls = { mode = "verify_identity", ca = tlsdir .. "/ca.pem",
                          cert = tlsdir .. "/clients/lab@_-cert.pem", key = tlsdir .. "/clients/lab@_-key.pem" } }
      local c <close> = assert(s:connect(o))
      assert(sys.write_file(dir .. "/stop", ""))
      while sys.alive(pid) do sys.sleep(0.02) end
      local counts = assert(sys.read_file(dir .. "/client.log"))
      local ok, bad = counts:match("(%d+) (%d+)%s*$")
      assert.equal("0", bad, counts)
      assert.is_true(tonumber(ok) >= seen, counts)
      -- nothing to renew now
      r = run{ "run", "rotate-certs", "--sandbox", s.name, "--site", site, "--yes" }
      assert.equal(0, r.status, r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      assert.is_truthy(r)
   end)

   describe("a site's own PKI, planned", function()
      -- the site's root CA, an intermediate it signed, and a server certificate from the intermediate
      local function site_pki()
         local root_key = assert(pki.genkey{ type = "ec", curve = "P-256" })
         local root = assert(pki.self_signed{ key = root_key, subject = "/O=site/CN=site root CA", days = 365 })
         local int_key = assert(pki.genkey{ type = "ec", curve = "P-256" })
         local int = assert(root:sign{ ca_key = root_key, public_key = int_key, subject = "/O=site/CN=site issuing CA",
                                       usage = "ca", days = 365 })
         local key = assert(pki.genkey{ type = "ec", curve = "P-256" })
         local leaf = assert(int:sign{ ca_key = int_key, public_key = key, subject = "/O=site/CN=db.example",
                                       usage = "server", san = { "db.example", "127.0.0.1" }, days = 200 })
         assert(sys.write_file(dir .. "/root.pem", root:pem()))
         assert(sys.write_file(dir .. "/chain.pem", leaf:pem() .. int:pem()))
         assert(sys.write_file(dir .. "/bundle.pem", root:pem() .. int:pem()))
         assert(key:save(dir .. "/server-key.pem"))
      end

      local function plan(rb, ...)
         return run{ "plan", rb, "--describe", "mariadb-10.11", "--set", "server.cnf=tests/fixtures/at-rest/my.cnf",
            "--set", "pki.dir=" .. dir .. "/tls", "--set", "pki.server_names=db.example,127.0.0.1", ... }
      end

      it("takes a server certificate file that carries its intermediate CA, as the server serves it", function()
         site_pki()
         local r = plan("in-transit", "--set", "pki.ca_cert=" .. dir .. "/root.pem",
            "--set", "pki.server_cert=" .. dir .. "/chain.pem", "--set", "pki.server_key=" .. dir .. "/server-key.pem")
         assert.equal(0, r.status, r.stdout .. r.stderr)
         assert.matches("%[3/7%] server%-cert +already done", r.stdout)
         assert.is_truthy(r.stdout:find("+ssl_cert=" .. dir .. "/chain.pem", 1, true), r.stdout)
      end)

      it("refuses a site's server certificate without its key, naming the path it looked at", function()
         site_pki()
         local r = plan("in-transit", "--set", "pki.ca_cert=" .. dir .. "/root.pem",
            "--set", "pki.server_cert=" .. dir .. "/chain.pem")
         assert.equal(2, r.status, r.stdout .. r.stderr)
         assert.matches("^myseal: runbook in%-transit, step server%-cert %([^)]*runbooks/in%-transit%.lua:%d+%): ",
            r.stderr)
         assert.is_truthy(r.stderr:find(("): pki.server_cert %s/chain.pem: its key %s/tls/server-key.pem is not "
            .. "there: name it in pki.server_key\n"):format(dir, dir), 1, true), r.stderr)
         assert.is_nil(r.stdout:find("ssl_key", 1, true))
      end)

      it("refuses a site's server certificate without pki.ca_cert when there is no CA to check it", function()
         site_pki()
         local r = plan("in-transit", "--set", "pki.server_cert=" .. dir .. "/chain.pem",
            "--set", "pki.server_key=" .. dir .. "/server-key.pem")
         assert.equal(1, r.status, r.stdout .. r.stderr)
         assert.is_truthy(r.stdout:find(("[1/7] preflight                      WOULD REFUSE: pki.server_cert is set "
            .. "without pki.ca_cert, and there is no CA in %s/tls/ca.pem: give the site CA's certificate in "
            .. "pki.ca_cert\n"):format(dir), 1, true), r.stdout)
      end)

      it("refuses a pki.ca_key that is not the key of pki.ca_cert, naming both", function()
         site_pki()
         assert(assert(pki.genkey{ type = "ec", curve = "P-256" }):save(dir .. "/other-key.pem"))
         local r = plan("in-transit", "--set", "pki.ca_cert=" .. dir .. "/root.pem",
            "--set", "pki.ca_key=" .. dir .. "/other-key.pem")
         assert.equal(2, r.status, r.stdout .. r.stderr)
         assert.matches("^myseal: runbook in%-transit, step ca %([^)]*runbooks/in%-transit%.lua:%d+%): ", r.stderr)
         assert.is_truthy(r.stderr:find(("): pki.ca_key %s/other-key.pem does not match pki.ca_cert %s/root.pem\n")
            :format(dir, dir), 1, true), r.stderr)
         assert.is_nil(r.stdout:find("server-cert.pem", 1, true))
      end)

      it("rotate.ca=drop leaves a site's CA file (pki.ca_cert) as it is", function()
         site_pki()   -- a CA file with the root and the issuing CA
         local r = plan("rotate-certs", "--set", "rotate.ca=drop", "--set", "pki.ca_cert=" .. dir .. "/bundle.pem",
            "--set", "pki.server_cert=" .. dir .. "/chain.pem", "--set", "pki.server_key=" .. dir .. "/server-key.pem")
         assert.equal(1, r.status, r.stdout .. r.stderr)
         assert.matches("^myseal: runbook rotate%-certs, step ca%-drop %([^)]*%): the CA is the site's "
            .. "%(pki%.ca_cert%): rotate it there\n$", r.stderr)
         assert.is_nil(r.stdout:find("bundle.pem", 1, true))
      end)

      it("rotate.ca=add without a CA fails and plans no empty ca.pem", function()
         local r = plan("rotate-certs", "--set", "rotate.ca=add")
         assert.equal(1, r.status, r.stdout .. r.stderr)
         assert.matches("^myseal: runbook rotate%-certs, step ca%-add %([^)]*runbooks/rotate%-certs%.lua:%d+%): ",
            r.stderr)
         assert.is_truthy(r.stderr:find(("): there is no CA in %s/tls/ca.pem to rotate: run in-transit first\n")
            :format(dir), 1, true), r.stderr)
         assert.is_nil(r.stdout:find("ca.pem (0644)", 1, true))
         assert.is_nil(r.stdout:find("ca-next-key.pem", 1, true))
      end)
   end)

   describe("plan for described MySQL servers", function()
      local function plan(version, extra)
         local desc = dir .. "/server.lua"
         assert(sys.write_file(desc, ("return { server = %q, %s "
            .. "accounts = { { user = 'app', host = '%%', ssl_type = '' } } }"):format("mysql-" .. version, extra or "")))
         local out = {}
         for _, rb in ipairs{ "in-transit", "tls-enforce" } do
            local r = run{ "plan", rb, "--describe", desc, "--set", "server.cnf=tests/fixtures/at-rest/my.cnf",
               "--set", "pki.dir=" .. dir .. "/tls", "--set", "accounts.app@%=ssl",
               rb == "in-transit" and "--set" or nil, rb == "in-transit" and "pki.server_names=db.example,10.0.0.5" or nil }
            assert.equal(0, r.status, r.stdout .. r.stderr)
            out[#out + 1] = r.stdout
            -- enforcement is planned for a server that offers TLS (as in-transit leaves it)
            extra = (extra or "") .. " served_certificate = { subject = '/CN=db.example', not_after = 0 },"
            assert(sys.write_file(desc, ("return { server = %q, %s accounts = { { user = 'app', host = '%%', "
               .. "ssl_type = '' } } }"):format("mysql-" .. version, extra)))
         end
         return table.concat(out)
      end

      it("MySQL 5.7: options, a restart, REQUIRE SSL", function()
         local out = plan("5.7.44")
         for _, line in ipairs{ "+ssl_ca=" .. dir .. "/tls/ca.pem", "+ssl_cert=" .. dir .. "/tls/server-cert.pem",
               "+ssl_key=" .. dir .. "/tls/server-key.pem", "+tls_version=TLSv1.2,TLSv1.3",
               "+require_secure_transport=ON" } do
            assert.is_truthy(out:find(line, 1, true), line)
         end
         assert.matches("restart the server", out)
         assert.matches("sql: SET GLOBAL require_secure_transport = ON", out)
         assert.matches("sql: ALTER USER IF EXISTS 'app'@'%%' REQUIRE SSL", out)
         assert.is_nil(out:find("GRANT", 1, true))
      end)

      it("MySQL 8.0 with TLS already on: SET GLOBAL and ALTER INSTANCE RELOAD TLS, no restart", function()
         local out = plan("8.0.36", "variables = { ssl_ca = '/old/ca.pem', ssl_cert = '/old/cert.pem', "
            .. "ssl_key = '/old/key.pem', tls_version = 'TLSv1.2' }, "
            .. "served_certificate = { subject = '/CN=old', not_after = 0 },")
         local a = out:find("sql: SET GLOBAL ssl_ca = '" .. dir .. "/tls/ca.pem'", 1, true)
         local b = out:find("sql: SET GLOBAL tls_version = 'TLSv1.2,TLSv1.3'", 1, true)
         local c = out:find("sql: ALTER INSTANCE RELOAD TLS", 1, true)
         assert.is_truthy(a and b and c and a < c and b < c, out)
         assert.is_nil(out:find("restart the server", 1, true))
      end)

      it("[tls] persist: SET PERSIST_ONLY on MySQL 8.0; MariaDB and MySQL 5.7 get the option file, and a warning", function()
         local desc = dir .. "/server.lua"
         local function persist_plan(server)
            assert(sys.write_file(desc, ("return { server = %q, accounts = {} }"):format(server)))
            local r = run{ "plan", "in-transit", "--describe", desc, "--set", "server.cnf=tests/fixtures/at-rest/my.cnf",
               "--set", "pki.dir=" .. dir .. "/tls", "--set", "tls.persist=true" }
            assert.equal(0, r.status, r.stdout .. r.stderr)
            return r.stdout
         end
         local out = persist_plan("mysql-8.0.36")
         assert.is_truthy(out:find("sql: SET PERSIST_ONLY ssl_ca = '" .. dir .. "/tls/ca.pem'", 1, true), out)
         assert.is_nil(out:find("+ssl_ca=", 1, true))
         assert.is_nil(out:find("has no SET PERSIST", 1, true))
         for server, version in pairs{ ["mariadb-10.11.6"] = "mariadb 10.11.6", ["mysql-5.7.44"] = "mysql 5.7.44" } do
            out = persist_plan(server)
            assert.is_truthy(out:find("warning: [tls] persist: " .. version .. " has no SET PERSIST (MySQL 8.0.11 and "
               .. "later): the options go to the option file", 1, true), out)
            assert.is_truthy(out:find("+ssl_ca=" .. dir .. "/tls/ca.pem", 1, true), out)
            assert.is_nil(out:find("PERSIST_ONLY", 1, true))
         end
      end)

      it("refuses a tls.versions the servers do not know before any file is made, on every dialect", function()
         for _, server in ipairs{ "mysql-5.7.44", "mysql-8.0.36", "mysql-8.4.3", "mariadb-10.11", "mariadb-11.4" } do
            local known = "TLSv1, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3"
            for versions, why in pairs{
                  ["TLSv1.2,TLSv9"] = "tls.versions = TLSv1.2,TLSv9: TLSv9 is not one of " .. known,
                  ["TLSv1.2,,TLSv1.3"] = "tls.versions = TLSv1.2,,TLSv1.3: (empty) is not one of " .. known,
                  [""] = "tls.versions is empty: name the protocols, e.g. TLSv1.2,TLSv1.3" } do
               local r = run{ "plan", "in-transit", "--describe", server,
                  "--set", "server.cnf=tests/fixtures/at-rest/my.cnf", "--set", "pki.dir=" .. dir .. "/tls",
                  "--set", "tls.versions=" .. versions }
               assert.equal(2, r.status, server .. " " .. versions .. ": " .. r.stdout .. r.stderr)
               assert.matches("^myseal: runbook in%-transit, step preflight %([^)]*%): ", r.stderr)
               assert.is_truthy(r.stderr:find("): " .. why .. "\n", 1, true), r.stderr)
               assert.is_nil(r.stdout:find("create", 1, true))
            end
         end
         -- MariaDB spells TLS 1.0 TLSv1.0 (MySQL TLSv1)
         local r = run{ "plan", "in-transit", "--describe", "mariadb-10.11", "--set",
            "server.cnf=tests/fixtures/at-rest/my.cnf", "--set", "pki.dir=" .. dir .. "/tls",
            "--set", "tls.versions=TLSv1.0,TLSv1.2" }
         assert.equal(0, r.status, r.stdout .. r.stderr)
         assert.is_truthy(r.stdout:find("+tls_version=TLSv1.0,TLSv1.2\n", 1, true), r.stdout)
      end)

      it("tls.ciphersuites: tls_ciphersuites on MySQL 8.0.16+; elsewhere a warning says it is not set", function()
         local function suites_plan(server)
            local r = run{ "plan", "in-transit", "--describe", server,
               "--set", "server.cnf=tests/fixtures/at-rest/my.cnf", "--set", "pki.dir=" .. dir .. "/tls",
               "--set", "tls.ciphersuites=TLS_AES_256_GCM_SHA384" }
            assert.equal(0, r.status, r.stdout .. r.stderr)
            return r.stdout
         end
         local out = suites_plan("mysql-8.0.36")
         assert.is_truthy(out:find("+tls_ciphersuites=TLS_AES_256_GCM_SHA384", 1, true), out)
         assert.is_nil(out:find("has no tls_ciphersuites", 1, true))
         for server, described in pairs{ ["mariadb-10.11"] = "MariaDB 10.11.10", ["mysql-5.7.44"] = "MySQL 5.7.44",
               ["mysql-8.0.15"] = "MySQL 8.0.15" } do
            out = suites_plan(server)
            assert.is_truthy(out:find("warning: [tls] ciphersuites: " .. described .. " has no tls_ciphersuites (MySQL "
               .. "8.0.16 and later): it is not set", 1, true), out)
            assert.is_nil(out:find("tls_ciphersuites=", 1, true))
         end
      end)

      it("refuses a pki.server_names entry no certificate can carry, before any file is made", function()
         for _, rb in ipairs{ "in-transit", "rotate-certs" } do
            local r = run{ "plan", rb, "--describe", "mysql-8.0.36",
               "--set", "server.cnf=tests/fixtures/at-rest/my.cnf", "--set", "pki.dir=" .. dir .. "/tls",
               "--set", "pki.server_names=db.example,db example" }
            assert.equal(2, r.status, r.stdout .. r.stderr)
            assert.is_truthy(r.stderr:find("): pki.server_names: 'db example' is neither a host name nor an IP "
               .. "address\n", 1, true), r.stderr)
            assert.is_nil(r.stdout:find("server-cert.pem", 1, true))
         end
      end)

      it("refuses an [accounts] line that is wrong before any file is made", function()
         for account, why in pairs{ ["accounts.app=x509"] = "[accounts] app: write user@host",
               ["accounts.app@%=tls"] = "[accounts] app@% = tls: ssl, x509 or subject" } do
            local r = run{ "plan", "in-transit", "--describe", "mariadb-10.11",
               "--set", "server.cnf=tests/fixtures/at-rest/my.cnf", "--set", "pki.dir=" .. dir .. "/tls",
               "--set", account }
            assert.equal(2, r.status, r.stdout .. r.stderr)
            assert.matches("^myseal: runbook in%-transit, step preflight %([^)]*%): ", r.stderr)
            assert.is_truthy(r.stderr:find("): " .. why .. "\n", 1, true), r.stderr)
            assert.is_nil(r.stdout:find("create", 1, true))
         end
      end)

      it("MySQL 8.4: the same options (no have_ssl anywhere)", function()
         local out = plan("8.4.3")
         assert.is_truthy(out:find("+ssl_cert=" .. dir .. "/tls/server-cert.pem", 1, true))
         assert.is_nil(out:find("have_ssl", 1, true))
         assert.matches("sql: ALTER USER IF EXISTS 'app'@'%%' REQUIRE SSL", out)
      end)
   end)
end)
