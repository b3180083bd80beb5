--- The base dialect: what every supported server shares, and the basic facts.
-- Facts are called as `fact(d, ctx, ...)` on a live server; `described` answers the same
-- question for a described server as `fn(d, description, ...)`.
-- @module myseal.dialect.base
local sqltext = require "myseal.sqltext"

local base = {
   --- The group runbooks write server options to.
   server_group = "mysqld",
   --- Schemas that belong to the server, not to applications.
   system_schemas = { mysql = true, information_schema = true, performance_schema = true, sys = true },
}

--- Option groups the server reads, in the order it reads them.
function base.server_groups(_)
   return { "mysqld", "server" }
end

--- Quote an identifier with backticks (a backtick inside is doubled).
-- @param name identifier
-- @return quoted identifier
function base.ident(_, name)
   return sqltext.ident(name)
end

--- Quote a value as an SQL string literal (for statements that take no placeholders,
-- such as ALTER USER); prefer `?` placeholders everywhere else.
-- @param v string or number
-- @return literal
function base.literal(_, v)
   return sqltext.literal(v)
end

--- An account name `'user'@'host'` for ALTER USER and friends.
-- @param user user name
-- @param host host pattern
-- @return string
function base.account(_, user, host)
   return sqltext.literal(user) .. "@" .. sqltext.literal(host)
end

--- "MySQL 8.0.36" / "MariaDB 10.11.6".
function base.describe(d)
   return ("%s %s"):format(d.product, d.version)
end

local facts = {}
local described = {}
base.facts = facts
base.described = described

-- SHOW GLOBAL VARIABLES / STATUS LIKE ?, answered by a description's `variables` / `status` table.
local function show_fact(name, what, field)
   facts[name] = function(_, ctx, key)
      local rows = ctx:query("SHOW GLOBAL " .. what .. " LIKE ?", key)
      return rows[1] and rows[1][2] or nil
   end
   described[name] = function(_, desc, key)
      return desc[field] and desc[field][key] or nil
   end
end

--- fact variable(name): the value of a global variable, a string, or nil when there is none.
show_fact("variable", "VARIABLES", "variables")
--- fact status(name): the value of a global status variable, a string, or nil.
show_fact("status", "STATUS", "status")

--- The status of a plugin ("ACTIVE", "DISABLED", ...) or nil when it is not loaded.
function facts.plugin(_, ctx, name)
   local rows = ctx:query("SELECT PLUGIN_STATUS FROM INFORMATION_SCHEMA.PLUGINS WHERE PLUGIN_NAME = ?", name)
   return rows[1] and rows[1][1] or nil
end
function described.plugin(_, desc, name)
   return desc.plugins and desc.plugins[name] or nil
end

--- Base tables of the applications (system schemas left out), largest first:
-- list of `{ schema, name, engine, bytes, create_options }`.
function facts.tables(d, ctx)
   local out = {}
   local rows = ctx:query([[
      SELECT TABLE_SCHEMA, TABLE_NAME, ENGINE, DATA_LENGTH + INDEX_LENGTH, CREATE_OPTIONS
      FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = 'BASE TABLE'
      ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_SCHEMA, TABLE_NAME]])
   for _, r in ipairs(rows) do
      if not d.system_schemas[r[1]] then
         out[#out + 1] = { schema = r[1], name = r[2], engine = sqltext.value(r[3]),
                           bytes = math.tointeger(tonumber(sqltext.value(r[4]) or 0)) or 0,
                           create_options = sqltext.value(r[5]) or "" }
      end
   end
   return out
end
function described.tables(_, desc)
   return desc.tables or {}
end

--- Accounts: list of `{ user, host, ssl_type }` (ssl_type '' | ANY | X509 | SPECIFIED).
function facts.accounts(_, ctx)
   local out = {}
   for _, r in ipairs(ctx:query("SELECT User, Host, ssl_type FROM mysql.user ORDER BY User, Host")) do
      out[#out + 1] = { user = r[1], host = r[2], ssl_type = sqltext.value(r[3]) or "" }
   end
   return out
end
function described.accounts(_, desc)
   return desc.accounts or {}
end

return { { "base", nil, base } }
