--- Errors the host reports without a traceback.
-- A table error `{ message = ..., exit = N }` reaching the host is printed as
-- `myseal: message` and ends the process with status N. Plain string errors are
-- bugs and keep their traceback.
-- @module myseal.errors
local M = {}

local Error = {}
Error.__index = Error
function Error.__tostring(e) return e.message end

--- Is `e` an expected failure raised by this module?
function M.is(e)
   return getmetatable(e) == Error
end

--- Raise a usage error (exit status 2): bad command line or bad input.
-- @param fmt string.format pattern
function M.usage(fmt, ...)
   error(setmetatable({ message = string.format(fmt, ...), exit = 2 }, Error), 0)
end

--- Raise a failure (exit status 1): a step or an operation failed.
-- @param fmt string.format pattern
function M.fail(fmt, ...)
   error(setmetatable({ message = string.format(fmt, ...), exit = 1 }, Error), 0)
end

--- A chunk's file name from debug info, whole (debug's short_src cuts long paths to 60
-- characters, and messages name runbook files by it).
-- @param info a debug.getinfo table with `source` and `short_src`
-- @return path
function M.source_name(info)
   local src = info.source or ""
   if src:sub(1, 1) == "@" then return src:sub(2) end
   return info.short_src
end

return M
