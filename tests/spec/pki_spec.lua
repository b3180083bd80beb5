-- The pki module, checked with the openssl command line and a real server.
local pki = require "pki"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local h = require "support.helpers"

-- openssl's output; openssl_ok: whether it succeeded, and its output
local function openssl_ok(...)
   local r = assert(sys.run{ "openssl", ... })
   return r.ok, r.stdout .. r.stderr
end
local function openssl(...) return select(2, openssl_ok(...)) end

describe("pki", function()
   local dir, ca_key, ca
   setup(function()
      dir = assert(sys.tmpdir("pki-spec"))
      ca_key = assert(pki.genkey{ type = "rsa", bits = 2048 })
      ca = assert(pki.self_signed{ key = ca_key, subject = "/C=NL/O=Biobank/CN=Biobank Root CA", days = 3650 })
      h.write(dir .. "/ca.pem", ca:pem())
   end)
   teardown(function() sys.rmtree(dir) end)

   describe("keys", function()
      it("generates RSA and EC keys", function()
         local r = assert(pki.genkey{ type = "rsa", bits = 3072 })
         assert.same({ "rsa", 3072 }, { r:type(), r:bits() })
         local e = assert(pki.genkey{ type = "ec", curve = "P-384" })
         assert.same({ "ec", 384, "P-384" }, { e:type(), e:bits(), e:curve() })
         assert.equal("P-256", pki.genkey{ type = "ec" }:curve())
         assert.equal("rsa 3072-bit key", tostring(r))
         assert.matches("^%-%-%-%-%-BEGIN PUBLIC KEY", r:public_pem())
      end)

      it("refuses weak or unknown keys with the reason", function()
         assert.equal("RSA keys need at least 2048 bits (OpenSSL's security level 2 refuses smaller ones): "
            .. "1024 asked", (h.fails(pki.genkey{ type = "rsa", bits = 1024 })))
         assert.equal("unknown curve 'P-521x' (P-256 or P-384)", (h.fails(pki.genkey{ type = "ec", curve = "P-521x" })))
         assert.equal("unknown key type 'dsa' (rsa or ec)", (h.fails(pki.genkey{ type = "dsa" })))
      end)

      it("writes PKCS#8, encrypted with AES-256 when a password is given", function()
         local k = pki.genkey{ type = "ec" }
         assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", k:pem())
         local enc = k:pem{ password = "correct horse" }
         assert.matches("^%-%-%-%-%-BEGIN ENCRYPTED PRIVATE KEY%-%-%-%-%-\n", enc)
         local path = h.write(dir .. "/enc-key.pem", enc, 384)
         local text = openssl("asn1parse", "-in", path)
         assert.matches("aes%-256%-cbc", text)
         local back = assert(pki.load_key(enc, "correct horse"))
         assert.equal(k:public_pem(), back:public_pem())
         assert.equal("cannot decrypt the private key: wrong password", (h.fails(pki.load_key(enc, "wrong"))))
         assert.equal("the private key is encrypted: a password is needed", (h.fails(pki.load_key(enc))))
      end)

      it("saves a private key 0600 before any byte is written, and never readable by others", function()
         local k = pki.genkey{ type = "ec" }
         local path = dir .. "/saved-key.pem"
         assert.is_true(k:save(path))
         assert.equal(384, sys.stat(path).mode)
         assert.equal(k:public_pem(), assert(pki.load_key(path)):public_pem())
         assert.is_true(k:save(path, { mode = 416 }))
         assert.equal(416, sys.stat(path).mode)
         assert.has_error(function() k:save(path, { mode = 420 }) end)
         local msg, code = h.fails(k:save(dir .. "/no/such/dir/key.pem"))
         assert.equal(2, code)
         assert.matches("no/such/dir/key.pem: No such file or directory$", msg)
      end)
   end)

   describe("certificates", function()
      local server_key, server, client_key, client
      setup(function()
         server_key = pki.genkey{ type = "ec" }
         server = assert(ca:sign{ ca_key = ca_key, public_key = server_key, usage = "server",
            subject = "/C=NL/O=Biobank/CN=db.example.org", san = { "db.example.org", "10.0.0.5", "::1" } })
         client_key = pki.genkey{ type = "rsa" }
         client = assert(ca:sign{ ca_key = ca_key, public_key = client_key, usage = "client",
            subject = "/O=Biobank/CN=app" })
         h.write(dir .. "/server.pem", server:pem())
         h.write(dir .. "/client.pem", client:pem())
      end)

      it("passes openssl verify, with the purposes set by usage", function()
         local ok, out = openssl_ok("verify", "-CAfile", dir .. "/ca.pem", dir .. "/server.pem", dir .. "/client.pem")
         assert.is_true(ok, out)
         assert.matches("server.pem: OK", out)
         assert.is_true((openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslserver",
            dir .. "/server.pem")))
         assert.is_true((openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslclient",
            dir .. "/client.pem")))
         ok, out = openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslclient", dir .. "/server.pem")
         assert.is_false(ok)
         assert.matches("unsuitable certificate purpose", out)
      end)

      it("has every extension a CA and a server need", function()
         local text = openssl("x509", "-noout", "-text", "-in", dir .. "/ca.pem")
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:TRUE", text)
         assert.matches("X509v3 Key Usage: critical\n%s+Digital Signature, Certificate Sign, CRL Sign", text)
         assert.matches("X509v3 Subject Key Identifier", text)
         assert.matches("Signature Algorithm: sha256WithRSAEncryption", text)
         text = openssl("x509", "-noout", "-text", "-in", dir .. "/server.pem")
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:FALSE", text)
         assert.matches("X509v3 Key Usage: critical\n%s+Digital Signature, Key Agreement", text)
         assert.matches("X509v3 Extended Key Usage: \n%s+TLS Web Server Authentication", text)
         assert.matches("DNS:db.example.org, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1", text)
         assert.matches("X509v3 Authority Key Identifier", text)
         assert.matches("Issuer: C = NL, O = Biobank, CN = Biobank Root CA", text)
         text = openssl("x509", "-noout", "-text", "-in", dir .. "/client.pem")
         assert.matches("Digital Signature, Key Encipherment", text)
         assert.matches("TLS Web Client Authentication", text)
         -- an intermediate CA with a path length
         local ikey = pki.genkey{ type = "ec" }
         local inter = assert(ca:sign{ ca_key = ca_key, public_key = ikey, usage = "ca", path_len = 0,
            subject = "/CN=Biobank Issuing CA" })
         h.write(dir .. "/inter.pem", inter:pem())
         assert.matches("CA:TRUE, pathlen:0", openssl("x509", "-noout", "-text", "-in", dir .. "/inter.pem"))
         local leaf = assert(inter:sign{ ca_key = ikey, public_key = pki.genkey{ type = "ec" },
            subject = "/CN=leaf", san = { "leaf.example" } })
         h.write(dir .. "/leaf.pem", leaf:pem())
         local ok, out = openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-untrusted", dir .. "/inter.pem",
            dir .. "/leaf.pem")
         assert.is_true(ok, out)
         assert.is_true(pki.verify(leaf, { trusted = { ca }, untrusted = { inter }, hostname = "leaf.example" }))
      end)

      it("uses random 159-bit serials and starts a little in the past", function()
         local a, b = server:serial(), client:serial()
         assert.are_not.equal(a, b)
         assert.is_true(#a <= 40 and #a >= 30)
         assert.equal(openssl("x509", "-noout", "-serial", "-in", dir .. "/server.pem"), "serial=" .. a .. "\n")
         local now = os.time()
         assert.is_true(server:not_before() <= now - 60)
         assert.is_true(math.abs(server:not_after() - (now + 825 * 86400)) < 60)
         assert.is_true(server:days_left() == 824 or server:days_left() == 825)  -- 825 in the same second
         assert.equal(-1, server:days_left(server:not_after() + 10))
      end)

      it("reads names, SANs, fingerprints and usages as openssl does", function()
         assert.equal("/C=NL/O=Biobank/CN=db.example.org", server:subject())
         assert.equal("CN=db.example.org,O=Biobank,C=NL", server:subject("rfc2253"))
         assert.equal("/C=NL/O=Biobank/CN=Biobank Root CA", server:issuer())
         assert.same({ "db.example.org", "10.0.0.5", "::1" }, server:san())
         assert.same({}, client:san())
         local fp = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", dir .. "/server.pem")
         assert.equal(fp, "sha256 Fingerprint=" .. server:fingerprint() .. "\n")
         assert.is_true(ca:is_ca())
         assert.is_false(server:is_ca())
         assert.same({ key = { "digitalSignature", "keyAgreement" }, extended = { "serverAuth" } }, server:usage())
         assert.is_true(server:matches_key(server_key))
         assert.is_false(server:matches_key(client_key))
         assert.equal(server, assert(pki.load_cert(server:der())))
         assert.equal(server, assert(pki.load_cert(dir .. "/server.pem")))
         local bundle = assert(pki.load_cert(server:pem() .. "\n" .. ca:pem()))
         assert.equal(2, #bundle)
         assert.equal(ca, bundle[2])
         assert.matches("^certificate /C=NL/O=Biobank/CN=db.example.org %(until %d+%-%d+%-%d+%)$", tostring(server))
      end)

      it("reads certificates openssl made, and a CSR flow keeps the requested names", function()
         local keypath, certpath = dir .. "/o-key.pem", dir .. "/o-cert.pem"
         local ok = openssl_ok("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keypath, "-out", certpath,
            "-days", "30", "-subj", "/O=Other/CN=other.example", "-addext", "subjectAltName=DNS:other.example")
         assert.is_true(ok)
         local c = assert(pki.load_cert(certpath))
         assert.equal("/O=Other/CN=other.example", c:subject())
         assert.is_true(c:matches_key(assert(pki.load_key(keypath))))
         local k = pki.genkey{ type = "ec" }
         local csr = assert(pki.csr{ key = k, subject = "CN=replica.example,O=Biobank", san = { "replica.example" } })
         h.write(dir .. "/req.pem", csr:pem())
         local out
         ok, out = openssl_ok("req", "-verify", "-noout", "-in", dir .. "/req.pem")
         assert.is_true(ok, out)
         assert.equal("/O=Biobank/CN=replica.example", csr:subject())
         local signed = assert(ca:sign{ ca_key = ca_key, csr = assert(pki.load_csr(dir .. "/req.pem")) })
         assert.equal("/O=Biobank/CN=replica.example", signed:subject())
         assert.same({ "replica.example" }, signed:san())
      end)

      it("verifies chains, host names, purposes and time, with OpenSSL's reasons", function()
         assert.is_true(pki.verify(server, { trusted = { ca }, hostname = "db.example.org", purpose = "server" }))
         assert.is_true(pki.verify(server, { trusted = { ca }, hostname = "10.0.0.5" }))
         local msg, code = h.fails(pki.verify(server, { trusted = { ca }, hostname = "127.0.0.1" }))
         assert.equal("certificate verify failed: IP address mismatch ('127.0.0.1' is not in the certificate's "
            .. "subject alternative names)", msg)
         assert.equal(64, code)
         assert.equal("certificate verify failed: hostname mismatch ('other.example' is not in the certificate's "
            .. "subject alternative names)", (h.fails(pki.verify(server, { trusted = { ca }, hostname = "other.example" }))))
         assert.equal("certificate verify failed: unsuitable certificate purpose",
            (h.fails(pki.verify(server, { trusted = { ca }, purpose = "client" }))))
         assert.equal("certificate verify failed: certificate has expired",
            (h.fails(pki.verify(server, { trusted = { ca }, at = server:not_after() + 86400 }))))
         assert.equal("certificate verify failed: unable to get local issuer certificate",
            (h.fails(pki.verify(server, { trusted = {} }))))
         assert.has_error(function() pki.verify(server, { trusted = { "x" } }) end, "trusted[1] is not a certificate")
      end)
   end)

   it("digests with OpenSSL and draws random bytes from its generator", function()
      assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", pki.digest(""))
      local path = h.write(dir .. "/digest.bin", "key material\0\255")
      local out = openssl("dgst", "-sha256", "-r", path)
      assert.equal(out:match("^(%x+)"), pki.digest("key material\0\255"))
      assert.equal(40, #pki.digest("x", "sha1"))
      local a, b = pki.random(32), pki.random(32)
      assert.equal(32, #a)
      assert.are_not.equal(a, b)
      assert.has_error(function() pki.random(0) end)
   end)

   describe("bad input", function()
      it("returns OpenSSL's reason, never crashes", function()
         assert.matches("^not a certificate", (h.fails(pki.load_cert("-----BEGIN CERTIFICATE-----\ngarbage\n"
            .. "-----END CERTIFICATE-----\n"))))
         assert.equal("not a certificate: no CERTIFICATE block in the PEM text",
            (h.fails(pki.load_cert(ca_key:pem()))))
         assert.matches("^not a certificate %(neither PEM nor DER%)", (h.fails(pki.load_cert("\48\0\1\2"))))
         local msg, code = h.fails(pki.load_cert(dir .. "/missing.pem"))
         assert.equal(dir .. "/missing.pem: No such file or directory", msg)
         assert.equal(2, code)
         assert.matches("^not a private key", (h.fails(pki.load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))))
         assert.equal("malformed subject '/CN': 'CN' is not NAME=value",
            (h.fails(pki.self_signed{ key = ca_key, subject = "/CN" })))
         assert.equal("malformed subject '/XX=1/CN=a': unknown attribute 'XX'",
            (h.fails(pki.self_signed{ key = ca_key, subject = "/XX=1/CN=a" })))
         assert.equal("malformed subject '': it is empty", (h.fails(pki.csr{ key = ca_key, subject = "" })))
         local other = pki.genkey{ type = "ec" }
         assert.equal("the CA key does not match the CA certificate",
            (h.fails(ca:sign{ ca_key = other, public_key = other, subject = "/CN=x" })))
         local leaf = assert(ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=leaf" })
         assert.equal("the signing certificate is not a CA (its basicConstraints say CA:FALSE or are missing)",
            (h.fails(leaf:sign{ ca_key = other, public_key = other, subject = "/CN=x" })))
         assert.has_error(function() ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=x", san = { "a b" } } end,
            "san[1] 'a b' is neither an IP address nor a DNS name")
         assert.has_error(function() ca:sign{ ca_key = ca_key, subject = "/CN=x" } end,
            "give exactly one of 'csr' and 'public_key'")
         local c = assert(pki.load_cert(ca:pem()))
         c:close()
         assert.equal("certificate (closed)", tostring(c))
         assert.has_error(function() c:subject() end, "attempt to use a closed certificate")
      end)
   end)

   it("a server with our certificates takes verify_identity and REQUIRE SUBJECT/ISSUER logins", function()
      local s <close> = assert(sandbox.start{ name = "spec-pki", tls = true })
      local sca, scakey = assert(pki.load_cert(s.tls.ca)), assert(pki.load_key(s.tls.ca_key))
      local ccert = assert(pki.load_cert(s.tls.client_cert))
      local root <close> = assert(s:connect())
      assert(root:exec("CREATE USER 'lab'@'%' REQUIRE SUBJECT ? AND ISSUER ?", ccert:subject(), sca:subject()))
      local opts = { host = "127.0.0.1", port = s.port, user = "lab",
         tls = { mode = "verify_identity", ca = s.tls.ca, cert = s.tls.client_cert, key = s.tls.client_key } }
      local c <close> = assert(s:connect(opts))
      assert.equal("lab@%", c:query("SELECT CURRENT_USER()")[1][1])
      assert.is_true(c:tls().verified)
      -- the same CA, another subject: refused
      local k = pki.genkey{ type = "ec" }
      local other = assert(sca:sign{ ca_key = scakey, public_key = k, usage = "client", subject = "/CN=intruder" })
      opts.tls.cert = h.write(dir .. "/intruder.pem", other:pem())
      opts.tls.key = dir .. "/intruder-key.pem"
      assert(k:save(opts.tls.key))
      local _, errno = h.fails(s:connect(opts))
      assert.equal(1045, errno)
   end)
end)
