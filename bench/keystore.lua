-- A Java truststore with a CA certificate: the keystore module against
-- `keytool -importcert` (JVM start included, as a user lives it).
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local keystore = require "keystore"
local pki = require "pki"
local sys = require "sys"

local dir = assert(sys.tmpdir("bench-keystore"))
local ca = assert(pki.self_signed{ key = pki.genkey{ type = "ec" }, subject = "/CN=Bench CA" })
assert(sys.write_file(dir .. "/ca.pem", ca:pem()))

local rows = {}
for _, type in ipairs{ "pkcs12", "jks" } do
   local path = dir .. "/trust." .. type
   local t_keytool = bench.time(function()
      os.remove(path)
      bench.run{ "keytool", "-importcert", "-noprompt", "-alias", "db-ca", "-file", dir .. "/ca.pem",
         "-keystore", path, "-storetype", type, "-storepass:env", "PASS", env = { PASS = "changeit" } }
   end)
   local t_ours = bench.time(function()
      local s = keystore.new{ type = type }
      assert(s:add_trusted("db-ca", ca))
      assert(s:save(path, { password = "changeit" }))
   end)
   rows[#rows + 1] = { "truststore with one CA, " .. type, t_keytool, t_ours }
end
sys.rmtree(dir)
bench.table("keystore: a Java truststore", rows)
