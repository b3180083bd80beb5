--- A small command-line parser shared by the commands.
-- @module myseal.args
local errors = require "myseal.errors"

local M = {}

local Help = {}

--- Ask for the help of `command` ("sandbox start"): raises what `M.help_request` recognises,
-- carrying the options the command declares (`spec`, as `parse` takes it); `myseal.cli`
-- prints the help and exits 0.
-- @param command command words, space-separated
-- @param spec the command's option declarations
function M.help(command, spec)
   error(setmetatable({ command = command, spec = spec }, Help), 0)
end

--- The help request `e` is, or nil.
-- @param e an error value
-- @return `{ command = , spec = }` or nil
function M.help_request(e)
   if getmetatable(e) == Help then return e end
   return nil
end

--- Parse `argv` against `spec`.
-- spec.flags: names of boolean options (`--yes`);
-- spec.options: names of options taking a value (`--site F` or `--site=F`);
-- spec.multi: names of options that may repeat (values collected in a list);
-- spec.short: map of one-letter aliases (`e = "exec"`).
-- `_` and `-` are the same in a name (`--fail_on` is `--fail-on`). Stops at `--`; `--help` or
-- `-h` asks for the command's help (`M.help`); unknown options raise a usage error naming
-- `command`.
-- @return opts table, positionals list
function M.parse(command, argv, spec)
   local opts, pos = {}, {}
   local flags, options, multi = {}, {}, {}
   local function dashed(n) return (n:gsub("_", "-")) end
   for _, n in ipairs(spec.flags or {}) do flags[dashed(n)] = true end
   for _, n in ipairs(spec.options or {}) do options[dashed(n)] = true end
   for _, n in ipairs(spec.multi or {}) do options[dashed(n)] = true; multi[dashed(n)] = true end
   local i = 1
   while i <= #argv do
      local a = argv[i]
      if a == "--" then
         table.move(argv, i + 1, #argv, #pos + 1, pos)
         break
      end
      if a == "--help" or a == "-h" then M.help(command, spec) end
      local name, value = a:match("^%-%-([%w%-_]+)=(.*)$")
      if not name then name = a:match("^%-%-([%w%-_]+)$") end
      if name then name = dashed(name) end
      if not name and spec.short then
         local s = a:match("^%-(%a)$")
         if s then name = spec.short[s] or ("-" .. s) end
      end
      local key = name and name:gsub("%-", "_")
      if name and flags[name] then
         if value then errors.usage("%s: --%s takes no value", command, name) end
         opts[key] = true
      elseif name and options[name] then
         if not value then
            i = i + 1
            value = argv[i]
            if value == nil then errors.usage("%s: --%s needs a value", command, name) end
         end
         if multi[name] then
            opts[key] = opts[key] or {}
            table.insert(opts[key], value)
         else
            opts[key] = value
         end
      elseif name or (a:sub(1, 1) == "-" and a ~= "-") then
         errors.usage("%s: unknown option '%s' (try 'myseal help %s')", command, a, command)
      else
         pos[#pos + 1] = a
      end
      i = i + 1
   end
   return opts, pos
end

--- Refuse positional arguments beyond the first `n` (a usage error naming the first extra one):
-- a word too many, ignored, would be a runbook or a name not acted on.
-- @param pos positionals (M.parse)
-- @param why optional words said with it ("one runbook at a time")
function M.at_most(command, pos, n, why)
   if pos[n + 1] ~= nil then
      errors.usage("%s: '%s' is one argument too many (%stry 'myseal help %s')", command, pos[n + 1],
         why and (why .. "; ") or "", command)
   end
end

return M
