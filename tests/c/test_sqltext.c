/*
** test_sqltext.c: placeholder scanning and UTF-8 validation.
*/
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

int main (void) {
  test_placeholders();
  test_utf8();
  return check_done();
}
