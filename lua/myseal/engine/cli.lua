--- What the runbook commands (list, show, plan, run, rollback) share: target options, the
-- runbook search path, loading a runbook by name or file, and the reporter.
-- @module myseal.engine.cli
local sys = require "sys"
local args = require "myseal.args"
local errors = require "myseal.errors"
local runbook = require "myseal.runbook"
local target_mod = require "myseal.engine.target"
local report = require "myseal.engine.report"

local M = {}

--- Help text for the target options (plan, run and rollback add --secrets-stdin to their flags).
M.target_help = [[
targets (one is needed):
  --site FILE        a site profile (INI; see runbooks/site.example.ini)
  --sandbox NAME     a running sandbox (myseal sandbox start); --site may go with it
  --describe SERVER  no server: a described one, for plan (mysql-5.7, mysql-8.0.36, mariadb-10.11,
                     or a description file); [server] describe in the profile does the same
options:
  --set S.K=VALUE    a parameter (repeatable); beats the profile, which beats the defaults
  --runbooks DIR     a directory of site runbooks, searched before the stock ones (repeatable)
  --json             one JSON event per line instead of text
  --secrets-stdin    read the secrets from standard input, one JSON object {"section.key": "value"}
                     (for programs that start myseal: nothing in its argv or environment)]]

--- Parse a runbook command's arguments.
-- @param extra `{ flags = {...}, options = {...} }` beyond the common ones
-- @return opts, positionals
function M.parse(command, argv, extra)
   local spec = { flags = { "json" }, options = { "site", "sandbox", "describe" }, multi = { "set", "runbooks" } }
   for _, f in ipairs(extra and extra.flags or {}) do spec.flags[#spec.flags + 1] = f end
   for _, o in ipairs(extra and extra.options or {}) do spec.options[#spec.options + 1] = o end
   return args.parse(command, argv, spec)
end

--- Open the target the options name (a usage error when none is named or it cannot be opened);
-- with --secrets-stdin, the secrets are read first.
function M.target(command, opts)
   if opts.secrets_stdin then
      if sys.isatty("stdin") then
         errors.usage("%s: --secrets-stdin reads one JSON object from standard input, which is a terminal here "
            .. "(what is typed would show): pipe it in", command)
      end
      local ok, err = require("myseal.engine.secrets").read_given(io.stdin:read("a") or "")
      if not ok then errors.usage("%s: %s", command, err) end
   end
   local t, err = target_mod.open{ site = opts.site, sandbox = opts.sandbox, describe = opts.describe }
   if not t then errors.usage("%s: %s", command, err) end
   return t
end

-- A usage error unless `dir` is a directory: a site directory missing would let a stock runbook
-- stand in for the site's own.
local function directory(command, what, dir)
   local st, err = sys.stat(dir)
   if not st then errors.usage("%s: %s: %s", command, what, err) end
   if st.type ~= "directory" then errors.usage("%s: %s: not a directory", command, what) end
end

--- Set the runbook search path: --runbooks, then the profile's [site] runbooks, then stock
-- (a usage error when one of the first two is not a directory).
-- @param target target or nil
function M.search_path(command, opts, target)
   local path = {}
   for _, dir in ipairs(opts.runbooks or {}) do
      directory(command, "--runbooks " .. dir, dir)
      path[#path + 1] = dir
   end
   for _, layer in ipairs(target and target.layers or {}) do
      local v = layer.values and layer.values["site.runbooks"]
      if v then
         local dir = v.value
         if layer.base and not dir:match("^/") then dir = layer.base .. "/" .. dir end
         directory(command, (v.where and v.where .. ": " or "") .. "[site] runbooks", dir)
         path[#path + 1] = dir
      end
   end
   path[#path + 1] = require("myseal.host").runbooks_dir
   runbook.path = path
end

--- Load a runbook by name (search path) or by file (a name with '/' or ending in .lua).
-- @param name runbook name or file
function M.load(command, name)
   if not name then errors.usage("%s: which runbook? (myseal list shows them)", command) end
   local file = name
   if not (name:find("/", 1, true) or name:match("%.lua$")) then
      file = runbook.find(name)
      if not file then
         errors.usage("%s: no runbook '%s' (searched %s)", command, name, table.concat(runbook.path, ", "))
      end
   end
   local rb, err = runbook.loadfile(file)
   if not rb then errors.usage("%s: %s", command, err) end
   return rb
end

--- The reporter the options ask for.
function M.reporter(opts)
   if opts.json then return report.json() end
   return report.text{ verbose = opts.verbose }
end

--- Can we ask the operator a question?
function M.interactive()
   return sys.isatty("stdin") and sys.isatty("stdout")
end

return M
