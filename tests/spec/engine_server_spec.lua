-- The engine against a real server (a MariaDB sandbox): plan changes nothing (files and a
-- dump), run, a second run, a restart that fails on a bad option and is rolled back, rollback
-- of SQL through undo, a secret in SQL. Runbook: tests/fixtures/runbooks/engine-server.lua.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local support = require "support.engine"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"

local RUNBOOK = support.FIXTURES .. "/runbooks/engine-server.lua"
local PASSWORD = "pa'ss-W0rd-\\-secret"

describe("engine on a server", function()
   local s, env, state_dir
   local original_cnf
   setup(function()
      s = assert(sandbox.start{ flavor = "mariadb" })
      original_cnf = assert(sys.read_file(s.cnf))
      state_dir = target.state_root() .. "/targets/sandbox-" .. s.name
      env = { MYSEAL_STATE_DIR = target.state_root(), MYSEAL_SECRET_TEST_PASSWORD = PASSWORD }
   end)
   teardown(function()
      if s then s:stop() end
      sys.rmtree(state_dir)
   end)

   local function myseal(...)
      return support.myseal({ ... }, env)
   end

   local function dump()
      local r = assert(sys.run{ "mariadb-dump", "--no-defaults", "--socket=" .. s.socket, "-uroot", "--all-databases",
                                "--skip-dump-date", "--events", "--routines" })
      assert(r.ok, r.stderr)
      local conn <close> = assert(s:connect())
      local vars = {}
      for _, row in ipairs(assert(conn:query("SHOW GLOBAL VARIABLES"))) do
         if not row[1]:match("^gtid_") then vars[#vars + 1] = row[1] .. "=" .. tostring(row[2]) end
      end
      return r.stdout, table.concat(vars, "\n")
   end

   local function files()
      -- every file of the sandbox but its data directory (and socket), and this target's state
      local snap = support.snapshot(s.dir)
      for name in pairs(snap) do
         if (s.dir .. "/" .. name):find(s.datadir, 1, true) == 1 or name:match("%.sock") then snap[name] = nil end
      end
      return snap, support.snapshot(state_dir)
   end

   local function variable(name)
      local conn <close> = assert(s:connect())
      return assert(conn:query("SHOW GLOBAL VARIABLES LIKE ?", name))[1][2]
   end

   it("plan changes nothing: every file and a dump of the server are the same", function()
      local f1, st1 = files()
      local d1, v1 = dump()
      local r = myseal("plan", RUNBOOK, "--sandbox", s.name)
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.matches("sql: CREATE DATABASE IF NOT EXISTS enginetest\n", r.stdout)
      assert.matches("sql: REPLACE INTO enginetest%.t VALUES %(20, 'row 20'%)\n", r.stdout)
      assert.matches("%+max_connections%s*=%s*123", r.stdout)
      assert.matches("restart the server: restart sandbox " .. s.name:gsub("%p", "%%%0"), r.stdout)
      assert.matches("sql: CREATE USER 'enginetest'@'localhost' IDENTIFIED BY '%*%*%*'\n", r.stdout)
      local f2, st2 = files()
      local d2, v2 = dump()
      assert.same(f1, f2)
      assert.same(st1, st2)
      assert.equal(d1, d2)
      assert.equal(v1, v2)
   end)

   it("runs, then has nothing to do; a secret in SQL never shows", function()
      local r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--json")
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.equal("123", variable("max_connections"))
      local conn <close> = assert(s:connect())
      assert.equal(20, conn:query("SELECT COUNT(*) FROM enginetest.t")[1][1])
      -- the account works with the password
      local app <close> = assert(s:connect{ user = "enginetest", password = PASSWORD })
      local journal = assert(sys.read_file(support.journals(target.state_root(), "sandbox-" .. s.name,
         "engine-server")[1]))
      for _, text in ipairs{ r.stdout, journal } do
         assert.is_nil(text:find("W0rd", 1, true))
         assert.truthy(text:find("IDENTIFIED BY '***'", 1, true))
      end
      r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes")
      assert.matches("run: nothing to do; every step was already done", r.stdout)
   end)

   it("runs statements in parallel, each journaled, and fails the step on a failed one", function()
      local conn <close> = assert(s:connect())
      assert.equal(7, #conn:query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'enginetest' "
         .. "AND table_name LIKE 'p%'"))
      local r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--only", "tables", "--set", "test.tables=9",
                       "--set", "test.bad_table=true")
      assert.equal(1, r.status)
      assert.matches("^myseal: runbook engine%-server, step tables %(.-%): SQL failed: CREATE TABLE enginetest%.bad "
         .. "%(id INT PRIMARY KEY, id INT%): Duplicate column name 'id' %(1060%)\n$", r.stderr)
      -- no new statement starts after the failure; those running finish
      local events = support.events(support.journals(target.state_root(), "sandbox-" .. s.name, "engine-server")[1])
      local started = #support.select(events, "effect", "step", "tables")
      assert.is_true(started >= 3 and started < 9, started .. " statements started")
      r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--resume", "--set", "test.tables=7")
      assert.equal("", r.stderr)
      assert.matches("%[3/6%] tables +already done", r.stdout)
      conn:exec("DROP TABLE IF EXISTS enginetest.p8, enginetest.p9")
   end)

   it("rolls back a restart that fails on a bad option: old config, server up", function()
      local before = assert(sys.read_file(s.cnf))
      local r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--set", "test.max_connections=77",
                       "--set", "test.extra_option=no_such_option_myseal=1")
      assert.equal(1, r.status)
      assert.matches("^myseal: runbook engine%-server, step restart %(.-engine%-server%.lua:%d+%): the server did not "
         .. "restart: .-unknown variable 'no[-_]such[-_]option[-_]myseal=1'.-\nrestored " .. s.cnf:gsub("%p", "%%%0")
         .. "\nthe server is running again with its previous configuration\n$", r.stderr)
      assert.equal(before, sys.read_file(s.cnf))
      assert.equal("123", variable("max_connections"))
      -- the journal says so, and the next run must resume
      local events = support.events(support.journals(target.state_root(), "sandbox-" .. s.name, "engine-server")[1])
      assert.equal(1, #support.select(events, "restore"))
      assert.equal("reverted", support.select(events, "step", "step", "option")[3].state)
      r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--resume", "--set", "test.max_connections=77")
      assert.equal("", r.stderr)
      assert.matches("%[4/6%] option +changed", r.stdout)
      assert.equal("77", variable("max_connections"))
   end)

   it("rolls back the last run: files from backups, SQL through undo, and a restart", function()
      local before = original_cnf
      local r = myseal("rollback", RUNBOOK, "--sandbox", s.name, "--yes")
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.equal("123", variable("max_connections"))
      -- again and again: one run further back each time, down to the first
      local rounds = 1
      repeat
         r = myseal("rollback", RUNBOOK, "--sandbox", s.name, "--yes", "--json")
         assert.equal("", r.stderr)
         rounds = rounds + 1
      until r.stdout:find("to roll back", 1, true) or rounds > 6
      assert.equal(4, rounds)   -- the 77 run, the parallel one, the first one; then nothing
      local conn <close> = assert(s:connect())
      assert.equal(0, #conn:query("SELECT 1 FROM mysql.user WHERE User = 'enginetest'"))
      assert.equal(0, #conn:query("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'enginetest'"))
      assert.not_equal("123", variable("max_connections"))
      assert.equal(before, sys.read_file(s.cnf))
   end)

   describe("through a site profile", function()
      -- the same server, reached as a site: [connection] socket, [server] restart_command
      local profile, site_state
      setup(function()
         local dir = s.dir
         profile = dir .. "/site.ini"
         assert(sys.write_file(profile, ("[site]\nname = engine-%s\n[server]\ncnf = %s\nrestart_command = '%s' sandbox "
            .. "restart %s\nstart_timeout = 30\n[connection]\nsocket = %s\nuser = root\n"):format(
            s.name, s.cnf, support.MYSEAL, s.name, s.socket)))
         site_state = target.state_root() .. "/targets/site-engine-" .. s.name
      end)
      teardown(function() sys.rmtree(site_state) end)

      it("connects, restarts with the site's command, and rolls back a failed restart", function()
         local original, default = assert(sys.read_file(s.cnf)), variable("max_connections")
         local r = myseal("run", RUNBOOK, "--site", profile, "--yes", "--set", "test.max_connections=88")
         assert.equal("", r.stderr)
         assert.matches("%[5/6%] restart +changed", r.stdout)
         assert.equal("88", variable("max_connections"))
         local before = assert(sys.read_file(s.cnf))
         r = myseal("run", RUNBOOK, "--site", profile, "--yes", "--set", "test.max_connections=89",
                    "--set", "test.extra_option=no_such_option_myseal=1")
         assert.equal(1, r.status)
         assert.matches("the server did not restart: '.-myseal sandbox restart " .. s.name .. "' failed %(exit status 1%): "
            .. ".-unknown variable 'no[-_]such[-_]option[-_]myseal=1'", r.stderr)
         assert.matches("\nthe server is running again with its previous configuration\n$", r.stderr)
         assert.equal(before, sys.read_file(s.cnf))
         assert.equal("88", variable("max_connections"))
         -- the failed run left nothing in place: rollback takes the one before it
         r = myseal("rollback", RUNBOOK, "--site", profile, "--yes")
         assert.equal("", r.stderr)
         assert.equal(default, variable("max_connections"))
         assert.equal(original, sys.read_file(s.cnf))
      end)

      it("says so when the profile rollback uses has no way to restart", function()
         local original = assert(sys.read_file(s.cnf))
         local r = myseal("run", RUNBOOK, "--site", profile, "--yes", "--set", "test.max_connections=87")
         assert.equal("", r.stderr)
         local norestart = s.dir .. "/norestart.ini"
         assert(sys.write_file(norestart, (assert(sys.read_file(profile)):gsub("\nrestart_command = [^\n]+", ""))))
         r = myseal("rollback", RUNBOOK, "--site", norestart, "--yes")
         assert.equal(1, r.status)
         assert.equal("myseal: rollback of engine-server: the server was not restarted: no way to restart the server: "
            .. "set restart_command, systemd_unit or windows_service in [server]\n", r.stderr)
         assert.equal(original, sys.read_file(s.cnf))   -- the files are back; the restart is the operator's
         assert(s:restart())
      end)
   end)

   it("retries a failed statement, gives it up, runs the small ones here and watches the others", function()
      local conn <close> = assert(s:connect())
      assert(conn:exec("CREATE DATABASE IF NOT EXISTS enginetest"))
      local r = myseal("run", RUNBOOK, "--sandbox", s.name, "--yes", "--only", "tables", "--set", "test.tables=8",
                       "--set", "test.bad_table=true", "--set", "test.on_error=retry")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("\n      given up: CREATE TABLE enginetest%.bad %(id INT PRIMARY KEY, id INT%)\n", r.stdout)
      assert.matches("\n      watched: yes\n", r.stdout)
      -- every attempt is journaled: the bad one three times, the others once
      local events = support.events(support.journals(target.state_root(), "sandbox-" .. s.name, "engine-server")[1])
      local bad = 0
      for _, e in ipairs(support.select(events, "effect", "step", "tables")) do
         if e.sql:find("enginetest.bad", 1, true) then bad = bad + 1 end
      end
      assert.same({ 3, 10 }, { bad, #support.select(events, "effect", "step", "tables") })
      -- p1 .. p8 but p3, whose statement was the bad one
      assert.equal(7, #conn:query("SELECT 1 FROM information_schema.tables WHERE table_schema = 'enginetest' "
         .. "AND table_name LIKE 'p%'"))
      assert.is_nil(r.stdout:find("given up: CREATE TABLE IF NOT EXISTS", 1, true))
      assert(conn:exec("DROP DATABASE enginetest"))
   end)
end)
