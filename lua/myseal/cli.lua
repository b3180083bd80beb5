--- The command line: dispatches `myseal COMMAND ...` to lua/myseal/cmd/COMMAND.lua.
-- A command module returns { summary = "one line", usage = "myseal x ...",
-- help = "longer text", run = function(argv) return exit_status end }, and may have
-- subcommands = { { name = , summary = , usage = , help = }, ... } (`myseal sandbox start`).
-- `myseal help COMMAND [SUBCOMMAND]`, and --help or -h anywhere among a command's options
-- (args.parse sees them), print that command's help and exit 0. A run parses its arguments
-- (args.parse, or args.help for a parser of its own) before it does anything else: that is
-- how --help works, and how `M.options` (the help spec, the man page and the completion)
-- learns what it declares.
-- @module myseal.cli
local args = require "myseal.args"
local errors = require "myseal.errors"
local host = require "myseal.host"

local M = {}

-- The commands, in the order the help lists them; each has a module in lua/myseal/cmd.
M.commands = { "list", "show", "plan", "run", "rollback", "check", "sandbox", "demo", "lua" }

-- `help` itself, listed after the commands.
local HELP = {
   summary = "this list of commands, or the help of one command",
   usage = "myseal help [COMMAND [SUBCOMMAND]]",
   help = [[
The same text as 'myseal COMMAND [SUBCOMMAND] --help' (or -h) prints.]],
}

local function load_command(name)
   if name == "help" then return HELP end
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

--- The text printed by `myseal help` (and `myseal --help`, `myseal -h`).
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
   return table.concat(out, "\n") .. string.format("\n  %-10s %s\n", "help", HELP.summary) .. [[

options:
  --help, -h  this text; after a command, that command's help (as 'myseal help COMMAND')
  --version   versions of myseal, Lua, the client library and OpenSSL

Exit status: 0 done, 1 a step failed, 2 bad usage or bad input.
]]
end

--- The help text of a command or subcommand.
-- @param words `{ "sandbox", "start" }`, `{ "run" }`, or `{}` for the list of commands
-- @return text (raises a usage error for an unknown command or subcommand)
function M.command_help(words)
   local name, sub = words[1], words[2]
   if name == nil then return M.help() end
   local entry = load_command(name)
   if not entry then errors.usage("unknown command '%s' (try 'myseal --help')", tostring(name)) end
   if sub ~= nil then
      local cmd, names = entry, {}
      entry = nil
      for _, s in ipairs(cmd.subcommands or {}) do
         names[#names + 1] = s.name
         if s.name == sub then entry = s end
      end
      if not entry then
         errors.usage("help: '%s' has no subcommand '%s'%s", name, sub,
            #names > 0 and (" (" .. table.concat(names, ", ") .. ")") or "")
      end
   end
   if words[3] ~= nil then
      errors.usage("help: one command and one subcommand at most (try 'myseal help %s')", name)
   end
   local text = "usage: " .. entry.usage .. "\n\n" .. entry.summary .. "\n"
   if entry.help then text = text .. "\n" .. entry.help .. "\n" end
   return text
end

--- Every command and subcommand, as the words that name them, in the order the help lists
-- them: `{ { "list" }, ..., { "sandbox" }, { "sandbox", "start" }, ..., { "help" } }`.
-- @return list of word lists
function M.topics()
   local out = {}
   for _, name in ipairs(M.commands) do
      local cmd = load_command(name)
      if cmd then
         out[#out + 1] = { name }
         for _, sub in ipairs(cmd.subcommands or {}) do out[#out + 1] = { name, sub.name } end
      end
   end
   out[#out + 1] = { "help" }
   return out
end

--- The options a command or subcommand declares to its argument parser, found by asking its
-- run for --help: the request carries the declarations (a command with subcommands has theirs
-- together). `--help` and `-h`, which every command takes, are not among them.
-- @param words `{ "sandbox", "start" }`
-- @return `{ ["--site"] = "value", ["--json"] = "flag", ["-e"] = "value", ... }`
function M.options(words)
   local cmd = words[1] ~= "help" and load_command(words[1])
   if not cmd then return {} end
   if cmd.subcommands and not words[2] then
      local all = {}
      for _, sub in ipairs(cmd.subcommands) do
         for name, kind in pairs(M.options{ words[1], sub.name }) do all[name] = kind end
      end
      return all
   end
   local argv = table.move(words, 2, #words, 1, {})
   argv[#argv + 1] = "--help"
   local ok, e = pcall(cmd.run, argv)
   local request = not ok and args.help_request(e)
   if not request or request.command ~= table.concat(words, " ") then
      error(("%s: its run did not ask for help: %s"):format(table.concat(words, " "), tostring(e)), 2)
   end
   local spec, out = request.spec, {}
   for list, kind in pairs{ flags = "flag", options = "value", multi = "value" } do
      for _, n in ipairs(spec[list] or {}) do out["--" .. n:gsub("_", "-")] = kind end
   end
   -- a short option is the option it stands for, or one with a value of its own (lua's -e)
   for s, long in pairs(spec.short or {}) do out["-" .. s] = out["--" .. long] or "value" end
   return out
end

local function words(s)
   local out = {}
   for w in s:gmatch("%S+") do out[#out + 1] = w end
   return out
end

-- The message handler of a command's run: a help request and expected failures (tables)
-- go through as they are; anything else is a bug and gets its traceback here, where it
-- happened, as the host would give it.
local function handler(e)
   if type(e) == "table" then return e end
   return { message = debug.traceback(tostring(e), 2), exit = 1 }
end

--- Entry point called by the host with the command-line arguments.
-- @return the process exit status
function M.main(argv)
   local name = argv[1]
   local rest = table.move(argv, 2, #argv, 1, {})
   local asks_help = rest[1] == "--help" or rest[1] == "-h"
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
      io.stdout:write(M.command_help(asks_help and { "help" } or rest))
      return 0
   end
   if name:sub(1, 1) == "-" then errors.usage("unknown option '%s' (try 'myseal --help')", name) end
   local cmd = load_command(name)
   if not cmd then errors.usage("unknown command '%s' (try 'myseal --help')", name) end
   if asks_help then
      io.stdout:write(M.command_help{ name })
      return 0
   end
   local ok, status = xpcall(cmd.run, handler, rest)
   if not ok then
      local request = args.help_request(status)
      if not request then error(status, 0) end
      io.stdout:write(M.command_help(words(request.command)))
      return 0
   end
   io.stdout:flush()
   return math.tointeger(status) or 0
end

return M
