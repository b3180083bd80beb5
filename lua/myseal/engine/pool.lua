--- ctx:sql_parallel: many statements that change the server, several at a time, each on a
-- connection of its own in a worker process (engine/worker.lua), and small ones on the step's own
-- connection in between.
-- @module myseal.engine.pool
local sys = require "sys"
local sqltext = require "myseal.sqltext"
local guard = require "myseal.engine.guard"

local methods = {}

local WATCH_EVERY = 0.1   -- seconds between two calls of opts.watch

local function prepare(list)
   local items, total = {}, 0
   for i, it in ipairs(list) do
      if type(it) == "string" then it = { sql = it } end
      local args = it.args or {}
      local before, shown = {}, {}
      for j, b in ipairs(it.before or {}) do
         before[j] = { sql = b.sql, args = b.args or {} }
         shown[j] = sqltext.format(b.sql, before[j].args)
      end
      items[i] = { entry = it, sql = it.sql, args = args, weight = it.weight or 1, here = it.here, before = before,
                   before_texts = shown, before_shown = table.concat(shown, "; "), attempts = 0,
                   shown = sqltext.format(it.sql, args) }
      total = total + items[i].weight
   end
   return items, total
end

-- What the caller's on_error says of a failed attempt: "retry" (with a delay), "skip" or "fail";
-- an error inside it is the step's failure (raised once the running statements are done).
local function judge(opts, it, message, errno)
   if not opts.on_error then return "fail" end
   local ok, verdict, delay = pcall(opts.on_error, it.entry, message, errno, it.attempts)
   if not ok then return "error", verdict end
   if verdict == "retry" then return "retry", tonumber(delay) or 0 end
   if verdict == "skip" then return "skip" end
   return "fail"
end

--- Run many statements that change the server, up to `parallel` at a time, each on its own
-- connection (a worker process), largest first as given; items marked `here` run one at a time
-- on the step's own connection meanwhile (where a new connection costs more than the statement).
-- Every attempt is journaled before it starts; progress is reported as statements finish
-- (weighted, e.g. by table size). Ctrl-C stops starting new ones; with `opts.kill_on_interrupt`
-- the running ones are stopped too (KILL QUERY), else they are waited for. A failed statement
-- lets the running ones finish, then fails the step, unless `opts.on_error` says otherwise.
-- In plan mode they are shown in order.
-- @param list of `{ sql = , args = { ... }, weight = number, here = bool, before = { { sql =, args = } } }`
--   (or plain SQL strings); `before`: statements run first on the same connection (session settings)
-- @param opts `{ parallel = 2, label = "tables", unit = "bytes",
--   on_error = function(entry, message, errno, attempts) -> "retry", seconds | "skip" | nil (fail),
--   watch = function(running) (about every 0.1 s while workers run; `running` = list of
--     `{ entry, connection = its CONNECTION_ID() or nil, seconds }`), kill_on_interrupt = bool }`
-- @return true, skipped (the entries on_error gave up on)
function methods:sql_parallel(list, opts)
   opts = opts or {}
   local parallel = math.tointeger(opts.parallel or 1)
   if not parallel or parallel < 1 then error("ctx:sql_parallel: parallel must be a positive integer", 2) end
   local items, total = prepare(list)
   if self.planning or (parallel == 1 and not opts.on_error and not opts.watch) then
      local done, last = 0, ""
      for _, it in ipairs(items) do
         -- its `before` statements once, where they change, then it
         if it.before_shown ~= "" and it.before_shown ~= last then
            for _, b in ipairs(it.before) do self:sql(b.sql, table.unpack(b.args)) end
         end
         last = it.before_shown
         self:sql(it.sql, table.unpack(it.args))
         done = done + it.weight
         self:progress(done, total, opts.label, opts)
      end
      return true, {}
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
      local exe = require("myseal.host").exe
      local pending = {}
      for i = #items, 1, -1 do pending[#pending + 1] = items[i] end   -- a stack: the first item on top
      local running, count, done, jobs = {}, 0, 0, 0
      local failure, stopping, skipped = nil, false, {}
      local last_watch = 0

      -- the next pending item that may start now (`here` or not), or nil
      local function take(here)
         local now = sys.clock()
         for i = #pending, 1, -1 do
            local it = pending[i]
            if (it.here and true or false) == here and (it.not_before or 0) <= now then
               table.remove(pending, i)
               return it
            end
         end
      end
      local function advance(it)
         done = done + it.weight
         self:progress(done, total, opts.label, opts)
      end
      local function finished(it, ok, message, errno)
         if ok then return advance(it) end
         local verdict, delay = judge(opts, it, message, errno)
         if verdict == "error" then
            failure, stopping = failure or delay, "failed"
         elseif verdict == "retry" then
            it.not_before = sys.clock() + delay
            table.insert(pending, 1, it)   -- at the bottom: the others go first
         elseif verdict == "skip" then
            skipped[#skipped + 1] = it.entry
            advance(it)
         elseif not failure then
            failure = ("SQL failed: %s: %s (%s)"):format(it.shown, message, tostring(errno))
            stopping = "failed"
         end
      end
      local function start(it)
         it.attempts = it.attempts + 1
         for _, shown in ipairs(it.before_texts) do self:_sql_effect(shown) end
         self:_sql_effect(it.shown)
         jobs = jobs + 1
         local job = ("%s/%d.json"):format(dir, jobs)
         assert(sys.write_file(job, json.encode{ spec = spec, sql = it.sql, args = it.args, before = it.before },
            { mode = tonumber("600", 8) }))
         local pid, serr = sys.spawn{ exe, "lua", "-e", "require('myseal.engine.worker').main()",
                                      env = { MYSEAL_WORKER_JOB = job }, stdin = password or "",
                                      log = job .. ".log" }
         if not pid then
            failure, stopping = serr, "failed"
            return
         end
         running[pid] = { item = it, job = job, started = sys.clock() }
         count = count + 1
      end
      -- one statement on the step's own connection, now
      local function here(it)
         it.attempts = it.attempts + 1
         local conn = self:_connection()
         for j, b in ipairs(it.before) do
            self:_sql_effect(it.before_texts[j])
            local rows, meta, errno = conn:query(b.sql, table.unpack(b.args))
            if not rows then return finished(it, false, meta, errno) end
         end
         self:_sql_effect(it.shown)
         local rows, meta, errno = conn:query(it.sql, table.unpack(it.args))
         finished(it, rows ~= nil, meta, errno)
      end
      local function connection_id(r)
         if r.connection == nil then
            local id = sys.read_file(r.job .. ".id")
            r.connection = id and math.tointeger(tonumber(id)) or nil
         end
         return r.connection
      end
      local function watch()
         if not opts.watch or count == 0 or sys.clock() - last_watch < WATCH_EVERY then return end
         last_watch = sys.clock()
         local list = {}
         for _, r in pairs(running) do
            list[#list + 1] = { entry = r.item.entry, connection = connection_id(r),
                                seconds = sys.clock() - r.started }
         end
         local ok, werr = pcall(opts.watch, list)
         if not ok and not failure then failure, stopping = werr, "failed" end
      end
      local function kill_running()
         local conn = self:_connection()
         for _, r in pairs(running) do
            local id = connection_id(r)
            if id then conn:query("KILL QUERY ?", id) end
         end
      end

      self:progress(0, total, opts.label, opts)
      while (not stopping and #pending > 0) or count > 0 do
         if not stopping and sys.interrupted() then
            stopping = "interrupted"
            if opts.kill_on_interrupt then kill_running() end
         end
         while not stopping and count < parallel do
            local it = take(false)
            if not it then break end
            start(it)
         end
         local it = not stopping and take(true)
         if it then here(it) else sys.sleep(0.02) end
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
               if stopping == "interrupted" and not res.ok then
                  pending[#pending + 1] = r.item   -- stopped by Ctrl-C: not done, not failed
               else
                  finished(r.item, res.ok, res.message, res.errno)
               end
            end
         end
         watch()
      end
      sys.rmtree(dir)
      if type(failure) == "table" then error(failure, 0) end   -- a step failure raised by a callback
      if failure then self:fail("%s", failure) end
      if stopping == "interrupted" then self:_interrupt() end
      return true, skipped
   end)
end

return methods
