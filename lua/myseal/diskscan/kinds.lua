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

-- The explain of a kind that the setting `var` encrypts: the reason when it is on or off, the remedy.
local function by_setting(var, if_on, if_off, remedy)
   return function(_, st)
      local enc = on(st.vars[var])
      return enc and if_on or if_off, remedy, enc
   end
end

-- Each kind: what = a description, can_encrypt = whether some server setting encrypts
-- it, explain(f, st) -> reason, remedy, encrypted (what the server says of it, or nil);
-- or, for a kind whose answer never changes, the reason and the remedy themselves.
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
      explain = by_setting("innodb_encrypt_temporary_tables",
         "written before innodb_encrypt_temporary_tables was turned on",
         "temporary tables are not encrypted (innodb_encrypt_temporary_tables=OFF)",
         "innodb_encrypt_temporary_tables=ON and a restart (the file is recreated at start-up)"),
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
      reason = "the Aria log is never encrypted: it holds recent changes to transactional Aria tables, "
         .. "the mysql schema's accounts and password hashes included",
      remedy = "none: a smaller aria_log_file_size makes the server start a new log sooner and purge the old one",
   },
   myisam_table = {
      what = "MyISAM table", can_encrypt = false,
      explain = function(f)
         return "MyISAM tables cannot be encrypted", alter(f, "ENGINE=InnoDB"), nil
      end,
   },
   csv_table = {
      what = "CSV table", can_encrypt = false,
      reason = "CSV tables cannot be encrypted (mysql.general_log and mysql.slow_log are CSV tables)",
      remedy = "log_output=FILE or NONE; for an application table, ALTER TABLE ... ENGINE=InnoDB",
   },
   definition = {
      what = "table or view definition", can_encrypt = false,
      reason = "definitions are plain text: defaults, comments, CHECK constraints, view bodies",
      remedy = "keep confidential values out of DDL",
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
      explain = by_setting("encrypt_binlog", "a relay log written before encrypt_binlog=ON",
         "relay logs are not encrypted (encrypt_binlog=OFF on this replica)",
         "encrypt_binlog=ON on the replica; relay logs are removed once applied"),
   },
   general_log = {
      what = "general query log", can_encrypt = false,
      reason = "the general query log holds every statement in plain text and is never encrypted",
      remedy = "general_log=OFF, then remove or move the file",
   },
   slow_log = {
      what = "slow query log", can_encrypt = false,
      reason = "the slow query log holds statements in plain text and is never encrypted",
      remedy = "slow_query_log=OFF or log_slow_verbosity without query text, then remove the file",
   },
   error_log = {
      what = "error log", can_encrypt = false,
      reason = "the error log is never encrypted; some errors quote statements and values",
      remedy = "remove the values from the log after review",
   },
   tmpfile = {
      what = "temporary file", can_encrypt = true,
      explain = by_setting("encrypt_tmp_files", "a temporary file written although encrypt_tmp_files=ON",
         "temporary files (sorts, binary log caches) are not encrypted (encrypt_tmp_files=OFF)",
         "encrypt_tmp_files=ON and a restart"),
   },
   other = {
      what = "server file", can_encrypt = false,
      reason = "a file the server keeps beside its data", remedy = "look at what the file is",
   },
}

-- The kind of a file in a schema directory, by its extension.
local TABLE_FILES = { IBD = "innodb_table", MAD = "aria_table", MAI = "aria_table", MYD = "myisam_table",
                      MYI = "myisam_table", CSV = "csv_table", CSM = "csv_table", FRM = "definition",
                      PAR = "definition", TRG = "definition", TRN = "definition", OPT = "definition" }

--- The kind of a file in a schema directory, from its extension.
-- @param name file name
-- @return kind name
function M.of_table_file(name)
   return TABLE_FILES[(name:match("%.([^.]+)$") or ""):upper()] or "other"
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
   local reason, remedy, encrypted = k.reason, k.remedy, nil
   if k.explain then reason, remedy, encrypted = k.explain(f, st) end
   local what = k.what .. (f.table and (" " .. f.table) or "")
   return what, reason, remedy, encrypted, k.can_encrypt
end

return M
