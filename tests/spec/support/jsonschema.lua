--- A small JSON Schema validator for the specs: the keywords docs/check.schema.json uses
-- (type, const, enum, required, properties, additionalProperties, items, minimum, pattern
-- with {n} counts). Returns true, or false and the path of the first violation.
local json = require "myseal.json"

local M = {}

-- ECMA-262 pattern with `x{n}` counts (the only part our schemas use) as a Lua pattern
local function lua_pattern(p)
   p = p:gsub("(%b[]){(%d+)}", function(class, n) return class:rep(tonumber(n)) end)
   p = p:gsub("([^%%%]]){(%d+)}", function(c, n) return c:rep(tonumber(n)) end)
   -- '-' is a quantifier in Lua patterns: outside a class it stands for itself here
   local out, depth = {}, 0
   for c in p:gmatch(".") do
      if c == "[" then depth = depth + 1 elseif c == "]" then depth = depth - 1 end
      out[#out + 1] = (c == "-" and depth == 0) and "%-" or c
   end
   return table.concat(out)
end

local function type_of(v)
   if v == json.null then return "null" end
   local t = type(v)
   if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
   if t == "table" then
      return (getmetatable(v) == json.array or (#v > 0 and next(v, #v) == nil)) and "array" or "object"
   end
   return t
end

local function check(schema, v, path)
   local t = type_of(v)
   if schema.type then
      local ok = schema.type == t or (schema.type == "number" and t == "integer")
         or (schema.type == "array" and t == "object" and next(v) == nil)
         or (schema.type == "object" and t == "array" and next(v) == nil)
      if not ok then return false, ("%s: %s, not %s"):format(path, t, schema.type) end
   end
   if schema.const ~= nil and v ~= schema.const then return false, path .. ": not " .. tostring(schema.const) end
   if schema.enum then
      local found = false
      for _, e in ipairs(schema.enum) do if e == v then found = true end end
      if not found then return false, ("%s: %s is not one of the allowed values"):format(path, tostring(v)) end
   end
   if schema.minimum and type(v) == "number" and v < schema.minimum then return false, path .. ": below minimum" end
   if schema.pattern and type(v) == "string" and not v:find(lua_pattern(schema.pattern)) then
      return false, ("%s: %q does not match %s"):format(path, v, schema.pattern)
   end
   if type(v) == "table" and (t == "object" or schema.properties) then
      for _, k in ipairs(schema.required or {}) do
         if v[k] == nil then return false, ("%s: %s is missing"):format(path, k) end
      end
      for k, x in pairs(v) do
         local sub = schema.properties and schema.properties[k]
         if sub then
            local ok, why = check(sub, x, path .. "." .. k)
            if not ok then return false, why end
         elseif schema.additionalProperties == false then
            return false, ("%s: %s is not allowed"):format(path, k)
         elseif type(schema.additionalProperties) == "table" then
            local ok, why = check(schema.additionalProperties, x, path .. "." .. k)
            if not ok then return false, why end
         end
      end
   end
   if type(v) == "table" and schema.items then
      for i, x in ipairs(v) do
         local ok, why = check(schema.items, x, ("%s[%d]"):format(path, i))
         if not ok then return false, why end
      end
   end
   return true
end

--- Validate a decoded JSON value against a decoded schema.
function M.validate(schema, value)
   return check(schema, value, "$")
end

return M
