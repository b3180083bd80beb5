-- in-transit.lua: TLS for the server and its accounts, with no lockouts.
-- The shared parts (certificates, accounts, verification) are in lua/myseal/intransit.lua; what
-- the servers do differently is asked of the dialect (lua/myseal/dialect/).
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "lockout-preflight", severity = "warn",
     doc = "before anything changes: no live plain-text TCP session or replication channel will be cut off" },
   { name = "ca", doc = "the CA that signs the server and client certificates (made, or the site's)" },
   { name = "server-cert",
     doc = "a server certificate from the CA with every name clients use in its SAN (reused while valid)" },
   { name = "client-certs", doc = "a client certificate for each account that will require X509 or a SUBJECT" },
   { name = "server-options", doc = "ssl_ca, ssl_cert, ssl_key and tls_version in the server's option file" },
   { name = "tls-load", doc = "the server presents the certificate: reloaded without a restart where it can be" },
   { name = "require-transport",
     doc = "require_secure_transport=ON: TCP without TLS is refused (the socket keeps working for accounts "
        .. "without REQUIRE)" },
   { name = "accounts", doc = "ALTER USER ... REQUIRE for each account of [accounts] (never GRANT ... REQUIRE)" },
   { name = "verify", doc = "as a client sees it: verify_identity to every name, plain TCP refused, X509 accounts" },
}

-- ------------------------------------------------------------------------------------------------

local tls = require "myseal.intransit"
local options = require "myseal.options"
local pki = require "pki"
local text = require "myseal.text"

local done = runbook.done

-- The options not as wanted in the running server: list of options.
local function stale_variables(ctx)
   local out = {}
   for _, o in ipairs(tls.server_options(ctx)) do
      local now = ctx:fact("variable", o.var)
      if not tls.same(now or "", o.value) then out[#out + 1] = o end
   end
   return out
end

-- Does the server present our certificate?
local function serving_ours(ctx)
   local served = ctx:fact("served_certificate")
   if not served then return false, "the server has no TLS" end
   local certs = tls.load_certs(ctx, tls.paths(ctx).cert)
   local cert = certs and certs[1]
   if not cert then return false, "no server certificate yet" end
   if served.subject and (served.subject ~= cert:subject() or served.not_after ~= cert:not_after()) then
      return false, ("the server presents %s (until %s), not %s"):format(served.subject,
         os.date("!%Y-%m-%d", served.not_after or 0), cert:subject())
   end
   return true
end

-- What REQUIRE an account should get: ssl_type, subject, issuer.
local function wanted_requirement(ctx, a)
   local want = ctx.dialect:ssl_type(a.level)
   if a.level ~= "subject" then return want end
   local cert = (tls.load_certs(ctx, (tls.client_paths(ctx, a.account))) or {})[1]
   local ca = (tls.ca(ctx) or {})[1]
   return want, cert and cert:subject() or "(the client certificate's subject)",
      ca and ca:subject() or "(the CA's subject)"
end

local function wanted(ctx) return function(a) return wanted_requirement(ctx, a) end end

local function enforcing(ctx)
   return ctx.params.tls.require_secure_transport or #tls.accounts(ctx) > 0
end

-- Is the enforcement this run wants in place already? (then nothing new can be cut off)
local function enforced(ctx)
   if ctx.params.tls.require_secure_transport and
      not tls.same(ctx:fact("variable", "require_secure_transport") or "", "ON") then
      return false
   end
   local d = ctx.dialect
   return tls.first_unrequired(ctx, function(a) return d:ssl_type(a.level) end) == nil
end

steps["lockout-preflight"].when = function(ctx) return enforcing(ctx) and not enforced(ctx) end
steps["lockout-preflight"].check = function(ctx)
   local problems = {}
   for _, s in ipairs(ctx:fact("plain_sessions")) do
      problems[#problems + 1] = ("session of %s from %s %s"):format(s.user, s.host,
         s.tls == nil and "(TLS unknown: performance_schema is off)" or "without TLS")
   end
   for _, r in ipairs(ctx:fact("replication_without_tls")) do
      problems[#problems + 1] = ("replication channel %s from %s without SSL"):format(r.channel, r.host)
   end
   local plain_accounts = {}
   for _, a in ipairs(ctx:fact("accounts")) do
      if a.ssl_type == "" and a.host ~= "localhost" and a.user ~= "" then
         plain_accounts[#plain_accounts + 1] = a.user .. "@" .. a.host
      end
   end
   if #plain_accounts > 0 and ctx.params.tls.require_secure_transport then
      ctx:log("after enforcement these accounts must use TLS over TCP: %s", table.concat(plain_accounts, ", "))
   end
   if #problems == 0 then return true end
   for _, p in ipairs(problems) do ctx:warn("would be cut off: %s", p) end
   if ctx.params.tls.accept_lockout then return true end
   return false, ("%s would be cut off (%s); move them to TLS first, or set tls.accept_lockout=true")
      :format(text.count(#problems, "connection"), table.concat(problems, "; "))
end

function steps.ca.when(ctx) return not tls.paths(ctx).site_server end
function steps.ca.check(ctx)
   local paths = tls.paths(ctx)
   local cas = tls.ca(ctx)
   local ca = cas and cas[1]
   if paths.site_ca then
      if not ca then ctx:fail("pki.ca_cert %s: not a certificate, or missing", paths.ca) end
      if not ca:is_ca() then ctx:fail("pki.ca_cert %s is not a CA certificate", paths.ca) end
      return true
   end
   if not ca then return false, "no CA yet" end
   local key = tls.ca_key(ctx)
   if not key or not ca:matches_key(key) then return false, "the CA key is missing or does not match" end
   return done(ca:days_left() > ctx.params.pki.renew_days,
      ("the CA expires in %d days: rotate-certs renews it"):format(ca:days_left()))
end
function steps.ca.apply(ctx)
   local paths = tls.paths(ctx)
   tls.mkdir(ctx, paths.dir)
   local key = tls.new_key(ctx)
   local host = tls.server_names(ctx)[1] or "server"
   local ca = assert(pki.self_signed{ key = key, days = ctx.params.pki.ca_days,
      subject = ("/O=%s/CN=%s TLS CA (%s)"):format(ctx.params.pki.organization, ctx.params.pki.organization, host) })
   ctx:write_file(paths.ca_key, key:pem(), { mode = tonumber("600", 8), secret = true })
   ctx:write_file(paths.ca, ca:pem(), { mode = tonumber("644", 8) })
end

steps["server-cert"].check = function(ctx)
   local why = tls.server_cert_unfit(ctx, tls.ca(ctx) or {})
   return done(why == nil, why and ("the server certificate: " .. why))
end
steps["server-cert"].apply = tls.issue_server_cert

steps["client-certs"].when = function(ctx)
   for _, a in ipairs(tls.accounts(ctx)) do if a.level ~= "ssl" then return true end end
   return false
end
steps["client-certs"].check = function(ctx)
   local why = tls.client_cert_unfit(ctx, tls.ca(ctx) or {})
   return done(why == nil, why)
end
steps["client-certs"].apply = function(ctx) tls.issue_client_certs(ctx, tls.ca(ctx) or {}) end

steps["server-options"].check = function(ctx)
   local doc = options.tree(ctx)
   if not doc then ctx:fail("server.cnf is not set: name the server's option file in [server] cnf") end
   local groups = ctx.dialect:server_groups()
   local missing = {}
   for _, o in ipairs(tls.server_options(ctx)) do
      if not tls.same(doc:effective(groups, o.name) or "", o.value) then missing[#missing + 1] = o.name end
   end
   return done(#missing == 0, "to set: " .. table.concat(missing, ", "))
end
steps["server-options"].apply = function(ctx) options.write(ctx, tls.server_options(ctx)) end

steps["tls-load"].check = function(ctx)
   local stale = stale_variables(ctx)[1]
   if stale then
      return false, ("%s is %s, not %s"):format(stale.var, text.shown(ctx:fact("variable", stale.var)), stale.value)
   end
   return serving_ours(ctx)
end
steps["tls-load"].apply = function(ctx)
   local d = ctx.dialect
   local stale = stale_variables(ctx)
   local can_reload = d:tls_reload_sql() ~= nil and ctx:fact("served_certificate") ~= nil
   for _, o in ipairs(stale) do
      if not o.dynamic then can_reload = false end
   end
   if not can_reload then
      ctx:restart_server()
      return
   end
   for _, o in ipairs(stale) do ctx:sql(("SET GLOBAL %s = ?"):format(o.var), o.value) end
   ctx:sql(d:tls_reload_sql())
end
steps["tls-load"].verify = serving_ours

steps["require-transport"].when = function(ctx) return ctx.params.tls.require_secure_transport end
steps["require-transport"].check = function(ctx)
   local doc = options.tree(ctx)
   local in_file = doc and doc:effective(ctx.dialect:server_groups(), "require_secure_transport")
   return done(tls.same(ctx:fact("variable", "require_secure_transport") or "", "ON")
      and tls.same(in_file or "", "ON"), "require_secure_transport is not ON")
end
steps["require-transport"].apply = function(ctx)
   options.write(ctx, { { name = "require_secure_transport", value = "ON" } })
   ctx:sql("SET GLOBAL require_secure_transport = ON")
end

function steps.accounts.when(ctx) return #tls.accounts(ctx) > 0 end
function steps.accounts.check(ctx)
   local a, cur = tls.first_unrequired(ctx, wanted(ctx))
   if a and not cur then ctx:fail("[accounts] %s: no such account on the server", a.account) end
   if a then return false, ("%s requires %s"):format(a.account, cur.ssl_type == "" and "nothing" or cur.ssl_type) end
   return true
end
function steps.accounts.apply(ctx)
   local d = ctx.dialect
   local now = ctx:fact("account_tls")
   for _, a in ipairs(tls.accounts(ctx)) do
      local cur = now[a.account]
      local want, subject, issuer = wanted_requirement(ctx, a)
      if cur.ssl_type ~= want or (subject and (cur.subject ~= subject or cur.issuer ~= issuer)) then
         local sql, values = d:require_sql(a.user, a.host, a.level, subject, issuer)
         ctx:sql(sql, table.unpack(values))
      end
   end
end
function steps.accounts.undo(ctx)
   local d = ctx.dialect
   for _, a in ipairs(tls.accounts(ctx)) do
      local sql, values = d:require_sql(a.user, a.host, "none")
      ctx:sql(sql, table.unpack(values))
   end
end

function steps.verify.when(ctx) return ctx.mode ~= "plan" end
steps.verify.check = tls.verify

return runbook.new {
   name = "in-transit",
   summary = "TLS for the server and its accounts: certificates, server options, REQUIRE, with no lockouts",
   params = tls.params(),
   steps = steps,
}
