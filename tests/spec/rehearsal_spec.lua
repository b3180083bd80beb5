-- myseal.rehearsal on real sandboxes: a copy taken with mariadb-backup and started with
-- nothing but the backed-up keys gives the live checksums; a wrong, missing or absent key
-- fails naming the key id and the table; the plan for MariaDB and for MySQL.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local keyring = require "myseal.keyring"
local rehearsal = require "myseal.rehearsal"

describe("restore rehearsal #slow", function()
   local s, dir, keyfile, keys, sums
   setup(function()
      dir = assert(sys.tmpdir("rehearsal-spec"))
      s = assert(sandbox.start{ name = "spec-rehearsal" })
      s:shutdown()
      local owner = sys.stat(s.datadir)
      keyfile = s.dir .. "/keys/keyfile"
      keys = keyring.new_key_file(2)
      assert(sys.mkdir(s.dir .. "/keys", tonumber("700", 8)))
      assert(sys.write_file(keyfile, keys, { mode = tonumber("600", 8) }))
      assert(sys.chown(s.dir .. "/keys", owner.uid, owner.gid))
      assert(sys.chown(keyfile, owner.uid, owner.gid))
      assert(sys.write_file(s.cnf, assert(sys.read_file(s.cnf)) .. "plugin_load_add=file_key_management\n"
         .. "file_key_management_filename=" .. keyfile .. "\ninnodb_encrypt_log=ON\n"))
      assert(s:boot())
      local c <close> = assert(s:connect{ database = "mysql" })
      assert(c:exec("CREATE DATABASE app"))
      assert(c:exec("CREATE TABLE app.t1 (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB ENCRYPTED=YES"))
      assert(c:exec("CREATE TABLE app.t2 (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB ENCRYPTED=YES "
         .. "ENCRYPTION_KEY_ID=2"))
      assert(c:exec("CREATE TABLE app.plain (id INT PRIMARY KEY) ENGINE=InnoDB"))
      assert(c:exec("INSERT INTO app.t1 SELECT seq, MD5(seq) FROM seq_1_to_3000"))
      assert(c:exec("INSERT INTO app.t2 SELECT seq, SHA1(seq) FROM seq_1_to_2000"))
      sums = {}
      for _, t in ipairs{ "app.t1", "app.t2" } do sums[t] = assert(c:query("CHECKSUM TABLE " .. t))[1][2] end
      c:close()
      assert(s:restart())  -- the pages on disk, encrypted, not only in the redo log
   end)
   teardown(function()
      if s then s:stop() end
      sys.rmtree(dir)
   end)

   -- a key backup directory as the at-rest runbook writes it
   local function backup(name, data)
      local d = dir .. "/" .. name
      assert(sys.mkdir(d, tonumber("700", 8)))
      local path = keyring.backup_path(d, keyfile, data)
      assert(sys.write_file(path, data, { mode = tonumber("600", 8) }))
      return d, path
   end

   local function rehearse(backup_dir)
      local conn <close> = assert(s:connect())
      return rehearsal.run{ conn = conn, client = s:tcp_options(), backup_dir = backup_dir }
   end

   local function leftovers()
      local out = {}
      for _, x in ipairs(sandbox.list()) do
         if x.name:match("^rehearsal%-") then out[#out + 1] = x.name end
      end
      return out
   end

   it("passes with the backed-up keys: each key id's table restores to the live checksum", function()
      local d, path = backup("good", keys)
      local r = assert(rehearse(d))
      assert.same({ { table = "`app`.`t1`", key_id = 1, checksum = sums["app.t1"] },
                    { table = "`app`.`t2`", key_id = 2, checksum = sums["app.t2"] } }, r.tables)
      assert.same({ 1, 2 }, r.key_ids)
      assert.equal(path, r.key_backup)
      assert.matches("^mariadb%-backup %-%-defaults%-extra%-file=/%S+/client%.cnf %-%-backup ", r.commands[1])
      assert.matches("^mariadb%-backup %-%-prepare ", r.commands[2])
      for _, cmd in ipairs(r.commands) do assert.is_nil(cmd:find(s.tcp_password, 1, true)) end
      assert.same({}, leftovers())
   end)

   it("fails naming the key id when the backed-up key 2 is not the one the data was encrypted with", function()
      local k1 = keys:match("^(.-\n)")
      local d, path = backup("wrong", k1 .. keyring.key_line(2))
      local r, err = rehearse(d)
      assert.is_nil(r)
      assert.equal(("key id 2 in the key backup %s does not decrypt `app`.`t2`: CHECKSUM TABLE `app`.`t2`: "
         .. "Table `app`.`t2` is corrupted. Please drop the table and recreate. (1877) (do not drop it: the data "
         .. "is fine, the key is not)"):format(path), err)
      assert.same({}, leftovers())
   end)

   it("fails naming the key id when the key backup lacks key 2", function()
      local d, path = backup("missing", keys:match("^(.-\n)"))
      local r, err = rehearse(d)
      assert.is_nil(r)
      assert.equal(("key id 2 (used by `app`.`t2`) is missing from the key backup %s: CHECKSUM TABLE `app`.`t2`: "
         .. "Table `app`.`t2` is corrupted. Please drop the table and recreate. (1877) (do not drop it: the data "
         .. "is fine, the key is not)"):format(path), err)
   end)

   it("names key id 1 when the backed-up key 1 does not decrypt the redo log or the tables", function()
      local d, path = backup("wrong1", keyring.key_line(1) .. keys:match("\n(.-\n)$"))
      local r, err = rehearse(d)
      assert.is_nil(r)
      local head = ("key id 1 in the key backup %s does not decrypt "):format(path)
      assert.equal(head, err:sub(1, #head))
      -- the redo log when the copy has records to apply, else the first table read
      local rest = err:sub(#head + 1)
      if rest:sub(1, 5) == "the r" then
         -- what garbage records look like to InnoDB varies with the bytes
         local malformed = rest:match("^the redo log: mariadb%-backup %-%-prepare: InnoDB: Malformed log record "
            .. "at LSN %d+; set innodb_force_recovery=1 to ignore%.$")
         local corrupted = rest:match("^the redo log: mariadb%-backup %-%-prepare: InnoDB: Corrupted page "
            .. "identifier at %d+; set innodb_force_recovery=1 to ignore the record%.$")
         assert.is_truthy(malformed or corrupted, rest)
      else
         assert.equal("`app`.`t1`: CHECKSUM TABLE `app`.`t1`: Table `app`.`t1` is corrupted. Please drop the table "
            .. "and recreate. (1877) (do not drop it: the data is fine, the key is not)", rest)
      end
   end)

   it("names key id 2 when the redo log the copy applies holds changes to a table it encrypts", function()
      do
         local c <close> = assert(s:connect())
         assert(c:exec("UPDATE app.t2 SET v = SHA1(v) WHERE id <= 100"))
         sums["app.t2"] = assert(c:query("CHECKSUM TABLE app.t2"))[1][2]
      end
      local d, path = backup("missing-redo", keys:match("^(.-\n)"))
      local r, err = rehearse(d)
      assert.is_nil(r)
      local head = ("key id 2 (used by `app`.`t2`) is missing from the key backup %s: "):format(path)
      assert.equal(head, err:sub(1, #head))
      -- mariadb-backup stops on the redo records, unless a checkpoint passed them first
      assert.is_true(({
         ["mariadb-backup --prepare: Encryption key is not found for app/t2.ibd"] = true,
         ["CHECKSUM TABLE `app`.`t2`: Table `app`.`t2` is corrupted. Please drop the table and recreate. (1877) "
            .. "(do not drop it: the data is fine, the key is not)"] = true,
      })[err:sub(#head + 1)], err)
   end)

   it("fails before copying anything when the directory holds no key backup, or a damaged one", function()
      local empty = dir .. "/empty"
      assert(sys.mkdir(empty, tonumber("700", 8)))
      assert.same({ nil, empty .. " has no copy of keyfile (keyfile.<first 16 hex digits of its SHA-256>): "
         .. "key ids 1, 2 cannot be restored" }, { rehearse(empty) })
      local damaged = dir .. "/damaged"
      assert(sys.mkdir(damaged, tonumber("700", 8)))
      assert(sys.write_file(damaged .. "/keyfile.0123456789abcdef", keys, { mode = tonumber("600", 8) }))
      assert.same({ nil, damaged .. "/keyfile.0123456789abcdef does not match its digest (damaged): key ids 1, 2 "
         .. "cannot be restored" }, { rehearse(damaged) })
      assert.same({ nil, "the key backup directory " .. dir .. "/none does not exist: key ids 1, 2 cannot be "
         .. "restored" },
         { rehearse(dir .. "/none") })
      assert.has_error(function() rehearsal.run{ client = {}, backup_dir = empty } end,
         "rehearsal.run: conn, client and backup_dir are needed")
   end)

   it("writes the credentials as an option file, never as arguments", function()
      assert.equal('[client]\nuser="app"\npassword="p\\"w\\\\x"\nhost="127.0.0.1"\nport="3306"\n',
         rehearsal.client_options{ user = "app", password = 'p"w\\x', host = "127.0.0.1", port = 3306 })
      assert.has_error(function() rehearsal.client_options{ password = "a\nb" } end,
         "an option value cannot hold a line break")
   end)

   it("plans the commands for MariaDB, and for MySQL names the tools without running them", function()
      assert.same({
         "copy /root/kb/keyfile.<digest> into /w/keys (0600), checked against its digest",
         "mariadb-backup --defaults-extra-file=/w/client.cnf --backup --datadir=/var/lib/mysql --target-dir=/w/backup",
         "set file_key_management_filename=/w/keys/keyfile in /w/backup/backup-my.cnf",
         "mariadb-backup --prepare --target-dir=/w/backup",
         "start a sandbox on /w/backup with file_key_management_filename=/w/keys/keyfile and no other key",
         "CHECKSUM TABLE app.t1, app.t2 on the live server and on the sandbox: the values must be equal",
         "stop the sandbox: the copy, the keys and client.cnf go with it",
      }, rehearsal.plan{ tool = "mariadb-backup", key_file = "/etc/mysql/encryption/keyfile", backup_dir = "/root/kb",
                         datadir = "/var/lib/mysql", work = "/w", tables = { "app.t1", "app.t2" } })
      -- an encrypted key file: the copy is given its filekey too, as the rehearsal does
      local lines = rehearsal.plan{ tool = "mariadb-backup", key_file = "/etc/mysql/encryption/keyfile.enc",
         filekey = "/etc/mysql/encryption/filekey", backup_dir = "/root/kb", datadir = "/var/lib/mysql", work = "/w" }
      assert.equal("copy /root/kb/filekey.<digest> into /w/keys (0600), checked against its digest", lines[2])
      assert.equal("set file_key_management_filename=/w/keys/keyfile.enc "
         .. "file_key_management_filekey=FILE:/w/keys/filekey in /w/backup/backup-my.cnf", lines[4])
      assert.equal("start a sandbox on /w/backup with file_key_management_filename=/w/keys/keyfile.enc "
         .. "file_key_management_filekey=FILE:/w/keys/filekey and no other key", lines[6])
      local mysql84 = rehearsal.plan{ tool = "xtrabackup", keyring = "component_keyring_file",
         key_file = "/var/lib/mysql-keyring/component_keyring_file", backup_dir = "/root/kb", work = "/w" }
      assert.equal("plan only: myseal does not run MySQL backups; these are the commands of Percona XtraBackup 8.0",
         mysql84[1])
      assert.equal("xtrabackup --defaults-extra-file=/w/client.cnf --backup --target-dir=/w/backup", mysql84[3])
      assert.equal("  (or MySQL Enterprise Backup: mysqlbackup --defaults-extra-file=/w/client.cnf "
         .. "--backup-dir=/w/backup --encrypt-password backup-and-apply-log)", mysql84[4])
      assert.equal('xtrabackup --prepare --target-dir=/w/backup --component-keyring-config=/w/keys/'
         .. 'component_keyring_file.cnf (its "path" set to /w/keys/component_keyring_file)', mysql84[5])
      local mysql80 = rehearsal.plan{ tool = "xtrabackup", keyring = "keyring_file",
         key_file = "/var/lib/mysql-keyring/keyring", backup_dir = "/root/kb", work = "/w" }
      assert.equal("xtrabackup --prepare --target-dir=/w/backup --keyring-file-data=/w/keys/keyring", mysql80[5])
      assert.equal("CHECKSUM TABLE <one table per key id in use, up to 8> on the live server and on the copy: "
         .. "the values must be equal", mysql80[7])
   end)
end)
