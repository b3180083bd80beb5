--- What a file the server writes is, and why it can hold plaintext: one entry per kind
-- of file, each answering from the server's state (its variables and what InnoDB says
-- of each tablespace). docs/at-rest-disk.md describes the same facts for people.
-- @module myseal.diskscan.kinds
local M = {}

local function on(v)
   v = tostring(v or ""):upper()
   return v == "ON" or v == "1" or v == "FORCE" or v == "YES"
end

local SCRUB = "pages freed earlier keep their old plaintext (innodb_immediate_scrub_data_uncompressed=ON "
   .. "zeroes only pages freed after it is set); only a logical dump reloaded into a new datadir removes it"

local function alter(f, clause)
   return ("ALTER TABLE %s %s"):format(f.table or "<table>", clause)
end

-- Each kind: what = a description, can_encrypt = whether some server setting encrypts
-- it, explain(f, st) -> reason, remedy, encrypted (what the server says of it, or nil).
M.kinds = {
   innodb_table = {
      what = "InnoDB tablespace", can_encrypt = true,
      explain = function(f, st)
         local sp = st.spaces and st.spaces[f.path]
         if not sp then
            return "InnoDB does not report this tablespace's encryption", alter(f, "ENCRYPTED=YES"), nil
         end
         if not sp.encrypted then
            return "the table is not encrypted", alter(f, "ENCRYPTED=YES") .. " (or myseal run at-rest)", false
         end
         if sp.rotating then
            return "the encryption threads are still rewriting this tablespace",
               "wait until ROTATING_OR_FLUSHING is 0 in INNODB_TABLESPACES_ENCRYPTION, then scan again", true
         end
         return "InnoDB reports the table encrypted, yet its file holds plaintext: pages freed before it was "
               .. "encrypted keep what they held (the encryption threads skip free pages)",
            alter(f, "FORCE") .. " writes the table again in a new file (myseal run at-rest does, step freed-pages)",
            true
      end,
   },
   system = {
      what = "InnoDB system tablespace", can_encrypt = true,
      explain = function(_, st)
         local sp = st.spaces and st.spaces.system
         if sp and sp.encrypted then
            return "the system tablespace is encrypted, but " .. SCRUB, "none in place (see the reason)", true
         end
         return "the system tablespace is not encrypted: undo records, the doublewrite buffer, the change "
            .. "buffer, freed pages and tables created with innodb_file_per_table=OFF are plain",
            "innodb_encrypt_tables=ON with innodb_encryption_threads > 0 encrypts it; " .. SCRUB, false
      end,
   },
   undo = {
      what = "InnoDB undo tablespace", can_encrypt = true,
      explain = function(_, st)
         return "old row versions of recent changes; " .. (on(st.vars.innodb_encrypt_tables)
               and "written before the encryption threads reached it" or "innodb_encrypt_tables is OFF"),
            "innodb_encrypt_tables=ON with innodb_encryption_threads > 0", nil
      end,
   },
   redo = {
      what = "InnoDB redo log", can_encrypt = true,
      explain = function(_, st)
         if on(st.vars.innodb_encrypt_log) then
            return "the redo log holds plaintext although innodb_encrypt_log is ON",
               "restart the server (it rewrites the log when the setting changes)", true
         end
         return "the redo log is not encrypted (innodb_encrypt_log=OFF): it holds recent row changes",
            "innodb_encrypt_log=ON and a restart: the server rebuilds the log, the old contents go", false
      end,
   },
   temp_tablespace = {
      what = "InnoDB temporary tablespace", can_encrypt = true,
      explain = function(_, st)
         local enc = on(st.vars.innodb_encrypt_temporary_tables)
         return enc and "written before innodb_encrypt_temporary_tables was turned on"
               or "temporary tables are not encrypted (innodb_encrypt_temporary_tables=OFF)",
            "innodb_encrypt_temporary_tables=ON and a restart (the file is recreated at start-up)", enc
      end,
   },
   aria_table = {
      what = "Aria table", can_encrypt = true,
      explain = function(f, st)
         if on(st.vars.aria_encrypt_tables) then
            return "aria_encrypt_tables=ON encrypts only tables created or rebuilt after it was set",
               alter(f, "ENGINE=Aria") .. " (ROW_FORMAT=PAGE; other row formats stay plain)", nil
         end
         return "Aria tables are not encrypted (aria_encrypt_tables=OFF)",
            "aria_encrypt_tables=ON, then " .. alter(f, "ENGINE=Aria"), false
      end,
   },
   aria_log = {
      what = "Aria transaction log", can_encrypt = false,
      explain = function()
         return "the Aria log is never encrypted: it holds recent changes to transactional Aria tables, "
            .. "the mysql schema's accounts and password hashes included",
            "none: a smaller aria_log_file_size makes the server start a new log sooner and purge the old one", nil
      end,
   },
   myisam_table = {
      what = "MyISAM table", can_encrypt = false,
      explain = function(f)
         return "MyISAM tables cannot be encrypted", alter(f, "ENGINE=InnoDB"), nil
      end,
   },
   csv_table = {
      what = "CSV table", can_encrypt = false,
      explain = function()
         return "CSV tables cannot be encrypted (mysql.general_log and mysql.slow_log are CSV tables)",
            "log_output=FILE or NONE; for an application table, ALTER TABLE ... ENGINE=InnoDB", nil
      end,
   },
   definition = {
      what = "table or view definition", can_encrypt = false,
      explain = function()
         return "definitions are plain text: defaults, comments, CHECK constraints, view bodies",
            "keep confidential values out of DDL", nil
      end,
   },
   binlog = {
      what = "binary log", can_encrypt = true,
      explain = function(_, st)
         local enc = on(st.vars.encrypt_binlog)
         return enc and "a binary log written before encrypt_binlog=ON"
               or "binary logs are not encrypted (encrypt_binlog=OFF)",
            (enc and "" or "encrypt_binlog=ON and a restart; ")
               .. "FLUSH BINARY LOGS, then PURGE BINARY LOGS TO the new file once every replica and backup "
               .. "has the old ones", enc
      end,
   },
   relay_log = {
      what = "relay log", can_encrypt = true,
      explain = function(_, st)
         local enc = on(st.vars.encrypt_binlog)
         return enc and "a relay log written before encrypt_binlog=ON"
               or "relay logs are not encrypted (encrypt_binlog=OFF on this replica)",
            "encrypt_binlog=ON on the replica; relay logs are removed once applied", enc
      end,
   },
   general_log = {
      what = "general query log", can_encrypt = false,
      explain = function()
         return "the general query log holds every statement in plain text and is never encrypted",
            "general_log=OFF, then remove or move the file", nil
      end,
   },
   slow_log = {
      what = "slow query log", can_encrypt = false,
      explain = function()
         return "the slow query log holds statements in plain text and is never encrypted",
            "slow_query_log=OFF or log_slow_verbosity without query text, then remove the file", nil
      end,
   },
   error_log = {
      what = "error log", can_encrypt = false,
      explain = function()
         return "the error log is never encrypted; some errors quote statements and values",
            "remove the values from the log after review", nil
      end,
   },
   tmpfile = {
      what = "temporary file", can_encrypt = true,
      explain = function(_, st)
         local enc = on(st.vars.encrypt_tmp_files)
         return enc and "a temporary file written although encrypt_tmp_files=ON"
               or "temporary files (sorts, binary log caches) are not encrypted (encrypt_tmp_files=OFF)",
            "encrypt_tmp_files=ON and a restart", enc
      end,
   },
   other = {
      what = "server file", can_encrypt = false,
      explain = function()
         return "a file the server keeps beside its data", "look at what the file is", nil
      end,
   },
}

--- The kind of a file in a schema directory, from its extension.
-- @param name file name
-- @return kind name
function M.of_table_file(name)
   local ext = (name:match("%.([^.]+)$") or ""):upper()
   if ext == "IBD" then return "innodb_table" end
   if ext == "MAD" or ext == "MAI" then return "aria_table" end
   if ext == "MYD" or ext == "MYI" then return "myisam_table" end
   if ext == "CSV" or ext == "CSM" then return "csv_table" end
   if ext == "FRM" or ext == "PAR" or ext == "TRG" or ext == "TRN" or ext == "OPT" then return "definition" end
   return "other"
end

--- The kind of a file directly in the datadir (or InnoDB's home directories).
-- @param name file name
-- @param data_files set of the system tablespace's file names (innodb_data_file_path)
-- @param temp_files set of the temporary tablespace's file names
-- @return kind name
function M.of_server_file(name, data_files, temp_files)
   if data_files[name] then return "system" end
   if temp_files[name] then return "temp_tablespace" end
   if name:match("^ib_logfile%d+$") then return "redo" end
   if name:match("^undo%d+$") then return "undo" end
   if name:match("^aria_log%.%d+$") then return "aria_log" end
   return "other"
end

--- Explains a file: its description, the reason it holds plaintext and the remedy.
-- @param f { path, kind, table }
-- @param st the server state (vars, spaces)
-- @return what, reason, remedy, encrypted (the server's word, or nil), can_encrypt
function M.explain(f, st)
   local k = M.kinds[f.kind] or M.kinds.other
   local reason, remedy, encrypted = k.explain(f, st)
   local what = k.what .. (f.table and (" " .. f.table) or "")
   return what, reason, remedy, encrypted, k.can_encrypt
end

return M
