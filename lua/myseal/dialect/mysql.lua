--- Oracle MySQL (and Percona Server): 5.7, 8.0, 8.4 (and later releases, served by 8.4), by
-- topic. What the base dialect does not say for MySQL is here; docs/servers.md has the facts.
-- @module myseal.dialect.mysql
local sqltext = require "myseal.sqltext"

local mysql = {
   product = "MySQL",
}
local facts, described = {}, {}
mysql.facts, mysql.described = facts, described

-- The server -----------------------------------------------------------------------------------

--- The options naming files the server reads: the TLS files, and the keyring file it writes.
function mysql.path_options(d)
   local out = require("myseal.dialect.base")[1][3].path_options(d)
   out[#out + 1] = { name = "keyring_file_data", made_by_server = true }
   return out
end

--- Option groups the server reads: [mysqld], [server], [mysqld-X.Y].
function mysql.server_groups(d)
   return { "mysqld", "server", ("mysqld-%d.%d"):format(d.major, d.minor) }
end

-- At rest: the keyring_file plugin (5.7.11 - 8.0), a COPY rebuild per table ---------------------

mysql.keyring = "keyring_file"
mysql.keyring_variable = "keyring_file_data"
mysql.keyring_dir_default = "/var/lib/mysql-keyring"
--- The server writes the keyring file itself: myseal makes only its directory.
mysql.myseal_makes_keys = false
mysql.supports_background = false
--- Rotation: new master keys; tablespace keys are re-encrypted, no table is rebuilt.
mysql.rotates_by_key_id = false
mysql.master_key_sql = "ALTER INSTANCE ROTATE INNODB MASTER KEY"

function mysql.key_file_name() return "keyring" end
function mysql.key_files(_, s) return { s.key_file } end

function mysql.keyring_options(_, s)
   return {
      -- early-plugin-load is one value, a ';' list: keyring_file.so joins what is there
      { name = "early-plugin-load", value = "keyring_file.so", list = ";" },
      { name = "keyring_file_data", value = s.key_file, var = "keyring_file_data" },
   }
end

function mysql.encryption_options(d, s)
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
end

--- `ENCRYPTION='Y'`: a COPY rebuild (writes to the table wait for it; it needs the table's size
-- in free disk). MySQL has no key ids.
function mysql.encryption_clause()
   return "ENCRYPTION='Y'"
end

function mysql.rotate_sql(d, s)
   local out = { "ALTER INSTANCE ROTATE INNODB MASTER KEY" }
   if s.binlog and d:at_least("8.0.16") then out[#out + 1] = "ALTER INSTANCE ROTATE BINLOG MASTER KEY" end
   return out
end

function mysql.system_tablespace_sql(d)
   return d:at_least("8.0.16") and "ALTER TABLESPACE mysql ENCRYPTION='Y'" or false
end

function facts.keyring_active(d, ctx) return ctx:fact("plugin", d.keyring) == "ACTIVE" end
function facts.keyring_file(d, ctx) return ctx:fact("variable", d.keyring_variable) end

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

function facts.system_encrypted(_, ctx)
   local rows = ctx:query("SELECT ENCRYPTION FROM INFORMATION_SCHEMA.INNODB_TABLESPACES WHERE NAME = 'mysql'")
   return rows[1] ~= nil and rows[1][1] == "Y"
end

-- In transit -----------------------------------------------------------------------------------

function mysql.has_tls_version(d) return d:at_least("5.7.10") end

--- require_secure_transport from 5.7.8.
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
   if library == "yassl" and wanted ~= "rsa" then return "rsa", "the server's TLS library (yaSSL) cannot use EC keys: RSA" end
   return wanted, nil
end

--- 8.0.16+: TLS 1.3 suites are tls_ciphersuites, apart from ssl_cipher; both dynamic from 8.0.16.
function mysql.cipher_options(d, cipher, suites)
   local out = {}
   local dynamic = d:at_least("8.0.16")
   if cipher then out[#out + 1] = { name = "ssl_cipher", value = cipher, var = "ssl_cipher", dynamic = dynamic } end
   if suites and d:at_least("8.0.16") then
      out[#out + 1] = { name = "tls_ciphersuites", value = suites, var = "tls_ciphersuites", dynamic = true }
   end
   return out
end

--- fact tls_library: yaSSL for 5.7 builds before 5.7.28 that lack OpenSSL's RSA status variable.
function facts.tls_library(d, ctx)
   if d:at_least("5.7.28") then return "openssl" end
   return ctx:fact("status", "Rsa_public_key") and "openssl" or "yassl"
end

--- fact persisted(name): MySQL 8's mysqld-auto.cnf (SET PERSIST) value of a variable, or nil.
function facts.persisted(d, ctx, name)
   if not d:at_least("8.0.11") then return nil end
   local rows = ctx:query("SELECT VARIABLE_VALUE FROM performance_schema.persisted_variables WHERE VARIABLE_NAME = ?",
      name)
   return rows[1] and rows[1][1] or nil
end

--- 8.0.16+: the paths are dynamic and ALTER INSTANCE RELOAD TLS takes the new values.
function mysql.tls_paths_dynamic(d) return d:at_least("8.0.16") end

--- ALTER INSTANCE RELOAD TLS from 8.0.16; before, a restart.
function mysql.tls_reload_sql(d)
   if d:at_least("8.0.16") then return "ALTER INSTANCE RELOAD TLS" end
   return nil
end

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
   keyring = "component_keyring_file",
   keyring_variable = false,
   facts = {}, described = {},
}

function mysql84.key_file_name() return "component_keyring_file" end
function mysql84.keyring_options() return {} end

function mysql84.component_files(_, s, p, plugin_dir)
   return {
      { path = (p.keyring.manifest_dir or "/usr/sbin") .. "/mysqld.my",
        data = '{\n  "components": "file://component_keyring_file"\n}\n' },
      { path = plugin_dir .. "/component_keyring_file.cnf",
        data = ('{\n  "path": "%s",\n  "read_only": false\n}\n'):format(s.key_file) },
   }
end

--- An early-plugin-load of keyring_file: the plugin does not exist in 8.4.
function mysql84.keyring_conflict(d, doc)
   local epl = doc:effective(d:server_groups(), "early-plugin-load")
   if type(epl) == "string" and epl:find("keyring_file", 1, true) then
      return ("early-plugin-load=%s: the keyring_file plugin does not exist in MySQL 8.4; its keys must be "
         .. "migrated to component_keyring_file (mysqld --keyring-migration-...) before this runbook can go on")
         :format(epl)
   end
   return nil
end

local function component_status(ctx, key)
   local rows = ctx:query([[SELECT STATUS_VALUE FROM performance_schema.keyring_component_status
                            WHERE STATUS_KEY = ?]], key)
   return rows[1] and rows[1][1] or nil
end

function mysql84.facts.keyring_active(_, ctx) return component_status(ctx, "Component_status") == "Active" end
function mysql84.facts.keyring_file(_, ctx) return component_status(ctx, "Data_file") end
function mysql84.described.keyring_active(_, desc)
   return (desc.components or {}).component_keyring_file == "Active"
end

return {
   { "mysql", "base", mysql },
   { "mysql-5.7", "mysql", {} },
   { "mysql-8.0", "mysql-5.7", {} },
   { "mysql-8.4", "mysql-8.0", mysql84 },
}
