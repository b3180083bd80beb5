/*
** cnfmodel.h: MySQL option files (my.cnf, my.ini) as a list of lines that
** keeps every byte, with no Lua in it (used by lcnf.c, tested by
** tests/c/test_cnfmodel.c, fuzzed by tests/fuzz/fuzz_cnf_*.c).
**
** Reading follows the server's rules (mysys/my_default.c, MariaDB 10.11):
** [group] lines (blanks before ']' trimmed, after '[' kept, text after ']'
** ignored), `name`, `name = value`, '#' and ';' comment lines, '#' ending
** the line outside quotes, blanks as latin1 has them (space, \t \n \v \f
** \r and 0xA0), a value with the same quote at both ends unquoted (a lone
** quote stays), backslash escapes (\n \t \r \b \s \\ \' \"), `!include`
** and `!includedir` (blanks allowed after '!'; other directives skipped).
** CRLF line endings and a UTF-8 byte order mark are kept as they were.
** What the server reads differently from what the text suggests is flagged
** per line (cm_line.warn).
**
** Every value read is also read by inih (ini_parse_stream over normalised
** lines, see cm_parse): the two readers must agree, or parsing fails.
*/
#ifndef MYSEAL_CNFMODEL_H
#define MYSEAL_CNFMODEL_H

#include <stddef.h>

enum cm_kind { CM_BLANK, CM_COMMENT, CM_SECTION, CM_OPTION, CM_INCLUDE, CM_INCLUDEDIR,
               CM_DIRECTIVE /* a '!' line the server does not know: it skips it */ };

/* What the server reads differently from what a person may expect (cm_line.warn). */
enum cm_warning {
  CM_W_GROUP_BLANK = 1,   /* "[ mysqld ]": the blank after '[' is part of the name */
  CM_W_GROUP_EMPTY = 2,   /* "[]": a group no program reads */
  CM_W_GROUP_TEXT = 4,    /* text after ']': the server ignores it */
  CM_W_DIRECTIVE = 8,     /* an unknown '!' directive: skipped */
  CM_W_OPEN_QUOTE = 16,   /* a value starting with a quote that does not close: the quote is kept */
  CM_W_A0 = 32,           /* a 0xA0 byte at an end of the value, trimmed as a blank */
  CM_W_LONG = 64          /* longer than the server's line buffer: read as two lines */
};

/* The server reads a line in pieces of this many bytes (fgets into a 4096-byte
** buffer, minus one): a longer line is split, the rest read as a new line. */
#define CM_SERVER_LINE 4094

typedef struct cm_line {
  enum cm_kind kind;
  char *raw;            /* the bytes of the line, its line ending included */
  size_t len;
  size_t eol;           /* bytes of line ending at the end of raw: 0, 1 or 2 */
  /* parsed, as offsets into raw (CM_SECTION: the name; CM_OPTION: name and
  ** the value region up to a comment; CM_INCLUDE*: the path) */
  size_t name_off, name_len;
  size_t val_off, val_len;   /* CM_OPTION with a value: from after '=' and blanks */
  int has_value;             /* CM_OPTION: 0 for a bare flag (skip-name-resolve) */
  unsigned warn;             /* enum cm_warning bits */
  size_t section;            /* index of the section line this line is under, or (size_t)-1 */
} cm_line;

typedef struct cm_doc {
  cm_line *lines;
  size_t n, cap;
  int bom;               /* the text started with a UTF-8 BOM */
  int crlf;              /* new lines get "\r\n" */
} cm_doc;

/* Parses text into d. 0 on success; else -1 with a message in err and the
** 1-based line number in *line. d is empty (and needs no cm_free) on error. */
int cm_parse (cm_doc *d, const char *text, size_t len, char *err, size_t errlen, size_t *line);
void cm_free (cm_doc *d);

/* The document's bytes, as a new malloc'd string. */
char *cm_render (const cm_doc *d, size_t *len);

/* The value of an option line, unquoted and unescaped, as a new malloc'd
** string (its length in *len); NULL for a bare flag or when out of memory. */
char *cm_value (const cm_line *l, size_t *len);

/* Option name comparison as the server does it: '-' and '_' are the same,
** case does not matter, a "loose-" prefix is ignored. */
int cm_same_name (const char *a, size_t alen, const char *b, size_t blen);

/* Section names compare without case. */
int cm_same_section (const cm_line *section_line, const char *name);

/* The index of the last option line `name` in any [section] block, or -1. */
long cm_find (const cm_doc *d, const char *section, const char *name);

/* Sets name in section: the last existing line changes in place (indent,
** spelling of the name, spacing and trailing comment kept), otherwise a new
** line goes at the end of the section's last block, the section being added
** at the end when missing. value NULL writes a bare flag. 0, EINVAL (a
** value or name that cannot be written) or ENOMEM. */
int cm_set (cm_doc *d, const char *section, const char *name, const char *value, size_t vlen);

/* Adds one more line setting name in section (at the end of the section's
** last block), whether or not one exists: for options that accumulate, such
** as plugin_load_add. Same results as cm_set. */
int cm_append (cm_doc *d, const char *section, const char *name, const char *value, size_t vlen);

/* Removes every line setting name in section; returns how many. */
size_t cm_unset (cm_doc *d, const char *section, const char *name);

/* Adds [section] at the end when no such section exists. 0 or ENOMEM. */
int cm_add_section (cm_doc *d, const char *section);

#endif
