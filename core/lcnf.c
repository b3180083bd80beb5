/*
** lcnf.c: the cnf module (not implemented yet: an empty table).
*/
#include "myseal.h"

int luaopen_cnf (lua_State *L) {
  lua_newtable(L);
  return 1;
}
