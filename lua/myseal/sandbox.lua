--- Disposable MySQL and MariaDB servers, for tests and for rehearsing runbooks.
--
--    local sandbox = require "myseal.sandbox"
--    local s <close> = assert(sandbox.start{ flavor = "mariadb", options = { ... } })
--    local conn = assert(s:connect())          -- root over the socket
--
-- The local driver runs the server binaries found on the machine (`mariadbd`,
-- `mysqld`) with a fresh datadir copied from a template that is initialised once
-- per server version, its own option file (`--defaults-file`), a free loopback
-- port and a short socket path. The container driver (myseal.sandbox.container)
-- does the same with `docker` where an engine answers.
--
-- A sandbox is described by a JSON file in the state directory
-- (`myseal.state.dir("sandboxes")`), so another process can `attach` to it, and
-- stopped only through the pid it recorded: never by name.
-- @module myseal.sandbox
local sys = require "sys"
local json = require "myseal.json"
local state = require "myseal.state"

local M = {}

local Server = {}
Server.__index = Server

local START_TIMEOUT = 60   -- seconds for a server to say "ready for connections"
local STOP_TIMEOUT = 60    -- seconds for a clean shutdown before SIGKILL
local TCP_USER = "tcp_user"

-- Where server binaries live besides $PATH.
local EXTRA_BIN = { "/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/bin" }

local function find_program(names)
   local dirs = {}
   for d in (os.getenv("PATH") or ""):gmatch("[^:]+") do dirs[#dirs + 1] = d end
   for _, d in ipairs(EXTRA_BIN) do dirs[#dirs + 1] = d end
   for _, name in ipairs(names) do
      for _, d in ipairs(dirs) do
         local p = d .. "/" .. name
         local st = sys.stat(p)
         if st and st.type == "file" and st.mode & 73 ~= 0 then return p end
      end
   end
   return nil
end

local function program_version(path)
   local r = sys.run{ path, "--version", timeout = 30 }
   if not r or not r.ok then return nil end
   return r.stdout:match("Ver%s+(%S+)"), r.stdout
end

-- Binaries and version of a flavour on this machine, or nil, message.
local function find_binaries(flavor)
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
      local b = find_binaries(f)
      if b then out[#out + 1] = b end
   end
   return out
end

local function is_root()
   return sys.user().uid == 0
end

-- The argument vector that starts a server on an option file.
local function server_argv(bin, cnf, extra)
   local argv = { bin, "--defaults-file=" .. cnf }
   if is_root() then argv[#argv + 1] = "--user=root" end
   for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
   return argv
end

local function file_size(path)
   local st = sys.stat(path)
   return st and st.size or 0
end

local function read_from(path, offset)
   local f = io.open(path, "rb")
   if not f then return "" end
   f:seek("set", offset)
   local text = f:read("a") or ""
   f:close()
   return text
end

--- The last `n` lines of a text (of an error log, for messages).
-- @param text the text
-- @param n how many lines
-- @return those lines, joined by newlines
local function tail_lines(text, n)
   local lines = {}
   for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
   return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

-- The server's own complaint in a log excerpt: its [ERROR] lines, else the tail.
local function error_lines(text)
   local errs = {}
   for line in text:gmatch("[^\n]+") do
      if line:find("[ERROR]", 1, true) and not line:find("Aborting", 1, true) then
         errs[#errs + 1] = line
      end
   end
   if #errs == 0 then return tail_lines(text, 5) end
   return table.concat(errs, "\n", math.max(1, #errs - 4))
end

--- Is `pid` a live server started on `cnf`? (pids are reused: check its argv)
local function our_process(pid, cnf)
   if not pid or not sys.alive(pid) then return false end
   local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
   if not f then return true end  -- no /proc: trust the pid
   local cmdline = f:read("a") or ""
   f:close()
   return cmdline:find("--defaults-file=" .. cnf, 1, true) ~= nil
end

-- Spawns argv with output appended to log and waits for "ready for
-- connections". Returns pid, or nil, message, log excerpt.
local function launch(argv, log)
   local offset = file_size(log)
   local spec = table.move(argv, 1, #argv, 1, { log = log })
   local pid, err = sys.spawn(spec)
   if not pid then return nil, err, "" end
   local deadline = sys.clock() + START_TIMEOUT
   local delay = 0.02
   while true do
      local text = read_from(log, offset)
      if text:find("ready for connections", 1, true) then return pid end
      if not sys.alive(pid) then
         return nil, "the server exited during start-up", text
      end
      if sys.clock() > deadline then
         sys.kill(pid, "KILL")
         while sys.alive(pid) do sys.sleep(0.05) end
         return nil, string.format("the server was not ready after %d s", START_TIMEOUT), text
      end
      sys.sleep(delay)
      delay = math.min(delay * 1.5, 0.2)
   end
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
      local h = io.open(f)
      if h then
         for line in h:lines() do
            local port = line:match("^%s*%d+:%s*%x+:(%x+)")
            if port then used[tonumber(port, 16)] = true end
         end
         h:close()
      end
   end
   return used
end

local function free_port()
   local used = ports_in_use()
   local seed = tonumber(state.random_hex(4), 16)
   for i = 0, 20000 do
      local p = 20000 + (seed + i * 7919) % 20000
      if not used[p] and not used[p + 10000] then return p end
   end
   error("no free TCP port between 20000 and 40000", 0)
end

-- A short private directory: sun_path holds 107 bytes.
local function short_tmpdir(name)
   local base = os.getenv("TMPDIR")
   if not base or base == "" or #base > 60 then base = "/tmp" end
   for _ = 1, 10 do
      local path = string.format("%s/msb-%s-%s", base, name, state.random_hex(3))
      if not sys.stat(path) then
         local ok, err = sys.mkdir(path, 448)
         if not ok then return nil, err end
         return path
      end
   end
   return nil, "cannot create a sandbox directory under " .. base
end

local function option_lines(options)
   local keys = {}
   for k in pairs(options or {}) do
      if type(k) ~= "string" or not k:match("^[%w_%-%.]+$") then
         error(string.format("bad option name '%s'", tostring(k)), 3)
      end
      keys[#keys + 1] = k
   end
   table.sort(keys)
   local out = {}
   for _, k in ipairs(keys) do
      local v = options[k]
      if v == true then
         out[#out + 1] = k
      elseif v ~= false then
         v = tostring(v)
         if v:find("[\n\r]") then error(string.format("option '%s' has a line break", k), 3) end
         out[#out + 1] = k .. "=" .. v
      end
   end
   return out
end

local function write_cnf(s, options)
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
      "bind-address=127.0.0.1",
      "pid-file=" .. s.dir .. "/server.pid",
      "tmpdir=" .. s.dir .. "/tmp",
      "innodb_buffer_pool_size=64M",
      "innodb_log_file_size=16M",
      "skip-name-resolve",
      "character-set-server=utf8mb4",
      "collation-server=utf8mb4_general_ci",
   }
   if s.flavor == "mysql" then
      lines[#lines + 1] = "mysqlx=OFF"
      lines[#lines + 1] = "log-error=" .. s.dir .. "/error.log"
   end
   for _, l in ipairs(option_lines(options)) do lines[#lines + 1] = l end
   return sys.write_file(s.cnf, table.concat(lines, "\n") .. "\n", { mode = 420 })
end

-- Template datadirs ---------------------------------------------------------

-- SQL run once when a template is made: no anonymous accounts (they shadow
-- user@'%'), root over the socket without a password, a TCP test account.
local function bootstrap_sql(flavor, password)
   local accounts = flavor == "mariadb" and "mysql.global_priv" or "mysql.user"
   return table.concat({
      "DELETE FROM " .. accounts .. " WHERE User = '';",
      "FLUSH PRIVILEGES;",
      string.format("CREATE USER '%s'@'%%' IDENTIFIED BY '%s';", TCP_USER, password),
      string.format("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;", TCP_USER),
      "",
   }, "\n")
end

local function run_ok(argv, what)
   local r, err = sys.run(argv)
   if not r then return nil, what .. ": " .. err end
   if not r.ok then
      return nil, what .. " failed:\n" .. error_lines(r.stdout .. r.stderr)
   end
   return true
end

local function make_template(bin, dir)
   local data = dir .. "/data"
   local ok, err
   if bin.flavor == "mariadb" then
      local argv = { bin.install, "--no-defaults", "--datadir=" .. data, "--skip-test-db",
         "--auth-root-authentication-method=normal", "--innodb-log-file-size=16M" }
      if is_root() then argv[#argv + 1] = "--user=root" end
      ok, err = run_ok(argv, bin.install)
   else
      local argv = { bin.server, "--no-defaults", "--initialize-insecure", "--datadir=" .. data,
         "--innodb-log-file-size=16M" }
      if is_root() then argv[#argv + 1] = "--user=root" end
      ok, err = run_ok(argv, bin.server .. " --initialize-insecure")
   end
   if not ok then return nil, err end
   local password = state.random_hex(12)
   local init = dir .. "/bootstrap.sql"
   assert(sys.write_file(init, bootstrap_sql(bin.flavor, password), { mode = 384 }))
   -- One start with networking off runs the bootstrap SQL, then a clean stop.
   local sock = dir .. "/s"
   local argv = { bin.server, "--no-defaults", "--datadir=" .. data, "--socket=" .. sock,
      "--skip-networking", "--innodb-log-file-size=16M", "--init-file=" .. init }
   if bin.flavor == "mysql" then argv[#argv + 1] = "--mysqlx=OFF" end
   if is_root() then argv[#argv + 1] = "--user=root" end
   local log = dir .. "/bootstrap.log"
   local pid, perr, text = launch(argv, log)
   os.remove(init)
   if not pid then return nil, "template start-up failed: " .. perr .. "\n" .. error_lines(text) end
   terminate(pid)
   assert(sys.write_file(dir .. "/tcp_password", password, { mode = 384 }))
   return true
end

-- The template datadir for these binaries, made once (under a lock, renamed
-- into place, so concurrent processes never see half of one).
local function template(bin)
   local root, err = state.cache("templates")
   if not root then return nil, err end
   local key = (bin.flavor .. "-" .. bin.version):gsub("[^%w%.%-_]", "_")
   local final = root .. "/" .. key
   if sys.stat(final .. "/data") then return final end
   local lock, lerr
   for _ = 1, 600 do  -- another process may be making it: wait for it
      lock, lerr = sys.lock(final .. ".lock")
      if lock then break end
      sys.sleep(0.2)
   end
   if not lock then return nil, lerr end
   if sys.stat(final .. "/data") then lock:release(); return final end
   local tmp = final .. ".tmp"
   sys.rmtree(tmp)
   assert(sys.mkdir(tmp, 448))
   local ok, merr = make_template(bin, tmp)
   if ok then ok, merr = os.rename(tmp, final) end
   if not ok then
      sys.rmtree(tmp)
      lock:release()
      return nil, "cannot initialise a " .. bin.flavor .. " " .. bin.version .. " datadir: " .. merr
   end
   lock:release()
   return final
end

-- State files -----------------------------------------------------------------

local FIELDS = { "name", "flavor", "version", "driver", "host", "port", "socket", "datadir",
   "cnf", "dir", "pid", "tcp_user", "tcp_password", "argv", "log", "tls", "started" }

local function state_path(name)
   local dir, err = state.dir("sandboxes")
   if not dir then return nil, err end
   return dir .. "/" .. name .. ".json"
end

function Server:save()
   local t = {}
   for _, k in ipairs(FIELDS) do t[k] = self[k] end
   local path = assert(state_path(self.name))
   return sys.write_file(path, json.encode(t) .. "\n", { mode = 384 })
end

local function check_name(name)
   if type(name) ~= "string" or not name:match("^[%w][%w_%-]*$") or #name > 32 then
      error(string.format("bad sandbox name '%s' (letters, digits, '-' and '_', at most 32)",
         tostring(name)), 3)
   end
end

--- The sandbox called `name`, started by this or another process.
-- @param name sandbox name
-- @return server (its `alive` field tells whether the process runs), or nil, message
function M.attach(name)
   check_name(name)
   local path, err = state_path(name)
   if not path then return nil, err end
   local text = sys.read_file(path)
   if not text then return nil, string.format("no sandbox named '%s'", name) end
   local t, jerr = json.decode(text)
   if not t then return nil, path .. ": " .. jerr end
   local s = setmetatable(t, Server)
   s.alive = s:running()
   return s
end

--- Every sandbox in the state directory, by name.
-- @return list of servers (each with `alive`)
function M.list()
   local dir = assert(state.dir("sandboxes"))
   local out = {}
   for _, f in ipairs(sys.dir(dir) or {}) do
      local name = f:match("^(.+)%.json$")
      if name then
         local s = M.attach(name)
         if s then out[#out + 1] = s end
      end
   end
   return out
end

local function next_name()
   local taken = {}
   for _, s in ipairs(M.list()) do taken[s.name] = true end
   local i = 1
   while taken["sb" .. i] do i = i + 1 end
   return "sb" .. i
end

-- Starting -------------------------------------------------------------------

local function start_local(s, bin, options)
   local tpl, err = template(bin)
   if not tpl then return nil, err end
   local dir
   dir, err = short_tmpdir(s.name)
   if not dir then return nil, err end
   s.dir, s.datadir, s.socket = dir, dir .. "/data", dir .. "/mysqld.sock"
   s.cnf, s.log = dir .. "/my.cnf", dir .. "/error.log"
   s.tcp_password = assert(sys.read_file(tpl .. "/tcp_password"))
   local ok, cerr = run_ok({ "cp", "-a", tpl .. "/data", s.datadir }, "copying the template datadir")
   if not ok then sys.rmtree(dir); return nil, cerr end
   assert(sys.mkdir(dir .. "/tmp", 448))  -- its own tmpdir: servers must not share temporary files
   if s.tls_requested then
      local tls = require("myseal.sandbox.tls").make(dir .. "/tls", s.name)
      s.tls = tls
      local given = options or {}
      options = {}
      for k, v in pairs(given) do options[k] = v end
      options.ssl_ca, options.ssl_cert, options.ssl_key = tls.ca, tls.cert, tls.key
   end
   s.argv = server_argv(bin.server, s.cnf)
   for _ = 1, 3 do  -- a port taken between our look and the server's bind: another one
      s.port = free_port()
      local wok, werr = write_cnf(s, options)
      if not wok then sys.rmtree(dir); return nil, werr end
      local pid, perr, text = launch(s.argv, s.log)
      if pid then
         s.pid = pid
         return true
      end
      if not text:find("Address already in use", 1, true) then
         sys.rmtree(dir)
         return nil, string.format("sandbox '%s' did not start (%s):\n%s", s.name, perr, error_lines(text))
      end
   end
   sys.rmtree(dir)
   return nil, string.format("sandbox '%s' did not start: no free port", s.name)
end

--- Starts a disposable server.
-- @param opts table: `flavor` ("mariadb", "mysql" or "auto", the default), `name`
--   (default sbN), `options` (extra [mysqld] options: `{ key = value | true }`),
--   `tls` (true: a CA, a server certificate for localhost/127.0.0.1/::1 and a
--   client certificate, in `server.tls`), `driver` ("local" or "container").
-- @return server, or nil, message
function M.start(opts)
   opts = opts or {}
   if type(opts) ~= "table" then error("sandbox.start: options must be a table", 2) end
   local flavor = opts.flavor or "auto"
   local driver = opts.driver or "local"
   if flavor ~= "auto" and flavor ~= "mariadb" and flavor ~= "mysql" then
      error(string.format("unknown flavour '%s' (mariadb, mysql or auto)", tostring(flavor)), 2)
   end
   if driver ~= "local" and driver ~= "container" then
      error(string.format("unknown driver '%s' (local or container)", tostring(driver)), 2)
   end
   if opts.options ~= nil and type(opts.options) ~= "table" then
      error("sandbox.start: options.options must be a table", 2)
   end
   local name = opts.name or next_name()
   check_name(name)
   option_lines(opts.options)  -- raises on a malformed option now, not after a start
   local existing = M.attach(name)
   if existing then
      if existing.alive then return nil, string.format("a sandbox named '%s' is running", name) end
      existing:stop()
   end
   local s = setmetatable({ name = name, host = "127.0.0.1", tcp_user = TCP_USER, driver = driver,
      tls_requested = opts.tls and true or nil, started = os.time() }, Server)
   local ok, err
   if driver == "container" then
      ok, err = require("myseal.sandbox.container").start(s, flavor, opts)
   else
      local bin
      if flavor == "auto" then
         bin = M.available()[1]
         if not bin then
            _, err = find_binaries("mariadb")
            return nil, err .. " (or mysql-server)"
         end
      else
         bin, err = find_binaries(flavor)
         if not bin then return nil, err end
      end
      s.flavor, s.version = bin.flavor, bin.version:match("^%d+%.%d+%.%d+") or bin.version
      ok, err = start_local(s, bin, opts.options)
   end
   if not ok then return nil, err end
   s.tls_requested = nil
   s.alive = true
   local saved, serr = s:save()
   if not saved then s:stop(); return nil, serr end
   return s
end

-- A started server -----------------------------------------------------------------

-- Another process (a runbook's restart) may have started the server again since this
-- object was made: its state file has the pid now.
function Server:refresh()
   local path = state_path(self.name)
   local text = path and sys.read_file(path)
   local t = text and json.decode(text)
   if t and t.dir == self.dir and t.pid then self.pid = t.pid end
   return self
end

--- Is the server process running?
function Server:running()
   if self.driver == "container" then return require("myseal.sandbox.container").running(self) end
   self:refresh()
   return our_process(self.pid, self.cnf)
end

--- Stops the server process and keeps its files (`restart` starts it again).
-- @return true
function Server:shutdown()
   if self.driver == "container" then return require("myseal.sandbox.container").shutdown(self) end
   self:refresh()
   if our_process(self.pid, self.cnf) then terminate(self.pid) end
   self.alive = false
   return true
end

--- Starts the server of a shut-down sandbox with its current option file.
-- @return true, or nil, message ending with the tail of the error log
function Server:boot()
   if self.driver == "container" then return require("myseal.sandbox.container").boot(self) end
   local pid, err, text = launch(self.argv, self.log)
   if not pid then
      self.alive = false
      return nil, string.format("sandbox '%s' did not come back (%s); its error log ends:\n%s",
         self.name, err, error_lines(text))
   end
   self.pid, self.alive = pid, true
   self:save()
   return true
end

--- Stops the server and starts it again with its current option file.
-- @return true, or nil, message ending with the tail of the error log
function Server:restart()
   self:shutdown()
   return self:boot()
end

--- Stops the server and removes everything it had (datadir, option file, state, and the
-- journals of runbooks run against it).
-- A sandbox whose process already died is just cleaned up.
-- @return true
function Server:stop()
   if self.removed then return true end
   self:shutdown()
   if self.driver == "container" then
      require("myseal.sandbox.container").remove(self)
   end
   if self.dir and self.dir:match("/msb%-") then sys.rmtree(self.dir) end
   -- the engine's journals and locks for this sandbox go with it
   local root = state.dir()
   if root and self.name then sys.rmtree(root .. "/targets/sandbox-" .. self.name) end
   local path = state_path(self.name)
   if path then
      -- only our own state file: another sandbox may have taken the name since
      local text = sys.read_file(path)
      local t = text and json.decode(text)
      if t and t.dir == self.dir then os.remove(path) end
   end
   self.removed, self.alive = true, false
   return true
end

Server.__close = Server.stop

--- The last `n` lines (default 20) of the server's error log.
function Server:error_log(n)
   if self.driver == "container" then return require("myseal.sandbox.container").logs(self, n or 20) end
   return tail_lines(sys.read_file(self.log) or "", n or 20)
end

--- A `mysql` connection: root over the socket unless `opts` says otherwise
-- (its fields are merged over `{ socket = s.socket, user = "root" }`; giving a
-- `host` drops the socket, e.g. `s:connect{ host = s.host, port = s.port,
-- user = s.tcp_user, password = s.tcp_password }`).
-- @return connection, or nil, message, errno, sqlstate
function Server:connect(opts)
   local mysql = require "mysql"
   local t = { socket = self.socket, user = "root" }
   if opts and (opts.host or opts.port) then t.socket = nil end
   for k, v in pairs(opts or {}) do t[k] = v end
   return mysql.connect(t)
end

--- Connection options for the TCP test account (add `tls = {...}` as needed).
function Server:tcp_options()
   return { host = self.host, port = self.port, user = self.tcp_user, password = self.tcp_password }
end

function Server:__tostring()
   return string.format("sandbox %s (%s %s, port %s, socket %s%s)", self.name, tostring(self.flavor),
      tostring(self.version), tostring(self.port), tostring(self.socket),
      self.removed and ", stopped" or "")
end

M.Server = Server
M.tail_lines = tail_lines

return M
