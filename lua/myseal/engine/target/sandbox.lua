--- A sandbox: a disposable server of myseal.sandbox, reached and restarted through it; the
-- runbooks' files (keyring, certificates) go beside its datadir.
-- @module myseal.engine.target.sandbox
local target = require "myseal.engine.target"

local Sandbox = target.class("myseal.SandboxTarget")

local M = {}

--- The target of a running sandbox.
-- @return target | nil, message
function M.open(name)
   local s, err = require("myseal.sandbox").attach(name)
   if not s then return nil, err end
   return setmetatable({
      sandbox = s,
      label = "sandbox " .. name,
      id = "sandbox-" .. name,
      layers = { { label = "sandbox " .. name, values = {
         ["server.cnf"] = { value = s.cnf }, ["server.datadir"] = { value = s.datadir },
         ["server.user"] = { value = s.user or require("sys").user().name },
         ["server.error_log"] = { value = s.log },
      } } },
   }, Sandbox)
end

function Sandbox:connect_spec()
   return { sandbox = self.sandbox.name }
end

function Sandbox:address()
   return self.sandbox.host, self.sandbox.port
end

--- Beside the sandbox's datadir: `<dir>/keyring`, `<dir>/tls-myseal`.
function Sandbox:default_dir(what)
   return self.sandbox.dir .. "/" .. (what == "tls" and "tls-myseal" or what)
end

function Sandbox:server_key()
   return self.sandbox.dir
end

function Sandbox:restart_how()
   return "restart sandbox " .. self.sandbox.name
end

function Sandbox:restart()
   return self.sandbox:restart()
end

function Sandbox:error_log()
   return self.sandbox:error_log(20)
end

return M
