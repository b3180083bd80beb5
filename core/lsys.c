/*
** lsys.c: the sys module, what Lua's os and io do badly. Kept small:
** programs run from an argument vector (never a shell), atomic writes,
** file metadata, directories, time, and the few process controls the
** sandbox and the runbook engine need.
*/
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "sysutil.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define LOCK_MT "myseal.sys.Lock"


/* --- argument vectors -------------------------------------------------- */

/* argv strings from t[1..n] and "K=V" strings from t.env, kept alive in a
** Lua table at the top of the stack while the C arrays are in use. */
typedef struct argvec {
  const char **argv;
  const char **env;
} argvec;

static void check_argvec (lua_State *L, int t, argvec *av) {
  luaL_checktype(L, t, LUA_TTABLE);
  lua_Integer n = luaL_len(L, t);
  luaL_argcheck(L, n >= 1, t, "empty argument vector");
  luaL_checkstack(L, (int)n + 8, "too many arguments");
  av->argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);  /* stays on the stack: keeps the string alive */
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "bad argument vector: item %d is a %s, not a string",
                 (int)i, luaL_typename(L, -1));
    av->argv[i - 1] = lua_tostring(L, -1);
  }
  av->argv[n] = NULL;
  av->env = NULL;
  lua_getfield(L, t, "env");
  if (lua_isnil(L, -1))
    return;
  luaL_argcheck(L, lua_istable(L, -1), t, "env must be a table of strings");
  int envt = lua_gettop(L);
  int count = 0;
  lua_pushnil(L);
  while (lua_next(L, envt)) {
    count++;
    lua_pop(L, 1);
  }
  av->env = lua_newuserdatauv(L, sizeof(char *) * (size_t)(count + 1), 0);
  lua_newtable(L);  /* keeps the "K=V" strings alive */
  int strs = lua_gettop(L);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, envt)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
      luaL_error(L, "env must map names to strings");
    av->env[i] = lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_rawseti(L, strs, ++i);
    lua_pop(L, 1);
  }
  av->env[i] = NULL;
}


/* --- run, spawn, processes ---------------------------------------------- */

/* Set by SIGINT / SIGTERM while sys.trap_interrupt is on; a running sys.run stops on it. */
static volatile sig_atomic_t interrupted = 0;

/* sys.run{ "prog", "arg", ..., env = {}, cwd = , stdin = , timeout = }
** -> { status, signal, stdout, stderr, ok } | nil, message, errno
** Ctrl-C or SIGTERM while trapped (sys.trap_interrupt) stops the program:
** nil, "... interrupted", EINTR (sys.interrupted() then says so too). */
static int sys_run (lua_State *L) {
  myseal_gate(L, "sys.run", NULL);
  argvec av;
  int top = lua_gettop(L);
  check_argvec(L, 1, &av);
  su_run_opts opts = { .argv = (char *const *)av.argv, .env = (char *const *)av.env };
  lua_getfield(L, 1, "cwd");
  opts.cwd = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "stdin");
  opts.input = luaL_optlstring(L, -1, NULL, &opts.input_len);
  lua_getfield(L, 1, "timeout");
  opts.timeout = luaL_optnumber(L, -1, 0);
  opts.cancel = &interrupted;
  su_run_result res;
  int err = su_run(&opts, &res);
  if (err != 0) {
    lua_settop(L, top);
    lua_pushfstring(L, "cannot run '%s'", av.argv[0]);
    return myseal_fail_errno(L, lua_tostring(L, -1), err);
  }
  if (res.timed_out || res.cancelled) {
    char msg[256];
    if (res.timed_out)
      snprintf(msg, sizeof(msg), "'%s' timed out after %g s", av.argv[0], opts.timeout);
    else
      snprintf(msg, sizeof(msg), "'%s' was stopped: interrupted", av.argv[0]);
    su_run_result_free(&res);
    return myseal_fail(L, msg, res.timed_out ? ETIMEDOUT : EINTR);
  }
  lua_createtable(L, 0, 5);
  if (res.exited) {
    lua_pushinteger(L, res.exit_status);
    lua_setfield(L, -2, "status");
  }
  else {
    lua_pushinteger(L, res.term_signal);
    lua_setfield(L, -2, "signal");
  }
  lua_pushboolean(L, res.exited && res.exit_status == 0);
  lua_setfield(L, -2, "ok");
  lua_pushlstring(L, res.out.data ? res.out.data : "", res.out.len);
  lua_setfield(L, -2, "stdout");
  lua_pushlstring(L, res.err.data ? res.err.data : "", res.err.len);
  lua_setfield(L, -2, "stderr");
  su_run_result_free(&res);
  return 1;
}


/* sys.spawn{ "prog", ..., env = , cwd = , log = path, stdin = data } -> pid | nil, msg, errno
** The program runs in its own session; its output is appended to log; stdin (at
** most 64 KiB) is what it reads, then end of file (secrets go there, never in
** argv or the environment). */
static int sys_spawn (lua_State *L) {
  myseal_gate(L, "sys.spawn", NULL);
  argvec av;
  check_argvec(L, 1, &av);
  lua_getfield(L, 1, "cwd");
  const char *cwd = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "log");
  const char *log = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "stdin");
  size_t input_len = 0;
  const char *input = luaL_optlstring(L, -1, NULL, &input_len);
  pid_t pid;
  int err = su_spawn_input((char *const *)av.argv, (char *const *)av.env, cwd, log, input, input_len, &pid);
  if (err != 0) {
    lua_pushfstring(L, "cannot run '%s'", av.argv[0]);
    return myseal_fail_errno(L, lua_tostring(L, -1), err);
  }
  lua_pushinteger(L, pid);
  return 1;
}


/* Linux: a zombie still answers kill(pid, 0); /proc tells it is dead. */
static int is_zombie (pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *paren = strrchr(buf, ')');
  return paren != NULL && paren[1] == ' ' && paren[2] == 'Z';
}


/* sys.alive(pid) -> boolean. Reaps our own dead children. */
static int sys_alive (lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 0, 1, "pid must be positive");
  int status;
  pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    lua_pushboolean(L, 0);
    return 1;
  }
  int alive = (kill(pid, 0) == 0 || errno == EPERM) && !is_zombie(pid);
  lua_pushboolean(L, alive);
  return 1;
}


static int signal_number (lua_State *L, int arg) {
  static const char *const names[] = {"TERM", "KILL", "INT", "HUP", "QUIT", "STOP", "CONT", NULL};
  static const int numbers[] = {SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGSTOP, SIGCONT};
  if (lua_isinteger(L, arg))
    return (int)lua_tointeger(L, arg);
  return numbers[luaL_checkoption(L, arg, "TERM", names)];
}


/* sys.kill(pid [, "TERM"|"KILL"|...]) -> true | nil, msg, errno */
static int sys_kill (lua_State *L) {
  myseal_gate(L, "sys.kill", NULL);
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 0, 1, "pid must be positive (process groups are not killed)");
  if (kill(pid, signal_number(L, 2)) != 0) {
    char what[64];
    snprintf(what, sizeof(what), "cannot signal process %d", (int)pid);
    return myseal_fail_errno(L, what, errno);
  }
  lua_pushboolean(L, 1);
  return 1;
}


static int sys_getpid (lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}


/* --- files ----------------------------------------------------------------- */

/* sys.read_file(path) -> data | nil, msg, errno */
static int sys_read_file (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return myseal_fail_errno(L, path, errno);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (;;) {
    char *p = luaL_prepbuffsize(&b, 65536);
    ssize_t n = read(fd, p, 65536);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      close(fd);
      return myseal_fail_errno(L, path, err);
    }
    luaL_addsize(&b, (size_t)n);
  }
  close(fd);
  luaL_pushresult(&b);
  return 1;
}


/* sys.write_file(path, data [, { mode = 0600, backup = true }])
** -> true, backup_path | nil, msg, errno
** Atomic: readers see the old file or the new one, never a part. */
static int sys_write_file (lua_State *L) {
  myseal_gate(L, "sys.write_file", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int mode = -1, backup = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "mode");
    if (!lua_isnil(L, -1)) {
      mode = (int)luaL_checkinteger(L, -1);
      luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "mode out of range");
    }
    lua_getfield(L, 3, "backup");
    backup = lua_toboolean(L, -1);
    lua_pop(L, 2);
  }
  lua_settop(L, 3);
  struct stat st;
  if (backup && stat(path, &st) == 0) {
    char name[PATH_MAX];
    int err = su_backup(path, name, sizeof(name));
    if (err != 0)
      return myseal_fail_errno(L, "cannot back up the old file", err);
    lua_pushstring(L, name);
  }
  else
    lua_pushnil(L);
  int err = su_atomic_write(path, data, len, mode);
  if (err != 0) {
    if (!lua_isnil(L, -1))
      unlink(lua_tostring(L, -1));
    return myseal_fail_errno(L, path, err);
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -2);
  return 2;
}


/* sys.append(path, data) -> true | nil, msg, errno: data added at the end of an
** existing file in one write (O_APPEND), so a line is never interleaved with
** another writer's. */
static int sys_append (lua_State *L) {
  myseal_gate(L, "sys.append", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0)
    return myseal_fail_errno(L, path, errno);
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, data + done, len - done);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      close(fd);
      return myseal_fail_errno(L, path, err);
    }
    done += (size_t)w;
  }
  if (close(fd) != 0)
    return myseal_fail_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}


/* sys.backup(path) -> backup path | nil, msg, errno: a copy beside the file named
** PATH.YYYYmmdd-HHMMSS[-N].bak (mode and owner kept), never overwriting one. */
static int sys_backup (lua_State *L) {
  myseal_gate(L, "sys.backup", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  char name[PATH_MAX];
  int err = su_backup(path, name, sizeof(name));
  if (err != 0) {
    lua_pushfstring(L, "cannot back up %s", path);
    return myseal_fail_errno(L, lua_tostring(L, -1), err);
  }
  lua_pushstring(L, name);
  return 1;
}


/* sys.copy_file(from, to) -> true | nil, msg, errno. Keeps mode and owner; never overwrites. */
static int sys_copy_file (lua_State *L) {
  myseal_gate(L, "sys.copy_file", lua_tostring(L, 2));
  const char *from = luaL_checkstring(L, 1);
  const char *to = luaL_checkstring(L, 2);
  int err = su_copy_file(from, to);
  if (err != 0) {
    lua_pushfstring(L, "cannot copy %s to %s", from, to);
    return myseal_fail_errno(L, lua_tostring(L, -1), err);
  }
  lua_pushboolean(L, 1);
  return 1;
}


static const char *file_type (mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  if (S_ISSOCK(m)) return "socket";
  return "other";
}


/* sys.stat(path [, { link = true }]) -> { type, mode, size, uid, gid, user, group, mtime } */
static int sys_stat (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int nofollow = 0;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "link");
    nofollow = lua_toboolean(L, -1);
  }
  struct stat st;
  if ((nofollow ? lstat(path, &st) : stat(path, &st)) != 0)
    return myseal_fail_errno(L, path, errno);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, file_type(st.st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, st.st_mode & 07777);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, st.st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, st.st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  struct passwd *pw = getpwuid(st.st_uid);
  if (pw != NULL) {
    lua_pushstring(L, pw->pw_name);
    lua_setfield(L, -2, "user");
  }
  struct group *gr = getgrgid(st.st_gid);
  if (gr != NULL) {
    lua_pushstring(L, gr->gr_name);
    lua_setfield(L, -2, "group");
  }
  return 1;
}


static int sys_chmod (lua_State *L) {
  myseal_gate(L, "sys.chmod", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_checkinteger(L, 2);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode out of range");
  if (chmod(path, (mode_t)mode) != 0)
    return myseal_fail_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}


/* A user or group given by name or number; -1 when nil. 0 when the name is unknown. */
static int lookup_id (lua_State *L, int arg, int is_group, id_t *id) {
  if (lua_isnoneornil(L, arg)) {
    *id = (id_t)-1;
    return 1;
  }
  if (lua_isinteger(L, arg)) {
    *id = (id_t)lua_tointeger(L, arg);
    return 1;
  }
  const char *name = luaL_checkstring(L, arg);
  if (is_group) {
    struct group *gr = getgrnam(name);
    if (gr == NULL)
      return 0;
    *id = gr->gr_gid;
  }
  else {
    struct passwd *pw = getpwnam(name);
    if (pw == NULL)
      return 0;
    *id = pw->pw_uid;
  }
  return 1;
}


/* sys.chown(path, user|uid|nil [, group|gid]) -> true | nil, msg, errno */
static int sys_chown (lua_State *L) {
  myseal_gate(L, "sys.chown", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  id_t uid, gid;
  if (!lookup_id(L, 2, 0, &uid)) {
    lua_pushfstring(L, "unknown user '%s'", lua_tostring(L, 2));
    return myseal_fail(L, lua_tostring(L, -1), EINVAL);
  }
  if (!lookup_id(L, 3, 1, &gid)) {
    lua_pushfstring(L, "unknown group '%s'", lua_tostring(L, 3));
    return myseal_fail(L, lua_tostring(L, -1), EINVAL);
  }
  if (chown(path, (uid_t)uid, (gid_t)gid) != 0)
    return myseal_fail_errno(L, path, errno);
  lua_pushboolean(L, 1);
  return 1;
}


/* sys.mkdir(path [, mode = 0755]): mkdir -p. An existing directory is fine. */
static int sys_mkdir (lua_State *L) {
  myseal_gate(L, "sys.mkdir", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_optinteger(L, 2, 0755);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode out of range");
  int err = su_mkdir_p(path, (int)mode);
  if (err != 0)
    return myseal_fail_errno(L, path, err);
  lua_pushboolean(L, 1);
  return 1;
}


/* sys.tmpdir([prefix [, dir]]) -> path of a new 0700 directory under dir, else $TMPDIR or /tmp */
static int sys_tmpdir (lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "myseal");
  const char *base = luaL_optstring(L, 2, getenv("TMPDIR"));
  char path[PATH_MAX];
  if (base == NULL || *base == '\0')
    base = "/tmp";
  luaL_argcheck(L, strchr(prefix, '/') == NULL, 1, "prefix must not contain '/'");
  snprintf(path, sizeof(path), "%s/%s-XXXXXX", base, prefix);
  if (mkdtemp(path) == NULL)
    return myseal_fail_errno(L, "cannot create a temporary directory", errno);
  lua_pushstring(L, path);
  return 1;
}


/* sys.rmtree(path): rm -rf without following links. A missing path is fine. */
static int sys_rmtree (lua_State *L) {
  myseal_gate(L, "sys.rmtree", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  luaL_argcheck(L, path[0] != '\0' && strcmp(path, "/") != 0, 1, "refusing to remove '/'");
  int err = su_rmtree(path);
  if (err != 0 && err != ENOENT)
    return myseal_fail_errno(L, path, err);
  lua_pushboolean(L, 1);
  return 1;
}


/* sys.dir(path) -> names sorted by bytes (no . and ..), the order in which
** the server reads an !includedir | nil, msg, errno */
static int sys_dir (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct dirent **list;
  int n = scandir(path, &list, NULL, alphasort);
  if (n < 0)
    return myseal_fail_errno(L, path, errno);
  lua_createtable(L, n, 0);
  int k = 0;
  for (int i = 0; i < n; i++) {
    const char *name = list[i]->d_name;
    if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
      lua_pushstring(L, name);
      lua_rawseti(L, -2, ++k);
    }
  }
  for (int i = 0; i < n; i++)
    free(list[i]);
  free(list);
  return 1;
}


static int sys_realpath (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *r = realpath(path, NULL);
  if (r == NULL)
    return myseal_fail_errno(L, path, errno);
  lua_pushstring(L, r);
  free(r);
  return 1;
}


/* sys.df(path) -> free_bytes, total_bytes (free as an unprivileged user sees it) */
static int sys_df (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct statvfs sv;
  if (statvfs(path, &sv) != 0)
    return myseal_fail_errno(L, path, errno);
  lua_pushinteger(L, (lua_Integer)(sv.f_bavail * sv.f_frsize));
  lua_pushinteger(L, (lua_Integer)(sv.f_blocks * sv.f_frsize));
  return 2;
}


/* --- locks --------------------------------------------------------------- */

typedef struct lockfile {
  int fd;
} lockfile;


static int lock_release (lua_State *L) {
  lockfile *lk = luaL_checkudata(L, 1, LOCK_MT);
  if (lk->fd >= 0) {
    close(lk->fd);  /* releases the flock */
    lk->fd = -1;
  }
  return 0;
}


static int lock_tostring (lua_State *L) {
  lockfile *lk = luaL_checkudata(L, 1, LOCK_MT);
  lua_pushstring(L, lk->fd >= 0 ? "lock (held)" : "lock (released)");
  return 1;
}


/* sys.lock(path) -> lock | nil, "held by process N", EWOULDBLOCK
** An exclusive flock; the file holds the owner's pid. Released by
** lock:release(), a <close> variable, garbage collection or exit. */
static int sys_lock (lua_State *L) {
  myseal_gate(L, "sys.lock", lua_tostring(L, 1));
  const char *path = luaL_checkstring(L, 1);
  lockfile *lk = lua_newuserdatauv(L, sizeof(lockfile), 0);
  lk->fd = -1;
  luaL_setmetatable(L, LOCK_MT);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return myseal_fail_errno(L, path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (err == EWOULDBLOCK) {
      lua_pushfstring(L, "%s is held by process %s", path, n > 0 ? buf : "?");
      return myseal_fail(L, lua_tostring(L, -1), err);
    }
    return myseal_fail_errno(L, path, err);
  }
  lk->fd = fd;
  char pid[32];
  int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
    return myseal_fail_errno(L, path, errno);
  return 1;
}


/* --- time, terminal, signals -------------------------------------------- */

static int sys_sleep (lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "negative duration");
  struct timespec ts = { (time_t)s, (long)((s - (lua_Number)(time_t)s) * 1e9) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}


/* sys.clock(): monotonic seconds, for durations */
static int sys_clock (lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}


/* sys.now(): wall-clock seconds since the epoch, with a fraction */
static int sys_now (lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}


static int sys_platform (lua_State *L) {
#if defined(_WIN32)
  lua_pushliteral(L, "windows");
#elif defined(__APPLE__)
  lua_pushliteral(L, "macos");
#elif defined(__linux__)
  lua_pushliteral(L, "linux");
#elif defined(__FreeBSD__)
  lua_pushliteral(L, "freebsd");
#else
  lua_pushliteral(L, "unix");
#endif
  return 1;
}


static int sys_hostname (lua_State *L) {
  char name[256];
  if (gethostname(name, sizeof(name)) != 0)
    return myseal_fail_errno(L, "cannot read the host name", errno);
  name[sizeof(name) - 1] = '\0';
  lua_pushstring(L, name);
  return 1;
}


/* sys.user([name]) -> { uid, gid, name, home, group } of the effective user, or of the user
** called name (nil, message when there is none) */
static int sys_user (lua_State *L) {
  struct passwd *pw;
  if (lua_isnoneornil(L, 1))
    pw = getpwuid(geteuid());
  else {
    const char *name = luaL_checkstring(L, 1);
    pw = getpwnam(name);
    if (pw == NULL) {
      lua_pushfstring(L, "no user %s on this machine", name);
      return myseal_fail(L, lua_tostring(L, -1), ENOENT);
    }
  }
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, pw != NULL ? pw->pw_uid : geteuid());
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, pw != NULL ? pw->pw_gid : getegid());
  lua_setfield(L, -2, "gid");
  if (pw != NULL) {
    lua_pushstring(L, pw->pw_name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, pw->pw_dir);
    lua_setfield(L, -2, "home");
    struct group *gr = getgrgid(pw->pw_gid);
    if (gr != NULL) {
      lua_pushstring(L, gr->gr_name);
      lua_setfield(L, -2, "group");
    }
  }
  return 1;
}


/* sys.access_as(user, path [, "r"|"w"|"x"]) -> true | nil, msg, errno
** Can `user` reach path and read (write, enter) it? The kernel answers, in a
** child that becomes the user. The message names the first path in the way. */
static int sys_access_as (lua_State *L) {
  const char *user = luaL_checkstring(L, 1);
  const char *path = luaL_checkstring(L, 2);
  static const char *const names[] = {"r", "w", "x", NULL};
  static const int modes[] = {R_OK, W_OK, X_OK};
  int mode = modes[luaL_checkoption(L, 3, "r", names)];
  luaL_argcheck(L, path[0] == '/', 2, "an absolute path");
  struct passwd *pw = getpwnam(user);
  if (pw == NULL) {
    lua_pushfstring(L, "no user %s on this machine", user);
    return myseal_fail(L, lua_tostring(L, -1), ENOENT);
  }
  char at[PATH_MAX];
  int err = su_access_as(pw->pw_uid, pw->pw_gid, user, path, mode, at, sizeof(at));
  if (err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (err == EPERM && geteuid() != 0) {
    lua_pushfstring(L, "cannot check as %s what it may read (only root can)", user);
    return myseal_fail(L, lua_tostring(L, -1), err);
  }
  if (strcmp(at, path) == 0 || at[0] == '\0')
    lua_pushfstring(L, "%s cannot %s %s: %s", user, mode == R_OK ? "read" : mode == W_OK ? "write" : "enter",
                    path, strerror(err));
  else
    lua_pushfstring(L, "%s cannot reach %s: it may not enter %s (%s)", user, path, at, strerror(err));
  return myseal_fail(L, lua_tostring(L, -1), err);
}


/* sys.isatty("stdin"|"stdout"|"stderr") */
static int sys_isatty (lua_State *L) {
  static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
  int fd = luaL_checkoption(L, 1, "stdout", names);
  lua_pushboolean(L, isatty(fd));
  return 1;
}


/* sys.getpass(prompt) -> text | nil, msg, errno. Reads /dev/tty with echo off. */
static int sys_getpass (lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return myseal_fail_errno(L, "no terminal to ask on", errno);
  struct termios old, quiet;
  int have_tc = tcgetattr(fd, &old) == 0;
  if (have_tc) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  (void)!write(fd, prompt, strlen(prompt));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char c;
  ssize_t n;
  int err = 0;
  while ((n = read(fd, &c, 1)) == 1 && c != '\n')
    luaL_addchar(&b, c);
  if (n < 0)
    err = errno;
  if (have_tc)
    tcsetattr(fd, TCSAFLUSH, &old);
  (void)!write(fd, "\n", 1);
  close(fd);
  if (err != 0)
    return myseal_fail_errno(L, "cannot read from the terminal", err);
  luaL_pushresult(&b);
  return 1;
}


static void on_sigint (int sig) {
  (void)sig;
  interrupted = 1;
}


/* sys.trap_interrupt(on): while on, Ctrl-C sets a flag instead of killing us. */
static int sys_trap_interrupt (lua_State *L) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = lua_toboolean(L, 1) ? on_sigint : SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  interrupted = 0;
  return 0;
}


/* sys.hide_env(NAME) -> true | nil, msg: no program sys.run or sys.spawn starts inherits the
** variable NAME (the source of a secret); MYSEAL_SECRET_* are never inherited. */
static int sys_hide_env (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, name[0] != '\0' && strchr(name, '=') == NULL, 1, "not a variable name");
  int err = su_hide_env(name);
  if (err != 0)
    return myseal_fail_errno(L, "sys.hide_env", err);
  lua_pushboolean(L, 1);
  return 1;
}


/* sys.interrupted() -> true once after each Ctrl-C received while trapped */
static int sys_interrupted (lua_State *L) {
  lua_pushboolean(L, interrupted);
  interrupted = 0;
  return 1;
}


static const luaL_Reg sys_funcs[] = {
  {"run", sys_run},
  {"spawn", sys_spawn},
  {"hide_env", sys_hide_env},
  {"alive", sys_alive},
  {"kill", sys_kill},
  {"getpid", sys_getpid},
  {"read_file", sys_read_file},
  {"write_file", sys_write_file},
  {"copy_file", sys_copy_file},
  {"backup", sys_backup},
  {"append", sys_append},
  {"stat", sys_stat},
  {"chmod", sys_chmod},
  {"chown", sys_chown},
  {"mkdir", sys_mkdir},
  {"tmpdir", sys_tmpdir},
  {"rmtree", sys_rmtree},
  {"dir", sys_dir},
  {"realpath", sys_realpath},
  {"df", sys_df},
  {"scan", myseal_sys_scan},
  {"lock", sys_lock},
  {"sleep", sys_sleep},
  {"clock", sys_clock},
  {"now", sys_now},
  {"platform", sys_platform},
  {"hostname", sys_hostname},
  {"user", sys_user},
  {"access_as", sys_access_as},
  {"isatty", sys_isatty},
  {"getpass", sys_getpass},
  {"trap_interrupt", sys_trap_interrupt},
  {"interrupted", sys_interrupted},
  {NULL, NULL}
};

static const luaL_Reg lock_meta[] = {
  {"__gc", lock_release},
  {"__close", lock_release},
  {"__tostring", lock_tostring},
  {NULL, NULL}
};

static const luaL_Reg lock_methods[] = {
  {"release", lock_release},
  {NULL, NULL}
};


int luaopen_sys (lua_State *L) {
  myseal_newtype(L, LOCK_MT, lock_methods, lock_meta);
  luaL_newlib(L, sys_funcs);
  /* sys.errno: the codes callers compare a failure's third value with */
  static const struct { const char *name; int value; } codes[] = {
    {"EINTR", EINTR}, {"ETIMEDOUT", ETIMEDOUT}, {"ENOENT", ENOENT}, {"EACCES", EACCES},
    {"EPERM", EPERM}, {"EEXIST", EEXIST},
  };
  lua_createtable(L, 0, (int)(sizeof(codes) / sizeof(codes[0])));
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    lua_pushinteger(L, codes[i].value);
    lua_setfield(L, -2, codes[i].name);
  }
  lua_setfield(L, -2, "errno");
  return 1;
}
