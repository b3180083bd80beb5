--- `myseal list`: the runbooks found, site ones first in the search order.
local args = require "myseal.args"
local cli = require "myseal.engine.cli"
local json = require "myseal.json"
local runbook = require "myseal.runbook"

local M = {
   summary = "list the runbooks (site directories, then stock), one line each",
   usage = "myseal list [--runbooks DIR]... [--site F] [--json]",
   help = [[
Site runbooks (--runbooks DIR, or [site] runbooks in the profile) come before the
stock ones; a site runbook with a stock runbook's name replaces it (and usually
extends it: see docs/runbooks.md).
  --runbooks DIR     a directory of site runbooks, searched before the stock ones (repeatable)
  --site FILE        a site profile whose [site] runbooks directory is searched too
  --json             one JSON object per runbook: name, file, stock, summary (or error)]],
}

function M.run(argv)
   local opts, pos = args.parse("list", argv, { flags = { "json" }, options = { "site" }, multi = { "runbooks" } })
   args.at_most("list", pos, 0)
   local target = opts.site and cli.target("list", opts) or nil
   cli.search_path("list", opts, target)
   local rows = {}
   local stock_names = {}
   for _, e in ipairs(runbook.list({ require("myseal.host").runbooks_dir })) do stock_names[e.name] = true end
   for _, e in ipairs(runbook.list()) do
      local rb, err = runbook.loadfile(e.file)
      local row = { name = e.name, file = e.file, stock = e.stock }
      if rb then row.summary = rb.summary else row.error = err end
      if not e.stock and stock_names[e.name] then row.overrides = "stock " .. e.name end
      rows[#rows + 1] = row
   end
   if opts.json then
      for _, r in ipairs(rows) do io.stdout:write(json.encode(r), "\n") end
      return 0
   end
   local width = 8
   for _, r in ipairs(rows) do width = math.max(width, #r.name) end
   for _, r in ipairs(rows) do
      local where = r.stock and "stock" or ("site " .. r.file .. (r.overrides and (", replaces " .. r.overrides) or ""))
      local text = r.summary or ("BROKEN: " .. r.error)
      io.stdout:write(("%-" .. width .. "s  %s  [%s]\n"):format(r.name, text, where))
   end
   if #rows == 0 then io.stdout:write("no runbooks in ", table.concat(runbook.path, ", "), "\n") end
   return 0
end

return M
