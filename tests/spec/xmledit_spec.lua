-- myseal.xmledit: one attribute of one element, every other byte kept; the result is checked
-- with xmllint (libxml2), a real XML parser.
local sys = require "sys"
local host = require "myseal.host"
local xmledit = require "myseal.xmledit"

local FILE = host.home .. "/tests/fixtures/xml/context.xml"
local ORIGINAL = assert(sys.read_file(FILE))

local function xmllint(text)
   local r = assert(sys.run{ "xmllint", "--noout", "-", stdin = text })
   return r.ok, r.stderr
end

-- text with the first occurrence of `old` (plain) replaced by `new`
local function replaced(text, old, new)
   local a, b = text:find(old, 1, true)
   assert(a, "not found: " .. old)
   return text:sub(1, a - 1) .. new .. text:sub(b + 1)
end

local APP = { element = "Resource", where = { name = "jdbc/app" } }

local function spec(extra)
   local s = { element = APP.element, where = APP.where }
   for k, v in pairs(extra) do s[k] = v end
   return s
end

describe("xmledit", function()
   it("reads a decoded attribute of the one matching element (comments and CDATA are not elements)", function()
      local v, el = xmledit.get(ORIGINAL, spec{ attribute = "url" }, "context.xml")
      assert.equal("jdbc:mysql://db.example:3306/biobank?useUnicode=true&characterEncoding=UTF-8", v)
      assert.equal(9, el.line)
      assert.equal("s&cret", (xmledit.get(ORIGINAL, spec{ attribute = "password" })))
      assert.equal("t\u{e9}st", (xmledit.get(ORIGINAL, { element = "Environment", attribute = "value" })))
      assert.is_nil((xmledit.get(ORIGINAL, spec{ attribute = "sslMode" })))
   end)

   it("changes one value and nothing else, escaping & and the quote", function()
      local url = 'jdbc:mysql://db.example:3306/biobank?useUnicode=true&characterEncoding=UTF-8&sslMode=VERIFY_IDENTITY'
      local new = assert(xmledit.set(ORIGINAL, spec{ attribute = "url", value = url }, "context.xml"))
      assert.equal(replaced(ORIGINAL, "UTF-8\"\r\n", "UTF-8&amp;sslMode=VERIFY_IDENTITY\"\r\n"), new)
      assert.is_true(xmllint(new))
      assert.equal(url, (xmledit.get(new, spec{ attribute = "url" })))
      -- single quotes stay single quotes; a quote inside is escaped
      new = assert(xmledit.set(ORIGINAL, { element = "Resource", where = { name = "jdbc/reports" },
                                           attribute = "url", value = "it's" }))
      assert.equal(replaced(ORIGINAL, "'jdbc:mariadb://db.example/reports'", "'it&apos;s'"), new)
      assert.is_true(xmllint(new))
   end)

   it("takes a function of the old value", function()
      local new = assert(xmledit.set(ORIGINAL, spec{ attribute = "maxTotal", value = function(old)
         return tostring(tonumber(old) * 2)
      end }))
      assert.equal(replaced(ORIGINAL, 'maxTotal="20"', 'maxTotal="40"'), new)
   end)

   it("adds a missing attribute after the last one, in the element's quoting style", function()
      local new = assert(xmledit.set(ORIGINAL, spec{ attribute = "validationQuery", value = "SELECT 1" }))
      assert.equal(replaced(ORIGINAL, 'maxTotal="20"/>', 'maxTotal="20" validationQuery="SELECT 1"/>'), new)
      new = assert(xmledit.set(ORIGINAL, { element = "Resource", where = { name = "jdbc/reports" },
                                           attribute = "maxTotal", value = "5" }))
      assert.equal(replaced(ORIGINAL, "reports' />", "reports' maxTotal='5' />"), new)
      assert.is_true(xmllint(new))
   end)

   it("removes an attribute with nil", function()
      local new = assert(xmledit.set(ORIGINAL, spec{ attribute = "maxTotal", value = function() return nil end }))
      assert.equal(replaced(ORIGINAL, ' maxTotal="20"', ""), new)
      assert.is_true(xmllint(new))
   end)

   it("says which elements match when none or several do", function()
      assert.same({ nil, 'context.xml: no <Resource name="jdbc/none"> element' },
         { xmledit.set(ORIGINAL, { element = "Resource", where = { name = "jdbc/none" }, attribute = "url", value = "x" },
            "context.xml") })
      assert.same({ nil, "context.xml: 2 <Resource> elements (lines 9, 13): narrow the choice with where" },
         { xmledit.set(ORIGINAL, { element = "Resource", attribute = "url", value = "x" }, "context.xml") })
   end)

   it("refuses a document that is not well formed, naming the line", function()
      local cases = {
         { "<a>\n<!-- open\n</a>", "f.xml:2: a comment is not closed" },
         { "<a>\n<b>\n</a>", "f.xml:3: </a> does not close <b> of line 2" },
         { "<a x=1/>", "f.xml:1: <a>: the value of x must be quoted" },
         { "<a x='1' x='2'/>", "f.xml:1: <a>: attribute x twice" },
         { "<a>\n<b/>", "f.xml:1: <a> is never closed" },
         { "<a x='1'y='2'/>", "f.xml:1: <a>: attributes must be separated by spaces" },
         { "plain text", "f.xml: no element (is it XML?)" },
      }
      for _, c in ipairs(cases) do
         assert.same({ nil, c[2] }, { xmledit.set(c[1], { element = "a", attribute = "x", value = "1" }, "f.xml") })
      end
   end)

   it("raises on a caller's mistake", function()
      assert.has_error(function() xmledit.set(ORIGINAL, { attribute = "x", value = "1" }) end,
         "xmledit: spec.element (a tag name) is required")
      assert.has_error(function() xmledit.set(ORIGINAL, spec{ attribute = "a b", value = "1" }) end,
         "xmledit: spec.attribute must be an attribute name")
      assert.has_error(function() xmledit.set(ORIGINAL, spec{ attribute = "url", value = 3 }) end,
         "xmledit: the new value must be a string (or nil to remove the attribute)")
   end)
end)
