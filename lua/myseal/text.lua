--- Words for people: sizes, counts, hex. One definition each, for the runbooks, the report and
-- the commands, so that a plan and a progress bar say the same thing.
-- @module myseal.text
local M = {}

--- A size in bytes as people read it: "512 B", "3.4 MiB", "1.2 GiB" (powers of 1024).
-- @param n bytes
-- @return text
function M.bytes(n)
   local units = { "B", "KiB", "MiB", "GiB", "TiB" }
   local i = 1
   while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
   return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

--- A count with its noun: "1 table", "3 tables", "0 tables" (`plural` when it is not noun .. "s").
-- @param n count
-- @param noun singular
-- @param plural optional plural
-- @return text
function M.count(n, noun, plural)
   return ("%d %s"):format(n, n == 1 and noun or (plural or noun .. "s"))
end

--- Bytes as lower-case hex.
-- @param s bytes
-- @return hex text
function M.hex(s)
   return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- A value as a message shows it: empty or missing values say so instead of vanishing
-- ("ssl_ca is (empty), not ...").
-- @param v value or nil
-- @return text
function M.shown(v)
   if v == nil then return "(not set)" end
   if v == "" then return "(empty)" end
   return tostring(v)
end

return M
