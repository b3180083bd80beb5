--- Oracle MySQL (and Percona Server): 5.7, 8.0, 8.4 (and later releases, served by 8.4).
-- @module myseal.dialect.mysql

local mysql = {
   product = "MySQL",
   --- Which keyring the server uses for encryption at rest: "keyring_file" (plugin, 5.7 - 8.0)
   -- or "component_keyring_file" (component, 8.4).
   keyring = "keyring_file",
}

--- Option groups the server reads: [mysqld], [server], [mysqld-X.Y].
function mysql.server_groups(d)
   return { "mysqld", "server", ("mysqld-%d.%d"):format(d.major, d.minor) }
end

--- The statement that reloads the TLS certificates without a restart, or nil when the server
-- needs a restart (before 8.0.16).
function mysql.tls_reload_sql(d)
   if d:at_least("8.0.16") then return "ALTER INSTANCE RELOAD TLS" end
   return nil
end

--- The statement that encrypts one table (a COPY rebuild: writes wait for it).
-- @param schema schema name
-- @param table table name
function mysql.encrypt_table_sql(d, schema, table)
   return ("ALTER TABLE %s.%s ENCRYPTION='Y'"):format(d:ident(schema), d:ident(table))
end

local mysql84 = { keyring = "component_keyring_file" }

return {
   { "mysql", "base", mysql },
   { "mysql-5.7", "mysql", {} },
   { "mysql-8.0", "mysql-5.7", {} },
   { "mysql-8.4", "mysql-8.0", mysql84 },
}
