--- What the sandbox drivers share: log excerpts, commands that must succeed, short
-- directories, and the operating-system accounts servers run as.
-- @module myseal.sandbox.common
local sys = require "sys"
local state = require "myseal.state"

local M = {}

--- The last `n` lines of a text (of an error log, for messages).
-- @param text the text
-- @param n how many lines
-- @return those lines, joined by newlines
function M.tail_lines(text, n)
   local lines = {}
   for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
   return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

--- The server's own complaint in a log excerpt: its last 5 [ERROR] lines, else the last 5 lines.
function M.error_lines(text)
   local errs = {}
   for line in text:gmatch("[^\n]+") do
      if line:find("[ERROR]", 1, true) and not line:find("Aborting", 1, true) then errs[#errs + 1] = line end
   end
   return M.tail_lines(#errs > 0 and table.concat(errs, "\n") or text, 5)
end

--- Raises the message `fmt` formats when `bad` (a caller's mistake), at `level` as `error` counts it
-- where refuse is called.
function M.refuse(bad, level, fmt, ...)
   if bad then error(string.format(fmt, ...), level + 1) end
end

--- Appends the items of each list after the first to the first; returns the first.
function M.append(list, ...)
   for _, more in ipairs{ ... } do table.move(more, 1, #more, #list + 1, list) end
   return list
end

--- The size of a file, 0 when there is none.
function M.file_size(path)
   local st = sys.stat(path)
   return st and st.size or 0
end

local function read_from(path, offset)
   local f = io.open(path, "rb")
   if not f then return "" end
   f:seek("set", offset)
   local text = f:read("a") or ""
   f:close()
   return text
end

--- Waits until a server's log says "ready for connections" after `offset`.
-- @param log the error log's path
-- @param offset where its new lines start (its size before the start)
-- @param alive function: does the server (or its container) still run?
-- @param timeout seconds
-- @return true, or nil, why, the log's new text
function M.wait_ready(log, offset, alive, timeout)
   local deadline = sys.clock() + timeout
   local delay = 0.02
   while true do
      local text = read_from(log, offset)
      if text:find("ready for connections", 1, true) then return true end
      if not alive() then return nil, "the server exited during start-up", text end
      if sys.clock() > deadline then
         return nil, string.format("the server was not ready after %d s", timeout), text
      end
      sys.sleep(delay)
      delay = math.min(delay * 1.5, 0.2)
   end
end

--- Waits for process `pid` to make the file `path`, its way of saying it is ready.
-- @return true, or false when the process ended or `timeout` seconds passed first
function M.wait_file(pid, path, timeout)
   local deadline = sys.clock() + timeout
   while not sys.stat(path) do
      if not sys.alive(pid) or sys.clock() > deadline then return false end
      sys.sleep(0.02)
   end
   return true
end

--- Runs argv; true, or nil, "what failed:" and the program's own error lines.
function M.run_ok(argv, what)
   local r, err = sys.run(argv)
   if not r then return nil, what .. ": " .. err end
   if not r.ok then return nil, what .. " failed:\n" .. M.error_lines(r.stdout .. r.stderr) end
   return true, r
end

function M.is_root()
   return sys.user().uid == 0
end

--- A short private directory (sun_path holds 107 bytes): `/tmp/msb-NAME-XXXXXX`, 0700.
function M.short_tmpdir(name)
   local base = os.getenv("TMPDIR")
   if not base or base == "" or #base > 60 then base = "/tmp" end
   for _ = 1, 10 do
      local path = string.format("%s/msb-%s-%s", base, name, state.random_hex(3))
      if not sys.stat(path) then
         local ok, err = sys.mkdir(path, 448)
         if not ok then return nil, err end
         return path
      end
   end
   return nil, "cannot create a sandbox directory under " .. base
end

--- Removes the directory `short_tmpdir` made for sandbox `s`, and only such a one (`/msb-` in its name).
function M.remove_dir(s)
   if s.dir and s.dir:match("/msb%-") then sys.rmtree(s.dir) end
end

--- An account of this machine: `{ name, uid, gid, group }`, or nil, message.
function M.account(name)
   local r = sys.run{ "getent", "passwd", name }
   local uid, gid
   if r and r.ok then uid, gid = r.stdout:match("^[^:]*:[^:]*:(%d+):(%d+):") end
   if not uid then return nil, string.format("there is no user '%s' on this machine", name) end
   local g = sys.run{ "getent", "group", gid }
   local group = g and g.ok and g.stdout:match("^([^:]+):") or gid
   return { name = name, uid = tonumber(uid), gid = tonumber(gid), group = group }
end

--- The account a packaged server runs as, created as a system user (with its own group)
-- when missing, the way the distribution's package would.
-- @param name user name, e.g. "mysql"
-- @param gecos the account's description
-- @return account, or nil, message
function M.system_account(name, gecos)
   local a = M.account(name)
   if a then return a end
   local ok, err = M.run_ok({ "useradd", "--system", "--user-group", "--no-create-home",
      "--home-dir", "/nonexistent", "--shell", "/bin/false", "--comment", gecos, name },
      "creating the system user " .. name)
   if not ok then return nil, err end
   return M.account(name)
end

--- A directory made once and shared: `final` when `final/marker` exists, else built by
-- `build(tmp)` in `final.tmp` under a lock (another process may be building it: wait for
-- it) and renamed into place, so concurrent processes never see half of one.
-- @return final | nil, message
function M.cached(final, marker, build)
   if sys.stat(final .. "/" .. marker) then return final end
   local lock, lerr
   for _ = 1, 1800 do
      lock, lerr = sys.lock(final .. ".lock")
      if lock then break end
      sys.sleep(0.2)
   end
   if not lock then return nil, lerr end
   if sys.stat(final .. "/" .. marker) then lock:release(); return final end
   local tmp = final .. ".tmp"
   sys.rmtree(tmp)
   assert(sys.mkdir(tmp, 448))
   local ok, err = build(tmp)
   if ok then ok, err = os.rename(tmp, final) end
   lock:release()
   if not ok then
      sys.rmtree(tmp)
      return nil, err
   end
   return final
end

--- Makes a directory with `mode` whatever the umask, owned by `uid` and `gid` when `uid` is given.
-- @return true, or nil, message
function M.mkdir(path, mode, uid, gid)
   local ok, err = sys.mkdir(path, mode)
   if ok then ok, err = sys.chmod(path, mode) end
   if ok and uid then ok, err = sys.chown(path, uid, gid) end
   return ok, err
end

--- `chown -R` to an account.
function M.chown_tree(path, account)
   return M.run_ok({ "chown", "-R", account.uid .. ":" .. account.gid, path }, "chown " .. path)
end

--- The option lines `key=value` (or a bare `key` for true) of an option table, sorted;
-- raises on a malformed name or a value with a line break.
function M.option_lines(options, level)
   level = (level or 1) + 1
   local keys = {}
   for k in pairs(options or {}) do
      M.refuse(type(k) ~= "string" or not k:match("^[%w_%-%.]+$"), level, "bad option name '%s'", tostring(k))
      keys[#keys + 1] = k
   end
   table.sort(keys)
   local out = {}
   for _, k in ipairs(keys) do
      local v = options[k]
      if v == true then
         out[#out + 1] = k
      elseif v ~= false then
         v = tostring(v)
         M.refuse(v:find("[\n\r]"), level, "option '%s' has a line break", k)
         out[#out + 1] = k .. "=" .. v
      end
   end
   return out
end

return M
