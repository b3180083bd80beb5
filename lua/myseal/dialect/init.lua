--- Server dialects: what differs between MySQL 5.7 / 8.0 / 8.4 and MariaDB 10.x / 11.x,
-- in one place (this directory: base.lua, mysql.lua, mariadb.lua, each by topic), so runbooks
-- and the library ask instead of branching on the flavour or the version.
--
-- Replication is one file for every flavour (replication.lua), layered over them.
-- Dialects form chains, most specific first:
--   mysql-8.4 -> mysql-8.0 -> mysql-5.7 -> mysql -> base
--   mariadb-11 -> mariadb-10 -> mariadb -> base
-- A dialect object answers `d.key` (values and methods) by walking its chain; at each level
-- a runbook's own additions (its `dialect = {...}` table) come before the stock definition.
-- `d.facts` are read-only questions answered by a live server (`fact(d, ctx, ...)`) and
-- `d.described` answers the same questions for a described server (`fn(d, desc, ...)`).
-- Reading a key no dialect in the chain defines raises, naming the key and the dialect.
-- @module myseal.dialect
local M = {}

local defs = {}      -- name -> { parent = name|nil, entries = table }
local order = {}     -- names in definition order

--- Define (or redefine) a dialect.
-- @param name e.g. "mysql-8.0"
-- @param parent name of the parent dialect, or nil for base
-- @param entries table of values, methods, `facts` and `described`
function M.define(name, parent, entries)
   if parent ~= nil and not defs[parent] then
      error(("dialect.define: unknown parent dialect '%s'"):format(tostring(parent)), 2)
   end
   if not defs[name] then order[#order + 1] = name end
   defs[name] = { parent = parent, entries = entries or {} }
end

-- Merge dialect entries `src` into `dst`: `facts` and `described` are merged key by key (into a
-- new table), other entries replaced.
local function merge_entries(dst, src)
   for k, v in pairs(src) do
      if (k == "facts" or k == "described") and type(dst[k]) == "table" then
         local m = {}
         for fk, fv in pairs(dst[k]) do m[fk] = fv end
         for fk, fv in pairs(v) do m[fk] = fv end
         dst[k] = m
      else
         dst[k] = v
      end
   end
end

--- Dialect additions `b` layered over additions `a` (each `{ [dialect name] = entries }`), as
-- a site runbook's `dialect = {...}` over the runbook it extends.
-- @param a additions
-- @param b additions
-- @return new additions
function M.merge(a, b)
   local out = {}
   for _, adds in ipairs{ a, b } do
      for name, t in pairs(adds) do
         out[name] = out[name] or {}
         merge_entries(out[name], t)
      end
   end
   return out
end

--- Add entries to a stock dialect for every runbook (site code). Runbooks usually prefer their
-- own `dialect = {...}` table, which the engine layers on for that runbook only.
-- @param name dialect name
-- @param entries table; `facts` and `described` are merged, not replaced
function M.extend(name, entries)
   local def = defs[name]
   if not def then error(("dialect.extend: unknown dialect '%s'"):format(tostring(name)), 2) end
   merge_entries(def.entries, entries)
end

--- Is `name` a defined dialect?
-- @param name string
-- @return boolean
function M.known(name) return defs[name] ~= nil end

--- Names of the defined dialects.
-- @return list of strings
function M.names() return table.move(order, 1, #order, 1, {}) end

local function chain(name)
   local out = {}
   while name do
      out[#out + 1] = name
      name = defs[name].parent
   end
   return out
end

--- Parse a version string "8.0.36-log" -> major, minor, patch (integers).
-- @param v version string
-- @return major, minor, patch | nil
function M.parse_version(v)
   local a, b, c = tostring(v):match("^(%d+)%.(%d+)%.?(%d*)")
   if not a then return nil end
   return tonumber(a), tonumber(b), tonumber(c) or 0
end

local function compare(a1, a2, a3, b1, b2, b3)
   if a1 ~= b1 then return a1 < b1 and -1 or 1 end
   if a2 ~= b2 then return a2 < b2 and -1 or 1 end
   if a3 ~= b3 then return a3 < b3 and -1 or 1 end
   return 0
end

-- Which dialect serves a flavour and version. Versions newer than the newest known one get
-- the newest dialect of their flavour.
local function pick(flavor, major, minor)
   if flavor == "mysql" or flavor == "percona" then
      if compare(major, minor, 0, 5, 7, 0) < 0 then return nil end
      if major == 5 then return "mysql-5.7" end
      if major == 8 and minor == 0 then return "mysql-8.0" end
      return "mysql-8.4"
   elseif flavor == "mariadb" then
      if major < 10 then return nil end
      if major == 10 then return "mariadb-10" end
      return "mariadb-11"
   end
   return nil
end

-- Versions assumed for a described server given without a patch level ("mysql-8.0"), or
-- with its major version only ("mariadb-11"): the newest release we know of. Others get .0.
M.assumed = {
   ["mysql-5.7"] = "5.7.44", ["mysql-8.0"] = "8.0.40", ["mysql-8.4"] = "8.4.3", ["mysql-8"] = "8.4.3",
   ["mariadb-10.6"] = "10.6.20", ["mariadb-10.11"] = "10.11.10", ["mariadb-11.4"] = "11.4.4",
   ["mariadb-10"] = "10.11.10", ["mariadb-11"] = "11.4.4",
}

--- Parse a server description "mysql-8.0", "mysql-8.0.36", "mariadb-10.11", "mariadb-11".
-- @param spec string
-- @return { flavor, version, major, minor, patch } | nil, message
function M.parse_spec(spec)
   local flavor, v = tostring(spec):match("^(%a+)%-([%d.]+)$")
   if not flavor or not ({ mysql = 1, mariadb = 1, percona = 1 })[flavor] then
      return nil, ("'%s' is not a server: write FLAVOR-VERSION, e.g. mysql-5.7, mysql-8.0.36, mariadb-10.11")
         :format(tostring(spec))
   end
   local parts = {}
   for p in v:gmatch("%d+") do parts[#parts + 1] = tonumber(p) end
   if #parts < 3 then
      local assumed = M.assumed[flavor .. "-" .. v]
      if assumed then
         parts = { M.parse_version(assumed) }
      elseif #parts == 1 then
         return nil, ("'%s': give at least MAJOR.MINOR"):format(spec)
      else
         parts[3] = 0
      end
   end
   local major, minor, patch = parts[1], parts[2], parts[3]
   if not pick(flavor, major, minor) then
      return nil, ("%s %d.%d is not supported (MySQL 5.7 and later, MariaDB 10 and later)")
         :format(flavor, major, minor)
   end
   return { flavor = flavor, major = major, minor = minor, patch = patch,
            version = ("%d.%d.%d"):format(major, minor, patch) }
end

local Dialect = {}

local function entry(t, key, sub)
   if not t then return nil end
   if sub then return t[sub] and t[sub][key] end
   return t[key]
end

local function lookup(self, key, sub)
   local adds = rawget(self, "_additions")
   for _, name in ipairs(rawget(self, "_chain")) do
      local v = entry(adds[name], key, sub)
      if v == nil then v = entry(defs[name].entries, key, sub) end
      if v ~= nil then return v end
   end
   return nil
end

local function sub_view(self, sub)
   return setmetatable({}, { __index = function(_, key) return lookup(self, key, sub) end })
end

Dialect.__index = function(self, key)
   local m = Dialect[key]
   if m then return m end
   if key == "facts" or key == "described" then return sub_view(self, key) end
   local v = lookup(self, key)
   if v == nil then
      error(("dialect %s has no '%s'"):format(rawget(self, "name"), tostring(key)), 2)
   end
   return v
end
Dialect.__name = "myseal.Dialect"
Dialect.__tostring = function(self) return ("dialect %s (%s %s)"):format(self.name, self.flavor, self.version) end

--- Does the chain define `key`? (Use instead of reading a key that may be missing.)
-- @param key string
-- @return boolean
function Dialect:has(key) return lookup(self, key) ~= nil end

--- Is the server at least this version? `d:at_least("8.0.16")`
-- @param v version string
-- @return boolean
function Dialect:at_least(v)
   local a, b, c = M.parse_version(v)
   if not a then error(("at_least: bad version '%s'"):format(tostring(v)), 2) end
   return compare(self.major, self.minor, self.patch, a, b, c) >= 0
end

--- Is `name` this dialect or one of its ancestors? (For the dialect layer itself; runbooks ask
-- for what they need instead.)
-- @param name dialect name
-- @return boolean
function Dialect:is(name)
   for _, n in ipairs(rawget(self, "_chain")) do
      if n == name then return true end
   end
   return false
end

--- A dialect object for a server.
-- @param info `{ flavor, version, major, minor, patch }` (conn:server() or dialect.parse_spec)
-- @param additions optional runbook additions keyed by dialect name
-- @return dialect | nil, message
function M.for_server(info, additions)
   local major, minor, patch = info.major, info.minor, info.patch
   if not major then major, minor, patch = M.parse_version(info.version) end
   local name = major and pick(info.flavor, major, minor)
   if not name then
      return nil, ("%s %s is not supported (MySQL 5.7 and later, MariaDB 10 and later)"):format(
         tostring(info.flavor), tostring(info.version))
   end
   return setmetatable({
      name = name, flavor = info.flavor, version = info.version or ("%d.%d.%d"):format(major, minor, patch),
      major = major, minor = minor, patch = patch or 0,
      _chain = chain(name), _additions = additions or {},
   }, Dialect)
end

-- The stock dialects: each file returns a list of { name, parent, entries }.
for _, file in ipairs{ "base", "mysql", "mariadb" } do
   for _, d in ipairs(require("myseal.dialect." .. file)) do M.define(d[1], d[2], d[3]) end
end
-- topics kept in one file for every flavour, layered over them
for name, entries in pairs(require "myseal.dialect.replication") do M.extend(name, entries) end

return M
