--- Java for the specs: the JDBC probe (myseal.jdbcprobe) compiled once per process, run with
-- JVM options from a 0600 @argfile (so no password reaches argv or stderr).
local sys = require "sys"
local jdbcprobe = require "myseal.jdbcprobe"

local M = {}

M.driver = "/usr/share/java/mariadb-java-client.jar"

local classes

--- The directory holding the compiled probe (compiled once per process).
function M.classes()
   if classes then return classes end
   local dir = assert(sys.tmpdir("java-probe"))
   classes = assert(jdbcprobe.compile{ dir = dir })
   return classes
end

--- Runs the probe: url, user, password, and a list of -D options (which may
-- hold secrets). Returns ok, output line.
function M.probe(url, user, password, jvm_options)
   local ok, out = jdbcprobe.run{ classes = M.classes(), driver_jar = M.driver, url = url, user = user,
                                  password = password, options = jvm_options }
   assert(ok ~= nil, out)
   return ok, out
end

return M
