--- Shared by the at-rest and rotate-master-key runbooks: their settings, the option-file
-- helpers, the state of the tables, and the dialect entries for encryption at rest
-- (what MySQL 5.7 / 8.0 / 8.4 and MariaDB do differently). DOMAIN.md §1, §2, §7.
-- @module myseal.atrest
local sqltext = require "myseal.sqltext"
local sys = require "sys"

local M = {}


-- What this run works with, from the parameters and the dialect.
-- MySQL 8.4's plugin_dir, where the component's configuration goes.
function M.plugin_dir(ctx)
   local dir = ctx.params.keyring.plugin_dir or ctx:fact("variable", "plugin_dir") or "/usr/lib/mysql/plugin"
   return (dir:gsub("/+$", ""))
end

function M.settings(ctx)
   local p, d = ctx.params, ctx.dialect
   local dir = p.keyring.dir
   if not dir then
      -- a sandbox keeps its keyring beside its datadir; a real server where DOMAIN.md says
      if ctx.target.kind == "sandbox" and p.server.datadir then
         dir = p.server.datadir:gsub("/+$", ""):gsub("/[^/]+$", "") .. "/keyring"
      else
         dir = d.keyring_dir_default
      end
   end
   local s = {
      dir = dir, filekey = p.keyring.filekey, algorithm = p.keyring.algorithm,
      method = p.at_rest.method, threads = p.at_rest.parallel, rotation_iops = p.at_rest.rotation_iops,
      new_tables = p.at_rest.new_tables, logs = p.at_rest.logs, binlog = p.at_rest.binlog,
      temp = p.at_rest.temp, user = p.server.user,
   }
   s.key_file = dir .. "/" .. d:key_file_name(s)
   return s
end

-- Option values compare as the server shows them (ON/1/TRUE alike).
function M.same_value(a, b)
   local function norm(v)
      v = tostring(v):upper()
      if v == "1" or v == "TRUE" or v == "YES" then return "ON" end
      if v == "0" or v == "FALSE" or v == "NO" then return "OFF" end
      return v
   end
   return a ~= nil and b ~= nil and norm(a) == norm(b)
end

-- Every option this run wants in the server's option file:
-- { name, value, var = server variable or nil, dynamic = bool, add = accumulates, list = sep }
function M.wanted_options(ctx, s)
   local out = {}
   for _, o in ipairs(ctx.dialect:keyring_options(s)) do out[#out + 1] = o end
   for _, o in ipairs(ctx.dialect:encryption_options(s)) do out[#out + 1] = o end
   return out
end

-- The server's option files, includes followed (or nil when there is no option file).
M.option_tree = require("myseal.options").tree

-- Option names as the server compares them: '-' is '_', no case, no loose- prefix.
function M.option_name(n)
   return (n:lower():gsub("-", "_"):gsub("^loose_", ""))
end

-- Is option o as wanted in the option tree? (an accumulating option: one of its values)
function M.option_ok(ctx, doc, o)
   local groups = ctx.dialect:server_groups()
   if o.add or o.list then
      for _, g in ipairs(groups) do
         for _, e in ipairs(doc:entries(g)) do
            if M.option_name(e.name) == M.option_name(o.name) and type(e.value) == "string" then
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

-- The tables in scope and what the server says of their encryption.
-- Returns: todo (list of tables to encrypt, largest first), others (tables that cannot be
-- encrypted here, with why), all (every table in scope)
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
            t.encrypted = true
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

-- A check's answer: done, or not done and why.
function M.done(ok, why)
   if ok then return true end
   return false, why
end

function M.bytes(n)
   if n >= 1 << 30 then return ("%.1f GB"):format(n / (1 << 30)) end
   if n >= 1 << 20 then return ("%.1f MB"):format(n / (1 << 20)) end
   return ("%d KB"):format(n // 1024)
end

function M.named(t) return sqltext.ident(t.schema) .. "." .. sqltext.ident(t.name) end

-- ------------------------------------------------------------------------------------------
-- Dialects: what MySQL and MariaDB do differently for encryption at rest.

local REPLICAS_SQL = [[
   SELECT COUNT(*) FROM INFORMATION_SCHEMA.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%']]

M.dialect = {
   base = {
      -- replicas connected to this server (their binlog dump threads)
      facts = {
         replicas = function(_, ctx) return math.tointeger(tonumber(ctx:query(REPLICAS_SQL)[1][1])) or 0 end,
      },
      described = {
         replicas = function(_, desc) return desc.replicas or 0 end,
         keyring_active = function(d, desc) return (desc.plugins or {})[d.keyring_plugin] == "ACTIVE" end,
         keyring_file = function(d, desc) return (desc.variables or {})[d.keyring_file_variable] end,
         keyring_has_key = false,
         table_encryption = function(_, desc)
            local out = {}
            for _, t in ipairs(desc.tables or {}) do
               out[t.schema .. "\0" .. t.name] = { encrypted = t.encrypted == true }
            end
            return out
         end,
         system_encrypted = function(_, desc) return desc.system_encrypted == true end,
         disk_free = function(_, desc) return desc.disk_free end,
      },
      disk_margin_note = "",
   },

   mariadb = {
      keyring_dir_default = "/etc/mysql/encryption",
      keyring_plugin = "file_key_management",
      keyring_file_variable = "file_key_management_filename",
      myseal_makes_keys = true,
      supports_background = true,
      encryption_group = "mariadb",
      key_file_name = function(_, s) return s.filekey and "keyfile.enc" or "keyfile" end,
      key_files = function(_, s) return { s.key_file, s.filekey } end,
      keyring_options = function(_, s)
         local out = {
            { name = "plugin_load_add", value = "file_key_management", add = true },
            { name = "file_key_management_filename", value = s.key_file, var = "file_key_management_filename" },
            { name = "file_key_management_encryption_algorithm", value = s.algorithm,
              var = "file_key_management_encryption_algorithm" },
         }
         if s.filekey then
            out[#out + 1] = { name = "file_key_management_filekey", value = "FILE:" .. s.filekey }
         end
         return out
      end,
      encryption_options = function(_, s)
         local out = {}
         if s.new_tables or s.method == "background" then
            out[#out + 1] = { name = "innodb_encrypt_tables", value = "ON", var = "innodb_encrypt_tables", dynamic = true }
         end
         if s.method == "background" then
            out[#out + 1] = { name = "innodb_encryption_threads", value = tostring(s.threads),
                              var = "innodb_encryption_threads", dynamic = true }
            -- the default, 100 pages a second, makes a large database take days
            out[#out + 1] = { name = "innodb_encryption_rotation_iops", value = tostring(s.rotation_iops),
                              var = "innodb_encryption_rotation_iops", dynamic = true }
         end
         if s.logs then
            out[#out + 1] = { name = "innodb_encrypt_log", value = "ON", var = "innodb_encrypt_log" }
         end
         if s.temp then
            out[#out + 1] = { name = "innodb_encrypt_temporary_tables", value = "ON",
                              var = "innodb_encrypt_temporary_tables" }
            out[#out + 1] = { name = "encrypt_tmp_files", value = "ON", var = "encrypt_tmp_files" }
            out[#out + 1] = { name = "encrypt_tmp_disk_tables", value = "ON", var = "encrypt_tmp_disk_tables",
                              dynamic = true }
         end
         if s.binlog then
            out[#out + 1] = { name = "encrypt_binlog", value = "ON", var = "encrypt_binlog" }
         end
         return out
      end,
      -- ALTER TABLE ... ENCRYPTED=YES runs INPLACE and online; a MyISAM table converts in the same statement
      encrypt_sql = function(d, t)
         return d:encrypt_table_sql(t.schema, t.name) .. (t.convert and " ENGINE=InnoDB" or "")
      end,
      master_key_sql = false,
      system_tablespace_sql = function() return false end,
      -- rotation: a new key id in the key file, then the tables rebuilt with it
      rotates_by_key_id = true,
      rotate_sql = function() return {} end,
      facts = {
         keyring_active = function(_, ctx) return ctx:fact("plugin", "file_key_management") == "ACTIVE" end,
         keyring_file = function(_, ctx) return ctx:fact("variable", "file_key_management_filename") end,
         keyring_has_key = function() return true end,
         -- per table: every tablespace (partitions too) encrypted, from INNODB_TABLESPACES_ENCRYPTION
         -- (CREATE_OPTIONS says nothing of background encryption). Tablespace names are in the
         -- server's filename encoding: the server decodes them (CONVERT ... USING filename).
         table_encryption = function(_, ctx)
            local rows = ctx:query([[
               SELECT CONVERT(CONVERT(CAST(SUBSTRING_INDEX(t.NAME, '/', 1) AS BINARY) USING filename) USING utf8mb4),
                      CONVERT(CONVERT(CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(t.NAME, '/', -1), '#', 1) AS BINARY)
                              USING filename) USING utf8mb4),
                      COUNT(*),
                      SUM(e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0 AND e.ROTATING_OR_FLUSHING = 0),
                      MIN(e.CURRENT_KEY_ID)
               FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
               LEFT JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
               WHERE t.SPACE > 0 AND t.NAME LIKE '%/%'
               GROUP BY 1, 2]])
            local out = {}
            for _, r in ipairs(rows) do
               local n, enc = tonumber(r[3]) or 0, tonumber(sqltext.value(r[4]) or 0) or 0
               out[r[1] .. "\0" .. r[2]] = { encrypted = n > 0 and enc == n,
                                            key_id = math.tointeger(tonumber(sqltext.value(r[5]) or "")) }
            end
            return out
         end,
         disk_free = function(_, ctx)
            local datadir = ctx:fact("variable", "datadir")
            return datadir and sys.df(datadir) or nil
         end,
      },
   },

   mysql = {
      keyring_dir_default = "/var/lib/mysql-keyring",
      keyring_plugin = "keyring_file",
      keyring_file_variable = "keyring_file_data",
      myseal_makes_keys = false,  -- the server writes the keyring file itself
      supports_background = false,
      encryption_group = "mysqld",
      key_file_name = function() return "keyring" end,
      key_files = function(_, s) return { s.key_file } end,
      keyring_options = function(_, s)
         return {
            -- early-plugin-load is one value, a ';' list: keyring_file.so joins what is there
            { name = "early-plugin-load", value = "keyring_file.so", list = ";" },
            { name = "keyring_file_data", value = s.key_file, var = "keyring_file_data" },
         }
      end,
      encryption_options = function(d, s)
         local out = {}
         if s.new_tables and d:at_least("8.0.16") then
            out[#out + 1] = { name = "default_table_encryption", value = "ON", var = "default_table_encryption",
                              dynamic = true }
         end
         if s.logs and d:at_least("8.0.1") then
            out[#out + 1] = { name = "innodb_redo_log_encrypt", value = "ON", var = "innodb_redo_log_encrypt",
                              dynamic = true }
            out[#out + 1] = { name = "innodb_undo_log_encrypt", value = "ON", var = "innodb_undo_log_encrypt",
                              dynamic = true }
         end
         if s.binlog and d:at_least("8.0.14") then
            out[#out + 1] = { name = "binlog_encryption", value = "ON", var = "binlog_encryption", dynamic = true }
         end
         if s.temp and d:at_least("8.0.16") then
            out[#out + 1] = { name = "innodb_temp_tablespace_encrypt", value = "ON",
                              var = "innodb_temp_tablespace_encrypt", dynamic = true }
         end
         return out
      end,
      -- a COPY rebuild: writes to the table wait for it, and it needs the table's size in free disk
      encrypt_sql = function(d, t)
         return d:encrypt_table_sql(t.schema, t.name) .. (t.convert and ", ENGINE=InnoDB" or "")
      end,
      master_key_sql = "ALTER INSTANCE ROTATE INNODB MASTER KEY",
      -- rotation: new master keys; tablespace keys are re-encrypted, no table is rebuilt
      rotates_by_key_id = false,
      rotate_sql = function(d, s)
         local out = { "ALTER INSTANCE ROTATE INNODB MASTER KEY" }
         if s.binlog and d:at_least("8.0.16") then out[#out + 1] = "ALTER INSTANCE ROTATE BINLOG MASTER KEY" end
         return out
      end,
      system_tablespace_sql = function(d)
         return d:at_least("8.0.16") and "ALTER TABLESPACE mysql ENCRYPTION='Y'" or false
      end,
      facts = {
         keyring_active = function(_, ctx) return ctx:fact("plugin", "keyring_file") == "ACTIVE" end,
         keyring_file = function(_, ctx) return ctx:fact("variable", "keyring_file_data") end,
         keyring_has_key = function(d, ctx)
            local s = M.settings(ctx)
            local data = ctx:read_file(s.key_file)
            return data ~= nil and #data > 0
         end,
         table_encryption = function(_, ctx)
            local out = {}
            for _, r in ipairs(ctx:query([[
               SELECT TABLE_SCHEMA, TABLE_NAME, CREATE_OPTIONS FROM INFORMATION_SCHEMA.TABLES
               WHERE TABLE_TYPE = 'BASE TABLE']])) do
               local opts = sqltext.value(r[3]) or ""
               out[r[1] .. "\0" .. r[2]] = { encrypted = opts:upper():find("ENCRYPTION=.Y.") ~= nil }
            end
            return out
         end,
         system_encrypted = function(_, ctx)
            local rows = ctx:query("SELECT ENCRYPTION FROM INFORMATION_SCHEMA.INNODB_TABLESPACES WHERE NAME = 'mysql'")
            return rows[1] ~= nil and rows[1][1] == "Y"
         end,
         disk_free = function(_, ctx)
            local datadir = ctx:fact("variable", "datadir")
            return datadir and sys.df(datadir) or nil
         end,
      },
   },

   -- 8.4: the keyring_file plugin is gone; the component is loaded from a manifest next to
   -- mysqld and configured by a JSON file in plugin_dir (both keys are required).
   ["mysql-8.4"] = {
      keyring_plugin = "component_keyring_file",
      key_file_name = function() return "component_keyring_file" end,
      keyring_options = function() return {} end,
      component_files = function(_, s, p, plugin_dir)
         return {
            { path = (p.keyring.manifest_dir or "/usr/sbin") .. "/mysqld.my",
              data = '{\n  "components": "file://component_keyring_file"\n}\n' },
            { path = plugin_dir .. "/component_keyring_file.cnf",
              data = ('{\n  "path": "%s",\n  "read_only": false\n}\n'):format(s.key_file) },
         }
      end,
      facts = {
         keyring_active = function(_, ctx)
            local rows = ctx:query([[SELECT STATUS_VALUE FROM performance_schema.keyring_component_status
                                     WHERE STATUS_KEY = 'Component_status']])
            return rows[1] ~= nil and rows[1][1] == "Active"
         end,
         keyring_file = function(_, ctx)
            local rows = ctx:query([[SELECT STATUS_VALUE FROM performance_schema.keyring_component_status
                                     WHERE STATUS_KEY = 'Data_file']])
            return rows[1] and rows[1][1] or nil
         end,
      },
      described = {
         keyring_active = function(_, desc) return (desc.components or {}).component_keyring_file == "Active" end,
      },
   },
}

-- ------------------------------------------------------------------------------------------

return M
