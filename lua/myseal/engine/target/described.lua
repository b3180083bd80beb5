--- A described server: no server at all, for `plan` against MySQL versions this machine does not
-- have. The dialect answers from the description (a server spec such as mysql-8.0.36, or a file
-- with variables, plugins, tables, accounts and facts; docs/runbooks.md, "Described servers").
-- @module myseal.engine.target.described
local sys = require "sys"
local target = require "myseal.engine.target"
local dialect = require "myseal.dialect"

local Described = target.class("myseal.DescribedTarget")

local M = {}

local function load_description(spec, base)
   if not spec:match("%.lua$") and not spec:match("%.json$") then
      local info, err = dialect.parse_spec(spec)
      if not info then return nil, err end
      return { server = info }
   end
   local path = spec
   if base and not path:match("^/") then path = base .. "/" .. path end
   local text, err = sys.read_file(path)
   if not text then return nil, err end
   local desc
   if path:match("%.json$") then
      desc, err = require("myseal.json").decode(text)
      if not desc then return nil, path .. ": " .. err end
   else
      local fn
      fn, err = load(text, "@" .. path, "t", {})
      if not fn then return nil, err end
      local ok
      ok, desc = pcall(fn)
      if not ok then return nil, tostring(desc) end
   end
   if type(desc) ~= "table" or type(desc.server) ~= "string" then
      return nil, path .. ": a description is a table with server = \"FLAVOR-VERSION\" (e.g. mysql-8.0.36)"
   end
   -- the fields docs/runbooks.md shows: a wrong type would fail a step with Lua's words
   for _, k in ipairs{ "variables", "plugins", "components", "tables", "accounts", "facts" } do
      if desc[k] ~= nil and type(desc[k]) ~= "table" then return nil, ("%s: %s must be a table"):format(path, k) end
   end
   for _, k in ipairs{ "tables", "accounts" } do
      for i, row in ipairs(desc[k] or {}) do
         if type(row) ~= "table" then return nil, ("%s: %s[%d] must be a table"):format(path, k, i) end
      end
   end
   local info
   info, err = dialect.parse_spec(desc.server)
   if not info then return nil, path .. ": " .. err end
   desc.server = info
   return desc
end

--- The target of a description.
-- @param spec "mysql-8.0.36" or a description file
-- @param base directory a relative file is found in (the profile's)
-- @return target | nil, message
function M.open(spec, base)
   local desc, err = load_description(spec, base)
   if not desc then return nil, err end
   desc.server.described = true
   return setmetatable({
      description = desc,
      label = ("described %s %s"):format(desc.server.flavor, desc.server.version),
      layers = {},
      -- plan only: nothing is written to the state directory
   }, Described)
end

function Described:read_only()
   return self.label .. " is only described"
end

function Described:connect_spec()
   return nil, self.label .. " has no connection"
end

Described.connect = Described.connect_spec

function Described:server_info()
   return self.description.server
end

--- A fact from the description's own `facts`, else from the dialect's `described` answers.
function Described:fact(d, _, name, ...)
   local desc = self.description
   local v = desc.facts and desc.facts[name]
   if v ~= nil then
      if type(v) == "function" then return true, v(...) end
      return true, v
   end
   local f = d.described[name]
   if f == nil then
      return nil, ("the described server (%s) cannot answer fact '%s': add it to the description's facts "
         .. "or to the dialect's described table"):format(d.name, name)
   end
   if type(f) == "function" then return true, f(d, desc, ...) end
   return true, f
end

function Described.restart_how(_, values)
   return require("myseal.engine.target.site").restart_how(values) or "restart the server (the site's restart method)"
end

function Described:restart()
   return nil, self:read_only()
end

return M
