--- `myseal lua`: a Lua 5.4 interpreter with myseal's modules (busted runs under it).
local errors = require "myseal.errors"

local M = {
   summary = "run a Lua script with myseal's modules (sys, mysql, pki, cnf, keystore)",
   usage = "myseal lua [-e CODE]... [FILE | -] [ARGS...]",
   help = [==[
Runs FILE (or standard input with '-') with the arguments in the global 'arg',
as the 'lua' interpreter does: arg[0] is FILE, arg[1..n] the ARGS. Each
-e CODE runs first, in order. The modules are loaded with require, for example
  myseal lua -e 'print(require("sys").platform())'
busted runs inside the host with:  myseal lua /usr/bin/busted [busted options]]==],
}

function M.run(argv)
   local chunks = {}
   local i = 1
   while i <= #argv do
      local a = argv[i]
      if a == "-e" then
         if argv[i + 1] == nil then errors.usage("lua: -e needs a piece of code") end
         chunks[#chunks + 1] = argv[i + 1]
         i = i + 2
      elseif a == "--help" or a == "-h" then
         -- the one option this loop reads: -e CODE, repeatable (a short option of its own)
         require("myseal.args").help("lua", { short = { e = "-e" } })
      elseif a == "--" then
         i = i + 1
         break
      elseif a:sub(1, 1) == "-" and a ~= "-" then
         errors.usage("lua: unknown option '%s' (try 'myseal help lua')", a)
      else
         break
      end
   end
   for _, code in ipairs(chunks) do
      local fn, err = load(code, "=(command line)")
      if not fn then errors.usage("lua: %s", err) end
      _G.arg = { [0] = "-e" }
      fn()
   end
   local script = argv[i]
   if script == nil then
      if #chunks > 0 then return 0 end
      errors.usage("lua: a FILE, '-' or -e CODE is needed (try 'myseal help lua')")
   end
   local args = { [0] = script, [-1] = "myseal lua" }
   table.move(argv, i + 1, #argv, 1, args)
   _G.arg = args
   local fn, err = loadfile(script ~= "-" and script or nil)
   if not fn then
      -- a missing or unparsable script is bad input, not a bug in myseal
      errors.usage("lua: %s", err)
   end
   fn(table.unpack(args, 1, #args))
   return 0
end

return M
