-- myseal check (text, JSON against its schema, HTML in headless Chromium) and myseal demo.
local sandbox = require "myseal.sandbox"
local sys = require "sys"
local json = require "myseal.json"
local E = require "support.engine"
local jsonschema = require "support.jsonschema"

local SCHEMA = assert(json.decode(assert(sys.read_file("docs/check.schema.json"))))

local findings_by_id = require("support.helpers").findings

describe("myseal check", function()
   local dir
   before_each(function() dir = assert(sys.tmpdir("check-spec")) end)
   after_each(function() sys.rmtree(dir) end)

   it("reports a plain server's failures, and none after the runbooks", function()
      local s <close> = assert(sandbox.start{ name = "spec-check" })
      do
         local c <close> = assert(s:connect{ database = "mysql" })
         assert(c:exec("CREATE DATABASE clinic"))
         assert(c:exec("CREATE TABLE clinic.visits (id INT PRIMARY KEY) ENGINE=InnoDB"))
         assert(c:exec("CREATE TABLE clinic.notes (id INT PRIMARY KEY) ENGINE=InnoDB"))
      end
      local backup = "keyring.backup_dir=" .. dir .. "/kb"
      -- an application connected over TCP, without TLS (the server offers none yet)
      local app = assert(require("mysql").connect{ host = "127.0.0.1", port = s.port, user = s.tcp_user,
                                                    password = s.tcp_password })
      local r = E.myseal({ "check", "--sandbox", s.name, "--format", "json", "--set", backup }, {})
      app:close()
      assert.equal(1, r.status, r.stderr)
      local report = assert(json.decode(r.stdout))
      assert.is_true(jsonschema.validate(SCHEMA, report))
      assert.equal("fail", report.status)
      local f = findings_by_id(report)
      assert.same({ "warn", "1 TCP session without TLS (or not known to use it)",
                    { runbook = "tls-enforce", step = "preflight" } },
                  { f["plain-sessions"].severity, f["plain-sessions"].title, f["plain-sessions"].fix })
      -- the sandbox has performance_schema off: whether the session uses TLS is not known
      assert.matches("^" .. s.tcp_user .. "@127%.0%.0%.1:%d+ %(TLS unknown%)$", f["plain-sessions"].detail)
      -- every step of the runbooks, asked its own check
      assert.equal("fail", f["at-rest:restart"].severity)
      assert.equal("the keyring is not active in the server", f["at-rest:restart"].title)
      assert.same({ runbook = "at-rest", step = "restart" }, f["at-rest:restart"].fix)
      assert.equal("fail", f["at-rest:option-file"].severity)
      assert.matches("^to set: plugin_load_add, .*innodb_encrypt_log", f["at-rest:option-file"].title)
      assert.same({ runbook = "at-rest", step = "option-file" }, f["at-rest:option-file"].fix)
      assert.equal("ok", f["at-rest:preflight"].severity)
      assert.equal("fail", f["at-rest:key-backup"].severity)   -- no key material yet
      assert.equal("fail", f["tables:clinic"].severity)
      table.sort(f["tables:clinic"].unencrypted)
      assert.same({ "notes", "visits" }, f["tables:clinic"].unencrypted)
      assert.equal("fail", f["in-transit:tls-load"].severity)
      assert.equal("fail", f["tls-enforce:require-transport"].severity)
      -- the verification runs as a client would, in check too
      assert.equal("fail", f["in-transit:verify"].severity)
      assert.equal("fail", f["tls-enforce:verify"].severity)
      assert.equal("require_secure_transport is not ON", f["tls-enforce:verify"].title)
      -- text: the same, for a terminal; --fail-on warn
      r = E.myseal({ "check", "--sandbox", s.name }, {})
      assert.equal(1, r.status)
      assert.matches("%[FAIL%] the keyring is not active in the server\n%s+fix: myseal run at%-rest %(step restart%)",
         r.stdout)
      assert.matches("%[FAIL%] clinic: 2 of 2 tables not encrypted", r.stdout)
      -- a --set nobody declares is bad usage
      r = E.myseal({ "check", "--sandbox", s.name, "--set", "nosuch.key=1" }, {})
      assert.equal(2, r.status)
      assert.equal("myseal: --set nosuch.key=1: no parameter nosuch.key in check or the runbooks it asks\n", r.stderr)

      for _, rb in ipairs{ { "at-rest", "--set", backup }, { "in-transit" },
                           { "tls-enforce", "--set", "tls.watch_seconds=1" } } do
         local argv = { "run", rb[1], "--sandbox", s.name, "--yes" }
         for i = 2, #rb do argv[#argv + 1] = rb[i] end
         r = E.myseal(argv, {})
         assert.equal(0, r.status, r.stdout .. r.stderr)
      end
      r = E.myseal({ "check", "--sandbox", s.name, "--format", "json", "--set", backup }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      report = assert(json.decode(r.stdout))
      assert.is_true(jsonschema.validate(SCHEMA, report))
      assert.equal(0, report.summary.fail)
      assert.equal(0, report.summary.warn)
      assert.equal("ok", report.status)
      f = findings_by_id(report)
      assert.equal("ok", f["tables:clinic"].severity)
      assert.equal(2, f["tables:clinic"].encrypted)
      assert.equal("ok", f["server-chain"].severity)
      assert.equal("ok", f["at-rest:key-backup"].severity)
      assert.equal("ok", f["in-transit:verify"].severity)
      assert.equal("ok", f["tls-enforce:verify"].severity)
      assert.equal(0, E.myseal({ "check", "--sandbox", s.name, "--fail-on", "warn", "--set", backup }, {}).status)

      -- HTML: one page, no external assets, rendered by Chromium with its summary table
      local html = dir .. "/report.html"
      r = E.myseal({ "check", "--sandbox", s.name, "--format", "html", "--output", html, "--set", backup }, {})
      assert.equal(0, r.status, r.stderr)
      local page = assert(sys.read_file(html))
      assert.is_nil(page:find("https?://"))
      assert.is_nil(page:find("<link", 1, true))
      assert.is_nil(page:find("<script", 1, true))
      local chrome = { "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--user-data-dir=" .. dir .. "/chromium", timeout = 60 }
      local function chromium(...)
         local argv = table.move(chrome, 1, #chrome, 1, { timeout = chrome.timeout })
         for _, a in ipairs{ ... } do argv[#argv + 1] = a end
         return assert(sys.run(argv))
      end
      local dom = chromium("--dump-dom", "file://" .. html)
      assert.is_true(dom.ok, dom.stderr)
      assert.matches('<table class="summary" id="summary">.-<th>at rest</th><td class="ok">%d+</td>', dom.stdout)
      local png = dir .. "/report.png"
      local shot = chromium("--window-size=1200,900", "--screenshot=" .. png, "file://" .. html)
      assert.is_true(shot.ok, shot.stderr)
      local data = assert(sys.read_file(png))
      assert.equal("\137PNG\r\n\26\n", data:sub(1, 8))
      local w = string.unpack(">I4", data, 17)
      local hgt = string.unpack(">I4", data, 21)
      assert.same({ 1200, 900 }, { w, hgt })
      assert.is_true(#data > 20000)   -- a rendered page, not a blank one
      local pdf = dir .. "/report.pdf"
      local printed = chromium("--print-to-pdf=" .. pdf, "--no-pdf-header-footer", "file://" .. html)
      assert.is_true(printed.ok, printed.stderr)
      assert.equal("%PDF", (sys.read_file(pdf) or ""):sub(1, 4))
   end)

   it("warns of TLS 1.0 in tls_version as MySQL spells it (TLSv1) and as MariaDB does (TLSv1.0)", function()
      local desc, site = dir .. "/server.lua", dir .. "/site.ini"
      assert(sys.write_file(site, "[server]\ndescribe = " .. desc .. "\n"))
      for versions, severity in pairs{ ["TLSv1,TLSv1.2"] = "warn", ["TLSv1.0,TLSv1.2"] = "warn",
            ["TLSv1.1,TLSv1.2"] = "warn", ["TLSv1.2,TLSv1.3"] = "ok" } do
         assert(sys.write_file(desc, ("return { server = 'mysql-8.0.36', variables = { tls_version = %q } }")
            :format(versions)))
         local r = E.myseal({ "check", "--site", site, "--format", "json" }, {})
         local f = findings_by_id(assert(json.decode(r.stdout), r.stderr))
         assert.same({ severity, "TLS versions allowed: " .. versions }, { f["tls-versions"].severity,
            f["tls-versions"].title }, versions)
      end
   end)

   it("says what is wrong with its usage", function()
      local r = E.myseal({ "check", "--format", "xml", "--sandbox", "x" }, {})
      assert.equal(2, r.status)
      assert.equal("myseal: check: --format is text, json, html or prometheus, not 'xml'\n", r.stderr)
      r = E.myseal({ "check" }, {})
      assert.equal(2, r.status)
      assert.matches("name a target", r.stderr)
   end)
end)

describe("myseal demo #slow", function()
   it("tells the whole story, writes the report, and leaves no server running", function()
      local dir = assert(sys.tmpdir("demo-spec"))
      local before = #sandbox.list()
      local r = E.myseal({ "demo", "--report", dir .. "/report.html" }, {})
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("%[3/6%] check before %(red%): %d+ ok, %d+ warnings?, [1-9]%d* failures?", r.stdout)
      assert.matches("%[5/6%] check after %(green%): %d+ ok, 0 warnings, 0 failures", r.stdout)
      assert.matches("demo done in %d+ s: the sandbox is stopped\n$", r.stdout)
      assert.matches("Encryption posture", assert(sys.read_file(dir .. "/report.html")))
      assert.equal(before, #sandbox.list())
      -- this demo's own server (other demos may run on the machine)
      local name = r.stdout:match("%] sandbox (demo%-%x+):")
      assert.is_string(name, r.stdout)
      local ps = assert(sys.run{ "pgrep", "-f", "mariadbd --defaults-file=/tmp/msb-" .. name .. "-" })
      assert.equal("", ps.stdout)
      sys.rmtree(dir)
   end)
end)
