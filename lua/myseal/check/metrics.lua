--- The posture report as Prometheus metrics, in the text format node_exporter's textfile
-- collector reads (one `.prom` file, written whole: `myseal check --format prometheus --output`).
--
-- Names follow Prometheus conventions: the `myseal_` prefix, snake_case, base units in the name
-- (`_seconds`), moments as Unix timestamps (`_timestamp_seconds`, so an alert computes the time
-- left or passed with `time()`, and a file written an hour ago is still right), states as one
-- series per state with the value 1 or 0, and labels whose values are bounded by the
-- configuration (schemas, certificates, findings), never by data (no file paths, no table names).
-- Every series carries `target`, so one textfile directory can hold the files of several targets.
-- docs/check.md lists the metrics and an alert rule.
-- @module myseal.check.metrics
local evidence = require "myseal.check.evidence"

local M = {}

local SEVERITIES = { "ok", "info", "warn", "fail" }

-- Certificate findings by id prefix: the `role` label.
local CERTIFICATES = { ["server-expiry"] = "server", ["ca-expiry"] = "ca", ["client-expiry"] = "client",
                       ["truststore-expiry"] = "truststore" }

local function label_value(v)
   return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- `{ { "name", value }, ... }` as {name="value",...}; a pair without a value is left out.
local function labels(pairs_)
   local parts = {}
   for _, p in ipairs(pairs_) do
      if p[2] ~= nil then parts[#parts + 1] = ('%s="%s"'):format(p[1], label_value(p[2])) end
   end
   return "{" .. table.concat(parts, ",") .. "}"
end

--- Seconds since 1970 of a "YYYY-mm-ddTHH:MM:SSZ" time (UTC, whatever the local zone; a journal's
-- too), or nil for another text.
function M.epoch(iso)
   local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
   if not y then return nil end
   y, mo = tonumber(y), tonumber(mo)
   if mo <= 2 then y, mo = y - 1, mo + 12 end
   local days = 365 * y + y // 4 - y // 100 + y // 400 + (153 * (mo - 3) + 2) // 5 + tonumber(d) - 719469
   return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

--- The report as metrics.
-- @param report a report of check.run
-- @return text (ends with a newline)
function M.prometheus(report)
   local out = {}
   local target = report.target
   -- `samples`: list of { labels, value }, or one value without labels (nil: the family is left out)
   local function family(name, help, samples)
      if type(samples) ~= "table" then samples = { samples ~= nil and { {}, samples } or nil } end
      if #samples == 0 then return end
      out[#out + 1] = ("# HELP %s %s"):format(name, help)
      out[#out + 1] = ("# TYPE %s gauge"):format(name)
      for _, s in ipairs(samples) do
         table.insert(s[1], 1, { "target", target })
         local v = s[2]
         if v == true then v = 1 elseif v == false then v = 0 end
         v = math.type(v) == "integer" and ("%d"):format(v) or tostring(v)
         out[#out + 1] = ("%s%s %s"):format(name, labels(s[1]), v)
      end
   end

   family("myseal_check_info", "What myseal check inspected: the server and the report's schema (always 1).",
      { { { { "server", report.server }, { "schema", report.schema } }, 1 } })
   family("myseal_check_timestamp_seconds", "When myseal check ran, in seconds since 1970.", M.epoch(report.generated))
   local counts = {}
   for _, sev in ipairs(SEVERITIES) do counts[#counts + 1] = { { { "severity", sev } }, report.summary[sev] } end
   family("myseal_check_findings", "Findings of myseal check by severity.", counts)

   local states, certs, tables, accounts = {}, {}, {}, {}
   local tls, plaintext, scanned, rehearsed
   for _, f in ipairs(report.findings) do
      local prefix = f.id:match("^([^:]+):") or f.id
      if f.id:sub(1, #evidence.PLAINTEXT) == evidence.PLAINTEXT then
         plaintext = (plaintext or 0) + 1   -- one series per file would be one per table: counted instead
      else
         for _, sev in ipairs(SEVERITIES) do
            states[#states + 1] = { { { "id", f.id }, { "runbook", f.runbook }, { "step", f.step },
                                      { "severity", sev } }, f.severity == sev }
         end
      end
      if CERTIFICATES[prefix] and f.not_after then
         certs[#certs + 1] = { { { "role", CERTIFICATES[prefix] }, { "id", f.id }, { "subject", f.subject } },
                               f.not_after }
      elseif prefix == "tables" then
         for _, s in ipairs{ { "encrypted", f.encrypted }, { "unencrypted", #f.unencrypted },
                             { "not_encryptable", #f.not_encryptable } } do
            tables[#tables + 1] = { { { "schema", f.schema }, { "state", s[1] } }, s[2] }
         end
      elseif f.id == "accounts" then
         for _, level in ipairs{ "NONE", "ANY", "X509", "SPECIFIED" } do
            accounts[#accounts + 1] = { { { "require", level:lower() } }, f.levels[level] or 0 }
         end
         if f.require_secure_transport ~= nil then tls = f.require_secure_transport end
      elseif f.id == evidence.DISK_SCAN then
         scanned = f.scanned
         plaintext = plaintext or 0
      elseif f.id == evidence.REHEARSAL then
         rehearsed = f.rehearsed
      end
   end

   family("myseal_finding_state", "Each finding of myseal check: 1 for its severity, 0 for the others; "
      .. "runbook and step name the step whose own check it is.", states)
   family("myseal_certificate_expiry_timestamp_seconds", "When a certificate expires (its notAfter), in seconds "
      .. "since 1970: the server's, its CA's, the client certificates', the truststore's entries.", certs)
   family("myseal_tables", "Tables per schema: encrypted, unencrypted (and encryptable), in engines that "
      .. "cannot be encrypted.", tables)
   family("myseal_accounts", "Accounts by their REQUIRE level (none, any = SSL, x509, specified).", accounts)
   family("myseal_tls_enforced", "1 when the server refuses TCP connections without TLS "
      .. "(require_secure_transport=ON), else 0.", tls)
   family("myseal_disk_scan_files", "Files the disk scan read (every file the server writes).", scanned)
   family("myseal_plaintext_files", "Files the disk scan found holding rows of the application in plaintext.",
      plaintext)
   family("myseal_restore_rehearsal_last_success_timestamp_seconds", "When a restore rehearsal (a copy of the "
      .. "data started with nothing but the backed-up keys) last passed, in seconds since 1970.", rehearsed)
   return table.concat(out, "\n") .. "\n"
end

return M
