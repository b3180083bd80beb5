-- Time to first query for a sandbox: cold (the template datadir is made
-- first, as on a new machine) and warm (copied from the template).
-- Manual baseline: mariadb-install-db into a fresh datadir, then start.
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local sandbox = require "myseal.sandbox"
local sys = require "sys"

local cache = assert(sys.tmpdir("bench-cache"))

local function manual()
   local dir = assert(sys.tmpdir("bench-manual"))
   local argv = { "mariadb-install-db", "--no-defaults", "--datadir=" .. dir .. "/data",
      "--auth-root-authentication-method=normal", "--skip-test-db" }
   if sys.user().uid == 0 then argv[#argv + 1] = "--user=root" end
   bench.run(argv)
   local sock = dir .. "/s"
   local sargv = { "mariadbd", "--no-defaults", "--datadir=" .. dir .. "/data", "--socket=" .. sock,
      "--skip-networking", log = dir .. "/err" }
   if sys.user().uid == 0 then table.insert(sargv, "--user=root") end
   local pid = assert(sys.spawn(sargv))
   while true do
      local r = sys.run{ "mariadb", "-uroot", "--socket=" .. sock, "-e", "SELECT 1" }
      if r and r.ok then break end
      sys.sleep(0.02)
   end
   sys.kill(pid, "TERM")
   while sys.alive(pid) do sys.sleep(0.02) end
   sys.rmtree(dir)
end

local t_manual = bench.time(manual, 3)
-- the cold run needs MYSEAL_CACHE_DIR: run it in a child with the variable set
local exe = require("myseal.host").exe
local function child(mode)
   local r = bench.run{ exe, "lua", "-e", [[
      package.path = "bench/?.lua;" .. package.path
      local sandbox, sys = require "myseal.sandbox", require "sys"
      local t0 = sys.clock()
      local s <close> = assert(sandbox.start{ name = "bench-child" })
      local c <close> = assert(s:connect())
      assert(c:query("SELECT 1"))
      io.write(sys.clock() - t0)]], env = { MYSEAL_CACHE_DIR = cache .. "/" .. mode } }
   return tonumber(r.stdout)
end
local cold_best = math.huge
for i = 1, 3 do
   sys.rmtree(cache .. "/cold")
   cold_best = math.min(cold_best, child("cold"))
end
child("warm")
local warm_best = math.huge
for _ = 1, 5 do warm_best = math.min(warm_best, child("warm")) end
sys.rmtree(cache)
bench.table("sandbox: start to first query (MariaDB " .. (sandbox.available()[1] or {}).version .. ")", {
   { "cold start (template made first)", t_manual, cold_best },
   { "warm start (template copied)", t_manual, warm_best },
})
