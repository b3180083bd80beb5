-- myseal.jdbcurl: the properties of a JDBC URL edited as text.
local jdbcurl = require "myseal.jdbcurl"

describe("jdbcurl", function()
   it("parses the properties after '?', bare keys and empty pairs too", function()
      local p = jdbcurl.parse("jdbc:mysql://db:3306/app?a=1&flag&&b=x=y")
      assert.equal("jdbc:mysql://db:3306/app", p.base)
      assert.same({
         { key = "a", value = "1", raw = "a=1" },
         { key = "flag", raw = "flag" },
         { key = "", raw = "" },
         { key = "b", value = "x=y", raw = "b=x=y" },
      }, p.items)
      assert.equal("jdbc:mysql://db:3306/app?a=1&flag&&b=x=y", jdbcurl.format(p))
      assert.same({}, jdbcurl.parse("jdbc:mariadb://db/app").items)
      assert.equal("jdbc:mariadb://db/app?", jdbcurl.format(jdbcurl.parse("jdbc:mariadb://db/app?")))
      assert.equal("1", jdbcurl.get("jdbc:mysql://db/app?A=1&a=2", "a"))
      assert.equal("", jdbcurl.get("jdbc:mysql://db/app?flag", "FLAG"))
      assert.is_nil(jdbcurl.get("jdbc:mysql://db/app?a=1", "b"))
   end)

   it("adds, replaces and removes, keeping every other pair as it was", function()
      local url, changes = jdbcurl.edit(
         "jdbc:mysql://db:3306/biobank?useUnicode=true&useSSL=false&characterEncoding=UTF-8"
            .. "&trustServerCertificate=true",
         { set = { { "useSSL", "true" }, { "requireSSL", "true" }, { "verifyServerCertificate", "true" } },
           remove = { "trustServerCertificate" } })
      assert.equal("jdbc:mysql://db:3306/biobank?useUnicode=true&useSSL=true&characterEncoding=UTF-8"
         .. "&requireSSL=true&verifyServerCertificate=true", url)
      assert.same({
         { key = "useSSL", old = "false", new = "true" },
         { key = "trustServerCertificate", old = "true" },
         { key = "requireSSL", new = "true" },
         { key = "verifyServerCertificate", new = "true" },
      }, changes)
      -- no '?' yet
      local ssl = { set = { { "useSsl", "true" } } }
      assert.equal("jdbc:mariadb://db/app?useSsl=true", (jdbcurl.edit("jdbc:mariadb://db/app", ssl)))
      assert.equal("jdbc:mariadb://db/app?useSsl=true", (jdbcurl.edit("jdbc:mariadb://db/app?", ssl)))
   end)

   it("compares keys and values in any case, and rewrites a key only when its value changes", function()
      local same = "jdbc:mysql://db/app?SSLMODE=verify_identity&x=1"
      local url, changes = jdbcurl.edit(same, { set = { { "sslMode", "VERIFY_IDENTITY" } } })
      assert.equal(same, url)
      assert.same({}, changes)
      url, changes = jdbcurl.edit("jdbc:mariadb://db/app?useSSL=false&x=1&usessl=true",
         { set = { { "useSsl", "true" } } })
      assert.equal("jdbc:mariadb://db/app?useSsl=true&x=1", url)
      assert.same({ { key = "useSsl", old = "false", new = "true" }, { key = "usessl", old = "true" } }, changes)
      -- a password or a path compares exactly
      url, changes = jdbcurl.edit("jdbc:mysql://db/app?trustCertificateKeyStorePassword=CHANGEIT",
         { set = { { "trustCertificateKeyStorePassword", "changeit", exact = true } } })
      assert.equal("jdbc:mysql://db/app?trustCertificateKeyStorePassword=changeit", url)
      assert.same({ { key = "trustCertificateKeyStorePassword", old = "CHANGEIT", new = "changeit" } }, changes)
      same = "jdbc:mariadb://db/app?serversslcert=/etc/Tomcat/ca.pem"
      url, changes = jdbcurl.edit(same, { set = { { "serverSslCert", "/etc/Tomcat/ca.pem", exact = true } } })
      assert.equal(same, url)
      assert.same({}, changes)
   end)

   it("keeps empty pairs, except at the end of a URL it changes", function()
      assert.equal("jdbc:mysql://db/app?a=1&&b=2&c=3",
         (jdbcurl.edit("jdbc:mysql://db/app?a=1&&b=2", { set = { { "c", "3" } } })))
      assert.equal("jdbc:mysql://db/app?a=1&c=3",
         (jdbcurl.edit("jdbc:mysql://db/app?a=1&", { set = { { "c", "3" } } })))
      assert.equal("jdbc:mysql://db/app?a=1&", (jdbcurl.edit("jdbc:mysql://db/app?a=1&", { set = { { "a", "1" } } })))
      assert.equal("jdbc:mysql://db/app?a=1", (jdbcurl.edit("jdbc:mysql://db/app?a=1&b=2", { remove = { "B" } })))
      assert.equal("jdbc:mysql://db/app?", (jdbcurl.edit("jdbc:mysql://db/app?b=2", { remove = { "b" } })))
   end)

   it("refuses what is not a URL or a pair of strings", function()
      assert.has_error(function() jdbcurl.parse(nil) end, "jdbcurl.parse: the URL must be a string")
      assert.has_error(function() jdbcurl.edit("jdbc:x", { set = { { "a", true } } }) end,
         "jdbcurl.edit: set takes { key, value } pairs of strings")
   end)
end)
