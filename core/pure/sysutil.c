/*
** sysutil.c: process and file helpers for the sys module. No Lua here.
*/
#include "sysutil.h"

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

void su_buf_free (su_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}


static int buf_append (su_buf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap)
      cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL)
      return ENOMEM;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}


static double now_mono (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


static int write_all (int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}


static void close_fd (int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}


/* Names of variables a child never inherits, besides every MYSEAL_SECRET_*: the env:VAR
** sources of secrets (su_hide_env). */
#define HIDDEN_MAX 64
static char *hidden[HIDDEN_MAX];
static int hidden_count = 0;

int su_hide_env (const char *name) {
  for (int i = 0; i < hidden_count; i++)
    if (strcmp(hidden[i], name) == 0)
      return 0;
  if (hidden_count == HIDDEN_MAX)
    return ENOSPC;
  char *copy = strdup(name);
  if (copy == NULL)
    return ENOMEM;
  hidden[hidden_count++] = copy;
  return 0;
}


static int name_is (const char *entry, const char *name) {
  size_t n = strlen(name);
  return strncmp(entry, name, n) == 0 && entry[n] == '=';
}


static int inherited (const char *entry, char *const *env) {
  if (strncmp(entry, "MYSEAL_SECRET_", 14) == 0)
    return 0;
  for (int i = 0; i < hidden_count; i++)
    if (name_is(entry, hidden[i]))
      return 0;
  if (env != NULL)
    for (char *const *e = env; *e != NULL; e++) {
      const char *eq = strchr(*e, '=');
      size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
      if (strncmp(entry, *e, n) == 0 && entry[n] == '=')
        return 0;  /* given again by the caller */
    }
  return 1;
}


extern char **environ;

/* The child's environment, built before fork (no malloc after it): ours without the
** secrets' variables, plus the caller's entries. Free the array only (the strings are
** borrowed). NULL when out of memory. */
char **su_child_env (char *const *env) {
  size_t n = 0, k = 0;
  for (char **e = environ; *e != NULL; e++)
    n++;
  if (env != NULL)
    for (char *const *e = env; *e != NULL; e++)
      n++;
  char **out = malloc((n + 1) * sizeof(char *));
  if (out == NULL)
    return NULL;
  for (char **e = environ; *e != NULL; e++)
    if (inherited(*e, env))
      out[k++] = *e;
  if (env != NULL)
    for (char *const *e = env; *e != NULL; e++)
      out[k++] = *e;
  out[k] = NULL;
  return out;
}


/* In the child after fork: only async-signal-safe calls until exec. */
static void child_exec (char *const *argv, char **envp, const char *cwd, int errfd) {
  if (cwd != NULL && chdir(cwd) != 0) {
    int err = errno;
    (void)!write(errfd, &err, sizeof(err));
    _exit(127);
  }
  environ = envp;  /* before the lookup: a PATH the caller gives is the one searched */
  execvp(argv[0], argv);
  int err = errno;
  (void)!write(errfd, &err, sizeof(err));
  _exit(127);
}


/* After fork, the parent learns from a close-on-exec pipe whether exec worked. */
static int exec_status (int errfd) {
  int err = 0;
  ssize_t n;
  do
    n = read(errfd, &err, sizeof(err));
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof(err) ? err : 0;
}


void su_run_result_free (su_run_result *res) {
  su_buf_free(&res->out);
  su_buf_free(&res->err);
}


/* SIGTERM to a process group, SIGKILL when it is still there 2 s later.
** Reaps the group's leader on the way (*reaped, *status). */
static void stop_group (pid_t pid, int *status, int *reaped) {
  kill(-pid, SIGTERM);
  double until = now_mono() + 2;
  while (now_mono() < until) {
    if (!*reaped && waitpid(pid, status, WNOHANG) == pid)
      *reaped = 1;
    if (kill(-pid, 0) != 0)
      return;
    struct timespec ts = { 0, 20000000 };
    nanosleep(&ts, NULL);
  }
  kill(-pid, SIGKILL);
}


int su_run (const su_run_opts *opts, su_run_result *res) {
  int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, execp[2] = {-1, -1};
  int rc = 0;
  memset(res, 0, sizeof(*res));
  if ((opts->input && pipe2(inp, O_CLOEXEC) != 0) || pipe2(outp, O_CLOEXEC) != 0 ||
      pipe2(errp, O_CLOEXEC) != 0 || pipe2(execp, O_CLOEXEC) != 0) {
    rc = errno;
    goto cleanup;
  }
  char **envp = su_child_env(opts->env);
  if (envp == NULL) {
    rc = ENOMEM;
    goto cleanup;
  }
  pid_t pid = fork();
  if (pid < 0) {
    rc = errno;
    free(envp);
    goto cleanup;
  }
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = opts->input ? inp[0] : open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(outp[1], 1);
    dup2(errp[1], 2);
    signal(SIGPIPE, SIG_DFL);
    child_exec(opts->argv, envp, opts->cwd, execp[1]);
  }
  free(envp);
  setpgid(pid, pid);  /* also in the parent: no race with the kill below */
  close_fd(&execp[1]);
  close_fd(&inp[0]);
  close_fd(&outp[1]);
  close_fd(&errp[1]);
  rc = exec_status(execp[0]);
  if (rc != 0) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    goto cleanup;
  }
  if (inp[1] >= 0)
    fcntl(inp[1], F_SETFL, fcntl(inp[1], F_GETFL) | O_NONBLOCK);

  size_t written = 0;
  double deadline = opts->timeout > 0 ? now_mono() + opts->timeout : 0;
  double linger = 0;   /* once the child has exited: read until then, no longer */
  int status = 0, reaped = 0;
  char chunk[65536];
  if (inp[1] >= 0 && opts->input_len == 0)
    close_fd(&inp[1]);
  while (outp[0] >= 0 || errp[0] >= 0) {
    struct pollfd fds[3];
    int nfds = 0, wait_ms = 100;   /* wake up to look at the child and *cancel */
    fds[nfds++] = (struct pollfd){ .fd = outp[0], .events = POLLIN };
    fds[nfds++] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
    fds[nfds++] = (struct pollfd){ .fd = inp[1], .events = POLLOUT };
    double now = now_mono();
    if (opts->cancel != NULL && *opts->cancel) {
      res->cancelled = 1;
      stop_group(pid, &status, &reaped);
      break;
    }
    if (deadline > 0 && now >= deadline) {
      kill(-pid, SIGKILL);
      res->timed_out = 1;
      break;
    }
    if (!reaped) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = 1;
        linger = now + 0.2;
      }
    }
    if (reaped && now >= linger)
      break;   /* what still holds the pipes is not the child */
    int n = poll(fds, (nfds_t)nfds, wait_ms);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rc = errno;
      kill(-pid, SIGKILL);
      break;
    }
    for (int i = 0; i < 2; i++) {
      int *fd = i == 0 ? &outp[0] : &errp[0];
      if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t r = read(*fd, chunk, sizeof(chunk));
      if (r > 0) {
        if (reaped)
          linger = now_mono() + 0.2;
        if (buf_append(i == 0 ? &res->out : &res->err, chunk, (size_t)r) != 0) {
          rc = ENOMEM;
          kill(-pid, SIGKILL);
          goto reap;
        }
      }
      else if (r == 0 || errno != EINTR)
        close_fd(fd);
    }
    if (inp[1] >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(inp[1], opts->input + written, opts->input_len - written);
      if (w > 0)
        written += (size_t)w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == opts->input_len)
        close_fd(&inp[1]);
    }
  }
reap:;
  while (!reaped && waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      rc = rc ? rc : errno;
      break;
    }
  }
  if (WIFEXITED(status)) {
    res->exited = 1;
    res->exit_status = WEXITSTATUS(status);
  }
  else if (WIFSIGNALED(status))
    res->term_signal = WTERMSIG(status);
cleanup:
  close_fd(&inp[0]); close_fd(&inp[1]);
  close_fd(&outp[0]); close_fd(&outp[1]);
  close_fd(&errp[0]); close_fd(&errp[1]);
  close_fd(&execp[0]); close_fd(&execp[1]);
  if (rc != 0)
    su_run_result_free(res);
  return rc;
}


int su_spawn_input (char *const *argv, char *const *env, const char *cwd,
                    const char *log, const char *input, size_t input_len, pid_t *pid_out) {
  int execp[2], inp[2] = {-1, -1};
  if (input != NULL && input_len > 65536)
    return E2BIG;
  if (pipe2(execp, O_CLOEXEC) != 0)
    return errno;
  if (input != NULL && pipe2(inp, O_CLOEXEC) != 0) {
    int err = errno;
    close(execp[0]); close(execp[1]);
    return err;
  }
  int logfd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (logfd < 0) {
    int err = errno;
    close(execp[0]); close(execp[1]); close_fd(&inp[0]); close_fd(&inp[1]);
    return err;
  }
  char **envp = su_child_env(env);
  pid_t pid = envp != NULL ? fork() : -1;
  if (pid < 0) {
    int err = envp != NULL ? errno : ENOMEM;
    free(envp);
    close(execp[0]); close(execp[1]); close(logfd); close_fd(&inp[0]); close_fd(&inp[1]);
    return err;
  }
  if (pid == 0) {
    setsid();
    int in = input != NULL ? inp[0] : open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    signal(SIGPIPE, SIG_DFL);
    child_exec(argv, envp, cwd, execp[1]);
  }
  free(envp);
  close(execp[1]);
  close(logfd);
  close_fd(&inp[0]);
  int rc = exec_status(execp[0]);
  close(execp[0]);
  if (rc == 0 && inp[1] >= 0) {
    /* fits in the pipe's buffer: no wait on the child */
    rc = write_all(inp[1], input, input_len);
  }
  close_fd(&inp[1]);
  if (rc != 0) {
    if (rc != EPIPE)
      kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return rc;
  }
  *pid_out = pid;
  return 0;
}


int su_spawn (char *const *argv, char *const *env, const char *cwd,
              const char *log, pid_t *pid_out) {
  return su_spawn_input(argv, env, cwd, log, NULL, 0, pid_out);
}


int su_access_as (uid_t uid, gid_t gid, const char *user, const char *path, int mode,
                  char *at, size_t atlen) {
  int rp[2];
  if (at != NULL && atlen > 0)
    at[0] = '\0';
  if (pipe2(rp, O_CLOEXEC) != 0)
    return errno;
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(rp[0]); close(rp[1]);
    return err;
  }
  if (pid == 0) {
    /* the child becomes the user, then asks the kernel about each directory on the way */
    int err = 0;
    size_t stop = 0;
    if (setgid(gid) != 0 || initgroups(user, gid) != 0 || setuid(uid) != 0)
      err = EPERM;
    else {
      size_t len = strlen(path);
      char buf[PATH_MAX];
      if (len >= sizeof(buf))
        err = ENAMETOOLONG;
      for (size_t i = 1; err == 0 && i < len; i++) {
        if (path[i] != '/')
          continue;
        memcpy(buf, path, i);
        buf[i] = '\0';
        if (access(buf, X_OK) != 0) {
          err = errno;
          stop = i;
        }
      }
      if (err == 0 && access(path, mode) != 0) {
        err = errno;
        stop = len;
      }
    }
    int msg[2] = { err, (int)stop };
    if (write(rp[1], msg, sizeof(msg)) < 0)
      _exit(1);
    _exit(0);
  }
  close(rp[1]);
  int msg[2] = { EIO, 0 };
  ssize_t n;
  while ((n = read(rp[0], msg, sizeof(msg))) < 0 && errno == EINTR) {}
  close(rp[0]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  if (n != (ssize_t)sizeof(msg))
    return EIO;
  if (msg[0] != 0 && at != NULL && atlen > 0 && msg[1] > 0) {
    size_t k = (size_t)msg[1] < atlen - 1 ? (size_t)msg[1] : atlen - 1;
    memcpy(at, path, k);
    at[k] = '\0';
  }
  return msg[0];
}


static int fsync_dir_of (const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
  close(fd);
  return rc;
}


int su_atomic_write (const char *path, const void *data, size_t len, int mode) {
  char tmp[PATH_MAX];
  struct stat old;
  int have_old = stat(path, &old) == 0;
  if (snprintf(tmp, sizeof(tmp), "%s.myseal-XXXXXX", path) >= (int)sizeof(tmp))
    return ENAMETOOLONG;
  int fd = mkostemp(tmp, O_CLOEXEC);  /* created 0600 */
  if (fd < 0)
    return errno;
  int rc = 0;
  mode_t m = mode >= 0 ? (mode_t)mode : have_old ? (old.st_mode & 07777) : 0644;
  if (fchmod(fd, m) != 0)
    rc = errno;
  if (rc == 0 && mode < 0 && have_old && (old.st_uid != geteuid() || old.st_gid != getegid()))
    if (fchown(fd, old.st_uid, old.st_gid) != 0 && errno != EPERM)
      rc = errno;
  if (rc == 0)
    rc = write_all(fd, data, len);
  if (rc == 0 && fsync(fd) != 0)
    rc = errno;
  if (close(fd) != 0 && rc == 0)
    rc = errno;
  if (rc == 0 && rename(tmp, path) != 0)
    rc = errno;
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  return fsync_dir_of(path);
}


int su_copy_file (const char *path, const char *backup_path) {
  struct stat st;
  int in = open(path, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return errno;
  if (fstat(in, &st) != 0) {
    int err = errno;
    close(in);
    return err;
  }
  int out = open(backup_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int err = errno;
    close(in);
    return err;
  }
  int rc = 0;
  char chunk[65536];
  for (;;) {
    ssize_t r = read(in, chunk, sizeof(chunk));
    if (r == 0)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = errno;
      break;
    }
    if ((rc = write_all(out, chunk, (size_t)r)) != 0)
      break;
  }
  if (rc == 0 && fchmod(out, st.st_mode & 07777) != 0)
    rc = errno;
  if (rc == 0 && fchown(out, st.st_uid, st.st_gid) != 0 && errno != EPERM)
    rc = errno;
  if (rc == 0 && fsync(out) != 0)
    rc = errno;
  close(in);
  if (close(out) != 0 && rc == 0)
    rc = errno;
  if (rc != 0)
    unlink(backup_path);
  return rc;
}


int su_mkdir_p (const char *path, int mode) {
  char buf[PATH_MAX];
  struct stat st;
  if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
    return ENAMETOOLONG;
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/')
    buf[--n] = '\0';
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, (mode_t)mode) != 0) {
        int err = errno;
        if (err != EEXIST)
          return err;
        if (stat(buf, &st) != 0)
          return errno;
        if (!S_ISDIR(st.st_mode))
          return ENOTDIR;
      }
      *p = c;
      if (c == '\0')
        break;
    }
  }
  return 0;
}


static int rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st; (void)ftw;
  int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
  return r == 0 ? 0 : errno;
}


int su_rmtree (const char *path) {
  if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
    return EINVAL;
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno;
  if (!S_ISDIR(st.st_mode))
    return unlink(path) == 0 ? 0 : errno;
  int rc = nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
  return rc < 0 ? errno : rc;
}


int su_backup (const char *path, char *out, size_t outlen) {
  char stamp[32];
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  for (int i = 0; i < 100; i++) {
    int n = i == 0 ? snprintf(out, outlen, "%s.%s.bak", path, stamp)
                   : snprintf(out, outlen, "%s.%s-%d.bak", path, stamp, i);
    if (n < 0 || (size_t)n >= outlen)
      return ENAMETOOLONG;
    int err = su_copy_file(path, out);
    if (err != EEXIST)
      return err;
  }
  return EEXIST;
}
