-- runbooks/at-rest.lua against MariaDB sandboxes, and its plan for described MySQL servers.
local sandbox = require "myseal.sandbox"
local mysql = require "mysql"
local sys = require "sys"
local json = require "myseal.json"
local E = require "support.engine"

local MARKER = "MYSEAL-MARKER-7f3a9c"

-- The fixture: two schemas, many tables, a few larger ones, hostile names, a partitioned
-- table, a view, a MyISAM table. Returns the list of base tables as { schema, name }.
local function fixture(s)
   local c <close> = assert(s:connect{ database = "mysql" })   -- seq_1_to_N needs a current schema
   local tables = {}
   local function exec(sql, ...) assert(c:exec(sql, ...)) end
   local function create(schema, name, ddl)
      exec(("CREATE TABLE %s.%s %s"):format(mysql.ident(schema), mysql.ident(name), ddl))
      tables[#tables + 1] = { schema = schema, name = name }
   end
   exec("CREATE DATABASE biobank")
   exec("CREATE DATABASE `lab 2`")
   create("biobank", "patients", "(id INT PRIMARY KEY, name VARCHAR(100), note TEXT) ENGINE=InnoDB")
   exec("INSERT INTO biobank.patients SELECT seq, CONCAT('patient-', seq), REPEAT('x', 200) FROM seq_1_to_2000")
   exec("INSERT INTO biobank.patients VALUES (999999, ?, 'marker row')", MARKER)
   create("biobank", "specimens", "(id INT PRIMARY KEY, patient INT, data VARBINARY(1000)) ENGINE=InnoDB")
   exec("INSERT INTO biobank.specimens SELECT seq, seq % 2000, RANDOM_BYTES(900) FROM seq_1_to_8000")
   for i = 1, 24 do
      create("biobank", ("t%02d"):format(i), "(id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB")
      exec(("INSERT INTO biobank.t%02d SELECT seq, MD5(seq) FROM seq_1_to_%d"):format(i, 50 * i))
   end
   create("biobank", "we`ird", "(a INT) ENGINE=InnoDB")
   create("biobank", "with space", "(a INT) ENGINE=InnoDB")
   create("biobank", "naïve ünïcode", "(a VARCHAR(10)) ENGINE=InnoDB")
   create("biobank", "select", "(a INT) ENGINE=InnoDB")
   create("biobank", "events", "(id INT, at DATE) ENGINE=InnoDB PARTITION BY HASH(id) PARTITIONS 4")
   exec("INSERT INTO biobank.events SELECT seq, '2026-01-01' FROM seq_1_to_400")
   exec("CREATE VIEW biobank.patient_names AS SELECT name FROM biobank.patients")
   create("biobank", "legacy", "(a INT, b VARCHAR(20)) ENGINE=MyISAM")
   exec("INSERT INTO biobank.legacy VALUES (1, 'old')")
   for i = 1, 5 do
      create("lab 2", "results " .. i, "(id INT PRIMARY KEY, r DOUBLE) ENGINE=InnoDB")
      exec(("INSERT INTO `lab 2`.`results %d` SELECT seq, seq / 7 FROM seq_1_to_300"):format(i))
   end
   -- the pages with the marker on disk
   exec("FLUSH TABLES biobank.patients FOR EXPORT")
   exec("UNLOCK TABLES")
   return tables
end

local function checksums(s, tables)
   local c <close> = assert(s:connect())
   local out = {}
   for _, t in ipairs(tables) do
      local name = mysql.ident(t.schema) .. "." .. mysql.ident(t.name)
      out[t.schema .. "." .. t.name] = assert(c:query("CHECKSUM TABLE " .. name))[1][2]
   end
   return out
end

-- .ibd files under the datadir that hold the marker
local function marked_files(s)
   local found = {}
   local function walk(dir)
      for _, name in ipairs(sys.dir(dir) or {}) do
         local p = dir .. "/" .. name
         local st = sys.stat(p)
         if st.type == "directory" then walk(p)
         elseif name:match("%.ibd$") and (sys.read_file(p) or ""):find(MARKER, 1, true) then
            found[#found + 1] = p
         end
      end
   end
   walk(s.datadir)
   return found
end

-- InnoDB tables of the fixture that the server does not report encrypted
local function unencrypted(s)
   local c <close> = assert(s:connect())
   local rows = assert(c:query([[
      SELECT t.NAME FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
      LEFT JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
      WHERE t.SPACE > 0 AND (t.NAME LIKE 'biobank/%' OR t.NAME LIKE 'lab@00202/%')
        AND NOT COALESCE(e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0, FALSE)]]))
   local out = {}
   for _, r in ipairs(rows) do out[#out + 1] = r[1] end
   return out
end

describe("at-rest runbook", function()
   local state, backup
   before_each(function()
      state = assert(sys.tmpdir("at-rest-spec"))
      backup = state .. "/key-backup"
   end)
   after_each(function() sys.rmtree(state) end)

   -- sandboxes and their journals live in the default state directory (stopping a
   -- sandbox removes its journals)
   local function myseal(argv)
      return E.myseal(argv, {})
   end

   it("encrypts every InnoDB table, keeps the data, backs up the key, and a second run does nothing", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest" })
      local tables = fixture(s)
      local before = checksums(s, tables)
      assert.same({ s.datadir .. "/biobank/patients.ibd" }, marked_files(s))
      local args = { "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup }
      local r = myseal(args)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("warning: biobank.legacy is not encrypted: MyISAM cannot be encrypted", r.stdout)
      assert.same({}, unencrypted(s))
      assert.same(before, checksums(s, tables))
      assert.same({}, marked_files(s))
      -- the key file: 0600, key 1, encrypted by default with a filekey (openssl reads it back),
      -- and verified copies of both
      local keyfile, filekey = s.dir .. "/keyring/keyfile.enc", s.dir .. "/keyring/filekey"
      assert.is_nil(sys.stat(s.dir .. "/keyring/keyfile"))
      assert.equal(384, sys.stat(keyfile).mode)
      assert.equal(384, sys.stat(filekey).mode)
      assert.equal(488, sys.stat(s.dir .. "/keyring").mode)
      local keys = assert(sys.read_file(keyfile))
      assert.equal("Salted__", keys:sub(1, 8))
      local plain = assert(sys.run{ "openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass",
         "file:" .. filekey, "-in", keyfile })
      assert.is_true(plain.ok, plain.stderr)
      assert.matches("^1;%x+\n$", plain.stdout)
      local copies = sys.dir(backup)
      assert.equal(2, #copies)
      for _, copy in ipairs(copies) do
         local original = copy:match("^filekey") and filekey or keyfile
         assert.equal(sys.read_file(original), sys.read_file(backup .. "/" .. copy))
         assert.equal(384, sys.stat(backup .. "/" .. copy).mode)
      end
      -- the server's view: keyring active, logs and temporary files encrypted
      local c <close> = assert(s:connect())
      local vars = {}
      for _, row in ipairs(assert(c:query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_encrypt_log', "
         .. "'encrypt_binlog', 'encrypt_tmp_files', 'innodb_encrypt_tables')"))) do vars[row[1]] = row[2] end
      assert.same({ innodb_encrypt_log = "ON", encrypt_binlog = "ON", encrypt_tmp_files = "ON",
                    innodb_encrypt_tables = "ON" }, vars)
      -- new tables are encrypted by default
      assert(c:exec("CREATE TABLE biobank.newer (a INT) ENGINE=InnoDB"))
      assert.same({}, unencrypted(s))
      -- again: nothing to do
      r = myseal(args)
      assert.equal(0, r.status, r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      -- keyring.use_filekey=false is about a new key file: the encrypted one there stays in use
      r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup,
         "--set", "keyring.use_filekey=false" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("run: nothing to do", r.stdout)
      assert.equal(keys, sys.read_file(keyfile))
      -- and the key was never shown
      assert.is_nil(r.stdout:find(plain.stdout:match(";(%x+)"), 1, true))
   end)

   it("resumes after kill -9 in the middle of the tables, and the data is intact", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-kill" })
      local tables = fixture(s)
      local before = checksums(s, tables)
      local args = { E.MYSEAL, "run", "at-rest", "--sandbox", s.name, "--yes", "--json",
         "--set", "keyring.backup_dir=" .. backup, "--set", "at_rest.parallel=1", "--set", "at_rest.method=rebuild",
         "--set", "at_rest.rehearsal=false", "--set", "at_rest.disk_scan=no", log = state .. "/run.log" }
      -- a reader holds biobank.t12: the run tries it again and again, with the larger tables done
      local blocker = assert(s:connect())
      assert(blocker:exec("LOCK TABLES biobank.t12 READ"))
      local pid = assert(sys.spawn(args))
      local root = require("myseal.engine.target").state_root()
      assert.is_true(E.wait_for(function()
         local j = E.journals(root, "sandbox-" .. s.name, "at-rest")[1]
         return j ~= nil and (sys.read_file(j) or ""):find("`biobank`.`t12` NOWAIT ENCRYPTED", 1, true) ~= nil
      end, 60))
      assert(sys.kill(pid, "KILL"))
      while sys.alive(pid) do sys.sleep(0.01) end
      blocker:close()
      local left = #unencrypted(s)
      assert.is_true(left > 0, "the kill came too late to test anything")
      local r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup }
      assert.equal(1, r.status)
      assert.matches("resume", r.stderr)
      r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--resume", "--set", "keyring.backup_dir=" .. backup,
         "--set", "at_rest.parallel=1", "--set", "at_rest.method=rebuild", "--set", "at_rest.rehearsal=false",
         "--set", "at_rest.disk_scan=no" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({}, unencrypted(s))
      assert.same(before, checksums(s, tables))
   end)

   it("encrypts in the background on MariaDB, with encryption threads", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-bg" })
      local tables = fixture(s)
      local before = checksums(s, tables)
      local r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup,
         "--set", "at_rest.method=background", "--set", "at_rest.parallel=2", "--set", "at_rest.rehearsal=false",
         "--set", "at_rest.disk_scan=no" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({}, unencrypted(s))
      assert.same(before, checksums(s, tables))
      local c <close> = assert(s:connect())
      assert.equal("2", c:query("SELECT @@innodb_encryption_threads")[1][1] .. "")
   end)

   it("leaves the key file plain when the profile says so, and warns about one left plain", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-plainkey" })
      local tables = fixture(s)
      local before = checksums(s, tables)
      local r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup,
         "--set", "keyring.use_filekey=false" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({}, unencrypted(s))
      assert.same(before, checksums(s, tables))
      local keyfile = s.dir .. "/keyring/keyfile"
      assert.matches("^1;%x+\n$", assert(sys.read_file(keyfile)))
      assert.equal(384, sys.stat(keyfile).mode)
      assert.is_nil(sys.stat(s.dir .. "/keyring/filekey"))
      assert.equal(1, #sys.dir(backup))
      -- the default profile then finds a plain key file: it stays as it is, with a warning
      r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. backup }
      assert.equal(0, r.status, r.stderr)
      assert.matches("warning: the key file " .. keyfile:gsub("%p", "%%%0") .. " is plain text", r.stdout)
      assert.matches("run: nothing to do", r.stdout)
      assert.matches("^1;%x+\n$", assert(sys.read_file(keyfile)))
   end)

   it("puts the option file back and starts the server again when it does not come back", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-broken" })
      fixture(s)
      local cnf_before = assert(sys.read_file(s.cnf))
      local r = myseal{ "run", "at-rest", "--runbooks", E.FIXTURES .. "/runbooks/broken-keyring", "--sandbox", s.name,
         "--yes", "--set", "keyring.backup_dir=" .. backup }
      assert.equal(1, r.status)
      assert.matches("runbook at%-rest, step restart", r.stderr)
      assert.matches("file_key_management", r.stderr)
      -- the server is up, with its old configuration
      assert.equal(cnf_before, sys.read_file(s.cnf))
      local c <close> = assert(s:connect())
      assert.equal(0, c:query("SELECT @@innodb_encrypt_log")[1][1])
      assert.equal(0, #c:query("SELECT 1 FROM INFORMATION_SCHEMA.PLUGINS WHERE PLUGIN_NAME = 'file_key_management'"))
      assert.is_true(#unencrypted(s) > 0)
   end)

   it("refuses to go on without a key backup, unless told to accept the risk", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-nobackup" })
      local r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes" }
      assert.equal(1, r.status)
      assert.matches("keyring.backup_dir is not set: the key material must be backed up before anything is "
         .. "encrypted", r.stderr)
      -- a backup directory that is a file: refused before a key is made, not after
      local file = state .. "/not-a-dir"
      assert(sys.write_file(file, "x"))
      r = myseal{ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", "keyring.backup_dir=" .. file }
      assert.equal(2, r.status, r.stdout .. r.stderr)
      assert.matches("step preflight %(.-%): keyring.backup_dir: " .. file:gsub("%p", "%%%0")
         .. " exists and is not a directory\n", r.stderr)
      local c <close> = assert(s:connect())
      assert.equal(0, #c:query("SELECT 1 FROM INFORMATION_SCHEMA.PLUGINS WHERE PLUGIN_NAME = 'file_key_management'"))
      assert.is_nil(sys.stat(s.dir .. "/keyring"))
   end)

   describe("plan for described MySQL servers", function()
      local function plan(version, cnf, ...)
         local argv = { "plan", "at-rest", "--describe", "tests/fixtures/at-rest/mysql-" .. version .. ".lua",
            "--set", "server.cnf=" .. cnf, "--set", "keyring.backup_dir=/srv/key-backup",
            "--set", "keyring.dir=/var/lib/mysql-keyring", "--set", "keyring.manifest_dir=/usr/sbin", ... }
         local r = myseal(argv)
         return r.stdout, r
      end
      local MY_CNF = "tests/fixtures/at-rest/my.cnf"

      it("MySQL 5.7: the keyring_file plugin, table by table, largest first; what 5.7 cannot encrypt is named",
            function()
         local out = plan("5.7.44", MY_CNF)
         assert.matches("\n        %+early%-plugin%-load=keyring_file.so\n        %+keyring_file_data=/var/lib/mysql%-keyring/keyring\n", out)
         assert.is_nil(out:find("default_table_encryption", 1, true))   -- 8.0.16+
         assert.is_nil(out:find("innodb_redo_log_encrypt", 1, true))    -- 8.0+
         assert.matches("sql: ALTER INSTANCE ROTATE INNODB MASTER KEY", out)
         -- one session setting bounds the lock waits (MySQL has no per-statement form for ALTER)
         assert.matches("sql: SET SESSION lock_wait_timeout = 1\n"
            .. "%s+sql: ALTER TABLE `biobank`.`specimens` ENCRYPTION='Y'\n"
            .. "%s+sql: ALTER TABLE `biobank`.`patients` ENCRYPTION='Y'\n", out)
         assert.is_nil(out:find("`audit log` ENCRYPTION", 1, true))      -- encrypted already
         assert.matches("biobank.legacy is not encrypted: MyISAM cannot be encrypted", out)
         -- tables in shared tablespaces are found here, not by a failing ALTER
         assert.matches("warning: biobank.old_codes is not encrypted: it lives in the shared tablespace "
            .. "innodb_system, which MySQL 5.7.44 cannot encrypt: move it to a tablespace of its own "
            .. "%(ALTER TABLE `biobank`.`old_codes` TABLESPACE=innodb_file_per_table%), then run at%-rest again", out)
         assert.matches("warning: biobank.shared_codes is not encrypted: it lives in the shared tablespace "
            .. "ts_codes", out)
         assert.is_nil(out:find("ALTER TABLE `biobank`.`old_codes` ENCRYPTION", 1, true))
         assert.is_nil(out:find("ALTER TABLESPACE", 1, true))
         assert.matches("system%-tablespace%s+already done\n%s+warning: innodb_system: MySQL 5.7 encrypts "
            .. "file%-per%-table tablespaces only\n", out)
         assert.matches("schema%-defaults%s+skipped", out)
         assert.matches("binary%-logs%s+already done\n%s+warning: MySQL 5.7.44 cannot encrypt its binary logs: "
            .. "binlog.000042 and every later one stay plain\n", out)
         assert.matches("rehearsal: plan only: myseal does not run MySQL backups", out)
         assert.matches("Nothing was changed%.\n$", out)
      end)

      it("MySQL 5.7 before 5.7.11 has no keyring: refused", function()
         local desc = state .. "/old.lua"
         assert(sys.write_file(desc, (assert(sys.read_file("tests/fixtures/at-rest/mysql-5.7.44.lua"))
            :gsub("5%.7%.44", "5.7.10"))))
         local r = myseal{ "plan", "at-rest", "--describe", desc, "--set", "server.cnf=" .. MY_CNF,
            "--set", "keyring.backup_dir=/srv/kb" }
         assert.equal(1, r.status)
         assert.equal("myseal: a run would stop where this step refuses: preflight: MySQL 5.7.10 has no keyring: the "
            .. "keyring_file plugin came with MySQL 5.7.11; upgrade first\n", r.stderr)
         assert.matches("%[1/%d+%] preflight +WOULD REFUSE: MySQL 5%.7%.10 has no keyring", r.stdout)
      end)

      it("MySQL 8.0.24+: component_keyring_file for a new setup, schemas, general tablespaces, the mysql tablespace, "
         .. "binary logs", function()
         local out = plan("8.0.36", MY_CNF, "--set", "at_rest.convert_myisam=true",
            "--set", "at_rest.purge_binlogs=true")
         assert.is_nil(out:find("early-plugin-load", 1, true))
         assert.matches("MySQL 8.0.36; keyring component_keyring_file in /var/lib/mysql%-keyring; method rebuild", out)
         for _, line in ipairs{ "default_table_encryption=ON", "innodb_redo_log_encrypt=ON",
               "innodb_undo_log_encrypt=ON", "binlog_encryption=ON", "innodb_temp_tablespace_encrypt=ON" } do
            assert.is_truthy(out:find("\n        +" .. line .. "\n", 1, true), line)
         end
         -- the component's files: the manifest, and its configuration for the server's user only
         assert.matches('create /usr/sbin/mysqld.my %(0644%)\n.-%+  "components": '
            .. '"file://component_keyring_file"\n', out)
         assert.matches("create /usr/lib/mysql/plugin/component_keyring_file.cnf %(0600, mysql%)\n", out)
         assert.matches("create directory /var/lib/mysql%-keyring %(0700%)", out)
         assert.matches("sql: ALTER TABLE `biobank`.`legacy` ENCRYPTION='Y', ENGINE=InnoDB", out)
         assert.matches("sql: ALTER TABLESPACE `ts_codes` ENCRYPTION='Y'\n", out)
         assert.matches("sql: ALTER TABLESPACE mysql ENCRYPTION='Y'", out)
         assert.matches("warning: innodb_undo_001: undo pages written before innodb_undo_log_encrypt=ON stay "
            .. "plain until the undo tablespace is truncated: ALTER UNDO TABLESPACE innodb_undo_001 SET INACTIVE", out)
         -- a new table in an existing schema follows the schema's default
         assert.matches("schema%-defaults%s+to do: DEFAULT ENCRYPTION='N' %(new tables plain%): biobank\n"
            .. "%s+sql: ALTER SCHEMA `biobank` DEFAULT ENCRYPTION='Y'\n", out)
         assert.is_nil(out:find("ALTER SCHEMA `lims`", 1, true))
         -- the binary log rotated, the plain ones purged (replicas and backups have them: the parameter says so)
         assert.matches("binary%-logs%s+to do: the current binary log binlog.000008 is not encrypted\n"
            .. "%s+sql: FLUSH BINARY LOGS\n%s+sql: PURGE BINARY LOGS TO 'binlog.000009'\n", out)
      end)

      it("MySQL 8.0 with the keyring_file plugin keeps it and names the migration", function()
         local out = plan("8.0.36-plugin", MY_CNF)
         assert.matches("MySQL 8.0.36; keyring keyring_file in /var/lib/mysql%-keyring", out)
         assert.matches("warning: MySQL 8.0.36 keeps the keyring_file plugin it has %(deprecated since 8.0.34, "
            .. "gone in 8.4%); component_keyring_file replaces it by a key migration, the server stopped, as its "
            .. "own user: mysqld %-%-defaults%-file=<my.cnf> %-%-keyring%-migration%-to%-component "
            .. "%-%-keyring%-migration%-source=keyring_file.so %-%-keyring_file_data=/var/lib/mysql%-keyring/keyring "
            .. "%-%-keyring%-migration%-destination=component_keyring_file.so", out)
         assert.matches("\n        %+early%-plugin%-load=keyring_file.so\n", out)
         assert.is_nil(out:find("create /usr/sbin/mysqld.my", 1, true))
      end)

      it("MySQL 8.4: the component's manifest and configuration, no plugin", function()
         local out = plan("8.4.3", MY_CNF)
         assert.is_nil(out:find("early-plugin-load", 1, true))
         assert.matches('create /usr/sbin/mysqld.my %(0644%)\n.-%+  "components": "file://component_keyring_file"\n', out)
         -- 0600: the plan does not show its content
         assert.matches("create /usr/lib/mysql/plugin/component_keyring_file.cnf %(0600, mysql%)\n%s+%(84 bytes, "
            .. "content not shown%)\n", out)
         assert.matches("sql: ALTER TABLE `biobank`.`specimens` ENCRYPTION='Y'", out)
      end)

      it("MySQL 8.4 with a manifest naming other components: nothing written, the option file neither", function()
         local manifest_dir = state .. "/sbin"
         assert(sys.mkdir(manifest_dir))
         assert(sys.write_file(manifest_dir .. "/mysqld.my", '{ "components": "file://component_keyring_oci" }\n'))
         local out, r = plan("8.4.3", MY_CNF, "--set", "keyring.manifest_dir=" .. manifest_dir)
         assert.equal(1, r.status, out)
         assert.matches("step option%-file %(.-%): " .. manifest_dir:gsub("%p", "%%%0") .. "/mysqld%.my exists and "
            .. "names other components: add component_keyring_file to it by hand\n$", r.stderr)
         -- default_table_encryption=ON without a keyring would make every CREATE TABLE fail
         assert.matches("option%-file +FAILED\nplan: failed\n$", out)
      end)

      it("MySQL 8.4 whose component configuration names another keyring: refused, not pointed elsewhere", function()
         local plugin_dir = state .. "/plugin"
         assert(sys.mkdir(plugin_dir))
         -- the component's own file name, in another directory: the keys there would be left behind
         assert(sys.write_file(plugin_dir .. "/component_keyring_file.cnf",
            '{ "path": "/secure/component_keyring_file", "read_only": false }\n'))
         local out, r = plan("8.4.3", MY_CNF, "--set", "keyring.plugin_dir=" .. plugin_dir)
         assert.equal(1, r.status, out)
         assert.matches("step option%-file %(.-%): " .. plugin_dir:gsub("%p", "%%%0")
            .. "/component_keyring_file%.cnf exists and points the component at the keyring "
            .. "/secure/component_keyring_file: pointing it at /var/lib/mysql%-keyring/component_keyring_file would "
            .. "start an empty keyring and leave encrypted "
            .. "tables unreadable; set keyring.dir to its directory\n$", r.stderr)
         assert.matches("option%-file +FAILED\nplan: failed\n$", out)
      end)

      it("MySQL 8.4 with the old plugin in its option file is refused", function()
         local out, r = plan("8.4.3", "tests/fixtures/at-rest/my-plugin.cnf")
         assert.matches("early%-plugin%-load=keyring_file.so: the keyring_file plugin does not exist in MySQL 8.4",
            out .. r.stderr)
         -- the plan goes on to show the rest, and says a run would stop at the refusal
         assert.matches("WOULD REFUSE: early%-plugin%-load=keyring_file%.so", out)
         assert.equal(1, r.status)
         assert.matches("a run would stop where this step refuses", r.stderr)
      end)

      it("refuses counts the server cannot work with before anything is planned", function()
         -- no encryption thread would leave the run waiting a day; a key file over 1 MiB is refused by the server
         for set, want in pairs{
            ["at_rest.parallel=0"] = "at_rest.parallel must be an integer of at least 1, not '0'",
            ["keyring.key_count=0"] = "keyring.key_count must be an integer from 1 to 10000, not '0'",
            ["keyring.key_count=20000"] = "keyring.key_count must be an integer from 1 to 10000, not '20000'",
            ["at_rest.lock_wait=-1"] = "at_rest.lock_wait must be a number of at least 0, not '-1'",
         } do
            local r = myseal{ "plan", "at-rest", "--describe", "mariadb-10.11", "--set", "server.cnf=" .. MY_CNF,
               "--set", "keyring.backup_dir=/srv/kb", "--set", set }
            assert.equal(2, r.status, set)
            assert.equal(("myseal: --set %s: %s\n"):format(set:match("^[^=]+"), want), r.stderr)
            assert.equal("", r.stdout)
         end
      end)

      it("takes a server without [server] cnf as bad input, at rest and in transit", function()
         for _, rb in ipairs{ { "at-rest", "option-file", "keyring.backup_dir=/srv/kb" },
                              { "in-transit", "server-options", "pki.dir=/srv/tls" } } do
            local r = myseal{ "plan", rb[1], "--describe", "mariadb-10.11", "--set", rb[3] }
            assert.equal(2, r.status, r.stdout .. r.stderr)
            assert.matches("step " .. rb[2]:gsub("%p", "%%%0") .. " %(.-%): server%.cnf is not set: name the "
               .. "server's option file in %[server%] cnf\n$", r.stderr)
         end
      end)

      it("refuses relative paths the server would read from its datadir, before anything is planned", function()
         for set, want in pairs{
            ["keyring.dir=keys"] = "keyring.dir: keys is not an absolute path",
            ["keyring.filekey=keys/fk"] = "keyring.filekey: keys/fk is not an absolute path",
            ["at_rest.query_log_dir=logs"] = "at_rest.query_log_dir: logs is not an absolute path",
         } do
            local r = myseal{ "plan", "at-rest", "--describe", "mariadb-10.11", "--set", "server.cnf=" .. MY_CNF,
               "--set", "keyring.backup_dir=/srv/kb", "--set", "at_rest.query_logs=move", "--set", set }
            assert.equal(2, r.status, set)
            assert.matches("step preflight %(.-runbooks/at%-rest%.lua:%d+%): " .. want:gsub("%p", "%%%0")
               .. " %(the server would look for it in its datadir%)\n$", r.stderr)
            assert.matches("preflight +FAILED\n", r.stdout)
            assert.is_nil(r.stdout:find("key-material", 1, true))
         end
      end)

      it("takes a description's tables as the server gives them: largest first, no size as 0 B", function()
         local desc = state .. "/order.lua"
         assert(sys.write_file(desc, [[return { server = "mysql-8.0.36", disk_free = 2000000000,
            tables = { { schema = "app", name = "small", engine = "InnoDB", bytes = 1000 },
                       { schema = "app", name = "sizeless", engine = "InnoDB" },
                       { schema = "app", name = "big", engine = "InnoDB", bytes = 5000000000 } } }]]))
         local r = myseal{ "plan", "at-rest", "--describe", desc, "--set", "server.cnf=" .. MY_CNF,
            "--set", "keyring.backup_dir=/srv/kb" }
         -- a run measures the largest table, not the first one listed, against the free disk
         assert.equal(1, r.status, r.stderr)
         assert.equal("myseal: a run would stop where this step refuses: preflight: the largest table to encrypt, "
            .. "app.big, is 4.7 GiB: rebuilding it needs about 5.6 GiB free in the datadir and 1.9 GiB is free\n",
            r.stderr)
         assert.matches("sql: ALTER TABLE `app`.`big` ENCRYPTION='Y'\n%s+sql: ALTER TABLE `app`.`small` "
            .. "ENCRYPTION='Y'\n%s+sql: ALTER TABLE `app`.`sizeless` ENCRYPTION='Y'\n", r.stdout)
      end)

      -- a primary's replicas: tests/spec/replication_spec.lua
      it("refuses a keyring that would change place", function()
         local desc = state .. "/moved-keyring.lua"
         local base = assert(sys.read_file("tests/fixtures/at-rest/mysql-8.0.36.lua"))
         assert(sys.write_file(desc, (base:gsub("plugins = {}", 'plugins = { keyring_file = "ACTIVE" }')
            :gsub('variables = {', 'variables = { keyring_file_data = "/var/lib/mysql-keyring/old-keyring",'))))
         local r = myseal{ "plan", "at-rest", "--describe", desc, "--set", "server.cnf=" .. MY_CNF,
            "--set", "keyring.backup_dir=/srv/kb" }
         assert.matches("the server already uses the keyring /var/lib/mysql%-keyring/old%-keyring; pointing it at "
            .. "/var/lib/mysql%-keyring/keyring would start an empty keyring", r.stdout .. r.stderr)
      end)
   end)
end)
