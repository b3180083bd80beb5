-- The container driver on a real engine: Debian's podman as this machine runs it
-- (tests/containers/docker) and an image of Debian's MariaDB built with mmdebstrap
-- (support/containers.lua). The runbooks run as a site runs them (`--sandbox NAME`), from the
-- suite's network namespace where the container's port is published; independent checks use
-- the server's own tables, openssl s_client and the mariadb client. Skipped (and counted so)
-- where no engine can run.
local sys = require "sys"
local json = require "myseal.json"
local mysql = require "mysql"
local containers = require "support.containers"

local MYSEAL = require("myseal.host").exe
local SITE_CNF = require("myseal.host").home .. "/tests/corpus/cnf/debian/etc/mysql/mariadb.conf.d/50-server.cnf"

-- docs/containers.md's pipeline: the server options of a site's option file, without its paths
local OWN_CNF = [[my_print_defaults --defaults-file="$1" mysqld server mariadb mariadbd \
  | grep -vE '^--(datadir|socket|port|pid[-_]file|log[-_]error|bind[-_]address|tmpdir|user|basedir)=' \
  | sed 's/^--/--option=/' \
  | xargs -d '\n' "$2" sandbox start --driver container --name ctr --engine podman --image "$3" --json]]

describe("container sandboxes", function()
   local engine, why, state

   -- myseal in the suite's network namespace, with the spec's own state directory
   local function myseal(...)
      return engine:netns({ MYSEAL, ... }, { MYSEAL_STATE_DIR = state })
   end

   setup(function()
      engine, why = containers.start()
      state = assert(sys.tmpdir("container-spec"))
   end)
   teardown(function()
      if engine then
         myseal("sandbox", "stop", "--all")
         engine:stop()
      end
      sys.rmtree(state)
   end)

   -- The real user id a process runs as.
   local function uid_of(pid)
      return assert(sys.read_file("/proc/" .. pid .. "/status")):match("Uid:%s+(%d+)")
   end

   local function root(info)
      return assert(mysql.connect{ socket = info.socket, user = "root" })
   end

   -- What is left of a container in the engine: its record, its layer.
   local function container_record(info)
      local r = engine:run{ "ps", "--all", "--filter", "label=myseal.sandbox=" .. info.dir, "--format", "{{.Names}}" }
      assert(r.ok, r.stderr)
      return r.stdout
   end

   it("runs at-rest and in-transit on a container: tables encrypted, TLS verified, a second run "
      .. "changes nothing, and stop leaves nothing behind", function()
      if not engine then pending(why) end
      local network = containers.network()
      local images = engine:run{ "images", "--all", "--format", "{{.ID}}" }.stdout
      -- started as docs/containers.md says a site starts one with its own my.cnf: Debian's here
      local r = engine:netns({ "sh", "-c", OWN_CNF, "sh", SITE_CNF, MYSEAL, engine.image_name },
         { MYSEAL_STATE_DIR = state })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      finally(function() myseal("sandbox", "stop", "--all") end)
      local info = assert(json.decode(r.stdout))
      assert.same({ "container", "podman", engine.image_name, "mariadb", "mysql" },
         { info.driver, info.engine, info.image, info.flavor, info.user })
      -- the server runs in the container as this machine's mysql, on the sandbox's own files
      assert.equal(assert(sys.run{ "id", "-u", "mysql" }).stdout:match("%d+"), uid_of(info.pid))
      local cmdline = assert(sys.read_file("/proc/" .. info.pid .. "/cmdline"))
      assert.equal(info.cnf, cmdline:match("%-%-defaults%-file=(%Z+)"))
      assert.equal(info.container .. "\n", container_record(info))
      local layer = engine:run{ "inspect", "--format", "{{.Id}} {{.GraphDriver.Data.UpperDir}}", info.container }
      local id, upper = layer.stdout:match("^(%x+) (%S+)/diff")
      assert.is_string(upper, layer.stdout .. layer.stderr)
      do
         local c <close> = root(info)
         assert(c:exec("CREATE DATABASE biobank"))
         assert(c:exec("CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100)) ENGINE=InnoDB"))
         assert(c:exec("INSERT INTO biobank.patients VALUES (1, 'Bernd Moreau'), (2, 'Ilse Brandt')"))
         assert(c:exec("CREATE TABLE biobank.specimens (id INT PRIMARY KEY, patient INT, kind VARCHAR(20)) "
            .. "ENGINE=InnoDB"))
         assert(c:exec("INSERT INTO biobank.specimens VALUES (1, 1, 'serum'), (2, 2, 'plasma')"))
         assert.equal(0, c:query("SELECT COUNT(*) FROM mysql.user WHERE User = ''")[1][1])
         assert.equal(10, tonumber(c:query("SELECT @@expire_logs_days")[1][1]))   -- the site's own option
      end
      local backup = state .. "/key-backup"
      local at_rest = { "run", "at-rest", "--sandbox", "ctr", "--yes", "--set", "keyring.backup_dir=" .. backup }
      r = myseal(table.unpack(at_rest))
      assert.equal(0, r.status, r.stdout .. r.stderr)
      -- the restart was the container's: the same container, a new server process
      assert.matches("%] restart +changed", r.stdout)
      local after = assert(json.decode(myseal("sandbox", "status", "--json").stdout))[1]
      assert.are_not.equal(info.pid, after.pid)
      assert.equal(id .. " " .. upper .. "/diff\n",
         engine:run{ "inspect", "--format", "{{.Id}} {{.GraphDriver.Data.UpperDir}}", info.container }.stdout)
      -- every table encrypted, as the server says; no patient's name in its files
      do
         local c <close> = root(info)
         local rows = assert(c:query("SELECT NAME, ENCRYPTION_SCHEME, MIN_KEY_VERSION > 0 "
            .. "FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'biobank/%' ORDER BY NAME"))
         local got = {}
         for _, row in ipairs(rows) do got[#got + 1] = table.concat(row, " ") end
         assert.same({ "biobank/patients 1 1", "biobank/specimens 1 1" }, got)
      end
      local grep = assert(sys.run{ "grep", "-rl", "Bernd Moreau", info.datadir .. "/biobank" })
      assert.equal(1, grep.status, "plaintext in " .. grep.stdout)
      -- the key file the runbook wrote is the server's, inside the container as outside
      local key = assert(sys.stat(info.dir .. "/keyring/keyfile.enc"))
      assert.equal("mysql 0600", ("%s %04o"):format(key.user, key.mode))

      r = myseal("run", "in-transit", "--sandbox", "ctr", "--yes")
      assert.equal(0, r.status, r.stdout .. r.stderr)
      local ca = info.dir .. "/tls-myseal/ca.pem"
      local sc = engine:netns{ "openssl", "s_client", "-starttls", "mysql", "-connect", "127.0.0.1:" .. info.port,
         "-CAfile", ca, "-verify_return_error", "-verify_hostname", "localhost", stdin = "" }
      assert.matches("Verify return code: 0 %(ok%)", sc.stdout, sc.stdout .. sc.stderr)
      local client = engine:netns({ "mariadb", "--ssl", "--ssl-ca=" .. ca, "--ssl-verify-server-cert",
         "-h", "127.0.0.1",
         "-P", tostring(info.port), "-u", info.tcp_user, "-N", "-e", "SHOW STATUS LIKE 'Ssl_version'" },
         { MYSQL_PWD = info.tcp_password })
      assert.matches("^Ssl_version\tTLSv1%.[23]\n$", client.stdout, client.stderr)

      -- a second run changes nothing
      for _, argv in ipairs{ at_rest, { "run", "in-transit", "--sandbox", "ctr", "--yes" } } do
         r = myseal(table.unpack(argv))
         assert.equal(0, r.status, r.stdout .. r.stderr)
         assert.matches("run: nothing to do", r.stdout)
      end
      r = myseal("check", "--sandbox", "ctr", "--format", "json")
      local report = assert(json.decode(r.stdout), r.stdout .. r.stderr)
      local findings = {}
      for _, f in ipairs(report.findings) do findings[f.id] = f end
      assert.same({ "ok", 2 }, { findings["tables:biobank"].severity, findings["tables:biobank"].encrypted })
      assert.equal("ok", findings["in-transit:verify"].severity)

      -- a restart the server refuses names the server's own line; once the option file is
      -- right again, the container comes back with its data
      local cnf = assert(sys.read_file(info.cnf))
      assert(sys.write_file(info.cnf, cnf .. "no_such_option=1\n"))
      r = myseal("sandbox", "restart", "ctr")
      assert.equal(1, r.status)
      assert.matches("^myseal: sandbox 'ctr' did not come back %(the server exited during start%-up%); its error log "
         .. "ends:\n.*unknown variable 'no_such_option=1'", r.stderr)
      assert(sys.write_file(info.cnf, cnf))
      r = myseal("sandbox", "restart", "ctr")
      assert.equal(0, r.status, r.stderr)
      do
         local c <close> = root(info)
         assert.equal("Bernd Moreau", c:query("SELECT name FROM biobank.patients WHERE id = 1")[1][1])
      end

      r = myseal("sandbox", "stop", "ctr")
      assert.equal("sandbox ctr stopped\n", r.stdout)
      assert.equal("", container_record(info))
      assert.is_nil(sys.stat(upper))
      assert.is_nil(sys.stat(info.dir))
      assert.equal(images, engine:run{ "images", "--all", "--format", "{{.ID}}" }.stdout)
      assert.same(network, containers.network())
   end)

   it("says what is wrong with an image, a start that fails leaves nothing, and --user root is root's", function()
      if not engine then pending(why) end
      -- the default engine: the first that answers (docker, here the suite's)
      local r = myseal("sandbox", "start", "--driver", "container", "--image", engine.image_name, "--name", "bad",
         "--option", "innodb_bogus=x")
      assert.equal(1, r.status)
      assert.matches("^myseal: sandbox 'bad' did not start %(the server exited during start%-up%):\n"
         .. ".*unknown variable 'innodb_bogus=x'", r.stderr)
      local leftovers = engine:run{ "ps", "--all", "--filter", "name=myseal-msb-bad-", "--format", "{{.Names}}" }
      assert.equal("", leftovers.stdout)
      for _, f in ipairs(sys.dir("/tmp")) do assert.is_nil(f:find("^msb%-bad%-"), f) end
      assert.equal("no sandboxes\n", myseal("sandbox", "status").stdout)
      local version = engine.image_name:match(":(%d+%.%d+%.%d+)")
      r = myseal("sandbox", "start", "--driver", "container", "--image", engine.image_name, "--flavor", "mysql")
      assert.equal(1, r.status)
      assert.equal(("myseal: image %s has MariaDB %s, not MySQL\n"):format(engine.image_name, version), r.stderr)
      r = myseal("sandbox", "start", "--driver", "container", "--image", "docker.io/library/busybox:1")
      assert.equal(1, r.status)
      assert.matches("^myseal: docker run docker.io/library/busybox:1 failed: ", r.stderr)
      -- a root server when asked, told so as the local driver's is
      r = myseal("sandbox", "start", "--driver", "container", "--image", engine.image_name, "--name", "rootly",
         "--user", "root", "--json")
      assert.equal(0, r.status, r.stderr)
      local info = assert(json.decode(r.stdout))
      assert.same({ "root", "0" }, { info.user, uid_of(info.pid) })
      assert.equal("root", assert(sys.stat(info.datadir .. "/mysql")).user)
      assert.equal("sandbox rootly stopped\n", myseal("sandbox", "stop", "rootly").stdout)
   end)
end)
