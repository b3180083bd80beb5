-- replica-tls.lua: a replica's channels to its primary on TLS that verifies the primary (its CA,
-- and the name the channel connects to in its certificate). Run it on each replica once its
-- primary offers TLS (in-transit there) and before the primary requires it (tls-enforce there,
-- which waits for every replica's channel to show TLS); the story runbook encrypt runs it where
-- the server is a replica. The replica's IO thread reads the CA file at each connection, so a CA
-- bundle copied over it later (rotate-certs' phases) needs no change here. What the servers say
-- differently is in lua/myseal/dialect/replication.lua.
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn",
     doc = "the primary's CA is on this host, and the primary presents a certificate from it for the name each "
        .. "channel connects to" },
   { name = "channels",
     doc = "each channel on TLS with the primary's CA and its certificate verified (CHANGE MASTER ... MASTER_SSL, "
        .. "CHANGE REPLICATION SOURCE on MySQL 8.0.23+), stopped and started around it; put back when it cannot "
        .. "connect so; undone: each channel's TLS options as they were" },
   { name = "verify", doc = "each channel connected over TLS to its verified primary, with no error" },
}

-- ------------------------------------------------------------------------------------------------

local replication = require "myseal.replication"
local tls = require "myseal.intransit"
local sys = require "sys"
local text = require "myseal.text"

local done = runbook.done
local BEFORE = "replica-tls.before"   -- recorded: each changed channel's TLS options before, for undo

-- Is this server a replica? (a server that is not skips every step)
local function replicating(ctx)
   return #replication.channels(ctx) > 0
end

steps.preflight.when = replicating
steps.preflight.check = function(ctx)
   local d = ctx.dialect
   local ca = replication.ca(ctx)
   if not ca then
      return false, "replication.ca is not set: copy the primary's CA certificate to this host and name it there"
   end
   local cas = tls.load_certs(ctx, ca)
   if not cas or #cas == 0 then return false, ("replication.ca %s is not there"):format(ca) end
   -- the server's IO thread reads it, as the server's user, at each connection
   local user = ctx.params.server.user
   local readable, err, code = sys.access_as(user, ca, "r")
   if not readable and code ~= sys.errno.EPERM then
      return false, ("replication.ca: %s; the server's IO thread reads it as that user"):format(err)
   end
   if d:replica_tls_default().verify then
      ctx:warn("%s verifies a primary's certificate by default: a channel that does not trust the primary's CA "
         .. "stops connecting once the primary presents a certificate from it", d:describe())
   end
   for _, ch in ipairs(replication.channels(ctx)) do
      local ok, why = ctx:fact("primary_verified", ch.host, ch.port, ca)
      local name = ("channel %s, the primary %s:%d"):format(d:channel_name(ch.name), ch.host, ch.port)
      if ok == false then
         return false, ("%s: its certificate cannot be verified with %s (%s); the channel would stop connecting")
            :format(name, ca, why)
      elseif ok then
         ctx:log("%s: its certificate is verified with %s for the name %s", name, ca, ch.host)
      else
         ctx:log("%s: its certificate cannot be checked from here", name)
      end
   end
   return true
end

steps.channels.when = replicating
steps.channels.check = function(ctx)
   for _, ch in ipairs(replication.channels(ctx)) do
      local why = replication.channel_unfit(ctx, ch)
      if why then return false, why end
   end
   return true
end

-- Channel `ch` with TLS options `t`: stopped, changed, started again as far as it ran.
local function set_tls(ctx, ch, t)
   local d = ctx.dialect
   local running = { io = ch.io ~= "No", sql = ch.sql == "Yes" }
   local function exec(sql, values)
      if sql then ctx:sql(sql, table.unpack(values)) end
   end
   exec(d:replica_stop_sql(ch.name))
   exec(d:replica_tls_sql(ch.name, t))
   exec(d:replica_start_sql(ch.name, running))   -- nothing when the channel was not running
   return running.io
end

-- The channel called `name` now, or nil.
local function channel(ctx, name)
   for _, ch in ipairs(replication.channels(ctx)) do
      if ch.name == name then return ch end
   end
   return nil
end

-- Wait until channel `name` is connected (or the wait is over): true, or false and what it shows.
local function wait_connected(ctx, name)
   local up, state
   ctx:wait(("channel %s connected over TLS"):format(ctx.dialect:channel_name(name)), function()
      local ch = channel(ctx, name)
      up, state = replication.connected(ch or { io = "gone", io_errno = 0 })
      -- an error while connecting is final for this wait: the IO thread retries only after a minute
      return up or (ch ~= nil and ch.io_errno ~= 0)
   end, { timeout = ctx.params.replication.wait_seconds, interval = 0.25, ends = true })
   return up, state
end

steps.channels.apply = function(ctx)
   local d, wanted = ctx.dialect, replication.wanted(ctx)
   local before = ctx:recorded(BEFORE) or {}
   for _, ch in ipairs(replication.channels(ctx)) do
      if replication.channel_unfit(ctx, ch) then
         local was = before[ch.name] or { ssl = ch.ssl, ca = ch.ssl_ca, verify = ch.verify }
         before[ch.name] = was
         ctx:record(BEFORE, before)
         if set_tls(ctx, ch, wanted) and not ctx.planning then
            local up, state = wait_connected(ctx, ch.name)
            if not up then
               set_tls(ctx, channel(ctx, ch.name) or ch, was)
               ctx:fail("channel %s did not connect over TLS to %s:%d (%s): its TLS options are put back as they "
                  .. "were", d:channel_name(ch.name), ch.host, ch.port, state)
            end
            ctx:log("channel %s: connected to %s:%d over TLS, the primary verified", d:channel_name(ch.name),
               ch.host, ch.port)
         end
      end
   end
end

steps.channels.undo = function(ctx)
   for name, was in pairs(ctx:recorded(BEFORE) or {}) do
      local ch = channel(ctx, name)
      if ch then set_tls(ctx, ch, was) end
   end
end

steps.verify.when = function(ctx)
   if ctx.mode == "plan" then return false, "after the changes" end
   return replicating(ctx)
end
steps.verify.check = function(ctx)
   local d, problems = ctx.dialect, {}
   for _, ch in ipairs(replication.channels(ctx)) do
      local name = "channel " .. d:channel_name(ch.name)
      local unfit = replication.channel_unfit(ctx, ch)
      local up, state = replication.connected(ch)
      if unfit then
         problems[#problems + 1] = unfit
      elseif not up then
         problems[#problems + 1] = ("%s: %s"):format(name, state)
      else
         ctx:log("%s: connected to %s:%d over TLS, %s behind", name, ch.host, ch.port,
            ch.behind and text.count(ch.behind, "second") or "unknown")
      end
   end
   return done(#problems == 0, table.concat(problems, "; "))
end

return runbook.new {
   name = "replica-tls",
   summary = "a replica's channels to its primary on TLS that verifies the primary (its CA and its name)",
   params = replication.params({ "replication.ca", "replication.wait_seconds" }, tls.params{ "pki.ca_cert" }),
   steps = steps,
}
