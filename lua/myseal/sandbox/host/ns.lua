--- The namespaces of a lab host (myseal.sandbox.host): its private tree, its init process,
-- running commands inside it, and its MariaDB through Debian's service script.
-- @module myseal.sandbox.host.ns
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"

local M = {}

local ASSETS = require("myseal.host").lua_dir .. "/myseal/sandbox/host"
local START_TIMEOUT = 60
local PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
local NS_FLAGS = { "--mount", "--uts", "--ipc", "--net", "--pid" }
M.ASSETS, M.PATH = ASSETS, PATH

-- `env -i` and a clean environment for commands in the host, as a root login there would have
-- it (nothing of the caller's environment, secrets included, reaches the host).
local function host_env(extra)
   local env = { PATH = PATH, HOME = "/root", USER = "root", LOGNAME = "root", SHELL = "/bin/sh",
      LANG = "C.UTF-8", TERM = os.getenv("TERM") or "dumb" }
   for k, v in pairs(extra or {}) do env[k] = v end
   local argv = {}
   for k, v in pairs(env) do argv[#argv + 1] = k .. "=" .. v end
   table.sort(argv)
   return common.append({ "env", "-i" }, argv)
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
      assert(sys.write_file(outside .. ".in", argv.stdin, { mode = tonumber("600", 8) }))
      stdin = inside .. ".in"
   end
   local cmd = host_env(argv.env)
   common.append(cmd, { "nsenter", "--target", tostring(s.pid) }, NS_FLAGS, { "--wd=/", "--", "/bin/sh", "-c",
      'f=$1; i=$2; shift 2; "$@" >"$f.out" 2>"$f.err" <"$i"; echo $? >"$f.st"', "sh", inside, stdin }, argv)
   cmd.log = "/dev/null"
   local function clean()
      for _, ext in ipairs{ ".in", ".out", ".err", ".st" } do os.remove(outside .. ext) end
   end
   local pid, err = sys.spawn(cmd)
   if not pid then return nil, err end
   local timeout = argv.timeout or opts.timeout
   local deadline = timeout and (sys.clock() + timeout)
   local delay = 0.005
   while sys.alive(pid) do
      if deadline and sys.clock() > deadline then
         kill_tree(pid)
         while sys.alive(pid) do sys.sleep(0.01) end
         clean()
         return nil, string.format("'%s' timed out after %g s in host %s", argv[1], timeout, s.name)
      end
      sys.sleep(delay)
      delay = math.min(delay * 2, 0.05)
   end
   local status = tonumber(sys.read_file(outside .. ".st") or "")
   local r = { stdout = sys.read_file(outside .. ".out") or "", stderr = sys.read_file(outside .. ".err") or "" }
   clean()
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


-- The private filesystem of a host (or of the template host) under root/fs.
local function make_tree(root, opts)
   local f = root .. "/fs"
   local dirs = {
      { "/etc/mysql", "755" }, { "/etc/init.d", "755" }, { "/etc/default", "755" },
      { "/var/lib/mysql", "755", "mysql", "mysql" }, { "/var/log", "755" },
      { "/var/log/mysql", "2750", "mysql", "adm" }, { "/run", "755" }, { "/run/mysqld", "755", "mysql", "root" },
      { "/run/myseal-lab", "700" }, { "/tmp", "1777" }, { "/var/tmp", "1777" }, { "/root", "700" },
   }
   if opts.ssh then dirs[#dirs + 1] = { "/etc/ssh", "755" } end
   if opts.app then
      common.append(dirs, { { "/etc/tomcat10", "755" }, { "/etc/tomcat10/Catalina", "775", "root", "tomcat" },
         { "/var/lib/tomcat10", "755" }, { "/var/lib/tomcat10/lib", "755", "tomcat", "tomcat" },
         { "/var/lib/tomcat10/webapps", "775", "tomcat", "tomcat" },
         { "/var/cache/tomcat10", "750", "tomcat", "tomcat" }, { "/var/log/tomcat10", "2770", "tomcat", "adm" } })
   end
   for _, d in ipairs(dirs) do
      local ok, err = common.mkdir(f .. d[1], tonumber(d[2], 8), d[3], d[4])
      if not ok then return nil, err end
   end
   local name = opts.name
   local hosts = table.concat({ "127.0.0.1\tlocalhost", "127.0.1.1\t" .. name,
      "::1\tlocalhost ip6-localhost ip6-loopback", "" }, "\n")
   if opts.address then hosts = hosts .. opts.address .. "\t" .. name .. "\n" end
   assert(sys.write_file(f .. "/etc/hosts", hosts, { mode = tonumber("644", 8) }))
   assert(sys.write_file(f .. "/etc/hostname", name .. "\n", { mode = tonumber("644", 8) }))
   return true
end

local function pid_cmdline(pid)
   local text = sys.read_file("/proc/" .. pid .. "/cmdline")
   return text and text:gsub("%z", " ") or ""
end

-- Starts the namespaces of a host whose tree is ready; fills s.pid (the host's PID 1 as this
-- machine sees it) and s.ns (the unshare process). true, or nil, message.
local function boot_namespace(s)
   local argv = common.append({ "env", "-i", "PATH=" .. PATH, "LANG=C.UTF-8", "unshare" }, NS_FLAGS,
      { "--fork", "--mount-proc", "/bin/sh", ASSETS .. "/init.sh", s.dir, s.name })
   argv.log = s.dir .. "/init.log"
   local upid, err = sys.spawn(argv)
   if not upid then return nil, err end
   s.ns = upid
   if not common.wait_file(upid, fs(s, "/run/myseal-lab/ready"), START_TIMEOUT) then
      if sys.alive(upid) then kill_tree(upid) end
      return nil, string.format("host '%s': its namespaces did not come up:\n%s", s.name,
         common.tail_lines(sys.read_file(s.dir .. "/init.log") or "", 5))
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

-- Is pid the init of host s? (pids are reused: check its command line; the init.sh may be
-- another install's)
local function our_init(s)
   return s.pid ~= nil and sys.alive(s.pid) and pid_cmdline(s.pid):find("/init.sh " .. s.dir, 1, true) ~= nil
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
   local lines = {}
   for line in (sys.read_file(fs(s, "/var/log/syslog")) or ""):gmatch("[^\n]+") do
      -- mysqld_safe's and the server's own lines (tags mysqld_safe, mysqld), not the service script's
      if line:find(" mysqld: ", 1, true) or line:find(" mysqld_safe", 1, true) then lines[#lines + 1] = line end
   end
   return common.tail_lines(table.concat(lines, "\n"), n)
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

M.fs, M.run, M.make_tree, M.boot, M.is_init, M.kill = fs, host_run, make_tree, boot_namespace, our_init, kill_namespace
M.server_log, M.service, M.mariadb = server_log, service, mariadb_action

return M
