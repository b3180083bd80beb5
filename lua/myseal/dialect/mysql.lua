--- Oracle MySQL (and Percona Server): 5.7, 8.0, 8.4 (and later releases, served by 8.4), by
-- topic. What the base dialect does not say for MySQL is here; docs/servers.md has the facts.
-- @module myseal.dialect.mysql
local sqltext = require "myseal.sqltext"

local base = require("myseal.dialect.base")[1][3]

local mysql = {
   product = "MySQL",
}
local facts, described = {}, {}
mysql.facts, mysql.described = facts, described

-- The server -----------------------------------------------------------------------------------

--- The options naming files the server reads: the TLS files, and the keyring file it writes.
function mysql.path_options(d)
   local out = base.path_options(d)
   out[#out + 1] = { name = "keyring_file_data", made_by_server = true }
   return out
end

--- Option groups the server reads: [mysqld], [server], [mysqld-X.Y].
function mysql.server_groups(d) return { "mysqld", "server", ("mysqld-%d.%d"):format(d.major, d.minor) } end

-- At rest: the keyring_file plugin (5.7.11 - 8.0), component_keyring_file (8.0.24+), a COPY
-- rebuild per table ----------------------------------------------------------------------------

mysql.keyring = "keyring_file"
mysql.keyring_variable = "keyring_file_data"
mysql.keyring_dir_default = "/var/lib/mysql-keyring"
--- The server writes its keyring files itself, into a directory only its user may enter.
mysql.keyring_dir_mode = tonumber("700", 8)
--- The server writes the keyring file itself: myseal makes only its directory.
mysql.myseal_makes_keys = false
mysql.supports_background = false
--- Rotation: new master keys; tablespace keys are re-encrypted, no table is rebuilt.
mysql.rotates_by_key_id = false
mysql.master_key_sql = "ALTER INSTANCE ROTATE INNODB MASTER KEY"

local COMPONENT = "component_keyring_file"

-- The option tree's early-plugin-load when it loads the keyring_file plugin, else nil.
local function plugin_configured(d, doc)
   local epl = doc and doc:effective(d:server_groups(), "early-plugin-load")
   if type(epl) == "string" and epl:find("keyring_file", 1, true) then return epl end
   return nil
end

--- 5.7.11 - 8.0.23: the keyring_file plugin. 8.0.24+: component_keyring_file for a new setup; a
-- server that has the plugin (active, or in its option files) keeps it, and the note names the
-- migration (the two keyrings' files differ: it is a key migration, not a rename).
function mysql.keyring_for(d, ctx, doc)
   if not d:at_least("8.0.24") then return "keyring_file" end
   if ctx:fact("plugin", "keyring_file") == "ACTIVE" or plugin_configured(d, doc) then
      local file = ctx:fact("keyring_file") or "<keyring_file_data>"
      return "keyring_file", ("%s keeps the keyring_file plugin it has (deprecated since 8.0.34, gone in 8.4); "
         .. "component_keyring_file replaces it by a key migration, the server stopped, as its own user: "
         .. "mysqld --defaults-file=<my.cnf> --keyring-migration-to-component "
         .. "--keyring-migration-source=keyring_file.so --keyring_file_data=%s "
         .. "--keyring-migration-destination=component_keyring_file.so, then the manifest mysqld.my and "
         .. "component_keyring_file.cnf, and early-plugin-load removed"):format(d:describe(), file)
   end
   return COMPONENT
end

--- 5.7 before 5.7.11 has no keyring_file plugin.
function mysql.keyring_unsupported(d)
   if d:at_least("5.7.11") then return nil end
   return ("%s has no keyring: the keyring_file plugin came with MySQL 5.7.11; upgrade first"):format(d:describe())
end

function mysql.key_file_name(_, s) return s.keyring == COMPONENT and COMPONENT or "keyring" end
function mysql.key_files(_, s) return { s.key_file } end

function mysql.keyring_options(_, s)
   if s.keyring == COMPONENT then return {} end
   return {
      -- early-plugin-load is one value, a ';' list: keyring_file.so joins what is there
      { name = "early-plugin-load", value = "keyring_file.so", list = ";" },
      { name = "keyring_file_data", value = s.key_file, var = "keyring_file_data" },
   }
end

--- The component's manifest beside mysqld (it names no secret: 0644) and its configuration in
-- plugin_dir (the keyring's path: the server's user only, 0600). Both keys of the configuration
-- are required.
function mysql.component_files(_, s, p, plugin_dir)
   if s.keyring ~= COMPONENT then return {} end
   return {
      { path = (p.keyring.manifest_dir or "/usr/sbin") .. "/mysqld.my", mode = tonumber("644", 8),
        data = '{\n  "components": "file://component_keyring_file"\n}\n',
        conflict = function(old)
           if not old:find(COMPONENT, 1, true) then
              return "names other components: add component_keyring_file to it by hand"
           end
        end },
      { path = plugin_dir .. "/component_keyring_file.cnf", mode = tonumber("600", 8), owner = s.user,
        data = ('{\n  "path": "%s",\n  "read_only": false\n}\n'):format(s.key_file),
        -- another path is another keyring: the one there would be left, a new empty one used
        conflict = function(old)
           local path = old:match('"path"%s*:%s*"([^"]*)"')
           if path ~= s.key_file then
              return ("points the component at the keyring %s: pointing it at %s would start an empty keyring and "
                 .. "leave encrypted tables unreadable; set keyring.dir to its directory")
                 :format(path or "(no path)", s.key_file)
           end
        end },
   }
end

--- The plugin configured next to the component this run sets up: refused (one keyring at a time).
function mysql.keyring_conflict(d, doc, s)
   local epl = s and s.keyring == COMPONENT and plugin_configured(d, doc)
   if not epl then return nil end
   return ("early-plugin-load=%s: the keyring_file plugin is configured; its keys must be migrated to "
      .. "component_keyring_file (mysqld --keyring-migration-to-component ...) before this runbook can go on")
      :format(epl)
end

-- The variables at_rest's settings turn ON, and the version each came with: { setting, version, variable }.
local ENCRYPTION_OPTIONS = {
   { "new_tables", "8.0.16", "default_table_encryption" },
   { "logs", "8.0.1", "innodb_redo_log_encrypt" }, { "logs", "8.0.1", "innodb_undo_log_encrypt" },
   { "binlog", "8.0.14", "binlog_encryption" },
   { "temp", "8.0.16", "innodb_temp_tablespace_encrypt" },
}

function mysql.encryption_options(d, s)
   local out = {}
   for _, o in ipairs(ENCRYPTION_OPTIONS) do
      if s[o[1]] and d:at_least(o[2]) then out[#out + 1] = { name = o[3], value = "ON", var = o[3], dynamic = true } end
   end
   return out
end

--- `ENCRYPTION='Y'`: a COPY rebuild (writes to the table wait for it; it needs the table's size
-- in free disk). MySQL has no key ids.
function mysql.encryption_clause() return "ENCRYPTION='Y'" end

--- The InnoDB master key, and the binary log's (8.0.16+) when binary log encryption is on: that
-- statement fails on a server that does not encrypt its binary log.
function mysql.rotate_sql(d, _, binlog_on)
   local out = { "ALTER INSTANCE ROTATE INNODB MASTER KEY" }
   if binlog_on and d:at_least("8.0.16") then out[#out + 1] = "ALTER INSTANCE ROTATE BINLOG MASTER KEY" end
   return out
end

--- 8.0.16+: a new table in an existing schema follows the schema's default, not only
-- default_table_encryption.
function mysql.schema_encryption_sql(d, name)
   return d:at_least("8.0.16") and ("ALTER SCHEMA %s DEFAULT ENCRYPTION='Y'"):format(d:ident(name))
end

--- 8.0.13+: a general tablespace is encrypted in place, every table in it; before, not at all.
function mysql.encrypt_tablespace_sql(d, name)
   return d:at_least("8.0.13") and ("ALTER TABLESPACE %s ENCRYPTION='Y'"):format(d:ident(name))
end

--- 8.0.16+: the mysql tablespace (data dictionary, accounts) by ALTER TABLESPACE; nothing waits.
function mysql.system_spaces_sql(d, spaces)
   local out = {}
   for _, sp in ipairs(spaces) do
      if sp.name == "mysql" and not sp.encrypted and d:at_least("8.0.16") then
         out[#out + 1] = { sql = "ALTER TABLESPACE mysql ENCRYPTION='Y'" }
      end
   end
   return out, false
end

local UNDO_WHY = "undo pages written before innodb_undo_log_encrypt=ON stay plain until the undo tablespace is "
   .. "truncated: ALTER UNDO TABLESPACE %s SET INACTIVE, wait until its STATE in "
   .. "INFORMATION_SCHEMA.INNODB_TABLESPACES is 'empty', then SET ACTIVE (one at a time: two must stay active)"

--- What MySQL writes that no setting encrypts, or encrypts only from now on.
function mysql.unencryptable_notes(d)
   if not d:at_least("8.0.20") then
      return { "the doublewrite buffer is in the system tablespace, which MySQL cannot encrypt: page copies "
         .. "of encrypted tables pass through it in plain" }
   elseif not d:at_least("8.0.23") then
      return { "the doublewrite files (#ib_*.dblwr) hold plain copies of encrypted pages before MySQL 8.0.23: "
         .. "upgrade to 8.0.23 or later" }
   end
   return { "the doublewrite files (#ib_*.dblwr) hold pages as they are written: encrypted for encrypted "
      .. "tablespaces; copies written before stay until the files are overwritten by later writes" }
end

local SYSTEM_WHY = "MySQL cannot encrypt the system tablespace (the change buffer stays plain there)"
local SYSTEM_57 = { name = "innodb_system", encrypted = false, can_encrypt = false,
                    why = "MySQL 5.7 encrypts file-per-table tablespaces only" }

-- The server's own tablespaces as a description has them (or as a fresh server of that version has).
function described.system_spaces(d, desc)
   if desc.system_spaces then return desc.system_spaces end
   if not d:at_least("8.0.0") then return { SYSTEM_57 } end
   local out = { { name = "innodb_system", encrypted = false, can_encrypt = false, why = SYSTEM_WHY },
                 { name = "mysql", encrypted = desc.system_encrypted == true, can_encrypt = d:at_least("8.0.16"),
                   why = not d:at_least("8.0.16") and "the mysql tablespace can be encrypted from 8.0.16" or nil } }
   for _, u in ipairs{ "innodb_undo_001", "innodb_undo_002" } do
      out[#out + 1] = { name = u, encrypted = false, can_encrypt = false, why = UNDO_WHY:format(u) }
   end
   return out
end

function facts.system_spaces(d, ctx)
   if not d:at_least("8.0.0") then return { SYSTEM_57 } end
   local out = {}
   for _, r in ipairs(ctx:query([[SELECT NAME, ENCRYPTION, SPACE_TYPE FROM INFORMATION_SCHEMA.INNODB_TABLESPACES
         WHERE NAME IN ('mysql', 'innodb_system') OR SPACE_TYPE = 'Undo' ORDER BY SPACE]])) do
      local sp = { name = r[1], encrypted = r[2] == "Y" }
      if r[1] == "mysql" then
         sp.can_encrypt = d:at_least("8.0.16")
      elseif r[1] == "innodb_system" then
         sp.can_encrypt, sp.why = false, SYSTEM_WHY
      else
         sp.can_encrypt, sp.why = false, UNDO_WHY:format(r[1])
      end
      out[#out + 1] = sp
   end
   return out
end

--- fact shared_tablespace_tables: tables in the system tablespace (innodb_file_per_table=OFF) or
-- in a general tablespace, which ALTER TABLE ... ENCRYPTION='Y' refuses.
function facts.shared_tablespace_tables(d, ctx)
   local sql = d:at_least("8.0.0") and [[
      SELECT t.NAME, s.NAME, s.SPACE_TYPE FROM INFORMATION_SCHEMA.INNODB_TABLES t
      JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES s ON s.SPACE = t.SPACE
      WHERE s.SPACE_TYPE IN ('System', 'General') AND t.NAME LIKE '%/%']]
      or [[SELECT t.NAME, COALESCE(s.NAME, 'innodb_system'), COALESCE(s.SPACE_TYPE, 'System')
      FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
      LEFT JOIN INFORMATION_SCHEMA.INNODB_SYS_TABLESPACES s ON s.SPACE = t.SPACE
      WHERE (t.SPACE = 0 OR s.SPACE_TYPE = 'General') AND t.NAME LIKE '%/%']]
   local out = {}
   -- file names encode what is not [A-Za-z0-9_] as @XXXX
   local function decode(s) return (s:gsub("@(%x%x%x%x)", function(h) return utf8.char(tonumber(h, 16)) end)) end
   for _, r in ipairs(ctx:query(sql)) do
      local schema, name = r[1]:match("^([^/]+)/([^#]+)")
      if schema then
         out[decode(schema) .. "\0" .. decode(name)] = { tablespace = r[3] == "System" and "innodb_system" or r[2] }
      end
   end
   return out
end

-- A value of performance_schema.keyring_component_status (8.0.24+), or nil.
local function component_status(ctx, key)
   local rows = ctx:query([[SELECT STATUS_VALUE FROM performance_schema.keyring_component_status
                            WHERE STATUS_KEY = ?]], key)
   return rows[1] and rows[1][1] or nil
end

function facts.keyring_active(d, ctx)
   if ctx:fact("plugin", "keyring_file") == "ACTIVE" then return true end
   if not d:at_least("8.0.24") then return false end
   local ok, status = pcall(component_status, ctx, "Component_status")
   return ok and status == "Active"
end
function facts.keyring_file(d, ctx)
   if ctx:fact("plugin", "keyring_file") == "ACTIVE" or not d:at_least("8.0.24") then
      return ctx:fact("variable", "keyring_file_data")
   end
   local ok, file = pcall(component_status, ctx, "Data_file")
   return ok and file or nil
end
function described.keyring_active(_, desc)
   return (desc.plugins or {}).keyring_file == "ACTIVE" or (desc.components or {})[COMPONENT] == "Active"
end
function described.keyring_file(_, desc)
   if (desc.plugins or {}).keyring_file == "ACTIVE" then return (desc.variables or {}).keyring_file_data end
   return (desc.component_status or {}).Data_file
end

--- fact keyring_has_key(key_file): the keyring file has content (the server writes a master key
-- into it when one is made).
function facts.keyring_has_key(_, ctx, key_file)
   local data = ctx:read_file(key_file)
   return data ~= nil and #data > 0
end

function facts.table_encryption(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query([[
      SELECT TABLE_SCHEMA, TABLE_NAME, CREATE_OPTIONS FROM INFORMATION_SCHEMA.TABLES
      WHERE TABLE_TYPE = 'BASE TABLE']])) do
      local opts = sqltext.value(r[3]) or ""
      out[r[1] .. "\0" .. r[2]] = { encrypted = opts:upper():find("ENCRYPTION=.Y.") ~= nil }
   end
   return out
end

--- 8.0.16+: `SCHEMATA.DEFAULT_ENCRYPTION`.
function facts.schemas(d, ctx)
   if not d:at_least("8.0.16") then return base.facts.schemas(d, ctx) end
   local out = {}
   for _, r in ipairs(ctx:query([[SELECT SCHEMA_NAME, DEFAULT_ENCRYPTION FROM INFORMATION_SCHEMA.SCHEMATA
                                 ORDER BY SCHEMA_NAME]])) do
      if not d.system_schemas[r[1]] then out[#out + 1] = { name = r[1], default_encryption = r[2] } end
   end
   return out
end

--- binlog_encryption came with 8.0.14 (SHOW BINARY LOGS has an Encrypted column from then on).
function mysql.can_encrypt_binlog(d) return d:at_least("8.0.14") end
function mysql.binlog_encrypted() return false end

--- performance_schema.metadata_locks names the holders (it is on by default from 5.7's
-- instrument, always in 8.0); PROCESSLIST_TIME is how long the session is in its state.
function facts.lock_holders(_, ctx, schema, name, except)
   local out = {}
   local ok, rows = pcall(ctx.query, ctx, [[
      SELECT t.PROCESSLIST_ID, t.PROCESSLIST_USER, t.PROCESSLIST_HOST, t.PROCESSLIST_TIME
      FROM performance_schema.metadata_locks m JOIN performance_schema.threads t ON t.THREAD_ID = m.OWNER_THREAD_ID
      WHERE m.OBJECT_TYPE = 'TABLE' AND m.OBJECT_SCHEMA = ? AND m.OBJECT_NAME = ? AND m.LOCK_STATUS = 'GRANTED'
        AND t.PROCESSLIST_ID <> ? AND t.PROCESSLIST_ID <> CONNECTION_ID()]], schema, name, except or 0)
   if not ok then return base.facts.lock_holders(nil, ctx, schema, name, except) end
   for _, r in ipairs(rows) do
      out[#out + 1] = { id = sqltext.integer(r[1]), user = r[2], host = sqltext.value(r[3]) or "",
                        seconds = sqltext.integer(r[4]) or 0, certain = true }
   end
   return out
end

-- In transit -----------------------------------------------------------------------------------

function mysql.has_tls_version(d) return d:at_least("5.7.10") end
function mysql.has_require_secure_transport(d) return d:at_least("5.7.8") end

--- 5.7: no TLSv1.3 before 5.7.28; yaSSL builds (community 5.7 before 5.7.28) speak TLSv1 and
-- TLSv1.1 only, so a list without them would leave the server no TLS at all.
function mysql.tls_versions(d, wanted, library)
   if d:at_least("5.7.28") then return wanted, nil end
   local keep, dropped = {}, {}
   local ok = library == "yassl" and { ["TLSv1"] = true, ["TLSv1.1"] = true }
      or { ["TLSv1"] = true, ["TLSv1.1"] = true, ["TLSv1.2"] = true }
   for v in wanted:gmatch("[^,%s]+") do
      if ok[v] then keep[#keep + 1] = v else dropped[#dropped + 1] = v end
   end
   if #keep == 0 then keep = { library == "yassl" and "TLSv1.1" or "TLSv1.2" } end
   local note = #dropped > 0 and ("%s (%s) cannot speak %s: tls_version = %s"):format(d:describe(),
      library, table.concat(dropped, ", "), table.concat(keep, ",")) or nil
   return table.concat(keep, ","), note
end

--- yaSSL cannot use EC keys: RSA.
function mysql.key_type(_, library, wanted)
   if library == "yassl" and wanted ~= "rsa" then
      return "rsa", "the server's TLS library (yaSSL) cannot use EC keys: RSA"
   end
   return wanted, nil
end

--- 8.0.16+: TLS 1.3 suites are tls_ciphersuites, apart from ssl_cipher; both dynamic from 8.0.16.
function mysql.cipher_options(d, cipher, suites)
   local out = {}
   local dynamic = d:at_least("8.0.16")
   if cipher then out[#out + 1] = { name = "ssl_cipher", value = cipher, var = "ssl_cipher", dynamic = dynamic } end
   if suites and dynamic then
      out[#out + 1] = { name = "tls_ciphersuites", value = suites, var = "tls_ciphersuites", dynamic = true }
   end
   return out
end

--- fact tls_library: yaSSL for 5.7 builds before 5.7.28 that lack OpenSSL's RSA status variable.
function facts.tls_library(d, ctx)
   return (d:at_least("5.7.28") or ctx:fact("status", "Rsa_public_key")) and "openssl" or "yassl"
end

--- fact persisted(name): MySQL 8's mysqld-auto.cnf (SET PERSIST) value of a variable, or nil.
function facts.persisted(d, ctx, name)
   if not d:at_least("8.0.11") then return nil end
   local rows = ctx:query("SELECT VARIABLE_VALUE FROM performance_schema.persisted_variables WHERE VARIABLE_NAME = ?",
      name)
   return rows[1] and rows[1][1] or nil
end

--- SET PERSIST and PERSIST_ONLY exist from 8.0.11.
function mysql.can_persist(d) return d:at_least("8.0.11") end

--- 8.0.16+: the paths are dynamic and ALTER INSTANCE RELOAD TLS takes the new values.
function mysql.tls_paths_dynamic(d) return d:at_least("8.0.16") end

--- ALTER INSTANCE RELOAD TLS from 8.0.16; before, a restart.
function mysql.tls_reload_sql(d) return d:at_least("8.0.16") and "ALTER INSTANCE RELOAD TLS" or nil end

function facts.replication_without_tls(d, ctx)
   local out = {}
   for _, r in ipairs(ctx:query([[SELECT CHANNEL_NAME, HOST FROM
         performance_schema.replication_connection_configuration WHERE SSL_ALLOWED <> 'YES']])) do
      out[#out + 1] = { channel = d:channel_name(r[1]), host = r[2] }
   end
   return out
end

-- MySQL 8.4: the keyring_file plugin is gone ---------------------------------------------------
-- The component is loaded from a manifest next to mysqld and configured by a JSON file in
-- plugin_dir (both keys are required).

local mysql84 = {
   keyring = COMPONENT,
   keyring_variable = false,
   facts = {}, described = {},
}

function mysql84.keyring_for() return COMPONENT end

--- An early-plugin-load of keyring_file: the plugin does not exist in 8.4.
function mysql84.keyring_conflict(d, doc)
   local epl = plugin_configured(d, doc)
   if not epl then return nil end
   return ("early-plugin-load=%s: the keyring_file plugin does not exist in MySQL 8.4; its keys must be "
      .. "migrated to component_keyring_file (mysqld --keyring-migration-...) before this runbook can go on")
      :format(epl)
end

function mysql84.facts.keyring_active(_, ctx) return component_status(ctx, "Component_status") == "Active" end
function mysql84.facts.keyring_file(_, ctx) return component_status(ctx, "Data_file") end
function mysql84.described.keyring_active(_, desc) return (desc.components or {})[COMPONENT] == "Active" end

return {
   { "mysql", "base", mysql },
   { "mysql-5.7", "mysql", {} },
   { "mysql-8.0", "mysql-5.7", {} },
   { "mysql-8.4", "mysql-8.0", mysql84 },
}
