--- Putting things back, both ways: the automatic revert when the server does not come back
-- after a restart (ctx:restart_server calls revert_restart), and `myseal rollback`, which undoes
-- the last run of a runbook on a target from its journal.
-- @module myseal.engine.rollback
local sys = require "sys"
local errors = require "myseal.errors"
local journal_mod = require "myseal.engine.journal"

local M = {}

--- Put one file effect back from its journal record: the backup's content (mode and owner
-- kept), or no file when there was none; directories it created go if empty.
-- @param run the engine's run state
-- @param fx a file, remove or mkdir effect
-- @return true | nil, message
function M.restore_file(run, fx)
   if fx.kind == "mkdir" then
      for i = #fx.created, 1, -1 do os.remove(fx.created[i]) end   -- only empty ones go
      run.emit{ event = "restore", kind = fx.kind, path = fx.path, journal_only = true }
      return true
   end
   if fx.backup then
      local data, err = sys.read_file(fx.backup)
      if not data then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
      local st = sys.stat(fx.backup)
      local ok
      ok, err = sys.write_file(fx.path, data, { mode = st and st.mode })
      if ok and st then sys.chown(fx.path, st.uid, st.gid) end
      if not ok then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
   elseif not fx.existed then
      local ok, err = os.remove(fx.path)
      if not ok and sys.stat(fx.path) then return nil, ("cannot remove %s: %s"):format(fx.path, err) end
   end
   run.emit{ event = "restore", kind = fx.kind, path = fx.path, backup = fx.backup, journal_only = true }
   return true
end

--- The server did not come back after a restart: put back every file changed since the last
-- good restart, start it again, and say what happened (the step then fails with it).
-- @param ctx the step's context
-- @param why why the restart failed
-- @param log_hint the server's log_error, read before the restart
-- @return the message
function M.revert_restart(ctx, why, log_hint)
   local run = ctx._run
   local restored, problems = {}, {}
   for i = #run.since_restart, 1, -1 do
      local fx = run.since_restart[i]
      local ok, err = M.restore_file(run, fx)
      if ok then restored[#restored + 1] = fx.path else problems[#problems + 1] = err end
      if fx.step then run.reverted[fx.step] = true end
   end
   run.since_restart = {}
   local again, aerr = run.target:restart(run.values, run.secrets, log_hint)
   local msg = ("the server did not restart: %s"):format(why)
   if #restored > 0 then
      msg = msg .. ("\nrestored %s"):format(table.concat(restored, ", "))
   end
   if #problems > 0 then msg = msg .. "\n" .. table.concat(problems, "\n") end
   if again then
      run.emit{ event = "restarted", journal_only = true }
      msg = msg .. "\nthe server is running again with its previous configuration"
   else
      msg = msg .. ("\nand it did not start with the previous configuration either: %s"):format(aerr)
   end
   return msg
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

-- The newest run of `rb` on the target that left changes and was not rolled back: path, summary.
local function last_changes(dir, rb)
   for _, p in ipairs(journal_mod.list(dir, rb.name)) do
      local events, err = journal_mod.read(p)
      if not events then errors.fail("%s", err) end
      local sum = journal_mod.summary(events)
      -- newest first: runs already rolled back and runs that changed nothing are passed over,
      -- so rolling back again goes one run further back
      if sum.status ~= "rolled back" and has_changes(sum) then return p, sum end
   end
   return nil
end

--- Roll back the last run of a runbook on the target: for each step that changed something,
-- newest first, put its files back from their backups and call its undo; restart the server
-- when the run had restarted it. Refuses when a step says it cannot be undone.
-- @param engine the engine (myseal.engine): its run state, lock and step calls
-- @param rb runbook
-- @param opts `{ target, set, reporter, yes, interactive }`
-- @return 0
function M.rollback(engine, rb, opts)
   local why = opts.target:read_only()
   if why then errors.usage("rollback needs a live server: %s", why) end
   local run = engine.new_run(rb, opts, "rollback")
   local dir, lock <close> = engine.lock_target(run)
   local path, s = last_changes(dir, rb)
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
   local ctx = require("myseal.engine.ctx").new(run)
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
            local ok, rerr = M.restore_file(run, fx)
            if not ok then failure = ("runbook %s, step %s: %s"):format(rb.name, t.name, rerr) break end
            run.emit{ event = "effect", kind = "restore", path = fx.path, summary = "restore " .. fx.path }
         end
      end
      if not failure and t.step and type(t.step.undo) == "function" then
         local ok, e = engine.call(t.step.undo, ctx)
         if not ok then failure = engine.step_failure(run, t.step, e) end
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
                   seconds = engine.seconds(t1) }
         break
      end
      counts.changed = (counts.changed or 0) + 1
      run.emit{ event = "step", step = t.name, state = "rolled back", index = i, total = #todo,
                seconds = engine.seconds(t1) }
   end
   if not failure and restart then
      run.step = nil
      engine.close_conn(run)
      local how = run.target:restart_how(run.values)
      run.emit{ event = "effect", kind = "restart", how = how, summary = "restart the server: " .. how }
      local ok, rerr = run.target:restart(run.values, run.secrets)
      if ok then
         run.emit{ event = "restarted", journal_only = true }
      else
         failure = ("rollback of %s: the server did not restart: %s"):format(rb.name, rerr)
      end
   end
   engine.close_conn(run)
   local status = failure and "failed" or "rolled back"
   run.journal:write{ event = "end", status = status, error = failure and run.secrets:redact(failure) }
   engine.finish(run, failure and "failed" or "ok", failure, counts, t0)
   run.journal:close()
   if failure then errors.fail("%s", run.secrets:redact(failure)) end
   return 0
end

return M
