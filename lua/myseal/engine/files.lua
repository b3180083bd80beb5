--- ctx's file effects: reading files as the run sees them (in plan mode, as earlier planned
-- effects left them: the plan overlay), writing, removing, directories, option files and XML.
-- Every file is backed up (sys.backup) before it changes and journaled before it is touched,
-- so rollback (engine/rollback.lua) can put it back.
-- @module myseal.engine.files
local sys = require "sys"
local cnf = require "cnf"
local xmledit = require "myseal.xmledit"
local guard = require "myseal.engine.guard"
local fault = require "myseal.engine.fault"
local count = require("myseal.text").count

local OCTAL_600 = tonumber("600", 8)

--- How many backups of one file are kept; older ones are removed, with a message.
local KEEP_BACKUPS = 10

local methods = {}

local function octal(mode) return mode and ("%04o"):format(mode) or nil end

local function is_text(s)
   return not s:find("\0", 1, true) and utf8.len(s) ~= nil
end

local function owner_differs(st, opts)
   if not st then return false end
   return (opts.owner and st.user ~= opts.owner and st.uid ~= opts.owner)
       or (opts.group and st.group ~= opts.group and st.gid ~= opts.group)
end

-- Give a file or directory the mode and owner `opts` ask for: true | nil, message.
local function set_attrs(path, opts)
   local ok, err = true, nil
   if opts.mode then ok, err = sys.chmod(path, opts.mode) end
   if ok and (opts.owner or opts.group) then ok, err = sys.chown(path, opts.owner, opts.group) end
   return ok, err
end

-- The effect is done: remembered for the automatic revert of a restart that fails.
local function remember(self, fx)
   local run = self._run
   run.since_restart[#run.since_restart + 1] = fx
end

-- The backups of `path`, oldest first.
local function backups_of(path)
   local dir, base = path:match("^(.*)/([^/]+)$")
   if not dir then return {} end
   local out = {}
   for _, n in ipairs(sys.dir(dir) or {}) do
      if n:sub(1, #base + 1) == base .. "." and n:match("^%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d[%-%d]*%.bak$", #base + 2) then
         out[#out + 1] = dir .. "/" .. n
      end
   end
   table.sort(out)
   return out
end

-- Copy the file aside before it changes: the copy is 0600 (a backup of context.xml holds a
-- password), older copies beyond KEEP_BACKUPS go. Returns the backup path.
local function backup(self, path)
   local name, err = guard.allow(function()
      local b, e = sys.backup(path)
      if b then sys.chmod(b, OCTAL_600) end
      return b, e
   end)
   if not name then self:fail("%s", err) end
   local all = backups_of(path)
   local gone = {}
   for i = 1, #all - KEEP_BACKUPS do
      if guard.allow(os.remove, all[i]) then gone[#gone + 1] = all[i] end
   end
   if #gone > 0 then
      self:log("removed %s of %s, keeping the %d newest: %s", count(#gone, "old backup"),
         path, KEEP_BACKUPS, table.concat(gone, ", "))
   end
   return name
end

-- What restoring needs to know of a file before it changes: its mode and owner.
local function old_attrs(fx, st)
   if st then fx.old_mode, fx.old_uid, fx.old_gid = octal(st.mode), st.uid, st.gid end
   return fx
end

--- The content of a file as this run sees it (in plan mode: as earlier planned effects left it),
-- or nil when it does not exist.
-- @param path file
-- @return content | nil, message
function methods:read_file(path)
   local o = self._overlay[path]
   if o == false then return nil, path .. ": No such file or directory (planned removal)" end
   if type(o) == "string" then return o end
   return sys.read_file(path)
end

--- Does the file (or directory) exist, as this run sees it?
-- @param path file
-- @return boolean
function methods:exists(path)
   local o = self._overlay[path]
   if o ~= nil then return o ~= false end
   return sys.stat(path) ~= nil
end

--- Write a file (atomically; the old one is backed up first and restored by rollback).
-- Unchanged content, mode and owner: nothing happens.
-- @param path file
-- @param data content
-- @param opts `{ mode = 0600, owner = "mysql", group = "mysql", secret = true (never show content),
--   key_material = true (keys the server may encrypt with: no revert, rollback or undo ever removes
--   or overwrites it; rollback moves it aside), keep = "why" (the automatic revert of a failed restart
--   leaves this change in place, e.g. the keyring's options: the server may have used them) }`;
--   a file whose mode gives no access to group and others is never shown either
-- @return true when the file changes (or would, in plan mode), false when it was already so
function methods:write_file(path, data, opts)
   opts = opts or {}
   if type(path) ~= "string" or type(data) ~= "string" then
      error("ctx:write_file(path, data [, opts]): path and data must be strings", 2)
   end
   self:_boundary()
   local old, rerr = self:read_file(path)
   local st = self._overlay[path] == nil and sys.stat(path) or nil
   -- there but unreadable (a directory, no permission): not a file to create, nor one to lose unbacked
   if old == nil and st then self:fail("%s", rerr) end
   local mode_differs = opts.mode and st and st.mode ~= opts.mode
   if old == data and not mode_differs and not owner_differs(st, opts) then return false end
   local mode = opts.mode or (st and st.mode)
   local hidden = opts.secret or (mode and mode & tonumber("077", 8) == 0) or not is_text(data)
      or (old and not is_text(old))
   local what = old and (old == data and "change the mode or owner of " or "write ") or "create "
   local summary = what .. path
   local attrs = {}
   if opts.mode then attrs[#attrs + 1] = octal(opts.mode) end
   if opts.owner or opts.group then
      attrs[#attrs + 1] = (opts.owner or "") .. (opts.group and (":" .. opts.group) or "")
   end
   if #attrs > 0 then summary = summary .. " (" .. table.concat(attrs, ", ") .. ")" end
   local detail
   if hidden and old ~= data then
      detail = ("(%s, content not shown)"):format(count(#data, "byte"))
   elseif old ~= data then
      detail = cnf.diff(old or "", data, old and path or "/dev/null", path)
   end
   if self.planning then
      self:_effect{ kind = "file", path = path, mode = octal(opts.mode), summary = summary, detail = detail }
      self._overlay[path] = data
      self._run.planned_changes = (self._run.planned_changes or 0) + 1
      return true
   end
   local attrs_only = old == data   -- only the mode or owner: no copy of the content anywhere
   local fx = old_attrs({ kind = "file", path = path, existed = old ~= nil, attrs_only = attrs_only or nil,
                          backup = not attrs_only and old and backup(self, path) or nil, mode = octal(opts.mode),
                          summary = summary, detail = detail, key_material = opts.key_material or nil,
                          keep = opts.keep }, st)
   self:_effect(fx)
   if attrs_only then
      local ok, err = guard.allow(set_attrs, path, opts)
      if not ok then self:fail("cannot change the mode or owner of %s: %s", path, err) end
   else
      local ok, err = guard.allow(sys.write_file, path, data, { mode = opts.mode })
      if not ok then self:fail("cannot write %s: %s", path, err) end
      fault.point("file/chown")
      if opts.owner or opts.group then
         ok, err = guard.allow(sys.chown, path, opts.owner, opts.group)
         if not ok then self:fail("cannot change the owner of %s: %s", path, err) end
      end
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
   local fx = old_attrs({ kind = "remove", path = path, backup = backup(self, path), existed = true,
                          summary = "remove " .. path }, sys.stat(path))
   self:_effect(fx)
   local ok, err = guard.allow(os.remove, path)
   if not ok then self:fail("cannot remove %s: %s", path, err) end
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
   if st and st.type ~= "directory" then self:fail("%s exists and is not a directory", path) end
   if st and (not opts.mode or st.mode == opts.mode) and not owner_differs(st, opts) then return false end
   if not st and self._overlay[path] == "dir" then return false end   -- planned by an earlier step
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
   if self.planning then
      for _, p in ipairs(created) do self._overlay[p] = "dir" end
      return true
   end
   local ok, err = guard.allow(function()
      local r, e = sys.mkdir(path, opts.mode)
      if r then r, e = set_attrs(path, opts) end
      return r, e
   end)
   if not ok then self:fail("cannot create directory %s: %s", path, err) end
   remember(self, fx)
   return true
end

--- Edit a MySQL option file through the cnf module: `fn(doc)` changes the document
-- (`doc:set(section, name, value)`, `doc:unset`, ...); the file is written only when its text
-- changes, every other byte kept. Without a path: the server's option file ([server] cnf).
-- A file the server could not read (a syntax error) is bad input: exit status 2, with its line.
-- @param path option file (or nil)
-- @param fn function(doc)
-- @param opts optional ctx:write_file options (`keep`)
-- @return true when the file changes (or would), false when it already said so
function methods:edit_cnf(path, fn, opts)
   if type(path) == "function" then path, fn = nil, path end
   path = path or self.params.server.cnf
   if not path then self:fail("no option file to edit: set cnf in [server] of the site profile") end
   if type(fn) ~= "function" then error("ctx:edit_cnf([path,] fn): fn must be a function", 2) end
   local text, rerr = self:read_file(path)
   if not text and self:exists(path) then self:fail("%s", rerr) end   -- only a missing file is an empty one
   text = text or ""
   local doc, err = cnf.parse(text, path)
   if not doc then self:reject("%s", err) end
   fn(doc)
   local new = doc:text()
   if new == text then return false end
   return self:write_file(path, new, opts)
end

--- Set (or remove) one attribute of one XML element, keeping every other byte of the file:
-- `ctx:edit_xml(path, { element = "Resource", where = { name = "jdbc/app" }, attribute = "url",
-- value = "..." | function(old) return new end })`. A value of nil removes the attribute.
-- @param path XML file
-- @param spec selector and new value (see myseal.xmledit)
-- @return true when the file changes (or would), false when it already had that value
function methods:edit_xml(path, spec)
   local text, err = self:read_file(path)
   if not text then self:fail("%s", err) end
   local new
   new, err = xmledit.set(text, spec, path)
   if not new then self:fail("%s", err) end
   if new == text then return false end
   return self:write_file(path, new)
end

return methods
