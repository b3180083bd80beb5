--- `myseal rollback`: undo the last run of a runbook on a target.
local args = require "myseal.args"
local cli = require "myseal.engine.cli"
local engine = require "myseal.engine"

local M = {
   summary = "undo the last run of a runbook: restore its files, undo its steps, restart",
   usage = "myseal rollback RUNBOOK (--site F | --sandbox N) [--yes] [--json]",
   help = [[
Finds the last run of RUNBOOK on the target that changed something and was not
rolled back yet. For each step it changed, newest first: puts back every file
from the backup taken before it changed (files it created are removed), then
calls the step's undo. Restarts the server when the run had restarted it.
Refuses when a step of the run says it cannot be undone.
  --yes              do not ask
]] .. cli.target_help,
}

function M.run(argv)
   local opts, pos = cli.parse("rollback", argv, { flags = { "yes", "secrets-stdin" } })
   args.at_most("rollback", pos, 1, "one runbook at a time")
   local target = cli.target("rollback", opts)
   cli.search_path("rollback", opts, target)
   local rb = cli.load("rollback", pos[1])
   return engine.rollback(rb, { target = target, set = opts.set, reporter = cli.reporter(opts), yes = opts.yes,
                                interactive = not opts.json and cli.interactive() })
end

return M
