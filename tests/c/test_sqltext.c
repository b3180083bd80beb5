/*
** test_sqltext.c: placeholder scanning, UTF-8 validation, integer columns
** and the display literals.
*/
#include <limits.h>

#include "check.h"
#include "sqltext.h"

static size_t count (const char *sql) {
  size_t pos[8];
  return st_placeholders(sql, strlen(sql), pos, 8);
}

static void test_placeholders (void) {
  size_t pos[4];
  const char *q = "SELECT ?, '?', \"?\", `?`, ? -- ?\n, ? # ?\n /* ? */ ?";
  CHECK(st_placeholders(q, strlen(q), pos, 4) == 4);
  CHECK(q[pos[0]] == '?' && pos[0] == 7);
  CHECK(q[pos[1]] == '?' && q[pos[1] - 3] == '`');
  CHECK(q[pos[3]] == '?' && pos[3] == strlen(q) - 1);
  CHECK(count("SELECT 'it''s ?', 'a\\'?', ?") == 1);
  CHECK(count("SELECT `a``?`, ?") == 1);
  CHECK(count("SELECT 1--?") == 1);   /* "--" without a space is not a comment */
  CHECK(count("SELECT '?") == 0);     /* unterminated: the server will say so */
  CHECK(count("SELECT /* ?") == 0);
  CHECK(count("?????????") == 9);     /* counted past max */
  CHECK(count("") == 0);
}

static void test_utf8 (void) {
  CHECK(st_utf8_valid("plain", 5));
  CHECK(st_utf8_valid("h\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 10));
  CHECK(!st_utf8_valid("\xC3", 1));            /* truncated */
  CHECK(!st_utf8_valid("\xC0\x80", 2));        /* overlong NUL */
  CHECK(!st_utf8_valid("\xED\xA0\x80", 3));    /* surrogate */
  CHECK(!st_utf8_valid("\xF4\x90\x80\x80", 4)); /* above U+10FFFF */
  CHECK(!st_utf8_valid("\xFF", 1));
  CHECK(st_utf8_valid("a\0b", 3));             /* NUL is valid UTF-8 */
}

static int integer (const char *s, long long *out) {
  return st_integer(s, strlen(s), out);
}

static void test_integer (void) {
  long long v = 7;
  CHECK(integer("0", &v) && v == 0);
  CHECK(integer("42", &v) && v == 42);
  CHECK(integer("-42", &v) && v == -42);
  CHECK(integer("00042", &v) && v == 42);   /* ZEROFILL columns */
  CHECK(integer("9223372036854775807", &v) && v == LLONG_MAX);
  CHECK(integer("-9223372036854775808", &v) && v == LLONG_MIN);
  v = 7;
  CHECK(!integer("9223372036854775808", &v) && v == 7);  /* BIGINT UNSIGNED above: a string */
  CHECK(!integer("18446744073709551615", &v));
  CHECK(!integer("-9223372036854775809", &v));
  CHECK(!integer("99999999999999999999999", &v));
  CHECK(!integer("", &v));
  CHECK(!integer("-", &v));
  CHECK(!integer("+1", &v));
  CHECK(!integer(" 1", &v));
  CHECK(!integer("1.5", &v));
  CHECK(st_integer("12", 1, &v) && v == 1);
}

/* The literal a writer makes of s[0..len), as a C string. */
static const char *literal (size_t (*writer) (const char *, size_t, char *), const char *s, size_t len) {
  static char out[64];
  out[writer(s, len, out)] = '\0';
  return out;
}

static void test_literals (void) {
  CHECK_STR(literal(st_quote_doubled, "it's a\\b", 8), "'it''s a\\b'");
  CHECK_STR(literal(st_quote_doubled, "", 0), "''");
  CHECK_STR(literal(st_quote_doubled, "''", 2), "''''''");   /* the bound of 2 * len + 2 */
  CHECK_STR(literal(st_hex_literal, "\0\xff\x10", 3), "X'00FF10'");
  CHECK_STR(literal(st_hex_literal, "", 0), "X''");
}

int main (void) {
  test_placeholders();
  test_utf8();
  test_integer();
  test_literals();
  return check_done();
}
