-- A CA, a server and a client certificate: in process with the pki module,
-- against the manual procedure's chain of openssl commands making the same
-- files (DOMAIN.md §9, with 2048-bit keys and SHA-256).
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local pki = require "pki"
local sys = require "sys"

local dir = assert(sys.tmpdir("bench-pki"))

local function ours(keyspec)
   local ca_key = assert(pki.genkey(keyspec))
   local ca = assert(pki.self_signed{ key = ca_key, subject = "/CN=Bench CA" })
   assert(sys.write_file(dir .. "/ca.pem", ca:pem()))
   assert(ca_key:save(dir .. "/ca-key.pem"))
   for _, who in ipairs{ "server", "client" } do
      local k = assert(pki.genkey(keyspec))
      local c = assert(ca:sign{ ca_key = ca_key, public_key = k, subject = "/CN=bench " .. who, usage = who,
         san = who == "server" and { "db.example", "127.0.0.1" } or nil })
      assert(sys.write_file(dir .. "/" .. who .. "-cert.pem", c:pem()))
      assert(k:save(dir .. "/" .. who .. "-key.pem"))
   end
end

local function manual(newkey)
   local o = function(...) bench.run{ "openssl", ... } end
   local f = function(n) return dir .. "/" .. n end
   if newkey == "rsa" then o("genrsa", "-out", f("ca-key.pem"), "2048")
   else o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f("ca-key.pem")) end
   o("req", "-new", "-x509", "-nodes", "-days", "3650", "-key", f("ca-key.pem"), "-out", f("ca.pem"), "-subj", "/CN=Bench CA")
   for i, who in ipairs{ "server", "client" } do
      local keyopt = newkey == "rsa" and { "-newkey", "rsa:2048" }
         or { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" }
      o("req", keyopt[1], keyopt[2], keyopt[3] or "-nodes", keyopt[4] or "-nodes", "-nodes", "-days", "825",
         "-keyout", f(who .. "-key.pem"), "-out", f(who .. "-req.pem"), "-subj", "/CN=bench " .. who)
      if newkey == "rsa" then o("rsa", "-in", f(who .. "-key.pem"), "-out", f(who .. "-key.pem")) end
      o("x509", "-req", "-in", f(who .. "-req.pem"), "-days", "825", "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"),
         "-set_serial", tostring(i), "-out", f(who .. "-cert.pem"))
   end
end

local rows = {
   { "CA + server + client, RSA 2048", bench.time(function() manual("rsa") end, 5),
     bench.time(function() ours{ type = "rsa", bits = 2048 } end, 5) },
   { "CA + server + client, EC P-256", bench.time(function() manual("ec") end, 5),
     bench.time(function() ours{ type = "ec", curve = "P-256" } end, 5) },
}
sys.rmtree(dir)
bench.table("pki: certificates for a server and a client", rows)
