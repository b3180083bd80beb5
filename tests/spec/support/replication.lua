--- Replication between two servers for the specs (sandboxes or lab hosts, reached as root over
-- their sockets): the accounts, CHANGE MASTER TO on the replica, and what the replica shows,
-- read with plain SQL (not with myseal's own facts).
local sys = require "sys"
local mysql = require "mysql"

local M = {}

M.REPL_USER, M.CHECK_USER = "repl", "myseal_check"

--- Replication from `p` to `q`, as a DBA sets it up: the replication account and the check account
-- made on p after the position q starts from (so they replicate to q too), then CHANGE MASTER TO on
-- q, START SLAVE. p has a binary log and another server_id than q; their data is the same at that
-- position (the same template, or nothing yet). opts: `host`, `port` (p as q reaches it), `from`
-- (the host pattern of the accounts, default '%'), `retry` (MASTER_CONNECT_RETRY, default 1 s).
-- @return { repl_password, check_password }
function M.setup(p, q, opts)
   local pw = { repl = "repl-" .. sys.getpid() .. "-pw", check = "check-" .. sys.getpid() .. "-pw" }
   local c <close> = assert(p:connect())
   local at = assert(c:query("SHOW MASTER STATUS"))[1]
   local from = opts.from or "%"
   for _, sql in ipairs{
      { "CREATE USER ?@? IDENTIFIED BY ?", M.REPL_USER, from, pw.repl },
      { "GRANT REPLICATION SLAVE ON *.* TO ?@?", M.REPL_USER, from },
      { "CREATE USER ?@? IDENTIFIED BY ?", M.CHECK_USER, from, pw.check },
      { "GRANT SLAVE MONITOR ON *.* TO ?@?", M.CHECK_USER, from },
   } do assert(c:exec(table.unpack(sql))) end
   local r <close> = assert(q:connect())
   assert(r:exec("CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, "
      .. "MASTER_LOG_FILE = ?, MASTER_LOG_POS = ?, MASTER_CONNECT_RETRY = ?", opts.host, opts.port, M.REPL_USER,
      pw.repl, at[1], math.tointeger(tonumber(at[2])), opts.retry or 1))
   assert(r:exec("START SLAVE"))
   assert(M.wait_caught_up(p, q))
   return { repl_password = pw.repl, check_password = pw.check }
end

--- The rows of `sql` as root on a server (a sandbox or a lab host), each a list of its columns'
-- values.
function M.rows(s, sql, ...)
   local c <close> = assert(s:connect())
   local out = {}
   for i, r in ipairs(assert(c:query(sql, ...))) do out[i] = { table.unpack(r) } end
   return out
end

--- The replica's channel `name` (default ""), column -> value, as SHOW SLAVE STATUS shows it.
function M.status(q, name)
   local c <close> = assert(q:connect())
   local rows, meta = assert(c:query("SHOW SLAVE ? STATUS", name or ""))
   local out = {}
   for i, col in ipairs(meta.columns) do out[col] = rows[1] and rows[1][i] end
   return out
end

--- Waits until q has applied everything p has written so far (MASTER_POS_WAIT), up to 60 s.
-- @return true | nil, the channel's state
function M.wait_caught_up(p, q)
   local c <close> = assert(p:connect())
   local at = assert(c:query("SHOW MASTER STATUS"))[1]
   local r <close> = assert(q:connect())
   local got = assert(r:query("SELECT MASTER_POS_WAIT(?, ?, 60)", at[1], math.tointeger(tonumber(at[2]))))[1][1]
   if tonumber(got) and tonumber(got) >= 0 then return true end
   local st = M.status(q)
   return nil, ("the replica did not catch up: IO %s, SQL %s, %s %s"):format(st.Slave_IO_Running,
      st.Slave_SQL_Running, st.Last_IO_Error, st.Last_SQL_Error)
end

--- CHECKSUM TABLE of every base table of the application schemas on a server: "db.t" -> checksum.
function M.checksums(s)
   local c <close> = assert(s:connect())
   local out = {}
   for _, t in ipairs(assert(c:query([[SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
         WHERE TABLE_TYPE = 'BASE TABLE'
           AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')]]))) do
      local name = mysql.ident(t[1]) .. "." .. mysql.ident(t[2])
      out[t[1] .. "." .. t[2]] = assert(c:query("CHECKSUM TABLE " .. name))[1][2]
   end
   return out
end

--- Waits (up to `timeout` s, default 30) until the replica's channel `name` shows `io` as its IO
-- thread's state ("Yes", "Connecting"); returns its status then.
function M.wait_io(q, io, name, timeout)
   local deadline = sys.clock() + (timeout or 30)
   local st
   repeat
      st = M.status(q, name)
      if st.Slave_IO_Running == io then return st end
      sys.sleep(0.1)
   until sys.clock() > deadline
   return st
end

return M
