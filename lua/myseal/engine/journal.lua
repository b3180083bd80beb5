--- Journals: one JSON object per line, appended and flushed as a run goes, so a run killed at
-- any point leaves a record that says where it stopped. One file per run, in
-- `<target state dir>/runs/<runbook>/<YYYYmmdd-HHMMSS>-<microseconds>-<pid>.jsonl` (0600, directory 0700).
-- @module myseal.engine.journal
local json = require "myseal.json"
local sys = require "sys"
local fault = require "myseal.engine.fault"

local M = {}

local Journal = {}
Journal.__index = Journal
Journal.__name = "myseal.Journal"

local function runs_dir(target_dir, runbook)
   return target_dir .. "/runs/" .. runbook
end

--- The first of `base .. ext`, `base-2 .. ext`, `base-3 .. ext`, ... that does not exist.
-- @param base path without its extension
-- @param ext extension ("" for none)
-- @return path
function M.unused_name(base, ext)
   local path, n = base .. ext, 1
   while sys.stat(path) do
      n = n + 1
      path = ("%s-%d%s"):format(base, n, ext)
   end
   return path
end

--- Start a new journal.
-- @param target_dir the target's state directory
-- @return journal | nil, message
function M.create(target_dir, runbook)
   local dir = runs_dir(target_dir, runbook)
   local ok, err = sys.mkdir(dir, tonumber("700", 8))
   if not ok then return nil, err end
   local now = sys.now()
   local base = ("%s/%s-%06d-%d"):format(dir, os.date("%Y%m%d-%H%M%S", math.floor(now)),
      math.floor((now % 1) * 1e6), sys.getpid())
   local path = M.unused_name(base, ".jsonl")
   ok, err = sys.write_file(path, "", { mode = tonumber("600", 8) })
   if not ok then return nil, err end
   return M.open(path)
end

--- A last line cut short (a process killed while writing it) is set aside into PATH.torn and
-- cut from the journal, so that what is appended next starts on a line of its own.
-- @param path journal file
-- @return the message saying so, nil when the journal was whole | nil, message on failure
function M.repair(path)
   local data, err = sys.read_file(path)
   if not data then return nil, err end
   if data == "" or data:sub(-1) == "\n" then return nil end
   local keep = data:match("^(.*\n)") or ""
   local torn = data:sub(#keep + 1)
   local f = io.open(path .. ".torn", "ab")
   if f then
      f:write(torn, "\n")
      f:close()
   end
   local ok, werr = sys.write_file(path, keep, { mode = tonumber("600", 8) })
   if not ok then return nil, werr end
   return ("%s: the last line was cut short (%d bytes at byte %d, a killed run): set aside in %s.torn")
      :format(path, #torn, #keep, path)
end

--- Open an existing journal to append to it (a torn last line is set aside first: `repaired`
-- says so).
-- @param path journal file
-- @return journal | nil, message
function M.open(path)
   local note, err = M.repair(path)
   if not note and err then return nil, err end
   if not sys.stat(path) then return nil, path .. ": No such file or directory" end
   return setmetatable({ path = path, repaired = note }, Journal)
end

--- Append one event (already redacted by the caller): one line, in one write; nothing stays open
-- between two, so a journal has nothing to close.
function Journal:write(event)
   event.at = event.at or os.date("!%Y-%m-%dT%H:%M:%SZ")
   fault.event(event, "before")
   assert(sys.append(self.path, json.encode(event) .. "\n"))
   fault.event(event, "after")
end

--- Read a journal's events. A last line cut short (a killed process) is ignored; a bad line
-- before the last one is an error naming the line.
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

--- The kinds of effect that change a file (rollback puts them back from their backups).
M.FILE_KINDS = { file = true, remove = true, mkdir = true }

--- What a journal says about its run.
-- @param events list of events (M.read)
-- @return `{ status = "ok"|"failed"|"interrupted"|"rolled back", steps = { name -> state },
--   order = { step names in order first seen }, effects = { step -> list of file/restart effects
--   not restored }, since_restart = { file effects after the last successful restart },
--   pending_restart = a restart was journaled and not seen to finish (a kill during it),
--   params = the parameters of the run (or of its last resume), error = message, stopped_at = step }`
function M.summary(events)
   local s = { status = "interrupted", steps = {}, order = {}, effects = {}, since_restart = {} }
   local phase = "run"
   for _, ev in ipairs(events) do
      local e = ev.event
      if e == "run" or e == "resume" or e == "rollback" then
         phase = e == "rollback" and "rollback" or "run"
         s.status = "interrupted"
         if ev.params then s.params = ev.params end   -- a rollback's line has none
      elseif e == "end" then
         s.status = ev.status
         s.error = ev.error
      elseif e == "step" and phase == "run" then
         if not s.steps[ev.step] then s.order[#s.order + 1] = ev.step end
         s.steps[ev.step] = ev.state
         if ev.state == "start" then s.stopped_at = ev.step end
      elseif e == "effect" then
         if ev.kind == "restart" then s.pending_restart = true end
         if phase == "run" and ev.kind then
            s.effects[ev.step] = s.effects[ev.step] or {}
            table.insert(s.effects[ev.step], ev)
            if M.FILE_KINDS[ev.kind] then table.insert(s.since_restart, ev) end
         end
      elseif e == "restarted" then
         s.since_restart = {}
         s.pending_restart = false
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
      elseif e == "reapplied" then
         -- a change a failed restart had put back was brought back (the server needed it)
         for _, list in pairs(s.effects) do
            for _, fx in ipairs(list) do
               if fx.path == ev.path and fx.keep then fx.restored = nil end
            end
         end
      elseif e == "record" then
         s.records = s.records or {}
         s.records[ev.key] = ev.value
      end
   end
   return s
end

return M
