--- MariaDB 10.x and 11.x, by topic. What the base dialect does not say for MariaDB is here;
-- docs/servers.md has the facts.
-- @module myseal.dialect.mariadb
local sqltext = require "myseal.sqltext"

local base = require("myseal.dialect.base")[1][3]

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
   local out = base.path_options(d)
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

-- At rest: the file_key_management plugin, background threads, online ALTERs -------------------

mariadb.keyring = "file_key_management"
mariadb.keyring_variable = "file_key_management_filename"
mariadb.keyring_dir_default = "/etc/mysql/encryption"
--- The keyring directory: the server's user enters it, nobody else does.
mariadb.keyring_dir_mode = tonumber("750", 8)
--- myseal writes the key file (`id;hexkey` lines), the server only reads it.
mariadb.myseal_makes_keys = true
mariadb.supports_background = true
--- The encryption threads: no metadata lock (the application never waits for them), faster than
-- rebuilding every table, and they reach what ALTER TABLE cannot: the system tablespace (undo,
-- doublewrite), undo tablespaces and the mysql schema's InnoDB tables (docs/at-rest-disk.md).
mariadb.default_method = "background"
--- Rotation: a new key id in the key file, then the tables rebuilt with it (one key version).
mariadb.rotates_by_key_id = true
--- A restore is rehearsed with mariadb-backup (Debian's mariadb-backup package).
mariadb.rehearses = true
mariadb.backup_tool = "mariadb-backup"

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

local function option(out, name, v, dynamic)
   out[#out + 1] = { name = name, value = v, var = name, dynamic = dynamic or nil }
end

function mariadb.encryption_options(_, s)
   local out = {}
   if s.new_tables or s.method == "background" then option(out, "innodb_encrypt_tables", "ON", true) end
   if s.method == "background" then
      option(out, "innodb_encryption_threads", tostring(s.threads), true)
      -- the default, 100 pages a second, makes a large database take days
      option(out, "innodb_encryption_rotation_iops", tostring(s.rotation_iops), true)
   end
   if s.logs then option(out, "innodb_encrypt_log", "ON") end
   if s.temp then
      option(out, "innodb_encrypt_temporary_tables", "ON")
      option(out, "encrypt_tmp_files", "ON")
      option(out, "encrypt_tmp_disk_tables", "ON", true)
   end
   if s.binlog then option(out, "encrypt_binlog", "ON") end
   -- tables created or rebuilt from now on; the aria-tables step rebuilds the others
   if s.aria then option(out, "aria_encrypt_tables", "ON", true) end
   -- pages freed from now on are overwritten with zeros (those freed before keep what they held)
   if s.scrub then option(out, "innodb_immediate_scrub_data_uncompressed", "ON", true) end
   return out
end

--- `ENCRYPTED=YES [ENCRYPTION_KEY_ID=n]`: INPLACE and online. (The MySQL spelling
-- `ENCRYPTION='Y'` fails on MariaDB with error 1911.)
function mariadb.encryption_clause(_, key_id)
   if key_id then return ("ENCRYPTED=YES ENCRYPTION_KEY_ID=%d"):format(key_id) end
   return "ENCRYPTED=YES"
end

--- `ALTER TABLE t NOWAIT ...` or `WAIT n` (whole seconds): the statement's own lock_wait_timeout.
function mariadb.lock_wait(_, wait)
   if not wait then return "", {} end
   if wait <= 0 then return " NOWAIT", {} end
   return (" WAIT %d"):format(math.max(1, math.ceil(wait))), {}
end

--- `ALTER TABLE t ENGINE=Aria`: the table is written again, encrypted when aria_encrypt_tables is ON
-- (ROW_FORMAT=PAGE only).
function mariadb.aria_rebuild_sql(d, t, wait) return (d:alter_table_sql(t, wait, "ENGINE=Aria")) end

function mariadb.rotate_sql() return {} end

--- A table created with ENCRYPTED=NO is one the encryption threads never touch.
function mariadb.threads_skip(_, t) return (t.create_options or ""):upper():find("`ENCRYPTED`='NO'", 1, true) ~= nil end

--- Why the server's own tablespaces stay plain with these settings, or nil: the threads encrypt them
-- only under innodb_encrypt_tables=ON (OFF: they would decrypt tablespaces of the default kind).
function mariadb.system_spaces_blocked(_, s)
   if s.new_tables or s.method == "background" then return nil end
   return "at_rest.new_tables=false with the rebuild method keeps innodb_encrypt_tables OFF, and the encryption "
      .. "threads leave the system tablespace, the undo tablespaces and the mysql schema's tables plain then"
end

--- The encryption threads, once more (setting innodb_encrypt_tables again sends them over every
-- tablespace: MDEV-14398): they encrypt the system and undo tablespaces and the mysql schema's
-- tables, whatever the method.
function mariadb.system_spaces_sql(_, _, s)
   return {
      { sql = "SET GLOBAL innodb_encryption_rotation_iops = ?", args = { math.tointeger(s.rotation_iops) } },
      { sql = "SET GLOBAL innodb_encryption_threads = GREATEST(@@GLOBAL.innodb_encryption_threads, ?)",
        args = { math.tointeger(s.threads) } },
      { sql = "SET GLOBAL innodb_encrypt_tables = ON" },
   }, true
end

function facts.keyring_active(d, ctx) return ctx:fact("plugin", d.keyring) == "ACTIVE" end
function facts.keyring_file(d, ctx) return ctx:fact("variable", d.keyring_variable) end

-- A tablespace is encrypted when every page is: scheme 1, a key version, no rotation under way.
local ENCRYPTED = "e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0 AND e.ROTATING_OR_FLUSHING = 0"
local DECODE = "CONVERT(CONVERT(CAST(%s AS BINARY) USING filename) USING utf8mb4)"
-- the schema and the table of a tablespace's NAME ("db/t#P#p0"), still in the filename encoding
local SCHEMA_OF = "SUBSTRING_INDEX(t.NAME, '/', 1)"
local TABLE_OF = "SUBSTRING_INDEX(SUBSTRING_INDEX(t.NAME, '/', -1), '#', 1)"
mariadb.filename_sql = DECODE

-- INNODB_TABLESPACES_ENCRYPTION needs PROCESS.
mariadb.tablespaces_sql = ([[
   SELECT t.SPACE, t.NAME, t.FILENAME, e.ENCRYPTION_SCHEME, e.MIN_KEY_VERSION,
          e.ROTATING_OR_FLUSHING, e.CURRENT_KEY_ID, %s, %s
   FROM information_schema.INNODB_SYS_TABLESPACES t
   LEFT JOIN information_schema.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE]]):format(
   DECODE:format(SCHEMA_OF), DECODE:format(TABLE_OF))

--- A restore rehearsal's tables: each encrypted table (its partitions summed) with schema, name,
-- key id, bytes and the file's name as the server has it ("db/t"), smallest first.
mariadb.rehearsal_tables_sql = ([[
   SELECT MIN(%s), MIN(%s), MIN(e.CURRENT_KEY_ID), SUM(s.FILE_SIZE), MIN(SUBSTRING_INDEX(t.NAME, '#', 1))
   FROM information_schema.INNODB_SYS_TABLES t
   JOIN information_schema.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
   JOIN information_schema.INNODB_SYS_TABLESPACES s ON s.SPACE = t.SPACE
   WHERE t.SPACE > 0 AND t.NAME LIKE '%%/%%' AND e.ENCRYPTION_SCHEME = 1 AND e.MIN_KEY_VERSION > 0
   GROUP BY CAST(SUBSTRING_INDEX(t.NAME, '#', 1) AS BINARY) ORDER BY 4, 1, 2]]):format(
   DECODE:format(SCHEMA_OF), DECODE:format(TABLE_OF))

--- A restore rehearsal's question to the restored copy: the key ids it has no key version for.
mariadb.missing_key_ids_sql = [[SELECT CURRENT_KEY_ID FROM information_schema.INNODB_TABLESPACES_ENCRYPTION
   WHERE CURRENT_KEY_VERSION = 4294967295]]

--- fact table_encryption: per table, every tablespace (partitions too) encrypted, from
-- INNODB_TABLESPACES_ENCRYPTION (CREATE_OPTIONS says nothing of background encryption). A table in
-- the system tablespace is as encrypted as it. Tablespace names are in the server's filename
-- encoding: the server decodes them; the rows are grouped here, where `T` and `t` stay two tables.
function facts.table_encryption(_, ctx)
   local rows = ctx:query(([[
      SELECT %s, %s, COALESCE(%s, 0), e.CURRENT_KEY_ID
      FROM INFORMATION_SCHEMA.INNODB_SYS_TABLES t
      LEFT JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = t.SPACE
      WHERE t.NAME LIKE '%%/%%']]):format(DECODE:format(SCHEMA_OF), DECODE:format(TABLE_OF), ENCRYPTED))
   local out = {}
   for _, r in ipairs(rows) do
      local key = r[1] .. "\0" .. r[2]
      local t = out[key] or { encrypted = true }
      out[key] = t
      t.encrypted = t.encrypted and tonumber(r[3]) == 1
      local id = sqltext.integer(r[4])
      if id and (not t.key_id or id < t.key_id) then t.key_id = id end
   end
   return out
end

--- fact system_spaces: the system tablespace, the undo tablespaces and the mysql schema's InnoDB
-- tables, each encrypted or not (the encryption threads do them; ALTER TABLE does not reach the
-- first two).
function facts.system_spaces(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query(([[
         SELECT s.NAME, COALESCE(%s, 0) FROM INFORMATION_SCHEMA.INNODB_SYS_TABLESPACES s
         LEFT JOIN INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION e ON e.SPACE = s.SPACE
         WHERE s.NAME = 'innodb_system' OR s.NAME LIKE 'innodb_undo%%' OR s.NAME LIKE 'mysql/%%'
         ORDER BY s.SPACE]]):format(ENCRYPTED))) do
      out[#out + 1] = { name = r[1], encrypted = tonumber(r[2]) == 1, can_encrypt = true }
   end
   return out
end

-- Is the Aria table whose index file is `path` encrypted? Its header names where the base
-- information starts (bytes 13-14, big-endian); bit 0 of the 2 bytes at offset 90 there is
-- MA_EXTRA_OPTIONS_ENCRYPTED. nil when the file cannot be read as an Aria index file.
function mariadb.aria_file_encrypted(path)
   local f = io.open(path, "rb")
   if not f then return nil end
   local head = f:read(1024) or ""
   f:close()
   if #head < 14 or head:sub(1, 4) ~= "\254\254\9\3" then return nil end
   local info = head:byte(13) * 256 + head:byte(14)
   if #head < info + 92 then return nil end
   return (head:byte(info + 91) * 256 + head:byte(info + 92)) & 1 == 1
end

--- fact aria_tables: every Aria table (the mysql schema's too), with its encryption read from its
-- index files' headers when the datadir is on this host (else nil).
function facts.aria_tables(d, ctx)
   local sys = require "sys"
   local datadir = ctx:fact("variable", "datadir")
   datadir = datadir and (sys.realpath(datadir) or datadir:gsub("/+$", ""))
   local out = {}
   for _, r in ipairs(ctx:query([[
         SELECT TABLE_SCHEMA, TABLE_NAME, ROW_FORMAT, CAST(CONVERT(TABLE_SCHEMA USING filename) AS BINARY),
                CAST(CONVERT(TABLE_NAME USING filename) AS BINARY), DATA_LENGTH + INDEX_LENGTH
         FROM INFORMATION_SCHEMA.TABLES WHERE ENGINE = 'Aria' AND TABLE_TYPE = 'BASE TABLE'
         ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_SCHEMA, TABLE_NAME]])) do
      local t = { schema = r[1], name = r[2], page = tostring(sqltext.value(r[3]) or ""):upper() == "PAGE",
                  bytes = sqltext.integer(r[6]) or 0 }
      local dir = datadir and (datadir .. "/" .. r[4])
      local files = {}
      for _, n in ipairs(dir and sys.dir(dir) or {}) do
         if n == r[5] .. ".MAI" or (n:sub(1, #r[5] + 3) == r[5] .. "#P#" and n:sub(-4) == ".MAI") then
            files[#files + 1] = dir .. "/" .. n
         end
      end
      for _, f in ipairs(files) do
         local enc = d.aria_file_encrypted(f)
         if enc == nil then t.encrypted = nil; break end
         t.encrypted = (t.encrypted ~= false) and enc
      end
      out[#out + 1] = t
   end
   return out
end

--- An encrypted binary log has a Start_encryption event right after its format description.
function mariadb.binlog_encrypted(_, ctx, name)
   local rows = ctx:query("SHOW BINLOG EVENTS IN ? LIMIT 2", name)
   return rows[2] ~= nil and rows[2][3] == "Start_encryption"
end

--- MariaDB's PROCESSLIST has TIME_MS: a wait of a fraction of a second shows.
mariadb.processlist_seconds = "TIME_MS / 1000"

--- With the metadata_lock_info plugin, the sessions that hold a lock on the table; without it, the
-- sessions with an open transaction (one of them, or a LOCK TABLES, holds it).
function facts.lock_holders(d, ctx, schema, name, except)
   if ctx:fact("plugin", "METADATA_LOCK_INFO") ~= "ACTIVE" then
      return base.facts.lock_holders(d, ctx, schema, name, except)
   end
   local out = {}
   for _, r in ipairs(ctx:query([[
      SELECT m.THREAD_ID, MIN(p.USER), MIN(p.HOST), MIN(COALESCE(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), p.TIME)),
             MIN(t.trx_started) IS NOT NULL
      FROM INFORMATION_SCHEMA.METADATA_LOCK_INFO m JOIN INFORMATION_SCHEMA.PROCESSLIST p ON p.ID = m.THREAD_ID
      LEFT JOIN INFORMATION_SCHEMA.INNODB_TRX t ON t.trx_mysql_thread_id = m.THREAD_ID
      WHERE m.TABLE_SCHEMA = ? AND m.TABLE_NAME = ? AND m.THREAD_ID <> ? AND m.THREAD_ID <> CONNECTION_ID()
      GROUP BY m.THREAD_ID ORDER BY m.THREAD_ID]], schema, name, except or 0)) do
      out[#out + 1] = { id = sqltext.integer(r[1]), user = r[2], host = r[3], seconds = sqltext.integer(r[4]) or 0,
                        transaction = tonumber(r[5]) == 1, certain = true }
   end
   return out
end

-- In transit -----------------------------------------------------------------------------------

function mariadb.has_tls_version(d) return d:at_least("10.4.6") end
function mariadb.has_require_secure_transport(d) return d:at_least("10.5.2") end

--- FLUSH SSL from 10.4.1; NO_WRITE_TO_BINLOG, since FLUSH SSL is written to the binary log and
-- replicas would reload theirs at the same moment.
function mariadb.tls_reload_sql(d) return d:at_least("10.4.1") and "FLUSH NO_WRITE_TO_BINLOG SSL" or nil end

--- fact denied_logins: Access_denied_errors, every refused login.
function facts.denied_logins(_, ctx) return tonumber(ctx:fact("status", "Access_denied_errors")) end

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
