--- The lab for specs: Debian-shaped hosts (myseal.sandbox.host), counted as skipped where
-- Linux namespaces are not permitted; one Tomcat host shared by every spec of a busted run;
-- commands inside a host; snapshots of this machine's own files and processes.
local sys = require "sys"
local sandbox = require "myseal.sandbox"
local host = require "myseal.sandbox.host"

local M = {}

--- Marks the running spec pending (skipped) when hosts cannot be made here. `pending` is the
-- spec's own (busted gives it to the running test only).
function M.need_hosts(pending)
   local ok, why = host.available()
   if not ok then pending(why) end
end

--- Starts a host (`opts` as sandbox.start's, driver host), stopped by a <close> variable.
-- Call need_hosts first.
function M.start(opts)
   local t = { driver = "host" }
   for k, v in pairs(opts or {}) do t[k] = v end
   return assert(sandbox.start(t))
end

local shared, shared_guard

--- The Tomcat host every spec of this busted run shares (started on first use, stopped when
-- the run ends; skipped where hosts cannot be made). Specs must leave it as they found it.
function M.tomcat(pending)
   M.need_hosts(pending)
   if shared and shared:running() then return shared end
   shared = assert(sandbox.start{ driver = "host", app = "tomcat", name = "lab-tomcat-" .. sys.getpid() })
   shared_guard = setmetatable({}, { __gc = function() if shared then shared:stop() end end })
   return shared
end

--- An environment for `myseal` children with a state directory of their own, whose
-- sandboxes are stopped and files removed when the running spec ends (`finally` is the spec's).
function M.cli_env(prefix, finally)
   local env = { MYSEAL_STATE_DIR = assert(sys.tmpdir(prefix)) }
   finally(function()
      require("support.helpers").myseal({ "sandbox", "stop", "--all" }, { env = env })
      sys.rmtree(env.MYSEAL_STATE_DIR)
   end)
   return env
end

--- Runs argv inside host s; returns the result (asserts it ran).
function M.run(s, argv)
   return assert(s:exec(argv))
end

--- Runs argv inside host s and returns its stdout; fails the spec when it fails.
function M.ok(s, argv)
   local r = M.run(s, argv)
   assert(r.ok, table.concat(argv, " ") .. ": " .. r.stdout .. r.stderr)
   return r.stdout
end

--- The first column of the first row of `sql`, as root over the host's socket.
function M.value(s, sql)
   local c <close> = assert(s:connect())
   local rows = assert(c:query(sql))
   return rows[1] and rows[1][1]
end

--- The application page inside a Tomcat host: body or nil, message.
function M.page(s, timeout)
   return host.page(s, timeout)
end

--- Polls the page until its body matches `pattern` (default: any answer) or `timeout` (60 s)
-- passes; returns the last body (nil when there was none).
function M.wait_page(s, pattern, timeout)
   local deadline, body = sys.clock() + (timeout or 60), nil
   repeat
      body = M.page(s)
      if body and (not pattern or body:match(pattern)) then return body end
      sys.sleep(0.25)
   until sys.clock() > deadline
   return body
end

-- Every entry under path: relative name -> "type mode uid:gid size mtime [content]".
local function walk(path, out, prefix)
   for _, name in ipairs(sys.dir(path) or {}) do
      local p = path .. "/" .. name
      local st = sys.stat(p, { link = true })
      if st then
         local line = ("%s %04o %d:%d %d %d"):format(st.type, st.mode, st.uid, st.gid, st.size, st.mtime)
         if st.type == "file" and st.size < 65536 then line = line .. " " .. (sys.read_file(p) or "?") end
         out[prefix .. name] = line
         if st.type == "directory" then walk(p, out, prefix .. name .. "/") end
      end
   end
end

--- A snapshot of this machine's files under the given paths (what must never change).
function M.snapshot(paths)
   local out = {}
   for _, p in ipairs(paths) do
      local st = sys.stat(p, { link = true })
      out[p] = st and ("%s %04o %d:%d"):format(st.type, st.mode, st.uid, st.gid) or "absent"
      if st and st.type == "directory" then walk(p, out, p .. "/") end
   end
   return out
end

--- Pids of the processes whose pid namespace is `ns` (a /proc/PID/ns/pid link) or whose
-- command line names `text`.
function M.processes(ns, text)
   local out = {}
   for _, name in ipairs(sys.dir("/proc") or {}) do
      local pid = tonumber(name)
      if pid and sys.alive(pid) then
         local link = sys.run{ "readlink", "/proc/" .. name .. "/ns/pid" }
         local cmd = (sys.read_file("/proc/" .. name .. "/cmdline") or ""):gsub("%z", " ")
         if (link and link.ok and link.stdout:match("^(%S+)") == ns) or (text and cmd:find(text, 1, true)) then
            out[#out + 1] = pid .. " " .. cmd
         end
      end
   end
   return out
end

--- The pid namespace of a process, as its /proc link reads.
function M.pid_ns(pid)
   local r = assert(sys.run{ "readlink", "/proc/" .. pid .. "/ns/pid" })
   return r.stdout:match("^(%S+)")
end

--- When a check fails the way a known defect makes it fail, the spec is skipped with the
-- defect named; any other failure fails it. `ok, msg` are the check's answer, `pending` the
-- spec's.
function M.known(pending, ok, msg, pattern, defect)
   if ok then return end
   if type(msg) == "string" and msg:find(pattern) then
      pending(defect .. " -- " .. (msg:match("[^\n]*" .. pattern .. "[^\n]*") or msg):sub(1, 300))
   end
   error(msg, 2)
end

return M
