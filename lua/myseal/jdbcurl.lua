--- JDBC URLs (`jdbc:mysql://db:3306/app?useSSL=true&requireSSL=true`): the properties after `?`
-- read and edited as text. A pair the edit does not touch stays byte for byte as it was: its
-- spelling, its place, even an empty pair between two `&`. Keys compare case-insensitively
-- (`useSSL` is `useSsl`). The URL is the attribute's value, not its XML text: `&`, not `&amp;`.
-- @module myseal.jdbcurl
local M = {}

--- Split a URL into the part before `?` and its properties.
-- @param url string
-- @return `{ base = "jdbc:...", query = true when there is a '?', items = { { key =, value =
--   (nil for a bare key), raw = "key=value" }, ... } }`
function M.parse(url)
   if type(url) ~= "string" then error("jdbcurl.parse: the URL must be a string", 2) end
   local q = url:find("?", 1, true)
   local parsed = { base = q and url:sub(1, q - 1) or url, query = q ~= nil, items = {} }
   if q and q < #url then
      for raw in (url:sub(q + 1) .. "&"):gmatch("([^&]*)&") do
         local k, v = raw:match("^([^=]*)=(.*)$")
         parsed.items[#parsed.items + 1] = { key = k or raw, value = v, raw = raw }
      end
   end
   return parsed
end

--- The URL again from a parsed table.
-- @param parsed from M.parse (items may have been changed)
-- @return string
function M.format(parsed)
   local raws = {}
   for i, it in ipairs(parsed.items) do raws[i] = it.raw end
   if #raws == 0 then return parsed.base .. (parsed.query and "?" or "") end
   return parsed.base .. "?" .. table.concat(raws, "&")
end

--- The value of a property (the first pair with that key), or nil; a bare key gives "".
-- @param url string
-- @param key property name (any case)
-- @return value | nil
function M.get(url, key)
   local lkey = key:lower()
   for _, it in ipairs(M.parse(url).items) do
      if it.key:lower() == lkey then return it.value or "" end
   end
   return nil
end

--- Change properties. `set` is a list of `{ key, value }`: the first pair with that key (any case)
-- becomes `key=value` unless its value already equals `value` (any case; exactly for a pair with
-- `exact = true`: a password, a path), later pairs with the key go; a key not there is appended.
-- `remove` is a list of keys whose pairs go.
-- @param url string
-- @param spec `{ set = { { "sslMode", "VERIFY_IDENTITY" }, { "trustCertificateKeyStorePassword", pw, exact = true },
--   ... }, remove = { "useSSL", ... } }`
-- @return new URL, changes (list of `{ key =, old = (nil: added), new = (nil: removed) }`, in order)
function M.edit(url, spec)
   local parsed = M.parse(url)
   local changes = {}
   local drop = {}
   for _, k in ipairs(spec.remove or {}) do drop[k:lower()] = true end
   local wanted, order = {}, {}
   for _, kv in ipairs(spec.set or {}) do
      local k, v = kv[1], kv[2]
      if type(k) ~= "string" or type(v) ~= "string" then
         error("jdbcurl.edit: set takes { key, value } pairs of strings", 2)
      end
      local lkey = k:lower()
      if not wanted[lkey] then order[#order + 1] = lkey end
      wanted[lkey] = { key = k, value = v, raw = k .. "=" .. v, exact = kv.exact }   -- also the item it becomes
      drop[lkey] = nil
   end
   local seen, items = {}, {}
   for _, it in ipairs(parsed.items) do
      local lkey = it.key:lower()
      local w = wanted[lkey]
      if it.raw == "" or not (w or drop[lkey]) then
         items[#items + 1] = it
      elseif drop[lkey] or seen[lkey] then
         changes[#changes + 1] = { key = it.key, old = it.value or "" }
      else
         seen[lkey] = true
         local old = it.value or ""
         if old == w.value or not w.exact and old:lower() == w.value:lower() then
            items[#items + 1] = it
         else
            changes[#changes + 1] = { key = w.key, old = it.value or "", new = w.value }
            items[#items + 1] = w
         end
      end
   end
   local added = {}
   for _, lkey in ipairs(order) do
      if not seen[lkey] then
         changes[#changes + 1] = { key = wanted[lkey].key, new = wanted[lkey].value }
         added[#added + 1] = wanted[lkey]
      end
   end
   -- empty pairs ("a=1&&b=2") stay, but not at the end of a URL that changes ("a=1&" + "b=2")
   if #changes > 0 then
      while #items > 0 and items[#items].raw == "" do table.remove(items) end
   end
   table.move(added, 1, #added, #items + 1, items)
   parsed.items = items
   return M.format(parsed), changes
end

return M
