--- Targets: the server a runbook works on, and where its state lives. A target is an object;
-- callers use its methods and never ask what kind it is:
--   site       `--site FILE`: an INI profile ([server] [connection] [site] and the runbooks' own
--              sections); reached with [connection], restarted with [server] (target/site.lua)
--   sandbox    `--sandbox NAME`: a running sandbox (target/sandbox.lua)
--   described  `--describe SERVER` or [server] describe: no server at all, for `plan`; the
--              dialect and facts answer from the description (target/described.lua)
--
-- Every target has: `label`, `id` (its state directory name, nil when it keeps no state),
-- `layers` (parameter layers: the profile, the sandbox's own values), and the methods of
-- Target below, which the kinds override.
-- @module myseal.engine.target
local sys = require "sys"
local params = require "myseal.engine.params"

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
   ["server.start_timeout"] = { type = "integer", default = 120, min = 1,
      doc = "seconds to wait for the server to accept connections after a restart" },
   ["connection.host"] = { type = "string", doc = "host name or address of the server" },
   ["connection.port"] = { type = "integer", min = 1, max = 65535, doc = "TCP port of the server" },
   ["connection.socket"] = { type = "path", doc = "Unix socket of the server" },
   ["connection.user"] = { type = "string", default = "root", doc = "account myseal connects as" },
   ["connection.password"] = { type = "secret",
      doc = "password of that account: env:VAR, file:PATH or prompt (none: socket authentication)" },
   ["connection.defaults_file"] = { type = "path", doc = "option file to read connection options from" },
   ["connection.defaults_group"] = { type = "string", doc = "group of that file (default: client)" },
   ["connection.connect_timeout"] = { type = "integer", default = 10, min = 1, max = 65535,
      doc = "seconds to wait for a connection" },
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

--- The profile sections that are myseal's own (every key in them is declared above).
M.sections = { server = true, connection = true, site = true }

--- The state directory (myseal.state): $MYSEAL_STATE_DIR, else $XDG_STATE_HOME/myseal, else
-- ~/.local/state/myseal. Not created here.
function M.state_root()
   return require("myseal.state").path()
end

--- A short stable hash of a text (FNV-1a, 32 bits) as 8 hex digits, to tell names apart.
function M.hash(s)
   local h = 2166136261
   for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
   return ("%08x"):format(h)
end

local function dirname(path)
   return path:match("^(.*)[/\\][^/\\]*$") or "."
end

--- Read a site profile into a parameter layer. Keys are taken as written: account names and
-- paths are not option names, so `-` stays `-` (only option files fold `-` into `_`).
-- @param path INI file
-- @return layer `{ label, base, values = { ["s.k"] = { value, where } }, sections }` | nil, message
function M.read_profile(path)
   local cnf = require "cnf"
   local doc, err = cnf.load(path)
   if not doc then return nil, err end
   local n = 0
   for line in doc:text():gmatch("[^\n]*") do
      n = n + 1
      local directive = line:match("^%s*!%s*(include%a*)")
      if directive then   -- its keys would go unread, and nothing would say so
         return nil, ("%s:%d: !%s: a site profile is one file (myseal reads no include); put those keys in it")
            :format(path, n, directive)
      end
   end
   local real = sys.realpath(path) or path
   local layer = { label = path, base = dirname(real), values = {}, sections = {} }
   for _, section in ipairs(doc:sections()) do
      local entries = {}
      for _, e in ipairs(doc:entries(section)) do
         local where = ("%s:%d"):format(path, e.line)
         local value = e.value == true and "true" or e.value
         layer.values[section .. "." .. e.name] = { value = value, where = where }
         entries[e.name] = { value = value, where = where }
      end
      layer.sections[section] = entries
   end
   return layer
end

--- Split a command line into an argument vector the way a shell would split plain words and
-- quotes (no expansion of any kind); for restart commands from a profile.
-- @param s command line
-- @return argv | nil, message
function M.split_command(s)
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

-- The target classes ---------------------------------------------------------------------------

--- What every target does unless its kind says otherwise: a live server reached by the
-- connection its kind knows.
local Target = {}
Target.__index = Target
Target.__name = "myseal.Target"

--- A subclass of Target (for the kinds, and a site's own).
-- @param name metatable name
function M.class(name)
   local c = setmetatable({}, { __index = Target })
   c.__index = c
   c.__name = name
   return c
end

--- Why this target cannot be changed (nil: it can).
function Target.read_only()
   return nil
end

--- The target's state directory (created 0700 when `create`).
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

--- Where a runbook puts `what` ("keyring", "tls") when the profile does not say: nil means
-- the dialect's default for the server.
function Target.default_dir()
   return nil
end

--- What names the server itself, whatever profile or name reaches it (one run per server at a
-- time): its datadir, else its socket, else host:port; nil when unknown.
-- @param values resolved parameters
function Target.server_key(_, values)
   local where = values["server.datadir"] or values["connection.socket"]
   if not where and values["connection.host"] then
      where = ("%s:%s"):format(values["connection.host"]:lower(), tostring(values["connection.port"] or 3306))
   end
   return where and (sys.realpath(where) or where)
end

--- The server's TCP address as the parameters give it: host, port (nil when unknown).
-- @param values resolved parameters
function Target.address(_, values)
   return values["connection.host"], values["connection.port"]
end

--- The server's flavour and version: `{ flavor, version, major, minor, patch, comment }`, or nil
-- when it is known only by asking the server and no `connection` is given.
-- @param connection a function returning the run's connection
function Target.server_info(_, connection)
   if not connection then return nil end
   local info = connection():server()
   return { flavor = info.flavor, version = info.version, major = info.major, minor = info.minor,
            patch = info.patch, comment = info.comment, described = false }
end

--- Answer a fact: on a live server the dialect asks it.
-- @param d dialect
-- @param ctx the step's context
-- @param name fact name
-- @return the answer | nil, message when the dialect cannot answer it
function Target.fact(_, d, ctx, name, ...)
   local f = d.facts[name]
   if f == nil then return nil, ("dialect %s has no fact '%s'"):format(d.name, name) end
   return true, f(d, ctx, ...)
end

--- Connect with the options the target's kind knows, `opts` merged over them.
-- @param values resolved parameters
-- @param secrets the run's secrets
-- @param opts optional fields of mysql.connect
-- @return conn | nil, message, errno
function Target:connect(values, secrets, opts)
   local spec, password = self:connect_spec(values, secrets)
   if not spec then return nil, password end
   if opts then
      local alone = opts.alone   -- another account at its own address: nothing of the target's
      local merged = {}
      for k, v in pairs(not alone and spec.connect or {}) do merged[k] = v end
      for k, v in pairs(opts) do
         if k == "password" then password = v elseif k ~= "alone" then merged[k] = v end
      end
      if alone then password = opts.password end
      spec = { connect = merged, sandbox = not alone and spec.sandbox or nil }
   end
   return M.connect_spec(spec, password)
end

--- Connect with a spec from Target:connect_spec (in a worker process too).
-- @param password the password or nil
-- @return conn | nil, message, errno
function M.connect_spec(spec, password)
   if spec.sandbox then
      local s, err = require("myseal.sandbox").attach(spec.sandbox)
      if not s then return nil, err end
      local opts = spec.connect
      if opts and password then opts.password = password end
      return s:connect(opts)
   end
   local opts = {}
   for k, v in pairs(spec.connect) do opts[k] = v end
   opts.password = password
   return require("mysql").connect(opts)
end

--- How a client program logs in with a spec from Target:connect_spec: `{ socket | host, port, user,
-- password }` (a sandbox: its socket as root; a profile: its [connection], filled in from its
-- defaults_file's group where the profile does not say).
-- @param password the password or nil
-- @return options | nil, message
function M.client_options(spec, password)
   if spec.sandbox then
      local s, err = require("myseal.sandbox").attach(spec.sandbox)
      if not s then return nil, err end
      return { socket = s.socket, user = "root" }
   end
   local c = spec.connect
   local out = { host = c.host, port = c.port, socket = c.socket, user = c.user, password = password }
   if c.defaults_file then
      local doc, err = require("cnf").load(c.defaults_file)
      if not doc then return nil, err end
      for _, k in ipairs{ "host", "port", "socket", "user", "password" } do
         if out[k] == nil then out[k] = doc:get(c.defaults_group or "client", k) end
      end
   end
   return out
end

-- The lines of a text that hold one of `words`, joined.
local function lines_with(text, words)
   local out = {}
   for line in text:gmatch("[^\n]+") do
      for _, w in ipairs(words) do
         if line:find(w, 1, true) then
            out[#out + 1] = line
            break
         end
      end
   end
   return table.concat(out, "\n")
end

-- Where Debian and RHEL send a server's log when log_error is empty: syslog.
local SYSLOGS = { "/var/log/syslog", "/var/log/daemon.log", "/var/log/messages" }

--- The last lines of the server's own log, wherever it writes it: [server] error_log, the
-- server's log_error, else the system log (Debian's default), the server's lines only. Its
-- [ERROR] lines first; never other programs' output.
-- @param values resolved parameters
-- @param hint the server's log_error, read before the restart
-- @return text | nil
function Target.error_log(_, values, hint)
   local tail = require("myseal.sandbox").tail_lines
   local path = values["server.error_log"] or (hint ~= "" and hint or nil)
   local text = path and sys.read_file(path)
   if not text then
      for _, p in ipairs(SYSLOGS) do
         local all = sys.read_file(p)
         if all then
            -- a log that many programs write to: mariadbd's and mysqld's lines only
            text = lines_with(all:sub(-262144), { "mariadbd", "mysqld" })
            if text ~= "" then break end
         end
      end
   end
   if not text or text == "" then return nil end
   local errors_only = lines_with(text, { "[ERROR]" })
   return tail(errors_only ~= "" and errors_only or text, 10)
end

--- Wait until the server accepts connections again (after a restart command).
-- @param deadline sys.clock() value to give up at (default: start_timeout from now)
-- @return true | nil, message
function Target:wait_up(values, secrets, deadline)
   deadline = deadline or sys.clock() + values["server.start_timeout"]
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
   return nil, ("the server did not accept connections within %d s after the restart: %s"):format(
      values["server.start_timeout"], tostring(last))
end

--- Open a target.
-- @param opts `{ site = FILE, sandbox = NAME, describe = SERVER }` (site may go with either)
-- @return target | nil, message (a usage problem or a world failure)
function M.open(opts)
   local profile, err
   if opts.site then
      profile, err = M.read_profile(opts.site)
      if not profile then return nil, err end
   end
   if opts.sandbox and opts.describe then
      return nil, "--sandbox and --describe cannot go together"
   end
   local describe = opts.describe
   if not describe and not opts.sandbox and profile and profile.values["server.describe"] then
      describe = profile.values["server.describe"].value
   end
   local t
   if describe then
      t, err = require("myseal.engine.target.described").open(describe,
         not opts.describe and profile and profile.base or nil)
   elseif opts.sandbox then
      t, err = require("myseal.engine.target.sandbox").open(opts.sandbox)
   elseif opts.site then
      t, err = require("myseal.engine.target.site").open(opts.site, profile)
   else
      return nil, "name a target: --site FILE, --sandbox NAME or --describe SERVER"
   end
   if not t then return nil, err end
   -- the kind's own layer (a sandbox's paths) sits below the profile: a profile given too still wins
   t.layers[#t.layers + 1] = profile
   -- how a message names this target again on a command line
   local args = {}
   for _, k in ipairs{ "site", "sandbox", "describe" } do
      if opts[k] then args[#args + 1] = ("--%s %s"):format(k, opts[k]) end
   end
   t.args = table.concat(args, " ")
   if t.id then t.id = t.id:gsub("[^%w%._%-]", "_") end
   return t
end

return M
