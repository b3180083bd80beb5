-- runbooks/rotate-master-key.lua: a MariaDB sandbox encrypted by at-rest, rotated twice;
-- the plans for a described MySQL 8.0 and MariaDB.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local keyring = require "myseal.keyring"
local E = require "support.engine"
local h = require "support.helpers"
local findings = h.findings

local function key_ids(s)
   local c <close> = assert(s:connect())
   local out = {}
   for _, r in ipairs(assert(c:query([[
      SELECT DISTINCT e.CURRENT_KEY_ID FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
      JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
      WHERE t.NAME LIKE 'clinic/%' ORDER BY 1]]))) do out[#out + 1] = r[1] end
   return out
end

describe("rotate-master-key runbook", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("rotate-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   it("adds a key id, rebuilds every table with it, backs the key file up, and rehearses a restore with it #slow",
      function()
      local s <close> = assert(sandbox.start{ name = "spec-rotate" })
      do
         local c <close> = assert(s:connect{ database = "mysql" })
         assert(c:exec("CREATE DATABASE clinic"))
         for i = 1, 6 do
            assert(c:exec(("CREATE TABLE clinic.t%d (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB"):format(i)))
            assert(c:exec(("INSERT INTO clinic.t%d SELECT seq, REPEAT('v', 100) FROM seq_1_to_%d"):format(i, 100 * i)))
         end
      end
      -- a plain key file, to read the keys and to plant an old backup (at_rest_spec covers the filekey)
      local set = { "--set", "keyring.backup_dir=" .. dir .. "/backup", "--set", "keyring.use_filekey=false" }
      local function run(rb, ...)
         local argv = { "run", rb, "--sandbox", s.name, "--yes", ... }
         for _, a in ipairs(set) do argv[#argv + 1] = a end
         local r = E.myseal(argv, {})
         assert.equal(0, r.status, r.stdout .. r.stderr)
         return r
      end
      local r = run("at-rest", "--set", "at_rest.rehearsal=false")
      assert.matches("rehearsal%s+skipped", r.stdout)
      assert.same({ 1 }, key_ids(s))
      -- nothing proves the key backup yet: check says so
      local report = assert(json.decode(E.myseal({ "check", "--sandbox", s.name, "--format", "json",
         table.unpack(set) }, {}).stdout))
      local f = findings(report)["restore-rehearsal"]
      assert.same({ "warn",
                    "no restore rehearsal of the key backup yet: nothing proves the backed-up keys open the data",
                    { runbook = "at-rest", step = "rehearsal" } }, { f.severity, f.title, f.fix })
      local keyfile = s.dir .. "/keyring/keyfile"
      local first = assert(sys.read_file(keyfile))
      local c <close> = assert(s:connect())
      local sums = assert(c:query("CHECKSUM TABLE clinic.t1, clinic.t6"))
      r = run("rotate-master-key")
      assert.same({ 2 }, key_ids(s))
      -- the new key backup restores the data, and check reports when it was proved
      assert.matches("restore rehearsal: a copy restored with the key backup " .. dir:gsub("%p", "%%%0")
         .. "/backup/keyfile%.%x+ gives the live checksums of [^\n]* %(key ids 1, 2%)\n", r.stdout)
      assert.matches("rehearsal%s+nothing to change", r.stdout)
      report = assert(json.decode(E.myseal({ "check", "--sandbox", s.name, "--format", "json", table.unpack(set) },
         {}).stdout))
      f = findings(report)["restore-rehearsal"]
      assert.equal("ok", f.severity)
      assert.matches("^the last restore rehearsal, [%dT:Z-]+ %(rotate%-master%-key%), restored the key backup "
         .. "as it is now$", f.title)
      assert.is_true(f.rehearsed_at >= f.key_changed_at)
      local now = assert(sys.read_file(keyfile))
      assert.equal(first, now:sub(1, #first))           -- key 1 untouched
      assert.matches("^2;%x+\n$", now:sub(#first + 1))
      assert.equal(2, #sys.dir(dir .. "/backup"))        -- the first key file and the second
      local c2 <close> = assert(s:connect())
      assert.equal(2, c2:query("SELECT @@innodb_default_encryption_key_id")[1][1])
      assert.same(sums, assert(c2:query("CHECKSUM TABLE clinic.t1, clinic.t6")))
      assert.matches("\ninnodb_default_encryption_key_id=2\n", sys.read_file(s.cnf))
      -- a new table gets key 2
      assert(c2:exec("CREATE TABLE clinic.later (a INT) ENGINE=InnoDB"))
      assert.same({ 2 }, key_ids(s))
      -- every run rotates once more
      run("rotate-master-key")
      assert.same({ 3 }, key_ids(s))
      assert.equal(3, #sys.dir(dir .. "/backup"))

      -- the newest copy in the backup directory lacks the newest key: the rehearsal fails, naming it
      local keys3 = assert(sys.read_file(keyfile))
      r = run("rotate-master-key", "--set", "at_rest.rehearsal=false")
      assert.same({ 4 }, key_ids(s))
      sys.sleep(1.1)
      local older = keyring.backup_path(dir .. "/backup", keyfile, keys3)
      assert(sys.write_file(older, keys3, { mode = tonumber("600", 8) }))   -- now the newest by its time
      r = E.myseal({ "run", "at-rest", "--sandbox", s.name, "--yes", table.unpack(set) }, {})
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.matches("step rehearsal[^\n]*: the restore rehearsal failed: key id 4 %(used by `clinic`.`[%w_]+`%) is "
         .. "missing from the key backup " .. older:gsub("%p", "%%%0") .. ": ", r.stderr)
   end)

   it("plans a new key id for a described MariaDB, whose key file it cannot read", function()
      local desc = h.write(dir .. "/keyring-10.11.lua", [[return { server = "mariadb-10.11.6",
         plugins = { file_key_management = "ACTIVE" },
         variables = { file_key_management_filename = "/etc/mysql/encryption/keyfile.enc" },
         tables = { { schema = "biobank", name = "specimens", engine = "InnoDB", bytes = 5368709120,
                      encrypted = true, key_id = 1 } } }]])
      local r = E.myseal({ "plan", "rotate-master-key", "--describe", desc, "--set", "keyring.backup_dir=/srv/kb",
         "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
      -- a run reads the key file first; the plan goes on as if at-rest had left key 1 alone in it
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.matches("myseal: a run would stop where this step refuses: preflight: /etc/mysql/encryption/keyfile%.enc: "
         .. "there is no key 1", r.stderr)
      assert.matches("new%-key +to do: key 2 to add to /etc/mysql/encryption/keyfile%.enc\n +append key 2 to "
         .. "/etc/mysql/encryption/keyfile%.enc\n", r.stdout)
      assert.matches("sql: ALTER TABLE `biobank`%.`specimens` WAIT 1 ENCRYPTED=YES ENCRYPTION_KEY_ID=2\n", r.stdout)
      assert.matches("key%-backup +to do: /etc/mysql/encryption/keyfile%.enc, with the new key, to back up\n",
         r.stdout)
      assert.matches("rehearsal: mariadb%-backup %-%-prepare", r.stdout)
   end)

   it("refuses a key id the key file cannot hold, and a backup directory that is a file", function()
      -- key 0 (or one past 2^32-1) in the key file would keep the server from starting after the restart
      for _, id in ipairs{ "0", "4294967296" } do
         local r = E.myseal({ "plan", "rotate-master-key", "--describe", "mariadb-10.11",
            "--set", "rotate.key_id=" .. id, "--set", "keyring.backup_dir=/srv/kb",
            "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
         assert.equal(2, r.status, r.stdout .. r.stderr)
         assert.equal(("myseal: --set rotate.key_id: rotate.key_id must be an integer from 1 to 4294967295, "
            .. "not '%s'\n"):format(id), r.stderr)
         assert.equal("", r.stdout)
      end
      local file = h.write(dir .. "/not-a-dir", "x")
      local r = E.myseal({ "plan", "rotate-master-key", "--describe", "mariadb-10.11",
         "--set", "keyring.backup_dir=" .. file, "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
      assert.equal(2, r.status, r.stdout .. r.stderr)
      assert.matches("step preflight %(.-%): keyring.backup_dir: " .. file:gsub("%p", "%%%0")
         .. " exists and is not a directory\n$", r.stderr)
   end)

   it("plans new master keys for a described MySQL 8.0", function()
      local r = E.myseal({ "plan", "rotate-master-key", "--describe", "mysql-8.0.36",
         "--set", "keyring.backup_dir=/srv/kb", "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
      -- the described server has no keyring: refused
      assert.matches("the server has no active keyring: run at%-rest first", r.stdout .. r.stderr)
      local desc = dir .. "/keyring-8.0.lua"
      local text = [[return { server = "mysql-8.0.36", plugins = { keyring_file = "ACTIVE" },
         variables = { keyring_file_data = "/var/lib/mysql-keyring/keyring", binlog_encryption = "%s" } }]]
      assert(sys.write_file(desc, text:format("ON")))
      r = E.myseal({ "plan", "rotate-master-key", "--describe", desc, "--set", "keyring.backup_dir=/srv/kb",
         "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
      assert.equal(0, r.status, r.stderr)
      assert.matches("sql: ALTER INSTANCE ROTATE INNODB MASTER KEY\n%s+sql: ALTER INSTANCE ROTATE BINLOG MASTER KEY\n",
         r.stdout)
      assert.matches("new%-key%s+skipped", r.stdout)
      -- the server writes the new master key into its keyring: the plan cannot see it, a run backs it up
      assert.matches("key%-backup +to do: /var/lib/mysql%-keyring/keyring, with the new key, to back up\n"
         .. " +create directory /srv/kb %(0700%)\n +back up /var/lib/mysql%-keyring/keyring into /srv/kb once it is "
         .. "written, and read the copy back\n", r.stdout)
      -- the binary log's master key only where the binary log is encrypted: the statement fails otherwise
      assert(sys.write_file(desc, text:format("OFF")))
      r = E.myseal({ "plan", "rotate-master-key", "--describe", desc, "--set", "keyring.backup_dir=/srv/kb",
         "--set", "server.cnf=tests/fixtures/at-rest/my.cnf" }, {})
      assert.equal(0, r.status, r.stderr)
      assert.matches("sql: ALTER INSTANCE ROTATE INNODB MASTER KEY\n", r.stdout)
      assert.is_nil(r.stdout:find("BINLOG MASTER KEY", 1, true))
      -- and the restore rehearsal, named for MySQL
      assert.matches("rehearsal%s+to do: no restore rehearsal of the key backup yet\n%s+rehearsal: plan only",
         r.stdout)
   end)
end)
