--- The posture report of `myseal check` as text, JSON (docs/check.md) and HTML.
-- @module myseal.check.render
local M = {}


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
