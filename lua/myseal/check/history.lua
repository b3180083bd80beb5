--- What was done to a target, from its journals: every run of every runbook, when, by which
-- operating-system user on which host, each step's outcome, and the resumes and rollbacks that
-- followed. For the evidence of `myseal check` (check/evidence.lua). The journals are redacted
-- when written (engine/init.lua), and only names, states, times, users and the runs' own
-- error messages are taken from them: no parameter values.
-- @module myseal.check.history
local sys = require "sys"
local json = require "myseal.json"
local journal = require "myseal.engine.journal"

local M = {}

local SESSION = { run = true, resume = true, rollback = true }

-- The sessions of one journal: the run, then each resume or rollback, with their steps.
local function sessions(events)
   local out, cur = setmetatable({}, json.array), nil
   for _, ev in ipairs(events) do
      if SESSION[ev.event] then
         cur = { kind = ev.event, at = ev.at, user = ev.user, host = ev.host, steps = setmetatable({}, json.array) }
         out[#out + 1] = cur
      elseif cur and ev.event == "step" and ev.state ~= "start" then
         cur.steps[#cur.steps + 1] = { step = ev.step, state = ev.state, at = ev.at }
      elseif cur and ev.event == "end" then
         cur.ended, cur.status, cur.error = ev.at, ev.status, ev.error
      end
   end
   return out
end

-- One run from its journal file.
local function run_of(runbook, path)
   local id = runbook .. "/" .. path:match("([^/]+)%.jsonl$")
   local events, err = journal.read(path)
   if not events then
      return { id = id, runbook = runbook, journal = path, status = "unreadable", error = err,
               sessions = setmetatable({}, json.array) }
   end
   local s = sessions(events)
   local first = s[1] or {}
   return { id = id, runbook = runbook, journal = path, status = journal.summary(events).status,
            started = first.at, user = first.user, host = first.host, sessions = s }
end

--- Every run recorded for a target, newest first (journals that cannot be read last).
-- @param target_dir the target's state directory (`target:state_dir()`), or nil for none
-- @return list of `{ id = "RUNBOOK/JOURNAL-NAME", runbook, journal = path, status = "ok" | "failed" |
--   "interrupted" | "rolled back" | "unreadable", started, user, host, error, sessions = list of
--   { kind = "run" | "resume" | "rollback", at, user, host, ended, status, error,
--   steps = list of { step, state, at } } }` (times as the journal writes them, UTC)
function M.runs(target_dir)
   local out = setmetatable({}, json.array)
   if not target_dir then return out end
   local names = sys.dir(target_dir .. "/runs") or {}
   table.sort(names)
   for _, runbook in ipairs(names) do
      for _, path in ipairs(journal.list(target_dir, runbook)) do out[#out + 1] = run_of(runbook, path) end
   end
   -- `started` is UTC from the first event; journal names start with the local time, for ties
   table.sort(out, function(a, b)
      if (a.started or "") ~= (b.started or "") then return (a.started or "") > (b.started or "") end
      return a.journal:match("[^/]+$") > b.journal:match("[^/]+$")
   end)
   return out
end

--- What a session did: the steps whose change it made (state "changed" or "unchanged": their
-- apply ran; "rolled back" in a rollback), the ones put back after a failed restart, the one
-- that failed, and how many others were already done, skipped or only checked.
-- @param session one of a run's sessions
-- @return `{ applied = list of step names, reverted = list of step names, failed = step name or nil,
--   others = n }`
function M.outcome(session)
   local out = { applied = {}, reverted = {}, others = 0 }
   for _, st in ipairs(session.steps) do
      if st.state == "changed" or st.state == "unchanged" or st.state == "rolled back" then
         out.applied[#out.applied + 1] = st.step
      elseif st.state == "reverted" then
         out.reverted[#out.reverted + 1] = st.step
      elseif st.state == "failed" or st.state == "interrupted" then
         out.failed = st.step
      else
         out.others = out.others + 1
      end
   end
   return out
end

return M
