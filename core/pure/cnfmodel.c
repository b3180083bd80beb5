/*
** cnfmodel.c: see cnfmodel.h.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "cnfmodel.h"

#define NO_SECTION ((size_t)-1)

/* --- lines -------------------------------------------------------------- */

static int push_line (cm_doc *d, const char *raw, size_t len) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 32;
    cm_line *l = realloc(d->lines, cap * sizeof(cm_line));
    if (l == NULL)
      return ENOMEM;
    d->lines = l;
    d->cap = cap;
  }
  cm_line *l = &d->lines[d->n];
  memset(l, 0, sizeof(*l));
  l->raw = malloc(len + 1);
  if (l->raw == NULL)
    return ENOMEM;
  memcpy(l->raw, raw, len);
  l->raw[len] = '\0';
  l->len = len;
  d->n++;
  return 0;
}

void cm_free (cm_doc *d) {
  for (size_t i = 0; i < d->n; i++)
    free(d->lines[i].raw);
  free(d->lines);
  memset(d, 0, sizeof(*d));
}

/* The server's blanks: my_isspace() with latin1's ctype, which has the
** control blanks and 0xA0 (no-break space in latin1, the last byte of a
** UTF-8 'à'). */
static int is_space (char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (unsigned char)c == 0xA0;
}

/* Where the server's remove_end_comment cuts a line: the first '#' outside
** quotes, scanning from the start of the option (a quote opens at any
** place; a backslash inside quotes protects the next quote). */
static size_t comment_at (const char *s, size_t from, size_t to) {
  char quote = 0;
  int escape = 0;
  for (size_t i = from; i < to; i++) {
    char c = s[i];
    if ((c == '\'' || c == '"') && !escape) {
      if (!quote)
        quote = c;
      else if (quote == c)
        quote = 0;
    }
    if (!quote && c == '#')
      return i;
    escape = quote && c == '\\' && !escape;
  }
  return to;
}

/* The value region [a, b) without the server's blanks at its ends; sets
** CM_W_A0 when one of the blanks trimmed was a 0xA0 byte. */
static void trim_value (cm_line *l, const char *s, size_t *a, size_t *b) {
  while (*a < *b && is_space(s[*a])) {
    if ((unsigned char)s[*a] == 0xA0)
      l->warn |= CM_W_A0;
    (*a)++;
  }
  while (*b > *a && is_space(s[*b - 1])) {
    if ((unsigned char)s[*b - 1] == 0xA0)
      l->warn |= CM_W_A0;
    (*b)--;
  }
}

/* Classifies line l (content s[0..n), without its line ending) as the
** server's search_default_file_with_ext reads a line. */
static int classify (cm_line *l, const char *s, size_t n, char *err, size_t errlen) {
  size_t i = 0;
  l->warn = 0;
  while (i < n && is_space(s[i]))
    i++;
  if (i == n) {
    l->kind = CM_BLANK;
    return 0;
  }
  if (s[i] == '#' || s[i] == ';') {
    l->kind = CM_COMMENT;
    return 0;
  }
  if (s[i] == '[') {
    const char *close = memchr(s + i, ']', n - i);
    if (close == NULL) {
      snprintf(err, errlen, "unterminated group name (no ']')");
      return -1;
    }
    /* blanks after '[' are part of the name; blanks before ']' are not */
    size_t a = i + 1, b = (size_t)(close - s);
    while (b > a && is_space(s[b - 1]))
      b--;
    if (a < b && is_space(s[a]))
      l->warn |= CM_W_GROUP_BLANK;
    if (a == b)
      l->warn |= CM_W_GROUP_EMPTY;
    size_t k = (size_t)(close - s) + 1;
    while (k < n && is_space(s[k]))
      k++;
    if (k < n && s[k] != '#' && s[k] != ';')
      l->warn |= CM_W_GROUP_TEXT;
    l->kind = CM_SECTION;
    l->name_off = a;
    l->name_len = b - a;
    return 0;
  }
  if (s[i] == '!') {
    static const char inc[] = "include", incdir[] = "includedir";
    size_t k = i + 1;
    while (k < n && is_space(s[k]))
      k++;
    /* the keyword must be followed by a blank (the line's newline counts) */
    if (n - k >= sizeof(incdir) - 1 && memcmp(s + k, incdir, sizeof(incdir) - 1) == 0 &&
        (k + sizeof(incdir) - 1 == n || is_space(s[k + sizeof(incdir) - 1]))) {
      l->kind = CM_INCLUDEDIR;
      k += sizeof(incdir) - 1;
    }
    else if (n - k >= sizeof(inc) - 1 && memcmp(s + k, inc, sizeof(inc) - 1) == 0 &&
             (k + sizeof(inc) - 1 == n || is_space(s[k + sizeof(inc) - 1]))) {
      l->kind = CM_INCLUDE;
      k += sizeof(inc) - 1;
    }
    else {
      l->kind = CM_DIRECTIVE;   /* the server skips directives it does not know */
      l->warn |= CM_W_DIRECTIVE;
      return 0;
    }
    while (k < n && is_space(s[k]))
      k++;
    size_t e = n;
    while (e > k && is_space(s[e - 1]))
      e--;
    if (e == k) {
      snprintf(err, errlen, "%s without a path", l->kind == CM_INCLUDE ? "!include" : "!includedir");
      return -1;
    }
    l->name_off = k;
    l->name_len = e - k;
    return 0;
  }
  /* an option: name, or name = value, up to a comment */
  l->kind = CM_OPTION;
  size_t a = i, end = comment_at(s, i, n);
  const char *eq = memchr(s + a, '=', end - a);
  size_t name_end = eq ? (size_t)(eq - s) : end;
  while (name_end > a && is_space(s[name_end - 1]))
    name_end--;
  l->name_off = a;
  l->name_len = name_end - a;
  /* the server would take "bind address" as one name and then refuse it */
  size_t first = a;
  while (first < name_end && !is_space(s[first]))
    first++;
  if (first < name_end) {
    size_t k = first;
    while (k < n && is_space(s[k]))
      k++;
    snprintf(err, errlen, "'%.*s' is followed by '%.*s': a space in an option name, or a missing '='",
             (int)(first - a), s + a, (int)(n - k > 20 ? 20 : n - k), s + k);
    return -1;
  }
  if (l->name_len == 0) {
    snprintf(err, errlen, "an option without a name");
    return -1;
  }
  if (eq != NULL) {
    size_t va = (size_t)(eq - s) + 1, vb = end;
    trim_value(l, s, &va, &vb);
    l->has_value = 1;
    l->val_off = va;
    l->val_len = vb - va;
    const char *v = s + va;
    size_t vn = vb - va;
    if (vn > 0 && (v[0] == '"' || v[0] == '\'') && !(vn > 1 && v[vn - 1] == v[0]))
      l->warn |= CM_W_OPEN_QUOTE;
  }
  return 0;
}


/* --- values -------------------------------------------------------------- */

char *cm_value (const cm_line *l, size_t *len) {
  if (l->kind != CM_OPTION || !l->has_value)
    return NULL;
  const char *v = l->raw + l->val_off;
  size_t n = l->val_len;
  if (n >= 2 && (v[0] == '\'' || v[0] == '"') && v[n - 1] == v[0]) {
    v++;
    n -= 2;
  }
  char *out = malloc(n + 1), *p = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '\\' && i + 1 < n) {
      char c = v[++i];
      switch (c) {
        case 'b': *p++ = '\b'; break;
        case 't': *p++ = '\t'; break;
        case 'n': *p++ = '\n'; break;
        case 'r': *p++ = '\r'; break;
        case 's': *p++ = ' '; break;
        case '\\': case '\'': case '"': *p++ = c; break;
        default: *p++ = '\\'; *p++ = c;
      }
    }
    else
      *p++ = v[i];
  }
  *p = '\0';
  *len = (size_t)(p - out);
  return out;
}

/* The text to write for a value: as it is when that reads back the same,
** else in double quotes with escapes. NULL (errno EINVAL) when it cannot be
** written on one line... never: every byte has an escape but NUL. */
static char *encode_value (const char *v, size_t n, size_t *outlen) {
  int plain = n > 0 && !is_space(v[0]) && !is_space(v[n - 1]);
  for (size_t i = 0; i < n && plain; i++)
    if (strchr("#'\"\\\n\r\t\b", v[i]) != NULL || v[i] == '\0')
      plain = 0;
  char *out = malloc(2 * n + 3), *p = out;
  if (out == NULL)
    return NULL;
  if (plain) {
    memcpy(out, v, n);
    *outlen = n;
    return out;
  }
  *p++ = '"';
  for (size_t i = 0; i < n; i++) {
    switch (v[i]) {
      case '\\': *p++ = '\\'; *p++ = '\\'; break;
      case '"': *p++ = '\\'; *p++ = '"'; break;
      case '\n': *p++ = '\\'; *p++ = 'n'; break;
      case '\r': *p++ = '\\'; *p++ = 'r'; break;
      case '\t': *p++ = '\\'; *p++ = 't'; break;
      case '\b': *p++ = '\\'; *p++ = 'b'; break;
      default: *p++ = v[i];
    }
  }
  *p++ = '"';
  *outlen = (size_t)(p - out);
  return out;
}


/* --- names --------------------------------------------------------------- */

static void skip_loose (const char **s, size_t *n) {
  if (*n > 6 && strncasecmp(*s, "loose", 5) == 0 && ((*s)[5] == '-' || (*s)[5] == '_')) {
    *s += 6;
    *n -= 6;
  }
}

int cm_same_name (const char *a, size_t alen, const char *b, size_t blen) {
  skip_loose(&a, &alen);
  skip_loose(&b, &blen);
  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++) {
    char x = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);
    char y = b[i] == '-' ? '_' : (char)tolower((unsigned char)b[i]);
    if (x != y)
      return 0;
  }
  return 1;
}

int cm_same_section (const cm_line *l, const char *name) {
  return l->kind == CM_SECTION && strlen(name) == l->name_len &&
         strncasecmp(l->raw + l->name_off, name, l->name_len) == 0;
}

long cm_find (const cm_doc *d, const char *section, const char *name) {
  long found = -1;
  for (size_t i = 0; i < d->n; i++) {
    const cm_line *l = &d->lines[i];
    if (l->kind == CM_OPTION && l->section != NO_SECTION &&
        cm_same_section(&d->lines[l->section], section) &&
        cm_same_name(l->raw + l->name_off, l->name_len, name, strlen(name)))
      found = (long)i;
  }
  return found;
}


/* --- inih, over normalised lines ----------------------------------------------- */

/*
** Debian's inih has a 200-byte line limit and no bare keys, and it would cut
** a value at " ;". So inih reads normalised lines: blank for comments and
** directives, "[group]", and "name=value" where a bare flag's value is "\2"
** and a value it could misread (long, with ';' or '#', blanks at its ends)
** is "\1<line index>". Its handler only records what it saw; cm_parse then
** checks that inih and the line model found the same options in the same
** groups, in the same order.
*/
typedef struct inih_feed {
  const cm_doc *d;
  size_t next;           /* the next line to hand out */
  size_t seen;           /* options reported by inih */
  long bad;              /* the first line where inih and the model disagree, or -1 */
} inih_feed;

static char *feed_line (char *buf, int size, void *stream) {
  inih_feed *f = stream;
  if (f->next >= f->d->n)
    return NULL;
  const cm_line *l = &f->d->lines[f->next++];
  size_t cap = (size_t)size;
  buf[0] = '\0';
  if (l->kind == CM_SECTION) {
    /* inih trims blanks and stops at ';' or '#': such names go by reference */
    const char *name = l->raw + l->name_off;
    int plain = l->name_len > 0 && l->name_len + 4 < cap && !is_space(name[0]);
    for (size_t i = 0; plain && i < l->name_len; i++)
      if ((unsigned char)name[i] < 0x20 || name[i] == ';' || name[i] == '#' || name[i] == 0x7f)
        plain = 0;
    if (plain)
      snprintf(buf, cap, "[%.*s]\n", (int)l->name_len, name);
    else
      snprintf(buf, cap, "[\1%zu]\n", f->next - 1);
  }
  else if (l->kind == CM_OPTION) {
    size_t vlen = 0;
    char *v = cm_value(l, &vlen);
    /* inih trims isspace() at both ends and cuts at " ;": such values, control
    ** characters and long ones go by reference */
    int safe = v != NULL && vlen > 0 && v[0] != ' ' && v[vlen - 1] != ' ' &&
               l->name_len + vlen + 3 < cap && strpbrk(v, ";#") == NULL;
    for (size_t i = 0; safe && i < vlen; i++)
      if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
        safe = 0;
    if (l->name_len + 24 >= cap)
      snprintf(buf, cap, "\1%zu=\1\n", f->next - 1);
    else if (!l->has_value)
      snprintf(buf, cap, "%.*s=\2\n", (int)l->name_len, l->raw + l->name_off);
    else if (safe)
      snprintf(buf, cap, "%.*s=%s\n", (int)l->name_len, l->raw + l->name_off, v);
    else
      snprintf(buf, cap, "%.*s=\1%zu\n", (int)l->name_len, l->raw + l->name_off, f->next - 1);
    free(v);
  }
  else
    snprintf(buf, cap, "\n");
  return buf;
}

static int inih_handler (void *user, const char *section, const char *name, const char *value) {
  inih_feed *f = user;
  size_t at = f->next - 1;  /* inih handles each line before it reads the next */
  const cm_line *l = &f->d->lines[at];
  f->seen++;
  if (f->bad >= 0)
    return 1;
  int ok = l->kind == CM_OPTION && l->section != NO_SECTION;
  if (ok && name[0] != '\1')
    ok = strlen(name) == l->name_len && memcmp(name, l->raw + l->name_off, l->name_len) == 0;
  if (ok && section[0] != '\1')
    ok = cm_same_section(&f->d->lines[l->section], section);
  if (ok && value[0] != '\1') {
    if (strcmp(value, "\2") == 0)
      ok = !l->has_value;
    else {
      size_t vlen;
      char *v = cm_value(l, &vlen);
      ok = v != NULL && strcmp(v, value) == 0;
      free(v);
    }
  }
  if (!ok)
    f->bad = (long)at;
  return 1;
}


/* --- parse and render ---------------------------------------------------------- */

int cm_parse (cm_doc *d, const char *text, size_t len, char *err, size_t errlen, size_t *line) {
  memset(d, 0, sizeof(*d));
  size_t pos = 0, lineno = 0, section = NO_SECTION, options = 0;
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
    d->bom = 1;
    pos = 3;
  }
  const char *nul = memchr(text, '\0', len);
  if (nul != NULL) {
    size_t at = 1;
    for (const char *p = text; p < nul; p++)
      if (*p == '\n')
        at++;
    snprintf(err, errlen, "a binary file, not an option file (a NUL byte)");
    *line = at;
    return -1;
  }
  while (pos < len) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) + 1 : len;
    lineno++;
    if (push_line(d, text + pos, end - pos) != 0) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    cm_line *l = &d->lines[d->n - 1];
    size_t content = l->len;
    if (content > 0 && l->raw[content - 1] == '\n') {
      content--;
      l->eol = 1;
      if (content > 0 && l->raw[content - 1] == '\r') {
        content--;
        l->eol = 2;
      }
    }
    if (lineno == 1 && l->eol == 2)
      d->crlf = 1;
    if (classify(l, l->raw, content, err, errlen) != 0)
      goto fail;
    /* the server reads CM_SERVER_LINE bytes at a time: what is past them is a
    ** line of its own, harmless only when it is blank */
    for (size_t at = CM_SERVER_LINE; at < l->len && !(l->warn & CM_W_LONG); at += CM_SERVER_LINE) {
      size_t stop = at + CM_SERVER_LINE < l->len ? at + CM_SERVER_LINE : l->len;
      for (size_t k = at; k < stop; k++)
        if (!is_space(l->raw[k])) {
          l->warn |= CM_W_LONG;
          break;
        }
    }
    if (l->kind == CM_SECTION)
      section = d->n - 1;
    else if (l->kind == CM_OPTION) {
      if (section == NO_SECTION) {
        snprintf(err, errlen, "option '%.*s' comes before any [group]", (int)l->name_len,
                 l->raw + l->name_off);
        goto fail;
      }
      options++;
    }
    l->section = l->kind == CM_SECTION ? NO_SECTION : section;
    pos = end;
  }
  /* inih reads the same lines; it must see the same options */
  inih_feed f = { d, 0, 0, -1 };
  int rc = ini_parse_stream(feed_line, &f, inih_handler, &f);
  if (rc != 0 || f.bad >= 0 || f.seen != options) {
    lineno = rc > 0 ? (size_t)rc : f.bad >= 0 ? (size_t)f.bad + 1 : (d->n ? d->n : 1);
    snprintf(err, errlen, "inih and the option-file reader disagree here");
    goto fail;
  }
  return 0;
fail:
  *line = lineno;
  cm_free(d);
  return -1;
}

char *cm_render (const cm_doc *d, size_t *len) {
  size_t n = d->bom ? 3 : 0;
  for (size_t i = 0; i < d->n; i++)
    n += d->lines[i].len;
  char *out = malloc(n + 1), *p = out;
  if (out == NULL)
    return NULL;
  if (d->bom) {
    memcpy(p, "\xEF\xBB\xBF", 3);
    p += 3;
  }
  for (size_t i = 0; i < d->n; i++) {
    memcpy(p, d->lines[i].raw, d->lines[i].len);
    p += d->lines[i].len;
  }
  *p = '\0';
  *len = n;
  return out;
}


/* --- editing --------------------------------------------------------------------- */

/* Replaces line i with new content (no line ending: the old one is kept, or
** the document's style when the line had none and one is asked for). */
static int replace_line (cm_doc *d, size_t i, const char *content, size_t n, int want_eol) {
  cm_line *l = &d->lines[i];
  size_t eol = l->eol ? l->eol : (want_eol ? (d->crlf ? 2 : 1) : 0);
  char *raw = malloc(n + eol + 1);
  if (raw == NULL)
    return ENOMEM;
  memcpy(raw, content, n);
  memcpy(raw + n, eol == 2 ? "\r\n" : "\n", eol);
  raw[n + eol] = '\0';
  cm_line copy = *l;
  copy.raw = raw;
  copy.len = n + eol;
  copy.eol = eol;
  char err[160];
  if (classify(&copy, raw, n, err, sizeof(err)) != 0) {
    free(raw);
    return EINVAL;
  }
  free(l->raw);
  *l = copy;
  return 0;
}

/* Inserts a new line (content without line ending; it gets the document's)
** before index at, under the section line at index section. */
static int insert_line (cm_doc *d, size_t at, const char *content, size_t n, size_t section) {
  if (at > 0 && d->lines[at - 1].eol == 0) {  /* the line before needs an ending now */
    cm_line *prev = &d->lines[at - 1];
    int err = replace_line(d, at - 1, prev->raw, prev->len, 1);
    if (err)
      return err;
  }
  size_t eol = d->crlf ? 2 : 1;
  char *raw = malloc(n + eol + 1);
  if (raw == NULL || push_line(d, "", 0) != 0) {  /* push_line makes room */
    free(raw);
    return ENOMEM;
  }
  free(d->lines[d->n - 1].raw);
  memmove(&d->lines[at + 1], &d->lines[at], (d->n - 1 - at) * sizeof(cm_line));
  for (size_t i = at + 1; i < d->n; i++)
    if (d->lines[i].section != NO_SECTION && d->lines[i].section >= at)
      d->lines[i].section++;
  memcpy(raw, content, n);
  memcpy(raw + n, d->crlf ? "\r\n" : "\n", eol);
  raw[n + eol] = '\0';
  cm_line *l = &d->lines[at];
  memset(l, 0, sizeof(*l));
  l->raw = raw;
  l->len = n + eol;
  l->eol = eol;
  char err[160];
  int bad = classify(l, raw, n, err, sizeof(err));
  l->section = l->kind == CM_SECTION ? NO_SECTION : section;
  return bad ? EINVAL : 0;
}

static int valid_name (const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.'))
      return 0;
  return 1;
}

static int valid_section (const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (*s == ']' || *s == '\n' || *s == '\r' || *s == '[')
      return 0;
  return 1;
}

/* The index of the line after which a new option of section goes (in the
** section's last block), or -1 when there is no such section. */
static long section_end (const cm_doc *d, const char *section, long *header) {
  long last, hdr = -1;
  for (size_t i = 0; i < d->n; i++)
    if (cm_same_section(&d->lines[i], section))
      hdr = (long)i;
  if (hdr < 0)
    return -1;
  /* after its last option: comments at the end of a block usually
  ** introduce the next group */
  last = hdr;
  for (size_t i = (size_t)hdr + 1; i < d->n && d->lines[i].kind != CM_SECTION; i++)
    if (d->lines[i].kind == CM_OPTION || d->lines[i].kind == CM_INCLUDE ||
        d->lines[i].kind == CM_INCLUDEDIR)
      last = (long)i;
  *header = hdr;
  return last;
}

int cm_add_section (cm_doc *d, const char *section) {
  long hdr;
  if (!valid_section(section))
    return EINVAL;
  if (section_end(d, section, &hdr) >= 0)
    return 0;
  int err = 0;
  if (d->n > 0 && d->lines[d->n - 1].kind != CM_BLANK)
    err = insert_line(d, d->n, "", 0, NO_SECTION);
  if (err)
    return err;
  size_t n = strlen(section) + 2;
  char *buf = malloc(n + 1);
  if (buf == NULL)
    return ENOMEM;
  snprintf(buf, n + 1, "[%s]", section);
  err = insert_line(d, d->n, buf, n, NO_SECTION);
  free(buf);
  return err;
}

/* Adds name = value (encoded) at the end of section's last block. */
static int append_option (cm_doc *d, const char *section, const char *name, const char *value,
                          size_t vlen) {
  size_t enc_len = 0;
  char *enc = value ? encode_value(value, vlen, &enc_len) : NULL;
  if (value && enc == NULL)
    return ENOMEM;
  int err;
  long hdr;
  if (section_end(d, section, &hdr) < 0) {
    err = cm_add_section(d, section);
    if (err) {
      free(enc);
      return err;
    }
  }
  long end = section_end(d, section, &hdr);
  /* indent like the last option of the block */
  size_t indent = 0;
  const char *indent_from = "";
  for (long i = end; i > hdr; i--)
    if (d->lines[i].kind == CM_OPTION) {
      indent = d->lines[i].name_off;
      indent_from = d->lines[i].raw;
      break;
    }
  size_t nl = strlen(name);
  size_t n = indent + nl + (value ? 1 + enc_len : 0);
  char *buf = malloc(n + 1);
  if (buf == NULL) {
    free(enc);
    return ENOMEM;
  }
  memcpy(buf, indent_from, indent);  /* the same blanks, tabs or spaces */
  memcpy(buf + indent, name, nl);
  if (value) {
    buf[indent + nl] = '=';
    memcpy(buf + indent + nl + 1, enc, enc_len);
  }
  err = insert_line(d, (size_t)end + 1, buf, n, (size_t)hdr);
  free(buf);
  free(enc);
  return err;
}

int cm_append (cm_doc *d, const char *section, const char *name, const char *value, size_t vlen) {
  if (!valid_name(name) || !valid_section(section) || (value && memchr(value, '\0', vlen)))
    return EINVAL;
  return append_option(d, section, name, value, vlen);
}


int cm_set (cm_doc *d, const char *section, const char *name, const char *value, size_t vlen) {
  if (!valid_name(name) || !valid_section(section) || (value && memchr(value, '\0', vlen)))
    return EINVAL;
  size_t enc_len = 0;
  char *enc = value ? encode_value(value, vlen, &enc_len) : NULL;
  if (value && enc == NULL)
    return ENOMEM;
  int err;
  long at = cm_find(d, section, name);
  if (at >= 0) {
    const cm_line *l = &d->lines[at];
    size_t content = l->len - l->eol;
    /* head: up to the value (or the end of the name for a bare flag) */
    size_t head = l->has_value ? l->val_off : l->name_off + l->name_len;
    size_t tail = l->has_value ? l->val_off + l->val_len : l->name_off + l->name_len;
    const char *sep = l->has_value ? "" : "=";
    if (value == NULL) {  /* a bare flag: the name and what followed the value */
      head = l->name_off + l->name_len;
      sep = "";
    }
    size_t n = head + strlen(sep) + enc_len + (content - tail);
    char *buf = malloc(n + 1);
    if (buf == NULL) {
      free(enc);
      return ENOMEM;
    }
    char *p = buf;
    memcpy(p, l->raw, head);
    p += head;
    memcpy(p, sep, strlen(sep));
    p += strlen(sep);
    if (enc) {
      memcpy(p, enc, enc_len);
      p += enc_len;
    }
    memcpy(p, l->raw + tail, content - tail);
    p += content - tail;
    err = replace_line(d, (size_t)at, buf, (size_t)(p - buf), 0);
    free(buf);
    free(enc);
    return err;
  }
  free(enc);
  return append_option(d, section, name, value, vlen);
}

size_t cm_unset (cm_doc *d, const char *section, const char *name) {
  size_t removed = 0;
  long at;
  while ((at = cm_find(d, section, name)) >= 0) {
    free(d->lines[at].raw);
    memmove(&d->lines[at], &d->lines[at + 1], (d->n - (size_t)at - 1) * sizeof(cm_line));
    d->n--;
    for (size_t i = (size_t)at; i < d->n; i++)
      if (d->lines[i].section != NO_SECTION && d->lines[i].section > (size_t)at)
        d->lines[i].section--;
    removed++;
  }
  return removed;
}
