--- Faults on demand, for the test suite: `MYSEAL_TEST_KILL=POINT[#N]` makes myseal kill itself
-- (SIGKILL, no cleanup) the Nth time (default the first) it reaches POINT, so a spec can prove
-- that a run killed there leaves the server up and the data readable, and that --resume and
-- rollback recover. Points: a journal event before or after it is written,
-- `EVENT[/KIND]@before|@after` (`effect/restart@after`, `effect/file@before`, `step@after`), and
-- named places inside an effect (`file/chown`: a file written, its owner not yet changed).
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
-- @param name point name
function M.point(name)
   if point and name == point then
      seen = seen + 1
      if seen == nth then require("myseal.engine.guard").allow(sys.kill, sys.getpid(), "KILL") end
   end
end

--- The points of a journal event, before or after it is written.
-- @param ev event
-- @param when "before" | "after"
function M.event(ev, when)
   if not point then return end
   M.point(("%s@%s"):format(ev.event, when))
   if ev.kind then M.point(("%s/%s@%s"):format(ev.event, ev.kind, when)) end
end

return M
