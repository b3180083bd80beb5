-- rotate-certs.lua: renew certificates ahead of expiry, and change the CA without breaking
-- clients.
--
-- Leaves (server, clients) are renewed when they expire within [pki] renew_days or were not
-- signed by the current CA, then the server reloads them without a restart where it can
-- (MariaDB FLUSH SSL, MySQL 8.0.16+ ALTER INSTANCE RELOAD TLS).
--
-- A CA change goes in three runs, so clients never meet a certificate they cannot check:
--   --set rotate.ca=add     a new CA joins the bundle (ca.pem: old CA first, still signing);
--                           give the bundle to every client (truststores: app-tomcat)
--   --set rotate.ca=switch  the new CA signs: server and client certificates renewed, reloaded
--   --set rotate.ca=drop    the old CA leaves the bundle, once no client needs it
-- Shared parts: lua/myseal/intransit.lua.
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "ca-add", doc = "rotate.ca=add: a new CA in the bundle, after the one that still signs" },
   { name = "ca-switch", doc = "rotate.ca=switch: the new CA signs (first in the bundle, its key the CA key)" },
   { name = "server-cert",
     doc = "the server certificate renewed when it expires soon or the current CA did not sign it" },
   { name = "client-certs", doc = "client certificates renewed likewise" },
   { name = "ca-drop", doc = "rotate.ca=drop: the old CA leaves the bundle" },
   { name = "reload", doc = "the server loads the new files: reloaded without a restart where it can be" },
   { name = "verify", doc = "as a client sees it (as in-transit's verify)" },
}

-- ------------------------------------------------------------------------------------------------

local tls = require "myseal.intransit"
local pki = require "pki"

local done = runbook.done

-- The next CA's key, made by the add phase and used by the switch phase.
local function next_key_path(ctx) return tls.paths(ctx).dir .. "/ca-next-key.pem" end

local function bundle(certs)
   local out = {}
   for _, c in ipairs(certs) do out[#out + 1] = c:pem() end
   return table.concat(out)
end

-- Only the signing CA (the first in the bundle) counts for a current certificate.
local function signing(ctx)
   return { (tls.ca(ctx) or {})[1] }
end

local function phase(name) return function(ctx) return ctx.params.rotate.ca == name end end

steps["ca-add"].when = phase("add")
steps["ca-add"].check = function(ctx)
   local paths = tls.paths(ctx)
   if paths.site_ca then ctx:fail("the CA is the site's (pki.ca_cert): rotate it there") end
   local cas = tls.ca(ctx)
   if not cas then ctx:fail("there is no CA in %s to rotate: run in-transit first", paths.ca) end
   return done(#cas >= 2, "the bundle has one CA")
end
steps["ca-add"].apply = function(ctx)
   local cas = tls.ca(ctx) or {}
   local new, key = tls.new_ca(ctx, os.date("!%Y-%m-%d"))
   tls.write_pair(ctx, tls.paths(ctx).ca, next_key_path(ctx), bundle{ cas[1], new }, key:pem())
   ctx:record("tls_changed", true)
end

steps["ca-switch"].when = phase("switch")
steps["ca-switch"].check = function(ctx)
   return done(not ctx:exists(next_key_path(ctx)), "the next CA's key is waiting to take over")
end
steps["ca-switch"].apply = function(ctx)
   local paths = tls.paths(ctx)
   local cas = tls.ca(ctx) or {}
   local keytext = ctx:read_file(next_key_path(ctx))
   local key = assert(pki.load_key(keytext))
   local new
   for _, c in ipairs(cas) do if c:matches_key(key) then new = c end end
   if not new then ctx:fail("no CA in %s goes with %s: run rotate.ca=add again", paths.ca, next_key_path(ctx)) end
   local order = { new }
   for _, c in ipairs(cas) do if c ~= new then order[#order + 1] = c end end
   tls.write_pair(ctx, paths.ca, paths.ca_key, bundle(order), keytext)
   ctx:remove_file(next_key_path(ctx))
   ctx:record("tls_changed", true)
end

steps["server-cert"].check = function(ctx)
   local why = tls.server_cert_unfit(ctx, signing(ctx))
   return done(why == nil, why and ("the server certificate: " .. why))
end
steps["server-cert"].apply = function(ctx)
   tls.issue_server_cert(ctx)
   ctx:record("tls_changed", true)
end

steps["client-certs"].when = function(ctx) return #tls.accounts(ctx) > 0 end
steps["client-certs"].check = function(ctx)
   local why = tls.client_cert_unfit(ctx, signing(ctx))
   return done(why == nil, why)
end
steps["client-certs"].apply = function(ctx)
   local cas = tls.ca(ctx)
   tls.issue_client_certs(ctx, signing(ctx))
   -- a REQUIRE ISSUER names the CA: a subject account follows the new one once its new certificate
   -- has reached its client ([tls] delivered); until then its REQUIRE names no issuer, so the old
   -- certificate and the new one both get in
   if ctx.params.rotate.ca == "switch" then
      for _, a in ipairs(tls.accounts(ctx)) do
         if a.level == "subject" then
            local cert = tls.load_certs(ctx, (tls.client_paths(ctx, a.account)))[1]
            local issuer = tls.delivered(ctx, a) and cas[1]:subject() or nil
            if not issuer then
               ctx:warn("%s: REQUIRE SUBJECT without ISSUER until its new certificate reaches it; then run again "
                  .. "with tls.delivered=%s", a.account, a.account)
            end
            tls.require(ctx, a.user, a.host, "subject", cert:subject(), issuer)
         end
      end
   end
end

steps["ca-drop"].when = phase("drop")
steps["ca-drop"].check = function(ctx)
   if tls.paths(ctx).site_ca then ctx:fail("the CA is the site's (pki.ca_cert): rotate it there") end
   if ctx:exists(next_key_path(ctx)) then
      ctx:fail("the new CA does not sign yet: run with rotate.ca=switch first")
   end
   return done(#(tls.ca(ctx) or {}) <= 1, "the bundle still has the old CA")
end
steps["ca-drop"].apply = function(ctx)
   ctx:write_file(tls.paths(ctx).ca, tls.ca(ctx)[1]:pem(), { mode = tonumber("644", 8) })
   ctx:record("tls_changed", true)
end

steps.reload.check = function(ctx)
   if ctx:recorded("tls_changed") then return false, "certificate files changed in this run" end
   return done(tls.serving_ours(ctx), "the server presents another certificate than the file")
end
steps.reload.apply = function(ctx)
   local sql = ctx.dialect:tls_reload_sql()
   if sql then ctx:sql(sql) else ctx:restart_server() end
   ctx:record("tls_changed", false)
end

steps.verify.when = function(ctx) return ctx.mode ~= "plan", "after the changes" end
steps.verify.check = tls.verify_offer

local params = tls.params{ "pki.dir", "pki.ca_cert", "pki.ca_key", "pki.server_cert", "pki.server_key",
   "pki.server_names", "pki.organization", "pki.key_type", "pki.ca_days", "pki.leaf_days", "pki.renew_days",
   "tls.delivered", "accounts" }
params["rotate.ca"] = { type = "enum", values = { "none", "add", "switch", "drop" }, default = "none",
   doc = "CA change phase: add the new CA to the bundle, switch signing to it, drop the old one" }

return runbook.new {
   name = "rotate-certs",
   summary = "renew certificates before they expire, and change the CA in add / switch / drop runs",
   params = params,
   steps = steps,
}
