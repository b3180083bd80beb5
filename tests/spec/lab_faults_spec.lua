-- Faults on demand (support/faults.lua): the library itself, then every stock runbook killed
-- with SIGKILL at its most dangerous moment, resumed, and the server checked: up, and the
-- application's rows readable.
local sys = require "sys"
local sandbox = require "myseal.sandbox"
local journal = require "myseal.engine.journal"
local faults = require "support.faults"
local lab = require "support.lab"
local h = require "support.helpers"

local STATE = require("myseal.engine.target").state_root()

local function myseal(args, env)
   local cmd = { require("myseal.host").exe, env = env, timeout = 300 }
   for _, a in ipairs(args) do cmd[#cmd + 1] = a end
   return assert(sys.run(cmd))
end

-- The application's rows: a schema with names in it, on the sandbox.
local function seed(s)
   local c <close> = assert(s:connect())
   for _, sql in ipairs{
      "CREATE DATABASE biobank",
      "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB",
      "INSERT INTO biobank.patients VALUES (1, 'Anna Moreau'), (2, 'Bernd Novak'), (3, 'Chiara Okafor')",
   } do assert(c:exec(sql)) end
end

-- The resumed run ended well, the server answers and the rows are there.
local function recovered(s, r)
   local c = s:connect()
   local rows = c and c:query("SELECT GROUP_CONCAT(name ORDER BY id) FROM biobank.patients")
   if c then c:close() end
   if r.status ~= 0 or not rows then
      error("after the kill and --resume: exit " .. tostring(r.status) .. "\n" .. r.stdout .. r.stderr, 2)
   end
   assert.equal("Anna Moreau,Bernd Novak,Chiara Okafor", rows[1][1])
end

-- `myseal run at-rest` on sandbox s, its key backups in dir.
local function at_rest(s, dir)
   return { "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. dir .. "/kb" }
end


describe("faults", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("faults-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   describe("the library", function()
      it("kills a run right before or right after an effect of a kind, as the journal shows", function()
         local s <close> = assert(sandbox.start{ name = "spec-fault-lib" })
         seed(s)
         local args = at_rest(s, dir)
         local r = faults.kill_at(args, "before:file")
         assert.equal(9, r.signal)
         local events = assert(journal.read(faults.journal(STATE, "sandbox-" .. s.name, "at-rest")))
         local last = events[#events]
         assert.same({ "effect", "file", "key-material" }, { last.event, last.kind, last.step })
         assert.is_nil(sys.stat(last.path))   -- journaled, not done
         r = faults.kill_at({ "run", "at-rest", "--sandbox", s.name, "--yes", "--resume",
            "--set", "keyring.backup_dir=" .. dir .. "/kb" }, "after:restart")
         assert.equal(9, r.signal)
         events = assert(journal.read(faults.journal(STATE, "sandbox-" .. s.name, "at-rest")))
         last = events[#events]
         assert.same({ "effect", "restart" }, { last.event, last.kind })
         assert.is_true(s:running())   -- done: the server came back, nothing journaled after it
         -- a torn last line: half of it cut, as a kill in the middle of a large write leaves it
         local path = faults.journal(STATE, "sandbox-" .. s.name, "at-rest")
         local lines = #assert(journal.read(path))
         assert.is_true(faults.tear(path) > 0)
         assert.equal(lines - 1, #assert(journal.read(path)))
         assert.is_nil(assert(sys.read_file(path)):match("\n$"))
      end)

      it("holds a metadata lock from a second session, and keeps an application pool connected", function()
         local s <close> = assert(sandbox.start{ name = "spec-fault-lock" })
         seed(s)
         local lock = faults.hold_metadata_lock(s, "biobank.patients")
         local c <close> = assert(s:connect())
         assert(c:exec("SET SESSION lock_wait_timeout = 1"))
         local msg, errno = h.fails(c:exec("ALTER TABLE biobank.patients ADD COLUMN x INT"))
         assert.equal(1205, errno)
         assert.equal("Lock wait timeout exceeded; try restarting transaction", msg)
         lock:release()
         assert(c:exec("ALTER TABLE biobank.patients ADD COLUMN x INT"))
         local pool = faults.pool(s:tcp_options(), 3)
         assert.equal(3, c:query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE user = ?",
            s.tcp_user)[1][1])
         assert.is_true(pool:query_all())
         pool:close()
      end)

      it("kills a run while its server is down in the middle of a restart", function()
         local s <close> = assert(sandbox.start{ name = "spec-fault-down" })
         seed(s)
         local old = s.pid
         local killed = faults.kill_when({ "run", "at-rest", "--sandbox", s.name, "--yes",
            "--set", "keyring.backup_dir=" .. dir .. "/kb" }, faults.gone(old))
         assert.is_true(killed)
         assert.is_false(sys.alive(old))
         assert.is_false(s:running())
         assert.is_true(s:boot())
      end)
   end)

   describe("each stock runbook killed at its most dangerous moment", function()
      it("at-rest, killed while the server is stopped for its restart: --resume brings it up, rows intact", function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-at-rest" })
         seed(s)
         local args = at_rest(s, dir)
         assert.is_true((faults.kill_when(args, faults.gone(s.pid))))
         args[#args + 1] = "--resume"
         recovered(s, myseal(args))
      end)

      it("at-rest, killed between writing the key file and giving it to the server's user", function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-chown" })
         seed(s)
         local args = at_rest(s, dir)
         -- the filekey first, then the key file it encrypts
         assert.equal(9, faults.kill_at(args, "after:file:2").signal)
         local key = s.dir .. "/keyring/keyfile.enc"
         assert.equal("mysql", sys.stat(key).user)
         assert(sys.chown(key, 0, 0))   -- the state a kill between the rename and the chown leaves
         args[#args + 1] = "--resume"
         recovered(s, myseal(args))
         assert.equal("mysql", sys.stat(key).user)
      end)

      it("in-transit, killed while the server is stopped for the TLS restart: --resume brings it up", function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-transit" })
         seed(s)
         local args = { "run", "in-transit", "--sandbox", s.name, "--yes" }
         assert.is_true((faults.kill_when(args, faults.gone(s.pid))))
         args[#args + 1] = "--resume"
         recovered(s, myseal(args))
         local tls <close> = assert(s:connect{ host = s.host, port = s.port, user = s.tcp_user,
            password = s.tcp_password, tls = { mode = "verify_identity", ca = s.dir .. "/tls-myseal/ca.pem" } })
         assert.is_true(tls:tls().verified)
      end)

      it("rotate-master-key, killed right after the new key is written: --resume, rows intact", function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-rotate" })
         seed(s)
         local set = { "--set", "keyring.backup_dir=" .. dir .. "/kb" }
         assert.equal(0, myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", set[1], set[2] }.status)
         local KEY_ID = "SELECT CURRENT_KEY_ID FROM information_schema.INNODB_TABLESPACES_ENCRYPTION "
            .. "WHERE NAME = 'biobank/patients'"
         local before = lab.value(s, KEY_ID)
         local args = { "run", "rotate-master-key", "--sandbox", s.name, "--yes", set[1], set[2] }
         assert.equal(9, faults.kill_at(args, "after:file").signal)
         args[#args + 1] = "--resume"
         recovered(s, myseal(args))
         -- the killed run's new key is the one the resumed run rotates to
         assert.equal(before + 1, lab.value(s, KEY_ID))
      end)

      it("rotate-certs, killed between the next CA's key and the CA bundle: --resume, TLS still verifies", function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-certs" })
         seed(s)
         assert.equal(0, myseal{ "run", "in-transit", "--sandbox", s.name, "--yes" }.status)
         local args = { "run", "rotate-certs", "--sandbox", s.name, "--yes", "--set", "rotate.ca=add" }
         assert.equal(9, faults.kill_at(args, "after:file").signal)
         args[#args + 1] = "--resume"
         recovered(s, myseal(args))
         local ca = s.dir .. "/tls-myseal/ca.pem"
         assert.equal(2, #assert(require("pki").load_cert(ca)))
         local tls <close> = assert(s:connect{ host = s.host, port = s.port, user = s.tcp_user,
            password = s.tcp_password, tls = { mode = "verify_identity", ca = ca } })
         assert.is_true(tls:tls().verified)
      end)

      it("app-tomcat (a JVM truststore), killed between the truststore and the JDBC URL: --resume, both consistent",
         function()
         local s <close> = assert(sandbox.start{ name = "spec-kill-tomcat", tls = true })
         seed(s)
         local base = dir .. "/tomcat"
         -- Tomcat 10's own catalina.properties (Debian's tomcat10 package), where the password goes
         h.tomcat_dir(base, { port = s.port, user = s.tcp_user, password = s.tcp_password, max_total = 8,
            properties = "/usr/share/tomcat10/etc/catalina.properties",
            driver = "/usr/share/java/mariadb-java-client.jar" })
         local env = { MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD = "fault-spec-pass" }
         local args = { "run", "app-tomcat", "--sandbox", s.name, "--yes", "--set", "tomcat.catalina_base=" .. base,
            "--set", "tomcat.ca=" .. s.tls.ca, "--set", "tomcat.user=" .. sys.user().name,
            "--set", "tomcat.group=" .. sys.stat(dir).group, "--set", "tomcat.jdbc_trust=jvm" }
         assert.equal(9, faults.kill_at(args, "after:file", env).signal)
         args[#args + 1] = "--resume"
         recovered(s, myseal(args, env))
         assert.matches('url="jdbc:mariadb://127%.0%.0%.1:%d+/biobank%?[^"]*useSsl=true',
            assert(sys.read_file(base .. "/conf/context.xml")))
         local r = assert(sys.run{ "keytool", "-list", "-keystore", base .. "/conf/db-truststore.p12",
            "-storepass:env", "MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD", env = env })
         -- the JDK's own CAs and the database's (the JVM then trusts only this store)
         assert.matches("myseal%-db%-ca, [^\n]*trustedCertEntry", r.stdout)
         assert.is_true(tonumber(r.stdout:match("Your keystore contains (%d+) entries")) > 100)
      end)
   end)

   describe("on a Debian lab host #lab", function()
      local MYSEAL = require("myseal.host").exe

      -- Runs at-rest inside the host with its own profile and `restart` as restart_command.
      local function at_rest(h, restart, timeout)
         return lab.run(h, { MYSEAL, "run", "at-rest", "--site", "/root/site.ini", "--yes",
            "--set", "server.restart_command=" .. restart, "--set", "server.start_timeout=" .. timeout,
            timeout = 300 })
      end

      -- The server answers within 30 s and the application's rows are there.
      local function settles(h)
         local deadline, c = sys.clock() + 30, nil
         repeat
            c = h:connect()
            if not c then sys.sleep(0.25) end
         until c or sys.clock() > deadline
         assert.is_truthy(c, "the server did not come back")
         local n = c:query("SELECT COUNT(*) FROM biobank.patients")[1][1]
         c:close()
         assert.equal(2000, n)
      end

      -- Key material the failed run made is still somewhere (moved aside, not deleted).
      local function key_kept(h)
         local found = lab.ok(h, { "sh", "-c", "find /etc/mysql /root -name 'keyfile*' -type f" })
         assert.matches("/etc/mysql/encryption/keyfile%.enc\n", found)
      end

      it("at-rest whose restart fails once: the old configuration comes back, the rows readable", function()
         lab.need_hosts(pending)
         local h <close> = lab.start{ name = "spec-fault-restart" }
         local r = at_rest(h, faults.failing_restart(h, 1), 30)
         assert.equal(1, r.status)
         assert.matches("step restart .*: the server did not restart: '/root/fault%-restart%-fails' failed "
            .. "%(exit status 1%): restart failed %(fault%)", r.stderr)
         assert.matches("the server is running again with its previous configuration", r.stderr)
         settles(h)
         key_kept(h)
      end)

      it("at-rest whose server is slower than start_timeout: it settles with its rows readable", function()
         lab.need_hosts(pending)
         local h <close> = lab.start{ name = "spec-fault-slow" }
         local r = at_rest(h, faults.slow_restart(h, 4), 1)
         assert.equal(1, r.status)
         assert.matches("the server did not accept connections within 1 s after the restart", r.stderr)
         settles(h)
         key_kept(h)
      end)
   end)

   it("a torn last journal line: a resumed run and the next one still read the journal", function()
      local s <close> = assert(sandbox.start{ name = "spec-kill-torn" })
      seed(s)
      local args = at_rest(s, dir)
      assert.equal(9, faults.kill_at(args, "after:sql").signal)
      faults.tear(faults.journal(STATE, "sandbox-" .. s.name, "at-rest"))
      local resume = { table.unpack(args) }
      resume[#resume + 1] = "--resume"
      local r = myseal(resume)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = myseal(args)
      recovered(s, r)
   end)
end)
