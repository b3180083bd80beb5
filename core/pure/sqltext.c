/*
** sqltext.c: see sqltext.h.
*/
#include <limits.h>

#include "sqltext.h"

/* Skips a quoted run starting at sql[i] (the opening quote) and returns the
** index just past the closing quote, or len when it is not closed. Inside
** '..' and "..", a backslash escapes the next byte; in every kind a doubled
** quote stands for itself. */
static size_t skip_quoted (const char *sql, size_t len, size_t i) {
  char q = sql[i++];
  while (i < len) {
    char c = sql[i];
    if (c == '\\' && q != '`')
      i += 2;
    else if (c == q) {
      if (i + 1 < len && sql[i + 1] == q)
        i += 2;
      else
        return i + 1;
    }
    else
      i++;
  }
  return len;
}


size_t st_placeholders (const char *sql, size_t len, size_t *pos, size_t max) {
  size_t n = 0, i = 0;
  while (i < len) {
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`')
      i = skip_quoted(sql, len, i);
    else if (c == '#' || (c == '-' && i + 2 < len && sql[i + 1] == '-' &&
                          (sql[i + 2] == ' ' || sql[i + 2] == '\t' || sql[i + 2] == '\n'))) {
      while (i < len && sql[i] != '\n')
        i++;
    }
    else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
      i += 2;
      while (i + 1 < len && !(sql[i] == '*' && sql[i + 1] == '/'))
        i++;
      i = i + 2 < len ? i + 2 : len;
    }
    else {
      if (c == '?') {
        if (n < max)
          pos[n] = i;
        n++;
      }
      i++;
    }
  }
  return n;
}


int st_utf8_valid (const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    size_t need;
    unsigned min, cp;
    if (c < 0x80) { i++; continue; }
    else if ((c & 0xE0) == 0xC0) { need = 1; min = 0x80; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { need = 2; min = 0x800; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { need = 3; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (len - i <= need)
      return 0;
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += need + 1;
  }
  return 1;
}


int st_integer (const char *s, size_t len, long long *out) {
  size_t i = 0;
  int neg = len > 0 && s[0] == '-';
  if (neg)
    i++;
  if (i == len)
    return 0;
  /* accumulate as a negative number: its range holds LLONG_MIN */
  long long v = 0;
  for (; i < len; i++) {
    unsigned d = (unsigned)(unsigned char)s[i] - '0';
    if (d > 9)
      return 0;
    if (v < (LLONG_MIN + (long long)d) / 10)
      return 0;
    v = v * 10 - (long long)d;
  }
  if (!neg) {
    if (v == LLONG_MIN)
      return 0;
    v = -v;
  }
  *out = v;
  return 1;
}


size_t st_quote_doubled (const char *s, size_t len, char *out) {
  size_t n = 0;
  out[n++] = '\'';
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\'')
      out[n++] = '\'';
    out[n++] = s[i];
  }
  out[n++] = '\'';
  return n;
}


size_t st_hex_literal (const char *s, size_t len, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  out[n++] = 'X';
  out[n++] = '\'';
  for (size_t i = 0; i < len; i++) {
    out[n++] = hex[(unsigned char)s[i] >> 4];
    out[n++] = hex[(unsigned char)s[i] & 15];
  }
  out[n++] = '\'';
  return n;
}
