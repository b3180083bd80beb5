/*
** lscan.c: sys.scan, the binding of the pattern scanner (core/pure/scan.c).
** It only converts: paths and patterns in, counts per file out. The patterns
** are secrets: no message names one (they are counted by position), and the
** C copies are wiped as soon as the files are read.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "scan.h"

#define SCAN_MT "myseal.sys.Scan"
#define MAX_THREADS 16

/* What one call holds while the files are read; freed by scan_close, by
** __gc or __close when an error unwinds first. */
typedef struct scanjob {
  scan_set *set;
  scan_file *files;
  size_t nfiles;
} scanjob;


static int scan_close (lua_State *L) {
  scanjob *j = luaL_checkudata(L, 1, SCAN_MT);
  scan_free(j->set);
  j->set = NULL;
  if (j->files != NULL) {
    for (size_t i = 0; i < j->nfiles; i++)
      free(j->files[i].counts);
    free(j->files);
    j->files = NULL;
  }
  return 0;
}


static scanjob *new_job (lua_State *L) {
  scanjob *j = lua_newuserdatauv(L, sizeof(scanjob), 0);
  memset(j, 0, sizeof(*j));
  if (luaL_newmetatable(L, SCAN_MT)) {
    lua_pushcfunction(L, scan_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, scan_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return j;
}


static int default_threads (void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}


/* The per-file result: { bytes, hits, per_pattern = { [i] = n } } or { error, errno }. */
static void push_result (lua_State *L, const scan_file *f, size_t npat) {
  if (f->err != 0) {
    lua_createtable(L, 0, 2);
    if (f->err == SCAN_ENOTREG) {
      lua_pushfstring(L, "%s: not a regular file", f->path);
      lua_pushinteger(L, EINVAL);
    }
    else {
      lua_pushfstring(L, "%s: %s", f->path, strerror(f->err));
      lua_pushinteger(L, f->err);
    }
    lua_setfield(L, -3, "errno");
    lua_setfield(L, -2, "error");
    return;
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)f->bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, (lua_Integer)f->hits);
  lua_setfield(L, -2, "hits");
  lua_newtable(L);
  for (size_t i = 0; f->counts != NULL && i < npat; i++)
    if (f->counts[i] > 0) {
      lua_pushinteger(L, (lua_Integer)f->counts[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
  lua_setfield(L, -2, "per_pattern");
}


/* sys.scan(paths, patterns [, { threads = n }])
** -> { [path] = { bytes, hits, per_pattern = { [i] = count } } | { error, errno } }
** | nil, message, ENOMEM. Counts every occurrence of each pattern in each file. */
int myseal_sys_scan (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int threads = default_threads();
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "threads");
    if (!lua_isnil(L, -1)) {
      lua_Integer t = luaL_checkinteger(L, -1);
      luaL_argcheck(L, t >= 1 && t <= MAX_THREADS, 3, "threads must be 1 to 16");
      threads = (int)t;
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  lua_Integer npat = luaL_len(L, 2), nfiles = luaL_len(L, 1);
  luaL_argcheck(L, npat >= 1 && npat <= (lua_Integer)SCAN_MAX_PATTERNS, 2,
                "between 1 and 1048576 patterns");
  scanjob *j = new_job(L);  /* index 4 */
  const unsigned char **pats = lua_newuserdatauv(L, sizeof(char *) * (size_t)npat, 0);
  size_t *lens = lua_newuserdatauv(L, sizeof(size_t) * (size_t)npat, 0);
  for (lua_Integer i = 1; i <= npat; i++) {
    /* the strings stay alive in the patterns table (argument 2) */
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      luaL_error(L, "bad pattern %d: a %s, not a string", (int)i, luaL_typename(L, -1));
    pats[i - 1] = (const unsigned char *)lua_tolstring(L, -1, &lens[i - 1]);
    lua_pop(L, 1);
  }
  int err;
  size_t bad;
  j->set = scan_compile(pats, lens, (size_t)npat, &err, &bad);
  if (j->set == NULL && err == EINVAL)
    luaL_error(L, "bad pattern %d: %s", (int)bad + 1,
               lens[bad] == 0 ? "empty" : "longer than 65536 bytes");
  if (j->set == NULL)
    return myseal_fail_errno(L, "cannot scan", err);
  j->files = calloc(nfiles > 0 ? (size_t)nfiles : 1, sizeof(scan_file));
  if (j->files == NULL)
    return myseal_fail_errno(L, "cannot scan", ENOMEM);
  j->nfiles = (size_t)nfiles;
  for (lua_Integer i = 1; i <= nfiles; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      luaL_error(L, "bad path %d: a %s, not a string", (int)i, luaL_typename(L, -1));
    j->files[i - 1].path = lua_tostring(L, -1);  /* alive in the paths table */
    lua_pop(L, 1);
  }
  err = scan_files(j->set, j->files, j->nfiles, threads);
  scan_free(j->set);  /* the patterns are not needed any more: wipe them now */
  j->set = NULL;
  if (err != 0)
    return myseal_fail_errno(L, "cannot scan", err);
  lua_createtable(L, 0, (int)nfiles);
  for (size_t i = 0; i < j->nfiles; i++) {
    push_result(L, &j->files[i], (size_t)npat);
    lua_setfield(L, -2, j->files[i].path);
  }
  lua_pushcfunction(L, scan_close);
  lua_pushvalue(L, 4);
  lua_call(L, 1, 0);
  return 1;
}
