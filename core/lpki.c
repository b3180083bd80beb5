/*
** lpki.c: the pki module (not implemented yet: an empty table).
*/
#include "myseal.h"

int luaopen_pki (lua_State *L) {
  lua_newtable(L);
  return 1;
}
