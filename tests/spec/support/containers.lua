--- Containers for specs: the suite's engine (tests/containers/docker, Debian's podman run as
-- this machine needs it) in a network namespace of the suite's own, and the image the container
-- specs run: Debian's MariaDB, built from this machine's own Debian sources with mmdebstrap and
-- imported, once per server version (myseal's cache directory keeps it between runs).
-- Where no engine can run here, `start` says why in one line and the specs are skipped.
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"

local M = {}

local HOME = require("myseal.host").home
M.BIN = HOME .. "/tests/containers"
M.REPO = "localhost/myseal-mariadb"

local Engine = {}
Engine.__index = Engine

-- Why containers cannot run here, or nil.
local function unavailable()
   if sys.user().uid ~= 0 then return "containers need root here (rootful podman)" end
   for _, need in ipairs{ { "podman", "podman" }, { "mmdebstrap", "mmdebstrap" }, { "nsenter", "util-linux" },
                          { "ip", "iproute2" } } do
      local w = sys.run{ "sh", "-c", 'command -v "$1"', "sh", need[1] }
      if not w or not w.ok then
         return string.format("containers need %s: install the package %s", need[1], need[2])
      end
   end
   local r = sys.run{ "unshare", "--mount", "--net", "true", timeout = 20 }
   if not r or not r.ok then return "Linux namespaces are not permitted here (unshare --mount --net)" end
   return nil
end

-- The process that holds the engine's namespaces: a network namespace with loopback only, and
-- a private mount namespace without the hybrid cgroup2 mount (tests/containers/docker says why).
-- It ends with this process (a killed busted leaves no holder behind). Returns its pid, or nil,
-- message.
local function holder(dir)
   local ready = dir .. "/namespaces.ready"
   local pid, err = sys.spawn{ "setpriv", "--pdeathsig", "KILL", "unshare", "--net", "--mount", "--propagation",
      "private", "/bin/sh", "-c",
      '{ ! mountpoint -q /sys/fs/cgroup/unified || umount /sys/fs/cgroup/unified; } && ip link set lo up && '
         .. ': > "$1" && exec sleep infinity', "myseal-test-namespaces", ready, log = dir .. "/namespaces.log" }
   if not pid then return nil, err end
   if not common.wait_file(pid, ready, 20) then
      return nil, "the suite's namespaces did not come up: " .. (sys.read_file(dir .. "/namespaces.log") or "")
   end
   return pid
end

--- Runs the engine (`docker ...` through the wrapper); the sys.run result.
function Engine:run(argv)
   local cmd = { "docker", env = self.env, timeout = argv.timeout or 600 }
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   return assert(sys.run(cmd))
end

--- Runs argv in the suite's network namespace (where published ports are), with the engine's
-- environment and `env` added; the sys.run result.
function Engine:netns(argv, env)
   local cmd = { "nsenter", "--target", tostring(self.holder), "--net", timeout = argv.timeout or 300,
      stdin = argv.stdin, env = {} }
   for k, v in pairs(self.env) do cmd.env[k] = v end
   for k, v in pairs(env or {}) do cmd.env[k] = v end
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   return assert(sys.run(cmd))
end

--- The server version of this machine's mariadb-server package, and the image's tag for it.
local function server_package()
   local r = sys.run{ "dpkg-query", "-W", "-f", "${Version}", "mariadb-server" }
   if not r or not r.ok or r.stdout == "" then return nil, "the package mariadb-server is not installed" end
   return r.stdout, (r.stdout:gsub("^%d+:", ""):gsub("[^%w%.%-_]", "-"))
end

-- This machine's Debian release and the apt sources it installs from (mmdebstrap reads either form).
local function debian()
   local release = (sys.read_file("/etc/os-release") or ""):match("VERSION_CODENAME=(%S+)")
   for _, f in ipairs{ "/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list" } do
      if sys.stat(f) then return release, f end
   end
   return release, nil
end

-- Builds the image `name` with Debian's mariadb-server `version` in `tmp`.
local function build(self, tmp, name, version)
   local release, sources = debian()
   if not release or not sources then return nil, "no Debian release or apt sources found in /etc" end
   local tar = tmp .. "/rootfs.tar"
   local ok, err = common.run_ok({ "mmdebstrap", "--variant=apt", "--include=mariadb-server=" .. version, release, tar,
      sources, stdin = "", timeout = 900 }, "mmdebstrap")
   if ok then ok, err = common.run_ok({ M.BIN .. "/docker", "import", tar, name, env = self.env, timeout = 600 },
      "importing " .. tar) end
   os.remove(tar)
   if not ok then return nil, err end
   return sys.write_file(tmp .. "/image", name .. "\n")
end

--- The image of Debian's MariaDB (this machine's version), built when the cache has none.
-- @return image name, or nil, message
function Engine:image()
   local version, tag = server_package()
   if not version then return nil, tag end
   local name = M.REPO .. ":" .. tag
   local root = assert(state.cache("podman"))
   local final = root .. "/images/" .. tag
   sys.mkdir(root .. "/images", 448)
   if sys.stat(final .. "/image") and not self:run{ "image", "inspect", name }.ok then sys.rmtree(final) end
   local path, err = common.cached(final, "image", function(tmp) return build(self, tmp, name, version) end)
   if not path then return nil, "building " .. name .. ": " .. err end
   -- images of other server versions go
   local list = self:run{ "images", "--format", "{{.Repository}}:{{.Tag}}" }
   for old in list.stdout:gmatch("[^\n]+") do
      if old:sub(1, #M.REPO + 1) == M.REPO .. ":" and old ~= name then
         self:run{ "rmi", old }
         sys.rmtree(root .. "/images/" .. old:sub(#M.REPO + 2))
      end
   end
   return name
end

--- Starts the engine for specs: the suite's namespaces, the engine answering in them, the
-- image built or found in the cache.
-- @return engine `{ env, image }` (stopped by `stop`), or nil and why not (the specs are then skipped)
function M.start()
   local why = unavailable()
   if why then return nil, why end
   local dir = assert(sys.tmpdir("containers"))
   local pid, err = holder(dir)
   if not pid then sys.rmtree(dir); return nil, err end
   local env = { PATH = M.BIN .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin"),
      MYSEAL_TEST_NAMESPACES = tostring(pid) }
   local self = setmetatable({ dir = dir, holder = pid, env = env }, Engine)
   local info = self:run{ "info", timeout = 60 }
   if not info.ok then
      self:stop()
      return nil, "podman does not run here: " .. common.tail_lines(info.stderr, 3)
   end
   self.image_name, err = self:image()
   if not self.image_name then self:stop(); error(err, 0) end
   return self
end

--- Ends the suite's namespaces (stop the sandboxes first).
function Engine:stop()
   if self.holder and sys.alive(self.holder) then
      sys.kill(self.holder, "KILL")
      while sys.alive(self.holder) do sys.sleep(0.01) end
   end
   sys.rmtree(self.dir)
end

-- Lines of a program's output that say what the machine has, not when it was asked.
local function settled(text)
   local out = {}
   for line in text:gmatch("[^\n]+") do
      if not line:match("^#") then out[#out + 1] = (line:gsub("%[%d+:%d+%]", "[n:n]")) end
   end
   return table.concat(out, "\n")
end

--- This machine's own network, as its root namespace has it: links, addresses, routes,
-- nftables and iptables rules, and the named network namespaces.
-- @return table: what -> text
function M.network()
   local out = {}
   for _, argv in ipairs{ { "ip", "-o", "link" }, { "ip", "-o", "addr" }, { "ip", "route" }, { "ip", "-6", "route" },
                          { "nft", "list", "ruleset" }, { "iptables-save" }, { "ip6tables-save" } } do
      local r = assert(sys.run(argv))
      assert(r.ok, table.concat(argv, " ") .. ": " .. r.stderr)
      out[table.concat(argv, " ")] = settled(r.stdout)
   end
   out["/run/netns"] = table.concat(sys.dir("/run/netns") or {}, " ")
   return out
end

return M
