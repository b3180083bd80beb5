-- Encryption at rest of one generated database (300+ tables, over 1 GB, most of it in the
-- ten largest), each way on a fresh copy of the same datadir:
--   manual: the published procedure: key file, option file, restart, then one
--           ALTER TABLE ... ENCRYPTED=YES per table, generated from information_schema
--           and SOURCEd in one mariadb client session, serially;
--   myseal run at-rest, method rebuild (2 at once), and method background (2 threads).
-- Run: build/myseal lua bench/at_rest.lua [small]   ("small": 60 MB, for a quick look)
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local keyring = require "myseal.keyring"

local small = arg and arg[1] == "small"
local LARGE, LARGE_ROWS = 10, small and 4000 or 90000     -- rows of ~1 KB
local SMALL, SMALL_ROWS = 300, small and 40 or 500
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
local gen <close> = assert(sandbox.start{ name = "bench-gen", options = { innodb_buffer_pool_size = "256M" } })
sql(gen, "CREATE DATABASE lims")
for i = 1, LARGE do
   sql(gen, ("CREATE TABLE lims.big%02d (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB"):format(i))
   sql(gen, ("INSERT INTO lims.big%02d SELECT seq, REPEAT(MD5(seq), 30) FROM seq_1_to_%d"):format(i, LARGE_ROWS))
end
for i = 1, SMALL do
   sql(gen, ("CREATE TABLE lims.t%03d (id INT PRIMARY KEY, payload TEXT) ENGINE=InnoDB"):format(i))
   sql(gen, ("INSERT INTO lims.t%03d SELECT seq, REPEAT(MD5(seq), 30) FROM seq_1_to_%d"):format(i, SMALL_ROWS))
end
local c = assert(gen:connect())
local size = c:query("SELECT SUM(DATA_LENGTH + INDEX_LENGTH), COUNT(*) FROM information_schema.TABLES "
   .. "WHERE TABLE_SCHEMA = 'lims'")[1]
c:close()
gen:shutdown()
local golden = work .. "/golden"
bench.run{ "cp", "-a", gen.datadir, golden }
print(("%d tables, %.2f GB, in %.0f s"):format(size[2], size[1] / 2^30, sys.clock() - t0))

-- a sandbox running on a fresh copy of the golden datadir
local function fresh(name)
   local s = assert(sandbox.start{ name = name, options = { innodb_buffer_pool_size = "256M" } })
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

local function manual()
   local s <close> = fresh("bench-manual")
   local t = sys.clock()
   local keys = s.dir .. "/keyfile"
   assert(sys.write_file(keys, keyring.new_key_file(1), { mode = 384 }))
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
   local elapsed = sys.clock() - t
   assert(unencrypted(s) == 0, "the manual way left tables unencrypted")
   return elapsed
end

local function ours(method)
   local s <close> = fresh("bench-" .. method)
   local t = sys.clock()
   bench.run{ exe, "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "at_rest.method=" .. method,
      "--set", "at_rest.parallel=2", "--set", "keyring.backup_dir=" .. work .. "/backup-" .. method,
      "--set", "at_rest.binlog=false", "--set", "at_rest.temp=false" }
   local elapsed = sys.clock() - t
   assert(unencrypted(s) == 0, method .. " left tables unencrypted")
   return elapsed
end

local t_manual = manual()
local rows = {
   { "at-rest --set at_rest.method=rebuild (2 at once)", t_manual, ours("rebuild") },
   { "at-rest --set at_rest.method=background (2 thr.)", t_manual, ours("background") },
}
gen:stop()
sys.rmtree(work)
bench.table(("at-rest: %d tables, %.2f GB (MariaDB %s)"):format(size[2], size[1] / 2^30, gen.version), rows)
