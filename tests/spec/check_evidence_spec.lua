-- myseal check's metrics and evidence on a real sandbox, before and after the runbooks: the
-- Prometheus output through promtool, the documented cron line and node_exporter; the controls in
-- JSON (against the schema) and in HTML (in headless Chromium, with no console message; a broken
-- page proves the console is watched), the journal's runs with their user, and the disk scan's
-- findings by hand until the scan is wired into check.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local host = require "myseal.host"
local E = require "support.engine"
local jsonschema = require "support.jsonschema"
local browser = require "support.browser"
local textfile = require "support.textfile"
local evidence = require "myseal.check.evidence"
local html = require "myseal.check.html"
local metrics = require "myseal.check.metrics"

local SCHEMA = assert(json.decode(assert(sys.read_file(host.home .. "/docs/check.schema.json"))))
local DOC = assert(sys.read_file(host.home .. "/docs/check.md"))
local CONTROLS = { "hipaa-164.312-a-2-iv", "hipaa-164.312-e-2-ii", "gdpr-32-1-a", "pci-dss-4.0-3.5.1",
                   "pci-dss-4.0-4.2.1" }

local function by_id(list)
   local out = {}
   for _, x in ipairs(list) do out[x.id] = x end
   return out
end

local function lint(text)
   local r = assert(sys.run{ "promtool", "check", "metrics", stdin = text, timeout = 60 })
   return r.status, r.stdout .. r.stderr
end

-- The HTML's control rows: { id, status } in order.
local function control_rows(dom)
   local out = {}
   local tbl = assert(dom:match('<table class="controls" id="controls">(.-)</table>'), "no control table")
   for id, status in tbl:gmatch('<tr class="[a-z]+" id="control%-([^"]+)">.-<td class="sev">(%u+)</td>') do
      out[#out + 1] = { id, status }
   end
   return out
end

local function statuses(report)
   local out = {}
   for _, c in ipairs(report.controls) do out[c.id] = c.status end
   return out
end

describe("myseal check: metrics and evidence", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("evidence-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   it("tells monitors and auditors the same, before and after the runbooks", function()
      local s <close> = assert(sandbox.start{ name = "spec-evidence" })
      do
         local c <close> = assert(s:connect{ database = "mysql" })
         assert(c:exec("CREATE DATABASE clinic"))
         assert(c:exec("CREATE TABLE clinic.visits (id INT PRIMARY KEY) ENGINE=InnoDB"))
         assert(c:exec("CREATE TABLE clinic.notes (id INT PRIMARY KEY) ENGINE=InnoDB"))
      end
      local backup = "keyring.backup_dir=" .. dir .. "/kb"
      local T = 'target="sandbox spec-evidence"'
      local function check(format)
         local r = E.myseal({ "check", "--sandbox", s.name, "--format", format, "--set", backup }, {})
         assert.is_true(r.status == 0 or r.status == 1, r.stderr)
         return r.stdout, r.status
      end

      -- before: the metrics say what fails
      local text, status = check("prometheus")
      assert.equal(1, status)
      assert.same({ 0, "" }, { lint(text) })
      assert.matches("\nmyseal_tables{" .. T .. ',schema="clinic",state="unencrypted"} 2\n', text, 1, true)
      assert.matches("\nmyseal_tables{" .. T .. ',schema="clinic",state="encrypted"} 0\n', text, 1, true)
      assert.matches("\nmyseal_tls_enforced{" .. T .. "} 0\n", text, 1, true)
      assert.matches("\nmyseal_finding_state{" .. T .. ',id="at-rest:restart",runbook="at-rest",step="restart",'
         .. 'severity="fail"} 1\n', text, 1, true)
      assert.is_nil(text:find("myseal_certificate_expiry_timestamp_seconds", 1, true))   -- no certificate yet
      -- and the controls fail, with no run on record
      local before = assert(json.decode((check("json"))))
      assert.is_true(jsonschema.validate(SCHEMA, before))
      assert.same({ ["hipaa-164.312-a-2-iv"] = "fail", ["hipaa-164.312-e-2-ii"] = "fail", ["gdpr-32-1-a"] = "fail",
                    ["pci-dss-4.0-3.5.1"] = "fail", ["pci-dss-4.0-4.2.1"] = "fail" }, statuses(before))
      assert.same({}, before.runs)
      local c = by_id(before.controls)
      assert.same({}, c["gdpr-32-1-a"].runs)
      assert.equal("not run", c["pci-dss-4.0-3.5.1"].disk_scan)
      assert.is_nil(c["pci-dss-4.0-4.2.1"].disk_scan)
      assert.is_truthy(#c["hipaa-164.312-a-2-iv"].findings >= 8)
      for _, id in ipairs(c["hipaa-164.312-a-2-iv"].findings) do
         assert.is_truthy(id:match("^at%-rest:") or id:match("^tables:"), id)
      end

      for _, rb in ipairs{ { "at-rest", "--set", backup }, { "in-transit" },
                           { "tls-enforce", "--set", "tls.watch_seconds=1" } } do
         local argv = { "run", rb[1], "--sandbox", s.name, "--yes" }
         for i = 2, #rb do argv[#argv + 1] = rb[i] end
         local r = E.myseal(argv, {})
         assert.equal(0, r.status, r.stdout .. r.stderr)
      end

      -- after: the documented cron line, run against the sandbox, writes the textfile whole
      local line = assert(DOC:match("\n%*/15 %* %* %* %* root (myseal check [^\n]+)\n"), "no cron line in docs")
      local textdir = dir .. "/node-exporter"
      assert(sys.mkdir(textdir, tonumber("755", 8)))
      local cmd = line:gsub("^myseal", E.MYSEAL):gsub("%-%-site /etc/myseal/site%.ini", "--sandbox " .. s.name
         .. " --set " .. backup):gsub("/var/lib/prometheus/node%-exporter", textdir)
      assert.is_truthy(cmd:find(textdir .. "/myseal.prom 2>/dev/null", 1, true))
      local r = assert(sys.run{ "sh", "-c", cmd, timeout = 120 })
      assert.same({ 0, "", "" }, { r.status, r.stdout, r.stderr })
      assert.same({ "myseal.prom" }, sys.dir(textdir))
      assert.equal(tonumber("644", 8), sys.stat(textdir .. "/myseal.prom").mode & tonumber("777", 8))
      text = assert(sys.read_file(textdir .. "/myseal.prom"))
      assert.same({ 0, "" }, { lint(text) })
      assert.matches("\nmyseal_tables{" .. T .. ',schema="clinic",state="encrypted"} 2\n', text, 1, true)
      assert.matches("\nmyseal_tables{" .. T .. ',schema="clinic",state="unencrypted"} 0\n', text, 1, true)
      assert.matches("\nmyseal_tls_enforced{" .. T .. "} 1\n", text, 1, true)
      assert.matches("\nmyseal_check_findings{" .. T .. ',severity="fail"} 0\n', text, 1, true)
      -- node_exporter (as its service runs, user prometheus) serves every series of it, beside the
      -- file of another target in the same directory
      local other = assert(json.decode((check("json"))))
      other.target = "site other"
      assert(sys.write_file(textdir .. "/other.prom", metrics.prometheus(other), { mode = tonumber("644", 8) }))
      assert(sys.chmod(dir, tonumber("755", 8)))
      local served, log = textfile.scrape(textdir, dir .. "/node-exporter.log")
      assert.same({}, { log:match("level=error[^\n]*") })
      served = textfile.samples(served)
      assert.equal(0, served["node_textfile_scrape_error{}"])
      for _, name in ipairs{ "myseal.prom", "other.prom" } do
         local mine = textfile.samples(assert(sys.read_file(textdir .. "/" .. name)))
         assert.is_true(next(mine) ~= nil)
         for key, value in pairs(mine) do assert.equal(value, served[key], key) end
      end

      -- the certificates' expiry is what openssl reads in the files the server uses
      local after = assert(json.decode((check("json"))))
      assert.is_true(jsonschema.validate(SCHEMA, after))
      local f = by_id(after.findings)
      local server_cert = f["server-chain"].detail
      local function openssl(path, ...)
         local r = assert(sys.run{ "openssl", "x509", "-noout", "-in", path, ... })
         return r.stdout:match("=(.-)\n")
      end
      for _, cert in ipairs{ { "server", "server-expiry:1", server_cert },
                             { "ca", "ca-expiry:1", (server_cert:gsub("server%-cert%.pem$", "ca.pem")) } } do
         local end_date = openssl(cert[3], "-enddate", "-dateopt", "iso_8601")
         local epoch = tonumber(assert(sys.run{ "date", "-u", "-d", end_date, "+%s" }).stdout)
         local subject = openssl(cert[3], "-subject", "-nameopt", "compat")
         assert.matches(('\nmyseal_certificate_expiry_timestamp_seconds{%s,role="%s",id="%s",subject="%s"} %d\n')
            :format(T, cert[1], cert[2], subject, epoch), text, 1, true)
      end

      -- the controls pass, each with the runs of its runbooks, by this user on this host
      assert.same({ ["hipaa-164.312-a-2-iv"] = "ok", ["hipaa-164.312-e-2-ii"] = "ok", ["gdpr-32-1-a"] = "ok",
                    ["pci-dss-4.0-3.5.1"] = "ok", ["pci-dss-4.0-4.2.1"] = "ok" }, statuses(after))
      assert.equal(3, #after.runs)
      local runs = by_id(after.runs)
      c = by_id(after.controls)
      local at_rest = c["pci-dss-4.0-3.5.1"].runs[1]
      local enforce, in_transit = c["pci-dss-4.0-4.2.1"].runs[1], c["pci-dss-4.0-4.2.1"].runs[2]
      assert.matches("^at%-rest/%d+%-%d+%-%d+%-%d+$", at_rest)
      assert.matches("^in%-transit/%d+%-%d+%-%d+%-%d+$", in_transit)
      assert.matches("^tls%-enforce/%d+%-%d+%-%d+%-%d+$", enforce)
      assert.same({ at_rest }, c["hipaa-164.312-a-2-iv"].runs)
      assert.same({ enforce, in_transit }, c["hipaa-164.312-e-2-ii"].runs)
      assert.same({ enforce, in_transit, at_rest }, c["gdpr-32-1-a"].runs)   -- newest first
      -- a runbook that answers both of a control's groups is named once
      assert.same({ "at-rest", "rotate-master-key", "encrypt", "in-transit", "tls-enforce", "rotate-certs",
                    "app-tomcat", "replica-tls" }, c["gdpr-32-1-a"].runbooks)
      local me, here = sys.user().name, sys.hostname()
      for _, id in ipairs{ at_rest, in_transit, enforce } do
         local run = runs[id]
         assert.same({ "ok", me, here, 1, "run", me, "ok" }, { run.status, run.user, run.host, #run.sessions,
            run.sessions[1].kind, run.sessions[1].user, run.sessions[1].status })
         assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", run.started)
         assert.equal(E.journals(os.getenv("MYSEAL_STATE_DIR"), "sandbox-spec-evidence", run.runbook)[1], run.journal)
      end
      local steps = {}
      for _, st in ipairs(runs[at_rest].sessions[1].steps) do steps[st.step] = st.state end
      -- MariaDB's encryption threads encrypt the tables and the system tablespace from the restart on
      assert.same({ preflight = "ok", ["key-material"] = "changed", ["option-file"] = "changed", restart = "changed",
                    ["master-key"] = "skipped", ["key-backup"] = "changed", ["encrypt-tables"] = "done",
                    ["system-tablespace"] = "done", ["schema-defaults"] = "skipped", ["aria-tables"] = "changed",
                    ["freed-pages"] = "done", ["binary-logs"] = "done", ["query-logs"] = "done", verify = "ok",
                    rehearsal = "unchanged" }, steps)

      -- the terminal says it in a line per control
      local shown = check("text")
      assert.matches("\ncontrols:\n  %[ok  %] HIPAA 45 CFR 164%.312%(a%)%(2%)%(iv%), Encryption and decryption\n"
         .. "         findings: %d+ ok; disk: 1 ok; the disk scan has not run; last run: [%dTZ:%-]+ at%-rest ok, by " .. me
         .. " on " .. here .. "\n", shown)

      -- the HTML renders with nothing on the console, the control table has the five rows
      local page = dir .. "/report.html"
      r = E.myseal({ "check", "--sandbox", s.name, "--format", "html", "--output", page, "--set", backup }, {})
      assert.equal(0, r.status, r.stderr)
      local seen = browser.open(page, dir)
      assert.same({}, seen.messages)
      assert.same({ { CONTROLS[1], "OK" }, { CONTROLS[2], "OK" }, { CONTROLS[3], "OK" }, { CONTROLS[4], "OK" },
                    { CONTROLS[5], "OK" } }, control_rows(seen.dom))
      assert.matches('<tr class="ok" id="control%-pci%-dss%-4%.0%-3%.5%.1"><td><b>PCI DSS v4%.0 3%.5%.1</b>', seen.dom)
      local journal = assert(seen.dom:match('<table class="runs" id="runs">(.-)</table>'))
      local _, rows = journal:gsub('<tr class="ok" id="r%d+">', "")
      assert.equal(3, rows)
      assert.matches("<b>run</b> [%dTZ:%-]+ by " .. me .. ": changed key%-material, key%-backup, option%-file, "
         .. "restart, aria%-tables, rehearsal; 9 steps done already, skipped or checked", journal)

      -- a rollback is in the journal too, with its user; the control then fails
      r = E.myseal({ "rollback", "in-transit", "--sandbox", s.name, "--yes" }, {})
      assert.equal(1, r.status)   -- tls-enforce needs it: that one goes first
      assert.matches("cannot roll back in%-transit yet: tls%-enforce depends on it", r.stderr)
      for _, rb in ipairs{ "tls-enforce", "in-transit" } do
         r = E.myseal({ "rollback", rb, "--sandbox", s.name, "--yes" }, {})
         assert.equal(0, r.status, r.stdout .. r.stderr)
      end
      local rolled = assert(json.decode((check("json"))))
      assert.is_true(jsonschema.validate(SCHEMA, rolled))
      local run = by_id(rolled.runs)[in_transit]
      assert.same({ "rolled back", 2, "rollback", me, "rolled back" }, { run.status, #run.sessions,
         run.sessions[2].kind, run.sessions[2].user, run.sessions[2].status })
      assert.equal("fail", statuses(rolled)["pci-dss-4.0-4.2.1"])
      assert.equal("ok", statuses(rolled)["pci-dss-4.0-3.5.1"])

      -- the disk scan's findings as check --deep makes them (at_rest_spec runs it), here for a file that
      -- holds plaintext: the at-rest controls fail with the files named, the metrics count them, and
      -- the page still renders clean
      local scan = { scanned = 58, bytes = 1024, errors = 0, files = {
         { path = s.datadir .. "/clinic/visits.ibd", kind = "innodb_table", what = "InnoDB tablespace",
           table = "`clinic`.`visits`", hits = 2, reason = "the table is not encrypted", remedy = "ALTER TABLE",
           can_encrypt = true, sources = { ["`clinic`.`visits`"] = 2 }, step = "encrypt-tables" },
      } }
      for _, x in ipairs(evidence.disk_findings(scan)) do after.findings[#after.findings + 1] = x end
      after.controls = evidence.controls(after.findings, after.runs)
      c = by_id(after.controls)
      assert.same({ "restore-rehearsal", "disk-scan", "plaintext:" .. s.datadir .. "/clinic/visits.ibd" },
                  c["pci-dss-4.0-3.5.1"].disk)
      assert.same({ "fail", "ran", "ok" }, { c["pci-dss-4.0-3.5.1"].status, c["pci-dss-4.0-3.5.1"].disk_scan,
                                             c["pci-dss-4.0-4.2.1"].status })
      assert.is_true(jsonschema.validate(SCHEMA, json.decode(require("myseal.check").json(after))))
      text = metrics.prometheus(after)
      assert.same({ 0, "" }, { lint(text) })
      assert.matches("\nmyseal_plaintext_files{" .. T .. "} 1\n", text, 1, true)
      assert.matches("\nmyseal_disk_scan_files{" .. T .. "} 58\n", text, 1, true)
      assert(sys.write_file(page, html.page(after)))
      seen = browser.open(page, dir)
      assert.same({}, seen.messages)
      assert.same({ CONTROLS[1], "FAIL" }, control_rows(seen.dom)[1])
      assert.matches("visits%.ibd %(InnoDB tablespace%): 2 application values readable: the table is not encrypted",
         seen.dom)
   end)

   it("reads every session of a journal, and says which journal it cannot read", function()
      local target = dir .. "/targets/site-db1"
      assert(sys.mkdir(target .. "/runs/at-rest", tonumber("700", 8)))
      assert(sys.mkdir(target .. "/runs/in-transit", tonumber("700", 8)))
      local history = require "myseal.check.history"
      -- the events as the engine writes them: a run interrupted in a step, resumed (a resume does not
      -- journal its user), then finished
      assert(sys.write_file(target .. "/runs/at-rest/20261201-090000-000001-10.jsonl", table.concat({
         '{"at":"2026-12-01T08:00:00Z","event":"run","runbook":"at-rest","user":"dba","host":"db1","pid":10}',
         '{"at":"2026-12-01T08:00:01Z","event":"step","step":"key-material","state":"start"}',
         '{"at":"2026-12-01T08:00:01Z","event":"step","step":"key-material","state":"changed"}',
         '{"at":"2026-12-01T08:00:02Z","event":"step","step":"encrypt-tables","state":"start"}',
         '{"at":"2026-12-01T08:00:09Z","event":"step","step":"encrypt-tables","state":"interrupted"}',
         '{"at":"2026-12-01T08:00:09Z","event":"end","status":"interrupted","error":"interrupted in step '
            .. 'encrypt-tables"}',
         '{"at":"2026-12-01T08:30:00Z","event":"resume","pid":11}',
         '{"at":"2026-12-01T08:30:00Z","event":"step","step":"key-material","state":"done"}',
         '{"at":"2026-12-01T08:30:05Z","event":"step","step":"encrypt-tables","state":"changed"}',
         '{"at":"2026-12-01T08:30:05Z","event":"end","status":"ok"}', "" }, "\n")))
      local broken = target .. "/runs/in-transit/20261201-100000-000001-12.jsonl"
      assert(sys.write_file(broken, '{"at":"2026-12-01T09:00:00Z","event":"run","user":"dba"}\n{"at":\n'
         .. '{"at":"2026-12-01T09:00:01Z","event":"end","status":"ok"}\n'))
      local runs = history.runs(target)
      assert.equal(2, #runs)
      assert.same({ id = "in-transit/20261201-100000-000001-12", runbook = "in-transit", journal = broken,
                    status = "unreadable", sessions = {},
                    error = broken .. ":2: " .. select(2, json.decode('{"at":')) }, runs[2])   -- last
      local run = runs[1]
      assert.same({ "at-rest/20261201-090000-000001-10", "ok", "2026-12-01T08:00:00Z", "dba", "db1" },
                  { run.id, run.status, run.started, run.user, run.host })
      assert.same({
         { kind = "run", at = "2026-12-01T08:00:00Z", user = "dba", host = "db1", ended = "2026-12-01T08:00:09Z",
           status = "interrupted", error = "interrupted in step encrypt-tables",
           steps = { { step = "key-material", state = "changed", at = "2026-12-01T08:00:01Z" },
                     { step = "encrypt-tables", state = "interrupted", at = "2026-12-01T08:00:09Z" } } },
         { kind = "resume", at = "2026-12-01T08:30:00Z", ended = "2026-12-01T08:30:05Z", status = "ok",
           steps = { { step = "key-material", state = "done", at = "2026-12-01T08:30:00Z" },
                     { step = "encrypt-tables", state = "changed", at = "2026-12-01T08:30:05Z" } } },
      }, run.sessions)
      assert.same({ applied = { "key-material" }, reverted = {}, failed = "encrypt-tables", others = 0 },
                  history.outcome(run.sessions[1]))
      -- on the page: the resume without a user says so, the unreadable journal says why
      local page = dir .. "/history.html"
      local findings = { { area = "at rest", id = "at-rest:key-material", runbook = "at-rest", step = "key-material",
                           severity = "ok", title = "key material" } }
      assert(sys.write_file(page, html.page{ schema = "myseal.check/2", generated = "2026-12-01T10:00:00Z",
         target = "site db1", server = "MariaDB 10.11.6", status = "ok",
         summary = { ok = 1, info = 0, warn = 0, fail = 0 }, findings = findings,
         controls = evidence.controls(findings, runs), runs = runs }))
      local seen = browser.open(page, dir)
      assert.same({}, seen.messages)
      assert.matches("<b>resume</b> 2026%-12%-01T08:30:00Z %(user not journaled%): changed encrypt%-tables; "
         .. "1 step done already, skipped or checked", seen.dom)
      assert.matches('<td class="sev">unreadable</td><td>' .. broken:gsub("%p", "%%%0") .. ":2: ", seen.dom)
   end)

   it("would see a console error: a broken page is caught", function()
      local good = dir .. "/good.html"
      assert(sys.write_file(good, html.page{ schema = "myseal.check/2", generated = "2026-12-01T10:00:00Z",
         target = "site db1", server = "MariaDB 10.11.6", status = "ok",
         summary = { ok = 0, info = 0, warn = 0, fail = 0 }, findings = {}, controls = evidence.controls({}, {}),
         runs = {} }))
      local seen = browser.open(good, dir)
      assert.same({}, seen.messages)
      assert.equal(5, #control_rows(seen.dom))
      assert.equal("UNKNOWN", control_rows(seen.dom)[1][2])
      local page = assert(sys.read_file(good))
      local broken = dir .. "/broken.html"
      assert(sys.write_file(broken, (page:gsub("</body>", '<img src="nosuch.png"></body>'))))
      assert.same({ { level = "error", source = "network", text = "Failed to load resource: net::ERR_FILE_NOT_FOUND",
                      url = "file://" .. dir .. "/nosuch.png" } }, browser.open(broken, dir).messages)
      assert(sys.write_file(broken, (page:gsub("</body>", "<script>report.render()</script></body>"))))
      local messages = browser.open(broken, dir).messages
      assert.equal(1, #messages)
      assert.same({ "error", "exception" }, { messages[1].level, messages[1].source })
      assert.matches("^ReferenceError: report is not defined", messages[1].text)
   end)
end)
