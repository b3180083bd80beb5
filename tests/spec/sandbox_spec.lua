-- The sandbox: disposable MariaDB servers started from the local binaries.
local sandbox = require "myseal.sandbox"
local container = require "myseal.sandbox.container"
local json = require "myseal.json"
local sys = require "sys"
local h = require "support.helpers"

local function value(s, sql)
   local conn <close> = assert(s:connect())
   local rows = assert(conn:query(sql))
   return rows[1][1]
end

-- The real user id a process runs as, from /proc.
local function process_uid(pid)
   for line in io.lines("/proc/" .. pid .. "/status") do
      local uid = line:match("^Uid:%s+(%d+)")
      if uid then return tonumber(uid) end
   end
end

local function uid_of(name)
   local r = assert(sys.run{ "id", "-u", name })
   return tonumber(r.stdout)
end

-- Server processes whose command line names a sandbox directory of `name`.
local function servers_named(name)
   local n = 0
   for _, pid in ipairs(sys.dir("/proc")) do
      if pid:match("^%d+$") then
         local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
         local cmd = f and f:read("a") or ""
         if f then f:close() end
         if cmd:find("/msb-" .. name .. "-", 1, true) and cmd:find("--defaults-file", 1, true)
            and sys.alive(tonumber(pid)) then n = n + 1 end
      end
   end
   return n
end

describe("myseal.sandbox", function()
   local state_dir
   setup(function()
      state_dir = assert(sys.tmpdir("sandbox-spec"))
   end)
   teardown(function() sys.rmtree(state_dir) end)

   it("runs two servers at once, each with its own port, socket and TCP account", function()
      local a <close> = assert(sandbox.start{ name = "spec-a" })
      local b <close> = assert(sandbox.start{ name = "spec-b", options = { max_connections = 42 } })
      assert.are_not.equal(a.port, b.port)
      assert.are_not.equal(a.socket, b.socket)
      assert.is_true(#a.socket < 107)
      assert.equal("mariadb", a.flavor)
      assert.matches("^%d+%.%d+%.%d+$", a.version)
      assert.equal(42, value(b, "SELECT @@max_connections"))
      assert.are_not.equal(42, value(a, "SELECT @@max_connections"))
      -- root over the socket, no password; the TCP account over loopback
      assert.equal("root@localhost", value(a, "SELECT CURRENT_USER()"))
      local tcp <close> = assert(b:connect(b:tcp_options()))
      assert.equal("tcp_user@%", tcp:query("SELECT CURRENT_USER()")[1][1])
      -- no anonymous accounts left to shadow user@'%'
      assert.equal(0, value(a, "SELECT COUNT(*) FROM mysql.user WHERE user = ''"))
      -- another process sees them
      local seen = assert(sandbox.attach("spec-b"))
      assert.is_true(seen.alive)
      assert.equal(b.pid, seen.pid)
   end)

   it("runs the server as mysql when root starts it, its files owned as the package owns them", function()
      if sys.user().uid ~= 0 then pending("needs root: the server runs as its user only when root starts it") end
      local s <close> = assert(sandbox.start{ name = "spec-user" })
      assert.equal("mysql", s.user)
      assert.equal(uid_of("mysql"), process_uid(s.pid))
      local function owner(path)
         local st = assert(sys.stat(path))
         return ("%s:%s %04o"):format(st.user, st.group, st.mode)
      end
      assert.equal("mysql:mysql 0700", owner(s.datadir))
      assert.equal("mysql:root 0755", owner(s.dir .. "/run"))
      assert.equal("mysql:mysql 0700", owner(s.dir .. "/tmp"))
      assert.equal("root:mysql 0750", owner(s.dir))
      assert.equal("root:root 0644", owner(s.cnf))
      assert.equal("socket", sys.stat(s.socket).type)
      -- recorded in its state, and given to runbooks as server.user
      assert.equal("mysql", assert(sandbox.attach("spec-user")).user)
      local t = assert(require("myseal.engine.target").open{ sandbox = "spec-user" })
      assert.equal("mysql", t.layers[1].values["server.user"].value)
      -- a key only root can read takes the server down at its next restart, as on a real host
      local key = s.dir .. "/root-only-key.pem"
      assert(require("pki").genkey{ type = "ec" }:save(key))
      assert(sys.write_file(s.cnf, assert(sys.read_file(s.cnf)) .. "ssl_cert=" .. s.dir .. "/nocert.pem\n"
         .. "ssl_key=" .. key .. "\n"))
      local msg = h.fails(s:restart())
      assert.matches("sandbox 'spec%-user' did not come back", msg)
      assert.matches("%[ERROR%] Failed to setup SSL", msg)
   end)

   it("keeps the server root's with user = \"root\" (and --user root)", function()
      if sys.user().uid ~= 0 then pending("needs root") end
      local s <close> = assert(sandbox.start{ name = "spec-root", user = "root" })
      assert.equal("root", s.user)
      assert.equal(0, process_uid(s.pid))
      assert.equal("root", sys.stat(s.datadir).user)
      assert.equal(1, value(s, "SELECT 1"))
      local env = { MYSEAL_STATE_DIR = state_dir .. "/cli-root" }
      local r = h.myseal({ "sandbox", "start", "--name", "cliroot", "--user", "root", "--json" }, { env = env })
      assert.equal(0, r.status, r.stderr)
      local j = assert(json.decode(r.stdout))
      assert.equal("root", j.user)
      assert.equal(0, process_uid(j.pid))
      assert.equal(0, h.myseal({ "sandbox", "stop", "cliroot" }, { env = env }).status)
      assert.has_error(function() sandbox.start{ user = "a b" } end, "bad user name 'a b'")
      local msg = h.fails(sandbox.start{ name = "spec-nouser", user = "no-such-user-x" })
      assert.equal("there is no user 'no-such-user-x' on this machine", msg)
   end)

   it("starts a name once when two starts race, and leaks no server", function()
      local env = { MYSEAL_STATE_DIR = state_dir .. "/race" }
      finally(function() h.myseal({ "sandbox", "stop", "--all" }, { env = env }) end)
      local dir = assert(sys.tmpdir("race"))
      local pids = {}
      for i = 1, 2 do
         pids[i] = assert(sys.spawn{ require("myseal.host").exe, "sandbox", "start", "--name", "dup",
            env = env, log = dir .. "/" .. i .. ".log" })
      end
      local deadline = sys.clock() + 60
      while (sys.alive(pids[1]) or sys.alive(pids[2])) and sys.clock() < deadline do sys.sleep(0.05) end
      local logs = assert(sys.read_file(dir .. "/1.log")) .. assert(sys.read_file(dir .. "/2.log"))
      sys.rmtree(dir)
      local _, started = logs:gsub("sandbox dup: mariadb", "")
      assert.equal(1, started, logs)
      local refused = logs:match("myseal: sandbox 'dup' is being started or stopped by another process[^\n]*")
         or logs:match("myseal: a sandbox named 'dup' is running")
      assert.is_string(refused, logs)
      assert.equal(1, servers_named("dup"))
      local r = h.myseal({ "sandbox", "stop", "--all" }, { env = env })
      assert.equal("sandbox dup stopped\n", r.stdout)
      assert.equal(0, servers_named("dup"))
   end)

   it("starts with TLS, keeping the other options", function()
      local s <close> = assert(sandbox.start{ name = "spec-tls", tls = true, options = { max_connections = 55 } })
      assert.equal(55, value(s, "SELECT @@max_connections"))
      local o = s:tcp_options()
      o.tls = { mode = "verify_identity", ca = s.tls.ca }
      local c <close> = assert(s:connect(o))
      assert.is_true(c:tls().verified)
   end)

   it("restarts with an edited option file", function()
      local s <close> = assert(sandbox.start{ name = "spec-restart" })
      local text = assert(sys.read_file(s.cnf))
      assert(sys.write_file(s.cnf, text .. "max_connections=77\n"))
      local old_pid = s.pid
      assert.is_true(s:restart())
      assert.are_not.equal(old_pid, s.pid)
      assert.equal(77, value(s, "SELECT @@max_connections"))
   end)

   it("stops the server another process restarted (its pid changed)", function()
      local s <close> = assert(sandbox.start{ name = "spec-other-restart" })
      local first = s.pid
      local other = assert(sandbox.attach("spec-other-restart"))
      assert.is_true(other:restart())
      assert.are_not.equal(first, other.pid)
      assert.is_true(s:running())
      s:stop()
      assert.is_false(sys.alive(other.pid))
   end)

   it("reports a restart that fails with the server's own error line", function()
      local s <close> = assert(sandbox.start{ name = "spec-badrestart" })
      local text = assert(sys.read_file(s.cnf))
      assert(sys.write_file(s.cnf, text .. "no_such_option=1\n"))
      local msg = h.fails(s:restart())
      assert.matches("sandbox 'spec%-badrestart' did not come back", msg)
      assert.matches("unknown variable 'no_such_option=1'", msg)
      assert.is_false(s:running())
      assert(sys.write_file(s.cnf, text))
      assert.is_true(s:restart())
      assert.equal(1, value(s, "SELECT 1"))
   end)

   it("fails to start on a bad option, leaving no process and no files", function()
      local function leftovers()
         local n = 0
         for _, f in ipairs(sys.dir("/tmp")) do if f:find("^msb%-spec%-bad%-") then n = n + 1 end end
         return n
      end
      local msg = h.fails(sandbox.start{ name = "spec-bad", options = { innodb_bogus = "x" } })
      assert.matches("^sandbox 'spec%-bad' did not start", msg)
      assert.matches("%[ERROR%].*unknown variable 'innodb_bogus=x'", msg)
      assert.equal(0, leftovers())
      assert.is_nil(sandbox.attach("spec-bad"))
   end)

   it("is stopped by a <close> variable, and its files are gone", function()
      local pid, dir
      do
         local s <close> = assert(sandbox.start{ name = "spec-close" })
         pid, dir = s.pid, s.dir
         assert.is_true(sys.alive(pid))
      end
      assert.is_false(sys.alive(pid))
      assert.is_nil(sys.stat(dir))
      assert.is_nil(sandbox.attach("spec-close"))
   end)

   it("refuses bad input", function()
      assert.has_error(function() sandbox.start{ flavor = "oracle" } end,
         "unknown flavour 'oracle' (mariadb, mysql or auto)")
      assert.has_error(function() sandbox.start{ name = "a/b" } end,
         "bad sandbox name 'a/b' (letters, digits, '-' and '_', at most 32)")
      local msg = h.fails(sandbox.start{ flavor = "mysql" })
      assert.equal("no MySQL server binaries found (mysqld from Oracle MySQL): install the package "
         .. "mysql-server (or mysql-community-server)", msg)
   end)

   it("builds container command lines with no secret in them", function()
      local s = { name = "c1", engine = "docker", container = "myseal-msb-c1-abc123", port = 23306,
         dir = "/tmp/msb-c1-abc123", cnf = "/tmp/msb-c1-abc123/my.cnf", datadir = "/tmp/msb-c1-abc123/data",
         image = "docker.io/library/mariadb:11.4", uid = 102, gid = 105, tcp_user = "tcp_user",
         tcp_password = "s3cret" }
      -- what the image says it has (the official image's mariadbd --version)
      local bin = assert(container.parse_probe(s.image, "server=/usr/sbin/mariadbd\nversion=/usr/sbin/mariadbd  "
         .. "Ver 11.4.4-MariaDB-ubu2404 for debian-linux-gnu on x86_64 (mariadb.org binary distribution)\n"
         .. "install=/usr/bin/mariadb-install-db\n"))
      assert.same({ flavor = "mariadb", server = "/usr/sbin/mariadbd", install = "/usr/bin/mariadb-install-db",
         version = "11.4.4" }, bin)
      local argv = container.run_argv(s, bin)
      assert.same({ "docker", "run", "--detach", "--name", "myseal-msb-c1-abc123",
         "--label", "myseal.sandbox=/tmp/msb-c1-abc123", "--user", "102:105",
         "--volume", "/tmp/msb-c1-abc123:/tmp/msb-c1-abc123", "--publish", "127.0.0.1:23306:23306",
         "--stop-timeout", "60", "--entrypoint", "/bin/sh", "docker.io/library/mariadb:11.4", "-c" },
         table.move(argv, 1, 19, 1, {}))
      assert.same({ "myseal-sandbox", "/tmp/msb-c1-abc123/my.cnf", "/tmp/msb-c1-abc123/data", "/usr/sbin/mariadbd", "",
         "/usr/bin/mariadb-install-db", "--defaults-file=/tmp/msb-c1-abc123/my.cnf", "--skip-test-db",
         "--auth-root-authentication-method=normal" }, table.move(argv, 21, #argv, 1, {}))
      for _, a in ipairs(argv) do assert.is_nil(a:find("s3cret", 1, true)) end
      -- a program's environment goes by name, its value through the engine's environment
      assert.same({ "docker", "exec", "--user", "0", "--interactive", "--env", "MYSQL_PWD", "myseal-msb-c1-abc123",
         "mariadb", "-e", "SELECT 1" }, container.exec_argv(s, { "mariadb", "-e", "SELECT 1", stdin = "",
         env = { MYSQL_PWD = "s3cret" } }))
      assert.same({ "docker", "rm", "--force", "--volumes", "myseal-msb-c1-abc123" }, container.argv("remove", s))
      assert.same({ "docker", "restart", "--time", "60", "myseal-msb-c1-abc123" }, container.argv("restart", s))
      -- MySQL initialises with mysqld itself; a root server is told so
      local my = assert(container.parse_probe("mysql:8.4", "server=/usr/sbin/mysqld\nversion=/usr/sbin/mysqld  "
         .. "Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)\n"))
      assert.same({ flavor = "mysql", server = "/usr/sbin/mysqld", version = "8.4.3" }, my)
      s.uid, s.gid = 0, 0
      assert.same({ "/usr/sbin/mysqld", "--defaults-file=/tmp/msb-c1-abc123/my.cnf", "--initialize-insecure",
         "--user=root" }, container.init_argv(s, my))
      assert.equal("--user=root", container.run_argv(s, my)[25])
      assert.same({ nil, "image busybox has no MariaDB or MySQL server (mariadbd, mysqld)" },
         { container.parse_probe("busybox", "") })
      assert.same({ nil, "image x has /usr/sbin/mariadbd but no mariadb-install-db" },
         { container.parse_probe("x", "server=/usr/sbin/mariadbd\nversion=mariadbd Ver 10.6.1-MariaDB\n") })
      assert.has_error(function() sandbox.start{ driver = "container", engine = "lxc" } end,
         "unknown container engine 'lxc' (docker or podman)")
      assert.has_error(function() sandbox.start{ driver = "container", image = "a b" } end, "bad image name 'a b'")
      assert.has_error(function() sandbox.start{ engine = "docker" } end,
         "sandbox.start: engine and image are the container driver's")
   end)

   describe("command line", function()
      local env
      before_each(function() env = { MYSEAL_STATE_DIR = state_dir .. "/cli" } end)
      after_each(function() h.myseal({ "sandbox", "stop", "--all" }, { env = env }) end)

      it("starts, lists, restarts and stops every sandbox, dead ones included", function()
         local r = h.myseal({ "sandbox", "start", "--name", "cli1", "--json" }, { env = env })
         assert.equal(0, r.status, r.stderr)
         local s1 = assert(json.decode(r.stdout))
         assert.equal("cli1", s1.name)
         assert.is_true(sys.alive(s1.pid))
         r = h.myseal({ "sandbox", "start", "--name", "cli2", "--option", "max_connections=33" }, { env = env })
         assert.equal(0, r.status, r.stderr)
         assert.matches("sandbox cli2: mariadb", r.stdout)
         local s2 = assert(json.decode(h.myseal({ "sandbox", "status", "--json" }, { env = env }).stdout))[2]
         r = h.myseal({ "sandbox", "restart", "cli2" }, { env = env })
         assert.equal(0, r.status, r.stderr)
         -- a server that died is reported as dead and cleaned up by stop --all
         assert(sys.kill(s1.pid, "KILL"))
         while sys.alive(s1.pid) do sys.sleep(0.02) end
         r = h.myseal({ "sandbox", "status" }, { env = env })
         assert.matches("cli1%s+mariadb%s+%S+%s+DEAD", r.stdout)
         assert.matches("cli2%s+mariadb%s+%S+%s+running", r.stdout)
         local now = assert(json.decode(h.myseal({ "sandbox", "status", "--json" }, { env = env }).stdout))[2]
         assert.are_not.equal(s2.pid, now.pid)
         r = h.myseal({ "sandbox", "stop", "--all" }, { env = env })
         assert.equal("sandbox cli1 was dead: cleaned up\nsandbox cli2 stopped\n", r.stdout)
         assert.is_false(sys.alive(now.pid))
         assert.equal("no sandboxes\n", h.myseal({ "sandbox", "status" }, { env = env }).stdout)
      end)

      it("says which container engines do not answer, and leaves nothing", function()
         local r = h.myseal({ "sandbox", "start", "--driver", "container", "--name", "noengine" },
            { env = { MYSEAL_STATE_DIR = env.MYSEAL_STATE_DIR, PATH = "/nonexistent" } })
         assert.equal(1, r.status)
         assert.equal("myseal: no container engine answers (docker info: cannot run 'docker': No such file or "
            .. "directory; podman info: cannot run 'podman': No such file or directory)\n", r.stderr)
         r = h.myseal({ "sandbox", "start", "--driver", "container", "--engine", "podman" },
            { env = { MYSEAL_STATE_DIR = env.MYSEAL_STATE_DIR, PATH = "/nonexistent" } })
         assert.equal("myseal: the container engine podman does not answer (podman info: cannot run 'podman': No "
            .. "such file or directory)\n", r.stderr)
         assert.equal("no sandboxes\n", h.myseal({ "sandbox", "status" }, { env = env }).stdout)
      end)

      it("says what is wrong with bad usage", function()
         local r = h.myseal({ "sandbox", "start", "--flavor", "db2" }, { env = env })
         assert.equal(2, r.status)
         assert.equal("myseal: sandbox start: unknown flavour 'db2' (mariadb, mysql or auto)\n", r.stderr)
         r = h.myseal({ "sandbox", "start", "--engine", "podman" }, { env = env })
         assert.equal(2, r.status)
         assert.equal("myseal: sandbox start: --engine and --image are for --driver container\n", r.stderr)
         r = h.myseal({ "sandbox", "start", "--driver", "container", "--engine", "lxc" }, { env = env })
         assert.equal(2, r.status)
         assert.equal("myseal: sandbox start: unknown --engine 'lxc' (docker or podman)\n", r.stderr)
         r = h.myseal({ "sandbox", "stop", "nosuch" }, { env = env })
         assert.equal(2, r.status)
         assert.equal("myseal: no sandbox named 'nosuch' (see 'myseal sandbox status')\n", r.stderr)
         r = h.myseal({ "sandbox" }, { env = env })
         assert.equal(2, r.status)
      end)
   end)
end)
