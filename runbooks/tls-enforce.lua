-- tls-enforce.lua: the server requires TLS: require_secure_transport, and REQUIRE for the accounts
-- of [accounts]. Run it once the clients use TLS (in-transit offers it; app-tomcat moves a Tomcat;
-- the story runbook encrypt does all three in that order). It cannot see which sessions use TLS
-- when performance_schema is off (Debian's default), so instead of guessing it watches: for
-- [tls] watch_seconds after enforcing it follows failed logins, and when clients start failing it
-- puts the enforcement back and names them (unless [tls] confirmed says to keep it).
local runbook = require "myseal.runbook"

local steps = runbook.outline {
   { name = "preflight", severity = "warn",
     doc = "before anything changes: who would be cut off (sessions, replication, socket logins of accounts "
        .. "that get REQUIRE), and accounts as the server matches them" },
   { name = "require-transport", doc = "require_secure_transport=ON, in the server and its option file" },
   { name = "accounts", doc = "ALTER USER ... REQUIRE for each account of [accounts] (never GRANT ... REQUIRE)" },
   { name = "watch",
     doc = "for [tls] watch_seconds, failed logins are watched; clients cut off put the enforcement back" },
   { name = "verify", doc = "as a client sees it: plain TCP refused to an account that can log in, REQUIRE as wanted" },
}

-- ------------------------------------------------------------------------------------------------

local tls = require "myseal.intransit"
local options = require "myseal.options"
local replication = require "myseal.replication"
local text = require "myseal.text"
local sys = require "sys"

local done = runbook.done
local CHANGED = "tls-enforce.changed"   -- recorded: what this run enforced, for the watch to put back
local BEFORE = "tls-enforce.before"     -- recorded: the same, kept for a rollback

-- The accounts that get REQUIRE: those of [accounts], and the ones this server's replicas log in as.
local function accounts(ctx)
   return replication.with_replica_accounts(ctx, tls.accounts(ctx))
end

-- An account of [accounts] the server does not have is bad input, found before anything is required.
local function reject_unknown_accounts(ctx)
   local now = ctx:fact("account_tls")
   for _, a in ipairs(tls.accounts(ctx)) do
      if not now[a.account] then ctx:reject("[accounts] %s: no such account on the server", a.account) end
   end
end

steps.preflight.when = function(ctx)
   if not (tls.wants_transport(ctx) or #accounts(ctx) > 0) then return false end
   -- in the story's plan the server does not offer TLS yet: the run judges it after the parts before
   if ctx:changes_planned() > 0 then return false, "after the changes above" end
   return true
end
steps.preflight.check = function(ctx)
   reject_unknown_accounts(ctx)
   if not ctx:fact("served_certificate") then
      return false, "the server offers no TLS: run in-transit first (requiring TLS now would refuse every TCP client)"
   end
   local problems = {}
   if ctx.params.tls.require_secure_transport and not ctx.dialect:has_require_secure_transport() then
      ctx:warn("%s has no require_secure_transport: only the accounts' REQUIRE makes clients use TLS",
         ctx.dialect:describe())
   end
   for _, s in ipairs(ctx:fact("plain_sessions")) do
      if s.tls == false then
         problems[#problems + 1] = ("session of %s from %s without TLS"):format(s.user, s.host)
      end
   end
   for _, r in ipairs(ctx:fact("replication_without_tls")) do
      problems[#problems + 1] = ("replication channel %s from %s without SSL"):format(r.channel, r.host)
   end
   -- as a primary: each replica's channel from here, as the replica shows it
   for _, p in ipairs(replication.channel_problems(ctx)) do problems[#problems + 1] = p end
   -- the accounts clients really log in as; REQUIRE on one that is in use over the socket locks it
   -- out there too (MySQL and MariaDB refuse a non-TLS connection for it, socket or not)
   local live = ctx:fact("sessions")
   local wanted = {}
   for _, a in ipairs(accounts(ctx)) do wanted[a.user .. "@" .. a.host] = a end
   local seen = {}
   for _, s in ipairs(live.tcp) do
      local acc = ctx:fact("account_for", s.user, s.host)
      local name = acc and (acc.user .. "@" .. acc.host)
      if name and not seen[name] then
         seen[name] = true
         for account, a in pairs(wanted) do
            if a.user == s.user and account ~= name then
               ctx:warn("%s from %s logs in as %s, not %s: REQUIRE on %s does not reach it", s.user, s.host, name,
                  account, account)
            end
         end
      end
   end
   for _, s in ipairs(live.socket) do
      local acc = ctx:fact("account_for", s.user, "localhost")
      local name = acc and (acc.user .. "@" .. acc.host)
      if name and wanted[name] then
         problems[#problems + 1] = ("%s is logged in over the socket now, and REQUIRE would refuse it there too")
            :format(name)
      end
   end
   local me = ctx.params.connection.user
   if not ctx.params.connection.host then
      local acc = ctx:fact("account_for", me, "localhost")
      if acc and wanted[acc.user .. "@" .. acc.host] then
         problems[#problems + 1] = ("myseal itself logs in as %s over the socket"):format(acc.user .. "@" .. acc.host)
      end
   end
   if tls.wants_transport(ctx) then ctx:log("verification will log in over TCP %s", tls.login_text(ctx)) end
   if #problems == 0 then return true end
   for _, p in ipairs(problems) do ctx:warn("would be cut off: %s", p) end
   if ctx.params.tls.accept_lockout then return true end
   return false, ("%s would be cut off (%s); move them to TLS first, or set tls.accept_lockout=true")
      :format(text.count(#problems, "connection"), table.concat(problems, "; "))
end

steps["require-transport"].when = tls.wants_transport
steps["require-transport"].check = function(ctx)
   local doc = options.tree(ctx)
   local in_file = doc and doc:effective(ctx.dialect:server_groups(), "require_secure_transport")
   return done(tls.transport_on(ctx) and tls.same(in_file or "", "ON"), "require_secure_transport is not ON")
end
steps["require-transport"].apply = function(ctx)
   -- the server first: a server that cannot take it leaves the option file as it was
   if not tls.transport_on(ctx) then
      for _, key in ipairs{ CHANGED, BEFORE } do
         local c = ctx:recorded(key) or {}
         c.transport = true
         ctx:record(key, c)
      end
      ctx:sql("SET GLOBAL require_secure_transport = ON")
   end
   options.write(ctx, { { name = "require_secure_transport", value = "ON" } })
end

-- after a rollback has put the option file back: the server's own setting too
steps["require-transport"].undo = function(ctx)
   if (ctx:recorded(BEFORE) or {}).transport then ctx:sql("SET GLOBAL require_secure_transport = OFF") end
end

steps.accounts.when = function(ctx) return #accounts(ctx) > 0 end
steps.accounts.check = function(ctx)
   reject_unknown_accounts(ctx)
   local a, cur = tls.first_unrequired(ctx, accounts(ctx))
   if a and not cur then ctx:reject("[accounts] %s: no such account on the server", a.account) end
   if a then return false, ("%s requires %s"):format(a.account, cur.ssl_type == "" and "nothing" or cur.ssl_type) end
   return true
end
steps.accounts.apply = function(ctx)
   local now = ctx:fact("account_tls")
   local c, before = ctx:recorded(CHANGED) or {}, ctx:recorded(BEFORE) or {}
   c.accounts, before.accounts = c.accounts or {}, before.accounts or {}
   for _, a in ipairs(accounts(ctx)) do
      local cur = now[a.account]
      local want, subject, issuer, level = tls.wanted_requirement(ctx, a)
      if cur.ssl_type ~= want or (subject and (cur.subject ~= subject or cur.issuer ~= issuer)) then
         if a.level == "subject" and level ~= "subject" then
            ctx:warn("%s gets REQUIRE X509 for now: its client certificate is only on this host; deliver it, then "
               .. "run again with tls.delivered=%s for REQUIRE SUBJECT", a.account, a.account)
         end
         local was = { user = a.user, host = a.host, ssl_type = cur.ssl_type, subject = cur.subject,
                       issuer = cur.issuer }
         c.accounts[#c.accounts + 1] = was
         before.accounts[#before.accounts + 1] = was
         ctx:record(CHANGED, c)
         ctx:record(BEFORE, before)
         tls.require(ctx, a.user, a.host, level, subject, issuer)
      end
   end
end

-- The REQUIRE level of a previous `{ ssl_type, subject, issuer }`.
local LEVEL = { [""] = "none", ANY = "ssl", X509 = "x509", SPECIFIED = "subject" }

-- Each account's REQUIRE as it was before this run.
local function put_back_accounts(ctx, list)
   for _, a in ipairs(list or {}) do
      tls.require(ctx, a.user, a.host, LEVEL[a.ssl_type] or "none", a.subject ~= "" and a.subject or nil,
         a.issuer ~= "" and a.issuer or nil)
   end
end

steps.accounts.undo = function(ctx) put_back_accounts(ctx, (ctx:recorded(BEFORE) or {}).accounts) end

-- Put back what this run enforced: the server's require_secure_transport and its option file, and
-- each account's REQUIRE as it was.
local function put_back(ctx, c)
   if c.transport then
      ctx:sql("SET GLOBAL require_secure_transport = OFF")
      options.write(ctx, { { name = "require_secure_transport", value = "OFF" } })
   end
   put_back_accounts(ctx, c.accounts)
end

-- The "Access denied for user 'u'@'h'" lines the server logged after `from` (a byte offset of
-- its log), and the log's size now.
local function denied_in_log(path, from)
   local st = path and sys.stat(path)
   if not st then return {}, from end
   if st.size < from then from = 0 end
   local data = sys.read_file(path) or ""
   local out = {}
   for who in data:sub(from + 1):gmatch("Access denied for user ('[^\n]-'@'[^\n]-')") do out[#out + 1] = who end
   return out, #data
end

steps.watch.when = function(ctx) return ctx.params.tls.watch_seconds > 0 end
steps.watch.check = function(ctx)
   return done(ctx:recorded(CHANGED) == nil, "watch the clients after enforcing")
end
steps.watch.apply = function(ctx)
   local c = ctx:recorded(CHANGED) or {}
   local log = ctx:fact("variable", "log_error")
   if log and log ~= "" and not log:match("^/") then
      log = (ctx:fact("variable", "datadir") or ""):gsub("/?$", "/") .. log:gsub("^%./", "")
   end
   log = ctx.params.server.error_log or (log ~= "" and log or nil)
   local base = tonumber(ctx:fact("denied_logins")) or 0
   local _, offset = denied_in_log(log, math.huge)
   local who, count = {}, 0
   ctx:wait(("failed logins for %s"):format(text.count(ctx.params.tls.watch_seconds, "second")), function()
      count = (tonumber(ctx:fact("denied_logins")) or base) - base
      local lines
      lines, offset = denied_in_log(log, offset)
      for _, w in ipairs(lines) do who[w] = (who[w] or 0) + 1 end
      return false
   end, { timeout = ctx.params.tls.watch_seconds, interval = 0.5, ends = true })
   if count <= 0 then
      ctx:log("no failed login in %s after enforcing", text.count(ctx.params.tls.watch_seconds, "second"))
      ctx:record(CHANGED, nil)
      return
   end
   local names = {}
   for w, n in pairs(who) do names[#names + 1] = ("%s (%s)"):format(w, text.count(n, "time")) end
   table.sort(names)
   local what = #names > 0 and table.concat(names, ", ") or "clients the server's log does not name"
   if ctx.params.tls.confirmed then
      ctx:warn("%s failed after enforcing: %s; kept, as tls.confirmed says", text.count(count, "login"), what)
      ctx:record(CHANGED, nil)
      return
   end
   put_back(ctx, c)
   ctx:record(CHANGED, nil)
   ctx:fail("%s failed after enforcing (%s): the enforcement is put back; move those clients to TLS, or set "
      .. "tls.confirmed=true to enforce anyway", text.count(count, "login"), what)
end

steps.verify.when = function(ctx)
   if not (tls.wants_transport(ctx) or #accounts(ctx) > 0) then return false end
   return ctx.mode ~= "plan", "after the changes"
end
steps.verify.check = function(ctx)
   tls.drop_leftover_logins(ctx)
   return tls.verify_enforced(ctx, accounts(ctx))
end

return runbook.new {
   name = "tls-enforce",
   summary = "the server requires TLS (require_secure_transport, REQUIRE), watching for clients it cuts off",
   needs = { "in-transit" },
   params = replication.params({ "replication.replicas", "replication.check_user", "replication.check_password",
      "replication.require", "replication.wait_seconds" },
      tls.params{ "pki.dir", "pki.ca_cert", "pki.ca_key", "pki.server_cert", "pki.server_key", "pki.organization",
         "tls.require_secure_transport", "tls.accept_lockout", "tls.watch_seconds", "tls.confirmed", "tls.delivered",
         "tls.verify_user", "tls.verify_password", "accounts" }),
   steps = steps,
}
