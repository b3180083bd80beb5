--- Key material for encryption at rest, shared by the at-rest and rotate-master-key
-- runbooks: MariaDB's key file format (`id;hexkey` lines, id 1 required) and backups of
-- key files that a later run can recognise (named by their content's digest).
-- @module myseal.keyring
local pki = require "pki"

local M = {}

local hex = require("myseal.text").hex

--- A new key line: `id;` and 32 random bytes (AES-256) in hex, from OpenSSL's generator.
-- @param id key id (1 .. 2^32-1)
-- @return "id;hex\n"
function M.key_line(id) return ("%d;%s\n"):format(id, hex(pki.random(32))) end

--- A new MariaDB key file with keys 1..count.
-- @param count how many keys (at least 1)
-- @return file text
function M.new_key_file(count)
   local out = {}
   for id = 1, math.max(1, count or 1) do out[#out + 1] = M.key_line(id) end
   return table.concat(out)
end

--- Reads a MariaDB key file: the ids it holds (id -> key length in hex digits).
-- Refuses what file_key_management would refuse: a bad line, a duplicate id, a key
-- that is not 32, 48 or 64 hex digits, no key 1.
-- @param text the file (plain, not encrypted)
-- @param name for messages
-- @return { [id] = hexlen }, highest id | nil, message
function M.parse_key_file(text, name)
   local ids, highest, n = {}, 0, 0
   for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      line = line:gsub("\r$", "")
      if not (line:match("^%s*$") or line:match("^%s*#")) then
         local id, key = line:match("^%s*(%d+)%s*;%s*(%x+)%s*$")
         id = math.tointeger(tonumber(id))
         if not id then return nil, ("%s:%d: not an 'id;hexkey' line"):format(name, n) end
         if id < 1 or id > 4294967295 then
            return nil, ("%s:%d: key id %d is out of range (1 to 4294967295)"):format(name, n, id)
         end
         if #key ~= 32 and #key ~= 48 and #key ~= 64 then
            return nil, ("%s:%d: key %d has %d hex digits (32, 48 or 64)"):format(name, n, id, #key)
         end
         if ids[id] then return nil, ("%s:%d: key %d appears twice"):format(name, n, id) end
         ids[id] = #key
         highest = math.max(highest, id)
      end
   end
   if not ids[1] then return nil, ("%s: there is no key 1 (the server needs it)"):format(name) end
   return ids, highest
end

--- A MariaDB key file encrypted with a filekey's password, in OpenSSL's `Salted__` format
-- (AES-256-CBC, EVP_BytesToKey with SHA-1), which file_key_management reads.
-- @param text the plain key file
-- @param password the filekey's content
-- @return the encrypted bytes
function M.encrypt(text, password) return assert(pki.salted_encrypt(text, password)) end

--- The plain text of an encrypted key file.
-- @param data the encrypted bytes
-- @param password the filekey's content
-- @return text | nil, message
M.decrypt = pki.salted_decrypt

--- Where the backup of `path` with content `data` goes: `<dir>/<name>.<16 hex of sha256>`.
-- The same content always has the same backup name, so a backup is found again.
function M.backup_path(dir, path, data)
   return ("%s/%s.%s"):format(dir, path:match("([^/\\]+)$"), pki.digest(data):sub(1, 16))
end

--- Key files whose current content has no backup yet (`ctx:read_file` sees them).
-- @param ctx the step's context
-- @param files list of paths
-- @param dir backup directory
-- @return list of paths
function M.missing_backups(ctx, files, dir)
   local missing = {}
   for _, path in ipairs(files) do
      local data = ctx:read_file(path)
      if data and ctx:read_file(M.backup_path(dir, path, data)) ~= data then missing[#missing + 1] = path end
   end
   return missing
end

--- Refuses, as bad input, a keyring.backup_dir that is there and is not a directory (a preflight
-- calls it, before any key is made).
-- @param ctx the step's context
-- @param dir backup directory or nil
function M.check_backup_dir(ctx, dir)
   local st = dir and require("sys").stat(dir)
   if st and st.type ~= "directory" then
      ctx:reject("keyring.backup_dir: %s exists and is not a directory", dir)
   end
end

--- Backs up key files into `dir` (0700) as 0600 copies, reads every copy back and
-- compares it byte for byte, and records `{ file, backup, sha256 }` in the journal
-- under `key_backup`.
-- @param ctx the step's context
-- @param files list of paths (missing ones are skipped; a plan names them)
-- @param dir backup directory
-- @param owner owner of the copies
function M.backup(ctx, files, dir, owner)
   ctx:mkdir(dir, { mode = tonumber("700", 8) })
   local done = {}
   for _, path in ipairs(files) do
      local data = ctx:read_file(path)
      if data then
         local dest, sha = M.backup_path(dir, path, data), pki.digest(data)
         ctx:write_file(dest, data, { mode = tonumber("600", 8), owner = owner, secret = true, key_material = true })
         if not ctx.planning then
            local copy = require("sys").read_file(dest)
            if copy ~= data then ctx:fail("the backup %s of %s does not read back the same", dest, path) end
            ctx:log("key backup %s (sha256 %s)", dest, sha)
         end
         done[#done + 1] = { file = path, backup = dest, sha256 = sha }
      elseif ctx.planning then   -- written by an earlier step (or the server) in a run
         ctx:log("back up %s into %s once it is written, and read the copy back", path, dir)
      end
   end
   ctx:record("key_backup", done)
end

return M
