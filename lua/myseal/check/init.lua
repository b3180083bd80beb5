--- `myseal check`: a read-only inspection of a server's encryption at rest and in transit, as
-- findings an auditor can read and a monitor can act on.
--
-- The findings come from the stock runbooks themselves: every step of at-rest and in-transit
-- (and app-tomcat when the profile has a Tomcat) is asked its own `check`, in a context where
-- nothing can change, and answers done (ok) or not and why (fail, or the step's own severity:
-- a preflight that would refuse warns), with that runbook and step as the fix. Verification
-- steps run too: they look at the server as a client does. Read-only facts no step has an
-- opinion on come after: the tables per schema, a replica's keyring and a primary's replicas, the
-- certificates' days left, accounts and sessions without TLS, the truststore.
-- The JSON form is documented in docs/check.md (schema docs/check.schema.json).
-- @module myseal.check
local sys = require "sys"
local pki = require "pki"
local errors = require "myseal.errors"
local runbook = require "myseal.runbook"
local atrest = require "myseal.atrest"
local intransit = require "myseal.intransit"
local replication = require "myseal.replication"
local text = require "myseal.text"
local render = require "myseal.check.render"
local html = require "myseal.check.html"
local metrics = require "myseal.check.metrics"
local history = require "myseal.check.history"
local evidence = require "myseal.check.evidence"

local M = {}

M.SCHEMA = "myseal.check/2"
local RANK = { ok = 0, info = 1, warn = 2, fail = 3 }

-- The runbooks whose steps are the posture, with the area their findings go to.
local POSTURE = { { "at-rest", "at rest" }, { "in-transit", "in transit" }, { "app-tomcat", "in transit" },
                  { "replica-tls", "in transit" }, { "tls-enforce", "in transit" } }

--- check's own parameters: the expiry thresholds.
M.PARAMS = {
   ["check.warn_days"] = { type = "integer", default = 30, doc = "certificates expiring within this many days warn" },
   ["check.fail_days"] = { type = "integer", default = 7, doc = "certificates expiring within this many days fail" },
}

local function finding(list, f)
   list[#list + 1] = f
   return f
end

-- A context on the target for one runbook, with the --set values it declares. `used` collects
-- the --set names some context took.
local function context(engine, target, rb, set, used)
   local decls = engine.declarations(rb)
   local mine = {}
   for _, s in ipairs(set or {}) do
      local name = s:match("^([^=]+)=")
      local section = name and name:match("^([^.]+)%.")
      if name and (decls[name] or (decls[section] and decls[section].type == "map")) then
         mine[#mine + 1] = s
         used[name] = true
      end
   end
   local warnings = {}
   local reporter = { event = function(_, ev)
      if ev.event == "log" and ev.level == "warn" and ev.step then
         warnings[ev.step] = warnings[ev.step] or {}
         table.insert(warnings[ev.step], ev.message)
      end
   end }
   local ok, ctx, close, run = pcall(engine.context, { target = target, runbook = rb, set = mine,
                                                       reporter = reporter, mode = "check" })
   if not ok then return nil, ctx end
   return { ctx = ctx, close = close, run = run, warnings = warnings }
end

-- One finding per step of a posture runbook: its own check, asked in check mode.
local function step_findings(engine, c, rb, area, out)
   for _, step in ipairs(rb.steps) do
      if step.check then
         c.run.step = step.name
         local ok, wanted = true, true
         if step.when then ok, wanted = engine.call(step.when, c.ctx) end
         -- a `when` that raises fails the step as a `check` that raises does
         local cok, done, why = ok, wanted
         if ok and wanted then cok, done, why = engine.call(step.check, c.ctx) end
         if not ok or wanted then
            local f = { area = area, id = rb.name .. ":" .. step.name, runbook = rb.name, step = step.name }
            if not cok then
               f.severity, f.title = "fail", ("%s: %s"):format(step.name, done.message)
            elseif done then
               f.severity, f.title = "ok", step.doc or step.name
            else
               f.severity = step.severity or "fail"
               f.title = why or ("%s: not done"):format(step.doc or step.name)
            end
            if f.severity ~= "ok" then
               f.fix = { runbook = rb.name, step = step.name }
               if ok and c.warnings[step.name] then f.detail = table.concat(c.warnings[step.name], "; ") end
            end
            finding(out, f)
         end
      end
   end
   c.run.step = nil
end

-- Facts ------------------------------------------------------------------------------------------

-- `limits`: check.warn_days and check.fail_days, as { warn =, fail = }.
local function certificate_findings(limits, out, id, label, certs, fix)
   for i, c in ipairs(certs) do
      local days = c:days_left()
      local sev = days <= limits.fail and "fail" or days <= limits.warn and "warn" or "ok"
      finding(out, { area = "in transit", id = ("%s:%d"):format(id, i), severity = sev,
         title = ("%s %s expires in %s"):format(label, c:subject(), text.count(days, "day")),
         detail = ("until %s, sha256 %s"):format(os.date("!%Y-%m-%d", c:not_after()), c:fingerprint()),
         fix = sev ~= "ok" and fix or nil, not_after = c:not_after(), subject = c:subject() })
   end
end

-- Per schema: which tables are encrypted, which are not, which cannot be.
local function table_findings(ctx, out)
   local todo, others, all = atrest.table_state(ctx)
   local per, order = {}, {}
   for _, t in ipairs(all) do
      local s = per[t.schema]
      if not s then
         s = { encrypted = 0, plain = {}, other = {} }
         per[t.schema] = s
         order[#order + 1] = t.schema
      end
      if t.encrypted then s.encrypted = s.encrypted + 1 end
   end
   for _, t in ipairs(todo) do table.insert(per[t.schema].plain, t.name) end
   for _, t in ipairs(others) do table.insert(per[t.schema].other, t.name .. " (" .. (t.engine or "?") .. ")") end
   table.sort(order)
   for _, schema in ipairs(order) do
      local s = per[schema]
      local f = { area = "at rest", id = "tables:" .. schema, schema = schema, encrypted = s.encrypted,
                  unencrypted = s.plain, not_encryptable = s.other }
      if #s.plain > 0 then
         f.severity = "fail"
         f.title = ("%s: %d of %s not encrypted"):format(schema, #s.plain,
            text.count(s.encrypted + #s.plain + #s.other, "table"))
         f.detail = table.concat(s.plain, ", ")
         f.fix = { runbook = "at-rest", step = "encrypt-tables" }
      elseif #s.other > 0 then
         f.severity = "warn"
         f.title = ("%s: %s in engines that cannot be encrypted"):format(schema, text.count(#s.other, "table"))
         f.detail = table.concat(s.other, ", ")
         f.fix = { runbook = "at-rest", step = "encrypt-tables", set = "at_rest.convert_myisam=true" }
      else
         f.severity = "ok"
         f.title = ("%s: all %s encrypted"):format(schema, text.count(s.encrypted, "table"))
      end
      finding(out, f)
   end
end

-- What the verify step's disk scan found (at_rest.disk_scan=yes, `myseal check --deep`), as
-- check/evidence.lua makes the findings of it.
local function plaintext_findings(c, out)
   local scan = c and c.run.records.disk_scan
   if not scan then return end
   for _, f in ipairs(evidence.disk_findings(scan)) do finding(out, f) end
end

-- The last successful restore rehearsal (journal records of at-rest and rotate-master-key): ok when
-- it proved the key material as it is now, a warning when the keys changed since or there is none.
local function rehearsal_findings(c, out)
   if not c or not c.ctx:fact("keyring_active") then return end
   local proof = require "myseal.atrest.proof"
   local ctx = c.ctx
   local last, current = proof.last_rehearsal(ctx, ctx.dialect:key_files(atrest.settings(ctx)))
   local change = ctx:history("key_backup")[1]
   local f = { area = "at rest", id = evidence.REHEARSAL, rehearsed = last and metrics.epoch(last.at),
               rehearsed_at = last and last.at, key_changed_at = change and change.at }
   if current then
      f.severity = "ok"
      f.title = ("the last restore rehearsal, %s (%s), restored the key backup as it is now"):format(last.at,
         last.runbook)
   else
      f.severity = "warn"
      f.title = last and ("no restore rehearsal since the key material changed%s; the last one: %s"):format(
            change and (" (" .. change.at .. ")") or "", last.at)
         or "no restore rehearsal of the key backup yet: nothing proves the backed-up keys open the data"
      f.fix = { runbook = "at-rest", step = "rehearsal" }
   end
   finding(out, f)
end

-- The certificate the server is configured with, its chain and names; versions; accounts; sessions.
local function tls_findings(ctx, limits, out)
   local cert_path, ca_path = ctx:fact("variable", "ssl_cert"), ctx:fact("variable", "ssl_ca")
   local function load(path)
      local data = path and path ~= "" and ctx:read_file(path)
      return data and pki.load_certs(data)
   end
   local certs, cas = load(cert_path), load(ca_path)
   if certs then
      local cert = certs[1]
      local ok, why = pki.verify(cert, { trusted = cas or {}, untrusted = { table.unpack(certs, 2) },
                                         purpose = "server" })
      finding(out, { area = "in transit", id = "server-chain", severity = ok and "ok" or "fail",
         title = ok and "the server certificate chains to the server's CA" or ("the server certificate: " .. why),
         detail = cert_path, fix = not ok and { runbook = "rotate-certs", step = "server-cert" } or nil })
      local san = cert:san()
      finding(out, { area = "in transit", id = "server-san", severity = #san > 0 and "ok" or "fail",
         title = #san > 0 and ("names in the certificate: %s"):format(table.concat(san, ", "))
            or "the server certificate has no subjectAltName: clients verifying the host name fail",
         san = san, fix = #san == 0 and { runbook = "in-transit", step = "server-cert" } or nil })
      certificate_findings(limits, out, "server-expiry", "server certificate", { cert },
         { runbook = "rotate-certs", step = "server-cert" })
      certificate_findings(limits, out, "ca-expiry", "CA", cas or {}, { runbook = "rotate-certs", step = "ca-add" })
   end
   local versions = ctx:fact("variable", "tls_version")
   if versions then
      local old = false   -- TLS 1.0 (MySQL says TLSv1, MariaDB TLSv1.0) or 1.1
      for v in versions:gmatch("[^,%s]+") do
         old = old or v:upper() == "TLSV1" or v:upper() == "TLSV1.0" or v:upper() == "TLSV1.1"
      end
      finding(out, { area = "in transit", id = "tls-versions", severity = old and "warn" or "ok",
         title = "TLS versions allowed: " .. versions,
         fix = old and { runbook = "in-transit", step = "server-options" } or nil })
   end
   local rst = intransit.transport_on(ctx)
   local levels, plain = {}, {}
   for _, a in ipairs(ctx:fact("accounts")) do
      local level = a.ssl_type == "" and "NONE" or a.ssl_type
      levels[level] = (levels[level] or 0) + 1
      if a.ssl_type == "" and a.host ~= "localhost" and a.user ~= "" then
         plain[#plain + 1] = a.user .. "@" .. a.host
      end
   end
   local parts = {}
   for _, l in ipairs{ "NONE", "ANY", "X509", "SPECIFIED" } do
      if levels[l] then parts[#parts + 1] = ("%s %d"):format(l, levels[l]) end
   end
   finding(out, { area = "in transit", id = "accounts", severity = "info", levels = levels,
      require_secure_transport = rst, title = "accounts by REQUIRE: " .. table.concat(parts, ", ") })
   if #plain > 0 then
      finding(out, { area = "in transit", id = "plain-accounts", severity = rst and "ok" or "warn",
         title = rst and ("%s without REQUIRE must still use TLS over TCP (require_secure_transport)")
               :format(text.count(#plain, "account"))
            or ("%s can log in over TCP without TLS"):format(text.count(#plain, "account")),
         detail = table.concat(plain, ", "), accounts = plain,
         fix = not rst and { runbook = "tls-enforce", step = "require-transport" } or nil })
   end
   local who = {}
   for _, s in ipairs(ctx:fact("plain_sessions")) do
      who[#who + 1] = ("%s@%s%s"):format(s.user, s.host, s.tls == nil and " (TLS unknown)" or "")
   end
   finding(out, { area = "in transit", id = "plain-sessions", severity = #who > 0 and "warn" or "ok",
      title = #who > 0 and ("%s without TLS (or not known to use it)"):format(text.count(#who, "TCP session"))
         or "no TCP session without TLS",
      detail = #who > 0 and table.concat(who, ", ") or nil,
      fix = #who > 0 and { runbook = "tls-enforce", step = "preflight" } or nil })
   local clients = intransit.paths(ctx).clients
   local list = {}
   for _, n in ipairs(sys.dir(clients) or {}) do
      local cs = n:match("%-cert%.pem$") and pki.load_certs(clients .. "/" .. n)
      if cs then list[#list + 1] = cs[1] end
   end
   certificate_findings(limits, out, "client-expiry", "client certificate", list,
      { runbook = "rotate-certs", step = "client-certs" })
end

-- The certificates of app-tomcat's truststore and their days left.
local function truststore_findings(ctx, limits, out)
   local path = require("myseal.tomcat.layout").of(ctx):truststore_path()
   if not sys.stat(path) then return end
   local store = require("keystore").open(path, { password = ctx:secret("tomcat.truststore_password") })
   if not store then return end   -- the truststore step's finding says why
   local list = {}
   for _, alias in ipairs(store:aliases()) do list[#list + 1] = store:get(alias) end
   store:close()
   certificate_findings(limits, out, "truststore-expiry", "trusted", list,
      { runbook = "app-tomcat", step = "truststore" })
end

--- Inspects a target. Returns the report:
-- `{ schema, generated, target, server, summary = { ok, info, warn, fail }, status, findings, controls, runs }`
-- (controls: check/evidence.lua; runs: the target's journals, check/history.lua).
-- @param opts `{ target = (myseal.engine.target), set = { "s.k=v", ... } }`
function M.run(opts)
   local engine = require "myseal.engine"
   local used = {}
   local facts_rb = runbook.new{ name = "check", summary = "check's own parameters", params = M.PARAMS,
                                 steps = { { name = "none", check = function() return true end } } }
   local facts = assert(context(engine, opts.target, facts_rb, opts.set, used))
   local findings, contexts = {}, {}
   local ok, err = pcall(function()
      finding(findings, { area = "server", id = "server", severity = "info", title = facts.ctx.dialect:describe() })
      for _, p in ipairs(POSTURE) do
         local rb = runbook.load(p[1])
         local c, why = context(engine, opts.target, rb, opts.set, used)
         if c then
            contexts[p[1]] = c
            step_findings(engine, c, rb, p[2], findings)
         elseif p[1] ~= "app-tomcat" then   -- app-tomcat only where the profile has a Tomcat
            error(why, 0)
         end
      end
      local limits = { warn = facts.ctx.params.check.warn_days, fail = facts.ctx.params.check.fail_days }
      table_findings(contexts["at-rest"].ctx, findings)
      plaintext_findings(contexts["at-rest"], findings)
      rehearsal_findings(contexts["at-rest"], findings)
      for _, f in ipairs(replication.findings(contexts["at-rest"].ctx)) do finding(findings, f) end
      tls_findings(contexts["tls-enforce"].ctx, limits, findings)
      if contexts["app-tomcat"] then truststore_findings(contexts["app-tomcat"].ctx, limits, findings) end
   end)
   for _, c in pairs(contexts) do c.close() end
   local server = facts.ctx.dialect:describe()
   facts.close()
   if not ok then error(err, 0) end
   for _, s in ipairs(opts.set or {}) do
      local name = s:match("^([^=]+)=")
      if not name then errors.usage("--set %s: write --set section.key=value", s) end
      if not used[name] then errors.usage("--set %s: no parameter %s in check or the runbooks it asks", s, name) end
   end
   local summary = { ok = 0, info = 0, warn = 0, fail = 0 }
   local worst = "ok"
   for _, f in ipairs(findings) do
      summary[f.severity] = summary[f.severity] + 1
      if RANK[f.severity] > RANK[worst] then worst = f.severity end
   end
   local runs = history.runs((opts.target:state_dir()))
   return { schema = M.SCHEMA, generated = os.date("!%Y-%m-%dT%H:%M:%SZ"), target = opts.target.label,
            server = server, summary = summary, status = worst == "info" and "ok" or worst,
            findings = findings, controls = evidence.controls(findings, runs), runs = runs }
end

--- Exit status for a report: 1 when a finding is at least `fail_on` ("warn" or "fail").
function M.exit_status(report, fail_on)
   return RANK[report.status] >= RANK[fail_on or "fail"] and 1 or 0
end

M.text, M.json, M.html, M.prometheus = render.text, render.json, html.page, metrics.prometheus

return M
