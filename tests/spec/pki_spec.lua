-- The pki module, checked with the openssl command line and a real server.
local pki = require "pki"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local h = require "support.helpers"

local OCTAL_600, OCTAL_640, OCTAL_644 = tonumber("600", 8), tonumber("640", 8), tonumber("644", 8)

-- openssl's output; openssl_ok: whether it succeeded, and its output
local function openssl_ok(...)
   local r = assert(sys.run{ "openssl", ... })
   return r.ok, r.stdout .. r.stderr
end
local function openssl(...)
   local ok, out = openssl_ok(...)
   assert(ok, out)
   return out
end

describe("pki", function()
   local dir, ca_key, ca
   setup(function()
      dir = assert(sys.tmpdir("pki-spec"))
      ca_key = assert(pki.genkey{ type = "rsa", bits = 2048 })
      ca = assert(pki.self_signed{ key = ca_key, subject = "/C=NL/O=Biobank/CN=Biobank Root CA", days = 3650 })
      h.write(dir .. "/ca.pem", ca:pem())
      h.write(dir .. "/pw", "correct horse")  -- for openssl -passin file:
   end)
   teardown(function() sys.rmtree(dir) end)

   describe("keys", function()
      it("generates RSA and EC keys", function()
         local r = assert(pki.genkey{ type = "rsa", bits = 3072 })
         assert.same({ "rsa", 3072 }, { r:type(), r:bits() })
         assert.is_nil(r:curve())
         local e = assert(pki.genkey{ type = "ec", curve = "P-384" })
         assert.same({ "ec", 384, "P-384" }, { e:type(), e:bits(), e:curve() })
         assert.equal("P-256", pki.genkey{ type = "ec" }:curve())
         assert.same({ "rsa", 2048 }, { pki.genkey():type(), pki.genkey():bits() })
         assert.equal("rsa 3072-bit key", tostring(r))
         assert.matches("^%-%-%-%-%-BEGIN PUBLIC KEY", r:public_pem())
         local path = h.write(dir .. "/pub.pem", e:public_pem())
         assert.matches("Public%-Key: %(384 bit%)\n.*NIST CURVE: P%-384", openssl("pkey", "-pubin", "-in", path,
            "-noout", "-text"))
         e:close()
         assert.equal("key (closed)", tostring(e))
         assert.has_error(function() e:bits() end, "attempt to use a closed key")
      end)

      it("refuses weak or unknown keys with the reason", function()
         local msg, code = h.fails(pki.genkey{ type = "rsa", bits = 1024 })
         assert.equal("RSA keys need at least 2048 bits (OpenSSL's security level 2 refuses smaller ones): "
            .. "1024 asked", msg)
         assert.equal(22, code)
         assert.equal("RSA keys of more than 8192 bits are not supported: 8193 asked",
            (h.fails(pki.genkey{ type = "rsa", bits = 8193 })))
         assert.equal("unknown curve 'P-521x' (P-256 or P-384)", (h.fails(pki.genkey{ type = "ec", curve = "P-521x" })))
         assert.equal("unknown key type 'dsa' (rsa or ec)", (h.fails(pki.genkey{ type = "dsa" })))
         assert.has_error(function() pki.genkey{ type = "rsa", bits = "2048" } end, "'bits' must be an integer, not a string")
         -- a small key made elsewhere loads, but goes into no certificate
         local path = dir .. "/rsa1024.pem"
         openssl("genrsa", "-out", path, "1024")
         local small = assert(pki.load_key(path))
         assert.equal(1024, small:bits())
         assert.equal("the key is a 1024-bit RSA key: at least 2048 bits are needed (OpenSSL's security level 2 "
            .. "refuses smaller ones)", (h.fails(pki.self_signed{ key = small, subject = "/CN=small" })))
         assert.equal("the public key is a 1024-bit RSA key: at least 2048 bits are needed (OpenSSL's security "
            .. "level 2 refuses smaller ones)",
            (h.fails(ca:sign{ ca_key = ca_key, public_key = small, subject = "/CN=small" })))
         assert.equal("the key is a 1024-bit RSA key: at least 2048 bits are needed (OpenSSL's security level 2 "
            .. "refuses smaller ones)", (h.fails(pki.csr{ key = small, subject = "/CN=small" })))
      end)

      it("writes PKCS#8, encrypted with AES-256 when a password is given", function()
         local k = pki.genkey{ type = "ec" }
         assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", k:pem())
         local enc = k:pem{ password = "correct horse" }
         assert.matches("^%-%-%-%-%-BEGIN ENCRYPTED PRIVATE KEY%-%-%-%-%-\n", enc)
         local path = h.write(dir .. "/enc-key.pem", enc, OCTAL_600)
         local text = openssl("asn1parse", "-in", path)
         assert.matches("PBES2", text)
         assert.matches("PBKDF2", text)
         assert.matches("aes%-256%-cbc", text)
         assert.equal(k:public_pem(), openssl("pkey", "-in", path, "-passin", "file:" .. dir .. "/pw", "-pubout"))
         local back = assert(pki.load_key(enc, "correct horse"))
         assert.equal(k:public_pem(), back:public_pem())
         local msg, code = h.fails(pki.load_key(enc, "wrong"))
         assert.equal("wrong password for the private key: bad decrypt; pkcs12 cipherfinal error", msg)
         assert.equal(116, code)  -- PKCS12_R_PKCS12_CIPHERFINAL_ERROR
         assert.equal("the private key is encrypted: a password is needed", (h.fails(pki.load_key(enc))))
         assert.has_error(function() k:pem{ password = "" } end, "an empty password protects nothing: leave it out")
      end)

      it("reads the key formats openssl writes: PKCS#1, SEC1, legacy encrypted PEM, DER", function()
         local pw = "file:" .. dir .. "/pw"
         local f = function(n) return dir .. "/fmt-" .. n end
         openssl("genrsa", "-traditional", "-out", f("rsa1.pem"), "2048")
         openssl("genrsa", "-traditional", "-aes256", "-passout", pw, "-out", f("rsa1-enc.pem"), "2048")
         openssl("ecparam", "-name", "prime256v1", "-genkey", "-out", f("sec1.pem"))
         openssl("pkcs8", "-topk8", "-nocrypt", "-in", f("sec1.pem"), "-outform", "DER", "-out", f("p8.der"))
         openssl("pkcs8", "-topk8", "-in", f("sec1.pem"), "-passout", pw, "-outform", "DER", "-out", f("p8-enc.der"))
         assert.equal("rsa 2048-bit key", tostring(assert(pki.load_key(f("rsa1.pem")))))
         assert.equal("ec 256-bit key", tostring(assert(pki.load_key(f("sec1.pem")))))
         assert.equal("rsa 2048-bit key", tostring(assert(pki.load_key(f("rsa1-enc.pem"), "correct horse"))))
         assert.equal("wrong password for the private key: bad decrypt", (h.fails(pki.load_key(f("rsa1-enc.pem"), "x"))))
         assert.equal("the private key is encrypted: a password is needed", (h.fails(pki.load_key(f("rsa1-enc.pem")))))
         local sec1 = pki.load_key(f("sec1.pem"))
         assert.equal(sec1:public_pem(), assert(pki.load_key(f("p8.der"))):public_pem())
         assert.equal(sec1:public_pem(), assert(pki.load_key(f("p8-enc.der"), "correct horse")):public_pem())
         assert.equal("the private key is encrypted: a password is needed", (h.fails(pki.load_key(f("p8-enc.der")))))
      end)

      it("saves a private key created 0600 before any byte, replacing whatever was there", function()
         local k = pki.genkey{ type = "ec" }
         local path = dir .. "/saved-key.pem"
         h.write(path, "a public file that is in the way\n", OCTAL_644)
         assert.is_true(k:save(path))
         assert.equal(OCTAL_600, sys.stat(path).mode)
         assert.equal(k:pem(), sys.read_file(path))
         assert.equal(k:public_pem(), assert(pki.load_key(path)):public_pem())
         assert.is_true(k:save(path, { mode = OCTAL_640, password = "correct horse" }))
         assert.equal(OCTAL_640, sys.stat(path).mode)
         assert.matches("^%-%-%-%-%-BEGIN ENCRYPTED PRIVATE KEY", sys.read_file(path))
         assert.equal(k:public_pem(), openssl("pkey", "-in", path, "-passin", "file:" .. dir .. "/pw", "-pubout"))
         assert.has_error(function() k:save(path, { mode = OCTAL_644 }) end, "bad argument #2 to 'save' (a private "
            .. "key must not be writable by the group or readable by others (use 0600, 0640 or 0400))")
         assert.equal(OCTAL_640, sys.stat(path).mode)  -- refused before anything was written
         local msg, code = h.fails(k:save(dir .. "/no/such/dir/key.pem"))
         assert.equal(dir .. "/no/such/dir/key.pem: No such file or directory", msg)
         assert.equal(2, code)
         for _, name in ipairs(assert(sys.dir(dir))) do
            assert.is_nil(name:match("myseal%-"), "a temporary file was left behind: " .. name)
         end
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
         local out = openssl("verify", "-CAfile", dir .. "/ca.pem", dir .. "/server.pem", dir .. "/client.pem")
         assert.equal(dir .. "/server.pem: OK\n" .. dir .. "/client.pem: OK\n", out)
         openssl("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslserver", dir .. "/server.pem")
         openssl("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslclient", dir .. "/client.pem")
         local ok
         ok, out = openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslclient", dir .. "/server.pem")
         assert.is_false(ok)
         assert.matches("unsuitable certificate purpose", out)
         ok, out = openssl_ok("verify", "-CAfile", dir .. "/ca.pem", "-purpose", "sslserver", dir .. "/client.pem")
         assert.is_false(ok)
         assert.matches("unsuitable certificate purpose", out)
         out = openssl("verify", "-CAfile", dir .. "/ca.pem", "-verify_hostname", "db.example.org", "-verify_ip", "::1",
            dir .. "/server.pem")
         assert.equal(dir .. "/server.pem: OK\n", out)
      end)

      it("has every extension a CA, a server and a client need", function()
         local text = openssl("x509", "-noout", "-text", "-in", dir .. "/ca.pem")
         assert.matches("Version: 3 %(0x2%)", text)
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:TRUE\n", text)
         assert.matches("X509v3 Key Usage: critical\n%s+Digital Signature, Certificate Sign, CRL Sign\n", text)
         assert.not_matches("Extended Key Usage", text)
         assert.matches("Signature Algorithm: sha256WithRSAEncryption", text)
         local ca_ski = text:match("X509v3 Subject Key Identifier: \n%s+([%x:]+)\n")
         assert.equal(ca_ski, text:match("X509v3 Authority Key Identifier: \n%s+([%x:]+)\n"))

         text = openssl("x509", "-noout", "-text", "-in", dir .. "/server.pem")
         assert.matches("Issuer: C = NL, O = Biobank, CN = Biobank Root CA\n", text)
         assert.matches("Subject: C = NL, O = Biobank, CN = db.example.org\n", text)
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:FALSE\n", text)
         assert.matches("X509v3 Key Usage: critical\n%s+Digital Signature, Key Agreement\n", text)
         assert.matches("X509v3 Extended Key Usage: \n%s+TLS Web Server Authentication\n", text)
         assert.matches("X509v3 Subject Alternative Name: \n%s+DNS:db.example.org, IP Address:10.0.0.5, "
            .. "IP Address:0:0:0:0:0:0:0:1\n", text)
         assert.equal(ca_ski, text:match("X509v3 Authority Key Identifier: \n%s+([%x:]+)\n"))
         assert.truthy(text:match("X509v3 Subject Key Identifier: \n%s+([%x:]+)\n"))
         assert.matches("Public Key Algorithm: id%-ecPublicKey", text)

         text = openssl("x509", "-noout", "-text", "-in", dir .. "/client.pem")
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:FALSE\n", text)
         assert.matches("X509v3 Key Usage: critical\n%s+Digital Signature, Key Encipherment\n", text)
         assert.matches("X509v3 Extended Key Usage: \n%s+TLS Web Client Authentication\n", text)
         assert.not_matches("Subject Alternative Name", text)
         local purposes = openssl("x509", "-noout", "-purpose", "-in", dir .. "/client.pem")
         assert.matches("SSL client : Yes\n", purposes)
         assert.matches("SSL server : No\n", purposes)
      end)

      it("chains through an EC intermediate CA with a path length", function()
         local ikey = pki.genkey{ type = "ec", curve = "P-384" }
         local inter = assert(ca:sign{ ca_key = ca_key, public_key = ikey, usage = "ca", path_len = 0,
            subject = "/O=Biobank/CN=Biobank Issuing CA" })
         assert.is_true(inter:is_ca())
         h.write(dir .. "/inter.pem", inter:pem())
         local text = openssl("x509", "-noout", "-text", "-in", dir .. "/inter.pem")
         assert.matches("X509v3 Basic Constraints: critical\n%s+CA:TRUE, pathlen:0\n", text)
         assert.matches("Certificate Sign, CRL Sign", text)
         local leaf = assert(inter:sign{ ca_key = ikey, public_key = pki.genkey{ type = "ec" },
            subject = "/CN=leaf.example", san = { "leaf.example" } })
         h.write(dir .. "/leaf.pem", leaf:pem())
         assert.matches("Signature Algorithm: ecdsa%-with%-SHA256", openssl("x509", "-noout", "-text", "-in",
            dir .. "/leaf.pem"))
         assert.equal(dir .. "/leaf.pem: OK\n", openssl("verify", "-CAfile", dir .. "/ca.pem", "-untrusted",
            dir .. "/inter.pem", dir .. "/leaf.pem"))
         assert.is_true(pki.verify(leaf, { trusted = { ca }, untrusted = { inter }, hostname = "leaf.example",
            purpose = "server" }))
         assert.equal("certificate verify failed: unable to get local issuer certificate",
            (h.fails(pki.verify(leaf, { trusted = { ca } }))))
         -- path_len 0: the intermediate may not sign another CA that signs
         local sub_key = pki.genkey{ type = "ec" }
         local sub = assert(inter:sign{ ca_key = ikey, public_key = sub_key, usage = "ca", subject = "/CN=too deep" })
         local deep = assert(sub:sign{ ca_key = sub_key, public_key = sub_key, subject = "/CN=deep.example" })
         assert.equal("certificate verify failed: path length constraint exceeded",
            (h.fails(pki.verify(deep, { trusted = { ca }, untrusted = { inter, sub } }))))
      end)

      it("uses random 159-bit serials and starts a little in the past", function()
         local a, b = server:serial(), client:serial()
         assert.are_not.equal(a, b)
         assert.equal(40, #a)
         assert.matches("^[4-7]", a)  -- bit 159 set, bit 160 clear: 20 octets, positive
         assert.equal("serial=" .. a .. "\n", openssl("x509", "-noout", "-serial", "-in", dir .. "/server.pem"))
         local now = os.time()
         assert.is_true(server:not_before() <= now - 240 and server:not_before() >= now - 360)
         assert.is_true(math.abs(server:not_after() - (now + 825 * 86400)) < 60)
         assert.is_true(server:days_left() == 824 or server:days_left() == 825)  -- 825 in the same second
         assert.equal(-1, server:days_left(server:not_after() + 10))
         assert.equal(0, server:days_left(server:not_after() - 10))
         local dates = openssl("x509", "-noout", "-startdate", "-enddate", "-in", dir .. "/ca.pem")
         assert.matches("^notBefore=%a+ +%d+ [%d:]+ %d+ GMT\nnotAfter=", dates)
         assert.is_true(math.abs(ca:not_after() - ca:not_before() - (3650 * 86400 + 300)) < 5)
      end)

      it("reads names, SANs, fingerprints and usages as openssl does", function()
         assert.equal("/C=NL/O=Biobank/CN=db.example.org", server:subject())
         assert.equal("CN=db.example.org,O=Biobank,C=NL", server:subject("rfc2253"))
         assert.equal("/C=NL/O=Biobank/CN=Biobank Root CA", server:issuer())
         assert.equal("CN=Biobank Root CA,O=Biobank,C=NL", server:issuer("rfc2253"))
         assert.equal("subject=C = NL, O = Biobank, CN = db.example.org\n",
            openssl("x509", "-noout", "-subject", "-in", dir .. "/server.pem"))
         assert.equal("subject=/C=NL/O=Biobank/CN=db.example.org\n",
            openssl("x509", "-noout", "-subject", "-nameopt", "compat", "-in", dir .. "/server.pem"))
         assert.same({ "db.example.org", "10.0.0.5", "::1" }, server:san())
         assert.same({}, client:san())
         local fp = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", dir .. "/server.pem")
         assert.equal(fp, "sha256 Fingerprint=" .. server:fingerprint("sha256") .. "\n")
         assert.equal(server:fingerprint(), server:fingerprint("sha256"))
         fp = openssl("x509", "-noout", "-fingerprint", "-sha1", "-in", dir .. "/server.pem")
         assert.equal(fp, "sha1 Fingerprint=" .. server:fingerprint("sha1") .. "\n")
         assert.is_true(ca:is_ca())
         assert.is_false(server:is_ca())
         assert.same({ key = { "digitalSignature", "keyAgreement" }, extended = { "serverAuth" } }, server:usage())
         assert.same({ key = { "digitalSignature", "keyCertSign", "cRLSign" }, extended = {} }, ca:usage())
         assert.is_true(server:matches_key(server_key))
         assert.is_false(server:matches_key(client_key))
         assert.is_true(ca:matches_key(ca_key))
         assert.equal(server, assert(pki.load_cert(server:der())))
         assert.equal(server:der(), openssl("x509", "-in", dir .. "/server.pem", "-outform", "DER"))
         assert.equal(server:pem(), openssl("x509", "-in", dir .. "/server.pem"))
         assert.equal(server, assert(pki.load_cert(dir .. "/server.pem")))
         local bundle = assert(pki.load_cert("leading text\n" .. server:pem() .. "\n" .. ca:pem()))
         assert.equal(2, #bundle)
         assert.equal(server, bundle[1])
         assert.equal(ca, bundle[2])
         assert.equal(1, #assert(pki.load_certs(server:pem())))
         assert.matches("^certificate /C=NL/O=Biobank/CN=db.example.org %(until %d+%-%d+%-%d+%)$", tostring(server))
      end)

      it("reads every kind of subject alternative name, typed, as openssl x509 shows them", function()
         local path = dir .. "/names-all.pem"
         openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            dir .. "/names-all.key", "-out", path, "-days", "3", "-subj", "/CN=all names", "-addext",
            "subjectAltName=DNS:db.example,IP:10.0.0.5,IP:fe80::1,email:dba@example.org,URI:https://example.org/x,"
            .. "dirName:dir_sect,RID:1.2.3.4,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:dba@EXAMPLE.ORG",
            "-config", h.write(dir .. "/names.cnf", "[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nC=NL\nCN=dir\n"))
         assert.matches("DNS:db.example, IP Address:10.0.0.5, IP Address:FE80:0:0:0:0:0:0:1, email:dba@example.org, "
            .. "URI:https://example.org/x, DirName:/C=NL/CN=dir, Registered ID:1.2.3.4, "
            .. "othername: UPN::dba@EXAMPLE.ORG",
            openssl("x509", "-in", path, "-noout", "-ext", "subjectAltName"))
         local c = assert(pki.load_cert(path))
         assert.same({
            { type = "dns", value = "db.example" }, { type = "ip", value = "10.0.0.5" },
            { type = "ip", value = "fe80::1" },
            { type = "email", value = "dba@example.org" }, { type = "uri", value = "https://example.org/x" },
            { type = "dirname", value = "/C=NL/CN=dir" }, { type = "rid", value = "1.2.3.4" },
            { type = "othername", oid = "1.3.6.1.4.1.311.20.2.3", value = "dba@EXAMPLE.ORG" },
         }, c:alt_names())
         -- san() stays what a TLS client matches: DNS names and IP addresses
         assert.same({ "db.example", "10.0.0.5", "fe80::1" }, c:san())
         assert.same({}, client:alt_names())
      end)

      it("says a date that is not a valid ASN.1 time is not one, where openssl says 'Bad time value'", function()
         local path = "tests/corpus/x509/cryptography/badasn1time.pem"   -- notAfter: a UTCTime with 15 digits
         assert.equal("notAfter=Bad time value\n", openssl("x509", "-in", path, "-noout", "-enddate"))
         local c = assert(pki.load_cert(path))
         local msg, code = h.fails(c:not_after())
         assert.equal("the certificate's notAfter is not a valid time ('19020701025736Z')", msg)
         assert.equal(22, code)
         assert.equal(msg, (h.fails(c:days_left())))
         assert.equal(1300699552, c:not_before())   -- Mar 21 09:25:52 2011 GMT
         assert.matches("%(until %?%)$", tostring(c))
         -- not self-issued: verification stops at the missing issuer, for openssl verify too
         assert.matches("error 20 at 0 depth lookup: unable to get local issuer certificate",
            select(2, openssl_ok("verify", "-CAfile", path, path)))
         assert.equal("certificate verify failed: unable to get local issuer certificate",
            (h.fails(pki.verify(c, { trusted = { c } }))))
      end)

      it("reads TRUSTED CERTIFICATE blocks and honours their trust settings, as openssl verify does", function()
         local trusted = dir .. "/trusted-ca.pem"
         openssl("x509", "-in", dir .. "/ca.pem", "-trustout", "-addtrust", "clientAuth", "-out", trusted)
         assert.matches("^%-%-%-%-%-BEGIN TRUSTED CERTIFICATE%-%-%-%-%-\n", sys.read_file(trusted))
         local t = assert(pki.load_cert(trusted))
         assert.equal(ca, t)
         assert.equal(ca:pem(), t:pem())   -- written back as a plain CERTIFICATE
         -- trusted for client authentication only: openssl refuses it for a server, and so do we
         local ok, out = openssl_ok("verify", "-CAfile", trusted, "-purpose", "sslserver", dir .. "/server.pem")
         assert.is_false(ok)
         assert.matches("certificate rejected", out)
         assert.equal("certificate verify failed: certificate rejected",
            (h.fails(pki.verify(server, { trusted = { t }, purpose = "server" }))))
         assert.equal(dir .. "/client.pem: OK\n", openssl("verify", "-CAfile", trusted, "-purpose", "sslclient",
            dir .. "/client.pem"))
         assert.is_true(pki.verify(client, { trusted = { t }, purpose = "client" }))
      end)

      it("writes subjects given either way, escapes and non-ASCII included, as MySQL will compare them", function()
         local k = pki.genkey{ type = "ec" }
         local c = assert(pki.self_signed{ key = k, ca = false,
            subject = "CN=lab\\, 2nd floor,O=Universitätsklinikum,C=DE" })
         assert.equal("/C=DE/O=Universit\\xC3\\xA4tsklinikum/CN=lab, 2nd floor", c:subject())
         assert.equal("CN=lab\\, 2nd floor,O=Universitätsklinikum,C=DE", c:subject("rfc2253"))
         local path = h.write(dir .. "/names.pem", c:pem())
         assert.equal("subject=C = DE, O = Universit\\C3\\A4tsklinikum, CN = \"lab, 2nd floor\"\n",
            openssl("x509", "-noout", "-subject", "-in", path))
         -- both forms read back to the same name
         assert.equal(c:subject(), assert(pki.self_signed{ key = k, subject = c:subject() }):subject())
         assert.equal(c:subject(), assert(pki.self_signed{ key = k, subject = c:subject("rfc2253") }):subject())
         -- a self-signed leaf: CA:FALSE and no extended key usage
         local text = openssl("x509", "-noout", "-text", "-in", path)
         assert.matches("CA:FALSE", text)
         assert.not_matches("Extended Key Usage", text)
         assert.is_false(c:is_ca())
         assert.has_error(function() pki.self_signed{ key = k, subject = "/CN=x", ca = false, path_len = 1 } end,
            "'path_len' applies to a CA only")
      end)

      it("reads certificates openssl made, and a CSR flow keeps the requested names", function()
         local keypath, certpath = dir .. "/o-key.pem", dir .. "/o-cert.pem"
         openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keypath, "-out", certpath,
            "-days", "30", "-subj", "/O=Other/CN=other.example", "-addext", "subjectAltName=DNS:other.example")
         local c = assert(pki.load_cert(certpath))
         assert.equal("/O=Other/CN=other.example", c:subject())
         assert.same({ "other.example" }, c:san())
         assert.is_true(c:matches_key(assert(pki.load_key(keypath))))
         local k = pki.genkey{ type = "ec" }
         local csr = assert(pki.csr{ key = k, subject = "CN=replica.example,O=Biobank",
            san = { "replica.example", "fe80::1" } })
         h.write(dir .. "/req.pem", csr:pem())
         local ok, out = openssl_ok("req", "-verify", "-noout", "-in", dir .. "/req.pem")
         assert.is_true(ok, out)
         assert.matches("DNS:replica.example, IP Address:FE80:0:0:0:0:0:0:1",
            openssl("req", "-noout", "-text", "-in", dir .. "/req.pem"))
         assert.equal("/O=Biobank/CN=replica.example", csr:subject())
         assert.equal("certificate request /O=Biobank/CN=replica.example", tostring(csr))
         local signed = assert(ca:sign{ ca_key = ca_key, csr = assert(pki.load_csr(dir .. "/req.pem")) })
         assert.equal("/O=Biobank/CN=replica.example", signed:subject())
         assert.same({ "replica.example", "fe80::1" }, signed:san())
         assert.is_true(signed:matches_key(k))
         -- the signer's san replaces the request's; its subject too
         signed = assert(ca:sign{ ca_key = ca_key, csr = csr, subject = "/CN=renamed", san = { "10.1.1.1" } })
         assert.same({ "/CN=renamed", { "10.1.1.1" } }, { signed:subject(), signed:san() })
         -- a request openssl made
         openssl("req", "-new", "-key", keypath, "-subj", "/CN=from.openssl", "-addext",
            "subjectAltName=DNS:from.openssl", "-out", dir .. "/o-req.pem")
         signed = assert(ca:sign{ ca_key = ca_key, csr = assert(pki.load_csr(dir .. "/o-req.pem")), usage = "client" })
         assert.same({ "/CN=from.openssl", { "from.openssl" } }, { signed:subject(), signed:san() })
      end)

      it("verifies chains, host names, purposes and time, with OpenSSL's reasons", function()
         assert.is_true(pki.verify(server, { trusted = { ca }, hostname = "db.example.org", purpose = "server" }))
         assert.is_true(pki.verify(server, { trusted = { ca }, hostname = "10.0.0.5" }))
         assert.is_true(pki.verify(server, { trusted = { ca }, hostname = "::1" }))
         assert.is_true(pki.verify(client, { trusted = { ca }, purpose = "client" }))
         assert.is_true(pki.verify(ca, { trusted = { ca } }))
         local msg, code = h.fails(pki.verify(server, { trusted = { ca }, hostname = "127.0.0.1" }))
         assert.equal("certificate verify failed: IP address mismatch ('127.0.0.1' is not in the certificate's "
            .. "subject alternative names)", msg)
         assert.equal(64, code)  -- X509_V_ERR_IP_ADDRESS_MISMATCH
         assert.equal("certificate verify failed: hostname mismatch ('other.example' is not in the certificate's "
            .. "subject alternative names)", (h.fails(pki.verify(server, { trusted = { ca }, hostname = "other.example" }))))
         assert.equal("certificate verify failed: unsuitable certificate purpose",
            (h.fails(pki.verify(server, { trusted = { ca }, purpose = "client" }))))
         assert.equal("certificate verify failed: certificate has expired",
            (h.fails(pki.verify(server, { trusted = { ca }, at = server:not_after() + 86400 }))))
         assert.equal("certificate verify failed: certificate is not yet valid",
            (h.fails(pki.verify(server, { trusted = { ca }, at = server:not_before() - 60 }))))
         assert.equal("certificate verify failed: unable to get local issuer certificate",
            (h.fails(pki.verify(server, { trusted = {} }))))
         assert.equal("certificate verify failed: self-signed certificate",
            (h.fails(pki.verify(ca, { trusted = {} }))))
         assert.has_error(function() pki.verify(server, { trusted = { "x" } }) end, "trusted[1] is not a certificate")
         assert.has_error(function() pki.verify(server, { trusted = ca }) end, "'trusted' must be a list of certificates")
         assert.has_error(function() pki.verify(server, { purpose = "any" }) end, "unknown purpose 'any' (server or client)")
         assert.has_error(function() pki.verify(server, { at = "now" }) end,
            "'at' must be a time in epoch seconds, not a string")
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

   it("encrypts MariaDB's key file as openssl enc -aes-256-cbc -md sha1 does, and reads what it writes", function()
      local keyfile = "1;" .. ("ab"):rep(32) .. "\n2;" .. ("cd"):rep(32) .. "\n"
      local pw = "file:" .. dir .. "/pw"     -- openssl reads its first line: "correct horse"
      -- ours, read by openssl
      local ours = assert(pki.salted_encrypt(keyfile, "correct horse"))
      assert.equal("Salted__", ours:sub(1, 8))
      assert.equal(16 + 144, #ours)           -- header, then 138 bytes padded to whole blocks
      assert.are_not.equal(ours, assert(pki.salted_encrypt(keyfile, "correct horse")))  -- a new salt each time
      local enc = h.write(dir .. "/keys.enc", ours)
      openssl("enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", pw, "-in", enc, "-out", dir .. "/keys.dec")
      assert.equal(keyfile, sys.read_file(dir .. "/keys.dec"))
      -- openssl's, read by us
      local plain = h.write(dir .. "/keys.txt", keyfile)
      local theirs = dir .. "/keys-openssl.enc"
      openssl("enc", "-aes-256-cbc", "-md", "sha1", "-pass", pw, "-in", plain, "-out", theirs)
      assert.equal(keyfile, assert(pki.salted_decrypt(assert(sys.read_file(theirs)), "correct horse")))
      openssl("enc", "-aes-256-cbc", "-md", "sha1", "-pass", pw, "-in", "/dev/null", "-out", theirs)
      assert.equal("", assert(pki.salted_decrypt(assert(sys.read_file(theirs)), "correct horse")))
      -- and what openssl refuses, we refuse: a wrong key gives valid padding once in 256 tries (the
      -- text is garbage then), the same for both, since the salt and the derived key are the same
      local refused = 0
      for i = 1, 4 do
         local wrong = "wrong-" .. i
         local ok, out = openssl_ok("enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass", "pass:" .. wrong, "-in", enc)
         local text, msg = pki.salted_decrypt(ours, wrong)
         assert.equal(ok, text ~= nil, out)
         if ok then
            assert.are_not.equal(keyfile, text)
         else
            refused = refused + 1
            assert.matches("bad decrypt", out)
            assert.equal("wrong password, or the data is damaged (bad decrypt)", msg)
         end
      end
      assert.is_true(refused > 0)   -- all four with valid padding: once in 2^32 runs
      local msg, code
      assert.equal("not OpenSSL salted data (it does not start with 'Salted__')",
         (h.fails(pki.salted_decrypt(keyfile, "correct horse"))))
      assert.equal("truncated: the 8-byte salt after 'Salted__' is cut short",
         (h.fails(pki.salted_decrypt(ours:sub(1, 12), "correct horse"))))
      msg, code = h.fails(pki.salted_decrypt(ours:sub(1, -2), "correct horse"))
      assert.equal("truncated: 143 bytes after the salt, not a whole number of 16-byte blocks", msg)
      assert.equal(22, code)
      assert.has_error(function() pki.salted_encrypt(keyfile, "") end,
         "bad argument #2 to 'salted_encrypt' (an empty password protects nothing)")
      assert.has_error(function() pki.salted_decrypt(ours) end)
   end)

   describe("bad input", function()
      it("returns OpenSSL's reason, never crashes", function()
         local msg, code = h.fails(pki.load_cert("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"))
         assert.equal("not a certificate: bad base64 decode", msg)
         assert.equal(100, code)  -- PEM_R_BAD_BASE64_DECODE
         assert.equal("not a certificate: no CERTIFICATE block in the PEM text", (h.fails(pki.load_cert(ca_key:pem()))))
         assert.equal("not a certificate: neither PEM nor DER", (h.fails(pki.load_cert("garbage\n"))))
         assert.equal("not a certificate: empty input", (h.fails(pki.load_cert(""))))
         assert.equal("not a certificate (DER): too long; bad object header; nested asn1 error",
            (h.fails(pki.load_cert("\48\130\1\2\0"))))
         -- bytes after a DER certificate are ignored, as openssl x509 -inform DER does
         assert.equal(ca, assert(pki.load_cert(ca:der() .. "\0trailing")))
         local pem = ca:pem()
         assert.equal("not a certificate (number 2 in the PEM text): bad base64 decode",
            (h.fails(pki.load_cert(pem .. pem:gsub("MII", "M!I")))))
         msg, code = h.fails(pki.load_cert(dir .. "/missing.pem"))
         assert.equal(dir .. "/missing.pem: No such file or directory", msg)
         assert.equal(2, code)
         assert.equal("not a private key: unsupported; wrong tag; nested asn1 error",
            (h.fails(pki.load_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))))
         assert.equal("not a private key: no PRIVATE KEY block in the PEM text", (h.fails(pki.load_key(ca:pem()))))
         assert.equal("not a private key: neither PEM nor DER", (h.fails(pki.load_key("key\n"))))
         assert.equal("not a certificate request: no CERTIFICATE REQUEST block in the PEM text",
            (h.fails(pki.load_csr(ca:pem()))))
         assert.equal("malformed subject '/CN': 'CN' is not NAME=value",
            (h.fails(pki.self_signed{ key = ca_key, subject = "/CN" })))
         assert.equal("malformed subject '/XX=1/CN=a': unknown attribute 'XX'",
            (h.fails(pki.self_signed{ key = ca_key, subject = "/XX=1/CN=a" })))
         assert.equal("malformed subject '/C=NLD/CN=a': bad value for C: string too long",
            (h.fails(pki.self_signed{ key = ca_key, subject = "/C=NLD/CN=a" })))
         assert.equal("malformed subject '': it is empty", (h.fails(pki.csr{ key = ca_key, subject = "" })))
         assert.equal("malformed subject 'CN=a+UID=b': multi-valued RDNs ('+') are not supported",
            (h.fails(ca:sign{ ca_key = ca_key, public_key = ca_key, subject = "CN=a+UID=b" })))
         local other = pki.genkey{ type = "ec" }
         assert.equal("the CA key does not match the CA certificate",
            (h.fails(ca:sign{ ca_key = other, public_key = other, subject = "/CN=x" })))
         local leaf = assert(ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=leaf" })
         assert.is_false(leaf:matches_key(ca_key))
         assert.equal("the signing certificate is not a CA (its basicConstraints say CA:FALSE or are missing)",
            (h.fails(leaf:sign{ ca_key = other, public_key = other, subject = "/CN=x" })))
         assert.has_error(function() ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=x", san = { "a b" } } end,
            "san[1] 'a b' is neither an IP address nor a DNS name")
         assert.has_error(function() ca:sign{ ca_key = ca_key, subject = "/CN=x" } end,
            "give exactly one of 'csr' and 'public_key'")
         assert.has_error(function() ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=x", usage = "web" } end,
            "unknown usage 'web' (server, client or ca)")
         assert.has_error(function() ca:sign{ ca_key = ca_key, public_key = other, subject = "/CN=x", path_len = 1 } end,
            "'path_len' applies to usage = \"ca\" only")
         assert.has_error(function() ca:sign{ ca_key = ca, public_key = other, subject = "/CN=x" } end,
            "'ca_key' must be a myseal.pki.Key, not a userdata")
         local c = assert(pki.load_cert(ca:pem()))
         c:close()
         c:close()
         assert.equal("certificate (closed)", tostring(c))
         assert.has_error(function() c:subject() end, "attempt to use a closed certificate")
         do
            local scoped <close> = assert(pki.load_cert(ca:pem()))
            c = scoped
         end
         assert.equal("certificate (closed)", tostring(c))
      end)
   end)

   describe("a sandbox MariaDB given our CA, server certificate and key", function()
      local s, other_ca, other_ca_key, client, client_key
      local paths = {}
      setup(function()
         -- a second CA the server trusts too, so that REQUIRE ISSUER has something to refuse
         other_ca_key = pki.genkey{ type = "ec" }
         other_ca = assert(pki.self_signed{ key = other_ca_key, subject = "/C=NL/O=Biobank/CN=Other CA" })
         local server_key = pki.genkey{ type = "ec" }
         local server = assert(ca:sign{ ca_key = ca_key, public_key = server_key, usage = "server",
            subject = "/O=Biobank/CN=db.sandbox", san = { "localhost", "127.0.0.1", "::1" } })
         client_key = pki.genkey{ type = "rsa" }
         client = assert(ca:sign{ ca_key = ca_key, public_key = client_key, usage = "client",
            subject = "/C=DE/O=Universitätsklinikum/CN=lab client" })
         paths.trusted = h.write(dir .. "/srv/trusted.pem", ca:pem() .. other_ca:pem())
         paths.cert = h.write(dir .. "/srv/server-cert.pem", server:pem())
         paths.key = dir .. "/srv/server-key.pem"
         assert(server_key:save(paths.key))
         -- the server runs as mysql: it must enter the directories and read its key
         assert(sys.chmod(dir, tonumber("711", 8)))
         if sys.user().uid == 0 then assert(sys.chown(paths.key, "mysql")) end
         paths.client = h.write(dir .. "/srv/client-cert.pem", client:pem())
         paths.client_key = dir .. "/srv/client-key.pem"
         assert(client_key:save(paths.client_key))
         s = assert(sandbox.start{ name = "spec-pki-" .. sys.getpid(),
            options = { ssl_ca = paths.trusted, ssl_cert = paths.cert, ssl_key = paths.key } })
         local root <close> = assert(s:connect())
         assert(root:exec("CREATE USER 'lab'@'%' REQUIRE SUBJECT ? AND ISSUER ?", client:subject(), client:issuer()))
      end)
      teardown(function()
         if s then s:stop() end
      end)

      local function lab(cert, key, mode)
         return s:connect{ host = "127.0.0.1", port = s.port, user = "lab",
            tls = { mode = mode or "verify_identity", ca = dir .. "/ca.pem", cert = cert, key = key } }
      end

      it("takes a verify_identity connection from our client certificate, let in by REQUIRE SUBJECT/ISSUER", function()
         local c <close> = assert(lab(paths.client, paths.client_key))
         assert.equal("lab@%", c:query("SELECT CURRENT_USER()")[1][1])
         local tls = c:tls()
         assert.is_true(tls.verified)
         assert.equal("/O=Biobank/CN=db.sandbox", tls.peer.subject)
         assert.equal(ca:subject(), tls.peer.issuer)
         local root <close> = assert(s:connect())
         local row = assert(root:query("SELECT x509_subject, x509_issuer FROM mysql.global_priv "
            .. "JOIN mysql.user USING (user, host) WHERE user = 'lab'"))[1]
         assert.same({ "/C=DE/O=Universit\\xC3\\xA4tsklinikum/CN=lab client", "/C=NL/O=Biobank/CN=Biobank Root CA" },
            { row[1], row[2] })
      end)

      it("refuses another subject from the same CA, and the same subject from another CA", function()
         local k = pki.genkey{ type = "ec" }
         local key_path = dir .. "/srv/intruder-key.pem"
         assert(k:save(key_path))
         local intruder = assert(ca:sign{ ca_key = ca_key, public_key = k, usage = "client",
            subject = "/C=DE/O=Universitätsklinikum/CN=lab intruder" })
         local _, errno = h.fails(lab(h.write(dir .. "/srv/intruder.pem", intruder:pem()), key_path))
         assert.equal(1045, errno)
         local lookalike = assert(other_ca:sign{ ca_key = other_ca_key, public_key = k, usage = "client",
            subject = client:subject() })
         assert.equal(client:subject(), lookalike:subject())
         _, errno = h.fails(lab(h.write(dir .. "/srv/lookalike.pem", lookalike:pem()), key_path))
         assert.equal(1045, errno)
         -- the real one still gets in
         local c <close> = assert(lab(paths.client, paths.client_key))
      end)

      it("fails verify_identity once the server certificate no longer names 127.0.0.1", function()
         local k = pki.genkey{ type = "ec" }
         local narrow = assert(ca:sign{ ca_key = ca_key, public_key = k, usage = "server",
            subject = "/O=Biobank/CN=db.example.org", san = { "db.example.org" } })
         assert.equal("certificate verify failed: IP address mismatch ('127.0.0.1' is not in the certificate's "
            .. "subject alternative names)", (h.fails(pki.verify(narrow, { trusted = { ca }, hostname = "127.0.0.1" }))))
         local old_cert, old_key = sys.read_file(paths.cert), sys.read_file(paths.key)
         local root = assert(s:connect())
         finally(function()
            assert(sys.write_file(paths.cert, old_cert))
            assert(sys.write_file(paths.key, old_key, { mode = OCTAL_600 }))
            assert(sys.chown(paths.key, s.user))
            assert(root:exec("FLUSH SSL"))
            root:close()
         end)
         assert(sys.write_file(paths.cert, narrow:pem()))
         assert(k:save(paths.key))
         assert(sys.chown(paths.key, s.user))
         assert(root:exec("FLUSH SSL"))
         local msg, errno = h.fails(lab(paths.client, paths.client_key))
         assert.equal(2026, errno)
         assert.matches("127%.0%.0%.1", msg)
         local c <close> = assert(lab(paths.client, paths.client_key, "verify_ca"))
         assert.equal("/O=Biobank/CN=db.example.org", c:tls().peer.subject)
      end)
   end)
end)
