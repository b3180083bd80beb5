-- The engine under faults (issue: engine safety): a failed restart never loses the key, a run killed
-- during a restart leaves nothing down for good, a torn journal line does not block the target, the
-- server's user must be able to read what its configuration names, one run per server, commands
-- that do not end, and the messages that say so. Each case failed before the engine was fixed.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local E = require "support.engine"

local function select_one(c, sql)
   return assert(c:query(sql))[1][1]
end

describe("engine safety", function()
   local dir
   local root = require("myseal.engine.target").state_root()
   before_each(function()
      dir = assert(sys.tmpdir("safety-spec"))
      -- the server runs as mysql: the certificates the specs put under dir must be reachable
      assert(sys.chmod(dir, tonumber("755", 8)))
   end)
   after_each(function()
      sys.rmtree(dir)
      for _, n in ipairs(sys.dir(root .. "/targets") or {}) do
         if n:match("^site%-safety%-") then sys.rmtree(root .. "/targets/" .. n) end
      end
   end)

   -- a sandbox with an application table holding a known row
   local function server(name, options)
      local s = assert(sandbox.start{ name = name, options = options })
      local c <close> = assert(s:connect{ database = "mysql" })
      assert(c:exec("CREATE DATABASE clinic"))
      assert(c:exec("CREATE TABLE clinic.patients (id INT PRIMARY KEY, name VARCHAR(50)) ENGINE=InnoDB"))
      assert(c:exec("INSERT INTO clinic.patients SELECT seq, CONCAT('patient ', seq) FROM seq_1_to_200"))
      return s
   end

   -- the same server reached as a site: [connection] socket, [server] restart_command
   local function site_profile(s, restart_command, extra)
      local path = dir .. "/site.ini"
      assert(sys.write_file(path, ("[site]\nname = safety-%s\n[server]\ncnf = %s\ndatadir = %s\nuser = %s\n"
         .. "restart_command = %s\nstart_timeout = 30\n[connection]\nsocket = %s\nuser = root\n[keyring]\n"
         .. "dir = %s/keyring\nbackup_dir = %s/kb\n%s"):format(s.name, s.cnf, s.datadir, s.user or sys.user().name,
         restart_command, s.socket, s.dir, dir, extra or "")))
      return path
   end

   -- at-rest through a site whose restart command, the first time, stops the server and hangs; myseal
   -- and the command are killed then, with the server down. Afterwards the command restarts the
   -- sandbox as usual. Returns the profile.
   local function killed_during_restart(s, runbook_args)
      local script = dir .. "/restart.sh"
      assert(sys.write_file(script, ("#!/bin/sh\nif [ -e %s/first ]; then rm %s/first; kill %d; sleep 600; fi\n"
         .. "exec '%s' sandbox restart %s\n"):format(dir, dir, s.pid, E.MYSEAL, s.name), { mode = tonumber("755", 8) }))
      assert(sys.write_file(dir .. "/first", ""))
      local site = site_profile(s, script)
      runbook_args = runbook_args or { "at-rest" }
      local argv = table.move(runbook_args, 1, #runbook_args, 3, { E.MYSEAL, "run", log = dir .. "/run.log" })
      table.move({ "--site", site, "--yes" }, 1, 3, #argv + 1, argv)
      local pid = assert(sys.spawn(argv))
      assert.is_true(E.wait_for(function() return not sys.stat(dir .. "/first") end, 60), sys.read_file(dir .. "/run.log"))
      assert.is_true(E.wait_for(function() return not s:running() end, 30))
      assert(sys.kill(pid, "KILL"))
      assert(sys.run{ "pkill", "-KILL", "-f", script })
      assert(sys.run{ "pkill", "-KILL", "-f", "sleep 600" })
      assert.is_nil(s:connect())
      return site
   end

   it("keeps the key when a restart fails after InnoDB used it, and the server comes back", function()
      local s <close> = server("safety-key")
      local r = E.myseal({ "run", "at-rest", "--runbooks", E.FIXTURES .. "/runbooks/bogus-option", "--sandbox", s.name,
         "--yes", "--set", "keyring.backup_dir=" .. dir .. "/kb" }, {})
      assert.equal(1, r.status, r.stdout)
      assert.matches("step restart.-: the server did not restart: .-unknown variable 'no_such_option_myseal=1'", r.stderr)
      assert.matches("with its previous configuration it did not start either: .-Obtaining redo log encryption key",
         r.stderr)
      assert.matches("so the changes it may already have used are back:\n[^\n]*my%.cnf: the keyring's options", r.stderr)
      assert.matches("the server is running again with its previous configuration and the keyring\n", r.stderr)
      -- the key is where it was, the server is up and the data readable; the backup was made first
      local key = s.dir .. "/keyring/keyfile.enc"
      local content = assert(sys.read_file(key))
      assert.equal("Salted__", content:sub(1, 8))
      assert.equal(384, sys.stat(key).mode)
      assert.equal(2, #sys.dir(dir .. "/kb"))   -- the key file and its filekey
      local c <close> = assert(s:connect())
      assert.equal(200, select_one(c, "SELECT COUNT(*) FROM clinic.patients"))
      assert.equal("ACTIVE", select_one(c, "SELECT PLUGIN_STATUS FROM INFORMATION_SCHEMA.PLUGINS "
         .. "WHERE PLUGIN_NAME = 'file_key_management'"))
      assert.is_nil((sys.read_file(s.cnf) or ""):find("no_such_option_myseal", 1, true))
      -- the stock runbook goes on from there
      r = E.myseal({ "run", "at-rest", "--sandbox", s.name, "--yes", "--resume",
         "--set", "keyring.backup_dir=" .. dir .. "/kb" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.equal(content, sys.read_file(key))
      local c2 <close> = assert(s:connect())
      assert.equal(200, select_one(c2, "SELECT COUNT(*) FROM clinic.patients"))
   end)

   it("brings the server up on --resume after a kill during the restart, with the new configuration", function()
      local s <close> = server("safety-kill")
      local site = killed_during_restart(s)
      local r = E.myseal({ "run", "at-rest", "--site", site, "--yes" }, {})
      assert.equal(1, r.status)
      assert.matches("did not finish .- continue it with 'myseal run at%-rest %-%-site .-%-%-resume'", r.stderr)
      r = E.myseal({ "run", "at-rest", "--site", site, "--yes", "--resume" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("the last run stopped during a restart and the server does not answer: starting it with the new "
         .. "configuration", r.stdout)
      local c <close> = assert(s:connect())
      assert.equal(200, select_one(c, "SELECT COUNT(*) FROM clinic.patients"))
      assert.equal(0, select_one(c, [[SELECT COUNT(*) FROM INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION
         WHERE NAME = 'clinic/patients' AND ENCRYPTION_SCHEME = 0]]))
   end)

   it("after a kill during a restart and --resume, a later failed restart puts back only what came after", function()
      local s <close> = server("safety-kill-2")
      local rb = { "two-restarts", "--runbooks", E.FIXTURES .. "/runbooks/two-restarts" }
      local site = killed_during_restart(s, rb)
      local r = E.myseal({ "run", rb[1], rb[2], rb[3], "--site", site, "--yes", "--resume" }, {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.matches("starting it with the new configuration", r.stdout)
      assert.matches("step restart%-again .-: the server did not restart: .-unknown variable 'no_such_option_myseal=1'",
         r.stderr)
      assert.matches("the server is running again with its previous configuration", r.stderr)
      -- the option of the first restart, which the server runs with, stays; the bad one is gone
      local cnf = assert(sys.read_file(s.cnf))
      assert.matches("\nmax_connections%s*=%s*123\n", cnf)
      assert.is_nil(cnf:find("no_such_option_myseal", 1, true))
      local c <close> = assert(s:connect())
      assert.equal(123, select_one(c, "SELECT @@max_connections"))
      assert.equal(200, select_one(c, "SELECT COUNT(*) FROM clinic.patients"))
   end)

   it("brings the server up on rollback after a kill during the restart", function()
      local s <close> = server("safety-kill-rb")
      local site = killed_during_restart(s)
      local r = E.myseal({ "rollback", "at-rest", "--site", site, "--yes" }, {})
      -- up first; then the keyring's options stay (the server may have used its key), and the key
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("starting it with the new configuration", r.stdout)
      assert.matches("option%-file stays: the keyring configuration stays", r.stdout)
      assert.equal("Salted__", assert(sys.read_file(s.dir .. "/keyring/keyfile.enc")):sub(1, 8))
      assert.truthy(sys.stat(s.dir .. "/keyring/filekey"))
      local c <close> = assert(s:connect())
      assert.equal(200, select_one(c, "SELECT COUNT(*) FROM clinic.patients"))
   end)

   it("sets a torn last journal line aside and goes on", function()
      local work = dir .. "/work"
      assert(sys.mkdir(work))
      local site = E.profile(dir, ("[site]\nname = torn\n[test]\ndir = %s\n"):format(work))
      local env = { MYSEAL_STATE_DIR = dir .. "/state", MYSEAL_SECRET_TEST_TOKEN = "tok-123" }
      local argv = { "run", E.FIXTURES .. "/runbooks/engine-files.lua", "--site", site, "--yes" }
      local r = E.myseal(argv, env)
      assert.equal(0, r.status, r.stderr)
      -- a run killed while writing a long line leaves half of it
      local journal = E.journals(dir .. "/state", "site-torn", "engine-files")[1]
      local events = E.events(journal)
      events[#events] = nil   -- its end: the run was killed
      local lines = {}
      for _, e in ipairs(events) do lines[#lines + 1] = json.encode(e) end
      local torn = json.encode{ event = "log", message = ("x"):rep(5000) }
      assert(sys.write_file(journal, table.concat(lines, "\n") .. "\n" .. torn:sub(1, 4099)))
      argv[#argv + 1] = "--resume"
      r = E.myseal(argv, env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("the last line was cut short %(4099 bytes at byte %d+, a killed run%): set aside in .-%.torn", r.stdout)
      assert.equal(torn:sub(1, 4099) .. "\n", sys.read_file(journal .. ".torn"))
      -- every line is whole now, and later runs and rollbacks read it
      for line in assert(sys.read_file(journal)):gmatch("[^\n]+") do assert.truthy(json.decode(line), line) end
      -- a rollback sets a torn line aside too, and says so
      assert(sys.write_file(journal, assert(sys.read_file(journal)) .. torn:sub(1, 100)))
      r = E.myseal({ "rollback", E.FIXTURES .. "/runbooks/engine-files.lua", "--site", site, "--yes" }, env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("the last line was cut short %(100 bytes at byte %d+, a killed run%): set aside in .-%.torn", r.stdout)
   end)

   it("refuses a restart the server's user could not survive, and says which path stops it", function()
      local s <close> = server("safety-read")
      local before = s.pid
      -- the site's own certificate pair, its key where the server's user cannot go
      local private = dir .. "/private"
      assert(sys.mkdir(private, tonumber("700", 8)))
      assert(sys.chmod(dir, tonumber("755", 8)))
      local pki = require "pki"
      local key = assert(pki.genkey{ type = "ec", curve = "P-256" })
      local ca = assert(pki.self_signed{ key = key, days = 365, subject = "/CN=safety CA" })
      local leaf_key = assert(pki.genkey{ type = "ec", curve = "P-256" })
      local leaf = assert(ca:sign{ ca_key = key, public_key = leaf_key, subject = "/CN=localhost", usage = "server",
         san = { "localhost", "127.0.0.1" }, days = 90 })
      assert(sys.write_file(dir .. "/ca.pem", ca:pem()))
      assert(sys.write_file(dir .. "/cert.pem", leaf:pem()))
      assert(sys.write_file(private .. "/server-key.pem", leaf_key:pem(), { mode = tonumber("600", 8) }))
      local r = E.myseal({ "run", "in-transit", "--sandbox", s.name, "--yes", "--set", "server.user=mysql",
         "--set", "pki.server_names=localhost,127.0.0.1", "--set", "pki.ca_cert=" .. dir .. "/ca.pem", "--set", "pki.server_cert=" .. dir .. "/cert.pem",
         "--set", "pki.server_key=" .. private .. "/server-key.pem" }, {})
      assert.equal(1, r.status, r.stdout)
      assert.equal(("myseal: runbook in-transit, step tls-load (%s/runbooks/in-transit.lua:%s): the server (running as "
         .. "mysql) would not start: ssl_key = %s/server-key.pem: mysql cannot reach %s/server-key.pem: it may not "
         .. "enter %s (Permission denied); nothing was restarted\n"):format(require("myseal.host").home,
            r.stderr:match("in%-transit%.lua:(%d+)") or "?", private, private, private), r.stderr)
      assert.equal(before, s:refresh().pid)   -- never stopped
   end)

   it("refuses a profile whose server user is not the one the server runs as, before any key is made", function()
      local s <close> = server("safety-user")
      for _, rb in ipairs{ { "at-rest", "--set", "keyring.backup_dir=" .. dir .. "/kb" }, { "in-transit" } } do
         local r = E.myseal({ "run", rb[1], "--sandbox", s.name, "--yes", "--set", "server.user=root", rb[2], rb[3] },
            {})
         assert.equal(2, r.status, r.stdout .. r.stderr)
         assert.matches(("%%[server%%] user is root, but the server runs as mysql %%(pid %d%%): the key and "
            .. "certificate files must be its own; set %%[server%%] user = mysql\n$"):format(s.pid), r.stderr)
      end
      assert.is_nil(sys.stat(s.dir .. "/keyring"))
      assert.is_nil(sys.stat(s.dir .. "/tls-myseal"))
   end)

   it("runs one run per server, whatever profile names it", function()
      local work = dir .. "/work"
      assert(sys.mkdir(work))
      local env = { MYSEAL_STATE_DIR = dir .. "/state", MYSEAL_SECRET_TEST_TOKEN = "tok-123" }
      local rb = E.FIXTURES .. "/runbooks/engine-files.lua"
      local function profile(name)
         local p = dir .. "/" .. name .. ".ini"
         assert(sys.write_file(p, ("[site]\nname = %s\n[server]\ndatadir = %s\n[test]\ndir = %s\ncount = 40\ndelay = 0.05\n")
            :format(name, work, work)))
         return p
      end
      local one, two = profile("one"), profile("two")
      local pid = assert(sys.spawn{ E.MYSEAL, "run", rb, "--site", one, "--yes", env = env, log = dir .. "/one.log" })
      assert.is_true(E.wait_for(function() return sys.stat(work .. "/slow/2.txt") ~= nil end, 30))
      local r = E.myseal({ "run", rb, "--site", two, "--yes" }, env)
      assert.equal(1, r.status)
      assert.matches(("^myseal: the server %s is busy: another myseal run works on it"):format(work:gsub("%p", "%%%0")),
         r.stderr)
      assert.is_true(E.wait_for(function() return not sys.alive(pid) end, 60))
   end)

   it("does not wait on a restart command's daemon, and stops a command that hangs on SIGTERM", function()
      local s <close> = server("safety-daemon")
      -- a restart command whose child keeps its output open (a daemon started in the background)
      local script = dir .. "/restart.sh"
      assert(sys.write_file(script, ("#!/bin/sh\n'%s' sandbox restart %s\nsleep 600 &\necho restarted\n")
         :format(E.MYSEAL, s.name), { mode = tonumber("755", 8) }))
      local site = site_profile(s, script)
      local t0 = sys.clock()
      local r = E.myseal({ "run", "in-transit", "--site", site, "--yes", "--set", "pki.dir=" .. dir .. "/tls" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.is_true(sys.clock() - t0 < 120)
      sys.run{ "pkill", "-f", "sleep 600" }
      -- a restart command that never ends: SIGTERM stops the run between two changes, resumable
      assert(sys.write_file(script, "#!/bin/sh\nsleep 600\n", { mode = tonumber("755", 8) }))
      local pid = assert(sys.spawn{ E.MYSEAL, "run", "at-rest", "--site", site, "--yes", log = dir .. "/hang.log" })
      assert.is_true(E.wait_for(function()
         return (sys.run{ "pgrep", "-f", "sleep 600" } or {}).stdout ~= ""
      end, 60), sys.read_file(dir .. "/hang.log"))
      assert(sys.kill(pid, "TERM"))
      assert.is_true(E.wait_for(function() return not sys.alive(pid) end, 20))
      local log = assert(sys.read_file(dir .. "/hang.log"))
      assert.matches("myseal: interrupted in step restart, between two changes; continue with 'myseal run at%-rest "
         .. "%-%-site .- %-%-resume'\n$", log)
      assert.equal("", (sys.run{ "pgrep", "-f", "sleep 600" }).stdout)
   end)

   it("says true things: a restart command that fails before stopping anything, and nothing to confirm", function()
      local s <close> = server("safety-false")
      local site = site_profile(s, "/bin/false")
      local r = E.myseal({ "run", "at-rest", "--site", site, "--yes" }, {})
      assert.equal(1, r.status)
      assert.matches("'/bin/false' failed %(exit status 1%)", r.stderr)
      assert.matches("the server was not stopped and runs as before; its files are back as they were\n$", r.stderr)
      assert.is_nil(r.stderr:find("did not start", 1, true))
      local c <close> = assert(s:connect())
      assert.equal(200, select_one(c, "SELECT COUNT(*) FROM clinic.patients"))
      -- a run refused by its preflight changed nothing: the next plain run is not blocked by it
      local site2 = site_profile(s, "'" .. E.MYSEAL .. "' sandbox restart " .. s.name)
      r = E.myseal({ "run", "in-transit", "--site", site2, "--yes", "--set", "pki.dir=" .. dir .. "/tls",
         "--set", "tls.versions=TLSv1.2", "--set", "pki.ca_cert=" .. dir .. "/nonexistent.pem" }, {})
      assert.equal(1, r.status)
      r = E.myseal({ "run", "in-transit", "--site", site2, "--yes", "--set", "pki.dir=" .. dir .. "/tls" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      -- with nothing to do, run needs no --yes
      r = E.myseal({ "run", "in-transit", "--site", site2, "--set", "pki.dir=" .. dir .. "/tls" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("nothing to do", r.stdout)
   end)

   it("asks before a resumed run takes other parameters", function()
      local work = dir .. "/work"
      assert(sys.mkdir(work))
      local env = { MYSEAL_STATE_DIR = dir .. "/state", MYSEAL_SECRET_TEST_TOKEN = "tok-123", MYSEAL_TEST_KILL = "effect/file@after#3" }
      local site = E.profile(dir, ("[site]\nname = params\n[test]\ndir = %s\n"):format(work))
      local rb = E.FIXTURES .. "/runbooks/engine-files.lua"
      local r = E.myseal({ "run", rb, "--site", site, "--yes" }, env)
      assert.equal(9, r.signal, r.stdout .. r.stderr)   -- killed at the third file
      env.MYSEAL_TEST_KILL = nil
      r = E.myseal({ "run", rb, "--site", site, "--resume", "--set", "test.count=7" }, env)
      assert.equal(2, r.status, r.stdout)
      assert.equal("myseal: --resume: the parameters differ from the run this one continues: test.count (was 5, now 7); "
         .. "run with the same parameters, or confirm with --yes\n", r.stderr)
      r = E.myseal({ "run", rb, "--site", site, "--resume", "--yes" }, env)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("run: resumed and finished: %d+ steps? completed now, %d+ done before", r.stdout)
   end)

   it("takes a malformed option file as bad input: exit 2, with its line", function()
      local s <close> = server("safety-cnf")
      local bad = dir .. "/my.cnf"
      assert(sys.write_file(bad, "[mysqld]\nport = 1\n[mysqld\nsocket = /x\n"))
      local r = E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "server.cnf=" .. bad,
         "--set", "keyring.backup_dir=" .. dir .. "/kb" }, {})
      assert.equal(2, r.status, r.stdout)
      assert.matches(bad:gsub("%p", "%%%0") .. ":3: ", r.stderr)
   end)
end)
