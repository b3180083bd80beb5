-- The Debian package. cpack builds it from the build tree of the myseal running this spec;
-- dpkg installs it into a throwaway root whose package database is a copy of this machine's
-- (so dpkg checks the declared dependencies against what is installed here). Each command of
-- the installed copy then runs in a private mount namespace where that root's /usr is laid
-- over the machine's (the package's files where it puts them, the machine's libraries, server
-- and JDK beside them) and the source tree is hidden. Nothing of the machine changes.
local sys = require "sys"
local host = require "myseal.host"
local cli = require "myseal.cli"

local function run(argv)
   local r = assert(sys.run(argv))
   assert(r.ok, table.concat(argv, " ") .. ": " .. r.stdout .. r.stderr)
   return r
end

describe("the Debian package", function()
   local dir, deb, root
   setup(function()
      dir = assert(sys.tmpdir("myseal-package"))
      local build = host.exe:match("^(.*)/[^/]+$")
      assert(sys.stat(build .. "/CPackConfig.cmake"), host.exe .. " is not in a configured build tree")
      run{ "cpack", "-G", "DEB", "-B", dir .. "/out", "--config", build .. "/CPackConfig.cmake", timeout = 300 }
      local arch = run{ "dpkg", "--print-architecture" }.stdout:match("%S+")
      deb = ("%s/out/myseal_%s_%s.deb"):format(dir, host.version, arch)
      assert(sys.stat(deb), "no " .. deb)
      root = dir .. "/root"
      assert(sys.mkdir(root .. "/var/lib/dpkg/info"))
      assert(sys.mkdir(root .. "/var/lib/dpkg/updates"))
      assert(sys.copy_file("/var/lib/dpkg/status", root .. "/var/lib/dpkg/status"))
      assert(sys.write_file(root .. "/var/lib/dpkg/available", ""))
   end)
   teardown(function()
      sys.rmtree(dir)
   end)

   -- argv run in the namespace, from /, as the installed copy sees the world
   local function installed(argv, opts)
      local t = { "unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t overlay overlay -o "lowerdir=$1/usr:/usr" /usr && mount -t tmpfs tmpfs "$2" && cd / && '
            .. 'shift 2 && exec "$@"', "sh", root, host.home, timeout = 300 }
      table.move(argv, 1, #argv, #t + 1, t)
      for k, v in pairs(opts or {}) do t[k] = v end
      return assert(sys.run(t))
   end

   it("installs with dpkg, its dependencies met by this machine and declared for every library", function()
      local r = run{ "dpkg", "--root=" .. root, "-i", deb }
      assert.matches("Setting up myseal %(" .. host.version:gsub("%p", "%%%0") .. "%)", r.stdout)
      local files = run{ "dpkg", "--root=" .. root, "-L", "myseal" }.stdout
      for _, f in ipairs{ "/usr/bin/myseal", "/usr/share/myseal/lua/myseal/cli.lua",
            "/usr/share/myseal/runbooks/at-rest.lua", "/usr/share/myseal/lua/myseal/java/JdbcProbe.java",
            "/usr/share/doc/myseal/examples/site.example.ini", "/usr/share/doc/myseal/copyright",
            "/usr/share/doc/myseal/changelog.gz", "/usr/share/man/man1/myseal.1.gz",
            "/usr/share/bash-completion/completions/myseal" } do
         assert.truthy(files:find("\n" .. f .. "\n", 1, true), f .. " is not in the package")
      end
      assert.is_nil(files:find("/usr/share/myseal/runbooks/site.example.ini", 1, true))
      assert.equal(tonumber("755", 8), sys.stat(root .. "/usr/bin/myseal").mode & tonumber("7777", 8))
      -- every shared library the binary needs comes from a package it depends on
      local depends = run{ "dpkg-deb", "-f", deb, "Depends" }.stdout
      local declared = {}
      for name in depends:gmatch("([%w%.+-]+)[^,]*") do declared[name] = true end
      assert.truthy(declared.openssl, "openssl (runbooks run openssl enc) is not a dependency: " .. depends)
      local needed = run{ "objdump", "-p", root .. "/usr/bin/myseal" }.stdout
      local n = 0
      for lib in needed:gmatch("NEEDED%s+(%S+)") do
         n = n + 1
         local path = run{ "sh", "-c", 'ldconfig -p | awk -v lib="$1" \'$1 == lib { print $NF; exit }\'', "sh", lib }
            .stdout:match("%S+")
         assert(path, "ldconfig knows no " .. lib)
         -- /lib is /usr/lib (merged /usr): dpkg knows each file under one of the two names
         local owner
         for _, p in ipairs{ path, "/usr" .. path } do
            local q = assert(sys.run{ "dpkg", "-S", p })
            owner = owner or (q.ok and q.stdout:match("^([^:]+):"))
         end
         assert.truthy(declared[owner], ("%s (%s, from %s) is not in Depends: %s"):format(lib, path, owner, depends))
      end
      assert.is_true(n >= 4)
      assert.is_nil(needed:find("liblua", 1, true))   -- Lua is linked in
   end)

   it("runs from the installed copy alone: its home, its help, the demo", function()
      local r = installed{ "myseal", "lua", "-e",
         'local h = require "myseal.host" print(h.home, h.exe, h.runbooks_dir)' }
      assert.equal("", r.stderr)
      assert.equal("/usr/share/myseal\t/usr/bin/myseal\t/usr/share/myseal/runbooks\n", r.stdout)
      r = installed{ "myseal", "list" }
      assert.matches("^app%-tomcat +.-%[stock%]\n", r.stdout)
      r = installed{ "sh", "-c", "test -e \"$1\" || echo hidden", "sh", host.home .. "/lua" }
      assert.equal("hidden\n", r.stdout)
      assert.equal(cli.command_help{ "sandbox", "start" }, installed{ "myseal", "sandbox", "start", "--help" }.stdout)
      r = installed{ "myseal", "demo", "--report", dir .. "/report.html" }
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("%[5/6%] check after %(green%): %d+ ok, 0 warnings, 0 failures", r.stdout)
      assert.matches("demo done in %d+ s: the sandbox is stopped\n$", r.stdout)
      assert.truthy(sys.stat(dir .. "/report.html"))
   end)

   it("has the man page of every command and subcommand, and bash completion", function()
      local r = installed({ "man", "--warnings", "myseal" }, { env = { MANWIDTH = "80", PATH = os.getenv("PATH"),
                                                                          MANPAGER = "cat", LC_ALL = "C" } })
      assert.equal(0, r.status, r.stderr)
      assert.equal("", r.stderr)
      local page = r.stdout:gsub("%s+", " ")
      for _, words in ipairs(cli.topics()) do
         local text = cli.command_help(words)
         assert.truthy(page:find(" " .. table.concat(words, " ") .. " myseal " .. table.concat(words, " "), 1, true),
            "no section for " .. table.concat(words, " "))
         local summary = text:match("^usage: .-\n\n(.-)\n")
         assert.truthy(page:find(summary:gsub("%s+", " "), 1, true), summary)
      end
      -- completion, from the script as bash loads it
      local function complete(...)
         local script = 'source /usr/share/bash-completion/completions/myseal; compopt() { :; }; '
            .. 'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _myseal; printf "%s\\n" "${COMPREPLY[@]}"'
         local out = installed{ "bash", "-c", script, "bash", "myseal", ... }
         assert.equal("", out.stderr)
         local words = {}
         for w in out.stdout:gmatch("%S+") do words[#words + 1] = w end
         table.sort(words)
         return words
      end
      local commands = {}
      for _, name in ipairs(cli.commands) do commands[#commands + 1] = name end
      for _, w in ipairs{ "--help", "--version", "-h", "help" } do commands[#commands + 1] = w end
      table.sort(commands)
      assert.same(commands, complete(""))
      assert.same({ "exec", "restart", "start", "status", "stop" }, complete("sandbox", ""))
      local stock = {}
      for _, e in ipairs(require("myseal.runbook").list({ host.runbooks_dir })) do stock[#stock + 1] = e.name end
      table.sort(stock)
      assert.is_true(#stock >= 7)
      assert.same(stock, complete("plan", ""))
      local plan = { "-h", "--help" }
      for name in pairs(cli.options{ "plan" }) do plan[#plan + 1] = name end
      table.sort(plan)
      assert.same(plan, complete("plan", "at-rest", "--site", "x.ini", "-"))
      assert.same({ "--from" }, complete("plan", "at-rest", "--fr"))
      assert.same({ "keyring.backup_dir=" }, complete("run", "at-rest", "--set", "keyring.backup_d"))
      assert.same({ "accounts." }, complete("run", "in-transit", "--set", "acc"))
      assert.same({ "html", "json", "prometheus", "text" }, complete("check", "--format", ""))
   end)

   it("has no lintian errors or warnings", function()
      local r = assert(sys.run{ "lintian", "--fail-on", "error,warning", deb, timeout = 300 })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.is_nil(r.stdout:match("\n?[EW]: "), r.stdout)
   end)
end)
