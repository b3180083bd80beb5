-- rotate-master-key.lua: a new encryption key, used, and backed up.
--
-- MySQL: ALTER INSTANCE ROTATE INNODB MASTER KEY (and the binary log's master key): the
-- tablespace keys are re-encrypted with a new master key, no table is rebuilt. MariaDB's
-- file_key_management has one version per key, so rotating means a new key id in the key
-- file (an existing line is never changed), a restart so the server reads it, the default
-- key id moved to it, and every table rebuilt with it. Either way the key material is
-- backed up again before the old key stops being needed.
--
-- Each run rotates once; an interrupted run goes on with --resume (the new key id is in
-- the journal). Facts and pitfalls: DOMAIN.md §1, §2, §7.
local runbook = require "myseal.runbook"
local keyring = require "myseal.keyring"
local atrest = require "myseal.atrest"
local options = require "myseal.options"
local sys = require "sys"

local settings, done, bytes = atrest.settings, atrest.done, atrest.bytes

-- The plain text of the MariaDB key file (decrypted with the filekey when there is one).
local function key_text(ctx, s)
   if not s.filekey then return ctx:read_file(s.key_file) end
   if not ctx:exists(s.key_file) then return nil end
   local r = sys.run{ "openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "file:" .. s.filekey,
                      "-in", s.key_file }
   if not r or not r.ok then
      ctx:fail("cannot decrypt %s with the filekey %s: %s", s.key_file, s.filekey, r and r.stderr or "openssl failed")
   end
   return r.stdout
end

-- The key id this rotation moves to: given, or recorded by this run, or one past the highest.
local function target_id(ctx, s)
   local id = ctx:recorded("rotate_key_id") or ctx.params.rotate.key_id
   if id then return id end
   local text = key_text(ctx, s)
   local _, highest = keyring.parse_key_file(text or "", s.key_file)
   return (highest or 0) + 1
end

-- Tables (encrypted ones, in scope) whose tablespaces do not all use key id `id` yet.
local function tables_not_on(ctx, id)
   local enc = ctx:fact("table_encryption")
   local _, _, all = atrest.table_state(ctx)
   local out = {}
   for _, t in ipairs(all) do
      local e = enc[t.schema .. "\0" .. t.name]
      if e and e.encrypted and e.key_id ~= id then out[#out + 1] = t end
   end
   return out
end

return runbook.new {
   name = "rotate-master-key",
   summary = "rotate the encryption key (MySQL master key; MariaDB: a new key id, tables rebuilt) and back it up",
   params = {
      ["keyring.dir"] = { type = "path", doc = "directory of the key material (as for at-rest)" },
      ["keyring.backup_dir"] = { type = "path", doc = "where the key material is copied after every key change" },
      ["keyring.accept_no_backup"] = { type = "boolean", default = false,
         doc = "rotate without keyring.backup_dir: losing the key file then loses the data for good" },
      ["keyring.filekey"] = { type = "path", doc = "MariaDB: the filekey the key file is encrypted with, if any" },
      ["keyring.algorithm"] = { type = "enum", values = { "AES_CBC", "AES_CTR" }, default = "AES_CTR",
         doc = "MariaDB: file_key_management_encryption_algorithm (as configured by at-rest)" },
      ["rotate.key_id"] = { type = "integer",
         doc = "MariaDB: the key id to rotate to (default: one past the highest in the key file)" },
      ["at_rest.method"] = { type = "enum", values = { "rebuild", "background" }, default = "rebuild",
         doc = "as configured by at-rest" },
      ["at_rest.parallel"] = { type = "integer", default = 2, doc = "MariaDB: tables rebuilt at once" },
      ["at_rest.rotation_iops"] = { type = "integer", default = 10000, doc = "as for at-rest" },
      ["at_rest.schemas"] = { type = "list", doc = "only these schemas (default: every application schema)" },
      ["at_rest.convert_myisam"] = { type = "boolean", default = false, doc = "as for at-rest" },
      ["at_rest.new_tables"] = { type = "boolean", default = true, doc = "as for at-rest" },
      ["at_rest.logs"] = { type = "boolean", default = true, doc = "as for at-rest" },
      ["at_rest.binlog"] = { type = "boolean", default = true,
         doc = "MySQL 8.0.16+: rotate the binary log's master key too" },
      ["at_rest.temp"] = { type = "boolean", default = true, doc = "as for at-rest" },
   },
   dialect = atrest.dialect,
   steps = {
      {
         name = "preflight",
         doc = "the keyring is active and a backup directory is set",
         check = function(ctx)
            local p = ctx.params
            if not p.keyring.backup_dir and not p.keyring.accept_no_backup then
               return false, "keyring.backup_dir is not set: a new key must be backed up before the old one is "
                  .. "retired (or set keyring.accept_no_backup=true)"
            end
            if not ctx:fact("keyring_active") then
               return false, "the server has no active keyring: run at-rest first"
            end
            local s = settings(ctx)
            local current = ctx:fact("keyring_file")
            if current and current ~= s.key_file then
               return false, ("the server's keyring is %s, not %s: set keyring.dir to its directory")
                  :format(current, s.key_file)
            end
            if ctx.dialect.rotates_by_key_id then
               local ok, err = keyring.parse_key_file(key_text(ctx, s) or "", s.key_file)
               if not ok then return false, err end
            end
            return true
         end,
      },
      {
         name = "new-key",
         doc = "MariaDB: a new key id appended to the key file (existing lines untouched)",
         when = function(ctx) return ctx.dialect.rotates_by_key_id end,
         check = function(ctx)
            local s = settings(ctx)
            local id = target_id(ctx, s)
            local ids = keyring.parse_key_file(key_text(ctx, s) or "", s.key_file) or {}
            return done(ids[id] ~= nil, ("key %d to add to %s"):format(id, s.key_file))
         end,
         apply = function(ctx)
            local s = settings(ctx)
            local id = target_id(ctx, s)
            local text = key_text(ctx, s)
            if not text:match("\n$") and #text > 0 then text = text .. "\n" end
            text = text .. keyring.key_line(id)
            if s.filekey then
               local r = ctx:run{ "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-salt",
                                  "-pass", "file:" .. s.filekey, stdin = text }
               text = r and r.stdout or "(the key file, encrypted with the filekey)"
            end
            ctx:write_file(s.key_file, text, { mode = tonumber("600", 8), owner = s.user, secret = true })
            ctx:record("rotate_key_id", id)
         end,
         undo = "the new key stays in the key file: tables may be encrypted with it",
      },
      {
         name = "rotate",
         doc = "MySQL: new InnoDB (and binary log) master keys",
         when = function(ctx) return not ctx.dialect.rotates_by_key_id end,
         apply = function(ctx)
            for _, sql in ipairs(ctx.dialect:rotate_sql(settings(ctx))) do ctx:sql(sql) end
         end,
         undo = "a master key rotation cannot be undone (the old key stays in the keyring)",
      },
      {
         name = "key-backup",
         doc = "a verified copy of the key material as it is now",
         when = function(ctx) return ctx.params.keyring.backup_dir ~= nil end,
         check = function(ctx)
            local s = settings(ctx)
            local missing = keyring.missing_backups(ctx, ctx.dialect:key_files(s), ctx.params.keyring.backup_dir)
            return done(#missing == 0, "no backup of " .. table.concat(missing, ", "))
         end,
         apply = function(ctx)
            local s = settings(ctx)
            keyring.backup(ctx, ctx.dialect:key_files(s), ctx.params.keyring.backup_dir, s.user)
         end,
      },
      {
         name = "restart",
         doc = "MariaDB: the server reads the key file at start only: restarted if it is older than the key",
         when = function(ctx) return ctx.dialect.rotates_by_key_id end,
         check = function(ctx)
            if ctx.target.kind == "described" then return false, "the server must read the new key" end
            local s = settings(ctx)
            local st = sys.stat(s.key_file)
            local uptime = tonumber(ctx:fact("status", "Uptime")) or 0
            local started = os.time() - uptime
            return done(not st or st.mtime < started - 1, "the server started before the key file changed")
         end,
         apply = function(ctx) ctx:restart_server() end,
      },
      {
         name = "default-key",
         doc = "MariaDB: new tables use the new key (innodb_default_encryption_key_id)",
         when = function(ctx) return ctx.dialect.rotates_by_key_id end,
         check = function(ctx)
            local id = target_id(ctx, settings(ctx))
            local doc = options.tree(ctx)
            local groups = ctx.dialect:server_groups()
            return done(tonumber(ctx:fact("variable", "innodb_default_encryption_key_id")) == id
               and tonumber(doc and doc:effective(groups, "innodb_default_encryption_key_id")) == id,
               ("innodb_default_encryption_key_id to set to %d"):format(id))
         end,
         apply = function(ctx)
            local id = target_id(ctx, settings(ctx))
            options.write(ctx, { { name = "innodb_default_encryption_key_id", value = tostring(id) } },
               ctx.dialect.encryption_group)
            ctx:sql("SET GLOBAL innodb_default_encryption_key_id = " .. math.tointeger(id))
         end,
      },
      {
         name = "re-encrypt",
         doc = "MariaDB: every encrypted table rebuilt with the new key, largest first, resumable",
         when = function(ctx) return ctx.dialect.rotates_by_key_id end,
         check = function(ctx)
            local id = target_id(ctx, settings(ctx))
            local left = tables_not_on(ctx, id)
            local total = 0
            for _, t in ipairs(left) do total = total + t.bytes end
            return done(#left == 0, ("%d table%s (%s) to rebuild with key %d"):format(#left, #left == 1 and "" or "s",
               bytes(total), id))
         end,
         apply = function(ctx)
            local d = ctx.dialect
            local id = target_id(ctx, settings(ctx))
            local list = {}
            for _, t in ipairs(tables_not_on(ctx, id)) do
               list[#list + 1] = { sql = d:encrypt_table_sql(t.schema, t.name, id), weight = math.max(t.bytes, 1) }
            end
            ctx:sql_parallel(list, { parallel = ctx.params.at_rest.parallel, label = "tables", unit = "bytes" })
         end,
         undo = "the tables use the new key now",
      },
   },
}
