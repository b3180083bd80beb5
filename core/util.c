/*
** util.c: helpers every binding shares.
*/
#include <string.h>

#include "myseal.h"

int myseal_fail (lua_State *L, const char *msg, int code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushinteger(L, code);
  return 3;
}


int myseal_fail_errno (lua_State *L, const char *what, int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  lua_pushinteger(L, err);
  return 3;
}
