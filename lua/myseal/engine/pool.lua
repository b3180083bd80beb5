--- ctx:sql_parallel: many statements that change the server, several at a time, each on a
-- connection of its own in a worker process (engine/worker.lua).
-- @module myseal.engine.pool
local sys = require "sys"
local sqltext = require "myseal.sqltext"
local guard = require "myseal.engine.guard"

local methods = {}

--- Run many statements that change the server, up to `parallel` at a time, each on its own
-- connection (a worker process), largest first as given. Every statement is journaled before
-- it starts; progress is reported as statements finish (weighted, e.g. by table size). Ctrl-C
-- stops starting new ones and waits for those running. A failed statement lets the running ones
-- finish, then fails the step. In plan mode they are shown in order.
-- @param list of `{ sql = , args = { ... }, weight = number }` (or plain SQL strings)
-- @param opts `{ parallel = 2, label = "tables", unit = "bytes" }`
-- @return true
function methods:sql_parallel(list, opts)
   opts = opts or {}
   local parallel = math.tointeger(opts.parallel or 1)
   if not parallel or parallel < 1 then error("ctx:sql_parallel: parallel must be a positive integer", 2) end
   local items, total = {}, 0
   for i, it in ipairs(list) do
      if type(it) == "string" then it = { sql = it } end
      local args = it.args or {}
      items[i] = { sql = it.sql, args = args, weight = it.weight or 1,
                   shown = sqltext.format(it.sql, { n = #args, table.unpack(args) }) }
      total = total + items[i].weight
   end
   if self.planning or parallel == 1 then
      local done = 0
      for _, it in ipairs(items) do
         self:sql(it.sql, table.unpack(it.args))
         done = done + it.weight
         self:progress(done, total, opts.label, opts)
      end
      return true
   end
   return guard.allow(function()
      local run = self._run
      local spec, password = run.target:connect_spec(run.values, run.secrets)
      if not spec then self:fail("cannot connect to the server: %s", password) end
      local json = require "myseal.json"
      -- the jobs live in the target's scratch directory, which the next run clears if this one is killed
      local scratch = run.scratch
      if scratch then assert(sys.mkdir(scratch, tonumber("700", 8))) end
      local dir, err = sys.tmpdir("myseal-sql", scratch)
      if not dir then self:fail("%s", err) end
      local running, count, nexti, done = {}, 0, 1, 0
      local failure, stopping = nil, false
      local exe = require("myseal.host").exe
      self:progress(0, total, opts.label, opts)
      while (not stopping and nexti <= #items) or count > 0 do
         while not stopping and nexti <= #items and count < parallel do
            if sys.interrupted() then
               stopping = "interrupted"
               break
            end
            local it = items[nexti]
            self:_effect{ kind = "sql", sql = it.shown, summary = "sql: " .. it.shown }
            local job = ("%s/%d.json"):format(dir, nexti)
            assert(sys.write_file(job, json.encode{ spec = spec, sql = it.sql, args = it.args },
               { mode = tonumber("600", 8) }))
            local pid, serr = sys.spawn{ exe, "lua", "-e", "require('myseal.engine.worker').main()",
                                         env = { MYSEAL_WORKER_JOB = job }, stdin = password or "",
                                         log = job .. ".log" }
            if not pid then
               failure, stopping = serr, "failed"
               break
            end
            running[pid] = { item = it, job = job }
            count = count + 1
            nexti = nexti + 1
         end
         sys.sleep(0.02)
         for pid, r in pairs(running) do
            if not sys.alive(pid) then
               running[pid] = nil
               count = count - 1
               local out = sys.read_file(r.job .. ".out")
               local res = out and json.decode(out)
               if not res then
                  local log = sys.read_file(r.job .. ".log") or ""
                  res = { ok = false, message = "the worker died: " .. log:gsub("%s+$", "") }
               end
               if res.ok then
                  done = done + r.item.weight
                  self:progress(done, total, opts.label, opts)
               elseif not failure then
                  failure = ("SQL failed: %s: %s (%s)"):format(r.item.shown, res.message, tostring(res.errno))
                  stopping = "failed"
               end
            end
         end
         if not stopping and sys.interrupted() then stopping = "interrupted" end
      end
      sys.rmtree(dir)
      if failure then self:fail("%s", failure) end
      if stopping == "interrupted" then self:_interrupt() end
      return true
   end)
end

return methods
