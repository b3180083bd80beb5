--- sshd in a lab host started with `ssh_key = PATH` (a public key file): Debian's openssh-server
-- as its package sets it up (its conffiles from the .deb, sshd_config as the postinst writes it from
-- /usr/share/openssh, host keys made by ssh-keygen -A), the key in root's authorized_keys, started
-- by the package's /etc/init.d/ssh. This machine's own /etc/ssh and host keys are never read.
-- @module myseal.sandbox.host.ssh
local sys = require "sys"
local common = require "myseal.sandbox.common"
local ns = require "myseal.sandbox.host.ns"
local template = require "myseal.sandbox.host.template"

local M = {}

local fs, service = ns.fs, ns.service
local run_ok = common.run_ok

--- Makes /etc/ssh, /etc/init.d/ssh, /etc/default/ssh and /root/.ssh/authorized_keys of host `s`.
-- @param s the host (its tree made)
-- @param key_path a public key file (OpenSSH format)
-- @return true, or nil, message
function M.make(s, key_path)
   local key = sys.read_file(key_path)
   if not key or not key:match("^ssh%-%S+ %S+") then
      return nil, ("--ssh-key %s: not an OpenSSH public key"):format(key_path)
   end
   local list, err = template.versions{ "openssh-server" }
   if not list then return nil, err end
   local ok, xerr = template.install_etc(s, list, { { "/etc/ssh/.", "/etc/ssh/" },
      { "/etc/init.d/ssh", "/etc/init.d/ssh" }, { "/etc/default/ssh", "/etc/default/ssh" } })
   if not ok then return nil, xerr end
   local f = fs(s)
   -- what the postinst does besides unpacking: sshd_config from the package's copy, host keys
   ok, xerr = run_ok({ "cp", "/usr/share/openssh/sshd_config", f .. "/etc/ssh/sshd_config" }, "copying sshd_config")
   if ok then ok, xerr = run_ok({ "ssh-keygen", "-q", "-A", "-f", f }, "ssh-keygen -A") end
   if not ok then return nil, xerr end
   assert(sys.mkdir(f .. "/root/.ssh", tonumber("700", 8)))
   assert(sys.write_file(f .. "/root/.ssh/authorized_keys", key, { mode = tonumber("600", 8) }))
   return true
end

--- Starts sshd in host `s` (the package's service script).
-- @return true, or nil, message
function M.start(s)
   return service(s, "/etc/init.d/ssh", "start")
end

--- The host's ED25519 host key, as a known_hosts line needs it ("ssh-ed25519 AAAA..."), on this
-- machine's side: nil when the host has no sshd.
function M.host_key(s)
   local text = sys.read_file(fs(s, "/etc/ssh/ssh_host_ed25519_key.pub"))
   return text and text:match("^(%S+ %S+)")
end

return M
