--- Runbooks: named, ordered steps with declared parameters.
--
-- A runbook file returns `runbook.new{ ... }` or `runbook.load("base"):extend{ ... }`.
-- The engine (myseal.engine) runs it; this module only defines, loads and combines.
-- The author's guide is docs/runbooks.md.
-- @module myseal.runbook
local params = require "myseal.engine.params"
local guard = require "myseal.engine.guard"

local M = {}

local source_name = require("myseal.errors").source_name

--- Directories searched by `load` and `list`, first match wins. The command line puts
-- `--runbooks DIR` and the profile's `[site] runbooks` in front of the stock directory.
M.path = { require("myseal.host").runbooks_dir }

local Runbook = {}
Runbook.__index = Runbook
Runbook.__name = "myseal.Runbook"

-- Chunk names of every runbook file loaded, so errors can name the line in a runbook.
local runbook_sources = {}

--- Is `source` (a debug.getinfo source, "@path") the source of a loaded runbook file?
-- @param source string
-- @return boolean
function M.is_runbook_source(source)
   return runbook_sources[source] == true
end

local STEP_FIELDS = {
   name = "string", doc = "string", check = "function", apply = "function",
   verify = "function", undo = "function|string", when = "function", severity = "string", part = "string",
}

-- Raise `msg` at the first stack frame outside this module (and the params module): the line
-- in the runbook file that made the mistake.
local function author_error(fmt, ...)
   local msg = select("#", ...) > 0 and fmt:format(...) or fmt
   local level = 2
   while true do
      local info = debug.getinfo(level, "Sl")
      if not info then return error(msg, 0) end
      if info.what ~= "C" and not info.source:find("myseal/runbook%.lua$")
         and not info.source:find("myseal/engine/params%.lua$") then
         return error(("%s:%d: %s"):format(source_name(info), info.currentline, msg), 0)
      end
      level = level + 1
   end
end
M.author_error = author_error

local function where(fn)
   if type(fn) ~= "function" then return nil end
   local info = debug.getinfo(fn, "S")
   return source_name(info) .. ":" .. info.linedefined
end

-- Raise at a field of `t` that `known` does not name: "<what>: unknown field 'k'".
local function known_fields(t, known, what)
   for k in pairs(t) do
      if not known[k] then author_error("%s: unknown field '%s'", what, tostring(k)) end
   end
end

-- A step's fields without `source` (where it was defined: check_step sets it for each copy).
local function copy_step(s)
   local copy = {}
   for k, v in pairs(s) do
      if k ~= "source" then copy[k] = v end
   end
   return copy
end

local function check_step(rbname, s, i)
   if type(s) ~= "table" then
      author_error("runbook %s: step %d is a %s, not a table", rbname, i, type(s))
   end
   local label = type(s.name) == "string" and ("'" .. s.name .. "'") or tostring(i)
   local named = type(s.name) == "string"
      and (s.name:match("^[%w][%w%-_]*$") or s.name:match("^[%w][%w%-_]*/[%w][%w%-_]*$"))
   if not named then
      author_error("runbook %s: step %s needs a name of letters, digits, '-' and '_' (a story's: part/step)",
         rbname, label)
   end
   for k, v in pairs(s) do
      local want = STEP_FIELDS[k]
      if want == nil then
         author_error("runbook %s: step %s has an unknown field '%s'", rbname, label, tostring(k))
      end
      if not want:find(type(v), 1, true) then
         author_error("runbook %s: step %s: %s must be a %s, not a %s",
            rbname, label, k, (want:gsub("|", " or ")), type(v))
      end
   end
   if not s.check and not s.apply then
      author_error("runbook %s: step %s needs check, apply or both", rbname, label)
   end
   if s.severity ~= nil and s.severity ~= "warn" and s.severity ~= "fail" then
      author_error("runbook %s: step %s: severity must be warn or fail, not %s", rbname, label, s.severity)
   end
   local copy = copy_step(s)
   copy.source = where(s.apply) or where(s.check)
   return copy
end

local function check_steps(rbname, steps)
   local seen, out = {}, {}
   for i, s in ipairs(steps) do
      local step = check_step(rbname, s, i)
      if seen[step.name] then
         author_error("runbook %s: two steps are named '%s'", rbname, step.name)
      end
      seen[step.name] = true
      out[#out + 1] = step
   end
   return out
end

-- dialect additions: { ["mysql-8.0"] = { key = value, facts = {...}, described = {...} } }
local function check_dialect(rbname, d)
   if d == nil then return {} end
   if type(d) ~= "table" then
      author_error("runbook %s: dialect must be a table keyed by dialect name", rbname)
   end
   local dialect = require "myseal.dialect"
   for name, entries in pairs(d) do
      if not dialect.known(name) then
         author_error("runbook %s: dialect '%s' is not one of %s",
            rbname, tostring(name), table.concat(dialect.names(), ", "))
      end
      if type(entries) ~= "table" then
         author_error("runbook %s: dialect '%s' must be a table", rbname, name)
      end
   end
   return d
end

--- Define a runbook.
-- @param def table: `name` (string), `summary` (one line), `params` (map of "section.key" to
--   `{ type = , default = , doc = , required = , values = }`), `steps` (list of steps, each
--   `{ name = , doc = , check = , apply = , verify = , undo = , when = }`), `dialect` (additions to
--   the dialect layer keyed by dialect name, e.g. `{ mysql = {...}, mariadb = {...} }`).
-- @return the runbook
function M.new(def)
   if type(def) ~= "table" then error("runbook.new: expects a table", 2) end
   local name = def.name
   if type(name) ~= "string" or not name:match("^[%w][%w%-_.]*$") then
      error("runbook.new: name must be a string of letters, digits, '-', '_' and '.'", 2)
   end
   if type(def.summary) ~= "string" or def.summary == "" then
      author_error("runbook %s: summary must be a one-line string", name)
   end
   if type(def.steps) ~= "table" or #def.steps == 0 then
      author_error("runbook %s: steps must be a non-empty list", name)
   end
   known_fields(def, { name = 1, summary = 1, params = 1, steps = 1, dialect = 1, needs = 1 }, "runbook " .. name)
   if def.needs ~= nil then
      local ok = type(def.needs) == "table"
      for i, v in pairs(ok and def.needs or {}) do
         if math.type(i) ~= "integer" or type(v) ~= "string" or not v:match("^[%w_-]+$") then ok = false end
      end
      if not ok then author_error("runbook %s: needs must be a list of runbook names", name) end
   end
   return setmetatable({
      name = name,
      summary = def.summary,
      params = params.declare(name, def.params or {}),
      steps = check_steps(name, def.steps),
      dialect = check_dialect(name, def.dialect),
      needs = def.needs or {},   -- runbooks whose changes this one's depend on (rollback order)
      file = nil,   -- set by load
      base = nil,   -- the runbook this one extends
   }, Runbook)
end

--- Split a command line from a profile (a restart command) into an argument vector, the way a
-- shell splits plain words and quotes, with no expansion of any kind.
-- @param s command line
-- @return argv | nil, message
function M.split_command(s)
   return require("myseal.engine.target").split_command(s)
end

--- A story: one runbook made of the steps of others, in an order of its own. Each step of the
-- story is `"part/step"` (that step of the runbook `part`, under that name) or a step table of
-- the story's own; the story declares the parameters of every part (one definition each; a
-- parameter a part requires is required only when that part applies). `optional[part] =
-- function(ctx)` skips a part's steps where it says the part does not apply (no Tomcat here).
-- `needs` lists runbooks a part's changes depend on (for rollback order).
-- @param def `{ name, summary, parts = { "at-rest", ... }, steps = { "at-rest/preflight", { name = ... }, ... },
--   params = { more }, optional = { part = function(ctx) -> boolean } }`
-- @return the runbook
function M.compose(def)
   -- a declaration as runbook.new takes it (required: as the part has it, or as given)
   local function declaration(d, required)
      return { type = d.type, default = d.default, doc = d.doc, values = d.values, required = required }
   end
   local parts, decls, owner = {}, {}, {}
   for _, name in ipairs(def.parts or {}) do
      local rb = M.load(name)
      parts[name] = rb
      for k, d in pairs(rb.params) do
         local mine = decls[k]
         if mine and (mine.type ~= d.type or mine.default ~= d.default) and type(d.default) ~= "table" then
            author_error("runbook %s: parts %s and %s declare %s differently", def.name, owner[k], name, k)
         end
         if not mine then
            decls[k], owner[k] = declaration(d, d.required and not (def.optional or {})[name] or nil), name
         end
      end
   end
   for k, d in pairs(def.params or {}) do decls[k] = declaration(d, d.required) end
   local steps = {}
   for i, entry in ipairs(def.steps) do
      if type(entry) == "string" then
         local part, sname = entry:match("^([^/]+)/(.+)$")
         local rb = part and parts[part]
         if not rb then author_error("runbook %s: step %d (%s): no part %s", def.name, i, entry, tostring(part)) end
         local step = rb:step(sname)
         if not step then
            author_error("runbook %s: step %d: %s has no step '%s' (steps: %s)", def.name, i, part, sname,
               table.concat(rb:step_names(), ", "))
         end
         local copy = copy_step(step)
         copy.name, copy.part = entry, part
         local applies = (def.optional or {})[part]
         if applies then
            local when = step.when
            copy.when = function(ctx)
               if not applies(ctx) then return false end
               if when then return when(ctx) end
               return true
            end
         end
         steps[#steps + 1] = copy
      else
         steps[#steps + 1] = entry
      end
   end
   -- every step of every part, or the story would silently skip what a part does
   local listed = {}
   for _, st in ipairs(steps) do listed[st.name] = true end
   for _, name in ipairs(def.parts or {}) do
      for _, sname in ipairs(parts[name]:step_names()) do
         if not listed[name .. "/" .. sname] then
            author_error("runbook %s: the story leaves out step %s/%s: list it in steps", def.name, name, sname)
         end
      end
   end
   local rb = M.new{ name = def.name, summary = def.summary, params = decls, steps = steps }
   rb.parts = def.parts
   return rb
end

--- The steps of a runbook, procedure first: a list of `{ name = , doc = }` (and any other step
-- fields) that is also indexed by step name, so the file can show its steps on its first screen
-- and attach their functions below: `function steps.preflight.check(ctx) ... end`.
-- @param list list of step tables
-- @return the same list, with `list[name] = step`
function M.outline(list)
   for _, s in ipairs(list) do
      if type(s) == "table" and type(s.name) == "string" then
         if rawget(list, s.name) ~= nil then author_error("runbook outline: two steps are named '%s'", s.name) end
         list[s.name] = s
      end
   end
   return list
end

--- A check's answer: `true` when `ok`, else `false, why` (for `return runbook.done(x == y, "why not")`).
-- @param ok boolean
-- @param why the reason it is not done
-- @return boolean, reason
function M.done(ok, why)
   if ok then return true end
   return false, why
end

--- The step called `name`, and its index; nil when there is none.
-- @param name string
-- @return step table, index
function Runbook:step(name)
   for i, s in ipairs(self.steps) do
      if s.name == name then return s, i end
   end
   return nil
end

--- Names of the steps, in order.
-- @return list of strings
function Runbook:step_names()
   local out = {}
   for i, s in ipairs(self.steps) do out[i] = s.name end
   return out
end

local function need_step(rb, name, what)
   local s, i = rb:step(name)
   if not s then
      author_error("runbook %s: %s: no step '%s' (steps: %s)",
         rb.name, what, tostring(name), table.concat(rb:step_names(), ", "))
   end
   return s, i
end

--- A new runbook built from this one, changed by name.
-- @param ext table: `name`, `summary` (default: this one's); `replace` (map step name -> fields
--   that replace the step's fields; `false` removes a field); `before` / `after` (map step name ->
--   step or list of steps to insert); `remove` (list of step names); `params` (new parameters);
--   `defaults` (map "section.key" -> new default); `dialect` (dialect additions).
-- @return the new runbook
function Runbook:extend(ext)
   if type(ext) ~= "table" then error("extend: expects a table", 2) end
   known_fields(ext, { name = 1, summary = 1, replace = 1, before = 1, after = 1, remove = 1, params = 1,
                       defaults = 1, dialect = 1 }, ("runbook %s: extend"):format(self.name))
   local name = ext.name or self.name
   local steps = {}
   for i, s in ipairs(self.steps) do steps[i] = copy_step(s) end
   local work = setmetatable({ name = self.name, steps = steps }, Runbook)
   for _, rname in ipairs(ext.remove or {}) do
      local _, i = need_step(work, rname, "remove")
      table.remove(steps, i)
   end
   for sname, fields in pairs(ext.replace or {}) do
      local s = need_step(work, sname, "replace")
      if type(fields) ~= "table" then
         author_error("runbook %s: replace.%s must be a table of step fields", self.name, sname)
      end
      for k, v in pairs(fields) do
         if k == "name" and v ~= sname then
            author_error("runbook %s: replace.%s cannot rename the step", self.name, sname)
         end
         if v == false then s[k] = nil else s[k] = v end
      end
   end
   local function insert(map, offset, what)
      -- sorted so that the result does not depend on table order
      for _, sname in ipairs(params.sorted(map or {})) do
         local _, i = need_step(work, sname, what)
         local new = map[sname]   -- one step table, or a list of step tables
         if type(new) == "table" and new.name ~= nil then new = { new } end
         if type(new) ~= "table" then
            author_error("runbook %s: %s.%s must be a step or a list of steps", self.name, what, sname)
         end
         for j, s in ipairs(new) do table.insert(steps, i + offset + j - 1, s) end
      end
   end
   insert(ext.before, 0, "before")
   insert(ext.after, 1, "after")
   local decls = params.declare(name, ext.params or {})
   for k, d in pairs(self.params) do
      if decls[k] then
         author_error("runbook %s: parameter %s is already declared by %s", name, k, self.name)
      end
      decls[k] = d
   end
   if ext.defaults then decls = params.with_defaults(name, decls, ext.defaults) end
   return setmetatable({
      name = name,
      summary = ext.summary or self.summary,
      params = decls,
      steps = check_steps(name, steps),
      dialect = require("myseal.dialect").merge(self.dialect, check_dialect(name, ext.dialect)),
      needs = self.needs, parts = self.parts,
      base = self,
   }, Runbook)
end

-- Modules a runbook may require: the library written for runbooks and the C modules, not the
-- engine's internals (through which the effects gate could be lifted) nor raw connections (mysql:
-- read with ctx:query, change with ctx:sql).
local function requirable(name)
   if name == "pki" or name == "cnf" or name == "keystore" or name == "sys" then return true end
   if not name:match("^myseal%.") then return false end
   for _, denied in ipairs{ "myseal.engine", "myseal.sandbox", "myseal.cmd", "myseal.cli", "myseal.state" } do
      if name == denied or name:sub(1, #denied + 1) == denied .. "." then return false end
   end
   return true
end

local function runbook_require(name)
   if type(name) ~= "string" or not requirable(name) then
      error(("module '%s' is not available to runbooks (myseal.* library modules, pki, cnf, keystore, sys)")
         :format(tostring(name)), 2)
   end
   return require(name)
end

--- The environment runbook files run in: the standard libraries and `require` (the library
-- for runbooks and the C modules); reading or assigning an undefined global raises, naming it,
-- at the line that does it. While runbook code runs, anything that writes a file, runs a
-- program or signals a process outside ctx is refused (myseal.engine.guard), naming the line.
-- @return a new environment table
function M.environment()
   local env = {}
   for _, k in ipairs{ "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
                       "rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
                       "tostring", "type", "xpcall", "string", "table", "math", "utf8",
                       "os", "io", "coroutine", "_VERSION" } do
      env[k] = _G[k]
   end
   env.require = runbook_require
   return setmetatable(env, {
      __index = function(_, k)
         error(("undefined global '%s'"):format(tostring(k)), 2)
      end,
      __newindex = function(_, k)
         error(("assignment to undefined global '%s' (use local)"):format(tostring(k)), 2)
      end,
   })
end

local loading = {}   -- files being loaded right now: a site file may extend the stock one of the same name
local active_path    -- the path of the outer load, for loads made by the file being loaded

--- The file a name would load, or nil (a file being loaded is passed over).
-- @param name runbook name
-- @param path optional list of directories
function M.find(name, path)
   for _, dir in ipairs(path or M.path) do
      local file = dir .. "/" .. name .. ".lua"
      if not loading[file] then
         local f = io.open(file, "rb")
         if f then
            f:close()
            return file
         end
      end
   end
   return nil
end

--- Load a runbook file (by path) in the runbook environment.
-- @param file path of a .lua file
-- @return runbook | nil, message
function M.loadfile(file)
   local fn, err = loadfile(file, "t", M.environment())
   if not fn then return nil, err end
   runbook_sources["@" .. file] = true
   loading[file] = true
   local ok, rb = pcall(guard.block, fn)
   loading[file] = nil
   if not ok then
      return nil, tostring(rb)
   end
   if getmetatable(rb) ~= Runbook then
      return nil, ("%s: must return a runbook (runbook.new{...} or base:extend{...}), not a %s"):format(
         file, type(rb))
   end
   rb.file = file
   return rb
end

--- Load a runbook by name from the search path (site directories first, then the stock one).
-- A site file may load the stock runbook of its own name: the file being loaded is skipped.
-- Raises when the name is not found or the file is broken (a runbook author's mistake).
-- @param name runbook name (file name without .lua)
-- @param path optional list of directories (default: the path of the load in progress, else
--   `runbook.path`)
-- @return the runbook
function M.load(name, path)
   if type(name) ~= "string" or not name:match("^[%w][%w%-_.]*$") then
      error(("runbook.load: bad runbook name '%s'"):format(tostring(name)), 2)
   end
   path = path or active_path or M.path
   local file = M.find(name, path)
   if not file then
      error(("no runbook '%s' in %s"):format(name, table.concat(path, ", ")), 2)
   end
   local outer = active_path
   active_path = path
   local rb, err = M.loadfile(file)
   active_path = outer
   if not rb then error(err, 0) end
   return rb
end

--- Every runbook file on the search path, first match per name.
-- @param path optional list of directories
-- @return list of { name, file, dir, stock = boolean }, sorted by name
function M.list(path)
   local sys = require "sys"
   path = path or M.path
   local stock = require("myseal.host").runbooks_dir
   local seen, out = {}, {}
   for _, dir in ipairs(path) do
      for _, f in ipairs(sys.dir(dir) or {}) do
         local name = f:match("^(.+)%.lua$")
         if name and not seen[name] then
            seen[name] = true
            out[#out + 1] = { name = name, file = dir .. "/" .. f, dir = dir, stock = dir == stock }
         end
      end
   end
   table.sort(out, function(a, b) return a.name < b.name end)
   return out
end

M.Runbook = Runbook
guard.install(M.is_runbook_source)
return M
