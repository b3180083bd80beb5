--- ctx's long work: progress with an ETA, and waiting for the server to finish something.
-- @module myseal.engine.progress
local sys = require "sys"

local methods = {}

--- Report progress of long work: a bar with ETA on a terminal, events in --json.
-- @param done units done
-- @param total units in all
-- @param label what the units are ("tables")
-- @param opts `{ unit = "bytes" }` to show byte sizes
function methods:progress(done, total, label, opts)
   if self.planning then return end
   local run = self._run
   local key = tostring(run.step) .. "\0" .. tostring(label)
   local now = sys.clock()
   local started = run.progress_start[key]
   if not started or done == 0 then
      started = { t = now, done = done }
      run.progress_start[key] = started
   end
   local eta = require("myseal.engine.report").eta(done - started.done, total - started.done, now - started.t)
   self:_emit{ event = "progress", done = done, total = total, label = label,
               unit = opts and opts.unit, eta = eta and math.floor(eta + 0.5) }
end

--- Wait until `fn()` returns true, showing progress when it also returns (done, total).
-- In plan mode it is shown, not waited for.
-- @param label what is being waited for
-- @param fn function() -> finished, done, total
-- @param opts `{ timeout = seconds (default 3600), interval = seconds (default 1), unit = "bytes",
--   ends = true (the timeout ends the wait: watching for a while, not waiting for something) }`
-- @return true
function methods:wait(label, fn, opts)
   opts = opts or {}
   self:_boundary()
   self:_effect{ kind = "wait", label = label, summary = "wait: " .. label }
   if self.planning then return true end
   local deadline = sys.clock() + (opts.timeout or 3600)
   while true do
      local finished, done, total = fn()
      if done and total then self:progress(done, total, label, opts) end
      if finished then return true end
      if sys.clock() > deadline then
         if opts.ends then return true end
         self:fail("gave up waiting after %d s: %s", opts.timeout or 3600, label)
      end
      if sys.interrupted() then self:_interrupt() end
      sys.sleep(opts.interval or 1)
   end
end

return methods
