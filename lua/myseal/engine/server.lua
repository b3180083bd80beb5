--- ctx's effects on the server and the machine: SQL statements, programs, and the server's
-- restart (with the automatic revert of engine/rollback.lua when it does not come back).
-- @module myseal.engine.server
local sys = require "sys"
local sqltext = require "myseal.sqltext"
local guard = require "myseal.engine.guard"

local methods = {}

-- One statement as an effect: shown in plan, journaled before it runs.
function methods:_sql_effect(shown)
   self:_effect{ kind = "sql", sql = shown, summary = "sql: " .. shown }
end

--- Run an SQL statement that changes the server. Values are bound (`?`, in DDL and ALTER USER
-- too), never pasted into the text. In plan mode it is shown, not run.
-- @param sql statement with `?` placeholders
-- @return rows, meta (nil in plan mode)
function methods:sql(sql, ...)
   local shown = sqltext.format(sql, table.pack(...))
   self:_boundary()
   self:_sql_effect(shown)
   if self.planning then return nil end
   local rows, meta, errno = self:_connection():query(sql, ...)
   if not rows then self:fail("SQL failed: %s: %s (%s)", shown, meta, tostring(errno)) end
   return rows, meta
end

local function shell_words(argv)
   local words = {}
   for i, a in ipairs(argv) do
      a = tostring(a)
      words[i] = a:find("[%s'\"\\]") and ("'" .. a:gsub("'", "'\\''") .. "'") or a
   end
   return table.concat(words, " ")
end

local function check_argv(self, argv, who)
   if type(argv) ~= "table" or type(argv[1]) ~= "string" then
      error(("%s{ \"program\", args... }: an argument vector is needed"):format(who), 3)
   end
   local secrets = self._run.secrets
   for i, a in ipairs(argv) do
      if secrets:found_in(tostring(a)) then
         error(("%s: argument %d holds a secret; pass secrets through stdin or env"):format(who, i), 3)
      end
   end
end

local function spawn(self, argv, shown, soft, timeout)
   local spec = { timeout = timeout }
   for k, v in pairs(argv) do
      if k ~= "ok" then spec[k] = v end
   end
   local r, err = guard.allow(sys.run, spec)
   if not r and soft then return nil, err end
   if not r then self:fail("%s", err) end
   local ok = argv.ok and argv.ok(r) or (argv.ok == nil and r.ok)
   if not ok then
      local out = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
      self:fail("'%s' failed (%s)%s", shown,
         r.status and ("exit status " .. r.status) or ("signal " .. tostring(r.signal)),
         out ~= "" and (":\n" .. out) or "")
   end
   return r
end

--- Run a program that changes something (an argument vector, no shell). In plan mode it is
-- shown, not run. A secret may go in `stdin` or `env`, never in the arguments.
-- @param argv `{ "prog", "arg", ..., stdin = , env = , cwd = , timeout = , ok = function(result) }`;
--   by default an exit status other than 0 fails the step
-- @return result `{ status, stdout, stderr, ok }` (nil in plan mode)
function methods:run(argv)
   check_argv(self, argv, "ctx:run")
   self:_boundary()
   local shown = shell_words(argv)
   self:_effect{ kind = "run", argv = { table.unpack(argv) }, summary = "run: " .. shown }
   if self.planning then return nil end
   return spawn(self, argv, shown)
end

--- Run a program only to learn something (`hostname -f`, `sc query`, a compiler into myseal's
-- cache): not an effect, so it runs in plan mode too and is not journaled. Never use it for a
-- program that changes the target: that is ctx:run.
-- @param argv as for ctx:run (default timeout 60 s); with `ok`, a program that cannot be started
--   at all is returned as nil, message instead of failing the step
-- @return result `{ status, stdout, stderr, ok }` | nil, message
function methods:command(argv)
   check_argv(self, argv, "ctx:command")
   return spawn(self, argv, shell_words(argv), argv.ok ~= nil, 60)
end

--- Restart the server (the site's command, systemd unit or Windows service, or the sandbox's
-- restart) and reconnect. Before anything stops, every file the new configuration names must be
-- readable by the server's user (else the step fails and nothing is restarted). When the server
-- does not come back, it is brought up again with its previous configuration (key material and
-- the keyring kept: engine/rollback.lua), and the step fails saying what was tried and what the
-- server logged. Ctrl-C stops the restart command: the run is resumable, and --resume first
-- brings the server up.
-- @return true
function methods:restart_server()
   local run = self._run
   self:_boundary()
   local how, err = run.target:restart_how(run.values)
   if not how then self:fail("%s", err) end
   if self.planning then
      -- a restart planned since the last planned file change covers this one (the story's single restart)
      if run.planned_restart == (run.planned_changes or 0) then
         self:log("the restart planned above takes these changes too")
         return true
      end
      run.planned_restart = run.planned_changes or 0
   else
      local problems = require("myseal.options").unreadable(self)
      if #problems > 0 then
         self:fail("the server (running as %s) would not start: %s; nothing was restarted", self.params.server.user,
            table.concat(problems, "; "))
      end
   end
   self:_effect{ kind = "restart", how = how, summary = "restart the server: " .. how }
   if self.planning then return true end
   local log_hint
   if run.conn then
      log_hint = self:fact("variable", "log_error")
      local datadir = self:fact("variable", "datadir")
      if log_hint and log_hint ~= "" and not log_hint:match("^/") and not log_hint:match("^%a:") and datadir then
         log_hint = datadir:gsub("/?$", "/") .. log_hint:gsub("^%./", "")
      end
      run.conn:close()
      run.conn = nil
   end
   local ok, rerr, code = guard.allow(run.target.restart, run.target, run.values, run.secrets, log_hint)
   if ok then
      run.emit{ event = "restarted", journal_only = true }
      run.since_restart = {}
      return true
   end
   if code == "interrupted" then self:_interrupt() end
   local msg = guard.allow(require("myseal.engine.rollback").revert_restart, run, rerr, log_hint)
   self:fail("%s", msg)
end

return methods
