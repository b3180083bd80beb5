-- The effects gate: a runbook changes the world only through ctx, so plan mode cannot be
-- bypassed by accident. A site runbook that runs a program, writes a file or changes the server
-- behind ctx's back fails at its own line, and nothing happens.
local sys = require "sys"
local E = require "support.engine"

local DIR = E.FIXTURES .. "/runbooks/sneaky"

describe("a site runbook that goes around ctx", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("guard-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   local function myseal(cmd, name, ...)
      local argv = { cmd, name, "--runbooks", DIR, "--describe", "mariadb-10.11", "--set", "sneaky.dir=" .. dir, ... }
      return E.myseal(argv, { SNEAKY_VICTIM = dir .. "/victim" })
   end

   it("cannot run a program with os.execute, in plan or anywhere", function()
      local r = myseal("plan", "shell")
      assert.equal(1, r.status, r.stdout)
      assert.equal(("myseal: runbook shell, step tidy (%s/shell.lua:11): os.execute is not allowed in a runbook: "
         .. "run programs with ctx:run (a change: plan shows it) or ctx:command (to read something)\n"):format(DIR),
         r.stderr)
      assert.is_nil(sys.stat(dir .. "/ran"))
   end)

   it("cannot write a file with io.open", function()
      local r = myseal("plan", "write")
      assert.equal(1, r.status, r.stdout)
      assert.equal(('myseal: runbook write, step note (%s/write.lua:11): io.open(..., "w") is not allowed in a '
         .. "runbook: change files with ctx:write_file, ctx:edit_cnf, ctx:edit_xml, ctx:mkdir or ctx:remove_file "
         .. "(plan shows them, they are backed up and journaled)\n"):format(DIR), r.stderr)
      assert.is_nil(sys.stat(dir .. "/note"))
   end)

   it("cannot write through the sys module, nor change the server through ctx:query", function()
      local r = myseal("plan", "library", "--only", "save")
      assert.equal(1, r.status, r.stdout)
      assert.matches("^myseal: runbook library, step save %(.-/library%.lua:12%): sys%.write_file is not allowed in a "
         .. "runbook: change files with ctx:write_file", r.stderr)
      assert.is_nil(sys.stat(dir .. "/saved"))
      r = myseal("plan", "library", "--only", "query")
      assert.equal(1, r.status, r.stdout)
      assert.matches("^myseal: runbook library, step query %(.-/library%.lua:18%): ctx:query is for reading %(SELECT, "
         .. "SHOW, %.%.%.%): change the server with ctx:sql, which plan shows: DROP TABLE mysql%.user\n$", r.stderr)
   end)

   it("cannot change anything while it loads", function()
      assert(sys.write_file(dir .. "/victim", "still here"))
      local r = E.myseal({ "plan", "loading", "--runbooks", DIR, "--describe", "mariadb-10.11" },
         { SNEAKY_VICTIM = dir .. "/victim" })
      assert.equal(2, r.status, r.stdout)
      assert.equal(("myseal: plan: %s/loading.lua:2: os.remove is not allowed in a runbook: change files with "
         .. "ctx:write_file, ctx:edit_cnf, ctx:edit_xml, ctx:mkdir or ctx:remove_file (plan shows them, they are "
         .. "backed up and journaled)\n"):format(DIR), r.stderr)
      assert.equal("still here", sys.read_file(dir .. "/victim"))
   end)
end)
