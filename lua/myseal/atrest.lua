--- Shared by the at-rest and rotate-master-key runbooks: their parameters (one definition
-- each), the settings a run works with, the server options encryption at rest wants, and the
-- state of the tables. What the servers do differently is in the dialects
-- (lua/myseal/dialect/); docs/servers.md has the facts.
-- @module myseal.atrest
local sqltext = require "myseal.sqltext"

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
   ["keyring.key_count"] = { type = "integer", default = 1,
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
      doc = "this server has replicas and every one of them has its keyring already: an override, for replicas "
         .. "the check account cannot reach (otherwise each is asked, [replication])" },
   ["at_rest.disk_margin"] = { type = "integer", default = 20,
      doc = "free disk wanted beyond the largest table, in percent of it" },
   ["at_rest.new_tables"] = { type = "boolean", default = true,
      doc = "new tables are encrypted by default (MySQL 8.0.16+ default_table_encryption, MariaDB innodb_encrypt_tables)" },
   ["at_rest.logs"] = { type = "boolean", default = true,
      doc = "encrypt the redo and undo logs (MySQL 8.0+) or the redo log (MariaDB)" },
   ["at_rest.binlog"] = { type = "boolean", default = true,
      doc = "encrypt the binary and relay logs (MySQL 8.0.14+ binlog_encryption, MariaDB encrypt_binlog); "
         .. "rotate-master-key: rotate the binary log's master key too (MySQL 8.0.16+)" },
   ["at_rest.temp"] = { type = "boolean", default = true,
      doc = "encrypt temporary tables and files (MySQL 8.0.16+, MariaDB)" },
   ["at_rest.system_tablespace"] = { type = "boolean", default = true,
      doc = "MySQL 8.0.16+: encrypt the mysql system tablespace" },
   ["at_rest.rotation_iops"] = { type = "integer", default = 10000,
      doc = "background method (MariaDB): innodb_encryption_rotation_iops, pages a second per thread" },
   ["at_rest.wait_timeout"] = { type = "integer", default = 86400,
      doc = "background method: seconds to wait for the encryption threads" },
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

--- MySQL 8.4's plugin_dir, where the component's configuration goes.
function M.plugin_dir(ctx)
   local dir = ctx.params.keyring.plugin_dir or ctx:fact("variable", "plugin_dir") or "/usr/lib/mysql/plugin"
   return (dir:gsub("/+$", ""))
end

--- The parameters `settings` and `table_state` read: a runbook using them declares these.
M.SETTINGS = { "keyring.dir", "keyring.use_filekey", "keyring.filekey", "keyring.algorithm", "at_rest.method",
               "at_rest.parallel", "at_rest.rotation_iops", "at_rest.new_tables", "at_rest.logs", "at_rest.binlog", "at_rest.temp",
               "at_rest.schemas", "at_rest.convert_myisam" }

--- The settings of this run: where the key material is, which method and options.
-- @param ctx the step's context
-- @return `{ dir, key_file, filekey, algorithm, method, threads, rotation_iops, new_tables, logs, binlog,
--   temp, user }`
function M.settings(ctx)
   local p, d = ctx.params, ctx.dialect
   local k, a = p.keyring, p.at_rest
   local s = {
      dir = k.dir or ctx:default_dir("keyring") or d.keyring_dir_default,
      filekey = k.filekey, algorithm = k.algorithm, method = a.method, threads = a.parallel,
      rotation_iops = a.rotation_iops, new_tables = a.new_tables, logs = a.logs, binlog = a.binlog,
      temp = a.temp, user = p.server.user,
   }
   -- MariaDB: a new key file is encrypted with a filekey unless the profile says use_filekey = false;
   -- a plain key file already there stays plain (myseal never rewrites key material)
   if not k.use_filekey then
      s.filekey = nil
   elseif s.filekey == nil and d.myseal_makes_keys and not ctx:exists(s.dir .. "/" .. d:key_file_name(s)) then
      s.filekey = s.dir .. "/filekey"
   end
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

--- The server's option files, includes followed (or nil when there is no option file).
M.option_tree = require("myseal.options").tree

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

--- The tables in scope and what the server says of their encryption.
-- @return todo (tables to encrypt, largest first), others (tables that cannot be encrypted here,
--   with `why`), all (every table in scope)
function M.table_state(ctx)
   local p = ctx.params.at_rest
   local only
   if p.schemas and #p.schemas > 0 then
      only = {}
      for _, sch in ipairs(p.schemas) do only[sch] = true end
   end
   local enc = ctx:fact("table_encryption")
   local todo, others, all = {}, {}, {}
   for _, t in ipairs(ctx:fact("tables")) do
      if not only or only[t.schema] then
         all[#all + 1] = t
         local engine = (t.engine or ""):lower()
         local state = enc[t.schema .. "\0" .. t.name]
         if state and state.encrypted then
            t.encrypted, t.key_id = true, state.key_id
         elseif engine == "innodb" then
            todo[#todo + 1] = t
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

-- Key material ---------------------------------------------------------------------------------

--- The plain text of the MariaDB key file (decrypted with the filekey when there is one), or nil
-- when there is no key file.
function M.key_text(ctx, s)
   local data = ctx:read_file(s.key_file)
   if not data or not s.filekey then return data end
   local password = ctx:read_file(s.filekey)
   if not password then ctx:fail("the key file %s is encrypted, and its filekey %s is missing", s.key_file, s.filekey) end
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

return M
