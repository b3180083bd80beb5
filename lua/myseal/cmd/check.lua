--- `myseal check`: the read-only posture report.
local cli = require "myseal.engine.cli"
local errors = require "myseal.errors"
local args = require "myseal.args"
local check = require "myseal.check"
local sys = require "sys"

local M = {
   summary = "report encryption at rest and in transit, read-only (text, JSON, HTML or metrics)",
   usage = "myseal check (--site F | --sandbox N) [--format text|json|html|prometheus] [--output FILE] "
      .. "[--fail-on warn|fail] [--deep] [--set S.K=V]... [--secrets-stdin]",
   help = [[
Inspects the server and changes nothing: the keyring, every schema's tables
(the unencrypted ones by name), log, binary log and temporary-file encryption;
the server certificate (chain, names, days left: warn at 30, fail at 7), TLS
versions, require_secure_transport, accounts by REQUIRE level and those that
can log in over TCP without TLS, sessions without TLS, and the truststore and
client certificates the site profile names. Each finding has a severity (ok,
info, warn, fail) and the runbook and step that fix it. The JSON and HTML
reports map the findings to the controls auditors ask about (HIPAA, GDPR,
PCI DSS) with the target's journal: what was done, when, by whom.
  --format F         text (default), json (schema: docs/check.md), html (one
                     self-contained page) or prometheus (node_exporter's
                     textfile format: expiry times, tables, TLS, each finding)
  --output FILE      write the report there (atomically, so a textfile collector
                     never reads half a file) instead of standard output
  --fail-on LEVEL    exit 1 when a finding is at least LEVEL: fail (default) or warn,
                     for cron and monitoring
  --deep             also read every file the server writes (on its host) for values
                     drawn from the application's rows: a disk-scan finding and one
                     plaintext:PATH finding per file that holds them (= --set
                     at_rest.disk_scan=yes); the values are never shown
  --set check.warn_days=N, --set check.fail_days=N   the expiry thresholds
  --secrets-stdin    read the secrets (e.g. connection.password) from standard input,
                     one JSON object {"section.key": "value"}
Exit status: 0 below --fail-on, 1 at or above it, 2 bad usage.
targets (one is needed):
  --site FILE        a site profile (INI; see runbooks/site.example.ini)
  --sandbox NAME     a running sandbox; --site may go with it]],
}

local FORMATS = { text = true, json = true, html = true, prometheus = true }

function M.run(argv)
   local opts, pos = args.parse("check", argv, { options = { "site", "sandbox", "format", "output", "fail-on" },
                                                 flags = { "deep", "secrets-stdin" }, multi = { "set" } })
   args.at_most("check", pos, 0)
   local format = opts.format or "text"
   if not FORMATS[format] then
      errors.usage("check: --format is text, json, html or prometheus, not '%s'", format)
   end
   local fail_on = opts.fail_on or "fail"
   if fail_on ~= "warn" and fail_on ~= "fail" then
      errors.usage("check: --fail-on is warn or fail, not '%s'", fail_on)
   end
   if not opts.site and not opts.sandbox then
      errors.usage("check: name a target: --site FILE or --sandbox NAME (try 'myseal help check')")
   end
   local target = cli.target("check", opts)
   local set = opts.set or {}
   if opts.deep then set[#set + 1] = "at_rest.disk_scan=yes" end
   local report = check.run{ target = target, set = set }
   local text = check[format](report)
   if opts.output then
      local ok, err = sys.write_file(opts.output, text, { mode = tonumber("644", 8) })
      if not ok then errors.fail("check: cannot write the report: %s", err) end
      io.stderr:write(("myseal check: %s: %d ok, %d warnings, %d failures; report in %s\n")
         :format(report.target, report.summary.ok, report.summary.warn, report.summary.fail, opts.output))
   else
      io.stdout:write(text)
   end
   return check.exit_status(report, fail_on)
end

return M
