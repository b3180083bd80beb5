--- What a run shows: readable lines on a terminal (steps, states, durations, a progress bar
-- with ETA), or one JSON object per line with --json. Events arrive already redacted.
--
-- Events: `run` (mode, runbook, target, server), `step` (step, index, total, state: start, done,
-- todo, changed, unchanged, skipped, ok, failed; seconds; reason), `effect` (step, kind, summary,
-- detail), `progress` (step, done, total, label, unit, eta), `log` (step, level, message),
-- `result` (status, changed, todo, done, seconds, error, journal).
-- @module myseal.engine.report
local json = require "myseal.json"
local count = require("myseal.text").count
local bytes = require("myseal.text").bytes
local sys = require "sys"

local M = {}

local function duration(s)
   if s < 10 then return ("%.2f s"):format(s) end
   if s < 120 then return ("%.1f s"):format(s) end
   return ("%d:%02d"):format(s // 60, math.floor(s % 60))
end

local function clock(s)
   s = math.floor(s + 0.5)
   if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
   return ("%d:%02d"):format(s // 60, s % 60)
end

--- Seconds left at the current rate, or nil when it cannot be told yet.
-- @param done units done
-- @param total units in all
-- @param elapsed seconds since the first progress report
function M.eta(done, total, elapsed)
   if done <= 0 or total <= 0 or elapsed <= 0 or done >= total then return nil end
   return elapsed / done * (total - done)
end

local STATE_TEXT = {
   done = "already done", todo = "to do", changed = "changed", unchanged = "nothing to change",
   skipped = "skipped", ok = "ok", failed = "FAILED", later = "later", refused = "WOULD REFUSE",
}

-- Text ----------------------------------------------------------------------------------------

local Text = {}
Text.__index = Text

--- A reporter writing readable lines.
-- @param opts `{ out = file (io.stdout), tty = boolean, verbose = boolean }`
function M.text(opts)
   opts = opts or {}
   local out = opts.out or io.stdout
   local tty = opts.tty
   if tty == nil then tty = out == io.stdout and sys.isatty("stdout") end
   return setmetatable({ out = out, tty = tty, verbose = opts.verbose, transient = nil, last_draw = 0,
                         pending = {} }, Text)
end

function Text:clear()
   if self.transient then
      self.out:write("\r\27[K")
      self.out:flush()
      self.transient = nil
   end
end

-- A permanent line; the transient one (the running step) is drawn again below it.
function Text:line(s)
   local again = self.transient
   self:clear()
   self.out:write(s, "\n")
   if again then self:show_transient(again) end
   self.out:flush()
end

function Text:show_transient(s)
   if not self.tty then return end
   self.out:write("\r\27[K", s)
   self.out:flush()
   self.transient = s
end

local function indent(text, pad)
   local out = {}
   for line in (text:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = pad .. line end
   return table.concat(out, "\n")
end

function Text:event(ev)
   local e = ev.event
   if e == "run" then
      self.mode = ev.mode
      local line = ("%s: %s on %s"):format(ev.mode, ev.runbook, ev.target)
      if ev.server then line = line .. " (" .. ev.server .. ")" end
      self:line(line)
   elseif e == "step" then
      local tag = ("[%d/%d] %s"):format(ev.index, ev.total, ev.step)
      if ev.state == "start" then
         self:show_transient(tag .. " ...")
         return
      end
      self:clear()
      local text = STATE_TEXT[ev.state] or ev.state
      local line = ("%-36s %s"):format(tag, text)
      if ev.reason and ev.reason ~= "" and ev.state ~= "failed" then line = line .. ": " .. ev.reason end
      if ev.seconds and self.mode ~= "plan" then line = line .. "  (" .. duration(ev.seconds) .. ")" end
      self:line(line)
      -- plan: the step's effects go under its line
      for _, l in ipairs(self.pending) do self:line(l) end
      self.pending = {}
   elseif e == "effect" then
      if self.mode == "plan" then
         table.insert(self.pending, "      " .. ev.summary)
         if ev.detail and ev.detail ~= "" then table.insert(self.pending, indent(ev.detail, "        ")) end
      elseif self.verbose then
         self:line("      " .. ev.summary)
      end
   elseif e == "log" then
      local line = "      " .. (ev.level == "warn" and "warning: " or "") .. ev.message
      if self.mode == "plan" then table.insert(self.pending, line) else self:line(line) end
   elseif e == "progress" then
      if not self.tty then return end
      local now = sys.clock()
      if ev.done < ev.total and now - self.last_draw < 0.1 then return end
      self.last_draw = now
      local width = 24
      local frac = ev.total > 0 and math.min(1, ev.done / ev.total) or 0
      local fill = math.floor(frac * width + 0.5)
      local amount = ev.unit == "bytes" and bytes(ev.done) .. " / " .. bytes(ev.total)
         or ("%d/%d"):format(ev.done, ev.total)
      local s = ("      [%s%s] %3d%%  %s%s"):format(("#"):rep(fill), ("-"):rep(width - fill),
         math.floor(frac * 100), amount, ev.label and (" " .. ev.label) or "")
      if ev.eta then s = s .. "  ETA " .. clock(ev.eta) end
      self:show_transient(s)
   elseif e == "result" then
      self:line(self:result_text(ev))
   end
end

function Text:result_text(ev)
   local m = self.mode or "run"
   if ev.status == "failed" then
      return ("%s: failed%s"):format(m, ev.journal and (" (journal: " .. ev.journal .. ")") or "")
   elseif ev.status == "interrupted" then
      return ("%s: interrupted; continue with --resume (journal: %s)"):format(m, tostring(ev.journal))
   end
   if m == "plan" then
      if ev.todo == 0 then return "plan: nothing to do; every step is done. Nothing was changed." end
      return ("plan: %s to do, %d already done. Nothing was changed."):format(count(ev.todo, "step"), ev.done)
   elseif m == "rollback" then
      return ("rollback: done, %s rolled back (%s)"):format(count(ev.changed, "step"), duration(ev.seconds or 0))
   end
   if ev.resumed then
      return ("run: resumed and finished: %s completed now, %d done before (%s); journal: %s"):format(
         count(ev.changed, "step"), ev.done, duration(ev.seconds or 0), tostring(ev.journal))
   end
   if ev.changed == 0 then
      return ("run: nothing to do; every step was already done (%s)"):format(duration(ev.seconds or 0))
   end
   return ("run: done, %s changed, %d already done (%s); journal: %s"):format(
      count(ev.changed, "step"), ev.done, duration(ev.seconds or 0), tostring(ev.journal))
end

--- Ask a yes/no question on the terminal; true for yes.
function Text:confirm(question)
   self:clear()
   self.out:write(question, " [y/N] ")
   self.out:flush()
   local answer = io.stdin:read("l")
   return answer ~= nil and answer:match("^%s*[yY]") ~= nil
end

-- JSON ----------------------------------------------------------------------------------------

local Json = {}
Json.__index = Json

--- A reporter writing one JSON object per line (progress at most twice a second).
-- @param opts `{ out = file (io.stdout) }`
function M.json(opts)
   opts = opts or {}
   return setmetatable({ out = opts.out or io.stdout, last = {} }, Json)
end

function Json:event(ev)
   if ev.event == "progress" then
      local now = sys.clock()
      local key = tostring(ev.step) .. "\0" .. tostring(ev.label)
      if ev.done < ev.total and self.last[key] and now - self.last[key] < 0.5 then return end
      self.last[key] = now
   end
   self.out:write(json.encode(ev), "\n")
   self.out:flush()
end

function Json:confirm()
   return false
end

--- A reporter that keeps events in a list (for the confirmation summary and tests).
-- @return reporter with field `events`
function M.collect()
   local r = { events = {} }
   function r.event(self, ev) self.events[#self.events + 1] = ev end
   return r
end

return M
