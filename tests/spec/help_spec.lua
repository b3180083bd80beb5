-- Help everywhere: `myseal help [COMMAND [SUBCOMMAND]]`, and --help / -h after any command or
-- subcommand, print the same text and exit 0; `myseal help` lists every command; the options a
-- help text names are exactly those the command's argument parser declares.
local sys = require "sys"
local host = require "myseal.host"
local cli = require "myseal.cli"
local h = require "support.helpers"

-- The options a help text names (--help and -h, which every command takes, aside).
local function named(text)
   local out = {}
   for n in text:gmatch("%f[%-]%-%-(%a[%w%-]*)") do out["--" .. n] = true end
   for s in text:gmatch("[%s%[|]%-(%a)%f[%A]") do out["-" .. s] = true end
   out["--help"], out["-h"] = nil, nil
   return out
end

-- Runs myseal and expects a usage error (exit 2) with exactly this message.
local function usage_error(argv, message, opts)
   local r = h.myseal(argv, opts)
   assert.equal(2, r.status, table.concat(argv, " "))
   assert.equal("", r.stdout)
   assert.equal("myseal: " .. message .. "\n", r.stderr)
end

local function sorted(set)
   local out = {}
   for k in pairs(set) do out[#out + 1] = k end
   table.sort(out)
   return out
end

describe("help", function()
   it("is the same text from 'myseal help', --help and -h, for every command and subcommand", function()
      for _, words in ipairs(cli.topics()) do
         local label = table.concat(words, " ")
         local help = h.myseal{ "help", table.unpack(words) }
         assert.equal(0, help.status, label)
         assert.equal("", help.stderr, label)
         assert.matches("^usage: myseal " .. label:gsub("%p", "%%%0"), help.stdout)
         assert.equal(cli.command_help(words), help.stdout)
         if words[1] ~= "help" then
            for _, flag in ipairs{ "--help", "-h" } do
               local argv = { table.unpack(words) }
               argv[#argv + 1] = flag
               local r = h.myseal(argv)
               assert.equal(0, r.status, label .. " " .. flag .. ": " .. r.stderr)
               assert.equal("", r.stderr)
               assert.equal(help.stdout, r.stdout, label .. " " .. flag)
            end
         end
      end
      assert.equal(h.myseal{ "help", "help" }.stdout, h.myseal{ "help", "--help" }.stdout)
   end)

   it("is asked for anywhere among a command's options, but not as a value or after --", function()
      local text = cli.command_help{ "run" }
      local r = h.myseal{ "run", "at-rest", "--site", "/nonexistent.ini", "--set", "a.b=1", "-h" }
      assert.equal(0, r.status, r.stderr)
      assert.equal(text, r.stdout)
      r = h.myseal{ "sandbox", "stop", "no-such-sandbox", "--help" }
      assert.equal(0, r.status, r.stderr)
      assert.equal(cli.command_help{ "sandbox", "stop" }, r.stdout)
      usage_error({ "sandbox", "start", "--name", "--help" },
         "sandbox start: bad name '--help' (letters, digits, '-' and '_')")
      -- after --, and after a script's name, --help is an argument
      r = h.myseal({ "lua", "-", "--help", "-h" }, { stdin = "print(...)" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("--help\t-h\n", r.stdout)
      r = h.myseal{ "show", "--", "--help" }
      assert.equal(2, r.status)
      assert.matches("^myseal: show: no runbook '%-%-help' %(searched ", r.stderr)
   end)

   it("refuses an argument too many rather than ignore it", function()
      usage_error({ "plan", "at-rest", "in-transit", "--describe", "mysql-8.0" },
         "plan: 'in-transit' is one argument too many (one runbook at a time; try 'myseal help plan')")
      usage_error({ "run", "at-rest", "tls-enforce", "--sandbox", "no-such-sandbox", "--yes" },
         "run: 'tls-enforce' is one argument too many (one runbook at a time; try 'myseal help run')")
      usage_error({ "rollback", "at-rest", "x" },
         "rollback: 'x' is one argument too many (one runbook at a time; try 'myseal help rollback')")
      usage_error({ "show", "at-rest", "x" }, "show: 'x' is one argument too many (one runbook at a time; "
         .. "try 'myseal help show')")
      usage_error({ "list", "at-rest" }, "list: 'at-rest' is one argument too many (try 'myseal help list')")
      usage_error({ "check", "--sandbox", "no-such-sandbox", "x" },
         "check: 'x' is one argument too many (try 'myseal help check')")
      usage_error({ "demo", "x" }, "demo: 'x' is one argument too many (try 'myseal help demo')")
      usage_error({ "sandbox", "status", "x" }, "sandbox status: 'x' is one argument too many "
         .. "(try 'myseal help sandbox status')")
   end)

   it("lists every command, and says so when there is no such command or subcommand", function()
      local text = h.myseal{ "help" }.stdout
      assert.equal(text, h.myseal{ "--help" }.stdout)
      assert.equal(text, h.myseal{ "-h" }.stdout)
      local files = assert(sys.dir(host.lua_dir .. "/myseal/cmd"))
      local names = {}
      for _, f in ipairs(files) do
         local name = f:match("^(.+)%.lua$")
         if name then names[#names + 1] = name end
      end
      table.sort(names)
      local listed = {}
      for name in text:gmatch("\n  ([%w%-]+) +") do
         if name ~= "help" and name:sub(1, 1) ~= "-" then listed[#listed + 1] = name end
      end
      table.sort(listed)
      assert.same(names, listed)
      assert.truthy(text:find("\n  help       ", 1, true))
      usage_error({ "help", "nosuch" }, "unknown command 'nosuch' (try 'myseal --help')")
      usage_error({ "help", "sandbox", "nope" },
         "help: 'sandbox' has no subcommand 'nope' (start, status, restart, exec, stop)")
      usage_error({ "help", "run", "at-rest" }, "help: 'run' has no subcommand 'at-rest'")
      usage_error({ "help", "sandbox", "start", "x" },
         "help: one command and one subcommand at most (try 'myseal help sandbox')")
   end)

   it("names exactly the options each argument parser declares", function()
      for _, words in ipairs(cli.topics()) do
         local label = table.concat(words, " ")
         local text = cli.command_help(words)
         assert.same(sorted(cli.options(words)), sorted(named(text)), "myseal " .. label)
      end
      -- the check sees what it should: a declared option missing from a text is a difference
      assert.is_nil(named("usage: myseal x [--a]")["--b"])
      assert.same({ "--all", "--json", "-e" }, sorted(named("[--json] | --all, [-e CODE] read-only in-transit")))
   end)
end)
