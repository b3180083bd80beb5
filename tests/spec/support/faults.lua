--- Faults on demand, for specs (not for users): a myseal run killed with SIGKILL at a named
-- journal event or while its server is down, restarts that fail or are slower than
-- start_timeout, a second session holding a metadata lock, a connected application pool, a
-- torn last journal line. The kill points are the engine's MYSEAL_TEST_KILL
-- (lua/myseal/engine/fault.lua).
local sys = require "sys"
local mysql = require "mysql"

local M = {}

local EXE = require("myseal.host").exe

local function argv_of(args, extra)
   local cmd = { EXE }
   for _, a in ipairs(args) do cmd[#cmd + 1] = a end
   for k, v in pairs(extra or {}) do cmd[k] = v end
   return cmd
end

--- Runs `myseal ARGS...` and has it SIGKILL itself at a journal point: "before:KIND" (the
-- effect is journaled, not done), "after:KIND" (done, nothing journaled after it) or
-- "event:NAME", optionally ":N" for the Nth. KIND: file, sql, restart, mkdir, remove, run, wait.
-- @param args myseal's arguments
-- @param point the kill point
-- @param env extra environment
-- @return sys.run's result (its `signal` is 9 when the point was reached)
function M.kill_at(args, point, env)
   -- in the engine's own words (lua/myseal/engine/fault.lua)
   local when, what, n = point:match("^(%a+):([%w_]+):?(%d*)$")
   local at = ({ before = "effect/%s@after", after = "done/%s", event = "%s@after" })[when]
   assert(at, "kill_at: bad point " .. point)
   local e = { MYSEAL_TEST_KILL = at:format(what) .. (n ~= "" and ("#" .. n) or "") }
   for k, v in pairs(env or {}) do e[k] = v end
   return assert(sys.run(argv_of(args, { env = e, timeout = 300 })))
end

--- Runs `myseal ARGS...` and SIGKILLs it (and the commands it runs) as soon as `when()` is
-- true, e.g. while its server is down in the middle of a restart.
-- @return true when it was killed, false when it ended first; its log
function M.kill_when(args, when, env, timeout)
   local dir = assert(sys.tmpdir("fault"))
   local log = dir .. "/log"
   local pid = assert(sys.spawn(argv_of(args, { env = env, log = log })))
   local deadline = sys.clock() + (timeout or 120)
   local killed = false
   while sys.alive(pid) and sys.clock() < deadline do
      if when() then
         M.kill_tree(pid)
         killed = true
         break
      end
      sys.sleep(0.005)
   end
   while sys.alive(pid) do sys.sleep(0.01) end
   local text = sys.read_file(log) or ""
   sys.rmtree(dir)
   return killed, text
end

--- SIGKILLs a process and its descendants (found through /proc), children first stopped.
function M.kill_tree(pid)
   sys.kill(pid, "STOP")
   for _, name in ipairs(sys.dir("/proc") or {}) do
      local stat = name:match("^%d+$") and sys.read_file("/proc/" .. name .. "/stat")
      local ppid = stat and stat:match("%) %S+ (%d+)")
      if ppid and tonumber(ppid) == pid then M.kill_tree(tonumber(name)) end
   end
   sys.kill(pid, "KILL")
end

--- A condition for kill_when: the process `pid` has ended (a server being restarted).
function M.gone(pid)
   return function() return not sys.alive(pid) end
end

--- Cuts the last line of a journal in the middle, as a kill during a large write leaves it.
-- @param path journal file
-- @return the bytes cut
function M.tear(path)
   local data = assert(sys.read_file(path))
   local last_start = (data:sub(1, -2):match(".*()\n") or 0) + 1
   local keep = last_start + math.floor((#data - last_start) / 2)
   assert(sys.write_file(path, data:sub(1, keep - 1)))
   return #data - keep + 1
end

--- Writes a restart command for a lab host whose first `times` (default 1) calls fail: each
-- stops the server (as a start that fails after a config change leaves it) and exits 1; later
-- calls restart it with Debian's script. Returns its path inside the host.
function M.failing_restart(host, times)
   local name = "fault-restart-fails"
   assert(sys.write_file(host:paths().home .. "/" .. name, ([[
#!/bin/sh
n=$(cat /root/%s.count 2>/dev/null || echo 0)
echo $((n + 1)) > /root/%s.count
if [ "$n" -lt %d ]; then
  /etc/init.d/mariadb stop >/dev/null 2>&1
  echo 'restart failed (fault)' >&2
  exit 1
fi
exec /etc/init.d/mariadb restart >/dev/null 2>&1
]]):format(name, name, times or 1), { mode = tonumber("755", 8) }))
   return "/root/" .. name
end

--- Writes a restart command for a lab host that stops the server and returns at once, the
-- server coming up `seconds` later (slower than a start_timeout below that). Returns its path
-- inside the host.
function M.slow_restart(host, seconds)
   local name = "fault-restart-slow"
   assert(sys.write_file(host:paths().home .. "/" .. name, ([[
#!/bin/sh
/etc/init.d/mariadb stop >/dev/null 2>&1
(sleep %d; /etc/init.d/mariadb start) >/dev/null 2>&1 </dev/null &
exit 0
]]):format(seconds), { mode = tonumber("755", 8) }))
   return "/root/" .. name
end

--- A second session holding an open transaction that has read `table` (a metadata lock:
-- ALTER TABLE on it waits). `connect` is a sandbox's connect options (default: root, socket).
-- @return object with :release()
function M.hold_metadata_lock(sandbox, table_name, connect)
   local c = assert(sandbox:connect(connect))
   assert(c:exec("START TRANSACTION"))
   assert(c:query("SELECT * FROM " .. table_name .. " LIMIT 1"))
   return { conn = c, release = function(self) if self.conn then self.conn:close(); self.conn = nil end end }
end

--- A connected application pool: `n` TCP sessions of `opts` (mysql.connect's), each kept open
-- and able to run a query on demand, as a pool keeps its idle connections.
-- @return pool with :query_all() (true or nil, message of the first failure) and :close()
function M.pool(opts, n)
   local p = { conns = {} }
   for i = 1, n or 4 do p.conns[i] = assert(mysql.connect(opts)) end
   function p:query_all(sql)
      for _, c in ipairs(self.conns) do
         local ok, err = c:query(sql or "SELECT 1")
         if not ok then return nil, err end
      end
      return true
   end
   function p:close()
      for _, c in ipairs(self.conns) do c:close() end
      self.conns = {}
   end
   return p
end

--- The last journal of a runbook on a target, newest first (in `state`).
function M.journal(state, target, runbook)
   local list = require("myseal.engine.journal").list(state .. "/targets/" .. target, runbook)
   return list[1]
end

return M
