/*
** myseal.h: what the host and the Lua bindings share.
**
** Every binding file (l<module>.c) exports one luaopen_<module>; the host puts
** them into package.preload (see host.c). In every binding a caller's mistake
** raises, and a failure of the world returns nil, message, code (docs/architecture.md).
*/
#ifndef MYSEAL_H
#define MYSEAL_H

#include <openssl/x509.h>

#include "lua.h"
#include "lauxlib.h"

int luaopen_sys (lua_State *L);
int luaopen_mysql (lua_State *L);
int luaopen_pki (lua_State *L);
int luaopen_cnf (lua_State *L);
int luaopen_keystore (lua_State *L);

/* sys.scan (lscan.c): the pattern scanner's binding, registered by lsys.c. */
int myseal_sys_scan (lua_State *L);

/* Pushes nil, msg, code and returns 3: the failure shape of every module. */
int myseal_fail (lua_State *L, const char *msg, int code);

/* Pushes nil, "<what>: strerror(err)", err and returns 3. Pass a saved errno. */
int myseal_fail_errno (lua_State *L, const char *what, int err);

/* Pushes the contents of a file and returns 0, or pushes nothing and
** returns an errno. */
int myseal_push_file (lua_State *L, const char *path);

/*
** The effects gate (lua/myseal/engine/guard.lua): while runbook code runs,
** nothing may write a file, run a program or signal a process except through
** ctx. Every C function that does calls myseal_gate first, before it touches
** anything: it calls the Lua function the guard put in the registry (if any)
** with what is being done and the path it goes to (or NULL), which raises
** when that is refused. Without a guard installed it does nothing.
*/
#define MYSEAL_GATE "myseal.gate"
void myseal_gate (lua_State *L, const char *what, const char *path);

/*
** Makes the metatable of a userdata type, the one way every module does it:
** a named metatable (luaL_newmetatable, so type errors name the type), the
** metamethods of meta (__gc, __close, __tostring, ...: a type with a close
** shares one idempotent close between :close(), __gc and __close) and, when
** methods is not NULL, a methods table as __index. Leaves the stack as it
** was; a second call for the same name changes nothing.
*/
void myseal_newtype (lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta);

/*
** Certificates cross module boundaries (keystore takes and returns pki
** certificates), so lpki.c exports its userdata to the other bindings.
*/

/* The X509 inside the pki certificate at index idx; raises if it is not one
** (or is closed). The pointer stays owned by the userdata. */
X509 *myseal_pki_checkcert (lua_State *L, int idx);

/* Pushes a new pki certificate userdata owning one reference to x (the
** caller gives its reference away: X509_up_ref first to keep one). */
void myseal_pki_pushcert (lua_State *L, X509 *x);

#endif
