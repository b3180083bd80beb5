--- Journals: one JSON object per line, appended and flushed as a run goes, so a run killed at
-- any point leaves a record that says where it stopped. One file per run, in
-- `<target state dir>/runs/<runbook>/<YYYYmmdd-HHMMSS>-<microseconds>-<pid>.jsonl` (0600, directory 0700).
-- @module myseal.engine.journal
local json = require "myseal.json"
local sys = require "sys"

local M = {}

local Journal = {}
Journal.__index = Journal
Journal.__name = "myseal.Journal"

local function runs_dir(target_dir, runbook)
   return target_dir .. "/runs/" .. runbook
end

--- Start a new journal.
-- @param target_dir the target's state directory
-- @param runbook runbook name
-- @return journal | nil, message
function M.create(target_dir, runbook)
   local dir = runs_dir(target_dir, runbook)
   local ok, err = sys.mkdir(dir, tonumber("700", 8))
   if not ok then return nil, err end
   local now = sys.now()
   local base = ("%s/%s-%06d-%d"):format(dir, os.date("%Y%m%d-%H%M%S", math.floor(now)),
      math.floor((now % 1) * 1e6), sys.getpid())
   local path = base .. ".jsonl"
   local n = 1
   while sys.stat(path) do
      n = n + 1
      path = ("%s-%d.jsonl"):format(base, n)
   end
   ok, err = sys.write_file(path, "", { mode = tonumber("600", 8) })
   if not ok then return nil, err end
   return M.open(path)
end

--- Open an existing journal to append to it.
-- @param path journal file
-- @return journal | nil, message
function M.open(path)
   local f, err = io.open(path, "ab")
   if not f then return nil, err end
   return setmetatable({ path = path, file = f }, Journal)
end

-- For the test suite's fault library only (tests/spec/support/faults.lua): with
-- MYSEAL_TEST_KILL_AT=WHEN:WHAT[:N] this process kills itself with SIGKILL at the Nth (default
-- first) match: "before:KIND" right after an effect of KIND (file, sql, restart, mkdir, remove,
-- run, wait) is journaled and before it is done; "after:KIND" when the next line after it is
-- about to be written (the effect is done); "event:NAME" right after an event NAME is written.
local KILL_AT = os.getenv("MYSEAL_TEST_KILL_AT")
local kill = KILL_AT and { seen = 0 }
if kill then kill.when, kill.what, kill.n = KILL_AT:match("^(%a+):([%w_]+):?(%d*)$") end
local function fault(event, written)
   if not (kill and kill.when) then return end
   if not written then
      if kill.armed then sys.kill(sys.getpid(), "KILL") end   -- "after": this line is never written
      return
   end
   local hit
   if kill.when == "event" then hit = event.event == kill.what
   else hit = event.event == "effect" and event.kind == kill.what end
   if not hit then return end
   kill.seen = kill.seen + 1
   if kill.seen ~= (tonumber(kill.n) or 1) then return end
   if kill.when == "after" then kill.armed = true else sys.kill(sys.getpid(), "KILL") end
end

--- Append one event (already redacted by the caller); flushed at once.
-- @param event table
function Journal:write(event)
   fault(event, false)
   event.at = event.at or os.date("!%Y-%m-%dT%H:%M:%SZ")
   self.file:write(json.encode(event), "\n")
   self.file:flush()
   fault(event, true)
end

--- Close the journal file.
function Journal:close()
   if self.file then
      self.file:close()
      self.file = nil
   end
end
Journal.__close = Journal.close
Journal.__gc = Journal.close

--- Read a journal's events. A last line cut short (a killed process) is ignored.
-- @param path journal file
-- @return list of events | nil, message
function M.read(path)
   local data, err = sys.read_file(path)
   if not data then return nil, err end
   local out, n = {}, 0
   for line in data:gmatch("[^\n]+") do
      n = n + 1
      local ev, derr = json.decode(line)
      if ev then
         out[#out + 1] = ev
      elseif data:find(line .. "\n", 1, true) then
         return nil, ("%s:%d: %s"):format(path, n, derr)
      end
   end
   return out
end

--- The journals of a runbook on a target, newest first.
-- @param target_dir the target's state directory
-- @param runbook runbook name
-- @return list of paths (empty when there are none)
function M.list(target_dir, runbook)
   local out = {}
   for _, n in ipairs(sys.dir(runs_dir(target_dir, runbook)) or {}) do
      if n:match("^%d+%-%d+%-%d+%-%d+.*%.jsonl$") then out[#out + 1] = n end
   end
   table.sort(out, function(a, b) return a > b end)   -- names start with a sortable time stamp
   for i, n in ipairs(out) do out[i] = runs_dir(target_dir, runbook) .. "/" .. n end
   return out
end

--- What a journal says about its run.
-- @param events list of events (M.read)
-- @return `{ status = "ok"|"failed"|"interrupted"|"rolled back", steps = { name -> state },
--   order = { step names in order first seen }, effects = { step -> list of file/restart effects
--   not restored }, since_restart = { file effects after the last successful restart },
--   error = message, stopped_at = step }`
function M.summary(events)
   local s = { status = "interrupted", steps = {}, order = {}, effects = {}, since_restart = {} }
   local phase = "run"
   local current
   for _, ev in ipairs(events) do
      local e = ev.event
      if e == "run" or e == "resume" then
         phase = "run"
         s.status = "interrupted"
      elseif e == "rollback" then
         phase = "rollback"
         s.status = "interrupted"
      elseif e == "end" then
         s.status = ev.status
         s.error = ev.error
      elseif e == "step" and phase == "run" then
         if not s.steps[ev.step] then s.order[#s.order + 1] = ev.step end
         s.steps[ev.step] = ev.state
         current = ev.step
         if ev.state ~= "start" then current = nil else s.stopped_at = ev.step end
      elseif e == "effect" and phase == "run" then
         if ev.kind == "file" or ev.kind == "remove" or ev.kind == "mkdir" or ev.kind == "restart" then
            s.effects[ev.step] = s.effects[ev.step] or {}
            table.insert(s.effects[ev.step], ev)
            if ev.kind ~= "restart" then table.insert(s.since_restart, ev) end
         elseif ev.kind then
            s.effects[ev.step] = s.effects[ev.step] or {}
            table.insert(s.effects[ev.step], ev)
         end
      elseif e == "restarted" then
         s.since_restart = {}
      elseif e == "restore" then
         -- a file put back (restart failed, or rollback): its effect is undone
         for _, list in pairs(s.effects) do
            for _, fx in ipairs(list) do
               if fx.path == ev.path and fx.backup == ev.backup and fx.kind == ev.kind then fx.restored = true end
            end
         end
         for i = #s.since_restart, 1, -1 do
            local fx = s.since_restart[i]
            if fx.path == ev.path and fx.backup == ev.backup then table.remove(s.since_restart, i) end
         end
      elseif e == "record" then
         s.records = s.records or {}
         s.records[ev.key] = ev.value
      end
   end
   s.running_step = current
   return s
end

return M
