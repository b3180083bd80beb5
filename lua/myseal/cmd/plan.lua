--- `myseal plan`: what run would do, changing nothing.
local args = require "myseal.args"
local cli = require "myseal.engine.cli"
local engine = require "myseal.engine"

local M = {
   summary = "show what run would do (SQL, file diffs, commands, restarts), changing nothing",
   usage = "myseal plan RUNBOOK (--site F | --sandbox N | --describe SERVER) [--set S.K=V]... "
      .. "[--only STEP | --from STEP] [--json]",
   help = [[
Runs every step's check; for each step not done, shows what its apply would do:
every SQL statement in order, a unified diff of every file, every command and
restart. Nothing on disk or in the server changes.
  --only STEP        plan one step
  --from STEP        plan from this step on
]] .. cli.target_help,
}

function M.run(argv)
   local opts, pos = cli.parse("plan", argv, { flags = { "secrets-stdin" }, options = { "only", "from" } })
   args.at_most("plan", pos, 1, "one runbook at a time")
   local target = cli.target("plan", opts)
   cli.search_path("plan", opts, target)
   local rb = cli.load("plan", pos[1])
   local reporter = cli.reporter(opts)
   return engine.plan(rb, { target = target, set = opts.set, reporter = reporter,
                            only = opts.only, from = opts.from })
end

return M
