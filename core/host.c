/*
** host.c: the myseal executable. This file owns the lua_State: it opens the
** standard libraries, registers the C modules in package.preload, puts the
** shipped Lua library and runbooks on package.path, and hands the command line
** to lua/myseal/cli.lua under lua_pcall with a traceback handler.
**
** Errors reaching this file are reported as "myseal: <message>". A table
** error { message = ..., exit = N } is an expected failure (bad usage, a
** failed step): printed without a traceback, exit status N. Anything else is
** a bug: printed with its traceback, exit status 1.
*/
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <mysql.h>
#include <openssl/crypto.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

#include "myseal.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

static const char *progname = "myseal";


static int is_dir (const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}


/* The directory holding this executable, or "" when it cannot be found. */
static void exe_dir (char *buf, size_t size, const char *argv0) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  buf[0] = '\0';
  if (n > 0)
    path[n] = '\0';
  else if (argv0 == NULL || realpath(argv0, path) == NULL)
    return;
  char *slash = strrchr(path, '/');
  if (slash == NULL)
    return;
  *slash = '\0';
  snprintf(buf, size, "%s", path);
}


static int has_library (const char *dir) {
  char probe[PATH_MAX + 16];
  snprintf(probe, sizeof(probe), "%s/lua/myseal", dir);
  return is_dir(probe);
}


/*
** Where lua/ and runbooks/ are: $MYSEAL_HOME; for the binary of the build
** tree it was built in, the source tree it was built from; for any other
** copy, beside it (<prefix>/bin/myseal finds <prefix>/share/myseal, where
** the package puts them), then the data directory configured at build time.
** An installed copy never reads a source tree, and a build never reads an
** installed copy.
*/
static int find_home (char *buf, size_t size, const char *argv0) {
  char dir[PATH_MAX];
  const char *env = getenv("MYSEAL_HOME");
  if (env != NULL && *env != '\0') {
    snprintf(buf, size, "%s", env);
    return 1;
  }
  exe_dir(dir, sizeof(dir), argv0);
  char *build = realpath(MYSEAL_BUILD_DIR, NULL);
  int in_build = dir[0] != '\0' && build != NULL && strcmp(dir, build) == 0;
  free(build);
  char installed[PATH_MAX + 32];
  snprintf(installed, sizeof(installed), "%s/../share/myseal", dir);
  const char *candidates[2];
  candidates[0] = in_build ? MYSEAL_SOURCE_DIR : dir[0] ? installed : NULL;
  candidates[1] = in_build ? NULL : MYSEAL_DATA_DIR;
  for (int i = 0; i < 2; i++) {
    if (candidates[i] == NULL || !has_library(candidates[i]))
      continue;
    char *real = realpath(candidates[i], NULL);
    snprintf(buf, size, "%s", real ? real : candidates[i]);
    free(real);
    return 1;
  }
  return 0;
}


/* require "myseal.host": versions and where things are. */
static int host_info (lua_State *L) {
  const char *home = lua_tostring(L, lua_upvalueindex(1));
  lua_createtable(L, 0, 8);
  lua_pushliteral(L, MYSEAL_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushliteral(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_pushfstring(L, "%s %s", MYSEAL_CLIENT_NAME, mysql_get_client_info());
  lua_setfield(L, -2, "client");
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "openssl");
  lua_pushstring(L, home);
  lua_setfield(L, -2, "home");
  lua_pushfstring(L, "%s/lua", home);
  lua_setfield(L, -2, "lua_dir");
  lua_pushfstring(L, "%s/runbooks", home);
  lua_setfield(L, -2, "runbooks_dir");
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    lua_pushlstring(L, exe, (size_t)n);
    lua_setfield(L, -2, "exe");  /* this binary: tests run it as a child */
  }
  return 1;
}


static void preload (lua_State *L, const char *home) {
  static const luaL_Reg modules[] = {
    {"sys", luaopen_sys},
    {"mysql", luaopen_mysql},
    {"pki", luaopen_pki},
    {"cnf", luaopen_cnf},
    {"keystore", luaopen_keystore},
    {NULL, NULL}
  };
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = modules; m->name != NULL; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pushstring(L, home);
  lua_pushcclosure(L, host_info, 1);
  lua_setfield(L, -2, "myseal.host");
  lua_pop(L, 1);
}


/* Our directories go first on package.path; the rest (busted, penlight) stays. */
static void set_path (lua_State *L, const char *home) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/runbooks/?.lua;%s",
                  home, home, home, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}


static int msghandler (lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE)
    return 1;  /* an expected failure: keep the table, no traceback */
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}


/* Runs inside lua_pcall: everything that can raise happens here. */
static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  char home[PATH_MAX];
  luaL_checkversion(L);
  luaL_openlibs(L);
  if (!find_home(home, sizeof(home), argv[0]))
    return luaL_error(L, "cannot find the myseal Lua library (lua/myseal); set MYSEAL_HOME");
  preload(L, home);
  set_path(L, home);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "myseal.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}


static int report (lua_State *L, int status) {
  if (status == LUA_OK)
    return lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  int code = 1;
  const char *msg = NULL;
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_getfield(L, -1, "exit");
    if (lua_isinteger(L, -1))
      code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "message");
    msg = lua_tostring(L, -1);
  }
  else
    msg = lua_tostring(L, -1);
  fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(no error message)");
  fflush(stderr);
  return code;
}


int main (int argc, char **argv) {
  /* A child that exits early must not kill us with SIGPIPE: writes fail with EPIPE. */
  signal(SIGPIPE, SIG_IGN);
  if (mysql_library_init(0, NULL, NULL) != 0) {
    fprintf(stderr, "%s: cannot initialise the MySQL client library\n", progname);
    return 1;
  }
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create Lua state: not enough memory\n", progname);
    return 1;
  }
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 1);
  int code = report(L, status);
  lua_close(L);
  mysql_library_end();
  return code;
}
