-- A lab host with Debian's Tomcat 10 (--app tomcat): started as its systemd unit would start
-- it, MariaDB Connector/J from Debian, a JNDI pool in context.xml over plain TCP, and a page
-- answering with a row count and the session's Ssl_cipher. One host shared by the specs.
local sys = require "sys"
local lab = require "support.lab"

describe("lab host with Tomcat #lab", function()
   it("runs Debian's Tomcat 10 as user tomcat, with the unit's environment and /etc/default/tomcat10", function()
      local s = lab.tomcat(pending)
      local pid = tonumber(lab.ok(s, { "cat", "/run/tomcat10.pid" }))
      local ps = lab.ok(s, { "ps", "-o", "user=,comm=", "-p", tostring(pid) })
      assert.matches("^tomcat%s+java", ps)
      -- its environment, as seen inside the host (pids are the host's own there)
      local env = lab.ok(s, { "sh", "-c", "tr '\\0' '\\n' < /proc/$(cat /run/tomcat10.pid)/environ" })
      for _, line in ipairs{ "CATALINA_HOME=/usr/share/tomcat10\n", "CATALINA_BASE=/var/lib/tomcat10\n",
                             "CATALINA_TMPDIR=/tmp\n", "JAVA_OPTS=-Djava.awt.headless=true " } do
         assert.is_truthy(("\n" .. env):find("\n" .. line, 1, true), line)
      end
      assert.equal("/var/lib/tomcat10\n", lab.ok(s, { "sh", "-c", "readlink /proc/$(cat /run/tomcat10.pid)/cwd" }))
      local out = assert(sys.read_file(s:paths().catalina_out))
      assert.matches("Server version name:%s+Apache Tomcat/10%.1", out)
      assert.matches("Command line argument:%s+%-Dcatalina%.base=/var/lib/tomcat10", out)
      assert.equal("/usr/share/java/mariadb-java-client.jar\n",
         lab.ok(s, { "readlink", "/var/lib/tomcat10/lib/mariadb-java-client.jar" }))
      assert.equal("root:tomcat 640\n", lab.ok(s, { "stat", "-c", "%U:%G %a", "/etc/tomcat10/context.xml" }))
   end)

   it("serves the page from a JNDI pool over plain TCP, and comes back after a restart", function()
      local s = lab.tomcat(pending)
      local context = assert(sys.read_file(s:paths().tomcat_conf .. "/context.xml"))
      assert.matches('name="jdbc/biobank"', context)
      assert.matches('url="jdbc:mariadb://127%.0%.0%.1:3306/biobank"', context)
      assert.equal("patients=2000 cipher=\n", assert(lab.page(s)))
      -- the pool keeps its connections open, as the application's account
      local n = lab.value(s, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE user = 'biobank'")
      assert.is_true(n >= 2, "pooled connections: " .. tostring(n))
      local before = lab.ok(s, { "cat", "/run/tomcat10.pid" })
      local r = lab.run(s, { "/etc/init.d/tomcat10", "restart" })
      assert.is_true(r.ok, r.stdout .. r.stderr)
      assert.are_not.equal(before, lab.ok(s, { "cat", "/run/tomcat10.pid" }))
      assert.equal("patients=2000 cipher=\n", lab.wait_page(s))
   end)
end)
