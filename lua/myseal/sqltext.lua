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

--- The statement with its placeholders replaced by literals, for people to read.
-- Raises when the number of values does not match the placeholders (a runbook bug).
-- @param sql statement with `?` placeholders
-- @param args array of values (with `n` for trailing nils)
-- @return text
function M.format(sql, args)
   local ok, text = pcall(require("mysql").format, sql, table.unpack(args, 1, args.n or #args))
   if not ok then error(text, 3) end
   return text
end

return M
