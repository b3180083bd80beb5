/*
** lmysql.c: the mysql module (not implemented yet: an empty table).
*/
#include "myseal.h"

int luaopen_mysql (lua_State *L) {
  lua_newtable(L);
  return 1;
}
