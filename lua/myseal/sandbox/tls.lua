--- Certificates for a sandbox started with `tls = true`: a CA, a server
-- certificate for localhost, 127.0.0.1 and ::1, and a client certificate,
-- made in process with the pki module. Keys are written 0600; the server's key belongs to
-- the server's user, and the directory (0750) to its group, so the server can read them.
-- @module myseal.sandbox.tls
local pki = require "pki"
local sys = require "sys"

local M = {}

--- Makes the files under `dir` and returns their paths.
-- @param dir directory to create
-- @param name the sandbox name, put into the subjects
-- @param account the server's account `{ uid, gid }` (root only: files are chowned to it)
-- @return { ca, ca_key, cert, key, client_cert, client_key }
function M.make(dir, name, account)
   assert(sys.mkdir(dir, tonumber("750", 8)))
   local ca_key = assert(pki.genkey{ type = "ec", curve = "P-256" })
   local ca = assert(pki.self_signed{ key = ca_key, days = 30,
      subject = "/O=myseal sandbox/CN=myseal sandbox " .. name .. " CA" })
   local function leaf(subject, usage, san)
      local key = assert(pki.genkey{ type = "ec", curve = "P-256" })
      local cert = assert(ca:sign{ ca_key = ca_key, public_key = key, subject = subject,
         usage = usage, san = san, days = 30 })
      return cert, key
   end
   local cert, key = leaf("/O=myseal sandbox/CN=localhost", "server", { "localhost", "127.0.0.1", "::1" })
   local ccert, ckey = leaf("/O=myseal sandbox/CN=sandbox client", "client")
   local t = {
      ca = dir .. "/ca.pem", ca_key = dir .. "/ca-key.pem",
      cert = dir .. "/server-cert.pem", key = dir .. "/server-key.pem",
      client_cert = dir .. "/client-cert.pem", client_key = dir .. "/client-key.pem",
   }
   assert(sys.write_file(t.ca, ca:pem(), { mode = 420 }))
   assert(ca_key:save(t.ca_key))
   assert(sys.write_file(t.cert, cert:pem(), { mode = 420 }))
   assert(key:save(t.key))
   assert(sys.write_file(t.client_cert, ccert:pem(), { mode = 420 }))
   assert(ckey:save(t.client_key))
   if account and sys.user().uid == 0 then
      assert(sys.chown(dir, 0, account.gid))
      assert(sys.chown(t.key, account.uid, account.gid))
   end
   return t
end

return M
