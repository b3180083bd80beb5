--- Secrets for one run: where they come from, and their removal from everything echoed
-- (plan output, journal, --json events, error messages).
-- @module myseal.engine.secrets
local sys = require "sys"

local M = {}

--- What replaces a secret in anything printed or journaled.
M.MASK = "***"

--- Secrets given on standard input (--secrets-stdin): name -> value, read like MYSEAL_SECRET_*.
M.given = {}

--- Read --secrets-stdin's JSON object `{"section.key": "value", ...}`: into M.given, or nil,
-- message (the message never holds a value). Names no runbook declares are ignored, as
-- MYSEAL_SECRET_* variables are.
-- @param text the whole of standard input
-- @return true | nil, message
function M.read_given(text)
   local obj, err = require("myseal.json").decode(text)
   if type(obj) ~= "table" or obj[1] ~= nil then
      return nil, "--secrets-stdin: standard input is not a JSON object of secrets"
         .. (err and (" (" .. err .. ")") or "")
   end
   for name, value in pairs(obj) do
      if not name:match("^[%a_][%w_]*%.[^=%s]+$") then
         return nil, ("--secrets-stdin: '%s' is not a parameter name (section.key)"):format(name)
      end
      if type(value) ~= "string" then return nil, ("--secrets-stdin: %s is not a string"):format(name) end
      M.given[name] = value
   end
   return true
end

local Secrets = {}
Secrets.__index = Secrets

--- A new, empty set of secrets.
-- @param before_prompt optional function called before asking on the terminal (clears output)
-- @return secrets object
function M.new(before_prompt)
   return setmetatable({ forms = {}, cache = {}, before_prompt = before_prompt }, Secrets)
end

--- Remember a value so that it is masked from now on (with the forms plan text and XML give it).
function Secrets:add(value)
   if type(value) ~= "string" or value == "" then return end
   local shown = require("mysql").format("?", value)   -- a bound value as plan text shows it
   local xml = require "myseal.xmledit"   -- as ctx:edit_xml writes an attribute, in either quote
   for _, form in ipairs{ value, shown:match("^'(.*)'$") or shown, xml.escape(value, '"'), xml.escape(value, "'") } do
      if not self.forms[form] then
         self.forms[form] = true
         self.sorted = nil
      end
   end
end

--- The text with every known secret masked.
-- @param s string (other values are returned as they are)
function Secrets:redact(s)
   if type(s) ~= "string" then return s end
   if not self.sorted then
      self.sorted = {}
      for f in pairs(self.forms) do self.sorted[#self.sorted + 1] = f end
      table.sort(self.sorted, function(a, b) return #a > #b end)   -- longest first
      for i, f in ipairs(self.sorted) do self.sorted[i] = f:gsub("%p", "%%%0") end   -- as plain text
   end
   for _, f in ipairs(self.sorted) do s = s:gsub(f, M.MASK) end
   return s
end

--- A copy of a value (tables deeply) with every string redacted.
function Secrets:redact_deep(v)
   if type(v) == "string" then return self:redact(v) end
   if type(v) ~= "table" then return v end
   local out = {}
   for k, x in pairs(v) do out[k] = self:redact_deep(x) end
   return setmetatable(out, getmetatable(v))
end

--- Does the text contain a known secret?
function Secrets:found_in(s)
   return type(s) == "string" and self:redact(s) ~= s
end

--- The environment variable read for a secret parameter that names no source:
-- MYSEAL_SECRET_<SECTION>_<KEY>, e.g. MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD.
-- @param name "section.key"
function M.env_name(name)
   return "MYSEAL_SECRET_" .. name:upper():gsub("[^%w]", "_")
end

--- Is a value offered for `name` without a source (on --secrets-stdin or in MYSEAL_SECRET_*)?
-- @param name "section.key"
function M.offered(name) return M.given[name] ~= nil or os.getenv(M.env_name(name)) ~= nil end

--- Keep the variables the secret parameters name (env:VAR) from the programs myseal runs, from
-- the start of the run, before any secret is read (MYSEAL_SECRET_* never reach them anyway).
-- @param decls the run's declarations, name -> { type, ... }
-- @param values the run's values, name -> value (a secret's is its source)
function M.hide_sources(decls, values)
   for name, decl in pairs(decls) do
      local var = decl.type == "secret" and type(values[name]) == "string" and values[name]:match("^env:(.+)$")
      if var then assert(sys.hide_env(var)) end
   end
end

--- Fetch a secret from its source (cached for the run) and remember it for masking.
-- @param name parameter name "section.key"
-- @param source nil, "env:NAME", "file:PATH" or "prompt"
-- @return value | nil, message
function Secrets:get(name, source)
   if self.cache[name] then return self.cache[name] end
   local value, err
   local env = M.env_name(name)
   if source == nil then
      value = M.given[name] or os.getenv(env)
      if value == nil and not sys.isatty("stdin") then
         return nil, ("secret %s is not given: set %s, or %s = env:VAR | file:PATH | prompt in [%s] of "
            .. "the site profile, or give it with --secrets-stdin"):format(name, env, name:match("%.(.+)$"),
            name:match("^[^.]+"))
      end
      source = "prompt"
   end
   if value == nil then
      local kind, arg = source:match("^(%a+):(.*)$")
      if source == "prompt" then
         if self.before_prompt then self.before_prompt() end
         value, err = sys.getpass(("%s: "):format(name))
         if not value then return nil, ("secret %s: %s"):format(name, err) end
      elseif kind == "env" then
         value = os.getenv(arg)
         if value == nil then
            return nil, ("secret %s: environment variable %s is not set"):format(name, arg)
         end
      elseif kind == "file" then
         value, err = sys.read_file(arg)
         if not value then return nil, ("secret %s: %s"):format(name, err) end
         value = value:match("^[^\r\n]*")   -- the first line
      else
         return nil, ("secret %s: unknown source '%s'"):format(name, source)
      end
   end
   self.cache[name] = value
   self:add(value)
   return value
end

return M
