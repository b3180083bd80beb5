--- The JDBC probe: java/JdbcProbe.java (beside this module) connects with a JDBC URL the way a
-- Tomcat application does and prints "OK <tls version> <cipher>" or "FAIL <reason>". The
-- app-tomcat runbook and the specs compile and run it through here. Nothing secret reaches argv:
-- the JVM options (the truststore password among them) go in a 0600 @argfile in a private
-- directory, the user in the environment, the URL (which may hold passwords) and the password on
-- stdin.
-- @module myseal.jdbcprobe
local sys = require "sys"

local M = {}

--- The probe's source file.
M.source = require("myseal.host").home .. "/lua/myseal/java/JdbcProbe.java"

--- Compile the probe under `dir` (default: myseal's cache), in a subdirectory named after the
-- source's digest, so a directory kept between runs compiles once per version of the source.
-- @param opts `{ dir = directory, javac = "javac", run = function(argv) -> result | nil, message
--   (default sys.run; a runbook passes ctx:command) }`
-- @return the classes directory | nil, message
function M.compile(opts)
   local src, err = sys.read_file(M.source)
   if not src then return nil, err end
   local dir = opts.dir
   if not dir then
      dir, err = require("myseal.state").cache()
      if not dir then return nil, err end
   end
   local classes = ("%s/jdbcprobe-%s"):format(dir, require("pki").digest(src):sub(1, 12))
   if sys.stat(classes .. "/JdbcProbe.class") then return classes end
   local ok
   ok, err = sys.mkdir(classes, tonumber("700", 8))
   if not ok then return nil, err end
   local javac = opts.javac or "javac"
   local r
   r, err = (opts.run or sys.run){ javac, "-d", classes, M.source, timeout = 120 }
   if not r then return nil, ("cannot run %s: %s"):format(javac, err) end
   if not r.ok then
      return nil, ("%s could not compile the probe: %s"):format(javac,
         ((r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")))
   end
   return classes
end

--- One option in a java @argfile: double-quoted, with \ and " escaped (the launcher's rules).
-- @param option string
-- @return string
function M.argfile_word(option)
   return '"' .. option:gsub('[\\"]', "\\%0") .. '"'
end

--- Run the probe.
-- @param opts `{ java = "java", classes = dir (from compile), driver_jar = path, url =, user =,
--   password =, options = { "-Dname=value", ... }, timeout = 60, run = as for compile }`
-- @return ok (boolean), the probe's output | nil, message (java did not run)
function M.run(opts)
   if opts.url:find("[\r\n]") then return nil, "a JDBC url cannot hold a line break" end
   local dir, err = sys.tmpdir("myseal-probe")
   if not dir then return nil, err end
   local lines = {}
   for i, o in ipairs(opts.options or {}) do lines[i] = M.argfile_word(o) end
   local argfile = dir .. "/jvm.args"
   local ok
   ok, err = sys.write_file(argfile, table.concat(lines, "\n") .. "\n", { mode = tonumber("600", 8) })
   if not ok then
      sys.rmtree(dir)
      return nil, err
   end
   local java, sep = opts.java or "java", sys.platform() == "windows" and ";" or ":"
   local r
   r, err = (opts.run or sys.run){ java, "@" .. argfile, "-cp", opts.driver_jar .. sep .. opts.classes, "JdbcProbe",
      env = { MYSEAL_JDBC_USER = opts.user or "" },
      stdin = opts.url .. "\n" .. (opts.password or ""), timeout = opts.timeout or 60 }
   sys.rmtree(dir)
   if not r then return nil, ("cannot run %s: %s"):format(java, err) end
   return r.ok, ((r.stdout .. r.stderr):gsub("%s+$", ""))
end

return M
