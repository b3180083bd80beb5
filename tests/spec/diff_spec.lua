-- myseal.diff: unified diffs that GNU patch applies, checked on exact output and on random edits.
local sys = require "sys"
local diff = require "myseal.diff"

local function patched(old, d)
   local dir = assert(sys.tmpdir("diff-spec"))
   local file = dir .. "/f"
   assert(sys.write_file(file, old))
   local r = assert(sys.run{ "patch", "--quiet", "--force", file, stdin = d })
   local out = sys.read_file(file)
   sys.rmtree(dir)
   assert(r.ok, r.stdout .. r.stderr)
   return out
end

describe("diff.unified", function()
   it("is empty for equal texts", function()
      assert.equal("", diff.unified("a\n", "a\n", "x", "y"))
   end)

   it("shows a change with three lines of context", function()
      local old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n"
      local new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n"
      assert.equal("--- my.cnf\n+++ my.cnf\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n",
         diff.unified(old, new, "my.cnf", "my.cnf"))
   end)

   it("shows a new file and a missing final newline", function()
      assert.equal("--- /dev/null\n+++ f\n@@ -0,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file\n",
         diff.unified("", "a\nb", "/dev/null", "f"))
   end)

   it("makes diffs patch applies, for random edits", function()
      math.randomseed(8)
      for _ = 1, 40 do
         local old, new = {}, {}
         for i = 1, math.random(0, 60) do old[i] = ("line %d\n"):format(math.random(1, 12)) end
         for _, l in ipairs(old) do
            local r = math.random()
            if r < 0.1 then
               -- dropped
            elseif r < 0.2 then
               new[#new + 1] = "new " .. l
            else
               new[#new + 1] = l
            end
            if math.random() < 0.05 then new[#new + 1] = "added\r\n" end
         end
         local a, b = table.concat(old), table.concat(new)
         local d = diff.unified(a, b, "f", "f")
         if a == b then assert.equal("", d) else assert.equal(b, patched(a, d)) end
      end
   end)
end)
