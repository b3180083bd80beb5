--- A small fleet for the Ansible collection's spec and bench/fleet.lua: ansible-playbook with the
-- collection of this tree, and the inventory of a replication group (a primary, a replica and an
-- application host) made of MariaDB sandboxes and a Tomcat-shaped directory on this machine.
local sys = require "sys"
local json = require "myseal.json"
local host = require "myseal.host"
local h = require "support.helpers"

local M = {}

M.COLLECTION = host.home .. "/ansible"

local function read(path) return assert(sys.read_file(path)) end

--- An Ansible setup in `dir`: the collection on its collections path, a configuration, and the
-- environment that uses them (MYSEAL_STATE_DIR = `state`). With `ssh = { key, known_hosts }` the
-- configuration logs in as root with that private key, trusting only those host keys (nothing of
-- this machine's ~/.ssh is read or written), its connections multiplexed under dir/cp.
-- @return the environment for ansible-playbook and ansible-doc
function M.ansible(dir, state, ssh)
   -- ansible finds the collection as ansible_collections/myseal/myseal under its collections path
   assert(sys.mkdir(dir .. "/collections/ansible_collections/myseal"))
   assert(sys.run{ "ln", "-s", M.COLLECTION, dir .. "/collections/ansible_collections/myseal/myseal" }.ok)
   assert(sys.write_file(dir .. "/ansible.cfg", table.concat({
      "[defaults]",
      "collections_path = " .. dir .. "/collections",
      "interpreter_python = /usr/bin/python3",
      "home = " .. dir .. "/home",
      "local_tmp = " .. dir .. "/tmp-local",
      "remote_tmp = " .. dir .. "/tmp-remote",
      "retry_files_enabled = false",
      "nocolor = true",
      ssh and ("remote_user = root\nprivate_key_file = " .. ssh.key) or "",
      ssh and table.concat({ "[ssh_connection]",
         "ssh_args = -F /dev/null -o IdentitiesOnly=yes -o UserKnownHostsFile=" .. ssh.known_hosts
            .. " -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s",
         "control_path = " .. dir .. "/cp/%%h", "pipelining = True" }, "\n") or "",
      "",
   }, "\n")))
   if ssh then assert(sys.mkdir(dir .. "/cp", tonumber("700", 8))) end
   return { ANSIBLE_CONFIG = dir .. "/ansible.cfg", MYSEAL_STATE_DIR = state }
end

local counter = 0

--- Runs a playbook (a Lua table, written as JSON, which is YAML too) with `env`, its files in `dir`.
-- opts: inventory (a table; default: localhost), check, diff, verbose, env (more variables), wrap (argv
-- before ansible-playbook). The play's tasks find in `dump` a directory for results (see `tested`).
-- @return the sys.run result, with `recap` (host -> counts), `results` (name -> what `tested` wrote)
--   and `seconds`
function M.playbook(env, dir, play, opts)
   opts = opts or {}
   counter = counter + 1
   local base = ("%s/play%d"):format(dir, counter)
   assert(sys.write_file(base .. ".json", json.encode(play)))
   local inventory = opts.inventory or { all = { hosts = { localhost = { ansible_connection = "local" } } } }
   assert(sys.write_file(base .. "-inventory.json", json.encode(inventory)))
   local argv = { timeout = 600, env = {} }
   for _, a in ipairs(opts.wrap or {}) do argv[#argv + 1] = a end
   for _, a in ipairs{ "ansible-playbook", "-i", base .. "-inventory.json", base .. ".json",
                       "-e", "dump=" .. base .. "-results" } do argv[#argv + 1] = a end
   if opts.check then argv[#argv + 1] = "--check" end
   if opts.diff then argv[#argv + 1] = "--diff" end
   if opts.verbose then argv[#argv + 1] = "-vvv" end
   for k, v in pairs(env) do argv.env[k] = v end
   for k, v in pairs(opts.env or {}) do argv.env[k] = v end
   local t0 = sys.clock()
   local r = assert(sys.run(argv))
   r.seconds = sys.clock() - t0
   r.recap = {}
   for name, counts in r.stdout:gmatch("\n([%w_.-]+)%s+: (ok=[^\n]+)") do
      local t = {}
      for k, v in counts:gmatch("(%a+)=(%d+)") do t[k] = tonumber(v) end
      r.recap[name] = t
   end
   r.results = {}
   for _, name in ipairs(sys.dir(base .. "-results") or {}) do
      r.results[name:gsub("%.json$", "")] = assert(json.decode(read(base .. "-results/" .. name)))
   end
   return r
end

--- A task registered as `name` that may fail, and a task writing its result where playbook() reads it.
-- @return the two tasks
function M.tested(name, task)
   task.register = name
   task.ignore_errors = true
   return task, {
      name = "result of " .. name,
      ["ansible.builtin.copy"] = { content = "{{ " .. name .. " | to_json }}",
                                   dest = "{{ dump }}/" .. name .. ".json", mode = "0600" },
      delegate_to = "localhost", check_mode = false, changed_when = false,
   }
end

--- A play on localhost with these tasks (and the results directory made first).
function M.local_play(tasks)
   return { { hosts = "localhost", gather_facts = false, tasks = tasks,
              pre_tasks = { { ["ansible.builtin.file"] = { path = "{{ dump }}", state = "directory" },
                              check_mode = false, changed_when = false } } } }
end

--- The role over every host of the inventory.
M.role_play = { { hosts = "all", gather_facts = false, roles = { "myseal.myseal.encrypt" } } }

--- A small application schema and its account on a sandbox: tables to encrypt, an account to require.
function M.application(s)
   local c <close> = assert(s:connect{ database = "mysql" })
   for _, sql in ipairs{
      "CREATE DATABASE biobank",
      "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB",
      "INSERT INTO biobank.patients SELECT seq, CONCAT('patient ', seq) FROM seq_1_to_200",
      "CREATE USER 'lims'@'%' IDENTIFIED BY 'lims-application-password'",
      "GRANT SELECT ON biobank.* TO 'lims'@'%'",
   } do assert(c:exec(sql)) end
end

--- A Tomcat-shaped directory whose context.xml points at port `port` of this machine, as the
-- application's account lims.
-- @return its path (CATALINA_BASE)
function M.tomcat(dir, port)
   return h.tomcat_dir(dir, { port = port, user = "lims", password = "lims-application-password" })
end

--- The inventory of a replication group on this machine: db1 (primary, sandbox `opts.primary`), db2
-- (replica, sandbox `opts.replica`), app1 (the Tomcat directory `opts.tomcat`), their profiles and
-- files under `opts.work`; site names "PREFIX-db1" and so on (`opts.prefix`).
-- opts: myseal (the program the hosts use, default /usr/bin/myseal), package (installed by db1 only: the
-- three hosts are one machine here, and two dpkg at once would find each other's lock), state (the
-- state directory), replica_backup (false: the replica's profile lacks keyring.backup_dir).
-- @return the inventory, and the list of site names
function M.inventory(opts)
   local work, prefix = opts.work, opts.prefix
   local myseal = opts.myseal or "/usr/bin/myseal"
   local function server(name, s, backup)
      return {
         site = { name = prefix .. "-" .. name },
         server = { cnf = s.cnf, datadir = s.datadir, user = s.user,
                    restart_command = myseal .. " sandbox restart " .. s.name },
         connection = { host = "127.0.0.1", port = s.port, user = s.tcp_user },
         keyring = { dir = s.dir .. "/keyring",
                     backup_dir = backup and (work .. "/" .. name .. "-key-backup") or nil },
         pki = { dir = work .. "/" .. name .. "-tls", server_names = { "localhost", "127.0.0.1" } },
         -- tls-enforce watches failed logins for 2 s, not a site's 30: no client here to cut off
         tls = { watch_seconds = 2 },
         accounts = { ["lims@%"] = "ssl" },
         -- the watch after enforcing, short: nothing here logs in without TLS
         tls = { watch_seconds = 2 },
      }
   end
   -- where the story copies the primary's CA for the replica's channel
   local function replica(site)
      site.replication = { ca = work .. "/db2-primary-ca.pem" }
      return site
   end
   local p, q, tomcat = opts.primary, opts.replica, opts.tomcat
   local inventory = { all = {
      vars = { ansible_connection = "local", myseal_state_dir = opts.state, myseal_path = myseal },
      hosts = {
         db1 = { myseal_role = "primary", myseal_site_path = work .. "/db1/site.ini", myseal_package = opts.package,
                 myseal_site = server("db1", p, true), myseal_secrets = { ["connection.password"] = p.tcp_password } },
         db2 = { myseal_role = "replica", myseal_primary = "db1", myseal_site_path = work .. "/db2/site.ini",
                 myseal_site = replica(server("db2", q, opts.replica_backup ~= false)),
                 myseal_secrets = { ["connection.password"] = q.tcp_password } },
         app1 = { myseal_role = "app", myseal_primary = "db1", myseal_site_path = work .. "/app1/site.ini",
                  myseal_site = { site = { name = prefix .. "-app1" },
                     tomcat = { catalina_base = tomcat, ca = tomcat .. "/conf/db-ca.pem", driver = "mariadb-3",
                                user = sys.user().name, group = sys.user().name } },
                  myseal_secrets = { ["tomcat.truststore_password"] = "truststore-password-of-app1" } },
      },
   } }
   return inventory, { prefix .. "-db1", prefix .. "-db2", prefix .. "-app1" }
end

--- Seconds spent in the steps of a site's runbooks (from their journals under `state`) in the runs
-- that started after `since` (a journal name's time prefix, `M.stamp()`).
function M.step_seconds(state, site, since)
   local total = 0
   for _, runbook in ipairs{ "at-rest", "in-transit", "replica-tls", "app-tomcat", "tls-enforce" } do
      local runs = state .. "/targets/site-" .. site .. "/runs/" .. runbook
      for _, name in ipairs(sys.dir(runs) or {}) do
         if name > since then
            for line in io.lines(runs .. "/" .. name) do
               local e = json.decode(line)
               if e and e.event == "step" and e.seconds then total = total + e.seconds end
            end
         end
      end
   end
   return total
end

--- A journal name's time prefix for now (journals started later sort after it).
function M.stamp()
   return os.date("!%Y%m%d-%H%M%S")
end

--- The journals of a site target's runbook, oldest first (their names start with the time, to the
-- microsecond).
function M.journals(state, site, runbook)
   local names = sys.dir(state .. "/targets/site-" .. site .. "/runs/" .. runbook) or {}
   table.sort(names)
   return names
end

return M
