--- Disposable MySQL and MariaDB servers, for tests and for rehearsing runbooks.
--
--    local sandbox = require "myseal.sandbox"
--    local s <close> = assert(sandbox.start{ flavor = "mariadb", options = { ... } })
--    local conn = assert(s:connect())          -- root over the socket
--
-- One interface over three drivers, each a module beside this one:
--   local      (myseal.sandbox.local) the server binaries on this machine, run as the packaged
--              server user (`mysql`) when root starts them, with their own option file, port
--              and socket;
--   container  (myseal.sandbox.container) the same in a container of docker or podman, from
--              any image with the server binaries, the sandbox's directory mounted at the
--              same path inside;
--   host       (myseal.sandbox.host) a Debian-shaped host made of Linux namespaces: the
--              distribution's own /etc/mysql, service script and (optionally) Tomcat, on
--              private copies.
-- Every sandbox answers the same methods: connect, restart, shutdown, boot, error_log, exec,
-- paths, stop.
--
-- A sandbox is described by a JSON file in the state directory
-- (`myseal.state.dir("sandboxes")`), so another process can `attach` to it, and
-- stopped only through the pid it recorded: never by name.
-- @module myseal.sandbox
local sys = require "sys"
local json = require "myseal.json"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"

local M = {}

local Server = {}
Server.__index = Server

local TCP_USER = "tcp_user"
local LOCK_WAIT = 120   -- seconds stop waits for a start of the same name to finish

local DRIVERS = { ["local"] = "myseal.sandbox.local", container = "myseal.sandbox.container",
   host = "myseal.sandbox.host" }

local function driver_module(name)
   return require(DRIVERS[name or "local"])
end

local function driver(s)
   return driver_module(s.driver)
end

--- The flavours whose binaries are installed here, best first.
-- @return list of { flavor, server, version }
function M.available()
   return driver_module("local").available()
end

-- State files -----------------------------------------------------------------

local FIELDS = { "name", "flavor", "version", "driver", "user", "host", "port", "socket", "datadir",
   "cnf", "dir", "pid", "tcp_user", "tcp_password", "argv", "log", "tls", "started",
   -- the container driver's
   "engine", "image", "container",
   -- the host driver's
   "app", "address", "ns", "profile", "app_user", "app_password", "lab", "app_db", "ssh" }

local function state_path(name, ext)
   local dir, err = state.dir("sandboxes")
   if not dir then return nil, err end
   return dir .. "/" .. name .. (ext or ".json")
end

-- What the state file of sandbox `name` says now (nil when it says nothing), and its path.
local function saved(name)
   local path = state_path(name)
   local text = path and sys.read_file(path)
   return text and json.decode(text), path
end

function Server:save()
   local t = {}
   for _, k in ipairs(FIELDS) do t[k] = self[k] end
   local path = assert(state_path(self.name))
   return sys.write_file(path, json.encode(t) .. "\n", { mode = 384 })
end

local function check_name(name)
   common.refuse(type(name) ~= "string" or not name:match("^[%w][%w_%-]*$") or #name > 32, 3,
      "bad sandbox name '%s' (letters, digits, '-' and '_', at most 32)", tostring(name))
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

-- The lock on a sandbox name, held while it starts or stops: a second start of the same name
-- is refused instead of leaking a server that no state file records. `wait` seconds to wait.
local function name_lock(name, wait)
   local path, err = state_path(name, ".lock")
   if not path then return nil, err end
   local deadline = sys.clock() + (wait or 0)
   while true do
      local lock, lerr = sys.lock(path)
      if lock then return lock end
      if sys.clock() >= deadline then
         local holder = lerr:match("held by process (%d+)")
         return nil, string.format("sandbox '%s' is being started or stopped by another process%s",
            name, holder and (" (" .. holder .. ")") or "")
      end
      sys.sleep(0.1)
   end
end

-- Starting -------------------------------------------------------------------

--- Starts a disposable server.
-- @param opts table: `flavor` ("mariadb", "mysql" or "auto", the default), `name`
--   (default sbN), `options` (extra [mysqld] options: `{ key = value | true }`),
--   `tls` (true: a CA, a server certificate for localhost/127.0.0.1/::1 and a
--   client certificate, in `server.tls`), `driver` ("local", "container" or "host"),
--   `user` (local driver: the server's operating-system user; default `mysql` when root
--   starts it, "root" keeps it root's), the container driver's `engine` ("docker" or "podman";
--   default the first that answers) and `image` (default the official mariadb or mysql image),
--   and the host driver's `app` ("tomcat"), `app_db` (the address the application's pool
--   connects to), `ip` ("ADDR/PREFIX"), `etc` (a site's /etc/mysql tree to copy), `ssh_key`
--   (a public key file: sshd lets root in with it).
-- @return server, or nil, message
function M.start(opts)
   opts = opts or {}
   local refuse = common.refuse   -- the caller's mistakes: raised at level 2, the caller's line
   refuse(type(opts) ~= "table", 2, "sandbox.start: options must be a table")
   local flavor = opts.flavor or "auto"
   local driver_name = opts.driver or "local"
   refuse(flavor ~= "auto" and flavor ~= "mariadb" and flavor ~= "mysql", 2,
      "unknown flavour '%s' (mariadb, mysql or auto)", tostring(flavor))
   refuse(not DRIVERS[driver_name], 2, "unknown driver '%s' (local, container or host)", tostring(driver_name))
   refuse(opts.options ~= nil and type(opts.options) ~= "table", 2, "sandbox.start: options.options must be a table")
   refuse(opts.user ~= nil and (type(opts.user) ~= "string" or not opts.user:match("^[%w_][%w_%-]*$")), 2,
      "bad user name '%s'", tostring(opts.user))
   refuse(driver_name ~= "host" and (opts.app or opts.ip or opts.etc or opts.app_db or opts.ssh_key), 2,
      "sandbox.start: app, app_db, ip, etc and ssh_key are the host driver's")
   refuse(driver_name ~= "container" and (opts.engine or opts.image), 2,
      "sandbox.start: engine and image are the container driver's")
   local name = opts.name or next_name()
   check_name(name)
   common.option_lines(opts.options, 2)  -- raises on a malformed option now, not after a start
   local impl = driver_module(driver_name)
   if impl.check_options then impl.check_options(opts, 2) end
   local lock, lerr = name_lock(name)
   if not lock then return nil, lerr end
   local existing = M.attach(name)
   if existing then
      if existing.alive then
         lock:release()
         return nil, string.format("a sandbox named '%s' is running", name)
      end
      existing:_remove()
   end
   local s = setmetatable({ name = name, host = "127.0.0.1", tcp_user = TCP_USER, driver = driver_name,
      started = os.time() }, Server)
   local called, ok, err = pcall(impl.start, s, flavor, opts)
   if not called and s.dir then pcall(impl.remove, s) end   -- a bug: what the driver made so far goes
   if called and ok then
      s.alive = true
      ok, err = s:save()
      if not ok then s:_remove() end
   end
   lock:release()
   if not called then error(ok, 0) end   -- the name is freed, the error raised again
   if not ok then return nil, err end
   return s
end

-- A started server -----------------------------------------------------------------

-- Another process (a runbook's restart) may have started the server again since this
-- object was made: its state file has the pid now.
function Server:refresh()
   local t = saved(self.name)
   if t and t.dir == self.dir and t.pid then self.pid = t.pid end
   return self
end

--- Is the server process running?
function Server:running()
   self:refresh()
   return driver(self).running(self)
end

--- Stops the server process and keeps its files (`restart` starts it again).
-- @return true
function Server:shutdown()
   self:refresh()
   driver(self).shutdown(self)
   self.alive = false
   return true
end

-- After the server was started: `alive` and the state file say how it went.
local function started(self, ok, err)
   self.alive = ok and true or false
   if ok then self:save() end
   return ok, err
end

--- Starts the server of a shut-down sandbox with its current option file.
-- @return true, or nil, message ending with the tail of the error log
function Server:boot()
   return started(self, driver(self).boot(self))
end

--- Stops the server and starts it again with its current option file (a host: with its
-- service script, as the site would).
-- @return true, or nil, message ending with the tail of the error log
function Server:restart()
   local impl = driver(self)
   if not impl.restart then
      self:shutdown()
      return self:boot()
   end
   self:refresh()
   return started(self, impl.restart(self))
end

-- Everything the sandbox had, whatever state it is in.
function Server:_remove()
   if self.removed then return true end
   self:refresh()
   driver(self).remove(self)   -- ends every process of the sandbox, removes its files
   -- the engine's journals and locks for this sandbox go with it
   local root = state.dir()
   if root and self.name then sys.rmtree(root .. "/targets/sandbox-" .. self.name) end
   -- only our own state file: another sandbox may have taken the name since
   local t, path = saved(self.name)
   if t and t.dir == self.dir then os.remove(path) end
   self.removed, self.alive = true, false
   return true
end

--- Stops the server and removes everything it had (datadir, option file, state, and the
-- journals of runbooks run against it); a host: every process in it and its files.
-- A sandbox whose process already died is just cleaned up.
-- @return true
function Server:stop()
   if self.removed then return true end
   local lock = name_lock(self.name, LOCK_WAIT)
   self:_remove()
   if lock then lock:release() end
   return true
end

Server.__close = Server.stop

--- The last `n` lines (default 20) of the server's error log (a host: the server's lines of
-- its syslog).
function Server:error_log(n)
   return driver(self).error_log(self, n or 20)
end

--- Runs a command where the sandbox's server runs (a host: inside it).
-- @param argv argument vector, with sys.run's `stdin`, `env` and `timeout` fields
-- @return sys.run's result `{ status, ok, stdout, stderr }`, or nil, message
function Server:exec(argv)
   return driver(self).exec(self, argv)
end

--- Where the sandbox's files are, as seen from this machine: `{ dir, cnf, datadir, socket, log, ... }`.
function Server:paths()
   return driver(self).paths(self)
end

--- What `myseal sandbox start` shows of the sandbox: a few lines of text.
function Server:describe()
   return driver(self).describe(self)
end

--- Where it listens, in a few words (`myseal sandbox status`), e.g. "port 23306".
function Server:where()
   return driver(self).where(self)
end

--- The sandbox as plain data, for --json (secrets of test accounts included: the state file
-- holds them too).
function Server:info()
   return driver(self).info(self)
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

--- After `stop --all`: what the drivers keep besides sandboxes (the lab's network) goes too.
function M.cleanup()
   driver_module("host").cleanup()
end

M.Server = Server
M.tail_lines = common.tail_lines

--- Prepares what sandboxes start from (the local driver's template datadir, and the host
-- driver's template when namespaces are permitted), so that specs starting sandboxes in
-- parallel do not wait on one another.
-- @return list of lines saying what was prepared
function M.prepare()
   local out = {}
   local path, err = driver_module("local").prepare(TCP_USER)
   out[#out + 1] = "local template: " .. (path or err)
   path, err = driver_module("host").prepare()
   out[#out + 1] = "host template: " .. (path or ("not made: " .. err))
   return out
end

return M
