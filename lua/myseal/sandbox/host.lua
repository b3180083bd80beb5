--- The host driver of the sandbox: a disposable Debian-shaped host made of Linux namespaces
-- (mount, UTS, IPC, network, PID), in which the distribution's own packages run the way they
-- run on a real machine, on private copies:
--   /etc/mysql           the conffiles of the installed MariaDB packages, taken from their .deb
--                        files (not from this machine's possibly edited /etc), or a copy of a
--                        site's own tree (`etc = DIR`)
--   /var/lib/mysql       a datadir made the way Debian's postinst makes it (mysql_install_db
--                        --rpm --cross-bootstrap --user=mysql: root by unix_socket only), plus
--                        an application schema (biobank: patients with names, specimens) and
--                        its account
--   /etc/init.d/mariadb  the package's service script: mysqld_safe, the server as `mysql`,
--                        its error log to syslog (a busybox syslogd writes /var/log/syslog)
--   /var/log /run /tmp /var/tmp /root /etc/hosts /etc/hostname /etc/default   private
-- With `app = "tomcat"`: Debian's Tomcat 10 as its systemd unit runs it (the lab's
-- /etc/init.d/tomcat10 stands in for the unit), MariaDB Connector/J in its lib, a JNDI
-- DataSource with a pool (jdbc/biobank, plain TCP as a stock application has it) and a page,
-- http://127.0.0.1:8080/db.jsp, answering with the number of patients and the session's
-- Ssl_cipher. With `ip = "ADDR/PREFIX"` the host joins the lab's bridge, which lives in a
-- network namespace of the lab's own (never this machine's).
-- The datadir and /etc tree are prepared once per package versions (a template in the
-- cache directory) and copied for each host. A site profile for the host, written as a
-- Debian DBA would write it, is its /root/site.ini.
-- @module myseal.sandbox.host
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"
local json = require "myseal.json"

local M = {}

local ASSETS = require("myseal.host").lua_dir .. "/myseal/sandbox/host"
local OCTAL = function(s) return tonumber(s, 8) end
local START_TIMEOUT = 60
local APP_TIMEOUT = 120
local PAGE = "http://127.0.0.1:8080/db.jsp"
local PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
local NS_FLAGS = { "--mount", "--uts", "--ipc", "--net", "--pid" }

-- The MariaDB packages whose conffiles make /etc/mysql, in the order dpkg unpacks them.
local DB_PACKAGES = { "mysql-common", "mariadb-common", "mariadb-client", "mariadb-server" }

-- Availability -----------------------------------------------------------------

local available_cache

--- Can hosts be made here? true, or nil and one line saying why not.
function M.available()
   if available_cache ~= nil then return table.unpack(available_cache) end
   local function answer(ok, why)
      available_cache = { ok, why }
      return ok, why
   end
   if not common.is_root() then
      return answer(nil, "the host driver needs root (Linux namespaces: unshare --mount --pid --net --uts)")
   end
   local r, err = sys.run{ "unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "--mount-proc",
      "true", timeout = 20 }
   if not r or not r.ok then
      local why = r and (r.stderr:match("[^\n]+") or ("exit status " .. tostring(r.status))) or err
      return answer(nil, "Linux namespaces are not permitted here (unshare --mount --pid --net --uts: " .. why .. ")")
   end
   for _, need in ipairs{ { "busybox", "busybox-static" }, { "nsenter", "util-linux" }, { "ip", "iproute2" },
                          { "dpkg-deb", "dpkg" } } do
      local w = sys.run{ "sh", "-c", 'command -v "$1"', "sh", need[1] }
      if not w or not w.ok then
         return answer(nil, string.format("the host driver needs %s: install the package %s", need[1], need[2]))
      end
   end
   return answer(true)
end

-- Running things -----------------------------------------------------------------

local run_ok = common.run_ok

-- `env -i` and a clean environment for commands in the host, as a root login there would have
-- it (nothing of the caller's environment, secrets included, reaches the host).
local function host_env(extra)
   local env = { PATH = PATH, HOME = "/root", USER = "root", LOGNAME = "root", SHELL = "/bin/sh",
      LANG = "C.UTF-8", TERM = os.getenv("TERM") or "dumb" }
   for k, v in pairs(extra or {}) do env[k] = v end
   local argv = { "env", "-i" }
   local keys = {}
   for k in pairs(env) do keys[#keys + 1] = k end
   table.sort(keys)
   for _, k in ipairs(keys) do argv[#argv + 1] = k .. "=" .. env[k] end
   return argv
end

local function fs(s, path) return s.dir .. "/fs" .. (path or "") end

-- Pids of the children of `pid`, from /proc.
local function children(pid)
   local out = {}
   for _, name in ipairs(sys.dir("/proc") or {}) do
      if name:match("^%d+$") then
         local stat = sys.read_file("/proc/" .. name .. "/stat")
         local ppid = stat and stat:match("%) %S+ (%d+)")
         if ppid and tonumber(ppid) == pid then out[#out + 1] = tonumber(name) end
      end
   end
   return out
end

local function kill_tree(pid)
   for _, c in ipairs(children(pid)) do kill_tree(c) end
   sys.kill(pid, "KILL")
end

-- Runs argv inside host `s` and waits for it to exit (not for the handles its daemons keep:
-- output goes to files, read when it is done). Returns sys.run's shape.
local function host_run(s, argv, opts)
   opts = opts or {}
   local id = state.random_hex(6)
   local inside = "/run/myseal-lab/exec-" .. id
   local outside = fs(s, inside)
   local stdin = "/dev/null"
   if argv.stdin then
      assert(sys.write_file(outside .. ".in", argv.stdin, { mode = OCTAL("600") }))
      stdin = inside .. ".in"
   end
   local cmd = host_env(argv.env)
   for _, a in ipairs{ "nsenter", "--target", tostring(s.pid), "--mount", "--uts", "--ipc", "--net", "--pid",
                       "--wd=/", "--", "/bin/sh", "-c",
                       'f=$1; i=$2; shift 2; "$@" >"$f.out" 2>"$f.err" <"$i"; echo $? >"$f.st"', "sh", inside,
                       stdin } do
      cmd[#cmd + 1] = a
   end
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   cmd.log = "/dev/null"
   local pid, err = sys.spawn(cmd)
   if not pid then return nil, err end
   local timeout = argv.timeout or opts.timeout
   local deadline = timeout and (sys.clock() + timeout)
   local delay = 0.005
   while sys.alive(pid) do
      if deadline and sys.clock() > deadline then
         kill_tree(pid)
         while sys.alive(pid) do sys.sleep(0.01) end
         for _, ext in ipairs{ ".in", ".out", ".err", ".st" } do os.remove(outside .. ext) end
         return nil, string.format("'%s' timed out after %g s in host %s", argv[1], timeout, s.name)
      end
      sys.sleep(delay)
      delay = math.min(delay * 2, 0.05)
   end
   local status = tonumber(sys.read_file(outside .. ".st") or "")
   local r = { stdout = sys.read_file(outside .. ".out") or "", stderr = sys.read_file(outside .. ".err") or "" }
   for _, ext in ipairs{ ".in", ".out", ".err", ".st" } do os.remove(outside .. ext) end
   if not status then
      r.signal, r.ok = 9, false
      if r.stderr == "" then r.stderr = "the command was killed (the host stopped?)" end
   elseif status > 128 then
      r.signal, r.ok = status - 128, false
   else
      r.status, r.ok = status, status == 0
   end
   return r
end

--- Runs a command inside the host: `{ "prog", "arg", ..., stdin = , env = , timeout = }`.
function M.exec(s, argv)
   return host_run(s, argv)
end

-- Packages and the template ------------------------------------------------------

local function package_version(name)
   local r = sys.run{ "dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", name }
   local v, st
   if r and r.ok then v, st = r.stdout:match("^(%S+) (%S+)") end
   if not v or st ~= "ii" then return nil end
   return v
end

-- The .deb of an installed package version: apt's cache, else `apt-get download` into ours.
local function deb_file(name, version, cache)
   local escaped = version:gsub(":", "%%3a")
   for _, dir in ipairs{ "/var/cache/apt/archives", cache } do
      for _, f in ipairs(sys.dir(dir) or {}) do
         if f:sub(1, #name + #escaped + 2) == name .. "_" .. escaped .. "_" and f:match("%.deb$") then
            return dir .. "/" .. f
         end
      end
   end
   local r, err = sys.run{ "apt-get", "download", name .. "=" .. version, cwd = cache, timeout = 300 }
   if not r or not r.ok then
      return nil, string.format("cannot get the package file of %s %s (apt-get download: %s)", name, version,
         r and (r.stderr:match("[^\n]+") or "failed") or err)
   end
   return deb_file(name, version, nil) or deb_file(name, version, cache)
end

-- The packages' versions, or nil, message naming the missing one.
local function versions(names)
   local out = {}
   for _, n in ipairs(names) do
      local v = package_version(n)
      if not v then return nil, string.format("the host driver needs the package %s installed", n) end
      out[#out + 1] = { name = n, version = v }
   end
   return out
end

local function template_key(list)
   local parts = {}
   for _, p in ipairs(list) do parts[#parts + 1] = p.name .. "_" .. p.version end
   local key = table.concat(parts, "+")
   local h = 2166136261
   for i = 1, #key do h = ((h ~ key:byte(i)) * 16777619) & 0xffffffff end
   return ("%s-%08x"):format(list[#list].version:gsub("[^%w%.%-]", "_"), h)
end

-- Extracts the /etc trees of packages' .deb files into dest/etc.
local function extract_etc(list, dest, work, cache)
   for _, p in ipairs(list) do
      local deb, err = deb_file(p.name, p.version, cache)
      if not deb then return nil, err end
      local x = work .. "/" .. p.name
      local ok, xerr = run_ok({ "dpkg-deb", "-x", deb, x }, "dpkg-deb -x " .. deb)
      if not ok then return nil, xerr end
      if sys.stat(x .. "/etc") then
         ok, xerr = run_ok({ "cp", "-a", x .. "/etc/.", dest .. "/etc/" }, "copying the conffiles of " .. p.name)
         if not ok then return nil, xerr end
      end
   end
   return true
end

-- The private filesystem of a host (or of the template host) under root/fs.
local function make_tree(root, opts)
   local f = root .. "/fs"
   local dirs = {
      { "/etc/mysql", "755" }, { "/etc/init.d", "755" }, { "/etc/default", "755" },
      { "/var/lib/mysql", "755", "mysql", "mysql" }, { "/var/log", "755" },
      { "/var/log/mysql", "2750", "mysql", "adm" }, { "/run", "755" }, { "/run/mysqld", "755", "mysql", "root" },
      { "/run/myseal-lab", "700" }, { "/tmp", "1777" }, { "/var/tmp", "1777" }, { "/root", "700" },
   }
   if opts.app then
      for _, d in ipairs{ { "/etc/tomcat10", "755" }, { "/etc/tomcat10/Catalina", "775", "root", "tomcat" },
                          { "/var/lib/tomcat10", "755" }, { "/var/lib/tomcat10/lib", "755", "tomcat", "tomcat" },
                          { "/var/lib/tomcat10/webapps", "775", "tomcat", "tomcat" },
                          { "/var/cache/tomcat10", "750", "tomcat", "tomcat" },
                          { "/var/log/tomcat10", "2770", "tomcat", "adm" } } do
         dirs[#dirs + 1] = d
      end
   end
   for _, d in ipairs(dirs) do
      local path = f .. d[1]
      local ok, err = sys.mkdir(path, OCTAL(d[2]))
      if ok then ok, err = sys.chmod(path, OCTAL(d[2])) end
      if ok and d[3] then ok, err = sys.chown(path, d[3], d[4]) end
      if not ok then return nil, err end
   end
   local name = opts.name
   local hosts = table.concat({ "127.0.0.1\tlocalhost", "127.0.1.1\t" .. name,
      "::1\tlocalhost ip6-localhost ip6-loopback", "" }, "\n")
   if opts.address then hosts = hosts .. opts.address .. "\t" .. name .. "\n" end
   assert(sys.write_file(f .. "/etc/hosts", hosts, { mode = OCTAL("644") }))
   assert(sys.write_file(f .. "/etc/hostname", name .. "\n", { mode = OCTAL("644") }))
   return true
end

local function pid_cmdline(pid)
   local text = sys.read_file("/proc/" .. pid .. "/cmdline")
   return text and text:gsub("%z", " ") or ""
end

-- Starts the namespaces of a host whose tree is ready; fills s.pid (the host's PID 1 as this
-- machine sees it) and s.ns (the unshare process). true, or nil, message.
local function boot_namespace(s)
   local argv = { "env", "-i", "PATH=" .. PATH, "LANG=C.UTF-8", "unshare" }
   for _, f in ipairs(NS_FLAGS) do argv[#argv + 1] = f end
   for _, a in ipairs{ "--fork", "--mount-proc", "/bin/sh", ASSETS .. "/init.sh", s.dir, s.name } do
      argv[#argv + 1] = a
   end
   argv.log = s.dir .. "/init.log"
   local upid, err = sys.spawn(argv)
   if not upid then return nil, err end
   s.ns = upid
   local ready = fs(s, "/run/myseal-lab/ready")
   local deadline = sys.clock() + START_TIMEOUT
   while not sys.stat(ready) do
      if not sys.alive(upid) or sys.clock() > deadline then
         if sys.alive(upid) then kill_tree(upid) end
         return nil, string.format("host '%s': its namespaces did not come up:\n%s", s.name,
            common.tail_lines(sys.read_file(s.dir .. "/init.log") or "", 5))
      end
      sys.sleep(0.02)
   end
   for _, c in ipairs(children(upid)) do
      if pid_cmdline(c):find(ASSETS .. "/init.sh", 1, true) then s.pid = c end
   end
   if not s.pid then
      kill_tree(upid)
      return nil, string.format("host '%s': cannot find its init process", s.name)
   end
   return true
end

-- Is pid the init of host s? (pids are reused: check its command line)
local function our_init(s)
   if not s.pid or not sys.alive(s.pid) then return false end
   local cmd = pid_cmdline(s.pid)
   return cmd:find(ASSETS .. "/init.sh " .. s.dir, 1, true) ~= nil
      or cmd:find("/init.sh " .. s.dir, 1, true) ~= nil
end

local function kill_namespace(s)
   if our_init(s) then
      sys.kill(s.pid, "KILL")   -- the kernel ends every process of the host with it
      local deadline = sys.clock() + 30
      while sys.alive(s.pid) and sys.clock() < deadline do sys.sleep(0.02) end
   end
   if s.ns and sys.alive(s.ns) and pid_cmdline(s.ns):find("unshare", 1, true) then
      sys.kill(s.ns, "KILL")
      while sys.alive(s.ns) do sys.sleep(0.01) end
   end
end

-- The server's lines of the host's syslog, last n.
local function server_log(s, n)
   local text = sys.read_file(fs(s, "/var/log/syslog")) or ""
   local lines = {}
   for line in text:gmatch("[^\n]+") do
      -- mysqld_safe's and the server's own lines (tags mysqld_safe, mysqld), not the service script's
      if line:find(" mysqld: ", 1, true) or line:find(" mysqld_safe", 1, true) then lines[#lines + 1] = line end
   end
   return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

-- Runs a service script action inside the host; true, or nil, message with its output and
-- the server's last syslog lines.
local function service(s, script, action, timeout)
   local r, err = host_run(s, { script, action, timeout = timeout or 180 })
   if r and r.ok then return true, r end
   local out = r and ((r.stdout .. r.stderr):gsub("%s+$", "")) or err
   return nil, string.format("host '%s': %s %s failed (%s)%s", s.name, script, action,
      r and (r.status and ("exit status " .. r.status) or ("signal " .. tostring(r.signal))) or "not run",
      out ~= "" and (":\n" .. common.tail_lines(out, 8)) or "")
end

-- Is the server answering on its socket?
local function server_up(s)
   local c = require("mysql").connect{ socket = s.socket, user = "root", connect_timeout = 5 }
   if not c then return false end
   c:close()
   return true
end

local function mariadb_action(s, action)
   local ok, err = service(s, "/etc/init.d/mariadb", action)
   if ok and action ~= "stop" and not server_up(s) then
      ok, err = nil, string.format("host '%s': /etc/init.d/mariadb %s ended but the server does not answer "
         .. "on %s", s.name, action, s.socket)
   end
   if not ok then
      local log = server_log(s, 10)
      return nil, err .. (log ~= "" and ("\nthe server's syslog lines end:\n" .. log) or "")
   end
   return true
end

-- The application's schema and account, made once in the template (rows with names: what
-- at-rest must make unreadable on disk).
local APP_SQL = {
   "CREATE DATABASE biobank",
   "USE biobank",
   "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, born DATE, "
      .. "KEY (name)) ENGINE=InnoDB",
   "CREATE TABLE biobank.specimens (id INT PRIMARY KEY, patient INT NOT NULL, kind VARCHAR(20), "
      .. "taken DATETIME, note TEXT, KEY (patient)) ENGINE=InnoDB",
   "INSERT INTO biobank.patients SELECT seq, CONCAT(ELT(1 + seq % 12, 'Anna', 'Bernd', 'Chiara', 'Dmitri', "
      .. "'Elif', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Karin', 'Luca'), ' ', "
      .. "ELT(1 + (seq DIV 12) % 10, 'Moreau', 'Novak', 'Okafor', 'Petersen', 'Quispe', 'Rossi', 'Schmidt', "
      .. "'Tanaka', 'Urban', 'Virtanen'), ' ', seq), '1950-01-01' + INTERVAL seq * 7 DAY FROM seq_1_to_2000",
   "INSERT INTO biobank.specimens SELECT seq, 1 + seq % 2000, ELT(1 + seq % 3, 'blood', 'tissue', 'dna'), "
      .. "'2024-01-01' + INTERVAL seq HOUR, CONCAT('collected at ward ', 1 + seq % 9) FROM seq_1_to_6000",
}

local function make_app_schema(s, password)
   local c, err = require("mysql").connect{ socket = s.socket, user = "root" }
   if not c then return nil, "the template's server: " .. err end
   for _, sql in ipairs(APP_SQL) do
      local ok, qerr = c:exec(sql)
      if not ok then c:close(); return nil, sql .. ": " .. qerr end
   end
   for _, host in ipairs{ "localhost", "%" } do
      assert(c:exec("CREATE USER 'biobank'@'" .. host .. "' IDENTIFIED BY ?", password))
      assert(c:exec("GRANT SELECT, INSERT, UPDATE, DELETE ON biobank.* TO 'biobank'@'" .. host .. "'"))
   end
   c:close()
   return true
end

-- Builds a template under dir: /etc/mysql and /etc/init.d/mariadb from the packages, a
-- datadir made as the postinst makes it, the application schema.
local function build_template(dir, list, cache)
   local work = dir .. "/x"
   assert(sys.mkdir(work, OCTAL("700")))
   local ok, err = make_tree(dir, { name = "template" })
   if not ok then return nil, err end
   local etc = dir .. "/fs"
   ok, err = extract_etc(list, etc, work, cache)
   sys.rmtree(work)
   if not ok then return nil, err end
   -- what the postinst does besides unpacking: the my.cnf alternative, debian.cnf
   os.remove(etc .. "/etc/mysql/my.cnf")
   ok, err = run_ok({ "ln", "-s", "mariadb.cnf", etc .. "/etc/mysql/my.cnf" }, "linking my.cnf")
   if not ok then return nil, err end
   assert(sys.write_file(etc .. "/etc/mysql/debian.cnf", table.concat({
      "# THIS FILE IS OBSOLETE. STOP USING IT IF POSSIBLE.", "[client]", "host     = localhost",
      "user     = root", "[mysql_upgrade]", "host     = localhost", "user     = root", "" }, "\n"),
      { mode = OCTAL("600") }))
   local s = { name = "template", dir = dir, socket = dir .. "/fs/run/mysqld/mysqld.sock" }
   ok, err = boot_namespace(s)
   if not ok then return nil, err end
   local series = list[#list].version:match("^%d+:(%d+%.%d+)") or list[#list].version:match("^(%d+%.%d+)")
   local steps = {
      { "touch", "/var/lib/mysql/debian-" .. series .. ".flag" },
      { "env", "TMPDIR=", "bash", "/usr/bin/mysql_install_db", "--rpm", "--cross-bootstrap", "--user=mysql",
        "--disable-log-bin", "--skip-test-db" },
   }
   for _, argv in ipairs(steps) do
      local r, rerr = host_run(s, argv, { timeout = 300 })
      if not r or not r.ok then
         kill_namespace(s)
         return nil, string.format("the template host: %s failed: %s", argv[1] == "env" and argv[4] or argv[1],
            r and common.tail_lines(r.stdout .. r.stderr, 5) or rerr)
      end
   end
   local password = state.random_hex(12)
   ok, err = mariadb_action(s, "start")
   if ok then ok, err = make_app_schema(s, password) end
   if ok then ok, err = mariadb_action(s, "stop") end
   kill_namespace(s)
   if not ok then return nil, err end
   assert(sys.write_file(dir .. "/app_password", password, { mode = OCTAL("600") }))
   for _, p in ipairs{ "/var/log", "/run", "/tmp", "/var/tmp", "/root", "/etc/hosts", "/etc/hostname",
                       "/etc/default" } do
      sys.rmtree(dir .. "/fs" .. p)
   end
   sys.rmtree(dir .. "/init.log")
   sys.rmtree(dir .. "/hostdev")
   assert(sys.write_file(dir .. "/versions.json", json.encode(list) .. "\n"))
   return true
end

-- The template for the installed packages (made once, under a lock, renamed into place).
local function template()
   local list, err = versions(DB_PACKAGES)
   if not list then return nil, err end
   local root
   root, err = state.cache("hosts")
   if not root then return nil, err end
   local final = root .. "/" .. template_key(list)
   local path, berr = common.cached(final, "versions.json", function(tmp) return build_template(tmp, list, root) end)
   if not path then return nil, "cannot prepare the lab host template: " .. berr end
   return path
end

--- Prepares the host template now (tools/test does, before specs start hosts in parallel).
-- @return path | nil, message
function M.prepare()
   local ok, why = M.available()
   if not ok then return nil, why end
   return template()
end

-- Tomcat ---------------------------------------------------------------------------

local CONTEXT = [[
<?xml version="1.0" encoding="UTF-8"?>
<!-- The contents of this file will be loaded for each web application -->
<Context>
    <WatchedResource>WEB-INF/web.xml</WatchedResource>
    <WatchedResource>WEB-INF/tomcat-web.xml</WatchedResource>
    <WatchedResource>${catalina.base}/conf/web.xml</WatchedResource>

    <!-- The biobank application's database: a connection pool over TCP. -->
    <Resource name="jdbc/biobank" auth="Container" type="javax.sql.DataSource"
              driverClassName="org.mariadb.jdbc.Driver"
              url="jdbc:mariadb://127.0.0.1:3306/biobank"
              username="biobank" password="%s"
              initialSize="2" minIdle="2" maxIdle="4" maxTotal="8" maxWaitMillis="5000"
              validationQuery="SELECT 1" testOnBorrow="true"/>
</Context>
]]

-- /etc/tomcat10, /etc/default/tomcat10 and /var/lib/tomcat10 as the tomcat10 package and its
-- postinst make them (from the package's own copies in /usr/share/tomcat10), plus the
-- application: the driver in CATALINA_BASE/lib, the pool in context.xml, the page.
local function make_tomcat(s, password)
   local list, err = versions{ "tomcat10", "tomcat10-common", "libmariadb-java" }
   if not list then return nil, err end
   local f = fs(s)
   local ok, cerr = run_ok({ "cp", "-a", "/usr/share/tomcat10/etc/.", f .. "/etc/tomcat10/" }, "copying Tomcat's configuration")
   if not ok then return nil, cerr end
   local work = s.dir .. "/x"
   assert(sys.mkdir(work .. "/deb", OCTAL("700")))
   ok, cerr = extract_etc({ list[1] }, work, work .. "/deb", assert(state.cache("hosts")))
   if ok then ok, cerr = run_ok({ "cp", "-a", work .. "/etc/tomcat10/policy.d", f .. "/etc/tomcat10/" }, "policy.d") end
   sys.rmtree(work)
   if not ok then return nil, cerr end
   for _, name in ipairs(sys.dir(f .. "/etc/tomcat10") or {}) do
      local p = f .. "/etc/tomcat10/" .. name
      if sys.stat(p).type == "file" then assert(sys.chown(p, "root", "tomcat")); assert(sys.chmod(p, OCTAL("640"))) end
   end
   assert(sys.chown(f .. "/etc/tomcat10/policy.d", "root", "tomcat"))
   for _, name in ipairs(sys.dir(f .. "/etc/tomcat10/policy.d") or {}) do
      local p = f .. "/etc/tomcat10/policy.d/" .. name
      assert(sys.chown(p, "root", "tomcat")); assert(sys.chmod(p, OCTAL("640")))
   end
   assert(sys.write_file(f .. "/etc/tomcat10/context.xml", CONTEXT:format(password), { mode = OCTAL("640") }))
   assert(sys.chown(f .. "/etc/tomcat10/context.xml", "root", "tomcat"))
   assert(sys.copy_file("/usr/share/tomcat10/default.template", f .. "/etc/default/tomcat10"))
   local base = f .. "/var/lib/tomcat10"
   for _, l in ipairs{ { "/etc/tomcat10", "conf" }, { "../../log/tomcat10", "logs" }, { "../../cache/tomcat10", "work" },
                       { "/usr/share/java/mariadb-java-client.jar", "lib/mariadb-java-client.jar" } } do
      ok, cerr = run_ok({ "ln", "-s", l[1], base .. "/" .. l[2] }, "ln -s " .. l[1])
      if not ok then return nil, cerr end
   end
   ok, cerr = run_ok({ "cp", "-r", "/usr/share/tomcat10-root/default_root", base .. "/webapps/ROOT" }, "the ROOT webapp")
   if not ok then return nil, cerr end
   assert(sys.copy_file(ASSETS .. "/db.jsp", base .. "/webapps/ROOT/db.jsp"))
   ok, cerr = common.chown_tree(base .. "/webapps", assert(common.account("tomcat")))
   if not ok then return nil, cerr end
   assert(sys.copy_file(ASSETS .. "/tomcat10", f .. "/etc/init.d/tomcat10"))
   return true
end

--- The application page, fetched inside the host: body, or nil, message.
-- @param s the host
-- @param timeout seconds (default 5)
function M.page(s, timeout)
   local r, err = host_run(s, { "curl", "-sS", "--max-time", tostring(timeout or 5), "-o", "-",
      "-w", "\n%{http_code}", PAGE, timeout = (timeout or 5) + 5 })
   if not r then return nil, err end
   local body, code = r.stdout:match("^(.*)\n(%d+)$")
   if r.ok and code == "200" then return body end
   return nil, (body and body ~= "" and body or r.stderr):gsub("%s+$", "") .. " (HTTP " .. tostring(code) .. ")"
end

--- Starts polling the application page inside the host every `interval` seconds (default
-- 0.25), each answer a line of /root/poll.log: milliseconds since the epoch, HTTP status
-- (000: no answer) and the body. Returns the log's path on this machine.
function M.poll_start(s, interval)
   local script = "/root/poll.sh"
   assert(sys.write_file(fs(s, script), table.concat({
      "#!/bin/sh",
      "# the lab's page poller (myseal.sandbox.host.poll_start): one line per request",
      "while [ ! -e /root/poll.stop ]; do",
      "  t=$(date +%s%3N)",
      "  out=$(curl -s --max-time 2 -w ' %{http_code}' " .. PAGE .. " | tr '\\n' ' ')",
      "  echo \"$t ${out##* } ${out% *}\" >> /root/poll.log",
      "  sleep " .. tostring(interval or 0.25),
      "done", "" }, "\n"), { mode = OCTAL("700") }))
   os.remove(fs(s, "/root/poll.stop"))
   local r, err = host_run(s, { "sh", "-c", "nohup sh " .. script .. " >/dev/null 2>&1 &" })
   if not r or not r.ok then return nil, err or r.stderr end
   return fs(s, "/root/poll.log")
end

--- Stops the poller (it ends after its current request).
function M.poll_stop(s)
   assert(sys.write_file(fs(s, "/root/poll.stop"), ""))
end

--- The poller's answers: list of { ms, code, body, ok } (ok: HTTP 200 with a row count).
function M.poll_read(s)
   local out = {}
   for line in (sys.read_file(fs(s, "/root/poll.log")) or ""):gmatch("[^\n]+") do
      local ms, code, body = line:match("^(%d+) (%d+) ?(.*)$")
      if ms then
         body = body:gsub("%s+$", "")
         out[#out + 1] = { ms = tonumber(ms), code = code, body = body,
            ok = code == "200" and body:match("^patients=%d+") ~= nil }
      end
   end
   return out
end

--- Failed requests and the longest outage (ms from the last good answer before a failure to
-- the first good one after it) among the answers between `from` and `to` (ms, inclusive).
-- @return { requests, failed, longest_ms }
function M.outages(samples, from, to)
   local r = { requests = 0, failed = 0, longest_ms = 0 }
   local last_ok, down_since
   for _, x in ipairs(samples) do
      if x.ms >= (from or 0) and x.ms <= (to or math.huge) then
         r.requests = r.requests + 1
         if x.ok then
            if down_since then r.longest_ms = math.max(r.longest_ms, x.ms - down_since) end
            down_since, last_ok = nil, x.ms
         else
            r.failed = r.failed + 1
            down_since = down_since or last_ok or x.ms
         end
      end
   end
   if down_since then r.longest_ms = math.max(r.longest_ms, (to or samples[#samples].ms) - down_since) end
   return r
end

local function start_tomcat(s)
   local ok, err = service(s, "/etc/init.d/tomcat10", "start")
   if not ok then return nil, err end
   local deadline = sys.clock() + APP_TIMEOUT
   local last
   repeat
      local body, perr = M.page(s, 10)
      if body and body:match("^patients=%d+") then return true end
      last = perr or body
      sys.sleep(0.25)
   until sys.clock() > deadline
   return nil, string.format("host '%s': Tomcat did not serve %s within %d s: %s\n%s", s.name, PAGE, APP_TIMEOUT,
      tostring(last), common.tail_lines(sys.read_file(fs(s, "/var/log/tomcat10/catalina.out")) or "", 8))
end

-- The lab network -------------------------------------------------------------

local function lab_state_path()
   return assert(state.dir("lab")) .. "/network.json"
end

-- Is pid the process holding the lab's network? (its environment says so)
local function is_lab_holder(pid)
   if not pid or not sys.alive(pid) then return false end
   local env = sys.read_file("/proc/" .. pid .. "/environ") or ""
   return env:find("MYSEAL_LAB_NETWORK=" .. assert(state.dir("lab")), 1, true) ~= nil
end

-- The process holding the lab's network namespace (and its bridge lab0), started when the
-- first host joins. Returns its pid, or nil, message.
local function lab_holder()
   local text = sys.read_file(lab_state_path())
   local t = text and json.decode(text)
   if t and t.pid and is_lab_holder(t.pid) then return t.pid end
   local dir = assert(state.dir("lab"))
   local ready = dir .. "/network.ready"
   os.remove(ready)
   local pid, err = sys.spawn{ "unshare", "--net", "/bin/sh", "-c",
      'ip link set lo up && ip link add lab0 type bridge && ip link set lab0 up && : > "$1" && '
         .. 'exec sleep infinity', "myseal-lab-network", ready,
      env = { PATH = PATH, MYSEAL_LAB_NETWORK = dir }, log = dir .. "/network.log" }
   if not pid then return nil, err end
   local deadline = sys.clock() + 20
   while not sys.stat(ready) do
      if not sys.alive(pid) or sys.clock() > deadline then
         return nil, "the lab network did not come up: " .. (sys.read_file(dir .. "/network.log") or "")
      end
      sys.sleep(0.02)
   end
   os.remove(ready)
   assert(sys.write_file(lab_state_path(), json.encode{ pid = pid } .. "\n", { mode = OCTAL("600") }))
   return pid
end

local function join_lab(s)
   local lock = assert(sys.lock(assert(state.dir("lab")) .. "/network.lock"))
   local lab, err = lab_holder()
   if not lab then lock:release(); return nil, err end
   local veth = "vh" .. s.pid
   local steps = {
      { "nsenter", "--target", tostring(lab), "--net", "ip", "link", "add", veth, "type", "veth",
        "peer", "name", "eth0", "netns", tostring(s.pid) },
      { "nsenter", "--target", tostring(lab), "--net", "ip", "link", "set", veth, "master", "lab0", "up" },
      { "nsenter", "--target", tostring(s.pid), "--net", "ip", "addr", "add", s.ip, "dev", "eth0" },
      { "nsenter", "--target", tostring(s.pid), "--net", "ip", "link", "set", "eth0", "up" },
   }
   for _, argv in ipairs(steps) do
      local ok, rerr = run_ok(argv, "joining the lab network")
      if not ok then lock:release(); return nil, rerr end
   end
   s.lab = lab
   lock:release()
   return true
end

-- Ends the lab network when no host is left on it.
local function leave_lab(s, others)
   if not s.lab then return end
   local lock = sys.lock(assert(state.dir("lab")) .. "/network.lock")
   for _, o in ipairs(others) do
      if o.driver == "host" and o.lab == s.lab and o.name ~= s.name and o.alive then
         if lock then lock:release() end
         return
      end
   end
   if is_lab_holder(s.lab) then
      sys.kill(s.lab, "KILL")
      while sys.alive(s.lab) do sys.sleep(0.01) end
   end
   os.remove(lab_state_path())
   if lock then lock:release() end
end

--- Ends the lab network of this state directory when no host uses it any more (after a
-- crash left it behind); `sandbox stop --all` calls it.
function M.cleanup()
   local text = sys.read_file(lab_state_path())
   local t = text and json.decode(text)
   if not t then return end
   for _, o in ipairs(require("myseal.sandbox").list()) do
      if o.driver == "host" and o.lab == t.pid and o.alive then return end
   end
   leave_lab({ lab = t.pid, name = "" }, {})
end

-- The site profile -----------------------------------------------------------------

local function profile_text(s)
   local lines = {
      "# Site profile for lab host " .. s.name .. ", as a Debian DBA writes it: the packaged",
      "# paths, Debian's service script, root over the socket by unix_socket.",
      "[site]", "name = " .. s.name, "",
      "[server]", "cnf = /etc/mysql/my.cnf", "datadir = /var/lib/mysql", "user = mysql",
      "restart_command = /etc/init.d/mariadb restart", "",
      "[connection]", "socket = /run/mysqld/mysqld.sock", "user = root", "",
      "[keyring]", "backup_dir = /root/myseal-key-backup", "",
   }
   if s.app then
      for _, l in ipairs{ "[tomcat]", "catalina_base = /var/lib/tomcat10", "catalina_home = /usr/share/tomcat10",
                          "user = tomcat", "group = tomcat",
                          "truststore_password = file:/root/.tomcat-truststore-password",
                          "restart_command = /etc/init.d/tomcat10 restart", "" } do
         lines[#lines + 1] = l
      end
   end
   return table.concat(lines, "\n")
end

-- Starting and stopping --------------------------------------------------------------

function M.check_options(opts, level)
   level = (level or 1) + 1
   if opts.app ~= nil and opts.app ~= "tomcat" then
      error(string.format("unknown app '%s' (tomcat)", tostring(opts.app)), level)
   end
   if opts.ip ~= nil and (type(opts.ip) ~= "string" or not opts.ip:match("^%d+%.%d+%.%d+%.%d+/%d+$")) then
      error(string.format("bad address '%s' (ADDR/PREFIX, e.g. 10.23.0.2/24)", tostring(opts.ip)), level)
   end
   if opts.user ~= nil and opts.user ~= "mysql" then
      error("a lab host runs its server as mysql, as the package does", level)
   end
end

--- Starts a new host `s` (name): fills in its paths, pid, socket, profile.
-- @return true, or nil, message
function M.start(s, flavor, opts)
   local ok, err = M.available()
   if not ok then return nil, err end
   if flavor ~= "auto" and flavor ~= "mariadb" then
      return nil, "a lab host runs Debian's MariaDB: --flavor mysql is not available there"
   end
   if opts.etc then
      local st = sys.stat(opts.etc)
      if not st or st.type ~= "directory" then return nil, string.format("--etc %s: not a directory", opts.etc) end
   end
   local tpl
   tpl, err = template()
   if not tpl then return nil, err end
   local mysql_account = assert(common.system_account("mysql", "MySQL Server"))
   if opts.app and not common.account("tomcat") then
      return nil, "the host driver's Tomcat needs the package tomcat10 (its user tomcat is missing)"
   end
   local dir
   dir, err = common.short_tmpdir(s.name)
   if not dir then return nil, err end
   s.dir, s.app, s.user = dir, opts.app, mysql_account.name
   s.flavor, s.version = "mariadb", assert(json.decode(assert(sys.read_file(tpl .. "/versions.json"))))
   s.version = s.version[#s.version].version:match("(%d+%.%d+%.%d+)")
   s.socket = fs(s, "/run/mysqld/mysqld.sock")
   s.datadir, s.cnf, s.log = fs(s, "/var/lib/mysql"), fs(s, "/etc/mysql/my.cnf"), fs(s, "/var/log/syslog")
   s.host, s.port, s.profile = "127.0.0.1", 3306, "/root/site.ini"
   s.ip = opts.ip
   s.address = opts.ip and opts.ip:match("^([^/]+)")
   s.app_user, s.app_password = "biobank", assert(sys.read_file(tpl .. "/app_password"))
   s.tcp_user, s.tcp_password = nil, nil
   local function fail(msg)
      kill_namespace(s)
      sys.rmtree(dir)
      return nil, msg
   end
   ok, err = make_tree(dir, { name = s.name, app = opts.app, address = s.address })
   if not ok then return fail(err) end
   local f = fs(s)
   for _, part in ipairs{ { opts.etc or (tpl .. "/fs/etc/mysql"), "/etc/mysql" },
                          { tpl .. "/fs/etc/init.d", "/etc/init.d" }, { tpl .. "/fs/var/lib/mysql", "/var/lib/mysql" } } do
      ok, err = run_ok({ "cp", "-a", part[1] .. "/.", f .. part[2] .. "/" }, "copying " .. part[2])
      if not ok then return fail(err) end
   end
   if opts.app then
      ok, err = make_tomcat(s, s.app_password)
      if not ok then return fail(err) end
      assert(sys.write_file(f .. "/root/.tomcat-truststore-password", state.random_hex(12), { mode = OCTAL("600") }))
   end
   assert(sys.write_file(f .. s.profile, profile_text(s), { mode = OCTAL("600") }))
   ok, err = boot_namespace(s)
   if not ok then return fail(err) end
   if s.ip then
      ok, err = join_lab(s)
      if not ok then return fail(err) end
   end
   ok, err = mariadb_action(s, "start")
   if not ok then return fail(err) end
   if opts.app then
      ok, err = start_tomcat(s)
      if not ok then return fail(err) end
   end
   return true
end

function M.running(s)
   return our_init(s)
end

function M.shutdown(s)
   if our_init(s) then mariadb_action(s, "stop") end
   return true
end

function M.boot(s)
   return mariadb_action(s, "start")
end

function M.restart(s)
   return mariadb_action(s, "restart")
end

function M.remove(s)
   local others = require("myseal.sandbox").list()
   kill_namespace(s)
   leave_lab(s, others)
   if s.dir and s.dir:match("/msb%-") then sys.rmtree(s.dir) end
end

function M.error_log(s, n)
   return server_log(s, n)
end

function M.paths(s)
   local p = { root = s.dir, etc = fs(s, "/etc/mysql"), cnf = s.cnf, datadir = s.datadir, socket = s.socket,
      syslog = fs(s, "/var/log/syslog"), log = s.log, profile = fs(s, s.profile), home = fs(s, "/root") }
   if s.app then
      p.catalina_base, p.tomcat_conf = fs(s, "/var/lib/tomcat10"), fs(s, "/etc/tomcat10")
      p.catalina_out = fs(s, "/var/log/tomcat10/catalina.out")
   end
   return p
end

return M
