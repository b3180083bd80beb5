--- The application of a lab host started with app = "tomcat": Debian's Tomcat 10 with a JNDI
-- pool and a page, and a poller of that page (what the application sees during a run).
-- @module myseal.sandbox.host.app
local sys = require "sys"
local common = require "myseal.sandbox.common"
local ns = require "myseal.sandbox.host.ns"
local template = require "myseal.sandbox.host.template"

local M = {}

local ASSETS = ns.ASSETS
local APP_TIMEOUT = 120
local PAGE = "http://127.0.0.1:8080/db.jsp"
M.PAGE = PAGE
local run_ok = common.run_ok
local fs, host_run, service = ns.fs, ns.run, ns.service

local CONTEXT = [[
<?xml version="1.0" encoding="UTF-8"?>
<!-- The contents of this file will be loaded for each web application -->
<Context>
    <WatchedResource>WEB-INF/web.xml</WatchedResource>
    <WatchedResource>WEB-INF/tomcat-web.xml</WatchedResource>
    <WatchedResource>${catalina.base}/conf/web.xml</WatchedResource>

    <!-- The biobank application's database: a connection pool over TCP. -->
    <Resource name="jdbc/biobank" auth="Container" type="javax.sql.DataSource"
              driverClassName="org.mariadb.jdbc.Driver"
              url="jdbc:mariadb://%s:3306/biobank"
              username="biobank" password="%s"
              initialSize="2" minIdle="2" maxIdle="4" maxTotal="8" maxWaitMillis="5000"
              validationQuery="SELECT 1" testOnBorrow="true"/>
</Context>
]]

-- /etc/tomcat10, /etc/default/tomcat10 and /var/lib/tomcat10 as the tomcat10 package and its
-- postinst make them (from the package's own copies in /usr/share/tomcat10), plus the
-- application: the driver in CATALINA_BASE/lib, the pool in context.xml (to the database at
-- `db`, an address; this host's own server by default), the page.
local function make_tomcat(s, password, db)
   local list, err = template.versions{ "tomcat10", "tomcat10-common", "libmariadb-java" }
   if not list then return nil, err end
   local f, conf = fs(s), fs(s, "/etc/tomcat10")
   local ok, cerr = run_ok({ "cp", "-a", "/usr/share/tomcat10/etc/.", conf .. "/" }, "copying Tomcat's configuration")
   if ok then
      ok, cerr = template.install_etc(s, { list[1] }, { { "/etc/tomcat10/policy.d", "/etc/tomcat10/", "policy.d" } })
   end
   if not ok then return nil, cerr end
   assert(sys.write_file(conf .. "/context.xml", CONTEXT:format(db or "127.0.0.1", password),
      { mode = tonumber("640", 8) }))
   -- root:tomcat 0640, as the package leaves its files (policy.d's too)
   assert(sys.chown(conf .. "/policy.d", "root", "tomcat"))
   for _, dir in ipairs{ conf, conf .. "/policy.d" } do
      for _, name in ipairs(sys.dir(dir) or {}) do
         local p = dir .. "/" .. name
         if sys.stat(p).type == "file" then
            assert(sys.chown(p, "root", "tomcat"))
            assert(sys.chmod(p, tonumber("640", 8)))
         end
      end
   end
   assert(sys.copy_file("/usr/share/tomcat10/default.template", f .. "/etc/default/tomcat10"))
   local base = f .. "/var/lib/tomcat10"
   for _, l in ipairs{ { "/etc/tomcat10", "conf" }, { "../../log/tomcat10", "logs" },
                       { "../../cache/tomcat10", "work" },
                       { "/usr/share/java/mariadb-java-client.jar", "lib/mariadb-java-client.jar" } } do
      ok, cerr = run_ok({ "ln", "-s", l[1], base .. "/" .. l[2] }, "ln -s " .. l[1])
      if not ok then return nil, cerr end
   end
   ok, cerr = run_ok({ "cp", "-r", "/usr/share/tomcat10-root/default_root", base .. "/webapps/ROOT" },
      "copying the ROOT webapp")
   if not ok then return nil, cerr end
   assert(sys.copy_file(ASSETS .. "/db.jsp", base .. "/webapps/ROOT/db.jsp"))
   ok, cerr = common.chown_tree(base .. "/webapps", assert(common.account("tomcat")))
   if not ok then return nil, cerr end
   assert(sys.copy_file(ASSETS .. "/tomcat10", f .. "/etc/init.d/tomcat10"))
   return true
end

--- The application page, fetched inside the host: body, or nil, message.
-- @param s the host
-- @param timeout seconds (default 5)
function M.page(s, timeout)
   local r, err = host_run(s, { "curl", "-sS", "--max-time", tostring(timeout or 5), "-o", "-",
      "-w", "\n%{http_code}", PAGE, timeout = (timeout or 5) + 5 })
   if not r then return nil, err end
   local body, code = r.stdout:match("^(.*)\n(%d+)$")
   if r.ok and code == "200" then return body end
   return nil, (body and body ~= "" and body or r.stderr):gsub("%s+$", "") .. " (HTTP " .. tostring(code) .. ")"
end

--- Starts polling the application page inside the host every `interval` seconds (default
-- 0.25), each answer a line of /root/poll.log: milliseconds since the epoch, HTTP status
-- (000: no answer) and the body. Returns the log's path on this machine.
function M.poll_start(s, interval)
   local script = "/root/poll.sh"
   assert(sys.write_file(fs(s, script), table.concat({
      "#!/bin/sh",
      "# the lab's page poller (myseal.sandbox.host.poll_start): one line per request",
      "while [ ! -e /root/poll.stop ]; do",
      "  t=$(date +%s%3N)",
      "  out=$(curl -s --max-time 2 -w ' %{http_code}' " .. PAGE .. " | tr '\\n' ' ')",
      "  echo \"$t ${out##* } ${out% *}\" >> /root/poll.log",
      "  sleep " .. tostring(interval or 0.25),
      "done", "" }, "\n"), { mode = tonumber("700", 8) }))
   os.remove(fs(s, "/root/poll.stop"))
   local r, err = host_run(s, { "sh", "-c", "nohup sh " .. script .. " >/dev/null 2>&1 &" })
   if not r or not r.ok then return nil, err or r.stderr end
   return fs(s, "/root/poll.log")
end

--- Stops the poller (it ends after its current request).
function M.poll_stop(s)
   assert(sys.write_file(fs(s, "/root/poll.stop"), ""))
end

--- The poller's answers: list of { ms, code, body, ok } (ok: HTTP 200 with a row count).
function M.poll_read(s)
   local out = {}
   for line in (sys.read_file(fs(s, "/root/poll.log")) or ""):gmatch("[^\n]+") do
      local ms, code, body = line:match("^(%d+) (%d+) ?(.*)$")
      if ms then
         body = body:gsub("%s+$", "")
         out[#out + 1] = { ms = tonumber(ms), code = code, body = body,
            ok = code == "200" and body:match("^patients=%d+") ~= nil }
      end
   end
   return out
end

--- Failed requests and the outages (ms from the last good answer before a failure to the first
-- good one after it) among the answers between `from` and `to` (ms, inclusive): the longest and
-- their total.
-- @return { requests, failed, longest_ms, total_ms }
function M.outages(samples, from, to)
   local r = { requests = 0, failed = 0, longest_ms = 0, total_ms = 0 }
   local last_ok, down_since
   local function ended(at)
      r.longest_ms = math.max(r.longest_ms, at - down_since)
      r.total_ms = r.total_ms + (at - down_since)
   end
   for _, x in ipairs(samples) do
      if x.ms >= (from or 0) and x.ms <= (to or math.huge) then
         r.requests = r.requests + 1
         if x.ok then
            if down_since then ended(x.ms) end
            down_since, last_ok = nil, x.ms
         else
            r.failed = r.failed + 1
            down_since = down_since or last_ok or x.ms
         end
      end
   end
   if down_since then ended(to or samples[#samples].ms) end
   return r
end

local function start_tomcat(s)
   local ok, err = service(s, "/etc/init.d/tomcat10", "start")
   if not ok then return nil, err end
   local deadline = sys.clock() + APP_TIMEOUT
   local last
   repeat
      local body, perr = M.page(s, 10)
      if body and body:match("^patients=%d+") then return true end
      last = perr or body
      sys.sleep(0.25)
   until sys.clock() > deadline
   return nil, string.format("host '%s': Tomcat did not serve %s within %d s: %s\n%s", s.name, PAGE, APP_TIMEOUT,
      tostring(last), common.tail_lines(sys.read_file(fs(s, "/var/log/tomcat10/catalina.out")) or "", 8))
end


M.make, M.start = make_tomcat, start_tomcat

return M
