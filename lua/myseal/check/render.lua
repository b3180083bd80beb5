--- `myseal check`: a read-only inspection of a server's encryption at rest and in transit,
-- as findings an auditor can read and a monitor can act on. Each finding has a severity
-- (ok, info, warn, fail) and, when something is to be done, the runbook and step that do it.
-- The JSON form is documented in docs/check.md (schema docs/check.schema.json).
-- @module myseal.check
local sys = require "sys"
local pki = require "pki"
local runbook = require "myseal.runbook"
local atrest = require "myseal.atrest"
local intransit = require "myseal.intransit"

local M = {}

M.SCHEMA = "myseal.check/1"
M.SEVERITIES = { "ok", "info", "warn", "fail" }
local RANK = { ok = 0, info = 1, warn = 2, fail = 3 }

-- The parameters check reads: at-rest's and in-transit's, and the truststore of app-tomcat.
local function declarations()
   local out = {}
   for _, name in ipairs{ "at-rest", "in-transit" } do
      for k, d in pairs(runbook.load(name).params) do
         out[k] = { type = d.type, default = d.default, doc = d.doc, values = d.values }
      end
   end
   out["tomcat.truststore"] = { type = "path", doc = "the application's Java truststore, whose certificates are checked" }
   out["tomcat.truststore_type"] = { type = "enum", values = { "pkcs12", "jks" }, default = "pkcs12",
                                     doc = "its type" }
   out["tomcat.truststore_password"] = { type = "secret", doc = "its password" }
   out["check.warn_days"] = { type = "integer", default = 30, doc = "certificates expiring within this many days warn" }
   out["check.fail_days"] = { type = "integer", default = 7, doc = "certificates expiring within this many days fail" }
   return out
end

-- The dialect entries of at-rest and in-transit together.
local function dialect()
   local out = {}
   for _, src in ipairs{ atrest.dialect, intransit.dialect } do
      for level, entries in pairs(src) do
         local dst = out[level] or {}
         out[level] = dst
         for k, v in pairs(entries) do
            if (k == "facts" or k == "described") and dst[k] then
               for fk, fv in pairs(v) do dst[k][fk] = fv end
            elseif k == "facts" or k == "described" then
               dst[k] = {}
               for fk, fv in pairs(v) do dst[k][fk] = fv end
            else
               dst[k] = v
            end
         end
      end
   end
   return out
end

--- The runbook whose parameters and dialect a check context has (it has no steps to run).
function M.runbook()
   return runbook.new{
      name = "check",
      summary = "the parameters and dialect of myseal check",
      params = declarations(),
      dialect = dialect(),
      steps = { { name = "inspect", check = function() return true end } },
   }
end

-- ------------------------------------------------------------------------------------------

local function finding(list, f)
   list[#list + 1] = f
   return f
end

local function days_severity(ctx, days)
   if days <= ctx.params.check.fail_days then return "fail" end
   if days <= ctx.params.check.warn_days then return "warn" end
   return "ok"
end

local function on(v) return v ~= nil and intransit.same(v, "ON") end

local function at_rest(ctx, out)
   local d = ctx.dialect
   if ctx:fact("keyring_active") then
      finding(out, { area = "at rest", id = "keyring", severity = "ok",
         title = ("keyring %s is active"):format(d.keyring), detail = ctx:fact("keyring_file") })
   else
      finding(out, { area = "at rest", id = "keyring", severity = "fail",
         title = ("no active keyring (%s)"):format(d.keyring),
         fix = { runbook = "at-rest", step = "option-file" } })
   end
   -- tables, per schema
   local todo, others, all = atrest.table_state(ctx)
   local per = {}
   local order = {}
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
         f.title = ("%s: %d of %d tables not encrypted"):format(schema, #s.plain, s.encrypted + #s.plain + #s.other)
         f.detail = table.concat(s.plain, ", ")
         f.fix = { runbook = "at-rest", step = "encrypt-tables" }
      elseif #s.other > 0 then
         f.severity = "warn"
         f.title = ("%s: %d tables in engines that cannot be encrypted"):format(schema, #s.other)
         f.detail = table.concat(s.other, ", ")
         f.fix = { runbook = "at-rest", step = "encrypt-tables", set = "at_rest.convert_myisam=true" }
      else
         f.severity = "ok"
         f.title = ("%s: all %d tables encrypted"):format(schema, s.encrypted)
      end
      finding(out, f)
   end
   -- logs, binary log, temporary files: the options at-rest sets, as the server has them
   local s = atrest.settings(ctx)
   s.logs, s.binlog, s.temp, s.new_tables = true, true, true, true
   for _, o in ipairs(d:encryption_options(s)) do
      if o.var and o.var ~= "innodb_encryption_threads" and o.var ~= "innodb_encryption_rotation_iops" then
         local v = ctx:fact("variable", o.var)
         finding(out, { area = "at rest", id = "option:" .. o.var, severity = on(v) and "ok" or "warn",
            title = ("%s = %s"):format(o.var, tostring(v or "(not set)")),
            fix = not on(v) and { runbook = "at-rest", step = "restart" } or nil })
      end
   end
   -- the key backup, when the profile says where it goes
   local backup = ctx.params.keyring.backup_dir
   local present = true
   for _, f in ipairs(d:key_files(s)) do present = present and ctx:exists(f) end
   if backup and not present then
      finding(out, { area = "at rest", id = "key-backup", severity = "info",
         title = "no key material to back up yet" })
   elseif backup then
      local missing = require("myseal.keyring").missing_backups(ctx, d:key_files(s), backup)
      finding(out, { area = "at rest", id = "key-backup", severity = #missing == 0 and "ok" or "fail",
         title = #missing == 0 and ("the key material has a backup in %s"):format(backup)
            or ("no backup of %s in %s"):format(table.concat(missing, ", "), backup),
         fix = #missing > 0 and { runbook = "at-rest", step = "key-backup" } or nil })
   end
end

local function certificate_findings(ctx, out, id, label, certs, fix)
   for i, c in ipairs(certs) do
      local days = c:days_left()
      finding(out, { area = "in transit", id = ("%s:%d"):format(id, i), severity = days_severity(ctx, days),
         title = ("%s %s expires in %d days"):format(label, c:subject(), days),
         detail = ("until %s, sha256 %s"):format(os.date("!%Y-%m-%d", c:not_after()), c:fingerprint()),
         fix = days_severity(ctx, days) ~= "ok" and fix or nil })
   end
end

local function in_transit(ctx, out)
   local served = ctx:fact("served_certificate")
   if not served then
      finding(out, { area = "in transit", id = "tls", severity = "fail", title = "the server offers no TLS",
         fix = { runbook = "in-transit", step = "tls-load" } })
   else
      finding(out, { area = "in transit", id = "tls", severity = "ok", title = "the server offers TLS",
         detail = served.subject })
   end
   -- the server's certificate and its chain, from the files the server names
   local cert_path, ca_path = ctx:fact("variable", "ssl_cert"), ctx:fact("variable", "ssl_ca")
   local certs = cert_path and cert_path ~= "" and ctx:read_file(cert_path) and pki.load_certs(ctx:read_file(cert_path))
   local cas = ca_path and ca_path ~= "" and ctx:read_file(ca_path) and pki.load_certs(ctx:read_file(ca_path))
   if certs then
      local cert = certs[1]
      local ok, why = pki.verify(cert, { trusted = cas or {}, untrusted = { table.unpack(certs, 2) }, purpose = "server" })
      finding(out, { area = "in transit", id = "server-chain", severity = ok and "ok" or "fail",
         title = ok and "the server certificate chains to the server's CA" or ("the server certificate: " .. why),
         detail = cert_path, fix = not ok and { runbook = "rotate-certs", step = "server-cert" } or nil })
      finding(out, { area = "in transit", id = "server-san", severity = #cert:san() > 0 and "ok" or "fail",
         title = #cert:san() > 0 and ("names in the certificate: %s"):format(table.concat(cert:san(), ", "))
            or "the server certificate has no subjectAltName: clients verifying the host name fail",
         san = cert:san(), fix = #cert:san() == 0 and { runbook = "in-transit", step = "server-cert" } or nil })
      certificate_findings(ctx, out, "server-expiry", "server certificate", { cert },
         { runbook = "rotate-certs", step = "server-cert" })
      certificate_findings(ctx, out, "ca-expiry", "CA", cas or {}, { runbook = "rotate-certs", step = "ca-add" })
   end
   -- versions, and transport enforcement
   local versions = ctx:fact("variable", "tls_version")
   if versions then
      local old = versions:find("TLSv1.0", 1, true) or versions:find("TLSv1.1", 1, true)
      finding(out, { area = "in transit", id = "tls-versions", severity = old and "warn" or "ok",
         title = "TLS versions allowed: " .. versions,
         fix = old and { runbook = "in-transit", step = "server-options" } or nil })
   end
   local rst = ctx:fact("variable", "require_secure_transport")
   finding(out, { area = "in transit", id = "require-secure-transport", severity = on(rst) and "ok" or "fail",
      title = "require_secure_transport = " .. tostring(rst or "(not supported)"),
      fix = not on(rst) and { runbook = "in-transit", step = "require-transport" } or nil })
   -- accounts by REQUIRE level, and who may still log in over TCP without TLS
   local levels, plain = {}, {}
   local accounts = ctx:fact("accounts")
   for _, a in ipairs(accounts) do
      local level = a.ssl_type == "" and "NONE" or a.ssl_type
      levels[level] = (levels[level] or 0) + 1
      if a.ssl_type == "" and a.host ~= "localhost" and a.user ~= "" then plain[#plain + 1] = a.user .. "@" .. a.host end
   end
   local parts = {}
   for _, l in ipairs{ "NONE", "ANY", "X509", "SPECIFIED" } do
      if levels[l] then parts[#parts + 1] = ("%s %d"):format(l, levels[l]) end
   end
   finding(out, { area = "in transit", id = "accounts", severity = "info", levels = levels,
      title = "accounts by REQUIRE: " .. table.concat(parts, ", ") })
   if #plain > 0 then
      finding(out, { area = "in transit", id = "plain-accounts", severity = on(rst) and "ok" or "warn",
         title = on(rst) and ("%d accounts without REQUIRE must still use TLS over TCP (require_secure_transport)"):format(#plain)
            or ("%d accounts can log in over TCP without TLS"):format(#plain),
         detail = table.concat(plain, ", "), accounts = plain,
         fix = not on(rst) and { runbook = "in-transit", step = "accounts" } or nil })
   end
   local sessions = ctx:fact("plain_sessions")
   if #sessions > 0 then
      local who = {}
      for _, s in ipairs(sessions) do
         who[#who + 1] = ("%s@%s%s"):format(s.user, s.host, s.tls == nil and " (TLS unknown)" or "")
      end
      finding(out, { area = "in transit", id = "plain-sessions", severity = "warn",
         title = ("%d TCP sessions without TLS (or not known to use it)"):format(#sessions),
         detail = table.concat(who, ", "), fix = { runbook = "in-transit", step = "lockout-preflight" } })
   else
      finding(out, { area = "in transit", id = "plain-sessions", severity = "ok", title = "no TCP session without TLS" })
   end
   -- truststores and client certificates the site profile names
   local ts = ctx.params.tomcat.truststore
   if ts then
      local password = ctx:secret("tomcat.truststore_password")
      local store, err = require("keystore").open(ts, { password = password })
      if not store then
         finding(out, { area = "in transit", id = "truststore", severity = "fail", title = "truststore: " .. err,
            fix = { runbook = "app-tomcat", step = "truststore" } })
      else
         local list = {}
         for _, alias in ipairs(store:aliases()) do list[#list + 1] = store:get(alias) end
         finding(out, { area = "in transit", id = "truststore", severity = #list > 0 and "ok" or "fail",
            title = ("truststore %s: %d certificates"):format(ts, #list) })
         certificate_findings(ctx, out, "truststore-expiry", "trusted", list,
            { runbook = "app-tomcat", step = "truststore" })
      end
   end
   local clients = intransit.paths(ctx).clients
   local names = sys.dir(clients)
   if names then
      local list = {}
      for _, n in ipairs(names) do
         local certs = n:match("%-cert%.pem$") and pki.load_certs(clients .. "/" .. n)
         if certs then list[#list + 1] = certs[1] end
      end
      certificate_findings(ctx, out, "client-expiry", "client certificate", list,
         { runbook = "rotate-certs", step = "client-certs" })
   end
end

--- Inspects a target. Returns the report:
-- `{ schema, generated, target, server, summary = { ok, info, warn, fail }, status, findings }`.
-- @param opts `{ target = (myseal.engine.target), set = { "s.k=v", ... } }`
function M.run(opts)
   local engine = require "myseal.engine"
   local ctx, close = engine.context{ target = opts.target, runbook = M.runbook(), set = opts.set }
   local findings = {}
   finding(findings, { area = "server", id = "server", severity = "info", title = ctx.dialect:describe() })
   local ok, err = pcall(function()
      at_rest(ctx, findings)
      in_transit(ctx, findings)
   end)
   close()
   if not ok then error(err, 0) end
   local summary = { ok = 0, info = 0, warn = 0, fail = 0 }
   local worst = "ok"
   for _, f in ipairs(findings) do
      summary[f.severity] = summary[f.severity] + 1
      if RANK[f.severity] > RANK[worst] then worst = f.severity end
   end
   return { schema = M.SCHEMA, generated = os.date("!%Y-%m-%dT%H:%M:%SZ"), target = opts.target.label,
            server = ctx.dialect:describe(), summary = summary, status = worst == "info" and "ok" or worst,
            findings = findings }
end

--- Exit status for a report: 1 when a finding is at least `fail_on` ("warn" or "fail").
function M.exit_status(report, fail_on)
   return RANK[report.status] >= RANK[fail_on or "fail"] and 1 or 0
end

-- ------------------------------------------------------------------------------------------
-- Renderers

local MARK = { ok = "ok  ", info = "info", warn = "WARN", fail = "FAIL" }

local function fix_text(f)
   if not f.fix then return nil end
   local t = ("myseal run %s"):format(f.fix.runbook)
   if f.fix.set then t = t .. " --set " .. f.fix.set end
   return t .. (" (step %s)"):format(f.fix.step)
end

--- The report as text for a terminal.
function M.text(report)
   local out = { ("myseal check: %s (%s), %s"):format(report.target, report.server, report.generated) }
   local area
   for _, f in ipairs(report.findings) do
      if f.area ~= area then
         area = f.area
         out[#out + 1] = ""
         out[#out + 1] = area .. ":"
      end
      out[#out + 1] = ("  [%s] %s"):format(MARK[f.severity], f.title)
      if f.detail and f.severity ~= "ok" then out[#out + 1] = "         " .. f.detail end
      if f.fix then out[#out + 1] = "         fix: " .. fix_text(f) end
   end
   local s = report.summary
   out[#out + 1] = ""
   out[#out + 1] = ("%d ok, %d info, %d warnings, %d failures"):format(s.ok, s.info, s.warn, s.fail)
   return table.concat(out, "\n") .. "\n"
end

--- The report as JSON (docs/check.md).
function M.json(report)
   local json = require "myseal.json"
   local findings = setmetatable({}, json.array)
   for i, f in ipairs(report.findings) do
      local copy = {}
      for k, v in pairs(f) do
         if type(v) == "table" and #v == 0 and next(v) == nil then v = setmetatable({}, json.array) end
         copy[k] = v
      end
      findings[i] = copy
   end
   local r = {}
   for k, v in pairs(report) do r[k] = v end
   r.findings = findings
   return json.encode(r) .. "\n"
end

local function esc(s)
   return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

--- The report as one self-contained HTML page (no external assets) that prints well.
function M.html(report)
   local s = report.summary
   local rows, areas = {}, {}
   for _, f in ipairs(report.findings) do
      local a = areas[f.area]
      if not a then
         a = { ok = 0, info = 0, warn = 0, fail = 0 }
         areas[f.area] = a
         areas[#areas + 1] = f.area
      end
      a[f.severity] = a[f.severity] + 1
      rows[#rows + 1] = ("<tr class=\"%s\"><td class=\"sev\">%s</td><td>%s</td><td>%s%s</td><td>%s</td></tr>")
         :format(f.severity, f.severity:upper(), esc(f.area), esc(f.title),
            f.detail and ("<div class=\"detail\">" .. esc(f.detail) .. "</div>") or "",
            f.fix and ("<code>" .. esc(fix_text(f)) .. "</code>") or "")
   end
   local summary = {}
   for _, name in ipairs(areas) do
      local a = areas[name]
      summary[#summary + 1] = ("<tr><th>%s</th><td class=\"ok\">%d</td><td class=\"info\">%d</td>"
         .. "<td class=\"warn\">%d</td><td class=\"fail\">%d</td></tr>"):format(esc(name), a.ok, a.info, a.warn, a.fail)
   end
   summary[#summary + 1] = ("<tr class=\"total\"><th>total</th><td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr>")
      :format(s.ok, s.info, s.warn, s.fail)
   return ([[<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>myseal check: %s</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.meta { color: #555; margin-bottom: 1.5em; }
.status { display: inline-block; padding: 0.2em 0.8em; border-radius: 4px; font-weight: bold; }
.status.ok, .status.info { background: #d8f0d8; } .status.warn { background: #fbeec0; } .status.fail { background: #f6cccc; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
table.summary td { text-align: right; min-width: 3em; }
tr.total { font-weight: bold; }
td.sev { font-weight: bold; white-space: nowrap; }
tr.fail td.sev, td.fail { color: #a00; } tr.warn td.sev, td.warn { color: #8a6000; }
tr.ok td.sev, td.ok { color: #176c17; } tr.info td.sev, td.info { color: #555; }
.detail { color: #555; font-size: 0.9em; word-break: break-all; }
code { font-size: 0.9em; }
@media print { body { margin: 0; font-size: 11px; } tr { break-inside: avoid; } .status { border: 1px solid #000; } }
</style></head>
<body>
<h1>Encryption posture: %s</h1>
<div class="meta">%s &middot; checked %s &middot; <span class="status %s">%s</span></div>
<h2>Summary</h2>
<table class="summary" id="summary"><tr><th>area</th><th>ok</th><th>info</th><th>warnings</th><th>failures</th></tr>
%s
</table>
<h2>Findings</h2>
<table class="findings"><tr><th>severity</th><th>area</th><th>finding</th><th>fix</th></tr>
%s
</table>
<p class="meta">myseal check, report schema %s</p>
</body></html>
]]):format(esc(report.target), esc(report.target), esc(report.server), esc(report.generated), report.status,
      report.status:upper(), table.concat(summary, "\n"), table.concat(rows, "\n"), esc(report.schema))
end

return M
