--- The posture report of `myseal check` as text and JSON (docs/check.md), and what the other
-- forms share (check/html.lua, check/metrics.lua).
-- @module myseal.check.render
local M = {}

local MARK = { ok = "ok  ", info = "info", warn = "WARN", fail = "FAIL" }

--- The command that fixes a finding: "myseal run RUNBOOK [--set S] (step STEP)", or nil.
-- @param f finding
function M.fix_text(f)
   if not f.fix then return nil end
   local t = ("myseal run %s"):format(f.fix.runbook)
   if f.fix.set then t = t .. " --set " .. f.fix.set end
   return t .. (" (step %s)"):format(f.fix.step)
end

--- Findings and runs by id, each with its place in its list.
-- @param report the report
-- @return `{ [id] = { finding, n } }`, `{ [id] = { run, n } }`
function M.index(report)
   local f, r = {}, {}
   for i, x in ipairs(report.findings) do f[x.id] = { finding = x, n = i } end
   for i, x in ipairs(report.runs or {}) do r[x.id] = { run = x, n = i } end
   return f, r
end

--- Counts of severities of a list of finding ids: "2 fail, 1 warn, 12 ok".
-- @param byid the first result of M.index
-- @param ids finding ids
function M.tally(byid, ids)
   local n = { ok = 0, info = 0, warn = 0, fail = 0 }
   for _, id in ipairs(ids) do
      local sev = byid[id].finding.severity
      n[sev] = n[sev] + 1
   end
   local parts = {}
   for _, sev in ipairs{ "fail", "warn", "ok", "info" } do
      if n[sev] > 0 then parts[#parts + 1] = ("%d %s"):format(n[sev], sev) end
   end
   return table.concat(parts, ", ")
end

--- One run in a line: "2026-12-01T10:10:44Z at-rest ok, by root on vm".
-- @param r a run (check/history.lua)
function M.run_line(r)
   return ("%s %s %s, by %s%s"):format(r.started or "(no start)", r.runbook, r.status, r.user or "(not journaled)",
      r.host and (" on " .. r.host) or "")
end

-- A control's evidence in one line, for the terminal.
local function control_line(byid, runs, c)
   local parts = { ("findings: %s"):format(#c.findings > 0 and M.tally(byid, c.findings) or "none") }
   if #c.disk > 0 then parts[#parts + 1] = "disk: " .. M.tally(byid, c.disk) end
   if c.disk_scan == "not run" then parts[#parts + 1] = "the disk scan has not run" end
   parts[#parts + 1] = #c.runs > 0 and ("last run: " .. M.run_line(runs[c.runs[1]].run))
      or "no run recorded"
   return table.concat(parts, "; ")
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
      if f.fix then out[#out + 1] = "         fix: " .. M.fix_text(f) end
   end
   if report.controls and #report.controls > 0 then
      out[#out + 1] = ""
      out[#out + 1] = "controls:"
      local byid, runs = M.index(report)
      for _, c in ipairs(report.controls) do
         out[#out + 1] = ("  [%s] %s %s, %s"):format(MARK[c.status] or "?   ", c.framework, c.ref, c.title)
         out[#out + 1] = "         " .. control_line(byid, runs, c)
      end
   end
   local s = report.summary
   out[#out + 1] = ""
   local count = require("myseal.text").count
   out[#out + 1] = ("%d ok, %d info, %s, %s"):format(s.ok, s.info, count(s.warn, "warning"), count(s.fail, "failure"))
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

return M
