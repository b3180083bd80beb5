--- Shared by the at-rest and rotate-master-key runbooks: their parameters (one definition
-- each), the settings a run works with, the server options encryption at rest wants, and the
-- state of the tables. What the servers do differently is in the dialects
-- (lua/myseal/dialect/); docs/servers.md has the facts.
-- @module myseal.atrest
local sys = require "sys"
local options = require "myseal.options"
local sqltext = require "myseal.sqltext"
local text_count = require("myseal.text").count

local M = {}

--- Every parameter of encryption at rest, by name; a runbook takes the ones it reads with
-- `atrest.params{ ... }`.
M.PARAMS = {
   ["keyring.dir"] = { type = "path",
      doc = "directory of the key material (default: /etc/mysql/encryption on MariaDB, "
         .. "/var/lib/mysql-keyring on MySQL, beside the datadir on a sandbox)" },
   ["keyring.backup_dir"] = { type = "path",
      doc = "where the key material is copied (and verified) before anything is encrypted and after every "
         .. "key change; keep it off the database host afterwards" },
   ["keyring.accept_no_backup"] = { type = "boolean", default = false,
      doc = "go on without keyring.backup_dir: losing the key file then loses the data for good" },
   ["keyring.key_count"] = { type = "integer", default = 1, min = 1, max = 10000,
      doc = "MariaDB: how many keys the new key file holds (ids 1..n; key 1 encrypts by default)" },
   ["keyring.use_filekey"] = { type = "boolean", default = true,
      doc = "MariaDB: encrypt a new key file with a filekey (false: plain text, mode 0600; an auditor's first "
         .. "finding)" },
   ["keyring.filekey"] = { type = "path",
      doc = "MariaDB: the file with the password that encrypts the key file, made when missing (default: "
         .. "filekey in keyring.dir)" },
   ["keyring.algorithm"] = { type = "enum", values = { "AES_CBC", "AES_CTR" }, default = "AES_CTR",
      doc = "MariaDB: file_key_management_encryption_algorithm" },
   ["keyring.manifest_dir"] = { type = "path", default = "/usr/sbin",
      doc = "MySQL 8.0.24+ (component_keyring_file): the directory of the mysqld binary, where the manifest "
         .. "mysqld.my goes" },
   ["keyring.plugin_dir"] = { type = "path",
      doc = "MySQL 8.0.24+ (component_keyring_file): the server's plugin_dir, where component_keyring_file.cnf "
         .. "goes (default: asked)" },
   ["at_rest.method"] = { type = "enum", values = { "auto", "rebuild", "background" }, default = "auto",
      doc = "auto: the fastest complete and online method of the server (MariaDB: background; MySQL: rebuild); "
         .. "rebuild: one ALTER TABLE per table; background (MariaDB): encryption threads do every tablespace" },
   ["at_rest.parallel"] = { type = "integer", default = 2, min = 1,
      doc = "tables rebuilt at once (rebuild), or encryption threads (background, and the system tablespace)" },
   ["at_rest.schemas"] = { type = "list",
      doc = "only these schemas (default: every application schema); one that does not exist is an error" },
   ["at_rest.convert_myisam"] = { type = "boolean", default = false,
      doc = "convert MyISAM tables to InnoDB so they can be encrypted (otherwise they are listed)" },
   ["at_rest.replicas_have_keyring"] = { type = "boolean", default = false,
      doc = "this server has replicas and every one of them has its keyring already: an override, for replicas "
         .. "the check account cannot reach (otherwise each is asked, [replication])" },
   ["at_rest.disk_margin"] = { type = "integer", default = 20, min = 0,
      doc = "free disk wanted beyond the largest table, in percent of it" },
   ["at_rest.new_tables"] = { type = "boolean", default = true,
      doc = "new tables are encrypted by default (MySQL 8.0.16+ default_table_encryption and every schema's "
         .. "DEFAULT ENCRYPTION, MariaDB innodb_encrypt_tables)" },
   ["at_rest.logs"] = { type = "boolean", default = true,
      doc = "encrypt the redo and undo logs (MySQL 8.0+) or the redo log (MariaDB)" },
   ["at_rest.binlog"] = { type = "boolean", default = true,
      doc = "encrypt the binary and relay logs (MySQL 8.0.14+ binlog_encryption, MariaDB encrypt_binlog); "
         .. "rotate-master-key: rotate the binary log's master key too (MySQL 8.0.16+, when it is on)" },
   ["at_rest.purge_binlogs"] = { type = "boolean", default = false,
      doc = "every replica and every backup has the binary logs written before encryption: purge them "
         .. "(otherwise they are listed, with the PURGE statement to run once they have)" },
   ["at_rest.temp"] = { type = "boolean", default = true,
      doc = "encrypt temporary tables and files (MySQL 8.0.16+, MariaDB)" },
   ["at_rest.system_tablespace"] = { type = "boolean", default = true,
      doc = "encrypt the server's own tablespaces: MariaDB the system and undo tablespaces and the mysql schema's "
         .. "InnoDB tables (encryption threads); MySQL 8.0.16+ the mysql tablespace" },
   ["at_rest.aria"] = { type = "boolean", default = true,
      doc = "MariaDB: aria_encrypt_tables, and every Aria table rebuilt with it (the mysql schema's accounts too)" },
   ["at_rest.scrub"] = { type = "boolean", default = true,
      doc = "MariaDB: innodb_immediate_scrub_data_uncompressed, so pages freed from now on are zeroed" },
   ["at_rest.query_logs"] = { type = "enum", values = { "report", "off", "move" }, default = "report",
      doc = "the general and slow query logs, which no setting encrypts: report them; off: turn them off; "
         .. "move: write them to at_rest.query_log_dir (and log_output=FILE)" },
   ["at_rest.query_log_dir"] = { type = "path",
      doc = "at_rest.query_logs=move: the directory the query logs go to (an encrypted file system)" },
   ["at_rest.lock_wait"] = { type = "number", default = 0.25, min = 0,
      doc = "seconds an ALTER TABLE may wait for a table's metadata lock (application queries on the table "
         .. "wait as long) before it is stopped and tried again later" },
   ["at_rest.lock_give_up"] = { type = "integer", default = 300, min = 0,
      doc = "seconds a table may stay locked by others before the run gives up on it (named with the "
         .. "session holding it; the run can be resumed)" },
   ["at_rest.disk_scan"] = { type = "enum", values = { "auto", "yes", "no" }, default = "auto",
      doc = "the disk scan of the verify step (every file the server writes, searched for the application's "
         .. "own values): auto = in run, and in myseal check with --deep" },
   ["at_rest.scan_markers"] = { type = "secret",
      doc = "more values the disk scan searches for, one a line (file:PATH or env:VAR; never printed)" },
   ["at_rest.rehearsal"] = { type = "boolean", default = true,
      doc = "rehearse a restore with nothing but the backed-up keys after encrypting (MariaDB: mariadb-backup; "
         .. "MySQL: the commands are named)" },
   ["at_rest.rotation_iops"] = { type = "integer", default = 10000, min = 1,
      doc = "encryption threads (MariaDB): innodb_encryption_rotation_iops, pages a second per thread" },
   ["at_rest.wait_timeout"] = { type = "integer", default = 86400, min = 1,
      doc = "seconds to wait for the encryption threads" },
}

--- The declarations of the named parameters (all of them without a list).
-- @param ... lists of "section.key"
-- @return declarations for runbook.new's `params`
function M.params(...)
   if select("#", ...) == 0 then return M.PARAMS end
   local out = {}
   for _, names in ipairs{ ... } do
      for _, n in ipairs(names) do out[n] = assert(M.PARAMS[n], n) end
   end
   return out
end

-- What this run works with ----------------------------------------------------------------------

--- The server's plugin_dir (MySQL 8.0.24+), where component_keyring_file's configuration goes.
function M.plugin_dir(ctx)
   local dir = ctx.params.keyring.plugin_dir or ctx:fact("variable", "plugin_dir") or "/usr/lib/mysql/plugin"
   return (dir:gsub("/+$", ""))
end

--- The parameters `settings` and `table_state` read: a runbook using them declares these.
M.SETTINGS = { "keyring.dir", "keyring.use_filekey", "keyring.filekey", "keyring.algorithm", "at_rest.method",
               "at_rest.parallel", "at_rest.rotation_iops", "at_rest.new_tables", "at_rest.logs", "at_rest.binlog",
               "at_rest.temp", "at_rest.schemas", "at_rest.convert_myisam", "at_rest.aria", "at_rest.scrub",
               "at_rest.lock_wait", "at_rest.lock_give_up", "at_rest.rehearsal", "keyring.backup_dir" }

-- A path the server is given (parameter `name`) must be absolute: the server reads a relative one
-- from its datadir, not from where myseal ran.
local function absolute(ctx, name, v)
   if v and not require("myseal.engine.params").absolute(v) then
      ctx:reject("%s: %s is not an absolute path (the server would look for it in its datadir)", name, v)
   end
end

--- The settings of this run: where the key material is, which keyring, method and options.
-- @param ctx the step's context
-- @return `{ dir, key_file, filekey, algorithm, keyring, keyring_note, method, threads, rotation_iops,
--   new_tables, logs, binlog, temp, aria, scrub, user }`
function M.settings(ctx)
   local p, d = ctx.params, ctx.dialect
   local k, a = p.keyring, p.at_rest
   for _, name in ipairs{ "dir", "filekey" } do absolute(ctx, "keyring." .. name, k[name]) end
   local s = {
      dir = k.dir or ctx:default_dir("keyring") or d.keyring_dir_default,
      filekey = k.filekey, algorithm = k.algorithm, threads = a.parallel,
      method = a.method == "auto" and d.default_method or a.method,
      rotation_iops = a.rotation_iops, new_tables = a.new_tables, logs = a.logs, binlog = a.binlog,
      temp = a.temp, aria = a.aria, scrub = a.scrub, user = p.server.user,
   }
   -- MariaDB: a new key file is encrypted with a filekey unless the profile says use_filekey = false;
   -- a key file already there stays as it is, plain or encrypted (myseal never rewrites key material)
   if not k.use_filekey then
      s.filekey = nil
      local enc = { filekey = k.filekey or s.dir .. "/filekey" }
      if d.myseal_makes_keys and not ctx:exists(s.dir .. "/" .. d:key_file_name(s))
            and ctx:exists(s.dir .. "/" .. d:key_file_name(enc)) then
         s.filekey = enc.filekey
      end
   elseif s.filekey == nil and d.myseal_makes_keys and not ctx:exists(s.dir .. "/" .. d:key_file_name(s)) then
      s.filekey = s.dir .. "/filekey"
   end
   s.keyring, s.keyring_note = d:keyring_for(ctx, options.tree(ctx))
   s.key_file = s.dir .. "/" .. d:key_file_name(s)
   return s
end

-- The server's options -------------------------------------------------------------------------

--- Option values compare as the server shows them (ON/1/TRUE alike).
function M.same_value(a, b)
   local function norm(v)
      v = tostring(v):upper()
      if v == "1" or v == "TRUE" or v == "YES" then return "ON" end
      if v == "0" or v == "FALSE" or v == "NO" then return "OFF" end
      return v
   end
   return a ~= nil and b ~= nil and norm(a) == norm(b)
end

--- Every option this run wants in the server's option file:
-- `{ name, value, var = server variable or nil, dynamic = bool, add = accumulates, list = sep }`.
function M.wanted_options(ctx, s)
   local out = {}
   for _, o in ipairs(ctx.dialect:keyring_options(s)) do out[#out + 1] = o end
   for _, o in ipairs(ctx.dialect:encryption_options(s)) do out[#out + 1] = o end
   return out
end

-- Option names as the server compares them: '-' is '_', no case, no loose- prefix.
local function option_name(n)
   return (n:lower():gsub("-", "_"):gsub("^loose_", ""))
end

--- Is option `o` as wanted in the option tree? (an accumulating option: one of its values)
function M.option_ok(ctx, doc, o)
   local groups = ctx.dialect:server_groups()
   if o.add or o.list then
      for _, g in ipairs(groups) do
         for _, e in ipairs(doc:entries(g)) do
            if option_name(e.name) == option_name(o.name) and type(e.value) == "string" then
               for item in e.value:gmatch("[^" .. (o.list or ",") .. "]+") do
                  if item:gsub("%.so$", ""):gsub("%.dll$", "") == o.value:gsub("%.so$", "") then return true end
               end
            end
         end
      end
      return false
   end
   return M.same_value(doc:effective(groups, o.name), o.value)
end

--- The wanted options whose server variable differs from the wanted value now.
-- @return list of options
function M.stale_variables(ctx, s)
   local out = {}
   for _, o in ipairs(M.wanted_options(ctx, s)) do
      if o.var and not M.same_value(ctx:fact("variable", o.var), o.value) then out[#out + 1] = o end
   end
   return out
end

--- Does the server need a restart for encryption at rest (the keyring is not loaded, or an option
-- that is not dynamic differs)? Dynamic ones are set with SET GLOBAL instead.
-- @return boolean, the stale options
function M.needs_restart(ctx)
   local stale = M.stale_variables(ctx, M.settings(ctx))
   if not ctx:fact("keyring_active") then return true, stale end
   for _, o in ipairs(stale) do
      if not o.dynamic then return true, stale end
   end
   return false, stale
end

-- The tables -----------------------------------------------------------------------------------

--- The schemas in scope: a set of names, or nil for every application schema. A schema in
-- at_rest.schemas that the server does not have is bad input (exit status 2), not a run that
-- encrypts nothing.
-- @param ctx the step's context
-- @return set | nil
function M.scope(ctx)
   local list = ctx.params.at_rest.schemas
   if not list or #list == 0 then return nil end
   local present = {}
   for _, sch in ipairs(ctx:fact("schemas")) do present[sch.name] = true end
   local only, missing = {}, {}
   for _, sch in ipairs(list) do
      if ctx.dialect.system_schemas[sch] then
         ctx:reject("at_rest.schemas: %s is the server's own schema, not an application's (at-rest encrypts what "
            .. "can be of it in steps of their own): leave it out", sch)
      end
      if not present[sch] then missing[#missing + 1] = sch end
      only[sch] = true
   end
   if #missing > 0 then
      ctx:reject("at_rest.schemas: %s %s not exist on %s", table.concat(missing, ", "),
         #missing == 1 and "does" or "do", ctx.dialect:describe())
   end
   return only
end

--- The tables in scope and what the server says of their encryption.
-- @return todo (tables to encrypt, largest first), others (tables that cannot be encrypted here,
--   with `why`), all (every table in scope). In todo, a table in a general tablespace the server
--   encrypts as a whole has `tablespace` (encrypt_tablespace_sql does it), and an Aria table has
--   `aria` (the aria-tables step rebuilds it).
function M.table_state(ctx)
   local p, d = ctx.params.at_rest, ctx.dialect
   local only = M.scope(ctx)
   local enc = ctx:fact("table_encryption")
   local shared = ctx:fact("shared_tablespace_tables")
   local todo, others, all, aria = {}, {}, {}, nil
   for _, t in ipairs(ctx:fact("tables")) do
      if not only or only[t.schema] then
         all[#all + 1] = t
         local engine = (t.engine or ""):lower()
         local key = t.schema .. "\0" .. t.name
         local state, sp = enc[key], shared[key]
         if state and state.encrypted then
            t.encrypted, t.key_id = true, state.key_id
         elseif sp and engine == "innodb" then
            t.tablespace = sp.tablespace
            if sp.tablespace ~= "innodb_system" and d:encrypt_tablespace_sql(sp.tablespace) then
               todo[#todo + 1] = t
            else
               t.why = ("it lives in the shared tablespace %s, which %s cannot encrypt: move it to a tablespace of "
                  .. "its own (ALTER TABLE %s TABLESPACE=innodb_file_per_table), then run at-rest again")
                  :format(sp.tablespace, d:describe(), M.named(t))
               others[#others + 1] = t
            end
         elseif engine == "innodb" then
            todo[#todo + 1] = t
         elseif engine == "aria" and p.aria and d:aria_rebuild_sql(t) then
            if not aria then   -- the Aria tables the server has (the mysql schema's too), by key
               aria = {}
               for _, a in ipairs(ctx:fact("aria_tables")) do aria[a.schema .. "\0" .. a.name] = a end
            end
            local a = aria[key]
            if a and a.encrypted then
               t.encrypted = true
            elseif a and not a.page then
               t.why = ("Aria encrypts ROW_FORMAT=PAGE tables only: ALTER TABLE %s ROW_FORMAT=PAGE"):format(M.named(t))
               others[#others + 1] = t
            else
               t.aria = true
               todo[#todo + 1] = t
            end
         elseif engine == "myisam" and p.convert_myisam then
            t.convert = true
            todo[#todo + 1] = t
         else
            t.why = engine == "myisam"
               and "MyISAM cannot be encrypted (set at_rest.convert_myisam=true to convert it to InnoDB)"
               or ("the %s engine cannot be encrypted by InnoDB"):format(t.engine or "unknown")
            others[#others + 1] = t
         end
      end
   end
   return todo, others, all
end

--- A table's name as SQL writes it: `schema`.`name`.
function M.named(t) return sqltext.ident(t.schema) .. "." .. sqltext.ident(t.name) end

--- The bytes of a list of tables.
function M.total_bytes(list)
   local total = 0
   for _, t in ipairs(list) do total = total + t.bytes end
   return total
end

-- Encryption threads (MariaDB) -------------------------------------------------------------------

--- Waits for the encryption threads until `left()` (how many tablespaces are still to do) is 0,
-- with progress. The threads sometimes pass tablespaces over (seen on 10.11, about one start in
-- fifty): when nothing moves for a while, setting innodb_encrypt_tables again sends them back.
-- @param ctx the step's context
-- @param label what is waited for
-- @param left function() -> count still to do
-- @param total optional count in all (for the progress bar)
function M.wait_for_threads(ctx, label, left, total)
   local last, since = math.huge, sys.clock()
   ctx:wait(label, function()
      local n = left()
      if n < last then
         last, since = n, sys.clock()
      elseif n > 0 and sys.clock() - since > 3 then
         ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
         since = sys.clock()
      end
      total = math.max(total or 0, n)
      return n == 0, total - n, total
   end, { timeout = ctx.params.at_rest.wait_timeout, interval = 0.25 })
end

--- MariaDB's background threads: set them going and wait until every table in scope is encrypted.
-- @param ctx the step's context
-- @param todo the tables still plain
-- @param all every table in scope
function M.encrypt_in_background(ctx, todo, all)
   local p = ctx.params.at_rest
   ctx:sql("SET GLOBAL innodb_encryption_rotation_iops = ?", math.tointeger(p.rotation_iops))
   ctx:sql("SET GLOBAL innodb_encryption_threads = ?", math.tointeger(p.parallel))
   -- setting it again makes the threads look at every tablespace (MDEV-14398)
   ctx:sql("SET GLOBAL innodb_encrypt_tables = ON")
   -- what is left of `todo`, by the one fact that changes (the tables' own state is asked at the end)
   local left = todo
   local label = ("%s encrypted by %s"):format(text_count(#todo, "table"), text_count(p.parallel, "background thread"))
   M.wait_for_threads(ctx, label, function()
      local enc, still = ctx:fact("table_encryption"), {}
      for _, t in ipairs(left) do
         local e = enc[t.schema .. "\0" .. t.name]
         if not (e and e.encrypted) then still[#still + 1] = t end
      end
      left = still
      return #left
   end, #all)
end

-- The query logs -------------------------------------------------------------------------------

-- A log file the server names, as a path (relative names are in the datadir).
local function log_path(ctx, file)
   if not file or file == "" then return nil end
   if file:match("^/") then return file end
   return (ctx:fact("variable", "datadir") or ""):gsub("/?$", "/") .. file
end

-- What the query logs are and where they go: { { name, on, file } }, the output, the log tables' rows.
local function query_logs(ctx)
   local q = ctx:fact("query_logs")
   return { { name = "general_log", file_var = "general_log_file", on = q.general.on, base = "general.log",
              file = log_path(ctx, q.general.file) },
            { name = "slow_query_log", file_var = "slow_query_log_file", on = q.slow.on, base = "slow.log",
              file = log_path(ctx, q.slow.file) } }, q
end

--- at_rest.query_log_dir when at_rest.query_logs=move (refused when missing or relative), else nil.
function M.query_log_dir(ctx)
   local p = ctx.params.at_rest
   if p.query_logs ~= "move" then return nil end
   local dir = p.query_log_dir
   if not dir then ctx:reject("at_rest.query_logs=move needs at_rest.query_log_dir: the directory they go to") end
   absolute(ctx, "at_rest.query_log_dir", dir)
   return dir
end

--- The query-logs step's check: what holds statements in plain text is listed (the files and the
-- log tables); in report mode the logs that are on are too, off and move say whether the server is
-- so (and its option file too).
function M.query_logs_check(ctx)
   local p = ctx.params.at_rest
   local logs, q = query_logs(ctx)
   local plain = {}
   for _, l in ipairs(logs) do
      if l.file and sys.stat(l.file) then plain[#plain + 1] = l.file end
   end
   for name, n in pairs(q.table_rows) do
      if n > 0 then plain[#plain + 1] = ("mysql.%s (%s, a CSV table)"):format(name, text_count(n, "row")) end
   end
   table.sort(plain)
   if #plain > 0 then
      ctx:warn("statements in plain text (review them, then remove or truncate them): %s", table.concat(plain, ", "))
   end
   local doc = options.tree(ctx)
   local groups = ctx.dialect:server_groups()
   local function in_file(name, want) return doc and M.same_value(doc:effective(groups, name), want) end
   if p.query_logs == "off" then
      for _, l in ipairs(logs) do
         if l.on or not in_file(l.name, "OFF") then return false, l.name .. " is to turn off" end
      end
   elseif p.query_logs == "move" then
      local dir = M.query_log_dir(ctx)
      for _, l in ipairs(logs) do
         local want = dir:gsub("/+$", "") .. "/" .. l.base
         if l.file ~= want or not in_file(l.file_var, want) then
            return false, ("%s is to move to %s"):format(l.name, want)
         end
      end
      if q.output ~= "FILE" and q.output ~= "NONE" then return false, "log_output is to be FILE" end
   else
      local active = {}
      for _, l in ipairs(logs) do
         if l.on then
            active[#active + 1] = ("%s (%s)"):format(l.name, q.output:find("TABLE") and "to a table" or l.file)
         end
      end
      if #active > 0 then
         ctx:warn("on, and never encrypted: %s (at_rest.query_logs=off turns them off, =move writes them elsewhere)",
            table.concat(active, ", "))
      end
   end
   return true
end

--- The query-logs step's apply: turns the logs off, or points them at at_rest.query_log_dir (FILE output).
function M.query_logs_apply(ctx)
   local p = ctx.params.at_rest
   local logs = query_logs(ctx)
   local edits = {}
   if p.query_logs == "off" then
      for _, l in ipairs(logs) do
         ctx:sql(("SET GLOBAL %s = OFF"):format(l.name))
         edits[#edits + 1] = { name = l.name, value = "OFF" }
      end
   elseif p.query_logs == "move" then
      local dir = p.query_log_dir:gsub("/+$", "")
      ctx:mkdir(dir, { mode = tonumber("750", 8), owner = ctx.params.server.user })
      ctx:sql("SET GLOBAL log_output = 'FILE'")
      edits[#edits + 1] = { name = "log_output", value = "FILE" }
      for _, l in ipairs(logs) do
         ctx:sql(("SET GLOBAL %s = ?"):format(l.file_var), dir .. "/" .. l.base)
         edits[#edits + 1] = { name = l.file_var, value = dir .. "/" .. l.base }
      end
   end
   options.write(ctx, edits)
end

-- Key material ---------------------------------------------------------------------------------

--- The plain text of the MariaDB key file (decrypted with the filekey when there is one), or nil
-- when there is no key file.
function M.key_text(ctx, s)
   local data = ctx:read_file(s.key_file)
   if not data or not s.filekey then return data end
   local password = ctx:read_file(s.filekey)
   if not password then
      ctx:fail("the key file %s is encrypted, and its filekey %s is missing", s.key_file, s.filekey)
   end
   local text, err = require("myseal.keyring").decrypt(data, password)
   if not text then ctx:fail("cannot decrypt %s with the filekey %s: %s", s.key_file, s.filekey, err) end
   return text
end

--- The key file's content as written: encrypted with the filekey when there is one.
function M.key_data(ctx, s, text)
   if not s.filekey then return text end
   local password = ctx:read_file(s.filekey)
   if not password then
      if ctx.planning then return "(the key file, encrypted with the filekey)" end
      ctx:fail("the filekey %s is missing", s.filekey)
   end
   return require("myseal.keyring").encrypt(text, password)
end

--- The ctx:write_file options of key material: 0600, the server's user's, a secret.
function M.key_file_opts(s)
   return { mode = tonumber("600", 8), owner = s.user, secret = true, key_material = true }
end

return M
