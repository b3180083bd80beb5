-- The author guide (docs/runbooks.md) and the example profile (runbooks/site.example.ini)
-- against the code: every function a runbook author may call has LDoc and is in the guide;
-- every parameter myseal or a stock runbook declares is in the example profile.
local sys = require "sys"
local host = require "myseal.host"
local runbook = require "myseal.runbook"
local target = require "myseal.engine.target"

local GUIDE = assert(sys.read_file(host.home .. "/docs/runbooks.md"))

-- names of functions defined as `function <prefix>name(` with the line before each
-- is `name` written in the guide as a call, `name(` or `name{`?
local function in_guide(name)
   return GUIDE:find(name .. "(", 1, true) ~= nil or GUIDE:find(name .. "{", 1, true) ~= nil
end

local function defined(file, prefix)
   local out, prev = {}, ""
   for line in io.lines(host.home .. "/" .. file) do
      local name = line:match("^function " .. prefix:gsub("%p", "%%%0") .. "([%a][%w_]*)%(")
      if name then out[#out + 1] = { name = name, documented = prev:match("^%-%-") ~= nil } end
      prev = line
   end
   return out
end

describe("the runbook author's guide", function()
   it("documents every ctx function, with LDoc in the code", function()
      local fns = {}
      for _, file in ipairs{ "ctx", "files", "server", "pool", "progress" } do
         for _, f in ipairs(defined("lua/myseal/engine/" .. file .. ".lua", "methods:")) do
            if not f.name:match("^_") then fns[#fns + 1] = f end
         end
      end
      assert.is_true(#fns > 20)
      for _, f in ipairs(fns) do
         assert.is_true(f.documented, "no LDoc comment before ctx:" .. f.name)
         assert.is_true(in_guide("ctx:" .. f.name), "ctx:" .. f.name .. " is not in docs/runbooks.md")
      end
   end)

   it("documents the runbook and dialect functions, with LDoc in the code", function()
      for _, f in ipairs(defined("lua/myseal/runbook.lua", "M.")) do
         assert.is_true(f.documented, "no LDoc comment before runbook." .. f.name)
      end
      for _, name in ipairs{ "new", "load" } do
         assert.is_true(in_guide("runbook." .. name), "runbook." .. name .. " is not in docs/runbooks.md")
      end
      assert.truthy(GUIDE:find("extend{", 1, true))
      for _, f in ipairs(defined("lua/myseal/dialect/init.lua", "Dialect:")) do
         assert.is_true(f.documented, "no LDoc comment before d:" .. f.name)
         assert.is_true(in_guide("d:" .. f.name), "d:" .. f.name .. " is not in docs/runbooks.md")
      end
   end)

   it("site.example.ini has every parameter of myseal and of every stock runbook, in its section", function()
      local ini = assert(sys.read_file(host.runbooks_dir .. "/site.example.ini"))
      local keys, section = {}, nil
      for line in ini:gmatch("[^\n]+") do
         local s = line:match("^%[([%w_]+)%]")
         if s then section = s end
         local k = line:match("^#? ?([%w_@%%.]+) = ")
         if k and section then keys[section .. "." .. k] = true end
         if s then keys[s] = true end
      end
      local decls = {}
      for name in pairs(target.declarations) do decls[#decls + 1] = { name, "myseal" } end
      for _, e in ipairs(runbook.list({ host.runbooks_dir })) do
         local rb = assert(runbook.loadfile(e.file))
         for name in pairs(rb.params) do decls[#decls + 1] = { name, e.name } end
      end
      for _, d in ipairs(decls) do
         assert.truthy(keys[d[1]], ("%s (declared by %s) is not in runbooks/site.example.ini"):format(d[1], d[2]))
      end
   end)

   it("site.example.ini shows each parameter that has a default at that default", function()
      local ini = assert(sys.read_file(host.runbooks_dir .. "/site.example.ini"))
      local shown, section = {}, nil
      for line in ini:gmatch("[^\n]+") do
         section = line:match("^%[([%w_]+)%]") or section
         local k, v = line:match("^# ([%w_]+) = (.+)$")
         if k and section and not shown[section .. "." .. k] then shown[section .. "." .. k] = v end
      end
      local decls = {}
      for name, p in pairs(target.declarations) do decls[name] = p end
      for _, e in ipairs(runbook.list({ host.runbooks_dir })) do
         for name, p in pairs(assert(runbook.loadfile(e.file)).params) do decls[name] = p end
      end
      local n = 0
      for name, p in pairs(decls) do
         if p.default ~= nil and type(p.default) ~= "table" then
            n = n + 1
            assert.equal(tostring(p.default), shown[name], name .. ": site.example.ini does not show its default")
         end
      end
      assert.is_true(n > 40)
   end)
end)

describe("docs/architecture.md", function()
   local page = assert(sys.read_file(host.home .. "/docs/architecture.md"))

   it("names only files that exist", function()
      local n = 0
      for path in page:gmatch("%f[%w](lua/myseal/[%w_/%.]+%.%a+)") do
         n = n + 1
         assert.truthy(sys.stat(host.home .. "/" .. path), "docs/architecture.md names " .. path .. ", which is not there")
      end
      for path in page:gmatch("%f[%w](core/[%w_/%.]+%.[ch])%f[%W]") do
         assert.truthy(sys.stat(host.home .. "/" .. path), "docs/architecture.md names " .. path .. ", which is not there")
      end
      assert.is_true(n > 30)
   end)

   it("names every Lua module of the library", function()
      local function walk(dir, rel)
         for _, name in ipairs(sys.dir(dir) or {}) do
            local p, r = dir .. "/" .. name, rel .. "/" .. name
            if sys.stat(p).type == "directory" then
               walk(p, r)
            elseif name:match("%.lua$") then
               -- a module is named by its path, its name, or its directory's "DIR/*.lua"
               local short = r:match("^lua/myseal/(.+)$")
               local glob = short:match("^(.*)/[^/]+$")
               assert.truthy(page:find(r, 1, true) or page:find(short:gsub("%.lua$", ""), 1, true)
                  or (glob and page:find(glob .. "/*.lua", 1, true)), r .. " is not in docs/architecture.md")
            end
         end
      end
      walk(host.home .. "/lua/myseal", "lua/myseal")
   end)
end)
