--- The base dialect: what every supported server shares, by topic (the server, encryption at
-- rest, TLS in transit). mysql.lua and mariadb.lua override what their servers do differently.
--
-- Facts are read-only questions: `facts.NAME(d, ctx, ...)` answers on a live server (through
-- `ctx:query`, `ctx:fact`, `ctx:connect`), `described.NAME(d, desc, ...)` answers the same
-- question for a described server from its description (docs/runbooks.md, "Described servers").
-- @module myseal.dialect.base
local sqltext = require "myseal.sqltext"

local value, integer = sqltext.value, sqltext.integer

-- Is a server variable on? ("ON" or "1", as SHOW VARIABLES writes a boolean.)
local function on(v)
   v = tostring(v or ""):upper()
   return v == "ON" or v == "1"
end

local base = {
   --- The group portable server options (ssl_*, require_secure_transport) are written to.
   server_group = "mysqld",
   --- The group for options only this flavour knows (a server of the other flavour reading the
   -- same file would refuse them).
   flavor_group = "mysqld",
   --- Schemas that belong to the server, not to applications.
   system_schemas = { mysql = true, information_schema = true, performance_schema = true, sys = true },
}

local facts, described = {}, {}
base.facts, base.described = facts, described

-- The server ---------------------------------------------------------------------------------

--- Option groups the server reads, in the order it reads them.
function base.server_groups() return { "mysqld", "server" } end

--- The server options that name files the server reads at start: `{ name, dir = true (a
-- directory it enters), made_by_server = true (it may create the file) }`.
function base.path_options()
   return { { name = "ssl_ca" }, { name = "ssl_cert" }, { name = "ssl_key" }, { name = "ssl_crl" },
            { name = "ssl_capath", dir = true } }
end

--- Quote an identifier with backticks (a backtick inside is doubled). Values are never
-- quoted in Lua: they are bound (`?`).
-- @param name identifier
-- @return quoted identifier
function base.ident(_, name) return sqltext.ident(name) end

--- "MySQL 8.0.36" / "MariaDB 10.11.6".
function base.describe(d) return ("%s %s"):format(d.product, d.version) end

-- SHOW GLOBAL VARIABLES / STATUS LIKE ?, answered by a description's `variables` / `status` table.
local function show_fact(name, what, field)
   facts[name] = function(_, ctx, key)
      local rows = ctx:query("SHOW GLOBAL " .. what .. " LIKE ?", key)
      return rows[1] and rows[1][2] or nil
   end
   described[name] = function(_, desc, key) return desc[field] and desc[field][key] or nil end
end

--- fact variable(name): the value of a global variable, a string, or nil when there is none.
show_fact("variable", "VARIABLES", "variables")
--- fact status(name): the value of a global status variable, a string, or nil.
show_fact("status", "STATUS", "status")

--- fact plugin(name): the status of a plugin ("ACTIVE", "DISABLED", ...) or nil when it is not loaded.
function facts.plugin(_, ctx, name)
   local rows = ctx:query("SELECT PLUGIN_STATUS FROM INFORMATION_SCHEMA.PLUGINS WHERE PLUGIN_NAME = ?", name)
   return rows[1] and rows[1][1] or nil
end
function described.plugin(_, desc, name) return desc.plugins and desc.plugins[name] or nil end

--- fact tables: base tables (and MariaDB's sequences, which are stored as tables) of the
-- applications (system schemas left out), largest first:
-- list of `{ schema, name, engine, bytes, create_options, sequence = true or nil }`.
function facts.tables(d, ctx)
   local out = {}
   local rows = ctx:query([[
      SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, DATA_LENGTH + INDEX_LENGTH, CREATE_OPTIONS, TABLE_TYPE
      FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE')
      ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_SCHEMA, TABLE_NAME]])
   for _, r in ipairs(rows) do
      if not d.system_schemas[r[1]] then
         out[#out + 1] = { schema = r[1], name = r[2], engine = value(r[3]),
                           bytes = integer(r[4]) or 0,
                           create_options = value(r[5]) or "", sequence = r[6] == "SEQUENCE" or nil }
      end
   end
   return out
end
--- described tables: the description's, as the server gives them: largest first, `bytes` 0 when
-- not given.
function described.tables(_, desc)
   local out = {}
   for i, t in ipairs(desc.tables or {}) do
      local c = { create_options = "" }
      for k, v in pairs(t) do c[k] = v end
      c.bytes = math.tointeger(t.bytes) or 0
      out[i] = c
   end
   table.sort(out, function(a, b)
      if a.bytes ~= b.bytes then return a.bytes > b.bytes end
      if a.schema ~= b.schema then return tostring(a.schema) < tostring(b.schema) end
      return tostring(a.name) < tostring(b.name)
   end)
   return out
end

--- fact accounts: list of `{ user, host, ssl_type }` (ssl_type '' | ANY | X509 | SPECIFIED).
function facts.accounts(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query("SELECT User, Host, ssl_type FROM mysql.user ORDER BY User, Host")) do
      out[#out + 1] = { user = r[1], host = r[2], ssl_type = value(r[3]) or "" }
   end
   return out
end
function described.accounts(_, desc) return desc.accounts or {} end

--- fact replicas: how many sessions read this server's binary log (replicas' dump threads; fact
-- binlog_dumps has them, dialect/replication.lua the rest of replication).
function facts.replicas(_, ctx) return #ctx:fact("binlog_dumps") end
function described.replicas(_, desc) return desc.replicas or 0 end

--- fact disk_free: bytes free in the datadir's file system (nil when unknown).
function facts.disk_free(_, ctx)
   local datadir = ctx:fact("variable", "datadir")
   return datadir and require("sys").df(datadir) or nil
end
function described.disk_free(_, desc) return desc.disk_free end

-- At rest --------------------------------------------------------------------------------------
-- Every flavour defines: keyring (the name of its keyring plugin or component), keyring_variable
-- (the variable naming its key file), keyring_dir_default, keyring_dir_mode, myseal_makes_keys
-- (false: the server writes its keyring itself), supports_background, default_method,
-- rotates_by_key_id, master_key_sql, key_file_name, key_files, keyring_options,
-- encryption_options, rotate_sql, encryption_clause, lock_wait, and the facts keyring_active,
-- keyring_file, table_encryption. The places beyond the tables (system tablespaces, Aria, binary
-- logs, query logs) have defaults here that say "nothing to do" where a flavour has no such thing.

--- How encryption at rest proceeds when at_rest.method is "auto": the fastest method that is
-- complete (the system tablespace too) and online on this flavour.
base.default_method = "rebuild"

--- Can myseal rehearse a restore of this server here (with its flavour's backup tool)? Where it
-- cannot, the rehearsal's commands are named (myseal.rehearsal.plan).
base.rehearses = false

--- The backup tool whose commands a restore rehearsal runs or names: "mariadb-backup" or "xtrabackup".
base.backup_tool = "xtrabackup"

--- SQL that decodes a name in the server's filename encoding (`%s`: a column or `?`), or false:
-- the caller decodes it (`@XXXX` escapes).
base.filename_sql = false

--- The disk scan's query of every InnoDB tablespace and its encryption, or false where the server
-- reports none (the scan then goes by the files alone). Columns: space, name, file, scheme, minimum
-- key version, rotating, current key id, schema, table.
base.tablespaces_sql = false

--- The keyring this server uses, or would get: a name (`d.keyring` unless the flavour offers a
-- choice), and a note for the operator, or nil. `doc` is the server's option tree (or nil).
function base.keyring_for(d) return d.keyring, nil end

--- Why this server cannot be encrypted at rest at all (a message), or nil.
function base.keyring_unsupported() return nil end

--- The statement that encrypts one table `t` (`{ schema, name, convert }`; `convert`: a MyISAM
-- table becomes InnoDB in the same statement), with an optional key id and a bound on how long it
-- may wait for the table's metadata lock.
-- @param t table
-- @param key_id optional integer key id (MariaDB's key management plugin)
-- @param wait optional seconds to wait for the metadata lock (0: not at all)
-- @return SQL text (identifiers quoted; no values), and the statements to run before it on the same
--   connection (`{ { sql, args } }`, maybe empty)
function base.encrypt_table_sql(d, t, key_id, wait)
   return d:alter_table_sql(t, wait, d:encryption_clause(key_id) .. (t.convert and ", ENGINE=InnoDB" or ""))
end

--- The statement that rebuilds table `t` as it is (every page written again, in a new file).
-- @param t table
-- @param wait optional seconds to wait for the metadata lock
-- @return sql, before (as encrypt_table_sql)
function base.rebuild_table_sql(d, t, wait) return d:alter_table_sql(t, wait, "FORCE") end

--- `ALTER TABLE schema.name [lock wait] what` for table `t`: the one shape of encrypt_table_sql,
-- rebuild_table_sql and aria_rebuild_sql.
-- @return sql, before (as encrypt_table_sql)
function base.alter_table_sql(d, t, wait, what)
   local clause, before = d:lock_wait(wait)
   return ("ALTER TABLE %s.%s%s %s"):format(d:ident(t.schema), d:ident(t.name), clause, what), before
end

--- A bound on the metadata lock wait of an ALTER TABLE: a clause for the statement and the
-- statements that set it for the session instead (MySQL has no per-statement form for ALTER and
-- waits at least a second).
-- @param wait seconds, or nil for the server's own lock_wait_timeout
-- @return clause (with a leading space, or ""), list of `{ sql, args }`
function base.lock_wait(_, wait)
   if not wait then return "", {} end
   return "", { { sql = "SET SESSION lock_wait_timeout = ?", args = { math.max(1, math.ceil(wait)) } } }
end

--- Why the option files keep this keyring from working (a message), or nil. `doc` is the
-- server's option tree.
function base.keyring_conflict() return nil end

--- The files a component keyring needs beside the server (MySQL 8.0.24+), or an empty list.
function base.component_files() return {} end

--- The statement that makes the first master key, or false when the flavour has none.
base.master_key_sql = false

--- The statement that encrypts a general tablespace and every table in it, or false.
function base.encrypt_tablespace_sql() return false end

--- The statement that sets a schema's default encryption for new tables, or false.
function base.schema_encryption_sql() return false end

--- Would the encryption threads leave table `t` (`{ create_options }`) plain? (Then an ALTER does it.)
function base.threads_skip() return false end

--- Why the server's own tablespaces stay plain with these settings (`s`: atrest.settings), or nil.
function base.system_spaces_blocked() return nil end

--- Statements that encrypt the server's own tablespaces (`spaces`: from the system_spaces fact),
-- and whether to wait for the server to finish them afterwards.
-- @return list of `{ sql, args }`, wait (boolean)
function base.system_spaces_sql() return {}, false end

--- Notes on what the server writes that no setting encrypts, or encrypts only from now on.
function base.unencryptable_notes() return {} end

--- Can the server encrypt its binary and relay logs?
function base.can_encrypt_binlog() return true end

--- Rotating and purging the binary log: `FLUSH BINARY LOGS`; `PURGE BINARY LOGS TO ?`.
base.rotate_binlog_sql = "FLUSH BINARY LOGS"
function base.purge_binlogs_sql(_, first_kept) return "PURGE BINARY LOGS TO ?", first_kept end

--- The statement that rebuilds an Aria table (so that aria_encrypt_tables applies to it), or false.
function base.aria_rebuild_sql() return false end

--- fact keyring_has_key(key_file): the keyring holds a key (MySQL: a master key was made).
function facts.keyring_has_key() return true end
described.keyring_has_key = false

described.keyring_active = function(d, desc) return (desc.plugins or {})[d.keyring] == "ACTIVE" end
described.keyring_file = function(d, desc) return (desc.variables or {})[d.keyring_variable] end
--- described table_encryption: from the description's tables (`encrypted = true`).
function described.table_encryption(_, desc)
   local out = {}
   for _, t in ipairs(desc.tables or {}) do
      out[t.schema .. "\0" .. t.name] = { encrypted = t.encrypted == true }
   end
   return out
end

--- fact schemas: the application schemas, `{ name, default_encryption = "YES" | "NO" | nil }`.
function facts.schemas(d, ctx)
   local out = {}
   for _, r in ipairs(ctx:query("SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA ORDER BY SCHEMA_NAME")) do
      if not d.system_schemas[r[1]] then out[#out + 1] = { name = r[1] } end
   end
   return out
end
--- described schemas: the description's `schemas` (names or tables), else the schemas of its tables.
function described.schemas(d, desc)
   local out, seen = {}, {}
   local function add(s)
      if type(s) == "string" then s = { name = s } end
      if not seen[s.name] and not d.system_schemas[s.name] then
         seen[s.name] = true
         out[#out + 1] = { name = s.name, default_encryption = s.default_encryption }
      end
   end
   for _, s in ipairs(desc.schemas or {}) do add(s) end
   for _, t in ipairs(desc.tables or {}) do add(t.schema) end
   table.sort(out, function(a, b) return a.name < b.name end)
   return out
end

--- fact shared_tablespace_tables: tables that live in a shared tablespace an ALTER TABLE cannot
-- encrypt in place, "schema\0name" -> `{ tablespace, why, remedy }` (empty where there is none).
function facts.shared_tablespace_tables() return {} end
function described.shared_tablespace_tables(_, desc)
   local out = {}
   for _, t in ipairs(desc.tables or {}) do
      if t.tablespace then out[t.schema .. "\0" .. t.name] = { tablespace = t.tablespace } end
   end
   return out
end

--- fact system_spaces: the server's own tablespaces (system, undo, the mysql schema's), `{ name,
-- encrypted, can_encrypt, why }` (why: what keeps one plain). Empty where there is nothing to do.
function facts.system_spaces() return {} end
function described.system_spaces(_, desc) return desc.system_spaces or {} end

--- fact aria_tables: Aria tables (system ones too), largest first, `{ schema, name, bytes, encrypted =
-- bool | nil (cannot tell: the files are not on this host), page = ROW_FORMAT=PAGE }`. Empty where
-- there is no Aria.
function facts.aria_tables() return {} end
function described.aria_tables(_, desc) return desc.aria_tables or {} end

--- fact binlogs: the binary log files, oldest first, `{ enabled, files = { { name, encrypted =
-- bool | nil (cannot tell) } } }`; `enabled` false when the server writes none.
function facts.binlogs(d, ctx)
   local ok, rows, meta = pcall(ctx.query, ctx, "SHOW BINARY LOGS")
   if not ok then return { enabled = false, files = {} } end   -- binary logging is off
   local col, files = sqltext.columns(meta), {}
   for _, r in ipairs(rows) do
      local f = { name = r[col.Log_name] }
      if col.Encrypted then
         f.encrypted = r[col.Encrypted] == "Yes"
      else
         f.encrypted = d:binlog_encrypted(ctx, f.name)
      end
      files[#files + 1] = f
   end
   return { enabled = true, files = files }
end
function described.binlogs(_, desc) return desc.binlogs or { enabled = false, files = {} } end

--- Is binary log `name` encrypted? (nil: this flavour cannot tell)
function base.binlog_encrypted() return nil end

--- fact query_logs: the general and slow query logs, where they go and whether the log tables hold
-- rows: `{ output = "FILE" | "TABLE" | ..., general = { on, file }, slow = { on, file },
-- table_rows = { general_log = n, slow_log = n } }`.
function facts.query_logs(_, ctx)
   local function var(name) return ctx:fact("variable", name) end
   local out = { output = tostring(var("log_output") or "FILE"):upper(),
                 general = { on = on(var("general_log")), file = var("general_log_file") },
                 slow = { on = on(var("slow_query_log")), file = var("slow_query_log_file") },
                 table_rows = {} }
   for _, t in ipairs{ "general_log", "slow_log" } do
      local ok, rows = pcall(ctx.query, ctx, "SELECT COUNT(*) FROM mysql." .. t)
      out.table_rows[t] = ok and integer(rows[1][1]) or 0
   end
   return out
end
function described.query_logs(_, desc)
   return desc.query_logs or { output = "FILE", general = { on = false }, slow = { on = false }, table_rows = {} }
end

--- How long a session has been in its state, as PROCESSLIST has it (seconds, an SQL expression).
base.processlist_seconds = "TIME"

--- fact mdl_waits(ids): of these connections, those waiting for a table's metadata lock, id ->
-- seconds waited.
function facts.mdl_waits(d, ctx, ids)
   local out = {}
   if #ids == 0 then return out end
   local sql = ("SELECT ID, %s FROM INFORMATION_SCHEMA.PROCESSLIST WHERE ID IN (%s) "
      .. "AND STATE = 'Waiting for table metadata lock'"):format(d.processlist_seconds, ("?, "):rep(#ids - 1) .. "?")
   for _, r in ipairs(ctx:query(sql, table.unpack(ids))) do
      out[integer(r[1])] = tonumber(r[2]) or 0
   end
   return out
end
described.mdl_waits = function() return {} end

--- fact lock_holders(schema, name, except): the sessions that hold (or, where the server cannot
-- say, may hold) a metadata lock on the table, `{ id, user, host, seconds, transaction, certain }`
-- (seconds: how long its transaction has been open when `transaction`, else how long it has been in
-- its present state).
function facts.lock_holders(_, ctx, _, _, except)
   local out = {}
   for _, r in ipairs(ctx:query([[
      SELECT p.ID, p.USER, p.HOST, TIMESTAMPDIFF(SECOND, t.trx_started, NOW())
      FROM INFORMATION_SCHEMA.INNODB_TRX t JOIN INFORMATION_SCHEMA.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
      WHERE p.ID <> CONNECTION_ID() AND p.ID <> ? ORDER BY t.trx_started]], except or 0)) do
      out[#out + 1] = { id = integer(r[1]), user = r[2], host = r[3], seconds = integer(r[4]) or 0, transaction = true,
                        certain = false }
   end
   return out
end
described.lock_holders = function(_, desc) return desc.lock_holders or {} end

-- In transit -----------------------------------------------------------------------------------

--- Where a new CA and certificates go when the profile does not say.
base.tls_dir_default = "/etc/mysql/tls"

--- Can SET GLOBAL change ssl_ca / ssl_cert / ssl_key / tls_version (then a reload applies them)?
function base.tls_paths_dynamic() return false end

--- Can SET PERSIST keep options in mysqld-auto.cnf (MySQL 8.0.11 and later)?
function base.can_persist() return false end

--- Does the server know tls_version?
function base.has_tls_version() return true end

--- Does the server know require_secure_transport?
function base.has_require_secure_transport() return true end

--- The TLS protocols of `wanted` ("TLSv1.2,TLSv1.3") this server can speak (a version it does not
-- know would leave it no TLS at all), and why some were dropped, or nil.
-- @param wanted comma-separated list
-- @return list text, note
function base.tls_versions(_, wanted) return wanted, nil end

--- The key type certificates for this server get: `wanted` ("ec" or "rsa"), unless its TLS library
-- cannot use it; and why not, or nil.
function base.key_type(_, _, wanted) return wanted, nil end

--- Server options for a cipher policy: TLS 1.2 ciphers (ssl_cipher) and, where the server has
-- them apart, TLS 1.3 suites. `{ name, value, var, dynamic }`.
-- @param cipher ssl_cipher value or nil
-- @param suites TLS 1.3 suites or nil
function base.cipher_options(_, cipher)
   if not cipher then return {} end
   return { { name = "ssl_cipher", value = cipher, var = "ssl_cipher" } }
end

--- The statement that reloads the TLS certificates without a restart, or nil.
function base.tls_reload_sql() return nil end

local SSL_TYPES = { ssl = "ANY", x509 = "X509", subject = "SPECIFIED" }

--- The `mysql.user.ssl_type` an account gets for a REQUIRE level of the profile (ssl, x509,
-- subject).
-- @param level "ssl" | "x509" | "subject"
-- @return "ANY" | "X509" | "SPECIFIED"
function base.ssl_type(_, level) return SSL_TYPES[level] end

--- `ALTER USER IF EXISTS ?@? REQUIRE ...` for a level, with its values to bind (user, host, and for
-- subject the certificate's subject and the CA's). IF EXISTS: the statement goes to the binary
-- log, and a replica that lacks the account would stop replicating at it (the runbooks check that
-- the account exists here first).
-- @param user user name
-- @param host host pattern
-- @param level "ssl" | "x509" | "subject" | "none"
-- @param subject for "subject": the client certificate's subject
-- @param issuer for "subject": its CA's subject (nil: any issuer, while clients move to a new CA)
-- @return sql, values (a list)
function base.require_sql(_, user, host, level, subject, issuer)
   if level == "subject" and issuer then
      return "ALTER USER IF EXISTS ?@? REQUIRE SUBJECT ? AND ISSUER ?", { user, host, subject, issuer }
   elseif level == "subject" then
      return "ALTER USER IF EXISTS ?@? REQUIRE SUBJECT ?", { user, host, subject }
   end
   local clause = ({ ssl = "SSL", x509 = "X509", none = "NONE" })[level]
   if not clause then
      error(("require_sql: level '%s' is not ssl, x509, subject or none"):format(tostring(level)), 2)
   end
   return "ALTER USER IF EXISTS ?@? REQUIRE " .. clause, { user, host }
end

-- The certificate a TLS handshake to addr:port gets (the MySQL protocol's STARTTLS, no login),
-- or nil: through openssl s_client, a program that only looks.
local function handshake(ctx, addr, port)
   local target = addr:find(":", 1, true) and ("[%s]:%d"):format(addr, port) or ("%s:%d"):format(addr, port)
   local r = ctx:command{ "openssl", "s_client", "-starttls", "mysql", "-connect", target, stdin = "", timeout = 15,
                          ok = function() return true end }
   local pem = r and r.stdout:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-.-%-%-%-%-%-END CERTIFICATE%-%-%-%-%-")
   local certs = pem and require("pki").load_certs(pem)
   return certs and certs[1]
end

--- fact served_certificate: the certificate the server presents, `{ subject, not_after }`, or
-- nil when it offers no TLS. Asked of the server as a client sees it: a TLS connection to the
-- address the target knows, else (reached over its socket) a TLS handshake to its own TCP port;
-- a session's status says nothing of other sessions (Ssl_server_not_after is empty on a plain one).
function facts.served_certificate(_, ctx)
   local host, port = ctx.target.host, ctx.target.port
   if host then
      local c = ctx:connect{ host = host, port = port, tls = { mode = "required" } }
      if c then
         local t = c:tls()
         c:close()
         if t and t.peer then return { subject = t.peer.subject, not_after = t.peer.not_after } end
      end
   end
   local p = integer(ctx:fact("variable", "port"))
   if not host and p and p > 0 and not on(ctx:fact("variable", "skip_networking")) then
      local bind = ctx:fact("variable", "bind_address") or ""
      local addr = bind:match("^[^,%s]+") or ""
      if addr == "" or addr == "*" or addr == "0.0.0.0" or addr == "::" then addr = "127.0.0.1" end
      local cert = handshake(ctx, addr, p)
      if cert then return { subject = cert:subject(), not_after = cert:not_after() } end
      return nil
   end
   local na = ctx:fact("status", "Ssl_server_not_after")
   if na and na ~= "" then return { not_after_text = na } end
   return nil
end
function described.served_certificate(_, desc) return desc.served_certificate end

--- fact plain_sessions: sessions that do not use TLS, `{ user, host, tls = false | nil (unknown) }`.
function facts.plain_sessions(_, ctx)
   local out = {}
   local ok, rows = pcall(ctx.query, ctx, [[
      SELECT PROCESSLIST_USER, PROCESSLIST_HOST, CONNECTION_TYPE FROM performance_schema.threads
      WHERE TYPE = 'FOREGROUND' AND PROCESSLIST_ID <> CONNECTION_ID() AND CONNECTION_TYPE <> 'Socket'
        AND CONNECTION_TYPE <> 'SSL/TLS' AND PROCESSLIST_USER IS NOT NULL]])
   local ps = ctx:fact("variable", "performance_schema")
   if ok and ps ~= "OFF" and ps ~= "0" then
      for _, r in ipairs(rows) do out[#out + 1] = { user = r[1], host = value(r[2]) or "", tls = false } end
      return out
   end
   -- without performance_schema: every TCP session, its TLS unknown
   for _, r in ipairs(ctx:query([[SELECT USER, HOST FROM information_schema.PROCESSLIST
                                 WHERE ID <> CONNECTION_ID() AND HOST LIKE '%:%']])) do
      out[#out + 1] = { user = r[1], host = r[2], tls = nil }
   end
   return out
end
function described.plain_sessions(_, desc) return desc.plain_sessions or {} end

--- fact account_tls: account requirements, "user@host" -> `{ ssl_type, subject, issuer }`.
function facts.account_tls(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query("SELECT User, Host, ssl_type, x509_subject, x509_issuer FROM mysql.user")) do
      out[r[1] .. "@" .. r[2]] = { ssl_type = value(r[3]) or "", subject = value(r[4]) or "",
                                   issuer = value(r[5]) or "" }
   end
   return out
end
function described.account_tls(_, desc)
   local out = {}
   for _, a in ipairs(desc.accounts or {}) do
      out[a.user .. "@" .. a.host] = { ssl_type = a.ssl_type or "", subject = a.subject or "",
                                       issuer = a.issuer or "" }
   end
   return out
end

--- fact sessions: the other client sessions, `{ tcp = { { id, user, host } }, socket = { { id, user, host } } }`
-- (a TCP session's host is its address; a socket one's "localhost"; ids grow with each connection).
function facts.sessions(_, ctx)
   local tcp, socket = {}, {}
   for _, r in ipairs(ctx:query([[SELECT USER, HOST, ID FROM information_schema.PROCESSLIST
                                 WHERE ID <> CONNECTION_ID() AND USER IS NOT NULL AND USER <> ''
                                   AND COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID')
                                   AND USER <> 'system user']])) do
      local host = value(r[2]) or ""
      local addr = host:match("^(.*):%d+$")
      local one = { id = tonumber(r[3]), user = r[1], host = addr or host }
      if addr then tcp[#tcp + 1] = one else socket[#socket + 1] = one end
   end
   return { tcp = tcp, socket = socket }
end
function described.sessions(_, desc) return desc.sessions or { tcp = {}, socket = {} } end

--- fact denied_logins: how many logins the server refused since it started (a counter).
function facts.denied_logins(_, ctx) return tonumber(ctx:fact("status", "Aborted_connects")) end
described.denied_logins = 0

--- fact tls_library: "openssl" (or "yassl" for MySQL 5.7 builds before 5.7.28).
function facts.tls_library() return "openssl" end
function described.tls_library(_, desc) return desc.tls_library or "openssl" end

--- fact persisted(name): a value the server keeps in mysqld-auto.cnf (SET PERSIST), which wins over
-- the option files at the next start; nil when there is none (or the server has no such file).
function facts.persisted() return nil end
function described.persisted(_, desc, name) return desc.persisted and desc.persisted[name] or nil end

--- fact account_for(user, host): the account the server authenticates a client as (its own rules:
-- the most specific host first, named users before the anonymous one; without skip_name_resolve a
-- client from 127.0.0.1 is `localhost`), `{ user, host }` or nil.
function facts.account_for(d, ctx, user, host)
   return d:match_account(ctx:fact("accounts"), user, host, not on(ctx:fact("variable", "skip_name_resolve")))
end
function described.account_for(d, desc, user, host) return d:match_account(desc.accounts or {}, user, host, true) end

-- Does a host pattern of an account match a client host (LIKE wildcards, IP/netmask)?
local function host_matches(pattern, host)
   if pattern == "%" or pattern == host then return true end
   local ip, mask = pattern:match("^([%d.]+)/([%d.]+)$")
   if ip then
      local function num(a)
         local n = 0
         for part in a:gmatch("%d+") do n = n * 256 + tonumber(part) end
         return n
      end
      return host:match("^[%d.]+$") ~= nil and (num(host) & num(mask)) == num(ip)
   end
   local parts = { "^" }
   for c in pattern:lower():gmatch(".") do
      parts[#parts + 1] = c == "%" and ".*" or c == "_" and "." or c:gsub("%p", "%%%0")
   end
   return host:lower():match(table.concat(parts) .. "$") ~= nil
end

-- How specific a host pattern is: exact names and addresses first, then netmasks, then wildcard
-- patterns by the length before their first wildcard ('%' alone last).
local function specificity(pattern)
   local w = pattern:find("[%%_]")
   if w then return w - 1 end
   if pattern:find("/", 1, true) then return 900 end
   return 1000
end

--- The account among `accounts` that a client `user` from `host` authenticates as, by the
-- server's rules (see fact account_for).
-- @param accounts list of `{ user, host }`
-- @param user the login name
-- @param host the client's host: an address, or "localhost" for the socket
-- @param resolves the server resolves names (skip_name_resolve off): 127.0.0.1 and ::1 are localhost
-- @return account | nil
function base.match_account(_, accounts, user, host, resolves)
   local names = { host }
   if resolves and (host == "127.0.0.1" or host == "::1") then names = { "localhost", host } end
   local best, rank
   for _, a in ipairs(accounts) do
      if a.user == user or a.user == "" then
         for _, h in ipairs(names) do
            if host_matches(a.host, h) then
               local r = specificity(a.host) * 2 + (a.user ~= "" and 1 or 0)
               if not rank or r > rank then best, rank = a, r end
            end
         end
      end
   end
   return best
end

--- fact replication_without_tls: replication channels of this server (as a replica) without TLS,
-- `{ channel, host }`.
function described.replication_without_tls(_, desc) return desc.replication_without_tls or {} end

return { { "base", nil, base } }
