-- The conformance corpus (tests/corpus/, each file's origin in tests/corpus/SOURCES) read by
-- myseal and by the readers that decide: my_print_defaults for option files, keytool and a JVM
-- for keystores (also for the stores myseal saves), openssl x509 and openssl verify for
-- certificates and chains. Any difference fails, unless docs/readers.md lists it, by the id
-- in backquotes this spec gives it, as a deliberate choice with its reason.
local cnf = require "cnf"
local keystore = require "keystore"
local pki = require "pki"
local sys = require "sys"
local host = require "myseal.host"

local CORPUS = host.home .. "/tests/corpus"
local READERS = assert(sys.read_file(host.home .. "/docs/readers.md"))

-- every file under dir whose name matches pattern, sorted
local function files(dir, pattern, out)
   out = out or {}
   for _, name in ipairs(assert(sys.dir(dir))) do
      local p = dir .. "/" .. name
      if sys.stat(p).type == "directory" then files(p, pattern, out)
      elseif name:match(pattern) then out[#out + 1] = p end
   end
   table.sort(out)
   return out
end

local function rel(path) return path:sub(#CORPUS + 2) end

-- Collects the differences of one reader; done() fails on one docs/readers.md does not list.
local function differences()
   local d = { list = {}, used = {} }
   function d.add(file, id, detail)
      d.list[#d.list + 1] = ("%s: %s%s"):format(rel(file), detail, id and (" [" .. id .. "]") or "")
      if id then d.used[id] = true end
      if not id then d.unlisted = (d.unlisted or 0) + 1 end
   end
   function d.done()
      for id in pairs(d.used) do
         assert(READERS:find("`" .. id .. "`", 1, true), "docs/readers.md does not list `" .. id .. "`")
      end
      assert(not d.unlisted, "differences docs/readers.md does not list:\n" .. table.concat(d.list, "\n"))
   end
   return d
end

-- the JDK's answers (tests/corpus/Reference.java), compiled once into the state directory
local reference, scratch
local function java(args, env)
   if not reference then
      local src = assert(sys.read_file(CORPUS .. "/Reference.java"))
      if not os.getenv("MYSEAL_STATE_DIR") then scratch = assert(sys.tmpdir("corpus-java")) end
      local state = os.getenv("MYSEAL_STATE_DIR") or scratch
      reference = ("%s/cache/corpus-reference-%s"):format(state, pki.digest(src):sub(1, 12))
      if not sys.stat(reference .. "/Reference.class") then
         assert(sys.mkdir(reference, tonumber("700", 8)))
         local r = assert(sys.run{ "javac", "-d", reference, CORPUS .. "/Reference.java", timeout = 120 })
         assert(r.ok, r.stderr)
      end
   end
   local argv = { "java", "--add-opens", "java.base/sun.security.tools.keytool=ALL-UNNAMED", "-cp", reference,
      "Reference", env = env, timeout = 300 }
   for _, a in ipairs(args) do argv[#argv + 1] = a end
   local r = assert(sys.run(argv))
   assert(r.ok, r.stderr)
   return r.stdout
end

describe("the conformance corpus", function()
   local dir
   setup(function() dir = assert(sys.tmpdir("corpus-spec")) end)
   teardown(function()
      sys.rmtree(dir)
      if scratch then sys.rmtree(scratch) end
   end)

   it("has its origins recorded, and seeds the fuzzers", function()
      local sources = assert(sys.read_file(CORPUS .. "/SOURCES"))
      for _, sub in ipairs{ "cnf/debian", "cnf/mysql-test", "x509/mozilla", "x509/cryptography", "chains/pkits",
                            "keystores/cryptography", "keystores/pkits", "keystores/debian", "made" } do
         assert.truthy(sources:find("== " .. sub .. "/", 1, true), sub .. " has no entry in SOURCES")
      end
      local size = 0
      for _, f in ipairs(files(CORPUS, ".")) do size = size + sys.stat(f).size end
      assert.is_true(size < 3 * 1024 * 1024, "the corpus should stay a few MB: " .. size)
      for _, seeds in ipairs{ "cnf_parse", "jks", "pkcs12", "pki_load" } do
         assert.is_true(#files(host.home .. "/tests/fuzz/corpus/" .. seeds, "^corpus%-") > 0, seeds)
      end
   end)

   it("option files: every value as my_print_defaults prints it, every byte kept", function()
      local d = differences()
      local all = files(CORPUS .. "/cnf", "%.cnf$", files(CORPUS .. "/cnf", "fallback$"))
      assert.is_true(#all > 500)
      for _, path in ipairs(all) do
         local cwd = path:match("^(.*)/")
         -- the server resolves relative includes against its working directory: tell myseal which
         local doc, err = cnf.load(path, { includes = true, cwd = cwd })
         local argv = { "my_print_defaults", "--defaults-file=" .. path, cwd = cwd }
         for _, g in ipairs(doc and doc:sections() or {}) do
            if g ~= "" then argv[#argv + 1] = g end
         end
         if #argv == 2 then argv[3] = "mysqld" end
         local r = assert(sys.run(argv))
         local ours, theirs = {}, {}
         for line in r.stdout:gmatch("[^\n]+") do theirs[#theirs + 1] = line end
         if doc then
            for _, e in ipairs(doc:entries()) do
               if e.group ~= "" then ours[#ours + 1] = "--" .. e.name .. (e.value == true and "" or "=" .. e.value) end
            end
            local text = assert(sys.read_file(path))
            if doc:text() ~= text then d.add(path, nil, "not kept byte for byte") end
         end
         if (doc ~= nil) ~= r.ok then
            d.add(path, nil, doc and "my_print_defaults refuses it: " .. r.stderr or "myseal refuses it: " .. err)
         elseif doc and table.concat(ours, "\n") ~= table.concat(theirs, "\n") then
            d.add(path, nil, "read differently:\n  ours   " .. table.concat(ours, " ") .. "\n  theirs "
               .. table.concat(theirs, " "))
         end
      end
      d.done()
   end)

   -- openssl's notation for a subjectAltName entry
   local function openssl_name(n)
      if n.type == "dns" then return "DNS:" .. n.value end
      if n.type == "email" then return "email:" .. n.value end
      if n.type == "uri" then return "URI:" .. n.value end
      if n.type == "dirname" then return "DirName:" .. n.value end
      if n.type == "rid" then return "Registered ID:" .. n.value end
      if n.type == "ip" and n.value and n.value:find(":") then
         -- openssl writes every group of an IPv6 address, in capitals
         local head, tail = n.value:match("^(.-)::(.*)$")
         local groups = {}
         local function add(s) for g in s:gmatch("[^:]+") do groups[#groups + 1] = g end end
         if head then
            add(head)
            local after = {}
            for g in tail:gmatch("[^:]+") do after[#after + 1] = g end
            for _ = 1, 8 - #groups - #after do groups[#groups + 1] = "0" end
            for _, g in ipairs(after) do groups[#groups + 1] = g end
         else add(n.value) end
         for i, g in ipairs(groups) do groups[i] = (g:gsub("^0+(%x)", "%1")):upper() end
         return "IP Address:" .. table.concat(groups, ":")
      end
      if n.type == "ip" then return "IP Address:" .. (n.value or "<invalid>") end
      return nil   -- othername, x400, ediparty: openssl prints them its own way
   end

   it("certificates: names, serial, dates, fingerprint and SANs as openssl x509 shows them", function()
      local d = differences()
      local all = {}
      for _, f in ipairs(files(CORPUS, "%.[a-z]+$")) do
         local r = rel(f)
         if (r:match("^x509/") or r:match("^chains/") or r:match("^made/x509/"))
            and (f:match("%.pem$") or f:match("%.crt$") or f:match("%.der$")) then all[#all + 1] = f end
      end
      assert.is_true(#all > 600)
      for _, path in ipairs(all) do
         local data = assert(sys.read_file(path))
         local der = data:byte(1) == 0x30
         local r = assert(sys.run{ "openssl", "x509", "-in", path, "-inform", der and "DER" or "PEM", "-noout",
            "-subject", "-issuer", "-serial", "-dates", "-fingerprint", "-sha256", "-ext", "subjectAltName",
            "-nameopt", "compat", "-dateopt", "iso_8601" })
         local certs, err = pki.load_certs(data)
         if not r.ok or not certs then
            if r.ok ~= (certs ~= nil) then
               d.add(path, nil, certs and ("openssl refuses it: " .. r.stderr) or ("myseal refuses it: " .. err))
            end
         else
            local c = certs[1]
            local o = r.stdout
            local function time(t)
               local v = t()
               return v and os.date("!%Y-%m-%d %H:%M:%SZ", v) or "Bad time value"
            end
            local ours = {
               "subject=" .. c:subject(), "issuer=" .. c:issuer(), "serial=" .. c:serial(),
               "notBefore=" .. time(function() return c:not_before() end),
               "notAfter=" .. time(function() return c:not_after() end),
               "sha256 Fingerprint=" .. c:fingerprint() }
            local theirs = {}
            for line in o:gmatch("[^\n]+") do
               if #theirs < #ours then theirs[#theirs + 1] = line end   -- in the order asked for
            end
            local san = o:match("X509v3 Subject Alternative Name: [^\n]*\n%s+([^\n]*)")
            for i = 1, math.max(#ours, #theirs) do
               if ours[i] ~= theirs[i] then
                  d.add(path, nil, ("%s, openssl: %s"):format(tostring(ours[i]), tostring(theirs[i])))
               end
            end
            if san and #c:alt_names() == 0 then
               -- OpenSSL could not decode the extension: openssl x509 dumps its bytes
               d.add(path, "cert-undecodable-san", "a subjectAltName OpenSSL cannot decode: " .. san)
            elseif san then
               local names, k = {}, 0
               for _, n in ipairs(c:alt_names()) do names[#names + 1] = n end
               for entry in (san .. ", "):gmatch("(.-), ") do
                  k = k + 1
                  local n = names[k]
                  local mine = n and openssl_name(n)
                  if not n or (mine and mine ~= entry) then
                     d.add(path, nil, ("SAN %d: %s, openssl: %s"):format(k, tostring(mine), entry))
                  end
               end
               if k ~= #names then
                  d.add(path, nil, ("%d SAN entries, openssl shows %d"):format(#names, k))
               end
            end
         end
      end
      d.done()
   end)

   it("chains: pki.verify says what openssl verify says, for every PKITS end entity", function()
      local d = differences()
      local at = 1577836800   -- 2020-01-01: inside every PKITS certificate's validity
      local pkits = CORPUS .. "/chains/pkits"
      local anchor = assert(pki.load_cert(pkits .. "/TrustAnchorRootCertificate.crt"))
      local pool, pem = {}, {}
      for _, f in ipairs(files(pkits, "%.crt$")) do
         if not f:match("EE%.crt$") and not f:match("TrustAnchorRoot") then
            local c = assert(pki.load_cert(f))
            pool[#pool + 1] = c
            pem[#pem + 1] = c:pem()
         end
      end
      local anchor_file = dir .. "/anchor.pem"
      assert(sys.write_file(anchor_file, anchor:pem()))
      local pool_file = dir .. "/pool.pem"
      assert(sys.write_file(pool_file, table.concat(pem)))
      local ees = files(pkits, "EE%.crt$")
      assert.is_true(#ees > 200)
      local function compare(path, cert, opts, argv)
         local r = assert(sys.run(argv))
         local code = tonumber(r.stdout:match("error (%d+) at")) or tonumber((r.stderr or ""):match("error (%d+) at"))
         local ok, msg, ours = pki.verify(cert, opts)
         if (ok == true) ~= r.ok or (not ok and ours ~= code) then
            d.add(path, nil, ("pki.verify: %s (%s), openssl verify: %s"):format(tostring(ok or msg), tostring(ours),
               r.ok and "OK" or (r.stdout .. r.stderr):gsub("\n", " ")))
         end
      end
      for _, ee in ipairs(ees) do
         compare(ee, assert(pki.load_cert(ee)), { trusted = { anchor }, untrusted = pool, at = at },
            { "openssl", "verify", "-attime", tostring(at), "-CAfile", anchor_file, "-untrusted", pool_file, ee })
      end
      -- made: a chain of three with host names and purposes, and a TRUSTED CERTIFICATE anchor
      local made = CORPUS .. "/made/x509/"
      local ca, inter, leaf = pki.load_cert(made .. "ca.pem"), pki.load_cert(made .. "inter.pem"),
         pki.load_cert(made .. "leaf.pem")
      local tca = assert(pki.load_cert(made .. "trusted-ca.pem"))
      for _, case in ipairs{
         { { trusted = { ca }, untrusted = { inter } }, {} },
         { { trusted = { ca } }, {} },
         { { trusted = { ca }, untrusted = { inter }, hostname = "db.corpus.example" },
           { "-verify_hostname", "db.corpus.example" } },
         { { trusted = { ca }, untrusted = { inter }, hostname = "other.example" },
           { "-verify_hostname", "other.example" } },
         { { trusted = { ca }, untrusted = { inter }, hostname = "127.0.0.1" }, { "-verify_ip", "127.0.0.1" } },
         { { trusted = { ca }, untrusted = { inter }, hostname = "10.9.9.9" }, { "-verify_ip", "10.9.9.9" } },
         { { trusted = { ca }, untrusted = { inter }, purpose = "server" }, { "-purpose", "sslserver" } },
         { { trusted = { ca }, untrusted = { inter }, purpose = "client" }, { "-purpose", "sslclient" } },
         { { trusted = { tca }, untrusted = { inter }, purpose = "server" }, { "-purpose", "sslserver" },
           "trusted-ca.pem" },
         { { trusted = { tca }, untrusted = { inter }, purpose = "client" }, { "-purpose", "sslclient" },
           "trusted-ca.pem" },
      } do
         local argv = { "openssl", "verify", "-CAfile", made .. (case[3] or "ca.pem") }
         if case[1].untrusted then argv[#argv + 1] = "-untrusted"; argv[#argv + 1] = made .. "inter.pem" end
         for _, a in ipairs(case[2]) do argv[#argv + 1] = a end
         argv[#argv + 1] = made .. "leaf.pem"
         compare(made .. "leaf.pem", leaf, case[1], argv)
      end
      d.done()
   end)

   -- the password of a corpus store ("" for those made without one)
   local function password(path)
      local r = rel(path)
      if r:match("^made/") or r:match("^keystores/debian/") then return "changeit" end
      if r:match("^keystores/pkits/") then return "password" end
      if r:match("no%-pwd") or r:match("no%-password") then return "" end
      if r:match("%-pwd%.p12$") then return "password" end
      return "cryptography"
   end

   -- Reference's output: per store (a line "== path ..." before each) the lines that follow
   local function per_store(out)
      local views, cur = {}, nil
      for line in out:gmatch("[^\n]*") do
         local path = line:match("^== (.-) %(exit %d+%)$") or line:match("^== (.*)$")
         if path then
            cur = { exit = line:match("%(exit (%d+)%)$"), lines = {} }
            views[path] = cur
         elseif cur then cur.lines[#cur.lines + 1] = line end
      end
      for _, v in pairs(views) do
         while v.lines[#v.lines] == "" do v.lines[#v.lines] = nil end
      end
      return views
   end

   -- keytool -list -v, per store: { alias = { type =, sha256 = } } (nil: keytool failed)
   local function keytool_views(out)
      local views = {}
      for path, v in pairs(per_store(out)) do
         if v.exit == "0" then
            local entries = {}
            for block in (table.concat(v.lines, "\n") .. "\n"):gmatch("Alias name: (.-)\n%*%*%*%*%*") do
               local alias = block:match("^([^\n]+)")
               entries[alias] = { type = block:match("Entry type: (%S+)"), sha256 = block:match("SHA256: (%S+)") }
            end
            views[path] = entries
         end
      end
      return views
   end

   local function jvm_views(out)
      local views = {}
      for path, v in pairs(per_store(out)) do views[path] = table.concat(v.lines, "\n") end
      return views
   end

   it("keystores: what keytool lists and what a JVM loads, before and after myseal saves them", function()
      local d = differences()
      local stores = files(CORPUS .. "/keystores", ".", files(CORPUS .. "/made/keystores", "."))
      assert.is_true(#stores > 40)
      local env, args, saved = {}, {}, {}
      local kinds = { trustedCertEntry = "trusted", PrivateKeyEntry = "key", SecretKeyEntry = "secret" }
      local opened = {}
      for i, path in ipairs(stores) do
         local pw = password(path)
         local var = "P" .. i
         env[var] = pw
         args[#args + 1] = var .. ":" .. path
         if pw == "" then
            d.add(path, "keystore-no-password", "made without a password: myseal needs one")
         else
            local store, err = keystore.open(path, { password = pw })
            opened[path] = store or err
            if store then
               local out = ("%s/saved-%d-%s"):format(dir, i, path:match("([^/]+)$"))
               local ok, why = store:save(out, { password = pw })
               if ok then
                  saved[path] = out
                  args[#args + 1] = var .. ":" .. out
               else
                  d.add(path, nil, "myseal cannot save it: " .. why)
               end
            end
         end
      end
      env.LANG = "C.UTF-8"
      local listed = keytool_views(java({ "keytool", table.unpack(args) }, env))
      local loaded = jvm_views(java({ "load", table.unpack(args) }, env))
      for _, path in ipairs(stores) do
         local store, theirs = opened[path], listed[path]
         if store ~= nil and (type(store) == "string") ~= (theirs == nil) then
            d.add(path, nil, type(store) == "string" and "myseal refuses it: " .. store or "keytool refuses it")
         elseif type(store) == "userdata" then
            local ours = {}
            for _, e in ipairs(store:entries()) do
               if e.listed then ours[e.alias] = { type = e.kind, sha256 = e.fingerprint } end
            end
            for alias, t in pairs(theirs) do
               local o = ours[alias]
               if not o or o.type ~= kinds[t.type] or (t.sha256 and o.sha256 ~= t.sha256) then
                  d.add(path, nil, ("'%s': keytool %s %s, myseal %s"):format(alias, t.type, tostring(t.sha256),
                     o and (o.type .. " " .. tostring(o.sha256)) or "nothing"))
               end
               ours[alias] = nil
            end
            for alias in pairs(ours) do d.add(path, nil, ("'%s': listed by myseal only"):format(alias)) end
            local out = saved[path]
            if out then
               -- what myseal saved: keytool lists the same, the JVM decrypts the same keys
               local after = listed[out]
               local same = after ~= nil
               for alias, t in pairs(theirs) do
                  local a = after[alias]
                  same = same and a ~= nil and a.type == t.type and a.sha256 == t.sha256
               end
               for alias in pairs(after or {}) do same = same and theirs[alias] ~= nil end
               if not same then d.add(path, nil, "keytool lists what myseal saved differently") end
               if loaded[out] ~= loaded[path] then
                  d.add(path, nil, "the JVM loads what myseal saved differently:\n" .. tostring(loaded[path]) .. "\n"
                     .. tostring(loaded[out]))
               end
            end
            store:close()
         end
      end
      d.done()
   end)

   it("aliases fold to lower case as the JDK folds them", function()
      local words = { "Ärger-CA", "ÄÖÜ-UPPER", "key🔑Ω", "İstanbul", "ΟΔΥΣΣΕΥΣ", "ΟΔΥΣΣΕΥΣ-ca", "ΑΣ.1", "x Σ",
                      "ΑΣ_ca", "𐐀Deseret", "ẞ", "ǅ", "Ⰰ", "ΑΣ́", "ǈ-Ǌ", "ＡＢＣ", "Ω Å K" }
      local list = dir .. "/words.txt"
      assert(sys.write_file(list, table.concat(words, "\n") .. "\n"))
      local theirs = {}
      for line in java({ "lower", list }):gmatch("[^\n]+") do theirs[#theirs + 1] = line end
      local ca = assert(pki.load_cert(CORPUS .. "/made/x509/ca.pem"))
      for i, w in ipairs(words) do
         local s = keystore.new{}
         assert(s:add_trusted(w, ca))
         assert.equal(theirs[i], s:aliases()[1], w)
      end
      -- and the tables in core/pure/jdkcase.c are what this JDK says
      local table_c = assert(sys.read_file(host.home .. "/core/pure/jdkcase.c"))
      local tables = table_c:match("BEGIN TABLES[^\n]*\n(.-)/%* END TABLES %*/")
      assert.equal(java({ "case-table" }):gsub("Java [%d.]+", "Java"), (tables:gsub("Java [%d.]+", "Java")))
   end)
end)
