--- The posture report of `myseal check` as one HTML page: the summary, the controls auditors
-- ask about with their evidence (check/evidence.lua), every finding, the journal of the target.
-- No external assets and no script: the page is one file that opens anywhere and prints well.
-- @module myseal.check.html
local render = require "myseal.check.render"
local history = require "myseal.check.history"
local text = require "myseal.text"

local M = {}

local function esc(s)
   return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- The evidence of the findings `ids`: the ones that are not ok linked with their titles, the
-- others counted and linked by id.
local function html_findings(byid, ids)
   if #ids == 0 then return "none" end
   local bad, good = {}, {}
   for _, id in ipairs(ids) do
      local e = byid[id]
      local link = ("<a href=\"#f%d\">%s</a>"):format(e.n, esc(id))
      if e.finding.severity == "warn" or e.finding.severity == "fail" then
         bad[#bad + 1] = ("<li class=\"%s\">%s: %s</li>"):format(e.finding.severity, link, esc(e.finding.title))
      else
         good[#good + 1] = link
      end
   end
   local out = { ("<div>%s</div>"):format(render.tally(byid, ids)) }
   if #bad > 0 then out[#out + 1] = "<ul>" .. table.concat(bad) .. "</ul>" end
   if #good > 0 then out[#out + 1] = ("<div class=\"note\">ok: %s</div>"):format(table.concat(good, ", ")) end
   return table.concat(out)
end

-- What a run's sessions did, for a table cell.
local function html_sessions(r)
   if r.status == "unreadable" then return esc(r.error) end
   local out = {}
   for _, ses in ipairs(r.sessions) do
      local o = history.outcome(ses)
      local parts = {}
      if #o.applied > 0 then
         local verb = ses.kind == "rollback" and "rolled back " or "changed "
         parts[#parts + 1] = verb .. esc(table.concat(o.applied, ", "))
      end
      if #o.reverted > 0 then parts[#parts + 1] = "put back " .. esc(table.concat(o.reverted, ", ")) end
      if o.failed then parts[#parts + 1] = "failed in " .. esc(o.failed) end
      if o.others > 0 then parts[#parts + 1] = text.count(o.others, "step") .. " done already, skipped or checked" end
      out[#out + 1] = ("<div><b>%s</b> %s%s: %s%s</div>"):format(ses.kind, esc(ses.at or ""),
         ses.user and (" by " .. esc(ses.user)) or " (user not journaled)",
         #parts > 0 and table.concat(parts, "; ") or "nothing",
         ses.error and ("<div class=\"note\">" .. esc(ses.error) .. "</div>") or "")
   end
   return table.concat(out)
end

local RUNS_SHOWN = 5   -- per control; the journal table below has them all

-- The controls table: each control, its status and its three kinds of evidence.
local function html_controls(report)
   local byid, runs = render.index(report)
   local rows = {}
   for _, c in ipairs(report.controls or {}) do
      local disk = {}
      if #c.disk > 0 then disk[1] = html_findings(byid, c.disk) end
      if c.disk_scan == "not run" then
         disk[#disk + 1] = "<div class=\"note\">the disk scan has not run: this rests on the server's word</div>"
      elseif c.disk_scan == nil and #c.disk == 0 then
         disk[1] = "<div class=\"note\">not applicable: in transit, the verification connects as a client</div>"
      end
      local done = {}
      for i, id in ipairs(c.runs) do
         if i > RUNS_SHOWN then
            done[#done + 1] = ("<div class=\"note\">and %d older (journal below)</div>"):format(#c.runs - RUNS_SHOWN)
            break
         end
         local e = runs[id]
         done[#done + 1] = ("<div class=\"%s\"><a href=\"#r%d\">%s</a></div>"):format(
            e.run.status == "ok" and "ok" or "fail", e.n, esc(render.run_line(e.run)))
      end
      if #done == 0 then
         done[1] = ("no run of %s recorded for this target"):format(esc(table.concat(c.runbooks, ", ")))
      end
      rows[#rows + 1] = ("<tr class=\"%s\" id=\"control-%s\"><td><b>%s %s</b><div>%s</div></td>"
         .. "<td>%s<div class=\"note\">not shown here: %s</div></td><td class=\"sev\">%s</td>"
         .. "<td>%s</td><td>%s</td><td>%s</td></tr>"):format(c.status, esc(c.id), esc(c.framework), esc(c.ref),
         esc(c.title), esc(c.asks), esc(c.limits), c.status:upper(), html_findings(byid, c.findings),
         table.concat(disk), table.concat(done))
   end
   return table.concat(rows, "\n")
end

-- The journal table: every run on the target, newest first.
local function html_runs(report)
   local rows = {}
   for i, r in ipairs(report.runs or {}) do
      rows[#rows + 1] = ("<tr class=\"%s\" id=\"r%d\"><td>%s</td><td>%s</td><td>%s</td><td class=\"sev\">%s</td>"
         .. "<td>%s</td><td class=\"detail\">%s</td></tr>"):format(r.status == "ok" and "ok" or "fail", i,
         esc(r.started or ""), esc(r.runbook),
         esc((r.user or "(not journaled)") .. (r.host and (" on " .. r.host) or "")),
         esc(r.status), html_sessions(r), esc(r.journal))
   end
   if #rows == 0 then
      rows[1] = "<tr><td colspan=\"6\">no run of any runbook is journaled for this target</td></tr>"
   end
   return table.concat(rows, "\n")
end

--- The report as one self-contained HTML page (no external assets, no script) that prints well:
-- the summary, the controls with their evidence, every finding, the journal.
function M.page(report)
   local s = report.summary
   local rows, areas = {}, {}
   for i, f in ipairs(report.findings) do
      local a = areas[f.area]
      if not a then
         a = { ok = 0, info = 0, warn = 0, fail = 0 }
         areas[f.area] = a
         areas[#areas + 1] = f.area
      end
      a[f.severity] = a[f.severity] + 1
      rows[#rows + 1] = ("<tr class=\"%s\" id=\"f%d\"><td class=\"sev\">%s</td><td>%s</td><td>%s</td><td>%s%s</td>"
         .. "<td>%s</td></tr>"):format(f.severity, i, f.severity:upper(), esc(f.area), esc(f.id), esc(f.title),
            f.detail and ("<div class=\"detail\">" .. esc(f.detail) .. "</div>") or "",
            f.fix and ("<code>" .. esc(render.fix_text(f)) .. "</code>") or "")
   end
   local summary = {}
   for _, name in ipairs(areas) do
      local a = areas[name]
      summary[#summary + 1] = ("<tr><th>%s</th><td class=\"ok\">%d</td><td class=\"info\">%d</td>"
         .. "<td class=\"warn\">%d</td><td class=\"fail\">%d</td></tr>"):format(esc(name), a.ok, a.info, a.warn,
            a.fail)
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
.status.ok, .status.info { background: #d8f0d8; } .status.warn { background: #fbeec0; }
.status.fail { background: #f6cccc; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: left; vertical-align: top; }
table.summary td { text-align: right; min-width: 3em; }
tr.total { font-weight: bold; }
td.sev { font-weight: bold; white-space: nowrap; }
tr.fail td.sev, td.fail, li.fail, div.fail a { color: #a00; } tr.warn td.sev, td.warn, li.warn { color: #8a6000; }
tr.ok td.sev, td.ok, div.ok a { color: #176c17; } tr.info td.sev, td.info, tr.unknown td.sev { color: #555; }
ul { margin: 0.2em 0; padding-left: 1.2em; }
.detail { color: #555; font-size: 0.9em; word-break: break-all; }
.note { color: #555; font-size: 0.9em; }
code { font-size: 0.9em; }
@media print { body { margin: 0; font-size: 11px; } tr { break-inside: avoid; } .status { border: 1px solid #000; }
  a { color: inherit; text-decoration: none; } }
</style></head>
<body>
<h1>Encryption posture: %s</h1>
<div class="meta">%s &middot; checked %s &middot; <span class="status %s">%s</span></div>
<h2>Summary</h2>
<table class="summary" id="summary"><tr><th>area</th><th>ok</th><th>info</th><th>warnings</th><th>failures</th></tr>
%s
</table>
<h2>Controls</h2>
<p class="meta">What auditors ask about, and the evidence for each: what the server says (the findings below),
what the disk scan and the restore rehearsal found (they believe the disk, not the server), and what was done,
when and by which operating-system user (the journal below). Evidence, not a certification.</p>
<table class="controls" id="controls"><tr><th>control</th><th>what it asks</th><th>status</th><th>the server says</th>
<th>the disk</th><th>what was done</th></tr>
%s
</table>
<h2>Findings</h2>
<table class="findings" id="findings"><tr><th>severity</th><th>area</th><th>id</th><th>finding</th><th>fix</th></tr>
%s
</table>
<h2>Journal</h2>
<table class="runs" id="runs"><tr><th>started (UTC)</th><th>runbook</th><th>by</th><th>status</th>
<th>what was done</th><th>journal</th></tr>
%s
</table>
<p class="meta">myseal check, report schema %s</p>
</body></html>
]]):format(esc(report.target), esc(report.target), esc(report.server), esc(report.generated), report.status,
      report.status:upper(), table.concat(summary, "\n"), html_controls(report), table.concat(rows, "\n"),
      html_runs(report), esc(report.schema))
end

return M
