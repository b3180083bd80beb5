--- The container driver of the sandbox: the same servers as the local driver,
-- from the `mariadb:<version>` and `mysql:<version>` images, where a container
-- engine answers (`docker info`). Untested on machines without an engine: the
-- command lines it builds are tested (tests/spec/sandbox_spec.lua).
-- @module myseal.sandbox.container
local sys = require "sys"
local state = require "myseal.state"

local M = {}

M.default_versions = { mariadb = "11.4", mysql = "8.4" }

--- Is a container engine answering?
function M.available()
   local r = sys.run{ "docker", "info", timeout = 20 }
   return r ~= nil and r.ok
end

local function container_name(s) return "myseal-sandbox-" .. s.name end

--- The image for a flavour and version, e.g. "mariadb:11.4".
function M.image(flavor, version)
   if flavor == "auto" then flavor = "mariadb" end
   return flavor .. ":" .. (version or M.default_versions[flavor])
end

--- The `docker run` argument vector for a sandbox `s` (its `dir`, `cnf`,
-- `datadir`, `port`, `name`) and an image. Credentials go through an env
-- file (`s.dir/env`, 0600), never through the argument vector.
function M.run_argv(s, image)
   return {
      "docker", "run", "--detach", "--name", container_name(s),
      "--publish", "127.0.0.1:" .. s.port .. ":3306",
      "--volume", s.cnf .. ":/etc/mysql/conf.d/zz-myseal.cnf:ro",
      "--volume", s.datadir .. ":/var/lib/mysql",
      "--volume", s.dir .. "/run:/run/mysqld",
      "--env-file", s.dir .. "/env",
      image,
   }
end

--- The other command lines: stop, start, remove, inspect, logs.
function M.argv(verb, s, n)
   local name = container_name(s)
   if verb == "stop" then return { "docker", "stop", "--time", "60", name } end
   if verb == "start" then return { "docker", "start", name } end
   if verb == "remove" then return { "docker", "rm", "--force", "--volumes", name } end
   if verb == "inspect" then return { "docker", "inspect", "--format", "{{.State.Running}}", name } end
   if verb == "logs" then return { "docker", "logs", "--tail", tostring(n or 20), name } end
   error("unknown container verb " .. tostring(verb), 2)
end

--- The env file: the official images' variables for the root and test accounts.
function M.env_file(s, flavor)
   if flavor == "mysql" then
      return table.concat({ "MYSQL_ALLOW_EMPTY_PASSWORD=yes", "MYSQL_ROOT_HOST=localhost",
         "MYSQL_USER=" .. s.tcp_user, "MYSQL_PASSWORD=" .. s.tcp_password, "" }, "\n")
   end
   return table.concat({ "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1", "MARIADB_ROOT_HOST=localhost",
      "MARIADB_USER=" .. s.tcp_user, "MARIADB_PASSWORD=" .. s.tcp_password, "" }, "\n")
end

--- The server's option file inside the container.
function M.cnf_text(s, option_lines)
   local lines = { "# myseal sandbox '" .. s.name .. "' (container): this server's options.",
      "[mysqld]", "bind-address=0.0.0.0", "port=3306", "socket=/run/mysqld/mysqld.sock",
      "skip-name-resolve" }
   for _, l in ipairs(option_lines) do lines[#lines + 1] = l end
   return table.concat(lines, "\n") .. "\n"
end

local function docker(argv, what)
   local r, err = sys.run(argv)
   if not r then return nil, what .. ": " .. err end
   if not r.ok then return nil, what .. ": " .. (r.stderr ~= "" and r.stderr or r.stdout) end
   return r
end

local function wait_ready(s)
   local deadline = sys.clock() + 120
   while sys.clock() < deadline do
      local r = sys.run(M.argv("logs", s, 200))
      local text = r and (r.stdout .. r.stderr) or ""
      -- the entrypoint starts a temporary server first: wait for the real one
      local _, count = text:gsub("ready for connections", "")
      if count >= 2 or (count >= 1 and text:find("port: 3306", 1, true)) then return true end
      if not M.running(s) then return nil, "the container stopped:\n" .. text end
      sys.sleep(0.5)
   end
   return nil, "the container's server was not ready after 120 s"
end

function M.start(s, flavor, opts)
   if not M.available() then
      return nil, "no container engine answers ('docker info' failed)"
   end
   local dir = sys.tmpdir("msb-" .. s.name)
   s.dir, s.datadir, s.cnf = dir, dir .. "/data", dir .. "/my.cnf"
   s.socket, s.port = dir .. "/run/mysqld.sock", opts.port or (20000 + tonumber(state.random_hex(2), 16) % 20000)
   s.flavor = flavor == "auto" and "mariadb" or flavor
   s.version = opts.version or M.default_versions[s.flavor]
   s.tcp_password = state.random_hex(12)
   assert(sys.mkdir(s.datadir, 448))
   assert(sys.mkdir(dir .. "/run", 511))
   local lines = require("myseal.sandbox.common").option_lines(opts.options)
   assert(sys.write_file(s.cnf, M.cnf_text(s, lines), { mode = 420 }))
   assert(sys.write_file(dir .. "/env", M.env_file(s, s.flavor), { mode = 384 }))
   local ok, err = docker(M.run_argv(s, M.image(s.flavor, s.version)), "docker run")
   if ok then ok, err = wait_ready(s) end
   if not ok then
      sys.run(M.argv("remove", s))
      sys.rmtree(dir)
      return nil, err
   end
   return true
end

function M.running(s)
   local r = sys.run(M.argv("inspect", s))
   return r ~= nil and r.ok and r.stdout:match("true") ~= nil
end

function M.shutdown(s)
   sys.run(M.argv("stop", s))
   return true
end

function M.boot(s)
   local ok, err = docker(M.argv("start", s), "docker start")
   if ok then ok, err = wait_ready(s) end
   if not ok then return nil, string.format("sandbox '%s' did not come back: %s", s.name, err) end
   return true
end

function M.remove(s)
   sys.run(M.argv("remove", s))
   if s.dir and s.dir:match("/msb%-") then sys.rmtree(s.dir) end
end

function M.error_log(s, n)
   local r = sys.run(M.argv("logs", s, n))
   return r and (r.stdout .. r.stderr) or ""
end

--- Runs a command inside the container.
function M.exec(s, argv)
   local cmd = { "docker", "exec", container_name(s), stdin = argv.stdin, timeout = argv.timeout }
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   return sys.run(cmd)
end

function M.paths(s)
   return { dir = s.dir, cnf = s.cnf, datadir = s.datadir, socket = s.socket }
end

-- Shown like a local sandbox: the same fields.
for _, f in ipairs{ "describe", "where", "info" } do
   M[f] = function(s) return require("myseal.sandbox.local")[f](s) end
end

return M
