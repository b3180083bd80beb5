-- at-rest.lua: encryption at rest for MySQL 5.7 / 8.0 / 8.4 and MariaDB 10.x / 11.x.
-- The steps ask the dialect (lua/myseal/dialect/) what the server does; the shared parts are in
-- lua/myseal/atrest.lua; docs/servers.md has the facts behind them.
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn",
     doc = "server, storage engines, free disk, replicas, an existing keyring: refuse what would lose data" },
   { name = "key-material",
     doc = "the keyring directory (0750) and, on MariaDB, a key file of random keys (0600, the server's own)" },
   { name = "key-backup",
     doc = "MariaDB: a verified copy of the key material in keyring.backup_dir, before the server can use it" },
   { name = "option-file",
     doc = "the keyring and the encryption options in the server's option file (and MySQL 8.4's manifest)",
     undo = "the keyring configuration stays: data and logs may be encrypted with it" },
   { name = "restart",
     doc = "the server runs with the keyring active and the options set (a restart, or SET GLOBAL when "
        .. "only dynamic options differ)" },
   { name = "master-key",
     doc = "MySQL: the keyring holds an InnoDB master key (made now), and a verified copy of it, before anything "
        .. "is encrypted" },
   { name = "encrypt-tables", doc = "every InnoDB table encrypted, largest first, resumable (progress by bytes)",
     undo = "the tables are encrypted: decrypt them first (ALTER TABLE ... ENCRYPTED=NO / ENCRYPTION='N') "
        .. "if the keyring is ever to go" },
   { name = "system-tablespace", doc = "MySQL 8.0.16+: the mysql system tablespace encrypted",
     undo = "the mysql tablespace is encrypted: ALTER TABLESPACE mysql ENCRYPTION='N' first" },
   { name = "verify", doc = "the server's own tables say every table in scope is encrypted; what is not, and why" },
}

-- ------------------------------------------------------------------------------------------------

local atrest = require "myseal.atrest"
local keyring = require "myseal.keyring"
local options = require "myseal.options"
local pki = require "pki"
local replication = require "myseal.replication"
local sys = require "sys"
local text = require "myseal.text"

local OCTAL_750, OCTAL_600, OCTAL_644 = tonumber("750", 8), tonumber("600", 8), tonumber("644", 8)
local PARALLEL_FROM = 16 * 1024 * 1024   -- bytes: smaller tables are rebuilt one after another
local settings, done, bytes = atrest.settings, runbook.done, text.bytes

steps.preflight.check = function(ctx)
   local p, d = ctx.params, ctx.dialect
   local s = settings(ctx)
   ctx:log("%s; keyring %s in %s", d:describe(), d.keyring, s.dir)
   local who = options.server_user_mismatch(ctx)
   if who then ctx:reject("%s", who) end
   if not p.keyring.backup_dir and not p.keyring.accept_no_backup then
      return false, "keyring.backup_dir is not set: the key material must be backed up before anything "
         .. "is encrypted (or set keyring.accept_no_backup=true to accept that losing it loses the data)"
   end
   if s.method == "background" and not d.supports_background then
      return false, ("at_rest.method=background is not possible on %s: it encrypts table by table (rebuild)")
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
   if d.myseal_makes_keys and not s.filekey and p.keyring.use_filekey and ctx:read_file(s.key_file) then
      ctx:warn("the key file %s is plain text (it was there before); myseal does not rewrite it: encrypt it with "
         .. "a filekey by hand when the server is stopped, or move it off the data's disk", s.key_file)
   end
   local doc = atrest.option_tree(ctx)
   local conflict = doc and d:keyring_conflict(doc)
   if conflict then return false, conflict end
   -- encryption DDL replicates: every replica needs an active keyring first (asked of each one)
   if not p.at_rest.replicas_have_keyring then
      local why = replication.keyring_problem(ctx)
      if why then return false, why end
   end
   local todo, others = atrest.table_state(ctx)
   for _, t in ipairs(others) do ctx:warn("%s.%s is not encrypted: %s", t.schema, t.name, t.why) end
   -- room for the largest rebuild
   local largest = todo[1] and todo[1].bytes or 0
   local need = largest + largest * p.at_rest.disk_margin // 100
   local free = ctx:fact("disk_free")
   if free and need > free then
      return false, ("the largest table to encrypt, %s.%s, is %s: rebuilding it needs about %s free in the "
         .. "datadir and %s is free"):format(todo[1].schema, todo[1].name, bytes(largest), bytes(need), bytes(free))
   end
   ctx:log("%s to encrypt (%s), the largest %s", text.count(#todo, "table"), bytes(atrest.total_bytes(todo)),
      bytes(largest))
   return true
end

-- Is the key material the server's own: mode 0600, owned by the server's user? (A run killed
-- between writing a key file and giving it away leaves it root's, which the server cannot read.)
local function owned(path, user)
   local st = sys.stat(path)
   if not st then return true end   -- planned by this plan
   if st.mode ~= OCTAL_600 then return false, ("%s has mode %04o, not 0600"):format(path, st.mode) end
   if st.user ~= user and tostring(st.uid) ~= tostring(user) then
      return false, ("%s belongs to %s, not %s (the server's user)"):format(path, tostring(st.user or st.uid), user)
   end
   return true
end

steps["key-material"].check = function(ctx)
   local s, d = settings(ctx), ctx.dialect
   if not d.myseal_makes_keys then
      return done(ctx:exists(s.dir), "no keyring directory " .. s.dir)
   end
   if not ctx:read_file(s.key_file) then return false, "no key file " .. s.key_file end
   if s.filekey and not ctx:exists(s.filekey) then
      ctx:fail("the key file %s is there but its filekey %s is not: restore the filekey from its backup",
         s.key_file, s.filekey)
   end
   local ok, err = keyring.parse_key_file(atrest.key_text(ctx, s), s.key_file)
   if not ok then
      ctx:reject("%s; myseal never rewrites an existing key file (data may be encrypted with it): "
         .. "fix it or restore it from its backup", err)
   end
   for _, f in ipairs{ s.key_file, s.filekey } do
      local mine, why = owned(f, s.user)
      if not mine then return false, why end
   end
   return true
end

steps["key-material"].apply = function(ctx)
   local s, d = settings(ctx), ctx.dialect
   ctx:mkdir(s.dir, { mode = OCTAL_750, owner = s.user })
   if not d.myseal_makes_keys then return end
   local key = { mode = OCTAL_600, owner = s.user, secret = true, key_material = true }
   -- existing key material is never rewritten, only given back to the server's user
   if s.filekey then ctx:write_file(s.filekey, ctx:read_file(s.filekey) or pki.digest(pki.random(32)), key) end
   local data = ctx:read_file(s.key_file) or atrest.key_data(ctx, s, keyring.new_key_file(ctx.params.keyring.key_count))
   ctx:write_file(s.key_file, data, key)
end

-- Is there a verified backup of every key file? (true when no backup_dir: the preflight said so)
local function backed_up(ctx)
   local backup = ctx.params.keyring.backup_dir
   if not backup then return true end
   local files = ctx.dialect:key_files(settings(ctx))
   for _, f in ipairs(files) do
      if not ctx:exists(f) then return false, ("the keyring file %s is not there yet"):format(f) end
   end
   local missing = keyring.missing_backups(ctx, files, backup)
   return done(#missing == 0, "no backup of " .. table.concat(missing, ", "))
end

local function back_up(ctx)
   local s = settings(ctx)
   local files = ctx.dialect:key_files(s)
   for _, f in ipairs(files) do
      if not ctx.planning and not ctx:exists(f) then ctx:fail("the keyring file %s is not there: nothing to back up", f) end
   end
   keyring.backup(ctx, files, ctx.params.keyring.backup_dir, s.user)
end

steps["key-backup"].when = function(ctx)
   return ctx.params.keyring.backup_dir ~= nil and ctx.dialect.myseal_makes_keys
end
steps["key-backup"].check = backed_up
steps["key-backup"].apply = back_up

steps["option-file"].check = function(ctx)
   local s = settings(ctx)
   local doc = atrest.option_tree(ctx)
   if not doc then ctx:fail("server.cnf is not set: name the server's option file in [server] cnf") end
   local missing = {}
   for _, o in ipairs(atrest.wanted_options(ctx, s)) do
      if not atrest.option_ok(ctx, doc, o) then missing[#missing + 1] = o.name end
   end
   for _, f in ipairs(ctx.dialect:component_files(s, ctx.params, atrest.plugin_dir(ctx))) do
      if ctx:read_file(f.path) ~= f.data then missing[#missing + 1] = f.path end
   end
   return done(#missing == 0, "to set: " .. table.concat(missing, ", "))
end

steps["option-file"].apply = function(ctx)
   local s, d = settings(ctx), ctx.dialect
   local doc = atrest.option_tree(ctx)
   local edits = {}
   for _, o in ipairs(atrest.wanted_options(ctx, s)) do
      if not atrest.option_ok(ctx, doc, o) then
         local current = o.list and doc:effective(d:server_groups(), o.name)
         if type(current) == "string" and current ~= "" then   -- a ';' list: ours joins it
            o = { name = o.name, value = current .. o.list .. o.value }
         end
         edits[#edits + 1] = o
      end
   end
   -- the keyring's options are written first, and a failed restart keeps them: once InnoDB has
   -- started with the key it may have written its redo log with it (docs/servers.md)
   local keyring_names, first, second = {}, {}, {}
   for _, o in ipairs(d:keyring_options(s)) do keyring_names[o.name] = true end
   for _, o in ipairs(edits) do table.insert(keyring_names[o.name] and first or second, o) end
   options.write(ctx, first, d.flavor_group, { keep = "the keyring's options: the server may already have used its key" })
   options.write(ctx, second, d.flavor_group)
   for _, f in ipairs(d:component_files(s, ctx.params, atrest.plugin_dir(ctx))) do
      local old = ctx:read_file(f.path)
      if old and old ~= f.data and not old:find("component_keyring_file", 1, true) then
         ctx:fail("%s exists and names other components: add component_keyring_file to it by hand", f.path)
      end
      ctx:write_file(f.path, f.data, { mode = OCTAL_644 })
   end
end

steps.restart.check = function(ctx)
   if not ctx:fact("keyring_active") then return false, "the keyring is not active in the server" end
   local stale = atrest.stale_variables(ctx, settings(ctx))[1]
   if stale then
      return false, ("%s is %s, not %s"):format(stale.var, text.shown(ctx:fact("variable", stale.var)), stale.value)
   end
   return true
end

steps.restart.apply = function(ctx)
   local restart, stale = atrest.needs_restart(ctx)
   if restart then
      ctx:restart_server()
      return
   end
   for _, o in ipairs(stale) do
      ctx:sql(("SET GLOBAL %s = ?"):format(o.var), o.value:match("^%d+$") and math.tointeger(tonumber(o.value))
         or o.value)
   end
end

steps.restart.verify = function(ctx)
   return done(ctx:fact("keyring_active") == true, "the keyring is not active after the restart")
end

steps["master-key"].when = function(ctx) return ctx.dialect.master_key_sql and true or false end
steps["master-key"].check = function(ctx)
   if not ctx:fact("keyring_has_key", settings(ctx).key_file) then return false, "the keyring has no master key yet" end
   return backed_up(ctx)
end
steps["master-key"].apply = function(ctx)
   if not ctx:fact("keyring_has_key", settings(ctx).key_file) then ctx:sql(ctx.dialect.master_key_sql) end
   if ctx.params.keyring.backup_dir then back_up(ctx) end
end

steps["encrypt-tables"].check = function(ctx)
   local todo = atrest.table_state(ctx)
   return done(#todo == 0, ("%s (%s) to encrypt"):format(text.count(#todo, "table"), bytes(atrest.total_bytes(todo))))
end

-- MariaDB's background threads: set them going and wait until every tablespace is encrypted.
local function encrypt_in_background(ctx, todo, all)
   local p = ctx.params.at_rest
   ctx:sql("SET GLOBAL innodb_encryption_threads = ?", math.tointeger(p.parallel))
   -- setting it again makes the threads look at every tablespace (MDEV-14398)
   ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
   -- the threads sometimes pass tablespaces over (seen on 10.11, about one start in fifty): when
   -- nothing moves for a while, setting the variable again sends them back
   local last_left, since = #todo, sys.clock()
   ctx:wait(("%d tables encrypted by %d background threads"):format(#todo, p.parallel), function()
      local left = atrest.table_state(ctx)
      if #left < last_left then
         last_left, since = #left, sys.clock()
      elseif #left > 0 and sys.clock() - since > 3 then
         ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
         since = sys.clock()
      end
      return #left == 0, #all - #left, #all
   end, { timeout = p.wait_timeout, interval = 0.25 })
end

steps["encrypt-tables"].apply = function(ctx)
   local d = ctx.dialect
   local todo, _, all = atrest.table_state(ctx)
   if ctx.params.at_rest.method == "background" then return encrypt_in_background(ctx, todo, all) end
   -- large tables in parallel, each on a connection of its own; small ones (where a new
   -- connection costs more than the rebuild) one after another on this one
   local large, small, small_total = {}, {}, 0
   for _, t in ipairs(todo) do
      local item = { sql = d:encrypt_table_sql(t), weight = math.max(t.bytes, 1) }
      if t.bytes >= PARALLEL_FROM then
         large[#large + 1] = item
      else
         small[#small + 1] = item
         small_total = small_total + item.weight
      end
   end
   ctx:sql_parallel(large, { parallel = ctx.params.at_rest.parallel, label = "large tables", unit = "bytes" })
   local done_bytes = 0
   for _, item in ipairs(small) do
      ctx:sql(item.sql)
      done_bytes = done_bytes + item.weight
      ctx:progress(done_bytes, small_total, "small tables", { unit = "bytes" })
   end
end

steps["system-tablespace"].when = function(ctx)
   return ctx.params.at_rest.system_tablespace and ctx.dialect:system_tablespace_sql() and true or false
end
steps["system-tablespace"].check = function(ctx)
   return done(ctx:fact("system_encrypted"), "the mysql tablespace is not encrypted")
end
steps["system-tablespace"].apply = function(ctx) ctx:sql(ctx.dialect:system_tablespace_sql()) end

steps.verify.when = function(ctx) return ctx.mode ~= "plan", "after the changes" end
steps.verify.check = function(ctx)
   local todo, others, all = atrest.table_state(ctx)
   for _, t in ipairs(others) do ctx:warn("not encrypted: %s: %s", atrest.named(t), t.why) end
   for _, t in ipairs(todo) do ctx:warn("not encrypted: %s", atrest.named(t)) end
   for _, o in ipairs(atrest.stale_variables(ctx, settings(ctx))) do
      ctx:warn("%s is %s, not %s", o.var, text.shown(ctx:fact("variable", o.var)), o.value)
   end
   ctx:log("%d of %d tables in scope encrypted", #all - #todo - #others, #all)
   return done(#todo == 0, ("%s still not encrypted"):format(text.count(#todo, "InnoDB table")))
end

return runbook.new {
   name = "at-rest",
   summary = "encrypt the server's data at rest: keyring, key backup, every table, logs",
   params = replication.params({ "replication.replicas", "replication.check_user", "replication.check_password" },
      atrest.params()),
   steps = steps,
}
