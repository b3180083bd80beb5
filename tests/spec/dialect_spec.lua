-- myseal.dialect: choosing a dialect, the chain, runbook additions, facts for described servers,
-- and plan against described MySQL 5.7 / 8.0 / 8.4 and MariaDB servers.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local support = require "support.engine"
local dialect = require "myseal.dialect"

local RUNBOOK = support.FIXTURES .. "/runbooks/engine-dialect.lua"

local function d(spec, additions)
   return assert(dialect.for_server(assert(dialect.parse_spec(spec)), additions))
end

describe("dialect", function()
   it("serves each supported flavour and version with the most specific dialect", function()
      local cases = {
         { "mysql-5.7.44", "mysql-5.7" }, { "mysql-8.0.11", "mysql-8.0" }, { "mysql-8.3.0", "mysql-8.4" },
         { "mysql-8.4.2", "mysql-8.4" }, { "mysql-9.1.0", "mysql-8.4" }, { "percona-8.0.36", "mysql-8.0" },
         { "mariadb-10.4.34", "mariadb-10" }, { "mariadb-10.11.6", "mariadb-10" }, { "mariadb-11.4.2", "mariadb-11" },
      }
      for _, c in ipairs(cases) do assert.equal(c[2], d(c[1]).name) end
      local live = assert(dialect.for_server{ flavor = "mariadb", version = "10.11.6-MariaDB-0+deb12u1" })
      assert.same({ "mariadb-10", 10, 11, 6 }, { live.name, live.major, live.minor, live.patch })
   end)

   it("parses server descriptions and refuses unsupported ones", function()
      assert.same({ flavor = "mysql", major = 8, minor = 0, patch = 40, version = "8.0.40" }, dialect.parse_spec("mysql-8.0"))
      assert.equal("10.11.10", dialect.parse_spec("mariadb-10.11").version)
      assert.equal("10.5.0", dialect.parse_spec("mariadb-10.5").version)
      assert.equal("11.4.4", dialect.parse_spec("mariadb-11").version)
      assert.same({ nil, "mysql 5.6 is not supported (MySQL 5.7 and later, MariaDB 10 and later)" },
         { dialect.parse_spec("mysql-5.6") })
      assert.same({ nil, "'oracle-19' is not a server: write FLAVOR-VERSION, e.g. mysql-5.7, mysql-8.0.36, mariadb-10.11" },
         { dialect.parse_spec("oracle-19") })
      assert.same({ nil, "mariadb 5.5.68 is not supported (MySQL 5.7 and later, MariaDB 10 and later)" },
         { dialect.for_server{ flavor = "mariadb", version = "5.5.68" } })
   end)

   it("answers along the chain, runbook additions first at each level, and raises for what none has", function()
      local adds = { mysql = { note = "mysql", keyring = "runbook's" }, ["mysql-8.0"] = { note = "8.0" } }
      assert.equal("8.0", d("mysql-8.4", adds).note)
      assert.equal("mysql", d("mysql-5.7", adds).note)
      -- stock mysql-8.4 is more specific than the runbook's mysql
      assert.equal("component_keyring_file", d("mysql-8.4", adds).keyring)
      assert.equal("runbook's", d("mysql-8.0", adds).keyring)
      assert.equal("file_key_management", d("mariadb-11").keyring)
      local m = d("mariadb-10.11")
      assert.is_false(m:has("note"))
      assert.has_error(function() return m.note end, "dialect mariadb-10 has no 'note'")
      assert.is_true(m:is("mariadb"))
      assert.is_false(m:is("mysql"))
      assert.equal("MariaDB 10.11.10", m:describe())
   end)

   it("compares versions", function()
      assert.is_true(d("mysql-8.0.16"):at_least("8.0.16"))
      assert.is_false(d("mysql-8.0.15"):at_least("8.0.16"))
      assert.is_true(d("mysql-8.4"):at_least("8.0.16"))
      assert.has_error(function() d("mysql-8.4"):at_least("eight") end, "at_least: bad version 'eight'")
   end)

   it("knows the basics of each flavour", function()
      assert.is_nil(d("mysql-5.7"):tls_reload_sql())
      assert.is_nil(d("mysql-8.0.15"):tls_reload_sql())
      assert.equal("ALTER INSTANCE RELOAD TLS", d("mysql-8.0"):tls_reload_sql())
      assert.equal("FLUSH NO_WRITE_TO_BINLOG SSL", d("mariadb-10.11"):tls_reload_sql())
      assert.is_nil(d("mariadb-10.3.39"):tls_reload_sql())
      assert.same({ "mysqld", "server", "mysqld-8.4" }, d("mysql-8.4"):server_groups())
      assert.same({ "client-server", "server", "mysqld", "mysqld-10.11", "mariadb", "mariadb-10.11", "mariadbd",
                    "mariadbd-10.11" }, d("mariadb-10.11"):server_groups())
      assert.equal("keyring_file", d("mysql-5.7").keyring)
   end)

   it("gives tools such as check a read-only context on a target", function()
      local target = require "myseal.engine.target"
      local engine = require "myseal.engine"
      local t = assert(target.open{ describe = support.FIXTURES .. "/described/mysql-8.0-secure.lua" })
      local ctx, close = engine.context{ target = t, set = { "server.user=dbuser" } }
      assert.same({ "ON", "mysql-8.0", true, "dbuser" }, { ctx:fact("variable", "require_secure_transport"),
         ctx.dialect.name, ctx.planning, ctx.params.server.user })
      assert.same({}, ctx:fact("tables"))
      assert.same({ nil, "described mysql 8.0.36 has no connection" }, { ctx:connect() })
      close()
   end)

   describe("plan against a described server", function()
      local dir, env
      before_each(function()
         dir = assert(sys.tmpdir("dialect-spec"))
         env = { MYSEAL_STATE_DIR = dir .. "/state" }
      end)
      after_each(function() sys.rmtree(dir) end)

      local function plan(describe, ...)
         return support.myseal({ "plan", RUNBOOK, "--describe", describe, "--set", "test.dir=" .. dir, ... }, env)
      end

      it("answers facts from the description and the dialect, for each MySQL version", function()
         local r = plan("mysql-5.7")
         assert.equal("", r.stderr)
         assert.equal(([[
plan: engine-dialect on described mysql 5.7.44 (MySQL 5.7.44)
[1/2] greet                          to do
      create DIR/greeting
        --- /dev/null
        +++ DIR/greeting
        @@ -0,0 +1,1 @@
        +hello from MySQL
        \ No newline at end of file
[2/2] reload-tls                     skipped
plan: 1 step to do, 0 already done. Nothing was changed.
]]):gsub("DIR", dir), r.stdout)
         r = plan("mysql-8.4")
         assert.matches("%(MySQL 8%.4%.3%)\n", r.stdout)
         assert.matches("%+hello from MySQL 8%.4\n", r.stdout)
         assert.matches("%[2/2%] reload%-tls +to do\n      sql: ALTER INSTANCE RELOAD TLS\n", r.stdout)
         r = plan(support.FIXTURES .. "/described/mysql-8.0-secure.lua")
         assert.matches("^plan: engine%-dialect on described mysql 8%.0%.36 %(MySQL 8%.0%.36%)\n", r.stdout)
         assert.matches("%[2/2%] reload%-tls +already done\n", r.stdout)
         r = plan(support.FIXTURES .. "/described/mariadb.json")
         assert.matches("%+hello from MariaDB\n", r.stdout)
         assert.matches("sql: FLUSH NO_WRITE_TO_BINLOG SSL\n", r.stdout)
         assert.same({}, sys.dir(dir))   -- not even a state directory
      end)

      it("says so when a step needs a live server", function()
         local r = plan("mysql-8.0", "--set", "test.live=true")
         assert.equal(1, r.status)
         assert.matches("^myseal: runbook engine%-dialect, step reload%-tls %(.-engine%-dialect%.lua:%d+%): described "
            .. "mysql 8%.0%.40 has no connection: this step needs a live server %(use a fact: docs/runbooks%.md%)\n$",
            r.stderr)
      end)

      it("refuses to run or roll back a described server", function()
         local r = support.myseal({ "run", RUNBOOK, "--describe", "mysql-8.0", "--yes", "--set", "test.dir=" .. dir }, env)
         assert.equal(2, r.status)
         assert.equal("myseal: run needs a live server: described mysql 8.0.40 is only described (use plan)\n", r.stderr)
         r = support.myseal({ "plan", RUNBOOK, "--describe", "mysql-5.6", "--set", "test.dir=" .. dir }, env)
         assert.equal("myseal: plan: mysql 5.6 is not supported (MySQL 5.7 and later, MariaDB 10 and later)\n", r.stderr)
      end)

      it("names the description file and the field when a field is not a table", function()
         for _, c in ipairs{ { "facts = 5", "facts" }, { "variables = 'ON'", "variables" },
                             { "tables = { 'specimen' }", "tables[1]" } } do
            local file = dir .. "/server.lua"
            assert(sys.write_file(file, ("return { server = 'mysql-8.0.36', %s }\n"):format(c[1])))
            local r = plan(file)
            assert.equal(2, r.status)
            assert.equal(("myseal: plan: %s: %s must be a table\n"):format(file, c[2]), r.stderr)
         end
      end)
   end)
end)
