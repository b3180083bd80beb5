-- encrypt.lua: the whole story, in the order that never cuts a client off. At rest and the TLS
-- offer go in with one server restart between them (both option files first); then the
-- application tier moves to verified TLS (each data source trusts the CA itself: a context
-- reload, no JVM restart) and, on a replica, its channels to its primary; then enforcement, which
-- watches for clients it cuts off and puts itself back. `myseal rollback encrypt` undoes it in
-- the reverse order. The parts are the stock runbooks; their steps are named part/step here.
local runbook = require "myseal.runbook"
local atrest = require "myseal.atrest"
local intransit = require "myseal.intransit"

return runbook.compose {
   name = "encrypt",
   summary = "the whole story: at rest and TLS with one restart, the application on verified TLS, then enforcement",
   parts = { "at-rest", "in-transit", "app-tomcat", "replica-tls", "tls-enforce" },
   -- the application tier where the profile names a Tomcat
   optional = { ["app-tomcat"] = function(ctx) return ctx.params.tomcat.catalina_base ~= nil end },
   steps = {
      "at-rest/preflight", "in-transit/preflight",
      "at-rest/key-material", "at-rest/key-backup", "at-rest/option-file",
      "in-transit/ca", "in-transit/server-cert", "in-transit/client-certs", "in-transit/server-options",
      { name = "restart",
        doc = "one restart for both: the keyring, and the TLS options where the server cannot reload them",
        check = function(ctx)
           local keys, tls = atrest.needs_restart(ctx), intransit.needs_restart(ctx)
           if keys then return false, "the keyring and its options take a restart" end
           if tls then return false, "the TLS options take a restart" end
           return true
        end,
        apply = function(ctx) ctx:restart_server() end },
      "at-rest/restart", "in-transit/tls-load", "at-rest/master-key",
      "at-rest/encrypt-tables", "at-rest/system-tablespace", "at-rest/schema-defaults", "at-rest/aria-tables",
      "at-rest/freed-pages", "at-rest/binary-logs", "at-rest/query-logs", "at-rest/verify", "at-rest/rehearsal",
      "in-transit/verify",
      "app-tomcat/truststore", "app-tomcat/jvm-options", "app-tomcat/jdbc-url", "app-tomcat/reload",
      "app-tomcat/restart", "app-tomcat/probe", "replica-tls/preflight", "replica-tls/channels", "replica-tls/verify",
      "tls-enforce/preflight", "tls-enforce/require-transport", "tls-enforce/accounts", "tls-enforce/watch",
      "tls-enforce/verify",
   },
}
