-- The cnf module: option files read as the server reads them, edited byte for
-- byte, checked against my_print_defaults (the server's own reader).
local cnf = require "cnf"
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local h = require "support.helpers"

local FIXTURES = "tests/fixtures/cnf/"

-- my_print_defaults' view of group `group` in a file: a list of "--name=value"
local function server_view(path, group)
   local r = assert(sys.run{ "my_print_defaults", "--defaults-file=" .. path, group or "mysqld" })
   assert(r.ok, r.stderr)
   local out = {}
   for line in r.stdout:gmatch("[^\n]+") do out[#out + 1] = line end
   return out
end

-- every file under dir, recursively
local function tree(dir, out)
   out = out or {}
   for _, name in ipairs(assert(sys.dir(dir))) do
      local p = dir .. "/" .. name
      if sys.stat(p).type == "directory" then tree(p, out) else out[#out + 1] = p end
   end
   return out
end

describe("cnf", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("cnf-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   describe("reading", function()
      it("keeps every byte of real option files", function()
         local files = tree("/etc/mysql")
         for _, name in ipairs(assert(sys.dir(FIXTURES))) do files[#files + 1] = FIXTURES .. name end
         assert.is_true(#files >= 10)
         local parsed = 0
         for _, path in ipairs(files) do
            if path:match("%.cnf$") or path:match("%.ini$") or path:match("my%.cnf") then
               local text = assert(sys.read_file(path))
               local doc = assert(cnf.parse(text, path))
               assert.equal(text, doc:text(), path)
               assert.equal("", doc:diff())
               parsed = parsed + 1
            end
         end
         assert.is_true(parsed >= 10)
      end)

      it("reads values as my_print_defaults does", function()
         for _, name in ipairs{ "mysql57.cnf", "mysql84.cnf", "long-lines.cnf" } do
            local path = FIXTURES .. name
            local doc = assert(cnf.parse(assert(sys.read_file(path)), path))
            local ours = {}
            for _, e in ipairs(doc:entries("mysqld")) do
               ours[#ours + 1] = "--" .. e.name:gsub("^loose[-_]", "loose-") .. (e.value == true and "" or "=" .. e.value)
            end
            assert.same(server_view(path), ours, name)
         end
      end)

      it("follows the option-file rules", function()
         local doc = assert(cnf.parse(table.concat({
            "[mysqld]",
            "skip-name-resolve",
            "ssl-ca = /etc/a.pem",
            "loose-ssl_cert=/etc/b.pem   # comment",
            "skip-ssl",
            "[server]",
            "ssl_ca=\"/etc/later.pem\"",
            "[client]",
            "ssl_ca=/etc/client.pem",
            "" }, "\n"), "my.cnf"))
         local groups = { "mysqld", "server", "mariadb" }
         local v, origin = doc:effective(groups, "ssl_ca")
         assert.equal("/etc/later.pem", v)
         assert.same({ file = "my.cnf", line = 7 }, origin)
         assert.equal("/etc/b.pem", (doc:effective(groups, "ssl-cert")))
         assert.is_true((doc:effective(groups, "skip_name_resolve")))
         assert.is_false((doc:effective(groups, "ssl")))
         assert.is_nil(doc:effective(groups, "ssl_key"))
         assert.equal("/etc/a.pem", (doc:get("mysqld", "ssl_ca")))
         assert.same({ "mysqld", "server", "client" }, doc:sections())
         assert.same({ name = "skip-name-resolve", value = true, group = "mysqld", file = "my.cnf", line = 2 },
            doc:entries("mysqld")[1])
      end)

      it("follows !include and !includedir in the server's order", function()
         local conf = dir .. "/conf.d"
         h.write(dir .. "/my.cnf", "[mysqld]\nport=1\n!includedir " .. conf .. "/\n[mysqld]\nmax_connections=5\n"
            .. "!include " .. dir .. "/last.cnf\n")
         h.write(conf .. "/20-b.cnf", "[mysqld]\nport=3\nmax_connections=7\n")
         h.write(conf .. "/10-a.cnf", "[mysqld]\nport=2\n")
         h.write(conf .. "/30-ignored.txt", "[mysqld]\nport=99\n")
         h.write(dir .. "/last.cnf", "[server]\nbind_address=127.0.0.1\n")
         local doc = assert(cnf.load(dir .. "/my.cnf", { includes = true }))
         assert.same({ dir .. "/my.cnf", conf .. "/10-a.cnf", conf .. "/20-b.cnf", dir .. "/last.cnf" }, doc:files())
         local g = { "mysqld", "server" }
         assert.same({ "3", { file = conf .. "/20-b.cnf", line = 2 } }, { doc:effective(g, "port") })
         assert.equal("5", (doc:effective(g, "max_connections")))
         assert.equal("127.0.0.1", (doc:effective(g, "bind-address")))
         local mine = {}
         for _, e in ipairs(doc:entries("mysqld")) do mine[#mine + 1] = "--" .. e.name .. "=" .. e.value end
         assert.same(server_view(dir .. "/my.cnf"), mine)
         -- without includes: the file alone
         assert.equal("1", (assert(cnf.load(dir .. "/my.cnf")):effective(g, "port")))
      end)

      it("reads what the server reads as it reads it, and warns where that is not what the text suggests", function()
         local conf = dir .. "/conf.d"
         local path = h.write(dir .. "/my.cnf", table.concat({
            "[mysqldump]",
            "fields-optionally-enclosed-by=\"",                     -- mysql-test's bug15328.cnf
            "[mysqld]",
            "plugin_dir = \"C:\\Program Files\\MariaDB\\lib\\plugin\\\" ",  -- a my.ini line
            "tmpdir = /tmp\v",
            "character_set_server = utf8mb4\f",
            "init_connect = SET NAMES utf8 -- voil\195\160",
            "! include " .. dir .. "/a.cnf",
            "!include " .. dir .. "/./a.cnf",                      -- the same file again: read again
            "!includedir " .. conf,
            "!bogus",
            "[ mysqld ]",
            "port = 1",
            "[mysqld] # the last group",
            "max_allowed_packet = " .. ("9"):rep(5000),
            "" }, "\n"))
         h.write(dir .. "/a.cnf", "[mysqld]\nport=2\n")
         h.write(conf .. "/.hidden.cnf", "[mysqld]\nport=3\n")
         h.write(conf .. "/writable.cnf", "[mysqld]\nport=4\n", tonumber("666", 8))
         assert(sys.chmod(conf .. "/writable.cnf", tonumber("666", 8)))
         local doc = assert(cnf.load(path, { includes = true }))
         local function mine(group)
            local out = {}
            for _, e in ipairs(doc:entries(group)) do
               out[#out + 1] = "--" .. e.name .. (e.value == true and "" or "=" .. e.value)
            end
            return out
         end
         assert.same(server_view(path, "mysqldump"), mine("mysqldump"))
         assert.same({ "--fields-optionally-enclosed-by=\"" }, mine("mysqldump"))
         -- the long line is the one difference: the server reads its rest as a bogus option
         local theirs, ours = server_view(path), mine("mysqld")
         local first = 4094 - #"max_allowed_packet = "
         assert.same({ "--max_allowed_packet=" .. ("9"):rep(first), "--" .. ("9"):rep(5000 - first) },
            { theirs[#theirs - 1], theirs[#theirs] })
         table.remove(theirs)
         theirs[#theirs] = "--max_allowed_packet=" .. ("9"):rep(5000)
         assert.same(theirs, ours)
         assert.same({ "--plugin_dir=C:\\Program Files\\MariaDB\\lib\\plugin\\", "--tmpdir=/tmp",
            "--character_set_server=utf8mb4", "--init_connect=SET NAMES utf8 -- voil\195", "--port=2", "--port=2",
            "--port=3", "--max_allowed_packet=" .. ("9"):rep(5000) }, ours)
         assert.equal("3", (doc:effective({ "mysqld" }, "port")))
         assert.same({ "--port=1" }, mine(" mysqld"))
         assert.same({
            path .. ":2: the value of 'fields-optionally-enclosed-by' starts with a quote that does not close: the "
               .. "server keeps the quote in the value",
            path .. ":7: the value of 'init_connect' starts or ends with a 0xA0 byte (as in a UTF-8 "
               .. "'\195\160'), which the server trims as a blank: quote the value",
            path .. ":11: not !include or !includedir: the server skips this directive",
            path .. ":12: the server names this group ' mysqld' (a blank after '[' is part of the name): its options "
               .. "are not [mysqld]'s",
            path .. ":15: the line is longer than the server's line buffer (4094 bytes): the server reads the rest ('"
               .. ("9"):rep(20) .. "...') as another line",
            conf .. "/writable.cnf: it is world-writable, and the server ignores such a file (chmod o-w)",
         }, doc:warnings())
      end)

      it("resolves relative includes against the server's working directory when told it", function()
         h.write(dir .. "/etc/my.cnf", "[mysqld]\nport=1\n!include sub/a.cnf\n")
         h.write(dir .. "/etc/sub/a.cnf", "[mysqld]\nport=2\n")
         h.write(dir .. "/run/sub/a.cnf", "[mysqld]\nport=3\n")
         local beside = assert(cnf.load(dir .. "/etc/my.cnf", { includes = true }))
         assert.equal("2", (beside:effective({ "mysqld" }, "port")))
         assert.same({ dir .. "/etc/my.cnf:3: !include sub/a.cnf is relative: the server resolves it against its "
            .. "working directory, not this file's (myseal reads " .. dir .. "/etc/sub/a.cnf)" }, beside:warnings())
         local served = assert(cnf.load(dir .. "/etc/my.cnf", { includes = true, cwd = dir .. "/run" }))
         assert.equal("3", (served:effective({ "mysqld" }, "port")))
         assert.same({}, served:warnings())
         local r = assert(sys.run{ "my_print_defaults", "--defaults-file=" .. dir .. "/etc/my.cnf", "mysqld",
            cwd = dir .. "/run" })
         assert.equal("--port=1\n--port=3\n", r.stdout)
      end)

      it("reads a Windows my.ini (CRLF, BOM) and warns about the BOM", function()
         local path = FIXTURES .. "windows-my.ini"
         local doc = assert(cnf.load(path))
         assert.equal("C:/Program Files/MySQL/MySQL Server 8.0/", (doc:get("mysqld", "basedir")))
         assert.equal("C:\\ProgramData\\MySQL\\keyring\\keyring", (doc:get("mysqld", "keyring_file_data")))
         assert.equal("151", (doc:get("mysqld", "max_connections")))
         assert.equal(path .. ":1: the file starts with a UTF-8 byte order mark, which MariaDB's option reader "
            .. "refuses ('Found option without preceding group'); save it without one", doc:warnings()[1])
         doc:set("mysqld", "max_connections", "300")
         doc:set("mysqld", "require_secure_transport", "ON")
         local text = doc:text()
         assert.equal("\239\187\191", text:sub(1, 3))
         assert.is_nil(text:find("[^\r]\n"))   -- every line still ends with CRLF
         assert.matches("max_connections=300\r\nrequire_secure_transport=ON\r\n$", text)
      end)
   end)

   describe("bad input", function()
      local function fails_at(text, msg, line)
         local m, l = h.fails(cnf.parse(text, "bad.cnf"))
         assert.equal(msg, m)
         assert.equal(line, l)
      end
      it("names the file and the line", function()
         fails_at("[mysqld]\n!include  \n", "bad.cnf:2: !include without a path", 2)
         fails_at("[mysqld]\nbind address = 1\n", "bad.cnf:2: 'bind' is followed by 'address = 1': a space in an "
            .. "option name, or a missing '='", 2)
         fails_at("# x\nport=3306\n[mysqld]\n", "bad.cnf:2: option 'port' comes before any [group]", 2)
         fails_at("[mysqld]\nport=1\n\0\0\0binary", "bad.cnf:3: a binary file, not an option file (a NUL byte)", 3)
         fails_at("[mysqld\nport=1\n", "bad.cnf:1: unterminated group name (no ']')", 1)
      end)

      it("skips what the server skips in the include walk, with a warning; a missing !includedir is an error",
         function()
         h.write(dir .. "/a.cnf", "[mysqld]\nport=1\n!include " .. dir .. "/b.cnf\n")
         h.write(dir .. "/b.cnf", "[mysqld]\nport=2\n!include " .. dir .. "/a.cnf\n")
         local doc = assert(cnf.load(dir .. "/a.cnf", { includes = true }))
         assert.same({ dir .. "/a.cnf: an include loop (it includes itself through " .. dir .. "/b.cnf): the server "
            .. "reads it again and again, 10 levels deep",
            dir .. "/a.cnf: its includes are 10 levels deep: the server skips the directives there, and so does myseal",
         }, doc:warnings())
         local mine = {}
         for _, e in ipairs(doc:entries("mysqld")) do mine[#mine + 1] = "--" .. e.name .. "=" .. e.value end
         assert.same(server_view(dir .. "/a.cnf"), mine)   -- 11 times port=1 and 2, in turn
         assert.equal(11, #mine)
         h.write(dir .. "/c.cnf", "[mysqld]\nport=3\n!include " .. dir .. "/missing.cnf\n")
         doc = assert(cnf.load(dir .. "/c.cnf", { includes = true }))
         assert.same({ dir .. "/c.cnf:3: !include " .. dir .. "/missing.cnf: No such file or directory: the server "
            .. "skips it" }, doc:warnings())
         assert.same({ "--port=3" }, server_view(dir .. "/c.cnf"))
         h.write(dir .. "/d.cnf", "[mysqld]\n!includedir " .. dir .. "/nodir\n")
         local msg, line = h.fails(cnf.load(dir .. "/d.cnf", { includes = true }))
         assert.equal(dir .. "/d.cnf:2: !includedir " .. dir .. "/nodir: No such file or directory", msg)
         assert.equal(2, line)
         assert.is_false(sys.run{ "my_print_defaults", "--defaults-file=" .. dir .. "/d.cnf", "mysqld" }.ok)
         assert.equal(dir .. "/none.cnf: No such file or directory", (h.fails(cnf.load(dir .. "/none.cnf"))))
      end)

      it("raises on misuse", function()
         local doc = assert(cnf.parse("[mysqld]\n"))
         assert.has_error(function() doc:set("mysqld", "bad name", "1") end,
            "cannot write [mysqld] bad name: a bad group or option name, or a NUL byte in the value")
         assert.has_error(function() doc:set("mysqld", "x", false) end)
         assert.has_error(function() doc:text("/not/in/doc") end, "'/not/in/doc' is not one of this document's files")
      end)
   end)

   describe("editing", function()
      it("changes only what it means to, and my_print_defaults agrees", function()
         local path = h.write(dir .. "/my.cnf", assert(sys.read_file(FIXTURES .. "mysql57.cnf")), 416)
         local before = server_view(path)
         local doc = assert(cnf.load(path))
         doc:set("mysqld", "ssl-cert", "/etc/mysql/new cert.pem")   -- in place
         doc:set("mysqld", "require_secure_transport", "ON")        -- new, at the end of [mysqld]
         doc:set("mysqld", "skip_name_resolve", true)               -- a bare flag
         assert.equal(1, doc:unset("mysqld", "query-cache-size"))
         doc:set("mysqld", "sql_mode", "TRADITIONAL")              -- keeps its trailing comment
         assert.matches('sql_mode = TRADITIONAL # a comment\n', doc:text())
         local expected = {}
         for _, opt in ipairs(before) do
            if opt:match("^%-%-ssl%-cert=") then opt = "--ssl-cert=/etc/mysql/new cert.pem"
            elseif opt:match("^%-%-sql_mode=") then opt = "--sql_mode=TRADITIONAL" end
            if not opt:match("^%-%-query_cache_size=") then expected[#expected + 1] = opt end
         end
         expected[#expected + 1] = "--require_secure_transport=ON"
         expected[#expected + 1] = "--skip_name_resolve"
         local diff = doc:diff()
         assert.matches("^%-%-%- " .. dir:gsub("%-", "%%-") .. "/my.cnf\n", diff)
         assert.matches("\n%-ssl%-cert=/etc/mysql/server%-cert.pem\n%+ssl%-cert=/etc/mysql/new cert.pem\n", diff)
         local st = sys.stat(path)
         local ok, backups = doc:save{ backup = true }
         assert.is_true(ok)
         assert.same(server_view(path), expected)
         assert.equal(1, #backups)
         assert.matches("^" .. dir:gsub("%-", "%%-") .. "/my%.cnf%.%d+%-%d+%.bak$", backups[1])
         assert.equal(assert(sys.read_file(FIXTURES .. "mysql57.cnf")), sys.read_file(backups[1]))
         assert.equal(st.mode, sys.stat(path).mode)
         assert.equal("", doc:diff())   -- saved: the new text is the original now
         -- the untouched lines are byte for byte the same
         local old, new = {}, {}
         for l in assert(sys.read_file(backups[1])):gmatch("[^\n]*\n") do old[l] = true end
         for l in assert(sys.read_file(path)):gmatch("[^\n]*\n") do new[l] = true end
         local gone = 0
         for l in pairs(old) do if not new[l] then gone = gone + 1 end end
         assert.equal(3, gone)
      end)

      it("adds a line for options that accumulate", function()
         local path = h.write(dir .. "/acc.cnf", "[mysqld]\nplugin_load_add=auth_pam\n\n[client]\n")
         local doc = assert(cnf.load(path))
         assert.equal(path, doc:add("mysqld", "plugin_load_add", "file_key_management"))
         assert(doc:save())
         assert.same({ "--plugin_load_add=auth_pam", "--plugin_load_add=file_key_management" }, server_view(path))
      end)

      it("quotes and escapes values so they read back the same", function()
         local path = dir .. "/q.cnf"
         local doc = assert(cnf.parse("", path))
         local values = { "p#ss", " lead", "it's \"quoted\"", "C:\\new\\table", "tab\there", "a;b" }
         for i, v in ipairs(values) do doc:set("client", "v" .. i, v) end
         assert(doc:save())
         local view = server_view(path, "client")
         for i, v in ipairs(values) do assert.equal("--v" .. i .. "=" .. v, view[i]) end
         local again = assert(cnf.load(path))
         for i, v in ipairs(values) do assert.equal(v, (again:get("client", "v" .. i))) end
      end)

      it("says where a server option belongs", function()
         local etc = dir .. "/etc"
         h.write(etc .. "/my.cnf", "[client-server]\n!includedir " .. etc .. "/mariadb.conf.d/\n")
         h.write(etc .. "/mariadb.conf.d/50-server.cnf", "[mysqld]\nbind-address = 127.0.0.1\n")
         local doc = assert(cnf.load(etc .. "/my.cnf", { includes = true }))
         assert.same({ etc .. "/mariadb.conf.d/50-server.cnf", "mysqld", true }, { doc:target("bind_address") })
         assert.same({ etc .. "/mariadb.conf.d/99-myseal.cnf", "mariadb", false },
            { doc:target("plugin_load_add", { "mariadb", "mysqld", "server" }) })
         local plain = assert(cnf.parse("[mysqld]\n", etc .. "/plain.cnf"))
         assert.same({ etc .. "/plain.cnf", "mysqld", false }, { plain:target("ssl_ca") })
         -- a new file is written by a document parsed from nothing
         local new = assert(cnf.parse("", etc .. "/mariadb.conf.d/99-myseal.cnf"))
         new:set("mariadb", "plugin_load_add", "file_key_management")
         assert.matches("^%-%-%- /dev/null\n", new:diff())
         assert(new:save())
         assert.equal("[mariadb]\nplugin_load_add=file_key_management\n", sys.read_file(etc .. "/mariadb.conf.d/99-myseal.cnf"))
      end)

      it("leaves the file as it was when saving fails", function()
         local path = h.write(dir .. "/ro/my.cnf", "[mysqld]\nport=1\n")
         local doc = assert(cnf.load(path))
         doc:set("mysqld", "port", "2")
         assert(sys.chmod(dir .. "/ro", 365))
         local msg, code
         if sys.user().uid == 0 then
            -- root writes anywhere: make the directory vanish instead
            assert(sys.chmod(dir .. "/ro", 493))
            sys.rmtree(dir .. "/ro")
            msg, code = h.fails(doc:save{ backup = false })
            assert.equal(2, code)
         else
            msg, code = h.fails(doc:save())
            assert.equal(13, code)
            assert.equal("[mysqld]\nport=1\n", sys.read_file(path))
         end
         assert.matches("^cannot save " .. dir:gsub("%-", "%%-") .. "/ro/my.cnf: ", msg)
      end)
   end)

   it("an edited sandbox option file, restarted, shows the new value", function()
      local s <close> = assert(sandbox.start{ name = "spec-cnf" })
      local doc = assert(cnf.load(s.cnf))
      doc:set("mysqld", "max-connections", "123")
      doc:set("mysqld", "lock_wait_timeout", "77")
      assert(doc:save())
      assert(s:restart())
      local c <close> = assert(s:connect())
      local rows = assert(c:query("SHOW VARIABLES WHERE Variable_name IN ('max_connections', 'lock_wait_timeout')"))
      local vars = {}
      for _, r in ipairs(rows) do vars[r[1]] = r[2] end
      assert.same({ max_connections = "123", lock_wait_timeout = "77" }, vars)
   end)

   it("diffs any two texts", function()
      assert.equal("--- a.txt\n+++ a.txt\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n", cnf.diff("x\ny\n", "x\nz\n", "a.txt"))
      assert.equal("", cnf.diff("same\n", "same\n"))
   end)
end)
