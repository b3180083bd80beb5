-- runbooks/at-rest.lua stays online: an application session holds an open transaction on two
-- tables while the run rebuilds them; a client loop measures every query of the application on
-- those tables, and none may take a second. The run names the session, gives up on the tables after
-- at_rest.lock_give_up, stops at once on Ctrl-C, and --resume finishes once the lock is free.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local E = require "support.engine"

-- InnoDB tables of the schema that the server does not report encrypted
local function plain(s)
   local c <close> = assert(s:connect())
   local out = {}
   for _, r in ipairs(assert(c:query([[
      SELECT t.NAME FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
      LEFT JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
      WHERE t.NAME LIKE 'app/%' AND NOT COALESCE(e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0, FALSE)
      ORDER BY 1]]))) do out[#out + 1] = r[1] end
   return out
end

-- The server's own tablespaces that are encrypted
local function server_spaces(c)
   local out = {}
   for _, row in ipairs(assert(c:query([[SELECT s.NAME FROM INFORMATION_SCHEMA.INNODB_SYS_TABLESPACES s
         JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = s.SPACE
         WHERE (s.NAME = 'innodb_system' OR s.NAME LIKE 'mysql/%') AND e.MIN_KEY_VERSION > 0 ORDER BY 1]]))) do
      out[#out + 1] = row[1]
   end
   return out
end

describe("at-rest online", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("at-rest-online-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   it("never makes the application wait a second, names the session holding a lock, and resumes", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-online" })
      local set = { "--set", "keyring.backup_dir=" .. dir .. "/kb", "--set", "at_rest.method=rebuild",
                    "--set", "at_rest.rehearsal=false", "--set", "at_rest.disk_scan=no" }
      local function argv(...)
         local a = { ... }
         for _, x in ipairs(set) do a[#a + 1] = x end
         return a
      end
      -- the keyring first (the restart would end every session), then tables made plain on purpose
      local r = E.myseal(argv("run", "at-rest", "--sandbox", s.name, "--yes"), {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local c <close> = assert(s:connect{ database = "mysql" })
      assert(c:exec("CREATE DATABASE app"))
      assert(c:exec("CREATE TABLE app.busy (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)) ENCRYPTED=NO"))
      -- large enough to be rebuilt by a worker, whose lock wait the watchdog cuts short
      assert(c:exec("CREATE TABLE app.big (id INT PRIMARY KEY, v TEXT) ENCRYPTED=NO"))
      assert(c:exec("INSERT INTO app.big SELECT seq, REPEAT(MD5(seq), 32) FROM seq_1_to_20000"))
      assert(c:exec("ANALYZE TABLE app.big"))
      for i = 1, 3 do assert(c:exec(("CREATE TABLE app.t%d (id INT PRIMARY KEY) ENCRYPTED=NO"):format(i))) end
      local size = c:query("SELECT DATA_LENGTH FROM information_schema.TABLES WHERE TABLE_NAME = 'big'")[1][1]
      assert.is_true(tonumber(size) >= 16 * 1024 * 1024)
      local sum = c:query("CHECKSUM TABLE app.big")[1][2]
      assert.same({ "app/big", "app/busy", "app/t1", "app/t2", "app/t3" }, plain(s))

      -- the application's session with an open transaction on both tables
      local blocker <close> = assert(s:connect())
      assert(blocker:exec("START TRANSACTION"))
      assert(blocker:query("SELECT COUNT(*) FROM app.busy"))
      assert(blocker:query("SELECT COUNT(*) FROM app.big"))
      local holder = blocker:query("SELECT CONNECTION_ID()")[1][1]
      -- the rest of the application: a loop of queries on those tables, each one timed
      local stop, lat = dir .. "/stop", dir .. "/latencies"
      local loop = assert(sys.spawn{ E.MYSEAL, "lua", "-e", ([[
         local sys = require "sys"
         local c = assert(require("mysql").connect{ socket = %q, user = "root" })
         assert(sys.write_file(%q, c:query("SELECT CONNECTION_ID()")[1][1]))
         local worst, n = 0, 0
         while not sys.stat(%q) do
            local t = sys.clock()
            assert(c:query("INSERT INTO app.busy (v) VALUES ('from the application')"))
            assert(c:query("SELECT v FROM app.big WHERE id = 7"))
            worst, n = math.max(worst, sys.clock() - t), n + 1
            sys.sleep(0.005)
         end
         assert(sys.write_file(%q, ("%%d %%.3f"):format(n, worst)))
      ]]):format(s.socket, dir .. "/loop-id", stop, lat), log = dir .. "/loop.log" })
      assert.is_true(E.wait_for(function() return sys.stat(dir .. "/loop-id") ~= nil end, 30))
      local app = tonumber(sys.read_file(dir .. "/loop-id"))

      -- the run tries the two tables again and again, then gives up on them, naming the session
      r = E.myseal(argv("run", "at-rest", "--sandbox", s.name, "--yes", "--set", "at_rest.lock_give_up=3"), {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      -- without metadata_lock_info every session with an open transaction is named: the holder, and the
      -- application's loop when one of its statements is under way at that moment
      local function session(id)
         return ("session %d %%(root@localhost, in a transaction for %%d+ seconds?%%)"):format(id)
      end
      local function named(text, before, after)
         for _, list in ipairs{ session(holder), session(holder) .. ", " .. session(app) } do
            if text:match(before .. "held by another session; with an open transaction: " .. list .. after) then
               return true
            end
         end
         return false
      end
      assert.is_true(named(r.stdout, "warning: `app`.`big` waits for its metadata lock: ", "; trying again without "
         .. "making the application wait\n"), r.stdout)
      local big, busy = r.stderr:match("^myseal: runbook at%-rest, step encrypt%-tables %([^)]+%): gave up on 2 tables "
         .. "after 3 seconds of waiting for their metadata lock, so as not to make the application wait: `app`.`big`: "
         .. "(.-); `app`.`busy`: (.-); the other tables are done: once the lock is free, run again with %-%-resume\n$")
      assert.is_string(big, r.stderr)
      assert.is_true(named(big, "^", "$"), big)
      assert.is_true(named(busy, "^", "$"), busy)
      assert.same({ "app/big", "app/busy" }, plain(s))

      -- with the server's metadata_lock_info plugin the holder is known for sure
      assert(c:exec("INSTALL SONAME 'metadata_lock_info'"))
      -- Ctrl-C while it waits: it stops at once, resumable
      local log = dir .. "/resume.log"
      local resume = argv(E.MYSEAL, "run", "at-rest", "--sandbox", s.name, "--yes", "--resume")
      resume.log = log
      local pid = assert(sys.spawn(resume))
      assert.is_true(E.wait_for(function()
         return (sys.read_file(log) or ""):find("waits for its metadata lock", 1, true)
      end, 30), sys.read_file(log))
      local t0 = sys.clock()
      assert(sys.kill(pid, "INT"))
      while sys.alive(pid) do sys.sleep(0.01) end
      assert.is_true(sys.clock() - t0 < 3, "Ctrl-C took " .. (sys.clock() - t0) .. " s")
      local text = sys.read_file(log)
      assert.matches("interrupted in step encrypt%-tables, between two changes; continue with 'myseal run at%-rest "
         .. "%-%-sandbox spec%-at%-rest%-online %-%-resume'", text)
      assert.matches(("waits for its metadata lock: [^\n]*session %d %%(root@localhost, in a transaction for %%d+ "
         .. "seconds?%%)[^\n]* holds? its metadata lock; trying again"):format(holder), text)

      -- the session ends its transaction: the run finishes the two tables
      assert(blocker:exec("COMMIT"))
      r = E.myseal(argv("run", "at-rest", "--sandbox", s.name, "--yes", "--resume"), {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({}, plain(s))
      assert.equal(sum, c:query("CHECKSUM TABLE app.big")[1][2])
      -- the rebuild method too has the threads encrypt what no ALTER reaches
      assert.same({ "innodb_system", "mysql/gtid_slave_pos", "mysql/innodb_index_stats", "mysql/innodb_table_stats",
                    "mysql/transaction_registry" }, server_spaces(c))

      assert(sys.write_file(stop, ""))
      while sys.alive(loop) do sys.sleep(0.01) end
      local n, worst = (sys.read_file(lat) or ""):match("^(%d+) ([%d.]+)$")
      assert.is_truthy(n, sys.read_file(dir .. "/loop.log"))
      assert.is_true(tonumber(n) > 100, "the application's loop ran " .. n .. " times")
      assert.is_true(tonumber(worst) < 1, "an application query took " .. worst .. " s")
   end)
end)
