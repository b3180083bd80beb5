--- SQL text for people: statements with their `?` values shown in place, for plan output and
-- the journal (never sent to a server: values are bound by the mysql module, whose scanner
-- finds the placeholders here too), identifiers quoted; and result rows read: NULL as nil,
-- integers, columns by name.
-- @module myseal.sqltext
local M = {}

--- A value from a result row, with SQL NULL as nil.
-- @param v a value of a mysql result row
-- @return v, or nil for NULL
function M.value(v)
   if v == nil or v == require("mysql").null then return nil end
   return v
end

--- A value from a result row (or a fact) as an integer: nil for NULL, for nil and for what is not one.
-- @param v a value of a mysql result row, a string or nil
-- @return integer | nil
function M.integer(v) return math.tointeger(tonumber(M.value(v) or "")) end

--- The columns of a result by name.
-- @param meta a query's second result (its `columns` are the names in order)
-- @return name -> position in a row
function M.columns(meta)
   local col = {}
   for i, n in ipairs(meta.columns) do col[n] = i end
   return col
end

--- Quote an identifier (the mysql module's helper: backticks, doubled inside).
-- @param name string
-- @return quoted identifier
function M.ident(name) return require("mysql").ident(name) end

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
