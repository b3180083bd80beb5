--- The local driver of the sandbox: the server binaries found on this machine (`mariadbd`,
-- `mysqld`) with a fresh datadir copied from a template that is initialised once per server
-- version, its own option file (`--defaults-file`), a free loopback port and a short socket
-- path. Run by root, the server runs as the packaged server user (`mysql`) and its files are
-- owned the way the package owns them: datadir and tmpdir `mysql` 0700, the socket directory
-- `mysql:root` 0755, the sandbox directory `root:mysql` 0750 (the server enters it, reads
-- its option file, and cannot write there). The container driver uses the same layout, option
-- file and server account (the functions exported below).
-- @module myseal.sandbox.local
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"

local M = {}

local START_TIMEOUT = 60   -- seconds for a server to say "ready for connections"
local STOP_TIMEOUT = 60    -- seconds for a clean shutdown before SIGKILL

-- Where server binaries live besides $PATH.
local EXTRA_BIN = { "/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/bin" }

local function find_program(names)
   local path = (os.getenv("PATH") or "") .. ":" .. table.concat(EXTRA_BIN, ":")
   for _, name in ipairs(names) do
      for d in path:gmatch("[^:]+") do
         local st = sys.stat(d .. "/" .. name)
         if st and st.type == "file" and st.mode & 73 ~= 0 then return d .. "/" .. name end
      end
   end
   return nil
end

local function program_version(path)
   local r = sys.run{ path, "--version", timeout = 30 }
   if not r or not r.ok then return nil end
   return r.stdout:match("Ver%s+(%S+)"), r.stdout
end

--- Binaries and version of a flavour on this machine, or nil, message.
function M.find_binaries(flavor)
   if flavor == "mariadb" then
      local server = find_program{ "mariadbd" }
      if not server then
         local mysqld = find_program{ "mysqld" }
         local text = select(2, program_version(mysqld or "/nonexistent"))
         if text and text:find("MariaDB", 1, true) then server = mysqld end
      end
      local install = find_program{ "mariadb-install-db", "mysql_install_db" }
      if not server or not install then
         return nil, "no MariaDB server binaries found (mariadbd, mariadb-install-db): "
            .. "install the package mariadb-server"
      end
      local version = program_version(server)
      if not version then return nil, "cannot run " .. server .. " --version" end
      return { flavor = "mariadb", server = server, install = install, version = version }
   elseif flavor == "mysql" then
      local server = find_program{ "mysqld" }
      local version, text
      if server then version, text = program_version(server) end
      if not version or text:find("MariaDB", 1, true) then
         return nil, "no MySQL server binaries found (mysqld from Oracle MySQL): "
            .. "install the package mysql-server (or mysql-community-server)"
      end
      return { flavor = "mysql", server = server, version = version }
   end
   error(string.format("unknown flavour '%s' (mariadb, mysql or auto)", tostring(flavor)), 3)
end

--- The flavours whose binaries are installed here, best first.
-- @return list of { flavor, server, version }
function M.available()
   local out = {}
   for _, f in ipairs{ "mariadb", "mysql" } do
      local b = M.find_binaries(f)
      if b then out[#out + 1] = b end
   end
   return out
end

--- Is `pid` a live server started on `cnf`? (pids are reused: check its argv)
function M.our_process(pid, cnf)
   if not pid or not sys.alive(pid) then return false end
   local cmdline = sys.read_file("/proc/" .. pid .. "/cmdline")
   if not cmdline then return true end  -- no /proc: trust the pid
   return cmdline:find("--defaults-file=" .. cnf, 1, true) ~= nil
end

-- Spawns argv with output appended to log and waits for "ready for
-- connections". Returns pid, or nil, message, log excerpt.
local function launch(argv, log)
   local offset = common.file_size(log)
   local spec = table.move(argv, 1, #argv, 1, { log = log })
   local pid, err = sys.spawn(spec)
   if not pid then return nil, err, "" end
   local ok, why, text = common.wait_ready(log, offset, function() return sys.alive(pid) end, START_TIMEOUT)
   if ok then return pid end
   if sys.alive(pid) then
      sys.kill(pid, "KILL")
      while sys.alive(pid) do sys.sleep(0.05) end
   end
   return nil, why, text
end

-- Stops pid: SIGTERM, then SIGKILL after STOP_TIMEOUT. True when it is gone.
local function terminate(pid)
   sys.kill(pid, "TERM")
   local deadline = sys.clock() + STOP_TIMEOUT
   while sys.alive(pid) do
      if sys.clock() > deadline then
         sys.kill(pid, "KILL")
         deadline = math.huge
      end
      sys.sleep(0.02)
   end
   return true
end

-- Loopback ports something listens on, from /proc/net/tcp{,6}.
local function ports_in_use()
   local used = {}
   for _, f in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
      for port in (sys.read_file(f) or ""):gmatch("\n%s*%d+:%s*%x+:(%x+)") do used[tonumber(port, 16)] = true end
   end
   return used
end

--- A TCP port between 20000 and 40000 that nothing listens on here (nor on port + 10000).
function M.free_port()
   local used = ports_in_use()
   local seed = tonumber(state.random_hex(4), 16)
   for i = 0, 20000 do
      local p = 20000 + (seed + i * 7919) % 20000
      if not used[p] and not used[p + 10000] then return p end
   end
   error("no free TCP port between 20000 and 40000", 0)
end

--- Writes the sandbox's option file `s.cnf` (0644): its paths under `s.dir`, its port, and the
-- extra `options`. `how.bind` is the address it listens on (default 127.0.0.1); with
-- `how.log_error` the error log is `s.log` whatever the flavour.
function M.write_cnf(s, options, how)
   how = how or {}
   local lines = {
      "# myseal sandbox '" .. s.name .. "': this server's own option file (--defaults-file).",
      "# Edit it and run 'myseal sandbox restart " .. s.name .. "'.",
      "[client]",
      "port=" .. s.port,
      "socket=" .. s.socket,
      "",
      "[mysqld]",
      "datadir=" .. s.datadir,
      "socket=" .. s.socket,
      "port=" .. s.port,
      "bind-address=" .. (how.bind or "127.0.0.1"),
      "pid-file=" .. s.dir .. "/run/mysqld.pid",
      "tmpdir=" .. s.dir .. "/tmp",
      "innodb_buffer_pool_size=64M",
      "innodb_log_file_size=16M",
      "skip-name-resolve",
      "character-set-server=utf8mb4",
      "collation-server=utf8mb4_general_ci",
   }
   if s.flavor == "mysql" then lines[#lines + 1] = "mysqlx=OFF" end
   if s.flavor == "mysql" or how.log_error then lines[#lines + 1] = "log-error=" .. s.log end
   for _, l in ipairs(common.option_lines(options)) do lines[#lines + 1] = l end
   return sys.write_file(s.cnf, table.concat(lines, "\n") .. "\n", { mode = tonumber("644", 8) })
end

-- Template datadirs ---------------------------------------------------------

-- SQL run once when a template is made: no anonymous accounts (they shadow
-- user@'%'), root over the socket without a password, a TCP test account.
local function bootstrap_sql(flavor, user, password)
   local accounts = flavor == "mariadb" and "mysql.global_priv" or "mysql.user"
   return table.concat({
      "DELETE FROM " .. accounts .. " WHERE User = '';",
      "FLUSH PRIVILEGES;",
      string.format("CREATE USER '%s'@'%%' IDENTIFIED BY '%s';", user, password),
      string.format("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;", user),
      "",
   }, "\n")
end

-- The argument that makes a server run as root when root starts it (templates are root's).
local function as_root(argv)
   if common.is_root() then argv[#argv + 1] = "--user=root" end
   return argv
end

local function make_template(bin, dir, tcp_user)
   local data = dir .. "/data"
   local ok, err
   if bin.flavor == "mariadb" then
      ok, err = common.run_ok(as_root{ bin.install, "--no-defaults", "--datadir=" .. data, "--skip-test-db",
         "--auth-root-authentication-method=normal", "--innodb-log-file-size=16M" }, bin.install)
   else
      ok, err = common.run_ok(as_root{ bin.server, "--no-defaults", "--initialize-insecure", "--datadir=" .. data,
         "--innodb-log-file-size=16M" }, bin.server .. " --initialize-insecure")
   end
   if not ok then return nil, err end
   local password = state.random_hex(12)
   local init = dir .. "/bootstrap.sql"
   assert(sys.write_file(init, bootstrap_sql(bin.flavor, tcp_user, password), { mode = 384 }))
   -- One start with networking off runs the bootstrap SQL, then a clean stop.
   local sock = dir .. "/s"
   local argv = { bin.server, "--no-defaults", "--datadir=" .. data, "--socket=" .. sock,
      "--skip-networking", "--innodb-log-file-size=16M", "--init-file=" .. init }
   if bin.flavor == "mysql" then argv[#argv + 1] = "--mysqlx=OFF" end
   local log = dir .. "/bootstrap.log"
   local pid, perr, text = launch(as_root(argv), log)
   os.remove(init)
   if not pid then return nil, "template start-up failed: " .. perr .. "\n" .. common.error_lines(text) end
   terminate(pid)
   assert(sys.write_file(dir .. "/tcp_password", password, { mode = 384 }))
   return true
end

-- The template datadir for these binaries, made once (under a lock, renamed
-- into place, so concurrent processes never see half of one).
local function template(bin, tcp_user)
   local root, err = state.cache("templates")
   if not root then return nil, err end
   local final = root .. "/" .. (bin.flavor .. "-" .. bin.version):gsub("[^%w%.%-_]", "_")
   local path, merr = common.cached(final, "data", function(tmp) return make_template(bin, tmp, tcp_user) end)
   if not path then
      return nil, "cannot initialise a " .. bin.flavor .. " " .. bin.version .. " datadir: " .. merr
   end
   return path
end

--- Makes the template datadir for the installed server now (tools/test does, once, before
-- the specs run in parallel).
-- @return path | nil, message
function M.prepare(tcp_user)
   local bin = M.available()[1]
   if not bin then return nil, "no server binaries" end
   return template(bin, tcp_user)
end

-- Starting -------------------------------------------------------------------

--- The server's user: the packaged one (`mysql`, created when missing) when root starts it, else
-- whoever runs this; `user` asks for another one.
-- @return account (common.account's), or nil, message
function M.server_account(user)
   if not common.is_root() then
      local me = sys.user().name
      if user and user ~= me then
         return nil, string.format("a sandbox can run as user '%s' only when root starts it", user)
      end
      return common.account(me)
   end
   if user == nil or user == "mysql" then return common.system_account("mysql", "MySQL Server") end
   return common.account(user)
end

--- The sandbox's directories (`s.dir`, run/, tmp/, the datadir, the error log), owned the way the
-- package owns the server's when root makes them.
-- @return true, or nil, message
function M.make_dirs(s, account)
   local root = common.is_root()
   local function dir(path, mode, uid, gid)
      return common.mkdir(path, tonumber(mode, 8), root and uid, gid)
   end
   local ok, err = dir(s.dir, "750", 0, account.gid)
   if ok then ok, err = dir(s.dir .. "/run", "755", account.uid, 0) end
   if ok then ok, err = dir(s.dir .. "/tmp", "700", account.uid, account.gid) end
   if ok and root then ok, err = common.chown_tree(s.datadir, account) end
   -- the server writes its error log itself when log-error names it (MySQL)
   if ok then ok, err = sys.write_file(s.log, "", { mode = tonumber("640", 8) }) end
   if ok and root then ok, err = sys.chown(s.log, account.uid, account.gid) end
   return ok, err
end

--- A CA, a server and a client certificate in `s.dir/tls` (in `s.tls`), and `options` with the
-- server's TLS options added.
function M.with_tls(s, options, account)
   local tls = require("myseal.sandbox.tls").make(s.dir .. "/tls", s.name, account)
   s.tls = tls
   local out = {}
   for k, v in pairs(options or {}) do out[k] = v end
   out.ssl_ca, out.ssl_cert, out.ssl_key = tls.ca, tls.cert, tls.key
   return out
end

--- Fills in where the files of sandbox `s` are below its directory `dir` (`s.dir`, `datadir`, `socket`,
-- `cnf`, `log`): the same for the container driver.
function M.layout(s, dir)
   s.dir, s.datadir, s.socket = dir, dir .. "/data", dir .. "/run/mysqld.sock"
   s.cnf, s.log = dir .. "/my.cnf", dir .. "/error.log"
end

--- Starts the server of a new sandbox `s` (name, flavor "auto"|..., tcp_user): fills in its
-- paths, port, user, pid.
-- @return true, or nil, message
function M.start(s, flavor, opts)
   local bin, err
   if flavor == "auto" then
      bin = M.available()[1]
      if not bin then return nil, select(2, M.find_binaries("mariadb")) .. " (or mysql-server)" end
   else
      bin, err = M.find_binaries(flavor)
      if not bin then return nil, err end
   end
   s.flavor, s.version = bin.flavor, bin.version:match("^%d+%.%d+%.%d+") or bin.version
   local account
   account, err = M.server_account(opts.user)
   if not account then return nil, err end
   s.user = account.name
   local tpl
   tpl, err = template(bin, s.tcp_user)
   if not tpl then return nil, err end
   local dir
   dir, err = common.short_tmpdir(s.name)
   if not dir then return nil, err end
   M.layout(s, dir)
   s.tcp_password = assert(sys.read_file(tpl .. "/tcp_password"))
   local ok, cerr = common.run_ok({ "cp", "-a", tpl .. "/data", s.datadir }, "copying the template datadir")
   if ok then ok, cerr = M.make_dirs(s, account) end
   if not ok then sys.rmtree(dir); return nil, cerr end
   local options = opts.options
   if opts.tls then options = M.with_tls(s, options, account) end
   s.argv = { bin.server, "--defaults-file=" .. s.cnf }
   if common.is_root() then s.argv[3] = "--user=" .. account.name end
   for _ = 1, 3 do  -- a port taken between our look and the server's bind: another one
      s.port = M.free_port()
      local wok, werr = M.write_cnf(s, options)
      if not wok then sys.rmtree(dir); return nil, werr end
      local pid, perr, text = launch(s.argv, s.log)
      if pid then
         s.pid = pid
         return true
      end
      if not text:find("Address already in use", 1, true) then
         sys.rmtree(dir)
         return nil, string.format("sandbox '%s' did not start (%s):\n%s", s.name, perr, common.error_lines(text))
      end
   end
   sys.rmtree(dir)
   return nil, string.format("sandbox '%s' did not start: no free port", s.name)
end

function M.running(s)
   return M.our_process(s.pid, s.cnf)
end

function M.shutdown(s)
   if M.running(s) then terminate(s.pid) end
   return true
end

function M.boot(s)
   local pid, err, text = launch(s.argv, s.log)
   if not pid then
      return nil, string.format("sandbox '%s' did not come back (%s); its error log ends:\n%s",
         s.name, err, common.error_lines(text))
   end
   s.pid = pid
   return true
end

function M.remove(s)
   M.shutdown(s)
   common.remove_dir(s)
end

function M.error_log(s, n)
   return common.tail_lines(sys.read_file(s.log) or "", n)
end

--- Runs a command on the machine the sandbox runs on (here: this one).
function M.exec(_, argv)
   return sys.run(argv)
end

function M.paths(s)
   return { dir = s.dir, cnf = s.cnf, datadir = s.datadir, socket = s.socket, log = s.log }
end

function M.describe(s)
   local lines = {
      string.format("sandbox %s: %s %s, %s (server user %s)", s.name, s.flavor, s.version,
         s.alive and "running" or "dead", tostring(s.user)),
      string.format("  socket   %s", s.socket),
      string.format("  tcp      %s:%d (user %s, password in %s)", s.host, s.port, s.tcp_user,
         "the state file; --json shows it"),
      string.format("  cnf      %s", s.cnf),
      string.format("  datadir  %s", s.datadir),
      string.format("  connect  mariadb --defaults-file=%s -uroot", s.cnf),
   }
   if s.tls then lines[#lines + 1] = string.format("  tls      CA %s", s.tls.ca) end
   return table.concat(lines, "\n")
end

function M.where(s)
   return "port " .. tostring(s.port)
end

function M.info(s)
   return { name = s.name, flavor = s.flavor, version = s.version, host = s.host, port = s.port,
      socket = s.socket, cnf = s.cnf, datadir = s.datadir, pid = s.pid, alive = s.alive, user = s.user,
      tcp_user = s.tcp_user, tcp_password = s.tcp_password, tls = s.tls, driver = s.driver }
end

return M
