--- Shared by the specs: failure-shape checks and small file helpers.
local sys = require "sys"

local M = {}

--- Asserts the world-failure shape `nil, message, code` and returns message.
function M.fails(...)
   local v, msg = ...
   assert(v == nil, "expected a failure, got " .. tostring(v))
   assert(type(msg) == "string", "expected a message, got " .. tostring(msg))
   return msg, select(3, ...)
end

--- Runs the myseal binary with arguments (no shell); returns the sys.run result.
function M.myseal(argv, opts)
   local t = { require("myseal.host").exe }
   for _, a in ipairs(argv) do t[#t + 1] = a end
   for k, v in pairs(opts or {}) do t[k] = v end
   return assert(sys.run(t))
end

--- Writes a file (creating parents) and returns its path.
function M.write(path, text, mode)
   sys.mkdir(path:match("^(.*)/[^/]*$"))
   assert(sys.write_file(path, text, { mode = mode }))
   return path
end

--- Every regular file under dir, recursively (symbolic links not followed), appended to `out`.
function M.files_under(dir, out)
   out = out or {}
   for _, n in ipairs(sys.dir(dir) or {}) do
      local p = dir .. "/" .. n
      local st = sys.stat(p, { link = true })
      if st and st.type == "directory" then M.files_under(p, out)
      elseif st and st.type == "file" then out[#out + 1] = p end
   end
   return out
end

--- The findings of a `myseal check` report by id.
function M.findings(report)
   local out = {}
   for _, f in ipairs(report.findings) do out[f.id] = f end
   return out
end

--- The current resident set size of this process, in KiB.
function M.rss_kib()
   for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmRSS:%s+(%d+)")
      if kb then return tonumber(kb) end
   end
end

--- A Tomcat-shaped directory (CATALINA_BASE) whose conf/context.xml has one MariaDB pool,
-- jdbc/biobank, at port `o.port` of this machine: bin/setenv.sh (`o.setenv`, a file to copy, or
-- an empty script), conf/catalina.properties when `o.properties` names one to copy, lib/ with
-- Connector/J when `o.driver` names the jar, and `o.dirs` made as well.
-- @param base the directory to make
-- @param o `{ port, database = "biobank", query (the URL's, without "?"), user, password,
--   max_total = 20, setenv, properties, driver, dirs, comment (an XML comment before the pool) }`
-- @return base
function M.tomcat_dir(base, o)
   local dirs = { "bin", "conf" }
   if o.driver then dirs[#dirs + 1] = "lib" end
   for _, d in ipairs(o.dirs or {}) do dirs[#dirs + 1] = d end
   for _, d in ipairs(dirs) do assert(sys.mkdir(base .. "/" .. d)) end
   if o.setenv then assert(sys.copy_file(o.setenv, base .. "/bin/setenv.sh"))
   else assert(sys.write_file(base .. "/bin/setenv.sh", "#!/bin/sh\n")) end
   if o.properties then assert(sys.copy_file(o.properties, base .. "/conf/catalina.properties")) end
   if o.driver then assert(sys.run{ "ln", "-s", o.driver, base .. "/lib/mariadb-java-client.jar" }.ok) end
   assert(sys.write_file(base .. "/conf/context.xml", ([[
<?xml version="1.0" encoding="UTF-8"?>
<Context>
%s    <Resource name="jdbc/biobank" auth="Container" type="javax.sql.DataSource"
              driverClassName="org.mariadb.jdbc.Driver" url="jdbc:mariadb://127.0.0.1:%d/%s%s"
              username="%s" password="%s" maxTotal="%d"/>
</Context>
]]):format(o.comment and ("    <!-- %s -->\n"):format(o.comment) or "", o.port, o.database or "biobank",
      o.query and ("?" .. o.query) or "", o.user, o.password, o.max_total or 20)))
   return base
end

return M
