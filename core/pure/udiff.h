/*
** udiff.h: a unified diff of two texts, line by line (Myers' algorithm), with
** no Lua in it (used by lcnf.c as cnf.diff, tested by tests/c/test_udiff.c).
*/
#ifndef MYSEAL_UDIFF_H
#define MYSEAL_UDIFF_H

#include <stddef.h>

/* Writes the unified diff of a (named from) and b (named to) with `context`
** lines of context into a new malloc'd string (*out, *outlen). Identical
** texts give an empty string. Returns 0 or ENOMEM. */
int ud_diff (const char *a, size_t alen, const char *b, size_t blen, const char *from,
             const char *to, int context, char **out, size_t *outlen);

#endif
