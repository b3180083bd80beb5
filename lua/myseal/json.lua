--- JSON for journals, --json events and sandbox state. Small on purpose.
-- encode: tables with keys 1..n (and nothing else) are arrays, others objects
-- with string keys, written in sorted key order so output is stable; an empty
-- table is an object unless it is json.array. Strings must be UTF-8 bytes.
-- decode: strict RFC 8259; returns value, or nil, message naming the offset.
-- @module myseal.json
local M = {}

--- A marker metatable: setmetatable({}, json.array) encodes as [].
M.array = { __name = "json.array" }
--- JSON null when decoding (and encoding).
M.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })

local escapes = {
   ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
   ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function encode_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c)
      return escapes[c] or string.format("\\u%04x", c:byte())
   end) .. '"'
end

local function is_array(t)
   if getmetatable(t) == M.array then return true end
   local n = #t
   if n == 0 then return false end
   local count = 0
   for _ in pairs(t) do count = count + 1 end
   return count == n
end

local encode_value

local function encode_table(t, out, seen)
   if seen[t] then error("json: cannot encode a table that contains itself", 0) end
   seen[t] = true
   if is_array(t) then
      out[#out + 1] = "["
      for i = 1, #t do
         if i > 1 then out[#out + 1] = "," end
         encode_value(t[i], out, seen)
      end
      out[#out + 1] = "]"
   else
      local keys = {}
      for k in pairs(t) do
         if type(k) ~= "string" then error("json: object keys must be strings, got " .. type(k), 0) end
         keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
         if i > 1 then out[#out + 1] = "," end
         out[#out + 1] = encode_string(k) .. ":"
         encode_value(t[k], out, seen)
      end
      out[#out + 1] = "}"
   end
   seen[t] = nil
end

function encode_value(v, out, seen)
   local tv = type(v)
   if v == nil or v == M.null then
      out[#out + 1] = "null"
   elseif tv == "boolean" then
      out[#out + 1] = tostring(v)
   elseif tv == "number" then
      if v ~= v or v == math.huge or v == -math.huge then error("json: cannot encode " .. tostring(v), 0) end
      out[#out + 1] = math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
   elseif tv == "string" then
      out[#out + 1] = encode_string(v)
   elseif tv == "table" then
      encode_table(v, out, seen)
   else
      error("json: cannot encode a " .. tv, 0)
   end
end

--- Encodes a value on one line. Raises on functions, cycles, NaN.
function M.encode(v)
   local out = {}
   encode_value(v, out, {})
   return table.concat(out)
end

-- Decoding ------------------------------------------------------------------

local function decode_error(pos, what)
   error({ json = true, msg = string.format("invalid JSON at byte %d: %s", pos, what) }, 0)
end

local function skip(s, pos)
   return s:find("[^ \t\r\n]", pos) or #s + 1
end

local decode_value

local function decode_string(s, pos)
   local out = {}
   local i = pos + 1
   while true do
      local j = s:find('["\\%c]', i)
      if not j then decode_error(pos, "unterminated string") end
      out[#out + 1] = s:sub(i, j - 1)
      local c = s:sub(j, j)
      if c == '"' then
         return table.concat(out), j + 1
      elseif c == "\\" then
         local e = s:sub(j + 1, j + 1)
         local simple = ({ ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b",
            f = "\f", n = "\n", r = "\r", t = "\t" })[e]
         if simple then
            out[#out + 1] = simple
            i = j + 2
         elseif e == "u" then
            local hex = s:match("^%x%x%x%x", j + 2)
            if not hex then decode_error(j, "bad \\u escape") end
            local cp = tonumber(hex, 16)
            i = j + 6
            if cp >= 0xD800 and cp <= 0xDBFF then
               local lo = s:match("^\\u(%x%x%x%x)", i)
               lo = lo and tonumber(lo, 16)
               if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(j, "unpaired surrogate") end
               cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
               i = i + 6
            elseif cp >= 0xDC00 and cp <= 0xDFFF then
               decode_error(j, "unpaired surrogate")
            end
            out[#out + 1] = utf8.char(cp)
         else
            decode_error(j, "bad escape")
         end
      else
         decode_error(j, "control character in string")
      end
   end
end

function decode_value(s, pos, depth)
   if depth > 200 then decode_error(pos, "nested too deeply") end
   pos = skip(s, pos)
   local c = s:sub(pos, pos)
   if c == "{" then
      local t = {}
      pos = skip(s, pos + 1)
      if s:sub(pos, pos) == "}" then return t, pos + 1 end
      while true do
         if s:sub(pos, pos) ~= '"' then decode_error(pos, "expected a string key") end
         local k
         k, pos = decode_string(s, pos)
         pos = skip(s, pos)
         if s:sub(pos, pos) ~= ":" then decode_error(pos, "expected ':'") end
         t[k], pos = decode_value(s, pos + 1, depth + 1)
         pos = skip(s, pos)
         local d = s:sub(pos, pos)
         if d == "}" then return t, pos + 1 end
         if d ~= "," then decode_error(pos, "expected ',' or '}'") end
         pos = skip(s, pos + 1)
      end
   elseif c == "[" then
      local t = setmetatable({}, M.array)
      pos = skip(s, pos + 1)
      if s:sub(pos, pos) == "]" then return t, pos + 1 end
      local n = 0
      while true do
         n = n + 1
         t[n], pos = decode_value(s, pos, depth + 1)
         pos = skip(s, pos)
         local d = s:sub(pos, pos)
         if d == "]" then return t, pos + 1 end
         if d ~= "," then decode_error(pos, "expected ',' or ']'") end
         pos = pos + 1
      end
   elseif c == '"' then
      return decode_string(s, pos)
   elseif s:find("^true", pos) then
      return true, pos + 4
   elseif s:find("^false", pos) then
      return false, pos + 5
   elseif s:find("^null", pos) then
      return M.null, pos + 4
   else
      local int = s:match("^-?%d+", pos)
      if not int then decode_error(pos, "unexpected character") end
      if int:match("^-?0%d") then decode_error(pos, "leading zero") end
      local e = pos + #int
      local frac = s:match("^%.%d+", e) or ""
      e = e + #frac
      local exp = s:match("^[eE][-+]?%d+", e) or ""
      local num = int .. frac .. exp
      local v = (frac == "" and exp == "") and math.tointeger(tonumber(num)) or tonumber(num)
      if v == nil then decode_error(pos, "bad number") end
      return v, pos + #num
   end
end

--- Decodes one JSON text. Returns the value (null is json.null), or nil and
-- a message with the byte offset.
function M.decode(s)
   local ok, v, pos = pcall(decode_value, s, 1, 0)
   if not ok then
      if type(v) == "table" and v.json then return nil, v.msg end
      error(v, 0)
   end
   pos = skip(s, pos)
   if pos <= #s then return nil, string.format("invalid JSON at byte %d: trailing data", pos) end
   return v
end

return M
