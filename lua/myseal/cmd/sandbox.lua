--- `myseal sandbox`: disposable servers for tests and rehearsals.
local args = require "myseal.args"
local errors = require "myseal.errors"
local json = require "myseal.json"
local sandbox = require "myseal.sandbox"

local SUBCOMMANDS = {
   {
      name = "start",
      summary = "start a disposable server (or a lab host) and print how to reach it",
      usage = "myseal sandbox start [--driver local|container|host] [--flavor F] [--name N] [--user U] [--tls] "
         .. "[--option K=V]... [--engine docker|podman] [--image IMAGE] [--app tomcat [--app-db ADDR]] "
         .. "[--ip ADDR/PREFIX] [--etc DIR] [--ssh-key FILE] [--json]",
      help = [[
  --driver D     local (default: mariadbd or mysqld from this machine),
                 container (docker or podman, from an image) or host (a
                 Debian-shaped lab host; needs root and Linux namespaces)
  --flavor F     mariadb, mysql or auto (default: what is installed)
  --name N       its name (default sb1, sb2, ...): letters, digits, '-' and '_'
  --user U       the server's user (default mysql when root starts it; --user
                 root keeps it root's)
  --tls          a CA, a server certificate for localhost/127.0.0.1/::1 and a
                 client certificate, with the server's TLS options set
  --option K=V   an extra [mysqld] option (K alone for a bare flag); repeat it
  --engine E     a container: docker or podman (default: the first whose
                 'info' answers)
  --image I      a container: any image with mariadbd or mysqld (default
                 docker.io/library/mariadb:11.4, or mysql:8.4 for --flavor
                 mysql); the image's entrypoint is not used
  --app tomcat   a host: Debian's Tomcat 10 with a JNDI pool and a page
                 (/db.jsp) showing a row count and the session's Ssl_cipher
  --app-db ADDR  a host with --app: the pool connects to the server at ADDR
                 (another host on the lab's network) instead of its own
  --ip A/P       a host: its address on the lab's private network
  --etc DIR      a host: copy a site's /etc/mysql tree instead of Debian's
  --ssh-key FILE a host: Debian's sshd runs in it and lets root in with this
                 public key (a host's --option goes to its mariadb.conf.d)
  --json         print name, port, socket, cnf, datadir, pid, ... as JSON (a
                 host: its namespace pid, paths, address and site profile)]],
   },
   {
      name = "status",
      summary = "list every sandbox, running or dead",
      usage = "myseal sandbox status [--json]",
      help = [[
  --json         one JSON array of the sandboxes (with each TCP password)]],
   },
   {
      name = "restart",
      summary = "stop a sandbox and start it again with its current option file (a container: its restart; "
         .. "a host: its service script)",
      usage = "myseal sandbox restart NAME",
   },
   {
      name = "exec",
      summary = "run a command where the sandbox runs (a container or a host: inside it); its exit status is "
         .. "exec's",
      usage = "myseal sandbox exec NAME -- COMMAND [ARG...]",
   },
   {
      name = "stop",
      summary = "stop sandboxes and remove everything they had",
      usage = "myseal sandbox stop NAME... | --all",
      help = [[
  --all          stop every sandbox of this state directory]],
   },
}

local usages, list = {}, {}
for i, sub in ipairs(SUBCOMMANDS) do
   usages[i] = (i == 1 and "" or "       ") .. sub.usage
   list[i] = ("  %-8s %s"):format(sub.name, sub.summary)
end

local M = {
   summary = "start, list (status), restart, enter (exec) and stop disposable MySQL/MariaDB servers and lab hosts",
   usage = table.concat(usages, "\n"),
   subcommands = SUBCOMMANDS,
   help = [[
A sandbox is a throwaway server started from the binaries on this machine
(mariadbd, or Oracle's mysqld), with a fresh datadir, its own option file,
a free loopback port and a short socket path. Started by root, the server
runs as the packaged server user (mysql, created if missing) and its files
are owned as the package owns them. Root connects over the socket without a
password; a TCP account (tcp_user, random password) exists too. Edit the
option file and restart to rehearse a configuration change.

A lab host (--driver host) is a disposable Debian-shaped machine made of
Linux namespaces: /etc/mysql as the packages ship it, a datadir made as
Debian's postinst makes it (root by unix_socket only), MariaDB started by
/etc/init.d/mariadb as user mysql, its error log in the host's syslog
(/var/log/syslog), and with --app tomcat Debian's Tomcat 10. Nothing of this
machine's own /etc, /var/lib or processes changes.

A container sandbox (--driver container) is the same server in a container
of docker or podman: its directory is mounted at the same path inside, the
datadir is initialised there as the server's user (this machine's mysql),
the port is published on 127.0.0.1, and restart is the container's restart.

]] .. table.concat(list, "\n") .. [[


'myseal help sandbox SUBCOMMAND' (or 'myseal sandbox SUBCOMMAND --help')
has its options.

State lives in $MYSEAL_STATE_DIR (default ~/.local/state/myseal/sandboxes);
template datadirs in ~/.cache/myseal/templates. Only the pid (or the
container) a sandbox started is ever signalled. docs/containers.md has the
container driver, docs/lab.md the lab hosts.]],
}

local function start(argv)
   local o = args.parse("sandbox start", argv, {
      flags = { "tls", "json" },
      options = { "flavor", "name", "driver", "user", "app", "app-db", "ip", "etc", "ssh-key", "engine", "image" },
      multi = { "option" } })
   local flavor, driver = o.flavor or "auto", o.driver or "local"
   local function refuse(bad, fmt, ...)   -- a usage error when `bad`
      if bad then errors.usage("sandbox start: " .. fmt, ...) end
   end
   refuse(not ({ auto = true, mariadb = true, mysql = true })[flavor],
      "unknown flavour '%s' (mariadb, mysql or auto)", flavor)
   refuse(not ({ ["local"] = true, container = true, host = true })[driver],
      "unknown driver '%s' (local, container or host)", driver)
   refuse(o.name and not o.name:match("^[%w][%w_%-]*$"), "bad name '%s' (letters, digits, '-' and '_')", o.name)
   refuse(driver ~= "host" and (o.app or o.ip or o.etc or o.ssh_key),
      "--app, --ip, --etc and --ssh-key are for --driver host")
   refuse(driver ~= "container" and (o.engine or o.image), "--engine and --image are for --driver container")
   refuse(o.engine and o.engine ~= "docker" and o.engine ~= "podman", "unknown --engine '%s' (docker or podman)",
      o.engine)
   refuse(o.app and o.app ~= "tomcat", "unknown --app '%s' (tomcat)", o.app)
   refuse(o.app_db and not o.app, "--app-db goes with --app tomcat")
   refuse(o.ip and not o.ip:match("^%d+%.%d+%.%d+%.%d+/%d+$"), "--ip wants ADDR/PREFIX, e.g. 10.23.0.2/24, not '%s'",
      o.ip)
   refuse(o.user and not o.user:match("^[%w_][%w_%-]*$"), "bad user name '%s'", o.user)
   local options = {}
   for _, kv in ipairs(o.option or {}) do
      local k, v = kv:match("^([%w_%-%.]+)=(.*)$")
      if not k then k, v = kv:match("^([%w_%-%.]+)$"), true end
      refuse(not k, "--option wants NAME=VALUE, not '%s'", kv)
      options[k] = v
   end
   local s, err = sandbox.start{ flavor = flavor, name = o.name, tls = o.tls, options = options,
      driver = driver, user = o.user, app = o.app, ip = o.ip, etc = o.etc, app_db = o.app_db,
      ssh_key = o.ssh_key, engine = o.engine, image = o.image }
   if not s then errors.fail("%s", err) end
   if o.json then print(json.encode(s:info())) else print(s:describe()) end
   return 0
end

local function status(argv)
   local o, pos = args.parse("sandbox status", argv, { flags = { "json" } })
   args.at_most("sandbox status", pos, 0)
   local list = sandbox.list()
   if o.json then
      local out = setmetatable({}, json.array)
      for _, s in ipairs(list) do out[#out + 1] = s:info() end
      print(json.encode(out))
   elseif #list == 0 then
      print("no sandboxes")
   else
      for _, s in ipairs(list) do
         print(string.format("%-12s %-8s %-10s %-8s %-24s %s", s.name, s.flavor, s.version,
            s.alive and "running" or "DEAD", s:where(), s.socket))
      end
   end
   return 0
end

local function attach(name)
   local s, err = sandbox.attach(name)
   if not s then errors.usage("%s (see 'myseal sandbox status')", err) end
   return s
end

local function restart(argv)
   local _, pos = args.parse("sandbox restart", argv, {})
   if #pos ~= 1 then errors.usage("sandbox restart: one NAME is needed") end
   local s = attach(pos[1])
   local ok, err = s:restart()
   if not ok then errors.fail("%s", err) end
   print(string.format("sandbox %s restarted (pid %s)", s.name, tostring(s.pid)))
   return 0
end

local function stop(argv)
   local o, pos = args.parse("sandbox stop", argv, { flags = { "all" } })
   if o.all and #pos > 0 then errors.usage("sandbox stop: give NAMEs or --all, not both") end
   if not o.all and #pos == 0 then errors.usage("sandbox stop: a NAME or --all is needed") end
   local list = {}
   if o.all then list = sandbox.list() else
      for _, name in ipairs(pos) do list[#list + 1] = attach(name) end
   end
   for _, s in ipairs(list) do
      local was = s.alive
      s:stop()
      print(string.format("sandbox %s %s", s.name, was and "stopped" or "was dead: cleaned up"))
   end
   if o.all then sandbox.cleanup() end
   return 0
end

local function exec(argv)
   -- NAME, then the command after "--" (args.parse reads no option after it: its own are not ours)
   local _, pos = args.parse("sandbox exec", argv, {})
   if #pos == 0 or argv[1] == "--" then errors.usage("sandbox exec: NAME -- COMMAND [ARG...] is needed") end
   local name = pos[1]
   local rest = table.move(pos, 2, #pos, 1, {})
   if #rest == 0 then errors.usage("sandbox exec: a COMMAND is needed after '%s --'", name) end
   local s = attach(name)
   if not s.alive then errors.fail("sandbox %s is not running (see 'myseal sandbox status')", name) end
   local sys = require "sys"
   if not sys.isatty("stdin") then rest.stdin = io.stdin:read("a") end
   local r, err = s:exec(rest)
   if not r then errors.fail("sandbox exec %s: %s", name, err) end
   io.stdout:write(r.stdout)
   io.stderr:write(r.stderr)
   return r.status or (128 + (r.signal or 0))
end

local verbs = { start = start, status = status, restart = restart, exec = exec, stop = stop }

function M.run(argv)
   local verb = argv[1]
   local fn = verbs[verb or ""]
   if not fn then
      errors.usage("sandbox: %s (start, status, restart, exec or stop; try 'myseal help sandbox')",
         verb and ("unknown action '" .. verb .. "'") or "an action is needed")
   end
   return fn(table.move(argv, 2, #argv, 1, {}))
end

return M
