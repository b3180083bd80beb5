--- Replication, for every flavour in one file (the other dialect files are one per flavour): a
-- primary's replicas and the sessions reading its binary log, a replica's channels and their TLS,
-- the statements that move a channel to TLS, and a replica as its check account sees it.
-- dialect/init.lua layers these entries over the stock dialects; docs/servers.md has the facts.
-- @module myseal.dialect.replication
local sqltext = require "myseal.sqltext"

local value, integer = sqltext.value, sqltext.integer

local base, mariadb, mysql = { facts = {}, described = {} }, {}, {}

-- Reading SHOW ... STATUS rows -------------------------------------------------------------------

-- A row's field under the first of `names` its result has (MariaDB and MySQL before 8.0.22 say
-- Master/Slave, MySQL 8.0.22+ Source/Replica).
local function field(row, col, names)
   for _, n in ipairs(names) do
      if col[n] then return value(row[col[n]]) end
   end
   return nil
end

local function yes(v) return v ~= nil and tostring(v):upper() == "YES" end

-- One channel of SHOW ALL SLAVES STATUS / SHOW REPLICA STATUS / SHOW SLAVE STATUS.
local function channel(row, col)
   local function f(...) return field(row, col, { ... }) end
   return {
      name = f("Connection_name", "Channel_Name") or "",
      host = f("Master_Host", "Source_Host") or "",
      port = integer(f("Master_Port", "Source_Port")) or 3306,
      user = f("Master_User", "Source_User") or "",
      ssl = yes(f("Master_SSL_Allowed", "Source_SSL_Allowed")),
      ssl_ca = f("Master_SSL_CA_File", "Source_SSL_CA_File") or "",
      verify = yes(f("Master_SSL_Verify_Server_Cert", "Source_SSL_Verify_Server_Cert")),
      io = f("Slave_IO_Running", "Replica_IO_Running") or "No",
      sql = f("Slave_SQL_Running", "Replica_SQL_Running") or "No",
      io_errno = integer(f("Last_IO_Errno")) or 0,
      io_error = f("Last_IO_Error") or "",
      source_id = integer(f("Master_Server_Id", "Source_Server_Id")),
      behind = integer(f("Seconds_Behind_Master", "Seconds_Behind_Source")),
   }
end

--- The name of a channel for people: MariaDB's default connection and MySQL's default channel
-- are both "".
function base.channel_name(_, name) return name == "" and "(default)" or ("'" .. name .. "'") end

-- A primary's side -----------------------------------------------------------------------------

--- fact replica_hosts: the replicas registered with this server (SHOW SLAVE HOSTS; MySQL 8.0.22+
-- SHOW REPLICAS): `{ server_id, host, port }`, host "" when a replica reports none (MariaDB shows
-- the replica's address then, MySQL nothing).
function base.facts.replica_hosts(d, ctx)
   local rows, meta = ctx:query(d:replica_hosts_sql())
   local col, out = sqltext.columns(meta), {}
   for _, r in ipairs(rows) do
      local port = integer(field(r, col, { "Port" })) or 0
      out[#out + 1] = { server_id = integer(field(r, col, { "Server_id", "Server_Id" })),
                        host = field(r, col, { "Host" }) or "", port = port > 0 and port or 3306 }
   end
   return out
end
function base.described.replica_hosts(_, desc) return desc.replica_hosts or {} end

function base.replica_hosts_sql() return "SHOW SLAVE HOSTS" end
function mysql.replica_hosts_sql(d) return d:at_least("8.0.22") and "SHOW REPLICAS" or "SHOW SLAVE HOSTS" end

--- fact binlog_dumps: the sessions reading this server's binary log (replicas' IO threads, and
-- readers such as mysqlbinlog): `{ user, host }`, host the client's address.
function base.facts.binlog_dumps(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query([[SELECT USER, HOST FROM INFORMATION_SCHEMA.PROCESSLIST
                                 WHERE COMMAND LIKE 'Binlog Dump%']])) do
      local host = value(r[2]) or ""
      out[#out + 1] = { user = r[1], host = host:match("^(.*):%d+$") or host }
   end
   return out
end
function base.described.binlog_dumps(_, desc) return desc.binlog_dumps or {} end

--- fact replica_state(replica, login): a replica `{ host, port }` as the check account `login`
-- (`{ user, password }`) sees it over TCP (TLS when the replica offers it): `{ server, keyring,
-- keyring_active, channels | channels_error }` (channels as fact replica_channels there), or nil
-- and why it cannot be asked. The replica's own dialect answers (it may be another version).
function base.facts.replica_state(_, ctx, r, login)
   local c, err = ctx:connect{ alone = true, host = r.host, port = r.port, user = login.user,
                               password = login.password, tls = { mode = "preferred" }, connect_timeout = 10 }
   if not c then return nil, err end
   local rd, derr = require("myseal.dialect").for_server(c:server())
   if not rd then
      c:close()
      return nil, derr
   end
   -- the questions the replica's dialect asks, over this connection
   local remote = {}
   function remote.query(_, sql, ...)
      local rows, meta = c:query(sql, ...)
      if not rows then error(("%s: %s"):format(sql:gsub("%s+", " "), meta), 0) end
      return rows, meta
   end
   function remote.fact(self, name, ...) return rd.facts[name](rd, self, ...) end
   local ok, state = pcall(function()
      local st = { server = rd:describe(), keyring = rd.keyring, keyring_active = remote:fact("keyring_active") }
      local cok, channels = pcall(remote.fact, remote, "replica_channels")
      if cok then st.channels = channels else st.channels_error = tostring(channels) end
      return st
   end)
   c:close()
   if not ok then return nil, tostring(state) end
   return state
end
function base.described.replica_state(_, desc, r)
   local st = (desc.replica_states or {})[("%s:%d"):format(r.host, r.port)]
   if not st then return nil, ("the description has no replica_states entry for %s:%d"):format(r.host, r.port) end
   return st
end

-- A replica's side -----------------------------------------------------------------------------

--- fact replica_channels: this server's replication channels (it is a replica of each one's
-- primary): `{ name, host, port, user, ssl, ssl_ca, verify, io ("Yes", "No", "Connecting"), sql,
-- io_errno, io_error, source_id (the primary's server_id; nil before it connected), behind }`.
function base.facts.replica_channels(d, ctx)
   local rows, meta = ctx:query(d:replica_status_sql())
   local col, out = sqltext.columns(meta), {}
   for _, r in ipairs(rows) do out[#out + 1] = channel(r, col) end
   return out
end
--- described replica_channels: the description's, each field defaulting to what a new channel has
-- on that server (MariaDB 11.4: TLS, and the primary verified).
function base.described.replica_channels(d, desc)
   local out = {}
   for _, c in ipairs(desc.replica_channels or {}) do
      local def = d:replica_tls_default()
      local ch = { name = "", port = 3306, user = "", ssl = def.ssl, ssl_ca = "", verify = def.verify, io = "Yes",
                   sql = "Yes", io_errno = 0, io_error = "" }
      for k, v in pairs(c) do ch[k] = v end
      out[#out + 1] = ch
   end
   return out
end

function mariadb.replica_status_sql() return "SHOW ALL SLAVES STATUS" end
function mysql.replica_status_sql(d) return d:at_least("8.0.22") and "SHOW REPLICA STATUS" or "SHOW SLAVE STATUS" end

--- What a channel made without TLS options has: `{ ssl, verify }`. MariaDB 11.4's internal client
-- uses TLS and verifies the server's certificate by default (MDEV-31857), with no CA of the
-- site's: a channel can be on TLS without trusting the primary's CA.
function base.replica_tls_default() return { ssl = false, verify = false } end
function mariadb.replica_tls_default(d) return { ssl = d:at_least("11.4.0"), verify = d:at_least("11.4.0") } end

--- The statement that stops channel `name` for a change of its connection options, with its
-- values. MariaDB takes CHANGE MASTER only with both threads stopped; MySQL with the receiver
-- (IO) thread stopped, the applier going on.
-- @return sql, values
function mariadb.replica_stop_sql(_, name) return "STOP SLAVE ?", { name } end
function mysql.replica_stop_sql(d, name)
   return (d:at_least("8.0.22") and "STOP REPLICA" or "STOP SLAVE") .. " IO_THREAD FOR CHANNEL ?", { name }
end

--- The statement that starts again what replica_stop_sql stopped of channel `name`, as far as it
-- ran before (`running`: `{ io = bool, sql = bool }`), or nil when nothing ran.
-- @return sql, values | nil
function mariadb.replica_start_sql(_, name, running)
   local threads = {}
   if running.sql then threads[#threads + 1] = "SQL_THREAD" end
   if running.io then threads[#threads + 1] = "IO_THREAD" end
   if #threads == 0 then return nil end
   return "START SLAVE ? " .. table.concat(threads, ", "), { name }
end
function mysql.replica_start_sql(d, name, running)
   if not running.io then return nil end
   return (d:at_least("8.0.22") and "START REPLICA" or "START SLAVE") .. " IO_THREAD FOR CHANNEL ?", { name }
end

--- The statement that sets channel `name`'s TLS, `t = { ssl, ca, verify }`, with its values.
-- @return sql, values
function mariadb.replica_tls_sql(_, name, t)
   return "CHANGE MASTER ? TO MASTER_SSL = ?, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = ?",
      { name, t.ssl and 1 or 0, t.ca or "", t.verify and 1 or 0 }
end
function mysql.replica_tls_sql(d, name, t)
   local values = { t.ssl and 1 or 0, t.ca or "", t.verify and 1 or 0, name }
   if d:at_least("8.0.23") then
      return "CHANGE REPLICATION SOURCE TO SOURCE_SSL = ?, SOURCE_SSL_CA = ?, SOURCE_SSL_VERIFY_SERVER_CERT = ? "
         .. "FOR CHANNEL ?", values
   end
   return "CHANGE MASTER TO MASTER_SSL = ?, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = ? FOR CHANNEL ?",
      values
end

--- fact primary_verified(host, port, ca): does the server at host:port present a certificate that
-- chains to the CA file `ca` and names `host`, as a replica's channel checks it? true, or false and
-- why (a TLS handshake through openssl s_client: no login, nothing in the server's failed logins).
function base.facts.primary_verified(_, ctx, host, port, ca)
   local target = host:find(":", 1, true) and ("[%s]:%d"):format(host, port) or ("%s:%d"):format(host, port)
   local by_ip = host:match("^[%d.]+$") or host:find(":", 1, true)
   local r = ctx:command{ "openssl", "s_client", "-starttls", "mysql", "-connect", target, "-CAfile", ca,
                          "-verify_return_error", by_ip and "-verify_ip" or "-verify_hostname", host,
                          stdin = "", timeout = 15, ok = function() return true end }
   local out = r and (r.stdout .. "\n" .. r.stderr) or ""
   if out:find("Verify return code: 0 (ok)", 1, true) then return true end
   local why = out:match("verify error:num=%d+:([^\n]+)") or out:match("Verify return code: %d+ %(([^)]*)%)")
      or out:match("connect:errno=%d+") or out:match("[^\n]*[Ee]rror[^\n]*") or "no TLS handshake"
   return false, why
end
--- described primary_verified: unknown (nil) unless the description says.
function base.described.primary_verified(_, desc, host, port)
   local v = (desc.primary_verified or {})[("%s:%d"):format(host, port)]
   if v == nil then return nil end
   if v == true then return true end
   return false, tostring(v)
end

return { base = base, mariadb = mariadb, mysql = mysql }
