--- Shared by the benchmarks: timing and the side-by-side table.
-- Run a benchmark from the repository root: build/myseal lua bench/NAME.lua
local sys = require "sys"

local M = {}

--- Seconds fn takes (the best of `runs`, default 3), and its last result.
function M.time(fn, runs)
   local best, result = math.huge, nil
   for _ = 1, runs or 3 do
      local t0 = sys.clock()
      result = fn()
      best = math.min(best, sys.clock() - t0)
   end
   return best, result
end

--- Prints rows { label, manual_seconds, myseal_seconds } with the ratio.
function M.table(title, rows)
   print(title)
   print(string.format("  %-44s %12s %12s %8s", "", "manual (s)", "myseal (s)", "ratio"))
   for _, r in ipairs(rows) do
      print(string.format("  %-44s %12.3f %12.3f %7.1fx", r[1], r[2], r[3], r[2] / r[3]))
   end
   print("  ratio = manual / myseal: above 1 means myseal is faster")
end

--- Runs argv and fails loudly if it fails.
function M.run(argv)
   local r = assert(sys.run(argv))
   assert(r.ok, table.concat(argv, " ") .. ": " .. r.stderr)
   return r
end

return M
