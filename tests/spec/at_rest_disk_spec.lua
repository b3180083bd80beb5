-- runbooks/at-rest.lua on MariaDB, judged by the disk: after a run, no application value is readable
-- in any file the server writes, except where the run says so (binary logs kept for replicas, the
-- general query log, pages the system tablespace freed before). Every file is searched here with
-- sys.scan for the rows' own values, independently of the runbook's own disk scan.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local state = require "myseal.state"
local E = require "support.engine"

local h = require "support.helpers"

-- The files under the dirs holding any of the values, relative to their dir: sorted list.
local function readable(values, dirs)
   local files = {}
   for _, d in ipairs(dirs) do h.files_under(d, files) end
   local out = {}
   for path, r in pairs(assert(sys.scan(files, values))) do
      if (r.hits or 0) > 0 then
         for _, d in ipairs(dirs) do
            if path:sub(1, #d + 1) == d .. "/" then out[#out + 1] = path:sub(#d + 2) end
         end
      end
   end
   table.sort(out)
   return out
end

describe("at-rest and the disk", function()
   local dir
   before_each(function()
      dir = assert(sys.tmpdir("at-rest-disk-spec"))
      assert(sys.chown(dir, "mysql", "mysql"))
   end)
   after_each(function() sys.rmtree(dir) end)

   it("leaves no application value readable on disk, names what it cannot encrypt, and proves it", function()
      local logs = dir .. "/logs"
      assert(sys.mkdir(logs, tonumber("750", 8)))
      assert(sys.chown(logs, "mysql", "mysql"))
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-disk", options = {
         log_bin = logs .. "/binlog", general_log = 1, general_log_file = logs .. "/general.log" } })
      local values, old = {}, {}
      local function v(prefix)
         values[#values + 1] = ("%s %s %s"):format(prefix, state.random_hex(4), state.random_hex(3))
         return values[#values]
      end
      do
         local c <close> = assert(s:connect{ database = "mysql" })
         local function exec(sql, ...) assert(c:exec(sql, ...)) end
         exec("CREATE DATABASE app")
         exec("CREATE TABLE app.patients (id INT PRIMARY KEY, name VARCHAR(100), city VARCHAR(60)) ENGINE=InnoDB")
         for i = 1, 30 do
            exec("INSERT INTO app.patients VALUES (?, ?, ?)", i, v("Patientin Quirina"), v("Wyvernholm"))
         end
         -- an updated row: its old value goes through the undo log, in the system tablespace
         old[1] = ("Vorname Alt %s"):format(state.random_hex(6))
         exec("INSERT INTO app.patients VALUES (99, ?, 'none')", old[1])
         exec("UPDATE app.patients SET name = ? WHERE id = 99", v("Neuer Name"))
         -- deleted rows: their pages are freed inside the table's file, and the threads skip free pages
         exec("CREATE TABLE app.visits (id INT PRIMARY KEY, note VARCHAR(200)) ENGINE=InnoDB")
         exec("INSERT INTO app.visits SELECT seq, CONCAT('Besuch Xylophon ', seq, ' ', REPEAT('v', 150)) "
            .. "FROM seq_1_to_20000")
         old[2] = "Besuch Xylophon 1234 vvvvvvvvvvvvvvvvvvvv"
         for i = 1, 10 do exec("INSERT INTO app.visits VALUES (?, ?)", 100000 + i, v("Besuch bleibt")) end
         exec("DELETE FROM app.visits WHERE id < 100000")
         -- an Aria table, a sequence, and two tables whose names differ only by case
         exec("CREATE TABLE app.notes (id INT PRIMARY KEY, body VARCHAR(200)) ENGINE=Aria")
         for i = 1, 10 do exec("INSERT INTO app.notes VALUES (?, ?)", i, v("Notiz Zaunkoenig")) end
         exec("CREATE SEQUENCE app.sample_no")
         -- a table the encryption threads never touch (ENCRYPTED=NO): an ALTER does it
         exec("CREATE TABLE app.opted_out (a VARCHAR(60)) ENGINE=InnoDB ENCRYPTED=NO")
         exec("INSERT INTO app.opted_out VALUES (?)", v("Ausnahme Kormoran"))
         exec("CREATE DATABASE `Case`")
         exec("CREATE TABLE `Case`.`T` (a VARCHAR(50)) ENGINE=InnoDB")
         exec("CREATE TABLE `Case`.`t` (a VARCHAR(50)) ENGINE=InnoDB")
         exec("INSERT INTO `Case`.`T` VALUES (?)", v("Grossbuchstabe"))
         exec("INSERT INTO `Case`.`t` VALUES (?)", v("Kleinbuchstabe"))
         -- the persistent statistics copy values into the mysql schema's Aria tables
         exec("ANALYZE TABLE app.patients PERSISTENT FOR ALL")
      end
      assert(s:restart())   -- every page in its file
      local all = {}
      for _, x in ipairs(values) do all[#all + 1] = x end
      for _, x in ipairs(old) do all[#all + 1] = x end
      local before = readable(all, { s.datadir, logs })
      for _, f in ipairs{ "app/patients.ibd", "app/visits.ibd", "app/notes.MAD", "app/opted_out.ibd", "Case/T.ibd",
                          "Case/t.ibd", "binlog.000001", "general.log", "mysql/column_stats.MAD" } do
         assert.is_truthy(table.concat(before, "\n"):find(f, 1, true), f .. " before")
      end

      -- the old values are the caller's markers (the rows no longer hold them)
      local markers = dir .. "/markers"
      assert(sys.write_file(markers, table.concat(old, "\n") .. "\n", { mode = tonumber("600", 8) }))
      local kb = "keyring.backup_dir=" .. dir .. "/kb"
      local r = E.myseal({ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", kb,
         "--set", "at_rest.scan_markers=file:" .. markers }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local out = r.stdout
      assert.matches("aria%-tables%s+changed: %d+ Aria tables to rebuild: [^\n]*`mysql`.`global_priv`", out)
      assert.matches("aria%-tables%s+changed: [^\n]*`app`.`notes`", out)
      local journal = E.journals(require("myseal.engine.target").state_root(), "sandbox-" .. s.name, "at-rest")[1]
      local alters = {}
      for _, e in ipairs(E.select(E.events(journal), "effect", "step", "encrypt-tables")) do
         if (e.sql or ""):match("^ALTER") then alters[#alters + 1] = e.sql end
      end
      assert.same({ "ALTER TABLE `app`.`opted_out` NOWAIT ENCRYPTED=YES" }, alters)
      assert.matches("freed%-pages%s+changed: application values are readable in pages freed before encryption: "
         .. "`app`.`visits`  %(", out)
      -- binlog.000001 has the rows, binlog.000002 began with the last restart before the run
      assert.matches("warning: 2 binary logs written before encryption hold plain data: binlog.000001, binlog.000002; "
         .. "once every replica and backup has them: PURGE BINARY LOGS TO 'binlog.000003' %(or run again with "
         .. "at_rest.purge_binlogs=true%)\n", out)
      assert.matches("warning: on, and never encrypted: general_log %(" .. logs:gsub("%p", "%%%0")
         .. "/general.log%)", out)
      assert.matches("warning: plaintext: " .. logs:gsub("%p", "%%%0")
         .. "/general.log %(general query log%): %d+ hits", out)
      assert.matches("warning: plaintext: [^\n]*/ibdata1 %(InnoDB system tablespace%): %d+ hits? %(marker %d+%): the "
         .. "system tablespace is encrypted, but pages freed earlier keep their old plaintext", out)
      -- the Aria log is never encrypted: it holds the rows inserted into app.notes
      assert.matches("warning: plaintext: [^\n]*/aria_log.00000001 %(Aria transaction log%): %d+ hits? %(app.notes "
         .. "%d+%): the Aria log is never encrypted", out)
      assert.matches("rehearsal%s+[^\n]*\n", out)
      assert.matches("restore rehearsal: a copy restored with the key backup ", out)
      -- neither value shows anywhere myseal prints, nor in what it writes (journals, caches)
      for _, x in ipairs(all) do assert.is_nil((out .. r.stderr):find(x, 1, true), "a value in the output") end
      assert.same({}, readable(all, { state.path(), assert(state.cache()) }))

      -- the disk, searched here: only what the run named
      assert.same({ "binlog.000001", "data/aria_log.00000001", "data/ibdata1", "general.log" },
         readable(all, { s.dir, logs }))

      -- myseal check --deep says the same, file by file
      r = E.myseal({ "check", "--sandbox", s.name, "--deep", "--format", "json", "--set", kb,
         "--set", "at_rest.scan_markers=file:" .. markers }, {})
      assert.equal(1, r.status, r.stderr)
      local report = assert(json.decode(r.stdout))
      local schema = assert(json.decode(assert(sys.read_file("docs/check.schema.json"))))
      assert.is_true(require("support.jsonschema").validate(schema, report))
      local f = h.findings(report)
      local binlog = f["plaintext:" .. logs .. "/binlog.000001"]
      assert.same({ "fail", "binlog", true, "binary-logs" },
         { binlog.severity, binlog.file_kind, binlog.should_be_encrypted, binlog.fix.step })
      assert.matches("^" .. logs:gsub("%p", "%%%0") .. "/binlog.000001 %(binary log%): %d+ application values? "
         .. "readable: a binary log written before encrypt_binlog=ON$", binlog.title)
      local general = f["plaintext:" .. logs .. "/general.log"]
      assert.same({ "warn", false, "query-logs" }, { general.severity, general.should_be_encrypted, general.fix.step })
      assert.equal("fail", f["plaintext:" .. s.datadir .. "/ibdata1"].severity)
      assert.equal("warn", f["plaintext:" .. s.datadir .. "/aria_log.00000001"].severity)
      assert.equal("ok", f["at-rest:verify"].severity)
      assert.equal("ok", f["restore-rehearsal"].severity)
      assert.matches("^the last restore rehearsal, %d+%-%d+%-%d+T[%d:]+Z %(at%-rest%), restored the key backup "
         .. "as it is now$", f["restore-rehearsal"].title)
      assert.is_true(math.abs(f["restore-rehearsal"].rehearsed - os.time()) < 600)
      local files = {}
      for id in pairs(f) do files[#files + 1] = id:match("^plaintext:.*/([^/]+)$") end
      table.sort(files)
      assert.same({ "aria_log.00000001", "binlog.000001", "general.log", "ibdata1" }, files)
      assert.equal("fail", f["disk-scan"].severity)
      assert.matches("^application values readable in 4 files of the %d+ files %([%d.]+ [KMG]iB%) the server "
         .. "writes$", f["disk-scan"].title)
      -- both tables of Case are encrypted (and counted apart)
      assert.same({ "ok", 2 }, { f["tables:Case"].severity, f["tables:Case"].encrypted })
      for _, x in ipairs(all) do assert.is_nil(r.stdout:find(x, 1, true), "a value in the report") end

      -- replicas and backups have the old binary log now; the query log goes off
      r = E.myseal({ "run", "at-rest", "--sandbox", s.name, "--yes", "--set", kb,
         "--set", "at_rest.purge_binlogs=true", "--set", "at_rest.query_logs=off" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("binary%-logs%s+changed: 2 binary logs written before encryption to purge: binlog.000001, "
         .. "binlog.000002  %(", r.stdout)
      assert.matches("query%-logs%s+changed: general_log is to turn off", r.stdout)
      assert.matches("warning: statements in plain text %(review them, then remove or truncate them%): "
         .. logs:gsub("%p", "%%%0") .. "/general.log", r.stdout)
      assert.same({ "data/aria_log.00000001", "data/ibdata1", "general.log" }, readable(all, { s.dir, logs }))
      local c <close> = assert(s:connect())
      assert.equal("0", tostring(c:query("SELECT @@general_log")[1][1]))
   end)

   it("refuses a schema that does not exist, and the query logs moved nowhere", function()
      local s <close> = assert(sandbox.start{ name = "spec-at-rest-scope" })
      do
         local c <close> = assert(s:connect())
         assert(c:exec("CREATE DATABASE app"))
         assert(c:exec("CREATE TABLE app.t (a INT) ENGINE=InnoDB"))
      end
      local r = E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "keyring.backup_dir=" .. dir .. "/kb",
         "--set", "at_rest.schemas=app,nope,Nope2" }, {})
      assert.equal(2, r.status, r.stdout)
      assert.matches("step preflight[^\n]*: at_rest.schemas: nope, Nope2 do not exist on MariaDB %d+%.%d+%.%d+\n$",
         r.stderr)
      -- the server's own schema exists, but is not the application's
      r = E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "keyring.backup_dir=" .. dir .. "/kb",
         "--set", "at_rest.schemas=app,mysql" }, {})
      assert.equal(2, r.status, r.stdout)
      assert.matches("step preflight[^\n]*: at_rest.schemas: mysql is the server's own schema, not an application's "
         .. "%(at%-rest encrypts what can be of it in steps of their own%): leave it out\n$", r.stderr)
      r = E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "keyring.backup_dir=" .. dir .. "/kb",
         "--set", "at_rest.schemas=app" }, {})
      assert.equal(0, r.status, r.stderr)
      assert.matches("1 table to encrypt", r.stdout)
      -- moving the query logs needs somewhere to move them to: refused before a run changes anything
      r = E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "keyring.backup_dir=" .. dir .. "/kb",
         "--set", "at_rest.query_logs=move" }, {})
      assert.equal(2, r.status, r.stdout)
      assert.matches("step preflight[^\n]*: at_rest.query_logs=move needs at_rest.query_log_dir: the directory they "
         .. "go to\n$", r.stderr)
      -- the disk scan's own values are read at the preflight, not after the tables are encrypted
      local markers = h.write(dir .. "/markers", "1234567\n")
      local function scan(source)
         return E.myseal({ "plan", "at-rest", "--sandbox", s.name, "--set", "keyring.backup_dir=" .. dir .. "/kb",
            "--set", "at_rest.disk_scan=yes", "--set", "at_rest.scan_markers=" .. source }, {})
      end
      r = scan("file:" .. markers)
      assert.equal(2, r.status, r.stdout)
      assert.matches("step preflight[^\n]*: at_rest.scan_markers: marker 1 is shorter than 8 bytes\n$", r.stderr)
      r = scan("file:" .. dir .. "/none")
      assert.equal(2, r.status, r.stdout)   -- a secret's source that is not there: bad input
      assert.matches("step preflight[^\n]*: secret at_rest.scan_markers: " .. (dir .. "/none"):gsub("%p", "%%%0")
         .. ": No such file or directory\n$", r.stderr)
   end)
end)
