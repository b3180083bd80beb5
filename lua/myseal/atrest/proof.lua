--- Proof of encryption at rest for the runbooks and `myseal check`: the disk scan (every file the
-- server writes, searched for the application's own values: myseal.diskscan) and the restore
-- rehearsal (a copy started with nothing but the backed-up keys: myseal.rehearsal). Both read the
-- server's files and run programs (a fresh sandbox for the scan's baseline, mariadb-backup), which
-- changes nothing of the target: they run with the effects gate open (engine/guard.lua), in run and
-- check mode only, never in plan.
-- @module myseal.atrest.proof
local sys = require "sys"
local pki = require "pki"
local guard = require "myseal.engine.guard"
local text = require "myseal.text"

local M = {}

--- Does the verify step scan the disk in this mode? (at_rest.disk_scan: auto = in run only)
-- @param ctx the step's context
-- @return boolean
function M.scanning(ctx)
   local v = ctx.params.at_rest.disk_scan
   if v == "auto" then return ctx.mode == "run" end
   return v == "yes"
end

--- The extra markers of at_rest.scan_markers (one a line), each masked like the secret; a marker
-- shorter than 8 bytes is refused.
-- @param ctx the step's context
-- @return list | nil when none are set
function M.markers(ctx)
   if not ctx.params.at_rest.scan_markers then return nil end
   local out = {}
   for line in (ctx:secret("at_rest.scan_markers") .. "\n"):gmatch("([^\n]*)\n") do
      line = line:gsub("\r$", "")
      if line ~= "" then
         ctx:mask(line)
         if #line < 8 then ctx:reject("at_rest.scan_markers: marker %d is shorter than 8 bytes", #out + 1) end
         out[#out + 1] = line
      end
   end
   return out
end

-- The server's process is on this host: its pid file names a running mariadbd or mysqld.
local function local_server(ctx)
   local datadir, pid_file = ctx:fact("variable", "datadir"), ctx:fact("variable", "pid_file")
   if not datadir or not sys.stat(datadir) then
      return false, ("its datadir %s is not on this host"):format(tostring(datadir))
   end
   if pid_file and not pid_file:match("^/") then pid_file = datadir:gsub("/?$", "/") .. pid_file end
   if not require("myseal.diskscan").server_pid(pid_file) then
      return false, "its process is not on this host (no running server behind its pid file)"
   end
   return true
end

-- `fn(conn)` on a connection of its own with the effects gate open: its result, or the step fails
-- ("<who> cannot connect", "<what> failed").
local function with_connection(ctx, who, what, fn)
   local conn, err = ctx:connect()
   if not conn then ctx:fail("%s cannot connect: %s", who, err) end
   local ok, r, rerr = pcall(guard.allow, fn, conn)
   conn:close()
   if not ok then error(r, 0) end
   if not r then ctx:fail("%s failed: %s", what, rerr) end
   return r
end

--- The disk scan: probes drawn from the rows of the tables in scope (and at_rest.scan_markers),
-- counted in every file the server writes. The probes never leave this process.
-- @param ctx the step's context
-- @return report (myseal.diskscan.scan: files with hits, counts only) | nil, why it did not run
function M.disk_scan(ctx)
   local here, why = local_server(ctx)
   if not here then return nil, "the disk scan reads the server's files on its own host, and " .. why end
   local scope = ctx.params.at_rest.schemas
   local opts = { schemas = scope and #scope > 0 and scope or nil, markers = M.markers(ctx) }
   return with_connection(ctx, "the disk scan", "the disk scan", function(conn)
      return require("myseal.diskscan").scan(conn, opts)
   end)
end

--- A file's hits as one line: path, what it is, how many and from where, why, and the remedy.
function M.describe_hit(f)
   local src = {}
   for name, n in pairs(f.sources) do src[#src + 1] = ("%s %d"):format(name, n) end
   table.sort(src)
   return ("%s (%s): %s (%s): %s; remedy: %s"):format(f.path, f.what, text.count(f.hits, "hit"),
      table.concat(src, ", "), f.reason, f.remedy)
end

-- The step of the at-rest runbook that handles each kind of file.
local STEP = { innodb_table = "encrypt-tables", system = "system-tablespace", undo = "system-tablespace",
               redo = "restart", temp_tablespace = "restart", tmpfile = "restart", aria_table = "aria-tables",
               binlog = "binary-logs", relay_log = "binary-logs", general_log = "query-logs", slow_log = "query-logs",
               csv_table = "query-logs" }

--- The at-rest step that addresses a file with hits (for a report's fix), or "verify".
function M.step_for(f)
   if f.kind == "innodb_table" and f.encrypted then return "freed-pages" end
   return STEP[f.kind] or "verify"
end

--- Files with hits that no step of this run can clear, though they should be encrypted: pages the
-- system or undo tablespace freed before it was encrypted (nothing rewrites them in place), and
-- binary logs written before encryption that are kept until replicas and backups have them.
-- @param f a file of a report
-- @param purge at_rest.purge_binlogs
function M.accepted(f, purge)
   if (f.kind == "system" or f.kind == "undo") and f.encrypted then return true end
   if (f.kind == "binlog" or f.kind == "relay_log") and not purge then return true end
   return false
end

--- Tables that are encrypted yet whose files hold application values: pages freed before the
-- encryption threads reached them (the threads skip free pages). A rebuild writes a new file.
-- @param report a disk scan report
-- @return list of quoted table names ("`schema`.`name`")
function M.residue_tables(report)
   local out, seen = {}, {}
   for _, f in ipairs(report.files) do
      if f.kind == "innodb_table" and f.encrypted and f.table and not seen[f.table] then
         seen[f.table] = true
         out[#out + 1] = f.table
      end
   end
   table.sort(out)
   return out
end

--- The report as the journal and `myseal check` keep it: counts, kinds and reasons, never a probe.
function M.summary(report)
   local files = {}
   for _, f in ipairs(report.files) do
      files[#files + 1] = { path = f.path, kind = f.kind, what = f.what, table = f.table, hits = f.hits,
         sources = f.sources, reason = f.reason, remedy = f.remedy, encrypted = f.encrypted,
         can_encrypt = f.can_encrypt, step = M.step_for(f) }
   end
   return { files = files, scanned = report.scanned, bytes = report.bytes, probes = report.probes,
            note = report.note, errors = #report.errors, seconds = report.seconds }
end

-- Rehearsal --------------------------------------------------------------------------------------

--- The key material as it is now: the SHA-256 of each key file (what a rehearsal proved).
-- @param ctx the step's context
-- @param files the key files (d:key_files(s))
-- @return sorted list of hex digests
function M.key_digests(ctx, files)
   local out = {}
   for _, f in ipairs(files) do
      local data = ctx:read_file(f)
      if data then out[#out + 1] = pki.digest(data) end
   end
   table.sort(out)
   return out
end

--- The newest successful rehearsal in this target's journals, and whether it proved the key
-- material as it is now: record, current (or nil, false).
-- @param ctx the step's context
-- @param files the key files
function M.last_rehearsal(ctx, files)
   local last = ctx:history("rehearsal")[1]
   if not last then return nil, false end
   local now = table.concat(M.key_digests(ctx, files), ",")
   return last, table.concat(last.value.keys or {}, ",") == now
end

--- Rehearses a restore of the live server with the key backup (MariaDB: mariadb-backup), and
-- records it in the journal (`rehearsal`: when, the key files' digests, the tables compared).
-- Fails the step naming the key id when a key is missing or wrong.
-- @param ctx the step's context
-- @param files the key files
-- @return the rehearsal's result
function M.rehearse(ctx, files)
   local client, err = ctx:client_options()
   if not client then ctx:fail("the rehearsal cannot log in: %s", err) end
   if client.password then ctx:mask(client.password) end
   local backup_dir = ctx.params.keyring.backup_dir
   local r = with_connection(ctx, "the rehearsal", "the restore rehearsal", function(conn)
      return require("myseal.rehearsal").run{ conn = conn, client = client, backup_dir = backup_dir }
   end)
   local tables = {}
   for _, t in ipairs(r.tables) do tables[#tables + 1] = t.table end
   ctx:record("rehearsal", { keys = M.key_digests(ctx, files), key_backup = r.key_backup, key_ids = r.key_ids,
      tables = tables, seconds = math.floor(r.seconds + 0.5) })
   ctx:log("restore rehearsal: a copy restored with the key backup %s gives the live checksums of %s (key %s %s)",
      r.key_backup, table.concat(tables, ", "), #r.key_ids == 1 and "id" or "ids", table.concat(r.key_ids, ", "))
   return r
end

--- The rehearsal step of the at-rest and rotate-master-key runbooks: `when`, `check`, `apply`.
-- It runs after the key material changed (its digests differ from the last rehearsal's), and not in
-- `myseal check`, which reports the last one instead; plan shows the commands it runs.
M.rehearsal = {}

function M.rehearsal.when(ctx)
   return ctx.params.at_rest.rehearsal and ctx.params.keyring.backup_dir ~= nil and ctx.mode ~= "check"
end

function M.rehearsal.check(ctx)
   local s = require("myseal.atrest").settings(ctx)
   local last, current = M.last_rehearsal(ctx, ctx.dialect:key_files(s))
   if current then return true end
   return false, last and ("the key material changed since the last restore rehearsal (%s)"):format(last.at)
      or "no restore rehearsal of the key backup yet"
end

function M.rehearsal.apply(ctx)
   local d = ctx.dialect
   local s = require("myseal.atrest").settings(ctx)
   local files = d:key_files(s)
   if ctx.planning or not d.rehearses then
      local lines = require("myseal.rehearsal").plan{ tool = d.backup_tool, keyring = s.keyring, key_file = files[1],
         filekey = files[2], backup_dir = ctx.params.keyring.backup_dir,
         datadir = ctx:fact("variable", "datadir") or "<datadir>" }
      for _, line in ipairs(lines) do ctx:log("rehearsal: %s", line) end
      if not ctx.planning then
         ctx:warn("the restore rehearsal is not run on %s: run the commands above", d:describe())
      end
      return
   end
   M.rehearse(ctx, files)
end

return M
