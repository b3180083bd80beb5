--- The runbook engine: plan, run (journal, resume, lock, Ctrl-C), rollback.
--
--   local engine = require "myseal.engine"
--   local status = engine.run(rb, { target = t, set = { "pki.days=30" }, reporter = r, yes = true })
--
-- Step states: done (check says so), todo (plan: apply would run), changed / unchanged (run:
-- apply ran and changed something / nothing), skipped (`when` said no), ok (a gate passed),
-- failed. Failures raise a myseal.errors failure (exit status 1) naming runbook, step and line.
-- @module myseal.engine
local sys = require "sys"
local errors = require "myseal.errors"
local params = require "myseal.engine.params"
local secrets_mod = require "myseal.engine.secrets"
local journal_mod = require "myseal.engine.journal"
local target_mod = require "myseal.engine.target"
local ctx_mod = require "myseal.engine.ctx"
local guard = require "myseal.engine.guard"
local runbook_mod = require "myseal.runbook"
local report_mod = require "myseal.engine.report"

local M = {}

--- The declarations a runbook runs with: myseal's own ([server], [connection], [site]) and its own.
function M.declarations(rb)
   local decls = {}
   for k, d in pairs(target_mod.declarations) do decls[k] = d end
   for k, d in pairs(rb.params) do
      if decls[k] then
         errors.usage("runbook %s declares parameter %s, which myseal itself declares", rb.name, k)
      end
      decls[k] = d
   end
   return decls
end

--- Parse `--set section.key=value` options into a parameter layer.
-- @param list of "section.key=value" strings
function M.set_layer(list)
   local layer = { label = "--set", strict = true, values = {} }
   for _, s in ipairs(list or {}) do
      local name, value = s:match("^([%a][%w_]*%.[^=]+)=(.*)$")
      if not name then errors.usage("--set %s: write --set section.key=value", s) end
      layer.values[name] = { value = value, where = "--set " .. name }
   end
   return layer
end

-- [server], [connection] and [site] are myseal's own sections: a key it does not know there is a
-- typo or a key in the wrong section ([server] host), which would reach another server or none.
local function refuse_unknown_keys(decls, layer)
   local bad
   for section in pairs(target_mod.sections) do
      for key, e in pairs(layer.sections and layer.sections[section] or {}) do
         local line = tonumber(e.where:match(":(%d+)$"))
         if not decls[section .. "." .. key:gsub("%-", "_")] and (not bad or line < bad.line) then
            bad = { line = line, where = e.where, section = section, key = key }
         end
      end
   end
   if not bad then return end
   local keys = {}
   for _, n in ipairs(params.sorted(decls)) do
      if decls[n].section == bad.section then keys[#keys + 1] = decls[n].key end
   end
   errors.usage("%s: [%s] has no key %s (its keys: %s)", bad.where, bad.section, bad.key, table.concat(keys, ", "))
end

--- Resolve a runbook's parameters for a target (defaults < target < profile < --set).
-- @param target target (or nil)
-- @param set list of "section.key=value"
-- @param partial when true, required parameters may stay unset (for `show`)
-- @return decls, values, origins (raises a usage error on a bad value)
function M.resolve(rb, target, set, partial)
   local decls = M.declarations(rb)
   local layers = {}
   for _, l in ipairs(target and target.layers or {}) do
      refuse_unknown_keys(decls, l)
      layers[#layers + 1] = l
   end
   layers[#layers + 1] = M.set_layer(set)
   local values, origins = params.resolve(decls, layers, partial)
   if not values then errors.usage("%s", origins) end
   return decls, values, origins
end

-- An error from a step function, with the line in the runbook that raised it.
local function handler(e)
   if e == ctx_mod.Interrupted then return e end
   local msg, bad
   if getmetatable(e) == ctx_mod.Failure or errors.is(e) then
      msg, bad = e.message, e.bad_input or e.exit == 2
   else
      msg = tostring(e)
   end
   local where = guard.runbook_line()
   if type(e) == "string" then
      -- the position Lua put in front says the same as `where`, or points into myseal's code
      local stripped = msg:gsub("^[^\n:]+:%d+: ", "", 1)
      if where or not os.getenv("MYSEAL_DEBUG") then msg = stripped end
      if os.getenv("MYSEAL_DEBUG") then msg = debug.traceback(msg, 2) end
   end
   return { message = msg, where = where, bad_input = bad }
end

--- Call a step function as runbook code (effects outside ctx refused): true, results | false, error.
function M.call(fn, ctx)
   local r = table.pack(guard.block(xpcall, fn, handler, ctx))
   if r[1] then return true, table.unpack(r, 2, r.n) end
   return false, r[2]
end

--- The state of one plan, run or rollback: resolved parameters, secrets, the journal's emitter.
-- @param opts `{ target, set, reporter, secrets }`
-- @param mode "plan" | "run" | "rollback"
function M.new_run(rb, opts, mode)
   local target = opts.target
   local decls, values = M.resolve(rb, target, opts.set)
   secrets_mod.hide_sources(decls, values)
   local run = {
      mode = mode, runbook = rb, decls = decls, values = values,
      secrets = opts.secrets or secrets_mod.new(function()
         if opts.reporter.clear then opts.reporter:clear() end
      end), target = target, reporter = opts.reporter,
      effects = 0, since_restart = {}, reverted = {}, records = {}, progress_start = {},
   }
   function run.emit(ev)
      local clean = run.secrets:redact_deep(ev)
      -- journal_only: for the journal (restores, records); report_only: for the reporter (the
      -- journal has its own run/end events); progress is never journaled
      if run.journal and clean.event ~= "progress" and not clean.report_only then
         local j = {}
         for k, v in pairs(clean) do
            if k ~= "detail" and k ~= "journal_only" then j[k] = v end
         end
         run.journal:write(j)
      end
      if not clean.journal_only then
         clean.report_only = nil
         run.reporter:event(clean)
      end
   end
   return run
end

--- Seconds since a sys.clock() reading, to the millisecond.
function M.seconds(t0)
   return math.floor((sys.clock() - t0) * 1000 + 0.5) / 1000
end

--- The message of a failed step: runbook, step, the runbook line, why.
function M.step_failure(run, step, err)
   local where = err.where and (" (" .. err.where .. ")") or ""
   return ("runbook %s, step %s%s: %s"):format(run.runbook.name, step.name, where, err.message)
end

local function server_label(run, ctx)
   if run.conn or run.target:server_info() then
      local ok, d = pcall(function() return ctx.dialect end)
      if ok then return d:describe() end
   end
   return nil
end

-- One step's when, check, apply and verify: its state and reason, or nil, nil, the error.
local function run_step(run, ctx, step, skip_done)
   local planning = run.mode == "plan"
   if skip_done and skip_done[step.name] then return "done", "done in the run this one continues" end
   if step.when then
      local ok, v, why = M.call(step.when, ctx)
      if not ok then return nil, nil, v end
      if not v then
         -- a verification a plan cannot do: the run does it after the changes
         if planning and why then return "later", why end
         return "skipped"
      end
   end
   local done, reason = false, nil
   if step.check then
      local ok, v, why = M.call(step.check, ctx)
      if not ok then return nil, nil, v end
      done, reason = v, why
   end
   if not step.apply then
      if done then return "ok", reason end
      reason = reason or "the check did not pass"
      if not planning then return nil, nil, { message = reason } end
      -- a plan goes on past a gate that would refuse, and says so at the end
      run.refused = run.refused or {}
      table.insert(run.refused, ("%s: %s"):format(step.name, reason))
      return "refused", reason
   end
   if done then return "done", reason end
   local before = run.effects
   local ok, v = M.call(step.apply, ctx)
   if not ok then return nil, nil, v end
   if planning then return "todo", reason end
   local changed = run.effects > before
   if step.verify then
      local vok, good, why = M.call(step.verify, ctx)
      if not vok then return nil, nil, good end
      if not good then return nil, nil, { message = "verify failed" .. (why and (": " .. why) or "") } end
   end
   return changed and "changed" or "unchanged", reason
end

-- Run the selected steps. Returns "ok" | "failed", message | "interrupted".
local function execute(run, ctx, list, counts, skip_done)
   for i, step in ipairs(list) do
      run.step = step.name
      run.emit{ event = "step", step = step.name, state = "start", index = i, total = #list }
      local t0 = sys.clock()
      local state, reason, err = run_step(run, ctx, step, skip_done)
      local seconds = M.seconds(t0)
      if err == ctx_mod.Interrupted then
         run.emit{ event = "step", step = step.name, state = "interrupted", index = i, total = #list,
                   seconds = seconds }
         return "interrupted"
      elseif err then
         local msg = M.step_failure(run, step, err)
         run.emit{ event = "step", step = step.name, state = "failed", index = i, total = #list,
                   seconds = seconds, error = err.message, where = err.where }
         for name in pairs(run.reverted) do
            if name ~= step.name then
               run.emit{ event = "step", step = name, state = "reverted", journal_only = true }
            end
         end
         return "failed", msg, err.bad_input
      end
      counts[state] = (counts[state] or 0) + 1
      run.emit{ event = "step", step = step.name, state = state, index = i, total = #list,
                seconds = seconds, reason = reason }
   end
   run.step = nil
   if run.refused then
      return "failed", ("a run would stop where %s: %s"):format(#run.refused == 1 and "this step refuses" or
         "these steps refuse", table.concat(run.refused, "; "))
   end
   return "ok"
end

local function select_steps(rb, opts)
   local list = rb.steps
   if opts.only and opts.from then errors.usage("--only and --from cannot go together") end
   local name = opts.only or opts.from
   if name then
      local _, i = rb:step(name)
      if not i then
         errors.usage("runbook %s has no step '%s' (steps: %s)", rb.name, name, table.concat(rb:step_names(), ", "))
      end
      list = opts.only and { rb.steps[i] } or table.move(rb.steps, i, #rb.steps, 1, {})
   end
   return list
end

--- The end of a plan, run or rollback: the journal's last line (its status `ended`, default
-- `status`), the result event, and the failure raised (a usage error when `bad`) unless "ok".
function M.finish(run, status, msg, counts, t0, bad, ended)
   if run.journal then
      run.journal:write{ event = "end", status = ended or status, error = msg and run.secrets:redact(msg) }
   end
   run.emit{ event = "result", status = status, error = msg, changed = counts.changed or 0, resumed = counts.resumed,
             todo = counts.todo or 0, done = (counts.done or 0) + (counts.ok or 0) + (counts.unchanged or 0),
             skipped = counts.skipped or 0, seconds = M.seconds(t0),
             journal = run.journal and run.journal.path, report_only = true }
   if status ~= "ok" then (bad and errors.usage or errors.fail)("%s", run.secrets:redact(msg)) end
end

--- Close the run's connection.
function M.close_conn(run)
   if run.conn then
      run.conn:close()
      run.conn = nil
   end
end

--- Plan: run every check, and show what apply would do for each step not done. Changes nothing.
-- @param opts `{ target, set, reporter, only, from, secrets, continues = summary of the journal a
--   resumed run continues (its finished steps and records count) }`
-- @return 0 (raises a failure when a step fails)
function M.plan(rb, opts)
   local run = M.new_run(rb, opts, "plan")
   local skip_done = opts.continues and M.resume_state(run, opts.continues)
   local ctx = ctx_mod.new(run)
   local list = select_steps(rb, opts)
   local t0 = sys.clock()
   run.emit{ event = "run", mode = "plan", runbook = rb.name, target = run.target.label,
             server = server_label(run, ctx), report_only = true }
   local counts = {}
   local status, msg, bad = execute(run, ctx, list, counts, skip_done)
   M.close_conn(run)
   M.finish(run, status, msg, counts, t0, bad)
   return 0, counts
end

--- A read-only context for tools that inspect a target without running a runbook (`myseal check`):
-- parameters, connection, dialect and facts, as a step sees them in plan mode.
-- @param opts `{ target = , set = { "s.k=v" }, runbook = a runbook whose parameters and dialect
--   additions to use (optional), reporter = (optional), mode = "plan" (default) or "check" (plan
--   mode in which verification steps run too) }`
-- @return ctx, close (a function closing the connection), run
function M.context(opts)
   local rb = opts.runbook or runbook_mod.new{ name = "inspect", summary = "inspection",
                                               steps = { { name = "none", check = function() return true end } } }
   local reporter = opts.reporter or report_mod.collect()
   local run = M.new_run(rb, { target = opts.target, set = opts.set, reporter = reporter }, opts.mode or "plan")
   return ctx_mod.new(run), function() M.close_conn(run) end, run
end

local ENDED = { ok = true, ["rolled back"] = true }

-- The newest journal of this runbook on this target and its summary, or nil when there is none.
local function newest(dir, name)
   local path = journal_mod.list(dir, name)[1]
   if not path then return nil end
   local events, err = journal_mod.read(path)
   if not events then errors.fail("%s", err) end
   return path, journal_mod.summary(events)
end

-- The newest unfinished run of this runbook on this target that changed something, or nil: a
-- run that stopped before changing anything (a preflight refused) leaves nothing to continue.
local function unfinished(dir, name)
   local path, s = newest(dir, name)
   if not path or ENDED[s.status] then return nil end
   if not s.pending_restart and not require("myseal.engine.rollback").has_changes(s) then return nil end
   return path, s
end

-- A lock file per server, whatever profile names it: two profiles for one server never run at once.
local function server_lock(run)
   local key = run.target:server_key(run.values)
   if not key then return nil end
   local dir, err = require("myseal.state").dir("servers")
   if not dir then errors.fail("%s", err) end
   local lock
   lock, err = sys.lock(("%s/%s.lock"):format(dir, target_mod.hash(key)))
   if not lock then errors.fail("the server %s is busy: another myseal run works on it (%s)", key, err) end
   return lock
end

--- Lock the target (and its server) for this run: its state directory and the locks.
function M.lock_target(run)
   local dir, err = run.target:state_dir(true)
   if not dir then errors.fail("%s", err) end
   local lock
   lock, err = sys.lock(dir .. "/lock")
   if not lock then errors.fail("%s is busy: %s", run.target.label, err) end
   local slock = server_lock(run)
   return dir, setmetatable({}, { __close = function()
      if slock then slock:release() end
      lock:release()
   end })
end

--- After a kill: the journal of the newest run of `rb` says a restart was under way and the
-- server does not answer: bring it up (engine/rollback.lua recover).
function M.recover(run, dir, rb)
   local path, summary = newest(dir, rb.name)
   if path then require("myseal.engine.rollback").recover(run, summary) end
end

-- Files a killed run may have left: atomic writes' temporary files beside the files it edited,
-- and the target's scratch directory. Removed, and said.
local function remove_leftovers(run, dir, summary)
   local gone, seen = {}, {}
   for _, list in pairs(summary and summary.effects or {}) do
      for _, fx in ipairs(list) do
         local d, base = (fx.path or ""):match("^(.*)/([^/]+)$")
         if d and not seen[fx.path] then
            seen[fx.path] = true
            for _, n in ipairs(sys.dir(d) or {}) do
               local leftover = n:sub(1, #base + 8) == base .. ".myseal-" and #n == #base + 14
               if leftover and os.remove(d .. "/" .. n) then gone[#gone + 1] = d .. "/" .. n end
            end
         end
      end
   end
   local scratch = dir .. "/tmp"
   for _, n in ipairs(sys.dir(scratch) or {}) do
      if sys.rmtree(scratch .. "/" .. n) then gone[#gone + 1] = scratch .. "/" .. n end
   end
   if #gone > 0 then
      run.emit{ event = "log", level = "warn", message = ("removed what an interrupted run left: %s")
         :format(table.concat(gone, ", ")) }
   end
end

local FINISHED = { done = true, changed = true, unchanged = true, ok = true, skipped = true }

--- What a resumed run takes from the journal it continues: its finished steps (returned) and
-- its records and changes since the last restart (into `run`).
function M.resume_state(run, s)
   local done = {}
   for name, state in pairs(s.steps) do
      if FINISHED[state] then done[name] = true end
   end
   for k, v in pairs(s.records or {}) do run.records[k] = v end
   for _, fx in ipairs(s.since_restart) do run.since_restart[#run.since_restart + 1] = fx end
   return done
end

-- The parameters shown in a journal: scalars, redacted.
local function shown_params(run)
   local shown = {}
   for k, v in pairs(run.values) do
      if type(v) ~= "table" then shown[k] = v end
   end
   return run.secrets:redact_deep(shown)
end

-- What differs between the parameters of the run being continued and these: list of lines.
local function changed_params(run, summary)
   local before, now, out = summary.params or {}, shown_params(run), {}
   local names = {}
   for k in pairs(before) do names[k] = true end
   for k in pairs(now) do names[k] = true end
   for k in pairs(names) do
      if before[k] ~= now[k] then
         out[#out + 1] = ("%s (was %s, now %s)"):format(k, tostring(before[k]), tostring(now[k]))
      end
   end
   table.sort(out)
   return out
end

--- Run: confirm (unless opts.yes), lock the target, journal every effect, run the steps.
-- @param opts `{ target, set, reporter, yes, resume, only, from, interactive }`
-- @return 0 (raises a failure when a step fails or the run is interrupted)
function M.run(rb, opts)
   if opts.target:read_only() then
      errors.usage("run needs a live server: %s (use plan)", opts.target:read_only())
   end
   if opts.resume and (opts.only or opts.from) then
      errors.usage("--resume continues where the last run stopped: no --only or --from with it")
   end
   local run = M.new_run(rb, opts, "run")
   local again = ("%s %s"):format(rb.name, run.target.args)
   local dir, lock <close> = M.lock_target(run)
   local last, summary = unfinished(dir, rb.name)
   if last and not opts.resume then
      errors.fail("the last run of %s on %s did not finish (%s%s; journal %s): continue it with "
         .. "'myseal run %s --resume', or undo it with 'myseal rollback %s'", rb.name, run.target.label,
         summary.status, summary.stopped_at and (" in step " .. summary.stopped_at) or "", last, again, again)
   end
   local changed = last and changed_params(run, summary) or {}
   if #changed > 0 then
      local what = ("the parameters differ from the run this one continues: %s"):format(table.concat(changed, "; "))
      if not opts.yes and not opts.interactive then
         errors.usage("--resume: %s; run with the same parameters, or confirm with --yes", what)
      elseif not opts.yes and not opts.reporter:confirm(what .. ". Continue with the new ones?") then
         errors.fail("run: not confirmed; nothing was changed")
      end
      opts.reporter:event{ event = "log", level = "warn", message = what }
   end
   if not opts.yes then
      -- what would it do? (the plan agrees with the run: a resumed run's finished steps count as done)
      local quiet = not opts.interactive
      local _, counts = M.plan(rb, { target = opts.target, set = opts.set,
         reporter = quiet and report_mod.collect() or opts.reporter, only = opts.only, from = opts.from,
         secrets = run.secrets, continues = last and summary or nil })
      if (counts.todo or 0) == 0 and not (last and summary.pending_restart) then
         if quiet then
            opts.reporter:event{ event = "result", status = "ok", changed = 0, todo = 0, done = counts.done or 0,
                                 skipped = counts.skipped or 0, seconds = 0 }
         end
         if not last then return 0 end
      elseif quiet then
         errors.usage("run changes %s: confirm with --yes (there is no terminal to ask on)", run.target.label)
      elseif not opts.reporter:confirm(("Apply these changes to %s?"):format(run.target.label)) then
         errors.fail("run: not confirmed; nothing was changed")
      end
   end
   local ctx = ctx_mod.new(run)
   local list = select_steps(rb, opts)
   local skip_done
   local err
   if last then
      run.journal, err = journal_mod.open(last)
      if not run.journal then errors.fail("%s", err) end
      if run.journal.repaired then run.emit{ event = "log", level = "warn", message = run.journal.repaired } end
      skip_done = M.resume_state(run, summary)
      run.journal:write{ event = "resume", pid = sys.getpid(), user = sys.user().name, params = shown_params(run) }
      remove_leftovers(run, dir, summary)
      M.recover(run, dir, rb)
   else
      local _, previous = newest(dir, rb.name)
      remove_leftovers(run, dir, previous)
      run.journal, err = journal_mod.create(dir, rb.name)
      if not run.journal then errors.fail("%s", err) end
      run.journal:write(run.secrets:redact_deep{ event = "run", runbook = rb.name, file = rb.file,
         target = run.target.label, pid = sys.getpid(), user = sys.user().name, host = sys.hostname(),
         steps = rb:step_names(), params = shown_params(run) })
   end
   if opts.resume and not last then
      opts.reporter:event{ event = "log", level = "info", message = "no unfinished run to resume: starting afresh" }
   end
   run.scratch = dir .. "/tmp"
   local t0 = sys.clock()
   sys.trap_interrupt(true)
   run.emit{ event = "run", mode = "run", runbook = rb.name, target = run.target.label,
             server = server_label(run, ctx), report_only = true }
   local counts = {}
   local ok, status, msg, bad = pcall(execute, run, ctx, list, counts, skip_done)
   sys.trap_interrupt(false)
   M.close_conn(run)
   if not ok then
      run.journal:write{ event = "end", status = "failed", error = run.secrets:redact(tostring(status)) }
      error(status, 0)
   end
   if status == "interrupted" then
      msg = ("interrupted in step %s, between two changes; continue with 'myseal run %s --resume'")
         :format(run.step, again)
   end
   if last and status == "ok" then counts.resumed = true end
   M.finish(run, status, msg, counts, t0, bad)
   return 0
end

--- Roll back the last run of a runbook on the target (engine/rollback.lua).
-- @param opts `{ target, set, reporter, yes, interactive }`
-- @return 0
function M.rollback(rb, opts)
   return require("myseal.engine.rollback").rollback(M, rb, opts)
end

return M
