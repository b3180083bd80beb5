-- The disk scan's reading rate against `cat FILES > /dev/null` on the same files.
-- A MariaDB sandbox is grown to over 1 GB (8 large tables of patient-like rows and 200
-- small ones), probes are drawn from its rows as `myseal check` would (3 per table),
-- the server is shut down, and then, with the page cache warm, the same files in the
-- same order are read by cat and scanned by sys.scan (best of 5 each: other work on the
-- machine makes single runs vary).
-- Run: build/myseal lua bench/disk_scan.lua [small]   ("small": about 100 MB, a quick look)
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local sandbox = require "myseal.sandbox"
local diskscan = require "myseal.diskscan"
local probes = require "myseal.diskscan.probes"
local sys = require "sys"

local small = arg and arg[1] == "small"
local LARGE, LARGE_ROWS = 8, small and 10000 or 120000
local SMALL, SMALL_ROWS = 200, small and 20 or 200

local GIVEN = "'Anna','Boris','Chloe','Dmitri','Emma','Farid','Greta','Hugo','Ines','Jonas','Katja','Lars'"
local FAMILY = "'Zweistein','Okafor','Lindqvist','Moreau','Tanaka','Brennan','Kowalski','Haddad','Novak'"
local CITY = "'Basel','Uppsala','Lyon','Osaka','Cork','Gdansk','Beirut','Brno','Leiden','Tartu','Graz'"
local TEXT = "'stable, review in six weeks','biopsy sent to pathology','consent withdrawn for sub-study',"
   .. "'sample haemolysed, redraw requested','follow-up by phone','transferred to cohort B'"

-- rows with names, places and notes that differ from row to row (and from table to table),
-- as an application's would
local function rows_sql(schema, name, n, first)
   return ([[INSERT INTO %s.%s SELECT seq,
      CONCAT(ELT(1 + seq %% 12, %s), ' ', ELT(1 + (seq * 7) %% 9, %s), '-', seq),
      ELT(1 + (seq * 3) %% 11, %s),
      CONCAT('specimen ', HEX(seq * 2654435761), ': ', ELT(1 + seq %% 6, %s), '; ',
             REPEAT(CONCAT(ELT(1 + (seq * 5) %% 6, %s), ' (visit ', seq %% 97, ') '), 18))
      FROM seq_%d_to_%d]]):format(schema, name, GIVEN, FAMILY, CITY, TEXT, TEXT, first, first + n - 1)
end

io.write("generating the database... ")
io.flush()
local t0 = sys.clock()
local s <close> = assert(sandbox.start{ name = "bench-scan", options = { innodb_buffer_pool_size = "256M" } })
local c = assert(s:connect{ database = "mysql" })
assert(c:exec("CREATE DATABASE lims"))
local DDL = "(id INT PRIMARY KEY, name VARCHAR(80), city VARCHAR(40), notes TEXT) ENGINE=InnoDB"
for i = 1, LARGE do
   assert(c:exec(("CREATE TABLE lims.visits%02d %s"):format(i, DDL)))
   assert(c:exec(rows_sql("lims", ("visits%02d"):format(i), LARGE_ROWS, i * 1000000)))
end
for i = 1, SMALL do
   assert(c:exec(("CREATE TABLE lims.t%03d %s"):format(i, DDL)))
   assert(c:exec(rows_sql("lims", ("t%03d"):format(i), SMALL_ROWS, (100 + i) * 1000000)))
end
local p = assert(diskscan.probes(c, { schemas = { "lims" } }))
local listed = assert(diskscan.files(c))
c:close()
s:shutdown()
-- what is left once the server is down (its temporary files go with it)
local files, bytes = {}, 0
for _, f in ipairs(listed) do
   local st = not f.shown and sys.stat(f.path)
   if st then
      files[#files + 1] = f.path
      bytes = bytes + st.size
   end
end
print(("%d files, %.2f GB, %d probes, in %.0f s"):format(#files, bytes / 1e9, p.count, sys.clock() - t0))
if not small then assert(bytes >= 1e9, "the files are under 1 GB") end

local argv = { "sh", "-c", 'exec cat "$@" > /dev/null', "sh" }
for _, f in ipairs(files) do argv[#argv + 1] = f end
local function cat()
   local r = assert(sys.run(argv))
   assert(r.ok, "cat: " .. r.stderr)
end
cat()  -- warm the page cache
local values = probes.values(p)
local function scan(threads)
   return function()
      local r = assert(sys.scan(files, values, { threads = threads }))
      local hits = 0
      for _, f in pairs(r) do
         assert(not f.error, f.error)
         hits = hits + f.hits
      end
      return hits
   end
end
local t_cat = bench.time(cat, 5)
local threads = math.min(2, tonumber((sys.run{ "nproc" } or {}).stdout or "1") or 1)
local t_scan, hits = bench.time(scan(threads), 5)
local t_one = bench.time(scan(1), 5)
values = nil
p:forget()
s:stop()
assert(hits > 0, "the probes were not found in the unencrypted data")
print(("cat: %.2f GB/s; sys.scan: %.2f GB/s with %d threads, %.2f GB/s with one; %d hits"):format(
   bytes / t_cat / 1e9, bytes / t_scan / 1e9, threads, bytes / t_one / 1e9, hits))
bench.table(("disk scan: %d files, %.2f GB, %d probes (MariaDB %s, warm page cache)"):format(
   #files, bytes / 1e9, p.count, s.version), {
   { ("cat > /dev/null vs sys.scan, %d threads"):format(threads), t_cat, t_scan },
   { "cat > /dev/null vs sys.scan, 1 thread", t_cat, t_one },
})
