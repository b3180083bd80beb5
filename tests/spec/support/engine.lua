-- Helpers for the engine specs: run `myseal` as a child, snapshot directories, read journals.
local sys = require "sys"
local json = require "myseal.json"
local host = require "myseal.host"

local M = {}

M.MYSEAL = host.exe
M.FIXTURES = host.home .. "/tests/fixtures"

--- Run `myseal ARGS...` with extra environment; returns the sys.run result.
function M.myseal(argv, env, stdin)
   local cmd = { M.MYSEAL, env = env, stdin = stdin, timeout = 120 }
   for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
   return assert(sys.run(cmd))
end

--- The plain text of a MariaDB key file in `dir` (a keyring directory), as openssl decrypts it
-- with the filekey beside it (keyfile.enc), or as it is (a plain keyfile).
function M.key_text(dir)
   if not sys.stat(dir .. "/keyfile.enc") then return assert(sys.read_file(dir .. "/keyfile")) end
   local r = assert(sys.run{ "openssl", "enc", "-d", "-aes-256-cbc", "-md", "sha1", "-pass",
      "file:" .. dir .. "/filekey", "-in", dir .. "/keyfile.enc" })
   assert(r.ok, r.stderr)
   return r.stdout
end

--- Every file under dir: path -> { data, mode } (directories too, with data = false).
function M.snapshot(dir, out, prefix)
   out = out or {}
   prefix = prefix or ""
   for _, name in ipairs(sys.dir(dir) or {}) do
      local p = dir .. "/" .. name
      local st = sys.stat(p, { link = true })
      if st.type == "directory" then
         out[prefix .. name .. "/"] = { data = false, mode = st.mode }
         M.snapshot(p, out, prefix .. name .. "/")
      else
         out[prefix .. name] = { data = sys.read_file(p), mode = st.mode }
      end
   end
   return out
end

--- The journals under a state dir for a target and runbook, newest first.
function M.journals(state, target, runbook)
   local journal = require "myseal.engine.journal"
   return journal.list(state .. "/targets/" .. target, runbook)
end

--- Decoded events of a journal file.
function M.events(path)
   local out = {}
   for line in assert(sys.read_file(path)):gmatch("[^\n]+") do out[#out + 1] = assert(json.decode(line)) end
   return out
end

--- Events of one kind (and optionally one field value).
function M.select(events, event, field, value)
   local out = {}
   for _, e in ipairs(events) do
      if e.event == event and (field == nil or e[field] == value) then out[#out + 1] = e end
   end
   return out
end

--- Wait (up to `timeout` s) until fn() is true.
function M.wait_for(fn, timeout)
   local deadline = sys.clock() + (timeout or 20)
   while sys.clock() < deadline do
      if fn() then return true end
      sys.sleep(0.02)
   end
   return false
end

--- Write a site profile and return its path.
function M.profile(dir, text)
   local p = dir .. "/site.ini"
   assert(sys.write_file(p, text))
   return p
end

return M
