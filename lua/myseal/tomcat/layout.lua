--- How a Tomcat is laid out and started, as objects: each layout (linux, debian, rhel,
-- windows-scripts, windows-service) knows where its files are, where the JVM's options go, how it
-- is restarted and who owns what. The app-tomcat runbook asks the layout and never tests its name.
-- docs/tomcat.md has the facts behind them.
-- @module myseal.tomcat.layout
local sys = require "sys"
local tomcat = require "myseal.tomcat"

local M = {}

local OCTAL_640 = tonumber("640", 8)
local TITLE = ": the JVM trusts the database server's CA (written by myseal; edits here are replaced)"
--- The managed block's markers in shell-like files and in .bat files.
M.SH_BLOCK = { begin = "# BEGIN myseal app-tomcat", finish = "# END myseal app-tomcat", title = TITLE }
M.BAT_BLOCK = { begin = "rem BEGIN myseal app-tomcat", finish = "rem END myseal app-tomcat", title = TITLE }

-- `syntax`: of the file the JVM options go to (sh, env: a systemd EnvironmentFile, or bat);
-- `script`: the extension of Tomcat's own scripts (setenv, startup, shutdown).
local Layout = { syntax = "sh", script = "sh" }
Layout.__index = Layout

local function class(name, fields, parent)
   local c = setmetatable(fields or {}, { __index = parent or Layout })
   c.__index = c
   c.name = name
   return c
end

--- `base` joined with parts by its own separator (a Windows path keeps backslashes).
function M.join(base, ...)
   local sep = base:find("\\", 1, true) and "\\" or "/"
   local p = base:gsub("[/\\]+$", "")
   for _, part in ipairs{ ... } do p = p .. sep .. part end
   return p
end
local join = M.join

function Layout:base() return self.ctx.params.tomcat.catalina_base end

--- CATALINA_HOME: [tomcat] catalina_home, else the layout's default.
function Layout:home()
   return self.ctx.params.tomcat.catalina_home or self:default_home()
end
function Layout:default_home() return self:base() end

--- Files holding a secret: the mode and group they get (none on Windows).
function Layout:secret_file_opts(path)
   local st = sys.stat(path)
   local mode = st and ((st.mode & ~tonumber("007", 8)) | tonumber("040", 8)) or OCTAL_640
   return { mode = mode, group = self.ctx.params.tomcat.group }
end

--- The truststore's owner and mode (none on Windows).
function Layout:truststore_opts()
   local t = self.ctx.params.tomcat
   return { mode = OCTAL_640, owner = t.user, group = t.group }
end

--- The copy of the database's CA that data sources read (MariaDB Connector/J serverSslCert):
-- CATALINA_BASE/conf/db-ca.pem, where Tomcat's user can read it (the original usually sits in a
-- directory only the database server's group may enter).
function Layout:ca_copy_path()
   return join(self:base(), "conf", "db-ca.pem")
end

--- The truststore: [tomcat] truststore, else CATALINA_BASE/conf/db-truststore.p12 (.jks for JKS).
function Layout:truststore_path()
   local t = self.ctx.params.tomcat
   return t.truststore or join(self:base(), "conf", "db-truststore." .. (t.truststore_type == "jks" and "jks" or "p12"))
end

--- An existing store keeps its type (JKS starts with FEEDFEED); a new one has [tomcat] truststore_type.
function Layout:store_type()
   local data = sys.read_file(self:truststore_path())
   if data then return data:sub(1, 4) == "\xFE\xED\xFE\xED" and "jks" or "pkcs12" end
   return self.ctx.params.tomcat.truststore_type
end

--- The file with the JDBC <Resource>s.
function Layout:context_xml()
   return self.ctx.params.tomcat.context_xml or join(self:base(), "conf", "context.xml")
end

--- catalina.properties: Tomcat makes each of its properties a system property at startup.
function Layout:catalina_properties()
   return join(self:base(), "conf", "catalina.properties")
end

--- The directories Tomcat loads driver jars from.
function Layout:lib_dirs()
   local dirs = { join(self:base(), "lib") }
   local home = self:home()
   if home ~= self:base() then dirs[#dirs + 1] = join(home, "lib") end
   return dirs
end

-- setenv.sh / setenv.bat: catalina.sh and catalina.bat read CATALINA_BASE's, else CATALINA_HOME's.
-- Creating one in CATALINA_BASE when CATALINA_HOME has one would hide that one: edit it instead.
function Layout:setenv_path(name)
   local t = self.ctx.params.tomcat
   if t.setenv then return t.setenv end
   local in_base = join(self:base(), "bin", name)
   if self.ctx:exists(in_base) then return in_base end
   local in_home = join(self:home(), "bin", name)
   if in_home ~= in_base and self.ctx:exists(in_home) then return in_home end
   return in_base
end

local LINES = { sh = tomcat.sh_lines, env = tomcat.env_file_lines, bat = tomcat.bat_lines }

--- The files that carry the JVM options: list of `{ path, syntax, markers, lines, eol, opts }`
-- (empty where the options live elsewhere, as for the Windows service).
function Layout:option_files(options, with_password)
   local path = self:options_path()
   local lines, err = LINES[self.syntax](options)
   if not lines then self.ctx:reject("%s: %s", path, err) end
   local bat = self.syntax == "bat"
   return { { path = path, syntax = self.syntax, markers = bat and M.BAT_BLOCK or M.SH_BLOCK, lines = lines,
              eol = bat and "\r\n" or "\n", opts = with_password and self:secret_file_opts(path) or {} } }
end

-- linux: catalina.sh reads setenv.sh; windows-scripts: catalina.bat reads setenv.bat.
function Layout:options_path() return self:setenv_path("setenv." .. self.script) end

--- What restarts Tomcat here, in words (when no restart_command is given).
function Layout:restart_hint()
   local bin = join(self:home(), "bin")
   return ("%s, then %s"):format(join(bin, "shutdown." .. self.script), join(bin, "startup." .. self.script))
end

local Linux = class("linux")

-- debian: the tomcatN package's unit reads /etc/default/tomcatN (a shell-syntax file).
local Debian = class("debian")
function Debian:package() return self:base():match("(tomcat%d*)[/\\]*$") or "tomcat10" end
function Debian:default_home()
   local name = self:base():match("(tomcat%d*)[/\\]*$")
   return name and ("/usr/share/" .. name) or self:base()
end
function Debian:options_path()
   return self.ctx.params.tomcat.defaults_file or ("/etc/default/" .. self:package())
end
function Debian:restart_hint() return "systemctl restart " .. self:package() end

-- rhel: the tomcat package's unit reads /etc/sysconfig/tomcat or /etc/tomcat/tomcat.conf as an
-- EnvironmentFile: no shell expansion.
local Rhel = class("rhel", { syntax = "env" })
function Rhel:default_home() return "/usr/share/tomcat" end
function Rhel:options_path()
   local t = self.ctx.params.tomcat
   if t.defaults_file then return t.defaults_file end
   return self.ctx:exists("/etc/sysconfig/tomcat") and "/etc/sysconfig/tomcat" or "/etc/tomcat/tomcat.conf"
end
function Rhel:restart_hint() return "systemctl restart tomcat" end

local WindowsScripts = class("windows-scripts", { syntax = "bat", script = "bat" })
function WindowsScripts.secret_file_opts() return {} end
function WindowsScripts.truststore_opts() return {} end

-- windows-service: procrun keeps the JVM options in the registry; setenv.bat is not read.
local WindowsService = class("windows-service", { service = true }, WindowsScripts)
function WindowsService.option_files() return {} end

--- The registry key of a procrun service's Java options.
function M.service_key(name, wow)
   return ("HKLM\\SOFTWARE\\%sApache Software Foundation\\Procrun 2.0\\%s\\Parameters\\Java"):format(
      wow and "WOW6432Node\\" or "", name)
end

--- The options the Windows service has, or nil, why.
function WindowsService:service_options()
   local name = self.ctx.params.tomcat.windows_service
   if sys.platform() ~= "windows" then
      return nil, ("service %s keeps its JVM options in the Windows registry, which cannot be read from here")
         :format(name)
   end
   for _, wow in ipairs{ false, true } do
      local r = self.ctx:command{ "reg", "query", M.service_key(name, wow), "/v", "Options", timeout = 30,
                                  ok = function() return true end }
      local list = r and r.ok and tomcat.reg_multi_sz(r.stdout, "Options")
      if list then return list end
   end
   return nil, ("no JVM options of service %s in the registry (is it installed?)"):format(name)
end

--- The service's procrun executable.
function WindowsService:service_exe()
   local t = self.ctx.params.tomcat
   return t.service_exe or join(self:home(), "bin", t.windows_service .. ".exe")
end

function WindowsService:restart_hint()
   local svc = self.ctx.params.tomcat.windows_service
   return ("net stop %s, then net start %s"):format(svc, svc)
end

local LAYOUTS = { linux = Linux, debian = Debian, rhel = Rhel, ["windows-scripts"] = WindowsScripts,
                  ["windows-service"] = WindowsService }

--- The names [tomcat] layout takes.
M.NAMES = { "auto", "linux", "windows-scripts", "windows-service", "debian", "rhel" }

-- What this machine and CATALINA_BASE say, for layout = auto.
local function detect(ctx)
   local t = ctx.params.tomcat
   if sys.platform() == "windows" then
      local r = ctx:command{ "sc", "query", t.windows_service, timeout = 30, ok = function() return true end }
      return r and r.ok and "windows-service" or "windows-scripts"
   end
   local base = t.catalina_base:gsub("/+$", "")
   local name = base:match("^/var/lib/(tomcat%d*)$")
   if name and sys.stat("/etc/default/" .. name) then return "debian" end
   if (name or base:match("^/usr/share/tomcat%d*$"))
      and (sys.stat("/etc/sysconfig/tomcat") or sys.stat("/etc/tomcat/tomcat.conf")) then
      return "rhel"
   end
   return "linux"
end

--- The layout of the Tomcat a step works on: [tomcat] layout, or detected.
-- @param ctx the step's context
-- @return layout object
function M.of(ctx)
   local name = ctx.params.tomcat.layout
   if name == "auto" then name = detect(ctx) end
   return setmetatable({ ctx = ctx }, LAYOUTS[name])
end

return M
