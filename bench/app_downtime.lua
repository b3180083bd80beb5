-- What the application sees while its database is encrypted: on a lab host with Tomcat 10 and
-- its JNDI pool (myseal sandbox start --driver host --app tomcat), the page is polled every
-- 250 ms while the story runbook encrypt runs with the host's own site profile (confirmed with
-- --yes, as tools/main --site --yes runs it), then its rollback; printed: requests, failed
-- requests, the longest outage and all outages together, and how each run ended.
-- Manual baseline, on a fresh host from the same template: the restarts the manual procedure
-- cannot avoid (MariaDB after the my.cnf change for at rest, again after the one for TLS,
-- Tomcat after setenv), done with the host's own service scripts, polled the same way.
-- Run: build/myseal lua bench/app_downtime.lua (as root, where Linux namespaces are permitted)
package.path = "bench/?.lua;" .. package.path
local sys = require "sys"
local sandbox = require "myseal.sandbox"
local host = require "myseal.sandbox.host"

local ok, why = host.available()
if not ok then
   print("app_downtime: " .. why)
   return
end

local MYSEAL = require("myseal.host").exe
local function now_ms() return math.floor(sys.now() * 1000) end

-- Runs argv inside host s, polled; returns { label, from, to, status, last line }.
local function timed(s, label, argv)
   local w = { label = label, from = now_ms() }
   argv.timeout = 600
   local r, err = s:exec(argv)
   w.to = now_ms()
   -- the window ends when the page answers again (an outage that outlasts the command counts)
   local deadline = sys.clock() + 60
   repeat
      sys.sleep(0.25)
      local samples = host.poll_read(s)
      local last = samples[#samples]
      w.to_tail = last and last.ms or now_ms()
   until (last and last.ok and last.ms > w.to) or sys.clock() > deadline
   w.status = r and (r.status or ("signal " .. tostring(r.signal))) or err
   w.note = r and not r.ok and ((r.stdout .. r.stderr):match("myseal: ([^\n]*)") or (r.stderr:match("[^\n]+"))) or ""
   return w
end

local function report(title, samples, windows)
   print(title)
   print(("  %-26s %9s %7s %12s %10s  %s"):format("", "requests", "failed", "longest (s)", "down (s)", "exit"))
   local failed, longest, down = 0, 0, 0
   for _, w in ipairs(windows) do
      local o = host.outages(samples, w.from, w.to_tail)
      failed, longest, down = failed + o.failed, math.max(longest, o.longest_ms), down + o.total_ms
      print(("  %-26s %9d %7d %12.2f %10.2f  %s %s"):format(w.label, o.requests, o.failed, o.longest_ms / 1000,
         o.total_ms / 1000, tostring(w.status), w.note ~= "" and ("(" .. w.note:sub(1, 90) .. ")") or ""))
   end
   print(("  %-26s %9s %7d %12.2f %10.2f"):format("total", "", failed, longest / 1000, down / 1000))
   return failed, down
end

local function with_host(name, fn)
   local s <close> = assert(sandbox.start{ driver = "host", app = "tomcat", name = name })
   assert(host.poll_start(s, 0.25))
   sys.sleep(1)
   local windows = fn(s)
   host.poll_stop(s)
   sys.sleep(0.5)
   return host.poll_read(s), windows
end

local mine_failed, mine_down, manual_failed, manual_down, unfinished
do
   local samples, windows = with_host("bench-downtime", function(s)
      return {
         timed(s, "run encrypt", { MYSEAL, "run", "encrypt", "--site", "/root/site.ini", "--yes" }),
         timed(s, "rollback encrypt", { MYSEAL, "rollback", "encrypt", "--site", "/root/site.ini", "--yes" }),
      }
   end)
   mine_failed, mine_down = report("myseal: the story runbook with the host's site profile, then its rollback",
      samples, { windows[1] })
   report("  (its rollback)", samples, { windows[2] })
   for _, w in ipairs(windows) do
      if w.status ~= 0 then unfinished = (unfinished and (unfinished .. ", ") or "") .. w.label end
   end
end
do
   local samples, windows = with_host("bench-downtime-manual", function(s)
      return {
         timed(s, "MariaDB restart (at rest)", { "/etc/init.d/mariadb", "restart" }),
         timed(s, "MariaDB restart (TLS)", { "/etc/init.d/mariadb", "restart" }),
         timed(s, "Tomcat restart (setenv)", { "/etc/init.d/tomcat10", "restart" }),
      }
   end)
   manual_failed, manual_down = report("manual: the procedure's unavoidable restarts", samples, windows)
end
print(("failed requests: manual %d, myseal %d; down: manual %.2f s, myseal %.2f s; ratio %s (above 1: myseal "
   .. "cut the application off less)"):format(manual_failed, mine_failed, manual_down / 1000, mine_down / 1000,
   mine_down > 0 and ("%.1fx"):format(manual_down / mine_down) or "n/a (myseal: no outage)"))
if unfinished then
   print("note: these runs did not finish, so myseal's numbers cover only what ran: " .. unfinished)
end
