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
local runbook_mod = require "myseal.runbook"
local report_mod = require "myseal.engine.report"

local M = {}

--- The declarations a runbook runs with: myseal's own ([server], [connection], [site]) and its own.
-- @param rb runbook
-- @return declarations
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
-- @return layer
function M.set_layer(list)
   local layer = { label = "--set", strict = true, values = {} }
   for _, s in ipairs(list or {}) do
      local name, value = s:match("^([%a][%w_]*%.[^=]+)=(.*)$")
      if not name then errors.usage("--set %s: write --set section.key=value", s) end
      layer.values[name] = { value = value, where = "--set " .. name }
   end
   return layer
end

--- Resolve a runbook's parameters for a target (defaults < target < profile < --set).
-- @param rb runbook
-- @param target target (or nil)
-- @param set list of "section.key=value"
-- @param partial when true, required parameters may stay unset (for `show`)
-- @return decls, values, origins (raises a usage error on a bad value)
function M.resolve(rb, target, set, partial)
   local decls = M.declarations(rb)
   local layers = {}
   for _, l in ipairs(target and target.layers or {}) do layers[#layers + 1] = l end
   layers[#layers + 1] = M.set_layer(set)
   local values, origins = params.resolve(decls, layers, partial)
   if not values then errors.usage("%s", origins) end
   return decls, values, origins
end

-- An error from a step function, with the line in the runbook that raised it.
local function handler(e)
   if e == ctx_mod.Interrupted then return e end
   local msg
   if getmetatable(e) == ctx_mod.Failure or errors.is(e) then
      msg = e.message
   else
      msg = tostring(e)
   end
   local where
   for level = 2, 200 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if runbook_mod.is_runbook_source(info.source) and info.currentline > 0 then
         where = ("%s:%d"):format(info.short_src, info.currentline)
         break
      end
   end
   if type(e) == "string" then
      -- the position Lua put in front says the same as `where`, or points into myseal's code
      local stripped = msg:gsub("^[^\n:]+:%d+: ", "", 1)
      if where or not os.getenv("MYSEAL_DEBUG") then msg = stripped end
      if os.getenv("MYSEAL_DEBUG") then msg = debug.traceback(msg, 2) end
   end
   return { message = msg, where = where }
end

local function call(fn, ctx)
   local r = table.pack(xpcall(fn, handler, ctx))
   if r[1] then return true, table.unpack(r, 2, r.n) end
   return false, r[2]
end

local function new_run(rb, opts, mode)
   local target = opts.target
   local decls, values, origins = M.resolve(rb, target, opts.set)
   local run = {
      mode = mode, runbook = rb, decls = decls, values = values, origins = origins,
      secrets = opts.secrets or secrets_mod.new(function()
         if opts.reporter.clear then opts.reporter:clear() end
      end), target = target, reporter = opts.reporter,
      effects = 0, files = {}, since_restart = {}, reverted = {}, records = {}, progress_start = {},
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
-- @param t0 start
-- @return number
function M.seconds(t0)
   return math.floor((sys.clock() - t0) * 1000 + 0.5) / 1000
end

local function step_failure(run, step, err)
   local where = err.where and (" (" .. err.where .. ")") or ""
   return ("runbook %s, step %s%s: %s"):format(run.runbook.name, step.name, where, err.message)
end

local function server_label(run, ctx)
   if run.target.kind == "described" or run.conn then
      local ok, d = pcall(function() return ctx.dialect end)
      if ok then return d:describe() end
   end
   return nil
end

-- Run the selected steps. Returns "ok" | "failed", message | "interrupted".
local function execute(run, ctx, list, counts, skip_done)
   local planning = run.mode == "plan"
   for i, step in ipairs(list) do
      run.step = step.name
      run.emit{ event = "step", step = step.name, state = "start", index = i, total = #list }
      local t0 = sys.clock()
      local state, reason, err
      if skip_done and skip_done[step.name] then
         state, reason = "done", "done in the run this one continues"
      end
      if not state and step.when then
         local ok, v = call(step.when, ctx)
         if not ok then err = v elseif not v then state = "skipped" end
      end
      if not state and not err then
         local done = false
         if step.check then
            local ok, v, why = call(step.check, ctx)
            if not ok then err = v else done, reason = v, why end
         end
         if err then
            -- reported below
         elseif not step.apply then
            if done then state = "ok" else err = { message = reason or "the check did not pass" } end
         elseif done then
            state = "done"
         else
            local before = run.effects
            local ok, v = call(step.apply, ctx)
            if not ok then
               err = v
            elseif planning then
               state = "todo"
            else
               local changed = run.effects > before
               if step.verify then
                  local vok, good, why = call(step.verify, ctx)
                  if not vok then
                     err = good
                  elseif not good then
                     err = { message = "verify failed" .. (why and (": " .. why) or "") }
                  end
               end
               state = changed and "changed" or "unchanged"
            end
         end
      end
      local seconds = M.seconds(t0)
      if err == ctx_mod.Interrupted then
         run.emit{ event = "step", step = step.name, state = "interrupted", index = i, total = #list,
                   seconds = seconds }
         return "interrupted"
      elseif err then
         local msg = step_failure(run, step, err)
         run.emit{ event = "step", step = step.name, state = "failed", index = i, total = #list,
                   seconds = seconds, error = err.message, where = err.where }
         for name in pairs(run.reverted) do
            if name ~= step.name then
               run.emit{ event = "step", step = name, state = "reverted", journal_only = true }
            end
         end
         return "failed", msg
      end
      counts[state] = (counts[state] or 0) + 1
      run.emit{ event = "step", step = step.name, state = state, index = i, total = #list,
                seconds = seconds, reason = reason }
   end
   run.step = nil
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

local function finish(run, status, msg, counts, t0)
   run.emit{ event = "result", status = status, error = msg, changed = counts.changed or 0,
             todo = counts.todo or 0, done = (counts.done or 0) + (counts.ok or 0) + (counts.unchanged or 0),
             skipped = counts.skipped or 0, seconds = M.seconds(t0),
             journal = run.journal and run.journal.path, report_only = true }
end

local function close_conn(run)
   if run.conn then
      run.conn:close()
      run.conn = nil
   end
end

--- Plan: run every check, and show what apply would do for each step not done. Changes nothing.
-- @param rb runbook
-- @param opts `{ target, set, reporter, only, from, secrets }`
-- @return 0 (raises a failure when a step fails)
function M.plan(rb, opts)
   local run = new_run(rb, opts, "plan")
   local ctx = ctx_mod.new(run)
   local list = select_steps(rb, opts)
   local t0 = sys.clock()
   run.emit{ event = "run", mode = "plan", runbook = rb.name, target = run.target.label,
             server = server_label(run, ctx), report_only = true }
   local counts = {}
   local status, msg = execute(run, ctx, list, counts)
   close_conn(run)
   finish(run, status, msg, counts, t0)
   if status ~= "ok" then errors.fail("%s", run.secrets:redact(msg)) end
   return 0, counts
end

--- A read-only context for tools that inspect a target without running a runbook (`myseal check`):
-- parameters, connection, dialect and facts, as a step sees them in plan mode.
-- @param opts `{ target = , set = { "s.k=v" }, runbook = a runbook whose parameters and dialect
--   additions to use (optional), reporter = (optional) }`
-- @return ctx, close (a function closing the connection)
function M.context(opts)
   local rb = opts.runbook or runbook_mod.new{ name = "inspect", summary = "inspection",
                                               steps = { { name = "none", check = function() return true end } } }
   local run = new_run(rb, { target = opts.target, set = opts.set, reporter = opts.reporter or report_mod.collect() },
                       "plan")
   return ctx_mod.new(run), function() close_conn(run) end
end

local ENDED = { ok = true, ["rolled back"] = true }

-- The newest unfinished run of this runbook on this target, or nil.
local function unfinished(dir, name)
   local path = journal_mod.list(dir, name)[1]
   if not path then return nil end
   local events, err = journal_mod.read(path)
   if not events then errors.fail("%s", err) end
   local s = journal_mod.summary(events)
   if ENDED[s.status] then return nil end
   return path, s
end

local function lock_target(run)
   local dir, err = run.target:state_dir(true)
   if not dir then errors.fail("%s", err) end
   local lock
   lock, err = sys.lock(dir .. "/lock")
   if not lock then errors.fail("%s is busy: %s", run.target.label, err) end
   return dir, lock
end

local function resume_state(run, s)
   local done = {}
   for name, state in pairs(s.steps) do
      if state == "done" or state == "changed" or state == "unchanged" or state == "ok" or state == "skipped" then
         done[name] = true
      end
   end
   for k, v in pairs(s.records or {}) do run.records[k] = v end
   for _, fx in ipairs(s.since_restart) do run.since_restart[#run.since_restart + 1] = fx end
   return done
end

--- Run: confirm (unless opts.yes), lock the target, journal every effect, run the steps.
-- @param rb runbook
-- @param opts `{ target, set, reporter, yes, resume, only, from, interactive }`
-- @return 0 (raises a failure when a step fails or the run is interrupted)
function M.run(rb, opts)
   if opts.target.kind == "described" then
      errors.usage("run needs a live server: %s is only described (use plan)", opts.target.label)
   end
   if opts.resume and (opts.only or opts.from) then
      errors.usage("--resume continues where the last run stopped: no --only or --from with it")
   end
   local run = new_run(rb, opts, "run")
   local dir, lock <close> = lock_target(run)
   local last, summary = unfinished(dir, rb.name)
   if last and not opts.resume then
      errors.fail("the last run of %s on %s did not finish (%s%s; journal %s): continue it with "
         .. "'myseal run %s --resume', or undo it with 'myseal rollback %s'", rb.name, run.target.label,
         summary.status, summary.stopped_at and (" in step " .. summary.stopped_at) or "", last, rb.name, rb.name)
   end
   if not opts.yes then
      if not opts.interactive then
         errors.usage("run changes %s: confirm with --yes (there is no terminal to ask on)", run.target.label)
      end
      local _, counts = M.plan(rb, { target = opts.target, set = opts.set, reporter = opts.reporter,
         only = opts.only, from = opts.from, secrets = run.secrets })
      if (counts.todo or 0) == 0 and not last then return 0 end
      if not opts.reporter:confirm(("Apply these changes to %s?"):format(run.target.label)) then
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
      skip_done = resume_state(run, summary)
      run.journal:write{ event = "resume", pid = sys.getpid() }
   else
      run.journal, err = journal_mod.create(dir, rb.name)
      if not run.journal then errors.fail("%s", err) end
      local shown = {}
      for k, v in pairs(run.values) do
         if type(v) ~= "table" then shown[k] = v end
      end
      run.journal:write(run.secrets:redact_deep{ event = "run", runbook = rb.name, file = rb.file,
         target = run.target.label, pid = sys.getpid(), user = sys.user().name, host = sys.hostname(),
         steps = rb:step_names(), params = shown })
   end
   if opts.resume and not last then
      opts.reporter:event{ event = "log", level = "info", message = "no unfinished run to resume: starting afresh" }
   end
   local t0 = sys.clock()
   sys.trap_interrupt(true)
   run.emit{ event = "run", mode = "run", runbook = rb.name, target = run.target.label,
             server = server_label(run, ctx), report_only = true }
   local counts = {}
   local ok, status, msg = pcall(execute, run, ctx, list, counts, skip_done)
   sys.trap_interrupt(false)
   close_conn(run)
   if not ok then
      run.journal:write{ event = "end", status = "failed", error = run.secrets:redact(tostring(status)) }
      run.journal:close()
      error(status, 0)
   end
   if status == "interrupted" then
      msg = ("interrupted in step %s; continue with 'myseal run %s --resume'"):format(run.step, rb.name)
   end
   run.journal:write{ event = "end", status = status, error = msg and run.secrets:redact(msg) }
   finish(run, status, msg, counts, t0)
   run.journal:close()
   if status ~= "ok" then errors.fail("%s", run.secrets:redact(msg)) end
   return 0
end

-- Did the run leave a change in place: an effect not put back already (a restart or a wait
-- alone changes nothing)?
local function has_changes(sum)
   for _, list in pairs(sum.effects) do
      for _, fx in ipairs(list) do
         if not fx.restored and fx.kind ~= "restart" and fx.kind ~= "wait" then return true end
      end
   end
   return false
end

--- Roll back the last run of a runbook on the target: for each step that changed something,
-- newest first, put its files back from their backups and call its undo; restart the server
-- when the run had restarted it. Refuses when a step says it cannot be undone.
-- @param rb runbook
-- @param opts `{ target, set, reporter, yes, interactive }`
-- @return 0
function M.rollback(rb, opts)
   if opts.target.kind == "described" then
      errors.usage("rollback needs a live server: %s is only described", opts.target.label)
   end
   local run = new_run(rb, opts, "rollback")
   local dir, lock <close> = lock_target(run)
   local path, s
   for _, p in ipairs(journal_mod.list(dir, rb.name)) do
      local events, err = journal_mod.read(p)
      if not events then errors.fail("%s", err) end
      local sum = journal_mod.summary(events)
      -- newest first: runs already rolled back and runs that changed nothing are passed over,
      -- so rolling back again goes one run further back
      if sum.status ~= "rolled back" and has_changes(sum) then
         path, s = p, sum
         break
      end
   end
   if not path then
      run.reporter:event{ event = "log", level = "info",
         message = ("no run of %s on %s to roll back"):format(rb.name, run.target.label) }
      return 0
   end
   -- steps that changed something, newest first
   local todo = {}
   for i = #s.order, 1, -1 do
      local name = s.order[i]
      local fx = s.effects[name]
      if fx and #fx > 0 then
         local step = rb:step(name)
         if step and type(step.undo) == "string" then
            errors.fail("cannot roll back %s: step %s cannot be undone: %s", rb.name, name, step.undo)
         end
         todo[#todo + 1] = { name = name, step = step, effects = fx }
      end
   end
   if not opts.yes then
      if not opts.interactive then
         errors.usage("rollback changes %s: confirm with --yes (there is no terminal to ask on)", run.target.label)
      end
      for _, t in ipairs(todo) do
         local files = {}
         for _, fx in ipairs(t.effects) do
            if fx.path and not fx.restored then files[#files + 1] = fx.path end
         end
         opts.reporter:event{ event = "log", level = "info", message = ("%s: restore %s%s"):format(t.name,
            #files > 0 and table.concat(files, ", ") or "no files",
            t.step and type(t.step.undo) == "function" and ", then undo" or "") }
      end
      if not opts.reporter:confirm(("Roll back %s on %s (journal %s)?"):format(rb.name, run.target.label, path)) then
         errors.fail("rollback: not confirmed; nothing was changed")
      end
   end
   local err
   run.journal, err = journal_mod.open(path)
   if not run.journal then errors.fail("%s", err) end
   run.journal:write{ event = "rollback", pid = sys.getpid(), user = sys.user().name }
   local ctx = ctx_mod.new(run)
   local t0 = sys.clock()
   run.emit{ event = "run", mode = "rollback", runbook = rb.name, target = run.target.label, report_only = true }
   local restart = false
   local counts = {}
   local failure
   for i, t in ipairs(todo) do
      run.step = t.name
      run.emit{ event = "step", step = t.name, state = "start", index = i, total = #todo }
      local t1 = sys.clock()
      for j = #t.effects, 1, -1 do
         local fx = t.effects[j]
         if fx.kind == "restart" then
            restart = true
         elseif (fx.kind == "file" or fx.kind == "remove" or fx.kind == "mkdir") and not fx.restored then
            local ok, rerr = ctx_mod.restore_file(ctx, fx)
            if not ok then failure = ("runbook %s, step %s: %s"):format(rb.name, t.name, rerr) break end
            run.emit{ event = "effect", kind = "restore", path = fx.path, summary = "restore " .. fx.path }
         end
      end
      if not failure and t.step and type(t.step.undo) == "function" then
         local ok, e = call(t.step.undo, ctx)
         if not ok then failure = step_failure(run, t.step, e) end
      elseif not failure then
         local others = 0
         for _, fx in ipairs(t.effects) do
            if fx.kind == "sql" or fx.kind == "run" then others = others + 1 end
         end
         if others > 0 then
            run.emit{ event = "log", level = "warn", message = ("%d SQL statement(s) or command(s) of step %s "
               .. "stay as they are: the step has no undo"):format(others, t.name) }
         end
      end
      if failure then
         run.emit{ event = "step", step = t.name, state = "failed", index = i, total = #todo,
                   seconds = M.seconds(t1) }
         break
      end
      counts.changed = (counts.changed or 0) + 1
      run.emit{ event = "step", step = t.name, state = "rolled back", index = i, total = #todo,
                seconds = M.seconds(t1) }
   end
   if not failure and restart then
      run.step = nil
      close_conn(run)
      local how = run.target:restart_how(run.values)
      run.emit{ event = "effect", kind = "restart", how = how, summary = "restart the server: " .. tostring(how) }
      local ok, rerr = run.target:restart(run.values, run.secrets)
      if ok then
         run.emit{ event = "restarted", journal_only = true }
      else
         failure = ("rollback of %s: the server did not restart: %s"):format(rb.name, rerr)
      end
   end
   close_conn(run)
   local status = failure and "failed" or "rolled back"
   run.journal:write{ event = "end", status = status, error = failure and run.secrets:redact(failure) }
   finish(run, failure and "failed" or "ok", failure, counts, t0)
   run.journal:close()
   if failure then errors.fail("%s", run.secrets:redact(failure)) end
   return 0
end

return M
