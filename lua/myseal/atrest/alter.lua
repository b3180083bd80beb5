--- Online ALTER TABLEs for encryption at rest: no statement makes the application wait.
--
-- An ALTER TABLE needs the table's metadata lock for a moment at its start and at its end. While
-- it waits for it (a session has an open transaction on the table), every new query on that
-- table queues behind it. So every statement here waits for the lock a bounded time only: small
-- tables run on the step's own connection with NOWAIT (a retry costs next to nothing), large ones
-- in workers (ctx:sql_parallel) with a wait of a second, stopped by a watchdog (KILL QUERY) as
-- soon as they have waited `at_rest.lock_wait` seconds. A table whose lock stays taken is tried
-- again with growing pauses and given up after `at_rest.lock_give_up` seconds; the step then
-- fails naming the table and the session holding it (id, account, how long), and --resume goes on.
-- @module myseal.atrest.alter
local sys = require "sys"
local text = require "myseal.text"
local named = require("myseal.atrest").named

local M = {}

--- Tables of at least this size are rebuilt in workers, several at a time; smaller ones on the
-- step's own connection meanwhile (a new connection costs more than their rebuild).
M.PARALLEL_FROM = 16 * 1024 * 1024

local LOCK_TIMEOUT = 1205    -- ER_LOCK_WAIT_TIMEOUT: the statement's lock wait ran out
local INTERRUPTED = 1317     -- ER_QUERY_INTERRUPTED: stopped by the watchdog
local WORKER_WAIT = 1        -- seconds a worker's statement may wait at most, watchdog or not

--- Who holds (or may hold) a table's metadata lock, in words.
-- @param holders from the lock_holders fact
-- @return text
function M.describe_holders(holders)
   if #holders == 0 then
      return "no session has an open transaction: a LOCK TABLES or a long statement holds it (the server's "
         .. "metadata_lock_info plugin would name it)"
   end
   local parts = {}
   for _, h in ipairs(holders) do
      parts[#parts + 1] = ("session %d (%s@%s, %s for %s)"):format(h.id, tostring(h.user), tostring(h.host),
         h.transaction and "in a transaction" or "in its present state", text.count(h.seconds or 0, "second"))
   end
   if holders[1].certain then
      return table.concat(parts, ", ") .. (#parts == 1 and " holds its metadata lock" or " hold its metadata lock")
   end
   return "held by another session; with an open transaction: " .. table.concat(parts, ", ")
end

--- Rebuilds tables as online as the server allows (see the module comment).
-- @param ctx the step's context
-- @param list of `{ t = table, sql = function(wait) -> sql, before }` (largest first); `t.bytes` weighs it
-- @param opts `{ label = "tables" }`
-- @return true; fails the step at the end when tables were given up
function M.run(ctx, list, opts)
   local p = ctx.params.at_rest
   local items = {}
   for i, e in ipairs(list) do
      local size = e.t.bytes or 0
      local large = size >= M.PARALLEL_FROM
      local sql, before = e.sql(large and WORKER_WAIT or 0)
      items[i] = { sql = sql, before = before, weight = math.max(size, 1), here = not large, t = e.t }
   end
   local function note_blocked(entry, except)
      local now = sys.clock()
      if not entry.since then
         entry.since = now
         entry.holders = M.describe_holders(ctx:fact("lock_holders", entry.t.schema, entry.t.name, except))
         ctx:warn("%s waits for its metadata lock: %s; trying again without making the application wait",
            named(entry.t), entry.holders)
      end
      return now - entry.since
   end
   local _, skipped = ctx:sql_parallel(items, {
      parallel = p.parallel, label = opts and opts.label or "tables", unit = "bytes", kill_on_interrupt = true,
      -- a worker's statement waiting for a lock longer than lock_wait is stopped (and tried again)
      watch = function(running)
         local ids, by_id = {}, {}
         for _, r in ipairs(running) do
            if r.connection then
               ids[#ids + 1] = r.connection
               by_id[r.connection] = r.entry
            end
         end
         for id, waited in pairs(ctx:fact("mdl_waits", ids)) do
            local entry = by_id[id]
            if entry and waited >= p.lock_wait and not entry.killed then
               note_blocked(entry, id)
               entry.killed = true
               ctx:sql("KILL QUERY ?", id)
            end
         end
      end,
      on_error = function(entry, _, errno, attempts)
         local killed = entry.killed
         entry.killed = nil
         if errno ~= LOCK_TIMEOUT and not (errno == INTERRUPTED and killed) then return nil end
         if note_blocked(entry) >= p.lock_give_up then
            -- who holds it now, and for how long
            entry.holders = M.describe_holders(ctx:fact("lock_holders", entry.t.schema, entry.t.name))
            return "skip"
         end
         return "retry", math.min(5, 0.1 * 2 ^ math.min(attempts - 1, 6))
      end,
   })
   if #skipped > 0 then
      table.sort(skipped, function(a, b) return named(a.t) < named(b.t) end)
      local parts = {}
      for _, e in ipairs(skipped) do parts[#parts + 1] = ("%s: %s"):format(named(e.t), e.holders) end
      ctx:fail("gave up on %s after %s of waiting for %s metadata lock, so as not to make the application wait: "
         .. "%s; the other tables are done: once the lock is free, run again with --resume",
         text.count(#skipped, "table"), text.count(p.lock_give_up, "second"), #skipped == 1 and "its" or "their",
         table.concat(parts, "; "))
   end
   return true
end

return M
