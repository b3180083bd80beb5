-- in-transit.lua: the server offers TLS, verified by the clients that use it; nobody is made to
-- use it yet (that is tls-enforce, once the clients have moved: the story runbook encrypt does both
-- in that order). The shared parts are in lua/myseal/intransit.lua; what the servers do
-- differently is asked of the dialect (lua/myseal/dialect/).
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn",
     doc = "before anything changes: a site's own CA and certificate are valid now, and what the server's TLS "
        .. "library allows" },
   { name = "ca", doc = "the CA that signs the server and client certificates (made, or the site's)" },
   { name = "server-cert",
     doc = "a server certificate from the CA with every name clients use in its SAN (reused while valid)" },
   { name = "client-certs", doc = "a client certificate for each account that will require X509 or a SUBJECT" },
   { name = "server-options",
     doc = "ssl_ca, ssl_cert, ssl_key and tls_version where the server reads them at start" },
   { name = "tls-load", doc = "the server presents the certificate: reloaded without a restart where it can be" },
   { name = "verify", doc = "as a client sees it: a TLS connection that verifies the server, to every name" },
}

-- ------------------------------------------------------------------------------------------------

local tls = require "myseal.intransit"
local options = require "myseal.options"
local text = require "myseal.text"

local done = runbook.done

-- [tls] persist on a server with SET PERSIST: the options go to mysqld-auto.cnf.
local function persisting(ctx)
   return ctx.params.tls.persist and ctx.dialect:can_persist()
end

steps.preflight.check = function(ctx)
   local who = options.server_user_mismatch(ctx)
   if who then ctx:reject("%s", who) end
   tls.check_versions(ctx)
   -- a name no certificate can carry, an [accounts] line that is wrong: bad input before anything is made
   tls.server_names(ctx)
   tls.accounts(ctx)
   local why = tls.site_pki_problem(ctx)
   if why then return false, why end
   local lib = ctx:fact("tls_library")
   local _, note = ctx.dialect:tls_versions(ctx.params.tls.versions, lib)
   if note then ctx:warn("%s", note) end
   local _, knote = ctx.dialect:key_type(lib, ctx.params.pki.key_type)
   if knote then ctx:warn("%s", knote) end
   if ctx.params.tls.persist and not persisting(ctx) then
      ctx:warn("[tls] persist: %s %s has no SET PERSIST (MySQL 8.0.11 and later): the options go to the option file",
         ctx.dialect.flavor, ctx.dialect.version)
   end
   local suites = ctx.params.tls.ciphersuites
   if suites then
      local set = false
      for _, o in ipairs(ctx.dialect:cipher_options(nil, suites)) do set = set or o.var == "tls_ciphersuites" end
      if not set then
         ctx:warn("[tls] ciphersuites: %s has no tls_ciphersuites (MySQL 8.0.16 and later): it is not set",
            ctx.dialect:describe())
      end
   end
   ctx:log("verification will log in over TCP %s", tls.login_text(ctx))
   return true
end

steps.ca.when = function(ctx) return not tls.paths(ctx).site_server end
steps.ca.check = function(ctx)
   local paths = tls.paths(ctx)
   local cas = tls.ca(ctx)
   local ca = cas and cas[1]
   if paths.site_ca then
      if not ca then ctx:reject("pki.ca_cert %s: not a certificate, or missing", paths.ca) end
      if not ca:is_ca() then ctx:reject("pki.ca_cert %s is not a CA certificate", paths.ca) end
      local key = tls.ca_key(ctx)
      if key and not ca:matches_key(key) then
         ctx:reject("pki.ca_key %s does not match pki.ca_cert %s", paths.ca_key, paths.ca)
      end
      return true
   end
   local key = tls.ca_key(ctx)
   if not ca then
      -- a new CA would sign with a new key: never write over one that may be the site's
      if key then ctx:reject("%s is there but %s is not: put the CA certificate back", paths.ca_key, paths.ca) end
      return false, "no CA yet"
   end
   -- an existing CA is never replaced here (clients trust it: rotate-certs changes it in phases)
   if key and not ca:matches_key(key) then ctx:reject("the CA key %s does not match %s", paths.ca_key, paths.ca) end
   if not key then
      ctx:log("the CA key is not in %s (moved off this host, as it should be): signing needs pki.ca_cert and "
         .. "pki.ca_key where it is now", paths.dir)
   end
   return done(ca:days_left() > ctx.params.pki.renew_days,
      ("the CA expires in %s: rotate-certs renews it"):format(text.count(ca:days_left(), "day")))
end
steps.ca.apply = function(ctx)
   local paths = tls.paths(ctx)
   tls.mkdir(ctx, paths.dir)
   local ca, key = tls.new_ca(ctx)
   tls.write_pair(ctx, paths.ca, paths.ca_key, ca:pem(), key:pem())   -- root's key: the server never reads it
   if not ctx.planning then
      ctx:log("the CA key %s signs every certificate clients trust: once the certificates are made, move it off "
         .. "the database host (docs/in-transit.md)", paths.ca_key)
   end
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
   local missing = {}
   if persisting(ctx) then
      for _, o in ipairs(tls.server_options(ctx)) do
         if not tls.same(ctx:fact("persisted", o.var) or "", o.value) then missing[#missing + 1] = o.name end
      end
      return done(#missing == 0, "to persist: " .. table.concat(missing, ", "))
   end
   local doc = options.tree(ctx)
   if not doc then ctx:reject("server.cnf is not set: name the server's option file in [server] cnf") end
   local groups = ctx.dialect:server_groups()
   for _, o in ipairs(tls.server_options(ctx)) do
      if not tls.same(doc:effective(groups, o.name) or "", o.value) then missing[#missing + 1] = o.name end
      -- a value kept by SET PERSIST wins over the option file at the next start
      local kept = ctx:fact("persisted", o.var)
      if kept and not tls.same(kept, o.value) then
         ctx:fail("mysqld-auto.cnf keeps %s = %s (SET PERSIST), which would override the option file at the next "
            .. "start: set tls.persist=true to write there, or RESET PERSIST %s", o.var, kept, o.var)
      end
   end
   return done(#missing == 0, "to set: " .. table.concat(missing, ", "))
end
steps["server-options"].apply = function(ctx)
   if persisting(ctx) then
      for _, o in ipairs(tls.server_options(ctx)) do
         if not tls.same(ctx:fact("persisted", o.var) or "", o.value) then
            ctx:sql(("SET PERSIST_ONLY %s = ?"):format(o.var), o.value)
         end
      end
      return
   end
   options.write(ctx, tls.server_options(ctx))
end

steps["tls-load"].check = function(ctx)
   local stale = tls.stale_variables(ctx)[1]
   if stale then
      return false, ("%s is %s, not %s"):format(stale.var, text.shown(ctx:fact("variable", stale.var)), stale.value)
   end
   return tls.serving_ours(ctx)
end
steps["tls-load"].apply = function(ctx)
   local restart, stale = tls.needs_restart(ctx)
   if restart then
      ctx:restart_server()
      return
   end
   -- a reload the server cannot read for fails its own way: the same files checked as its user first
   local problems = options.unreadable(ctx)
   if not ctx.planning and #problems > 0 then
      ctx:fail("the server (running as %s) could not load its TLS files: %s; nothing was reloaded",
         ctx.params.server.user, table.concat(problems, "; "))
   end
   for _, o in ipairs(stale) do ctx:sql(("SET GLOBAL %s = ?"):format(o.var), o.value) end
   ctx:sql(ctx.dialect:tls_reload_sql())
end
steps["tls-load"].verify = tls.serving_ours

steps.verify.when = function(ctx) return ctx.mode ~= "plan", "after the changes" end
steps.verify.check = tls.verify_offer

return runbook.new {
   name = "in-transit",
   summary = "TLS offered by the server, with certificates every client can verify (no client is forced yet)",
   params = tls.params{ "pki.dir", "pki.ca_cert", "pki.ca_key", "pki.server_cert", "pki.server_key",
      "pki.server_names", "pki.organization", "pki.key_type", "pki.ca_days", "pki.leaf_days", "pki.renew_days",
      "tls.versions", "tls.cipher", "tls.ciphersuites", "tls.persist", "tls.verify_user", "tls.verify_password",
      "accounts" },
   steps = steps,
}
