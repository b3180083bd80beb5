/*
** util.c: helpers every binding shares.
*/
#include <errno.h>
#include <stdio.h>
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


int myseal_push_file (lua_State *L, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return errno;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n;
  char chunk[8192];
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    luaL_addlstring(&b, chunk, n);
  int err = ferror(f) ? (errno ? errno : EIO) : 0;
  fclose(f);
  luaL_pushresult(&b);
  if (err) {
    lua_pop(L, 1);
    return err;
  }
  return 0;
}


void myseal_gate (lua_State *L, const char *what, const char *path) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, MYSEAL_GATE) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushstring(L, what);
  if (path != NULL)
    lua_pushstring(L, path);
  else
    lua_pushnil(L);
  lua_call(L, 2, 0);  /* raises when refused: nothing is held yet */
}


void myseal_newtype (lua_State *L, const char *name, const luaL_Reg *methods, const luaL_Reg *meta) {
  if (!luaL_newmetatable(L, name)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, meta, 0);
  if (methods != NULL) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}
