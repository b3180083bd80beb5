-- A CA, a server and a client certificate with their keys: in process with
-- the pki module, against the manual procedure's chain of openssl commands
-- (the published manual procedure: genrsa, req -x509, req -newkey, rsa, x509 -req per leaf)
-- making the same files, given the same extensions (SAN, key usages) so that
-- both sides do the same work. Times are medians of RUNS runs (RSA key
-- generation varies a lot from run to run); the files of each side are
-- checked with openssl verify after the timing.
--   build/myseal lua bench/pki_certs.lua [RUNS]
package.path = "bench/?.lua;" .. package.path
local bench = require "lib"
local pki = require "pki"
local sys = require "sys"

local RUNS = tonumber(arg and arg[1]) or 7
local dir = assert(sys.tmpdir("bench-pki"))
local function f(n) return dir .. "/" .. n end

local SAN = { "db.example", "localhost", "127.0.0.1" }

local function ours(keyspec)
   local ca_key = assert(pki.genkey(keyspec))
   local ca = assert(pki.self_signed{ key = ca_key, subject = "/CN=Bench CA", days = 3650 })
   assert(sys.write_file(f("ca.pem"), ca:pem()))
   assert(ca_key:save(f("ca-key.pem")))
   for _, who in ipairs{ "server", "client" } do
      local k = assert(pki.genkey(keyspec))
      local c = assert(ca:sign{ ca_key = ca_key, public_key = k, subject = "/CN=bench " .. who, usage = who,
         san = who == "server" and SAN or nil, days = 825 })
      assert(sys.write_file(f(who .. "-cert.pem"), c:pem()))
      assert(k:save(f(who .. "-key.pem")))
   end
end

-- The extensions the manual side adds with -extfile (written once, untimed).
assert(sys.write_file(f("ext.cnf"), table.concat({
   "[server]",
   "basicConstraints = critical, CA:FALSE",
   "keyUsage = critical, digitalSignature, keyEncipherment",
   "extendedKeyUsage = serverAuth",
   "subjectAltName = DNS:db.example, DNS:localhost, IP:127.0.0.1",
   "subjectKeyIdentifier = hash",
   "authorityKeyIdentifier = keyid:always",
   "[client]",
   "basicConstraints = critical, CA:FALSE",
   "keyUsage = critical, digitalSignature, keyEncipherment",
   "extendedKeyUsage = clientAuth",
   "subjectKeyIdentifier = hash",
   "authorityKeyIdentifier = keyid:always",
}, "\n") .. "\n"))

local function manual(kind)
   local o = function(...) bench.run{ "openssl", ... } end
   local newkey = kind == "rsa" and { "-newkey", "rsa:2048" }
      or { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" }
   if kind == "rsa" then o("genrsa", "-out", f("ca-key.pem"), "2048")
   else o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f("ca-key.pem")) end
   o("req", "-new", "-x509", "-nodes", "-days", "3650", "-key", f("ca-key.pem"), "-out", f("ca.pem"),
      "-subj", "/CN=Bench CA")
   for i, who in ipairs{ "server", "client" } do
      local argv = { "openssl", "req", table.unpack(newkey) }
      for _, a in ipairs{ "-nodes", "-keyout", f(who .. "-key.pem"), "-out", f(who .. "-req.pem"),
         "-subj", "/CN=bench " .. who } do argv[#argv + 1] = a end
      bench.run(argv)
      if kind == "rsa" then o("rsa", "-in", f(who .. "-key.pem"), "-out", f(who .. "-key.pem")) end
      o("x509", "-req", "-in", f(who .. "-req.pem"), "-days", "825", "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"),
         "-set_serial", tostring(i), "-extfile", f("ext.cnf"), "-extensions", who, "-out", f(who .. "-cert.pem"))
   end
end

-- Both sides must have made a chain openssl accepts, with the server's names.
local function check(label)
   bench.run{ "openssl", "verify", "-CAfile", f("ca.pem"), "-purpose", "sslserver", "-verify_ip", "127.0.0.1",
      f("server-cert.pem") }
   bench.run{ "openssl", "verify", "-CAfile", f("ca.pem"), "-purpose", "sslclient", f("client-cert.pem") }
   for _, who in ipairs{ "ca", "server", "client" } do
      assert(pki.load_cert(f(who .. (who == "ca" and ".pem" or "-cert.pem"))):matches_key(
         assert(pki.load_key(f(who .. "-key.pem")))), label .. ": " .. who .. " key does not match")
   end
end

local function median(fn)
   local t = {}
   for i = 1, RUNS do
      local t0 = sys.clock()
      fn()
      t[i] = sys.clock() - t0
   end
   table.sort(t)
   return t[(RUNS + 1) // 2]
end

local rows = {}
for _, case in ipairs{
   { "CA + server + client, RSA 2048", "rsa", { type = "rsa", bits = 2048 } },
   { "CA + server + client, EC P-256", "ec", { type = "ec", curve = "P-256" } },
} do
   local m = median(function() manual(case[2]) end)
   check("manual " .. case[2])
   local y = median(function() ours(case[3]) end)
   check("myseal " .. case[2])
   rows[#rows + 1] = { case[1], m, y }
end
sys.rmtree(dir)
bench.table(("pki: certificates for a server and a client (median of %d runs)"):format(RUNS), rows)
