-- myseal.diskscan against a real MariaDB sandbox: rows with marker names are found in the
-- files that hold them before encryption; after ALTER TABLE ... ENCRYPTED=YES the table's
-- file has none, while the system tablespace and the binary log keep them; no probe ever
-- appears in a report or in a file myseal writes.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local state = require "myseal.state"
local keyring = require "myseal.keyring"
local diskscan = require "myseal.diskscan"
local probes = require "myseal.diskscan.probes"

local function by_path(report, suffix)
   for _, f in ipairs(report.files) do
      if f.path:sub(-#suffix) == suffix then return f end
   end
end

local files_under = require("support.helpers").files_under

describe("diskscan", function()
   local logs
   before_each(function()
      logs = assert(sys.tmpdir("diskscan-logs"))
      sys.chown(logs, "mysql", "mysql")  -- the server may run as mysql
   end)
   after_each(function() sys.rmtree(logs) end)

   it("finds plaintext where MariaDB leaves it, before and after ALTER TABLE ... ENCRYPTED=YES", function()
      local s <close> = assert(sandbox.start{ name = "spec-diskscan", options = { log_bin = logs .. "/binlog" } })
      local marker = "MYSEAL-SCAN-" .. state.random_hex(8)
      local names = {}
      do
         local c <close> = assert(s:connect())
         assert(c:exec("CREATE DATABASE app"))
         assert(c:exec("CREATE TABLE app.patients (id INT PRIMARY KEY, name VARCHAR(100), code CHAR(4)) "
            .. "ENGINE=InnoDB"))
         for i = 1, 40 do
            names[i] = ("Patientin Quirina %s %03d"):format(state.random_hex(3), i)
            assert(c:exec("INSERT INTO app.patients VALUES (?, ?, 'AB12')", i, names[i]))
         end
         assert(c:exec("INSERT INTO app.patients VALUES (99, ?, 'AB12')", marker))
         -- a table of the old layout, inside the system tablespace
         assert(c:exec("SET GLOBAL innodb_file_per_table = OFF"))
         assert(c:exec("CREATE TABLE app.legacy (id INT PRIMARY KEY, city VARCHAR(100)) ENGINE=InnoDB"))
         assert(c:exec("SET GLOBAL innodb_file_per_table = ON"))
         for i = 1, 20 do
            names[#names + 1] = ("Legacy town Wyvernholm %s"):format(state.random_hex(4))
            assert(c:exec("INSERT INTO app.legacy VALUES (?, ?)", i, names[#names]))
         end
      end
      assert(s:restart())  -- a clean shutdown writes every page to its file
      local c = assert(s:connect())
      local p = assert(diskscan.probes(c, { schemas = { "app" }, markers = { marker } }))
      assert.equal(7, p.count)   -- 3 per table and the marker
      assert.same({ "app.legacy", "app.legacy", "app.legacy", "app.patients", "app.patients", "app.patients",
                    "marker" }, p.sources)
      assert.same({}, p.without)
      assert.equal("a fresh datadir", p.baseline)

      local before = assert(diskscan.scan(c, { probes = p }))
      local ibd = by_path(before, "/app/patients.ibd")
      assert.same({ kind = "innodb_table", what = "InnoDB tablespace `app`.`patients`", table = "`app`.`patients`",
         reason = "the table is not encrypted", encrypted = false, can_encrypt = true,
         remedy = "ALTER TABLE `app`.`patients` ENCRYPTED=YES (or myseal run at-rest)" },
         { kind = ibd.kind, what = ibd.what, table = ibd.table, reason = ibd.reason, encrypted = ibd.encrypted,
           can_encrypt = ibd.can_encrypt, remedy = ibd.remedy })
      assert.equal(4, ibd.hits)
      assert.same({ ["app.patients"] = 3, marker = 1 }, ibd.sources)
      local ibdata = by_path(before, "/ibdata1")
      assert.equal("system", ibdata.kind)
      -- one copy of each at least (a copy in the doublewrite buffer can add one)
      assert.is_true(ibdata.sources["app.legacy"] >= 3)
      assert.equal("the system tablespace is not encrypted: undo records, the doublewrite buffer, the change "
         .. "buffer, freed pages and tables created with innodb_file_per_table=OFF are plain", ibdata.reason)
      local binlog = by_path(before, "/binlog.000001")
      assert.same({ "binlog", "binary logs are not encrypted (encrypt_binlog=OFF)", 7 },
         { binlog.kind, binlog.reason, binlog.hits })
      assert.equal(logs .. "/binlog.000001", binlog.path)
      assert.is_true(before.scanned > 100)
      assert.same({}, before.errors)

      -- the keyring, straight in the sandbox's option file, then the ALTERs
      c:close()
      s:shutdown()
      local owner = sys.stat(s.datadir)
      local keys = s.dir .. "/keys"
      assert(sys.mkdir(keys, tonumber("700", 8)))
      assert(sys.write_file(keys .. "/keyfile", keyring.new_key_file(1), { mode = tonumber("600", 8) }))
      assert(sys.chown(keys, owner.uid, owner.gid))
      assert(sys.chown(keys .. "/keyfile", owner.uid, owner.gid))
      assert(sys.write_file(s.cnf, assert(sys.read_file(s.cnf)) .. "plugin_load_add=file_key_management\n"
         .. "file_key_management_filename=" .. keys .. "/keyfile\n"))
      assert(s:boot())
      c = assert(s:connect())
      assert(c:exec("ALTER TABLE app.patients ENCRYPTED=YES"))
      assert(c:exec("ALTER TABLE app.legacy ENCRYPTED=YES"))
      assert(c:exec("FLUSH TABLES app.patients, app.legacy FOR EXPORT"))
      assert(c:exec("UNLOCK TABLES"))

      local after = assert(diskscan.scan(c, { probes = p }))
      assert.is_nil(by_path(after, "/app/patients.ibd"))
      assert.is_nil(by_path(after, "/app/legacy.ibd"))
      -- the legacy table moved out of ibdata1; its old pages are freed, not erased
      ibdata = by_path(after, "/ibdata1")
      assert.is_true(ibdata.sources["app.legacy"] >= 3)
      assert.is_false(ibdata.encrypted)
      assert.equal(7, by_path(after, "/binlog.000001").hits)
      c:close()

      -- nothing shows a probe: not the reports, not the probes, not a file myseal wrote
      p:forget()
      assert.is_nil(probes.values(p))
      assert.has_error(function() diskscan.scan(c, { probes = p }) end, "diskscan.scan: these probes were forgotten")
      local shown = json.encode(before) .. json.encode(after) .. json.encode(p) .. tostring(p)
      assert.equal("7 probes: 6 from 2 tables, 1 marker", tostring(p))
      local secrets = { marker }
      for _, n in ipairs(names) do secrets[#secrets + 1] = n end
      for _, v in ipairs(secrets) do assert.is_nil(shown:find(v, 1, true), "a probe in the output") end
      local written = files_under(state.path(), files_under(assert(state.cache())))
      local found = assert(sys.scan(written, secrets))
      for path, r in pairs(found) do assert.equal(0, r.hits or 0, path) end
   end)

   it("lists every file the server writes, with deleted temporary files it holds open", function()
      local s <close> = assert(sandbox.start{ name = "spec-diskscan-files",
         options = { log_bin = logs .. "/bin", general_log = 1, general_log_file = logs .. "/general.log",
                     slow_query_log = 1, slow_query_log_file = logs .. "/slow.log" } })
      local c <close> = assert(s:connect())
      assert(c:exec("CREATE DATABASE `lab 2`"))
      assert(c:exec("CREATE TABLE `lab 2`.`naïve t` (a INT) ENGINE=Aria"))
      assert(c:exec("CREATE TABLE `lab 2`.`parts` (a INT) ENGINE=InnoDB PARTITION BY HASH(a) PARTITIONS 2"))
      local files = assert(diskscan.files(c))
      local kinds, tables, shown = {}, {}, {}
      for _, f in ipairs(files) do
         local rel = f.path:gsub("^" .. s.datadir:gsub("%p", "%%%0") .. "/", "")
         kinds[rel], tables[rel] = f.kind, f.table
         if f.shown then shown[#shown + 1] = f end
      end
      assert.same({ "`lab 2`.`naïve t`", "`lab 2`.`naïve t`", "`lab 2`.`parts`", "`lab 2`.`parts`" },
         { tables["lab@00202/na@0vve@0020t.MAD"], tables["lab@00202/na@0vve@0020t.MAI"],
           tables["lab@00202/parts#P#p0.ibd"], tables["lab@00202/parts#P#p1.ibd"] })
      assert.same({ "aria_table", "innodb_table", "definition" },
         { kinds["lab@00202/na@0vve@0020t.MAD"], kinds["lab@00202/parts#P#p1.ibd"], kinds["lab@00202/parts.par"] })
      assert.same({ "system", "redo", "temp_tablespace", "aria_log", "other", "aria_table", "definition",
                    "innodb_table", "csv_table" },
         { kinds.ibdata1, kinds.ib_logfile0, kinds.ibtmp1, kinds["aria_log.00000001"], kinds.aria_log_control,
           kinds["mysql/global_priv.MAD"], kinds["mysql/global_priv.frm"], kinds["mysql/innodb_index_stats.ibd"],
           kinds["mysql/general_log.CSV"] })
      assert.same({ "binlog", "other", "general_log", "slow_log" },
         { kinds[logs .. "/bin.000001"], kinds[logs .. "/bin.index"], kinds[logs .. "/general.log"],
           kinds[logs .. "/slow.log"] })
      assert.is_true(#shown > 0)
      for _, f in ipairs(shown) do
         assert.equal("tmpfile", f.kind)
         assert.matches("^/proc/%d+/fd/%d+$", f.path)
         assert.equal(s.dir .. "/tmp/", f.shown:sub(1, #s.dir + 5))
         assert.matches(" %(deleted, still open%)$", f.shown)
      end
   end)

   it("draws probes only from distinctive values and refuses what it cannot use", function()
      assert.is_true(probes.distinctive("Anna Zweistein", 8))
      assert.is_true(probes.distinctive("\201\202\203\204\205\206\207\208", 8))   -- binary, like a random value
      assert.is_false(probes.distinctive("Zweistein", 10))
      assert.is_false(probes.distinctive("xxxxxxxxxxxx", 8))
      assert.is_false(probes.distinctive("2026-01-01 10:00", 8))
      local s <close> = assert(sandbox.start{ name = "spec-diskscan-probes" })
      local c <close> = assert(s:connect())
      assert(c:exec("CREATE DATABASE app"))
      assert(c:exec("CREATE TABLE app.words (id INT PRIMARY KEY, w VARCHAR(40), n INT) ENGINE=InnoDB"))
      -- words every server holds (help text, accounts), and a category repeated in every row
      assert(c:exec("INSERT INTO app.words VALUES (1, 'localhost', 1), (2, 'Description', 2), "
         .. "(3, 'character set', 3)"))
      assert(c:exec("CREATE TABLE app.numbers (id INT PRIMARY KEY, n BIGINT) ENGINE=InnoDB"))
      local p = assert(diskscan.probes(c, { schemas = { "app" } }))
      assert.equal(0, p.count)
      assert.same({ { table = "app.numbers", why = "no string columns" },
                    { table = "app.words", why = "every candidate is in the baseline" } }, p.without)
      assert.equal(3, p.dropped)
      local none = assert(diskscan.scan(c, { probes = p }))
      assert.equal("no probe could be drawn from the rows in scope: nothing was searched", none.note)
      assert.same({ nil, "schema 'nope' does not exist" }, { diskscan.probes(c, { schemas = { "app", "nope" } }) })
      assert.has_error(function() diskscan.probes(c, { markers = { "short" } }) end,
         "marker 1 is not a string of at least 8 bytes")
   end)
end)
