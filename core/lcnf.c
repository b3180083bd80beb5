/*
** lcnf.c: the cnf module: MySQL option files (and site profiles, which are
** INI files too) read with the server's rules and edited byte for byte. The
** line model is core/pure/cnfmodel.c; this file loads include trees and
** converts.
**
**   cnf.load(path [, { includes = true, cwd = dir }]) -> doc | nil, msg, line
**   cnf.parse(text [, name]) -> doc | nil, msg, line
**   cnf.diff(old, new [, from [, to]]) -> unified diff text
**   doc:get(group, name), doc:effective(groups, name) -> value, { file, line }
**   doc:sections(), doc:entries([group]), doc:files(), doc:warnings()
**   doc:set(group, name, value | true [, file]), doc:add(...), doc:unset(group, name),
**   doc:add_section(group [, file]), doc:target(name [, groups])
**   doc:text([file]), doc:diff(), doc:changed(), doc:save{ backup = true },
**   doc:close() (also __gc and __close; a closed document says so)
**
** A value is a string, or true for a bare flag (skip-name-resolve).
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "cnfmodel.h"
#include "notes.h"
#include "sysutil.h"
#include "udiff.h"

#define DOC_MT "myseal.cnf.Document"
/* The server follows !include and !includedir to this many levels. */
#define MAX_DEPTH 10
/* Files being read at once, innermost last (a loop is found sooner). */
#define MAX_CHAIN 64

/* What the k-th include line of a file named when it was read: the files, in
** the order the server reads them (none when it could not be read). */
typedef struct incl {
  size_t *files;       /* indices into cdoc.files */
  size_t n;
} incl;

typedef struct cfile {
  char *path;          /* as named (for messages and saving) */
  char *real;          /* realpath, to read a file included twice only once (NULL for parsed text) */
  cm_doc d;
  char *orig;          /* the text as read, for diffs */
  size_t origlen;
  int exists;          /* there was a file on disk */
  int ignored;         /* world-writable: the server skips it */
  incl *inc;           /* one per include line, in line order */
  size_t ninc;
} cfile;

typedef struct cdoc {
  cfile *files;
  size_t n, cap;
  int includes;        /* follow !include and !includedir */
  char *base;          /* the server's working directory, for relative includes (NULL: beside the including file) */
  nt_list warn;        /* found while loading: "path:line: what" */
} cdoc;

typedef struct loaderr {
  char msg[1024];
  size_t line;
} loaderr;


/* --- documents ----------------------------------------------------------------- */

static void doc_free (cdoc *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->files[i].path);
    free(c->files[i].real);
    free(c->files[i].orig);
    for (size_t k = 0; k < c->files[i].ninc; k++)
      free(c->files[i].inc[k].files);
    free(c->files[i].inc);
    cm_free(&c->files[i].d);
  }
  free(c->files);
  nt_free(&c->warn);
  free(c->base);
  c->base = NULL;
  c->files = NULL;
  c->n = c->cap = 0;
}

/* doc:close(), also __gc and __close: frees the files; idempotent. */
static int doc_close (lua_State *L) {
  doc_free(luaL_checkudata(L, 1, DOC_MT));
  return 0;
}

/* A new document, closed (no files) until one is added. */
static cdoc *new_doc (lua_State *L) {
  cdoc *c = lua_newuserdatauv(L, sizeof(cdoc), 0);
  memset(c, 0, sizeof(*c));
  luaL_setmetatable(L, DOC_MT);
  return c;
}

/* Every method goes through here: a document always has its root file
** until it is closed. */
static cdoc *check_doc (lua_State *L, int i) {
  cdoc *c = luaL_checkudata(L, i, DOC_MT);
  if (c->n == 0)
    luaL_error(L, "attempt to use a closed document");
  return c;
}

/* Adds a parsed file to c; 0, or -1 with e filled. Takes text (malloc'd). */
static int add_file (cdoc *c, const char *path, const char *real, char *text, size_t len,
                     int exists, loaderr *e) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 4;
    cfile *f = realloc(c->files, cap * sizeof(cfile));
    if (f == NULL) {
      free(text);
      snprintf(e->msg, sizeof(e->msg), "out of memory");
      return -1;
    }
    c->files = f;
    c->cap = cap;
  }
  cfile *f = &c->files[c->n];
  memset(f, 0, sizeof(*f));
  char err[512];
  size_t line = 0;
  if (cm_parse(&f->d, text, len, err, sizeof(err), &line) != 0) {
    snprintf(e->msg, sizeof(e->msg), "%s:%zu: %s", path, line, err);
    e->line = line;
    free(text);
    return -1;
  }
  f->path = strdup(path);
  f->real = real ? strdup(real) : NULL;
  f->orig = text;
  f->origlen = len;
  f->exists = exists;
  c->n++;
  if (f->path == NULL || (real && f->real == NULL)) {
    snprintf(e->msg, sizeof(e->msg), "out of memory");
    return -1;
  }
  return 0;
}

/* Records a warning found while loading. 0, or -1 (out of memory, e filled). */
#define add_warning(c, e, ...) \
  (nt_addf(&(c)->warn, __VA_ARGS__) == 0 ? 0 : (snprintf((e)->msg, sizeof((e)->msg), "out of memory"), -1))

/* Reads a whole file. 0, or an errno. */
static int slurp (const char *path, char **text, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return errno;
  su_buf b = {0};
  char chunk[8192];
  size_t n;
  int err = 0;
  while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
    if (b.len + n + 1 > b.cap) {
      size_t cap = b.cap ? 2 * b.cap : 16384;
      while (cap < b.len + n + 1)
        cap *= 2;
      char *p = realloc(b.data, cap);
      if (p == NULL) {
        err = ENOMEM;
        break;
      }
      b.data = p;
      b.cap = cap;
    }
    memcpy(b.data + b.len, chunk, n);
    b.len += n;
  }
  if (!err && ferror(fp))
    err = errno ? errno : EIO;
  fclose(fp);
  if (err) {
    free(b.data);
    return err;
  }
  if (b.data == NULL && (b.data = malloc(1)) == NULL)
    return ENOMEM;
  b.data[b.len] = '\0';
  *text = b.data;
  *len = b.len;
  return 0;
}

/* The path an include line of file from names, without trailing slashes:
** a relative one against base (the server's working directory) when there is
** one, else beside the including file. */
static void resolve (const cdoc *c, const char *from, const char *name, size_t nlen, char *out, size_t outlen) {
  while (nlen > 1 && name[nlen - 1] == '/')
    nlen--;
  if (nlen > 0 && name[0] == '/') {
    snprintf(out, outlen, "%.*s", (int)nlen, name);
    return;
  }
  const char *slash = strrchr(from, '/');
  if (c->base != NULL)
    snprintf(out, outlen, "%s/%.*s", c->base, (int)nlen, name);
  else if (slash == NULL)
    snprintf(out, outlen, "%.*s", (int)nlen, name);
  else
    snprintf(out, outlen, "%.*s/%.*s", (int)(slash - from), from, (int)nlen, name);
}

/* Does !includedir read this name? The server's test: its last extension is
** ".cnf", so ".cnf" and ".hidden.cnf" are read too. */
static int cnf_name (const char *name) {
  const char *dot = strrchr(name, '.');
  return dot != NULL && strcmp(dot, ".cnf") == 0;
}

static int cmp_names (const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.cnf files of dir, sorted as the server reads them. NULL on error. */
static char **dir_files (const char *dir, size_t *count, int *err) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    *err = errno;
    return NULL;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  *err = 0;
  while ((de = readdir(d)) != NULL) {
    if (!cnf_name(de->d_name))
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      char **p = realloc(names, cap * sizeof(char *));
      if (p == NULL) {
        *err = ENOMEM;
        break;
      }
      names = p;
    }
    if ((names[n] = strdup(de->d_name)) == NULL) {
      *err = ENOMEM;
      break;
    }
    n++;
  }
  closedir(d);
  if (*err) {
    for (size_t i = 0; i < n; i++)
      free(names[i]);
    free(names);
    return NULL;
  }
  if (n > 0)
    qsort(names, n, sizeof(char *), cmp_names);
  *count = n;
  return names ? names : calloc(1, sizeof(char *));
}

/* The files being read, innermost last: to see an include loop. */
typedef struct chain {
  const char *real[MAX_CHAIN];
  int n;
} chain;

static int load_file (cdoc *c, const char *path, chain *ch, size_t *index, loaderr *e);

/* Adds file index idx to what include line number k of file fi names. */
static int incl_add (cfile *f, size_t k, size_t idx, loaderr *e) {
  size_t *p = realloc(f->inc[k].files, (f->inc[k].n + 1) * sizeof(size_t));
  if (p == NULL) {
    snprintf(e->msg, sizeof(e->msg), "out of memory");
    return -1;
  }
  p[f->inc[k].n++] = idx;
  f->inc[k].files = p;
  return 0;
}

/* Loads what the include line at index li (the k-th include line) of file
** fi names. A file the server cannot read it skips (so do we, with a
** warning); a directory it cannot list is fatal for it (and for us). */
static int load_include (cdoc *c, size_t fi, size_t li, size_t k, chain *ch, loaderr *e) {
  const cm_line *l = &c->files[fi].d.lines[li];
  char target[PATH_MAX];
  resolve(c, c->files[fi].path, l->raw + l->name_off, l->name_len, target, sizeof(target));
  char from[PATH_MAX];
  snprintf(from, sizeof(from), "%s", c->files[fi].path);
  const char *directive = l->kind == CM_INCLUDE ? "!include" : "!includedir";
  if (l->raw[l->name_off] != '/' && c->base == NULL &&
      add_warning(c, e, "%s:%zu: %s %.*s is relative: the server resolves it against its working "
                  "directory, not this file's (myseal reads %s)", from, li + 1, directive,
                  (int)l->name_len, l->raw + l->name_off, target) != 0)
    return -1;
  size_t idx;
  if (l->kind == CM_INCLUDE) {
    int rc = load_file(c, target, ch, &idx, e);
    if (rc == -2)
      return add_warning(c, e, "%s:%zu: !include %s: the server skips it", from, li + 1, e->msg);
    return rc == 0 ? incl_add(&c->files[fi], k, idx, e) : rc;
  }
  size_t n = 0;
  int err;
  char **names = dir_files(target, &n, &err);
  if (names == NULL) {
    snprintf(e->msg, sizeof(e->msg), "%.400s:%zu: !includedir %.400s: %s", from, li + 1, target,
             strerror(err));
    e->line = li + 1;
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char file[PATH_MAX];
    int len = snprintf(file, sizeof(file), "%s/%s", target, names[i]);
    if (len < 0 || (size_t)len >= sizeof(file)) {
      snprintf(e->msg, sizeof(e->msg), "%.400s/%.100s: path too long", target, names[i]);
      rc = -1;
      break;
    }
    rc = load_file(c, file, ch, &idx, e);
    if (rc == -2)
      rc = add_warning(c, e, "%s:%zu: !includedir: %s: the server reads nothing from it", from, li + 1,
                       e->msg);
    else if (rc == 0)
      rc = incl_add(&c->files[fi], k, idx, e);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return rc;
}

/* Loads path, and with c->includes what it includes, once each (a file
** included again is the same file: the walk reads it again, as the server
** does); *index is its place in c->files. 0; -1 on error (e filled); -2
** when path itself cannot be read (e->msg: "path: why"). */
static int load_file (cdoc *c, const char *path, chain *ch, size_t *index, loaderr *e) {
  char real[PATH_MAX];
  if (realpath(path, real) == NULL) {
    snprintf(e->msg, sizeof(e->msg), "%s: %s", path, strerror(errno));
    return -2;
  }
  for (int i = 0; i < ch->n; i++)
    if (strcmp(ch->real[i], real) == 0) {
      *index = 0;
      for (size_t k = 0; k < c->n; k++)
        if (c->files[k].real && strcmp(c->files[k].real, real) == 0)
          *index = k;
      return add_warning(c, e, "%s: an include loop (it includes itself through %s): the server reads "
                         "it again and again, %d levels deep", path, ch->real[ch->n - 1], MAX_DEPTH);
    }
  for (size_t i = 0; i < c->n; i++)
    if (c->files[i].real && strcmp(c->files[i].real, real) == 0) {
      *index = i;   /* read already: included twice */
      return 0;
    }
  struct stat st;
  if (stat(real, &st) != 0 || S_ISDIR(st.st_mode)) {
    snprintf(e->msg, sizeof(e->msg), "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
    return -2;
  }
  if (ch->n == MAX_CHAIN) {
    snprintf(e->msg, sizeof(e->msg), "%s: includes nested more than %d deep", path, MAX_CHAIN);
    return -1;
  }
  char *text = NULL;
  size_t len = 0;
  int err = slurp(path, &text, &len);
  if (err) {
    snprintf(e->msg, sizeof(e->msg), "%s: %s", path, strerror(err));
    return -2;
  }
  if (add_file(c, path, real, text, len, 1, e) != 0)
    return -1;
  size_t fi = c->n - 1;
  *index = fi;
  if ((st.st_mode & S_IWOTH) && S_ISREG(st.st_mode)) {
    c->files[fi].ignored = 1;
    return add_warning(c, e, "%s: it is world-writable, and the server ignores such a file (chmod o-w)", path);
  }
  if (!c->includes)
    return 0;
  size_t ninc = 0;
  for (size_t li = 0; li < c->files[fi].d.n; li++)
    ninc += c->files[fi].d.lines[li].kind == CM_INCLUDE || c->files[fi].d.lines[li].kind == CM_INCLUDEDIR;
  if (ninc == 0)
    return 0;
  if ((c->files[fi].inc = calloc(ninc, sizeof(incl))) == NULL) {
    snprintf(e->msg, sizeof(e->msg), "out of memory");
    return -1;
  }
  c->files[fi].ninc = ninc;
  ch->real[ch->n++] = c->files[fi].real;
  size_t k = 0;
  for (size_t li = 0; li < c->files[fi].d.n; li++) {
    enum cm_kind kind = c->files[fi].d.lines[li].kind;
    if ((kind == CM_INCLUDE || kind == CM_INCLUDEDIR) && load_include(c, fi, li, k++, ch, e) != 0)
      return -1;
  }
  ch->n--;
  return 0;
}

/* Warns, once, about include lines the server skips for being nested too
** deep (it follows directives to MAX_DEPTH levels). */
static int check_depth (cdoc *c, size_t fi, int depth, int *warned, loaderr *e) {
  const cfile *f = &c->files[fi];
  if (f->ignored || *warned)
    return 0;
  for (size_t k = 0; k < f->ninc; k++) {
    if (depth >= MAX_DEPTH && f->inc[k].n > 0) {
      *warned = 1;
      return add_warning(c, e, "%s: its includes are %d levels deep: the server skips the directives "
                         "there, and so does myseal", f->path, MAX_DEPTH);
    }
    for (size_t i = 0; i < f->inc[k].n; i++)
      if (check_depth(c, f->inc[k].files[i], depth + 1, warned, e) != 0)
        return -1;
  }
  return 0;
}

/* cnf.load(path [, { includes = true, cwd = dir }]) -> doc | nil, msg, line
** cwd: the server's working directory, against which it resolves relative
** includes; without it they are read beside the including file (with a
** warning that the server does otherwise). */
static int cnf_load (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int includes = 0;
  const char *base = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "includes");
    includes = lua_toboolean(L, -1);
    lua_getfield(L, 2, "cwd");
    base = luaL_optstring(L, -1, NULL);
    lua_pop(L, 2);   /* the table keeps base */
  }
  cdoc *c = new_doc(L);
  c->includes = includes;
  if (base != NULL && (c->base = strdup(base)) == NULL)
    return luaL_error(L, "not enough memory");
  chain ch = { {0}, 0 };
  loaderr e = { "", 0 };
  size_t root;
  int warned = 0;
  if (load_file(c, path, &ch, &root, &e) != 0 || check_depth(c, 0, 0, &warned, &e) != 0) {
    doc_free(c);
    return myseal_fail(L, e.msg, (int)e.line);
  }
  return 1;
}

/* cnf.parse(text [, name]) -> doc | nil, msg, line */
static int cnf_parse (lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "(text)");
  cdoc *c = new_doc(L);
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return luaL_error(L, "not enough memory");
  memcpy(copy, text, len);
  copy[len] = '\0';
  struct stat st;
  loaderr e = { "", 0 };
  if (add_file(c, name, NULL, copy, len, stat(name, &st) == 0, &e) != 0) {
    doc_free(c);
    return myseal_fail(L, e.msg, (int)e.line);
  }
  return 1;
}


/* --- reading --------------------------------------------------------------------------- */

/* The option lines of the tree in the order the server reads them. */
typedef void (*visit_fn) (lua_State *L, const cfile *f, const cm_line *l, size_t line, void *ud);

static void walk (lua_State *L, const cdoc *c, size_t fi, int depth, visit_fn fn, void *ud) {
  const cfile *f = &c->files[fi];
  if (f->ignored)
    return;
  size_t k = 0;
  for (size_t li = 0; li < f->d.n; li++) {
    const cm_line *l = &f->d.lines[li];
    if (l->kind == CM_OPTION)
      fn(L, f, l, li + 1, ud);
    else if (l->kind == CM_INCLUDE || l->kind == CM_INCLUDEDIR) {
      if (k < f->ninc && depth < MAX_DEPTH)
        for (size_t i = 0; i < f->inc[k].n; i++)
          walk(L, c, f->inc[k].files[i], depth + 1, fn, ud);
      k++;
    }
  }
}

/* Pushes the value of an option line: a string, or true for a bare flag. */
static void push_value (lua_State *L, const cm_line *l) {
  if (!l->has_value) {
    lua_pushboolean(L, 1);
    return;
  }
  size_t len;
  char *v = cm_value(l, &len);
  if (v == NULL)
    luaL_error(L, "not enough memory");
  lua_pushlstring(L, v, len);
  free(v);
}

static void push_origin (lua_State *L, const cfile *f, size_t line) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, f->path);
  lua_setfield(L, -2, "file");
  lua_pushinteger(L, (lua_Integer)line);
  lua_setfield(L, -2, "line");
}

typedef struct lookup {
  const char **groups;
  int ngroups;
  const char *name;
  /* the last match */
  const cfile *f;
  const cm_line *l;
  size_t line;
  int negate;          /* 1: skip-/disable- NAME (false), 2: enable- NAME (true) */
} lookup;

static int in_groups (const cfile *f, const cm_line *l, const char **groups, int n) {
  for (int i = 0; i < n; i++)
    if (cm_same_section(&f->d.lines[l->section], groups[i]))
      return 1;
  return 0;
}

static void visit_lookup (lua_State *L, const cfile *f, const cm_line *l, size_t line, void *ud) {
  (void)L;
  lookup *k = ud;
  if (!in_groups(f, l, k->groups, k->ngroups))
    return;
  const char *name = l->raw + l->name_off;
  size_t nlen = l->name_len, want = strlen(k->name);
  static const struct { const char *prefix; int negate; } prefixes[] = {
    {"skip-", 1}, {"skip_", 1}, {"disable-", 1}, {"disable_", 1}, {"enable-", 2}, {"enable_", 2},
  };
  if (cm_same_name(name, nlen, k->name, want)) {
    k->f = f, k->l = l, k->line = line, k->negate = 0;
    return;
  }
  for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
    size_t pl = strlen(prefixes[i].prefix);
    if (nlen > pl && strncasecmp(name, prefixes[i].prefix, pl) == 0 &&
        cm_same_name(name + pl, nlen - pl, k->name, want)) {
      k->f = f, k->l = l, k->line = line, k->negate = prefixes[i].negate;
      return;
    }
  }
}

static int push_lookup (lua_State *L, lookup *k) {
  if (k->l == NULL)
    return 0;
  if (k->negate == 1)
    lua_pushboolean(L, 0);
  else if (k->negate == 2)
    lua_pushboolean(L, 1);
  else
    push_value(L, k->l);
  push_origin(L, k->f, k->line);
  return 2;
}

/* doc:get(group, name) -> value, { file, line } | nothing */
static int doc_get (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *group = luaL_checkstring(L, 2);
  lookup k = { &group, 1, luaL_checkstring(L, 3), NULL, NULL, 0, 0 };
  walk(L, c, 0, 0, visit_lookup, &k);
  return push_lookup(L, &k);
}

/* doc:effective({ group, ... }, name) -> value, { file, line } | nothing:
** what the server sees reading those groups, skip-NAME meaning false. */
static int doc_effective (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 3);
  int n = (int)luaL_len(L, 2);
  luaL_argcheck(L, n > 0 && n <= 16, 2, "a list of 1 to 16 group names");
  const char *groups[16];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    groups[i] = lua_tostring(L, -1);
    if (groups[i] == NULL)
      return luaL_argerror(L, 2, "group names must be strings");
    lua_pop(L, 1);  /* the table keeps it */
  }
  lookup k = { groups, n, name, NULL, NULL, 0, 0 };
  walk(L, c, 0, 0, visit_lookup, &k);
  return push_lookup(L, &k);
}

typedef struct collect {
  const char *group;   /* NULL: every section name */
  int t;               /* the result table's index */
  lua_Integer n;
} collect;

static void visit_entries (lua_State *L, const cfile *f, const cm_line *l, size_t line, void *ud) {
  collect *k = ud;
  const cm_line *section = &f->d.lines[l->section];
  if (k->group != NULL && !cm_same_section(section, k->group))
    return;
  lua_createtable(L, 0, 5);
  lua_pushlstring(L, section->raw + section->name_off, section->name_len);
  lua_setfield(L, -2, "group");
  lua_pushlstring(L, l->raw + l->name_off, l->name_len);
  lua_setfield(L, -2, "name");
  push_value(L, l);
  lua_setfield(L, -2, "value");
  lua_pushstring(L, f->path);
  lua_setfield(L, -2, "file");
  lua_pushinteger(L, (lua_Integer)line);
  lua_setfield(L, -2, "line");
  lua_rawseti(L, k->t, ++k->n);
}

/* doc:entries([group]) -> { { name, value, group, file, line }, ... }: the
** options of group (of every group without one) in the order the server reads them */
static int doc_entries (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  collect k = { luaL_optstring(L, 2, NULL), 0, 0 };
  lua_newtable(L);
  k.t = lua_gettop(L);
  walk(L, c, 0, 0, visit_entries, &k);
  return 1;
}

static void push_lower (lua_State *L, const char *s, size_t n) {
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
  luaL_pushresultsize(&b, n);
}

/* doc:sections() -> the group names, first appearance first, as written */
static int doc_sections (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  lua_newtable(L);       /* result */
  lua_newtable(L);       /* seen, by lower-case name */
  lua_Integer n = 0;
  for (size_t fi = 0; fi < c->n; fi++) {
    const cm_doc *d = &c->files[fi].d;
    for (size_t li = 0; li < d->n; li++) {
      const cm_line *l = &d->lines[li];
      if (l->kind != CM_SECTION)
        continue;
      push_lower(L, l->raw + l->name_off, l->name_len);
      if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushlstring(L, l->raw + l->name_off, l->name_len);
        lua_rawseti(L, -4, ++n);
        push_lower(L, l->raw + l->name_off, l->name_len);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return 1;
}

/* Pushes the warning for line l (line number ln) of f about flag w. */
static void push_line_warning (lua_State *L, const cfile *f, const cm_line *l, size_t ln, unsigned w) {
  const char *name = l->raw + l->name_off;
  int nlen = (int)l->name_len;
  switch (w) {
    case CM_W_GROUP_BLANK: {
      int lead = 0;
      while (lead < nlen && (name[lead] == ' ' || name[lead] == '\t'))
        lead++;
      lua_pushfstring(L, "%s:%d: the server names this group '%s' (a blank after '[' is part of the "
                      "name): its options are not [%s]'s", f->path, (int)ln,
                      lua_pushlstring(L, name, (size_t)nlen), lua_pushlstring(L, name + lead, (size_t)(nlen - lead)));
      lua_replace(L, -3);
      lua_pop(L, 1);
      return;
    }
    case CM_W_GROUP_EMPTY:
      lua_pushfstring(L, "%s:%d: an empty group name: no program reads the options under it", f->path, (int)ln);
      return;
    case CM_W_GROUP_TEXT:
      lua_pushfstring(L, "%s:%d: text after the group name, which the server ignores", f->path, (int)ln);
      return;
    case CM_W_DIRECTIVE:
      lua_pushfstring(L, "%s:%d: not !include or !includedir: the server skips this directive", f->path, (int)ln);
      return;
    case CM_W_OPEN_QUOTE:
      lua_pushfstring(L, "%s:%d: the value of '%s' starts with a quote that does not close: the server "
                      "keeps the quote in the value", f->path, (int)ln, lua_pushlstring(L, name, (size_t)nlen));
      lua_remove(L, -2);
      return;
    case CM_W_A0:
      lua_pushfstring(L, "%s:%d: the value of '%s' starts or ends with a 0xA0 byte (as in a UTF-8 '\xC3\xA0'), "
                      "which the server trims as a blank: quote the value", f->path, (int)ln,
                      lua_pushlstring(L, name, (size_t)nlen));
      lua_remove(L, -2);
      return;
    default: {  /* CM_W_LONG */
      size_t at = CM_SERVER_LINE < l->len ? CM_SERVER_LINE : l->len;
      size_t more = l->len - at > 20 ? 20 : l->len - at;
      lua_pushfstring(L, "%s:%d: the line is longer than the server's line buffer (%d bytes): the server "
                      "reads the rest ('%s...') as another line", f->path, (int)ln, CM_SERVER_LINE,
                      lua_pushlstring(L, l->raw + at, more));
      lua_remove(L, -2);
    }
  }
}

/* doc:warnings() -> { "path:line: what", ... }: what the server reads
** differently from what the text suggests, or skips: per file, then what
** the include walk found. */
static int doc_warnings (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  lua_newtable(L);
  lua_Integer n = 0;
  for (size_t i = 0; i < c->n; i++) {
    const cfile *f = &c->files[i];
    if (f->d.bom) {
      lua_pushfstring(L, "%s:1: the file starts with a UTF-8 byte order mark, which MariaDB's "
                      "option reader refuses ('Found option without preceding group'); save it "
                      "without one", f->path);
      lua_rawseti(L, -2, ++n);
    }
    for (size_t li = 0; li < f->d.n; li++)
      for (unsigned w = 1; w <= CM_W_LONG; w <<= 1)
        if (f->d.lines[li].warn & w) {
          push_line_warning(L, f, &f->d.lines[li], li + 1, w);
          lua_rawseti(L, -2, ++n);
        }
  }
  for (size_t i = 0; i < c->warn.n; i++) {
    lua_pushstring(L, c->warn.text[i]);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* doc:files() -> the paths read, the root first */
static int doc_files (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  lua_createtable(L, (int)c->n, 0);
  for (size_t i = 0; i < c->n; i++) {
    lua_pushstring(L, c->files[i].path);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}


/* --- editing ---------------------------------------------------------------------------- */

/* The file index named by the argument at i (a path in the tree), or 0. */
static size_t opt_file (lua_State *L, cdoc *c, int i) {
  if (lua_isnoneornil(L, i))
    return 0;
  const char *path = luaL_checkstring(L, i);
  for (size_t k = 0; k < c->n; k++)
    if (strcmp(c->files[k].path, path) == 0)
      return k;
  luaL_error(L, "'%s' is not one of this document's files", path);
  return 0;
}

typedef struct finder {
  const char *group, *name;
  const cfile *f;
} finder;

static void visit_find (lua_State *L, const cfile *f, const cm_line *l, size_t line, void *ud) {
  (void)L;
  (void)line;
  finder *k = ud;
  if (cm_same_section(&f->d.lines[l->section], k->group) &&
      cm_same_name(l->raw + l->name_off, l->name_len, k->name, strlen(k->name)))
    k->f = f;
}

static void edit_error (lua_State *L, int err, const char *group, const char *name) {
  if (err == EINVAL)
    luaL_error(L, "cannot write [%s] %s: a bad group or option name, or a NUL byte in the value",
               group, name);
  if (err != 0)
    luaL_error(L, "not enough memory");
}

/* The value argument at i: a string, or true for a bare flag (NULL). */
static const char *check_value (lua_State *L, int i, size_t *len) {
  *len = 0;
  if (lua_type(L, i) == LUA_TBOOLEAN) {
    luaL_argcheck(L, lua_toboolean(L, i), i, "true writes a bare flag (use doc:unset to remove an option)");
    return NULL;
  }
  return luaL_checklstring(L, i, len);
}

/* doc:set(group, name, value | true [, file]) -> file changed
** The option changes where the server reads it last; a new one goes into
** file (default: the root file). */
static int doc_set (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *group = luaL_checkstring(L, 2);
  const char *name = luaL_checkstring(L, 3);
  size_t vlen;
  const char *value = check_value(L, 4, &vlen);
  size_t fi = opt_file(L, c, 5);
  finder k = { group, name, NULL };
  walk(L, c, 0, 0, visit_find, &k);
  if (k.f != NULL)
    fi = (size_t)(k.f - c->files);
  edit_error(L, cm_set(&c->files[fi].d, group, name, value, vlen), group, name);
  lua_pushstring(L, c->files[fi].path);
  return 1;
}

/* doc:add(group, name, value | true [, file]) -> file changed
** One more line for an option that accumulates (plugin_load_add): added at
** the end of the group in file (default: the root file), even when the
** option is set already. */
static int doc_add (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *group = luaL_checkstring(L, 2);
  const char *name = luaL_checkstring(L, 3);
  size_t vlen;
  const char *value = check_value(L, 4, &vlen);
  size_t fi = opt_file(L, c, 5);
  edit_error(L, cm_append(&c->files[fi].d, group, name, value, vlen), group, name);
  lua_pushstring(L, c->files[fi].path);
  return 1;
}

/* doc:unset(group, name) -> how many lines were removed (in every file) */
static int doc_unset (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *group = luaL_checkstring(L, 2);
  const char *name = luaL_checkstring(L, 3);
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++)
    n += cm_unset(&c->files[i].d, group, name);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* doc:add_section(group [, file]) */
static int doc_add_section (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *group = luaL_checkstring(L, 2);
  size_t fi = opt_file(L, c, 3);
  edit_error(L, cm_add_section(&c->files[fi].d, group), group, "");
  return 0;
}

/* Pushes the current text of file fi. */
static void push_text (lua_State *L, const cfile *f) {
  size_t len;
  char *text = cm_render(&f->d, &len);
  if (text == NULL)
    luaL_error(L, "not enough memory");
  lua_pushlstring(L, text, len);
  free(text);
}

/* Does the file's text differ from what was read? (A file that did not
** exist counts as changed once it has any text.) */
static int changed (const cfile *f) {
  size_t len;
  char *text = cm_render(&f->d, &len);
  int differs = text == NULL || len != f->origlen || memcmp(text, f->orig, len) != 0 ||
                (!f->exists && len > 0);
  free(text);
  return differs;
}

/* doc:text([file]) -> the file's text now */
static int doc_text (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  push_text(L, &c->files[opt_file(L, c, 2)]);
  return 1;
}

/* doc:changed() -> the paths whose text differs from what was read */
static int doc_changed (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  lua_newtable(L);
  lua_Integer n = 0;
  for (size_t i = 0; i < c->n; i++)
    if (changed(&c->files[i])) {
      lua_pushstring(L, c->files[i].path);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

static void push_diff (lua_State *L, const char *a, size_t alen, const char *b, size_t blen,
                       const char *from, const char *to) {
  char *out;
  size_t len;
  if (ud_diff(a, alen, b, blen, from, to, 3, &out, &len) != 0)
    luaL_error(L, "not enough memory");
  lua_pushlstring(L, out, len);
  free(out);
}

/* doc:diff() -> unified diff of every changed file ("" when none) */
static int doc_diff (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < c->n; i++) {
    const cfile *f = &c->files[i];
    if (!changed(f))
      continue;
    push_text(L, f);
    size_t len;
    const char *now = lua_tolstring(L, -1, &len);
    push_diff(L, f->orig, f->origlen, now, len, f->exists ? f->path : "/dev/null", f->path);
    lua_remove(L, -2);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}

/* doc:save([{ backup = true }]) -> true, { backup paths } | nil, msg, errno
** Each changed file is backed up (timestamped copy beside it), then
** replaced atomically keeping its mode and owner. If one fails, the files
** already written get their old text back. */
static int doc_save (lua_State *L) {
  myseal_gate(L, "doc:save", NULL);
  cdoc *c = check_doc(L, 1);
  int backup = 1;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "backup");
    if (!lua_isnil(L, -1))
      backup = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lua_newtable(L);
  int backups = lua_gettop(L);
  lua_Integer nb = 0;
  size_t done = 0, *written = lua_newuserdatauv(L, (c->n ? c->n : 1) * sizeof(size_t), 0);
  for (size_t i = 0; i < c->n; i++) {
    cfile *f = &c->files[i];
    if (!changed(f))
      continue;
    push_text(L, f);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    int err = 0;
    if (backup && f->exists) {
      char name[PATH_MAX];
      err = su_backup(f->path, name, sizeof(name));
      if (err == 0) {
        lua_pushstring(L, name);
        lua_rawseti(L, backups, ++nb);
      }
    }
    if (err == 0)
      err = su_atomic_write(f->path, text, len, -1);
    lua_pop(L, 1);
    if (err != 0) {
      for (size_t k = 0; k < done; k++) {  /* put back what was written */
        cfile *w = &c->files[written[k]];
        if (w->exists)
          su_atomic_write(w->path, w->orig, w->origlen, -1);
        else
          remove(w->path);
      }
      lua_pushfstring(L, "cannot save %s", f->path);
      return myseal_fail_errno(L, lua_tostring(L, -1), err);
    }
    written[done++] = i;
  }
  /* what was written is now the original */
  for (size_t k = 0; k < done; k++) {
    cfile *f = &c->files[written[k]];
    size_t len;
    char *text = cm_render(&f->d, &len);
    if (text != NULL) {
      free(f->orig);
      f->orig = text;
      f->origlen = len;
      f->exists = 1;
    }
  }
  lua_pushboolean(L, 1);
  lua_pushvalue(L, backups);
  return 2;
}

/* The directories a server option file may include for drop-ins, best first. */
static const char *const dropin_dirs[] = {
  "/etc/mysql/mariadb.conf.d", "/etc/mysql/mysql.conf.d", "/etc/my.cnf.d", "/etc/mysql/conf.d", NULL
};

/* doc:target(name [, groups]) -> file, group, exists
** Where a server option should be written: the file and group that set it
** today; else a new 99-myseal.cnf in a drop-in directory the tree includes
** (known ones first); else the root file. groups defaults to
** { "mysqld", "server", "mariadb" }; a new option goes into groups[1]. */
static int doc_target (lua_State *L) {
  cdoc *c = check_doc(L, 1);
  const char *name = luaL_checkstring(L, 2);
  const char *dflt[] = {"mysqld", "server", "mariadb"};
  const char *groups[16];
  int n = 3;
  if (lua_isnoneornil(L, 3))
    memcpy(groups, dflt, sizeof(dflt));
  else {
    luaL_checktype(L, 3, LUA_TTABLE);
    n = (int)luaL_len(L, 3);
    luaL_argcheck(L, n > 0 && n <= 16, 3, "a list of 1 to 16 group names");
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 3, i + 1);
      groups[i] = lua_tostring(L, -1);
      if (groups[i] == NULL)
        return luaL_argerror(L, 3, "group names must be strings");
      lua_pop(L, 1);
    }
  }
  lookup k = { groups, n, name, NULL, NULL, 0, 0 };
  walk(L, c, 0, 0, visit_lookup, &k);
  if (k.l != NULL) {
    lua_pushstring(L, k.f->path);
    lua_pushlstring(L, k.f->d.lines[k.l->section].raw + k.f->d.lines[k.l->section].name_off,
                    k.f->d.lines[k.l->section].name_len);
    lua_pushboolean(L, 1);
    return 3;
  }
  /* the include directories of the tree, known ones preferred */
  const char *best = NULL;
  int best_rank = 1000;
  char dirs[8][PATH_MAX];
  int ndirs = 0;
  for (size_t fi = 0; fi < c->n && ndirs < 8; fi++)
    for (size_t li = 0; li < c->files[fi].d.n && ndirs < 8; li++) {
      const cm_line *l = &c->files[fi].d.lines[li];
      if (l->kind != CM_INCLUDEDIR)
        continue;
      resolve(c, c->files[fi].path, l->raw + l->name_off, l->name_len, dirs[ndirs], PATH_MAX);
      int rank = 100 + ndirs;
      for (int r = 0; dropin_dirs[r]; r++)
        if (strcmp(dirs[ndirs], dropin_dirs[r]) == 0)
          rank = r;
      if (rank < best_rank) {
        best_rank = rank;
        best = dirs[ndirs];
      }
      ndirs++;
    }
  if (best != NULL) {
    lua_pushfstring(L, "%s/99-myseal.cnf", best);
    struct stat st;
    int exists = stat(lua_tostring(L, -1), &st) == 0;
    lua_pushstring(L, groups[0]);
    lua_pushboolean(L, exists);
    return 3;
  }
  lua_pushstring(L, c->files[0].path);
  lua_pushstring(L, groups[0]);
  lua_pushboolean(L, c->files[0].exists);
  return 3;
}

static int doc_tostring (lua_State *L) {
  cdoc *c = luaL_checkudata(L, 1, DOC_MT);
  if (c->n == 0)
    lua_pushliteral(L, "option file (closed)");
  else
    lua_pushfstring(L, "option file %s (%d file%s)", c->files[0].path, (int)c->n, c->n == 1 ? "" : "s");
  return 1;
}

/* cnf.diff(old, new [, from [, to]]) -> unified diff ("" when equal) */
static int cnf_diff (lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  const char *from = luaL_optstring(L, 3, "a");
  const char *to = luaL_optstring(L, 4, from);
  push_diff(L, a, alen, b, blen, from, to);
  return 1;
}

static const luaL_Reg cnf_funcs[] = {
  {"load", cnf_load},
  {"parse", cnf_parse},
  {"diff", cnf_diff},
  {NULL, NULL}
};

static const luaL_Reg doc_methods[] = {
  {"get", doc_get},
  {"effective", doc_effective},
  {"entries", doc_entries},
  {"sections", doc_sections},
  {"files", doc_files},
  {"warnings", doc_warnings},
  {"set", doc_set},
  {"add", doc_add},
  {"unset", doc_unset},
  {"add_section", doc_add_section},
  {"target", doc_target},
  {"text", doc_text},
  {"changed", doc_changed},
  {"diff", doc_diff},
  {"save", doc_save},
  {"close", doc_close},
  {NULL, NULL}
};

static const luaL_Reg doc_meta[] = {
  {"__gc", doc_close},
  {"__close", doc_close},
  {"__tostring", doc_tostring},
  {NULL, NULL}
};

int luaopen_cnf (lua_State *L) {
  myseal_newtype(L, DOC_MT, doc_methods, doc_meta);
  luaL_newlib(L, cnf_funcs);
  return 1;
}
