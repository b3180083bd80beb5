/*
** fuzz_sqltext.c: the SQL text helpers on any bytes. Placeholders are '?'
** bytes at increasing offsets, the same with any bound; an integer column
** reads as strtoll reads it; a doubled-quote literal and a hex literal
** decode back to the input and stay within the room they promise.
*/
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqltext.h"

static void placeholders (const char *sql, size_t size) {
  size_t few[4];
  size_t n = st_placeholders(sql, size, few, 4);
  size_t *all = malloc((n + 1) * sizeof(size_t));
  if (all == NULL)
    abort();
  if (st_placeholders(sql, size, all, n) != n)
    abort();
  for (size_t i = 0; i < n; i++) {
    if (all[i] >= size || sql[all[i]] != '?' || (i > 0 && all[i] <= all[i - 1]))
      abort();
    if (i < 4 && few[i] != all[i])
      abort();
  }
  free(all);
}

static void integer (const char *s, size_t size) {
  long long v;
  int ok = st_integer(s, size, &v);
  int digits = size > 0;
  for (size_t i = (size > 0 && s[0] == '-') ? 1 : 0; i < size; i++)
    if (s[i] < '0' || s[i] > '9')
      digits = 0;
  if (size == 1 && s[0] == '-')
    digits = 0;
  if (!digits) {
    if (ok)
      abort();
    return;
  }
  char *z = malloc(size + 1);
  if (z == NULL)
    abort();
  memcpy(z, s, size);
  z[size] = '\0';
  errno = 0;
  long long want = strtoll(z, NULL, 10);
  free(z);
  if (ok != (errno == 0) || (ok && v != want))
    abort();
}

static void literals (const char *s, size_t size) {
  char *out = malloc(2 * size + 3);
  if (out == NULL)
    abort();
  size_t n = st_quote_doubled(s, size, out);
  if (n > 2 * size + 2 || n < 2 || out[0] != '\'' || out[n - 1] != '\'')
    abort();
  size_t k = 0;
  for (size_t i = 1; i + 1 < n; i++) {
    if (out[i] == '\'' && out[++i] != '\'')
      abort();
    if (k >= size || out[i] != s[k++])
      abort();
  }
  if (k != size)
    abort();
  n = st_hex_literal(s, size, out);
  if (n != 2 * size + 3 || out[0] != 'X' || out[1] != '\'' || out[n - 1] != '\'')
    abort();
  for (size_t i = 0; i < size; i++) {
    char byte[3] = { out[2 + 2 * i], out[3 + 2 * i], '\0' };
    if (strtoul(byte, NULL, 16) != (unsigned char)s[i] || strchr("0123456789ABCDEF", byte[0]) == NULL ||
        strchr("0123456789ABCDEF", byte[1]) == NULL)
      abort();
  }
  free(out);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  placeholders(s, size);
  integer(s, size);
  literals(s, size);
  st_utf8_valid(s, size);
  return 0;
}
