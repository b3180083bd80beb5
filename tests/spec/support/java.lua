--- Java for the specs: compile tests/java/JdbcProbe.java once, run it with
-- JVM options from a 0600 @argfile (so no password reaches argv or stderr).
local sys = require "sys"

local M = {}

M.driver = "/usr/share/java/mariadb-java-client.jar"

local classes

--- The directory holding the compiled probe (compiled once per process).
function M.classes()
   if classes then return classes end
   local dir = assert(sys.tmpdir("java-probe"))
   local r = assert(sys.run{ "javac", "-d", dir, "tests/java/JdbcProbe.java" })
   assert(r.ok, r.stderr)
   classes = dir
   return dir
end

--- Runs the probe: url, user, password, and a list of -D options (which may
-- hold secrets). Returns ok, output line.
function M.probe(url, user, password, jvm_options)
   local dir = M.classes()
   local argfile = dir .. "/jvm-" .. tostring(sys.clock()):gsub("%.", "") .. ".args"
   assert(sys.write_file(argfile, table.concat(jvm_options or {}, "\n") .. "\n", { mode = 384 }))
   local r = assert(sys.run{ "java", "@" .. argfile, "-cp", M.driver .. ":" .. dir, "JdbcProbe",
      env = { MYSEAL_JDBC_URL = url, MYSEAL_JDBC_USER = user, MYSEAL_JDBC_PASSWORD = password },
      timeout = 60 })
   os.remove(argfile)
   return r.ok, (r.stdout .. r.stderr):gsub("\n$", "")
end

return M
