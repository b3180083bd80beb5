--- Structure-aware edits of one attribute of one XML element (Tomcat's context.xml, server.xml),
-- keeping every other byte of the file as it was: comments, CDATA, entities, quotes, CRLF.
--
-- An element is chosen by `element` (its tag name) and `where` (attributes it must have, compared
-- after entity decoding); exactly one element may match.
-- @module myseal.xmledit
local M = {}

local function line_of(text, pos)
   return select(2, text:sub(1, pos - 1):gsub("\n", "")) + 1
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }

local function decode(s)
   return (s:gsub("&(#?x?)(%w+);", function(kind, body)
      if kind == "" then return ENTITIES[body] end
      local n = kind == "#x" and tonumber(body, 16) or (kind == "#" and tonumber(body))
      if n and n < 0x110000 then return utf8.char(n) end
      return nil
   end))
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", ["\t"] = "&#9;", ["\n"] = "&#10;", ["\r"] = "&#13;",
                  ['"'] = "&quot;", ["'"] = "&apos;" }

--- Escape a value for an attribute quoted with `quote`.
-- @param s value
-- @param quote '"' or "'"
-- @return escaped text
function M.escape(s, quote)
   return (s:gsub(quote == "'" and "[&<\t\n\r']" or "[&<\t\n\r\"]", ESCAPES))
end

local NAME = "[%a_:][%w_:%.%-]*"

-- Parse a start tag at `pos` ("<" already seen); returns the element or nil, message.
local function start_tag(text, pos)
   local name_end = select(2, text:find("^" .. NAME, pos + 1))
   if not name_end then return nil, "a tag without a name" end
   local el = { name = text:sub(pos + 1, name_end), pos = pos, attrs = {}, list = {} }
   local i = name_end + 1
   while true do
      local after = select(2, text:find("^%s*", i)) + 1
      local c = text:sub(after, after)
      el.self_closing = c == "/" and text:sub(after + 1, after + 1) == ">"
      if c == ">" or el.self_closing then
         el.stop, el.insert_at = el.self_closing and after + 1 or after, i
         return el
      elseif c == "" then
         return nil, ("<%s> is not closed"):format(el.name)
      end
      if after == i then return nil, ("<%s>: attributes must be separated by spaces"):format(el.name) end
      local a1, a2 = text:find("^" .. NAME, after)
      if not a1 then return nil, ("<%s>: bad attribute"):format(el.name) end
      local aname = text:sub(a1, a2)
      local q = select(2, text:find("^%s*=%s*", a2 + 1))
      if not q then return nil, ("<%s>: attribute %s has no value"):format(el.name, aname) end
      local quote = text:sub(q + 1, q + 1)
      if quote ~= '"' and quote ~= "'" then
         return nil, ("<%s>: the value of %s must be quoted"):format(el.name, aname)
      end
      local close = text:find(quote, q + 2, true)
      if not close then return nil, ("<%s>: the value of %s is not closed"):format(el.name, aname) end
      local raw = text:sub(q + 2, close - 1)
      if raw:find("<", 1, true) then
         return nil, ("<%s>: '<' in the value of %s"):format(el.name, aname)
      end
      if el.attrs[aname] then return nil, ("<%s>: attribute %s twice"):format(el.name, aname) end
      local attr = { name = aname, start = i, vstart = q + 2, vstop = close - 1, quote = quote,
                     value = decode(raw) }
      el.attrs[aname] = attr
      el.list[#el.list + 1] = attr
      i = close + 1
   end
end

-- What the parser steps over: comments, CDATA sections, processing instructions.
local SKIPPED = { { "<!--", "-->", "a comment" }, { "<![CDATA[", "]]>", "a CDATA section" },
                  { "<?", "?>", "a processing instruction" } }
local function skipped(text, lt)
   for _, s in ipairs(SKIPPED) do
      if text:sub(lt, lt + #s[1] - 1) == s[1] then return s end
   end
   return nil
end

--- Parse `text` into its elements (start tags with attributes), checking that it is well formed
-- (tags balanced, attributes quoted, comments and sections closed).
-- @param text the document
-- @param name file name for messages
-- @return list of elements `{ name, pos, line, attrs = { name -> { value, ... } } }` | nil, message
function M.elements(text, name)
   name = name or "xml"
   local out, stack = {}, {}
   local i = 1
   local function bad(pos, msg)
      return nil, ("%s:%d: %s"):format(name, line_of(text, pos), msg)
   end
   while true do
      local lt = text:find("<", i, true)
      if not lt then break end
      local skip = skipped(text, lt)
      if skip then
         local e = text:find(skip[2], lt + #skip[1], true)
         if not e then return bad(lt, skip[3] .. " is not closed") end
         i = e + #skip[2]
      elseif text:sub(lt, lt + 1) == "<!" then
         -- DOCTYPE, with an optional internal subset in brackets
         local depth, j = 0, lt + 2
         while true do
            local c = text:sub(j, j)
            if c == "" then return bad(lt, "a declaration is not closed") end
            if c == "[" then depth = depth + 1 elseif c == "]" then depth = depth - 1 end
            if c == ">" and depth == 0 then break end
            j = j + 1
         end
         i = j + 1
      elseif text:sub(lt, lt + 1) == "</" then
         local e = text:find(">", lt, true)
         if not e then return bad(lt, "an end tag is not closed") end
         local ename = text:sub(lt + 2, e - 1):match("^(" .. NAME .. ")%s*$")
         local open = table.remove(stack)
         if not ename or not open or open.name ~= ename then
            return bad(lt, ("</%s> does not close %s"):format(ename or "?",
               open and ("<" .. open.name .. "> of line " .. open.line) or "any element"))
         end
         i = e + 1
      else
         local el, err = start_tag(text, lt)
         if not el then return bad(lt, err) end
         el.line = line_of(text, lt)
         out[#out + 1] = el
         if not el.self_closing then stack[#stack + 1] = el end
         i = el.stop + 1
      end
   end
   if #stack > 0 then
      return bad(stack[#stack].pos, ("<%s> is never closed"):format(stack[#stack].name))
   end
   if #out == 0 then return nil, name .. ": no element (is it XML?)" end
   return out
end

local function describe(spec)
   local parts = {}
   for k, v in pairs(spec.where or {}) do parts[#parts + 1] = ("%s=%q"):format(k, v) end
   table.sort(parts)
   return "<" .. spec.element .. (#parts > 0 and " " .. table.concat(parts, " ") or "") .. ">"
end

--- The one element matching `spec` (`{ element = , where = { attr = value } }`).
-- @param text document
-- @param spec selector
-- @param name file name for messages
-- @return element | nil, message
function M.find(text, spec, name)
   if type(spec) ~= "table" or type(spec.element) ~= "string" then
      error("xmledit: spec.element (a tag name) is required", 2)
   end
   local els, err = M.elements(text, name)
   if not els then return nil, err end
   local found = {}
   for _, el in ipairs(els) do
      if el.name == spec.element then
         local ok = true
         for k, v in pairs(spec.where or {}) do
            if not el.attrs[k] or el.attrs[k].value ~= v then ok = false end
         end
         if ok then found[#found + 1] = el end
      end
   end
   if #found == 0 then
      return nil, ("%s: no %s element"):format(name or "xml", describe(spec))
   elseif #found > 1 then
      local where = {}
      for _, el in ipairs(found) do where[#where + 1] = tostring(el.line) end
      return nil, ("%s: %d %s elements (lines %s): narrow the choice with where"):format(
         name or "xml", #found, describe(spec), table.concat(where, ", "))
   end
   return found[1]
end

--- The value of one attribute of the matching element (nil when the attribute is absent).
-- @param text document
-- @param spec `{ element = , where = , attribute = }`
-- @param name file name for messages
-- @return value (or nil), element | nil, message
function M.get(text, spec, name)
   local el, err = M.find(text, spec, name)
   if not el then return nil, err end
   local a = el.attrs[spec.attribute]
   return a and a.value, el
end

--- Set (or with nil, remove) one attribute of the matching element; every other byte stays.
-- @param text document
-- @param spec `{ element = , where = , attribute = , value = string | function(old) -> new }`
-- @param name file name for messages
-- @return new text | nil, message
function M.set(text, spec, name)
   if type(spec.attribute) ~= "string" or not spec.attribute:match("^" .. NAME .. "$") then
      error("xmledit: spec.attribute must be an attribute name", 2)
   end
   local el, err = M.find(text, spec, name)
   if not el then return nil, err end
   local a = el.attrs[spec.attribute]
   local value = spec.value
   if type(value) == "function" then value = value(a and a.value) end
   if value ~= nil and type(value) ~= "string" then
      error("xmledit: the new value must be a string (or nil to remove the attribute)", 2)
   end
   local new
   if a and value ~= nil then
      new = text:sub(1, a.vstart - 1) .. M.escape(value, a.quote) .. text:sub(a.vstop + 1)
   elseif a then
      new = text:sub(1, a.start - 1) .. text:sub(a.vstop + 2)
   elseif value ~= nil then
      -- after the last attribute, in the quoting style of the element's other attributes
      local quote = el.list[1] and el.list[1].quote or '"'
      new = text:sub(1, el.insert_at - 1) .. " " .. spec.attribute .. "=" .. quote
         .. M.escape(value, quote) .. quote .. text:sub(el.insert_at)
   else
      new = text
   end
   return new
end

return M
