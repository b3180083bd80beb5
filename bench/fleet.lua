-- The story across a replication group on this machine (a primary and a replica, MariaDB sandboxes, and
-- an application host, a Tomcat-shaped directory), two ways on the same data:
--   manual: the myseal commands typed one after another, in the order the role keeps (replica at rest,
--           primary at rest, TLS offered on both, the primary's CA copied, the replica's channel, the
--           application tier, TLS enforced on both), with the profiles written by hand;
--   myseal: the role myseal.myseal.encrypt run by ansible-playbook (connection local, 5 forks).
-- Then each again, with nothing left to do. Prints the per-host time spent in myseal's steps (from the
-- journals), and what the role's ordering costs the controller at 100 and 1,000 hosts: the
-- replication groups and one gate, computed over a synthetic inventory through Ansible's own hostvars.
-- One run each (a play cannot be repeated on the same servers): expect a few percent of noise.
--   build/myseal lua bench/fleet.lua
package.path = "bench/?.lua;tests/spec/?.lua;" .. package.path
local bench = require "lib"
local fleet = require "support.fleet"
local sys = require "sys"
local json = require "myseal.json"
local host = require "myseal.host"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"

local dir = assert(sys.tmpdir("bench-fleet"))
-- the servers run as mysql: the key and TLS directories under dir must be reachable
assert(sys.chmod(dir, tonumber("755", 8)))
local state = target.state_root()
local env = fleet.ansible(dir, state)
local servers = {}

-- a replication group: two sandboxes with the application's data, a Tomcat directory, the inventory
local function group(name)
   local p = assert(sandbox.start{ name = "bench-fleet-" .. name .. "-p" })
   local q = assert(sandbox.start{ name = "bench-fleet-" .. name .. "-q" })
   servers[#servers + 1], servers[#servers + 2] = p, q
   fleet.application(p)
   fleet.application(q)
   local work = dir .. "/" .. name
   local inventory, sites = fleet.inventory{ work = work, prefix = "bench-fleet-" .. name, primary = p, replica = q,
      tomcat = fleet.tomcat(work .. "/tomcat", p.port), myseal = host.exe, state = state }
   return inventory, sites
end

-- the profile as an operator writes it: section by section
local function profile(path, site, omit)
   local out = {}
   for section, keys in pairs(site) do
      if section ~= omit then
         out[#out + 1] = "[" .. section .. "]"
         for k, v in pairs(keys) do
            out[#out + 1] = ("%s = %s"):format(k, type(v) == "table" and table.concat(v, ", ") or tostring(v))
         end
      end
   end
   assert(sys.mkdir(path:match("^(.*)/")))
   assert(sys.write_file(path, table.concat(out, "\n") .. "\n"))
   return path
end

local function manual(inventory)
   local h = inventory.all.hosts
   local function myseal(name, runbook, site, ...)
      local argv = { host.exe, "run", runbook, "--site", site, "--yes", ... }
      argv.env = { MYSEAL_STATE_DIR = state }
      for k, v in pairs(h[name].myseal_secrets) do
         argv.env["MYSEAL_SECRET_" .. k:upper():gsub("[^%w]", "_")] = v
      end
      bench.run(argv)
   end
   local files = {}
   for name, vars in pairs(h) do
      files[name] = profile(vars.myseal_site_path, vars.myseal_site)
   end
   return function()
      myseal("db2", "at-rest", files.db2)
      myseal("db1", "at-rest", files.db1)
      for _, db in ipairs{ "db1", "db2" } do myseal(db, "in-transit", files[db]) end
      local ca = assert(sys.read_file(h.db1.myseal_site.pki.dir .. "/ca.pem"))
      assert(sys.write_file(h.app1.myseal_site.tomcat.ca, ca))
      assert(sys.write_file(h.db2.myseal_site.replication.ca, ca))
      myseal("db2", "replica-tls", files.db2)
      myseal("app1", "app-tomcat", files.app1)
      for _, db in ipairs{ "db1", "db2" } do myseal(db, "tls-enforce", files[db]) end
   end
end

local ok, err = pcall(function()
   local by_hand, hand_sites = group("manual")
   local by_role, role_sites = group("role")
   local rows = {}
   local run_by_hand = manual(by_hand)
   local t_hand = bench.time(run_by_hand, 1)
   local before = fleet.stamp()
   local r = fleet.playbook(env, dir, fleet.role_play, { inventory = by_role })
   assert(r.status == 0, r.stdout .. r.stderr)
   rows[#rows + 1] = { "the story, 3 hosts (2 servers, 1 Tomcat)", t_hand, r.seconds }
   local per_host = {}
   for i, site in ipairs(role_sites) do per_host[i] = fleet.step_seconds(state, site, before) end
   local t_again = bench.time(run_by_hand, 1)
   r = fleet.playbook(env, dir, fleet.role_play, { inventory = by_role })
   assert(r.status == 0, r.stdout .. r.stderr)
   rows[#rows + 1] = { "again, nothing to do", t_again, r.seconds }
   bench.table("fleet: myseal commands by hand vs the role through ansible-playbook", rows)
   local tasks = 0
   for _, k in ipairs{ "ok", "changed", "skipped", "failed" } do tasks = tasks + (r.recap.db1[k] or 0) end
   print(("  per host, in myseal's steps (role run): db1 %.2f s, db2 %.2f s, app1 %.2f s; the role has %d tasks "
      .. "a host, %.0f ms each on average (3 hosts, 5 forks)"):format(per_host[1], per_host[2], per_host[3], tasks,
      1000 * r.seconds / (3 * tasks)))
   for _, s in ipairs{ hand_sites, role_sites } do
      for _, site in ipairs(s) do sys.rmtree(state .. "/targets/site-" .. site) end
   end

   -- the controller's share of the ordering, at scale
   local scale = [[
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.vars.manager import VariableManager
from ansible.vars.hostvars import HostVars
from ansible_collections.myseal.myseal.plugins.filter.story import story_groups, story_waiting
import yaml
story = yaml.safe_load(open(sys.argv[2]))['myseal_story']
for n in (100, 1000):
    hosts = {}
    for g in range(n // 5):
        hosts['db%d' % g] = {'myseal_role': 'primary'}
        for i in range(3):
            hosts['db%d-r%d' % (g, i)] = {'myseal_role': 'replica', 'myseal_primary': 'db%d' % g}
        hosts['app%d' % g] = {'myseal_role': 'app', 'myseal_primary': 'db%d' % g}
    path = '%s/inventory-%d.json' % (sys.argv[3], n)
    json.dump({'all': {'hosts': hosts}}, open(path, 'w'))
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[path])
    hv = HostVars(inventory=inv, variable_manager=VariableManager(loader=loader, inventory=inv), loader=loader)
    names = [h.name for h in inv.get_hosts()]
    t = time.perf_counter()
    groups = story_groups(names, hv)
    t_groups = time.perf_counter() - t
    t = time.perf_counter()
    for h in names:
        story_waiting(groups, hv, h, 1, story)
    t_gate = time.perf_counter() - t
    print('  %5d hosts: replication groups %.2f s (once a batch); one gate on every host %.2f s'
          % (n, t_groups, t_gate))
]]
   print("controller cost of the ordering (synthetic inventory: groups of a primary, 3 replicas, 1 application host)")
   local py = bench.run{ "/usr/bin/python3", "-c", scale, dir .. "/collections",
                         fleet.COLLECTION .. "/roles/encrypt/defaults/main.yml", dir }
   io.write(py.stdout)
end)
for _, s in ipairs(servers) do s:stop() end
sys.rmtree(dir)
assert(ok, err)
