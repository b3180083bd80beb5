-- in-transit.lua: TLS for the server and its accounts, with no lockouts.
--
-- A site CA (or the site's own CA, or the site's own server certificate), a server
-- certificate naming every host name and address clients use, client certificates for the
-- accounts that will require X509; the server's TLS options and a reload (or restart);
-- then, after a preflight that refuses to cut off live plain-text sessions and replication,
-- require_secure_transport and the accounts' REQUIRE; and a verification as a client sees
-- it. Facts and pitfalls: DOMAIN.md §3 and §7. Server differences: lua/myseal/intransit.lua.
local runbook = require "myseal.runbook"
local tls = require "myseal.intransit"
local pki = require "pki"

local done = tls.done

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

local function enforcing(ctx)
   return ctx.params.tls.require_secure_transport or #tls.accounts(ctx) > 0
end

-- Is the enforcement this run wants in place already? (then nothing new can be cut off)
local function enforced(ctx)
   if ctx.params.tls.require_secure_transport and
      not tls.same(ctx:fact("variable", "require_secure_transport") or "", "ON") then
      return false
   end
   local now = ctx:fact("account_tls")
   for _, a in ipairs(tls.accounts(ctx)) do
      local want = a.level == "ssl" and "ANY" or a.level == "x509" and "X509" or "SPECIFIED"
      if not now[a.account] or now[a.account].ssl_type ~= want then return false end
   end
   return true
end

-- What REQUIRE an account should get: ssl_type, subject, issuer.
local function wanted_requirement(ctx, a)
   if a.level == "ssl" then return "ANY" end
   if a.level == "x509" then return "X509" end
   local cert = (tls.load_certs(ctx, (tls.client_paths(ctx, a.account))) or {})[1]
   local ca = (tls.ca(ctx) or {})[1]
   return "SPECIFIED", cert and cert:subject() or "(the client certificate's subject)",
      ca and ca:subject() or "(the CA's subject)"
end

local options = require "myseal.options"
local option_tree = options.tree

return runbook.new {
   name = "in-transit",
   summary = "TLS for the server and its accounts: certificates, server options, REQUIRE, with no lockouts",
   params = {
      ["pki.dir"] = { type = "path",
         doc = "where the CA, server and client certificates go (default /etc/mysql/tls; a sandbox: beside it)" },
      ["pki.ca_cert"] = { type = "path", doc = "the site's own CA certificate (then no CA is made)" },
      ["pki.ca_key"] = { type = "path", doc = "the site's own CA key, to sign the server and client certificates" },
      ["pki.server_cert"] = { type = "path",
         doc = "an existing server certificate from the site's CA (then nothing is generated)" },
      ["pki.server_key"] = { type = "path", doc = "its key" },
      ["pki.server_names"] = { type = "list",
         doc = "host names and addresses in the server certificate (default: host name, FQDN, localhost, "
            .. "127.0.0.1, ::1)" },
      ["pki.organization"] = { type = "string", default = "myseal", doc = "O= of the certificates' subjects" },
      ["pki.key_type"] = { type = "enum", values = { "ec", "rsa" }, default = "ec",
         doc = "ec (P-256) or rsa (3072 bits) keys" },
      ["pki.ca_days"] = { type = "integer", default = 3650, doc = "validity of a new CA, in days" },
      ["pki.leaf_days"] = { type = "integer", default = 825, doc = "validity of server and client certificates" },
      ["pki.renew_days"] = { type = "integer", default = 30,
         doc = "a certificate with fewer days left is renewed (and a valid one is reused)" },
      ["tls.versions"] = { type = "string", default = "TLSv1.2,TLSv1.3", doc = "tls_version of the server" },
      ["tls.cipher"] = { type = "string", doc = "ssl_cipher of the server (default: the server's)" },
      ["tls.require_secure_transport"] = { type = "boolean", default = true,
         doc = "refuse TCP connections without TLS (the Unix socket keeps working)" },
      ["tls.accept_lockout"] = { type = "boolean", default = false,
         doc = "enforce even though live sessions or replication channels do not use TLS (they will be cut off)" },
      ["accounts"] = { type = "map",
         doc = "user@host = ssl | x509 | subject: the REQUIRE of each account (client certificates are made)" },
   },
   dialect = tls.dialect,
   steps = {
      {
         name = "lockout-preflight",
         doc = "before anything changes: no live plain-text TCP session or replication channel will be cut off",
         when = function(ctx) return enforcing(ctx) and not enforced(ctx) end,
         check = function(ctx)
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
            return false, ("%d connection%s would be cut off (%s); move them to TLS first, or set "
               .. "tls.accept_lockout=true"):format(#problems, #problems == 1 and "" or "s",
               table.concat(problems, "; "))
         end,
      },
      {
         name = "ca",
         doc = "the CA that signs the server and client certificates (made, or the site's)",
         when = function(ctx) return not tls.paths(ctx).site_server end,
         check = function(ctx)
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
         end,
         apply = function(ctx)
            local paths = tls.paths(ctx)
            tls.mkdir(ctx, paths.dir)
            local key = tls.new_key(ctx)
            local host = tls.server_names(ctx)[1] or "server"
            local ca = assert(pki.self_signed{ key = key, days = ctx.params.pki.ca_days,
               subject = ("/O=%s/CN=%s TLS CA (%s)"):format(ctx.params.pki.organization, ctx.params.pki.organization,
                  host) })
            ctx:write_file(paths.ca_key, key:pem(), { mode = tonumber("600", 8), secret = true })
            ctx:write_file(paths.ca, ca:pem(), { mode = tonumber("644", 8) })
         end,
      },
      {
         name = "server-cert",
         doc = "a server certificate from the CA with every name clients use in its SAN (reused while valid)",
         check = function(ctx)
            local why = tls.server_cert_unfit(ctx, tls.ca(ctx) or {})
            return done(why == nil, why and ("the server certificate: " .. why))
         end,
         apply = tls.issue_server_cert,
      },
      {
         name = "client-certs",
         doc = "a client certificate for each account that will require X509 or a SUBJECT",
         when = function(ctx)
            for _, a in ipairs(tls.accounts(ctx)) do if a.level ~= "ssl" then return true end end
            return false
         end,
         check = function(ctx)
            local why = tls.client_cert_unfit(ctx, tls.ca(ctx) or {})
            return done(why == nil, why)
         end,
         apply = function(ctx) tls.issue_client_certs(ctx, tls.ca(ctx) or {}) end,
      },
      {
         name = "server-options",
         doc = "ssl_ca, ssl_cert, ssl_key and tls_version in the server's option file",
         check = function(ctx)
            local doc = option_tree(ctx)
            if not doc then ctx:fail("server.cnf is not set: name the server's option file in [server] cnf") end
            local groups = ctx.dialect:server_groups()
            local missing = {}
            for _, o in ipairs(tls.server_options(ctx)) do
               if not tls.same(doc:effective(groups, o.name) or "", o.value) then missing[#missing + 1] = o.name end
            end
            return done(#missing == 0, "to set: " .. table.concat(missing, ", "))
         end,
         apply = function(ctx) options.write(ctx, tls.server_options(ctx)) end,
      },
      {
         name = "tls-load",
         doc = "the server presents the certificate: reloaded without a restart where it can be",
         check = function(ctx)
            local stale = stale_variables(ctx)
            if #stale > 0 then
               return false, ("%s is %s, not %s"):format(stale[1].var, tostring(ctx:fact("variable", stale[1].var)),
                  stale[1].value)
            end
            return serving_ours(ctx)
         end,
         apply = function(ctx)
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
            for _, o in ipairs(stale) do ctx:sql(("SET GLOBAL %s = %s"):format(o.var, d:literal(o.value))) end
            ctx:sql(d:tls_reload_sql())
         end,
         verify = function(ctx) return serving_ours(ctx) end,
      },
      {
         name = "require-transport",
         doc = "require_secure_transport=ON: TCP without TLS is refused (the socket keeps working)",
         when = function(ctx) return ctx.params.tls.require_secure_transport end,
         check = function(ctx)
            local doc = option_tree(ctx)
            local in_file = doc and doc:effective(ctx.dialect:server_groups(), "require_secure_transport")
            return done(tls.same(ctx:fact("variable", "require_secure_transport") or "", "ON")
               and tls.same(in_file or "", "ON"), "require_secure_transport is not ON")
         end,
         apply = function(ctx)
            options.write(ctx, { { name = "require_secure_transport", value = "ON" } })
            ctx:sql("SET GLOBAL require_secure_transport = ON")
         end,
      },
      {
         name = "accounts",
         doc = "ALTER USER ... REQUIRE for each account of [accounts] (never GRANT ... REQUIRE)",
         when = function(ctx) return #tls.accounts(ctx) > 0 end,
         check = function(ctx)
            local now = ctx:fact("account_tls")
            for _, a in ipairs(tls.accounts(ctx)) do
               local cur = now[a.account]
               if not cur then ctx:fail("[accounts] %s: no such account on the server", a.account) end
               local want, subject, issuer = wanted_requirement(ctx, a)
               if cur.ssl_type ~= want or (subject and (cur.subject ~= subject or cur.issuer ~= issuer)) then
                  return false, ("%s requires %s"):format(a.account, cur.ssl_type == "" and "nothing" or cur.ssl_type)
               end
            end
            return true
         end,
         apply = function(ctx)
            local d = ctx.dialect
            local now = ctx:fact("account_tls")
            for _, a in ipairs(tls.accounts(ctx)) do
               local cur = now[a.account]
               local want, subject, issuer = wanted_requirement(ctx, a)
               if cur.ssl_type ~= want or (subject and (cur.subject ~= subject or cur.issuer ~= issuer)) then
                  local req = want == "ANY" and "SSL" or want == "X509" and "X509"
                     or ("SUBJECT %s AND ISSUER %s"):format(d:literal(subject), d:literal(issuer))
                  ctx:sql(("ALTER USER %s REQUIRE %s"):format(d:account(a.user, a.host), req))
               end
            end
         end,
         undo = function(ctx)
            local d = ctx.dialect
            for _, a in ipairs(tls.accounts(ctx)) do
               ctx:sql(("ALTER USER %s REQUIRE NONE"):format(d:account(a.user, a.host)))
            end
         end,
      },
      {
         name = "verify",
         doc = "as a client sees it: verify_identity to every name, plain TCP refused, X509 accounts",
         when = function(ctx) return not ctx.planning end,
         check = tls.verify,
      },
   },
}
