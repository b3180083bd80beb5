/*
** check.h: the whole C test harness. CHECK records a failure and goes on;
** check_done() prints "N passed, N failed" and gives the exit status.
*/
#ifndef MYSEAL_CHECK_H
#define MYSEAL_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond) do { \
    if (cond) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } \
  } while (0)

#define CHECK_STR(got, want) do { \
    const char *g_ = (got), *w_ = (want); \
    if (g_ != NULL && strcmp(g_, w_) == 0) check_passed++; \
    else { check_failed++; fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", \
                                   __FILE__, __LINE__, g_ ? g_ : "(null)", w_); } \
  } while (0)

static int check_done (void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed == 0 ? 0 : 1;
}

#endif
