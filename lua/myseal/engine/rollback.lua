--- Putting things back, both ways: the automatic revert when the server does not come back
-- after a restart (ctx:restart_server calls revert_restart), and `myseal rollback`, which undoes
-- the last run of a runbook on a target from its journal.
-- @module myseal.engine.rollback
local sys = require "sys"
local errors = require "myseal.errors"
local journal_mod = require "myseal.engine.journal"
local count = require("myseal.text").count

local M = {}

local OCTAL_600 = tonumber("600", 8)

-- Where key material goes when a rollback takes it out of the way: beside it, never deleted.
local function aside_name(path)
   return journal_mod.unused_name(("%s.set-aside-%s"):format(path, os.date("%Y%m%d-%H%M%S")), "")
end

--- Put one file effect back from its journal record: the backup's content with the file's old
-- mode and owner, or no file when there was none; directories it created go if empty. Key
-- material is never removed or overwritten: a revert leaves it where it is, a rollback moves a
-- key file the run made aside (0600) and says where.
-- @param run the engine's run state
-- @param fx a file, remove or mkdir effect
-- @param how "revert" (a failed restart) or "rollback"
-- @return note (what happened, for messages) | nil, message
function M.restore_file(run, fx, how)
   local function restored(note, aside)
      run.emit{ event = "restore", kind = fx.kind, path = fx.path, backup = fx.backup, aside = aside,
                journal_only = true }
      return note
   end
   if fx.key_material and not fx.attrs_only then
      if how ~= "rollback" or fx.existed or not sys.stat(fx.path) then
         return ("%s kept (key material: the server may have used it)"):format(fx.path)
      end
      local aside = aside_name(fx.path)
      local ok, err = os.rename(fx.path, aside)
      if not ok then return nil, ("cannot move the key material %s aside: %s"):format(fx.path, err) end
      sys.chmod(aside, OCTAL_600)
      return restored(("%s moved aside to %s (key material is never deleted)"):format(fx.path, aside), aside)
   end
   if fx.kind == "mkdir" then
      local gone = {}
      for i = #fx.created, 1, -1 do   -- only empty ones go
         if os.remove(fx.created[i]) then gone[#gone + 1] = fx.created[i] end
      end
      return restored(#gone == 0 and fx.path .. " kept (not empty)" or "removed " .. table.concat(gone, ", "))
   end
   if fx.attrs_only then
      local ok, err = true, nil
      if fx.old_mode then ok, err = sys.chmod(fx.path, tonumber(fx.old_mode, 8)) end
      if ok and fx.old_uid then ok, err = sys.chown(fx.path, fx.old_uid, fx.old_gid) end
      if not ok then return nil, ("cannot restore the mode and owner of %s: %s"):format(fx.path, err) end
      return restored(("restored the mode and owner of %s"):format(fx.path))
   end
   if fx.backup then
      local data, err = sys.read_file(fx.backup)
      if not data then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
      local st = sys.stat(fx.backup)
      local mode = fx.old_mode and tonumber(fx.old_mode, 8) or (st and st.mode)
      local ok
      ok, err = sys.write_file(fx.path, data, { mode = mode })
      if not ok then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
      local uid, gid = fx.old_uid or (st and st.uid), fx.old_gid or (st and st.gid)
      if uid then sys.chown(fx.path, uid, gid) end
   elseif not fx.existed then
      local ok, err = os.remove(fx.path)
      if not ok and sys.stat(fx.path) then return nil, ("cannot remove %s: %s"):format(fx.path, err) end
   end
   return restored("restored " .. fx.path)
end

-- Put back the effects of `list` (newest first); what it did, then what it could not do, go
-- into `lines`.
local function put_back(run, list, lines)
   local problems = {}
   for i = #list, 1, -1 do
      local fx = list[i]
      if not fx.restored then
         local note, err = M.restore_file(run, fx, "revert")
         if note then
            lines[#lines + 1] = note
            if not fx.key_material then fx.restored = true end
         else
            problems[#problems + 1] = err
         end
         if fx.step then run.reverted[fx.step] = true end
      end
   end
   table.move(problems, 1, #problems, #lines + 1, lines)
end

local function is_up(run)
   local conn = run.target:connect(run.values, run.secrets)
   if conn then conn:close() return true end
   return false
end

-- The content each kept change (`keep`) left its file with: the backup of the next change to
-- the same file, or the file as it was before the revert began. path -> content.
local function kept_contents(list)
   local out = {}
   for i, fx in ipairs(list) do
      if fx.keep and fx.kind == "file" and not fx.restored then
         local content = sys.read_file(fx.path)
         for j = i + 1, #list do
            local later = list[j]
            if later.path == fx.path and not later.keep and later.backup then
               content = sys.read_file(later.backup)
               break
            end
         end
         out[fx.path] = { content = content, fx = fx }
      end
   end
   return out
end

--- The server did not come back after a restart: bring it up again, and say exactly what was
-- tried and what the server logged.
--   0. the restart command failed before stopping the server: the files are put back, no restart;
--   1. every file changed since the last good restart is put back (key material stays where it
--      is: it is never removed) and the server is started;
--   2. when that does not start and some changes were `keep` (the keyring's options: once InnoDB
--      has started with a key it may have written its redo log with it, and the old configuration
--      then cannot start), those are brought back and the server is started again;
-- then the step fails with the whole story.
-- @param run the engine's run state
-- @param why why the restart failed
-- @param log_hint the server's log_error, read before the restart
-- @param list the effects since the last good restart (default run.since_restart)
-- @return message, up (boolean)
function M.revert_restart(run, why, log_hint, list)
   list = list or run.since_restart
   local lines = { ("the server did not restart: %s"):format(why) }
   local kept = kept_contents(list)
   local up = is_up(run)
   put_back(run, list, lines)
   if up then
      lines[#lines + 1] = "the server was not stopped and runs as before; its files are back as they were"
   else
      local ok, err = run.target:restart(run.values, run.secrets, log_hint)
      if ok then
         lines[#lines + 1] = "the server is running again with its previous configuration"
         up = true
      elseif next(kept) then
         lines[#lines + 1] = "with its previous configuration it did not start either: " .. err
         lines[#lines + 1] = "so the changes it may already have used are back:"
         for path, k in pairs(kept) do
            local wok, werr = sys.write_file(path, k.content or "", { mode = k.fx.mode and tonumber(k.fx.mode, 8) })
            if wok then
               k.fx.restored = nil
               run.emit{ event = "reapplied", path = path, journal_only = true }
               lines[#lines + 1] = ("%s: %s"):format(path, k.fx.keep)
            else
               lines[#lines + 1] = ("cannot write %s back: %s"):format(path, werr)
            end
         end
         ok, err = run.target:restart(run.values, run.secrets, log_hint)
         if ok then
            lines[#lines + 1] = "the server is running again with its previous configuration and the keyring"
            up = true
         end
      end
      if not up then
         lines[#lines + 1] = "and it did not start: " .. err
         lines[#lines + 1] = "the server is down: the key material and every backup are in place (see above); "
            .. "start it by hand with the configuration that fits its data"
      end
   end
   if up then
      run.emit{ event = "restarted", journal_only = true }
      run.since_restart = {}
   end
   return table.concat(lines, "\n"), up
end

--- Before a resumed run or a rollback goes on: when the journal says the last run was killed
-- during a restart and the server does not answer, start it with the new configuration, else
-- revert as revert_restart does. Raises (myseal.errors) when it stays down.
-- @param run the engine's run state
-- @param summary the journal's summary (journal.summary)
function M.recover(run, summary)
   if not summary.pending_restart or is_up(run) then return end
   run.emit{ event = "log", level = "warn", message = "the last run stopped during a restart and the server does "
      .. "not answer: starting it with the new configuration" }
   local ok, err = run.target:restart(run.values, run.secrets)
   if ok then
      run.emit{ event = "restarted", journal_only = true }
      run.since_restart = {}   -- what came before runs now: a later failed restart leaves it
      run.emit{ event = "log", level = "info", message = "the server is up with the new configuration" }
      return
   end
   local msg, up = M.revert_restart(run, err, nil, summary.since_restart)
   run.emit{ event = "log", level = up and "warn" or "error", message = msg }
   if not up then errors.fail("%s", run.secrets:redact(msg)) end
end

-- Is this effect's change still in place: not put back already (a restart or a wait alone
-- changes nothing)?
local function in_place(fx)
   return not fx.restored and not fx.transient and fx.kind ~= "restart" and fx.kind ~= "wait"
end

--- Did the run leave a change in place?
-- @param sum a journal's summary
function M.has_changes(sum)
   for _, list in pairs(sum.effects) do
      for _, fx in ipairs(list) do
         if in_place(fx) then return true end
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
      if sum.status ~= "rolled back" and M.has_changes(sum) then return p, sum end
   end
   return nil
end

-- Refuse to roll back `rb` while a runbook that needs it (app-tomcat trusts in-transit's CA) still
-- has changes on this target: that one goes first, and the message says how.
local function depends_on_me(run, dir, rb)
   for _, e in ipairs(require("myseal.runbook").list()) do
      if e.name ~= rb.name then
         local ok, other = pcall(require("myseal.runbook").loadfile, e.file)
         for _, need in ipairs(ok and other and other.needs or {}) do
            if need == rb.name then
               local path = last_changes(dir, other)
               if path then
                  local again = ("%s %s"):format(other.name, run.target.args)
                  errors.fail("cannot roll back %s yet: %s depends on it and has changes here (journal %s); roll "
                     .. "back in this order: 'myseal rollback %s', then this", rb.name, other.name, path, again)
               end
            end
         end
      end
   end
end

-- Put one step's files back (newest first) and call its undo: nil, or the failure.
local function undo_step(engine, run, ctx, t, how)
   for j = #t.effects, 1, -1 do
      local fx = t.effects[j]
      if journal_mod.FILE_KINDS[fx.kind] and not fx.restored then
         local note, err = M.restore_file(run, fx, how)
         if not note then return ("runbook %s, step %s: %s"):format(run.runbook.name, t.name, err) end
         run.emit{ event = "effect", kind = "restore", path = fx.path, summary = note }
      end
   end
   if t.step and type(t.step.undo) == "function" then
      local ok, e = engine.call(t.step.undo, ctx)
      return not ok and engine.step_failure(run, t.step, e) or nil
   end
   local others = 0
   for _, fx in ipairs(t.effects) do
      if (fx.kind == "sql" or fx.kind == "run") and not fx.transient then others = others + 1 end
   end
   if others > 0 then
      run.emit{ event = "log", level = "warn", message = ("%s of step %s stay as they are: the step "
         .. "has no undo"):format(count(others, "statement or command", "statements or commands"), t.name) }
   end
end

--- Roll back the last run of a runbook on the target: for each step that changed something,
-- newest first, put its files back from their backups and call its undo; restart the server
-- when the run had restarted it. Refuses when a step says it cannot be undone.
-- @param engine the engine (myseal.engine): its run state, lock and step calls
-- @param opts `{ target, set, reporter, yes, interactive }`
-- @return 0
function M.rollback(engine, rb, opts)
   local why = opts.target:read_only()
   if why then errors.usage("rollback needs a live server: %s", why) end
   local run = engine.new_run(rb, opts, "rollback")
   local dir, lock <close> = engine.lock_target(run)
   engine.recover(run, dir, rb)
   local path, s = last_changes(dir, rb)
   if not path then
      run.reporter:event{ event = "run", mode = "rollback", runbook = rb.name, target = run.target.label }
      run.reporter:event{ event = "log", level = "info",
         message = ("no run of %s on %s to roll back"):format(rb.name, run.target.label) }
      -- a program reading --json waits for the result, as after any rollback
      run.reporter:event{ event = "result", status = "ok", changed = 0, done = 0, todo = 0, skipped = 0, seconds = 0 }
      return 0
   end
   depends_on_me(run, dir, rb)
   -- steps that changed something, newest first; a step whose undo is a string keeps its changes
   -- (the keyring the data is encrypted with), and nothing older may be put back over them
   local todo, stays, kept_paths, restart = {}, {}, {}, false
   for i = #s.order, 1, -1 do
      local name = s.order[i]
      local fx = s.effects[name]
      local left, restarts = 0, 0
      for _, e in ipairs(fx or {}) do
         if e.kind == "restart" then restarts = restarts + 1
         elseif in_place(e) then left = left + 1 end
      end
      if left + restarts > 0 then
         if restarts > 0 then restart = true end
         local step = rb:step(name)
         if left > 0 and step and type(step.undo) == "string" then
            stays[#stays + 1] = ("%s stays: %s"):format(name, step.undo)
            for _, e in ipairs(fx) do
               if e.path and not e.restored then kept_paths[e.path] = name end
            end
            if restarts > 0 then todo[#todo + 1] = { name = name, step = step, effects = {} } end
         else
            for _, e in ipairs(fx or {}) do
               if e.path and not e.restored and not e.key_material and kept_paths[e.path] then
                  errors.fail("cannot roll back %s: step %s would put %s back over what step %s keeps; roll back "
                     .. "by hand", rb.name, name, e.path, kept_paths[e.path])
               end
            end
            todo[#todo + 1] = { name = name, step = step, effects = fx }
         end
      end
   end
   for _, line in ipairs(stays) do run.reporter:event{ event = "log", level = "info", message = line } end
   -- a kept step keeps the server on its keyring: its key material stays where the server reads it
   local how = #stays > 0 and "revert" or "rollback"
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
   if run.journal.repaired then run.emit{ event = "log", level = "warn", message = run.journal.repaired } end
   run.journal:write{ event = "rollback", pid = sys.getpid(), user = sys.user().name }
   -- the undo functions read what the run recorded (what it found before changing it)
   for k, v in pairs(s.records or {}) do run.records[k] = v end
   local ctx = require("myseal.engine.ctx").new(run)
   local t0 = sys.clock()
   run.emit{ event = "run", mode = "rollback", runbook = rb.name, target = run.target.label, report_only = true }
   local counts = {}
   local failure
   for i, t in ipairs(todo) do
      run.step = t.name
      run.emit{ event = "step", step = t.name, state = "start", index = i, total = #todo }
      local t1 = sys.clock()
      failure = undo_step(engine, run, ctx, t, how)
      run.emit{ event = "step", step = t.name, state = failure and "failed" or "rolled back", index = i,
                total = #todo, seconds = engine.seconds(t1) }
      if failure then break end
      counts.changed = (counts.changed or 0) + 1
   end
   if not failure and restart then
      run.step = nil
      engine.close_conn(run)
      local how, herr = run.target:restart_how(run.values)
      if not how then
         -- the profile given now has no (or a broken) restart method: the files are back, the restart is not
         failure = ("rollback of %s: the server was not restarted: %s"):format(rb.name, herr)
      else
         run.emit{ event = "effect", kind = "restart", how = how, summary = "restart the server: " .. how }
         local ok, rerr = run.target:restart(run.values, run.secrets)
         if ok then
            run.emit{ event = "restarted", journal_only = true }
         else
            failure = ("rollback of %s: the server did not restart: %s"):format(rb.name, rerr)
         end
      end
   end
   engine.close_conn(run)
   engine.finish(run, failure and "failed" or "ok", failure, counts, t0, false, failure and "failed" or "rolled back")
   return 0
end

return M
