-- myseal check --format prometheus without a server: a report made by hand (every kind of finding,
-- the disk scan's and the rehearsal's included) as metrics that promtool accepts, and the alert
-- rules of docs/check.md checked and unit-tested with promtool. The same on real sandboxes, before
-- and after the runbooks, is in check_evidence_spec.lua.
local sys = require "sys"
local host = require "myseal.host"
local metrics = require "myseal.check.metrics"
local evidence = require "myseal.check.evidence"

local DOC = assert(sys.read_file(host.home .. "/docs/check.md"))

local function promtool(args, stdin)
   local argv = { "promtool", stdin = stdin, timeout = 60 }
   for _, a in ipairs(args) do argv[#argv + 1] = a end
   return assert(sys.run(argv))
end

-- name{labels} -> value, and the series seen twice.
local function series(text)
   local out, twice = {}, {}
   for line in text:gmatch("[^\n]+") do
      if not line:match("^#") then
         local key, value = line:match("^(.+) (%S+)$")
         assert(key, "not a sample line: " .. line)
         if out[key] then twice[#twice + 1] = key end
         out[key] = value
      end
   end
   return out, twice
end

-- A report as check.run makes one, by hand: what a failing server with certificates, a truststore,
-- a disk scan that found plaintext and a restore rehearsal looks like.
local function report()
   local findings = {
      { area = "server", id = "server", severity = "info", title = "MariaDB 10.11.6" },
      { area = "at rest", id = "at-rest:restart", runbook = "at-rest", step = "restart", severity = "fail",
        title = "the keyring is not active in the server", fix = { runbook = "at-rest", step = "restart" } },
      { area = "at rest", id = "tables:clinic", schema = "clinic", severity = "fail", encrypted = 1,
        unencrypted = { "visits", "notes" }, not_encryptable = { "log (CSV)" }, title = "clinic: 2 of 4 tables" },
      { area = "in transit", id = "server-expiry:1", severity = "ok", not_after = 1867399845,
        subject = "/O=myseal/CN=db1", title = "server certificate" },
      { area = "in transit", id = "ca-expiry:1", severity = "ok", not_after = 2111479845,
        subject = '/O=say "hi" \\ there/CN=CA', title = "CA" },
      { area = "in transit", id = "client-expiry:1", severity = "warn", not_after = 1796000000,
        subject = "/CN=app", title = "client certificate" },
      { area = "in transit", id = "truststore-expiry:2", severity = "ok", not_after = 2000000000,
        subject = "/CN=old CA", title = "trusted" },
      { area = "in transit", id = "accounts", severity = "info", levels = { NONE = 3, X509 = 1 },
        require_secure_transport = false, title = "accounts by REQUIRE: NONE 3, X509 1" },
      { area = "at rest", id = "restore-rehearsal", severity = "ok", rehearsed = 1796100000,
        title = "a restored copy opened every sampled table" },
   }
   -- the disk scan as the at-rest verification journals it (myseal.atrest.proof's summary)
   local scan = { scanned = 61, bytes = 123456789, errors = 0, files = {
      { path = "/var/lib/mysql/clinic/visits.ibd", kind = "innodb_table", what = "InnoDB tablespace",
        table = "`clinic`.`visits`", hits = 12, reason = "the table is not encrypted", can_encrypt = true,
        sources = { ["`clinic`.`visits`"] = 12 }, step = "encrypt-tables",
        remedy = "ALTER TABLE `clinic`.`visits` ENCRYPTED=YES" },
      { path = "/var/lib/mysql/mysql-bin.000001", kind = "binlog", what = "binary log", hits = 3, can_encrypt = true,
        sources = { ["`clinic`.`visits`"] = 3 }, step = "binary-logs",
        reason = "written before encrypt_binlog", remedy = "purge it once a newer log is backed up" },
   } }
   for _, f in ipairs(evidence.disk_findings(scan)) do findings[#findings + 1] = f end
   return { schema = "myseal.check/2", generated = "2026-12-01T10:00:00Z", target = "site db1",
            server = "MariaDB 10.11.6", status = "fail", summary = { ok = 5, info = 2, warn = 1, fail = 5 },
            findings = findings }
end

describe("myseal check --format prometheus", function()
   it("gives every kind of finding its metric, with Prometheus names and bounded labels", function()
      local text = metrics.prometheus(report())
      local s, twice = series(text)
      assert.same({}, twice)
      local T = 'target="site db1"'
      assert.equal("1", s['myseal_check_info{' .. T .. ',server="MariaDB 10.11.6",schema="myseal.check/2"}'])
      assert.equal("1796119200", s["myseal_check_timestamp_seconds{" .. T .. "}"])
      assert.equal("5", s['myseal_check_findings{' .. T .. ',severity="fail"}'])
      -- each finding's state: 1 for its severity, 0 for the others; runbook and step where it has them
      local R = 'myseal_finding_state{' .. T .. ',id="at-rest:restart",runbook="at-rest",step="restart",severity='
      assert.same({ "0", "0", "0", "1" }, { s[R .. '"ok"}'], s[R .. '"info"}'], s[R .. '"warn"}'], s[R .. '"fail"}'] })
      assert.equal("1", s['myseal_finding_state{' .. T .. ',id="tables:clinic",severity="fail"}'])
      assert.equal("1", s['myseal_finding_state{' .. T .. ',id="disk-scan",severity="fail"}'])
      -- certificates: their notAfter, by role; a subject's quotes and backslashes escaped
      assert.equal("1867399845", s['myseal_certificate_expiry_timestamp_seconds{' .. T
         .. ',role="server",id="server-expiry:1",subject="/O=myseal/CN=db1"}'])
      assert.equal("2111479845", s['myseal_certificate_expiry_timestamp_seconds{' .. T
         .. ',role="ca",id="ca-expiry:1",subject="/O=say \\"hi\\" \\\\ there/CN=CA"}'])
      assert.equal("1796000000", s['myseal_certificate_expiry_timestamp_seconds{' .. T
         .. ',role="client",id="client-expiry:1",subject="/CN=app"}'])
      assert.equal("2000000000", s['myseal_certificate_expiry_timestamp_seconds{' .. T
         .. ',role="truststore",id="truststore-expiry:2",subject="/CN=old CA"}'])
      assert.equal("1", s['myseal_tables{' .. T .. ',schema="clinic",state="encrypted"}'])
      assert.equal("2", s['myseal_tables{' .. T .. ',schema="clinic",state="unencrypted"}'])
      assert.equal("1", s['myseal_tables{' .. T .. ',schema="clinic",state="not_encryptable"}'])
      assert.equal("3", s['myseal_accounts{' .. T .. ',require="none"}'])
      assert.equal("1", s['myseal_accounts{' .. T .. ',require="x509"}'])
      assert.equal("0", s["myseal_tls_enforced{" .. T .. "}"])
      -- the disk scan's files are counted, never labelled: a series per file would be one per table
      assert.equal("61", s["myseal_disk_scan_files{" .. T .. "}"])
      assert.equal("2", s["myseal_plaintext_files{" .. T .. "}"])
      assert.is_nil(text:find("visits.ibd", 1, true))
      assert.equal("1796100000", s["myseal_restore_rehearsal_last_success_timestamp_seconds{" .. T .. "}"])
      assert.matches("\n# HELP myseal_tables Tables per schema[^\n]+\n# TYPE myseal_tables gauge\n", text)
      local lint = promtool({ "check", "metrics" }, text)
      assert.same({ 0, "", "" }, { lint.status, lint.stdout, lint.stderr })
   end)

   it("says 0 files in plaintext after a clean scan, and nothing about a scan that did not run", function()
      local r = report()
      local clean = { r.findings[1] }
      for _, f in ipairs(evidence.disk_findings{ scanned = 40, bytes = 2 * 1024 * 1024, errors = 0, files = {} }) do
         clean[#clean + 1] = f
      end
      r.findings = clean
      assert.same({ area = "at rest", id = "disk-scan", severity = "ok", scanned = 40,
                    title = "no application value readable in the 40 files (2.0 MiB) the server writes" }, clean[2])
      local s = series(metrics.prometheus(r))
      assert.equal("0", s['myseal_plaintext_files{target="site db1"}'])
      r.findings = { clean[1] }
      local text = metrics.prometheus(r)
      assert.is_nil(text:find("myseal_plaintext_files", 1, true))
      assert.is_nil(text:find("myseal_disk_scan_files", 1, true))
      assert.is_nil(text:find("myseal_restore_rehearsal", 1, true))
   end)

   it("turns the disk scan's summary into findings: fail where a file should be encrypted, else warn", function()
      local list = evidence.disk_findings{ scanned = 61, bytes = 3 * 1024 * 1024, errors = 1, files = {
         { path = "/var/lib/mysql/ibdata1", kind = "system", what = "InnoDB system tablespace", hits = 4,
           sources = { ["`clinic`.`visits`"] = 3, ["`clinic`.`notes`"] = 1 }, can_encrypt = true,
           step = "system-tablespace", reason = "the system tablespace is not encrypted",
           remedy = "innodb_encrypt_tables=ON" },
         { path = "/var/log/mysql/general.log", kind = "general_log", what = "general query log", hits = 1,
           sources = { ["`clinic`.`visits`"] = 1 }, can_encrypt = false, step = "query-logs",
           reason = "nothing encrypts the general query log", remedy = "turn it off, or move it" } } }
      assert.same({
         { area = "at rest", id = "disk-scan", severity = "fail", scanned = 61,
           title = "application values readable in 2 files of the 61 files (3.0 MiB) the server writes" },
         { area = "at rest", id = "plaintext:/var/lib/mysql/ibdata1", severity = "fail",
           title = "/var/lib/mysql/ibdata1 (InnoDB system tablespace): 4 application values readable: the system "
              .. "tablespace is not encrypted",
           detail = "remedy: innodb_encrypt_tables=ON; values from `clinic`.`notes` 1, `clinic`.`visits` 3",
           path = "/var/lib/mysql/ibdata1", file_kind = "system", hits = 4, should_be_encrypted = true,
           fix = { runbook = "at-rest", step = "system-tablespace" } },
         { area = "at rest", id = "plaintext:/var/log/mysql/general.log", severity = "warn",
           title = "/var/log/mysql/general.log (general query log): 1 application value readable: nothing "
              .. "encrypts the general query log",
           detail = "remedy: turn it off, or move it; values from `clinic`.`visits` 1",
           path = "/var/log/mysql/general.log", file_kind = "general_log", hits = 1, should_be_encrypted = false,
           fix = { runbook = "at-rest", step = "query-logs" } },
      }, list)
      local note = "no probe could be drawn from the rows in scope: nothing was searched"
      local none = evidence.disk_findings{ scanned = 0, files = {}, errors = 0, note = note }
      assert.equal("warn", none[1].severity)
      assert.equal(note, none[1].title)
      -- files the scan could not read make the summary a warning
      assert.equal("warn", evidence.disk_findings{ scanned = 3, files = {}, errors = 2 }[1].severity)
   end)

   it("reads times as UTC whatever the local zone", function()
      for _, iso in ipairs{ "1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2026-12-01T10:00:00Z",
                            "2100-03-01T00:00:01Z" } do
         local r = assert(sys.run{ "date", "-u", "-d", iso, "+%s", env = { TZ = "Pacific/Kiritimati" } })
         assert.equal(tonumber(r.stdout), metrics.epoch(iso), iso)
      end
   end)

   it("is checked by a promtool that does find faults", function()
      -- the linter the specs rely on rejects what the conventions forbid
      local r = promtool({ "check", "metrics" }, "# HELP myseal_age_days x\n# TYPE myseal_age_days counter\n"
         .. "myseal_age_days 1\nmyseal_nohelp 1\n")
      assert.equal(3, r.status)
      assert.equal('myseal_age_days counter metrics should have "_total" suffix\n'
         .. 'myseal_age_days use base unit "seconds" instead of "days"\n'
         .. "myseal_nohelp no help text\n", r.stdout .. r.stderr)
   end)
end)

describe("the alert rules of docs/check.md", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("metrics-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   it("load in Prometheus and fire at 30 and 7 days left, and for a check that stopped", function()
      local rules = assert(DOC:match("```yaml\n(groups:.-)```"), "no rule file in docs/check.md")
      assert(sys.write_file(dir .. "/rules.yml", rules))
      local r = promtool{ "check", "rules", dir .. "/rules.yml" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("SUCCESS: 3 rules found", r.stdout)
      -- promtool's clock starts at 0: a certificate expiring at 20 days, one at 5 days, one at 90
      local cert = 'myseal_certificate_expiry_timestamp_seconds{target="site db1",role="%s",id="%s",subject="/CN=%s"}'
      local function alert(name, role, id, cn, left)
         return ([[
          - exp_labels: { severity: %s, target: site db1, role: %s, id: "%s", subject: /CN=%s }
            exp_annotations:
              summary: "%s certificate /CN=%s of site db1 expires in %s"
              description: "Renew it%s: %s; the finding is %s."
]]):format(name, role, id, cn, role, cn, left, name == "critical" and " now" or "",
           "myseal run rotate-certs (a truststore entry: myseal run app-tomcat)", id)
      end
      local test = ([[
rule_files: [ rules.yml ]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: '%s'
        values: '1728000x180'
      - series: '%s'
        values: '432000x180'
      - series: '%s'
        values: '7776000x180'
      - series: 'myseal_check_timestamp_seconds{target="site db1"}'
        values: '0x180'
    alert_rule_test:
      - eval_time: 30m
        alertname: MysealCertificateExpiresSoon
        exp_alerts: []
      - eval_time: 2h
        alertname: MysealCertificateExpiresSoon
        exp_alerts:
%s%s      - eval_time: 2h
        alertname: MysealCertificateExpiresVerySoon
        exp_alerts:
%s      - eval_time: 1h
        alertname: MysealCheckStale
        exp_alerts: []
      - eval_time: 2h1m
        alertname: MysealCheckStale
        exp_alerts:
          - exp_labels: { severity: warning, target: site db1 }
            exp_annotations:
              summary: "myseal check has not written metrics for site db1 for 2h 1m 0s"
              description: "Run the cron line's command by hand to see why."
]]):format(cert:format("server", "server-expiry:1", "db1"), cert:format("client", "client-expiry:1", "app"),
           cert:format("ca", "ca-expiry:1", "CA"),
           alert("warning", "server", "server-expiry:1", "db1", "19d 22h 0m 0s"),
           alert("warning", "client", "client-expiry:1", "app", "4d 22h 0m 0s"),
           alert("critical", "client", "client-expiry:1", "app", "4d 22h 0m 0s"))
      assert(sys.write_file(dir .. "/test.yml", test))
      r = promtool{ "test", "rules", dir .. "/test.yml" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("SUCCESS", r.stdout)
      -- and the test is one that can fail: a wrong expectation is reported
      assert(sys.write_file(dir .. "/test.yml", (test:gsub("19d 22h 0m 0s", "20d"))))
      r = promtool{ "test", "rules", dir .. "/test.yml" }
      assert.equal(1, r.status)
      assert.matches("alertname: MysealCertificateExpiresSoon", r.stdout .. r.stderr)
   end)
end)
