/*
** test_udiff.c: unified diffs as diff -u writes them.
*/
#include <stdlib.h>

#include "check.h"
#include "udiff.h"

static char *diff (const char *a, const char *b, int context) {
  static char *last;
  free(last);
  size_t len;
  last = NULL;
  if (ud_diff(a, strlen(a), b, strlen(b), "a/f", "b/f", context, &last, &len) != 0)
    return NULL;
  return last;
}

int main (void) {
  CHECK_STR(diff("x\ny\n", "x\ny\n", 3), "");
  CHECK_STR(diff("", "", 3), "");
  CHECK_STR(diff("a\nb\nc\n", "a\nB\nc\n", 3),
            "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
  CHECK_STR(diff("", "new\n", 3), "--- a/f\n+++ b/f\n@@ -0,0 +1,1 @@\n+new\n");
  CHECK_STR(diff("old\n", "", 3), "--- a/f\n+++ b/f\n@@ -1,1 +0,0 @@\n-old\n");
  CHECK_STR(diff("a\nb", "a\nb\n", 3),
            "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
  /* two changes far apart make two hunks; near ones one */
  CHECK_STR(diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\nX\n3\n4\n5\n6\n7\nY\n9\n", 1),
            "--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n 1\n-2\n+X\n 3\n@@ -7,3 +7,3 @@\n 7\n-8\n+Y\n 9\n");
  CHECK_STR(diff("1\n2\n3\n4\n", "1\nX\n3\nY\n", 1),
            "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n 1\n-2\n+X\n 3\n-4\n+Y\n");
  CHECK_STR(diff("a\nb\n", "a\nb\nc\n", 3), "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n b\n+c\n");
  return check_done();
}
