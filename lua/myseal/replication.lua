--- Replication, for the runbooks that must know a server's replicas or its primary: at-rest on a
-- primary asks each replica whether its keyring is active (encryption DDL replicates), tls-enforce
-- on a primary waits until each replica's channel uses TLS and requires TLS of the accounts the
-- replicas log in as, replica-tls moves a replica's channels to verified TLS, and check reports
-- both sides. A primary finds its replicas in [replication] replicas and among those registered
-- with it (SHOW SLAVE HOSTS), and asks each one over TCP with the check account
-- ([replication] check_user). What the servers say differently is in dialect/replication.lua;
-- docs/servers.md has the facts.
-- @module myseal.replication
local sys = require "sys"
local integer = require("myseal.sqltext").integer
local text = require "myseal.text"

local M = {}

--- Every parameter of replication, by name; a runbook takes the ones it reads with
-- `replication.params{ ... }`.
M.PARAMS = {
   ["replication.replicas"] = { type = "list",
      doc = "host:port of each replica of this server, also those not connected now (default: the replicas "
         .. "registered with it, SHOW SLAVE HOSTS)" },
   ["replication.check_user"] = { type = "string",
      doc = "an account on every replica that this server's runbooks log in as over TCP to ask it whether its "
         .. "keyring is active and how its channel connects (no privilege but SLAVE MONITOR on MariaDB, "
         .. "REPLICATION CLIENT on MySQL)" },
   ["replication.check_password"] = { type = "secret", doc = "its password" },
   ["replication.ca"] = { type = "path",
      doc = "replica-tls: the primary's CA certificate on this replica, which its channels verify the primary "
         .. "with (default: [pki] ca_cert)" },
   ["replication.require"] = { type = "enum", values = { "ssl", "none" }, default = "ssl",
      doc = "tls-enforce: REQUIRE SSL for the accounts this server's replicas log in as (none: left as they are; "
         .. "an account of [accounts] gets what it says there)" },
   ["replication.wait_seconds"] = { type = "integer", default = 30,
      doc = "how long replica-tls waits for a channel to connect over TLS, and tls-enforce for every replica's "
         .. "channel to show TLS" },
}

--- The declarations of the named parameters (all of them without a list), with a copy of another
-- library's declarations `others` (intransit.params{...}, atrest.params()).
-- @param names optional list of "section.key"
-- @param others optional declarations
-- @return declarations for runbook.new's `params`
function M.params(names, others)
   local out = {}
   for k, v in pairs(others or {}) do out[k] = v end
   for n, d in pairs(M.PARAMS) do
      if not names then out[n] = d end
   end
   for _, n in ipairs(names or {}) do out[n] = assert(M.PARAMS[n], n) end
   return out
end

local OVERRIDE = "at_rest.replicas_have_keyring=true"

-- This server as a primary ---------------------------------------------------------------------

--- The replicas of this server: those of [replication] replicas and those registered with it,
-- `{ host, port, name = "host:port" }`; how many registered replicas give no address (a MySQL
-- replica without report_host, when the profile lists none); and how many sessions read the binary
-- log without being registered (mysqlbinlog, a change-data-capture tool).
-- @return list, unknown, unregistered
function M.replicas(ctx)
   local out, seen = {}, {}
   local function add(host, port)
      local name = ("%s:%d"):format(host, port)
      if not seen[name] then
         seen[name] = true
         out[#out + 1] = { host = host, port = port, name = name }
      end
   end
   local listed = ctx.params.replication.replicas or {}
   for _, entry in ipairs(listed) do
      local host, port = entry:match("^%[(.+)%]:(%d+)$")
      if not host then host, port = entry:match("^([^:]+):?(%d*)$") end
      if not host then ctx:reject("replication.replicas: '%s' is not host:port", entry) end
      add(host, integer(port) or 3306)
   end
   local registered, unknown = ctx:fact("replica_hosts"), 0
   for _, r in ipairs(registered) do
      if r.host ~= "" then add(r.host, r.port) elseif #listed == 0 then unknown = unknown + 1 end
   end
   local readers = #ctx:fact("binlog_dumps")
   return out, unknown, math.max(0, readers - #registered)
end

--- A replica as the check account sees it (fact replica_state), or nil and why not.
function M.ask(ctx, r)
   local p = ctx.params.replication
   if not p.check_user then
      return nil, "replication.check_user is not set (an account on the replicas to ask them with)"
   end
   return ctx:fact("replica_state", r, { user = p.check_user, password = ctx:secret("replication.check_password") })
end

-- The replicas, and a first problem that keeps them from being asked at all, or nil.
local function found(ctx, what)
   local list, unknown, unregistered = M.replicas(ctx)
   if unregistered > 0 then
      ctx:warn("%s this server's binary log without registering as a replica (mysqlbinlog, a change-data-capture "
         .. "tool?): not asked", text.count(unregistered, "session reads", "sessions read"))
   end
   if unknown > 0 then
      return list, ("%s registered with this server without an address, so %s cannot be asked: list every replica "
         .. "in replication.replicas (host:port), or set report_host on it"):format(
         text.count(unknown, "replica is", "replicas are"), what)
   end
   return list
end

--- Why at-rest must not encrypt on this server yet: a replica whose keyring is not active, or
-- that cannot be asked; nil when every replica has an active keyring (or there is none).
-- @return message | nil
function M.keyring_problem(ctx)
   local list, why = found(ctx, "their keyrings")
   local after = ("; or set %s once each has its keyring"):format(OVERRIDE)
   if why then return why .. after end
   for _, r in ipairs(list) do
      local st, err = M.ask(ctx, r)
      if not st then
         return ("cannot ask the replica %s whether its keyring is active: %s%s"):format(r.name, err, after)
      end
      if not st.keyring_active then
         return ("the replica %s (%s) has no active keyring (%s): encryption DDL replicates and would stop its "
            .. "replication; run at-rest there first"):format(r.name, st.server, st.keyring)
      end
      ctx:log("replica %s (%s): keyring %s active", r.name, st.server, st.keyring)
   end
   return nil
end

-- Is channel `ch` of a replica the one from this server (its server_id; before it ever connected,
-- its port)?
local function from_me(ctx, ch, me)
   if ch.source_id and ch.source_id > 0 then return ch.source_id == me end
   local port = integer(ctx:fact("variable", "port"))
   return port ~= nil and ch.port == port
end

-- The problems of one replica's channels from this server; `waiting` when one may still connect.
local function replica_channel_problems(ctx, r, st, me, out)
   if not st.channels then
      out[#out + 1] = ("the replica %s: its channels cannot be read (%s)"):format(r.name, st.channels_error)
      return false
   end
   local d, mine, waiting = ctx.dialect, 0, false
   for _, ch in ipairs(st.channels) do
      if from_me(ctx, ch, me) then
         mine = mine + 1
         local name = ("the replica %s, channel %s"):format(r.name, d:channel_name(ch.name))
         if not ch.ssl then
            out[#out + 1] = name .. ", connects without TLS: run replica-tls there"
         elseif ch.io ~= "Yes" then
            out[#out + 1] = ("%s, is not connected (IO thread %s%s)"):format(name, ch.io,
               ch.io_errno ~= 0 and (": " .. ch.io_error) or "")
            waiting = waiting or ch.io == "Connecting"
         elseif not ch.verify then
            ctx:warn("%s uses TLS without verifying this server's certificate: run replica-tls there", name)
         end
      end
   end
   if mine == 0 then
      out[#out + 1] = ("the replica %s has no channel from this server (server_id %d)"):format(r.name, me)
   end
   return waiting
end

--- What keeps this server from requiring TLS without cutting its replicas off: for each replica, a
-- channel from this server that does not use TLS or is not connected, a replica that cannot be
-- asked. Waits up to replication.wait_seconds while a channel connects (not in plan or check).
-- @return list of messages (empty: every replica's channel uses TLS, or there is none)
function M.channel_problems(ctx)
   local me = integer(ctx:fact("variable", "server_id")) or 0
   local deadline = sys.clock() + ctx.params.replication.wait_seconds
   while true do
      local list, why = found(ctx, "their channels")
      local out, waiting = {}, false
      if why then out[1] = why end
      for _, r in ipairs(list) do
         local st, err = M.ask(ctx, r)
         if not st then
            out[#out + 1] = ("the replica %s: its channel cannot be asked (%s)"):format(r.name, err)
         elseif replica_channel_problems(ctx, r, st, me, out) then
            waiting = true
         end
      end
      if #out == 0 or not waiting or ctx.planning or sys.clock() > deadline then return out end
      sys.sleep(1)
   end
end

--- `accounts` (as intransit.accounts gives them) and the accounts this server's connected replicas
-- log in as, each with the REQUIRE of replication.require (an account already there keeps its own).
-- @param accounts list of `{ account, user, host, level }`
-- @return a new list
function M.with_replica_accounts(ctx, accounts)
   local out, have = table.move(accounts, 1, #accounts, 1, {}), {}
   for _, a in ipairs(accounts) do have[a.account] = true end
   local level = ctx.params.replication.require
   if level == "none" then return out end
   for _, s in ipairs(ctx:fact("binlog_dumps")) do
      local acc = ctx:fact("account_for", s.user, s.host)
      local name = acc and (acc.user .. "@" .. acc.host)
      if name and not have[name] then
         have[name] = true
         out[#out + 1] = { account = name, user = acc.user, host = acc.host, level = level, replication = true }
      end
   end
   table.sort(out, function(a, b) return a.account < b.account end)
   return out
end

-- This server as a replica ---------------------------------------------------------------------

--- This server's replication channels (fact replica_channels).
function M.channels(ctx) return ctx:fact("replica_channels") end

--- The primary's CA a replica's channels trust: replication.ca, else [pki] ca_cert; nil when neither.
function M.ca(ctx) return ctx.params.replication.ca or ctx.params.pki.ca_cert end

--- The TLS a channel gets: `{ ssl = true, ca, verify = true }`.
function M.wanted(ctx) return { ssl = true, ca = M.ca(ctx), verify = true } end

--- Why channel `ch` is not on verified TLS with the primary's CA, or nil.
function M.channel_unfit(ctx, ch)
   local d, ca = ctx.dialect, M.ca(ctx)
   local name = "channel " .. d:channel_name(ch.name)
   if not ch.ssl then return name .. " connects without TLS" end
   if not ch.verify then return name .. " uses TLS without verifying the primary's certificate" end
   if ch.ssl_ca == "" then
      return ("%s verifies the primary with no CA of its own (%s's default), not %s"):format(name, d:describe(),
         tostring(ca))
   end
   if ch.ssl_ca ~= ca then return ("%s trusts %s, not %s"):format(name, ch.ssl_ca, tostring(ca)) end
   return nil
end

--- Is channel `ch` connected with no error? true, or false and what it shows.
function M.connected(ch)
   if ch.io == "Yes" and ch.io_errno == 0 then return true end
   if ch.io_errno ~= 0 then return false, ("%s, error %d: %s"):format(ch.io, ch.io_errno, ch.io_error) end
   return false, "IO thread " .. ch.io
end

-- For check --------------------------------------------------------------------------------------

--- check's findings on replication (replica-tls' own steps report the channels' TLS): on a
-- replica, whether its keyring is active, so that encryption DDL from its primary applies; on a
-- primary, each replica's keyring as its check account sees it (when replication.check_user is set).
-- Findings as check/init.lua makes them.
-- @return list of findings
function M.findings(ctx)
   local out, d = {}, ctx.dialect
   -- an account that may not read the channels (SLAVE MONITOR): replica-tls' steps say so
   local read, channels = pcall(M.channels, ctx)
   if read and #channels > 0 then
      local active = ctx:fact("keyring_active")
      out[#out + 1] = { area = "at rest", id = "replica-keyring", severity = active and "ok" or "fail",
         title = active and ("a replica with its keyring (%s) active: encryption DDL from its primary applies here")
               :format(d.keyring)
            or ("a replica without an active keyring (%s): encryption DDL from its primary would stop its "
               .. "replication"):format(d.keyring),
         fix = not active and { runbook = "at-rest", step = "restart" } or nil }
   end
   if ctx.params.replication.check_user then
      for _, r in ipairs((M.replicas(ctx))) do
         local st, err = M.ask(ctx, r)
         local f = { area = "at rest", id = "replica:" .. r.name }
         if not st then
            f.severity, f.title = "warn", ("the replica %s cannot be asked: %s"):format(r.name, err)
         else
            f.severity = st.keyring_active and "ok" or "fail"
            f.title = ("the replica %s (%s): keyring %s %s"):format(r.name, st.server, st.keyring,
               st.keyring_active and "active" or "not active")
         end
         if f.severity ~= "ok" then f.fix = { runbook = "at-rest", step = "preflight" } end
         out[#out + 1] = f
      end
   end
   return out
end

return M
