-- The complete examples of docs/runbooks.md, run as printed there against a MariaDB sandbox:
-- the hardening runbook, then the site runbook that extends it.
local sys = require "sys"
local host = require "myseal.host"
package.path = host.home .. "/tests/spec/?.lua;" .. package.path
local support = require "support.engine"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"

local PASSWORD = "correct horse battery staple"

-- { ["hardening.lua"] = code, ["site/hardening.lua"] = code } from the <!-- file: NAME --> blocks
local function examples()
   local guide = assert(sys.read_file(host.home .. "/docs/runbooks.md"))
   local out = {}
   for name, code in guide:gmatch("<!%-%- file: ([%w/._-]+) %-%->\n```lua\n(.-)\n```") do out[name] = code .. "\n" end
   return out
end

describe("docs/runbooks.md examples", function()
   local s, dir, env, files_dir
   setup(function()
      s = assert(sandbox.start{ flavor = "mariadb" })
      dir = assert(sys.tmpdir("docs-spec"))
      files_dir = dir .. "/db-files"
      for name, code in pairs(examples()) do
         sys.mkdir((dir .. "/" .. name):match("^(.*)/"))
         assert(sys.write_file(dir .. "/" .. name, code))
      end
      env = { MYSEAL_STATE_DIR = target.state_root(), MYSEAL_SECRET_HARDENING_MONITOR_PASSWORD = PASSWORD }
   end)
   teardown(function()
      if s then s:stop() end
      sys.rmtree(target.state_root() .. "/targets/sandbox-" .. s.name)
      sys.rmtree(dir)
   end)

   local function myseal(args, site_too)
      local argv = { args[1], "hardening", "--sandbox", s.name, "--runbooks", dir, "--set",
                     "hardening.file_dir=" .. files_dir }
      if site_too then table.insert(argv, 5, "--runbooks") table.insert(argv, 6, dir .. "/site") end
      for i = 2, #args do argv[#argv + 1] = args[i] end
      return support.myseal(argv, env)
   end

   local function query(sql, ...)
      local conn <close> = assert(s:connect())
      return assert(conn:query(sql, ...))
   end

   it("finds both examples in the guide", function()
      local ex = examples()
      assert.truthy(ex["hardening.lua"])
      assert.truthy(ex["site/hardening.lua"])
   end)

   it("hardening: plans, runs, has nothing more to do, and rolls back", function()
      local cnf_before = assert(sys.read_file(s.cnf))
      local default = query("SELECT @@GLOBAL.secure_file_priv")[1][1]
      local r = myseal{ "plan" }
      assert.equal("", r.stderr)
      assert.matches("create directory " .. files_dir:gsub("%p", "%%%0") .. " %(0750%)", r.stdout)
      assert.matches("\n        %+secure_file_priv%s*=%s*" .. files_dir:gsub("%p", "%%%0") .. "\n", r.stdout)
      assert.matches("restart the server: restart sandbox ", r.stdout)
      assert.matches("sql: CREATE USER IF NOT EXISTS 'monitor'@'localhost' IDENTIFIED BY '%*%*%*'", r.stdout)
      assert.is_nil(r.stdout:find("horse", 1, true))

      r = myseal{ "run", "--yes" }
      assert.equal("", r.stderr)
      assert.is_true(r.ok)
      assert.equal(files_dir .. "/", query("SELECT @@GLOBAL.secure_file_priv")[1][1])
      assert.equal(tonumber("750", 8), sys.stat(files_dir).mode)
      local monitor <close> = assert(s:connect{ user = "monitor", password = PASSWORD })
      r = myseal{ "run", "--yes" }
      assert.matches("run: nothing to do; every step was already done", r.stdout)

      r = myseal{ "rollback", "--yes" }
      assert.equal("", r.stderr)
      assert.equal(cnf_before, sys.read_file(s.cnf))
      assert.equal(default, query("SELECT @@GLOBAL.secure_file_priv")[1][1])
      assert.is_nil(sys.stat(files_dir))
      assert.equal(0, #query("SELECT 1 FROM mysql.user WHERE User = 'monitor'"))
   end)

   it("the site's extension: its user, its grant, its option group", function()
      local r = myseal({ "run", "--yes" }, true)
      assert.equal("", r.stderr)
      assert.matches("%[5/5%] monitor%-grants +changed", r.stdout)
      local grants = query("SHOW GRANTS FOR 'nagios'@'localhost'")[1][1]
      assert.matches("^GRANT PROCESS ON %*%.%* TO `nagios`@`localhost`", grants)
      assert.matches("\n%[mariadb%]\n.-secure_file_priv%s*=%s*" .. files_dir:gsub("%p", "%%%0"), sys.read_file(s.cnf))
      r = myseal({ "run", "--yes" }, true)
      assert.matches("run: nothing to do", r.stdout)
      r = myseal({ "rollback", "--yes" }, true)
      assert.is_true(r.ok)
      assert.equal(0, #query("SELECT 1 FROM mysql.user WHERE User = 'nagios'"))
   end)
end)
