-- myseal.runbook: definitions, extend, loading, the runbook environment, parameters, and the
-- list and show commands. No server.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local support = require "support.engine"
local runbook = require "myseal.runbook"
local engine = require "myseal.engine"
local target = require "myseal.engine.target"

local FIX = support.FIXTURES .. "/runbooks"
local THIS = debug.getinfo(1, "S").short_src

local function step(name, extra)
   local s = { name = name, check = function() return true end }
   for k, v in pairs(extra or {}) do s[k] = v end
   return s
end

local function names(rb)
   return table.concat(rb:step_names(), " ")
end

-- the line of the caller, for messages that name the author's line
local function here() return debug.getinfo(2, "l").currentline end

describe("runbook", function()
   describe("new", function()
      it("keeps steps in order with their source", function()
         local rb = runbook.new{ name = "r", summary = "s", steps = { step("a"), step("b", { apply = function() end }) } }
         assert.equal("a b", names(rb))
         assert.matches("runbook_spec%.lua:%d+$", rb:step("b").source)
         assert.is_nil(rb:step("c"))
      end)
      it("names the author's line in a definition mistake", function()
         local line
         local ok, err = pcall(function()
            line = here() + 1
            runbook.new{ name = "r", summary = "s", steps = { { name = "a", check = true } } }
         end)
         assert.is_false(ok)
         assert.equal(("%s:%d: runbook r: step 'a': check must be a function, not a boolean"):format(THIS, line), err)
      end)
      it("rejects every kind of bad definition with its own message", function()
         local cases = {
            { { name = "r", summary = "s", steps = {} }, "runbook r: steps must be a non-empty list" },
            { { name = "r", summary = "s", steps = { { name = "a" } } }, "runbook r: step 'a' needs check, apply or both" },
            { { name = "r", summary = "s", steps = { step("a"), step("a") } }, "runbook r: two steps are named 'a'" },
            { { name = "r", summary = "s", steps = { step("a", { chek = print }) } },
              "runbook r: step 'a' has an unknown field 'chek'" },
            { { name = "r", summary = "s", steps = { step("a b") } },
              "runbook r: step 'a b' needs a name of letters, digits, '-' and '_' (a story's: part/step)" },
            { { name = "r", summary = "s", steps = { step("a") }, needs = "in-transit" },
              "runbook r: needs must be a list of runbook names" },
            { { name = "r", summary = "s", steps = { step("a") }, stpes = {} }, "runbook r: unknown field 'stpes'" },
            { { name = "r", summary = "", steps = { step("a") } }, "runbook r: summary must be a one-line string" },
            { { name = "r", summary = "s", steps = { step("a") }, params = { ["x"] = { type = "string", doc = "d" } } },
              "runbook r: parameter x must be named section.key" },
            { { name = "r", summary = "s", steps = { step("a") }, params = { ["x.y"] = { type = "text", doc = "d" } } },
              "runbook r: parameter x.y: type must be one of string, path, integer, number, boolean, list, enum, "
              .. "secret, map" },
            { { name = "r", summary = "s", steps = { step("a") }, params = { ["x.y"] = { type = "string" } } },
              "runbook r: parameter x.y needs doc, one line of documentation" },
            { { name = "r", summary = "s", steps = { step("a") },
                params = { ["x.y"] = { type = "integer", doc = "d", default = "ten" } } },
              "runbook r: default of x.y must be an integer, not 'ten'" },
            { { name = "r", summary = "s", steps = { step("a") }, dialect = { oracle = {} } },
              "runbook r: dialect 'oracle' is not one of base, mysql, mysql-5.7, mysql-8.0, mysql-8.4, mariadb, "
              .. "mariadb-10, mariadb-11" },
         }
         for _, c in ipairs(cases) do
            local ok, err = pcall(runbook.new, c[1])
            assert.is_false(ok)
            assert.equal(c[2], err:gsub("^[^:]+:%d+: ", ""))
         end
      end)
   end)

   describe("compose", function()
      local ENFORCE = { "tls-enforce/preflight", "tls-enforce/require-transport", "tls-enforce/accounts",
                        "tls-enforce/watch", "tls-enforce/verify" }
      local function story(steps, extra)
         local def = { name = "s", summary = "a story", parts = { "tls-enforce" }, steps = steps }
         for k, v in pairs(extra or {}) do def[k] = v end
         return pcall(runbook.compose, def)
      end
      it("makes one runbook of its parts' steps, named part/step, with steps of its own between them", function()
         local steps = { table.unpack(ENFORCE) }
         table.insert(steps, 2, { name = "announce", apply = function() end })
         local ok, rb = story(steps)
         assert.is_true(ok, rb)
         assert.same({ "tls-enforce/preflight", "announce", "tls-enforce/require-transport", "tls-enforce/accounts",
                       "tls-enforce/watch", "tls-enforce/verify" }, rb:step_names())
         assert.truthy(rb.params["tls.watch_seconds"])
         assert.same({ "tls-enforce" }, rb.parts)
      end)
      it("refuses a story that leaves a part's step out, names a step a part lacks, or a part it lacks", function()
         local ok, err = story{ "tls-enforce/preflight" }
         assert.is_false(ok)
         assert.matches("runbook s: the story leaves out step tls%-enforce/require%-transport: list it in steps$", err)
         ok, err = story{ "tls-enforce/preflight", "tls-enforce/nosuch" }
         assert.is_false(ok)
         assert.matches("runbook s: step 2: tls%-enforce has no step 'nosuch' %(steps: preflight, require%-transport, "
            .. "accounts, watch, verify%)$", err)
         ok, err = story{ "at-rest/preflight" }
         assert.is_false(ok)
         assert.matches("runbook s: step 1 %(at%-rest/preflight%): no part at%-rest$", err)
      end)
   end)

   describe("extend", function()
      local base = runbook.new{
         name = "base", summary = "base summary",
         params = { ["p.color"] = { type = "string", default = "red", doc = "a color" } },
         steps = { step("one", { doc = "first" }), step("two", { apply = function() return "base two" end }),
                   step("three") },
      }
      it("replaces fields of a step, and adds steps before and after others", function()
         local new_apply = function() return "site two" end
         local rb = base:extend{
            name = "site",
            replace = { two = { apply = new_apply, doc = "site's two" } },
            before = { one = step("zero"), three = { step("two-b"), step("two-c") } },
            after = { three = step("four") },
         }
         assert.equal("zero one two two-b two-c three four", names(rb))
         assert.equal(new_apply, rb:step("two").apply)
         assert.equal("site's two", rb:step("two").doc)
         assert.equal("base summary", rb.summary)
         assert.equal(base, rb.base)
         -- the base is untouched
         assert.equal("one two three", names(base))
         assert.equal("base two", base:step("two").apply())
      end)
      it("removes steps and fields, and changes defaults", function()
         local rb = base:extend{ remove = { "one" }, replace = { two = { apply = false } },
                                 defaults = { ["p.color"] = "blue" },
                                 params = { ["p.size"] = { type = "integer", default = 3, doc = "a size" } } }
         assert.equal("two three", names(rb))
         assert.is_nil(rb:step("two").apply)
         assert.equal("blue", rb.params["p.color"].default)
         assert.equal(3, rb.params["p.size"].default)
         assert.equal("red", base.params["p.color"].default)
      end)
      it("names the missing step and the author's line", function()
         local line
         local ok, err = pcall(function()
            line = here() + 1
            base:extend{ after = { thre = step("x") } }
         end)
         assert.is_false(ok)
         assert.equal(("%s:%d: runbook base: after: no step 'thre' (steps: one, two, three)"):format(THIS, line), err)
         local cases = {
            { { replace = { one = { name = "uno" } } }, "runbook base: replace.one cannot rename the step" },
            { { defaults = { ["p.colour"] = "x" } }, "runbook base: defaults: no parameter p.colour" },
            { { params = { ["p.color"] = { type = "string", doc = "again" } } },
              "runbook base: parameter p.color is already declared by base" },
            { { after = { one = step("two") } }, "runbook base: two steps are named 'two'" },
            { { rename = "x" }, "runbook base: extend: unknown field 'rename'" },
         }
         for _, c in ipairs(cases) do
            local ok2, err2 = pcall(base.extend, base, c[1])
            assert.is_false(ok2)
            assert.equal(c[2], err2:gsub("^[^:]+:%d+: ", ""))
         end
      end)
   end)

   describe("load", function()
      local path = { FIX .. "/site", FIX .. "/stock" }
      it("searches site directories first; a site file extends the stock one of its name", function()
         local rb = runbook.load("base", path)
         assert.equal(FIX .. "/site/base.lua", rb.file)
         assert.equal(FIX .. "/stock/base.lua", rb.base.file)
         assert.equal("the site's base", rb.summary)
         assert.equal("one two three four", names(rb))
         assert.equal("the site's two", rb:step("two").doc)
         assert.equal("blue", rb.params["base.color"].default)
         assert.equal(FIX .. "/stock/base.lua", runbook.load("base", { FIX .. "/stock" }).file)
      end)
      it("fails loudly at the line of an undefined global", function()
         local ok, err = pcall(runbook.load, "typo", path)
         assert.is_false(ok)
         assert.equal(FIX .. "/site/typo.lua:8: undefined global 'strng'", err)
      end)
      it("raises for a missing runbook and for a file that returns no runbook", function()
         local ok, err = pcall(runbook.load, "nope", path)
         assert.is_false(ok)
         assert.equal(("no runbook 'nope' in %s/site, %s/stock"):format(FIX, FIX), err:gsub("^[^:]+:%d+: ", ""))
         ok, err = pcall(runbook.load, "not-a-runbook", path)
         assert.equal(FIX .. "/site/not-a-runbook.lua: must return a runbook (runbook.new{...} or base:extend{...}), "
            .. "not a table", err)
      end)
      it("gives runbooks an environment where undefined globals raise, read or written", function()
         local env = runbook.environment()
         assert.equal(string, env.string)
         assert.equal(require("myseal.atrest"), env.require("myseal.atrest"))
         assert.equal(require("pki"), env.require("pki"))
         for _, name in ipairs{ "mysql", "myseal.engine.guard", "myseal.sandbox", "debug" } do
            assert.has_error(function() env.require(name) end, ("module '%s' is not available to runbooks "
               .. "(myseal.* library modules, pki, cnf, keystore, sys)"):format(name))
         end
         assert.has_error(function() return env.prnt end, "undefined global 'prnt'")
         assert.has_error(function() env.x = 1 end, "assignment to undefined global 'x' (use local)")
         assert.has_error(function() return env.print end, "undefined global 'print'")
      end)
      it("lists each name once, site first", function()
         local list = runbook.list(path)
         local seen = {}
         for _, e in ipairs(list) do seen[#seen + 1] = e.name .. "@" .. e.file:match("([^/]+)/[^/]+$") end
         assert.same({ "base@site", "not-a-runbook@site", "typo@site" }, seen)
      end)
   end)

   describe("parameters", function()
      local rb = runbook.new{
         name = "p", summary = "s", steps = { step("a") },
         params = {
            ["x.name"] = { type = "string", default = "default", doc = "d" },
            ["x.count"] = { type = "integer", default = 1, doc = "d" },
            ["x.flag"] = { type = "boolean", default = false, doc = "d" },
            ["x.names"] = { type = "list", doc = "d" },
            ["x.where"] = { type = "path", doc = "d" },
            ["x.mode"] = { type = "enum", values = { "fast", "safe" }, default = "safe", doc = "d" },
            ["x.key"] = { type = "secret", doc = "d" },
            ["accounts"] = { type = "map", doc = "d" },
         },
      }
      local dir, profile
      before_each(function()
         dir = assert(sys.tmpdir("runbook-spec"))
         profile = support.profile(dir, "[x]\nname = profile\ncount = 7\nflag = yes\nnames = a, b ,c\nwhere = rel/dir\n"
            .. "key = env:MY_KEY\n[accounts]\napp@% = x509\nreport@localhost = ssl\n")
      end)
      after_each(function() sys.rmtree(dir) end)

      it("takes declared defaults, then the profile, then --set", function()
         local t = assert(target.open{ site = profile, describe = "mariadb-10.11" })
         local _, v, origin = engine.resolve(rb, nil, {})
         assert.same({ "default", 1, false, "safe" }, { v["x.name"], v["x.count"], v["x.flag"], v["x.mode"] })
         _, v, origin = engine.resolve(rb, t, {})
         assert.same({ "profile", 7, true, { "a", "b", "c" } }, { v["x.name"], v["x.count"], v["x.flag"], v["x.names"] })
         assert.equal(sys.realpath(dir) .. "/rel/dir", v["x.where"])
         assert.equal("env:MY_KEY", v["x.key"])
         assert.same({ ["app@%"] = "x509", ["report@localhost"] = "ssl" }, v["accounts"])
         assert.equal(profile .. ":3", origin["x.count"])
         _, v, origin = engine.resolve(rb, t, { "x.count=9", "x.mode=fast", "accounts.app@%=ssl", "x.where=/abs" })
         assert.same({ 9, "fast", "ssl", "/abs" }, { v["x.count"], v["x.mode"], v["accounts"]["app@%"], v["x.where"] })
         assert.equal("--set x.count", origin["x.count"])
         assert.equal("mysql", v["server.user"])   -- myseal's own parameters are there too
      end)
      it("refuses bad values and unknown names with usage errors", function()
         local cases = {
            { "x.count=many", "x.count must be an integer, not 'many'" },
            { "x.flag=maybe", "x.flag must be a boolean (true/false, yes/no, on/off, 1/0), not 'maybe'" },
            { "x.mode=slow", "x.mode must be one of fast, safe, not 'slow'" },
            { "x.key=hunter2", "x.key must be where the secret comes from: env:NAME, file:PATH or prompt "
              .. "(never the secret itself)" },
            { "x.where=false", "x.where must be a path (to leave it unset, leave the line out), not 'false'" },
            { "x.where=None", "x.where must be a path (to leave it unset, leave the line out), not 'None'" },
            { "x.nmae=a", "--set: no parameter x.nmae in this runbook" },
            { "nodot", "--set nodot: write --set section.key=value" },
         }
         for _, c in ipairs(cases) do
            local ok, err = pcall(engine.resolve, rb, nil, { c[1] })
            assert.is_false(ok)
            assert.equal(2, err.exit)
            assert.equal(c[2], err.message:gsub("^%-%-set x%.%w+: ", ""))
         end
      end)
      it("refuses an integer outside its range: a TCP port, a timeout", function()
         for _, c in ipairs{
            { "connection.port=99999", "connection.port must be an integer from 1 to 65535, not '99999'" },
            { "connection.port=0", "connection.port must be an integer from 1 to 65535, not '0'" },
            { "connection.connect_timeout=-1", "connection.connect_timeout must be an integer from 1 to 65535, "
              .. "not '-1'" },
            { "server.start_timeout=0", "server.start_timeout must be an integer of at least 1, not '0'" },
         } do
            local ok, err = pcall(engine.resolve, rb, nil, { c[1] })
            assert.is_false(ok)
            assert.equal(2, err.exit)
            assert.equal("--set " .. c[1]:match("^[^=]+") .. ": " .. c[2], err.message)
         end
         local _, v = engine.resolve(rb, nil, { "connection.port=65535", "server.start_timeout=1" })
         assert.same({ 65535, 1 }, { v["connection.port"], v["server.start_timeout"] })
         assert.has_error(function()
            runbook.new{ name = "r", summary = "s", steps = { step("a") },
                         params = { ["x.y"] = { type = "string", min = 1, doc = "d" } } }
         end, "runbook r: parameter x.y: min and max are for integer and number parameters")
      end)
      it("says which key is missing when [connection] tls_mode verifies without tls_ca", function()
         for _, mode in ipairs{ "verify_ca", "verify_identity" } do
            assert(sys.write_file(profile, ("[connection]\nhost = 127.0.0.1\ntls_mode = %s\n"):format(mode)))
            local t = assert(target.open{ site = profile })
            local _, v = engine.resolve(rb, t, {})
            assert.same({ nil, ("[connection] tls_mode = %s needs tls_ca, the CA certificate to verify the server "
               .. "with"):format(mode) }, { t:connect(v, require("myseal.engine.secrets").new()) })
         end
      end)
      it("never shows a secret written where its source goes", function()
         sys.write_file(profile, "[x]\nkey = hunter2's\n")
         local t = assert(target.open{ site = profile, describe = "mariadb-10.11" })
         local ok, err = pcall(engine.resolve, rb, t, {})
         assert.is_false(ok)
         assert.equal(2, err.exit)
         assert.equal(profile .. ":2: x.key must be where the secret comes from: env:NAME, file:PATH or prompt "
            .. "(never the secret itself)", err.message)
      end)
      it("refuses a key myseal does not know in its own sections, [server], [connection] and [site]", function()
         for _, c in ipairs{
            { "[connection]\nsokcet = /run/mysqld/mysqld.sock\n", "[connection] has no key sokcet (its keys: "
              .. "connect_timeout, defaults_file, defaults_group, host, password, port, socket, tls_ca, tls_cert, "
              .. "tls_key, tls_mode, user)" },
            { "[server]\ncnf = /etc/mysql/my.cnf\nhost = db1\n", "[server] has no key host (its keys: cnf, datadir, "
              .. "describe, error_log, restart_command, start_timeout, systemd_unit, user, windows_service)" },
         } do
            assert(sys.write_file(profile, "[x]\nname = n\n" .. c[1]))
            local t = assert(target.open{ site = profile, describe = "mariadb-10.11" })
            local ok, err = pcall(engine.resolve, rb, t, {})
            assert.is_false(ok)
            assert.equal(2, err.exit)
            assert.equal(("%s:%d: %s"):format(profile, select(2, c[1]:gsub("\n", "")) + 2, c[2]), err.message)
         end
         -- '-' for '_' is the same key; the runbook's own sections may hold what another runbook reads
         assert(sys.write_file(profile, "[server]\nstart-timeout = 5\n[x]\nfor_another_runbook = 1\n"))
         local _, v = engine.resolve(rb, assert(target.open{ site = profile, describe = "mariadb-10.11" }), {})
         assert.equal(5, v["server.start_timeout"])
      end)
      it("refuses an !include in a profile, whose keys would go unread", function()
         assert(sys.write_file(profile, "[server]\ndescribe = mariadb-10.11\n  !include common.ini\n"))
         assert.same({ nil, profile .. ":3: !include: a site profile is one file (myseal reads no include); "
            .. "put those keys in it" }, { target.open{ site = profile } })
         assert(sys.write_file(profile, "!includedir /etc/myseal/site.d\n"))
         assert.same({ nil, profile .. ":1: !includedir: a site profile is one file (myseal reads no include); "
            .. "put those keys in it" }, { target.open{ site = profile } })
      end)
      it("gives steps a read-only view that raises for undeclared names", function()
         local params = require "myseal.engine.params"
         local decls, v = engine.resolve(rb, nil, { "x.count=4" })
         local p = params.view(decls, v)
         assert.equal(4, p.x.count)
         assert.equal("mysql", p.server.user)
         assert.same({}, p.accounts)
         assert.has_error(function() return p.x.cuont end, "no parameter x.cuont is declared (declared: x.count, "
            .. "x.flag, x.key, x.mode, x.name, x.names, x.where)")
         assert.has_error(function() return p.y.z end, "no parameter section 'y' is declared")
         assert.has_error(function() p.x.count = 1 end, "parameters are read-only")
      end)
   end)

   describe("commands", function()
      local env = {}
      it("list shows site runbooks before stock ones, and broken ones", function()
         local r = support.myseal({ "list", "--runbooks", FIX .. "/site", "--runbooks", FIX .. "/stock" }, env)
         assert.is_true(r.ok)
         -- one line each, by name; the stock runbooks are listed too
         assert.matches("\nbase +the site's base  %[site " .. FIX:gsub("%p", "%%%0") .. "/site/base%.lua%]\n",
            "\n" .. r.stdout)
         assert.matches("\ntypo +BROKEN: " .. FIX:gsub("%p", "%%%0") .. "/site/typo%.lua:8: undefined global 'strng'", r.stdout)
      end)
      it("show lists steps and parameters with type, default and doc", function()
         local r = support.myseal({ "show", "base", "--runbooks", FIX .. "/site", "--runbooks", FIX .. "/stock" }, env)
         assert.equal("", r.stderr)
         assert.matches("^base: the site's base\nfile: .-/site/base%.lua\nextends: base %(.-/stock/base%.lua%)\n", r.stdout)
         assert.matches("\n   1%. one +the one step\n      check  %(", r.stdout)
         assert.matches("\n   4%. four +\n      check  %(.-/site/base%.lua:8%)", r.stdout)
         assert.matches("\n  %[base%]\n    color +string; default blue\n        a color\n", r.stdout)
         assert.matches("\n    sizes +list; default s, m\n        sizes\n", r.stdout)
         r = support.myseal({ "show", "base", "--runbooks", FIX .. "/site", "--runbooks", FIX .. "/stock", "--all" }, env)
         assert.matches("\n  %[server%]\n", r.stdout)
      end)
      it("show --json is one object", function()
         local r = support.myseal({ "show", FIX .. "/stock/base.lua", "--json", "--describe", "mysql-8.0",
                                    "--set", "base.color=green" }, env)
         local v = assert(require("myseal.json").decode(r.stdout))
         assert.same({ "base", "color", "green", "--set base.color" },
            { v.name, v.params[1].name:match("%.(.+)"), v.params[1].value, v.params[1].origin })
      end)
      it("names an unknown runbook with exit status 2", function()
         local r = support.myseal({ "plan", "nope", "--describe", "mysql-8.0", "--runbooks", FIX .. "/site" }, env)
         assert.equal(2, r.status)
         assert.equal(("myseal: plan: no runbook 'nope' (searched %s/site, %s)\n"):format(FIX, host.runbooks_dir), r.stderr)
         r = support.myseal({ "plan", "base" }, env)
         assert.equal("myseal: plan: name a target: --site FILE, --sandbox NAME or --describe SERVER\n", r.stderr)
      end)
      it("refuses a runbook directory that is not there, so a site's runbook is never replaced by stock", function()
         local dir = assert(sys.tmpdir("runbook-spec"))
         local profile = support.profile(dir, "[server]\ndescribe = mysql-8.0\n[site]\nrunbooks = site-runbooks\n")
         for _, cmd in ipairs{ "list", "show", "plan" } do
            local argv = { cmd, "at-rest", "--site", profile }
            if cmd == "list" then table.remove(argv, 2) end
            local r = support.myseal(argv, env)
            assert.equal(2, r.status)
            assert.equal(("myseal: %s: %s:4: [site] runbooks: %s/site-runbooks: No such file or directory\n")
               :format(cmd, profile, sys.realpath(dir)), r.stderr)
         end
         local r = support.myseal({ "plan", "at-rest", "--describe", "mysql-8.0", "--runbooks", profile }, env)
         assert.equal(2, r.status)
         assert.equal(("myseal: plan: --runbooks %s: not a directory\n"):format(profile), r.stderr)
         sys.rmtree(dir)
      end)
   end)
end)

describe("the Lua sources", function()
   it("keep their lines within 120 columns (lua/, runbooks/)", function()
      local r = assert(sys.run{ "find", host.home .. "/lua", host.home .. "/runbooks", "-name", "*.lua" })
      local long = {}
      for path in r.stdout:gmatch("[^\n]+") do
         local n = 0
         for line in io.lines(path) do
            n = n + 1
            if utf8.len(line) and utf8.len(line) > 120 then long[#long + 1] = ("%s:%d"):format(path, n) end
         end
      end
      assert.same({}, long)
   end)
end)
