--- Evidence for auditors: the controls they ask about, each answered by the findings of
-- `myseal check` (what the server says), by what the disk scan and the restore rehearsal found,
-- and by the journal (what was done, when, by whom: check/history.lua).
--
-- The mapping is the one table CONTROLS below: a control names the groups of findings that
-- answer it, a group lists finding ids (a name ending in ":" is a prefix: `tables:` is every
-- schema) and the runbooks whose runs are its record. docs/check.md says the same for people.
-- @module myseal.check.evidence
local json = require "myseal.json"
local text = require "myseal.text"

local M = {}

--- The ids of the findings the disk scan and the restore rehearsal add (docs/check.md): the
-- scan's summary, one finding per file holding plaintext (`plaintext:PATH`), the rehearsal.
M.DISK_SCAN, M.PLAINTEXT, M.REHEARSAL = "disk-scan", "plaintext:", "restore-rehearsal"

local RANK = { ok = 0, info = 0, warn = 1, fail = 2 }

--- What the at-rest verification's disk scan found, as it journals it (myseal.atrest.proof's
-- summary: `{ files = list of { path, kind, what, hits, sources = { name = count }, reason, remedy,
-- can_encrypt, step }, scanned, bytes, errors = count, note }`), as findings: `disk-scan`, then
-- `plaintext:PATH` for each file holding values of the application's rows, failing where the file
-- should be encrypted and warning where nothing can encrypt it (the general log, the Aria log),
-- with the remedy and the step that addresses it. No value is in a summary, so none can reach a
-- finding.
-- @param scan the summary
-- @return list of findings, the summary's first
function M.disk_findings(scan)
   local worst, list = (scan.note or (scan.errors or 0) > 0) and "warn" or "ok", {}
   for _, f in ipairs(scan.files) do
      local sources = {}
      for name, n in pairs(f.sources or {}) do sources[#sources + 1] = ("%s %d"):format(name, n) end
      table.sort(sources)
      local sev = f.can_encrypt and "fail" or "warn"
      if RANK[sev] > RANK[worst] then worst = sev end
      list[#list + 1] = { area = "at rest", id = M.PLAINTEXT .. f.path, severity = sev,
         title = ("%s (%s): %s readable: %s"):format(f.path, f.what, text.count(f.hits, "application value"),
            f.reason),
         detail = ("remedy: %s%s"):format(f.remedy, #sources > 0 and ("; values from " .. table.concat(sources, ", "))
            or ""),
         path = f.path, file_kind = f.kind, hits = f.hits, should_be_encrypted = f.can_encrypt == true,
         fix = { runbook = "at-rest", step = f.step or require("myseal.atrest.proof").step_for(f) } }
   end
   local summary = { area = "at rest", id = M.DISK_SCAN, severity = worst, scanned = scan.scanned,
      title = #scan.files > 0 and ("application values readable in %s of the %s (%s) the server writes")
            :format(text.count(#scan.files, "file"), text.count(scan.scanned, "file"), text.bytes(scan.bytes or 0))
         or scan.note or ("no application value readable in the %s (%s) the server writes")
            :format(text.count(scan.scanned, "file"), text.bytes(scan.bytes or 0)) }
   table.insert(list, 1, summary)
   return list
end

local AT_REST = {
   findings = { "at-rest:", "rotate-master-key:", "tables:", "replica-keyring", "replica:" },
   disk = { M.DISK_SCAN, M.PLAINTEXT, M.REHEARSAL },
   runbooks = { "at-rest", "rotate-master-key", "encrypt" },
}

local IN_TRANSIT = {
   findings = { "in-transit:", "tls-enforce:", "app-tomcat:", "replica-tls:", "server-chain", "server-san",
                "server-expiry:", "ca-expiry:", "client-expiry:", "truststore-expiry:", "tls-versions", "accounts",
                "plain-accounts", "plain-sessions" },
   disk = {},
   runbooks = { "in-transit", "tls-enforce", "rotate-certs", "app-tomcat", "replica-tls", "encrypt" },
}

--- The controls, in the order reports show them. `asks`: what the control asks, in short;
-- `limits`: what this report cannot show for it; `answers`: the groups above.
M.CONTROLS = {
   { id = "hipaa-164.312-a-2-iv", framework = "HIPAA", ref = "45 CFR 164.312(a)(2)(iv)",
     title = "Encryption and decryption",
     asks = "a mechanism that encrypts electronic protected health information where it is kept and "
        .. "decrypts it for those allowed to read it (addressable: do it, or document an equivalent)",
     limits = "encryption at rest protects files, disks and copies of them; an account the server lets in "
        .. "still reads the rows",
     answers = { AT_REST } },
   { id = "hipaa-164.312-e-2-ii", framework = "HIPAA", ref = "45 CFR 164.312(e)(2)(ii)",
     title = "Transmission security: encryption",
     asks = "electronic protected health information encrypted whenever it crosses a network, where the "
        .. "risk analysis finds it appropriate (addressable)",
     limits = "only the connections to this server and from the Tomcat tier the profile names are examined",
     answers = { IN_TRANSIT } },
   { id = "gdpr-32-1-a", framework = "GDPR", ref = "Art. 32(1)(a)",
     title = "Pseudonymisation and encryption of personal data",
     asks = "technical measures appropriate to the risk, encryption of personal data named first among them",
     limits = "the report shows which measures are in place, not whether they suit the risk: that weighing "
        .. "is the controller's",
     answers = { AT_REST, IN_TRANSIT } },
   { id = "pci-dss-4.0-3.5.1", framework = "PCI DSS v4.0", ref = "3.5.1",
     title = "Stored account data unreadable",
     asks = "the primary account number unreadable wherever it is stored, logs and backups included, "
        .. "for example by strong cryptography with managed keys",
     limits = "this is file-level encryption by the database (not the disk-level kind 3.5.1.2 restricts); "
        .. "the key-management procedures of 3.6 and 3.7 are the site's",
     answers = { AT_REST } },
   { id = "pci-dss-4.0-4.2.1", framework = "PCI DSS v4.0", ref = "4.2.1",
     title = "Strong cryptography in transmission",
     asks = "strong cryptography for the primary account number in transit: only trusted keys and "
        .. "certificates accepted, certificates valid and not expired, secure protocol versions only",
     limits = "the requirement is about open, public networks: whether a database connection is in its "
        .. "scope is the assessor's call; revocation is not checked",
     answers = { IN_TRANSIT } },
}

local WORST = { [0] = "ok", "warn", "fail" }

local function matches(list, id)
   for _, p in ipairs(list) do
      if id == p or (p:sub(-1) == ":" and id:sub(1, #p) == p) then return true end
   end
   return false
end

local function any(groups, field, id)
   for _, g in ipairs(groups) do
      if matches(g[field], id) then return true end
   end
   return false
end

--- Each control with its evidence.
-- @param findings the report's findings
-- @param runs the target's runs (check/history.lua), newest first
-- @return list of `{ id, framework, ref, title, asks, limits, status = "ok" | "warn" | "fail" |
--   "unknown" (no finding answers it), findings = ids, disk = ids, disk_scan = "ran" | "not run" (nil
--   where no disk scan applies), runbooks = names, runs = ids }`
function M.controls(findings, runs)
   local out = setmetatable({}, json.array)
   for _, c in ipairs(M.CONTROLS) do
      local e = { id = c.id, framework = c.framework, ref = c.ref, title = c.title, asks = c.asks,
                  limits = c.limits, findings = setmetatable({}, json.array),
                  disk = setmetatable({}, json.array), runbooks = setmetatable({}, json.array),
                  runs = setmetatable({}, json.array) }
      for _, g in ipairs(c.answers) do
         for _, name in ipairs(g.runbooks) do
            if not matches(e.runbooks, name) then e.runbooks[#e.runbooks + 1] = name end
         end
      end
      local worst
      for _, f in ipairs(findings) do
         local list = any(c.answers, "findings", f.id) and e.findings or any(c.answers, "disk", f.id) and e.disk
         if list then
            list[#list + 1] = f.id
            worst = math.max(worst or 0, RANK[f.severity])
         end
      end
      e.status = worst and WORST[worst] or "unknown"
      if any(c.answers, "disk", M.DISK_SCAN) then
         e.disk_scan = "not run"
         for _, id in ipairs(e.disk) do
            if id == M.DISK_SCAN or id:sub(1, #M.PLAINTEXT) == M.PLAINTEXT then e.disk_scan = "ran" end
         end
      end
      for _, r in ipairs(runs) do
         if matches(e.runbooks, r.runbook) then e.runs[#e.runs + 1] = r.id end
      end
      out[#out + 1] = e
   end
   return out
end

return M
