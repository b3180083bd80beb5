-- Encryption at rest of one generated database (300+ tables, over 1 GB, most of it in the
-- ten largest), each way on a fresh copy of the same datadir, in one run:
--   cp -a:  a copy of the datadir, the floor for anything that reads and writes every page;
--   manual: the published procedure: key file, option file, restart, then one
--           ALTER TABLE ... ENCRYPTED=YES per table, generated from information_schema
--           and SOURCEd in one mariadb client session, serially;
--   myseal run at-rest with its default method (MariaDB: the encryption threads), and with the
--           rebuild method (online ALTERs, 2 at once); the proof steps (the disk scan and the
--           restore rehearsal) are timed on their own, after the default run.
-- During each, an application inserts rows in a loop (and reads one of the large tables); the
-- table shows the slowest insert and the 99th percentile, and how long the server was down (the
-- restart, the same in every way but cp).
-- Run: build/myseal lua bench/at_rest.lua [small]   ("small": 60 MB, for a quick look)
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local keyring = require "myseal.keyring"

local small = arg and arg[1] == "small"
local LARGE, LARGE_ROWS = 10, small and 4000 or 90000     -- rows of ~1 KB
local SMALL, SMALL_ROWS = 300, small and 40 or 500
local OPTIONS = { innodb_buffer_pool_size = "256M" }
local exe = require("myseal.host").exe
local work = assert(sys.tmpdir("bench-at-rest"))

local function sql(s, text)
   local c <close> = assert(s:connect{ database = "mysql" })
   assert(c:exec(text))
end

-- the golden datadir
io.write("generating the database... ")
io.flush()
local t0 = sys.clock()
local gen <close> = assert(sandbox.start{ name = "bench-gen", options = OPTIONS })
sql(gen, "CREATE DATABASE lims")
for i = 1, LARGE do
   sql(gen, ("CREATE TABLE lims.big%02d (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB"):format(i))
   sql(gen, ("INSERT INTO lims.big%02d SELECT seq, REPEAT(MD5(seq), 30) FROM seq_1_to_%d"):format(i, LARGE_ROWS))
end
for i = 1, SMALL do
   sql(gen, ("CREATE TABLE lims.t%03d (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB"):format(i))
   sql(gen, ("INSERT INTO lims.t%03d SELECT seq, REPEAT(MD5(seq), 30) FROM seq_1_to_%d"):format(i, SMALL_ROWS))
end
-- the application's own table, where its loop inserts
sql(gen, "CREATE TABLE lims.app_log (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6), note VARCHAR(100))")
local c = assert(gen:connect())
local size = c:query("SELECT SUM(DATA_LENGTH + INDEX_LENGTH), COUNT(*) FROM information_schema.TABLES "
   .. "WHERE TABLE_SCHEMA = 'lims'")[1]
size = { tonumber(size[1]), tonumber(size[2]) }
c:close()
gen:shutdown()
local golden = work .. "/golden"
bench.run{ "cp", "-a", gen.datadir, golden }
local files = tonumber(bench.run{ "du", "-sb", golden }.stdout:match("^(%d+)"))
print(("%d tables, %.2f GB of rows in %.2f GB of files, in %.0f s"):format(size[2], size[1] / 1e9, files / 1e9,
   sys.clock() - t0))
if not small then assert(size[1] >= 1e9 and size[2] >= 300, "fewer than 300 tables or 1 GB") end

-- a sandbox running on a fresh copy of the golden datadir
local function fresh(name)
   local s = assert(sandbox.start{ name = name, options = OPTIONS })
   s:shutdown()
   sys.rmtree(s.datadir)
   bench.run{ "cp", "-a", golden, s.datadir }
   assert(s:boot())
   return s
end

local function unencrypted(s)
   local conn <close> = assert(s:connect())
   return conn:query([[SELECT COUNT(*) FROM information_schema.INNODB_SYS_TABLES t
      LEFT JOIN information_schema.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
      WHERE t.NAME LIKE 'lims/%' AND NOT COALESCE(e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0, FALSE)]])[1][1]
end

-- The application: inserts in a loop (and a read of a large table) on its own connection until
-- the stop file appears, reconnecting while the server is down; writes "n p99 max down".
local LOOP = [[
local sys = require "sys"
local socket, stop, out = ...
local lat, down, since = {}, 0, nil
local c
while not sys.stat(stop) do
   if not c then c = require("mysql").connect{ socket = socket, user = "root" } end
   local t = sys.clock()
   local ok = c and c:query("INSERT INTO lims.app_log (at, note) VALUES (NOW(6), 'a visit')")
      and c:query("SELECT payload FROM lims.big01 WHERE id = 4711")
   if ok then
      if since then down, since = down + sys.clock() - since, nil end
      lat[#lat + 1] = sys.clock() - t
   else
      if c then c:close() end
      c = nil
      since = since or t
      sys.sleep(0.05)
   end
   sys.sleep(0.005)
end
table.sort(lat)
local n = #lat
assert(sys.write_file(out, ("%d %.4f %.4f %.2f"):format(n, n > 0 and lat[math.max(1, math.ceil(n * 0.99))] or 0,
   n > 0 and lat[n] or 0, down)))
]]

local function with_application(s, fn)
   local stop, out = s.dir .. "/app.stop", s.dir .. "/app.out"
   local pid = assert(sys.spawn{ exe, "lua", "-e", ("assert(load(%q))(%q, %q, %q)"):format(LOOP, s.socket, stop, out),
                                 log = s.dir .. "/app.log" })
   sys.sleep(0.3)
   local t = sys.clock()
   fn()
   local elapsed = sys.clock() - t
   assert(sys.write_file(stop, ""))
   while sys.alive(pid) do sys.sleep(0.01) end
   local n, p99, max, down = (sys.read_file(out) or ""):match("^(%d+) (%S+) (%S+) (%S+)$")
   assert(n, "the application's loop: " .. (sys.read_file(s.dir .. "/app.log") or ""))
   return { seconds = elapsed, n = tonumber(n), p99 = tonumber(p99), max = tonumber(max), down = tonumber(down) }
end

local function copy()
   local t = sys.clock()
   bench.run{ "cp", "-a", golden, work .. "/copy" }
   local r = { seconds = sys.clock() - t }
   sys.rmtree(work .. "/copy")
   return r
end

local function manual()
   local s <close> = fresh("bench-manual")
   return with_application(s, function()
      local keys = s.dir .. "/keyfile"
      assert(sys.write_file(keys, keyring.new_key_file(1), { mode = 384 }))
      -- the server runs as its own user (mysql when root starts it): the key file is that user's
      if s.user then assert(sys.chown(keys, s.user)) end
      local cnf = assert(sys.read_file(s.cnf))
      assert(sys.write_file(s.cnf, cnf .. "plugin_load_add=file_key_management\nfile_key_management_filename="
         .. keys .. "\ninnodb_encrypt_tables=ON\ninnodb_encrypt_log=ON\n"))
      assert(s:restart())
      local client = { "mariadb", "--defaults-file=" .. s.cnf, "-uroot", "-N", "-B" }
      local function mariadb(extra)
         local argv = table.move(client, 1, #client, 1, {})
         for _, a in ipairs(extra) do argv[#argv + 1] = a end
         return bench.run(argv)
      end
      -- the wiki's way: generate the statements, clean them up, SOURCE them
      local r = mariadb{ "-e", "SELECT CONCAT('ALTER TABLE `', TABLE_SCHEMA, '`.`', TABLE_NAME, '` ENCRYPTED=YES;') "
         .. "FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'lims' AND ENGINE = 'InnoDB'" }
      assert(sys.write_file(s.dir .. "/encrypt.sql", r.stdout))
      mariadb{ "-e", "SOURCE " .. s.dir .. "/encrypt.sql" }
      assert(unencrypted(s) == 0, "the manual way left tables unencrypted")
   end)
end

-- myseal run at-rest with these parameters; `proof` times the disk scan and the rehearsal after it
local function ours(name, set, proof)
   local s <close> = fresh("bench-" .. name)
   local argv = { exe, "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "at_rest.parallel=2",
      "--set", "keyring.backup_dir=" .. work .. "/backup-" .. name, "--set", "at_rest.disk_scan=no",
      "--set", "at_rest.rehearsal=false" }
   for _, x in ipairs(set) do argv[#argv + 1] = x end
   local r = with_application(s, function() bench.run(argv) end)
   assert(unencrypted(s) == 0, name .. " left tables unencrypted")
   if proof then
      local function timed(extra)
         local a = { exe, "run", "at-rest", "--sandbox", s.name, "--yes",
            "--set", "keyring.backup_dir=" .. work .. "/backup-" .. name }
         for _, x in ipairs(extra) do a[#a + 1] = x end
         local t = sys.clock()
         local out = bench.run(a).stdout
         return sys.clock() - t, out
      end
      r.scan, r.scan_out = timed{ "--only", "verify", "--set", "at_rest.disk_scan=yes" }
      r.rehearsal = timed{ "--only", "rehearsal", "--set", "at_rest.disk_scan=no" }
   end
   return r
end

local rows = {
   { "cp -a of the datadir", copy() },
   { "manual: key file, my.cnf, restart, serial ALTERs", manual() },
   { "myseal at-rest, default (background threads)", ours("default", {}, true) },
   { "myseal at-rest --set at_rest.method=rebuild", ours("rebuild", { "--set", "at_rest.method=rebuild" }) },
}
gen:stop()
sys.rmtree(work)

local cp, man = rows[1][2].seconds, rows[2][2].seconds
print(("at-rest: %d tables, %.2f GB of rows, %.2f GB of files (MariaDB %s); one run on a shared 2-core machine")
   :format(size[2], size[1] / 1e9, files / 1e9, gen.version))
print(("  %-50s %9s %9s %9s %10s %10s %8s"):format("", "seconds", "x manual", "x cp -a", "insert max", "insert p99",
   "down (s)"))
for _, r in ipairs(rows) do
   local v = r[2]
   print(("  %-50s %9.2f %9.2f %9.2f %10s %10s %8s"):format(r[1], v.seconds, v.seconds / man, v.seconds / cp,
      v.max and ("%.0f ms"):format(v.max * 1000) or "", v.p99 and ("%.0f ms"):format(v.p99 * 1000) or "",
      v.down and ("%.1f"):format(v.down) or ""))
end
local d = rows[3][2]
print(("  proof after the default run: the disk scan %.1f s (%s), the restore rehearsal %.1f s"):format(d.scan,
   (d.scan_out:match("disk scan: ([^\n]*)") or "?"), d.rehearsal))
print(("  targets: default <= 0.4x manual (%.2fx), <= 2.5x cp -a (%.2fx), slowest insert < 300 ms (%.0f ms)")
   :format(d.seconds / man, d.seconds / cp, d.max * 1000))
