/*
** sqltext.h: SQL text helpers with no Lua and no client library in them
** (used by lmysql.c, unit-tested by tests/c/test_sqltext.c).
*/
#ifndef MYSEAL_SQLTEXT_H
#define MYSEAL_SQLTEXT_H

#include <stddef.h>

/* Finds the '?' placeholders of sql that are outside quoted strings,
** quoted identifiers and comments ('..', "..", `..`, -- .., # .., and
** C-style comments). Stores up to max byte offsets in pos and returns how
** many there are (which may exceed max). */
size_t st_placeholders (const char *sql, size_t len, size_t *pos, size_t max);

/* The integer in s[0..len): an optional '-' and decimal digits (leading
** zeros allowed), as the server sends integer columns. Stores it in *out and
** returns 1 when it fits a signed 64-bit integer, else returns 0. */
int st_integer (const char *s, size_t len, long long *out);

/* Writes '<s>' with every quote doubled into out (room for 2 * len + 2
** bytes): a string literal that means s whatever the server's sql_mode,
** for display (no backslash escapes: a backslash stands for itself).
** Returns the bytes written. */
size_t st_quote_doubled (const char *s, size_t len, char *out);

/* Writes X'<hex>' (upper case) into out (room for 2 * len + 3 bytes):
** the literal for bytes that are not UTF-8. Returns the bytes written. */
size_t st_hex_literal (const char *s, size_t len, char *out);

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, at
** most U+10FFFF), else 0. */
int st_utf8_valid (const char *s, size_t len);

#endif
