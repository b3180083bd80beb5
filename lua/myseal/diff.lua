--- Unified diffs of text files, for plan output.
-- @module myseal.diff
local M = {}

local function lines(s)
   local out = {}
   for line in s:gmatch("[^\n]*\n?") do
      if line ~= "" then out[#out + 1] = line end
   end
   return out
end

-- Edit script between a[lo..ahi] and b[lo..bhi] by longest common subsequence; returns a list of
-- { op = " " | "-" | "+", line = }. Large middles (after the common prefix and suffix are taken
-- off) are shown as a replacement instead of searched.
local function script(a, b)
   local n, m = #a, #b
   local pre = 0
   while pre < n and pre < m and a[pre + 1] == b[pre + 1] do pre = pre + 1 end
   local suf = 0
   while suf < n - pre and suf < m - pre and a[n - suf] == b[m - suf] do suf = suf + 1 end
   local out = {}
   for i = 1, pre do out[#out + 1] = { op = " ", line = a[i] } end
   local an, bn = n - pre - suf, m - pre - suf
   if an * bn > 4000000 then
      for i = pre + 1, n - suf do out[#out + 1] = { op = "-", line = a[i] } end
      for j = pre + 1, m - suf do out[#out + 1] = { op = "+", line = b[j] } end
   else
      -- lcs[i][j]: length of the LCS of a[pre+i..] and b[pre+j..] within the middle
      local lcs = {}
      for i = an + 1, 1, -1 do
         local row, below = {}, lcs[i + 1]
         for j = bn + 1, 1, -1 do
            if i > an or j > bn then
               row[j] = 0
            elseif a[pre + i] == b[pre + j] then
               row[j] = below[j + 1] + 1
            else
               local x, y = below[j], row[j + 1]
               row[j] = x > y and x or y
            end
         end
         lcs[i] = row
      end
      local i, j = 1, 1
      while i <= an or j <= bn do
         if i <= an and j <= bn and a[pre + i] == b[pre + j] then
            out[#out + 1] = { op = " ", line = a[pre + i] }
            i, j = i + 1, j + 1
         elseif i <= an and (j > bn or lcs[i + 1][j] >= lcs[i][j + 1]) then
            out[#out + 1] = { op = "-", line = a[pre + i] }   -- removals before additions
            i = i + 1
         else
            out[#out + 1] = { op = "+", line = b[pre + j] }
            j = j + 1
         end
      end
   end
   for i = n - suf + 1, n do out[#out + 1] = { op = " ", line = a[i] } end
   return out
end

local function show(e)
   local line = e.line
   if line:sub(-1) == "\n" then return e.op .. line:sub(1, -2) end
   return e.op .. line .. "\n\\ No newline at end of file"
end

--- A unified diff from `old` to `new`, or "" when they are equal.
-- @param old old text ("" for a new file)
-- @param new new text
-- @param from label of the old side (e.g. the path, or "/dev/null")
-- @param to label of the new side
-- @param context lines of context (default 3)
-- @return diff text, each line ending in "\n"
function M.unified(old, new, from, to, context)
   if old == new then return "" end
   context = context or 3
   local a, b = lines(old), lines(new)
   local ops = script(a, b)
   local out = { ("--- %s\n+++ %s\n"):format(from, to) }
   local k, total = 1, #ops
   -- line numbers before each op
   local ai, bi = {}, {}
   local x, y = 1, 1
   for i, e in ipairs(ops) do
      ai[i], bi[i] = x, y
      if e.op ~= "+" then x = x + 1 end
      if e.op ~= "-" then y = y + 1 end
   end
   ai[total + 1], bi[total + 1] = x, y
   while k <= total do
      while k <= total and ops[k].op == " " do k = k + 1 end
      if k > total then break end
      local first = math.max(1, k - context)
      local last = k
      local i = k
      while i <= total do
         if ops[i].op ~= " " then
            last = i
            i = i + 1
         elseif i - last > 2 * context then
            break
         else
            i = i + 1
         end
      end
      last = math.min(total, last + context)
      local na, nb = 0, 0
      for j = first, last do
         if ops[j].op ~= "+" then na = na + 1 end
         if ops[j].op ~= "-" then nb = nb + 1 end
      end
      local sa = na == 0 and ai[first] - 1 or ai[first]
      local sb = nb == 0 and bi[first] - 1 or bi[first]
      out[#out + 1] = ("@@ -%d,%d +%d,%d @@\n"):format(sa, na, sb, nb)
      for j = first, last do out[#out + 1] = show(ops[j]) .. "\n" end
      k = last + 1
   end
   return table.concat(out)
end

return M
