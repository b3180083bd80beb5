--- Faults on demand, for the test suite: `MYSEAL_TEST_KILL=POINT[#N]` makes myseal kill itself
-- (SIGKILL, no cleanup) the Nth time (default the first) it reaches POINT, so a spec can prove
-- that a run killed there leaves the server up and the data readable, and that --resume and
-- rollback recover. Points: a journal event before or after it is written,
-- `EVENT[/KIND]@before|@after` (`effect/restart@after`, `effect/file@before`, `step@after`),
-- `done/KIND` (an effect of KIND done, the next line not yet written), and named places inside
-- an effect (`file/chown`: a file written, its owner not yet changed).
-- Without the variable nothing here does anything.
-- @module myseal.engine.fault
local sys = require "sys"

local M = {}

local spec = os.getenv("MYSEAL_TEST_KILL")
local point, nth = nil, 1
if spec and spec ~= "" then
   point, nth = spec:match("^([^#]+)#?(%d*)$")
   nth = tonumber(nth) or 1
end
local seen = 0

--- Kill this process here when MYSEAL_TEST_KILL names this point.
function M.point(name)
   if point and name == point then
      seen = seen + 1
      if seen == nth then require("myseal.engine.guard").allow(sys.kill, sys.getpid(), "KILL") end
   end
end

local last_effect   -- the kind of the effect the last line written was, if it was one

--- The points of a journal event, before or after it is written; `done/KIND` is the moment the
-- line after an effect of KIND is about to be written (the effect is done, nothing says so).
-- @param when "before" | "after"
function M.event(ev, when)
   if not point then return end
   if when == "before" and last_effect then M.point("done/" .. last_effect) end
   M.point(("%s@%s"):format(ev.event, when))
   if ev.kind then M.point(("%s/%s@%s"):format(ev.event, ev.kind, when)) end
   if when == "after" then last_effect = ev.event == "effect" and ev.kind or nil end
end

return M
