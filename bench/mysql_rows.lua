-- 1,000,000 rows streamed through conn:rows against `mariadb -N -B` on the
-- same query and server (both read every row; the client writes them out).
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local sandbox = require "myseal.sandbox"

local SQL = "SELECT seq, CONCAT('specimen-', seq), seq * 2.5 FROM seq_1_to_1000000"

local s <close> = assert(sandbox.start{ name = "bench-rows" })
local conn = assert(s:connect{ database = "mysql" })

local t_cli = bench.time(function()
   local r = bench.run{ "mariadb", "--defaults-file=" .. s.cnf, "-uroot", "-N", "-B", "mysql", "-e", SQL }
   assert(#r.stdout > 1000000)
end)
local t_ours = bench.time(function()
   local n = 0
   for row in conn:rows(SQL) do n = n + #row[2] end
   assert(n > 0)
end)
bench.table("mysql: 1,000,000 rows, 3 columns", { { "conn:rows vs mariadb -N -B", t_cli, t_ours } })
