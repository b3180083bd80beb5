--- The container driver of the sandbox: the same server as the local driver's, run in a container
-- of docker or podman from any image that has the server binaries (default: the official
-- `mariadb` and `mysql` images).
--
-- The sandbox's directory is mounted at the same absolute path inside the container, so every
-- path myseal writes (the option file, the datadir, the socket, the key and TLS directories
-- of runbooks) is the path the server reads. The server runs as the uid and gid of this
-- machine's server user (`mysql` when root starts it), not as the image's own user: files
-- that runbooks give to `mysql` are the server's inside too. The datadir is initialised in the
-- container at its first start (mariadb-install-db, or mysqld --initialize-insecure) as that
-- user; the image's entrypoint is never used. The port is published on 127.0.0.1 only, the
-- same number inside and out. Credentials never go into an argument vector: the TCP account is
-- made over the socket once the server answers.
-- @module myseal.sandbox.container
local sys = require "sys"
local common = require "myseal.sandbox.common"
local loc = require "myseal.sandbox.local"

local M = {}

M.ENGINES = { "docker", "podman" }
M.default_images = { mariadb = "docker.io/library/mariadb:11.4", mysql = "docker.io/library/mysql:8.4" }

local START_TIMEOUT = 120   -- seconds for a first start: the datadir is initialised first
local STOP_TIMEOUT = 60     -- seconds for a clean shutdown before the engine kills the server
local PROBE_TIMEOUT = 900   -- an image the engine has to pull first may be large

-- The engine -----------------------------------------------------------------

-- The first line of what a failed program said.
local function first_line(r)
   local line = (r.stderr ~= "" and r.stderr or r.stdout):match("[^\n]*%S[^\n]*")
   return line and (line:gsub("^%s+", "")) or ("exit status " .. tostring(r.status))
end

-- Does `engine info` answer? true, or nil, why.
local function answers(engine)
   local r, err = sys.run{ engine, "info", timeout = 30 }
   if not r then return nil, err end
   if not r.ok then return nil, first_line(r) end
   return true
end

--- The container engine to use: `engine` ("docker" or "podman") when given, else the first of
-- docker and podman whose `info` answers.
-- @return engine name, or nil, message
function M.engine(engine)
   local whys = {}
   for _, e in ipairs(engine and { engine } or M.ENGINES) do
      local ok, why = answers(e)
      if ok then return e end
      whys[#whys + 1] = e .. " info: " .. why
   end
   if engine then return nil, string.format("the container engine %s does not answer (%s)", engine, whys[1]) end
   return nil, "no container engine answers (" .. table.concat(whys, "; ") .. ")"
end

-- Command lines ---------------------------------------------------------------

-- Where the server binaries are looked for in an image, besides its PATH.
local PROBE = [[PATH="$PATH:/usr/sbin:/usr/local/sbin:/usr/local/mysql/bin"
for n in mariadbd mysqld; do
   p=$(command -v "$n") && { echo "server=$p"; echo "version=$("$p" --version)"; break; }
done
for n in mariadb-install-db mysql_install_db; do p=$(command -v "$n") && { echo "install=$p"; break; }; done]]

-- The container's command: initialise the datadir at the first start, then become the server.
local ENTRY = [[cnf=$1 data=$2 server=$3 as=$4; shift 4
if [ ! -d "$data/mysql" ]; then "$@" || exit 1; fi
exec "$server" --defaults-file="$cnf" $as]]

-- The server refuses to run as root unless told to (a root sandbox: `user = "root"`).
local function as_root(s)
   return s.uid == 0 and "--user=root" or ""
end

--- The argument vector that asks image `image` which server it has.
function M.probe_argv(engine, image)
   return { engine, "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", PROBE }
end

--- What the image's probe printed: `{ flavor, server, install, version }`, or nil, message.
function M.parse_probe(image, text)
   local server, install = text:match("server=([^\n]+)"), text:match("install=([^\n]+)")
   local version_text = text:match("version=([^\n]*)") or ""
   if not server then
      return nil, string.format("image %s has no MariaDB or MySQL server (mariadbd, mysqld)", image)
   end
   local flavor = version_text:find("MariaDB", 1, true) and "mariadb" or "mysql"
   local version = version_text:match("Ver%s+(%d+%.%d+%.%d+)")
   if not version then return nil, string.format("image %s: cannot read the version of %s", image, server) end
   if flavor == "mariadb" and not install then
      return nil, string.format("image %s has %s but no mariadb-install-db", image, server)
   end
   return { flavor = flavor, server = server, install = install, version = version }
end

--- The command that initialises the datadir inside the container, as the server's user, with
-- the sandbox's option file (so options that only count at initialisation, such as
-- innodb_page_size or lower_case_table_names, are the rehearsed server's).
function M.init_argv(s, bin)
   local argv = { bin.server, "--defaults-file=" .. s.cnf, "--initialize-insecure" }
   if bin.flavor == "mariadb" then
      argv = { bin.install, "--defaults-file=" .. s.cnf, "--skip-test-db", "--auth-root-authentication-method=normal" }
   end
   if s.uid == 0 then argv[#argv + 1] = as_root(s) end
   return argv
end

--- The `run` argument vector of sandbox `s` (its `engine`, `container`, `dir`, `cnf`, `datadir`,
-- `port`, `uid`, `gid`, `image`) for the image's binaries `bin`. No secret is in it.
function M.run_argv(s, bin)
   local argv = { s.engine, "run", "--detach", "--name", s.container, "--label", "myseal.sandbox=" .. s.dir,
      "--user", s.uid .. ":" .. s.gid, "--volume", s.dir .. ":" .. s.dir,
      "--publish", "127.0.0.1:" .. s.port .. ":" .. s.port, "--stop-timeout", tostring(STOP_TIMEOUT),
      "--entrypoint", "/bin/sh", s.image, "-c", ENTRY, "myseal-sandbox", s.cnf, s.datadir, bin.server,
      as_root(s) }
   return common.append(argv, M.init_argv(s, bin))
end

--- The other command lines of sandbox `s`: stop, start, restart, remove, inspect, logs.
function M.argv(verb, s, n)
   local e, name = s.engine, s.container
   if verb == "stop" then return { e, "stop", "--time", tostring(STOP_TIMEOUT), name } end
   if verb == "start" then return { e, "start", name } end
   if verb == "restart" then return { e, "restart", "--time", tostring(STOP_TIMEOUT), name } end
   if verb == "remove" then return { e, "rm", "--force", "--volumes", name } end
   if verb == "inspect" then return { e, "inspect", "--format", "{{.State.Running}} {{.State.Pid}}", name } end
   if verb == "logs" then return { e, "logs", "--tail", tostring(n or 20), name } end
   error("unknown container verb " .. tostring(verb), 2)
end

--- `exec` in the container, as root there: the program's environment goes by name (`--env NAME`,
-- the value taken from the engine's own environment), never as a value in the argument vector.
function M.exec_argv(s, argv)
   local cmd = { s.engine, "exec", "--user", "0" }
   if argv.stdin then cmd[#cmd + 1] = "--interactive" end
   local names = {}
   for k in pairs(argv.env or {}) do names[#names + 1] = k end
   table.sort(names)
   for _, k in ipairs(names) do common.append(cmd, { "--env", k }) end
   cmd[#cmd + 1] = s.container
   return common.append(cmd, argv)
end

-- Running ---------------------------------------------------------------------

local function engine_run(argv, what, timeout)
   argv.timeout = timeout or 300
   local r, err = sys.run(argv)
   if not r then return nil, what .. ": " .. err end
   if not r.ok then
      return nil, what .. " failed: " .. common.tail_lines(r.stderr ~= "" and r.stderr or r.stdout, 5)
   end
   return r
end

local function probe(engine, image)
   local r, err = engine_run(M.probe_argv(engine, image), engine .. " run " .. image, PROBE_TIMEOUT)
   if not r then return nil, err end
   return M.parse_probe(image, r.stdout)
end

-- The container's state: running (boolean) and the server's pid as this machine sees it.
local function inspect(s)
   local r = sys.run(M.argv("inspect", s))
   if not r or not r.ok then return false end
   local running, pid = r.stdout:match("^(%S+)%s+(%d+)")
   return running == "true", tonumber(pid)
end

-- What the container printed (the datadir's initialisation) and the server's [ERROR] lines.
local function why_not(s, text)
   local r = sys.run(M.argv("logs", s, 20))
   local out = r and (r.stdout .. r.stderr) or ""
   return common.error_lines((text or "") .. "\n" .. out)
end

-- Waits for the server in the container after `offset` of its error log; fills s.pid.
local function wait_server(s, offset, timeout)
   local checked, up = 0, true
   local function alive()   -- asking the engine takes a while: every half second
      if sys.clock() - checked > 0.5 then
         up = inspect(s)
         checked = sys.clock()
      end
      return up
   end
   local ok, why, text = common.wait_ready(s.log, offset, alive, timeout)
   if not ok then return nil, why, text end
   s.pid = select(2, inspect(s))
   return true
end

-- The accounts of a fresh datadir: no anonymous ones (they shadow user@'%'), the TCP test
-- account with a random password (a bound value, over the socket).
local function bootstrap(s)
   local c, err = require("mysql").connect{ socket = s.socket, user = "root" }
   if not c then return nil, "connecting over " .. s.socket .. ": " .. err end
   local function exec(sql, ...)
      local ok, eerr = c:exec(sql, ...)
      if not ok then error(eerr, 0) end
   end
   local ok, perr = pcall(function()
      for _, row in ipairs(assert(c:query("SELECT User, Host FROM mysql.user WHERE User = ''"))) do
         exec("DROP USER ?@?", row[1], row[2])
      end
      exec("CREATE USER ?@'%' IDENTIFIED BY ?", s.tcp_user, s.tcp_password)
      exec("GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION", s.tcp_user)
   end)
   c:close()
   if not ok then return nil, "making the sandbox's accounts: " .. tostring(perr) end
   return true
end

function M.check_options(opts, level)
   level = (level or 1) + 1
   common.refuse(opts.engine ~= nil and opts.engine ~= "docker" and opts.engine ~= "podman", level,
      "unknown container engine '%s' (docker or podman)", tostring(opts.engine))
   common.refuse(opts.image ~= nil and (type(opts.image) ~= "string" or not opts.image:match("^[%w][%w%.%-_/:@]*$")),
      level, "bad image name '%s'", tostring(opts.image))
end

--- Starts a new sandbox `s` in a container: fills in its engine, image, paths, port, user, pid.
-- @return true, or nil, message
function M.start(s, flavor, opts)
   local engine, err = M.engine(opts.engine)
   if not engine then return nil, err end
   local image = opts.image or M.default_images[flavor == "mysql" and "mysql" or "mariadb"]
   local bin
   bin, err = probe(engine, image)
   if not bin then return nil, err end
   if flavor ~= "auto" and bin.flavor ~= flavor then
      return nil, string.format("image %s has %s %s, not %s", image, bin.flavor == "mariadb" and "MariaDB" or "MySQL",
         bin.version, flavor == "mariadb" and "MariaDB" or "MySQL")
   end
   local account
   account, err = loc.server_account(opts.user)
   if not account then return nil, err end
   local dir
   dir, err = common.short_tmpdir(s.name)
   if not dir then return nil, err end
   s.engine, s.image, s.flavor, s.version = engine, image, bin.flavor, bin.version
   s.user, s.uid, s.gid = account.name, account.uid, account.gid
   loc.layout(s, dir)
   s.container = "myseal-" .. dir:match("([^/]+)$")
   s.tcp_password = require("myseal.state").random_hex(12)
   local function fail(msg)
      sys.run(M.argv("remove", s))
      sys.rmtree(dir)
      return nil, msg
   end
   local ok, derr = sys.mkdir(s.datadir, tonumber("700", 8))
   if ok then ok, derr = loc.make_dirs(s, account) end
   if not ok then return fail(derr) end
   local options = opts.options
   if opts.tls then options = loc.with_tls(s, options, account) end
   s.port = loc.free_port()
   -- inside its own network the server listens on every address; the engine publishes the
   -- port on this machine's loopback only
   ok, derr = loc.write_cnf(s, options, { bind = "0.0.0.0", log_error = true })
   if not ok then return fail(derr) end
   local started, rerr = engine_run(M.run_argv(s, bin), engine .. " run")
   if not started then return fail(string.format("sandbox '%s' did not start: %s", s.name, rerr)) end
   local why, text
   ok, why, text = wait_server(s, 0, START_TIMEOUT)
   if not ok then
      return fail(string.format("sandbox '%s' did not start (%s):\n%s", s.name, why, why_not(s, text)))
   end
   ok, derr = bootstrap(s)
   if not ok then return fail(string.format("sandbox '%s': %s", s.name, derr)) end
   return true
end

--- Is the server running? Its pid is this machine's view of the container's server: while it
-- is alive with the sandbox's option file, no engine needs asking.
function M.running(s)
   if loc.our_process(s.pid, s.cnf) then return true end
   local running, pid = inspect(s)
   if running then s.pid = pid end
   return running
end

function M.shutdown(s)
   sys.run(M.argv("stop", s))
   return true
end

-- Starts (or restarts) the container and waits for its server.
local function bring_up(s, verb)
   local offset = common.file_size(s.log)
   local ok, err, text = engine_run(M.argv(verb, s), s.engine .. " " .. verb)
   if ok then ok, err, text = wait_server(s, offset, START_TIMEOUT) end
   if not ok then
      return nil, string.format("sandbox '%s' did not come back (%s); its error log ends:\n%s", s.name, err,
         common.error_lines(text or ""))
   end
   return true
end

function M.boot(s)
   return bring_up(s, "start")
end

--- A restart is the container's: the engine stops the server (SIGTERM, a clean shutdown) and
-- starts the container again, which reads the option file as it is now.
function M.restart(s)
   return bring_up(s, "restart")
end

function M.remove(s)
   if s.container then sys.run(M.argv("remove", s)) end
   common.remove_dir(s)
end

M.error_log, M.paths = loc.error_log, loc.paths

--- Runs a command inside the container (as root there).
function M.exec(s, argv)
   local cmd = M.exec_argv(s, argv)
   cmd.stdin, cmd.env, cmd.timeout = argv.stdin, argv.env, argv.timeout
   return sys.run(cmd)
end

function M.describe(s)
   return loc.describe(s) .. string.format("\n  container %s (%s, image %s)", s.container, s.engine, s.image)
end

function M.where(s)
   return string.format("port %s, %s", tostring(s.port), tostring(s.engine))
end

function M.info(s)
   local t = loc.info(s)
   t.engine, t.image, t.container, t.dir = s.engine, s.image, s.container, s.dir
   return t
end

return M
