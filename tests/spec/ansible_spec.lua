-- The Ansible collection (ansible/): ansible-playbook (Debian's ansible-core) on this machine with
-- connection local, against MariaDB sandboxes. The modules run the myseal of this build; the role
-- installs the Debian package made from this build, inside a private mount namespace whose /usr,
-- /etc and /var are overlays on a tmpfs, so nothing of the machine changes.
local sys = require "sys"
local text = require "myseal.text"
local json = require "myseal.json"
local host = require "myseal.host"
local sandbox = require "myseal.sandbox"
local target = require "myseal.engine.target"
local fleet = require "support.fleet"

local COLLECTION = fleet.COLLECTION
local application, tested, local_play = fleet.application, fleet.tested, fleet.local_play
local NO_BACKUP = "keyring.backup_dir is not set: the key material must be backed up before anything is encrypted "
   .. "(or set keyring.accept_no_backup=true to accept that losing it loses the data)"

local function run(argv)
   local r = assert(sys.run(argv))
   assert(r.ok, table.concat(argv, " ") .. ": " .. r.stdout .. r.stderr)
   return r
end

local function read(path) return assert(sys.read_file(path)) end

local function contains(text, what) return text:find(what, 1, true) ~= nil end

-- the table rows of `sql` on a sandbox
local function query(s, sql, ...)
   local c <close> = assert(s:connect())
   return assert(c:query(sql, ...))
end

local function keyring_active(s)
   local rows = query(s, "SELECT PLUGIN_STATUS FROM INFORMATION_SCHEMA.PLUGINS "
      .. "WHERE PLUGIN_NAME = 'FILE_KEY_MANAGEMENT'")
   return rows[1] ~= nil and rows[1][1] == "ACTIVE"
end

describe("the Ansible collection #lab", function()
   local dir, env
   local sites = {}   -- state directories of site targets to remove

   setup(function()
      dir = assert(sys.tmpdir("ansible-spec"))
      -- the servers run as mysql: the key and TLS directories under dir must be reachable
      assert(sys.chmod(dir, tonumber("755", 8)))
      env = fleet.ansible(dir, target.state_root())
   end)
   teardown(function()
      for _, name in ipairs(sites) do sys.rmtree(target.state_root() .. "/targets/site-" .. name) end
      sys.rmtree(dir)
   end)

   local function playbook(play, opts) return fleet.playbook(env, dir, play, opts) end

   local function runbook_task(args)
      args.myseal = args.myseal or host.exe
      return { name = "runbook", ["myseal.myseal.runbook"] = args }
   end

   it("shows each module's and the role's documentation with ansible-doc", function()
      local r = run{ "ansible-doc", "myseal.myseal.runbook", "myseal.myseal.check", env = env }
      assert.truthy(contains(r.stdout, "> MYSEAL.MYSEAL.RUNBOOK"), r.stdout)
      assert.truthy(contains(r.stdout, "> MYSEAL.MYSEAL.CHECK"), r.stdout)
      local docs = assert(json.decode(run{ "ansible-doc", "--json", "myseal.myseal.runbook", "myseal.myseal.check",
                                           env = env }.stdout))
      local function names(t)
         local out = {}
         for k in pairs(t) do out[#out + 1] = k end
         table.sort(out)
         return out
      end
      local common = { "myseal", "sandbox", "secrets", "set", "site", "state_dir" }
      local function with(...)
         local out = { ... }
         table.move(common, 1, #common, #out + 1, out)
         table.sort(out)
         return out
      end
      assert.same(with("name", "resume", "runbooks", "steps"), names(docs["myseal.myseal.runbook"].doc.options))
      assert.same({ "from", "only" }, names(docs["myseal.myseal.runbook"].doc.options.steps.suboptions))
      assert.same(with("fail_on"), names(docs["myseal.myseal.check"].doc.options))
      for _, m in ipairs{ "myseal.myseal.runbook", "myseal.myseal.check" } do
         local said = table.concat(docs[m].doc.options.secrets.description, " ")
         assert.truthy(contains(said, "only on its standard input (C(--secrets-stdin), one JSON object)"), said)
      end
      local role = assert(json.decode(run{ "ansible-doc", "-t", "role", "--json", "myseal.myseal.encrypt",
                                           env = env }.stdout))["myseal.myseal.encrypt"]
      assert.same({ "myseal_ca_file", "myseal_package", "myseal_path", "myseal_primary", "myseal_resume",
                    "myseal_role", "myseal_secrets", "myseal_site", "myseal_site_path", "myseal_state_dir",
                    "myseal_story" },
                  names(role.entry_points.main.options))
   end)

   it("passes ansible-test sanity (the offline part), validate-modules, pylint and ansible-lint", function()
      local r = assert(sys.run{ COLLECTION .. "/tests/sanity/run.sh", env = env, timeout = 600 })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      for _, t in ipairs{ "ansible-test", "ansible-doc", "pep8", "pylint", "validate-modules", "runtime-metadata",
                          "yamllint", "ansible-lint" } do
         assert.truthy(contains(r.stdout, "sanity: " .. t .. " ok\n"), r.stdout)
      end
   end)

   it("builds as a collection (ansible-galaxy reads galaxy.yml)", function()
      local r = run{ "ansible-galaxy", "collection", "build", COLLECTION, "--output-path", dir .. "/built", env = env }
      assert.truthy(contains(r.stdout, "Created collection for myseal.myseal at " .. dir
         .. "/built/myseal-myseal-0.1.0.tar.gz"), r.stdout)
      local files = run{ "tar", "-tzf", dir .. "/built/myseal-myseal-0.1.0.tar.gz" }.stdout
      for _, f in ipairs{ "plugins/modules/runbook.py", "plugins/modules/check.py", "roles/encrypt/tasks/main.yml",
                          "meta/runtime.yml", "MANIFEST.json" } do
         assert.truthy(contains(files, f .. "\n"), f .. " is not in the collection: " .. files)
      end
   end)

   it("plans at-rest in check mode (nothing changes, my.cnf's diff shown), runs it, then has nothing to do", function()
      local s <close> = assert(sandbox.start{ name = "spec-ansible-module" })
      application(s)
      local backup = dir .. "/module-key-backup"
      local task = runbook_task{ name = "at-rest", sandbox = s.name, set = { ["keyring.backup_dir"] = backup } }
      local play = local_play{ tested("r", task) }
      local cnf = read(s.cnf)
      local journals = target.state_root() .. "/targets/sandbox-" .. s.name .. "/runs/at-rest"
      local wanted = { "key-material", "key-backup", "option-file", "restart", "encrypt-tables", "system-tablespace",
                       "aria-tables", "rehearsal" }

      -- check mode: what would change, and the diff of the option file; nothing changes
      local r = playbook(play, { check = true, diff = true })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.same({ ok = 3, changed = 1, unreachable = 0, failed = 0, skipped = 0, rescued = 0, ignored = 0 },
                  r.recap.localhost)
      assert.same(wanted, r.results.r.changed_steps)
      assert.same({ "option-file", "todo" }, { r.results.r.steps[4].name, r.results.r.steps[4].state })
      assert.truthy(contains(r.stdout, "TASK [runbook] ****"), r.stdout)
      assert.truthy(contains(r.stdout, "--- " .. s.cnf .. "\n+++ " .. s.cnf .. "\n"), r.stdout)
      assert.truthy(contains(r.stdout, "\n+plugin_load_add=file_key_management\n"), r.stdout)
      assert.truthy(r.stdout:find(s.dir:gsub("%p", "%%%0") .. "/keyring/keyfile%.enc: %(%d+ bytes, content not shown%)\n"),
         r.stdout)
      assert.equal(cnf, read(s.cnf))
      assert.is_nil(sys.stat(s.dir .. "/keyring"))
      assert.is_nil(sys.stat(backup))
      assert.is_nil(sys.stat(journals))
      assert.is_false(keyring_active(s))

      -- the run
      r = playbook(play)
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.equal(1, r.recap.localhost.changed)
      -- what the plan showed, but for the tables the encryption threads may have done from the restart on
      local ran = {}
      for _, name in ipairs(r.results.r.changed_steps) do
         if name ~= "encrypt-tables" and name ~= "system-tablespace" then ran[#ran + 1] = name end
      end
      assert.same({ "key-material", "key-backup", "option-file", "restart", "aria-tables" }, ran)
      assert.equal("ok", r.results.r.result.status)
      assert.equal(#r.results.r.changed_steps, r.results.r.result.changed)
      assert.truthy(sys.stat(r.results.r.result.journal), r.results.r.result.journal)
      assert.truthy(keyring_active(s))
      assert.truthy(contains(read(s.cnf), "\nplugin_load_add=file_key_management\n"))
      local encrypted = query(s, "SELECT NAME FROM INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION "
         .. "WHERE NAME LIKE 'biobank/%' AND ENCRYPTION_SCHEME = 1")
      assert.same({ 1, "biobank/patients" }, { #encrypted, encrypted[1][1] })

      -- again, and in check mode: nothing to do, nothing shown
      for _, mode in ipairs{ {}, { check = true, diff = true } } do
         r = playbook(play, mode)
         assert.equal(0, r.status, r.stdout .. r.stderr)
         assert.same({ ok = 3, changed = 0, unreachable = 0, failed = 0, skipped = 0, rescued = 0, ignored = 0 },
                     r.recap.localhost)
         assert.same({}, r.results.r.changed_steps)
         assert.is_false(contains(r.stdout, "--- " .. s.cnf))
      end
   end)

   it("fails the task naming the step that failed, and says what myseal said about bad input", function()
      local s <close> = assert(sandbox.start{ name = "spec-ansible-fail" })
      local cnf = read(s.cnf)
      local t1, d1 = tested("failed_step", runbook_task{ name = "at-rest", sandbox = s.name })
      local t2, d2 = tested("bad_set", runbook_task{ name = "at-rest", sandbox = s.name, set = { ["nope.x"] = 1 } })
      local t3, d3 = tested("bad_name", runbook_task{ name = "at-rest", sandbox = s.name, set = { nope = 1 } })
      local t4, d4 = tested("no_step", runbook_task{ name = "at-rest", sandbox = s.name, steps = { only = "nosuch" } })
      local r = playbook(local_play{ t1, d1, t2, d2, t3, d3, t4, d4 })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.equal(4, r.recap.localhost.ignored)
      local f = r.results.failed_step
      assert.is_true(f.failed)
      assert.equal("runbook at-rest, step preflight: " .. NO_BACKUP, f.msg)
      assert.equal("preflight", f.step)
      assert.equal(1, f.rc)
      assert.equal("failed", f.steps[1].state)
      assert.equal(NO_BACKUP, f.steps[1].error)
      assert.is_false(f.changed)
      assert.truthy(contains(r.stdout, 'fatal: [localhost]: FAILED! => {"changed": false'), r.stdout)
      assert.same({ true, "--set: no parameter nope.x in this runbook", 2 },
                  { r.results.bad_set.failed, r.results.bad_set.msg, r.results.bad_set.rc })
      assert.same({ true, "set: 'nope' is not a parameter name (section.key)" },
                  { r.results.bad_name.failed, r.results.bad_name.msg })
      local names = table.concat(require("myseal.runbook").load("at-rest"):step_names(), ", ")
      assert.same({ true, "runbook at-rest has no step 'nosuch' (steps: " .. names .. ")", 2 },
                  { r.results.no_step.failed, r.results.no_step.msg, r.results.no_step.rc })
      assert.equal(cnf, read(s.cnf))
   end)

   it("returns the posture report as facts, and fails on it only when told to", function()
      local s <close> = assert(sandbox.start{ name = "spec-ansible-check" })
      application(s)
      local d = assert(sys.run{ host.exe, "check", "--sandbox", s.name, "--format", "json", env = env })
      assert.equal(1, d.status, d.stderr)   -- findings fail
      local direct = assert(json.decode(d.stdout))
      local t1, d1 = tested("report", { name = "check",
                                        ["myseal.myseal.check"] = { sandbox = s.name, myseal = host.exe } })
      local facts = { name = "the fact", ["ansible.builtin.copy"] = { content = "{{ myseal_check | to_json }}",
         dest = "{{ dump }}/fact.json", mode = "0600" }, delegate_to = "localhost", check_mode = false,
         changed_when = false }
      local t2, d2 = tested("strict", { name = "check, failing on failures",
                                        ["myseal.myseal.check"] = { sandbox = s.name, myseal = host.exe,
                                                                    fail_on = "fail" } })
      local r = playbook(local_play{ t1, d1, facts, t2, d2 }, { check = true })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local fact, report = r.results.fact, r.results.report
      assert.equal("myseal.check/2", fact.schema)
      assert.equal("sandbox " .. s.name, fact.target)
      assert.same(direct.summary, fact.summary)
      local function severities(rep)
         local out = {}
         for _, finding in ipairs(rep.findings) do out[finding.id] = finding.severity end
         return out
      end
      assert.same(severities(direct), severities(fact))
      assert.equal("fail", severities(fact)["tables:biobank"])
      assert.equal("fail", severities(fact)["in-transit:ca"])
      assert.same({ false, false, "fail", direct.summary }, { report.changed, report.failed or false, report.status,
                                                             report.summary })
      local failing = {}
      for _, finding in ipairs(direct.findings) do
         if finding.severity == "fail" then failing[#failing + 1] = finding.id end
      end
      assert.is_true(#failing > 0)
      assert.same({ true, ("%s at fail or worse: %s"):format(text.count(#failing, "finding"), table.concat(failing, ", ")) },
                  { r.results.strict.failed, r.results.strict.msg })
   end)

   it("gives secrets to myseal on its standard input only: not in argv, its environment, the output, Ansible's log "
      .. "or a result", function()
      local s <close> = assert(sandbox.start{ name = "spec-ansible-secret" })
      local secret = s.tcp_password
      local work = dir .. "/secret"
      assert(sys.mkdir(work))
      -- the restart command records every process's command line at the moment myseal restarts the server,
      -- and the environment myseal itself was started with (its parent's, the module's child)
      local restart = work .. "/restart"
      assert(sys.write_file(restart, ("#!/bin/sh\nps -eo args > %s/ps.txt\n"
         .. "tr '\\0' ' ' < /proc/$PPID/cmdline > %s/parent.txt\n"
         .. "tr '\\0' '\\n' < /proc/$PPID/environ > %s/myseal-env.txt\nexec %s sandbox restart %s\n")
         :format(work, work, work, host.exe, s.name), { mode = tonumber("755", 8) }))
      local profile = work .. "/site.ini"
      assert(sys.write_file(profile, table.concat({
         "[site]", "name = ansible-spec-secret",
         "[server]", "cnf = " .. s.cnf, "datadir = " .. s.datadir, "user = " .. s.user,
         "restart_command = " .. restart,
         "[connection]", "host = 127.0.0.1", "port = " .. s.port, "user = " .. s.tcp_user,
         "[keyring]", "dir = " .. s.dir .. "/keyring", "backup_dir = " .. work .. "/key-backup", "",
      }, "\n")))
      sites[#sites + 1] = "ansible-spec-secret"
      local task, dump = tested("r", runbook_task{ name = "at-rest", site = profile, state_dir = target.state_root(),
                                                   secrets = { ["connection.password"] = secret } })
      local log = work .. "/ansible.log"
      local r = playbook(local_play{ task, dump }, { verbose = true, env = { ANSIBLE_LOG_PATH = log } })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.is_false(r.results.r.failed, r.stdout)
      assert.equal(1, r.recap.localhost.changed)
      assert.truthy(keyring_active(s))   -- the password reached myseal: it connected over TCP with it
      local ps = read(work .. "/ps.txt")
      assert.truthy(contains(ps, host.exe .. " run at-rest --yes --site " .. profile .. " --secrets-stdin --json"), ps)
      assert.equal(host.exe .. " run at-rest --yes --site " .. profile .. " --secrets-stdin --json ",
         read(work .. "/parent.txt"))
      local myseal_env = read(work .. "/myseal-env.txt")
      assert.truthy(contains(myseal_env, "MYSEAL_STATE_DIR=" .. target.state_root()), myseal_env)
      assert.truthy(contains(ps, "ansible-playbook"), ps)
      local seen = { ps = ps, env = myseal_env, stdout = r.stdout, stderr = r.stderr, log = read(log), result = json.encode(r.results.r),
                     profile = read(profile) }
      for _, name in ipairs(sys.dir(target.state_root() .. "/targets/site-ansible-spec-secret/runs/at-rest")) do
         seen[name] = read(target.state_root() .. "/targets/site-ansible-spec-secret/runs/at-rest/" .. name)
      end
      assert.truthy(contains(seen.log, "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"), seen.log)
      for where, text in pairs(seen) do
         assert.is_false(contains(text, secret), "the secret is in " .. where)
      end
   end)
   -- The Debian package of this build, made once.
   local function package()
      local build = host.exe:match("^(.*)/[^/]+$")
      run{ "cpack", "-G", "DEB", "-B", dir .. "/deb", "--config", build .. "/CPackConfig.cmake", timeout = 300 }
      local arch = run{ "dpkg", "--print-architecture" }.stdout:match("%S+")
      local deb = ("%s/deb/myseal_%s_%s.deb"):format(dir, host.version, arch)
      assert(sys.stat(deb), "no " .. deb)
      return deb
   end

   -- A process holding a mount namespace in which /usr, /etc and /var are overlays on a tmpfs: what
   -- the role installs there is gone with it. Returns its pid (nsenter --target PID --mount enters it).
   local function namespace()
      local upper, ready = dir .. "/overlay", dir .. "/overlay-ready"
      assert(sys.mkdir(upper))
      local pid = assert(sys.spawn{ "unshare", "--mount", "--propagation", "private", "sh", "-c", [[
         set -e
         mount -t tmpfs tmpfs "$1"
         for d in usr etc var; do
            mkdir -p "$1/$d.up" "$1/$d.work"
            mount -t overlay overlay -o "lowerdir=/$d,upperdir=$1/$d.up,workdir=$1/$d.work" "/$d"
         done
         touch "$2"
         exec sleep 3600]], "sh", upper, ready, log = dir .. "/overlay.log" })
      local deadline = sys.clock() + 30
      while not sys.stat(ready) and sys.alive(pid) and sys.clock() < deadline do sys.sleep(0.02) end
      assert(sys.stat(ready), "the namespace did not start: " .. (sys.read_file(dir .. "/overlay.log") or ""))
      return pid
   end

   it("installs the package, writes the profiles and runs the story in order across a replication group", function()
      local deb = package()
      local holder = namespace()
      local p <close> = assert(sandbox.start{ name = "spec-ansible-primary" })
      local q <close> = assert(sandbox.start{ name = "spec-ansible-replica" })
      application(p)
      application(q)
      local ok, err = pcall(function()
         local work = dir .. "/fleet"
         local tomcat = fleet.tomcat(work .. "/tomcat", p.port)
         local function inventory(replica_backup)
            local inv, names = fleet.inventory{ work = work, prefix = "ansible-spec", primary = p, replica = q,
               tomcat = tomcat, package = deb, state = target.state_root(), replica_backup = replica_backup }
            table.move(names, 1, #names, #sites + 1, sites)
            return inv
         end
         local play = fleet.role_play
         local inside = { "nsenter", "--target", tostring(holder), "--mount", "--" }
         local cnf_p = read(p.cnf)

         -- the replica cannot get its keyring (no key backup): its primary waits, and so does the application host
         local r = playbook(play, { inventory = inventory(false), wrap = inside })
         assert.equal(2, r.status, r.stdout .. r.stderr)
         assert.same({ 1, 1, 1 }, { r.recap.db1.failed, r.recap.db2.failed, r.recap.app1.failed })
         assert.truthy(contains(r.stdout, "runbook at-rest, step preflight: " .. NO_BACKUP), r.stdout)
         assert.truthy(contains(r.stdout, "at rest on the primary on db1 waits: db2 (replica) has not finished "
            .. "stage 1 'keyring on the replicas' (failed, or not in this batch)"), r.stdout)
         assert.truthy(contains(r.stdout, "the primary's CA on the application hosts on app1 waits: db1 (primary) has "
            .. "not finished stage 2 'at rest on the primary' (failed, or not in this batch)"), r.stdout)
         assert.is_false(keyring_active(p))
         assert.equal(cnf_p, read(p.cnf))

         -- check mode: plans what can be planned, changes nothing
         local cnf_q = read(q.cnf)
         r = playbook(play, { inventory = inventory(true), wrap = inside, check = true })
         assert.equal(0, r.status, r.stdout .. r.stderr)
         assert.same({ 0, 0, 0 }, { r.recap.db1.failed, r.recap.db2.failed, r.recap.app1.failed })
         assert.truthy(r.recap.db2.changed > 0 and r.recap.db1.changed > 0, r.stdout)
         assert.truthy(contains(r.stdout, "check mode: not planned, since db2 would change something in an earlier "
            .. "stage first"), r.stdout)
         assert.same({ cnf_p, cnf_q }, { read(p.cnf), read(q.cnf) })
         assert.same({ false, false }, { keyring_active(p), keyring_active(q) })
         assert.is_nil(sys.stat(tomcat .. "/conf/db-ca.pem"))

         -- the story, with the diffs of the files it changes
         r = playbook(play, { inventory = inventory(true), wrap = inside, diff = true })
         assert.equal(0, r.status, r.stdout .. r.stderr)
         local xml = tomcat .. "/conf/context.xml"
         assert.truthy(contains(r.stdout, "--- " .. xml .. "\n+++ " .. xml .. "\n"), r.stdout)
         -- the data source trusts the CA itself: the copy Tomcat's user can read, beside context.xml
         local url = ('url="jdbc:mariadb://127.0.0.1:%d/biobank?sslMode=verify-full&amp;serverSslCert=%s/conf/db-ca.pem"')
            :format(p.port, tomcat)
         local line = '\n+              driverClassName="org.mariadb.jdbc.Driver" ' .. url .. "\n"
         assert.truthy(contains(r.stdout, line), r.stdout)
         assert.truthy(contains(r.stdout, "--- " .. p.cnf .. "\n+++ " .. p.cnf .. "\n"), r.stdout)
         assert.same({ 0, 0, 0 }, { r.recap.db1.failed, r.recap.db2.failed, r.recap.app1.failed })
         local function journals(site, runbook) return fleet.journals(target.state_root(), site, runbook) end
         local at_rest_q, at_rest_p = journals("ansible-spec-db2", "at-rest"), journals("ansible-spec-db1", "at-rest")
         local tls_p, tls_q = journals("ansible-spec-db1", "in-transit"), journals("ansible-spec-db2", "in-transit")
         local enf_p, enf_q = journals("ansible-spec-db1", "tls-enforce"), journals("ansible-spec-db2", "tls-enforce")
         local app = journals("ansible-spec-app1", "app-tomcat")
         assert.same({ 2, 1, 1, 1, 1, 1, 1 }, { #at_rest_q, #at_rest_p, #tls_p, #tls_q, #app, #enf_p, #enf_q })
         local order = { at_rest_q[2], at_rest_p[1], tls_p[1], app[1], enf_p[1] }
         local sorted = { table.unpack(order) }
         table.sort(sorted)
         assert.same(order, sorted)
         assert.truthy(enf_q[1] > app[1])
         for _, s in ipairs{ p, q } do
            assert.truthy(keyring_active(s), s.name)
            assert.equal(1, #query(s, "SELECT NAME FROM INFORMATION_SCHEMA.INNODB_TABLESPACES_ENCRYPTION "
               .. "WHERE NAME = 'biobank/patients' AND ENCRYPTION_SCHEME = 1"), s.name)
            assert.equal("ON", query(s, "SHOW GLOBAL VARIABLES LIKE 'require_secure_transport'")[1][2])
            assert.equal("ANY", query(s, "SELECT ssl_type FROM mysql.user WHERE User = 'lims'")[1][1])
         end
         assert.equal(read(work .. "/db1-tls/ca.pem"), read(tomcat .. "/conf/db-ca.pem"))
         assert.truthy(contains(read(tomcat .. "/conf/context.xml"), "sslMode=verify-full"))
         local profile = read(work .. "/db1/site.ini")
         assert.truthy(contains(profile, "\n[site]\nname = ansible-spec-db1\n"), profile)
         assert.truthy(contains(profile, "\n[accounts]\nlims@% = ssl\n"), profile)
         assert.truthy(contains(profile, "\nserver_names = localhost, 127.0.0.1\n"), profile)
         assert.is_nil(sys.stat(work .. "/db1/site-without-accounts.ini"))   -- no stage leaves a section out now
         local installed = run{ "nsenter", "--target", tostring(holder), "--mount", "--",
                                "dpkg-query", "-W", "myseal" }
         assert.equal("myseal\t" .. host.version .. "\n", installed.stdout)

         -- again: nothing changes (check mode after a run is the module's spec above)
         r = playbook(play, { inventory = inventory(true), wrap = inside })
         assert.equal(0, r.status, r.stdout .. r.stderr)
         for _, h in ipairs{ "db1", "db2", "app1" } do
            assert.same({ h, 0, 0 }, { h, r.recap[h].changed, r.recap[h].failed }, r.stdout)
         end
      end)
      sys.kill(holder, "KILL")
      while sys.alive(holder) do sys.sleep(0.01) end
      assert(ok, err)
   end)
end)
