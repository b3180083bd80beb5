/*
** sysutil.h: process and file helpers with no Lua in them (used by lsys.c,
** unit-tested by tests/c/test_sysutil.c). Functions return 0 or an errno value.
*/
#ifndef MYSEAL_SYSUTIL_H
#define MYSEAL_SYSUTIL_H

#include <stddef.h>
#include <signal.h>
#include <sys/types.h>

typedef struct su_buf {
  char *data;
  size_t len, cap;
} su_buf;

void su_buf_free (su_buf *b);

typedef struct su_run_opts {
  char *const *argv;        /* argv[0] is looked up on PATH */
  char *const *env;         /* "NAME=value" entries added to the environment, or NULL */
  const char *cwd;          /* or NULL */
  const char *input;        /* written to the child's stdin, or NULL for /dev/null */
  size_t input_len;
  double timeout;           /* seconds; <= 0 means none */
  const volatile sig_atomic_t *cancel; /* when it points at a nonzero value: stop (Ctrl-C), or NULL */
} su_run_opts;

typedef struct su_run_result {
  int exited;               /* 1: exit_status is valid; 0: killed by term_signal */
  int exit_status;
  int term_signal;
  int timed_out;            /* the process group was killed after the timeout */
  int cancelled;            /* *cancel was set: the process group was stopped */
  su_buf out, err;
} su_run_result;

/* Runs a program with no shell and waits for it. Returns 0 (see *res) or an
** errno: the program could not be started (ENOENT, EACCES, ...). On timeout
** the child's process group gets SIGKILL and res->timed_out is set; when
** *cancel becomes nonzero it gets SIGTERM (SIGKILL 2 s later) and
** res->cancelled is set. Output is read until the child has exited and its
** pipes have been quiet for a moment: a daemon the child started that keeps
** them open does not hold the caller. */
int su_run (const su_run_opts *opts, su_run_result *res);
void su_run_result_free (su_run_result *res);

/* Children (su_run, su_spawn) never inherit MYSEAL_SECRET_* nor a variable named here (the
** source of a secret given as env:NAME); the caller's `env` entries are still passed.
** Returns 0, or ENOSPC past 64 names, ENOMEM. */
int su_hide_env (const char *name);

/* The environment a child gets (see su_hide_env) with `env`'s entries added: a malloc'd
** array of borrowed strings (free the array only), or NULL when out of memory. */
char **su_child_env (char *const *env);

/* Starts a program in the background, in a new session, stdin from
** /dev/null, stdout and stderr appended to log (or /dev/null when NULL).
** Returns 0 and *pid, or an errno (the exec failure is reported, not lost). */
int su_spawn (char *const *argv, char *const *env, const char *cwd,
              const char *log, pid_t *pid);

/* The same, with `input` (input_len bytes, at most a pipe's capacity, 64 KiB)
** on the child's stdin, then end of file: a secret for a worker, off its argv
** and environment. */
int su_spawn_input (char *const *argv, char *const *env, const char *cwd,
                    const char *log, const char *input, size_t input_len, pid_t *pid);

/* May user uid (with group gid and its supplementary groups) reach path and
** open it with access `mode` (R_OK, W_OK; X_OK for a directory to enter)?
** Asked of the kernel in a child process that becomes that user, so modes,
** owners and ACLs count as they will for the server. Returns 0 when it may;
** else an errno, and `at` (atlen bytes) holds the first path that stops it
** (a directory it cannot enter, or the file itself). EPERM: we cannot become
** that user (not root). */
int su_access_as (uid_t uid, gid_t gid, const char *user, const char *path, int mode,
                  char *at, size_t atlen);

/* Replaces path atomically: a temporary file in the same directory, created
** 0600, given `mode` before any byte is written, fsynced, renamed over path;
** the directory is fsynced too. mode < 0 keeps the mode (and owner) of an
** existing file, or uses 0644 for a new one. */
int su_atomic_write (const char *path, const void *data, size_t len, int mode);

/* Copies path to a new file backup_path with the same mode and owner;
** fails with EEXIST rather than overwrite. */
int su_copy_file (const char *path, const char *backup_path);

/* Copies path to path.YYYYmmdd-HHMMSS.bak (local time; -N added when that
** name is taken) with the same mode and owner, and puts the name in out. */
int su_backup (const char *path, char *out, size_t outlen);

int su_mkdir_p (const char *path, int mode);

/* rm -rf, not following symbolic links. Refuses "/" and "" (EINVAL). */
int su_rmtree (const char *path);

#endif
