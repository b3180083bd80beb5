--- A worker process for ctx:sql_parallel: runs one statement on its own connection.
-- Started as `myseal lua -e "require('myseal.engine.worker').main()"` with the job file in
-- $MYSEAL_WORKER_JOB (JSON: { spec, sql, args, before = { { sql, args } } }) and the password, if
-- any, on its standard input (never in its environment, which other processes of the same user can
-- read); writes its connection's id to JOB.id once connected (so the pool can watch and stop the
-- statement), runs the `before` statements (session settings), then the statement, and writes
-- { ok, affected } or { ok = false, message, errno } to JOB.out.
-- @module myseal.engine.worker
local json = require "myseal.json"
local sys = require "sys"
local target = require "myseal.engine.target"

local M = {}

--- Run the job named by $MYSEAL_WORKER_JOB.
function M.main()
   local job_path = assert(os.getenv("MYSEAL_WORKER_JOB"), "MYSEAL_WORKER_JOB is not set")
   local job = assert(json.decode(assert(sys.read_file(job_path))))
   local result
   local password = io.read("a")
   local conn, err, errno = target.connect_spec(job.spec, password ~= "" and password or nil)
   if not conn then
      result = { ok = false, message = "cannot connect to the server: " .. tostring(err), errno = errno }
   else
      local id = conn:query("SELECT CONNECTION_ID()")
      if id then assert(sys.write_file(job_path .. ".id", tostring(id[1][1]), { mode = tonumber("600", 8) })) end
      local rows, meta, qerrno = true, nil, nil
      for _, b in ipairs(job.before or {}) do
         rows, meta, qerrno = conn:query(b.sql, table.unpack(b.args or {}))
         if not rows then break end
      end
      if rows then rows, meta, qerrno = conn:query(job.sql, table.unpack(job.args or {})) end
      result = rows and { ok = true, affected = type(meta) == "table" and meta.affected_rows or nil }
         or { ok = false, message = tostring(meta), errno = qerrno }
      conn:close()
   end
   assert(sys.write_file(job_path .. ".out", json.encode(result), { mode = tonumber("600", 8) }))
end

return M
