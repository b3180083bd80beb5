--- The context a step gets: parameters, the server (dialect, facts, read-only queries), notes,
-- records and secrets; and the effect functions, the only way a step changes anything. In plan
-- mode effects are shown and not done; in run mode they are journaled, then done. Effects raise
-- when they fail: the engine reports the runbook, the step and the line.
--
-- The effect functions live by concern, each in its own module: engine/files.lua (files and
-- option files, with backups and the plan overlay), engine/server.lua (SQL, programs, the
-- server's restart), engine/pool.lua (many statements in parallel), engine/progress.lua
-- (progress and waiting). docs/architecture.md says who calls whom.
-- @module myseal.engine.ctx
local sys = require "sys"
local sqltext = require "myseal.sqltext"
local dialect = require "myseal.dialect"
local guard = require "myseal.engine.guard"

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

--- ctx.mode: "plan" (show what run would do), "run", "rollback", or "check" (myseal check: like
-- plan, nothing changes, but verification steps run). ctx.planning is true in plan and check.

--- A new context for one run. Called by the engine.
-- @param run the engine's run state: `{ mode, runbook, decls, values, secrets, target, emit, journal,
--   records, since_restart }`
-- @return ctx
function M.new(run)
   local params = require "myseal.engine.params"
   local host, port = run.target:address(run.values)
   return setmetatable({
      params = params.view(run.decls, run.values),
      mode = run.mode,
      planning = run.mode == "plan" or run.mode == "check",
      runbook = run.runbook.name,
      target = { name = run.target.label, host = host, port = port },
      _run = run,
      _overlay = {},   -- plan mode: files as planned (path -> content | false | "dir")
      _transient = false,   -- set around changes a step undoes itself (ctx:_effect)
   }, Ctx)
end

--- Add a concern's methods (files, server, pool, progress) to every context.
-- @param list table of name -> function(self, ...)
function M.extend(list)
   for name, fn in pairs(list) do
      if methods[name] then error("ctx." .. name .. " is defined twice", 2) end
      methods[name] = fn
   end
end

-- A message of ctx:fail, ctx:reject, ctx:log and ctx:warn (string.format style), secrets masked.
local function message(self, fmt, ...)
   local msg = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
   return self._run.secrets:redact(msg)
end

--- Fail the step with a message (string.format style): exit status 1.
-- @param fmt format
function methods:fail(fmt, ...)
   error(setmetatable({ message = message(self, fmt, ...) }, M.Failure), 0)
end

--- Fail the step because of bad input (a file that cannot be read as what it should be: an
-- option file, a PEM file, a keystore), naming the file and line: exit status 2.
-- @param fmt format
function methods:reject(fmt, ...)
   error(setmetatable({ message = message(self, fmt, ...), bad_input = true }, M.Failure), 0)
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

-- Stop the step here because of Ctrl-C (for waits and pools that notice it themselves).
function methods:_interrupt()
   error(M.Interrupted, 0)
end

-- Show (plan) or journal-and-show (run) one effect. `ev` carries what rollback needs.
function methods:_effect(ev)
   self._run.effects = self._run.effects + 1
   ev.event = "effect"
   -- a change undone before the step ends (a temporary account): rollback has nothing to put back
   if self._transient then ev.transient = true end
   self:_emit(ev)
end

-- The run's connection to the server (connecting, or reconnecting after a restart, on first
-- use). Not for runbooks: they read with ctx:query and change with ctx:sql.
function methods:_connection()
   local run = self._run
   if run.conn then return run.conn end
   if run.target:read_only() then
      self:fail("%s has no connection: this step needs a live server (use a fact: docs/runbooks.md)", run.target.label)
   end
   local conn, err = guard.allow(run.target.connect, run.target, run.values, run.secrets)
   if not conn then self:fail("cannot connect to the server: %s", err) end
   run.conn = conn
   return conn
end

-- A connection of a step's own, for reading and looking (verification): no statement that
-- changes the server goes through it.
local Reader = {}
Reader.__index = Reader
Reader.__name = "myseal.ReadConnection"

local READS = { select = true, show = true, with = true, explain = true, describe = true, desc = true,
                checksum = true }

-- The first keyword of a statement, lower-cased, past blanks, comments and parentheses.
local function first_word(sql)
   local s = sql
   while true do
      local before = s
      s = s:gsub("^[%s(]+", ""):gsub("^/%*.-%*/", ""):gsub("^%-%-[^\n]*", ""):gsub("^#[^\n]*", "")
      if s == before then break end
   end
   return (s:match("^(%a+)") or ""):lower()
end

local function check_read(sql, who)
   if not READS[first_word(sql)] then
      error(("%s is for reading (SELECT, SHOW, ...): change the server with ctx:sql, which plan shows: %s")
         :format(who, sql:gsub("%s+", " "):sub(1, 80)), 3)
   end
end

function Reader:query(sql, ...)
   check_read(sql, "a verification connection")
   return self.conn:query(sql, ...)
end
function Reader:tls() return self.conn:tls() end
function Reader:server() return self.conn:server() end
function Reader:close() return self.conn:close() end
Reader.__close = Reader.close

--- A new connection of its own to the target's server, with `opts` merged over the target's
-- connection options (mysql.connect's fields: `host`, `port`, `user`, `password`, `tls`, ...), for
-- reading and looking (verification: "does a client with this certificate get in?"): it offers
-- `:query` (reads only), `:tls()`, `:server()` and `:close()`, and is the caller's to close. A
-- failure is returned, not raised. With `alone = true` only `opts` count, none of the target's
-- (an application's account at the address its JDBC URL names).
-- @param opts table or nil
-- @return connection | nil, message, errno
function methods:connect(opts)
   local run = self._run
   local conn, err, errno = guard.allow(run.target.connect, run.target, run.values, run.secrets, opts)
   if not conn then return nil, err, errno end
   return setmetatable({ conn = conn }, Reader)
end

--- How a client program logs in to the target's server as myseal does, for a tool that must (a
-- backup program): `{ socket | host, port, user, password }`. The password is a secret: give it to
-- the program in a 0600 option file, never as an argument.
-- @return options | nil, message
function methods:client_options()
   local run = self._run
   local spec, password = run.target:connect_spec(run.values, run.secrets)
   if not spec then return nil, password end
   return guard.allow(require("myseal.engine.target").client_options, spec, password)
end

--- The server: `{ flavor, version, major, minor, patch, described }`.
function methods:_server()
   local run = self._run
   if not run.server_info then
      run.server_info = run.target:server_info(function() return self:_connection() end)
   end
   return run.server_info
end

function methods:_dialect()
   local run = self._run
   if not run.dialect then
      local d, err = dialect.for_server(self:_server(), run.runbook.dialect)
      if not d then self:fail("%s", err) end
      run.dialect = d
   end
   return run.dialect
end

--- A read-only query (never an effect: runs in plan mode too). Raises on an SQL error, and on
-- a statement that is not a read (SELECT, SHOW, WITH, EXPLAIN, DESCRIBE, CHECKSUM).
-- @param sql statement with `?` placeholders
-- @return rows, meta
function methods:query(sql, ...)
   check_read(sql, "ctx:query")
   local rows, meta, errno = self:_connection():query(sql, ...)
   if not rows then
      self:fail("query failed: %s: %s (%s)", sqltext.format(sql, table.pack(...)), meta, tostring(errno))
   end
   return rows, meta
end

--- Ask the dialect a read-only question (a fact): live servers answer with SQL, described
-- servers from their description. `ctx:fact("variable", "require_secure_transport")`.
-- @param name fact name
-- @return the answer
function methods:fact(name, ...)
   local r = table.pack(self._run.target:fact(self.dialect, self, name, ...))
   if not r[1] then self:fail("%s", r[2]) end
   return table.unpack(r, 2, r.n)
end

--- Where a runbook puts `what` ("keyring", "tls") on this target when the profile does not
-- say, or nil for the dialect's default (a sandbox keeps them beside its datadir).
-- @param what "keyring" | "tls"
-- @return path | nil
function methods:default_dir(what)
   return self._run.target:default_dir(what, self._run.values)
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
-- profile names (env:VAR, file:PATH, prompt), else --secrets-stdin, else
-- $MYSEAL_SECRET_<SECTION>_<KEY>, else a prompt on the terminal. It is masked in everything myseal
-- prints or journals. A secret not given, or whose source is not there, is bad input (exit 2).
-- @param name "section.key"
-- @return value
function methods:secret(name)
   local decl = self._run.decls[name]
   if not decl or decl.type ~= "secret" then
      error(("ctx:secret: no secret parameter %s is declared"):format(tostring(name)), 2)
   end
   local v, err = guard.allow(self._run.secrets.get, self._run.secrets, name, self._run.values[name])
   if not v then self:reject("%s", err) end   -- not given, or its source is not there: bad input
   return v
end

--- Is secret parameter `name` given (a source in the profile or --set, a value on --secrets-stdin or in
-- MYSEAL_SECRET_*), so that ctx:secret reads it without asking? For a secret with a fallback.
-- @param name "section.key"
-- @return boolean
function methods:has_secret(name)
   return self._run.values[name] ~= nil or require("myseal.engine.secrets").offered(name)
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

--- How many changes this plan has shown so far (0 outside a plan): a step of a story that
-- depends on what an earlier part changes can say so instead of judging the server as it is.
-- @return integer
function methods:changes_planned()
   return self.planning and (self._run.planned_changes or 0) or 0
end

--- The values ctx:record kept under `key` in the journals of every run on this target (every
-- runbook, this run included), newest first: `{ value, at, runbook }` (at: the record's time,
-- "YYYY-mm-ddTHH:MM:SSZ"). Empty for a target that keeps no state (a described server).
-- @param key string
-- @return list
function methods:history(key)
   local dir = self._run.target:state_dir()
   local out = {}
   if not dir then return out end
   local journal = require "myseal.engine.journal"
   for _, rb in ipairs(sys.dir(dir .. "/runs") or {}) do
      for _, path in ipairs(journal.list(dir, rb)) do
         for _, ev in ipairs(journal.read(path) or {}) do
            if ev.event == "record" and ev.key == key then
               out[#out + 1] = { value = ev.value, at = ev.at, runbook = rb }
            end
         end
      end
   end
   table.sort(out, function(a, b) return a.at > b.at end)
   return out
end

M.extend(require "myseal.engine.files")
M.extend(require "myseal.engine.server")
M.extend(require "myseal.engine.pool")
M.extend(require "myseal.engine.progress")

return M
