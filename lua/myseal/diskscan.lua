--- The disk scan: proof of encryption at rest that believes the disk, not the server.
--
-- Lists every file the server writes (its datadir, all of it; the binary and relay log
-- directories; the general, slow and error logs; InnoDB's and Aria's own directories;
-- temporary files in tmpdir, deleted ones still open included), draws probes from the
-- application's rows (myseal.diskscan.probes), and counts each probe in each file with
-- the C scanner (`sys.scan`). The report names each file with hits, how many, whose rows
-- they are, why the file holds plaintext and what would remove it; it never holds a probe.
--
--    local diskscan = require "myseal.diskscan"
--    local report = assert(diskscan.scan(conn, { markers = { "..." } }))
--    for _, f in ipairs(report.files) do print(f.path, f.hits, f.reason) end
--
-- The scan reads the files directly, so it runs on the server's host with the right to
-- read them (root, or the server's user).
-- @module myseal.diskscan
local sys = require "sys"
local mysql = require "mysql"
local value = require("myseal.sqltext").value
local probes = require "myseal.diskscan.probes"
local kinds = require "myseal.diskscan.kinds"
local dialect = require "myseal.dialect"

local M = {}

M.probes = probes.draw

local VARIABLES = {
   "datadir", "log_bin", "log_bin_basename", "relay_log_basename", "general_log_file",
   "slow_query_log_file", "log_error", "tmpdir", "pid_file", "innodb_data_home_dir",
   "innodb_log_group_home_dir", "innodb_undo_directory", "aria_log_dir_path", "innodb_data_file_path",
   "innodb_temp_data_file_path", "innodb_encrypt_tables", "innodb_encrypt_log", "encrypt_binlog",
   "aria_encrypt_tables", "innodb_encrypt_temporary_tables", "encrypt_tmp_files", "general_log",
   "slow_query_log", "log_output",
}

-- The server's file names encode characters outside [A-Za-z0-9_] (@0020 for a space, @0v
-- for an i with diaeresis...). A server whose dialect has filename_sql decodes them with its
-- "filename" character set; elsewhere the @XXXX forms are decoded here and the others left as they are.
local function decode_here(name)
   return (name:gsub("@(%x%x%x%x)", function(h) return utf8.char(tonumber(h, 16)) end))
end

-- Decoded names: { [raw] = decoded } for a list of raw names (batched, 100 a query).
local function decode_names(conn, st, raws)
   local out, list = {}, {}
   for raw in pairs(raws) do list[#list + 1] = raw end
   table.sort(list)
   for first = 1, #list, 100 do
      local batch = table.move(list, first, math.min(first + 99, #list), 1, {})
      local row
      if st.filename_sql then
         local cols = {}
         for i = 1, #batch do cols[i] = st.filename_sql:format("?") end
         local rows = conn:query("SELECT " .. table.concat(cols, ", "), table.unpack(batch))
         row = rows and rows[1]
      end
      for i, raw in ipairs(batch) do out[raw] = row and row[i] or decode_here(raw) end
   end
   return out
end

-- "schema.table", identifiers quoted, from decoded names.
local function table_name(schema, t)
   return mysql.ident(schema) .. "." .. mysql.ident(t)
end

--- The server's global variables `names` by lower-case name (an empty one left out like NULL), or nil, message.
function M.variables(conn, names)
   local rows, err = conn:query("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" .. ("?"):rep(#names, ", ") .. ")",
      table.unpack(names))
   if not rows then return nil, "cannot read the server's variables: " .. err end
   local vars = {}
   for _, r in ipairs(rows) do vars[r[1]:lower()] = r[2] ~= "" and value(r[2]) or nil end
   return vars
end

--- What the scan needs to know of the server: its variables and, where its dialect reports
-- them (MariaDB: INNODB_TABLESPACES_ENCRYPTION, which needs PROCESS), the encryption of each
-- InnoDB tablespace.
-- @param conn a `mysql` connection
-- @return { flavor, vars, datadir, spaces = { [file] = { encrypted, rotating, key_id, table }, system } }
--   or nil, message
function M.state(conn)
   local server, err = conn:server()
   if not server then return nil, err end
   local vars, rows
   vars, err = M.variables(conn, VARIABLES)
   if not vars then return nil, err end
   if not vars.datadir then return nil, "the server does not report its datadir" end
   -- a server no dialect knows (MySQL 5.6) is scanned by its files alone
   local d = dialect.for_server(server) or { filename_sql = false, tablespaces_sql = false }
   local st = { flavor = server.flavor, vars = vars, filename_sql = d.filename_sql }
   st.datadir = sys.realpath(vars.datadir) or vars.datadir:gsub("/+$", "")
   if d.tablespaces_sql then
      rows, err = conn:query(d.tablespaces_sql)
      if not rows then return nil, "cannot read InnoDB's tablespaces: " .. err end
      st.spaces = {}
      for _, r in ipairs(rows) do
         local file = M.resolve(st, r[3])
         local sp = {
            encrypted = tonumber(value(r[4]) or 0) == 1 and tonumber(value(r[5]) or 0) > 0,
            rotating = tonumber(value(r[6]) or 0) == 1, key_id = math.tointeger(tonumber(value(r[7]))),
            name = r[2],
         }
         if r[2]:find("/", 1, true) then sp.table = table_name(r[8], r[9]) end
         st.spaces[sys.realpath(file) or file] = sp
         if tonumber(r[1]) == 0 then st.spaces.system = sp end
      end
   end
   return st
end

--- A path the server gives, made absolute (relative paths are relative to the datadir).
function M.resolve(st, path)
   path = path:gsub("^%./", "")
   if path:sub(1, 1) == "/" then return path end
   return st.datadir .. "/" .. path
end

-- Names listed in an InnoDB file path setting ("ibdata1:12M:autoextend;ibdata2:...").
local function file_names(setting)
   local out = {}
   for part in (setting or ""):gmatch("[^;]+") do
      local name = part:match("^([^:]+)")
      if name then out[name:match("([^/]+)$")] = true end
   end
   return out
end

local function escape(s)
   return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

--- Every file the server writes, each with its kind (see myseal.diskscan.kinds).
-- @param conn a `mysql` connection
-- @param st the server state (M.state), or nil to read it
-- @return list of { path, kind, table, shown } (shown: the name to report when path is a
--   /proc link to a deleted file), or nil, message
function M.files(conn, st)
   local err
   if not st then
      st, err = M.state(conn)
      if not st then return nil, err end
   end
   local v = st.vars
   local out, seen, raw_names = {}, {}, {}
   local function add(path, kind, extra)
      extra = extra or {}
      -- a /proc link to a deleted file has no real path: it is its own name
      local real = extra.shown and path or sys.realpath(path)
      if not real or seen[real] then return end
      local s = sys.stat(real)
      if not s or s.type ~= "file" then return end
      seen[real] = true
      out[#out + 1] = { path = real, kind = kind, table = extra.table, shown = extra.shown, raw = extra.raw }
      if extra.raw then raw_names[extra.raw[1]], raw_names[extra.raw[2]] = true, true end
   end
   -- the files named by variables first: their kind wins over a guess from the name
   local function logs(basename, kind)
      if not basename then return end
      local dir, prefix = M.resolve(st, basename):match("^(.*)/([^/]+)$")
      for _, name in ipairs(sys.dir(dir) or {}) do
         if name:match("^" .. escape(prefix) .. "%.%d+$") then add(dir .. "/" .. name, kind)
         elseif name:sub(1, #prefix + 1) == prefix .. "." then add(dir .. "/" .. name, "other") end
      end
   end
   logs(v.log_bin_basename, "binlog")
   logs(v.relay_log_basename, "relay_log")
   for name, kind in pairs{ general_log_file = "general_log", slow_query_log_file = "slow_log",
                            log_error = "error_log" } do
      if v[name] and v[name] ~= "stderr" then add(M.resolve(st, v[name]), kind) end
   end
   local data_files, temp_files = file_names(v.innodb_data_file_path), file_names(v.innodb_temp_data_file_path)
   local function server_file(dir, name)
      local kind = kinds.of_server_file(name, data_files, temp_files)
      if kind == "other" and name:match("%-relay%-bin%.%d+$") then kind = "relay_log" end
      add(dir .. "/" .. name, kind)
   end
   -- the datadir, all of it; schema directories hold table files
   local visited = {}
   local function walk(dir, schema)
      local real = sys.realpath(dir)
      if not real or visited[real] then return end
      visited[real] = true
      for _, name in ipairs(sys.dir(dir) or {}) do
         local p = dir .. "/" .. name
         local s = sys.stat(p)
         if s and s.type == "directory" then
            walk(p, schema or name)
         elseif s and s.type == "file" then
            if schema then
               local kind = kinds.of_table_file(name)
               local sp = kind == "innodb_table" and st.spaces and st.spaces[sys.realpath(p)]
               if sp and sp.table then
                  add(p, kind, { table = sp.table })
               elseif kind ~= "definition" and name:sub(1, 1) ~= "#" then
                  add(p, kind, { raw = { schema, (name:gsub("#[Pp]#.*$", ""):gsub("%.[^.]+$", "")) } })
               else
                  add(p, kind)
               end
            else
               server_file(dir, name)
            end
         end
      end
   end
   walk(st.datadir)
   -- InnoDB's and Aria's own directories, when they are elsewhere
   for _, var in ipairs{ "innodb_data_home_dir", "innodb_log_group_home_dir", "innodb_undo_directory",
                         "aria_log_dir_path" } do
      if v[var] then
         local dir = M.resolve(st, v[var]):gsub("/+$", "")
         for _, name in ipairs(sys.dir(dir) or {}) do
            if kinds.of_server_file(name, data_files, temp_files) ~= "other" then server_file(dir, name) end
         end
      end
   end
   -- tablespaces outside the datadir (DATA DIRECTORY)
   for file, sp in pairs(st.spaces or {}) do
      if file ~= "system" and file:sub(-4) == ".ibd" then add(file, "innodb_table", { table = sp.table }) end
   end
   -- temporary files: those with the server's prefixes in tmpdir, and deleted ones it holds open
   local tmpdirs = {}
   for dir in (v.tmpdir or ""):gmatch("[^:]+") do
      dir = sys.realpath(dir) or dir
      tmpdirs[#tmpdirs + 1] = dir
      for _, name in ipairs(sys.dir(dir) or {}) do
         if name:match("^#") or name:match("^M[LY]") or name:match("^ib") then add(dir .. "/" .. name, "tmpfile") end
      end
   end
   for _, f in ipairs(M.deleted_open_files(v.pid_file and M.resolve(st, v.pid_file))) do
      for _, dir in ipairs(tmpdirs) do
         if f.target:sub(1, #dir + 1) == dir .. "/" then
            add(f.path, "tmpfile", { shown = f.target .. " (deleted, still open)" })
         end
      end
   end
   local names = decode_names(conn, st, raw_names)
   for _, f in ipairs(out) do
      if f.raw then
         f.table = table_name(names[f.raw[1]], names[f.raw[2]])
         f.raw = nil
      end
   end
   table.sort(out, function(a, b) return a.path < b.path end)
   return out
end

--- The pid the server's pid file names when that process (on this host) is a mariadbd or mysqld, or nil.
function M.server_pid(pid_file)
   local pid = pid_file and (sys.read_file(pid_file) or ""):match("^%s*(%d+)")
   local cmdline = pid and sys.read_file("/proc/" .. pid .. "/cmdline") or ""
   if cmdline:find("mariadbd", 1, true) or cmdline:find("mysqld", 1, true) then return pid end
   return nil
end

--- Deleted files a local server process still holds open (its temporary files), from
-- /proc/<pid>/fd. Empty when the pid file is not here or the process is not a server.
-- @param pid_file the server's pid file
-- @return list of { path = "/proc/<pid>/fd/<n>", target = the deleted file's name }
function M.deleted_open_files(pid_file)
   local out = {}
   local pid = M.server_pid(pid_file)
   if not pid then return out end
   local r = sys.run{ "find", "/proc/" .. pid .. "/fd", "-lname", "* (deleted)", "-printf", "%p\t%l\n" }
   for line in ((r and r.stdout) or ""):gmatch("[^\n]+") do
      local path, target = line:match("^([^\t]+)\t(.-) %(deleted%)$")
      if path then out[#out + 1] = { path = path, target = target } end
   end
   return out
end

--- Scans every file the server writes for probes drawn from its rows.
-- @param conn a `mysql` connection to the server (on this host)
-- @param opts table: `probes` (from M.probes; else drawn here with these opts and
--   forgotten after), `threads` for the scanner, and every option of M.probes
-- @return report { files = list of { path, kind, what, table, hits, sources = { [source] = n },
--   reason, remedy, encrypted = the server's word (true, false or nil), can_encrypt },
--   scanned, bytes, errors = list of { path, error }, probes, without, baseline, seconds },
--   or nil, message
function M.scan(conn, opts)
   opts = opts or {}
   if opts.probes and not probes.values(opts.probes) then
      error("diskscan.scan: these probes were forgotten", 2)
   end
   local t0 = sys.clock()
   local st, err = M.state(conn)
   if not st then return nil, err end
   local files
   files, err = M.files(conn, st)
   if not files then return nil, err end
   local p = opts.probes
   if not p then
      p, err = probes.draw(conn, opts)
      if not p then return nil, err end
   end
   local values = probes.values(p)
   local report = { files = {}, scanned = 0, bytes = 0, errors = {}, probes = p.count, without = p.without,
      baseline = p.baseline }
   if #values == 0 then
      report.note = "no probe could be drawn from the rows in scope: nothing was searched"
      if not opts.probes then p:forget() end
      report.seconds = sys.clock() - t0
      return report
   end
   local paths = {}
   for i, f in ipairs(files) do paths[i] = f.path end
   local res
   res, err = sys.scan(paths, values, { threads = opts.threads })
   values = nil
   if not opts.probes then p:forget() end
   if not res then return nil, err end
   for _, f in ipairs(files) do
      local r = res[f.path]
      if r.error then
         report.errors[#report.errors + 1] = { path = f.shown or f.path, error = r.error }
      else
         report.scanned = report.scanned + 1
         report.bytes = report.bytes + r.bytes
         if r.hits > 0 then
            local sources = {}
            for i, n in pairs(r.per_pattern) do sources[p.sources[i]] = (sources[p.sources[i]] or 0) + n end
            local what, reason, remedy, encrypted, can = kinds.explain(f, st)
            report.files[#report.files + 1] = { path = f.shown or f.path, kind = f.kind, what = what,
               table = f.table, hits = r.hits, sources = sources, reason = reason, remedy = remedy,
               encrypted = encrypted, can_encrypt = can }
         end
      end
   end
   report.seconds = sys.clock() - t0
   return report
end

return M
