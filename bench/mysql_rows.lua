-- 1,000,000 rows streamed through conn:rows against the mariadb client on the
-- same query and server: `mariadb -N -B` (the client's default: the whole
-- result in memory, then written out) and `mariadb -N -B --quick` (streamed,
-- as conn:rows does). Each side is one process measured the same way (wall
-- clock; CPU and peak resident memory from GNU time), best of RUNS runs; the client
-- writes every row to /dev/null, conn:rows reads every row into a Lua table.
-- Peak memory is also measured at 100,000 rows, to show it does not grow.
--   build/myseal lua bench/mysql_rows.lua [RUNS]
package.path = "bench/?.lua;" .. package.path
local sys = require "sys"

local function sql(n)
   return ("SELECT seq, CONCAT('specimen-', seq), seq * 2.5 FROM seq_1_to_%d"):format(n)
end

-- The measured child: myseal lua bench/mysql_rows.lua --child SOCKET ROWS
if arg[1] == "--child" then
   local mysql = require "mysql"
   local conn = assert(mysql.connect{ socket = arg[2], user = "root", database = "mysql" })
   local rows, bytes = 0, 0
   for row in conn:rows(sql(tonumber(arg[3]))) do
      rows = rows + 1
      bytes = bytes + #row[2]
   end
   print(rows, bytes)
   return
end

local bench = require "lib"
local sandbox = require "myseal.sandbox"

local RUNS = tonumber(arg[1]) or 3
local s <close> = assert(sandbox.start{ name = "bench-rows" })
local dir = assert(sys.tmpdir("bench-rows"))
local stats = dir .. "/time"

-- Runs argv under GNU time: the best wall time (our clock: GNU time's has 10 ms steps) with
-- the CPU time and peak RSS (KiB) of that run, and its stdout.
local function measure(argv)
   local best
   for _ = 1, RUNS do
      local t0 = sys.clock()
      local r = bench.run{ "/usr/bin/time", "-o", stats, "-f", "%U %S %M", table.unpack(argv) }
      local wall = sys.clock() - t0
      local user, system, rss = assert(sys.read_file(stats)):match("([%d.]+) ([%d.]+) (%d+)")
      local m = { wall = wall, cpu = tonumber(user) + tonumber(system), rss = tonumber(rss), stdout = r.stdout }
      if not best or m.wall < best.wall then best = m end
   end
   return best
end

local function client(n, ...)
   -- the shell only sends the rows to /dev/null; exec leaves the client as the measured process
   return { "sh", "-c", 'exec "$@" >/dev/null', "sh", "mariadb", "--defaults-file=" .. s.cnf, "-uroot",
            "-N", "-B", ..., "mysql", "-e", sql(n) }
end

local function ours(n)
   return { require("myseal.host").exe, "lua", "bench/mysql_rows.lua", "--child", s.socket, tostring(n) }
end

-- both sides read the same rows (checked once, untimed)
local out = bench.run{ "mariadb", "--defaults-file=" .. s.cnf, "-uroot", "-N", "-B", "mysql", "-e", sql(1000000) }
local _, lines = out.stdout:gsub("\n", "")
assert(lines == 1000000, "the client wrote " .. lines .. " rows")

local cli = measure(client(1000000, "--skip-quick"))
local quick = measure(client(1000000, "--quick"))
local mine = measure(ours(1000000))
assert(mine.stdout == "1000000\t14888896\n", "conn:rows read: " .. mine.stdout)
local mine_small = measure(ours(100000))

print("mysql: 1,000,000 rows, 3 columns, over the socket (best of " .. RUNS .. ")")
print(("  %-34s %10s %10s %12s"):format("", "wall (s)", "CPU (s)", "peak RSS"))
local function line(label, m)
   print(("  %-34s %10.3f %10.2f %9d KiB"):format(label, m.wall, m.cpu, m.rss))
end
line("mariadb -N -B", cli)
line("mariadb -N -B --quick", quick)
line("conn:rows", mine)
line("conn:rows, 100,000 rows", mine_small)
print(("  wall: mariadb -N -B / conn:rows %.2fx, --quick / conn:rows %.2fx")
   :format(cli.wall / mine.wall, quick.wall / mine.wall))
print(("  CPU: mariadb -N -B / conn:rows %.2fx, --quick / conn:rows %.2fx")
   :format(cli.cpu / mine.cpu, quick.cpu / mine.cpu))
print(("  memory: mariadb -N -B / conn:rows %.1fx; conn:rows at 1,000,000 rows / at 100,000 rows %.2fx")
   :format(cli.rss / mine.rss, mine.rss / mine_small.rss))
print("  ratios above 1 mean conn:rows is faster or smaller")
sys.rmtree(dir)
