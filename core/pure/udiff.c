/*
** udiff.c: see udiff.h. Myers' O((N+M)D) greedy algorithm, keeping each
** round's furthest-reaching paths to walk the edit script back.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udiff.h"

typedef struct span { const char *p; size_t len; } span;  /* a line with its '\n' */

typedef struct text {
  span *lines;
  size_t n;
} text;

static int split (const char *s, size_t len, text *t) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\n')
      n++;
  if (len > 0 && s[len - 1] != '\n')
    n++;
  t->n = n;
  t->lines = calloc(n ? n : 1, sizeof(span));
  if (t->lines == NULL)
    return ENOMEM;
  size_t k = 0, start = 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\n') {
      t->lines[k].p = s + start;
      t->lines[k++].len = i + 1 - start;
      start = i + 1;
    }
  if (start < len) {
    t->lines[k].p = s + start;
    t->lines[k].len = len - start;
  }
  return 0;
}

static int same (const span *a, const span *b) {
  return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

typedef struct buf { char *p; size_t len, cap; int oom; } buf;

static void put (buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void put_line (buf *b, char mark, const span *l) {
  put(b, &mark, 1);
  if (l->len > 0 && l->p[l->len - 1] == '\n')
    put(b, l->p, l->len);
  else {
    put(b, l->p, l->len);
    static const char note[] = "\n\\ No newline at end of file\n";
    put(b, note, sizeof(note) - 1);
  }
}

/* ops: 0 keep, 1 delete (from a), 2 insert (from b), in order. */
static int script (const text *a, const text *b, unsigned char **ops, size_t *nops) {
  long n = (long)a->n, m = (long)b->n, max = n + m, off = max;
  long *v = calloc((size_t)(2 * max + 2), sizeof(long));
  long **trace = calloc((size_t)(max + 1), sizeof(long *));
  int err = ENOMEM;
  long d, found = -1;
  if (v == NULL || trace == NULL)
    goto done;
  for (d = 0; d <= max && found < 0; d++) {
    for (long k = -d; k <= d; k += 2) {
      long x;
      if (k == -d || (k != d && v[off + k - 1] < v[off + k + 1]))
        x = v[off + k + 1];
      else
        x = v[off + k - 1] + 1;
      long y = x - k;
      while (x < n && y < m && same(&a->lines[x], &b->lines[y])) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    /* round d only touched diagonals -d..d: keep those */
    trace[d] = malloc(sizeof(long) * (size_t)(2 * d + 1));
    if (trace[d] == NULL)
      goto done;
    memcpy(trace[d], v + off - d, sizeof(long) * (size_t)(2 * d + 1));
  }
  /* walk back from (n, m) */
  size_t len = 0;
  unsigned char *rev = malloc(a->n + b->n + 1);
  if (rev == NULL)
    goto done;
  long x = n, y = m;
  for (d = found; d > 0; d--) {
    long *pv = trace[d - 1] + (d - 1), k = x - y, pk;  /* pv[k] for |k| < d */
    if (k == -d || (k != d && pv[k - 1] < pv[k + 1]))
      pk = k + 1;
    else
      pk = k - 1;
    long px = pv[pk], py = px - pk;
    while (x > px && y > py) {
      rev[len++] = 0;
      x--;
      y--;
    }
    rev[len++] = x == px ? 2 : 1;
    x = px;
    y = py;
  }
  while (x > 0 && y > 0) {
    rev[len++] = 0;
    x--;
    y--;
  }
  *ops = malloc(len ? len : 1);
  if (*ops == NULL) {
    free(rev);
    goto done;
  }
  for (size_t i = 0; i < len; i++)
    (*ops)[i] = rev[len - 1 - i];
  *nops = len;
  free(rev);
  err = 0;
done:
  if (trace != NULL)
    for (long i = 0; i <= max; i++)
      free(trace[i]);
  free(trace);
  free(v);
  return err;
}

int ud_diff (const char *as, size_t alen, const char *bs, size_t blen, const char *from,
             const char *to, int context, char **out, size_t *outlen) {
  text a = {0}, b = {0};
  unsigned char *ops = NULL;
  size_t nops = 0;
  buf o = {0};
  int err = split(as, alen, &a);
  if (err == 0)
    err = split(bs, blen, &b);
  if (err == 0)
    err = script(&a, &b, &ops, &nops);
  if (err != 0)
    goto done;
  put(&o, "", 0);
  int header = 0;
  size_t i = 0;
  while (i < nops) {
    if (ops[i] == 0) {
      i++;
      continue;
    }
    /* a hunk: from `context` keeps before this change to the next run of
    ** more than 2 * context keeps (or the end) */
    size_t start = i >= (size_t)context ? i - (size_t)context : 0;
    while (start < i && ops[start] != 0)
      start++;
    size_t end = i;
    while (end < nops) {
      if (ops[end] != 0) {
        end++;
        continue;
      }
      size_t run = end;
      while (run < nops && ops[run] == 0)
        run++;
      if (run == nops || run - end > (size_t)(2 * context)) {
        end = end + (size_t)context < run ? end + (size_t)context : run;
        break;
      }
      end = run;
    }
    /* line numbers at start */
    size_t ai = 0, bi = 0;
    for (size_t k = 0; k < start; k++) {
      if (ops[k] != 2) ai++;
      if (ops[k] != 1) bi++;
    }
    size_t acount = 0, bcount = 0;
    for (size_t k = start; k < end; k++) {
      if (ops[k] != 2) acount++;
      if (ops[k] != 1) bcount++;
    }
    if (!header) {
      char h[1024];
      int n = snprintf(h, sizeof(h), "--- %s\n+++ %s\n", from, to);
      put(&o, h, n > 0 && (size_t)n < sizeof(h) ? (size_t)n : strlen(h));
      header = 1;
    }
    char h[128];
    int n = snprintf(h, sizeof(h), "@@ -%zu,%zu +%zu,%zu @@\n",
                     acount ? ai + 1 : ai, acount, bcount ? bi + 1 : bi, bcount);
    put(&o, h, (size_t)n);
    for (size_t k = start; k < end; k++) {
      if (ops[k] == 0) {
        put_line(&o, ' ', &a.lines[ai++]);
        bi++;
      }
      else if (ops[k] == 1)
        put_line(&o, '-', &a.lines[ai++]);
      else
        put_line(&o, '+', &b.lines[bi++]);
    }
    i = end;
  }
  if (o.oom)
    err = ENOMEM;
done:
  free(ops);
  free(a.lines);
  free(b.lines);
  if (err != 0) {
    free(o.p);
    return err;
  }
  *out = o.p;
  *outlen = o.len;
  return 0;
}
