--- `myseal demo`: the whole story on a disposable server, in under a minute.
local args = require "myseal.args"
local errors = require "myseal.errors"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local pki = require "pki"
local text = require "myseal.text"

local M = {
   summary = "the whole story on a disposable server: check, encrypt at rest and in transit, check again",
   usage = "myseal demo [--report FILE] [--keep]",
   help = [[
Starts a MariaDB sandbox with a small biobank schema (patients, specimens) and
an application account, and a Tomcat-shaped directory whose context.xml points
at it. Then: check (red), plan and run the story runbook encrypt (at rest and
the TLS offer with one restart, the Tomcat data source on verified TLS, then
enforcement; the JDBC probe connects over verified TLS when a JDK and MariaDB
Connector/J are installed), check again (green), and write the HTML report. The sandbox is
stopped and the temporary files removed at the end, whatever happens.
  --report FILE   where the HTML report goes (default ./myseal-demo-report.html)
  --keep          leave the sandbox running and the files in place, to look around]],
}

local DRIVER = "/usr/share/java/mariadb-java-client.jar"

local count = text.count

local function hex(n)
   return text.hex(pki.random(n))
end

function M.run(argv)
   local opts, pos = args.parse("demo", argv, { flags = { "keep" }, options = { "report" } })
   args.at_most("demo", pos, 0)
   local report = opts.report or "myseal-demo-report.html"
   local exe = require("myseal.host").exe
   local t0 = sys.clock()
   local stages, n = 6, 0
   local function stage(fmt, ...)
      n = n + 1
      io.stdout:write(("[%d/%d] %s  (%.1f s)\n"):format(n, stages, fmt:format(...), sys.clock() - t0))
      io.stdout:flush()
   end

   local work = assert(sys.tmpdir("myseal-demo"))
   local s, err = sandbox.start{ name = "demo-" .. hex(3) }
   if not s then
      sys.rmtree(work)
      errors.fail("demo: %s", err)
   end
   local ok, failure = pcall(function()
      stage("sandbox %s: %s %s on %s:%d", s.name, s.flavor, s.version, s.host, s.port)

      -- the application's data and account
      local app_password = hex(12)
      do
         local c <close> = assert(s:connect{ database = "mysql" })
         for _, sql in ipairs{
            "CREATE DATABASE biobank",
            "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100), born DATE) ENGINE=InnoDB",
            "CREATE TABLE biobank.specimens (id INT PRIMARY KEY, patient INT, kind VARCHAR(20), taken DATETIME, "
               .. "note TEXT, KEY (patient)) ENGINE=InnoDB",
            "INSERT INTO biobank.patients SELECT seq, CONCAT('patient ', seq), '1970-01-01' + INTERVAL seq DAY "
               .. "FROM seq_1_to_500",
            "INSERT INTO biobank.specimens SELECT seq, 1 + seq % 500, ELT(1 + seq % 3, 'blood', 'tissue', 'dna'), "
               .. "NOW() - INTERVAL seq HOUR, REPEAT('n', 100) FROM seq_1_to_3000",
         } do assert(c:exec(sql)) end
         assert(c:exec("CREATE USER 'lims'@'%' IDENTIFIED BY ?", app_password))
         assert(c:exec("GRANT SELECT, INSERT, UPDATE, DELETE ON biobank.* TO 'lims'@'%'"))
      end
      -- a Tomcat-shaped directory with the application's DataSource
      local tomcat = work .. "/tomcat"
      for _, d in ipairs{ "bin", "conf", "lib" } do assert(sys.mkdir(tomcat .. "/" .. d)) end
      assert(sys.write_file(tomcat .. "/bin/setenv.sh", "#!/bin/sh\nCATALINA_PID=\"$CATALINA_BASE/tomcat.pid\"\n"))
      assert(sys.write_file(tomcat .. "/conf/context.xml", ([[
<?xml version="1.0" encoding="UTF-8"?>
<Context>
    <Resource name="jdbc/biobank" auth="Container" type="javax.sql.DataSource"
              driverClassName="org.mariadb.jdbc.Driver"
              url="jdbc:mariadb://127.0.0.1:%d/biobank?useUnicode=true"
              username="lims" password="%s" maxTotal="20"/>
</Context>
]]):format(s.port, app_password), { mode = tonumber("640", 8) }))
      local probe = sys.stat(DRIVER) ~= nil and sys.run{ "java", "-version" } ~= nil
      if probe then assert(sys.run{ "ln", "-s", DRIVER, tomcat .. "/lib/mariadb-java-client.jar" }.ok) end
      stage("biobank schema (500 patients, 3000 specimens), account lims, Tomcat directory %s", tomcat)

      -- the truststore's password in a 0600 file named the way a profile names one (file:PATH), not in the
      -- environment of the myseal commands below
      local password_file = work .. "/truststore-password"
      assert(sys.write_file(password_file, hex(12) .. "\n", { mode = tonumber("600", 8) }))
      local checked = { "--set", "keyring.backup_dir=" .. work .. "/key-backup",
         "--set", "tomcat.truststore=" .. tomcat .. "/conf/db-truststore.p12",
         "--set", "tomcat.catalina_base=" .. tomcat, "--set", "tomcat.ca=" .. s.dir .. "/tls-myseal/ca.pem",
         "--set", "tomcat.user=" .. sys.user().name, "--set", "tomcat.group=" .. sys.stat(work).group,
         "--set", "tomcat.probe=" .. tostring(probe), "--set", "tomcat.truststore_password=file:" .. password_file }
      local function myseal(...)
         local argv = { exe, ... }
         argv.timeout = 300
         return assert(sys.run(argv))
      end
      local function check(label)
         local r = myseal("check", "--sandbox", s.name, "--format", "json", table.unpack(checked))
         local rep = require("myseal.json").decode(r.stdout)
         if not rep then error("check failed: " .. r.stderr, 0) end
         stage("check %s: %d ok, %s, %s", label, rep.summary.ok, count(rep.summary.warn, "warning"),
            count(rep.summary.fail, "failure"))
         return rep
      end
      local function runbook(name, ...)
         local function call(cmd, ...)
            local r = myseal(cmd, name, "--sandbox", s.name, ...)
            if not r.ok then error(("%s %s failed:\n%s%s"):format(cmd, name, r.stdout, r.stderr), 0) end
            return r
         end
         local plan = call("plan", ...)
         local todo = plan.stdout:match("plan: (%d+) steps? to do") or "0"
         local run = call("run", "--yes", ...)
         stage("%s: planned %s steps; run: %s", name, todo, run.stdout:match("\nrun: (.-) %(%d") or "done")
      end

      local before = check("before (red)")
      runbook("encrypt", "--set", "accounts.lims@%=ssl", "--set", "tls.watch_seconds=2", table.unpack(checked))
      local after = check("after (green)")
      -- the report, as HTML
      local r = myseal("check", "--sandbox", s.name, "--format", "html", "--output", report, table.unpack(checked))
      if not sys.stat(report) then error("the report was not written: " .. r.stderr, 0) end
      stage("report: %s", sys.realpath(report) or report)
      if after.summary.fail > 0 then
         error(("%s after the runbooks (see %s)"):format(count(after.summary.fail, "failure remains",
            "failures remain"), report), 0)
      end
      return before
   end)
   if opts.keep then
      io.stdout:write(("kept: sandbox %s (myseal sandbox stop %s), files in %s\n"):format(s.name, s.name, work))
   else
      s:stop()
      sys.rmtree(work)
   end
   if not ok then errors.fail("demo: %s", tostring(failure)) end
   io.stdout:write(("demo done in %.0f s: the sandbox is %s\n"):format(sys.clock() - t0,
      opts.keep and "still running" or "stopped"))
   return 0
end

return M
