-- The keystore module against the real JDK: keytool reads what we write, we
-- read what keytool and openssl write, and a JVM trusts our stores in a TLS
-- handshake with a sandbox server.
local keystore = require "keystore"
local pki = require "pki"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local h = require "support.helpers"
local java = require "support.java"

local PASS = "changeit"
local ENV = { STOREPASS = PASS }

-- keytool -list -v of a store, the password from the environment
-- openssl's view of a PKCS#12 file's structure (legacy algorithms included)
local function openssl_info(path)
   local r = assert(sys.run{ "openssl", "pkcs12", "-info", "-noout", "-legacy", "-in", path,
      "-passin", "env:STOREPASS", env = ENV })
   return r.ok, r.stdout .. r.stderr
end

local function keytool_list(path)
   local r = assert(sys.run{ "keytool", "-list", "-v", "-keystore", path, "-storepass:env", "STOREPASS",
      env = { STOREPASS = PASS, LANG = "C.UTF-8" } })
   assert(r.ok, r.stdout .. r.stderr)
   local entries = {}
   for block in (r.stdout .. "\n"):gmatch("Alias name: (.-)\n%*%*%*%*%*") do
      local alias = block:match("^([^\n]+)")
      entries[alias] = { type = block:match("Entry type: (%S+)"), sha256 = block:match("SHA256: (%S+)") }
   end
   return entries, r.stdout
end

describe("keystore", function()
   local dir, ca_key, ca, other_ca, leaf
   setup(function()
      dir = assert(sys.tmpdir("keystore-spec"))
      ca_key = pki.genkey{ type = "ec" }
      ca = assert(pki.self_signed{ key = ca_key, subject = "/O=Biobank/CN=Biobank DB CA" })
      other_ca = assert(pki.self_signed{ key = pki.genkey{ type = "ec" }, subject = "/CN=Another CA" })
      leaf = assert(ca:sign{ ca_key = ca_key, public_key = pki.genkey{ type = "ec" }, subject = "/CN=db" })
   end)
   teardown(function() sys.rmtree(dir) end)

   for _, type in ipairs{ "jks", "pkcs12" } do
      it("writes " .. type .. " stores that keytool lists as trusted certificate entries", function()
         local store = keystore.new{ type = type }
         assert.is_true(store:add_trusted("Biobank-DB-CA", ca))
         assert.is_true(store:add_trusted("other", other_ca))
         local ok, warning = store:add_trusted("db-leaf", leaf)
         assert.is_true(ok)
         assert.equal("'db-leaf' is not a CA certificate: Java will trust this exact certificate only, "
            .. "not what it might sign", warning)
         local path = dir .. "/trust." .. type
         assert.is_true(store:save(path, { password = PASS }))
         assert.equal(420, sys.stat(path).mode)
         local entries, text = keytool_list(path)
         assert.matches("Keystore type: " .. type:upper(), text)
         assert.same({
            ["biobank-db-ca"] = { type = "trustedCertEntry", sha256 = ca:fingerprint() },
            other = { type = "trustedCertEntry", sha256 = other_ca:fingerprint() },
            ["db-leaf"] = { type = "trustedCertEntry", sha256 = leaf:fingerprint() },
         }, entries)
         -- and we read it back
         local again = assert(keystore.open(path, { password = PASS }))
         assert.equal(type, again:type())
         assert.same({ "biobank-db-ca", "other", "db-leaf" }, again:aliases())
         assert.equal(ca, again:get("BIOBANK-DB-CA"))
         assert.is_nil(again:get("nope"))
      end)

      it("opens " .. type .. " stores keytool wrote, keeping their private keys byte for byte", function()
         local path = dir .. "/kt-" .. type
         local pem = h.write(dir .. "/ca.pem", ca:pem())
         local r = sys.run{ "keytool", "-importcert", "-noprompt", "-alias", "Site Root", "-file", pem,
            "-keystore", path, "-storetype", type, "-storepass:env", "STOREPASS", env = ENV }
         assert(r.ok, r.stderr)
         r = sys.run{ "keytool", "-genkeypair", "-alias", "tomcat", "-keyalg", "EC", "-dname", "CN=app",
            "-keystore", path, "-storetype", type, "-storepass:env", "STOREPASS", "-keypass:env", "STOREPASS", env = ENV }
         assert(r.ok, r.stderr)
         local before = keytool_list(path)
         local store = assert(keystore.open(path, { password = PASS }))
         local kinds = {}
         for _, e in ipairs(store:entries()) do kinds[e.alias] = e.kind end
         assert.same({ ["site root"] = "trusted", tomcat = "key" }, kinds)
         assert.equal(ca, store:get("site root"))
         assert(store:add_trusted("added", other_ca))
         local out = dir .. "/kt-out-" .. type
         assert(store:save(out, { password = PASS }))
         local after = keytool_list(out)
         assert.same(before.tomcat, after.tomcat)
         assert.same(before["site root"], after["site root"])
         assert.equal("trustedCertEntry", after.added.type)
         if type == "jks" then
            -- the key entry's bytes, from its alias to its last certificate, are all there
            local old, new = assert(sys.read_file(path)), assert(sys.read_file(out))
            local at = assert(old:find("\0\6tomcat", 1, true))
            local key_entry = old:sub(at, at + 200)
            assert.is_truthy(new:find(key_entry, 1, true))
         end
         -- the JVM can still use the key: keytool exports its certificate
         r = sys.run{ "keytool", "-exportcert", "-rfc", "-alias", "tomcat", "-keystore", out,
            "-storepass:env", "STOREPASS", env = ENV }
         assert.is_true(r.ok, r.stderr)
      end)
   end

   it("reads a store openssl pkcs12 -export wrote", function()
      local key = h.write(dir .. "/o-key.pem", ca_key:pem(), 384)
      local cert = h.write(dir .. "/o-cert.pem", ca:pem())
      local path = dir .. "/o.p12"
      local r = sys.run{ "openssl", "pkcs12", "-export", "-in", cert, "-inkey", key, "-name", "web",
         "-out", path, "-passout", "env:STOREPASS", env = ENV }
      assert(r.ok, r.stderr)
      local store = assert(keystore.open(path, { password = PASS, type = "pkcs12" }))
      assert.same({ { alias = "web", kind = "key", listed = true, fingerprint = ca:fingerprint() } }, store:entries())
      path = dir .. "/o-nokeys.p12"
      r = sys.run{ "openssl", "pkcs12", "-export", "-nokeys", "-in", cert, "-out", path, "-passout", "env:STOREPASS", env = ENV }
      assert(r.ok, r.stderr)
      store = assert(keystore.open(path, { password = PASS }))
      local e = store:entries()[1]
      -- a certificate bag without Java's trust attribute: not trusted (keytool lists nothing)
      assert.equal("certificate", e.kind)
      assert.is_false(e.listed)
      assert.equal(ca:fingerprint(), e.fingerprint)
      assert.matches("contains 0 entries", select(2, keytool_list(path)))
   end)

   -- keytool with the password from the environment, for stores the tests make
   local function keytool(...)
      local argv = { "keytool", ... }
      argv[#argv + 1] = "-storepass:env"
      argv[#argv + 1] = "STOREPASS"
      argv.env = { STOREPASS = PASS, LANG = "C.UTF-8" }
      local r = assert(sys.run(argv))
      assert(r.ok, r.stdout .. r.stderr)
      return r.stdout
   end

   it("keeps every entry it does not interpret: secret keys, keys with chains, legacy stores", function()
      local pem = h.write(dir .. "/ca-k.pem", ca:pem())
      for _, legacy in ipairs{ false, true } do
         local path = dir .. (legacy and "/legacy.p12" or "/secret.p12")
         local j = legacy and "-J-Dkeystore.pkcs12.legacy" or "-J-Dx=1"
         keytool(j, "-genseckey", "-alias", "Master-AES", "-keyalg", "AES", "-keysize", "256", "-keystore", path,
            "-storetype", "pkcs12", "-keypass:env", "STOREPASS")
         keytool(j, "-genkeypair", "-alias", "tomcat", "-keyalg", "EC", "-dname", "CN=app", "-keystore", path,
            "-keypass:env", "STOREPASS")
         keytool(j, "-importcert", "-noprompt", "-alias", "Site Root", "-file", pem, "-keystore", path)
         if legacy then
            assert.matches("pbeWithSHA1And40BitRC2%-CBC", select(2, openssl_info(path)))
         end
         local store = assert(keystore.open(path, { password = PASS }))
         local kinds = {}
         for _, e in ipairs(store:entries()) do kinds[e.alias] = e.kind end
         assert.same({ ["master-aes"] = "secret", tomcat = "key", ["site root"] = "trusted" }, kinds)
         assert(store:add_trusted("added", other_ca))
         local out = dir .. "/saved-" .. (legacy and "legacy" or "secret") .. ".p12"
         -- its keys stay protected by the password it was opened with: another one would lock them
         assert.equal("the store holds private or secret keys protected by the password it was opened with: save it "
            .. "with that password (keytool -storepasswd changes it)",
            (h.fails(store:save(out, { password = "other" }))))
         assert.is_nil(sys.stat(out))
         assert(store:save(out, { password = PASS }))
         local before, after = keytool_list(path), keytool_list(out)
         after.added = nil
         assert.same(before, after)
         assert.equal("SecretKeyEntry", before["master-aes"].type)
         -- the secret key is still the same key: keytool exports nothing for it, but decrypts it to list it
         keytool("-list", "-alias", "master-aes", "-keystore", out)
         -- written the modern way, as keytool 17 writes
         local info = select(2, openssl_info(out))
         assert.matches("PBES2, PBKDF2, AES%-256%-CBC", info)
         assert.not_matches("RC2", info)
         store:close()
      end
   end)

   it("names, folds and keeps aliases as the JDK does", function()
      local pem = h.write(dir .. "/ca-a.pem", ca:pem())
      for _, type in ipairs{ "pkcs12", "jks" } do
         local path = dir .. "/unicode." .. type
         keytool("-importcert", "-noprompt", "-alias", "Ärger-CA", "-file", pem, "-keystore", path, "-storetype", type)
         keytool("-importcert", "-noprompt", "-alias", "key🔑Ω", "-file", pem, "-keystore", path)
         local store = assert(keystore.open(path, { password = PASS }))
         assert.same({ "ärger-ca", "key🔑ω" }, store:aliases())
         assert.equal(ca, store:get("ÄRGER-ca"))
         assert.equal("alias 'ÄRGER-CA' is already in the keystore (add it with replace = true to replace it)",
            (h.fails(store:add_trusted("ÄRGER-CA", other_ca))))
         assert.is_true(store:add_trusted("ÄÖÜ-UPPER", other_ca))
         local out = dir .. "/unicode-out." .. type
         assert(store:save(out, { password = PASS }))
         -- keytool finds each entry by the alias as the user typed it
         for _, alias in ipairs{ "Ärger-CA", "key🔑Ω", "äöü-upper" } do
            assert.matches("trustedCertEntry", keytool("-list", "-alias", alias, "-keystore", out))
         end
         store:close()
      end
      -- a key without a friendlyName: keytool calls it 1
      local key = h.write(dir .. "/u-key.pem", ca_key:pem(), 384)
      local path = dir .. "/noname.p12"
      local r = sys.run{ "openssl", "pkcs12", "-export", "-in", pem, "-inkey", key, "-out", path,
         "-passout", "env:STOREPASS", env = ENV }
      assert(r.ok, r.stderr)
      assert.matches("\n1, [^\n]*PrivateKeyEntry", keytool("-list", "-keystore", path))
      assert.same({ "1" }, assert(keystore.open(path, { password = PASS })):aliases())
   end)

   it("reads a JKS with bytes after it as keytool does, and says so", function()
      local store = keystore.new{ type = "jks" }
      assert(store:add_trusted("ca", ca))
      local path = h.write(dir .. "/appended.jks", assert(store:encode{ password = PASS }) .. "appended!\n")
      assert.matches("Your keystore contains 1 entry", keytool("-list", "-keystore", path))
      local again = assert(keystore.open(path, { password = PASS }))
      assert.same({ "ca" }, again:aliases())
      assert.same({ "10 bytes after the keystore's integrity check, which the JDK ignores (saving leaves them out)" },
         again:warnings())
      assert.equal(path .. ": wrong password, or the keystore was tampered with (integrity check failed)",
         (h.fails(keystore.open(path, { password = "wrong!" }))))
   end)

   it("refuses bad input clearly and leaves the file as it was", function()
      local store = keystore.new{ type = "jks" }
      assert(store:add_trusted("ca", ca))
      local path = dir .. "/bad.jks"
      assert(store:save(path, { password = PASS }))
      local original = sys.read_file(path)
      local msg = h.fails(keystore.open(path, { password = "wrong!" }))
      assert.equal(path .. ": wrong password, or the keystore was tampered with (integrity check failed)", msg)
      assert.is_nil(msg:find("wrong!", 1, true))
      h.write(dir .. "/short.jks", original:sub(1, 40))
      assert.matches("^" .. dir:gsub("%-", "%%-") .. "/short%.jks: ", (h.fails(keystore.open(dir .. "/short.jks", { password = PASS }))))
      h.write(dir .. "/junk", "not a keystore at all")
      assert.matches("not a keystore %(neither JKS nor PKCS#12%)", (h.fails(keystore.open(dir .. "/junk", { password = PASS }))))
      assert.equal(dir .. "/none.p12: No such file or directory", (h.fails(keystore.open(dir .. "/none.p12", { password = PASS }))))
      assert.equal("alias 'CA' is already in the keystore (add it with replace = true to replace it)",
         (h.fails(store:add_trusted("CA", other_ca))))
      assert.is_true(store:add_trusted("CA", other_ca, { replace = true }))
      assert.equal(other_ca, store:get("ca"))
      assert.equal("no entry 'x' in the keystore", (h.fails(store:remove("x"))))
      -- a save that cannot happen leaves the old file whole
      assert.equal(2, select(3, store:save(dir .. "/no/such/dir/x.jks", { password = PASS })))
      assert.equal(original, sys.read_file(path))
      assert.has_error(function() keystore.open(path, {}) end, "a keystore needs a password (options.password)")
      assert.has_error(function() keystore.new{ type = "jceks" } end, "unknown keystore type 'jceks' (pkcs12, jks)")
      store:close()
      assert.equal("keystore (closed)", tostring(store))
      assert.has_error(function() store:aliases() end, "attempt to use a closed keystore")
   end)

   it("is what a JVM trusts in a real TLS handshake, and nothing else", function()
      local s <close> = assert(sandbox.start{ name = "spec-keystore", tls = true })
      local server_ca = assert(pki.load_cert(s.tls.ca))
      local url = "jdbc:mariadb://127.0.0.1:" .. s.port .. "/?useSsl=true"
      for _, type in ipairs{ "pkcs12", "jks" } do
         local good = keystore.new{ type = type }
         assert(good:add_trusted("db-ca", server_ca))
         local path = dir .. "/jvm-good." .. type
         assert(good:save(path, { password = PASS }))
         local ok, out = java.probe(url, s.tcp_user, s.tcp_password, {
            "-Djavax.net.ssl.trustStore=" .. path, "-Djavax.net.ssl.trustStorePassword=" .. PASS,
            "-Djavax.net.ssl.trustStoreType=" .. type })
         assert.is_true(ok, out)
         assert.matches("^OK TLSv1%.[23] ", out)
      end
      local bad = keystore.new{}
      assert(bad:add_trusted("another", other_ca))
      local path = dir .. "/jvm-bad.p12"
      assert(bad:save(path, { password = PASS }))
      local ok, out = java.probe(url, s.tcp_user, s.tcp_password, {
         "-Djavax.net.ssl.trustStore=" .. path, "-Djavax.net.ssl.trustStorePassword=" .. PASS })
      assert.is_false(ok)
      assert.matches("FAIL .*PKIX path building failed", out)
   end)
end)
