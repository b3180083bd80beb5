--- The effects gate: while runbook code runs (a runbook file loading, a step's when, check,
-- apply, verify or undo), nothing may write a file, run a program or signal a process except
-- through the context's effect functions, which plan mode shows instead of doing. This makes
-- "every effect goes through ctx" a guarantee rather than a convention: a site runbook that
-- calls os.execute or io.open(path, "w") fails at its own line, naming it.
--
-- Writes into myseal's own state and cache directories (journals, locks, compiled probes) and
-- into private temporary directories made by sys.tmpdir are not effects on the target and stay
-- allowed.
-- @module myseal.engine.guard
local sys = require "sys"
local source_name = require("myseal.errors").source_name

local M = {}

local blocked = 0      -- > 0 while runbook code runs
local allowed = 0      -- > 0 while a ctx effect (or the engine itself) runs
local free = {}        -- directory prefixes writes may always go to

local runbook_source   -- set by install: is a debug source a runbook file's?

--- The innermost line of runbook code on the stack, "file:line", or nil.
-- @return string | nil
function M.runbook_line()
   for level = 2, 200 do
      local info = debug.getinfo(level, "Sl")
      if not info then return nil end
      if runbook_source and runbook_source(info.source) and info.currentline > 0 then
         return ("%s:%d"):format(source_name(info), info.currentline)
      end
   end
   return nil
end

local HINT_RUN = "run programs with ctx:run (a change: plan shows it) or ctx:command (to read something)"
local HINT_WRITE = "change files with ctx:write_file, ctx:edit_cnf, ctx:edit_xml, ctx:mkdir or ctx:remove_file "
   .. "(plan shows them, they are backed up and journaled)"

local function is_free(path)
   if type(path) ~= "string" then return false end
   for _, prefix in ipairs(free) do
      if path == prefix or path:sub(1, #prefix + 1) == prefix .. "/" then return true end
   end
   return false
end

local function gate(what, hint, path)
   if blocked > 0 and allowed == 0 and not is_free(path) then
      error(("%s: %s is not allowed in a runbook: %s"):format(M.runbook_line() or "runbook code", what, hint), 0)
   end
end

local function counted(add, fn, ...)
   add(1)
   local r = table.pack(pcall(fn, ...))
   add(-1)
   if not r[1] then error(r[2], 0) end
   return table.unpack(r, 2, r.n)
end

--- Call `fn(...)` as runbook code: effects outside ctx are refused while it runs.
-- Returns what `fn` returns; errors pass through (the gate is lifted either way).
function M.block(fn, ...)
   return counted(function(d) blocked = blocked + d end, fn, ...)
end

--- Call `fn(...)` with effects allowed: for ctx's own effect functions and the engine.
-- Returns what `fn` returns; errors pass through.
function M.allow(fn, ...)
   return counted(function(d) allowed = allowed + d end, fn, ...)
end

--- Let writes below `dir` through (myseal's own directories).
-- @param dir absolute path
function M.free_dir(dir)
   if type(dir) == "string" and dir ~= "" then free[#free + 1] = (dir:gsub("/+$", "")) end
end

local function wrap(t, name, what, hint, path_arg)
   local f = t[name]
   if type(f) ~= "function" then return end
   t[name] = function(...)
      gate(what, hint, path_arg and select(path_arg, ...))
      return f(...)
   end
end

local installed = false

--- Put the gate in front of every function that writes, runs or signals. Idempotent.
-- @param is_runbook_source function(source) -> boolean, to name the runbook line in messages
function M.install(is_runbook_source)
   runbook_source = is_runbook_source
   if installed then return end
   installed = true
   local state = require "myseal.state"
   M.free_dir(state.path())
   M.free_dir(state.cache_path())

   -- the C modules' writers and runners call this first (myseal_gate in core/util.c)
   local RUNS = { ["sys.run"] = true, ["sys.spawn"] = true, ["sys.kill"] = true }
   debug.getregistry()["myseal.gate"] = function(what, path)
      gate(what, RUNS[what] and HINT_RUN or HINT_WRITE, path)
   end
   local tmpdir = sys.tmpdir
   sys.tmpdir = function(...)
      local dir, err = tmpdir(...)
      if dir then M.free_dir(dir) end
      return dir, err
   end

   wrap(os, "execute", "os.execute", HINT_RUN)
   wrap(os, "exit", "os.exit", "fail the step with ctx:fail")
   wrap(os, "remove", "os.remove", HINT_WRITE, 1)
   wrap(os, "rename", "os.rename", HINT_WRITE, 2)
   wrap(io, "popen", "io.popen", HINT_RUN)
   local open = io.open
   io.open = function(path, mode)
      if mode and mode:find("[wa+]") then gate(("io.open(..., %q)"):format(mode), HINT_WRITE, path) end
      return open(path, mode)
   end
   local output = io.output
   io.output = function(f)
      if f ~= nil then gate("io.output", HINT_WRITE, type(f) == "string" and f or nil) end
      return output(f)
   end
end

return M
