--- node_exporter's textfile collector for the specs: Debian's prometheus-node-exporter, run as
-- the `prometheus` user the package creates (as its service runs), with only that collector, on
-- a loopback port; what it serves for a directory of `.prom` files, and what it logs (a series
-- it cannot take, a duplicate or a HELP that differs between files, is dropped and logged, not
-- served).
local sys = require "sys"

local M = {}

local EXPORTER = "/usr/bin/prometheus-node-exporter"

--- Samples of the text format as `{ ["name{k="v",...}"] = number }`, the labels sorted and the
-- empty ones left out (Prometheus reads an empty label as none), so that
-- what myseal writes and what node_exporter serves (labels in its order, numbers in its notation)
-- compare.
-- @param text metrics text
function M.samples(text)
   local out = {}
   for line in text:gmatch("[^\n]+") do
      if not line:match("^#") then
         local name, i = line:match("^([%w_:]+)()")
         local labels = {}
         if line:sub(i, i) == "{" then
            i = i + 1
            while line:sub(i, i) ~= "}" do
               local key, j = line:match('^([%w_]+)="()', i)
               assert(key, "bad labels: " .. line)
               local value = {}
               while line:sub(j, j) ~= '"' do
                  local n = line:sub(j, j) == "\\" and 2 or 1   -- \\, \" and \n stay as written
                  value[#value + 1] = line:sub(j, j + n - 1)
                  j = j + n
               end
               -- an empty value is no label (node_exporter fills the labels a family's other series have)
               if #value > 0 then labels[#labels + 1] = key .. '="' .. table.concat(value) .. '"' end
               i = j + 1
               if line:sub(i, i) == "," then i = i + 1 end
            end
            i = i + 1
         end
         table.sort(labels)
         local value = assert(tonumber(line:match("^ (%S+)$", i)), "bad sample: " .. line)
         out[name .. "{" .. table.concat(labels, ",") .. "}"] = value
      end
   end
   return out
end

--- Scrape a textfile directory once.
-- @param dir the directory (the `prometheus` user must be able to read it)
-- @param log a file for the exporter's own output
-- @return the metrics text node_exporter serves, its log
function M.scrape(dir, log)
   for _ = 1, 5 do
      local port = math.random(20000, 59999)
      local pid = assert(sys.spawn{ "setpriv", "--reuid=prometheus", "--regid=prometheus", "--init-groups",
         EXPORTER, "--collector.disable-defaults",
         "--collector.textfile", "--collector.textfile.directory=" .. dir,
         "--web.listen-address=127.0.0.1:" .. port, log = log })
      local deadline, body = sys.clock() + 10, nil
      while sys.alive(pid) and sys.clock() < deadline do
         local r = assert(sys.run{ "curl", "-sf", "http://127.0.0.1:" .. port .. "/metrics", timeout = 10 })
         if r.ok then
            body = r.stdout
            break
         end
         sys.sleep(0.05)
      end
      sys.kill(pid, "TERM")
      while sys.alive(pid) do sys.sleep(0.01) end
      if body then return body, sys.read_file(log) or "" end
   end
   error("node_exporter did not serve: " .. (sys.read_file(log) or ""))
end

return M
