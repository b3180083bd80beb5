--- `myseal show`: a runbook's steps and parameters.
local args = require "myseal.args"
local cli = require "myseal.engine.cli"
local engine = require "myseal.engine"
local json = require "myseal.json"
local params = require "myseal.engine.params"
local target_mod = require "myseal.engine.target"

local M = {
   summary = "show a runbook's steps and parameters (type, default, documentation)",
   usage = "myseal show RUNBOOK [--site F | --sandbox N | --describe SERVER] [--set S.K=V]... "
      .. "[--runbooks DIR]... [--all] [--json]",
   help = [[
Lists the steps in order and every parameter the runbook declares, with its
type, default and one line of documentation. With a target (--site, --sandbox,
--describe) and --set, also the value each parameter would have and where it
comes from.
  --all              also the parameters myseal itself reads ([server],
                     [connection], [site]; documented in runbooks/site.example.ini)
  --runbooks DIR     a directory of site runbooks, searched before the stock ones (repeatable)
  --json             the steps and parameters as one JSON object]],
}

local function show_value(v)
   if v == nil then return "(none)" end
   if type(v) == "table" then
      local parts = {}
      if #v > 0 then
         for i, x in ipairs(v) do parts[i] = tostring(x) end
      else
         for k, x in pairs(v) do parts[#parts + 1] = k .. "=" .. tostring(x) end
         table.sort(parts)
      end
      return #parts > 0 and table.concat(parts, ", ") or "(empty)"
   end
   return tostring(v)
end

function M.run(argv)
   local opts, pos = cli.parse("show", argv, { flags = { "all" } })
   args.at_most("show", pos, 1, "one runbook at a time")
   local target
   if opts.site or opts.sandbox or opts.describe then target = cli.target("show", opts) end
   cli.search_path("show", opts, target)
   local rb = cli.load("show", pos[1])
   local decls, values, origins = engine.resolve(rb, target, opts.set, true)
   local names = {}
   for _, n in ipairs(params.sorted(decls)) do
      if opts.all or not target_mod.declarations[n] then names[#names + 1] = n end
   end
   local steps = {}
   for i, s in ipairs(rb.steps) do
      local has = {}
      for _, f in ipairs{ "when", "check", "apply", "verify", "undo" } do
         if s[f] then has[#has + 1] = f end
      end
      steps[i] = { name = s.name, doc = s.doc, has = has, source = s.source }
   end
   if opts.json then
      local ps = {}
      for _, n in ipairs(names) do
         local d = decls[n]
         ps[#ps + 1] = { name = n, type = d.type, default = d.default, doc = d.doc, required = d.required,
                         values = d.values, value = target and values[n] or nil,
                         origin = target and origins[n] or nil }
      end
      io.stdout:write(json.encode{ name = rb.name, summary = rb.summary, file = rb.file,
         extends = rb.base and rb.base.file, steps = steps, params = ps }, "\n")
      return 0
   end
   local out = { ("%s: %s"):format(rb.name, rb.summary), "file: " .. tostring(rb.file) }
   if rb.base then out[#out + 1] = ("extends: %s (%s)"):format(rb.base.name, tostring(rb.base.file)) end
   out[#out + 1] = ""
   out[#out + 1] = "steps:"
   for i, s in ipairs(steps) do
      out[#out + 1] = ("  %2d. %-24s %s"):format(i, s.name, s.doc or "")
      out[#out + 1] = ("      %s%s"):format(table.concat(s.has, ", "), s.source and ("  (" .. s.source .. ")") or "")
   end
   out[#out + 1] = ""
   out[#out + 1] = "parameters:"
   local section
   for _, n in ipairs(names) do
      local d = decls[n]
      if d.section ~= section then
         section = d.section
         out[#out + 1] = ("  [%s]"):format(section)
      end
      local typ = d.type == "enum" and ("one of " .. table.concat(d.values, "|")) or d.type
      local default = d.required and "required" or ("default " .. show_value(d.default))
      out[#out + 1] = ("    %-28s %s; %s"):format(d.key or "(every key)", typ, default)
      out[#out + 1] = ("        %s"):format(d.doc)
      if target and origins[n] ~= "default" then
         out[#out + 1] = ("        value: %s  (from %s)"):format(show_value(values[n]), origins[n])
      end
   end
   if #names == 0 then out[#out + 1] = "  (none)" end
   if not opts.all then
      out[#out + 1] = ""
      out[#out + 1] = "myseal's own parameters ([server], [connection], [site]): myseal show --all " .. rb.name
   end
   io.stdout:write(table.concat(out, "\n"), "\n")
   return 0
end

return M
