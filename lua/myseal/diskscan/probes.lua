--- Probes for the disk scan: distinctive values drawn from the application's own rows.
--
-- A probe is plaintext that must not be readable in any file the server writes once
-- the data is encrypted. Probes are secrets: they live in this process's memory only,
-- inside a `Probes` object whose visible fields (count, sources, notes) never hold a
-- value, so printing, logging or JSON-encoding it shows no probe. `probes:forget()`
-- drops the values (Lua strings cannot be wiped; the C copies the scanner makes are).
--
-- What makes a value a good probe: long enough to be unlikely by chance (`min_length`,
-- 8 bytes by default), not a run of a few characters ("xxxxxxxx"), with some letters
-- (dates and numbers also appear in logs and in binary headers), unique in the sample,
-- and absent from the files of a fresh server (the help tables hold English words, the
-- sys schema SQL keywords, the account tables "localhost").
-- @module myseal.diskscan.probes
local sys = require "sys"
local mysql = require "mysql"
local value = require("myseal.sqltext").value

local M = {}

local SYSTEM_SCHEMAS = { mysql = true, information_schema = true, performance_schema = true, sys = true }

-- Column types whose bytes are stored as given (ENUM and SET are stored as numbers).
local STRING_TYPES = {
   char = true, varchar = true, tinytext = true, text = true, mediumtext = true, longtext = true,
   binary = true, varbinary = true, tinyblob = true, blob = true, mediumblob = true, longblob = true,
}

local DEFAULTS = { per_table = 3, rows = 100, min_length = 8, max_length = 64, columns = 16 }

local Probes = { __name = "myseal.diskscan.Probes" }
Probes.__index = Probes

-- The values of each Probes object, out of its own fields (weak: they go with it).
local secret = setmetatable({}, { __mode = "k" })

function Probes:__tostring()
   return ("%d probes: %d from %d tables, %d marker%s"):format(self.count, self.count - self.markers,
      self.tables, self.markers, self.markers == 1 and "" or "s")
end

--- Drops the values: the object keeps its counts and sources, and cannot scan again.
function Probes:forget()
   local s = secret[self]
   if s then
      for i in ipairs(s) do s[i] = nil end
      secret[self] = nil
   end
end

--- The values, for the scanner only (never print them).
-- @return list of strings, or nil once forgotten
function M.values(p)
   return secret[p]
end

--- Is `v` distinctive enough to be a probe? (see the module comment)
-- @param v bytes
-- @param min_length shortest acceptable length
-- @return true or false
function M.distinctive(v, min_length)
   if #v < min_length then return false end
   local seen, distinct, letters, high = {}, 0, 0, false
   for i = 1, #v do
      local b = v:byte(i)
      if not seen[b] then seen[b] = true; distinct = distinct + 1 end
      if (b >= 65 and b <= 90) or (b >= 97 and b <= 122) then letters = letters + 1 end
      if b >= 128 then high = true end
   end
   return distinct >= 5 and (letters >= 3 or high)
end

-- The base tables in scope with their string columns: { schema, name, columns = {...} }.
local function tables_in_scope(conn, opts)
   local rows, err = conn:query([[
      SELECT t.TABLE_SCHEMA, t.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.EXTRA
      FROM information_schema.TABLES t
      JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
      WHERE t.TABLE_TYPE = 'BASE TABLE'
      ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME, c.ORDINAL_POSITION]])
   if not rows then return nil, "cannot list the tables: " .. err end
   local only
   if opts.schemas then
      only = {}
      local present = {}
      for _, r in ipairs(rows) do present[r[1]] = true end
      local schemata = conn:query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
      for _, r in ipairs(schemata or {}) do present[r[1]] = true end
      for _, s in ipairs(opts.schemas) do
         if not present[s] then return nil, ("schema '%s' does not exist"):format(s) end
         only[s] = true
      end
   end
   local out, by_name = {}, {}
   for _, r in ipairs(rows) do
      local schema, name, column, dtype, extra = r[1], r[2], r[3], r[4]:lower(), value(r[5]) or ""
      if (only and only[schema]) or (not only and not SYSTEM_SCHEMAS[schema:lower()]) then
         local key = schema .. "\0" .. name
         local t = by_name[key]
         if not t then
            t = { schema = schema, name = name, columns = {} }
            by_name[key] = t
            out[#out + 1] = t
         end
         -- a virtual column is computed on reading: its value is never on disk
         if STRING_TYPES[dtype] and not extra:upper():find("VIRTUAL", 1, true)
            and #t.columns < opts.columns then
            t.columns[#t.columns + 1] = column
         end
      end
   end
   return out
end

-- Candidate values of one table, best first: unique in the sample, then longer, taken
-- in turn from each column so that one wide column does not provide them all.
local function candidates(conn, t, opts)
   if #t.columns == 0 then return {}, "no string columns" end
   local cols = {}
   for i, c in ipairs(t.columns) do
      -- the bytes as stored (the column's character set), at most max_length of them
      cols[i] = ("SUBSTRING(CAST(%s AS BINARY), 1, %d)"):format(mysql.ident(c), opts.max_length)
   end
   local sql = ("SELECT %s FROM %s.%s LIMIT %d"):format(table.concat(cols, ", "), mysql.ident(t.schema),
      mysql.ident(t.name), opts.rows)
   local rows, err = conn:query(sql)
   if not rows then return nil, err end
   local count, per_column = {}, {}
   for _, r in ipairs(rows) do
      for i = 1, #t.columns do
         local v = value(r[i])
         if v and M.distinctive(v, opts.min_length) then
            if not count[v] then
               per_column[i] = per_column[i] or {}
               table.insert(per_column[i], v)
            end
            count[v] = (count[v] or 0) + 1
         end
      end
   end
   local function better(a, b)
      if count[a] ~= count[b] then return count[a] < count[b] end
      if #a ~= #b then return #a > #b end
      return a < b
   end
   local lists, out = {}, {}
   for i = 1, #t.columns do
      if per_column[i] then
         table.sort(per_column[i], better)
         lists[#lists + 1] = per_column[i]
      end
   end
   for depth = 1, math.huge do
      local before = #out
      for _, l in ipairs(lists) do out[#out + 1] = l[depth] end
      if #out == before then break end
   end
   if #out == 0 then return out, "no distinctive values in the sample" end
   return out
end

-- Every regular file under the given paths (files or directories).
local function files_under(paths)
   local out = {}
   local function walk(p)
      local st = sys.stat(p)
      if not st then return end
      if st.type == "directory" then
         for _, n in ipairs(sys.dir(p) or {}) do walk(p .. "/" .. n) end
      elseif st.type == "file" then
         out[#out + 1] = p
      end
   end
   for _, p in ipairs(paths) do walk(p) end
   return out
end

-- The values found in the baseline files (a set), scanning them all at once.
local function in_baseline(values, baseline, threads)
   local found = {}
   local files = files_under(baseline)
   if #values == 0 or #files == 0 then return found end
   local res, err = sys.scan(files, values, { threads = threads })
   if not res then return nil, "cannot scan the baseline: " .. err end
   for _, r in pairs(res) do
      for i in pairs(r.per_pattern or {}) do found[values[i]] = true end
   end
   return found
end

-- A fresh datadir of the same flavour: a sandbox started and shut down for this.
local function fresh_baseline(flavor)
   local sandbox = require "myseal.sandbox"
   local s, err = sandbox.start{ flavor = flavor, name = "scan-base-" .. require("myseal.state").random_hex(4) }
   if not s then return nil, err end
   s:shutdown()
   return s
end

--- Draws probes from the rows of every table in scope.
-- @param conn a `mysql` connection (reads information_schema and a few rows per table)
-- @param opts table, all optional: `schemas` (list; default every schema but mysql,
--   information_schema, performance_schema and sys; a missing one is an error),
--   `per_table` (3), `rows` sampled per table (100), `min_length` (8), `max_length` (64:
--   longer values are searched by their first 64 bytes), `markers` (list of extra probes,
--   each at least `min_length` bytes), `baseline` (list of files or directories whose
--   values are not probes; default a fresh sandbox datadir of the server's flavour;
--   false: none), `threads` for the baseline scan
-- @return Probes (fields: `count`, `tables`, `markers`, `sources` = list of "schema.table"
--   or "marker" per probe, `without` = list of { table, why }, `baseline` = what was
--   used), or nil, message
function M.draw(conn, opts)
   opts = opts or {}
   local o = {}
   for k, v in pairs(DEFAULTS) do o[k] = opts[k] or v end
   o.schemas = opts.schemas
   for i, m in ipairs(opts.markers or {}) do
      if type(m) ~= "string" or #m < o.min_length then
         error(("marker %d is not a string of at least %d bytes"):format(i, o.min_length), 2)
      end
   end
   local tables, err = tables_in_scope(conn, o)
   if not tables then return nil, err end
   local per_table, all, without = {}, {}, {}
   for _, t in ipairs(tables) do
      local list, why = candidates(conn, t, o)
      if not list then return nil, ("cannot sample %s.%s: %s"):format(t.schema, t.name, why) end
      per_table[#per_table + 1] = list
      if why then without[#without + 1] = { table = t.schema .. "." .. t.name, why = why } end
      for _, v in ipairs(list) do all[#all + 1] = v end
   end
   for _, m in ipairs(opts.markers or {}) do all[#all + 1] = m end
   local baseline, note, sb = opts.baseline, nil, nil
   if baseline == nil then
      sb, err = fresh_baseline((conn:server() or { flavor = "mysql" }).flavor)
      if sb then baseline = { sb.datadir } else note = "none (" .. err .. ")" end
   end
   local found = {}
   if baseline then
      found, err = in_baseline(all, baseline, opts.threads)
      note = sb and "a fresh datadir" or table.concat(baseline, ", ")
   end
   if sb then sb:stop() end
   if not found then return nil, err end
   local values, sources, dropped = {}, {}, 0
   for k, list in ipairs(per_table) do
      local t, taken = tables[k], 0
      for _, v in ipairs(list) do
         if taken == o.per_table then break end
         if found[v] then
            dropped = dropped + 1
         else
            values[#values + 1] = v
            sources[#sources + 1] = t.schema .. "." .. t.name
            taken = taken + 1
         end
      end
      if taken == 0 and #list > 0 then
         without[#without + 1] = { table = t.schema .. "." .. t.name, why = "every candidate is in the baseline" }
      end
   end
   local markers = 0
   for i, m in ipairs(opts.markers or {}) do
      if found[m] then
         without[#without + 1] = { table = "marker " .. i, why = "found in the baseline" }
      else
         values[#values + 1] = m
         sources[#sources + 1] = "marker"
         markers = markers + 1
      end
   end
   local p = setmetatable({ count = #values, tables = #tables, markers = markers, sources = sources,
      without = without, dropped = dropped, baseline = note or "none" }, Probes)
   secret[p] = values
   return p
end

return M
