--- Targets: the server a runbook works on, and where its state lives.
--   site profile   `--site FILE`: an INI file ([server] [connection] [site] and the runbooks'
--                  own sections); the server is reached with [connection], restarted with
--                  [server] restart_command, systemd_unit or windows_service.
--   sandbox        `--sandbox NAME`: a running sandbox (myseal.sandbox): its connection, option
--                  file and restart.
--   described      `--describe SERVER` or [server] describe: no server at all, for `plan`; the
--                  dialect and facts answer from the description.
-- The `check` command and other tools open targets the same way: `target.open(opts)`.
-- @module myseal.engine.target
local sys = require "sys"
local params = require "myseal.engine.params"
local dialect = require "myseal.dialect"

local M = {}

--- Parameters every runbook has, filled from the target and the site profile.
M.declarations = params.declare("myseal", {
   ["server.describe"] = { type = "string",
      doc = "plan against a described server instead of a live one: mysql-5.7, mysql-8.0.36, mariadb-10.11, ... "
         .. "or a description file (.lua or .json)" },
   ["server.cnf"] = { type = "path", doc = "the server's main option file (my.cnf or my.ini)" },
   ["server.datadir"] = { type = "path", doc = "the server's data directory" },
   ["server.user"] = { type = "string", default = "mysql",
      doc = "the operating-system user the server runs as (owner of its key files)" },
   ["server.error_log"] = { type = "path",
      doc = "the server's error log, shown when a restart fails (default: the server's log_error)" },
   ["server.restart_command"] = { type = "string",
      doc = "command that restarts the server, run without a shell, e.g. /usr/local/bin/restart-db --now" },
   ["server.systemd_unit"] = { type = "string", doc = "systemd unit restarted with systemctl, e.g. mariadb" },
   ["server.windows_service"] = { type = "string",
      doc = "Windows service restarted with net stop / net start, e.g. MySQL80" },
   ["server.start_timeout"] = { type = "integer", default = 120,
      doc = "seconds to wait for the server to accept connections after a restart" },
   ["connection.host"] = { type = "string", doc = "host name or address of the server" },
   ["connection.port"] = { type = "integer", doc = "TCP port of the server" },
   ["connection.socket"] = { type = "path", doc = "Unix socket of the server" },
   ["connection.user"] = { type = "string", default = "root", doc = "account myseal connects as" },
   ["connection.password"] = { type = "secret",
      doc = "password of that account: env:VAR, file:PATH or prompt (none: socket authentication)" },
   ["connection.defaults_file"] = { type = "path", doc = "option file to read connection options from" },
   ["connection.defaults_group"] = { type = "string", doc = "group of that file (default: client)" },
   ["connection.connect_timeout"] = { type = "integer", default = 10, doc = "seconds to wait for a connection" },
   ["connection.tls_mode"] = { type = "enum",
      values = { "disabled", "preferred", "required", "verify_ca", "verify_identity" },
      doc = "TLS for myseal's own connection" },
   ["connection.tls_ca"] = { type = "path", doc = "CA certificate to verify the server with" },
   ["connection.tls_cert"] = { type = "path", doc = "client certificate" },
   ["connection.tls_key"] = { type = "path", doc = "client key" },
   ["site.name"] = { type = "string",
      doc = "name of this target in the state directory (default: the profile's file name)" },
   ["site.runbooks"] = { type = "path", doc = "directory of site runbooks, searched before the stock ones" },
})

--- The state directory (myseal.state): $MYSEAL_STATE_DIR, else $XDG_STATE_HOME/myseal, else
-- ~/.local/state/myseal. Not created here.
-- @return path
function M.state_root()
   return require("myseal.state").path()
end

-- A short stable hash (FNV-1a, 32 bits) to tell apart profiles with the same file name.
local function hash(s)
   local h = 2166136261
   for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
   return ("%08x"):format(h)
end

local function dirname(path)
   return path:match("^(.*)[/\\][^/\\]*$") or "."
end

--- Read a site profile into a parameter layer.
-- @param path INI file
-- @return layer `{ label, base, values = { ["s.k"] = { value, where } }, sections }` | nil, message
function M.read_profile(path)
   local cnf = require "cnf"
   local doc, err = cnf.load(path)
   if not doc then return nil, err end
   local real = sys.realpath(path) or path
   local layer = { label = path, base = dirname(real), values = {}, sections = {} }
   for _, section in ipairs(doc:sections()) do
      local entries = {}
      for _, e in ipairs(doc:entries(section)) do
         local key = e.name:gsub("%-", "_")
         local where = ("%s:%d"):format(path, e.line)
         local value = e.value
         if value == true then value = "true" end
         layer.values[section .. "." .. key] = { value = value, where = where }
         entries[e.name] = { value = value, where = where }
      end
      layer.sections[section] = entries
   end
   return layer
end

local function split_command(s)
   local argv, cur, i, quote = {}, nil, 1, nil
   while i <= #s do
      local c = s:sub(i, i)
      if quote then
         if c == quote then quote = nil else cur = cur .. c end
      elseif c == "'" or c == '"' then
         quote, cur = c, cur or ""
      elseif c:match("%s") then
         if cur then argv[#argv + 1] = cur end
         cur = nil
      elseif c == "\\" and i < #s then
         i = i + 1
         cur = (cur or "") .. s:sub(i, i)
      else
         cur = (cur or "") .. c
      end
      i = i + 1
   end
   if quote then return nil, "an unclosed quote" end
   if cur then argv[#argv + 1] = cur end
   if #argv == 0 then return nil, "an empty command" end
   return argv
end
M.split_command = split_command

local function load_description(spec, base)
   if not spec:match("%.lua$") and not spec:match("%.json$") then
      local info, err = dialect.parse_spec(spec)
      if not info then return nil, err end
      return { server = info }
   end
   local path = spec
   if base and not path:match("^/") then path = base .. "/" .. path end
   local text, err = sys.read_file(path)
   if not text then return nil, err end
   local desc
   if path:match("%.json$") then
      desc, err = require("myseal.json").decode(text)
      if not desc then return nil, path .. ": " .. err end
   else
      local fn
      fn, err = load(text, "@" .. path, "t", {})
      if not fn then return nil, err end
      local ok, v = pcall(fn)
      if not ok then return nil, tostring(v) end
      desc = v
   end
   if type(desc) ~= "table" or type(desc.server) ~= "string" then
      return nil, path .. ": a description is a table with server = \"FLAVOR-VERSION\" (e.g. mysql-8.0.36)"
   end
   local info
   info, err = dialect.parse_spec(desc.server)
   if not info then return nil, path .. ": " .. err end
   desc.server = info
   return desc
end

local Target = {}
Target.__index = Target
Target.__name = "myseal.Target"

--- Open a target.
-- @param opts `{ site = FILE, sandbox = NAME, describe = SERVER }` (site may go with either)
-- @return target | nil, message (a usage problem or a world failure)
function M.open(opts)
   local t = setmetatable({ layers = {} }, Target)
   local profile_values = {}
   if opts.site then
      local layer, err = M.read_profile(opts.site)
      if not layer then return nil, err end
      t.profile = opts.site
      t.layers[#t.layers + 1] = layer
      for k, v in pairs(layer.values) do profile_values[k] = v.value end
      t.profile_base = layer.base
   end
   if opts.sandbox and opts.describe then
      return nil, "--sandbox and --describe cannot go together"
   end
   local describe = opts.describe or (not opts.sandbox and profile_values["server.describe"])
   if describe then
      local desc, err = load_description(describe, not opts.describe and t.profile_base or nil)
      if not desc then return nil, err end
      t.kind, t.description = "described", desc
      t.server_info = desc.server
      t.server_info.described = true
      t.label = ("described %s %s"):format(desc.server.flavor, desc.server.version)
      t.id = nil   -- plan only: nothing is written to the state directory
   elseif opts.sandbox then
      local sandbox = require "myseal.sandbox"
      local s, err = sandbox.attach(opts.sandbox)
      if not s then return nil, err end
      t.kind, t.sandbox = "sandbox", s
      t.label = "sandbox " .. opts.sandbox
      t.id = "sandbox-" .. opts.sandbox
      -- below the profile: a profile given with --sandbox still wins
      table.insert(t.layers, 1, { label = "sandbox " .. opts.sandbox, values = {
         ["server.cnf"] = { value = s.cnf }, ["server.datadir"] = { value = s.datadir },
         ["server.user"] = { value = s.user or sys.user().name },
      } })
   elseif opts.site then
      t.kind = "site"
      local name = profile_values["site.name"]
      local base = opts.site:match("([^/\\]+)$"):gsub("%.[^.]*$", "")
      t.id = name and ("site-" .. name) or ("site-%s-%s"):format(base, hash(sys.realpath(opts.site) or opts.site))
      t.label = "site " .. (name or base)
   else
      return nil, "name a target: --site FILE, --sandbox NAME or --describe SERVER"
   end
   if t.id then t.id = t.id:gsub("[^%w%._%-]", "_") end
   return t
end

--- The target's state directory (created 0700 when `create`).
-- @param create boolean
-- @return path | nil, message
function Target:state_dir(create)
   if not self.id then return nil, self.label .. " has no state (plan only)" end
   local dir = M.state_root() .. "/targets/" .. self.id
   if create then
      local ok, err = sys.mkdir(dir, tonumber("700", 8))
      if not ok then return nil, err end
   end
   return dir
end

--- How to connect to the target's server, as plain data (for worker processes), and the
-- password apart (never in the data).
-- @param values resolved parameters
-- @param secrets the run's secrets (for the connection password)
-- @return spec, password | nil, message
function Target:connect_spec(values, secrets)
   if self.kind == "described" then
      return nil, self.label .. " is described, not connected"
   elseif self.kind == "sandbox" then
      return { sandbox = self.sandbox.name }
   end
   local password
   local source = values["connection.password"]
   if source or os.getenv(require("myseal.engine.secrets").env_name("connection.password")) then
      local err
      password, err = secrets:get("connection.password", source)
      if not password then return nil, err end
   end
   local tls
   if values["connection.tls_mode"] then
      tls = { mode = values["connection.tls_mode"], ca = values["connection.tls_ca"],
              cert = values["connection.tls_cert"], key = values["connection.tls_key"] }
   end
   return { connect = {
      host = values["connection.host"], port = values["connection.port"],
      socket = values["connection.socket"], user = values["connection.user"],
      defaults_file = values["connection.defaults_file"], defaults_group = values["connection.defaults_group"],
      connect_timeout = values["connection.connect_timeout"], tls = tls,
   } }, password
end

--- Connect with a spec from Target:connect_spec.
-- @param spec the spec
-- @param password the password or nil
-- @return conn | nil, message, errno
function M.connect_spec(spec, password)
   if spec.sandbox then
      local s, err = require("myseal.sandbox").attach(spec.sandbox)
      if not s then return nil, err end
      return s:connect()
   end
   local opts = {}
   for k, v in pairs(spec.connect) do opts[k] = v end
   opts.password = password
   return require("mysql").connect(opts)
end

--- Connect to the target's server.
-- @param values resolved parameters
-- @param secrets the run's secrets (for the connection password)
-- @param opts optional fields merged over the target's connection options (mysql.connect's)
-- @return conn | nil, message, errno
function Target:connect(values, secrets, opts)
   if self.kind == "sandbox" then return self.sandbox:connect(opts) end
   local spec, password = self:connect_spec(values, secrets)
   if not spec then return nil, password end
   if opts then
      local merged = {}
      for k, v in pairs(spec.connect) do merged[k] = v end
      for k, v in pairs(opts) do
         if k == "password" then password = v else merged[k] = v end
      end
      spec = { connect = merged }
   end
   return M.connect_spec(spec, password)
end

--- The server's TCP address as the target knows it: host, port (nil when unknown).
-- @param values resolved parameters
-- @return host, port
function Target:address(values)
   if self.kind == "sandbox" then return self.sandbox.host, self.sandbox.port end
   return values["connection.host"], values["connection.port"]
end

--- How the server is restarted, in words (for plan), or nil, message when no way is configured.
-- @param values resolved parameters
-- @return text | nil, message
function Target:restart_how(values)
   if self.kind == "sandbox" then return "restart sandbox " .. self.sandbox.name end
   local cmd = values["server.restart_command"]
   if cmd then return "run " .. cmd end
   if values["server.systemd_unit"] then return "systemctl restart " .. values["server.systemd_unit"] end
   if values["server.windows_service"] then
      return ("net stop %s, then net start %s"):format(values["server.windows_service"],
         values["server.windows_service"])
   end
   if self.kind == "described" then return "restart the server (the site's restart method)" end
   return nil, "no way to restart the server: set restart_command, systemd_unit or windows_service in [server]"
end

--- The last lines of the server's error log, or nil.
-- @param values resolved parameters
-- @param hint the server's log_error, read before the restart
-- @return text | nil
function Target:error_log(values, hint)
   if self.kind == "sandbox" then return self.sandbox:error_log(20) end
   local path = values["server.error_log"] or hint
   if not path then return nil end
   local text = sys.read_file(path)
   return text and require("myseal.sandbox").tail_lines(text, 20)
end

--- Restart the server and wait until it accepts connections.
-- @param values resolved parameters
-- @param secrets the run's secrets
-- @param log_hint the server's log_error, for the message when it does not come back
-- @return true | nil, message
function Target:restart(values, secrets, log_hint)
   if self.kind == "sandbox" then return self.sandbox:restart() end
   local commands = {}
   local cmd = values["server.restart_command"]
   if cmd then
      local argv, err = split_command(cmd)
      if not argv then return nil, ("[server] restart_command: %s"):format(err) end
      commands[1] = argv
   elseif values["server.systemd_unit"] then
      commands[1] = { "systemctl", "restart", values["server.systemd_unit"] }
   elseif values["server.windows_service"] then
      commands[1] = { "net", "stop", values["server.windows_service"] }
      commands[2] = { "net", "start", values["server.windows_service"] }
   else
      return nil, select(2, self:restart_how(values))
   end
   local function with_log(msg)
      local log = self:error_log(values, log_hint)
      if log then msg = msg .. "\n" .. log end
      return nil, msg
   end
   for _, argv in ipairs(commands) do
      local r, err = sys.run(argv)
      if not r then return with_log(err) end
      if not r.ok then
         local out = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
         return with_log(("'%s' failed (%s)%s"):format(table.concat(argv, " "),
            r.status and ("exit status " .. r.status) or ("signal " .. tostring(r.signal)),
            out ~= "" and (": " .. out) or ""))
      end
   end
   local deadline = sys.clock() + values["server.start_timeout"]
   local last
   repeat
      local conn, err = self:connect(values, secrets)
      if conn then
         conn:close()
         return true
      end
      last = err
      sys.sleep(0.5)
   until sys.clock() > deadline
   return with_log(("the server did not accept connections within %d s after the restart: %s"):format(
      values["server.start_timeout"], tostring(last)))
end

return M
