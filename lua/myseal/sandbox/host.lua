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
-- Ssl_cipher (`app_db = ADDR`: the pool connects to the server at that address instead of this
-- host's). With `ip = "ADDR/PREFIX"` the host joins the lab's bridge, which lives in a
-- network namespace of the lab's own (never this machine's). With `ssh_key = PATH` Debian's
-- sshd runs in it and lets root in with that public key; `options` go to the server's own
-- drop-in file, /etc/mysql/mariadb.conf.d/60-myseal-lab.cnf.
-- The datadir and /etc tree are prepared once per package versions (a template in the
-- cache directory) and copied for each host. A site profile for the host, written as a
-- Debian DBA would write it, is its /root/site.ini.
-- @module myseal.sandbox.host
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"
local json = require "myseal.json"

local ns = require "myseal.sandbox.host.ns"
local template = require "myseal.sandbox.host.template"
local app = require "myseal.sandbox.host.app"
local net = require "myseal.sandbox.host.net"
local ssh = require "myseal.sandbox.host.ssh"

local M = {}

local fs = ns.fs

-- Availability -----------------------------------------------------------------

local function check_available()
   if not common.is_root() then
      return nil, "the host driver needs root (Linux namespaces: unshare --mount --pid --net --uts)"
   end
   local r, err = sys.run{ "unshare", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "--mount-proc",
      "true", timeout = 20 }
   if not r or not r.ok then
      local why = r and (r.stderr:match("[^\n]+") or ("exit status " .. tostring(r.status))) or err
      return nil, "Linux namespaces are not permitted here (unshare --mount --pid --net --uts: " .. why .. ")"
   end
   for _, need in ipairs{ { "busybox", "busybox-static" }, { "nsenter", "util-linux" }, { "ip", "iproute2" },
                          { "dpkg-deb", "dpkg" } } do
      local w = sys.run{ "sh", "-c", 'command -v "$1"', "sh", need[1] }
      if not w or not w.ok then
         return nil, string.format("the host driver needs %s: install the package %s", need[1], need[2])
      end
   end
   return true
end

local available_cache

--- Can hosts be made here? true, or nil and one line saying why not.
function M.available()
   available_cache = available_cache or { check_available() }
   return table.unpack(available_cache, 1, 2)
end

--- Runs a command inside the host: `{ "prog", "arg", ..., stdin = , env = , timeout = }`.
M.exec = ns.run

--- Prepares the host template now (tools/test does, before specs start hosts in parallel).
-- @return path | nil, message
function M.prepare()
   local ok, why = M.available()
   if not ok then return nil, why end
   return template.get()
end

M.page, M.poll_start, M.poll_stop, M.poll_read, M.outages = app.page, app.poll_start, app.poll_stop,
   app.poll_read, app.outages
M.cleanup = net.cleanup

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
      common.append(lines, { "[tomcat]", "catalina_base = /var/lib/tomcat10", "catalina_home = /usr/share/tomcat10",
         "user = tomcat", "group = tomcat", "truststore_password = file:/root/.tomcat-truststore-password",
         "restart_command = /etc/init.d/tomcat10 restart", "" })
   end
   return table.concat(lines, "\n")
end

-- Starting and stopping --------------------------------------------------------------

function M.check_options(opts, level)
   level = (level or 1) + 1
   local refuse = common.refuse
   refuse(opts.app ~= nil and opts.app ~= "tomcat", level, "unknown app '%s' (tomcat)", tostring(opts.app))
   refuse(opts.ip ~= nil and (type(opts.ip) ~= "string" or not opts.ip:match("^%d+%.%d+%.%d+%.%d+/%d+$")), level,
      "bad address '%s' (ADDR/PREFIX, e.g. 10.23.0.2/24)", tostring(opts.ip))
   refuse(opts.user ~= nil and opts.user ~= "mysql", level, "a lab host runs its server as mysql, as the package does")
   refuse(opts.app_db ~= nil and (type(opts.app_db) ~= "string" or not opts.app_db:match("^[%w][%w.:-]*$")), level,
      "bad database address '%s' for the application", tostring(opts.app_db))
   refuse(opts.app_db ~= nil and not opts.app, level, "app_db is the application's: give app too")
   refuse(opts.ssh_key ~= nil and type(opts.ssh_key) ~= "string", level, "ssh_key is the path of a public key file")
end

-- Extra server options (`options`, as a local sandbox takes them) in a drop-in file read after
-- Debian's own, as a DBA adds them.
local function write_options(s, options)
   if not options or next(options) == nil then return end
   local lines = common.append({ "# Written by myseal sandbox start (--option): read after 50-server.cnf",
      "[mysqld]" }, common.option_lines(options))
   assert(sys.write_file(fs(s, "/etc/mysql/mariadb.conf.d/60-myseal-lab.cnf"), table.concat(lines, "\n") .. "\n",
      { mode = tonumber("644", 8) }))
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
   tpl, err = template.get()
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
   s.ip, s.address = opts.ip, opts.ip and opts.ip:match("^([^/]+)")
   s.app_user, s.app_password = "biobank", assert(sys.read_file(tpl .. "/app_password"))
   s.tcp_user, s.tcp_password, s.ssh, s.app_db = nil, nil, opts.ssh_key and true, opts.app_db
   ok, err = ns.make_tree(dir, { name = s.name, app = opts.app, address = s.address, ssh = s.ssh })
   local parts = { { opts.etc or (tpl .. "/fs/etc/mysql"), "/etc/mysql" }, { tpl .. "/fs/etc/init.d", "/etc/init.d" },
      { tpl .. "/fs/var/lib/mysql", "/var/lib/mysql" } }
   for _, part in ipairs(ok and parts or {}) do
      ok, err = common.run_ok({ "cp", "-a", part[1] .. "/.", fs(s, part[2]) .. "/" }, "copying " .. part[2])
      if not ok then break end
   end
   if ok then write_options(s, opts.options) end
   if ok and s.ssh then ok, err = ssh.make(s, opts.ssh_key) end
   if ok and opts.app then
      ok, err = app.make(s, s.app_password, opts.app_db)
      if ok then
         assert(sys.write_file(fs(s, "/root/.tomcat-truststore-password"), state.random_hex(12),
            { mode = tonumber("600", 8) }))
      end
   end
   if ok then
      assert(sys.write_file(fs(s, s.profile), profile_text(s), { mode = tonumber("600", 8) }))
      ok, err = ns.boot(s)
   end
   if ok and s.ip then ok, err = net.join(s) end
   if ok then ok, err = ns.mariadb(s, "start") end
   if ok and s.ssh then ok, err = ssh.start(s) end
   if ok and opts.app then ok, err = app.start(s) end
   if not ok then
      ns.kill(s)
      sys.rmtree(dir)
      return nil, err
   end
   return true
end

M.running, M.error_log = ns.is_init, ns.server_log

function M.shutdown(s)
   if ns.is_init(s) then ns.mariadb(s, "stop") end
   return true
end

function M.boot(s)
   return ns.mariadb(s, "start")
end

function M.restart(s)
   return ns.mariadb(s, "restart")
end

function M.remove(s)
   local others = require("myseal.sandbox").list()
   ns.kill(s)
   net.leave(s, others)
   common.remove_dir(s)
end

function M.paths(s)
   local p = { root = s.dir, etc = fs(s, "/etc/mysql"), cnf = s.cnf, datadir = s.datadir, socket = s.socket,
      syslog = fs(s, "/var/log/syslog"), log = s.log, profile = fs(s, s.profile), home = fs(s, "/root") }
   if s.app then
      p.catalina_base, p.tomcat_conf = fs(s, "/var/lib/tomcat10"), fs(s, "/etc/tomcat10")
      p.catalina_out = fs(s, "/var/log/tomcat10/catalina.out")
   end
   if s.ssh then p.ssh_host_key = fs(s, "/etc/ssh/ssh_host_ed25519_key.pub") end
   return p
end

function M.describe(s)
   local p = M.paths(s)
   local lines = {
      string.format("host %s: %s %s, %s", s.name, s.flavor, s.version, s.alive and "running" or "dead"),
      string.format("  namespace pid %s%s", tostring(s.pid), s.address and (", address " .. s.address) or ""),
      string.format("  socket   %s (inside: /run/mysqld/mysqld.sock)", s.socket),
      string.format("  root     %s (the host's private /etc/mysql, /var/lib/mysql, /var/log, /root ...)", p.root),
      string.format("  syslog   %s", p.syslog),
      string.format("  profile  %s (inside: %s)", p.profile, s.profile),
      string.format("  enter    myseal sandbox exec %s -- mariadb", s.name),
   }
   if s.app then
      lines[#lines + 1] = string.format("  app      %s: %s (inside), its database at %s", s.app, app.PAGE,
         s.app_db or "127.0.0.1")
   end
   if s.ssh then lines[#lines + 1] = string.format("  ssh      root@%s, host key %s", s.address or "(loopback only)",
      ssh.host_key(s) or "?") end
   return table.concat(lines, "\n")
end

function M.where(s)
   return "host, ns pid " .. tostring(s.pid) .. (s.address and (", " .. s.address) or "")
end

function M.info(s)
   return { name = s.name, driver = s.driver, flavor = s.flavor, version = s.version, pid = s.pid,
      alive = s.alive, user = s.user, socket = s.socket, cnf = s.cnf, datadir = s.datadir, port = s.port,
      paths = M.paths(s), address = s.address, app = s.app, profile = s.profile,
      app_user = s.app_user, app_password = s.app_password, app_db = s.app_db,
      ssh_host_key = s.ssh and ssh.host_key(s) or nil }
end

return M
