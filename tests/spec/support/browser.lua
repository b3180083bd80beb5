--- Headless Chromium for the specs: what a page's console saw, and the page as it rendered
-- (support/console.js drives Chromium over the DevTools protocol).
local sys = require "sys"
local json = require "myseal.json"
local host = require "myseal.host"

local M = {}

--- Open a file in Chromium.
-- @param path the page
-- @param dir a scratch directory (Chromium's profile goes there)
-- @return `{ messages = list of { level, source, text, url }, dom = outerHTML }`
function M.open(path, dir)
   local r = assert(sys.run{ "node", host.home .. "/tests/spec/support/console.js", dir .. "/chromium-profile",
                             "file://" .. path, timeout = 60 })
   assert(r.ok, r.stderr)
   return assert(json.decode(r.stdout))
end

return M
