/*
** lkeystore.c: the keystore module (not implemented yet: an empty table).
*/
#include "myseal.h"

int luaopen_keystore (lua_State *L) {
  lua_newtable(L);
  return 1;
}
