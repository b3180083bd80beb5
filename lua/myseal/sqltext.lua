--- SQL text helpers for the engine and the dialects: literals for statements that take no
-- placeholders (ALTER USER), and statements with their `?` values filled in for plan output
-- and the journal (never sent to a server: values are bound by the mysql module).
-- @module myseal.sqltext
local M = {}

local function null()
   return require("mysql").null
end

--- A value from a result row, with SQL NULL as nil.
-- @param v a value of a mysql result row
-- @return v, or nil for NULL
function M.value(v)
   if v == nil or v == null() then return nil end
   return v
end

--- Quote an identifier (the mysql module's helper: backticks, doubled inside).
-- @param name string
-- @return quoted identifier
function M.ident(name)
   return require("mysql").ident(name)
end

local ESCAPES = {
   ["\0"] = "\\0", ["\n"] = "\\n", ["\r"] = "\\r", ["\\"] = "\\\\", ["'"] = "\\'",
   ['"'] = '\\"', ["\26"] = "\\Z",
}

--- An SQL literal: a quoted string (escaped as mysql_real_escape_string does), a number,
-- TRUE/FALSE, or NULL for mysql.null.
-- @param v string, number, boolean or mysql.null
-- @return literal text
function M.literal(v)
   local t = type(v)
   if t == "string" then
      return "'" .. v:gsub("[%z\n\r\\'\"\26]", ESCAPES) .. "'"
   elseif t == "number" then
      return tostring(v)
   elseif t == "boolean" then
      return v and "TRUE" or "FALSE"
   elseif v == null() then
      return "NULL"
   end
   error(("cannot write a %s as an SQL literal"):format(t), 2)
end

-- Positions of the `?` placeholders in sql: outside quotes, backticks and comments.
local function placeholders(sql)
   local out, i, n = {}, 1, #sql
   while i <= n do
      local c = sql:sub(i, i)
      if c == "'" or c == '"' or c == "`" then
         local j = i + 1
         while j <= n do
            local d = sql:sub(j, j)
            if d == "\\" and c ~= "`" then
               j = j + 1
            elseif d == c then
               if sql:sub(j + 1, j + 1) == c then j = j + 1 else break end
            end
            j = j + 1
         end
         i = j + 1
      elseif c == "#" or (c == "-" and sql:sub(i, i + 2):match("^%-%-[%s]")) then
         i = (sql:find("\n", i, true) or n) + 1
      elseif c == "/" and sql:sub(i + 1, i + 1) == "*" then
         local e = sql:find("*/", i + 2, true)
         i = e and e + 2 or n + 1
      else
         if c == "?" then out[#out + 1] = i end
         i = i + 1
      end
   end
   return out
end

--- The statement with its placeholders replaced by literals, for people to read.
-- Raises when the number of values does not match the placeholders (a runbook bug).
-- @param sql statement with `?` placeholders
-- @param args array of values (with `n` for trailing nils)
-- @return text
function M.format(sql, args)
   local pos = placeholders(sql)
   local count = args.n or #args
   if #pos ~= count then
      error(("SQL has %d placeholder(s) but %d value(s) were given: %s"):format(#pos, count, sql), 3)
   end
   local out, last = {}, 1
   for k, p in ipairs(pos) do
      out[#out + 1] = sql:sub(last, p - 1)
      local v = args[k]
      out[#out + 1] = v == nil and "NULL" or M.literal(v)
      last = p + 1
   end
   out[#out + 1] = sql:sub(last)
   return table.concat(out)
end

return M
