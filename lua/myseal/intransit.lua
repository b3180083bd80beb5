--- Shared by the in-transit, tls-enforce and rotate-certs runbooks: their parameters (one
-- definition each), where the certificates are, what a valid one is, making them, the accounts'
-- REQUIRE, and verification as a client sees it. What the servers do differently is in the
-- dialects (lua/myseal/dialect/); docs/servers.md has the facts.
-- @module myseal.intransit
local pki = require "pki"
local sys = require "sys"
local text = require "myseal.text"

local M = {}

local OCTAL_600, OCTAL_644, OCTAL_750 = tonumber("600", 8), tonumber("644", 8), tonumber("750", 8)

--- Every parameter of TLS in transit, by name; a runbook takes the ones it reads with
-- `intransit.params{ ... }`.
M.PARAMS = {
   ["pki.dir"] = { type = "path",
      doc = "where the CA, server and client certificates go (default /etc/mysql/tls; a sandbox: beside it)" },
   ["pki.ca_cert"] = { type = "path", doc = "the site's own CA certificate (then no CA is made, nor rotated)" },
   ["pki.ca_key"] = { type = "path", doc = "the site's own CA key, to sign the server and client certificates" },
   ["pki.server_cert"] = { type = "path",
      doc = "an existing server certificate from the site's CA (then nothing is generated; renewed there)" },
   ["pki.server_key"] = { type = "path", doc = "its key" },
   ["pki.server_names"] = { type = "list",
      doc = "host names and addresses in the server certificate (default: host name, FQDN, localhost, "
         .. "127.0.0.1, ::1)" },
   ["pki.organization"] = { type = "string", default = "myseal", doc = "O= of the certificates' subjects" },
   ["pki.key_type"] = { type = "enum", values = { "ec", "rsa" }, default = "ec",
      doc = "ec (P-256) or rsa (3072 bits) keys (rsa where the server's TLS library cannot use EC)" },
   ["pki.ca_days"] = { type = "integer", default = 3650, doc = "validity of a new CA, in days" },
   ["pki.leaf_days"] = { type = "integer", default = 825, doc = "validity of server and client certificates" },
   ["pki.renew_days"] = { type = "integer", default = 30,
      doc = "a certificate with fewer days left is renewed (and a valid one is reused); a site's warns" },
   ["tls.versions"] = { type = "string", default = "TLSv1.2,TLSv1.3",
      doc = "tls_version of the server (those it cannot speak are left out)" },
   ["tls.cipher"] = { type = "string", doc = "ssl_cipher of the server (default: the server's)" },
   ["tls.ciphersuites"] = { type = "string", doc = "MySQL 8.0.16+: tls_ciphersuites, the TLS 1.3 suites" },
   ["tls.persist"] = { type = "boolean", default = false,
      doc = "MySQL 8: keep the TLS options with SET PERSIST (mysqld-auto.cnf) instead of the option file" },
   ["tls.verify_user"] = { type = "string",
      doc = "an account that can log in over TCP, for verification (default: a temporary one, dropped after)" },
   ["tls.verify_password"] = { type = "secret", doc = "its password" },
   ["tls.require_secure_transport"] = { type = "boolean", default = true,
      doc = "refuse TCP connections without TLS (the socket keeps working for accounts without REQUIRE)" },
   ["tls.accept_lockout"] = { type = "boolean", default = false,
      doc = "enforce even though sessions or replication channels seen without TLS will be cut off, or an "
         .. "account logged in over the socket gets REQUIRE (it is then refused there too)" },
   ["tls.watch_seconds"] = { type = "integer", default = 30,
      doc = "after enforcing, how long failed logins are watched; a client cut off reverts the enforcement" },
   ["tls.confirmed"] = { type = "boolean", default = false,
      doc = "enforce and stay enforced even when clients fail to log in afterwards (only warn)" },
   ["tls.delivered"] = { type = "list", default = {},
      doc = "accounts (user@host) whose client certificate has reached the client: only these get REQUIRE "
         .. "SUBJECT/ISSUER (until then REQUIRE X509)" },
   ["accounts"] = { type = "map",
      doc = "user@host = ssl | x509 | subject: the REQUIRE of each account (client certificates are made)" },
}

--- The declarations of the named parameters (all of them without a list).
-- @param names optional list of "section.key"
-- @return declarations for runbook.new's `params`
function M.params(names)
   if not names then return M.PARAMS end
   local out = {}
   for _, n in ipairs(names) do out[n] = assert(M.PARAMS[n], n) end
   return out
end

-- Names and paths ------------------------------------------------------------------------------

-- The machine's names: host name and, when it differs, its fully qualified name.
local function host_names(ctx)
   local names = {}
   local h = sys.hostname()
   if h then names[#names + 1] = h end
   local r = ctx:command{ "hostname", "-f", timeout = 5, ok = function() return true end }
   local fqdn = r and r.ok and r.stdout:match("^%s*(%S+)")
   if fqdn and fqdn ~= h then names[#names + 1] = fqdn end
   return names
end

--- Names and addresses the server certificate must carry: `[pki] server_names`, or the
-- host name, its FQDN, localhost, 127.0.0.1 and ::1.
function M.server_names(ctx)
   local given = ctx.params.pki.server_names
   if given and #given > 0 then
      for _, n in ipairs(given) do
         if not (n:match("^%*?[%w%-%._]+$") or (n:find(":", 1, true) and n:match("^[%x:%.]+$"))) then
            ctx:reject("pki.server_names: '%s' is neither a host name nor an IP address", n)
         end
      end
      return given
   end
   local names = host_names(ctx)
   for _, n in ipairs{ "localhost", "127.0.0.1", "::1" } do names[#names + 1] = n end
   return names
end

--- Where everything goes: the CA, the server's certificate and key, client certificates.
function M.paths(ctx)
   local p = ctx.params.pki
   local dir = p.dir or ctx:default_dir("tls") or ctx.dialect.tls_dir_default
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

-- Certificates ---------------------------------------------------------------------------------

--- The certificates in a PEM file that the run sees (planned writes included), or nil. A file
-- that is not PEM is bad input.
function M.load_certs(ctx, path)
   local data = ctx:read_file(path)
   if not data then return nil end
   local certs, err = pki.load_certs(data)
   if not certs then ctx:reject("%s: %s", path, err) end
   return certs
end

--- The CA certificate(s): the first is the one that signs; a bundle may hold an older CA too.
function M.ca(ctx)
   return M.load_certs(ctx, M.paths(ctx).ca)
end

--- Why certificate `cert` is not fit (nil when it is): chain to one of `cas` (through the
-- intermediates of `chain`, the certificates after it in its file), purpose, every name in its
-- SAN, days left, the key it goes with.
function M.unfit(ctx, cert, cas, purpose, names, key, chain)
   if not cert then return "no certificate" end
   local ok, why = pki.verify(cert, { trusted = cas, untrusted = chain, purpose = purpose })
   if not ok then return why end
   local have = {}
   for _, n in ipairs(cert:san()) do have[n:lower()] = true end
   for _, n in ipairs(names or {}) do
      if not have[n:lower()] then return ("its SAN lacks %s"):format(n) end
   end
   local readable, left = pcall(cert.days_left, cert)
   if not readable then left = nil end   -- an unreadable date: renewed as if it had expired
   if not left or left <= ctx.params.pki.renew_days then
      return ("it expires in %s (renewed %d days ahead)"):format(text.count(left or 0, "day"),
         ctx.params.pki.renew_days)
   end
   if key and not cert:matches_key(key) then return "it does not match its key" end
   return nil
end

--- A new key as `[pki] key_type` says, unless the server's TLS library cannot use it.
function M.new_key(ctx)
   local kind, note = ctx.dialect:key_type(ctx:fact("tls_library"), ctx.params.pki.key_type)
   if note then ctx:warn("%s", note) end
   if kind == "rsa" then return assert(pki.genkey{ type = "rsa", bits = 3072 }) end
   return assert(pki.genkey{ type = "ec", curve = "P-256" })
end

-- The key in `path` as the run sees it (nil when missing); not a key is bad input, `what` names it.
local function load_key(ctx, path, what)
   local data = path and ctx:read_file(path)
   if not data then return nil end
   local key, err = pki.load_key(data)
   if not key then ctx:reject("%s%s: %s", what, path, err) end
   return key
end

-- The certificate and key in two files, as the run sees them (nil for what is missing), and the
-- certificates after the first in its file (a chain's intermediates).
local function pair(ctx, cert_path, key_path)
   local certs = M.load_certs(ctx, cert_path) or {}
   return certs[1], load_key(ctx, key_path, ""), { table.unpack(certs, 2) }
end

local TLS_VERSIONS = { "TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3" }   -- MySQL says TLSv1, MariaDB TLSv1.0

--- `[tls] versions` names only TLS protocols the servers know (a server given another does not start):
-- bad input otherwise.
function M.check_versions(ctx)
   local given = ctx.params.tls.versions or ""
   if given:match("^%s*$") then ctx:reject("tls.versions is empty: name the protocols, e.g. TLSv1.2,TLSv1.3") end
   for v in (given .. ","):gmatch("([^,]*),") do
      v = v:match("^%s*(.-)%s*$")
      local known = false
      for _, k in ipairs(TLS_VERSIONS) do known = known or k:lower() == v:lower() end
      if not known then
         ctx:reject("tls.versions = %s: %s is not one of %s", given, text.shown(v), table.concat(TLS_VERSIONS, ", "))
      end
   end
end

--- What is wrong with the site's own CA and server certificate (pki.ca_cert, pki.server_cert),
-- before anything changes: a CA or certificate not valid now fails (clients that verify would be
-- locked out); fewer than renew_days left warns; a CA key without its certificate fails, and so does
-- a server certificate with no CA to check it against; a CA with no subject key identifier is named.
-- Returns nil or the message that fails.
function M.site_pki_problem(ctx)
   local p = ctx.params.pki
   if p.ca_key and not p.ca_cert then
      return "pki.ca_key is set without pki.ca_cert: give the site CA's certificate too"
   end
   if p.server_cert and not p.ca_cert and not M.ca(ctx) then
      return ("pki.server_cert is set without pki.ca_cert, and there is no CA in %s: give the site CA's certificate "
         .. "in pki.ca_cert"):format(M.paths(ctx).ca)
   end
   local now = os.time()
   local function look(path, what)
      local certs = M.load_certs(ctx, path)
      if not certs or #certs == 0 then return ("%s %s: not a certificate, or missing"):format(what, path) end
      local c = certs[1]
      local nb, na = c:not_before(), c:not_after()
      if not nb or not na then return ("%s %s: its validity cannot be read"):format(what, path) end
      if nb > now then
         return ("%s %s is not valid before %s: clients that verify it would be locked out"):format(what, path,
            os.date("!%Y-%m-%d %H:%M UTC", nb))
      end
      if na <= now then
         return ("%s %s expired on %s: clients that verify it would be locked out"):format(what, path,
            os.date("!%Y-%m-%d", na))
      end
      local left = (na - now) // 86400
      if left < p.renew_days then
         ctx:warn("%s %s expires in %s (%s): renew it at the site's CA", what, path, text.count(left, "day"),
            os.date("!%Y-%m-%d", na))
      end
      return nil, c
   end
   if p.ca_cert then
      local why, ca = look(p.ca_cert, "pki.ca_cert")
      if why then return why end
      if not ca:is_ca() then return ("pki.ca_cert %s is not a CA certificate"):format(p.ca_cert) end
      if not ca:key_id() and p.ca_key then
         return ("pki.ca_cert %s has no subject key identifier, which the certificates it signs need: "
            .. "reissue it with one (openssl: -addext subjectKeyIdentifier=hash)"):format(p.ca_cert)
      end
   end
   if p.server_cert then
      local why = look(p.server_cert, "pki.server_cert")
      if why then return why end
   end
   return nil
end

--- Why the server certificate is not fit against `cas` (nil when it is). A certificate the
-- site gave (pki.server_cert) is never replaced: unfit, it fails the step.
function M.server_cert_unfit(ctx, cas)
   local paths = M.paths(ctx)
   local cert, key, chain = pair(ctx, paths.cert, paths.key)
   local why = M.unfit(ctx, cert, cas, "server", M.server_names(ctx), key, chain)
   if cert and not key then
      if paths.site_server then
         ctx:reject("pki.server_cert %s: its key %s is not there: name it in pki.server_key", paths.cert, paths.key)
      end
      why = ("its key %s is missing"):format(paths.key)
   end
   if why and paths.site_server then
      ctx:fail("pki.server_cert %s: %s; renew it at the site's CA (myseal does not replace it)", paths.cert, why)
   end
   return why
end

--- The TLS directory: 0750, group-owned by the server's group (its user's primary group), which must
-- enter it.
function M.mkdir(ctx, dir)
   local u = sys.user(ctx.params.server.user)
   ctx:mkdir(dir, { mode = OCTAL_750, group = u and u.group or nil })
end

--- Writes a key and a certificate (or a CA bundle), PEM text, through the context: the key 0600 and
-- the given owner (the server's key: the server's user; others: root), the certificate 0644.
function M.write_pair(ctx, cert_path, key_path, cert_pem, key_pem, owner)
   ctx:write_file(key_path, key_pem, { mode = OCTAL_600, owner = owner, secret = true })
   ctx:write_file(cert_path, cert_pem, { mode = OCTAL_644 })
end

--- A new self-signed CA and its key, named after [pki] organization and the host (and `made`: the
-- date of a CA that joins a bundle).
function M.new_ca(ctx, made)
   local p, key = ctx.params.pki, M.new_key(ctx)
   local host = (M.server_names(ctx)[1] or "server") .. (made and (", " .. made) or "")
   return assert(pki.self_signed{ key = key, days = p.ca_days,
      subject = ("/O=%s/CN=%s TLS CA (%s)"):format(p.organization, p.organization, host) }), key
end

--- The CA's key (the site's, or ours).
function M.ca_key(ctx)
   return load_key(ctx, M.paths(ctx).ca_key, "the CA key ")
end

--- A new key and a leaf for it, for `usage` ("server" or "client"), signed with the CA: their PEM
-- text (certificate, key).
function M.leaf(ctx, ca, ca_key, subject, usage, san)
   local key = M.new_key(ctx)
   local cert, err = ca:sign{ ca_key = ca_key, public_key = key, subject = subject, usage = usage, san = san,
                              days = ctx.params.pki.leaf_days }
   if not cert then ctx:fail("cannot sign %s: %s", subject, err) end
   return cert:pem(), key:pem()
end

--- A new server key and certificate from the signing CA (the first of the bundle).
function M.issue_server_cert(ctx)
   local paths = M.paths(ctx)
   local ca_key = M.ca_key(ctx)
   if not ca_key then
      ctx:fail("cannot sign: give pki.ca_key with pki.ca_cert, or pki.server_cert and pki.server_key")
   end
   local names = M.server_names(ctx)
   local cert, key = M.leaf(ctx, M.ca(ctx)[1], ca_key, ("/O=%s/CN=%s"):format(ctx.params.pki.organization, names[1]),
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
   if not signing or not ca_key then
      ctx:fail("cannot sign client certificates without the CA and its key (pki.ca_key)")
   end
   M.mkdir(ctx, M.paths(ctx).clients)
   for _, a in ipairs(M.accounts(ctx)) do
      if a.level ~= "ssl" then
         local cert_path, key_path = M.client_paths(ctx, a.account)
         local cert, key = pair(ctx, cert_path, key_path)
         if M.unfit(ctx, cert, cas, "client", nil, key) then
            local cert_pem, key_pem = M.leaf(ctx, signing, ca_key, M.client_subject(ctx, a.user), "client")
            M.write_pair(ctx, cert_path, key_path, cert_pem, key_pem)
         end
      end
   end
end

-- Accounts -------------------------------------------------------------------------------------

--- The accounts of `[accounts]`: list of `{ account = "user@host", user, host, level }`.
function M.accounts(ctx)
   local out = {}
   for account, level in pairs(ctx.params.accounts or {}) do
      local user, host = account:match("^(.*)@(.-)$")
      if not user then ctx:reject("[accounts] %s: write user@host", account) end
      level = tostring(level):lower()
      if level ~= "ssl" and level ~= "x509" and level ~= "subject" then
         ctx:reject("[accounts] %s = %s: ssl, x509 or subject", account, level)
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

--- Has the client certificate of account `a` reached its client (`[tls] delivered`)?
function M.delivered(ctx, a)
   for _, d in ipairs(ctx.params.tls.delivered or {}) do
      if d == a.account then return true end
   end
   return false
end

--- The REQUIRE an account gets now: ssl_type, subject, issuer, level. A SUBJECT account whose
-- certificate has not reached its client (`[tls] delivered`) gets X509 for now: a subject it could
-- not present yet would lock it out.
function M.wanted_requirement(ctx, a)
   local d = ctx.dialect
   local level = a.level
   if level == "subject" and not M.delivered(ctx, a) then level = "x509" end
   if level ~= "subject" then return d:ssl_type(level), nil, nil, level end
   local cert = (M.load_certs(ctx, (M.client_paths(ctx, a.account))) or {})[1]
   local ca = (M.ca(ctx) or {})[1]
   return d:ssl_type(level), cert and cert:subject() or "(the client certificate's subject)",
      ca and ca:subject() or "(the CA's subject)", level
end

--- Do two option values say the same (case aside)?
function M.same(a, b)
   return tostring(a):upper() == tostring(b):upper()
end

--- Is require_secure_transport ON in the running server?
function M.transport_on(ctx)
   return M.same(ctx:fact("variable", "require_secure_transport") or "", "ON")
end

--- Sets an account's REQUIRE (level "none", "ssl", "x509" or "subject") with the dialect's ALTER USER.
function M.require(ctx, user, host, level, subject, issuer)
   local sql, values = ctx.dialect:require_sql(user, host, level, subject, issuer)
   ctx:sql(sql, table.unpack(values))
end

--- Is each account of [accounts] (or of the list `accounts`) required as wanted_requirement says?
-- @return nil when all are, else the first account that is not and what it requires now
function M.first_unrequired(ctx, accounts)
   local now = ctx:fact("account_tls")
   for _, a in ipairs(accounts or M.accounts(ctx)) do
      local cur = now[a.account]
      if not cur then return a, nil end
      local want, subject, issuer = M.wanted_requirement(ctx, a)
      if cur.ssl_type ~= want or (subject and (cur.subject ~= subject or cur.issuer ~= issuer)) then
         return a, cur
      end
   end
   return nil
end

-- Server options -------------------------------------------------------------------------------

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
      local ok = d:tls_versions(versions, ctx:fact("tls_library"))
      out[#out + 1] = { name = "tls_version", value = ok, var = "tls_version", dynamic = dynamic }
   end
   for _, o in ipairs(d:cipher_options(ctx.params.tls.cipher, ctx.params.tls.ciphersuites)) do out[#out + 1] = o end
   return out
end

--- The TLS options the running server does not have as wanted.
-- @return list of options
function M.stale_variables(ctx)
   local out = {}
   for _, o in ipairs(M.server_options(ctx)) do
      local now = ctx:fact("variable", o.var)
      if not M.same(now or "", o.value) then out[#out + 1] = o end
   end
   return out
end

--- Does the server present the certificate of paths().cert? A check: true, or false and why.
function M.serving_ours(ctx)
   local served = ctx:fact("served_certificate")
   if not served then return false, "the server offers no TLS" end
   local cert = (M.load_certs(ctx, M.paths(ctx).cert) or {})[1]
   if not cert then return false, "no server certificate yet" end
   if served.subject and (served.subject ~= cert:subject() or served.not_after ~= cert:not_after()) then
      return false, ("the server presents %s (until %s), not %s"):format(served.subject,
         os.date("!%Y-%m-%d", served.not_after or 0), cert:subject())
   end
   return true
end

--- Does the server need a restart to take the TLS options (it cannot reload them: no reload
-- statement, not dynamic, or it offers no TLS yet to reload)?
-- @return boolean, the stale options
function M.needs_restart(ctx)
   local stale = M.stale_variables(ctx)
   if #stale == 0 then return false, stale end
   if ctx.dialect:tls_reload_sql() == nil or ctx:fact("served_certificate") == nil then return true, stale end
   for _, o in ipairs(stale) do
      if not o.dynamic then return true, stale end
   end
   return false, stale
end

-- Verification ---------------------------------------------------------------------------------

-- The server's TCP port as a client reaches it.
local function tcp_port(ctx)
   return ctx.target.port or ctx.params.connection.port
      or math.tointeger(tonumber(ctx:fact("variable", "port") or "")) or 3306
end

--- As a client sees it: a verify_identity TLS connection to every server name and to the
-- address myseal uses (a refused login still means the certificate passed: it is checked
-- first). A check: returns true, or false and what failed.
function M.verify_offer(ctx)
   local paths = M.paths(ctx)
   local port = tcp_port(ctx)
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
      elseif errno == 1045 or errno == 1698 then
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
   if #failures > 0 then return false, table.concat(failures, "; ") end
   return require("myseal.runbook").done(checked > 0, "no server name could be connected to")
end

local VERIFY_USER = "myseal_verify_"

--- How verification logs in over TCP, in words (for the preflight).
function M.login_text(ctx)
   if ctx.params.tls.verify_user then return ("as %s ([tls] verify_user)"):format(ctx.params.tls.verify_user) end
   return "as a temporary account (random password, no privileges, dropped afterwards)"
end

--- Call `fn(user, password)` with an account that can log in over TCP: [tls] verify_user, or a
-- temporary one made for it (random password, no privileges; the password masked everywhere) and
-- dropped afterwards, whatever fn does. In plan and check mode no account is made: fn(nil).
-- @return what fn returns
function M.with_login(ctx, fn)
   local t = ctx.params.tls
   if t.verify_user then
      -- its password when one is given (a source in the profile, --secrets-stdin or MYSEAL_SECRET_*)
      return fn(t.verify_user, ctx:has_secret("tls.verify_password") and ctx:secret("tls.verify_password") or nil)
   end
   if ctx.planning then return fn(nil) end
   local user = VERIFY_USER .. text.hex(pki.random(4))
   local password = text.hex(pki.random(16))
   ctx:mask(password)
   local function each(sql, ...)
      ctx._transient = true
      for _, host in ipairs{ "%", "localhost" } do ctx:sql(sql, user, host, ...) end
      ctx._transient = false
   end
   each("CREATE USER ?@? IDENTIFIED BY ?", password)
   local r = table.pack(pcall(fn, user, password))
   each("DROP USER IF EXISTS ?@?")
   if not r[1] then error(r[2], 0) end
   return table.unpack(r, 2, r.n)
end

--- Accounts a killed verification left behind (myseal_verify_*): dropped.
function M.drop_leftover_logins(ctx)
   for _, a in ipairs(ctx:fact("accounts")) do
      if a.user:match("^" .. VERIFY_USER .. "%x+$") then
         ctx._transient = true
         ctx:sql("DROP USER IF EXISTS ?@?", a.user, a.host)
         ctx._transient = false
      end
   end
end

--- Is require_secure_transport wanted ([tls] require_secure_transport) and has the server one?
function M.wants_transport(ctx)
   return ctx.params.tls.require_secure_transport and ctx.dialect:has_require_secure_transport()
end

--- Enforcement as a client sees it: plain TCP refused to an account that could otherwise log in
-- (when require_secure_transport is wanted), and every account's REQUIRE as wanted (of [accounts],
-- or of the list `accounts`).
function M.verify_enforced(ctx, accounts)
   local failures = {}
   if M.wants_transport(ctx) then
      local host = ctx.target.host or "127.0.0.1"
      M.with_login(ctx, function(user, password)
         if not user then
            if not M.transport_on(ctx) then
               failures[#failures + 1] = "require_secure_transport is not ON"
            end
            return
         end
         local opts = { host = host, port = tcp_port(ctx), user = user, password = password,
                        tls = { mode = "required" } }
         local tlsconn = ctx:connect(opts)
         if not tlsconn then
            failures[#failures + 1] = ("%s could not log in over TLS to check with"):format(user)
            return
         end
         tlsconn:close()
         opts.tls = { mode = "disabled" }
         local plain = ctx:connect(opts)
         if plain then
            plain:close()
            failures[#failures + 1] = ("a plain TCP connection to %s was let in"):format(host)
         else
            ctx:log("plain TCP to %s: refused (%s logs in with TLS)", host, user)
         end
      end)
   end
   local now = ctx:fact("account_tls")
   for _, a in ipairs(accounts or M.accounts(ctx)) do
      local want = M.wanted_requirement(ctx, a)
      local cur = now[a.account]
      if not cur or cur.ssl_type ~= want then failures[#failures + 1] = a.account .. " does not require " .. want end
   end
   if #failures > 0 then return false, table.concat(failures, "; ") end
   return true
end

return M
