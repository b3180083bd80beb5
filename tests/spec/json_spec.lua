local json = require "myseal.json"

describe("myseal.json", function()
   it("encodes objects with sorted keys, arrays, and escapes", function()
      assert.equal('{"a":[1,2.5,"x"],"b":{"c":true,"d":null},"e":"q\\"\\\\\\n\\u0001"}',
         json.encode{ b = { c = true, d = json.null }, a = { 1, 2.5, "x" }, e = 'q"\\\n\1' })
      assert.equal("{}", json.encode{})
      assert.equal("[]", json.encode(setmetatable({}, json.array)))
   end)
   it("round-trips", function()
      local v = { name = "s1", port = 3307, list = { "a", "b" }, nested = { ok = false }, f = -1.5e-3,
         u = "h\195\169\240\159\152\128" }
      assert.same(v, json.decode(json.encode(v)))
   end)
   it("decodes escapes and surrogate pairs", function()
      assert.equal("\240\159\152\128/\t", json.decode('"\\ud83d\\ude00\\/\\t"'))
      assert.equal(json.null, json.decode(" null "))
      assert.equal(9007199254740993, json.decode("9007199254740993"))
   end)
   it("refuses to encode what JSON cannot hold", function()
      assert.has_error(function() json.encode{ [true] = 1 } end)
      assert.has_error(function() json.encode(0 / 0) end)
      local t = {}; t.self = t
      assert.has_error(function() json.encode(t) end)
      assert.has_error(function() json.encode(print) end)
   end)
   it("rejects bad JSON with nil and the byte offset", function()
      local cases = {
         ['{"a":1,}'] = "invalid JSON at byte 8: expected a string key",
         ['[1 2]'] = "invalid JSON at byte 4: expected ',' or ']'",
         ['"abc'] = "invalid JSON at byte 1: unterminated string",
         ['01'] = "invalid JSON at byte 1: leading zero",
         ['{} x'] = "invalid JSON at byte 4: trailing data",
         ['"\\ud800"'] = "invalid JSON at byte 2: unpaired surrogate",
         [''] = "invalid JSON at byte 1: unexpected character",
      }
      for text, msg in pairs(cases) do
         local v, err = json.decode(text)
         assert.is_nil(v, text)
         assert.equal(msg, err, text)
      end
   end)
end)
