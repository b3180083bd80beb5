--- The server's option files, as the stock runbooks read and change them.
-- @module myseal.options
local sys = require "sys"

local M = {}

--- The server's option files (`server.cnf` with its includes), or nil when there is none
-- configured. A missing file is an empty one (a new file to write). A file the server could not
-- read is bad input (exit status 2), named with its line.
-- @param ctx the step's context
-- @return cnf document | nil
function M.tree(ctx)
   local path = ctx.params.server.cnf
   if not path then return nil end
   local cnf = require "cnf"
   if not ctx:exists(path) then return assert(cnf.parse("", path)) end
   local doc, err = cnf.load(path, { includes = true })
   if not doc then ctx:reject("%s", err) end
   return doc
end

--- The groups a server option is written to, best first: `first` (or the dialect's
-- server group), then the groups the server reads.
-- @param ctx the step's context
-- @param first optional group to prefer
-- @return list of group names
function M.write_groups(ctx, first)
   local out = { first or ctx.dialect.server_group }
   for _, g in ipairs(ctx.dialect:server_groups()) do out[#out + 1] = g end
   return out
end

--- Sets server options where the server reads them: each in the file and group that set it
-- today, or else in a drop-in file or the main file (`doc:target`), one `ctx:edit_cnf` per file.
-- An edit `{ name, value, add = true }` adds a line (options that accumulate).
-- @param ctx the step's context
-- @param edits list of `{ name =, value =, add = }`
-- @param first optional group for new options
-- @param opts optional ctx:write_file options for the edits (`keep`)
function M.write(ctx, edits, first, opts)
   if #edits == 0 then return end
   local doc = M.tree(ctx)
   if not doc then ctx:reject("server.cnf is not set: name the server's option file in [server] cnf") end
   local groups = M.write_groups(ctx, first)
   local by_file, order = {}, {}
   for _, e in ipairs(edits) do
      local file, group = doc:target(e.name, groups)
      if e.add then group = groups[1] end
      if not by_file[file] then by_file[file] = {}; order[#order + 1] = file end
      table.insert(by_file[file], { group = group, e = e })
   end
   for _, file in ipairs(order) do
      ctx:edit_cnf(file, function(f)
         for _, x in ipairs(by_file[file]) do
            if x.e.add then f:add(x.group, x.e.name, x.e.value) else f:set(x.group, x.e.name, x.e.value) end
         end
      end, opts)
   end
end

--- When the server runs on this machine as another user than `[server] user` says (its pid file
-- and /proc tell), a message saying so; nil when they agree or myseal cannot see the process.
-- Key files and certificates are given to `[server] user`: with the wrong one the server could
-- not read them after its restart.
-- @param ctx the step's context
-- @return message | nil
function M.server_user_mismatch(ctx)
   local pidfile = ctx:fact("variable", "pid_file")
   if type(pidfile) ~= "string" or pidfile == "" then return nil end
   if not pidfile:match("^/") then pidfile = (ctx:fact("variable", "datadir") or ""):gsub("/?$", "/") .. pidfile end
   local pid = tonumber((sys.read_file(pidfile) or ""):match("^%s*(%d+)"))
   local cmdline = pid and (sys.read_file("/proc/" .. pid .. "/cmdline") or "")
   if not cmdline or not (cmdline:find("mysqld", 1, true) or cmdline:find("mariadbd", 1, true)) then return nil end
   local uid = (sys.read_file("/proc/" .. pid .. "/status") or ""):match("\nUid:%s+(%d+)")
   local want = sys.user(ctx.params.server.user)
   if not uid or (want and tostring(want.uid) == uid) then return nil end
   local name = ("\n" .. (sys.read_file("/etc/passwd") or "")):match("\n([^:\n]+):[^:\n]*:" .. uid .. ":")
      or ("uid " .. uid)
   return ("[server] user is %s, but the server runs as %s (pid %d): the key and certificate files must be its "
      .. "own; set [server] user = %s"):format(ctx.params.server.user, name, pid, name)
end

--- The files the server's option files name that the server's user (`[server] user`) could
-- not read (or, for a file the server makes, write into its directory), as it will at its next
-- start: every directory on the way needs the search bit for it. Checked by the kernel as that
-- user (sys.access_as); nothing is checked when myseal is not root.
-- @param ctx the step's context
-- @return list of messages (empty when the server can read them all)
function M.unreadable(ctx)
   local doc = M.tree(ctx)
   if not doc then return {} end
   local user = ctx.params.server.user
   local groups = ctx.dialect:server_groups()
   local out = {}
   for _, o in ipairs(ctx.dialect:path_options()) do
      local v = doc:effective(groups, o.name)
      if type(v) == "string" and v ~= "" then
         local path = v:gsub("^FILE:", "")
         local ok, err, code
         if o.made_by_server and not sys.stat(path) then
            ok, err, code = sys.access_as(user, path:match("^(.*)/[^/]+$") or "/", "w")
         else
            ok, err, code = sys.access_as(user, path, o.dir and "x" or "r")
         end
         if not ok and code == sys.errno.EPERM then return {} end   -- not root: cannot tell
         if not ok then out[#out + 1] = ("%s = %s: %s"):format(o.name, v, err) end
      end
   end
   return out
end

return M
