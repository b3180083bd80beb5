-- sys.scan: patterns counted in files (the binding of core/pure/scan.c), checked against
-- grep on real server files, with per-file errors that never name a pattern.
local sys = require "sys"

local EINVAL, ENOENT = 22, 2

describe("sys.scan", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("scan-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   local function file(name, data)
      local p = dir .. "/" .. name
      assert(sys.write_file(p, data))
      return p
   end

   it("counts every occurrence of each pattern in each file", function()
      local a = file("a", "Anna Zweistein, Basel; Anna Zweistein again; aaaaaaaaaa")
      local b = file("b", ("x"):rep(300000) .. "Anna Zweistein" .. ("y"):rep(300000))
      local c = file("c", "")
      local r = assert(sys.scan({ a, b, c }, { "Anna Zweistein", "aaaaaaaa", "Basel;" }))
      assert.same({ bytes = 55, hits = 6, per_pattern = { 2, 3, 1 } }, r[a])
      assert.same({ bytes = 600014, hits = 1, per_pattern = { 1 } }, r[b])
      assert.same({ bytes = 0, hits = 0, per_pattern = {} }, r[c])
   end)

   it("finds a pattern across the scanner's buffers and binary patterns", function()
      local marker = "\0MYSEAL\255marker\0"
      local data = {}
      for i = 1, 20 do data[i] = ("z"):rep(65536 - 7) .. marker end
      local p = file("big", table.concat(data))
      local r = assert(sys.scan({ p }, { marker, "zzzzzzzz" }))
      assert.equal(20, r[p].per_pattern[1])
      assert.equal(20 * (65536 - 7 - 7), r[p].per_pattern[2])
   end)

   it("gives the same counts as grep on a real server file, with one thread or two", function()
      local sandbox = require "myseal.sandbox"
      local s <close> = assert(sandbox.start{ name = "spec-scan" })
      s:shutdown()
      local help = s.datadir .. "/mysql/help_topic.MAD"
      -- none of these overlaps itself, so grep -o's count is the number of occurrences
      local words = { "SELECT", "Syntax", "character set", "innodb_", "https://", "Examples" }
      local want = {}
      for i, w in ipairs(words) do
         local g = assert(sys.run{ "grep", "-o", "-a", "-F", w, help })
         want[i] = select(2, g.stdout:gsub("\n", ""))
         assert.is_true(want[i] > 0)
      end
      for _, threads in ipairs{ 1, 2 } do
         local r = assert(sys.scan({ help }, words, { threads = threads }))
         assert.same(want, r[help].per_pattern)
         assert.equal(sys.stat(help).size, r[help].bytes)
      end
   end)

   it("reports a file it cannot read and goes on with the others", function()
      local ok = file("ok", "secret-pattern-1")
      local fifo = dir .. "/fifo"
      assert(sys.run{ "mkfifo", fifo })
      local r = assert(sys.scan({ dir .. "/missing", dir, fifo, ok }, { "secret-pattern-1" }))
      assert.same({ error = dir .. "/missing: No such file or directory", errno = ENOENT }, r[dir .. "/missing"])
      assert.same({ error = dir .. ": not a regular file", errno = EINVAL }, r[dir])
      assert.same({ error = fifo .. ": not a regular file", errno = EINVAL }, r[fifo])
      assert.equal(1, r[ok].hits)
   end)

   it("raises on misuse, naming a pattern by its position only", function()
      local p = file("f", "x")
      assert.has_error(function() sys.scan({ p }, { "secret-one", "" }) end, "bad pattern 2: empty")
      assert.has_error(function() sys.scan({ p }, { 42 }) end, "bad pattern 1: a number, not a string")
      assert.has_error(function() sys.scan({ p }, { ("s"):rep(65537) }) end,
         "bad pattern 1: longer than 65536 bytes")
      assert.has_error(function() sys.scan({ p }, {}) end,
         "bad argument #2 to 'scan' (between 1 and 1048576 patterns)")
      assert.has_error(function() sys.scan({ p }, { "secret-one" }, { threads = 0 }) end,
         "bad argument #3 to 'scan' (threads must be 1 to 16)")
      assert.has_error(function() sys.scan({ 7 }, { "secret-one" }) end, "bad path 1: a number, not a string")
      assert.has_error(function() sys.scan(p, { "secret-one" }) end)
   end)
end)
