-- rotate-master-key.lua: a new encryption key, used, and backed up.
--
-- MySQL: ALTER INSTANCE ROTATE INNODB MASTER KEY (and the binary log's master key): the
-- tablespace keys are re-encrypted with a new master key, no table is rebuilt. MariaDB's
-- file_key_management has one version per key, so rotating means a new key id in the key
-- file (an existing line is never changed), a restart so the server reads it, the default
-- key id moved to it, and every encrypted InnoDB table in scope (at_rest.schemas) rebuilt with
-- it; the system tablespace and the mysql schema's tables stay on their key, which is why the old
-- key stays in the file. Either way the key material is backed up again before the old key stops
-- being needed. Each run rotates once; an
-- interrupted run goes on with --resume (the new key id is in the journal).
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn", doc = "the keyring is active and a backup directory is set" },
   { name = "new-key", doc = "MariaDB: a new key id appended to the key file (existing lines untouched)",
     undo = "the new key stays in the key file: tables may be encrypted with it" },
   { name = "rotate", doc = "MySQL: new InnoDB (and binary log) master keys",
     undo = "a master key rotation cannot be undone (the old key stays in the keyring)" },
   { name = "key-backup", doc = "a verified copy of the key material as it is now" },
   { name = "restart",
     doc = "MariaDB: the server reads the key file at start only: restarted if it is older than the key" },
   { name = "default-key", doc = "MariaDB: new tables use the new key (innodb_default_encryption_key_id)" },
   { name = "re-encrypt", doc = "MariaDB: every encrypted table in scope rebuilt with the new key, largest first, "
        .. "resumable, never making the application wait", undo = "the tables use the new key now" },
   { name = "rehearsal",
     doc = "a copy of the data restored with nothing but the new key backup gives the live checksums" },
}

-- ------------------------------------------------------------------------------------------------

local atrest = require "myseal.atrest"
local alter = require "myseal.atrest.alter"
local proof = require "myseal.atrest.proof"
local keyring = require "myseal.keyring"
local options = require "myseal.options"
local sys = require "sys"
local text = require "myseal.text"

local settings, done = atrest.settings, runbook.done

-- The key id this rotation moves to: given, or recorded by this run, or one past the highest. A key
-- file that cannot be read (a plan for a described server; a run's preflight refuses one) counts as
-- at-rest leaves it, with key 1 only.
local function target_id(ctx, s)
   local id = ctx:recorded("rotate_key_id") or ctx.params.rotate.key_id
   if id then return id end
   local ids, highest = keyring.parse_key_file(atrest.key_text(ctx, s) or "", s.key_file)
   return (ids and highest or 1) + 1
end

-- InnoDB tables (encrypted ones, in scope) whose tablespaces do not all use key id `id` yet. (Aria
-- has no key ids: its tables stay on key 1.)
local function tables_not_on(ctx, id)
   local _, _, all = atrest.table_state(ctx)
   local out = {}
   for _, t in ipairs(all) do
      if t.encrypted and t.key_id ~= id and (t.engine or ""):lower() == "innodb" then out[#out + 1] = t end
   end
   return out
end

local function by_key_id(ctx) return ctx.dialect.rotates_by_key_id end

steps.preflight.check = function(ctx)
   local p = ctx.params
   keyring.check_backup_dir(ctx, p.keyring.backup_dir)
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
   if by_key_id(ctx) then
      local ok, err = keyring.parse_key_file(atrest.key_text(ctx, s) or "", s.key_file)
      if not ok then return false, err end
      -- the rebuild (ALTER TABLE ... ENCRYPTION_KEY_ID) replicates: a replica without the key stops
      local readers = ctx:fact("replicas")
      if readers > 0 and not p.rotate.replicas_have_key and not ctx:recorded("rotate_key_id") then
         local id = target_id(ctx, s)
         return false, ("%s this server's binary log: the tables rebuilt with key %d replicate, and a replica "
            .. "whose key file has no key %d stops replicating; run rotate-master-key --set rotate.key_id=%d on "
            .. "each replica first, then set rotate.replicas_have_key=true here"):format(
            text.count(readers, "session reads", "sessions read"), id, id, id)
      end
   end
   return true
end

steps["new-key"].when = by_key_id
steps["new-key"].check = function(ctx)
   local s = settings(ctx)
   local id = target_id(ctx, s)
   local ids = keyring.parse_key_file(atrest.key_text(ctx, s) or "", s.key_file) or {}
   return done(ids[id] ~= nil, ("key %d to add to %s"):format(id, s.key_file))
end
steps["new-key"].apply = function(ctx)
   local s = settings(ctx)
   local id = target_id(ctx, s)
   local plain = atrest.key_text(ctx, s)
   if not plain then   -- a plan without the key file (a run's preflight refuses one): no diff to show
      return ctx:log("append key %d to %s", id, s.key_file)
   end
   if not plain:match("\n$") and #plain > 0 then plain = plain .. "\n" end
   plain = plain .. keyring.key_line(id)
   -- the id first: a run killed right after the write resumes with this key, not one more
   ctx:record("rotate_key_id", id)
   ctx:write_file(s.key_file, atrest.key_data(ctx, s, plain), atrest.key_file_opts(s))
end

steps.rotate.when = function(ctx) return not by_key_id(ctx) end
steps.rotate.apply = function(ctx)
   local binlog_on = atrest.same_value(ctx:fact("variable", "binlog_encryption"), "ON")
   for _, sql in ipairs(ctx.dialect:rotate_sql(settings(ctx), ctx.params.at_rest.binlog and binlog_on)) do
      ctx:sql(sql)
   end
end

steps["key-backup"].when = function(ctx) return ctx.params.keyring.backup_dir ~= nil end
steps["key-backup"].check = function(ctx)
   local files = ctx.dialect:key_files(settings(ctx))
   -- a plan does not see the new keys: MySQL's server writes them into its keyring, and a described
   -- server's key file is not on this host
   for _, f in ipairs(ctx.mode == "plan" and files or {}) do
      if not by_key_id(ctx) or not ctx:read_file(f) then
         return false, ("%s, with the new key, to back up"):format(f)
      end
   end
   local missing = keyring.missing_backups(ctx, files, ctx.params.keyring.backup_dir)
   return done(#missing == 0, "no backup of " .. table.concat(missing, ", "))
end
steps["key-backup"].apply = function(ctx)
   local s = settings(ctx)
   keyring.backup(ctx, ctx.dialect:key_files(s), ctx.params.keyring.backup_dir, s.user)
end

steps.restart.when = by_key_id
steps.restart.check = function(ctx)
   local st = sys.stat(settings(ctx).key_file)
   local uptime = tonumber(ctx:fact("status", "Uptime"))
   if not uptime then return false, "the server must read the new key" end
   return done(not st or st.mtime < os.time() - uptime - 1, "the server started before the key file changed")
end
steps.restart.apply = function(ctx) ctx:restart_server() end

steps["default-key"].when = by_key_id
steps["default-key"].check = function(ctx)
   local id = target_id(ctx, settings(ctx))
   local doc = options.tree(ctx)
   local groups = ctx.dialect:server_groups()
   return done(tonumber(ctx:fact("variable", "innodb_default_encryption_key_id")) == id
      and tonumber(doc and doc:effective(groups, "innodb_default_encryption_key_id")) == id,
      ("innodb_default_encryption_key_id to set to %d"):format(id))
end
steps["default-key"].apply = function(ctx)
   local id = target_id(ctx, settings(ctx))
   options.write(ctx, { { name = "innodb_default_encryption_key_id", value = tostring(id) } },
      ctx.dialect.flavor_group)
   ctx:sql("SET GLOBAL innodb_default_encryption_key_id = ?", math.tointeger(id))
end

steps["re-encrypt"].when = by_key_id
steps["re-encrypt"].check = function(ctx)
   local id = target_id(ctx, settings(ctx))
   local left = tables_not_on(ctx, id)
   return done(#left == 0, ("%s (%s) to rebuild with key %d"):format(text.count(#left, "table"),
      text.bytes(atrest.total_bytes(left)), id))
end
steps["re-encrypt"].apply = function(ctx)
   local d = ctx.dialect
   local id = target_id(ctx, settings(ctx))
   local list = {}
   for _, t in ipairs(tables_not_on(ctx, id)) do
      list[#list + 1] = { t = t, sql = function(wait) return d:encrypt_table_sql(t, id, wait) end }
   end
   alter.run(ctx, list, { label = "tables" })
end

for k, f in pairs(proof.rehearsal) do steps.rehearsal[k] = f end

local params = atrest.params(atrest.SETTINGS, { "keyring.backup_dir", "keyring.accept_no_backup" })
params["rotate.key_id"] = { type = "integer", min = 1, max = 4294967295,
   doc = "MariaDB: the key id to rotate to (default: one past the highest in the key file)" }
params["rotate.replicas_have_key"] = { type = "boolean", default = false,
   doc = "MariaDB: every replica's key file has the new key id already (rotate-master-key ran there with it), "
      .. "so the rebuild may replicate" }

return runbook.new {
   name = "rotate-master-key",
   summary = "rotate the encryption key (MySQL master key; MariaDB: a new key id, tables rebuilt) and back it up",
   params = params,
   steps = steps,
}
