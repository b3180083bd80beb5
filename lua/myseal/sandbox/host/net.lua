--- The lab's network: a bridge, lab0, in a network namespace of the lab's own (held by one
-- process per state directory), which hosts started with an address join.
-- @module myseal.sandbox.host.net
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"
local json = require "myseal.json"
local ns = require "myseal.sandbox.host.ns"

local M = {}

local OCTAL = function(s) return tonumber(s, 8) end
local PATH = ns.PATH
local run_ok = common.run_ok

local function lab_state_path()
   return assert(state.dir("lab")) .. "/network.json"
end

-- Is pid the process holding the lab's network? (its environment says so)
local function is_lab_holder(pid)
   if not pid or not sys.alive(pid) then return false end
   local env = sys.read_file("/proc/" .. pid .. "/environ") or ""
   return env:find("MYSEAL_LAB_NETWORK=" .. assert(state.dir("lab")), 1, true) ~= nil
end

-- The process holding the lab's network namespace (and its bridge lab0), started when the
-- first host joins. Returns its pid, or nil, message.
local function lab_holder()
   local text = sys.read_file(lab_state_path())
   local t = text and json.decode(text)
   if t and t.pid and is_lab_holder(t.pid) then return t.pid end
   local dir = assert(state.dir("lab"))
   local ready = dir .. "/network.ready"
   os.remove(ready)
   local pid, err = sys.spawn{ "unshare", "--net", "/bin/sh", "-c",
      'ip link set lo up && ip link add lab0 type bridge && ip link set lab0 up && : > "$1" && '
         .. 'exec sleep infinity', "myseal-lab-network", ready,
      env = { PATH = PATH, MYSEAL_LAB_NETWORK = dir }, log = dir .. "/network.log" }
   if not pid then return nil, err end
   if not common.wait_file(pid, ready, 20) then
      return nil, "the lab network did not come up: " .. (sys.read_file(dir .. "/network.log") or "")
   end
   os.remove(ready)
   assert(sys.write_file(lab_state_path(), json.encode{ pid = pid } .. "\n", { mode = OCTAL("600") }))
   return pid
end

local function join_lab(s)
   local lock = assert(sys.lock(assert(state.dir("lab")) .. "/network.lock"))
   local lab, err = lab_holder()
   if not lab then lock:release(); return nil, err end
   local veth = "vh" .. s.pid
   local steps = {
      { "nsenter", "--target", tostring(lab), "--net", "ip", "link", "add", veth, "type", "veth",
        "peer", "name", "eth0", "netns", tostring(s.pid) },
      { "nsenter", "--target", tostring(lab), "--net", "ip", "link", "set", veth, "master", "lab0", "up" },
      { "nsenter", "--target", tostring(s.pid), "--net", "ip", "addr", "add", s.ip, "dev", "eth0" },
      { "nsenter", "--target", tostring(s.pid), "--net", "ip", "link", "set", "eth0", "up" },
   }
   for _, argv in ipairs(steps) do
      local ok, rerr = run_ok(argv, "joining the lab network")
      if not ok then lock:release(); return nil, rerr end
   end
   s.lab = lab
   lock:release()
   return true
end

-- Ends the lab network when no host is left on it.
local function leave_lab(s, others)
   if not s.lab then return end
   local lock = sys.lock(assert(state.dir("lab")) .. "/network.lock")
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
   os.remove(lab_state_path())
   if lock then lock:release() end
end

--- Ends the lab network of this state directory when no host uses it any more (after a
-- crash left it behind); `sandbox stop --all` calls it.
function M.cleanup()
   local text = sys.read_file(lab_state_path())
   local t = text and json.decode(text)
   if not t then return end
   for _, o in ipairs(require("myseal.sandbox").list()) do
      if o.driver == "host" and o.lab == t.pid and o.alive then return end
   end
   leave_lab({ lab = t.pid, name = "" }, {})
end


M.join, M.leave = join_lab, leave_lab

return M
