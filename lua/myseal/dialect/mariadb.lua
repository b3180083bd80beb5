--- MariaDB 10.x and 11.x.
-- @module myseal.dialect.mariadb

local mariadb = {
   product = "MariaDB",
   --- Which keyring the server uses for encryption at rest: the file_key_management plugin.
   keyring = "file_key_management",
}

--- Option groups the server reads, in its order.
function mariadb.server_groups(d)
   local v = ("%d.%d"):format(d.major, d.minor)
   return { "client-server", "server", "mysqld", "mysqld-" .. v, "mariadb", "mariadb-" .. v,
            "mariadbd", "mariadbd-" .. v }
end

--- The statement that reloads the TLS certificates without a restart (10.4.1+), or nil.
function mariadb.tls_reload_sql(d)
   if d:at_least("10.4.1") then return "FLUSH SSL" end
   return nil
end

--- The statement that encrypts one table (INPLACE, online), with an optional key id.
-- @param schema schema name
-- @param table table name
-- @param key_id optional integer key id of the key management plugin
function mariadb.encrypt_table_sql(d, schema, table, key_id)
   local sql = ("ALTER TABLE %s.%s ENCRYPTED=YES"):format(d:ident(schema), d:ident(table))
   if key_id then sql = sql .. (" ENCRYPTION_KEY_ID=%d"):format(key_id) end
   return sql
end

return {
   { "mariadb", "base", mariadb },
   { "mariadb-10", "mariadb", {} },
   { "mariadb-11", "mariadb-10", {} },
}
