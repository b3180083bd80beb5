--- `myseal sandbox`: disposable servers for tests and rehearsals.
local args = require "myseal.args"
local errors = require "myseal.errors"
local json = require "myseal.json"
local sandbox = require "myseal.sandbox"

local SUBCOMMANDS = {
   {
      name = "start",
      summary = "start a disposable server and print how to reach it",
      usage = "myseal sandbox start [--flavor mariadb|mysql|auto] [--name N] [--tls] [--option K=V]... "
         .. "[--driver local|container] [--json]",
      help = [[
  --flavor F     mariadb, mysql or auto (default: what is installed)
  --name N       its name (default sb1, sb2, ...): letters, digits, '-' and '_'
  --tls          a CA, a server certificate for localhost/127.0.0.1/::1 and a
                 client certificate, with the server's TLS options set
  --option K=V   an extra [mysqld] option (K alone for a bare flag); repeat it
  --driver D     local (default: mariadbd or mysqld from this machine) or
                 container (needs docker)
  --json         print name, port, socket, cnf, datadir, pid, ... as JSON]],
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
      summary = "stop a sandbox and start it again with its current option file",
      usage = "myseal sandbox restart NAME",
   },
   {
      name = "stop",
      summary = "stop sandboxes and remove everything they had",
      usage = "myseal sandbox stop NAME... | --all",
      help = [[
  --all          stop every sandbox of this state directory]],
   },
}

local usages = {}
for i, sub in ipairs(SUBCOMMANDS) do
   usages[i] = (i == 1 and "" or "       ") .. sub.usage
end
local list = {}
for i, sub in ipairs(SUBCOMMANDS) do
   list[i] = ("  %-8s %s"):format(sub.name, sub.summary)
end

local M = {
   summary = "start, list, restart and stop disposable MySQL/MariaDB servers",
   usage = table.concat(usages, "\n"),
   subcommands = SUBCOMMANDS,
   help = [[
A sandbox is a throwaway server started from the binaries on this machine
(mariadbd, or Oracle's mysqld), with a fresh datadir, its own option file,
a free loopback port and a short socket path. Root connects over the socket
without a password; a TCP account (tcp_user, random password) exists too.
Edit the option file and restart to rehearse a configuration change.

]] .. table.concat(list, "\n") .. [[


'myseal help sandbox SUBCOMMAND' (or 'myseal sandbox SUBCOMMAND --help')
has its options.

State lives in $MYSEAL_STATE_DIR (default ~/.local/state/myseal/sandboxes);
template datadirs in ~/.cache/myseal/templates. Only the pid a sandbox
started is ever signalled.]],
}

local function describe(s)
   local lines = {
      string.format("sandbox %s: %s %s, %s", s.name, s.flavor, s.version, s.alive and "running" or "dead"),
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

local function as_json(s)
   return { name = s.name, flavor = s.flavor, version = s.version, host = s.host, port = s.port,
      socket = s.socket, cnf = s.cnf, datadir = s.datadir, pid = s.pid, alive = s.alive,
      tcp_user = s.tcp_user, tcp_password = s.tcp_password, tls = s.tls, driver = s.driver }
end

local function start(argv)
   local o = args.parse("sandbox start", argv, {
      flags = { "tls", "json" }, options = { "flavor", "name", "driver" }, multi = { "option" } })
   local flavor = o.flavor or "auto"
   if flavor ~= "auto" and flavor ~= "mariadb" and flavor ~= "mysql" then
      errors.usage("sandbox start: unknown flavour '%s' (mariadb, mysql or auto)", flavor)
   end
   if o.name and not o.name:match("^[%w][%w_%-]*$") then
      errors.usage("sandbox start: bad name '%s' (letters, digits, '-' and '_')", o.name)
   end
   local options = {}
   for _, kv in ipairs(o.option or {}) do
      local k, v = kv:match("^([%w_%-%.]+)=(.*)$")
      if not k then k, v = kv:match("^([%w_%-%.]+)$"), true end
      if not k then errors.usage("sandbox start: --option wants NAME=VALUE, not '%s'", kv) end
      options[k] = v
   end
   local s, err = sandbox.start{ flavor = flavor, name = o.name, tls = o.tls, options = options,
      driver = o.driver }
   if not s then errors.fail("%s", err) end
   if o.json then print(json.encode(as_json(s))) else print(describe(s)) end
   return 0
end

local function status(argv)
   local o = args.parse("sandbox status", argv, { flags = { "json" } })
   local list = sandbox.list()
   if o.json then
      local out = setmetatable({}, json.array)
      for _, s in ipairs(list) do out[#out + 1] = as_json(s) end
      print(json.encode(out))
   elseif #list == 0 then
      print("no sandboxes")
   else
      for _, s in ipairs(list) do
         print(string.format("%-12s %-8s %-10s %-8s port %-6d %s", s.name, s.flavor, s.version,
            s.alive and "running" or "DEAD", s.port, s.socket))
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
   print(string.format("sandbox %s restarted (pid %d)", s.name, s.pid))
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
   return 0
end

local verbs = { start = start, status = status, restart = restart, stop = stop }

function M.run(argv)
   local verb = argv[1]
   local fn = verbs[verb or ""]
   if not fn then
      errors.usage("sandbox: %s (start, status, restart or stop; try 'myseal help sandbox')",
         verb and ("unknown action '" .. verb .. "'") or "an action is needed")
   end
   return fn(table.move(argv, 2, #argv, 1, {}))
end

return M
