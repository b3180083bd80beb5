-- Bash completion for myseal, made at build time from the command line's own tables
-- (myseal.cli): the commands and subcommands, the options each argument parser declares,
-- what each usage line takes (RUNBOOK, NAME, FILE) and the values it lists (text|json|html).
-- Runbook names, sandbox names and --set keys come from myseal itself as you type.
--   myseal lua packaging/completion.lua OUT
local cli = require "myseal.cli"
local sys = require "sys"

local out_path = assert(arg[1], "usage: myseal lua packaging/completion.lua OUT")

local function var(words)
   return (table.concat(words, "_"):gsub("[^%w]", "_"))
end

local function sorted_keys(t)
   local out = {}
   for k in pairs(t) do out[#out + 1] = k end
   table.sort(out)
   return out
end

local lines = {
   "# bash completion for myseal(1). Made from myseal's command table by packaging/completion.lua;",
   "# do not edit. Runbook names, sandbox names and --set keys come from myseal as you type.",
}
local function put(fmt, ...) lines[#lines + 1] = fmt:format(...) end

local commands, valued, enums, files, dirs = {}, {}, {}, {}, {}
for _, words in ipairs(cli.topics()) do
   local text = cli.command_help(words)
   local usage = text:match("^usage: (.-)\n\n")
   local opts = cli.options(words)
   if #words == 1 then commands[#commands + 1] = words[1] end
   local subs = {}
   for _, s in ipairs(words[1] ~= "help" and #words == 1 and require("myseal.cmd." .. words[1]).subcommands or {}) do
      subs[#subs + 1] = s.name
   end
   if #subs > 0 then put("_myseal_sub_%s='%s'", var(words), table.concat(subs, " ")) end
   put("_myseal_opts_%s='%s'", var(words), table.concat(sorted_keys(opts), " "))
   for name, kind in pairs(opts) do
      if kind == "value" then valued[name] = true end
   end
   -- what the first argument is: the first upper-case word of the usage line that is not the
   -- value of an option (RUNBOOK in "myseal run RUNBOOK (--site F | ...)")
   local first_line = usage:match("^[^\n]*"):sub(#("myseal " .. table.concat(words, " ")) + 1)
   local what = first_line:gsub("%-%-?[%w%-]+ %S+", ""):match("%f[%w](%u+)%f[%W]")
   if what == "RUNBOOK" or what == "NAME" or what == "FILE" then
      put("_myseal_arg_%s=%s", var(words), what)
   end
   -- options whose value is a file or a directory, as the help text calls it
   for name, meta in text:gmatch("(%-%-[%w%-]+) (%u+)%f[%W]") do
      if meta == "FILE" then files[name] = true elseif meta == "DIR" then dirs[name] = true end
   end
   -- values an option lists in a usage line: --format text|json|html ('|' is no pattern item)
   for name, list in usage:gmatch("(%-%-[%w%-]+) (%w+|[%w|]+)") do
      enums[name] = list:gsub("|", " ")
   end
end
put("_myseal_commands='%s'", table.concat(commands, " "))
put("_myseal_valued=' %s '", table.concat(sorted_keys(valued), " "))
put("_myseal_files=' %s '", table.concat(sorted_keys(files), " "))
put("_myseal_dirs=' %s '", table.concat(sorted_keys(dirs), " "))
for _, name in ipairs(sorted_keys(enums)) do put("_myseal_enum_%s='%s'", var{ name }, enums[name]) end

lines[#lines + 1] = [=[

# The names in what "$@" --json prints: JSON lines (myseal list) or one array (sandbox status).
_myseal_names() {
   "$@" --json 2>/dev/null | "${COMP_WORDS[0]}" lua -e '
      local json, text = require("myseal.json"), io.read("a")
      local items = json.decode(text)
      if type(items) ~= "table" or items.name then
         items = {}
         for line in text:gmatch("[^\n]+") do items[#items + 1] = json.decode(line) end
      end
      for _, it in ipairs(items) do
         if type(it) == "table" and type(it.name) == "string" then print(it.name) end
      end' 2>/dev/null
}

_myseal() {
   local exe=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=
   ((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
   COMPREPLY=()
   # the command, its subcommand and first argument, and the options that choose the runbooks
   local i w cmd= sub= first= eq=
   local -a where=()
   for ((i = 1; i < COMP_CWORD; i++)); do
      w=${COMP_WORDS[i]}
      if [[ $w == = ]]; then
         ((i++))   # NAME=VALUE: bash splits at '='
      elif [[ $w == -* ]]; then
         if [[ $_myseal_valued == *" $w "* ]]; then
            [[ $w == --site || $w == --runbooks ]] && where+=("$w" "${COMP_WORDS[i + 1]}")
            ((i++))
         fi
      elif [[ -z $cmd ]]; then
         cmd=$w
      elif [[ -z $sub ]] && declare -p "_myseal_sub_${cmd//[^a-z0-9]/_}" &>/dev/null; then
         sub=$w
      elif [[ -z $first ]]; then
         first=$w
      fi
   done
   [[ $prev == = ]] && eq=1
   if [[ -z $cmd ]]; then
      COMPREPLY=($(compgen -W "$_myseal_commands --help -h --version" -- "$cur"))
      return
   fi
   local topic=${cmd//[^a-z0-9]/_}
   if [[ $cmd == help ]]; then
      if [[ -z $sub && -z $first && $COMP_CWORD -eq 2 ]]; then
         COMPREPLY=($(compgen -W "$_myseal_commands" -- "$cur"))
      elif [[ $COMP_CWORD -eq 3 ]]; then
         local subs=_myseal_sub_${COMP_WORDS[2]//[^a-z0-9]/_}
         COMPREPLY=($(compgen -W "${!subs}" -- "$cur"))
      fi
      return
   fi
   local subs=_myseal_sub_$topic
   if [[ -n ${!subs} ]]; then
      if [[ -z $sub ]]; then
         COMPREPLY=($(compgen -W "${!subs}" -- "$cur"))
         return
      fi
      topic=${topic}_${sub//[^a-z0-9]/_}
   fi
   if [[ -z $eq && $_myseal_valued == *" $prev "* ]]; then
      local enum=_myseal_enum_${prev//[^a-z0-9]/_}
      case $prev in
         --sandbox)
            COMPREPLY=($(compgen -W "$(_myseal_names "$exe" sandbox status)" -- "$cur")) ;;
         --set)
            if [[ -n $first ]]; then
               compopt -o nospace
               COMPREPLY=($(compgen -W "$("$exe" show "$first" "${where[@]}" --all --json 2>/dev/null |
                  "$exe" lua -e 'local j = require("myseal.json").decode(io.read("a")) or { params = {} }
                     for _, p in ipairs(j.params) do print(p.name .. (p.type == "map" and "." or "=")) end' \
                  2>/dev/null)" -- "$cur"))
            fi ;;
         *)
            if [[ -n ${!enum} ]]; then
               COMPREPLY=($(compgen -W "${!enum}" -- "$cur"))
            elif [[ $_myseal_dirs == *" $prev "* ]]; then
               compopt -o filenames
               COMPREPLY=($(compgen -d -- "$cur"))
            elif [[ $_myseal_files == *" $prev "* ]]; then
               compopt -o filenames
               COMPREPLY=($(compgen -f -- "$cur"))
            fi ;;
      esac
      return
   fi
   [[ -n $eq ]] && return
   local opts=_myseal_opts_$topic arg=_myseal_arg_$topic
   if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${!opts} --help -h" -- "$cur"))
      return
   fi
   case ${!arg} in
      RUNBOOK)
         [[ -z $first ]] && COMPREPLY=($(compgen -W "$(_myseal_names "$exe" list "${where[@]}")" -- "$cur")) ;;
      NAME)
         COMPREPLY=($(compgen -W "$(_myseal_names "$exe" sandbox status)" -- "$cur")) ;;
      FILE)
         [[ -z $first ]] && { compopt -o filenames; COMPREPLY=($(compgen -f -- "$cur")); } ;;
   esac
}
complete -F _myseal myseal]=]

assert(sys.write_file(out_path, table.concat(lines, "\n") .. "\n", { mode = tonumber("644", 8) }))
