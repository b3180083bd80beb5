-- The mysql module against real sandboxes: TLS modes, errors, values, streaming.
local mysql = require "mysql"
local pki = require "pki"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local h = require "support.helpers"

describe("mysql", function()
   local s, dir
   setup(function()
      s = assert(sandbox.start{ name = "spec-mysql", tls = true })
      dir = assert(sys.tmpdir("mysql-spec"))
   end)
   teardown(function()
      s:stop()
      sys.rmtree(dir)
   end)

   local function tcp(extra)
      local o = s:tcp_options()
      for k, v in pairs(extra or {}) do o[k] = v end
      return s:connect(o)
   end

   describe("TLS", function()
      it("connects in every mode and says what was negotiated", function()
         local plain <close> = assert(tcp{ tls = { mode = "disabled" } })
         assert.is_nil(plain:tls())
         for _, mode in ipairs{ "preferred", "required", "verify_ca", "verify_identity" } do
            local c <close> = assert(tcp{ tls = { mode = mode, ca = s.tls.ca } })
            local t = assert(c:tls(), mode)
            assert.matches("^TLSv1%.[23]$", t.version)
            assert.is_string(t.cipher)
            assert.is_true(t.verified)
            assert.equal(mode == "verify_identity", t.identity)
            assert.equal("/O=myseal sandbox/CN=localhost", t.peer.subject)
            assert.equal(pki.load_cert(s.tls.cert):not_after(), t.peer.not_after)
         end
         -- preferred without a CA encrypts but verifies nothing
         local c <close> = assert(tcp{})
         assert.is_false(c:tls().verified)
         -- the socket is not TCP: no TLS by default
         local sock <close> = assert(s:connect())
         assert.is_nil(sock:tls())
      end)

      it("verifies the host name against the certificate's SAN", function()
         local c <close> = assert(tcp{ host = "localhost", tls = { mode = "verify_identity", ca = s.tls.ca } })
         -- a server certificate that names only db.example
         local ca, ca_key = pki.load_cert(s.tls.ca), assert(pki.load_key(s.tls.ca_key))
         local key = pki.genkey{ type = "ec" }
         local cert = assert(ca:sign{ ca_key = ca_key, public_key = key, subject = "/CN=db.example",
            san = { "db.example" } })
         local old_cert, old_key = sys.read_file(s.tls.cert), sys.read_file(s.tls.key)
         assert(sys.write_file(s.tls.cert, cert:pem()))
         assert(key:save(s.tls.key))
         assert(sys.chown(s.tls.key, s.user))   -- the server (user mysql) reads its key
         local root <close> = assert(s:connect())
         assert(root:exec("FLUSH SSL"))
         local msg, errno = h.fails(tcp{ tls = { mode = "verify_identity", ca = s.tls.ca } })
         assert.matches("^cannot connect to 127%.0%.0%.1:%d+: TLS/SSL error: Validation of SSL server "
            .. "certificate failed", msg)
         assert.equal(2026, errno)
         -- verify_ca checks the chain only
         local ok <close> = assert(tcp{ tls = { mode = "verify_ca", ca = s.tls.ca } })
         assert(sys.write_file(s.tls.cert, old_cert))
         assert(sys.write_file(s.tls.key, old_key, { mode = 384 }))
         assert(sys.chown(s.tls.key, s.user))
         assert(root:exec("FLUSH SSL"))
      end)

      it("refuses a server certificate from another CA", function()
         local key = pki.genkey{ type = "ec" }
         local other = assert(pki.self_signed{ key = key, subject = "/CN=another CA" })
         local path = h.write(dir .. "/other-ca.pem", other:pem())
         for _, mode in ipairs{ "verify_ca", "verify_identity" } do
            local msg, errno = h.fails(tcp{ tls = { mode = mode, ca = path } })
            assert.matches("TLS/SSL error: self%-signed certificate in certificate chain", msg)
            assert.equal(2026, errno)
         end
      end)

      it("presents a client certificate, and an account with REQUIRE SSL needs TLS", function()
         local root <close> = assert(s:connect())
         assert(root:exec("CREATE USER 'tlsonly'@'%' IDENTIFIED BY 'tls-pass' REQUIRE SSL"))
         assert(root:exec("CREATE USER 'x509'@'%' IDENTIFIED BY 'x-pass' REQUIRE X509"))
         local opts = { host = s.host, port = s.port, user = "tlsonly", password = "tls-pass" }
         opts.tls = { mode = "disabled" }
         local msg, errno, state = h.fails(s:connect(opts))
         assert.equal(1045, errno)
         assert.equal("28000", state)
         assert.matches("Access denied for user 'tlsonly'", msg)
         opts.tls = { mode = "required" }
         local c <close> = assert(s:connect(opts))
         opts.user, opts.password = "x509", "x-pass"
         opts.tls = { mode = "verify_identity", ca = s.tls.ca }
         assert.equal(1045, select(3, s:connect(opts)))
         opts.tls.cert, opts.tls.key = s.tls.client_cert, s.tls.client_key
         local x <close> = assert(s:connect(opts))
         assert.equal("x509@%", x:query("SELECT CURRENT_USER()")[1][1])
      end)

      it("needs a CA for the verifying modes", function()
         assert.has_error(function() tcp{ tls = { mode = "verify_ca" } } end,
            "mysql.connect: tls mode 'verify_ca' needs tls.ca or tls.capath")
         assert.has_error(function() tcp{ tls = { mode = "strict" } } end,
            "mysql.connect: unknown tls mode 'strict' (disabled, preferred, required, verify_ca or verify_identity)")
      end)
   end)

   describe("errors", function()
      it("a wrong password: 1045 / 28000, and the password is nowhere in the message", function()
         local msg, errno, state = h.fails(tcp{ password = "Wr0ng-P4ss-xyz" })
         assert.equal(1045, errno)
         assert.equal("28000", state)
         assert.equal(string.format("cannot connect to 127.0.0.1:%d: Access denied for user 'tcp_user'@"
            .. "'127.0.0.1' (using password: YES)", s.port), msg)
         assert.is_nil(msg:find("Wr0ng", 1, true))
         local ok, err = pcall(tcp, { password = "Wr0ng-P4ss-xyz", port = "not a port" })
         assert.is_false(ok)
         assert.is_nil(tostring(err):find("Wr0ng", 1, true))
      end)

      it("an unknown database, a syntax error, an unreachable server", function()
         local _, errno, state = h.fails(tcp{ database = "no_such_db" })
         assert.equal(1049, errno)
         assert.equal("42000", state)
         local c <close> = assert(tcp{})
         local msg
         msg, errno, state = h.fails(c:query("SELEC 1"))
         assert.equal(1064, errno)
         assert.equal("42000", state)
         assert.matches("^You have an error in your SQL syntax", msg)
         msg, errno = h.fails(mysql.connect{ host = "127.0.0.1", port = 1, user = "x", connect_timeout = 2 })
         assert.equal(2002, errno)
         assert.matches("^cannot connect to 127%.0%.0%.1:1: Can't connect to server on '127%.0%.0%.1'", msg)
      end)

      it("a server killed mid-session gives a clear error, and read_timeout bounds a wait", function()
         local v <close> = assert(sandbox.start{ name = "spec-mysql-victim" })
         local c = assert(v:connect{ host = v.host, port = v.port, user = v.tcp_user,
            password = v.tcp_password, read_timeout = 1 })
         local t0 = sys.clock()
         local msg, errno = h.fails(c:query("SELECT SLEEP(20)"))
         assert.equal(2013, errno)
         assert.matches("^Lost connection to server during query", msg)
         assert.is_true(sys.clock() - t0 < 5, "read_timeout = 1 waited " .. (sys.clock() - t0))
         local d = assert(v:connect(v:tcp_options()))
         assert(sys.kill(v.pid, "KILL"))
         while sys.alive(v.pid) do sys.sleep(0.01) end
         t0 = sys.clock()
         msg, errno = h.fails(d:query("SELECT 1"))
         assert.is_true(errno == 2013 or errno == 2006, "errno " .. errno)
         assert.is_true(sys.clock() - t0 < 5)
         assert.is_nil(d:ping())
      end)

      it("misuse raises, a closed connection says so", function()
         local c = assert(tcp{})
         assert.has_error(function() c:query("SELECT ?", 1, 2) end,
            "the statement has 1 placeholder and 2 values were given")
         assert.has_error(function() c:query("SELECT ?", {}) end,
            "cannot bind a table value (strings, numbers, booleans, nil or mysql.null)")
         assert.has_error(function() mysql.ident("") end)
         assert.has_error(function() mysql.connect{ port = "x" } end,
            "mysql.connect: 'port' must be an integer from 0 to 65535")
         c:close()
         c:close()
         assert.equal("mysql connection (closed)", tostring(c))
         assert.has_error(function() c:query("SELECT 1") end, "attempt to use a closed connection")
      end)
   end)

   describe("format (SQL text for display)", function()
      it("puts literals into the placeholders that binding finds", function()
         assert.equal("SELECT 'it''s a\\b', 42, -7, 0.5, TRUE, FALSE, NULL, NULL, X'00FF' FROM t "
            .. "WHERE a = '?' AND `b?` = 1 -- ?\n",
            mysql.format("SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM t WHERE a = '?' AND `b?` = 1 -- ?\n",
               "it's a\\b", 42, -7, 0.5, true, false, nil, mysql.null, "\0\255"))
         assert.equal("ALTER USER 'app'@'%' REQUIRE SSL", mysql.format("ALTER USER ?@? REQUIRE SSL", "app", "%"))
         assert.equal("SELECT 1", mysql.format("SELECT 1"))
         assert.equal("SELECT NULL", mysql.format("SELECT ?", nil))
         assert.equal("SELECT 'héllo ✓'", mysql.format("SELECT ?", "héllo ✓"))
      end)

      it("raises on a count mismatch and on a value with no literal", function()
         assert.has_error(function() mysql.format("SELECT ?, ?", 1) end,
            "SQL has 2 placeholder(s) but 1 value(s) were given: SELECT ?, ?")
         assert.has_error(function() mysql.format("SELECT '?'", 1) end,
            "SQL has 0 placeholder(s) but 1 value(s) were given: SELECT '?'")
         assert.has_error(function() mysql.format("SELECT ?", {}) end,
            "cannot bind a table value (strings, numbers, booleans, nil or mysql.null)")
         assert.has_error(function() mysql.format("SELECT ?", 0 / 0) end)
         assert.has_error(function() mysql.format() end)
      end)

      it("is what sqltext.format shows, raising at the line of its caller's caller", function()
         local sqltext = require "myseal.sqltext"
         assert.equal("SELECT 'a''b', NULL", sqltext.format("SELECT ?, ?", { n = 2, "a'b" }))
         local function shown(sql, ...) return sqltext.format(sql, table.pack(...)) end
         local line = debug.getinfo(1, "l").currentline + 1
         local ok, err = pcall(function() return shown("SELECT ?, ?", 1) end)
         assert.is_false(ok)
         assert.equal(("tests/spec/mysql_spec.lua:%d: SQL has 2 placeholder(s) but 1 value(s) were given: "
            .. "SELECT ?, ?"):format(line), err:gsub("^.-tests/spec/", "tests/spec/"))
      end)

      it("masks a secret bound to a placeholder, quotes and backslashes included", function()
         local secrets = require("myseal.engine.secrets").new()
         secrets:add("pa'ss\\W0rd")
         secrets:add("\255bin")
         assert.equal("ALTER USER 'a'@'%' IDENTIFIED BY '***'",
            secrets:redact(mysql.format("ALTER USER ?@? IDENTIFIED BY ?", "a", "%", "pa'ss\\W0rd")))
         assert.equal("SELECT ***", secrets:redact(mysql.format("SELECT ?", "\255bin")))
      end)
   end)

   describe("binding under sql_mode=NO_BACKSLASH_ESCAPES", function()
      -- an account name and a password with a backslash and a quote, as values
      local NAME, PASSWORD = "bs\\sl'q", "p\\w'd"
      local nbe
      setup(function()
         nbe = assert(sandbox.start{ name = "spec-mysql-nbe", options = {
            sql_mode = "NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION" } })
      end)
      teardown(function()
         nbe:stop()
      end)

      -- The account NAME@% is created, altered and logged in to through bound values.
      local function accounts(server)
         local root <close> = assert(server:connect())
         assert.equal(NAME, root:query("SELECT ?", NAME)[1][1])
         assert(root:exec("CREATE USER ?@? IDENTIFIED BY ?", NAME, "%", PASSWORD))
         assert(root:exec("ALTER USER ?@? REQUIRE SSL", NAME, "%"))
         local rows = assert(root:query("SELECT User, ssl_type FROM mysql.user WHERE User LIKE 'bs%'"))
         assert.same({ { NAME, "ANY", User = NAME, ssl_type = "ANY" } }, rows)
         assert.equal(1, #root:query("SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?", NAME, "%"))
         local opts = server:tcp_options()
         opts.user, opts.password = NAME, PASSWORD
         opts.tls = { mode = "disabled" }
         assert.equal(1045, select(3, server:connect(opts)))   -- REQUIRE SSL: refused without TLS
         assert(root:exec("ALTER USER ?@? REQUIRE NONE", NAME, "%"))
         local app <close> = assert(server:connect(opts))
         assert.equal(NAME .. "@%", app:query("SELECT CURRENT_USER()")[1][1])
         assert(root:exec("DROP USER ?@?", NAME, "%"))
      end

      it("follows the server's mode: the account named is the account changed", function()
         local c <close> = assert(nbe:connect())
         assert.matches("NO_BACKSLASH_ESCAPES", c:query("SELECT @@SESSION.sql_mode")[1][1])
         assert.equal("'it''s \\'", c:quote("it's \\"))
         accounts(nbe)
      end)

      it("and the default mode, and a mode changed in the session", function()
         local c <close> = assert(s:connect())
         assert.equal("'it\\'s \\\\'", c:quote("it's \\"))
         accounts(s)
         assert(c:exec("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')"))
         assert.equal("'it''s \\'", c:quote("it's \\"))
         assert.equal(NAME, c:query("SELECT ?", NAME)[1][1])
         assert(c:exec("SET SESSION sql_mode = DEFAULT"))
         assert.equal(NAME, c:query("SELECT ?", NAME)[1][1])
      end)

      it("the display text of mysql.format means the same values to such a server", function()
         local c <close> = assert(nbe:connect())
         local values = { NAME, "line\nbreak", "tab\t\\0", "", "héllo ✓", "\0\255", 42, 0.5, true }
         local sql = "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
         local shown = assert(c:query(mysql.format(sql, table.unpack(values))))[1]
         local bound = assert(c:query(sql, table.unpack(values)))[1]
         assert.same(bound, shown)
         assert.same({ NAME, "line\nbreak", "tab\t\\0", "", "héllo ✓", "\0\255", 42, "0.5", 1 },
            { table.unpack(shown, 1, 9) })
      end)
   end)

   describe("values", function()
      local c
      setup(function()
         c = assert(s:connect())
         assert(c:exec("CREATE DATABASE `spec ü`"))
         assert(c:exec("USE `spec ü`"))
      end)
      teardown(function()
         c:exec("DROP DATABASE `spec ü`")
         c:close()
      end)

      it("round-trips NULLs, big unsigned integers, decimals, binary and UTF-8 through placeholders", function()
         assert(c:exec("CREATE TABLE " .. mysql.ident("tä`b") .. " (id INT PRIMARY KEY AUTO_INCREMENT, "
            .. "`naïve` VARCHAR(40), bin VARBINARY(16), u BIGINT UNSIGNED, s BIGINT, n INT NULL, "
            .. "d DECIMAL(12,3), f DOUBLE, y YEAR)"))
         local bin = "a\0b\255\254'\\"
         local n, id = assert(c:exec("INSERT INTO `tä``b` (`naïve`, bin, u, s, n, d, f, y) VALUES "
            .. "(?, ?, ?, ?, ?, ?, ?, ?)", "héllo ✓ '; DROP TABLE x; --", bin, "18446744073709551615",
            math.mininteger, mysql.null, "12345.678", 0.5, 2024))
         assert.equal(1, n)
         assert.equal(1, id)
         local rows, meta = assert(c:query("SELECT * FROM `tä``b` WHERE `naïve` = ?", "héllo ✓ '; DROP TABLE x; --"))
         assert.equal(1, #rows)
         local r = rows[1]
         assert.equal("héllo ✓ '; DROP TABLE x; --", r["naïve"])
         assert.equal(bin, r.bin)
         assert.equal("18446744073709551615", r.u)
         assert.equal(math.mininteger, r.s)
         assert.equal(mysql.null, r.n)
         assert.equal(mysql.null, r[6])
         assert.equal("12345.678", r.d)
         assert.equal("0.5", r.f)
         assert.equal(2024, r.y)
         assert.equal(9, #r)
         assert.same({ "id", "naïve", "bin", "u", "s", "n", "d", "f", "y" }, meta.columns)
         assert.same({ "int", "string", "string", "bigint", "bigint", "int", "decimal", "double", "year" },
            meta.types)
         assert.equal("mysql.null", tostring(mysql.null))
         -- an unsigned value that fits is an integer
         assert.equal(math.maxinteger, c:query("SELECT CAST(? AS UNSIGNED) AS v", math.maxinteger)[1].v)
         assert.equal("9223372036854775808", c:query("SELECT CAST(9223372036854775808 AS UNSIGNED) AS v")[1].v)
      end)

      it("quotes identifiers and values", function()
         assert.equal("`a``b`", mysql.ident("a`b"))
         assert.equal("`select`", mysql.ident("select"))
         assert.equal("'it\\'s'", c:quote("it's"))
         assert.equal("NULL", c:quote(mysql.null))
         assert.equal("X'00FF'", c:quote("\0\255"))
         assert.equal("TRUE", c:quote(true))
         assert.equal("42", c:quote(42))
         -- a ? inside quotes, identifiers or comments is not a placeholder
         local rows = assert(c:query("SELECT '?' AS a, ? AS `b?` -- ?\n", "x"))
         assert.same({ "?", "x" }, { rows[1].a, rows[1]["b?"] })
      end)

      it("reports the server and its flavour", function()
         local info = c:server()
         assert.equal("mariadb", info.flavor)
         assert.equal(string.format("%d.%d.%d", info.major, info.minor, info.patch), info.version)
         assert.equal(s.version, info.version)
         assert.is_string(info.comment)
         assert.is_true(c:ping())
      end)

      it("reads connection options from an option file", function()
         local cnf = h.write(dir .. "/client.cnf", string.format(
            "[client]\nhost=127.0.0.1\nport=%d\n[myseal]\nuser=%s\npassword=%s\n", s.port, s.tcp_user, s.tcp_password), 384)
         local d <close> = assert(mysql.connect{ defaults_file = cnf, defaults_group = "myseal" })
         assert.equal("tcp_user@%", d:query("SELECT CURRENT_USER()")[1][1])
      end)

      it("gives conn:rows rows the shape conn:query gives them", function()
         local sql = "SELECT 1 AS a, NULL AS b, -9223372036854775808 AS c, "
            .. "CAST(18446744073709551615 AS UNSIGNED) AS d, 'x' AS a, 2.5 AS `1`, 007 AS e "
            .. "UNION ALL SELECT 2, 'y', 0, CAST(0 AS UNSIGNED), 'z', NULL, -1"
         local streamed = {}
         for row in c:rows(sql) do streamed[#streamed + 1] = row end
         local stored = assert(c:query(sql))
         assert.same(stored, streamed)
         local r = streamed[1]
         assert.same({ 1, mysql.null, math.mininteger, "18446744073709551615", "x", "2.5", 7 },
            { table.unpack(r, 1, 7) })
         assert.equal(7, #r)
         -- a name given twice is the last column of that name; a column named 1 is the key "1"
         assert.equal("x", r.a)
         assert.equal(mysql.null, r.b)
         assert.equal("2.5", r["1"])
         assert.equal(1, r[1])
         assert.same({ 2, "y", 0, 0, "z", mysql.null, -1 }, { table.unpack(streamed[2], 1, 7) })
      end)

      it("streams a million rows through conn:rows with flat memory", function()
         collectgarbage()
         local base, peak, n, sum = collectgarbage("count"), 0, 0, 0
         local rss0 = h.rss_kib()
         for row in c:rows("SELECT seq, CONCAT('row-', seq) AS label FROM seq_1_to_1000000") do
            n = n + 1
            sum = sum + row.seq
            if n % 100000 == 0 then peak = math.max(peak, collectgarbage("count") - base) end
         end
         assert.equal(1000000, n)
         assert.equal(500000500000, sum)
         assert.is_true(peak < 16 * 1024, "Lua heap grew by " .. peak .. " KiB")
         -- (under AddressSanitizer the process keeps freed memory in quarantine: RSS says nothing)
         if not (os.getenv("ASAN_OPTIONS") or ""):find("detect_leaks") then
            assert.is_true(h.rss_kib() - rss0 < 64 * 1024)
         end
         -- the connection is usable again, and busy while a loop is open
         local _, cursor = c:rows("SELECT 1 UNION SELECT 2")
         assert.has_error(function() c:query("SELECT 1") end, "the connection is busy: a conn:rows() "
            .. "result is still open (finish the loop or close the iterator)")
         cursor:close()
         assert.equal(1, c:query("SELECT 1")[1][1])
         for _ in c:rows("SELECT seq FROM seq_1_to_10") do break end  -- break closes it
         assert.equal(2, c:query("SELECT 2")[1][1])
         assert.has_error(function() for _ in c:rows("SELEC") do end end)
      end)
   end)
end)
