--- A site: a server named by a profile, reached with [connection] and restarted with [server]
-- restart_command, systemd_unit or windows_service.
-- @module myseal.engine.target.site
local sys = require "sys"
local target = require "myseal.engine.target"

local Site = target.class("myseal.SiteTarget")

local M = {}

--- The site target of a profile.
-- @param path the profile
-- @param layer its parameter layer
function M.open(path, layer)
   local name = layer.values["site.name"] and layer.values["site.name"].value
   local base = path:match("([^/\\]+)$"):gsub("%.[^.]*$", "")
   return setmetatable({
      layers = {},
      -- the hash tells apart profiles with the same file name
      id = name and ("site-" .. name) or ("site-%s-%s"):format(base, target.hash(sys.realpath(path) or path)),
      label = "site " .. (name or base),
   }, Site)
end

function Site.connect_spec(_, values, secrets)
   local password
   local source = values["connection.password"]
   if source or require("myseal.engine.secrets").offered("connection.password") then
      local err
      password, err = secrets:get("connection.password", source)
      if not password then return nil, err end
   end
   local tls
   local mode = values["connection.tls_mode"]
   if (mode == "verify_ca" or mode == "verify_identity") and not values["connection.tls_ca"] then
      return nil, ("[connection] tls_mode = %s needs tls_ca, the CA certificate to verify the server with"):format(mode)
   end
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

-- The commands that restart the server, or nil, message.
local function restart_commands(values)
   local cmd = values["server.restart_command"]
   if cmd then
      local argv, err = target.split_command(cmd)
      if not argv then return nil, ("[server] restart_command: %s"):format(err) end
      return { argv }, "run " .. cmd
   elseif values["server.systemd_unit"] then
      local unit = values["server.systemd_unit"]
      return { { "systemctl", "restart", unit } }, "systemctl restart " .. unit
   elseif values["server.windows_service"] then
      local svc = values["server.windows_service"]
      return { { "net", "stop", svc }, { "net", "start", svc } },
         ("net stop %s, then net start %s"):format(svc, svc)
   end
   return nil, "no way to restart the server: set restart_command, systemd_unit or windows_service in [server]"
end

--- How a server with these parameters is restarted, in words (for plan), or nil, message.
-- @param values resolved parameters
-- @return text | nil, message
function M.restart_how(values)
   local commands, how = restart_commands(values)
   if not commands then return nil, how end
   return how
end

function Site.restart_how(_, values)
   return M.restart_how(values)
end

--- Restart the server and wait until it accepts connections: the whole within
-- [server] start_timeout. Ctrl-C stops the command: nil, message, "interrupted".
-- @param values resolved parameters
-- @param secrets the run's secrets
-- @param log_hint the server's log_error, for the message when it does not come back
-- @return true | nil, message[, "interrupted"]
function Site:restart(values, secrets, log_hint)
   local commands, err = restart_commands(values)
   if not commands then return nil, err end
   local tail_lines = require("myseal.sandbox").tail_lines
   local function with_log(msg)
      local log = self:error_log(values, log_hint)
      if log then msg = msg .. "\nthe server's log ends:\n" .. log end
      return nil, msg
   end
   local timeout = values["server.start_timeout"]
   local deadline = sys.clock() + timeout
   for _, argv in ipairs(commands) do
      local spec = table.move(argv, 1, #argv, 1, { timeout = math.max(1, deadline - sys.clock()) })
      local r, rerr, code = sys.run(spec)
      if not r and code == sys.errno.EINTR then return nil, rerr, "interrupted" end
      if not r then return with_log(rerr) end
      if not r.ok then
         -- the last lines: an init script may print pages
         local out = tail_lines((r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", ""), 5)
         return with_log(("'%s' failed (%s)%s"):format(table.concat(argv, " "),
            r.status and ("exit status " .. r.status) or ("signal " .. tostring(r.signal)),
            out ~= "" and (": " .. out) or ""))
      end
   end
   local ok, werr = self:wait_up(values, secrets, deadline)
   if not ok then return with_log(werr) end
   return true
end

return M
