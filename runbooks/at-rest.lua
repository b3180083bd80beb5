-- at-rest.lua: encryption at rest for MySQL 5.7 / 8.0 / 8.4 and MariaDB 10.x / 11.x, until nothing
-- the server writes is readable on disk. The steps ask the dialect (lua/myseal/dialect/) what the
-- server does; the shared parts are in lua/myseal/atrest.lua and lua/myseal/atrest/;
-- docs/servers.md and docs/at-rest-disk.md have the facts behind them.
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn",
     doc = "server, storage engines, free disk, replicas, an existing keyring: refuse what would lose data" },
   { name = "key-material",
     doc = "the keyring directory (the server's user only) and, on MariaDB, a key file of random keys (0600)" },
   { name = "key-backup",
     doc = "MariaDB: a verified copy of the key material in keyring.backup_dir, before the server can use it" },
   { name = "option-file",
     doc = "the keyring and the encryption options in the server's option file (and MySQL's component files)",
     undo = "the keyring configuration stays: data and logs may be encrypted with it" },
   { name = "restart",
     doc = "the server runs with the keyring active and the options set (a restart, or SET GLOBAL when "
        .. "only dynamic options differ)" },
   { name = "master-key",
     doc = "MySQL: the keyring holds an InnoDB master key (made now), and a verified copy of it, before anything "
        .. "is encrypted" },
   { name = "encrypt-tables",
     doc = "every InnoDB table encrypted: MariaDB's encryption threads, or one online ALTER per table (largest "
        .. "first, resumable, never making the application wait)",
     undo = "the tables are encrypted: decrypt them first (ALTER TABLE ... ENCRYPTED=NO / ENCRYPTION='N') "
        .. "if the keyring is ever to go" },
   { name = "system-tablespace",
     doc = "the server's own tablespaces: MariaDB's system and undo tablespaces and mysql tables, MySQL's mysql",
     undo = "the server's tablespaces are encrypted: decrypt them first if the keyring is ever to go" },
   { name = "schema-defaults", doc = "MySQL 8.0.16+: every schema's DEFAULT ENCRYPTION='Y', for new tables in it" },
   { name = "aria-tables",
     doc = "MariaDB: every Aria table (the mysql schema's accounts too) rebuilt with aria_encrypt_tables=ON" },
   { name = "freed-pages",
     doc = "pages freed before encryption keep what they held: tables whose files still show application values "
        .. "are rebuilt online; what no statement rewrites (the system tablespace's) is named" },
   { name = "binary-logs",
     doc = "the binary log rotated to an encrypted file; older plain ones purged (at_rest.purge_binlogs) or listed" },
   { name = "query-logs", severity = "warn",
     doc = "the general and slow query logs, never encrypted: listed, or turned off or moved (at_rest.query_logs)" },
   { name = "verify",
     doc = "the server's tables say every table is encrypted, and the disk agrees: no application value is "
        .. "readable in any file the server writes" },
   { name = "rehearsal",
     doc = "a copy of the data restored with nothing but the key backup gives the live checksums" },
}

-- ------------------------------------------------------------------------------------------------

local atrest = require "myseal.atrest"
local alter = require "myseal.atrest.alter"
local proof = require "myseal.atrest.proof"
local keyring = require "myseal.keyring"
local options = require "myseal.options"
local pki = require "pki"
local replication = require "myseal.replication"
local sys = require "sys"
local text = require "myseal.text"

local OCTAL_600 = tonumber("600", 8)
local settings, done, bytes, named = atrest.settings, runbook.done, text.bytes, atrest.named

steps.preflight.check = function(ctx)
   local p, d = ctx.params, ctx.dialect
   local s = settings(ctx)
   -- bad input is refused before anything changes
   atrest.query_log_dir(ctx)
   keyring.check_backup_dir(ctx, p.keyring.backup_dir)
   if proof.scanning(ctx) then proof.markers(ctx) end   -- the disk scan's own values, read at its end
   local unsupported = d:keyring_unsupported()
   if unsupported then return false, unsupported end
   ctx:log("%s; keyring %s in %s; method %s", d:describe(), s.keyring, s.dir, s.method)
   if s.keyring_note then ctx:warn("%s", s.keyring_note) end
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
   local doc = options.tree(ctx)
   local conflict = doc and d:keyring_conflict(doc, s)
   if conflict then return false, conflict end
   -- encryption DDL replicates: every replica needs an active keyring first (asked of each one)
   if not p.at_rest.replicas_have_keyring then
      local why = replication.keyring_problem(ctx)
      if why then return false, why end
   end
   local todo, others = atrest.table_state(ctx)
   for _, t in ipairs(others) do ctx:warn("%s.%s is not encrypted: %s", t.schema, t.name, t.why) end
   -- room for the largest rebuild (the encryption threads rewrite pages in place)
   local rebuilt = s.method == "rebuild" and todo or {}
   local largest = rebuilt[1] and rebuilt[1].bytes or 0
   local need = largest + largest * p.at_rest.disk_margin // 100
   local free = ctx:fact("disk_free")
   if free and need > free then
      return false, ("the largest table to encrypt, %s.%s, is %s: rebuilding it needs about %s free in the "
         .. "datadir and %s is free"):format(todo[1].schema, todo[1].name, bytes(largest), bytes(need), bytes(free))
   end
   ctx:log("%s to encrypt (%s), the largest %s", text.count(#todo, "table"), bytes(atrest.total_bytes(todo)),
      bytes(todo[1] and todo[1].bytes or 0))
   return true
end

-- Is the key material the server's own: mode 0600, owned by the server's user? (A run killed
-- between writing a key file and giving it away leaves it root's, which the server cannot read.)
local function owned(path, user, mode)
   local st = sys.stat(path)
   if not st then return true end   -- planned by this plan
   if st.mode ~= mode then return false, ("%s has mode %04o, not %04o"):format(path, st.mode, mode) end
   if st.user ~= user and tostring(st.uid) ~= tostring(user) then
      return false, ("%s belongs to %s, not %s (the server's user)"):format(path, tostring(st.user or st.uid), user)
   end
   return true
end

steps["key-material"].check = function(ctx)
   local s, d = settings(ctx), ctx.dialect
   if not ctx:exists(s.dir) then return false, "no keyring directory " .. s.dir end
   local mine, why = owned(s.dir, s.user, d.keyring_dir_mode)
   if not mine then return false, why end
   if not d.myseal_makes_keys then return true end   -- the server writes its keyring itself
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
      mine, why = owned(f, s.user, OCTAL_600)
      if not mine then return false, why end
   end
   return true
end

steps["key-material"].apply = function(ctx)
   local s, d = settings(ctx), ctx.dialect
   ctx:mkdir(s.dir, { mode = d.keyring_dir_mode, owner = s.user })
   local key = atrest.key_file_opts(s)
   if not d.myseal_makes_keys then return end   -- the server writes it (master-key makes it its user's)
   -- existing key material is never rewritten, only given back to the server's user
   if s.filekey then ctx:write_file(s.filekey, ctx:read_file(s.filekey) or pki.digest(pki.random(32)), key) end
   local data = ctx:read_file(s.key_file)
      or atrest.key_data(ctx, s, keyring.new_key_file(ctx.params.keyring.key_count))
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
      if not ctx.planning and not ctx:exists(f) then
         ctx:fail("the keyring file %s is not there: nothing to back up", f)
      end
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
   local doc = options.tree(ctx)
   if not doc then ctx:reject("server.cnf is not set: name the server's option file in [server] cnf") end
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
   local doc = options.tree(ctx)
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
   local keep = "the keyring's options: the server may already have used its key"
   -- a component file myseal cannot write stops the step before the option file says encrypt
   local files = d:component_files(s, ctx.params, atrest.plugin_dir(ctx))
   for _, f in ipairs(files) do
      local old = ctx:read_file(f.path)
      local why = old and old ~= f.data and f.conflict(old)
      if why then ctx:fail("%s exists and %s", f.path, why) end
   end
   options.write(ctx, first, d.flavor_group, { keep = keep })
   options.write(ctx, second, d.flavor_group)
   for _, f in ipairs(files) do ctx:write_file(f.path, f.data, { mode = f.mode, owner = f.owner, keep = keep }) end
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
   local s = settings(ctx)
   if not ctx:fact("keyring_has_key", s.key_file) then return false, "the keyring has no master key yet" end
   -- the server wrote its keyring file: for its user only
   local mine, why = owned(s.key_file, s.user, OCTAL_600)
   if not mine then return false, why end
   return backed_up(ctx)
end
steps["master-key"].apply = function(ctx)
   local s = settings(ctx)
   if not ctx:fact("keyring_has_key", s.key_file) then ctx:sql(ctx.dialect.master_key_sql) end
   local data = not ctx.planning and ctx:read_file(s.key_file)
   if data then ctx:write_file(s.key_file, data, atrest.key_file_opts(s)) end
   if ctx.params.keyring.backup_dir then back_up(ctx) end
end

-- The tables the encrypt-tables step does (Aria tables have a step of their own).
local function innodb_todo(ctx)
   local todo, _, all = atrest.table_state(ctx)
   local out = {}
   for _, t in ipairs(todo) do
      if not t.aria then out[#out + 1] = t end
   end
   return out, all
end

steps["encrypt-tables"].check = function(ctx)
   local todo = innodb_todo(ctx)
   return done(#todo == 0, ("%s (%s) to encrypt"):format(text.count(#todo, "table"), bytes(atrest.total_bytes(todo))))
end

steps["encrypt-tables"].apply = function(ctx)
   local d = ctx.dialect
   local todo, all = innodb_todo(ctx)
   local background = settings(ctx).method == "background"
   local list, spaces = {}, {}
   for _, t in ipairs(todo) do
      if background and not d:threads_skip(t) then
         -- the threads do it
      elseif t.tablespace then   -- a general tablespace, encrypted once for all its tables
         if not spaces[t.tablespace] then
            spaces[t.tablespace] = true
            ctx:sql(d:encrypt_tablespace_sql(t.tablespace))
         end
      else
         list[#list + 1] = { t = t, sql = function(wait) return d:encrypt_table_sql(t, nil, wait) end }
      end
   end
   alter.run(ctx, list, { label = "tables" })
   if background then atrest.encrypt_in_background(ctx, todo, all) end
end

-- The server's own tablespaces that can be encrypted and are not; those that cannot are warned of
-- unless `quiet`.
local function system_todo(ctx, quiet)
   local todo = {}
   for _, sp in ipairs(ctx:fact("system_spaces")) do
      if not sp.encrypted and sp.can_encrypt then
         todo[#todo + 1] = sp
      elseif (not sp.encrypted or sp.why) and not quiet then
         ctx:warn("%s: %s", sp.name, sp.why or "not encrypted")
      end
   end
   return todo
end

steps["system-tablespace"].when = function(ctx) return ctx.params.at_rest.system_tablespace end
steps["system-tablespace"].check = function(ctx)
   local blocked = ctx.dialect:system_spaces_blocked(settings(ctx))
   if blocked then
      ctx:warn("%s", blocked)
      return true
   end
   local todo = system_todo(ctx)
   local names = {}
   for i, sp in ipairs(todo) do names[i] = sp.name end
   return done(#todo == 0, "not encrypted: " .. table.concat(names, ", "))
end
steps["system-tablespace"].apply = function(ctx)
   local statements, wait = ctx.dialect:system_spaces_sql(system_todo(ctx, true), settings(ctx))
   for _, st in ipairs(statements) do ctx:sql(st.sql, table.unpack(st.args or {})) end
   if wait then
      atrest.wait_for_threads(ctx, "the server's own tablespaces", function()
         return #system_todo(ctx, true)
      end)
   end
end

-- The names of the schemas in scope whose default does not encrypt new tables.
local function plain_schemas(ctx)
   local only, out = atrest.scope(ctx), {}
   for _, sch in ipairs(ctx:fact("schemas")) do
      if (not only or only[sch.name]) and tostring(sch.default_encryption):upper() ~= "YES" then
         out[#out + 1] = sch.name
      end
   end
   return out
end

steps["schema-defaults"].when = function(ctx)
   return ctx.params.at_rest.new_tables and ctx.dialect:schema_encryption_sql("x") and true or false
end
steps["schema-defaults"].check = function(ctx)
   local names = plain_schemas(ctx)
   return done(#names == 0, "DEFAULT ENCRYPTION='N' (new tables plain): " .. table.concat(names, ", "))
end
steps["schema-defaults"].apply = function(ctx)
   for _, name in ipairs(plain_schemas(ctx)) do ctx:sql(ctx.dialect:schema_encryption_sql(name)) end
end

-- Aria tables to rebuild: those of the server's own schemas and those in scope, ROW_FORMAT=PAGE (the
-- only one Aria encrypts), not encrypted (or not known to be: their files are elsewhere).
local function aria_todo(ctx)
   local only, system, out = atrest.scope(ctx), ctx.dialect.system_schemas, {}
   for _, t in ipairs(ctx:fact("aria_tables")) do
      if (system[t.schema] or not only or only[t.schema]) and t.page and not t.encrypted then out[#out + 1] = t end
   end
   return out
end

steps["aria-tables"].when = function(ctx)
   return ctx.params.at_rest.aria and ctx.dialect:aria_rebuild_sql{ schema = "mysql", name = "db" } and true or false
end
steps["aria-tables"].check = function(ctx)
   local on = tostring(ctx:fact("variable", "aria_encrypt_tables") or ""):upper()
   if on ~= "ON" and on ~= "1" then return false, "aria_encrypt_tables is OFF" end
   local todo = aria_todo(ctx)
   local names = {}
   for i, t in ipairs(todo) do
      names[i] = named(t) .. (t.encrypted == nil and " (its files are not on this host to tell)" or "")
   end
   return done(#todo == 0, ("%s to rebuild: %s"):format(text.count(#todo, "Aria table"), table.concat(names, ", ")))
end
steps["aria-tables"].apply = function(ctx)
   local d = ctx.dialect
   local list = {}
   for _, t in ipairs(aria_todo(ctx)) do
      list[#list + 1] = { t = t, sql = function(wait) return d:aria_rebuild_sql(t, wait), {} end }
   end
   alter.run(ctx, list, { label = "Aria tables" })
end

-- Freed pages: the tables the disk scan found encrypted yet readable, from the check to its apply.
local residue = setmetatable({}, { __mode = "k" })

-- Only where the disk is scanned (a run, check --deep): a plan cannot know what the files hold.
steps["freed-pages"].when = function(ctx)
   return ctx.params.at_rest.scrub and proof.scanning(ctx)
end
steps["freed-pages"].check = function(ctx)
   local report, why = proof.disk_scan(ctx)
   if not report then
      ctx:warn("%s: freed pages were not looked for", why)
      return true
   end
   local names = proof.residue_tables(report)
   residue[ctx] = names
   return done(#names == 0, ("application values are readable in pages freed before encryption: %s")
      :format(table.concat(names, ", ")))
end
steps["freed-pages"].apply = function(ctx)
   local wanted = {}
   for _, n in ipairs(residue[ctx] or {}) do wanted[n] = true end
   local d, list = ctx.dialect, {}
   local _, _, all = atrest.table_state(ctx)
   for _, t in ipairs(all) do
      if wanted[named(t)] then
         list[#list + 1] = { t = t, sql = function(wait) return d:rebuild_table_sql(t, wait) end }
      end
   end
   alter.run(ctx, list, { label = "tables rebuilt" })
end

-- The binary logs: the current one's state, and the older ones that hold plain data.
local function binlog_state(ctx)
   local b = ctx:fact("binlogs")
   if not b.enabled or #b.files == 0 then return nil end
   local current = b.files[#b.files]
   local plain = {}
   for i = 1, #b.files - 1 do
      if b.files[i].encrypted == false then plain[#plain + 1] = b.files[i].name end
   end
   return current, plain
end

-- The name the next binary log gets: the same base, the number one higher.
local function next_binlog(name)
   local base, n = name:match("^(.*)%.(%d+)$")
   return base and ("%s.%0" .. #n .. "d"):format(base, tonumber(n) + 1) or name
end

steps["binary-logs"].when = function(ctx) return ctx.params.at_rest.binlog end
steps["binary-logs"].check = function(ctx)
   local current, plain = binlog_state(ctx)
   if not current then return true end
   if not ctx.dialect:can_encrypt_binlog() then
      ctx:warn("%s cannot encrypt its binary logs: %s and every later one stay plain", ctx.dialect:describe(),
         current.name)
      return true
   end
   if current.encrypted == false then
      return false, ("the current binary log %s is not encrypted"):format(current.name)
   end
   if #plain == 0 then return true end
   if ctx.params.at_rest.purge_binlogs then
      return false, ("%s written before encryption to purge: %s"):format(text.count(#plain, "binary log"),
         table.concat(plain, ", "))
   end
   ctx:warn("%s written before encryption hold plain data: %s; once every replica and backup has them: PURGE "
      .. "BINARY LOGS TO '%s' (or run again with at_rest.purge_binlogs=true)", text.count(#plain, "binary log"),
      table.concat(plain, ", "), current.name)
   return true
end
steps["binary-logs"].apply = function(ctx)
   local current, plain = binlog_state(ctx)
   local d = ctx.dialect
   local keep = current.name
   if current.encrypted == false then
      ctx:sql(d.rotate_binlog_sql)
      plain[#plain + 1] = current.name
      keep = ctx.planning and next_binlog(current.name) or binlog_state(ctx).name
   end
   if ctx.params.at_rest.purge_binlogs and #plain > 0 then ctx:sql(d:purge_binlogs_sql(keep)) end
end

steps["query-logs"].check = atrest.query_logs_check
steps["query-logs"].apply = atrest.query_logs_apply

steps.verify.when = function(ctx) return ctx.mode ~= "plan", "after the changes" end
steps.verify.check = function(ctx)
   local todo, others, all = atrest.table_state(ctx)
   for _, t in ipairs(others) do ctx:warn("not encrypted: %s: %s", named(t), t.why) end
   for _, t in ipairs(todo) do ctx:warn("not encrypted: %s", named(t)) end
   for _, o in ipairs(atrest.stale_variables(ctx, settings(ctx))) do
      ctx:warn("%s is %s, not %s", o.var, text.shown(ctx:fact("variable", o.var)), o.value)
   end
   for _, note in ipairs(ctx.dialect:unencryptable_notes()) do ctx:log("%s", note) end
   ctx:log("%d of %d tables in scope encrypted", #all - #todo - #others, #all)
   if #todo > 0 then return false, ("%s still not encrypted"):format(text.count(#todo, "table")) end
   if not proof.scanning(ctx) then return true end
   local report, why = proof.disk_scan(ctx)
   if not report then
      ctx:warn("%s: the disk was not scanned", why)
      return true
   end
   ctx:record("disk_scan", proof.summary(report))
   local readable = {}
   for _, f in ipairs(report.files) do
      ctx:warn("plaintext: %s", proof.describe_hit(f))
      if f.can_encrypt and not proof.accepted(f, ctx.params.at_rest.purge_binlogs) then
         readable[#readable + 1] = f.path
      end
   end
   ctx:log("disk scan: %s (%s) searched for %s from the application's rows%s", text.count(report.scanned, "file"),
      bytes(report.bytes), text.count(report.probes, "value"), report.note and ("; " .. report.note) or "")
   return done(#readable == 0, ("application values are readable in %s that should be encrypted: %s")
      :format(text.count(#readable, "file"), table.concat(readable, ", ")))
end

for k, f in pairs(proof.rehearsal) do steps.rehearsal[k] = f end

return runbook.new {
   name = "at-rest",
   summary = "encrypt the server's data at rest until nothing is readable on disk: keyring, key backup, every table, "
      .. "the server's own files, logs; proved by the disk and a restore",
   params = replication.params({ "replication.replicas", "replication.check_user", "replication.check_password" },
      atrest.params()),
   steps = steps,
}
