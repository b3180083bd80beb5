--- The lab's network: a bridge, lab0, in a network namespace of the lab's own (held by one
-- process per state directory), which hosts started with an address join.
-- @module myseal.sandbox.host.net
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"
local json = require "myseal.json"
local ns = require "myseal.sandbox.host.ns"

local M = {}

local function lab_dir()
   return assert(state.dir("lab"))
end

-- What network.json says of the holder: { pid }, or nil.
local function lab_state()
   local text = sys.read_file(lab_dir() .. "/network.json")
   return text and json.decode(text)
end

-- Is pid the process holding the lab's network? (its environment says so)
local function is_lab_holder(pid)
   if not pid or not sys.alive(pid) then return false end
   local env = sys.read_file("/proc/" .. pid .. "/environ") or ""
   return env:find("MYSEAL_LAB_NETWORK=" .. lab_dir(), 1, true) ~= nil
end

-- The process holding the lab's network namespace (and its bridge lab0), started when the
-- first host joins. Returns its pid, or nil, message.
local function lab_holder()
   local t = lab_state()
   if t and t.pid and is_lab_holder(t.pid) then return t.pid end
   local dir = lab_dir()
   local ready = dir .. "/network.ready"
   os.remove(ready)
   local pid, err = sys.spawn{ "unshare", "--net", "/bin/sh", "-c",
      'ip link set lo up && ip link add lab0 type bridge && ip link set lab0 up && : > "$1" && '
         .. 'exec sleep infinity', "myseal-lab-network", ready,
      env = { PATH = ns.PATH, MYSEAL_LAB_NETWORK = dir }, log = dir .. "/network.log" }
   if not pid then return nil, err end
   if not common.wait_file(pid, ready, 20) then
      return nil, "the lab network did not come up: " .. (sys.read_file(dir .. "/network.log") or "")
   end
   os.remove(ready)
   assert(sys.write_file(dir .. "/network.json", json.encode{ pid = pid } .. "\n", { mode = tonumber("600", 8) }))
   return pid
end

local function join_lab(s)
   local lock = assert(sys.lock(lab_dir() .. "/network.lock"))
   local lab, err = lab_holder()
   if not lab then lock:release(); return nil, err end
   local function ip(pid, ...)   -- `ip ...` in the network namespace of process pid
      return { "nsenter", "--target", tostring(pid), "--net", "ip", ... }
   end
   local veth = "vh" .. s.pid
   for _, argv in ipairs{ ip(lab, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", s.pid),
                          ip(lab, "link", "set", veth, "master", "lab0", "up"),
                          ip(s.pid, "addr", "add", s.ip, "dev", "eth0"), ip(s.pid, "link", "set", "eth0", "up") } do
      local ok, rerr = common.run_ok(argv, "joining the lab network")
      if not ok then lock:release(); return nil, rerr end
   end
   s.lab = lab
   lock:release()
   return true
end

-- Ends the lab network when no host is left on it.
local function leave_lab(s, others)
   if not s.lab then return end
   local lock = sys.lock(lab_dir() .. "/network.lock")
   for _, o in ipairs(others) do
      if o.driver == "host" and o.lab == s.lab and o.name ~= s.name and o.alive then
         if lock then lock:release() end
         return
      end
   end
   if is_lab_holder(s.lab) then
      sys.kill(s.lab, "KILL")
      while sys.alive(s.lab) do sys.sleep(0.01) end
   end
   os.remove(lab_dir() .. "/network.json")
   if lock then lock:release() end
end

--- Ends the lab network of this state directory when no host uses it any more (after a
-- crash left it behind); `sandbox stop --all` calls it.
function M.cleanup()
   local t = lab_state()
   if t then leave_lab({ lab = t.pid, name = "" }, require("myseal.sandbox").list()) end
end

M.join, M.leave = join_lab, leave_lab

return M
