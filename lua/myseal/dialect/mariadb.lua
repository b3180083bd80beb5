--- MariaDB 10.x and 11.x, by topic. What the base dialect does not say for MariaDB is here;
-- docs/servers.md has the facts.
-- @module myseal.dialect.mariadb
local sqltext = require "myseal.sqltext"

local mariadb = {
   product = "MariaDB",
   --- MariaDB's own options go in [mariadb], which MySQL servers do not read.
   flavor_group = "mariadb",
}
local facts, described = {}, {}
mariadb.facts, mariadb.described = facts, described

-- The server -----------------------------------------------------------------------------------

--- The options naming files the server reads: the TLS files and the key file and its filekey.
function mariadb.path_options(d)
   local out = require("myseal.dialect.base")[1][3].path_options(d)
   out[#out + 1] = { name = "file_key_management_filename" }
   out[#out + 1] = { name = "file_key_management_filekey" }   -- FILE:/path
   return out
end

--- Option groups the server reads, in its order.
function mariadb.server_groups(d)
   local v = ("%d.%d"):format(d.major, d.minor)
   return { "client-server", "server", "mysqld", "mysqld-" .. v, "mariadb", "mariadb-" .. v,
            "mariadbd", "mariadbd-" .. v }
end

-- At rest: the file_key_management plugin, online ALTERs, background threads -------------------

mariadb.keyring = "file_key_management"
mariadb.keyring_variable = "file_key_management_filename"
mariadb.keyring_dir_default = "/etc/mysql/encryption"
--- myseal writes the key file (`id;hexkey` lines), the server only reads it.
mariadb.myseal_makes_keys = true
mariadb.supports_background = true
--- Rotation: a new key id in the key file, then the tables rebuilt with it (one key version).
mariadb.rotates_by_key_id = true

function mariadb.key_file_name(_, s) return s.filekey and "keyfile.enc" or "keyfile" end
function mariadb.key_files(_, s) return { s.key_file, s.filekey } end

function mariadb.keyring_options(_, s)
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
end

function mariadb.encryption_options(_, s)
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
end

--- `ENCRYPTED=YES [ENCRYPTION_KEY_ID=n]`: INPLACE and online. (The MySQL spelling
-- `ENCRYPTION='Y'` fails on MariaDB with error 1911.)
function mariadb.encryption_clause(_, key_id)
   if key_id then return ("ENCRYPTED=YES ENCRYPTION_KEY_ID=%d"):format(key_id) end
   return "ENCRYPTED=YES"
end

function mariadb.rotate_sql() return {} end
function mariadb.system_tablespace_sql() return false end

function facts.keyring_active(d, ctx) return ctx:fact("plugin", d.keyring) == "ACTIVE" end
function facts.keyring_file(d, ctx) return ctx:fact("variable", d.keyring_variable) end

--- fact table_encryption: per table, every tablespace (partitions too) encrypted, from
-- INNODB_TABLESPACES_ENCRYPTION (CREATE_OPTIONS says nothing of background encryption).
-- Tablespace names are in the server's filename encoding: the server decodes them.
function facts.table_encryption(_, ctx)
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
end

-- In transit -----------------------------------------------------------------------------------

function mariadb.has_tls_version(d) return d:at_least("10.4.6") end

--- require_secure_transport from 10.5.2.
function mariadb.has_require_secure_transport(d) return d:at_least("10.5.2") end

--- FLUSH SSL from 10.4.1; NO_WRITE_TO_BINLOG, since FLUSH SSL is written to the binary log and
-- replicas would reload theirs at the same moment.
function mariadb.tls_reload_sql(d)
   if d:at_least("10.4.1") then return "FLUSH NO_WRITE_TO_BINLOG SSL" end
   return nil
end

--- fact denied_logins: Access_denied_errors, every refused login.
function facts.denied_logins(_, ctx)
   return tonumber(ctx:fact("status", "Access_denied_errors"))
end

--- fact replication_without_tls: this server's channels (as a replica) without TLS; none when
-- myseal's account may not read them (SLAVE MONITOR).
function facts.replication_without_tls(d, ctx)
   local out = {}
   local ok, channels = pcall(ctx.fact, ctx, "replica_channels")
   if not ok then return out end
   for _, c in ipairs(channels) do
      if not c.ssl then out[#out + 1] = { channel = d:channel_name(c.name), host = c.host } end
   end
   return out
end

return {
   { "mariadb", "base", mariadb },
   { "mariadb-10", "mariadb", {} },
   { "mariadb-11", "mariadb-10", {} },
}
