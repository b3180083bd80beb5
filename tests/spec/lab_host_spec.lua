-- The lab's Debian-shaped hosts (myseal.sandbox.host): Debian's own MariaDB packages, service
-- script and (lab_tomcat_spec) Tomcat on private copies, checked with the tools a Debian DBA
-- uses; this machine's own files and processes never change. Skipped where Linux namespaces
-- are not permitted.
local sys = require "sys"
local json = require "myseal.json"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"
local h = require "support.helpers"
local lab = require "support.lab"

local DB_PACKAGES = { "mysql-common", "mariadb-common", "mariadb-client", "mariadb-server" }

local function md5(path)
   local r = assert(sys.run{ "md5sum", path })
   return r.stdout:match("^(%x+)")
end

local function count(text, pattern)
   local _, n = text:gsub(pattern, "")
   return n
end

describe("lab host #lab", function()
   local s
   setup(function()
      if require("myseal.sandbox.host").available() then s = lab.start{ name = "spec-host" } end
   end)
   teardown(function() if s then s:stop() end end)

   it("is Debian 12's MariaDB as packaged: conffiles, the postinst's datadir, mysqld_safe as mysql", function()
      lab.need_hosts(pending)
      local root = s:paths().root
      -- every conffile of the packages, byte for byte as dpkg recorded it
      local checked = 0
      for _, pkg in ipairs(DB_PACKAGES) do
         local r = assert(sys.run{ "dpkg-query", "-W", "-f=${Conffiles}\n", pkg })
         for path, sum in r.stdout:gmatch(" (/etc/%S+) (%x+)") do
            if path:match("^/etc/mysql/") or path == "/etc/init.d/mariadb" then
               assert.equal(sum, md5(root .. "/fs" .. path), path)
               checked = checked + 1
            end
         end
      end
      assert.is_true(checked >= 8, "conffiles checked: " .. checked)
      assert.equal("mariadb.cnf\n", lab.ok(s, { "readlink", "/etc/mysql/my.cnf" }))
      assert.matches("!includedir /etc/mysql/mariadb.conf.d/", lab.ok(s, { "cat", "/etc/mysql/my.cnf" }))
      -- mysqld_safe runs the server as mysql, in the host's own process tree
      local ps = lab.ok(s, { "ps", "-eo", "user=,ppid=,pid=,comm=" })
      local safe = ps:match("root%s+%d+%s+(%d+)%s+mysqld_safe")
      assert.is_string(safe, ps)
      assert.matches("mysql%s+" .. safe .. "%s+%d+%s+mariadbd", ps)
      assert.are_not.equal(lab.pid_ns(sys.getpid()), lab.pid_ns(s.pid))
      -- Debian's defaults: errors to syslog, performance_schema off, root by unix_socket only
      assert.equal("", lab.value(s, "SELECT @@log_error"))
      assert.equal(0, lab.value(s, "SELECT @@performance_schema"))
      assert.equal("root@localhost", lab.value(s, "SELECT CURRENT_USER()"))
      assert.matches("unix_socket", lab.value(s, "SHOW GRANTS FOR root@localhost"))
      local tcp = lab.run(s, { "mariadb", "-h", "127.0.0.1", "-uroot", "-e", "SELECT 1" })
      assert.equal(1, tcp.status)
      assert.equal("ERROR 1698 (28000): Access denied for user 'root'@'localhost'\n", tcp.stderr)
      assert.matches("spec%-host daemon%.err mysqld: [^\n]* ready for connections", sys.read_file(s:paths().syslog))
      -- the application's rows, with names
      assert.equal(2000, lab.value(s, "SELECT COUNT(*) FROM biobank.patients"))
      assert.equal("Bernd Moreau 1", lab.value(s, "SELECT name FROM biobank.patients WHERE id = 1"))
      assert.equal("biobank@localhost", lab.value(s, "SELECT CONCAT(user, '@', host) FROM mysql.user "
         .. "WHERE user = 'biobank' ORDER BY host = 'localhost' DESC LIMIT 1"))
   end)

   it("restarts with /etc/init.d/mariadb, and a failed restart shows the server's syslog lines", function()
      lab.need_hosts(pending)
      local syslog = s:paths().syslog
      local before = count(assert(sys.read_file(syslog)), "ready for connections")
      assert.is_true(s:restart())
      assert.equal(before + 1, count(assert(sys.read_file(syslog)), "ready for connections"))
      local bogus = s:paths().etc .. "/mariadb.conf.d/99-bogus.cnf"
      h.write(bogus, "[mysqld]\nno_such_option = 1\n")
      -- the script waits MYSQLD_STARTUP_TIMEOUT (30 s) for a server that will not come: less here
      local defaults = s:paths().root .. "/fs/etc/default/mariadb"
      h.write(defaults, "MYSQLD_STARTUP_TIMEOUT=3\n")
      local msg = h.fails(s:restart())
      os.remove(bogus)
      os.remove(defaults)
      assert.matches("^host 'spec%-host': /etc/init.d/mariadb restart failed %(exit status 1%)", msg)
      assert.matches("the server's syslog lines end:\n", msg)
      assert.matches("mysqld: [^\n]*%[ERROR%] /usr/sbin/mariadbd: unknown variable 'no_such_option=1'", msg)
      assert.matches("unknown variable 'no_such_option=1'", s:error_log(5))
      assert.is_true(s:boot())
      assert.equal(2000, lab.value(s, "SELECT COUNT(*) FROM biobank.patients"))
   end)

   it("runs commands inside: exit status, stdin, stderr, and daemons that keep stdout open", function()
      lab.need_hosts(pending)
      local r = lab.run(s, { "sh", "-c", "echo out; cat; echo err >&2; exit 3", stdin = "in\n" })
      assert.same({ 3, "out\nin\n", "err\n", false }, { r.status, r.stdout, r.stderr, r.ok })
      local t0 = sys.clock()
      r = lab.run(s, { "sh", "-c", "sleep 30 & echo started" })
      assert.equal("started\n", r.stdout)
      assert.is_true(sys.clock() - t0 < 5)
      assert.equal("spec-host\n", lab.ok(s, { "hostname" }))
      -- a root login's environment: nothing of ours (state directory, secrets) goes in
      local env = lab.ok(s, { "env", env = { EXTRA = "1" } })
      assert.matches("\nHOME=/root\n", "\n" .. env)
      assert.matches("\nEXTRA=1\n", "\n" .. env)
      assert.is_nil(env:find("MYSEAL_", 1, true))
      local msg = h.fails(s:exec{ "sleep", "5", timeout = 0.3 })
      assert.equal("'sleep' timed out after 0.3 s in host spec-host", msg)
      local cli = h.myseal({ "sandbox", "exec", "spec-host", "--", "sh", "-c", "echo from inside; exit 4" })
      assert.same({ 4, "from inside\n" }, { cli.status, cli.stdout })
   end)

   it("uses a copy of a site's own /etc/mysql with --etc, and leaves the original alone", function()
      lab.need_hosts(pending)
      local site = assert(sys.tmpdir("site-etc"))
      finally(function() sys.rmtree(site) end)
      assert(sys.run{ "cp", "-a", s:paths().etc .. "/.", site .. "/" }.ok)
      h.write(site .. "/mariadb.conf.d/70-site.cnf", "[mysqld]\nmax_connections = 71\n")
      local before = lab.snapshot{ site }
      local other <close> = lab.start{ name = "spec-host-etc", etc = site }
      assert.equal(71, lab.value(other, "SELECT @@max_connections"))
      h.write(other:paths().etc .. "/mariadb.conf.d/71-more.cnf", "[mysqld]\nmax_connections = 72\n")
      assert.is_true(other:restart())
      assert.equal(72, lab.value(other, "SELECT @@max_connections"))
      other:stop()
      assert.same(before, lab.snapshot{ site })
      local msg = h.fails(sandbox.start{ driver = "host", name = "spec-host-noetc", etc = site .. "/nonexistent" })
      assert.equal("--etc " .. site .. "/nonexistent: not a directory", msg)
   end)
end)

describe("lab hosts and this machine #lab", function()
   local MACHINE = { "/etc/mysql", "/etc/tomcat10", "/etc/init.d", "/etc/default", "/etc/hosts", "/etc/hostname",
      "/var/lib/mysql", "/var/lib/tomcat10", "/var/cache/tomcat10", "/run/mysqld" }

   it("leaves this machine's /etc/mysql, /etc/tomcat10, /var/lib/mysql and processes as they were", function()
      lab.need_hosts(pending)
      local env = lab.cli_env("lab-machine", finally)
      local before = lab.snapshot(MACHINE)
      local hostname = sys.hostname()
      local r = h.myseal({ "sandbox", "start", "--driver", "host", "--name", "spec-machine", "--app", "tomcat",
         "--ip", "10.231.0.2/24", "--json" }, { env = env })
      assert.equal(0, r.status, r.stderr)
      local j = assert(json.decode(r.stdout))
      -- --json: name, the namespace's pid, paths, the socket, the address, the site profile
      assert.equal("spec-machine", j.name)
      assert.equal("host", j.driver)
      assert.equal("10.231.0.2", j.address)
      assert.equal("/root/site.ini", j.profile)
      assert.equal(j.paths.root .. "/fs/run/mysqld/mysqld.sock", j.socket)
      assert.equal("socket", sys.stat(j.socket).type)
      local ns = lab.pid_ns(j.pid)
      assert.are_not.equal(lab.pid_ns(sys.getpid()), ns)
      local profile = assert(target.read_profile(j.paths.profile)).values
      assert.equal("/etc/init.d/mariadb restart", profile["server.restart_command"].value)
      assert.equal("/run/mysqld/mysqld.sock", profile["connection.socket"].value)
      assert.equal("root", profile["connection.user"].value)
      assert.equal("/var/lib/tomcat10", profile["tomcat.catalina_base"].value)
      assert.equal("/etc/init.d/tomcat10 restart", profile["tomcat.restart_command"].value)
      -- use it: a restart, a table, the page, a file in its /etc/mysql
      assert.equal(0, h.myseal({ "sandbox", "restart", "spec-machine" }, { env = env }).status)
      local sock = assert(require("mysql").connect{ socket = j.socket, user = "root" })
      assert(sock:exec("CREATE TABLE biobank.visits (id INT PRIMARY KEY) ENGINE=InnoDB"))
      sock:close()
      h.write(j.paths.etc .. "/conf.d/lab.cnf", "[client]\n")
      r = h.myseal({ "sandbox", "exec", "spec-machine", "--", "curl", "-s", "http://127.0.0.1:8080/db.jsp" },
         { env = env })
      assert.equal("patients=2000 cipher=\n", r.stdout)
      assert.is_true(#lab.processes(ns) >= 4)
      assert.equal(0, h.myseal({ "sandbox", "stop", "spec-machine" }, { env = env }).status)
      -- nothing of it is left, and nothing of this machine changed
      assert.same({}, lab.processes(ns, j.paths.root))
      assert.is_nil(sys.stat(j.paths.root))
      assert.same(before, lab.snapshot(MACHINE))
      assert.equal(hostname, sys.hostname())
      assert.is_false(assert(sys.run{ "ip", "link", "show", "lab0" }).ok)
   end)

   it("joins hosts through a bridge in the lab's own network namespace", function()
      lab.need_hosts(pending)
      local a <close> = lab.start{ name = "spec-net-a", ip = "10.232.0.2/24" }
      local b <close> = lab.start{ name = "spec-net-b", ip = "10.232.0.3/24" }
      assert.equal(a.lab, b.lab)
      assert.are_not.equal(lab.value(a, "SELECT @@hostname"), lab.value(b, "SELECT @@hostname"))
      -- Debian's server listens on loopback only: open it, as a DBA would for a replica
      h.write(a:paths().etc .. "/mariadb.conf.d/60-lab.cnf", "[mysqld]\nbind-address = 0.0.0.0\n")
      assert.is_true(a:restart())
      local out = lab.ok(b, { "mariadb", "-h", "10.232.0.2", "-u", a.app_user, "-N", "-e",
         "SELECT CONCAT(@@hostname, ' ', COUNT(*)) FROM biobank.patients", env = { MYSQL_PWD = a.app_password } })
      assert.equal("spec-net-a 2000\n", out)
      -- the bridge is not in this machine's network namespace
      assert.is_false(assert(sys.run{ "ip", "link", "show", "lab0" }).ok)
      assert.matches("lab0", assert(sys.run{ "nsenter", "--target", tostring(a.lab), "--net", "ip", "link" }).stdout)
      local holder = a.lab
      a:stop()
      assert.is_true(sys.alive(holder))   -- b still uses it
      b:stop()
      assert.is_false(sys.alive(holder))
   end)

   it("starts a name once when two starts race", function()
      lab.need_hosts(pending)
      local env = lab.cli_env("lab-race", finally)
      local function dup_dirs()
         local out = {}
         for _, f in ipairs(sys.dir("/tmp")) do if f:find("^msb%-dup%-") then out[f] = true end end
         return out
      end
      local before = dup_dirs()
      local logs, pids = {}, {}
      for i = 1, 2 do
         logs[i] = env.MYSEAL_STATE_DIR .. "/start-" .. i .. ".log"
         pids[i] = assert(sys.spawn{ require("myseal.host").exe, "sandbox", "start", "--driver", "host",
            "--name", "dup", env = env, log = logs[i] })
      end
      local deadline = sys.clock() + 60
      while (sys.alive(pids[1]) or sys.alive(pids[2])) and sys.clock() < deadline do sys.sleep(0.05) end
      local text = assert(sys.read_file(logs[1])) .. assert(sys.read_file(logs[2]))
      assert.equal(1, count(text, "host dup: mariadb"), text)
      assert.is_string(text:match("myseal: sandbox 'dup' is being started or stopped by another process")
         or text:match("myseal: a sandbox named 'dup' is running"), text)
      local list = assert(json.decode(h.myseal({ "sandbox", "status", "--json" }, { env = env }).stdout))
      assert.equal(1, #list)
      assert.same({ "dup", true }, { list[1].name, list[1].alive })
      local dirs = 0
      for f in pairs(dup_dirs()) do if not before[f] then dirs = dirs + 1 end end
      assert.equal(1, dirs)
   end)

   it("says in one line why it cannot make a host", function()
      local dir = assert(sys.tmpdir("lab-nobody"))
      finally(function() sys.rmtree(dir) end)
      assert(sys.chmod(dir, tonumber("777", 8)))
      if sys.user().uid ~= 0 then pending("needs root to run myseal as nobody") end
      local r = assert(sys.run{ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         require("myseal.host").exe, "sandbox", "start", "--driver", "host", "--name", "x",
         env = { MYSEAL_STATE_DIR = dir .. "/state", PATH = os.getenv("PATH") } })
      assert.equal(1, r.status)
      assert.equal("myseal: the host driver needs root (Linux namespaces: unshare --mount --pid --net --uts)\n",
         r.stderr)
   end)
end)
