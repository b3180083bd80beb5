--- `myseal run`: run a runbook against a target.
local args = require "myseal.args"
local cli = require "myseal.engine.cli"
local engine = require "myseal.engine"

local M = {
   summary = "run a runbook: confirm, then each step with a journal (resumable, lockable)",
   usage = "myseal run RUNBOOK (--site F | --sandbox N) [--set S.K=V]... [--yes] [--resume] "
      .. "[--only STEP | --from STEP] [--verbose] [--json]",
   help = [[
Shows the plan and asks for confirmation (on a terminal; --yes skips it and is
needed without one), then runs each step: check, apply, verify. Every effect is
journaled (JSON lines) under the state directory ($MYSEAL_STATE_DIR, else
$XDG_STATE_HOME/myseal, else ~/.local/state/myseal); one run per target at a time.
Ctrl-C stops at the next effect and leaves a journal that --resume continues.
A second run of a completed runbook changes nothing and says so.
  --yes              do not ask
  --resume           continue the last run, which was interrupted or failed
  --only STEP        run one step
  --from STEP        run from this step on
  --verbose          show every effect as it happens
]] .. cli.target_help,
}

function M.run(argv)
   local opts, pos = cli.parse("run", argv, { flags = { "yes", "resume", "verbose", "secrets-stdin" },
                                             options = { "only", "from" } })
   args.at_most("run", pos, 1, "one runbook at a time")
   local target = cli.target("run", opts)
   cli.search_path("run", opts, target)
   local rb = cli.load("run", pos[1])
   return engine.run(rb, { target = target, set = opts.set, reporter = cli.reporter(opts), yes = opts.yes,
                           resume = opts.resume, only = opts.only, from = opts.from,
                           interactive = not opts.json and cli.interactive() })
end

return M
