--- The command line: dispatches `myseal COMMAND ...` to lua/myseal/cmd/COMMAND.lua.
-- A command module returns { summary = "one line", usage = "myseal x ...",
-- help = "longer text", run = function(argv) return exit_status end }.
-- @module myseal.cli
local errors = require "myseal.errors"
local host = require "myseal.host"

local M = {}

-- Every command name DESIGN.md reserves, in the order --help lists them.
-- Only those with a module in lua/myseal/cmd are offered.
M.commands = { "list", "show", "plan", "run", "rollback", "check", "sandbox", "demo", "lua" }

local function load_command(name)
   for _, n in ipairs(M.commands) do
      if n == name and package.searchpath("myseal.cmd." .. name, package.path) then
         return require("myseal.cmd." .. name)
      end
   end
   return nil
end

--- The version banner printed by `myseal --version`.
function M.version()
   return string.format("myseal %s\n%s\nclient library: %s\n%s\n",
      host.version, host.lua, host.client, host.openssl)
end

--- The text printed by `myseal --help`.
function M.help()
   local out = {
      "usage: myseal COMMAND [OPTIONS] [ARGS]",
      "",
      "Encrypts a MySQL or MariaDB deployment at rest and in transit, with scripted,",
      "repeatable, verifiable runbooks.",
      "",
      "commands:",
   }
   for _, name in ipairs(M.commands) do
      local cmd = load_command(name)
      if cmd then out[#out + 1] = string.format("  %-10s %s", name, cmd.summary) end
   end
   out[#out + 1] = ""
   out[#out + 1] = "options:"
   out[#out + 1] = "  --help     this text; 'myseal help COMMAND' for one command"
   out[#out + 1] = "  --version  versions of myseal, Lua, the client library and OpenSSL"
   out[#out + 1] = ""
   out[#out + 1] = "Exit status: 0 done, 1 a step failed, 2 bad usage or bad input."
   return table.concat(out, "\n") .. "\n"
end

local function command_help(name)
   local cmd = load_command(name)
   if not cmd then
      errors.usage("unknown command '%s' (try 'myseal --help')", tostring(name))
   end
   io.stdout:write("usage: ", cmd.usage, "\n\n", cmd.summary, "\n")
   if cmd.help then io.stdout:write("\n", cmd.help, "\n") end
   return 0
end

--- Entry point called by the host with the command-line arguments.
-- @return the process exit status
function M.main(argv)
   local name = argv[1]
   if name == nil then
      io.stderr:write(M.help())
      return 2
   elseif name == "--help" or name == "-h" then
      io.stdout:write(M.help())
      return 0
   elseif name == "--version" then
      io.stdout:write(M.version())
      return 0
   elseif name == "help" then
      if argv[2] == nil then
         io.stdout:write(M.help())
         return 0
      end
      return command_help(argv[2])
   end
   if name:sub(1, 1) == "-" then
      errors.usage("unknown option '%s' (try 'myseal --help')", name)
   end
   local cmd = load_command(name)
   if not cmd then
      errors.usage("unknown command '%s' (try 'myseal --help')", name)
   end
   local rest = table.move(argv, 2, #argv, 1, {})
   if rest[1] == "--help" or rest[1] == "-h" then return command_help(name) end
   local status = cmd.run(rest)
   io.stdout:flush()
   return math.tointeger(status) or 0
end

return M
