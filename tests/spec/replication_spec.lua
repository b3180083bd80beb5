-- A primary and its replica (MariaDB sandboxes, replicating over 127.0.0.1): at-rest on the primary
-- asks the replica for its keyring, replica-tls moves the replica's channel to verified TLS,
-- tls-enforce on the primary waits for it and requires TLS of the replication account, check reports
-- both sides; then the same runbooks planned for described MySQL and MariaDB 11.4 servers. The
-- sandboxes are shared by the `it` blocks, which run in order. The three-host story over SSH is
-- tests/spec/lab_fleet_spec.lua.
local sys = require "sys"
local json = require "myseal.json"
local pki = require "pki"
local sandbox = require "myseal.sandbox"
local repl = require "support.replication"
local E = require "support.engine"

local query = repl.rows

local function contains(text, what) return text:find(what, 1, true) ~= nil end

describe("replication #slow", function()
   local p, q, dir, pw, env, done = nil, nil, nil, nil, nil, {}
   local NOT_SET, NO_KEYRING

   setup(function()
      dir = assert(sys.tmpdir("replication-spec"))
      assert(sys.chmod(dir, tonumber("755", 8)))
      p = assert(sandbox.start{ name = "spec-repl-p", tls = true, options = { log_bin = "mysql-bin", server_id = 1 } })
      q = assert(sandbox.start{ name = "spec-repl-q", options = { server_id = 2 } })
      pw = repl.setup(p, q, { host = "127.0.0.1", port = p.port })
      -- the application: its rows replicate; its account only on the primary (made before the copy)
      local c <close> = assert(p:connect{ database = "mysql" })
      for _, sql in ipairs{
         "CREATE DATABASE biobank",
         "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB",
         "INSERT INTO biobank.patients SELECT seq, CONCAT('patient ', seq) FROM seq_1_to_500",
         "SET SESSION sql_log_bin = 0",
         "CREATE USER 'lims'@'%' IDENTIFIED BY 'lims-password'",
      } do assert(c:exec(sql)) end
      assert(repl.wait_caught_up(p, q))
      env = { MYSEAL_SECRET_REPLICATION_CHECK_PASSWORD = pw.check_password }
      local name = ("127.0.0.1:%d"):format(q.port)
      NOT_SET = ("cannot ask the replica %s whether its keyring is active: replication.check_user is not set (an "
         .. "account on the replicas to ask them with); or set at_rest.replicas_have_keyring=true once each has its "
         .. "keyring"):format(name)
      NO_KEYRING = ("the replica %s (MariaDB %s) has no active keyring (file_key_management): encryption DDL "
         .. "replicates and would stop its replication; run at-rest there first"):format(name, q.version)
   end)
   teardown(function()
      if q then q:stop() end
      if p then p:stop() end
      if dir then sys.rmtree(dir) end
   end)

   local function myseal(argv) return E.myseal(argv, env) end
   -- a runbook on a sandbox, with the check account (and for at-rest a key backup directory)
   local function on(s, runbook, ...)
      local argv = { runbook, "--sandbox", s.name, "--set", "replication.check_user=" .. repl.CHECK_USER, ... }
      if runbook == "at-rest" then table.move({ "--set", "keyring.backup_dir=" .. dir .. "/kb-" .. s.name }, 1, 2,
         #argv + 1, argv) end
      return argv
   end
   local function run(s, runbook, ...)
      local argv = on(s, runbook, "--yes", ...)
      table.insert(argv, 1, "run")
      return myseal(argv)
   end
   local function plan(s, runbook, ...)
      local argv = on(s, runbook, ...)
      table.insert(argv, 1, "plan")
      return myseal(argv)
   end
   local function needs(pending, what)
      if not done[what] then pending("needs " .. what) end
   end

   -- the replica caught up, still replicating, the same rows on both, and the application's table
   -- with `value` in column `column` of INNODB_TABLESPACES_ENCRYPTION on both
   local function in_step(column, value)
      assert(repl.wait_caught_up(p, q))
      for _, s in ipairs{ p, q } do
         assert.same({ { "biobank/patients", value } }, query(s, ("SELECT NAME, %s FROM "
            .. "information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'biobank/%%'"):format(column)))
      end
      local st = repl.wait_io(q, "Yes")
      assert.same({ "Yes", "Yes", "" }, { st.Slave_IO_Running, st.Slave_SQL_Running, st.Last_SQL_Error })
      assert.same(repl.checksums(p), repl.checksums(q))
   end

   it("at-rest on the primary asks the replica for its keyring, and refuses naming it", function()
      local r = E.myseal{ "plan", "at-rest", "--sandbox", p.name, "--set", "keyring.backup_dir=" .. dir .. "/kb" }
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "WOULD REFUSE: " .. NOT_SET .. "\n"), r.stdout)
      r = plan(p, "at-rest")
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "WOULD REFUSE: " .. NO_KEYRING .. "\n"), r.stdout)
      -- the acknowledgement is still an override
      r = plan(p, "at-rest", "--set", "at_rest.replicas_have_keyring=true")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "        +innodb_encrypt_tables=ON\n"), r.stdout)
      -- a run stops there and changes nothing
      local cnf = assert(sys.read_file(p.cnf))
      r = run(p, "at-rest")
      assert.equal(1, r.status)
      assert.equal("myseal: runbook at-rest, step preflight: " .. NO_KEYRING .. "\n", r.stderr)
      assert.equal(cnf, assert(sys.read_file(p.cnf)))
   end)

   it("encrypts the replica first, then the primary, whose DDL the replica applies", function()
      local r = run(q, "at-rest")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = run(p, "at-rest")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, ("replica 127.0.0.1:%d (MariaDB %s): keyring file_key_management active")
         :format(q.port, q.version)), r.stdout)
      in_step("ENCRYPTION_SCHEME", 1)
      done.at_rest = true
   end)

   it("rotate-master-key on the primary waits for the new key on the replica, whose replication goes on", function()
      needs(pending, "at_rest")
      local function rotate(s, ...)
         return myseal{ "run", "rotate-master-key", "--sandbox", s.name, "--yes", "--set",
            "keyring.backup_dir=" .. dir .. "/kb-" .. s.name, "--set", "at_rest.rehearsal=false", ... }
      end
      local r = rotate(p)
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.equal("myseal: runbook rotate-master-key, step preflight: 1 session reads this server's binary log: "
         .. "the tables rebuilt with key 2 replicate, and a replica whose key file has no key 2 stops replicating; "
         .. "run rotate-master-key --set rotate.key_id=2 on each replica first, then set "
         .. "rotate.replicas_have_key=true here\n", r.stderr)
      r = rotate(q, "--set", "rotate.key_id=2")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = rotate(p, "--set", "rotate.replicas_have_key=true")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      in_step("CURRENT_KEY_ID", 2)
   end)

   it("tls-enforce on the primary refuses while the replica's channel has no TLS", function()
      needs(pending, "at_rest")
      local r = plan(p, "tls-enforce")
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, ("WOULD REFUSE: 1 connection would be cut off (the replica 127.0.0.1:%d, "
         .. "channel (default), connects without TLS: run replica-tls there); move them to TLS first, or set "
         .. "tls.accept_lockout=true\n"):format(q.port)), r.stdout)
   end)

   it("replica-tls refuses a CA the primary's certificate does not chain to", function()
      local other = dir .. "/other-ca.pem"
      local key = assert(pki.genkey{ type = "ec", curve = "P-256" })
      assert(sys.write_file(other, assert(pki.self_signed{ key = key, days = 2, subject = "/CN=another CA" }):pem()))
      local r = myseal{ "plan", "replica-tls", "--sandbox", q.name, "--set", "replication.ca=" .. other }
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, ("WOULD REFUSE: channel (default), the primary 127.0.0.1:%d: its certificate "
         .. "cannot be verified with %s (self-signed certificate in certificate chain); the channel would stop connecting\n")
         :format(p.port, other)), r.stdout)
      -- the right CA, where the server's user cannot read it
      local closed = dir .. "/closed"
      assert(sys.mkdir(closed, tonumber("700", 8)))
      assert(sys.copy_file(p.tls.ca, closed .. "/ca.pem"))
      r = myseal{ "plan", "replica-tls", "--sandbox", q.name, "--set", "replication.ca=" .. closed .. "/ca.pem" }
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, ("WOULD REFUSE: replication.ca: mysql cannot reach %s/ca.pem: it may not "
         .. "enter %s (Permission denied); the server's IO thread reads it as that user\n"):format(closed, closed)),
         r.stdout)
      assert.equal("No", repl.status(q).Master_SSL_Allowed)
   end)

   it("replica-tls puts the channel back when it cannot connect over TLS", function()
      needs(pending, "at_rest")
      -- the primary wants a client certificate of its replication account now (the channel connected
      -- before goes on): a channel on TLS without one is refused
      local c <close> = assert(p:connect())
      assert(c:exec("ALTER USER ?@'%' REQUIRE X509", repl.REPL_USER))
      local r = myseal{ "run", "replica-tls", "--sandbox", q.name, "--yes", "--set", "replication.ca=" .. p.tls.ca,
                        "--set", "replication.wait_seconds=20" }
      assert(c:exec("ALTER USER ?@'%' REQUIRE NONE", repl.REPL_USER))
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.matches(("^myseal: runbook replica%%-tls, step channels %%(.-%%): channel %%(default%%) did not connect "
         .. "over TLS to 127%%.0%%.0%%.1:%d %%(Connecting, error 1045: error connecting to master 'repl@127%%.0%%.0%%.1:%d' "
         .. "%%- retry%%-time: 1  maximum%%-retries: %%d+  message: Access denied for user 'repl'@'127%%.0%%.0%%.1' %%(using "
         .. "password: YES%%)%%): its TLS options are put back as they were\n$"):format(p.port, p.port), r.stderr)
      local st = repl.wait_io(q, "Yes")
      assert.same({ "Yes", "No", "", "No" }, { st.Slave_IO_Running, st.Master_SSL_Allowed, st.Master_SSL_CA_File,
         st.Master_SSL_Verify_Server_Cert })
      -- the failed run is rolled back (nothing to put back but the channel as it is)
      r = myseal{ "rollback", "replica-tls", "--sandbox", q.name, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.equal("No", repl.wait_io(q, "Yes").Master_SSL_Allowed)
   end)

   it("replica-tls moves the replica's channel to TLS that verifies the primary, once", function()
      needs(pending, "at_rest")
      local ca = p.tls.ca
      local r = myseal{ "plan", "replica-tls", "--sandbox", q.name, "--set", "replication.ca=" .. ca }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, table.concat({
         "[2/3] channels                       to do: channel (default) connects without TLS",
         "      sql: STOP SLAVE ''",
         ("      sql: CHANGE MASTER '' TO MASTER_SSL = 1, MASTER_SSL_CA = '%s', MASTER_SSL_VERIFY_SERVER_CERT = 1"):format(ca),
         "      sql: START SLAVE '' SQL_THREAD, IO_THREAD", "" }, "\n")), r.stdout)
      r = myseal{ "run", "replica-tls", "--sandbox", q.name, "--yes", "--set", "replication.ca=" .. ca }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, ("channel (default): connected to 127.0.0.1:%d over TLS, the primary verified")
         :format(p.port)), r.stdout)
      local st = repl.status(q)
      assert.same({ "Yes", "Yes", "Yes", ca, "Yes", 0 }, { st.Slave_IO_Running, st.Slave_SQL_Running,
         st.Master_SSL_Allowed, st.Master_SSL_CA_File, st.Master_SSL_Verify_Server_Cert, st.Last_IO_Errno })
      r = myseal{ "run", "replica-tls", "--sandbox", q.name, "--yes", "--set", "replication.ca=" .. ca }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "run: nothing to do"), r.stdout)
      done.channel = true
   end)

   it("check on the replica reports its keyring and its channel; on the primary, the replica", function()
      needs(pending, "channel")
      local r = myseal{ "check", "--sandbox", q.name, "--format", "json", "--set", "replication.ca=" .. p.tls.ca }
      local report = assert(json.decode(r.stdout), r.stdout .. r.stderr)
      local by = {}
      for _, f in ipairs(report.findings) do by[f.id] = f end
      assert.same({ "ok", "a replica with its keyring (file_key_management) active: encryption DDL from its "
         .. "primary applies here" }, { by["replica-keyring"].severity, by["replica-keyring"].title })
      assert.equal("ok", by["replica-tls:channels"].severity)
      assert.equal("ok", by["replica-tls:verify"].severity)
      r = myseal{ "check", "--sandbox", p.name, "--format", "json", "--set",
                  "replication.check_user=" .. repl.CHECK_USER }
      report = assert(json.decode(r.stdout), r.stdout .. r.stderr)
      by = {}
      for _, f in ipairs(report.findings) do by[f.id] = f end
      local name = ("replica:127.0.0.1:%d"):format(q.port)
      assert.same({ "ok", ("the replica 127.0.0.1:%d (MariaDB %s): keyring file_key_management active")
         :format(q.port, q.version) }, { by[name].severity, by[name].title })
      assert.is_nil(by["replica-keyring"])   -- the primary replicates from nobody
   end)

   it("tls-enforce on the primary then requires TLS of the replication account, and the channel goes on", function()
      needs(pending, "channel")
      local r = run(p, "tls-enforce", "--set", "tls.watch_seconds=1", "--set", "accounts.lims@%=ssl")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({ { "lims", "ANY" }, { repl.REPL_USER, "ANY" } }, query(p, "SELECT User, ssl_type FROM mysql.user "
         .. "WHERE User IN ('lims', ?) ORDER BY User", repl.REPL_USER))
      assert.equal(1, query(p, "SELECT @@require_secure_transport")[1][1])
      -- the REQUIRE replicated as ALTER USER IF EXISTS: the replica, without lims, goes on
      local c <close> = assert(p:connect())
      assert(c:exec("INSERT INTO biobank.patients VALUES (501, 'after enforcement')"))
      assert(repl.wait_caught_up(p, q))
      local st = repl.status(q)
      assert.same({ "Yes", "Yes", "" }, { st.Slave_IO_Running, st.Slave_SQL_Running, st.Last_SQL_Error })
      assert.same(repl.checksums(p), repl.checksums(q))
      -- the channel connects again, over TLS only
      local rc <close> = assert(q:connect())
      assert(rc:exec("STOP SLAVE"))
      assert(rc:exec("START SLAVE"))
      assert.equal("Yes", repl.wait_io(q, "Yes").Slave_IO_Running)
      r = run(p, "tls-enforce", "--set", "tls.watch_seconds=1", "--set", "accounts.lims@%=ssl")
      assert.truthy(contains(r.stdout, "run: nothing to do"), r.stdout)
   end)

   it("replica-tls rolls back to the channel as it was", function()
      needs(pending, "channel")
      -- the primary no longer lets a plain channel in: enforcement goes first
      local r = myseal{ "rollback", "tls-enforce", "--sandbox", p.name, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      r = myseal{ "rollback", "replica-tls", "--sandbox", q.name, "--yes" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local st = repl.wait_io(q, "Yes")
      assert.same({ "Yes", "No", "", "No" }, { st.Slave_IO_Running, st.Master_SSL_Allowed, st.Master_SSL_CA_File,
         st.Master_SSL_Verify_Server_Cert })
      assert.equal("", query(p, "SELECT ssl_type FROM mysql.user WHERE User = ?", repl.REPL_USER)[1][1])
   end)
end)

describe("replication, planned for described servers", function()
   local dir, ca
   setup(function()
      dir = assert(sys.tmpdir("replication-described"))
      assert(sys.chmod(dir, tonumber("755", 8)))
      ca = dir .. "/primary-ca.pem"
      assert(sys.copy_file(E.FIXTURES .. "/../corpus/made/x509/ca.pem", ca))
   end)
   teardown(function() sys.rmtree(dir) end)

   -- a description file: `t` merged over a MySQL 8.0.36 primary's
   local function described(name, t)
      local desc = {
         server = "mysql-8.0.36",
         variables = { datadir = "/var/lib/mysql/", plugin_dir = "/usr/lib/mysql/plugin/", server_id = "1",
                       port = "3306" },
         plugins = {},
         tables = { { schema = "biobank", name = "patients", engine = "InnoDB", bytes = 1048576 } },
         disk_free = 10737418240,
      }
      for k, v in pairs(t) do desc[k] = v end
      local path = dir .. "/" .. name .. ".json"
      assert(sys.write_file(path, json.encode(desc)))
      return path
   end
   local env = { MYSEAL_SECRET_REPLICATION_CHECK_PASSWORD = "check-password" }
   local function plan(runbook, desc, ...)
      local argv = { "plan", runbook, "--describe", desc, "--set", "server.cnf=" .. E.FIXTURES .. "/at-rest/my.cnf",
                     ... }
      return E.myseal(argv, env)
   end
   local AT_REST = { "--set", "keyring.backup_dir=/srv/kb", "--set", "replication.check_user=myseal_check" }

   it("at-rest on a MySQL primary asks its replicas, found registered or listed", function()
      local db2 = { server_id = 2, host = "db2.example", port = 3306 }
      local dumps = { { user = "repl", host = "10.0.0.7" }, { user = "repl", host = "10.0.0.8" } }
      local states = { ["db2.example:3306"] = { server = "MySQL 8.0.36", keyring = "keyring_file",
                                                keyring_active = false } }
      local desc = described("no-keyring", { replica_hosts = { db2 }, binlog_dumps = dumps, replica_states = states })
      local r = plan("at-rest", desc, table.unpack(AT_REST))
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, "WOULD REFUSE: the replica db2.example:3306 (MySQL 8.0.36) has no active keyring "
         .. "(keyring_file): encryption DDL replicates and would stop its replication; run at-rest there first\n"),
         r.stdout)
      -- the second reader of the binary log is not registered: mysqlbinlog, or a tool of that kind
      assert.truthy(contains(r.stdout, "1 session reads this server's binary log without registering as a replica "
         .. "(mysqlbinlog, a change-data-capture tool?): not asked"), r.stdout)
      states["db2.example:3306"].keyring_active = true
      desc = described("keyring", { replica_hosts = { db2 }, binlog_dumps = dumps, replica_states = states })
      r = plan("at-rest", desc, table.unpack(AT_REST))
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "replica db2.example:3306 (MySQL 8.0.36): keyring keyring_file active\n"), r.stdout)
      assert.truthy(contains(r.stdout, "sql: ALTER TABLE `biobank`.`patients` ENCRYPTION='Y'\n"), r.stdout)
      -- MySQL shows no address for a replica without report_host: the profile lists it
      desc = described("no-address", { replica_hosts = { { server_id = 2, host = "", port = 3306 } },
                                       binlog_dumps = { dumps[1] }, replica_states = states })
      r = plan("at-rest", desc, table.unpack(AT_REST))
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, "WOULD REFUSE: 1 replica is registered with this server without an address, so "
         .. "their keyrings cannot be asked: list every replica in replication.replicas (host:port), or set report_host "
         .. "on it; or set at_rest.replicas_have_keyring=true once each has its keyring\n"), r.stdout)
      r = plan("at-rest", desc, "--set", "replication.replicas=db2.example:3306", table.unpack(AT_REST))
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "replica db2.example:3306 (MySQL 8.0.36): keyring keyring_file active\n"), r.stdout)
      r = plan("at-rest", desc, "--set", "replication.replicas=db2.example:33o6", table.unpack(AT_REST))
      assert.equal(2, r.status)
      assert.truthy(contains(r.stderr, "step preflight (" .. require("myseal.host").runbooks_dir .. "/at-rest.lua:"),
         r.stderr)
      assert.truthy(contains(r.stderr, "): replication.replicas: 'db2.example:33o6' is not host:port\n"), r.stderr)
   end)

   it("replica-tls speaks each version's words for the channel", function()
      local function channels(server, list)
         return described("replica-" .. server, { server = server, replica_channels = list })
      end
      local one = { { name = "", host = "db1.example", port = 3306, user = "repl", source_id = 1 } }
      local cases = {
         ["mysql-8.0.36"] = { "STOP REPLICA IO_THREAD FOR CHANNEL ''",
            ("CHANGE REPLICATION SOURCE TO SOURCE_SSL = 1, SOURCE_SSL_CA = '%s', SOURCE_SSL_VERIFY_SERVER_CERT = 1 FOR "
               .. "CHANNEL ''"):format(ca), "START REPLICA IO_THREAD FOR CHANNEL ''" },
         ["mysql-8.0.22"] = { "STOP REPLICA IO_THREAD FOR CHANNEL ''",
            ("CHANGE MASTER TO MASTER_SSL = 1, MASTER_SSL_CA = '%s', MASTER_SSL_VERIFY_SERVER_CERT = 1 FOR CHANNEL ''")
               :format(ca), "START REPLICA IO_THREAD FOR CHANNEL ''" },
         ["mysql-5.7.44"] = { "STOP SLAVE IO_THREAD FOR CHANNEL ''",
            ("CHANGE MASTER TO MASTER_SSL = 1, MASTER_SSL_CA = '%s', MASTER_SSL_VERIFY_SERVER_CERT = 1 FOR CHANNEL ''")
               :format(ca), "START SLAVE IO_THREAD FOR CHANNEL ''" },
         ["mariadb-10.6"] = { "STOP SLAVE ''",
            ("CHANGE MASTER '' TO MASTER_SSL = 1, MASTER_SSL_CA = '%s', MASTER_SSL_VERIFY_SERVER_CERT = 1"):format(ca),
            "START SLAVE '' SQL_THREAD, IO_THREAD" },
      }
      for server, sql in pairs(cases) do
         local r = plan("replica-tls", channels(server, one), "--set", "replication.ca=" .. ca)
         assert.equal(0, r.status, server .. ": " .. r.stdout .. r.stderr)
         local shown = {}
         for line in r.stdout:gmatch("\n      sql: ([^\n]+)") do shown[#shown + 1] = line end
         assert.same(sql, shown, server)
         assert.truthy(contains(r.stdout, "channel (default), the primary db1.example:3306: its certificate cannot be "
            .. "checked from here\n"), r.stdout)
      end
      -- a MySQL channel whose applier was stopped by the DBA: only the receiver starts again
      local stopped = { { name = "reports", host = "db1.example", port = 3306, sql = "No" } }
      local r = plan("replica-tls", channels("mysql-8.0.36", stopped), "--set", "replication.ca=" .. ca)
      assert.truthy(contains(r.stdout, "sql: START REPLICA IO_THREAD FOR CHANNEL 'reports'\n"), r.stdout)
      r = plan("replica-tls", channels("mariadb-10.11", stopped), "--set", "replication.ca=" .. ca)
      assert.truthy(contains(r.stdout, "sql: START SLAVE 'reports' IO_THREAD\n"), r.stdout)
   end)

   it("replica-tls on MariaDB 11.4: a channel on TLS by default still gets the primary's CA", function()
      local desc = described("mariadb-11.4", { server = "mariadb-11.4",
         replica_channels = { { name = "", host = "db1.example", port = 3306, user = "repl", source_id = 1 } } })
      local r = plan("replica-tls", desc, "--set", "replication.ca=" .. ca)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "MariaDB 11.4.4 verifies a primary's certificate by default: a channel that "
         .. "does not trust the primary's CA stops connecting once the primary presents a certificate from it\n"),
         r.stdout)
      assert.truthy(contains(r.stdout, ("to do: channel (default) verifies the primary with no CA of its own (MariaDB "
         .. "11.4.4's default), not %s\n"):format(ca)), r.stdout)
      assert.truthy(contains(r.stdout, ("sql: CHANGE MASTER '' TO MASTER_SSL = 1, MASTER_SSL_CA = '%s', "
         .. "MASTER_SSL_VERIFY_SERVER_CERT = 1\n"):format(ca)), r.stdout)
      desc = described("mariadb-11.4-done", { server = "mariadb-11.4",
         replica_channels = { { name = "", host = "db1.example", port = 3306, ssl_ca = ca } } })
      r = plan("replica-tls", desc, "--set", "replication.ca=" .. ca)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "plan: nothing to do"), r.stdout)
   end)

   it("tls-enforce on a MySQL primary waits for its replicas' channels and requires TLS of their account", function()
      local plain = { { name = "", host = "db1.example", port = 3306, user = "repl", ssl = false, verify = false,
                        io = "Yes", sql = "Yes", io_errno = 0, io_error = "", source_id = 1 } }
      local base = {
         variables = { server_id = "1", port = "3306", require_secure_transport = "OFF" },
         served_certificate = { subject = "/CN=db1.example", not_after = os.time() + 86400 * 100 },
         accounts = { { user = "repl", host = "10.0.0.%", ssl_type = "" }, { user = "root", host = "localhost",
                        ssl_type = "" } },
         replica_hosts = { { server_id = 2, host = "db2.example", port = 3306 } },
         binlog_dumps = { { user = "repl", host = "10.0.0.7" } },
         replica_states = { ["db2.example:3306"] = { server = "MySQL 8.0.36", keyring = "keyring_file",
                                                     keyring_active = true, channels = plain } },
      }
      local r = plan("tls-enforce", described("enforce-plain", base), "--set", "replication.check_user=myseal_check")
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, "WOULD REFUSE: 1 connection would be cut off (the replica db2.example:3306, "
         .. "channel (default), connects without TLS: run replica-tls there); move them to TLS first, or set "
         .. "tls.accept_lockout=true\n"), r.stdout)
      plain[1].ssl, plain[1].verify = true, true
      r = plan("tls-enforce", described("enforce-tls", base), "--set", "replication.check_user=myseal_check")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.truthy(contains(r.stdout, "sql: SET GLOBAL require_secure_transport = ON\n"), r.stdout)
      assert.truthy(contains(r.stdout, "sql: ALTER USER IF EXISTS 'repl'@'10.0.0.%' REQUIRE SSL\n"), r.stdout)
      r = plan("tls-enforce", described("enforce-tls", base), "--set", "replication.check_user=myseal_check",
         "--set", "replication.require=none")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.is_false(contains(r.stdout, "ALTER USER"), r.stdout)
      -- without the check account the replica's channel cannot be asked
      r = plan("tls-enforce", described("enforce-tls", base))
      assert.equal(1, r.status)
      assert.truthy(contains(r.stdout, "(the replica db2.example:3306: its channel cannot be asked (replication.check_user "
         .. "is not set (an account on the replicas to ask them with)))"), r.stdout)
   end)
end)
