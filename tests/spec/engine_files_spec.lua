-- The engine end to end through the command line, on a site profile and a runbook that only
-- touches files (tests/fixtures/runbooks/engine-files.lua): plan, run, resume, rollback,
-- secrets, errors. The server side is in engine_server_spec.lua.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local support = require "support.engine"
local json = require "myseal.json"

local RUNBOOK = support.FIXTURES .. "/runbooks/engine-files.lua"
local TOKEN = "s3cr3t-'token\"value"

-- the line of the runbook that holds `text`
local function line_of(text)
   local n = 0
   for line in io.lines(RUNBOOK) do
      n = n + 1
      if line:find(text, 1, true) then return n end
   end
end

describe("engine on files", function()
   local dir, state, work, site, env
   before_each(function()
      dir = assert(sys.tmpdir("engine-files"))
      state, work = dir .. "/state", dir .. "/work"
      assert(sys.mkdir(work))
      site = support.profile(dir, ("[site]\nname = files\n[test]\ndir = %s\n"):format(work))
      env = { MYSEAL_STATE_DIR = state, MYSEAL_SECRET_TEST_TOKEN = TOKEN }
   end)
   after_each(function() sys.rmtree(dir) end)

   local function myseal(...)
      return support.myseal({ ... }, env)
   end

   it("plan changes nothing and shows every effect in order", function()
      local before = support.snapshot(dir)
      local r = myseal("plan", RUNBOOK, "--site", site)
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.same(before, support.snapshot(dir))
      local out = r.stdout
      assert.matches("^plan: engine%-files on site files\n", out)
      assert.matches("%[1/4%] greeting +to do\n      create " .. work:gsub("%p", "%%%0") .. "/greeting.txt\n", out)
      assert.matches("%+hello\n", out)
      assert.matches("create directory .-/slow %(0750%)", out)
      assert.matches("create .-/slow/5%.txt", out)
      assert.matches("%(%d+ bytes, content not shown%)", out)            -- token.conf is 0600
      assert.matches("run: sh %-c 'cat > \"%$0\"' .-/token%.log", out)
      assert.matches("%[4/4%] mistake +skipped", out)
      assert.matches("plan: 3 steps to do, 0 already done%. Nothing was changed%.\n$", out)
      assert.is_nil(out:find(TOKEN, 1, true))
   end)

   it("runs, says so, and a second run has nothing to do", function()
      local r = myseal("run", RUNBOOK, "--site", site, "--yes")
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.matches("%[1/4%] greeting +changed", r.stdout)
      assert.matches("run: done, 3 steps changed, 0 already done", r.stdout)
      assert.equal("hello\n", sys.read_file(work .. "/greeting.txt"))
      assert.equal("token=" .. TOKEN .. "\n", sys.read_file(work .. "/token.conf"))
      assert.equal(tonumber("600", 8), sys.stat(work .. "/token.conf").mode)
      assert.equal(tonumber("750", 8), sys.stat(work .. "/slow").mode)
      local snap = support.snapshot(work)
      r = myseal("run", RUNBOOK, "--site", site, "--yes")
      assert.is_true(r.ok)
      assert.matches("run: nothing to do; every step was already done", r.stdout)
      assert.matches("%[1/4%] greeting +already done", r.stdout)
      assert.same(snap, support.snapshot(work))
   end)

   it("journals every effect, and a killed run resumes where it stopped", function()
      local cmd = { support.MYSEAL, "run", RUNBOOK, "--site", site, "--yes", "--set", "test.count=40",
                    "--set", "test.delay=0.05", env = env, log = dir .. "/log" }
      local pid = assert(sys.spawn(cmd))
      local journal
      assert.is_true(support.wait_for(function()
         journal = support.journals(state, "site-files", "engine-files")[1]
         if not journal then return false end
         return #support.select(support.events(journal), "effect", "step", "slow") >= 6
      end))
      assert(sys.kill(pid, "KILL"))
      assert.is_true(support.wait_for(function() return not sys.alive(pid) end))
      local events = support.events(journal)
      assert.equal(0, #support.select(events, "end"))
      local journaled = #support.select(events, "effect", "step", "slow")  -- the mkdir and files
      -- an effect is journaled before it happens: the kill may fall between the two
      local on_disk = 0
      for i = 1, 40 do if sys.stat(("%s/slow/%d.txt"):format(work, i)) then on_disk = on_disk + 1 end end
      assert.is_true(on_disk == journaled - 1 or on_disk == journaled - 2)
      assert.is_nil(sys.stat(work .. "/slow/40.txt"))

      -- a plain run refuses: the last one did not finish
      local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--set", "test.count=40")
      assert.is_false(r.ok)
      assert.equal(1, r.status)
      assert.equal(("myseal: the last run of engine-files on site files did not finish (interrupted in step "
         .. "slow; journal %s): continue it with 'myseal run engine-files --site %s --resume', or undo it with "
         .. "'myseal rollback engine-files --site %s'\n"):format(journal, site, site), r.stderr)

      r = myseal("run", RUNBOOK, "--site", site, "--yes", "--resume", "--set", "test.count=40")
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.matches("%[1/4%] greeting +already done: done in the run this one continues", r.stdout)
      assert.matches("%[2/4%] slow +changed", r.stdout)
      for i = 1, 40 do assert.equal(i .. "\n", sys.read_file(("%s/slow/%d.txt"):format(work, i))) end
      events = support.events(journal)
      assert.equal(1, #support.select(events, "resume"))
      assert.same({ "ok" }, { support.select(events, "end")[1].status })
      -- the files written before the kill were not written again
      local slow = support.select(events, "effect", "step", "slow")
      assert.equal(journaled + (40 - on_disk), #slow)  -- before the kill, then what was not on disk
   end)

   it("stops at the next effect on Ctrl-C and leaves a resumable journal", function()
      local pid = assert(sys.spawn{ support.MYSEAL, "run", RUNBOOK, "--site", site, "--yes", "--set", "test.count=200",
                                    "--set", "test.delay=0.02", env = env, log = dir .. "/log" })
      assert.is_true(support.wait_for(function() return sys.stat(work .. "/slow/3.txt") ~= nil end))
      assert(sys.kill(pid, "INT"))
      assert.is_true(support.wait_for(function() return not sys.alive(pid) end))
      local log = sys.read_file(dir .. "/log")
      assert.matches("myseal: interrupted in step slow, between two changes; continue with 'myseal run engine%-files "
         .. "%-%-site " .. site:gsub("%p", "%%%0") .. " %-%-resume'\n$", log)
      local journal = support.journals(state, "site-files", "engine-files")[1]
      local ends = support.select(support.events(journal), "end")
      assert.equal("interrupted", ends[1].status)
      assert.is_nil(sys.stat(work .. "/slow/200.txt"))
      local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--resume", "--set", "test.count=200")
      assert.is_true(r.ok)
      assert.truthy(sys.stat(work .. "/slow/200.txt"))
   end)

   it("holds one run per target at a time", function()
      local pid = assert(sys.spawn{ support.MYSEAL, "run", RUNBOOK, "--site", site, "--yes", "--set", "test.count=100",
                                    "--set", "test.delay=0.05", env = env, log = dir .. "/log" })
      assert.is_true(support.wait_for(function() return sys.stat(work .. "/slow/1.txt") ~= nil end))
      local r = myseal("run", RUNBOOK, "--site", site, "--yes")
      assert.equal(1, r.status)
      assert.equal(("myseal: site files is busy: %s/targets/site-files/lock is held by process %d\n"):format(state, pid),
         r.stderr)
      sys.kill(pid, "KILL")
      support.wait_for(function() return not sys.alive(pid) end)
   end)

   it("masks a secret in each form an XML attribute gives it, whichever quote the attribute has", function()
      local xmledit = require "myseal.xmledit"
      local secrets = require("myseal.engine.secrets").new()
      local pw = "a\"b'c>d&e<f\tg"
      secrets:add(pw)
      for _, quote in ipairs{ '"', "'" } do
         local doc = xmledit.set(("<Resource password=%sx%s/>"):format(quote, quote),
            { element = "Resource", attribute = "password", value = pw })
         assert.equal(("<Resource password=%s***%s/>"):format(quote, quote), secrets:redact(doc))
      end
   end)

   it("never shows a secret given by environment: output, --json, journal", function()
      local plain = myseal("run", RUNBOOK, "--site", site, "--yes", "--verbose")
      assert.is_true(plain.ok)
      assert.matches("the token is %*%*%*", plain.stdout)
      sys.rmtree(work)
      sys.mkdir(work)
      sys.rmtree(state)
      local js = myseal("run", RUNBOOK, "--site", site, "--yes", "--json")
      assert.is_true(js.ok)
      local plan = myseal("plan", RUNBOOK, "--site", site, "--json", "--set", "test.greeting=other")
      local journal = assert(sys.read_file(support.journals(state, "site-files", "engine-files")[1]))
      for _, text in ipairs{ plain.stdout, plain.stderr, js.stdout, js.stderr, plan.stdout, plan.stderr, journal } do
         assert.is_nil(text:find(TOKEN, 1, true))
         assert.is_nil(text:find("s3cr3t", 1, true))
      end
      local logs = {}
      for line in js.stdout:gmatch("[^\n]+") do
         local ev = assert(json.decode(line))
         if ev.event == "log" then logs[#logs + 1] = ev.message end
      end
      assert.same({ "the token is ***" }, logs)
      -- the command got the secret on its standard input
      assert.equal("token=" .. TOKEN .. "\n", sys.read_file(work .. "/token.log"))
   end)

   it("prints one JSON event per line with --json", function()
      local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--json")
      assert.is_true(r.ok)
      local kinds, states, progress = {}, {}, {}
      for line in r.stdout:gmatch("[^\n]+") do
         local ev = assert(json.decode(line))
         kinds[ev.event] = (kinds[ev.event] or 0) + 1
         if ev.event == "progress" then progress[#progress + 1] = ev end
         if ev.event == "step" and ev.state ~= "start" then states[ev.step] = ev.state end
      end
      assert.same({ greeting = "changed", slow = "changed", token = "changed", mistake = "skipped" }, states)
      assert.equal(1, kinds.run)
      assert.equal(1, kinds.result)
      -- progress: the first and the last at least, at most two a second
      assert.is_true(#progress >= 2 and #progress <= 5)
      assert.same({ 5, 5, "files" }, { progress[#progress].done, progress[#progress].total, progress[#progress].label })
      local last = json.decode(r.stdout:match("([^\n]+)\n$"))
      assert.same({ "result", "ok", 3 }, { last.event, last.status, last.changed })
   end)

   it("rolls back the files of the last run", function()
      assert.is_true(sys.write_file(work .. "/greeting.txt", "before\n", { mode = tonumber("640", 8) }))
      local before = support.snapshot(work)
      assert.is_true(myseal("run", RUNBOOK, "--site", site, "--yes").ok)
      assert.equal("hello\n", sys.read_file(work .. "/greeting.txt"))
      local r = myseal("rollback", RUNBOOK, "--site", site, "--yes")
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.matches("rollback: done, 3 steps rolled back", r.stdout)
      local after = support.snapshot(work)
      for name in pairs(after) do
         if name:match("%.bak$") then after[name] = nil end   -- the backups stay
      end
      assert.same(before, after)
      r = myseal("rollback", RUNBOOK, "--site", site, "--yes")
      assert.matches("no run of engine%-files on site files to roll back", r.stdout)
      -- with --json too, the last line is the result, as a program reading it waits for
      r = myseal("rollback", RUNBOOK, "--site", site, "--yes", "--json")
      assert.is_true(r.ok)
      local last = json.decode(r.stdout:match("([^\n]+)\n$"))
      assert.same({ "result", "ok", 0 }, { last.event, last.status, last.changed })
   end)

   it("runs one step with --only and the rest with --from", function()
      local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--only", "slow")
      assert.is_true(r.ok)
      assert.matches("^run: engine%-files on site files\n%[1/1%] slow +changed", r.stdout)
      assert.is_nil(sys.stat(work .. "/greeting.txt"))
      r = myseal("run", RUNBOOK, "--site", site, "--yes", "--from", "slow")
      assert.matches("%[1/3%] slow +already done", r.stdout)
      assert.is_nil(sys.stat(work .. "/greeting.txt"))
      r = myseal("plan", RUNBOOK, "--site", site, "--only", "nope")
      assert.equal(2, r.status)
      assert.equal("myseal: runbook engine-files has no step 'nope' (steps: greeting, slow, token, mistake)\n", r.stderr)
   end)

   describe("reports a mistake with runbook, step and line", function()
      local function failing(mistake)
         local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--set", "test.mistake=" .. mistake)
         assert.equal(1, r.status)
         return r
      end
      it("an undefined global", function()
         local r = failing("global")
         assert.equal(("myseal: runbook engine-files, step mistake (%s:%d): undefined global 'greeting_typo'\n")
            :format(RUNBOOK, line_of("return greeting_typo")), r.stderr)
         assert.matches("%[4/4%] mistake +FAILED", r.stdout)
         assert.matches("run: failed %(journal: ", r.stdout)
      end)
      it("a secret in a command's arguments", function()
         local r = failing("argv")
         assert.equal(("myseal: runbook engine-files, step mistake (%s:%d): ctx:run: argument 2 holds a secret; "
            .. "pass secrets through stdin or env\n"):format(RUNBOOK, line_of('ctx:run{ "echo"')), r.stderr)
      end)
      it("ctx:fail", function()
         local r = failing("fail")
         assert.equal(("myseal: runbook engine-files, step mistake (%s:%d): the mistake step gave up\n")
            :format(RUNBOOK, line_of("ctx:fail(")), r.stderr)
      end)
      it("a verify that says no", function()
         local r = failing("verify")
         assert.equal("myseal: runbook engine-files, step mistake: verify failed: the greeting is not there\n",
            r.stderr)
      end)
   end)

   describe("on a terminal", function()
      -- `script` gives the command a pseudo-terminal and types our stdin into it
      local function in_pty(cmdline, input, extra_env)
         local e = {}
         for k, v in pairs(env) do e[k] = v end
         for k, v in pairs(extra_env or {}) do e[k] = v or nil end
         return assert(sys.run{ "sh", "-c", input .. ' | script -q -c "$0" /dev/null', cmdline, env = e, timeout = 60 })
      end
      local function cmd(...)
         local words = { support.MYSEAL }
         for _, a in ipairs{ ... } do words[#words + 1] = "'" .. a .. "'" end
         return table.concat(words, " ")
      end

      it("shows the plan and asks before it changes anything", function()
         local r = in_pty(cmd("run", RUNBOOK, "--site", site), "printf 'n\\n'")
         assert.matches("plan: 3 steps to do, 0 already done%. Nothing was changed%.\r\nApply these changes to "
            .. "site files%? %[y/N%] ", r.stdout)
         assert.matches("myseal: run: not confirmed; nothing was changed", r.stdout)
         assert.same({}, support.snapshot(work))
         r = in_pty(cmd("run", RUNBOOK, "--site", site, "--set", "test.count=3", "--set", "test.delay=0.1"),
            "printf 'y\\n'")
         assert.matches("run: done, 3 steps changed", r.stdout)
         -- the progress bar of the slow step, drawn over itself
         assert.matches("\r\27%[K      %[########################%] 100%%  3/3 files", r.stdout)
         assert.equal("hello\n", sys.read_file(work .. "/greeting.txt"))
      end)

      it("asks for a secret that has no source, without echoing it", function()
         local r = in_pty(cmd("run", RUNBOOK, "--site", site, "--yes"), "(sleep 0.5; printf 'Pr0mpted-S3cret\\n')",
            { MYSEAL_SECRET_TEST_TOKEN = false })
         assert.matches("test%.token: ", r.stdout)
         assert.matches("run: done, 3 steps changed", r.stdout)
         assert.is_nil(r.stdout:find("Pr0mpted", 1, true))
         assert.equal("token=Pr0mpted-S3cret\n", sys.read_file(work .. "/token.conf"))
      end)
   end)

   it("reads a secret from the file the profile names: its first line", function()
      assert(sys.write_file(dir .. "/token", "from-a-file\r\nsecond line\n", { mode = tonumber("600", 8) }))
      env.MYSEAL_SECRET_TEST_TOKEN = nil
      local r = myseal("run", RUNBOOK, "--site", site, "--yes", "--set", "test.token=file:" .. dir .. "/token")
      assert.equal("", r.stderr)
      assert.equal("token=from-a-file\n", sys.read_file(work .. "/token.conf"))
      sys.rmtree(work)
      sys.mkdir(work)
      -- in the profile, file:PATH is relative to the profile's directory, as paths are
      local relative = dir .. "/relative.ini"
      assert(sys.write_file(relative, sys.read_file(site) .. "token = file:token\n"))
      r = myseal("run", RUNBOOK, "--site", relative, "--yes")
      assert.equal("", r.stderr)
      assert.equal("token=from-a-file\n", sys.read_file(work .. "/token.conf"))
      sys.rmtree(work)
      sys.mkdir(work)
      r = myseal("run", RUNBOOK, "--site", site, "--yes", "--set", "test.token=env:NOT_SET_ANYWHERE")
      assert.equal(2, r.status)
      assert.equal(("myseal: runbook engine-files, step token (%s:%d): secret test.token: environment variable "
         .. "NOT_SET_ANYWHERE is not set\n"):format(RUNBOOK, line_of('.. ctx:secret("test.token")')), r.stderr)
      sys.rmtree(state)
      r = myseal("run", RUNBOOK, "--site", site, "--yes")
      assert.equal(2, r.status)
      assert.matches("secret test%.token is not given: set MYSEAL_SECRET_TEST_TOKEN, or token = env:VAR | file:PATH "
         .. "| prompt in %[test%] of the site profile, or give it with %-%-secrets%-stdin\n$", r.stderr)
   end)

   it("takes secrets on standard input with --secrets-stdin, and refuses what is not a JSON object of them", function()
      env.MYSEAL_SECRET_TEST_TOKEN = nil
      local stdin = require("myseal.json").encode{ ["test.token"] = TOKEN, ["other.unused"] = "x" }
      local r = support.myseal({ "run", RUNBOOK, "--site", site, "--yes", "--secrets-stdin", "--verbose" }, env, stdin)
      assert.equal("", r.stderr)
      assert.equal("token=" .. TOKEN .. "\n", sys.read_file(work .. "/token.conf"))
      assert.matches("the token is %*%*%*", r.stdout)
      assert.is_nil(r.stdout:find(TOKEN, 1, true))
      for _, case in ipairs{
         { "[1, 2]", "plan: --secrets-stdin: standard input is not a JSON object of secrets" },
         { '{"test.token": ', "plan: --secrets-stdin: standard input is not a JSON object of secrets (invalid JSON" },
         { '{"token": "v"}', "plan: --secrets-stdin: 'token' is not a parameter name (section.key)" },
         { '{"test.token": 7}', "plan: --secrets-stdin: test.token is not a string" },
      } do
         r = support.myseal({ "plan", RUNBOOK, "--site", site, "--secrets-stdin" }, env, case[1])
         assert.equal(2, r.status, case[1])
         assert.equal("myseal: " .. case[2], r.stderr:sub(1, #case[2] + 8), case[1])
      end
      -- on a terminal (script gives the command one) it does not wait for what would be typed in clear
      r = assert(sys.run{ "script", "-qec", ("%q plan %q --site %q --secrets-stdin"):format(support.MYSEAL,
         RUNBOOK, site), "/dev/null", env = env, stdin = "", timeout = 30 })
      assert.equal(2, r.status, r.stdout)
      assert.matches("myseal: plan: %-%-secrets%-stdin reads one JSON object from standard input, which is a "
         .. "terminal here", r.stdout)
   end)

   it("passes no secret's variable on to the programs a step runs", function()
      -- a step that runs before the secret is read, and writes what its program's environment holds
      local rb = dir .. "/env-dump.lua"
      assert(sys.write_file(rb, ([[
local runbook = require "myseal.runbook"
return runbook.new {
   name = "env-dump", summary = "writes the environment of a program it runs",
   params = { ["test.dir"] = { type = "path", required = true, doc = "where" },
              ["test.token"] = { type = "secret", doc = "a secret" },
              ["test.other"] = { type = "secret", doc = "another" } },
   steps = { { name = "dump", doc = "env.txt",
      check = function(ctx) return ctx:exists(ctx.params.test.dir .. "/env.txt") end,
      apply = function(ctx)
         ctx:run{ "sh", "-c", 'env > "$0"', ctx.params.test.dir .. "/env.txt" }
         assert(ctx:secret("test.token") ~= "" and ctx:secret("test.other") ~= "")
      end } },
}
]]):format()))
      env.SITE_TOKEN_VAR = "from-the-site-variable"
      env.MYSEAL_SECRET_TEST_OTHER = "from-myseal-secret"
      local r = myseal("run", rb, "--site", site, "--yes", "--set", "test.token=env:SITE_TOKEN_VAR")
      assert.is_true(r.ok, r.stderr)
      local dumped = assert(sys.read_file(work .. "/env.txt"))
      assert.matches("\nMYSEAL_STATE_DIR=", "\n" .. dumped)       -- the rest of the environment is there
      assert.is_nil(dumped:find("from-the-site-variable", 1, true))
      assert.is_nil(dumped:find("from-myseal-secret", 1, true))
      assert.is_nil(dumped:find(TOKEN, 1, true))
   end)

   it("fails a step whose file is there but cannot be read, rather than plan to create it", function()
      assert(sys.mkdir(work .. "/greeting.txt"))
      local line = line_of('ctx:write_file(path(ctx, "greeting.txt")')
      for _, argv in ipairs{ { "plan" }, { "run", "--yes" } } do
         local r = myseal(argv[1], RUNBOOK, "--site", site, "--only", "greeting", argv[2])
         assert.equal(1, r.status)
         assert.matches("%[1/1%] greeting +FAILED", r.stdout)
         assert.equal(("myseal: runbook engine-files, step greeting (%s:%d): %s/greeting.txt: Is a directory\n")
            :format(RUNBOOK, line, work), r.stderr)
      end
      assert.equal("directory", sys.stat(work .. "/greeting.txt").type)
   end)

   it("refuses to run without --yes when there is no terminal", function()
      local r = myseal("run", RUNBOOK, "--site", site)
      assert.equal(2, r.status)
      assert.equal("myseal: run changes site files: confirm with --yes (there is no terminal to ask on)\n", r.stderr)
      assert.same({}, support.snapshot(work))
   end)
end)
