--- Shared by the in-transit and rotate-certs runbooks: where the certificates are, what a
-- valid one is, making them, and the dialect entries for TLS (what MySQL 5.7 / 8.0 / 8.4 and
-- MariaDB do differently). DOMAIN.md §3 and §7.
-- @module myseal.intransit
local pki = require "pki"
local sys = require "sys"
local sqltext = require "myseal.sqltext"

local M = {}

local OCTAL_600, OCTAL_644, OCTAL_750 = tonumber("600", 8), tonumber("644", 8), tonumber("750", 8)

--- A check's answer: done, or not done and why.
function M.done(ok, why)
   if ok then return true end
   return false, why
end

-- The machine's names: host name and, when it differs, its fully qualified name.
local function host_names()
   local names = {}
   local h = sys.hostname()
   if h then names[#names + 1] = h end
   local r = sys.run{ "hostname", "-f", timeout = 5 }
   local fqdn = r and r.ok and r.stdout:match("^%s*(%S+)")
   if fqdn and fqdn ~= h then names[#names + 1] = fqdn end
   return names
end

--- Names and addresses the server certificate must carry: `[pki] server_names`, or the
-- host name, its FQDN, localhost, 127.0.0.1 and ::1.
function M.server_names(ctx)
   local given = ctx.params.pki.server_names
   if given and #given > 0 then return given end
   local names = host_names()
   for _, n in ipairs{ "localhost", "127.0.0.1", "::1" } do names[#names + 1] = n end
   return names
end

--- Where everything goes: the CA, the server's certificate and key, client certificates.
function M.paths(ctx)
   local p = ctx.params.pki
   local dir = p.dir
   if not dir then
      if ctx.target.kind == "sandbox" and ctx.params.server.datadir then
         dir = ctx.params.server.datadir:gsub("/+$", ""):gsub("/[^/]+$", "") .. "/tls-myseal"
      else
         dir = ctx.dialect.tls_dir_default
      end
   end
   return {
      dir = dir,
      ca = p.ca_cert or (dir .. "/ca.pem"),
      ca_key = p.ca_key or (p.ca_cert and nil or (dir .. "/ca-key.pem")),
      cert = p.server_cert or (dir .. "/server-cert.pem"),
      key = p.server_key or (dir .. "/server-key.pem"),
      clients = dir .. "/clients",
      site_ca = p.ca_cert ~= nil,
      site_server = p.server_cert ~= nil,
   }
end

--- The client certificate files of an account `user@host`.
function M.client_paths(ctx, account)
   local base = M.paths(ctx).clients .. "/" .. account:gsub("[^%w%._%-@]", "_")
   return base .. "-cert.pem", base .. "-key.pem"
end

--- The certificates in a PEM file that the run sees (planned writes included), or nil.
function M.load_certs(ctx, path)
   local text = ctx:read_file(path)
   if not text then return nil end
   local certs = pki.load_certs(text)
   return certs
end

--- The CA certificate(s): the first is the one that signs; a bundle may hold an older CA too.
function M.ca(ctx)
   return M.load_certs(ctx, M.paths(ctx).ca)
end

--- Why certificate `cert` is not fit (nil when it is): chain to one of `cas`, purpose,
-- every name in its SAN, days left, the key it goes with.
function M.unfit(ctx, cert, cas, purpose, names, key)
   if not cert then return "no certificate" end
   local ok, why = pki.verify(cert, { trusted = cas, purpose = purpose })
   if not ok then return why end
   local have = {}
   for _, n in ipairs(cert:san()) do have[n:lower()] = true end
   for _, n in ipairs(names or {}) do
      if not have[n:lower()] then return ("its SAN lacks %s"):format(n) end
   end
   local left = cert:days_left()
   if left <= ctx.params.pki.renew_days then
      return ("it expires in %d days (renewed %d days ahead)"):format(left, ctx.params.pki.renew_days)
   end
   if key and not cert:matches_key(key) then return "it does not match its key" end
   return nil
end

--- A new key as `[pki] key_type` says.
function M.new_key(ctx)
   if ctx.params.pki.key_type == "rsa" then return assert(pki.genkey{ type = "rsa", bits = 3072 }) end
   return assert(pki.genkey{ type = "ec", curve = "P-256" })
end

-- The certificate and key in two files, as the run sees them (nil for what is missing).
local function pair(ctx, cert_path, key_path)
   local cert = (M.load_certs(ctx, cert_path) or {})[1]
   local keytext = ctx:read_file(key_path)
   return cert, keytext and pki.load_key(keytext)
end

--- Why the server certificate is not fit against `cas` (nil when it is). A certificate the
-- site gave (pki.server_cert) is never replaced: unfit, it fails the step.
function M.server_cert_unfit(ctx, cas)
   local paths = M.paths(ctx)
   local cert, key = pair(ctx, paths.cert, paths.key)
   local why = M.unfit(ctx, cert, cas, "server", M.server_names(ctx), key)
   if why and paths.site_server then
      ctx:fail("pki.server_cert %s: %s; renew it at the site's CA (myseal does not replace it)", paths.cert, why)
   end
   return why
end

--- A new server key and certificate from the signing CA (the first of the bundle).
function M.issue_server_cert(ctx)
   local paths = M.paths(ctx)
   local ca_key = M.ca_key(ctx)
   if not ca_key then ctx:fail("cannot sign: give pki.ca_key with pki.ca_cert, or pki.server_cert and pki.server_key") end
   local names = M.server_names(ctx)
   local key = M.new_key(ctx)
   local cert = M.sign(ctx, M.ca(ctx)[1], ca_key, key, ("/O=%s/CN=%s"):format(ctx.params.pki.organization, names[1]),
      "server", names)
   M.mkdir(ctx, paths.dir)
   M.write_pair(ctx, paths.cert, paths.key, cert, key, ctx.params.server.user)
end

--- Why the client certificate of an X509 or SUBJECT account is not fit against `cas`
-- ("user@host's client certificate: ..."), for the first such account; nil when all are.
function M.client_cert_unfit(ctx, cas)
   for _, a in ipairs(M.accounts(ctx)) do
      if a.level ~= "ssl" then
         local cert, key = pair(ctx, M.client_paths(ctx, a.account))
         local why = M.unfit(ctx, cert, cas, "client", nil, key)
         if why then return ("%s's client certificate: %s"):format(a.account, why) end
      end
   end
   return nil
end

--- A new client certificate, from the signing CA, for every account whose certificate is
-- not fit against `cas`.
function M.issue_client_certs(ctx, cas)
   local signing, ca_key = (M.ca(ctx) or {})[1], M.ca_key(ctx)
   if not signing or not ca_key then ctx:fail("cannot sign client certificates without the CA and its key (pki.ca_key)") end
   M.mkdir(ctx, M.paths(ctx).clients)
   for _, a in ipairs(M.accounts(ctx)) do
      if a.level ~= "ssl" then
         local cert_path, key_path = M.client_paths(ctx, a.account)
         local cert, key = pair(ctx, cert_path, key_path)
         if M.unfit(ctx, cert, cas, "client", nil, key) then
            key = M.new_key(ctx)
            cert = M.sign(ctx, signing, ca_key, key, M.client_subject(ctx, a.user), "client")
            M.write_pair(ctx, cert_path, key_path, cert, key)
         end
      end
   end
end

--- Writes a key (0600, given owner) and a certificate (0644) through the context.
function M.write_pair(ctx, cert_path, key_path, cert, key, owner)
   ctx:write_file(key_path, key:pem(), { mode = OCTAL_600, owner = owner, secret = true })
   ctx:write_file(cert_path, cert:pem(), { mode = OCTAL_644 })
end

-- The primary group of the server's user (the server reads its certificate and key from
-- the TLS directory, so it must be able to enter it), or nil when the user is unknown here.
local function server_group(ctx)
   local r = sys.run{ "id", "-gn", "--", ctx.params.server.user, timeout = 5 }
   return r and r.ok and r.stdout:match("^(%S+)") or nil
end

--- The CA directory, made 0750 and group-owned by the server's group.
function M.mkdir(ctx, dir)
   ctx:mkdir(dir, { mode = OCTAL_750, group = server_group(ctx) })
end

--- The CA's key (the site's, or ours).
function M.ca_key(ctx)
   local path = M.paths(ctx).ca_key
   if not path then return nil end
   local text = ctx:read_file(path)
   if not text then return nil end
   local key, err = pki.load_key(text)
   if not key then ctx:fail("the CA key %s: %s", path, err) end
   return key
end

--- Signs a leaf for `usage` ("server" or "client") with the CA.
function M.sign(ctx, ca, ca_key, key, subject, usage, san)
   local cert, err = ca:sign{ ca_key = ca_key, public_key = key, subject = subject, usage = usage, san = san,
                              days = ctx.params.pki.leaf_days }
   if not cert then ctx:fail("cannot sign %s: %s", subject, err) end
   return cert
end

--- The accounts of `[accounts]`: list of `{ account = "user@host", user, host, level }`.
function M.accounts(ctx)
   local out = {}
   for account, level in pairs(ctx.params.accounts or {}) do
      local user, host = account:match("^(.*)@(.-)$")
      if not user then ctx:fail("[accounts] %s: write user@host", account) end
      level = tostring(level):lower()
      if level ~= "ssl" and level ~= "x509" and level ~= "subject" then
         ctx:fail("[accounts] %s = %s: ssl, x509 or subject", account, level)
      end
      out[#out + 1] = { account = account, user = user, host = host, level = level }
   end
   table.sort(out, function(a, b) return a.account < b.account end)
   return out
end

--- The subject a client certificate of `user` gets.
function M.client_subject(ctx, user)
   return ("/O=%s/CN=%s"):format(ctx.params.pki.organization, user:gsub("/", "_"))
end

local function same(a, b)
   return tostring(a):upper() == tostring(b):upper()
end
M.same = same

--- The server options this run wants: `{ name, value, var, dynamic }`.
function M.server_options(ctx)
   local p, d = M.paths(ctx), ctx.dialect
   local dynamic = d:tls_paths_dynamic()
   local out = {
      { name = "ssl_ca", value = p.ca, var = "ssl_ca", dynamic = dynamic },
      { name = "ssl_cert", value = p.cert, var = "ssl_cert", dynamic = dynamic },
      { name = "ssl_key", value = p.key, var = "ssl_key", dynamic = dynamic },
   }
   local versions = ctx.params.tls.versions
   if versions and d:has_tls_version() then
      out[#out + 1] = { name = "tls_version", value = versions, var = "tls_version", dynamic = dynamic }
   end
   if ctx.params.tls.cipher then
      out[#out + 1] = { name = "ssl_cipher", value = ctx.params.tls.cipher, var = "ssl_cipher" }
   end
   return out
end

--- As a client sees it: a verify_identity connection to every server name and to the
-- address myseal uses (a refused login still means the certificate passed: it is checked
-- first), plain TCP refused when enforced, and every account's REQUIRE as wanted.
-- A check: returns true, or false and what failed.
function M.verify(ctx)
   local paths = M.paths(ctx)
   local port = ctx.target.port or ctx.params.connection.port or 3306
   local names, seen = {}, {}
   for _, n in ipairs(M.server_names(ctx)) do names[#names + 1] = n; seen[n] = true end
   if ctx.target.host and not seen[ctx.target.host] then names[#names + 1] = ctx.target.host end
   local failures, checked = {}, 0
   for _, name in ipairs(names) do
      local c, err, errno = ctx:connect{ host = name, port = port, tls = { mode = "verify_identity", ca = paths.ca } }
      if c then
         local t = c:tls()
         ctx:log("%s: %s, %s, certificate verified", name, t.version, t.cipher)
         checked = checked + 1
         c:close()
      elseif errno == 1045 then
         ctx:log("%s: certificate verified (this account may not log in from there)", name)
         checked = checked + 1
      elseif errno == 2005 then
         ctx:log("%s: does not resolve here, not checked", name)
      elseif errno == 2002 or errno == 2003 then
         ctx:log("%s: the server does not listen there, not checked", name)
      else
         failures[#failures + 1] = ("%s: %s"):format(name, err)
      end
   end
   if ctx.params.tls.require_secure_transport then
      local host = ctx.target.host or "127.0.0.1"
      local c = ctx:connect{ host = host, port = port, tls = { mode = "disabled" } }
      if c then
         c:close()
         failures[#failures + 1] = ("a plain TCP connection to %s was let in"):format(host)
      else
         ctx:log("plain TCP to %s: refused", host)
      end
   end
   local now = ctx:fact("account_tls")
   for _, a in ipairs(M.accounts(ctx)) do
      local want = a.level == "ssl" and "ANY" or a.level == "x509" and "X509" or "SPECIFIED"
      local cur = now[a.account]
      if not cur or cur.ssl_type ~= want then failures[#failures + 1] = a.account .. " does not require " .. want end
   end
   if #failures > 0 then return false, table.concat(failures, "; ") end
   return M.done(checked > 0, "no server name could be connected to")
end

-- ------------------------------------------------------------------------------------------
-- Dialects

local function value(v) return sqltext.value(v) end

M.dialect = {
   base = {
      tls_dir_default = "/etc/mysql/tls",
      -- can SET GLOBAL change ssl_ca/ssl_cert/ssl_key/tls_version (then a reload applies them)?
      tls_paths_dynamic = function() return false end,
      has_tls_version = function() return true end,
      facts = {
         -- the certificate the server presents: { subject, not_after } (nil: no TLS)
         served_certificate = function(_, ctx)
            local host, port = ctx.target.host, ctx.target.port
            if host then
               local c = ctx:connect{ host = host, port = port, tls = { mode = "required" } }
               if c then
                  local t = c:tls()
                  c:close()
                  if t and t.peer then return { subject = t.peer.subject, not_after = t.peer.not_after } end
               end
            end
            local na = ctx:fact("status", "Ssl_server_not_after")
            if na and na ~= "" then return { not_after_text = na } end
            return nil
         end,
         -- sessions that do not use TLS: { user, host, tls = false | nil (unknown) }
         plain_sessions = function(_, ctx)
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
         end,
         -- account requirements: "user@host" -> { ssl_type, subject, issuer }
         account_tls = function(_, ctx)
            local out = {}
            for _, r in ipairs(ctx:query("SELECT User, Host, ssl_type, x509_subject, x509_issuer FROM mysql.user")) do
               out[r[1] .. "@" .. r[2]] = { ssl_type = value(r[3]) or "", subject = value(r[4]) or "",
                                            issuer = value(r[5]) or "" }
            end
            return out
         end,
      },
      described = {
         served_certificate = function(_, desc) return desc.served_certificate end,
         plain_sessions = function(_, desc) return desc.plain_sessions or {} end,
         replication_without_tls = function(_, desc) return desc.replication_without_tls or {} end,
         account_tls = function(_, desc)
            local out = {}
            for _, a in ipairs(desc.accounts or {}) do
               out[a.user .. "@" .. a.host] = { ssl_type = a.ssl_type or "", subject = a.subject or "",
                                                issuer = a.issuer or "" }
            end
            return out
         end,
      },
   },
   mariadb = {
      has_tls_version = function(d) return d:at_least("10.4.6") end,
      facts = {
         replication_without_tls = function(_, ctx)
            local out = {}
            local ok, rows, meta = pcall(ctx.query, ctx, "SHOW ALL SLAVES STATUS")
            if not ok then return out end
            local col = {}
            for i, n in ipairs(meta.columns) do col[n] = i end
            for _, r in ipairs(rows) do
               if r[col.Master_SSL_Allowed] ~= "Yes" then
                  out[#out + 1] = { channel = r[col.Connection_name] ~= "" and r[col.Connection_name] or "(default)",
                                    host = r[col.Master_Host] }
               end
            end
            return out
         end,
      },
   },
   mysql = {
      has_tls_version = function(d) return d:at_least("5.7.10") end,
      -- 8.0.16+: the paths are dynamic and ALTER INSTANCE RELOAD TLS takes the new values
      tls_paths_dynamic = function(d) return d:at_least("8.0.16") end,
      facts = {
         replication_without_tls = function(_, ctx)
            local out = {}
            for _, r in ipairs(ctx:query([[SELECT CHANNEL_NAME, HOST FROM
                  performance_schema.replication_connection_configuration WHERE SSL_ALLOWED <> 'YES']])) do
               out[#out + 1] = { channel = r[1] ~= "" and r[1] or "(default)", host = r[2] }
            end
            return out
         end,
      },
   },
}

return M
