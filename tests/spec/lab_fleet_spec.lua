-- The role over SSH on three lab hosts of one private network, as a site runs it: db1 the primary,
-- db2 its replica (replication set up here with CHANGE MASTER TO and a replication account), app1
-- Debian's Tomcat whose pool connects to db1. Each host runs Debian's sshd with a key made here;
-- ansible-playbook runs from the lab's network (an address of its own on the bridge) with an
-- inventory of the three. Check mode first (nothing changes), the story (timed, per host), then
-- what the servers, the replica's channel, a plain channel and the application page say, and a
-- second play that changes nothing. The hosts are shared by the `it` blocks, which run in order.
local sys = require "sys"
local host = require "myseal.sandbox.host"
local lab = require "support.lab"
local fleet = require "support.fleet"
local repl = require "support.replication"

local MYSEAL = require("myseal.host").exe
local NET = "10.241.0."
local CA = "/etc/mysql/primary-ca.pem"   -- where the story copies db1's CA on db2 and app1

local function contains(text, what) return text:find(what, 1, true) ~= nil end

local query = repl.rows

describe("the role over SSH on a primary, its replica and an application host", function()
   local dir, hosts, env, inventory, pw, done, times = nil, {}, nil, nil, nil, {}, {}
   local controller   -- argv prefix: a command in the lab's network

   lazy_setup(function()
      if not host.available() then return end
      dir = assert(sys.tmpdir("lab-fleet"))
      assert(sys.chmod(dir, tonumber("755", 8)))
      local key = dir .. "/id_ed25519"
      assert(sys.run{ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lab-fleet-spec", "-f", key }.ok)
      local common = { ssh_key = key .. ".pub" }
      local function start(name, n, t)
         t.name, t.ip, t.ssh_key = "fleet-" .. name, NET .. n .. "/24", common.ssh_key
         hosts[name] = lab.start(t)
      end
      start("db1", 2, { options = { server_id = 1, log_bin = "mysql-bin", bind_address = "0.0.0.0" } })
      start("db2", 3, { options = { server_id = 2, bind_address = "0.0.0.0", report_host = NET .. "3" } })
      start("app1", 4, { app = "tomcat", app_db = NET .. "2", options = { server_id = 3 } })
      pw = repl.setup(hosts.db1, hosts.db2, { host = NET .. "2", port = 3306, from = NET .. "%" })
      -- the controller: an address on the lab's bridge, in the lab's own network namespace
      local lab_pid = tostring(hosts.db1.lab)
      controller = { "nsenter", "--target", lab_pid, "--net", "--" }
      assert(sys.run{ "nsenter", "--target", lab_pid, "--net", "ip", "addr", "add", NET .. "1/24", "dev", "lab0" }.ok)
      local known = {}
      for _, name in ipairs{ "db1", "db2", "app1" } do
         known[#known + 1] = hosts[name].address .. " " .. assert(hosts[name]:info().ssh_host_key)
      end
      assert(sys.write_file(dir .. "/known_hosts", table.concat(known, "\n") .. "\n"))
      env = fleet.ansible(dir, dir .. "/controller-state", { key = key, known_hosts = dir .. "/known_hosts" })
      local function server(name)
         return {
            site = { name = "fleet-" .. name },
            server = { cnf = "/etc/mysql/my.cnf", datadir = "/var/lib/mysql", user = "mysql",
                       restart_command = "/etc/init.d/mariadb restart" },
            connection = { socket = "/run/mysqld/mysqld.sock", user = "root" },
            keyring = { backup_dir = "/root/myseal-key-backup" },
            pki = { server_names = { "fleet-" .. name, hosts[name].address, "localhost", "127.0.0.1" } },
            tls = { watch_seconds = 2 },
            accounts = { ["biobank@%"] = "ssl" },
         }
      end
      local db1, db2 = server("db1"), server("db2")
      db1.replication = { check_user = repl.CHECK_USER }
      db2.replication = { ca = CA }
      local function vars(name, t)
         t.ansible_host = hosts[name].address
         -- the profile where the host keeps its own files (the lab shares this machine's /etc)
         t.myseal_site_path = "/root/site.ini"
         return t
      end
      inventory = { all = {
         vars = { ansible_user = "root", myseal_path = MYSEAL },
         hosts = {
            db1 = vars("db1", { myseal_role = "primary", myseal_site = db1,
                                myseal_secrets = { ["replication.check_password"] = pw.check_password } }),
            db2 = vars("db2", { myseal_role = "replica", myseal_primary = "db1", myseal_site = db2 }),
            app1 = vars("app1", { myseal_role = "app", myseal_primary = "db1", myseal_site = {
               site = { name = "fleet-app1" },
               tomcat = { catalina_base = "/var/lib/tomcat10", catalina_home = "/usr/share/tomcat10", user = "tomcat",
                          group = "tomcat", ca = CA, truststore_password = "file:/root/.tomcat-truststore-password" },
            } }),
         },
      } }
   end)

   lazy_teardown(function()
      if controller then
         for _, name in ipairs{ "db1", "db2", "app1" } do   -- the SSH connections Ansible kept open
            local argv = { table.unpack(controller) }
            for _, a in ipairs{ "ssh", "-F", "/dev/null", "-o", "ControlPath=" .. dir .. "/cp/" .. hosts[name].address,
                                "-O", "exit", "root@" .. hosts[name].address } do argv[#argv + 1] = a end
            sys.run(argv)
         end
      end
      for _, s in pairs(hosts) do s:stop() end
      if dir then sys.rmtree(dir) end
   end)

   local function play(opts)
      opts = opts or {}
      opts.inventory, opts.wrap = inventory, controller
      return fleet.playbook(env, dir, fleet.role_play, opts)
   end
   local function needs(pending, what)
      lab.need_hosts(pending)
      if not done[what] then pending("needs " .. what) end
   end
   local function channel() return repl.status(hosts.db2) end

   -- what must not change in check mode: the option files, the Tomcat context, the channel
   local function snapshot()
      local out = {}
      for _, name in ipairs{ "db1", "db2", "app1" } do
         out[name] = lab.snapshot{ hosts[name]:paths().etc }
      end
      out.context = assert(sys.read_file(hosts.app1:paths().tomcat_conf .. "/context.xml"))
      local st = channel()
      out.channel = { st.Master_SSL_Allowed, st.Master_SSL_CA_File, st.Master_SSL_Verify_Server_Cert }
      return out
   end

   it("plans the story in check mode over SSH and changes nothing", function()
      lab.need_hosts(pending)
      assert.matches("^patients=2000 cipher=\n$", lab.wait_page(hosts.app1))
      local before = snapshot()
      local r = play{ check = true }
      times.check = r.seconds
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({ 0, 0, 0 }, { r.recap.db1.failed, r.recap.db2.failed, r.recap.app1.failed }, r.stdout)
      assert.truthy(r.recap.db2.changed > 0, r.stdout)
      assert.truthy(contains(r.stdout, "check mode: not planned, since db2 would change something in an earlier stage "
         .. "first"), r.stdout)
      assert.same(before, snapshot())
      done.checked = true
   end)

   it("runs the story: replicas first, the channel on verified TLS before the primary enforces", function()
      needs(pending, "checked")
      local since = fleet.stamp()
      -- the application in use meanwhile: its page asked every 250 ms
      assert(host.poll_start(hosts.app1, 0.25))
      local from = math.floor(sys.now() * 1000)
      local r = play()
      host.poll_stop(hosts.app1)
      times.run = r.seconds
      times.tasks = r.recap.db1 and (r.recap.db1.ok + r.recap.db1.skipped + r.recap.db1.failed) or 0
      times.app = host.outages(host.poll_read(hosts.app1), from, math.floor(sys.now() * 1000))
      assert.equal(0, r.status, r.stdout .. r.stderr)
      for _, name in ipairs{ "db1", "db2", "app1" } do
         assert.same({ name, 0, 0 }, { name, r.recap[name].failed, r.recap[name].unreachable }, r.stdout)
         local state = hosts[name]:paths().home .. "/.local/state/myseal"
         times[name] = fleet.step_seconds(state, "fleet-" .. name, since)
      end
      -- each host ran its stages once, in the story's order
      local function runs(name, runbook)
         return fleet.journals(hosts[name]:paths().home .. "/.local/state/myseal", "fleet-" .. name, runbook)
      end
      assert.same({ 1, 1, 1, 1, 1, 1, 1, 1 }, { #runs("db2", "at-rest"), #runs("db1", "at-rest"),
         #runs("db1", "in-transit"), #runs("db2", "in-transit"), #runs("db2", "replica-tls"), #runs("app1", "app-tomcat"),
         #runs("db1", "tls-enforce"), #runs("db2", "tls-enforce") })
      local order = { runs("db2", "at-rest")[1], runs("db1", "at-rest")[1], runs("db1", "in-transit")[1],
                      runs("db2", "replica-tls")[1], runs("db1", "tls-enforce")[1] }
      local sorted = { table.unpack(order) }
      table.sort(sorted)
      assert.same(sorted, order)
      assert.truthy(runs("app1", "app-tomcat")[1] < runs("db1", "tls-enforce")[1])
      -- the primary asked its replica for its keyring, and waited for its channel
      local at_rest = runs("db1", "at-rest")
      assert.equal(1, #at_rest)
      local journal = assert(sys.read_file(hosts.db1:paths().home .. "/.local/state/myseal/targets/site-fleet-db1/runs/"
         .. "at-rest/" .. at_rest[1]))
      assert.truthy(contains(journal, ("replica %s3:3306 (MariaDB %s): keyring file_key_management active")
         :format(NET, hosts.db2.version)), journal)
      done.story = true
   end)

   it("encrypts every table on both servers, and the replica has caught up on verified TLS", function()
      needs(pending, "story")
      for _, name in ipairs{ "db1", "db2" } do
         assert.same({ { "biobank/patients", 1 }, { "biobank/specimens", 1 } }, query(hosts[name],
            "SELECT NAME, ENCRYPTION_SCHEME FROM information_schema.INNODB_TABLESPACES_ENCRYPTION "
               .. "WHERE NAME LIKE 'biobank/%' ORDER BY NAME"), name)
         assert.same({ { 0 } }, query(hosts[name], "SELECT COUNT(*) FROM information_schema.TABLES t "
            .. "LEFT JOIN information_schema.INNODB_TABLESPACES_ENCRYPTION e ON e.NAME = CONCAT(t.TABLE_SCHEMA, '/', "
            .. "t.TABLE_NAME) WHERE t.TABLE_SCHEMA = 'biobank' AND (e.ENCRYPTION_SCHEME IS NULL OR "
            .. "e.ENCRYPTION_SCHEME <> 1)"), name)
      end
      local st = channel()
      assert.same({ "Yes", "Yes", "Yes", CA, "Yes", 0, 0 }, { st.Slave_IO_Running, st.Slave_SQL_Running,
         st.Master_SSL_Allowed, st.Master_SSL_CA_File, st.Master_SSL_Verify_Server_Cert, st.Last_IO_Errno,
         st.Last_SQL_Errno })
      -- rows written now reach the replica, over that channel
      local c <close> = assert(hosts.db1:connect())
      assert(c:exec("INSERT INTO biobank.patients VALUES (2001, 'Mira Quispe 2001', '2026-12-01')"))
      assert(repl.wait_caught_up(hosts.db1, hosts.db2))
      local sums = repl.checksums(hosts.db1)
      assert.same({ "biobank.patients", "biobank.specimens" }, (function()
         local names = {}
         for k in pairs(sums) do names[#names + 1] = k end
         table.sort(names)
         return names
      end)())
      assert.same(sums, repl.checksums(hosts.db2))
   end)

   it("refuses a plain replication channel, and lets the same channel in over TLS", function()
      needs(pending, "story")
      -- a second channel to db1, from app1's server (MariaDB refuses a second connection of one replica
      -- to the same primary, error 1934)
      local q = hosts.app1
      local c <close> = assert(q:connect())
      local at = query(hosts.db1, "SHOW MASTER STATUS")[1]
      assert(c:exec("CHANGE MASTER 'plain' TO MASTER_HOST = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_SSL = 0, "
         .. "MASTER_LOG_FILE = ?, MASTER_LOG_POS = ?, MASTER_CONNECT_RETRY = 1", NET .. "2", repl.REPL_USER,
         pw.repl_password, at[1], math.tointeger(tonumber(at[2]))))
      assert(c:exec("START SLAVE 'plain' IO_THREAD"))
      local st = repl.wait_io(q, "Connecting", "plain")
      local deadline = sys.clock() + 20
      while st.Last_IO_Errno == 0 and sys.clock() < deadline do
         sys.sleep(0.1)
         st = repl.status(q, "plain")
      end
      assert.equal(1045, st.Last_IO_Errno)
      assert.truthy(contains(st.Last_IO_Error, ("Access denied for user 'repl'@'%s4'"):format(NET)), st.Last_IO_Error)
      -- the same with TLS and db1's CA (copied there by the story): in
      assert(c:exec("STOP SLAVE 'plain'"))
      assert(c:exec("CHANGE MASTER 'plain' TO MASTER_SSL = 1, MASTER_SSL_CA = ?, MASTER_SSL_VERIFY_SERVER_CERT = 1",
         CA))
      assert(c:exec("START SLAVE 'plain' IO_THREAD"))
      st = repl.wait_io(q, "Yes", "plain")
      assert.same({ "Yes", 0 }, { st.Slave_IO_Running, st.Last_IO_Errno }, st.Last_IO_Error)
      assert(c:exec("STOP SLAVE 'plain'"))
      assert(c:exec("RESET SLAVE 'plain' ALL"))
      -- db1 keeps app1 registered as a replica until its dump thread for it ends (it notices the
      -- channel gone at its next heartbeat): ended now, as a DBA would
      local p <close> = assert(hosts.db1:connect())
      for _, t in ipairs(query(hosts.db1, "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE "
         .. "'Binlog Dump%' AND HOST LIKE ?", NET .. "4:%")) do p:exec("KILL ?", t[1]) end
      local deadline = sys.clock() + 20
      while #query(hosts.db1, "SHOW SLAVE HOSTS") > 1 and sys.clock() < deadline do sys.sleep(0.1) end
      assert.same({ { 2, NET .. "3", 3306, 1 } }, query(hosts.db1, "SHOW SLAVE HOSTS"))
   end)

   it("serves the application's page over TLS to the primary", function()
      needs(pending, "story")
      assert.matches("^patients=2001 cipher=TLS_%S+\n$", lab.wait_page(hosts.app1, "cipher=%S"))
      local xml = assert(sys.read_file(hosts.app1:paths().tomcat_conf .. "/context.xml"))
      -- Debian's Connector/J 2.7: useSsl with the CA in the data source verifies the server and its name
      assert.truthy(contains(xml, ('url="jdbc:mariadb://%s2:3306/biobank?useSsl=true&amp;serverSslCert='
         .. '/var/lib/tomcat10/conf/db-ca.pem"'):format(NET)), xml)
      -- the pool's sessions on db1 come from app1
      local from = query(hosts.db1, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'biobank' "
         .. "AND HOST LIKE ?", NET .. "4:%")[1][1]
      assert.truthy(from > 0, "no session of the pool on db1")
   end)

   it("changes nothing when played again, and prints the play's times", function()
      needs(pending, "story")
      local r = play()
      times.again = r.seconds
      assert.equal(0, r.status, r.stdout .. r.stderr)
      for _, name in ipairs{ "db1", "db2", "app1" } do
         assert.same({ name, 0, 0 }, { name, r.recap[name].changed, r.recap[name].failed }, r.stdout)
      end
      local app = times.app or { requests = 0, failed = 0, longest_ms = 0 }
      print(("\nthe role over SSH, 3 lab hosts, %d tasks a host: check mode %.1f s, the story %.1f s (in myseal's "
         .. "steps: db1 %.2f s, db2 %.2f s, app1 %.2f s; the application's page: %d requests, %d failed, the longest "
         .. "outage %.2f s), again %.1f s"):format(times.tasks or 0, times.check or 0, times.run or 0, times.db1 or 0,
         times.db2 or 0, times.app1 or 0, app.requests, app.failed, app.longest_ms / 1000, times.again))
   end)
end)

describe("the host driver's options for the fleet", function()
   local h = require "support.helpers"

   it("says which options go together, and refuses a file that is not a public key", function()
      local env = lab.cli_env("lab-fleet-options", finally)
      local function start(...)
         return h.myseal({ "sandbox", "start", ... }, { env = env })
      end
      local r = start("--name", "x", "--ssh-key", "/nonexistent.pub")
      assert.same({ 2, "myseal: sandbox start: --app, --ip, --etc and --ssh-key are for --driver host\n" },
                  { r.status, r.stderr })
      r = start("--driver", "host", "--name", "x", "--app-db", "10.0.0.2")
      assert.same({ 2, "myseal: sandbox start: --app-db goes with --app tomcat\n" }, { r.status, r.stderr })
      lab.need_hosts(pending)
      local notkey = env.MYSEAL_STATE_DIR .. "/id.pub"
      assert(sys.write_file(notkey, "-----BEGIN OPENSSH PRIVATE KEY-----\n"))
      r = start("--driver", "host", "--name", "x", "--ssh-key", notkey)
      assert.same({ 1, ("myseal: --ssh-key %s: not an OpenSSH public key\n"):format(notkey) }, { r.status, r.stderr })
      assert.equal("no sandboxes\n", h.myseal({ "sandbox", "status" }, { env = env }).stdout)
   end)
end)
