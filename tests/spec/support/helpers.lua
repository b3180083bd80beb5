--- Shared by the specs: failure-shape checks and small file helpers.
local sys = require "sys"

local M = {}

--- Asserts the world-failure shape `nil, message, code` and returns message.
function M.fails(...)
   local v, msg = ...
   assert(v == nil, "expected a failure, got " .. tostring(v))
   assert(type(msg) == "string", "expected a message, got " .. tostring(msg))
   return msg, select(3, ...)
end

--- Runs the myseal binary with arguments (no shell); returns the sys.run result.
function M.myseal(argv, opts)
   local t = { require("myseal.host").exe }
   for _, a in ipairs(argv) do t[#t + 1] = a end
   for k, v in pairs(opts or {}) do t[k] = v end
   return assert(sys.run(t))
end

--- Writes a file (creating parents) and returns its path.
function M.write(path, text, mode)
   sys.mkdir(path:match("^(.*)/[^/]*$"))
   assert(sys.write_file(path, text, { mode = mode }))
   return path
end

--- Every regular file under dir, recursively (symbolic links not followed), appended to `out`.
function M.files_under(dir, out)
   out = out or {}
   for _, n in ipairs(sys.dir(dir) or {}) do
      local p = dir .. "/" .. n
      local st = sys.stat(p, { link = true })
      if st and st.type == "directory" then M.files_under(p, out)
      elseif st and st.type == "file" then out[#out + 1] = p end
   end
   return out
end

--- The findings of a `myseal check` report by id.
function M.findings(report)
   local out = {}
   for _, f in ipairs(report.findings) do out[f.id] = f end
   return out
end

--- The current resident set size of this process, in KiB.
function M.rss_kib()
   for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmRSS:%s+(%d+)")
      if kb then return tonumber(kb) end
   end
end

return M
