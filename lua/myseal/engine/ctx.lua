--- The context a step gets: parameters, the server (connection, dialect, facts) and the effect
-- functions, the only way a step changes anything. In plan mode effects are shown and not done;
-- in run mode they are journaled, then done. Effects raise when they fail: the engine reports
-- the runbook, the step and the line.
-- @module myseal.engine.ctx
local sys = require "sys"
local cnf = require "cnf"
local sqltext = require "myseal.sqltext"
local xmledit = require "myseal.xmledit"
local dialect = require "myseal.dialect"

local M = {}

--- Raised by effects and ctx:fail; the engine turns it into a step failure.
M.Failure = { __name = "myseal.StepFailure", __tostring = function(e) return e.message end }
--- Raised at an effect boundary after Ctrl-C.
M.Interrupted = setmetatable({}, { __name = "myseal.Interrupted", __tostring = function() return "interrupted" end })

local Ctx = {}
local methods = {}

Ctx.__name = "myseal.Context"
Ctx.__index = function(self, key)
   local m = methods[key]
   if m then return m end
   if key == "dialect" then return self:_dialect() end
   if key == "server" then return self:_server() end
   error(("ctx has no field '%s'"):format(tostring(key)), 2)
end
Ctx.__newindex = function(_, key)
   error(("ctx is read-only: cannot set '%s' (keep state in locals)"):format(tostring(key)), 2)
end

--- A new context for one run. Called by the engine.
-- @param run the engine's run state: `{ mode, runbook, decls, values, secrets, target, emit, journal,
--   records, since_restart }`
-- @return ctx
function M.new(run)
   local params = require "myseal.engine.params"
   local self = {
      params = params.view(run.decls, run.values),
      mode = run.mode,
      planning = run.mode == "plan",
      runbook = run.runbook.name,
      target = { kind = run.target.kind, name = run.target.label },
   }
   if run.target.address then
      self.target.host, self.target.port = run.target:address(run.values)
   end
   rawset(self, "_run", run)
   rawset(self, "_overlay", {})   -- plan mode: files as planned (path -> content | false)
   return setmetatable(self, Ctx)
end

local function fail(self, fmt, ...)
   local msg = select("#", ...) > 0 and fmt:format(...) or fmt
   error(setmetatable({ message = self._run.secrets:redact(msg) }, M.Failure), 0)
end

--- Fail the step with a message (string.format style).
-- @param fmt format
function methods:fail(fmt, ...)
   fail(self, fmt, ...)
end

--- A parameter by its full name ("section.key"); raises for an undeclared name.
-- @param name string
-- @return value
function methods:param(name)
   local section, key = tostring(name):match("^([^.]+)%.?(.*)$")
   if key == "" then return self.params[section] end
   return self.params[section][key]
end

function methods:_emit(ev)
   ev.step = ev.step or self._run.step
   self._run.emit(ev)
end

-- Every effect starts here: Ctrl-C is honoured between effects, never inside one.
function methods:_boundary()
   if not self.planning and sys.interrupted() then error(M.Interrupted, 0) end
end

-- Show (plan) or journal-and-show (run) one effect. `journal` carries what rollback needs.
function methods:_effect(ev)
   self._run.effects = self._run.effects + 1
   ev.event = "effect"
   self:_emit(ev)
end

--- The connection to the server (connecting, or reconnecting after a restart, on first use).
-- Raises on a described server.
-- @return a mysql connection
function methods:connection()
   local run = self._run
   if run.target.kind == "described" then
      fail(self, "%s has no connection: this step needs a live server (use a fact: docs/runbooks.md)",
         run.target.label)
   end
   if run.conn then return run.conn end
   local conn, err = run.target:connect(run.values, run.secrets)
   if not conn then fail(self, "cannot connect to the server: %s", err) end
   run.conn = conn
   return conn
end

--- A new connection of its own to the target's server, with `opts` merged over the target's
-- connection options (mysql.connect's fields: `host`, `port`, `user`, `password`, `tls`, ...).
-- Read-only use (verification: "does a client with this certificate get in?"); it is the caller's
-- to close. A failure is returned, not raised.
-- @param opts table or nil
-- @return conn | nil, message, errno
function methods:connect(opts)
   local run = self._run
   if run.target.kind == "described" then return nil, run.target.label .. " has no connection" end
   return run.target:connect(run.values, run.secrets, opts)
end

--- The server: `{ flavor, version, major, minor, patch, described }`.
function methods:_server()
   local run = self._run
   if not run.server_info then
      if run.target.kind == "described" then
         run.server_info = run.target.server_info
      else
         local info = self:connection():server()
         run.server_info = { flavor = info.flavor, version = info.version, major = info.major,
                             minor = info.minor, patch = info.patch, comment = info.comment, described = false }
      end
   end
   return run.server_info
end

function methods:_dialect()
   local run = self._run
   if not run.dialect then
      local d, err = dialect.for_server(self:_server(), run.runbook.dialect, run.target.description)
      if not d then fail(self, "%s", err) end
      run.dialect = d
   end
   return run.dialect
end

--- A read-only query (never an effect: runs in plan mode too). Raises on an SQL error.
-- @param sql statement with `?` placeholders
-- @return rows, meta
function methods:query(sql, ...)
   local shown = sqltext.format(sql, table.pack(...))
   local rows, meta, errno = self:connection():query(sql, ...)
   if not rows then fail(self, "query failed: %s: %s (%s)", shown, meta, tostring(errno)) end
   return rows, meta
end

--- Ask the dialect a read-only question (a fact): live servers answer with SQL, described
-- servers from their description. `ctx:fact("variable", "require_secure_transport")`.
-- @param name fact name
-- @return the answer
function methods:fact(name, ...)
   local d = self.dialect
   local run = self._run
   if run.target.kind == "described" then
      local desc = run.target.description
      local v = desc.facts and desc.facts[name]
      if v ~= nil then
         if type(v) == "function" then return v(...) end
         return v
      end
      local f = d.described[name]
      if f == nil then
         fail(self, "the described server (%s) cannot answer fact '%s': add it to the description's facts "
            .. "or to the dialect's described table", d.name, name)
      end
      if type(f) == "function" then return f(d, desc, ...) end
      return f
   end
   local f = d.facts[name]
   if f == nil then fail(self, "dialect %s has no fact '%s'", d.name, name) end
   return f(d, self, ...)
end

--- Run an SQL statement that changes the server. In plan mode it is shown, not run.
-- @param sql statement with `?` placeholders
-- @return rows, meta (nil in plan mode)
function methods:sql(sql, ...)
   local shown = sqltext.format(sql, table.pack(...))
   self:_boundary()
   self:_effect{ kind = "sql", sql = shown, summary = "sql: " .. shown }
   if self.planning then return nil end
   local rows, meta, errno = self:connection():query(sql, ...)
   if not rows then fail(self, "SQL failed: %s: %s (%s)", shown, meta, tostring(errno)) end
   return rows, meta
end

--- Run many statements that change the server, up to `parallel` at a time, each on its own
-- connection (a worker process), largest first as given. Every statement is journaled before
-- it starts; progress is reported as statements finish (weighted, e.g. by table size). Ctrl-C
-- stops starting new ones and waits for those running. A failed statement lets the running ones
-- finish, then fails the step. In plan mode they are shown in order.
-- @param list of `{ sql = , args = { ... }, weight = number }` (or plain SQL strings)
-- @param opts `{ parallel = 2, label = "tables", unit = "bytes" }`
-- @return true
function methods:sql_parallel(list, opts)
   opts = opts or {}
   local parallel = math.tointeger(opts.parallel or 1)
   if not parallel or parallel < 1 then error("ctx:sql_parallel: parallel must be a positive integer", 2) end
   local items, total = {}, 0
   for i, it in ipairs(list) do
      if type(it) == "string" then it = { sql = it } end
      local args = it.args or {}
      items[i] = { sql = it.sql, args = args, weight = it.weight or 1,
                   shown = sqltext.format(it.sql, { n = #args, table.unpack(args) }) }
      total = total + items[i].weight
   end
   if self.planning or parallel == 1 then
      local done = 0
      for _, it in ipairs(items) do
         self:sql(it.sql, table.unpack(it.args))
         done = done + it.weight
         self:progress(done, total, opts.label, opts)
      end
      return true
   end
   local run = self._run
   local spec, password = run.target:connect_spec(run.values, run.secrets)
   if not spec then fail(self, "cannot connect to the server: %s", password) end
   local json = require "myseal.json"
   local dir, err = sys.tmpdir("myseal-sql")
   if not dir then fail(self, "%s", err) end
   local running, count, nexti, done = {}, 0, 1, 0
   local failure, stopping = nil, false
   local env = { MYSEAL_WORKER_PASSWORD = password }
   local exe = require("myseal.host").exe
   self:progress(0, total, opts.label, opts)
   while (not stopping and nexti <= #items) or count > 0 do
      while not stopping and nexti <= #items and count < parallel do
         if sys.interrupted() then
            stopping = "interrupted"
            break
         end
         local it = items[nexti]
         self:_effect{ kind = "sql", sql = it.shown, summary = "sql: " .. it.shown }
         local job = ("%s/%d.json"):format(dir, nexti)
         assert(sys.write_file(job, json.encode{ spec = spec, sql = it.sql, args = it.args },
            { mode = tonumber("600", 8) }))
         env.MYSEAL_WORKER_JOB = job
         local pid, serr = sys.spawn{ exe, "lua", "-e", "require('myseal.engine.worker').main()", env = env,
                                      log = job .. ".log" }
         if not pid then
            failure, stopping = serr, "failed"
            break
         end
         running[pid] = { item = it, job = job }
         count = count + 1
         nexti = nexti + 1
      end
      sys.sleep(0.02)
      for pid, r in pairs(running) do
         if not sys.alive(pid) then
            running[pid] = nil
            count = count - 1
            local out = sys.read_file(r.job .. ".out")
            local res = out and json.decode(out)
            if not res then
               local log = sys.read_file(r.job .. ".log") or ""
               res = { ok = false, message = "the worker died: " .. log:gsub("%s+$", "") }
            end
            if res.ok then
               done = done + r.item.weight
               self:progress(done, total, opts.label, opts)
            elseif not failure then
               failure = ("SQL failed: %s: %s (%s)"):format(r.item.shown, res.message, tostring(res.errno))
               stopping = "failed"
            end
         end
      end
      if not stopping and sys.interrupted() then stopping = "interrupted" end
   end
   sys.rmtree(dir)
   if failure then fail(self, "%s", failure) end
   if stopping == "interrupted" then error(M.Interrupted, 0) end
   return true
end

--- The content of a file as this run sees it (in plan mode: as earlier planned effects left it),
-- or nil when it does not exist.
-- @param path file
-- @return content | nil, message
function methods:read_file(path)
   local o = self._overlay[path]
   if o == false then return nil, path .. ": No such file or directory (planned removal)" end
   if o then return o end
   return sys.read_file(path)
end

--- Does the file exist (as this run sees it)?
-- @param path file
-- @return boolean
function methods:exists(path)
   local o = self._overlay[path]
   if o ~= nil then return o ~= false end
   return sys.stat(path) ~= nil
end

local function octal(mode) return mode and ("%04o"):format(mode) or nil end

local function backup_name(path)
   local stamp = os.date("%Y%m%d-%H%M%S")
   for i = 0, 99 do
      local name = i == 0 and ("%s.%s.bak"):format(path, stamp) or ("%s.%s-%d.bak"):format(path, stamp, i)
      if not sys.stat(name, { link = true }) then return name end
   end
   return nil
end

-- Copy the file aside before it changes; returns the backup path.
local function backup(self, path)
   local name = backup_name(path)
   if not name then fail(self, "cannot back up %s: too many backups this second", path) end
   local ok, err = sys.copy_file(path, name)
   if not ok then fail(self, "cannot back up %s: %s", path, err) end
   return name
end

local function is_text(s)
   return not s:find("\0", 1, true) and utf8.len(s) ~= nil
end

local function remember(self, fx)
   local run = self._run
   run.since_restart[#run.since_restart + 1] = fx
   run.files[#run.files + 1] = fx
end

local function owner_differs(st, opts)
   if not st then return false end
   return (opts.owner and st.user ~= opts.owner and st.uid ~= opts.owner)
       or (opts.group and st.group ~= opts.group and st.gid ~= opts.group)
end

--- Write a file (atomically; the old one is backed up first and restored by rollback).
-- Unchanged content, mode and owner: nothing happens.
-- @param path file
-- @param data content
-- @param opts `{ mode = 0600, owner = "mysql", group = "mysql", secret = true (never show content) }`;
--   a file whose mode gives no access to group and others is never shown either
-- @return true when the file changes (or would, in plan mode), false when it was already so
function methods:write_file(path, data, opts)
   opts = opts or {}
   if type(path) ~= "string" or type(data) ~= "string" then
      error("ctx:write_file(path, data [, opts]): path and data must be strings", 2)
   end
   self:_boundary()
   local old = self:read_file(path)
   local st = self._overlay[path] == nil and sys.stat(path) or nil
   local mode_differs = opts.mode and st and st.mode ~= opts.mode
   if old == data and not mode_differs and not owner_differs(st, opts) then return false end
   local mode = opts.mode or (st and st.mode)
   local hidden = opts.secret or (mode and mode & tonumber("077", 8) == 0) or not is_text(data)
      or (old and not is_text(old))
   local what = old and (old == data and "change the mode or owner of " or "write ") or "create "
   local summary = what .. path
   local attrs = {}
   if opts.mode then attrs[#attrs + 1] = octal(opts.mode) end
   if opts.owner or opts.group then attrs[#attrs + 1] = (opts.owner or "") .. (opts.group and (":" .. opts.group) or "") end
   if #attrs > 0 then summary = summary .. " (" .. table.concat(attrs, ", ") .. ")" end
   local detail
   if hidden and old ~= data then
      detail = ("(%d bytes, content not shown)"):format(#data)
   elseif old ~= data then
      detail = cnf.diff(old or "", data, old and path or "/dev/null", path)
   end
   if self.planning then
      self:_effect{ kind = "file", path = path, mode = octal(opts.mode), summary = summary, detail = detail }
      self._overlay[path] = data
      return true
   end
   local saved = old and backup(self, path) or nil
   local fx = { kind = "file", path = path, existed = old ~= nil, backup = saved, mode = octal(opts.mode),
                summary = summary, detail = detail }
   self:_effect(fx)
   local ok, err = sys.write_file(path, data, { mode = opts.mode })
   if not ok then fail(self, "cannot write %s: %s", path, err) end
   if opts.owner or opts.group then
      ok, err = sys.chown(path, opts.owner, opts.group)
      if not ok then fail(self, "cannot change the owner of %s: %s", path, err) end
   end
   remember(self, fx)
   return true
end

--- Remove a file (backed up first; rollback puts it back). A missing file: nothing happens.
-- @param path file
-- @return true when removed (or would be), false when it was not there
function methods:remove_file(path)
   self:_boundary()
   if not self:exists(path) then return false end
   if self.planning then
      self:_effect{ kind = "remove", path = path, summary = "remove " .. path }
      self._overlay[path] = false
      return true
   end
   local fx = { kind = "remove", path = path, backup = backup(self, path), existed = true,
                summary = "remove " .. path }
   self:_effect(fx)
   local ok, err = os.remove(path)
   if not ok then fail(self, "cannot remove %s: %s", path, err) end
   remember(self, fx)
   return true
end

--- Create a directory and its missing parents (rollback removes the ones it created, if empty).
-- @param path directory
-- @param opts `{ mode = 0750, owner = , group = }`
-- @return true when something changes, false when it was already so
function methods:mkdir(path, opts)
   opts = opts or {}
   self:_boundary()
   local st = sys.stat(path)
   if st and st.type ~= "directory" then fail(self, "%s exists and is not a directory", path) end
   if st and (not opts.mode or st.mode == opts.mode) and not owner_differs(st, opts) then return false end
   local created = {}
   if not st then
      local p = path
      while p and p ~= "" and not sys.stat(p) do
         table.insert(created, 1, p)
         p = p:match("^(.+)/[^/]+$")
      end
   end
   local summary = (st and "change the mode or owner of directory " or "create directory ") .. path
   if opts.mode then summary = summary .. " (" .. octal(opts.mode) .. ")" end
   local fx = { kind = "mkdir", path = path, created = created, summary = summary, mode = octal(opts.mode) }
   self:_effect(fx)
   if self.planning then return true end
   local ok, err = sys.mkdir(path, opts.mode)
   if ok and opts.mode then ok, err = sys.chmod(path, opts.mode) end
   if ok and (opts.owner or opts.group) then ok, err = sys.chown(path, opts.owner, opts.group) end
   if not ok then fail(self, "cannot create directory %s: %s", path, err) end
   remember(self, fx)
   return true
end

--- Edit a MySQL option file through the cnf module: `fn(doc)` changes the document
-- (`doc:set(section, name, value)`, `doc:unset`, ...); the file is written only when its text
-- changes, every other byte kept. Without a path: the server's option file ([server] cnf).
-- @param path option file (or nil)
-- @param fn function(doc)
-- @return true when the file changes (or would), false when it already said so
function methods:edit_cnf(path, fn)
   if type(path) == "function" then path, fn = nil, path end
   path = path or self.params.server.cnf
   if not path then fail(self, "no option file to edit: set cnf in [server] of the site profile") end
   if type(fn) ~= "function" then error("ctx:edit_cnf([path,] fn): fn must be a function", 2) end
   local text = self:read_file(path) or ""
   local doc, err = cnf.parse(text, path)
   if not doc then fail(self, "%s", err) end
   fn(doc)
   local new = doc:text()
   if new == text then return false end
   return self:write_file(path, new)
end

--- Set (or remove) one attribute of one XML element, keeping every other byte of the file:
-- `ctx:edit_xml(path, { element = "Resource", where = { name = "jdbc/app" }, attribute = "url",
-- value = "..." | function(old) return new end })`. A value of nil removes the attribute.
-- @param path XML file
-- @param spec selector and new value (see myseal.xmledit)
-- @return true when the file changes (or would), false when it already had that value
function methods:edit_xml(path, spec)
   local text, err = self:read_file(path)
   if not text then fail(self, "%s", err) end
   local new
   new, err = xmledit.set(text, spec, path)
   if not new then fail(self, "%s", err) end
   if new == text then return false end
   return self:write_file(path, new)
end

--- Run a program (an argument vector, no shell). In plan mode it is shown, not run.
-- A secret may go in `stdin` or `env`, never in the arguments.
-- @param argv `{ "prog", "arg", ..., stdin = , env = , cwd = , timeout = , ok = function(result) }`;
--   by default an exit status other than 0 fails the step
-- @return result `{ status, stdout, stderr, ok }` (nil in plan mode)
function methods:run(argv)
   if type(argv) ~= "table" or type(argv[1]) ~= "string" then
      error("ctx:run{ \"program\", args... }: an argument vector is needed", 2)
   end
   local secrets = self._run.secrets
   for i, a in ipairs(argv) do
      if secrets:found_in(tostring(a)) then
         error(("ctx:run: argument %d holds a secret; pass secrets through stdin or env"):format(i), 2)
      end
   end
   self:_boundary()
   local words = {}
   for i, a in ipairs(argv) do
      a = tostring(a)
      words[i] = a:find("[%s'\"\\]") and ("'" .. a:gsub("'", "'\\''") .. "'") or a
   end
   local shown = table.concat(words, " ")
   self:_effect{ kind = "run", argv = { table.unpack(argv) }, summary = "run: " .. shown }
   if self.planning then return nil end
   local spec = {}
   for k, v in pairs(argv) do
      if k ~= "ok" then spec[k] = v end
   end
   local r, err = sys.run(spec)
   if not r then fail(self, "%s", err) end
   local ok = argv.ok and argv.ok(r) or (argv.ok == nil and r.ok)
   if not ok then
      local out = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
      fail(self, "'%s' failed (%s)%s", shown,
         r.status and ("exit status " .. r.status) or ("signal " .. tostring(r.signal)),
         out ~= "" and (":\n" .. out) or "")
   end
   return r
end

local function restore_file(self, fx)
   local run = self._run
   if fx.kind == "mkdir" then
      for i = #fx.created, 1, -1 do os.remove(fx.created[i]) end   -- only empty ones go
      run.emit{ event = "restore", kind = fx.kind, path = fx.path, journal_only = true }
      return true
   end
   if fx.backup then
      local data, err = sys.read_file(fx.backup)
      if not data then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
      local st = sys.stat(fx.backup)
      local ok
      ok, err = sys.write_file(fx.path, data, { mode = st and st.mode })
      if ok and st then sys.chown(fx.path, st.uid, st.gid) end
      if not ok then return nil, ("cannot restore %s: %s"):format(fx.path, err) end
   elseif not fx.existed then
      local ok, err = os.remove(fx.path)
      if not ok and sys.stat(fx.path) then return nil, ("cannot remove %s: %s"):format(fx.path, err) end
   end
   run.emit{ event = "restore", kind = fx.kind, path = fx.path, backup = fx.backup, journal_only = true }
   return true
end
M.restore_file = function(ctx, fx) return restore_file(ctx, fx) end

--- Restart the server (the site's command, systemd unit or Windows service, or the sandbox's
-- restart) and reconnect. When the server does not come back, every file changed since the
-- last good restart is restored, the server is restarted again, and the step fails with the
-- tail of the server's error log.
-- @return true
function methods:restart_server()
   local run = self._run
   self:_boundary()
   local how, err = run.target:restart_how(run.values)
   if not how then fail(self, "%s", err) end
   self:_effect{ kind = "restart", how = how, summary = "restart the server: " .. how }
   if self.planning then return true end
   local log_hint
   if run.conn then
      log_hint = self:fact("variable", "log_error")
      local datadir = self:fact("variable", "datadir")
      if log_hint and not log_hint:match("^/") and not log_hint:match("^%a:") and datadir then
         log_hint = datadir:gsub("/?$", "/") .. log_hint:gsub("^%./", "")
      end
      run.conn:close()
      run.conn = nil
   end
   local ok, rerr = run.target:restart(run.values, run.secrets, log_hint)
   if ok then
      run.emit{ event = "restarted", journal_only = true }
      run.since_restart = {}
      return true
   end
   -- the server did not come back: put the old files back and start it again
   local restored, problems = {}, {}
   for i = #run.since_restart, 1, -1 do
      local fx = run.since_restart[i]
      local rok, perr = restore_file(self, fx)
      if rok then restored[#restored + 1] = fx.path else problems[#problems + 1] = perr end
      if fx.step then run.reverted[fx.step] = true end
   end
   run.since_restart = {}
   local again, aerr = run.target:restart(run.values, run.secrets, log_hint)
   local msg = ("the server did not restart: %s"):format(rerr)
   if #restored > 0 then
      msg = msg .. ("\nrestored %s"):format(table.concat(restored, ", "))
   end
   if #problems > 0 then msg = msg .. "\n" .. table.concat(problems, "\n") end
   if again then
      run.emit{ event = "restarted", journal_only = true }
      msg = msg .. "\nthe server is running again with its previous configuration"
   else
      msg = msg .. ("\nand it did not start with the previous configuration either: %s"):format(aerr)
   end
   fail(self, "%s", msg)
end

--- Wait until `fn()` returns true, showing progress when it also returns (done, total).
-- In plan mode it is shown, not waited for.
-- @param label what is being waited for
-- @param fn function() -> finished, done, total
-- @param opts `{ timeout = seconds (default 3600), interval = seconds (default 1), unit = "bytes" }`
-- @return true
function methods:wait(label, fn, opts)
   opts = opts or {}
   self:_boundary()
   self:_effect{ kind = "wait", label = label, summary = "wait: " .. label }
   if self.planning then return true end
   local deadline = sys.clock() + (opts.timeout or 3600)
   while true do
      local finished, done, total = fn()
      if done and total then self:progress(done, total, label, opts) end
      if finished then return true end
      if sys.clock() > deadline then fail(self, "gave up waiting after %d s: %s", opts.timeout or 3600, label) end
      if sys.interrupted() then error(M.Interrupted, 0) end
      sys.sleep(opts.interval or 1)
   end
end

--- Report progress of long work: a bar with ETA on a terminal, events in --json.
-- @param done units done
-- @param total units in all
-- @param label what the units are ("tables")
-- @param opts `{ unit = "bytes" }` to show byte sizes
function methods:progress(done, total, label, opts)
   if self.planning then return end
   local run = self._run
   local key = tostring(run.step) .. "\0" .. tostring(label)
   local now = sys.clock()
   local started = run.progress_start[key]
   if not started or done == 0 then
      started = { t = now, done = done }
      run.progress_start[key] = started
   end
   local eta = require("myseal.engine.report").eta(done - started.done, total - started.done, now - started.t)
   self:_emit{ event = "progress", done = done, total = total, label = label,
               unit = opts and opts.unit, eta = eta and math.floor(eta + 0.5) }
end

local function message(self, fmt, ...)
   local msg = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
   return self._run.secrets:redact(msg)
end

--- A note in the output and the journal (string.format style).
-- @param fmt format
function methods:log(fmt, ...)
   self:_emit{ event = "log", level = "info", message = message(self, fmt, ...) }
end

--- A warning in the output and the journal (string.format style).
-- @param fmt format
function methods:warn(fmt, ...)
   self:_emit{ event = "log", level = "warn", message = message(self, fmt, ...) }
end

--- A secret: the value of a parameter declared with type "secret", from the source the
-- profile names (env:VAR, file:PATH, prompt), else $MYSEAL_SECRET_<SECTION>_<KEY>, else a
-- prompt on the terminal. It is masked in everything myseal prints or journals.
-- @param name "section.key"
-- @return value
function methods:secret(name)
   local decl = self._run.decls[name]
   if not decl or decl.type ~= "secret" then
      error(("ctx:secret: no secret parameter %s is declared"):format(tostring(name)), 2)
   end
   local v, err = self._run.secrets:get(name, self._run.values[name])
   if not v then fail(self, "%s", err) end
   return v
end

--- Mask a text like a secret from now on, in everything myseal prints or journals: for a form of
-- a secret that a step makes itself (quoted for a shell, escaped for a properties file), which the
-- engine cannot know. Its arguments in ctx:run are refused like a secret's.
-- @param text string (empty or non-strings are ignored)
function methods:mask(text)
   self._run.secrets:add(text)
end

--- Keep a value in the journal (checksums, key ids), visible to later steps and to a resumed
-- run through ctx:recorded(key). Secrets in it are masked.
-- @param key string
-- @param value string, number, boolean or table of those
function methods:record(key, value)
   local v = self._run.secrets:redact_deep(value)
   self._run.records[key] = v
   self:_emit{ event = "record", key = key, value = v, journal_only = true }
end

--- A value kept by ctx:record in this run (or the run it resumes), or nil.
-- @param key string
-- @return value
function methods:recorded(key)
   return self._run.records[key]
end

return M
