/*
** test_sysutil.c: the process and file helpers under sys, without Lua.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "sysutil.h"

static char dir[64];

static char *path_in (const char *name) {
  static char buf[256];
  snprintf(buf, sizeof(buf), "%s/%s", dir, name);
  return buf;
}

static char *slurp (const char *path) {
  static char buf[4096];
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n < 0 ? 0 : n] = '\0';
  return buf;
}

static void test_run (void) {
  char *argv[] = {"sh", "-c", "cat; echo \"$X\" >&2; exit 4", NULL};
  char *env[] = {"X=from-env", NULL};
  su_run_opts o = {.argv = argv, .env = env, .input = "hello", .input_len = 5};
  su_run_result r;
  CHECK(su_run(&o, &r) == 0);
  CHECK(r.exited && r.exit_status == 4 && !r.timed_out);
  CHECK(r.out.len == 5 && memcmp(r.out.data, "hello", 5) == 0);
  CHECK(r.err.len == 9 && memcmp(r.err.data, "from-env\n", 9) == 0);
  su_run_result_free(&r);

  char *missing[] = {"no-such-program-myseal", NULL};
  su_run_opts m = {.argv = missing};
  CHECK(su_run(&m, &r) == ENOENT);

  char *slow[] = {"sleep", "10", NULL};
  su_run_opts s = {.argv = slow, .timeout = 0.2};
  CHECK(su_run(&s, &r) == 0);
  CHECK(r.timed_out && !r.exited);
  su_run_result_free(&r);

  /* a daemon that keeps the output pipes open does not hold the caller (a restart command
  ** that starts a server in the background) */
  char *daemon[] = {"sh", "-c", "sleep 3 & echo started", NULL};
  su_run_opts d = {.argv = daemon, .timeout = 20};
  CHECK(su_run(&d, &r) == 0);
  CHECK(r.exited && r.exit_status == 0 && !r.timed_out);
  CHECK(r.out.len == 8 && memcmp(r.out.data, "started\n", 8) == 0);
  su_run_result_free(&r);

  /* a cancel flag set (Ctrl-C) stops the program */
  static volatile sig_atomic_t flag = 1;
  su_run_opts c = {.argv = slow, .cancel = &flag};
  CHECK(su_run(&c, &r) == 0);
  CHECK(r.cancelled && !r.exited && !r.timed_out);
  su_run_result_free(&r);
}

static void test_atomic_write (void) {
  char *p = path_in("f");
  CHECK(su_atomic_write(p, "one", 3, 0600) == 0);
  struct stat st;
  CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
  CHECK_STR(slurp(p), "one");
  CHECK(su_atomic_write(p, "two", 3, -1) == 0);
  CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600);
  CHECK_STR(slurp(p), "two");
  CHECK(su_atomic_write(path_in("f/under-a-file"), "x", 1, -1) == ENOTDIR);
  CHECK(su_atomic_write(path_in("new"), "", 0, -1) == 0);
  CHECK(stat(path_in("new"), &st) == 0 && (st.st_mode & 07777) == 0644 && st.st_size == 0);
}

static void test_copy_and_tree (void) {
  char from[256];
  snprintf(from, sizeof(from), "%s", path_in("f"));
  CHECK(su_copy_file(from, path_in("copy")) == 0);
  CHECK_STR(slurp(path_in("copy")), "two");
  CHECK(su_copy_file(from, path_in("copy")) == EEXIST);
  CHECK(su_copy_file(path_in("none"), path_in("copy2")) == ENOENT);

  CHECK(su_mkdir_p(path_in("a/b/c"), 0700) == 0);
  CHECK(su_mkdir_p(path_in("a/b/c"), 0700) == 0);
  CHECK(su_mkdir_p(path_in("f/x"), 0700) == ENOTDIR);
  CHECK(su_rmtree("/") == EINVAL);
  CHECK(su_rmtree("") == EINVAL);
  CHECK(su_rmtree(path_in("a")) == 0);
  struct stat st;
  CHECK(stat(path_in("a"), &st) != 0 && errno == ENOENT);
}

int main (void) {
  snprintf(dir, sizeof(dir), "/tmp/test-sysutil-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  test_run();
  test_atomic_write();
  test_copy_and_tree();
  CHECK(su_rmtree(dir) == 0);
  return check_done();
}
