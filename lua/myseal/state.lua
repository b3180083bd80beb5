--- Where myseal keeps its state (sandboxes, journals, locks) and its cache
-- (template datadirs), per user.
-- @module myseal.state
local sys = require "sys"

local M = {}

-- $OVERRIDE, else $XDG_VAR/myseal, else ~/FALLBACK/myseal
local function user_path(override, xdg_var, fallback)
   local base = os.getenv(override)
   if base and base ~= "" then return base end
   local xdg = os.getenv(xdg_var)
   if xdg and xdg ~= "" then return xdg .. "/myseal" end
   return (os.getenv("HOME") or sys.user().home or "/tmp") .. "/" .. fallback .. "/myseal"
end

-- user_path, created 0700 with sub.
local function user_dir(override, xdg_var, fallback, what, sub)
   local base = user_path(override, xdg_var, fallback)
   local path = sub and (base .. "/" .. sub) or base
   local ok, err = sys.mkdir(path, 448)
   if not ok then return nil, "cannot create the " .. what .. " directory " .. err end
   return path
end

--- The state directory: `$MYSEAL_STATE_DIR`, else `$XDG_STATE_HOME/myseal`, else
-- `~/.local/state/myseal`; created 0700 with its parents (and `sub` below it).
-- @param sub optional subdirectory
-- @return path, or nil, message
function M.dir(sub)
   return user_dir("MYSEAL_STATE_DIR", "XDG_STATE_HOME", ".local/state", "state", sub)
end

--- The state directory's path, without creating anything (plan mode writes nothing).
-- @return path
function M.path()
   return user_path("MYSEAL_STATE_DIR", "XDG_STATE_HOME", ".local/state")
end

--- The cache directory (template datadirs): `$MYSEAL_CACHE_DIR`, else
-- `$XDG_CACHE_HOME/myseal`, else `~/.cache/myseal`; created like `dir`.
-- @return path, or nil, message
function M.cache(sub)
   return user_dir("MYSEAL_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "cache", sub)
end

--- The cache directory's path, without creating anything.
-- @return path
function M.cache_path()
   return user_path("MYSEAL_CACHE_DIR", "XDG_CACHE_HOME", ".cache")
end

--- Random bytes from the kernel, as lower-case hex.
-- @param n number of bytes
function M.random_hex(n)
   local f = assert(io.open("/dev/urandom", "rb"))
   local bytes = f:read(n)
   f:close()
   return require("myseal.text").hex(bytes)
end

return M
