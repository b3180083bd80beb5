-- at-rest.lua: encryption at rest for MySQL 5.7 / 8.0 / 8.4 and MariaDB 10.x / 11.x.
--
-- Preflight (engines, free disk, replicas, an existing keyring), key material, a verified
-- backup of it, the server's option file and one restart, then every table encrypted
-- (largest first, resumable, with progress), and a check against the server's own tables.
-- Facts and pitfalls: DOMAIN.md §1, §2 and §7. Differences between servers are in the
-- dialect table below; the steps never test the flavour.
local runbook = require "myseal.runbook"
local keyring = require "myseal.keyring"
local sqltext = require "myseal.sqltext"
local pki = require "pki"
local sys = require "sys"

local OCTAL_750, OCTAL_600 = tonumber("750", 8), tonumber("600", 8)

-- What this run works with, from the parameters and the dialect.
-- MySQL 8.4's plugin_dir, where the component's configuration goes.
local function plugin_dir(ctx)
   local dir = ctx.params.keyring.plugin_dir or ctx:fact("variable", "plugin_dir") or "/usr/lib/mysql/plugin"
   return (dir:gsub("/+$", ""))
end

local function settings(ctx)
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
      method = p.at_rest.method, threads = p.at_rest.parallel,
      new_tables = p.at_rest.new_tables, logs = p.at_rest.logs, binlog = p.at_rest.binlog,
      temp = p.at_rest.temp, user = p.server.user,
   }
   s.key_file = dir .. "/" .. d:key_file_name(s)
   return s
end

-- Option values compare as the server shows them (ON/1/TRUE alike).
local function same_value(a, b)
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
local function wanted_options(ctx, s)
   local out = {}
   for _, o in ipairs(ctx.dialect:keyring_options(s)) do out[#out + 1] = o end
   for _, o in ipairs(ctx.dialect:encryption_options(s)) do out[#out + 1] = o end
   return out
end

-- The server's option files, includes followed (or nil when there is no option file).
local function option_tree(ctx)
   local path = ctx.params.server.cnf
   if not path then return nil end
   local cnf = require "cnf"
   if not ctx:exists(path) then return assert(cnf.parse("", path)) end
   local doc, err = cnf.load(path, { includes = true })
   if not doc then ctx:fail("%s", err) end
   return doc
end

-- Option names as the server compares them: '-' is '_', no case, no loose- prefix.
local function option_name(n)
   return (n:lower():gsub("-", "_"):gsub("^loose_", ""))
end

-- Is option o as wanted in the option tree? (an accumulating option: one of its values)
local function option_ok(ctx, doc, o)
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
   return same_value(doc:effective(groups, o.name), o.value)
end

-- The tables in scope and what the server says of their encryption.
-- Returns: todo (list of tables to encrypt, largest first), others (tables that cannot be
-- encrypted here, with why), all (every table in scope)
local function table_state(ctx)
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
local function done(ok, why)
   if ok then return true end
   return false, why
end

local function bytes(n)
   if n >= 1 << 30 then return ("%.1f GB"):format(n / (1 << 30)) end
   if n >= 1 << 20 then return ("%.1f MB"):format(n / (1 << 20)) end
   return ("%d KB"):format(n // 1024)
end

local function named(t) return sqltext.ident(t.schema) .. "." .. sqltext.ident(t.name) end

-- ------------------------------------------------------------------------------------------
-- Dialects: what MySQL and MariaDB do differently for encryption at rest.

local SHOW_SQL = [[
   SELECT COUNT(*) FROM INFORMATION_SCHEMA.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%']]

local dialect = {
   base = {
      -- replicas connected to this server (their binlog dump threads)
      facts = {
         replicas = function(_, ctx) return math.tointeger(tonumber(ctx:query(SHOW_SQL)[1][1])) or 0 end,
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
      system_tablespace_sql = function(d)
         return d:at_least("8.0.16") and "ALTER TABLESPACE mysql ENCRYPTION='Y'" or false
      end,
      facts = {
         keyring_active = function(_, ctx) return ctx:fact("plugin", "keyring_file") == "ACTIVE" end,
         keyring_file = function(_, ctx) return ctx:fact("variable", "keyring_file_data") end,
         keyring_has_key = function(d, ctx)
            local s = settings(ctx)
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
      ["at_rest.wait_timeout"] = { type = "integer", default = 86400,
         doc = "background method: seconds to wait for the encryption threads" },
   },
   dialect = dialect,
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
            local groups = { d.encryption_group }
            for _, g in ipairs(d:server_groups()) do groups[#groups + 1] = g end
            local edits, order = {}, {}
            for _, o in ipairs(wanted_options(ctx, s)) do
               if not option_ok(ctx, doc, o) then
                  local file, group = doc:target(o.name, groups)
                  if o.add then group = d.encryption_group end
                  if not edits[file] then edits[file] = {}; order[#order + 1] = file end
                  local current = o.list and doc:effective(d:server_groups(), o.name)
                  if type(current) == "string" and current ~= "" then
                     o = { name = o.name, value = current .. o.list .. o.value }
                  end
                  table.insert(edits[file], { o = o, group = group })
               end
            end
            for _, file in ipairs(order) do
               ctx:edit_cnf(file, function(f)
                  for _, e in ipairs(edits[file]) do
                     if e.o.add then f:add(e.group, e.o.name, e.o.value) else f:set(e.group, e.o.name, e.o.value) end
                  end
               end)
            end
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
            local list = {}
            for _, t in ipairs(todo) do
               list[#list + 1] = { sql = d:encrypt_sql(t), weight = math.max(t.bytes, 1) }
            end
            ctx:sql_parallel(list, { parallel = p.parallel, label = "tables", unit = "bytes" })
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
