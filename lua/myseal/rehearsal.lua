--- The restore rehearsal: a key backup is worth what a restore proves.
--
-- A physical copy of the live server is taken (`mariadb-backup --backup`), prepared with
-- nothing but the key files found in the key backup directory (`--prepare`), and started
-- in a sandbox that has no other key; `CHECKSUM TABLE` of sampled tables (one per key id in
-- use at least) must give the live server's values. A missing or wrong key fails with the
-- key id, the table that needs it and MariaDB's own words. For MySQL the rehearsal is a
-- plan only (Percona XtraBackup or MySQL Enterprise Backup, named).
--
--    local rehearsal = require "myseal.rehearsal"
--    local r, err = rehearsal.run{ conn = conn, client = { socket = "/run/mysqld/mysqld.sock",
--       user = "backup", password = secret }, backup_dir = "/root/key-backup" }
--
-- Credentials go to mariadb-backup in a 0600 option file (`--defaults-extra-file`) inside
-- the sandbox's 0700 directory, never in argv; the copy of the data and of the keys lives
-- there too and goes when the sandbox is stopped, whatever happens.
-- @module myseal.rehearsal
local sys = require "sys"
local cnf = require "cnf"
local mysql = require "mysql"
local keyring = require "myseal.keyring"
local value = require("myseal.sqltext").value
local dialect = require "myseal.dialect"

local M = {}

local TIMEOUT = 3600

local function basename(p) return p:match("([^/\\]+)$") end

-- The escapes of an option file value in double quotes.
local function quoted(v)
   if v:find("[\n\r]") then error("an option value cannot hold a line break", 3) end
   return '"' .. v:gsub("\\", "\\\\"):gsub('"', '\\"') .. '"'
end

--- The text of a client option file for `--defaults-extra-file` (a password included:
-- write it 0600).
-- @param client { socket, host, port, user, password }
-- @return text
function M.client_options(client)
   local lines = { "[client]" }
   for _, k in ipairs{ "user", "password", "host", "port", "socket" } do
      if client[k] ~= nil then lines[#lines + 1] = k .. "=" .. quoted(tostring(client[k])) end
   end
   return table.concat(lines, "\n") .. "\n"
end

--- The newest intact backup of `file` in `dir`: a file named `<name>.<16 hex digits>`
-- whose content has that SHA-256 prefix (myseal.keyring.backup_path).
-- @param dir the key backup directory
-- @param file the live key file's path (only its name is used: it is not read)
-- @return path, data | nil, message
function M.key_backup(dir, file)
   local name = basename(file)
   local best, best_data, best_time, damaged
   for _, entry in ipairs(sys.dir(dir) or {}) do
      local digest = entry:sub(1, #name + 1) == name .. "." and entry:sub(#name + 2)
      if digest and #digest == 16 and digest:match("^%x+$") then
         local path = dir .. "/" .. entry
         local data = sys.read_file(path)
         local st = sys.stat(path)
         if data and keyring.backup_path(dir, file, data) == path then
            if not best_time or st.mtime > best_time then best, best_data, best_time = path, data, st.mtime end
         elseif data then
            damaged = path
         end
      end
   end
   if best then return best, best_data end
   if damaged then return nil, ("%s does not match its digest (damaged)"):format(damaged) end
   if not sys.stat(dir) then return nil, ("the key backup directory %s does not exist"):format(dir) end
   return nil, ("%s has no copy of %s (%s.<first 16 hex digits of its SHA-256>)"):format(dir, name, name)
end

-- The live server: variables, and per encrypted table its key id and size.
local function live_state(conn)
   local server, err = conn:server()
   if not server then return nil, err end
   local vars, rows
   vars, err = require("myseal.diskscan").variables(conn, { "datadir", "file_key_management_filename",
      "file_key_management_filekey", "file_key_management_encryption_algorithm", "innodb_encrypt_log" })
   if not vars then return nil, err end
   local st = { flavor = server.flavor, version = server.version, vars = vars, tables = {}, key_ids = { 1 },
                dialect = dialect.for_server(server) }
   if not (st.dialect and st.dialect.rehearses) then return st end
   rows, err = conn:query(st.dialect.rehearsal_tables_sql)
   if not rows then return nil, "cannot read which tables are encrypted: " .. err end
   local seen = { [1] = true }
   for _, r in ipairs(rows) do
      local t = { schema = r[1], name = r[2], key_id = math.tointeger(tonumber(r[3])), size = tonumber(r[4]),
         file = r[5] }  -- "db/t" as the server names the file
      t.sql = mysql.ident(t.schema) .. "." .. mysql.ident(t.name)
      st.tables[#st.tables + 1] = t
      if t.key_id and not seen[t.key_id] then
         seen[t.key_id] = true
         st.key_ids[#st.key_ids + 1] = t.key_id
      end
   end
   table.sort(st.key_ids)
   return st
end

-- The tables to compare: the smallest of each key id (application schemas first), then
-- the smallest others, up to `sample`; or the ones asked for.
local function sample_tables(st, opts)
   local out, taken = {}, {}
   if opts.tables then
      local by_name = {}
      for _, t in ipairs(st.tables) do by_name[t.schema .. "." .. t.name] = t end
      for _, name in ipairs(opts.tables) do
         local t = by_name[name]
         if not t then return nil, ("%s is not an encrypted InnoDB table on the live server"):format(name) end
         out[#out + 1] = t
      end
      return out
   end
   local function pick(pred)
      for _, t in ipairs(st.tables) do
         if #out < (opts.sample or 8) and not taken[t] and pred(t) then
            taken[t] = true
            out[#out + 1] = t
         end
      end
   end
   local has_key = {}
   for _, app in ipairs{ true, false } do
      pick(function(t)
         if has_key[t.key_id] or (t.schema == "mysql") == app then return false end
         has_key[t.key_id] = true
         return true
      end)
   end
   pick(function(t) return t.schema ~= "mysql" end)
   table.sort(out, function(a, b)
      if a.key_id ~= b.key_id then return a.key_id < b.key_id end
      return a.sql < b.sql
   end)
   return out
end

local function checksums(conn, tables)
   local out = {}
   for _, t in ipairs(tables) do
      local rows, err, code = conn:query("CHECKSUM TABLE " .. t.sql)
      local v = rows and value(rows[1][2])
      if not v then
         -- MariaDB returns NULL and leaves the error as a warning
         local w = rows and conn:query("SHOW WARNINGS")
         local last = w and w[#w]
         err, code = last and last[3] or err or "no checksum", last and last[2] or code
      end
      out[t] = { value = v, error = not v and ("%s (%s)"):format(err, tostring(code)) or nil }
   end
   return out
end

-- Output lines that mention the file key (a literal filekey is a secret) are dropped.
local function error_lines(text)
   local out = {}
   for line in text:gmatch("[^\n]+") do
      local wanted = line:find("ERROR", 1, true) or line:find("missing", 1, true)
      if wanted and not line:lower():find("filekey", 1, true) then
         out[#out + 1] = line:gsub("^%d%d%d%d%-%d%d%-%d%d%s+[%d:]+%s+%d+%s+", "")
      end
   end
   return table.concat(out, "\n", math.max(1, #out - 4))
end

-- The first error line of a tool's output, without its timestamp and level.
local function first_error(text)
   for line in text:gmatch("[^\n]+") do
      local msg = line:match("%[ERROR%]%s*(.*)$")
      if msg and not msg:lower():find("filekey", 1, true) then return msg end
   end
   return "no error line"
end

-- What the key backup holds: { [id] = true }, or nil when it cannot be read (encrypted).
local function backup_ids(keys)
   if keys.filekey then return nil end
   return (keyring.parse_key_file(keys.data, keys.path))
end

-- The message for a table its key does not open: missing from the backup, or different.
local function key_failure(keys, t, evidence)
   if evidence:find("Please drop", 1, true) then
      evidence = evidence .. " (do not drop it: the data is fine, the key is not)"
   end
   local ids = backup_ids(keys)
   if ids and not ids[t.key_id] then
      return ("key id %d (used by %s) is missing from the key backup %s: %s"):format(t.key_id, t.sql,
         keys.path, evidence)
   end
   return ("key id %d in the key backup %s does not decrypt %s: %s"):format(t.key_id, keys.path, t.sql, evidence)
end

-- mariadb-backup --prepare failed: which key, from its output.
local function prepare_failure(st, keys, text)
   local file = text:match("Encryption key is not found for ([^\n]+)")
   if file then
      file = file:gsub("^%./", ""):gsub("%s+$", "")
      local stem = file:gsub("%.ibd$", ""):gsub("#.*$", "")
      for _, t in ipairs(st.tables) do
         if t.file == stem then
            return key_failure(keys, t, "mariadb-backup --prepare: Encryption key is not found for " .. file)
         end
      end
      return "mariadb-backup --prepare: Encryption key is not found for " .. file
   end
   local id = text:match("System key id (%d+) is missing") or text:match("Obtaining redo log encryption key version")
      and "1"
   if id then
      return ("key id %s is missing from the key backup %s: mariadb-backup --prepare: %s"):format(id, keys.path,
         first_error(text))
   end
   -- records decrypted with another key are garbage: "Malformed log record" or "Corrupted page
   -- identifier" first, whichever the bytes look like, then always "Log scan aborted"
   if text:find("Log scan aborted", 1, true) and (st.vars.innodb_encrypt_log or ""):upper() == "ON" then
      return ("key id 1 in the key backup %s does not decrypt the redo log: mariadb-backup --prepare: %s")
         :format(keys.path, first_error(text))
   end
   return "mariadb-backup --prepare failed:\n" .. error_lines(text)
end

local function run(argv, commands, timeout)
   commands[#commands + 1] = table.concat(argv, " ")
   return sys.run(table.move(argv, 1, #argv, 1, { timeout = timeout or TIMEOUT }))
end

-- Bytes under a directory (what the copy will need).
local function du(dir)
   local total = 0
   for _, name in ipairs(sys.dir(dir) or {}) do
      local p = dir .. "/" .. name
      local st = sys.stat(p, { link = true })
      if st and st.type == "directory" then total = total + du(p)
      elseif st and st.type == "file" then total = total + st.size end
   end
   return total
end

-- The key files the live server uses, and their copies from the backup directory.
local function keys_from_backup(st, dir)
   local file = st.vars.file_key_management_filename
   if not file then return nil, "the server has no file_key_management_filename: nothing to rehearse" end
   local keys = { live = file }
   local path, data = M.key_backup(dir, file)
   if not path then
      return nil, ("%s: key id%s %s cannot be restored"):format(data, #st.key_ids > 1 and "s" or "",
         table.concat(st.key_ids, ", "))
   end
   keys.path, keys.data = path, data
   local filekey = st.vars.file_key_management_filekey
   if filekey then
      local fk = filekey:match("^FILE:(.+)$")
      if not fk then
         return nil, "file_key_management_filekey is given inline, not as FILE:path: a backup cannot hold it"
      end
      local fpath, fdata = M.key_backup(dir, fk)
      if not fpath then return nil, fdata end
      keys.filekey = { live = fk, path = fpath, data = fdata }
   end
   return keys
end

-- Copies the key backups into dir (0700, files 0600, owned by the server's user).
local function install_keys(keys, dir, owner)
   assert(sys.mkdir(dir, tonumber("700", 8)))
   assert(sys.chown(dir, owner.uid, owner.gid))
   local out = {}
   for _, k in ipairs{ keys, keys.filekey } do
      local p = dir .. "/" .. basename(k.live)
      assert(sys.write_file(p, k.data, { mode = tonumber("600", 8) }))
      assert(sys.chown(p, owner.uid, owner.gid))
      out[#out + 1] = p
   end
   return out[1], out[2]
end

-- The encryption options of the restored server: those of the live one, with our key copies.
local function key_options(st, keyfile, filekey)
   return { plugin_load_add = "file_key_management", file_key_management_filename = keyfile,
      file_key_management_filekey = filekey and "FILE:" .. filekey,
      file_key_management_encryption_algorithm = st.vars.file_key_management_encryption_algorithm }
end

-- The InnoDB layout the prepared copy needs (from its backup-my.cnf).
local LAYOUT = { "innodb_page_size", "innodb_data_file_path", "innodb_undo_tablespaces" }

local function set_options(path, options)
   local doc, err = cnf.load(path, { includes = false })
   if not doc then return nil, err end
   local names = {}
   for k in pairs(options) do names[#names + 1] = k end
   table.sort(names)
   for _, k in ipairs(names) do doc:set("mysqld", k, options[k]) end
   return doc:save{ backup = false }
end

--- Rehearses a restore of the live server with the backed-up keys (MariaDB).
-- @param opts table: `conn` (a `mysql` connection to the live server: variables, key ids,
--   checksums), `client` ({ socket | host, port, user, password }: how mariadb-backup logs in),
--   `backup_dir` (the key backup directory), optional `tables` (list of "schema.table"),
--   `sample` (8), `timeout` (seconds per mariadb-backup run, 3600)
-- @return { tables = list of { table, key_id, checksum }, key_ids, key_backup, commands, seconds }
--   or nil, message (the key id and table when a key is missing or wrong)
function M.run(opts)
   if type(opts) ~= "table" or not opts.conn or type(opts.client) ~= "table" or type(opts.backup_dir) ~= "string" then
      error("rehearsal.run: conn, client and backup_dir are needed", 2)
   end
   local t0 = sys.clock()
   local st, err = live_state(opts.conn)
   if not st then return nil, err end
   if not (st.dialect and st.dialect.rehearses) then
      return nil, ("a restore rehearsal runs on MariaDB only; for %s see rehearsal.plan"):format(st.flavor)
   end
   local keys
   keys, err = keys_from_backup(st, opts.backup_dir)
   if not keys then return nil, err end
   if not backup_ids(keys) and not keys.filekey then
      return nil, select(2, keyring.parse_key_file(keys.data, keys.path))
   end
   local tables
   tables, err = sample_tables(st, opts)
   if not tables then return nil, err end
   if #tables == 0 then return nil, "the live server has no encrypted InnoDB table: a restore would prove nothing" end
   local datadir = sys.realpath(st.vars.datadir) or st.vars.datadir
   local s
   s, err = require("myseal.sandbox").start{ flavor = st.flavor,
      name = "rehearsal-" .. require("myseal.state").random_hex(3) }
   if not s then return nil, "cannot start a sandbox for the rehearsal: " .. err end
   local ok, result, message = pcall(function()
      s:shutdown()
      local need, free = du(datadir) * 1.1, sys.df(s.dir)
      if free and free < need then
         return nil, ("not enough free space in %s for a copy of %s: %.1f GB needed, %.1f GB free"):format(
            s.dir, datadir, need / 1e9, free / 1e9)
      end
      local owner = sys.stat(s.datadir)
      local commands = {}
      local before = checksums(opts.conn, tables)
      local creds = s.dir .. "/client.cnf"
      assert(sys.write_file(creds, M.client_options(opts.client), { mode = tonumber("600", 8) }))
      local backup = s.dir .. "/backup"
      local r, rerr = run({ "mariadb-backup", "--defaults-extra-file=" .. creds, "--backup", "--datadir=" .. datadir,
         "--target-dir=" .. backup }, commands, opts.timeout)
      os.remove(creds)
      if not r then return nil, rerr end
      if not r.ok then return nil, "mariadb-backup --backup failed:\n" .. error_lines(r.stdout .. r.stderr) end
      local after = checksums(opts.conn, tables)
      -- the copy gets our key files and nothing else
      local keyfile, filekey = install_keys(keys, s.dir .. "/keys", owner)
      local opt = key_options(st, keyfile, filekey)
      local ok2, serr = set_options(backup .. "/backup-my.cnf", { file_key_management_filename = keyfile,
         file_key_management_filekey = opt.file_key_management_filekey })
      if not ok2 then return nil, serr end
      r, rerr = run({ "mariadb-backup", "--prepare", "--target-dir=" .. backup }, commands, opts.timeout)
      if not r then return nil, rerr end
      if not r.ok then return nil, prepare_failure(st, keys, r.stdout .. r.stderr) end
      local layout = cnf.load(backup .. "/backup-my.cnf", { includes = false })
      for _, k in ipairs(LAYOUT) do
         local v = layout and layout:get("mysqld", k)
         if v then opt[k] = v end
      end
      assert(sys.rmtree(s.datadir))
      assert(os.rename(backup, s.datadir))
      r = run({ "chown", "-R", owner.uid .. ":" .. owner.gid, s.datadir }, commands)
      if not (r and r.ok) then return nil, "cannot give the copy to the server's user" end
      ok2, serr = set_options(s.cnf, opt)
      if not ok2 then return nil, serr end
      ok2, serr = s:boot()
      if not ok2 then return nil, "the restored copy did not start: " .. serr end
      local c <close> = assert(s:connect())
      -- a key id the copy cannot find shows as an invalid key version
      local missing = {}
      for _, row in ipairs(assert(c:query(st.dialect.missing_key_ids_sql))) do
         missing[math.tointeger(tonumber(row[1]))] = true
      end
      local restored = checksums(c, tables)
      local out = {}
      for _, t in ipairs(tables) do
         local live, got = before[t], restored[t]
         if missing[t.key_id] or got.error then
            local evidence = got.error and ("CHECKSUM TABLE %s: %s"):format(t.sql, got.error)
               or "the restored server has no key version for it"
            return nil, key_failure(keys, t, evidence)
         end
         local entry = { table = t.sql, key_id = t.key_id, checksum = got.value }
         if live.value ~= after[t].value then
            entry.note = "changed on the live server during the backup: not compared"
         elseif live.value ~= got.value then
            return nil, ("CHECKSUM TABLE %s differs: %s on the live server, %s restored"):format(t.sql,
               tostring(live.value), tostring(got.value))
         end
         out[#out + 1] = entry
      end
      return { tables = out, key_ids = st.key_ids, key_backup = keys.path, commands = commands }
   end)
   s:stop()
   if not ok then error(result, 0) end
   if not result then return nil, message end
   result.seconds = sys.clock() - t0
   return result
end

-- ------------------------------------------------------------------------------------------
-- The plan: what a rehearsal runs, per backup tool (the dialect's backup_tool).

local COPY = "copy %s/%s.<digest> into %s/keys (0600), checked against its digest"

local PLAN = {
   ["mariadb-backup"] = function(o)
      local w, base = o.work, basename(o.key_file)
      local lines = {}
      for _, f in ipairs{ o.key_file, o.filekey } do
         lines[#lines + 1] = COPY:format(o.backup_dir, basename(f), w)
      end
      -- the key options the copy is given: the key file's, and its filekey's when it has one
      local keys = ("file_key_management_filename=%s/keys/%s"):format(w, base)
      if o.filekey then
         keys = keys .. (" file_key_management_filekey=FILE:%s/keys/%s"):format(w, basename(o.filekey))
      end
      for _, l in ipairs{
         ("mariadb-backup --defaults-extra-file=%s/client.cnf --backup --datadir=%s --target-dir=%s/backup")
            :format(w, o.datadir, w),
         ("set %s in %s/backup/backup-my.cnf"):format(keys, w),
         ("mariadb-backup --prepare --target-dir=%s/backup"):format(w),
         ("start a sandbox on %s/backup with %s and no other key"):format(w, keys),
         ("CHECKSUM TABLE %s on the live server and on the sandbox: the values must be equal"):format(o.tables),
         "stop the sandbox: the copy, the keys and client.cnf go with it",
      } do lines[#lines + 1] = l end
      return lines
   end,
   xtrabackup = function(o)
      local w, base = o.work, basename(o.key_file)
      local prepare = o.keyring == "component_keyring_file"
         and ("xtrabackup --prepare --target-dir=%s/backup --component-keyring-config=%s/keys/"
            .. "component_keyring_file.cnf (its \"path\" set to %s/keys/%s)"):format(w, w, w, base)
         or ("xtrabackup --prepare --target-dir=%s/backup --keyring-file-data=%s/keys/%s"):format(w, w, base)
      return {
         "plan only: myseal does not run MySQL backups; these are the commands of Percona XtraBackup 8.0",
         COPY:format(o.backup_dir, base, w),
         ("xtrabackup --defaults-extra-file=%s/client.cnf --backup --target-dir=%s/backup"):format(w, w),
         "  (or MySQL Enterprise Backup: mysqlbackup --defaults-extra-file=" .. w .. "/client.cnf --backup-dir="
            .. w .. "/backup --encrypt-password backup-and-apply-log)",
         prepare,
         ("start mysqld on %s/backup with %s/keys as its only keyring"):format(w, w),
         ("CHECKSUM TABLE %s on the live server and on the copy: the values must be equal"):format(o.tables),
      }
   end,
}

--- What a rehearsal runs (MariaDB) or would run (MySQL: plan only), as lines to show.
-- @param opts table: `tool` (the dialect's backup_tool: "mariadb-backup" or "xtrabackup"),
--   `key_file` (the live key file or keyring), `filekey` (MariaDB, optional), `keyring` (MySQL: "keyring_file" or
--   "component_keyring_file"), `backup_dir`, `datadir`, optional `work` (the sandbox's
--   directory) and `tables` (the tables compared)
-- @return list of lines
function M.plan(opts)
   local o = {}
   for k, v in pairs(opts) do o[k] = v end
   o.work = o.work or "<sandbox dir>"
   o.tables = o.tables and table.concat(o.tables, ", ") or "<one table per key id in use, up to 8>"
   local plan = PLAN[opts.tool]
   if not plan then error(("rehearsal.plan: unknown backup tool '%s'"):format(tostring(opts.tool)), 2) end
   return plan(o)
end

return M
