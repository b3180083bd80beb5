-- at-rest.lua: encryption at rest for MySQL 5.7 / 8.0 / 8.4 and MariaDB 10.x / 11.x.
--
-- Preflight (engines, free disk, replicas, an existing keyring), key material, a verified
-- backup of it, the server's option file and one restart, then every table encrypted
-- (largest first, resumable, with progress), and a check against the server's own tables.
-- Facts and pitfalls: DOMAIN.md §1, §2 and §7. Differences between servers are in the
-- dialect entries in lua/myseal/atrest.lua; the steps never test the flavour.
local runbook = require "myseal.runbook"
local keyring = require "myseal.keyring"
local atrest = require "myseal.atrest"
local options = require "myseal.options"
local pki = require "pki"
local sys = require "sys"

local OCTAL_750, OCTAL_600 = tonumber("750", 8), tonumber("600", 8)
local PARALLEL_FROM = 16 * 1024 * 1024   -- bytes: smaller tables are rebuilt one after another
local settings, option_tree, option_ok, wanted_options = atrest.settings, atrest.option_tree, atrest.option_ok,
   atrest.wanted_options
local table_state, same_value, done, bytes, named, plugin_dir = atrest.table_state, atrest.same_value, atrest.done,
   atrest.bytes, atrest.named, atrest.plugin_dir

return runbook.new {
   name = "at-rest",
   summary = "encrypt the server's data at rest: keyring, key backup, every table, logs",
   params = {
      ["keyring.dir"] = { type = "path",
         doc = "directory of the key material (default: /etc/mysql/encryption on MariaDB, "
            .. "/var/lib/mysql-keyring on MySQL, beside the datadir on a sandbox)" },
      ["keyring.backup_dir"] = { type = "path",
         doc = "where the key material is copied (and verified) before anything is encrypted; "
            .. "keep it off the database host afterwards" },
      ["keyring.accept_no_backup"] = { type = "boolean", default = false,
         doc = "go on without keyring.backup_dir: losing the key file then loses the data for good" },
      ["keyring.key_count"] = { type = "integer", default = 1,
         doc = "MariaDB: how many keys the new key file holds (ids 1..n; key 1 encrypts by default)" },
      ["keyring.filekey"] = { type = "path",
         doc = "MariaDB: a file with the password that encrypts the key file (made when missing); "
            .. "empty: the key file is plain (mode 0600)" },
      ["keyring.algorithm"] = { type = "enum", values = { "AES_CBC", "AES_CTR" }, default = "AES_CTR",
         doc = "MariaDB: file_key_management_encryption_algorithm" },
      ["keyring.manifest_dir"] = { type = "path", default = "/usr/sbin",
         doc = "MySQL 8.4: the directory of the mysqld binary, where the manifest mysqld.my goes" },
      ["keyring.plugin_dir"] = { type = "path",
         doc = "MySQL 8.4: the server's plugin_dir, where component_keyring_file.cnf goes (default: asked)" },
      ["at_rest.method"] = { type = "enum", values = { "rebuild", "background" }, default = "rebuild",
         doc = "rebuild: one ALTER TABLE per table; background (MariaDB): encryption threads do every tablespace" },
      ["at_rest.parallel"] = { type = "integer", default = 2,
         doc = "tables rebuilt at once (rebuild), or encryption threads (background)" },
      ["at_rest.schemas"] = { type = "list", doc = "only these schemas (default: every application schema)" },
      ["at_rest.convert_myisam"] = { type = "boolean", default = false,
         doc = "convert MyISAM tables to InnoDB so they can be encrypted (otherwise they are listed)" },
      ["at_rest.replicas_have_keyring"] = { type = "boolean", default = false,
         doc = "this server has replicas and every one of them has its keyring already" },
      ["at_rest.disk_margin"] = { type = "integer", default = 20,
         doc = "free disk wanted beyond the largest table, in percent of it" },
      ["at_rest.new_tables"] = { type = "boolean", default = true,
         doc = "new tables are encrypted by default (MySQL 8.0.16+ default_table_encryption, MariaDB innodb_encrypt_tables)" },
      ["at_rest.logs"] = { type = "boolean", default = true,
         doc = "encrypt the redo and undo logs (MySQL 8.0+) or the redo log (MariaDB)" },
      ["at_rest.binlog"] = { type = "boolean", default = true,
         doc = "encrypt the binary and relay logs (MySQL 8.0.14+ binlog_encryption, MariaDB encrypt_binlog)" },
      ["at_rest.temp"] = { type = "boolean", default = true,
         doc = "encrypt temporary tables and files (MySQL 8.0.16+, MariaDB)" },
      ["at_rest.system_tablespace"] = { type = "boolean", default = true,
         doc = "MySQL 8.0.16+: encrypt the mysql system tablespace" },
      ["at_rest.rotation_iops"] = { type = "integer", default = 10000,
         doc = "background method (MariaDB): innodb_encryption_rotation_iops, pages a second per thread" },
      ["at_rest.wait_timeout"] = { type = "integer", default = 86400,
         doc = "background method: seconds to wait for the encryption threads" },
   },
   dialect = atrest.dialect,
   steps = {
      {
         name = "preflight",
         doc = "server, storage engines, free disk, replicas, an existing keyring: refuse what would lose data",
         check = function(ctx)
            local p, d = ctx.params, ctx.dialect
            local s = settings(ctx)
            ctx:log("%s; keyring %s in %s", d:describe(), d.keyring, s.dir)
            if not p.keyring.backup_dir and not p.keyring.accept_no_backup then
               return false, "keyring.backup_dir is not set: the key material must be backed up before anything "
                  .. "is encrypted (or set keyring.accept_no_backup=true to accept that losing it loses the data)"
            end
            if s.method == "background" and not d.supports_background then
               return false, ("at_rest.method=background needs MariaDB; %s encrypts table by table (rebuild)")
                  :format(d:describe())
            end
            -- an active keyring elsewhere: a new path would start an empty keyring
            if ctx:fact("keyring_active") then
               local current = ctx:fact("keyring_file")
               if current and current ~= s.key_file then
                  return false, ("the server already uses the keyring %s; pointing it at %s would start an empty "
                     .. "keyring and leave encrypted tables unreadable: set keyring.dir to its directory")
                     :format(current, s.key_file)
               end
            end
            local doc = option_tree(ctx)
            if doc and d.keyring == "component_keyring_file" then
               local epl = doc:effective(d:server_groups(), "early-plugin-load")
               if type(epl) == "string" and epl:find("keyring_file", 1, true) then
                  return false, ("early-plugin-load=%s: the keyring_file plugin does not exist in MySQL 8.4; "
                     .. "its keys must be migrated to component_keyring_file (mysqld --keyring-migration-...) "
                     .. "before this runbook can go on"):format(epl)
               end
            end
            local replicas = ctx:fact("replicas")
            if replicas > 0 and not p.at_rest.replicas_have_keyring then
               return false, ("%d replica%s read this server's binary log: encryption DDL replicates, so every "
                  .. "replica needs its keyring first; then set at_rest.replicas_have_keyring=true")
                  :format(replicas, replicas == 1 and "" or "s")
            end
            local todo, others = table_state(ctx)
            for _, t in ipairs(others) do ctx:warn("%s.%s is not encrypted: %s", t.schema, t.name, t.why) end
            -- room for the largest rebuild
            local largest = todo[1] and todo[1].bytes or 0
            local need = largest + largest * p.at_rest.disk_margin // 100
            local free = ctx:fact("disk_free")
            if free and need > free then
               return false, ("the largest table to encrypt, %s.%s, is %s: rebuilding it needs about %s free in the "
                  .. "datadir and %s is free"):format(todo[1].schema, todo[1].name, bytes(largest), bytes(need), bytes(free))
            end
            local total = 0
            for _, t in ipairs(todo) do total = total + t.bytes end
            ctx:log("%d table%s to encrypt (%s), the largest %s", #todo, #todo == 1 and "" or "s", bytes(total),
               bytes(largest))
            return true
         end,
      },
      {
         name = "key-material",
         doc = "the keyring directory (0750) and, on MariaDB, a key file of random keys (0600)",
         check = function(ctx)
            local s, d = settings(ctx), ctx.dialect
            if not d.myseal_makes_keys then
               return done(ctx:exists(s.dir), "no keyring directory " .. s.dir)
            end
            local text = ctx:read_file(s.key_file)
            if not text then return false, "no key file " .. s.key_file end
            if s.filekey then
               if not ctx:exists(s.filekey) then
                  ctx:fail("the key file %s is there but its filekey %s is not: restore the filekey from its backup",
                     s.key_file, s.filekey)
               end
               return true
            end
            local ok, err = keyring.parse_key_file(text, s.key_file)
            if not ok then
               ctx:fail("%s; myseal never rewrites an existing key file (data may be encrypted with it): "
                  .. "fix it or restore it from its backup", err)
            end
            return true
         end,
         apply = function(ctx)
            local s, d = settings(ctx), ctx.dialect
            ctx:mkdir(s.dir, { mode = OCTAL_750, owner = s.user })
            if not d.myseal_makes_keys then return end
            local text = keyring.new_key_file(ctx.params.keyring.key_count)
            if s.filekey then
               if not ctx:exists(s.filekey) then
                  local password = pki.digest(pki.random(32))
                  ctx:write_file(s.filekey, password, { mode = OCTAL_600, owner = s.user, secret = true })
               end
               -- MariaDB reads OpenSSL's "Salted__" format: AES-256-CBC, EVP_BytesToKey with SHA-1
               local r = ctx:run{ "openssl", "enc", "-aes-256-cbc", "-md", "sha1", "-salt",
                                  "-pass", "file:" .. s.filekey, stdin = text }
               text = r and r.stdout or "(the key file, encrypted with the filekey)"
            end
            ctx:write_file(s.key_file, text, { mode = OCTAL_600, owner = s.user, secret = true })
         end,
         undo = "the key material stays: data may already be encrypted with it (remove it by hand only after "
            .. "decrypting every table and log)",
      },
      {
         name = "option-file",
         doc = "the keyring and the encryption options in the server's option file (and MySQL 8.4's manifest)",
         check = function(ctx)
            local s = settings(ctx)
            local doc = option_tree(ctx)
            if not doc then ctx:fail("server.cnf is not set: name the server's option file in [server] cnf") end
            local missing = {}
            for _, o in ipairs(wanted_options(ctx, s)) do
               if not option_ok(ctx, doc, o) then missing[#missing + 1] = o.name end
            end
            if ctx.dialect:has("component_files") then
               for _, f in ipairs(ctx.dialect:component_files(s, ctx.params, plugin_dir(ctx))) do
                  if ctx:read_file(f.path) ~= f.data then missing[#missing + 1] = f.path end
               end
            end
            return done(#missing == 0, "to set: " .. table.concat(missing, ", "))
         end,
         apply = function(ctx)
            local s, d = settings(ctx), ctx.dialect
            local doc = option_tree(ctx)
            local edits = {}
            for _, o in ipairs(wanted_options(ctx, s)) do
               if not option_ok(ctx, doc, o) then
                  local current = o.list and doc:effective(d:server_groups(), o.name)
                  if type(current) == "string" and current ~= "" then   -- a ';' list: ours joins it
                     o = { name = o.name, value = current .. o.list .. o.value }
                  end
                  edits[#edits + 1] = o
               end
            end
            options.write(ctx, edits, d.encryption_group)
            if d:has("component_files") then
               for _, f in ipairs(d:component_files(s, ctx.params, plugin_dir(ctx))) do
                  local old = ctx:read_file(f.path)
                  if old and old ~= f.data and not old:find("component_keyring_file", 1, true) then
                     ctx:fail("%s exists and names other components: add component_keyring_file to it by hand", f.path)
                  end
                  ctx:write_file(f.path, f.data, { mode = tonumber("644", 8) })
               end
            end
         end,
         undo = "the keyring configuration stays: data and logs may be encrypted with it",
      },
      {
         name = "restart",
         doc = "the server runs with the keyring active and the options set (a restart, or SET GLOBAL when "
            .. "only dynamic options differ)",
         check = function(ctx)
            if not ctx:fact("keyring_active") then return false, "the keyring is not active in the server" end
            for _, o in ipairs(wanted_options(ctx, settings(ctx))) do
               if o.var and not same_value(ctx:fact("variable", o.var), o.value) then
                  return false, ("%s is %s, not %s"):format(o.var, tostring(ctx:fact("variable", o.var)), o.value)
               end
            end
            return true
         end,
         apply = function(ctx)
            local needs_restart = not ctx:fact("keyring_active")
            local dynamic = {}
            for _, o in ipairs(wanted_options(ctx, settings(ctx))) do
               if o.var and not same_value(ctx:fact("variable", o.var), o.value) then
                  if o.dynamic then dynamic[#dynamic + 1] = o else needs_restart = true end
               end
            end
            if needs_restart then
               ctx:restart_server()
            else
               for _, o in ipairs(dynamic) do
                  ctx:sql(("SET GLOBAL %s = %s"):format(o.var, o.value:match("^%d+$") and o.value or "'" .. o.value .. "'"))
               end
            end
         end,
         verify = function(ctx)
            return done(ctx:fact("keyring_active") == true, "the keyring is not active after the restart")
         end,
      },
      {
         name = "master-key",
         doc = "MySQL: the keyring holds an InnoDB master key (made now, so the backup has it)",
         when = function(ctx) return ctx.dialect.master_key_sql and true or false end,
         check = function(ctx)
            return done(ctx:fact("keyring_has_key"), "the keyring has no master key yet")
         end,
         apply = function(ctx) ctx:sql(ctx.dialect.master_key_sql) end,
      },
      {
         name = "key-backup",
         doc = "a verified copy of the key material in keyring.backup_dir, before anything is encrypted",
         when = function(ctx) return ctx.params.keyring.backup_dir ~= nil end,
         check = function(ctx)
            local s = settings(ctx)
            for _, f in ipairs(ctx.dialect:key_files(s)) do
               if not ctx:exists(f) then
                  return false, ("the keyring file %s is not there yet: it is backed up once it is"):format(f)
               end
            end
            local missing = keyring.missing_backups(ctx, ctx.dialect:key_files(s), ctx.params.keyring.backup_dir)
            return done(#missing == 0, "no backup of " .. table.concat(missing, ", "))
         end,
         apply = function(ctx)
            local s = settings(ctx)
            for _, f in ipairs(ctx.dialect:key_files(s)) do
               if not ctx.planning and not ctx:exists(f) then ctx:fail("the keyring file %s is not there: nothing to back up", f) end
            end
            keyring.backup(ctx, ctx.dialect:key_files(s), ctx.params.keyring.backup_dir, s.user)
         end,
      },
      {
         name = "encrypt-tables",
         doc = "every InnoDB table encrypted, largest first, resumable (progress by bytes)",
         check = function(ctx)
            local todo = table_state(ctx)
            local total = 0
            for _, t in ipairs(todo) do total = total + t.bytes end
            return done(#todo == 0, ("%d table%s (%s) to encrypt"):format(#todo, #todo == 1 and "" or "s", bytes(total)))
         end,
         apply = function(ctx)
            local p, d = ctx.params.at_rest, ctx.dialect
            local todo, _, all = table_state(ctx)
            if p.method == "background" then
               ctx:sql("SET GLOBAL innodb_encryption_threads = " .. math.tointeger(p.parallel))
               -- setting it again makes the threads look at every tablespace (MDEV-14398)
               ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
               -- the threads sometimes pass tablespaces over (seen on 10.11, about one start in
               -- fifty): when nothing moves for a while, setting the variable again sends them back
               local last_left, since = #todo, sys.clock()
               ctx:wait(("%d tables encrypted by %d background threads"):format(#todo, p.parallel), function()
                  local left = table_state(ctx)
                  if #left < last_left then
                     last_left, since = #left, sys.clock()
                  elseif #left > 0 and sys.clock() - since > 3 then
                     ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
                     since = sys.clock()
                  end
                  return #left == 0, #all - #left, #all
               end, { timeout = p.wait_timeout, interval = 0.25 })
               return
            end
            -- large tables in parallel, each on a connection of its own; small ones (where a new
            -- connection costs more than the rebuild) one after another on this one
            local large, small, small_total = {}, {}, 0
            for _, t in ipairs(todo) do
               local item = { sql = d:encrypt_sql(t), weight = math.max(t.bytes, 1) }
               if t.bytes >= PARALLEL_FROM then
                  large[#large + 1] = item
               else
                  small[#small + 1] = item
                  small_total = small_total + item.weight
               end
            end
            ctx:sql_parallel(large, { parallel = p.parallel, label = "large tables", unit = "bytes" })
            local done_bytes = 0
            for _, item in ipairs(small) do
               ctx:sql(item.sql)
               done_bytes = done_bytes + item.weight
               ctx:progress(done_bytes, small_total, "small tables", { unit = "bytes" })
            end
         end,
         undo = "the tables are encrypted: decrypt them first (ALTER TABLE ... ENCRYPTED=NO / ENCRYPTION='N') "
            .. "if the keyring is ever to go",
      },
      {
         name = "system-tablespace",
         doc = "MySQL 8.0.16+: the mysql system tablespace encrypted",
         when = function(ctx)
            return ctx.params.at_rest.system_tablespace and ctx.dialect:system_tablespace_sql() and true or false
         end,
         check = function(ctx) return done(ctx:fact("system_encrypted"), "the mysql tablespace is not encrypted") end,
         apply = function(ctx) ctx:sql(ctx.dialect:system_tablespace_sql()) end,
         undo = "the mysql tablespace is encrypted: ALTER TABLESPACE mysql ENCRYPTION='N' first",
      },
      {
         name = "verify",
         doc = "the server's own tables say every table in scope is encrypted; what is not, and why",
         when = function(ctx) return not ctx.planning end,
         check = function(ctx)
            local todo, others, all = table_state(ctx)
            for _, t in ipairs(others) do ctx:warn("not encrypted: %s: %s", named(t), t.why) end
            for _, t in ipairs(todo) do ctx:warn("not encrypted: %s", named(t)) end
            for _, o in ipairs(wanted_options(ctx, settings(ctx))) do
               if o.var and not same_value(ctx:fact("variable", o.var), o.value) then
                  ctx:warn("%s is %s, not %s", o.var, tostring(ctx:fact("variable", o.var)), o.value)
               end
            end
            ctx:log("%d of %d tables in scope encrypted", #all - #todo - #others, #all)
            return done(#todo == 0, ("%d InnoDB table%s still not encrypted"):format(#todo, #todo == 1 and "" or "s"))
         end,
      },
   },
}
