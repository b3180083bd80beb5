-- The man page myseal(1), made at build time from the help texts the command line prints
-- (myseal.cli), so that the two cannot say different things:
--   myseal lua packaging/manpage.lua OUT CHANGELOG PREFIX
-- CHANGELOG (packaging/changelog) gives the date of the page; PREFIX is where the package
-- installs (/usr), for the FILES section.
local cli = require "myseal.cli"
local host = require "myseal.host"
local sys = require "sys"

local out_path, changelog, prefix = arg[1], arg[2], arg[3]
assert(out_path and changelog and prefix, "usage: myseal lua packaging/manpage.lua OUT CHANGELOG PREFIX")

-- The date of the newest changelog entry, as YYYY-MM-DD.
local function page_date()
   local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                    Nov = 11, Dec = 12 }
   local text = assert(sys.read_file(changelog))
   local d, m, y = text:match("\n %-%- [^\n]- %a%a%a, (%d%d?) (%a%a%a) (%d%d%d%d) ")
   assert(d and months[m], changelog .. ": no trailer line with a date")
   return ("%s-%02d-%02d"):format(y, months[m], tonumber(d))
end

-- Text for roff: backslashes escaped, the dashes of options as minus signs, no line taken
-- for a request.
local function esc(s)
   s = s:gsub("\\", "\\e")
   s = (" " .. s):gsub("([%s%[|(,'\"])(%-%-?)", function(before, dashes)
      return before .. dashes:gsub("%-", "\\-")
   end):sub(2)
   if s:match("^[.']") then s = "\\&" .. s end
   return s
end

local out = {}
local function put(...)
   for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
end

-- A help text: paragraphs of prose filled (a line ending in ':' starts one), "  TAG   text"
-- lines (with their indented continuation lines) as tagged paragraphs, other indented lines
-- (examples) as they are.
local function body(text)
   local entry, prose = false, false
   for line in (text .. "\n"):gmatch("(.-)\n") do
      local tag, desc = line:match("^  (%S.-)%s%s+(%S.*)$")
      if line:match("^%s*$") then
         entry, prose = false, false
      elseif entry and line:match("^   +%S") then
         put(esc(line:match("^%s*(.-)$")))
      elseif tag then
         put(".TP", "\\fB" .. esc(tag) .. "\\fR", esc(desc))
         entry, prose = true, false
      elseif line:match("^ ") then
         put(".PP", ".nf", esc(line), ".fi")
         entry, prose = false, false
      else
         if not prose or line:match(":$") then put(".PP") end
         put(esc(line))
         entry, prose = false, true
      end
   end
end

-- One command or subcommand: its usage lines, its summary, its text.
local function command(words)
   local text = cli.command_help(words)
   local usage, summary, rest = text:match("^usage: (.-)\n\n(.-)\n(.*)$")
   put(".SS " .. esc(table.concat(words, " ")))
   put(".PP")
   local first = true
   for u in (usage .. "\n"):gmatch("%s*(.-)\n") do
      if not first then put(".br") end
      local name, rest_of_line = u:match("^(myseal %l[%w%-]*%s?%l*)(.*)$")
      put("\\fB" .. esc(name or u) .. "\\fR" .. esc(rest_of_line or ""))
      first = false
   end
   put(".PP", esc(summary))
   body(rest:gsub("^\n", ""):gsub("\n$", ""))
end

local version = host.version
local intro, list = cli.help():match("^usage: [^\n]*\n\n(.-)\n\ncommands:\n(.-)\n\n")
put(('.TH MYSEAL 1 "%s" "myseal %s" "User Commands"'):format(page_date(), version))
put(".nh", ".ad l")   -- no hyphenation, ragged right: option names stay whole
put(".SH NAME", "myseal \\- encrypt MySQL and MariaDB at rest and in transit, with runbooks")
put(".SH SYNOPSIS")
put("\\fBmyseal\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]", ".br")
put("\\fBmyseal help\\fR [\\fICOMMAND\\fR [\\fISUBCOMMAND\\fR]]", ".br")
put("\\fBmyseal\\fR \\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] \\fB\\-\\-help\\fR", ".br")
put("\\fBmyseal \\-\\-version\\fR")
put(".SH DESCRIPTION")
put(esc((intro:gsub("\n", " "))))
put(".PP", "The commands:")
body(list)
put(".PP", "Each command below shows its usage, what it does and its options. The same text is what "
   .. "\\fBmyseal help\\fR \\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] prints, and what \\fB\\-\\-help\\fR or "
   .. "\\fB\\-h\\fR prints after any command or subcommand.")
put(".SH COMMANDS")
for _, words in ipairs(cli.topics()) do command(words) end
put(".SH OPTIONS")
body(cli.help():match("\noptions:\n(.-)\n\n"))
put(".SH EXIT STATUS", esc(cli.help():match("\n(Exit status:[^\n]*)")))
put(".SH ENVIRONMENT")
body(table.concat({
   "  MYSEAL_STATE_DIR   where journals, run locks and sandboxes live (else $XDG_STATE_HOME/myseal,",
   "                     else ~/.local/state/myseal)",
   "  MYSEAL_SECRET_SECTION_KEY   a secret parameter that names no source, e.g.",
   "                     MYSEAL_SECRET_TOMCAT_TRUSTSTORE_PASSWORD for tomcat.truststore_password",
   "                     (a program that starts myseal gives them with --secrets-stdin instead)",
   "  MYSEAL_HOME        a directory with lua/ and runbooks/ to use instead of the installed ones",
}, "\n"))
put(".SH FILES")
body(table.concat({
   ("  %s/share/myseal/runbooks   the stock runbooks"):format(prefix),
   ("  %s/share/myseal/lua        the Lua library the runbooks use"):format(prefix),
   ("  %s/share/doc/myseal/examples/site.example.ini   a site profile with every key documented")
      :format(prefix),
   ("  %s/share/doc/myseal/runbooks.md   writing and extending runbooks"):format(prefix),
   ("  %s/share/doc/myseal/check.md   the check report and its JSON schema"):format(prefix),
}, "\n"))
put(".SH SEE ALSO", "\\fBmariadb\\fR(1), \\fBopenssl\\fR(1), \\fBkeytool\\fR(1)")

assert(sys.write_file(out_path, table.concat(out, "\n") .. "\n", { mode = tonumber("644", 8) }))
