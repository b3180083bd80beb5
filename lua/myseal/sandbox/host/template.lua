--- The lab host template: /etc/mysql and /etc/init.d/mariadb from the installed packages'
-- .deb files, a datadir made as Debian's postinst makes it, and the application schema;
-- prepared once per package versions in the cache directory.
-- @module myseal.sandbox.host.template
local sys = require "sys"
local state = require "myseal.state"
local common = require "myseal.sandbox.common"
local json = require "myseal.json"
local ns = require "myseal.sandbox.host.ns"

local M = {}

local run_ok = common.run_ok

-- The MariaDB packages whose conffiles make /etc/mysql, in the order dpkg unpacks them.
local DB_PACKAGES = { "mysql-common", "mariadb-common", "mariadb-client", "mariadb-server" }

local function package_version(name)
   local r = sys.run{ "dpkg-query", "-W", "-f=${Version} ${db:Status-Abbrev}", name }
   local v, st = (r and r.ok and r.stdout or ""):match("^(%S+) (%S+)")
   return st == "ii" and v or nil
end

-- The .deb of package `name` at `version` in one of `dirs`, or nil.
local function find_deb(name, version, dirs)
   local prefix = name .. "_" .. version:gsub(":", "%%3a") .. "_"
   for _, dir in ipairs(dirs) do
      for _, f in ipairs(sys.dir(dir) or {}) do
         if f:sub(1, #prefix) == prefix and f:match("%.deb$") then return dir .. "/" .. f end
      end
   end
end

-- The .deb of an installed package version: apt's cache, else `apt-get download` into ours.
local function deb_file(name, version, cache)
   local deb = find_deb(name, version, { "/var/cache/apt/archives", cache })
   if deb then return deb end
   local r, err = sys.run{ "apt-get", "download", name .. "=" .. version, cwd = cache, timeout = 300 }
   deb = r and r.ok and find_deb(name, version, { cache })
   if not deb then
      return nil, string.format("cannot get the package file of %s %s (apt-get download: %s)", name, version,
         r and (r.ok and "no .deb file" or r.stderr:match("[^\n]+") or "failed") or err)
   end
   return deb
end

-- The packages' versions, or nil, message naming the missing one.
local function versions(names)
   local out = {}
   for _, n in ipairs(names) do
      local v = package_version(n)
      if not v then return nil, string.format("the host driver needs the package %s installed", n) end
      out[#out + 1] = { name = n, version = v }
   end
   return out
end

local function template_key(list)
   local parts = {}
   for _, p in ipairs(list) do parts[#parts + 1] = p.name .. "_" .. p.version end
   local key = table.concat(parts, "+")
   local h = 2166136261
   for i = 1, #key do h = ((h ~ key:byte(i)) * 16777619) & 0xffffffff end
   return ("%s-%08x"):format(list[#list].version:gsub("[^%w%.%-]", "_"), h)
end

-- Extracts the /etc trees of packages' .deb files into dest/etc.
local function extract_etc(list, dest, work, cache)
   for _, p in ipairs(list) do
      local deb, err = deb_file(p.name, p.version, cache)
      if not deb then return nil, err end
      local x = work .. "/" .. p.name
      local ok, xerr = run_ok({ "dpkg-deb", "-x", deb, x }, "dpkg-deb -x " .. deb)
      if not ok then return nil, xerr end
      if sys.stat(x .. "/etc") then
         ok, xerr = run_ok({ "cp", "-a", x .. "/etc/.", dest .. "/etc/" }, "copying the conffiles of " .. p.name)
         if not ok then return nil, xerr end
      end
   end
   return true
end

-- Copies parts of the packages' /etc trees into host `s`: `parts` are { from, to [, what] }, `from`
-- below the packages' /etc, `to` below the host's root. true, or nil, message.
local function install_etc(s, list, parts)
   local work = s.dir .. "/x"
   assert(sys.mkdir(work .. "/deb", tonumber("700", 8)))
   local ok, err = extract_etc(list, work, work .. "/deb", assert(state.cache("hosts")))
   for _, part in ipairs(ok and parts or {}) do
      ok, err = run_ok({ "cp", "-a", work .. part[1], ns.fs(s, part[2]) }, "copying " .. (part[3] or part[2]))
      if not ok then break end
   end
   sys.rmtree(work)
   return ok, err
end

-- The application's schema and account, made once in the template (rows with names: what
-- at-rest must make unreadable on disk).
local APP_SQL = {
   "CREATE DATABASE biobank",
   "USE biobank",
   "CREATE TABLE biobank.patients (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, born DATE, "
      .. "KEY (name)) ENGINE=InnoDB",
   "CREATE TABLE biobank.specimens (id INT PRIMARY KEY, patient INT NOT NULL, kind VARCHAR(20), "
      .. "taken DATETIME, note TEXT, KEY (patient)) ENGINE=InnoDB",
   "INSERT INTO biobank.patients SELECT seq, CONCAT(ELT(1 + seq % 12, 'Anna', 'Bernd', 'Chiara', 'Dmitri', "
      .. "'Elif', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Karin', 'Luca'), ' ', "
      .. "ELT(1 + (seq DIV 12) % 10, 'Moreau', 'Novak', 'Okafor', 'Petersen', 'Quispe', 'Rossi', 'Schmidt', "
      .. "'Tanaka', 'Urban', 'Virtanen'), ' ', seq), '1950-01-01' + INTERVAL seq * 7 DAY FROM seq_1_to_2000",
   "INSERT INTO biobank.specimens SELECT seq, 1 + seq % 2000, ELT(1 + seq % 3, 'blood', 'tissue', 'dna'), "
      .. "'2024-01-01' + INTERVAL seq HOUR, CONCAT('collected at ward ', 1 + seq % 9) FROM seq_1_to_6000",
}

local function make_app_schema(s, password)
   local c, err = require("mysql").connect{ socket = s.socket, user = "root" }
   if not c then return nil, "the template's server: " .. err end
   for _, sql in ipairs(APP_SQL) do
      local ok, qerr = c:exec(sql)
      if not ok then c:close(); return nil, sql .. ": " .. qerr end
   end
   for _, host in ipairs{ "localhost", "%" } do
      assert(c:exec("CREATE USER 'biobank'@'" .. host .. "' IDENTIFIED BY ?", password))
      assert(c:exec("GRANT SELECT, INSERT, UPDATE, DELETE ON biobank.* TO 'biobank'@'" .. host .. "'"))
   end
   c:close()
   return true
end

-- Builds a template under dir: /etc/mysql and /etc/init.d/mariadb from the packages, a
-- datadir made as the postinst makes it, the application schema.
local function build_template(dir, list, cache)
   local work = dir .. "/x"
   assert(sys.mkdir(work, tonumber("700", 8)))
   local ok, err = ns.make_tree(dir, { name = "template" })
   if not ok then return nil, err end
   local etc = dir .. "/fs"
   ok, err = extract_etc(list, etc, work, cache)
   sys.rmtree(work)
   if not ok then return nil, err end
   -- what the postinst does besides unpacking: the my.cnf alternative, debian.cnf
   os.remove(etc .. "/etc/mysql/my.cnf")
   ok, err = run_ok({ "ln", "-s", "mariadb.cnf", etc .. "/etc/mysql/my.cnf" }, "linking my.cnf")
   if not ok then return nil, err end
   assert(sys.write_file(etc .. "/etc/mysql/debian.cnf", table.concat({
      "# THIS FILE IS OBSOLETE. STOP USING IT IF POSSIBLE.", "[client]", "host     = localhost",
      "user     = root", "[mysql_upgrade]", "host     = localhost", "user     = root", "" }, "\n"),
      { mode = tonumber("600", 8) }))
   local s = { name = "template", dir = dir, socket = dir .. "/fs/run/mysqld/mysqld.sock" }
   ok, err = ns.boot(s)
   if not ok then return nil, err end
   local series = list[#list].version:match("^%d+:(%d+%.%d+)") or list[#list].version:match("^(%d+%.%d+)")
   local steps = {
      { "touch", "/var/lib/mysql/debian-" .. series .. ".flag" },
      { "env", "TMPDIR=", "bash", "/usr/bin/mysql_install_db", "--rpm", "--cross-bootstrap", "--user=mysql",
        "--disable-log-bin", "--skip-test-db" },
   }
   for _, argv in ipairs(steps) do
      local r, rerr = ns.run(s, argv, { timeout = 300 })
      if not r or not r.ok then
         ns.kill(s)
         return nil, string.format("the template host: %s failed: %s", argv[1] == "env" and argv[4] or argv[1],
            r and common.tail_lines(r.stdout .. r.stderr, 5) or rerr)
      end
   end
   local password = state.random_hex(12)
   ok, err = ns.mariadb(s, "start")
   if ok then ok, err = make_app_schema(s, password) end
   if ok then ok, err = ns.mariadb(s, "stop") end
   ns.kill(s)
   if not ok then return nil, err end
   assert(sys.write_file(dir .. "/app_password", password, { mode = tonumber("600", 8) }))
   for _, p in ipairs{ "/fs/var/log", "/fs/run", "/fs/tmp", "/fs/var/tmp", "/fs/root", "/fs/etc/hosts",
                       "/fs/etc/hostname", "/fs/etc/default", "/init.log", "/hostdev" } do
      sys.rmtree(dir .. p)
   end
   assert(sys.write_file(dir .. "/versions.json", json.encode(list) .. "\n"))
   return true
end

-- The template for the installed packages (made once, under a lock, renamed into place).
local function template()
   local list, err = versions(DB_PACKAGES)
   if not list then return nil, err end
   local root
   root, err = state.cache("hosts")
   if not root then return nil, err end
   local final = root .. "/" .. template_key(list)
   local path, berr = common.cached(final, "versions.json", function(tmp) return build_template(tmp, list, root) end)
   if not path then return nil, "cannot prepare the lab host template: " .. berr end
   return path
end

M.versions, M.install_etc, M.get = versions, install_etc, template

return M
