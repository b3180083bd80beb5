--- Declared runbook parameters: types, defaults, and resolution from layered sources
-- (declared default < target < site profile < --set).
-- @module myseal.engine.params
local M = {}

local function fail_at(fmt, ...)
   -- a declaration mistake: name the runbook file's line (myseal.runbook finds it)
   return require("myseal.runbook").author_error(fmt, ...)
end

local BOOL = {
   ["true"] = true, yes = true, on = true, ["1"] = true,
   ["false"] = false, no = false, off = false, ["0"] = false,
}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local function copy(t)
   local out = {}
   for k, v in pairs(t) do out[k] = v end
   return out
end

-- Each converter takes (decl, value, base_dir) with value a string (profile, --set) or a Lua value
-- (a declared default) and returns the typed value or nil, reason.
local convert = {}

function convert.string(_, v)
   if type(v) == "string" then return v end
   if type(v) == "number" then return tostring(v) end
   return nil, "a string"
end

--- Is `path` absolute: `/...`, or on Windows `C:\...`, `C:/...` or `\\server\...`?
-- @param path string
-- @return boolean
function M.absolute(path)
   return path:match("^/") ~= nil or path:match("^%a:[/\\]") ~= nil or path:match("^\\\\") ~= nil
end

-- A relative path in a profile is relative to the profile's directory (`base`).
local function beside(base, v)
   if base and not M.absolute(v) then return base .. "/" .. v end
   return v
end

function convert.path(_, v, base)
   if type(v) ~= "string" or v == "" then return nil, "a path" end
   -- `backup_dir = false` means "none", not a directory called false beside the profile
   if BOOL[trim(v):lower()] ~= nil or trim(v):lower() == "none" then
      return nil, "a path (to leave it unset, leave the line out)"
   end
   return beside(base, v)
end

-- nil when `n` is within the declaration's min and max, else what it must be ("an integer from 1 to 9")
local function out_of_range(decl, n, what)
   local min, max = decl.min, decl.max
   if (not min or n >= min) and (not max or n <= max) then return nil end
   if min and max then return ("%s from %s to %s"):format(what, min, max) end
   return min and ("%s of at least %s"):format(what, min) or ("%s of at most %s"):format(what, max)
end

function convert.integer(decl, v)
   local n = math.tointeger(type(v) == "string" and tonumber(trim(v)) or v)
   if not n then return nil, "an integer" end
   local bad = out_of_range(decl, n, "an integer")
   if bad then return nil, bad end
   return n
end

function convert.number(decl, v)
   local n = type(v) == "string" and tonumber(trim(v)) or v
   if type(n) ~= "number" then return nil, "a number" end
   local bad = out_of_range(decl, n, "a number")
   if bad then return nil, bad end
   return n
end

function convert.boolean(_, v)
   if type(v) == "boolean" then return v end
   if type(v) == "string" then
      local b = BOOL[trim(v):lower()]
      if b ~= nil then return b end
   end
   return nil, "a boolean (true/false, yes/no, on/off, 1/0)"
end

function convert.list(_, v)
   if type(v) == "table" then
      for _, x in ipairs(v) do
         if type(x) ~= "string" then return nil, "a list of strings" end
      end
      return v
   end
   if type(v) ~= "string" then return nil, "a comma-separated list" end
   local out = {}
   for item in v:gmatch("[^,]+") do
      item = trim(item)
      if item ~= "" then out[#out + 1] = item end
   end
   return out
end

function convert.enum(decl, v)
   if type(v) == "string" then
      for _, x in ipairs(decl.values) do
         if x == trim(v) then return x end
      end
   end
   return nil, "one of " .. table.concat(decl.values, ", ")
end

-- A secret parameter holds where the secret comes from, never the secret. A relative file:PATH is
-- the profile's, as a path is.
function convert.secret(_, v, base)
   if type(v) == "string" then
      v = trim(v)
      local file = v:match("^file:(.+)")
      if file then return "file:" .. beside(base, file) end
      if v == "prompt" or v:match("^env:[%w_]+$") then return v end
   end
   return nil, "where the secret comes from: env:NAME, file:PATH or prompt (never the secret itself)"
end

function convert.map(_, v)
   if type(v) ~= "table" then return nil, "a section of key = value lines" end
   for k, x in pairs(v) do
      if type(k) ~= "string" or type(x) ~= "string" then return nil, "a map of strings" end
   end
   return v
end

--- The parameter types a declaration may use.
M.types = { "string", "path", "integer", "number", "boolean", "list", "enum", "secret", "map" }

--- Convert a raw value for a declaration.
-- @param decl a declaration
-- @param v raw value (string from a profile or --set, or a Lua value)
-- @param base directory relative paths are resolved against (the profile's), or nil
-- @return value | nil, message
function M.convert(decl, v, base)
   local value, want = convert[decl.type](decl, v, base)
   if value == nil and decl.type == "secret" then
      return nil, ("%s must be %s"):format(decl.name, want)   -- what is written may be the secret
   elseif value == nil then
      return nil, ("%s must be %s, not '%s'"):format(decl.name, want, tostring(v))
   end
   return value
end

local DECL_FIELDS = { type = 1, default = 1, doc = 1, required = 1, values = 1, min = 1, max = 1 }

--- Check and normalise a runbook's parameter declarations.
-- @param owner runbook name (for messages)
-- @param decls map "section.key" (or "section" for a map) -> { type, default, doc, required, values, min, max }
--   (min and max bound an integer or number)
-- @return map name -> declaration { name, section, key, type, default, doc, required, values }
function M.declare(owner, decls)
   if type(decls) ~= "table" then fail_at("runbook %s: params must be a table", owner) end
   local out = {}
   for name, d in pairs(decls) do
      if type(name) ~= "string" then fail_at("runbook %s: parameter names must be strings", owner) end
      local section, key = name:match("^([%a][%w_]*)%.([%a][%w_]*)$")
      if type(d) ~= "table" then fail_at("runbook %s: parameter %s must be a table", owner, name) end
      for k in pairs(d) do
         if not DECL_FIELDS[k] then
            fail_at("runbook %s: parameter %s has an unknown field '%s'", owner, name, tostring(k))
         end
      end
      if not convert[d.type] then
         fail_at("runbook %s: parameter %s: type must be one of %s", owner, name, table.concat(M.types, ", "))
      end
      if d.type == "map" then
         section = name:match("^([%a][%w_]*)$")
         if not section then
            fail_at("runbook %s: map parameter %s must be named after its section (no '.')", owner, name)
         end
      elseif not section then
         fail_at("runbook %s: parameter %s must be named section.key", owner, name)
      end
      if type(d.doc) ~= "string" or d.doc == "" then
         fail_at("runbook %s: parameter %s needs doc, one line of documentation", owner, name)
      end
      if d.type == "enum" and (type(d.values) ~= "table" or #d.values == 0) then
         fail_at("runbook %s: enum parameter %s needs values", owner, name)
      end
      if (d.min ~= nil or d.max ~= nil) and ((d.type ~= "integer" and d.type ~= "number")
            or (d.min ~= nil and type(d.min) ~= "number") or (d.max ~= nil and type(d.max) ~= "number")) then
         fail_at("runbook %s: parameter %s: min and max are for integer and number parameters", owner, name)
      end
      local decl = { name = name, section = section, key = key, type = d.type, doc = d.doc,
                     required = d.required == true, values = d.values, min = d.min, max = d.max }
      if d.default ~= nil then
         local v, err = M.convert(decl, d.default)
         if v == nil then fail_at("runbook %s: default of %s", owner, err) end
         decl.default = v
      elseif d.type == "map" then
         decl.default = {}
      end
      out[name] = decl
   end
   return out
end

--- A copy of `decls` with some defaults replaced (extend's `defaults`).
-- @param defaults map name -> new default
function M.with_defaults(owner, decls, defaults)
   local out = copy(decls)
   for name, v in pairs(defaults) do
      local d = out[name]
      if not d then fail_at("runbook %s: defaults: no parameter %s", owner, tostring(name)) end
      local value, err = M.convert(d, v)
      if value == nil then fail_at("runbook %s: defaults: %s", owner, err) end
      out[name] = copy(d)
      out[name].default = value
   end
   return out
end

--- Names of the declarations (the keys of any table of them), sorted (section, then key).
function M.sorted(decls)
   local names = {}
   for k in pairs(decls) do names[#names + 1] = k end
   table.sort(names)
   return names
end

--- Resolve values from layers, lowest first.
-- Each layer: `{ label = "--set", values = { ["s.k"] = { value = raw, where = "file:line" } },
-- sections = { s = { k = { value = , where = } } }, base = dir, strict = true }`. A strict layer
-- (--set) may only name declared parameters.
-- @param layers list of layers
-- @param partial when true, a required parameter may stay unset (for `show`)
-- @return values (name -> value), origins (name -> "where") | nil, message
function M.resolve(decls, layers, partial)
   local values, origins = {}, {}
   for name, d in pairs(decls) do
      values[name] = d.default
      origins[name] = "default"
   end
   for _, layer in ipairs(layers) do
      for written, raw in pairs(layer.values or {}) do
         -- a parameter's key may be written with '-' for '_' (as in option files); map keys
         -- (account names, paths) are taken as written
         local name = written
         if not decls[name] then
            name = name:gsub("^([^.]+%.)(.*)$", function(s, k) return s .. k:gsub("%-", "_") end)
         end
         local d = decls[name]
         local msection, mkey = written:match("^([^.]+)%.(.+)$")
         local map = msection and decls[msection]
         if map and map.type == "map" then
            values[msection] = copy(values[msection])
            values[msection][mkey] = tostring(raw.value)
            origins[msection] = raw.where or layer.label
         elseif d and d.type ~= "map" then
            local v, err = M.convert(d, raw.value, layer.base)
            if v == nil then return nil, (raw.where and raw.where .. ": " or "") .. err end
            values[name] = v
            origins[name] = raw.where or layer.label
         elseif layer.strict then
            return nil, ("%s: no parameter %s in this runbook"):format(layer.label, written)
         end
      end
      for section, entries in pairs(layer.sections or {}) do
         local d = decls[section]
         if d and d.type == "map" then
            values[section] = copy(values[section])
            for k, e in pairs(entries) do values[section][k] = e.value end
            origins[section] = layer.label
         end
      end
   end
   for name, d in pairs(decls) do
      if d.required and values[name] == nil and not partial then
         return nil, ("parameter %s is required: set %s in [%s] of the site profile, or --set %s=..."):format(
            name, d.key or name, d.section, name)
      end
   end
   return values, origins
end

--- A read-only view `p.section.key` over resolved values; an undeclared name raises.
function M.view(decls, values)
   local sections = {}
   for name, d in pairs(decls) do
      sections[d.section] = sections[d.section] or {}
      if d.key then sections[d.section][d.key] = name end
   end
   local function read_only() error("parameters are read-only", 2) end
   local views = {}
   for section, keys in pairs(sections) do
      views[section] = setmetatable({}, {
         __index = function(_, key)
            if keys[key] then return values[keys[key]] end
            local declared = M.sorted(keys)
            for i, k in ipairs(declared) do declared[i] = section .. "." .. k end
            error(("no parameter %s.%s is declared (declared: %s)"):format(section, tostring(key),
               table.concat(declared, ", ")), 2)
         end,
         __newindex = read_only,
      })
   end
   return setmetatable({}, {
      __index = function(_, section)
         if decls[section] and decls[section].type == "map" then return values[section] end
         return views[section] or error(("no parameter section '%s' is declared"):format(tostring(section)), 2)
      end,
      __newindex = read_only,
   })
end

return M
