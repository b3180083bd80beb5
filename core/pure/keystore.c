/*
** keystore.c: see keystore.h.
**
** JKS, as OpenJDK's sun/security/provider/JavaKeyStore.java writes it (all
** big-endian): u4 0xFEEDFEED, u4 version (2), u4 count, entries, then a
** SHA-1 over the password as UTF-16BE, the bytes of "Mighty Aphrodite" and
** everything before the digest. A trusted entry is u4 2, UTF alias, u8 date
** (ms), UTF "X.509", u4 length, DER; a private-key entry is u4 1, UTF alias,
** u8 date, u4 length, protected key, u4 chain length, then per certificate
** UTF type, u4 length, DER. UTF is Java's writeUTF: u2 length + modified
** UTF-8. The JDK reads the digest right after the last entry and ignores
** what follows it; of two entries with one alias it keeps the later.
**
** PKCS#12 goes through OpenSSL's PKCS12 API, read as the JDK's
** PKCS12KeyStore reads it: bag by bag in file order, a certificate bag with
** Java's trusted-key-usage attribute (2.16.840.1.113894.746875.1.1) is a
** trusted entry, a shrouded key bag a key entry, a secret bag a secret key
** entry; entries without a friendlyName are named "1", "2", ... in that
** order; a second key without a localKeyId is skipped; of two entries with
** one alias the later wins. Every bag read is written back byte for byte, in
** its place and in the same kind of safe (an encrypted one re-encrypted with
** PBES2, PBKDF2, AES-256-CBC); new trusted certificates go into the last
** encrypted safe, each with its friendlyName (a BMPString, surrogate pairs
** for characters beyond U+FFFF, as keytool writes them) and the trust
** attribute (anyExtendedKeyUsage). The MAC is HMAC-SHA-256, 10000
** iterations, as JDK 17 writes it.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "jdkcase.h"
#include "keystore.h"
#include "notes.h"

#define JKS_MAGIC 0xFEEDFEEDu
#define JCEKS_MAGIC 0xCECECECEu
#define TRUST_OID "2.16.840.1.113894.746875.1.1"
#define ANY_EKU_OID "2.5.29.37.0"
#define ITERATIONS 10000
#define MAX_ENTRIES 100000
#define NONE ((size_t)-1)


/* --- entries ------------------------------------------------------------- */

static void entry_free (ks_entry *e) {
  free(e->alias);
  free(e->name);
  free(e->der);
  free(e->raw);
  for (size_t i = 0; i < e->nbags; i++)
    free(e->bags[i].der);
  free(e->bags);
  memset(e, 0, sizeof(*e));
}

void ks_free (ks_store *s) {
  for (size_t i = 0; i < s->n; i++)
    entry_free(&s->e[i]);
  free(s->e);
  nt_free(&s->warn);
  free(s->safes);
  OPENSSL_cleanse(s->pass_tag, sizeof(s->pass_tag));
  memset(s, 0, sizeof(*s));
}

/* Sets e->name (a copy of name, or NULL) and e->alias (its lower-cased key,
** or "" without a name). 0, EINVAL (not UTF-8) or ENOMEM. */
static int set_name (ks_entry *e, const char *name) {
  e->name = name ? strdup(name) : NULL;
  e->alias = name ? jc_lower(name) : strdup("");
  if (e->alias == NULL || (name && e->name == NULL)) {
    int bad = name && e->name != NULL;
    free(e->name);
    free(e->alias);
    e->name = e->alias = NULL;
    return bad ? EINVAL : ENOMEM;
  }
  return 0;
}

long ks_find (const ks_store *s, const char *alias) {
  char *key = jc_lower(alias);
  long found = -1;
  if (key == NULL)
    return -1;
  /* what the JDK lists first; then an entry it does not list, by its name */
  for (int pass = 0; pass < 2 && found < 0; pass++)
    for (size_t i = 0; i < s->n; i++)
      if (!s->e[i].shadowed && s->e[i].listed == !pass && strcmp(s->e[i].alias, key) == 0)
        found = (long)i;
  free(key);
  return found;
}

/* Appends an entry (taking ownership of what it points to); 0 or ENOMEM. */
static int push_entry (ks_store *s, ks_entry *e) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    ks_entry *p = realloc(s->e, cap * sizeof(ks_entry));
    if (p == NULL) {
      entry_free(e);
      return ENOMEM;
    }
    s->e = p;
    s->cap = cap;
  }
  s->e[s->n++] = *e;
  return 0;
}

static void drop_entry (ks_store *s, size_t at) {
  entry_free(&s->e[at]);
  memmove(&s->e[at], &s->e[at + 1], (s->n - at - 1) * sizeof(ks_entry));
  s->n--;
}

/* Removes every listed entry keyed alias (the one the JDK sees and those it
** shadows); returns the index the first was at, or -1. */
static long drop_alias (ks_store *s, const char *key) {
  long first = -1;
  for (size_t i = s->n; i-- > 0;)
    if (s->e[i].listed && strcmp(s->e[i].alias, key) == 0) {
      drop_entry(s, i);
      first = (long)i;
    }
  return first;
}

int ks_add_trusted (ks_store *s, const char *alias, const unsigned char *der, size_t len,
                    int64_t date_ms, int replace) {
  if (alias == NULL || *alias == '\0' || len == 0)
    return EINVAL;
  ks_entry e = {0};
  e.kind = KS_TRUSTED;
  e.listed = 1;
  e.date_ms = date_ms;
  int err = set_name(&e, alias);
  if (err)
    return err;
  int taken = 0;
  for (size_t i = 0; i < s->n; i++)
    taken |= s->e[i].listed && strcmp(s->e[i].alias, e.alias) == 0;
  if (taken && !replace) {
    entry_free(&e);
    return EEXIST;
  }
  long at;
  if ((e.der = malloc(len)) == NULL) {
    entry_free(&e);
    return ENOMEM;
  }
  memcpy(e.der, der, len);
  e.der_len = len;
  at = drop_alias(s, e.alias);
  if ((err = push_entry(s, &e)) != 0)
    return err;
  if (at >= 0 && (size_t)at < s->n - 1) {  /* where the old one was */
    ks_entry added = s->e[s->n - 1];
    memmove(&s->e[at + 1], &s->e[at], (s->n - 1 - (size_t)at) * sizeof(ks_entry));
    s->e[at] = added;
  }
  return 0;
}

int ks_remove (ks_store *s, const char *alias) {
  long at = ks_find(s, alias);
  if (at < 0)
    return ENOENT;
  if (s->e[at].listed) {
    char *key = strdup(s->e[at].alias);
    if (key == NULL)
      return ENOMEM;
    drop_alias(s, key);
    free(key);
  }
  else
    drop_entry(s, (size_t)at);
  return 0;
}

/* Marks listed entries that a later one with the same alias hides from the
** JDK, and says so. */
static int mark_shadowed (ks_store *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (!s->e[i].listed)
      continue;
    for (size_t k = i + 1; k < s->n; k++)
      if (s->e[k].listed && strcmp(s->e[k].alias, s->e[i].alias) == 0) {
        s->e[i].shadowed = 1;
        if (nt_addf(&s->warn, "entries %zu and %zu are both '%.200s': the JDK reads only the later one "
                        "(both are kept)", i + 1, k + 1, s->e[i].alias) != 0)
          return -1;
        break;
      }
  }
  return 0;
}

/* Remembers which password the store was read with, as an HMAC under a
** random salt (not the password). */
static void tag_password (ks_store *s, const char *password) {
  unsigned int n = 0;
  s->has_tag = RAND_bytes(s->pass_salt, sizeof(s->pass_salt)) == 1 &&
               HMAC(EVP_sha256(), s->pass_salt, sizeof(s->pass_salt), (const unsigned char *)password,
                    strlen(password), s->pass_tag, &n) != NULL;
  ERR_clear_error();
}

static int same_password (const ks_store *s, const char *password) {
  unsigned char tag[32];
  unsigned int n = 0;
  if (!s->has_tag)
    return 1;
  int ok = HMAC(EVP_sha256(), s->pass_salt, sizeof(s->pass_salt), (const unsigned char *)password,
                strlen(password), tag, &n) != NULL && CRYPTO_memcmp(tag, s->pass_tag, sizeof(tag)) == 0;
  ERR_clear_error();
  return ok;
}


/* Writes code point c as UTF-8 at o; returns the position after it. */
static char *put_utf8 (char *o, uint32_t c) {
  if (c < 0x80)
    *o++ = (char)c;
  else if (c < 0x800) {
    *o++ = (char)(0xC0 | c >> 6);
    *o++ = (char)(0x80 | (c & 0x3F));
  }
  else if (c < 0x10000) {
    *o++ = (char)(0xE0 | c >> 12);
    *o++ = (char)(0x80 | (c >> 6 & 0x3F));
    *o++ = (char)(0x80 | (c & 0x3F));
  }
  else {
    *o++ = (char)(0xF0 | c >> 18);
    *o++ = (char)(0x80 | (c >> 12 & 0x3F));
    *o++ = (char)(0x80 | (c >> 6 & 0x3F));
    *o++ = (char)(0x80 | (c & 0x3F));
  }
  return o;
}



/* --- JKS ---------------------------------------------------------------------- */

typedef struct rd { const unsigned char *p; size_t len, pos; int bad; } rd;

static uint32_t rd_u4 (rd *r) {
  if (r->len - r->pos < 4) {
    r->bad = 1;
    return 0;
  }
  const unsigned char *p = r->p + r->pos;
  r->pos += 4;
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd_u8 (rd *r) {
  uint64_t hi = rd_u4(r);
  return hi << 32 | rd_u4(r);
}

/* n bytes at the reading position (NULL when there are not that many). */
static const unsigned char *rd_bytes (rd *r, size_t n) {
  if (r->bad || r->len - r->pos < n) {
    r->bad = 1;
    return NULL;
  }
  const unsigned char *p = r->p + r->pos;
  r->pos += n;
  return p;
}

/* Java's readUTF, converted to UTF-8 (NUL, written C0 80, and surrogate
** pairs are joined). NULL on malformed input. */
static char *rd_utf (rd *r) {
  if (r->len - r->pos < 2) {
    r->bad = 1;
    return NULL;
  }
  size_t n = (size_t)r->p[r->pos] << 8 | r->p[r->pos + 1];
  r->pos += 2;
  const unsigned char *s = rd_bytes(r, n);
  if (s == NULL)
    return NULL;
  char *out = malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  uint32_t pending = 0;  /* a high surrogate waiting for its low one */
  for (size_t i = 0; i < n;) {
    uint32_t c;
    if (s[i] < 0x80)
      c = s[i++];
    else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
      c = (uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F);
      i += 2;
    }
    else if ((s[i] & 0xF0) == 0xE0 && i + 2 < n && (s[i + 1] & 0xC0) == 0x80 &&
             (s[i + 2] & 0xC0) == 0x80) {
      c = (uint32_t)(s[i] & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
      i += 3;
    }
    else
      goto bad;
    if (c >= 0xD800 && c <= 0xDBFF) {
      if (pending)
        goto bad;
      pending = c;
      continue;
    }
    if (c >= 0xDC00 && c <= 0xDFFF) {
      if (!pending)
        goto bad;
      c = 0x10000 + ((pending - 0xD800) << 10) + (c - 0xDC00);
      pending = 0;
    }
    else if (pending)
      goto bad;
    if (c == 0)
      goto bad;  /* an alias with NUL cannot be a C string */
    o = put_utf8(o, c);  /* 4 UTF-8 bytes from 6 modified-UTF-8 bytes: it fits */
  }
  if (pending)
    goto bad;
  *o = '\0';
  return out;
bad:
  free(out);
  r->bad = 1;
  return NULL;
}

/* UTF-8 to UTF-16 code units; returns how many (or -1 for malformed UTF-8). */
static long utf16 (const char *s, uint16_t *out, size_t max) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = 0;
  while (*p) {
    uint32_t c;
    if (*p < 0x80) c = *p++;
    else if ((*p & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) { c = (uint32_t)(*p & 0x1F) << 6 | (p[1] & 0x3F); p += 2; }
    else if ((*p & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
      c = (uint32_t)(*p & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F); p += 3;
    }
    else if ((*p & 0xF8) == 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
      c = (uint32_t)(*p & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
      p += 4;
    }
    else return -1;
    if (c >= 0x10000) {
      if (n + 2 > max) return -1;
      c -= 0x10000;
      out[n++] = (uint16_t)(0xD800 + (c >> 10));
      out[n++] = (uint16_t)(0xDC00 + (c & 0x3FF));
    }
    else {
      if (n + 1 > max) return -1;
      out[n++] = (uint16_t)c;
    }
  }
  return (long)n;
}

/* The JKS integrity digest over data[0..len). 0 or -1. */
static int jks_digest (const char *password, const unsigned char *data, size_t len,
                       unsigned char md[20]) {
  uint16_t units[1024];
  long n = utf16(password, units, 1024);
  if (n < 0)
    return -1;
  unsigned char be[2048];
  for (long i = 0; i < n; i++) {
    be[2 * i] = (unsigned char)(units[i] >> 8);
    be[2 * i + 1] = (unsigned char)(units[i] & 0xFF);
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int mdlen = 0;
  int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
           EVP_DigestUpdate(ctx, be, (size_t)n * 2) &&
           EVP_DigestUpdate(ctx, "Mighty Aphrodite", 16) &&
           EVP_DigestUpdate(ctx, data, len) && EVP_DigestFinal_ex(ctx, md, &mdlen);
  EVP_MD_CTX_free(ctx);
  OPENSSL_cleanse(be, sizeof(be));
  return ok && mdlen == 20 ? 0 : -1;
}

static int jks_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
                     char *err, size_t errlen) {
  rd r = { data, len, 0, 0 };
  uint32_t magic = len >= 4 ? rd_u4(&r) : 0;
  if (magic == JCEKS_MAGIC) {
    snprintf(err, errlen, "a JCEKS keystore: myseal reads JKS and PKCS#12 (keytool -importkeystore "
             "-deststoretype pkcs12 converts it)");
    return -1;
  }
  if (len < 12 + 20 || magic != JKS_MAGIC) {
    snprintf(err, errlen, "not a JKS keystore (no FEEDFEED magic, or too short)");
    return -1;
  }
  uint32_t version = rd_u4(&r);
  if (version != 1 && version != 2) {
    snprintf(err, errlen, "unsupported JKS version %u", version);
    return -1;
  }
  s->version = (int)version;
  uint32_t count = rd_u4(&r);
  if (count > MAX_ENTRIES) {
    snprintf(err, errlen, "corrupt keystore: %u entries", count);
    return -1;
  }
  /* the entries, then the digest right after them (as the JDK reads it); none is
  ** shown before the digest says the password is right */
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    ks_entry e = {0};
    uint32_t tag = rd_u4(&r);
    if (r.bad)
      break;
    if (tag != 1 && tag != 2) {
      snprintf(err, errlen, "corrupt keystore: entry %u has tag %u (1 and 2 are known)", i + 1, tag);
      return -1;
    }
    char *alias = rd_utf(&r);
    if (alias == NULL)
      break;
    int bad = set_name(&e, alias);
    free(alias);
    if (bad) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    e.listed = 1;
    e.date_ms = (int64_t)rd_u8(&r);
    if (tag == 2) {
      e.kind = KS_TRUSTED;
      if (version == 2) {
        char *type = rd_utf(&r);
        int x509 = type != NULL && strcmp(type, "X.509") == 0;
        free(type);
        if (!x509 && !r.bad) {
          snprintf(err, errlen, "corrupt keystore: entry '%s' is not an X.509 certificate", e.alias);
          entry_free(&e);
          return -1;
        }
      }
      uint32_t n = rd_u4(&r);
      const unsigned char *der = rd_bytes(&r, n);
      if (der != NULL && (e.der = malloc(n ? n : 1)) != NULL) {
        memcpy(e.der, der, n);
        e.der_len = n;
      }
    }
    else {
      e.kind = KS_KEY;
      size_t start = r.pos;
      uint32_t n = rd_u4(&r);
      rd_bytes(&r, n);
      uint32_t chain = rd_u4(&r);
      if (chain > 100)
        r.bad = 1;
      for (uint32_t k = 0; k < chain && !r.bad; k++) {
        if (version == 2)
          free(rd_utf(&r));
        uint32_t cl = rd_u4(&r);
        const unsigned char *der = rd_bytes(&r, cl);
        if (k == 0 && der != NULL && (e.der = malloc(cl ? cl : 1)) != NULL) {
          memcpy(e.der, der, cl);
          e.der_len = cl;
        }
      }
      if (!r.bad && (e.raw = malloc(r.pos - start)) != NULL) {
        memcpy(e.raw, data + start, r.pos - start);
        e.raw_len = r.pos - start;
      }
    }
    if (r.bad) {
      entry_free(&e);
      break;
    }
    if ((e.kind == KS_TRUSTED ? e.der == NULL : e.raw == NULL) || push_entry(s, &e)) {
      entry_free(&e);
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  }
  if (r.bad || len - r.pos < 20) {
    snprintf(err, errlen, "corrupt keystore: %s", r.bad ? "truncated or malformed entry"
                                                        : "no integrity check after the last entry");
    return -1;
  }
  unsigned char md[20];
  if (jks_digest(password, data, r.pos, md) != 0) {
    snprintf(err, errlen, "the password is not valid UTF-8");
    return -1;
  }
  if (memcmp(md, data + r.pos, 20) != 0) {
    snprintf(err, errlen, "wrong password, or the keystore was tampered with (integrity check failed)");
    return -1;
  }
  size_t extra = len - r.pos - 20;
  if (extra > 0 && nt_addf(&s->warn, "%zu bytes after the keystore's integrity check, which the JDK ignores "
                               "(saving leaves them out)", extra) != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

typedef struct wb { unsigned char *p; size_t len, cap; int oom; } wb;

static void wb_put (wb *w, const void *data, size_t n) {
  if (w->oom)
    return;
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 4096;
    while (cap < w->len + n)
      cap *= 2;
    unsigned char *p = realloc(w->p, cap);
    if (p == NULL) {
      w->oom = 1;
      return;
    }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->len, data, n);
  w->len += n;
}

static void wb_u4 (wb *w, uint32_t v) {
  unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                         (unsigned char)(v >> 8), (unsigned char)v };
  wb_put(w, b, 4);
}

/* Java's writeUTF of a UTF-8 string. -1 when too long or malformed. */
static int wb_utf (wb *w, const char *s) {
  uint16_t units[4096];
  long n = utf16(s, units, 4096);
  if (n < 0)
    return -1;
  unsigned char out[3 * 4096];
  size_t k = 0;
  for (long i = 0; i < n; i++) {
    uint16_t c = units[i];
    if (c >= 1 && c < 0x80)
      out[k++] = (unsigned char)c;
    else if (c < 0x800) {
      out[k++] = (unsigned char)(0xC0 | c >> 6);
      out[k++] = (unsigned char)(0x80 | (c & 0x3F));
    }
    else {
      out[k++] = (unsigned char)(0xE0 | c >> 12);
      out[k++] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
      out[k++] = (unsigned char)(0x80 | (c & 0x3F));
    }
  }
  if (k > 65535)
    return -1;
  unsigned char len[2] = { (unsigned char)(k >> 8), (unsigned char)k };
  wb_put(w, len, 2);
  wb_put(w, out, k);
  return 0;
}

static int jks_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
                     char *err, size_t errlen) {
  wb w = {0};
  uint32_t version = s->version == 1 ? 1 : 2;
  wb_u4(&w, JKS_MAGIC);
  wb_u4(&w, version);
  wb_u4(&w, (uint32_t)s->n);
  for (size_t i = 0; i < s->n; i++) {
    const ks_entry *e = &s->e[i];
    wb_u4(&w, e->kind == KS_KEY ? 1 : 2);
    /* the JDK's JKS writes the alias lower-cased and finds entries only so */
    if (wb_utf(&w, e->alias) != 0) {
      snprintf(err, errlen, "alias '%.100s' cannot be written", e->alias);
      free(w.p);
      return -1;
    }
    wb_u4(&w, (uint32_t)((uint64_t)e->date_ms >> 32));
    wb_u4(&w, (uint32_t)e->date_ms);
    if (e->kind == KS_KEY)
      wb_put(&w, e->raw, e->raw_len);
    else {
      if (version == 2)
        wb_utf(&w, "X.509");
      wb_u4(&w, (uint32_t)e->der_len);
      wb_put(&w, e->der, e->der_len);
    }
  }
  unsigned char md[20];
  if (w.oom || jks_digest(password, w.p, w.len, md) != 0) {
    snprintf(err, errlen, w.oom ? "out of memory" : "the password is not valid UTF-8");
    free(w.p);
    return -1;
  }
  wb_put(&w, md, 20);
  if (w.oom) {
    snprintf(err, errlen, "out of memory");
    free(w.p);
    return -1;
  }
  *out = w.p;
  *len = w.len;
  return 0;
}


/* --- PKCS#12 ------------------------------------------------------------------------- */

static void ossl_error (char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  if (reason)
    snprintf(err, errlen, "%s: %s", what, reason);
  else
    snprintf(err, errlen, "%s", what);
  ERR_clear_error();
}

/* Does the bag carry Java's trusted-key-usage attribute? */
static int java_trusted (const PKCS12_SAFEBAG *bag, const ASN1_OBJECT *trust) {
  const STACK_OF(X509_ATTRIBUTE) *attrs = PKCS12_SAFEBAG_get0_attrs(bag);
  for (int i = 0; i < X509at_get_attr_count(attrs); i++)
    if (OBJ_cmp(X509_ATTRIBUTE_get0_object(X509at_get_attr(attrs, i)), trust) == 0)
      return 1;
  return 0;
}

static int bag_der (const PKCS12_SAFEBAG *bag, unsigned char **out, size_t *len) {
  unsigned char *der = NULL;
  int n = i2d_PKCS12_SAFEBAG(bag, &der);
  if (n <= 0)
    return -1;
  *out = malloc((size_t)n);
  if (*out == NULL) {
    OPENSSL_free(der);
    return -1;
  }
  memcpy(*out, der, (size_t)n);
  OPENSSL_free(der);
  *len = (size_t)n;
  return 0;
}

/* The localKeyId of a bag, as an octet string (owned by the bag), or NULL. */
static const ASN1_OCTET_STRING *local_key_id (const PKCS12_SAFEBAG *bag) {
  const ASN1_TYPE *t = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID);
  return t != NULL && t->type == V_ASN1_OCTET_STRING ? t->value.octet_string : NULL;
}

/* A BMPString (UTF-16BE, surrogates allowed) as UTF-8. OpenSSL 3.0's
** OPENSSL_uni2utf8 refuses a 3-byte character in the last position. */
static char *bmp_to_utf8 (const unsigned char *b, int len) {
  if (len < 0 || len % 2)
    return NULL;
  char *out = OPENSSL_malloc((size_t)len * 2 + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (int i = 0; i < len; i += 2) {
    uint32_t c = (uint32_t)b[i] << 8 | b[i + 1];
    if (c >= 0xD800 && c <= 0xDBFF && i + 3 < len) {
      uint32_t lo = (uint32_t)b[i + 2] << 8 | b[i + 3];
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        i += 2;
      }
    }
    if (c == 0 || (c >= 0xD800 && c <= 0xDFFF)) {
      OPENSSL_free(out);
      return NULL;
    }
    o = put_utf8(o, c);
  }
  *o = '\0';
  return out;
}

/* The friendlyName as UTF-8 (OPENSSL_malloc'd), or NULL. */
static char *friendly_name (const PKCS12_SAFEBAG *bag) {
  const ASN1_TYPE *t = PKCS12_SAFEBAG_get0_attr(bag, NID_friendlyName);
  if (t == NULL)
    return NULL;
  if (t->type == V_ASN1_BMPSTRING)
    return bmp_to_utf8(t->value.bmpstring->data, t->value.bmpstring->length);
  if (t->type == V_ASN1_UTF8STRING) {
    const ASN1_STRING *u = t->value.utf8string;
    char *out = OPENSSL_malloc((size_t)u->length + 1);
    if (out != NULL) {
      memcpy(out, u->data, (size_t)u->length);
      out[u->length] = '\0';
      if (memchr(out, '\0', (size_t)u->length) != NULL) {  /* not a C string */
        OPENSSL_free(out);
        return NULL;
      }
    }
    return out;
  }
  return NULL;
}

/* OpenSSL 3's legacy provider, for stores from older JDKs and OpenSSL (RC2-40,
** 3DES); loaded once, beside the default provider. Writing uses AES only. */
static OSSL_PROVIDER *legacy;

static void unload_legacy (void) {
  OSSL_PROVIDER_unload(legacy);
  legacy = NULL;
}

static int legacy_provider (void) {
  static int tried;
  if (!tried) {
    tried = 1;
    legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1);
    ERR_clear_error();
    if (legacy != NULL)
      atexit(unload_legacy);   /* before OpenSSL's own cleanup, which was registered first */
  }
  return legacy != NULL;
}

/* Reading state: what the JDK counts as it goes through the bags. */
typedef struct p12read {
  ks_store *s;
  const ASN1_OBJECT *trust;
  size_t order;          /* bags read so far */
  int keys;              /* shrouded key bags so far (the JDK's privateKeyCount) */
  unsigned counter;      /* the JDK's names for entries without one: "1", "2", ... */
  STACK_OF(PKCS12_SAFEBAG) *certs;  /* certificate bags to match with their keys */
  size_t *cert_order, *cert_safe;
} p12read;

/* Gives e one bag: bag's DER, from safe, at the next place in file order. */
static int entry_bag (ks_entry *e, const PKCS12_SAFEBAG *bag, size_t safe, size_t order) {
  ks_bag *p = realloc(e->bags, (e->nbags + 1) * sizeof(ks_bag));
  if (p == NULL)
    return -1;
  e->bags = p;
  ks_bag *b = &p[e->nbags];
  if (bag_der(bag, &b->der, &b->len) != 0)
    return -1;
  b->safe = safe;
  b->order = order;
  e->nbags++;
  return 0;
}

/* The certificate of a certificate bag as DER into e (0), or -1. */
static int bag_cert (ks_entry *e, const PKCS12_SAFEBAG *bag) {
  X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
  unsigned char *der = NULL;
  int n = x ? i2d_X509(x, &der) : -1;
  X509_free(x);
  if (n <= 0) {
    ERR_clear_error();
    return -1;
  }
  free(e->der);
  e->der = malloc((size_t)n);
  if (e->der != NULL) {
    memcpy(e->der, der, (size_t)n);
    e->der_len = (size_t)n;
  }
  OPENSSL_free(der);
  return e->der ? 0 : -1;
}

/* One bag, in file order. 0, or -1 (out of memory, or a bag OpenSSL cannot encode). */
static int p12_bag (p12read *pr, PKCS12_SAFEBAG *bag, size_t safe) {
  ks_store *s = pr->s;
  int nid = PKCS12_SAFEBAG_get_nid(bag);
  size_t order = pr->order++;
  char *name = friendly_name(bag);
  const ASN1_OCTET_STRING *keyid = local_key_id(bag);
  ks_entry e = {0};
  const char *note = NULL;
  if (nid == NID_pkcs8ShroudedKeyBag) {
    e.kind = KS_KEY;
    pr->keys++;
    e.listed = keyid != NULL || pr->keys == 1;
    if (!e.listed)
      note = "a second private key without a localKeyId, which the JDK skips";
  }
  else if (nid == NID_secretBag) {
    e.kind = KS_SECRET;
    e.listed = 1;
  }
  else if (nid == NID_certBag && java_trusted(bag, pr->trust)) {
    e.kind = KS_TRUSTED;
    e.listed = 1;
  }
  else if (nid == NID_certBag && PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate) {
    /* a key's certificate, or one Java does not trust: sorted out after the last bag */
    OPENSSL_free(name);
    size_t k = (size_t)sk_PKCS12_SAFEBAG_num(pr->certs);
    size_t *o = realloc(pr->cert_order, (k + 1) * sizeof(size_t));
    if (o != NULL)
      pr->cert_order = o;
    size_t *sf = o ? realloc(pr->cert_safe, (k + 1) * sizeof(size_t)) : NULL;
    if (sf != NULL)
      pr->cert_safe = sf;
    if (o == NULL || sf == NULL || !sk_PKCS12_SAFEBAG_push(pr->certs, bag))
      return -1;
    pr->cert_order[k] = order;
    pr->cert_safe[k] = safe;
    return 1;   /* the stack has it now */
  }
  else {
    e.kind = nid == NID_keyBag ? KS_KEY : KS_OTHER;
    note = nid == NID_keyBag ? "an unencrypted key bag, which the JDK does not read"
                             : "a bag of a kind the JDK does not read";
  }
  char number[16] = "";
  if (name == NULL && e.listed)
    snprintf(number, sizeof(number), "%u", ++pr->counter);
  int rc = set_name(&e, name ? name : e.listed ? number : NULL);
  if (rc == 0 && name == NULL && e.listed) {
    free(e.name);   /* the number is the JDK's name for it, not written in the file */
    e.name = NULL;
  }
  OPENSSL_free(name);
  if (rc != 0 || entry_bag(&e, bag, safe, order) != 0 ||
      (e.kind == KS_TRUSTED && bag_cert(&e, bag) != 0)) {
    entry_free(&e);
    return -1;
  }
  if (note != NULL && nt_addf(&s->warn, "bag %zu: %s (kept as it is)", order + 1, note) != 0) {
    entry_free(&e);
    return -1;
  }
  return push_entry(s, &e) == 0 ? 0 : -1;
}

/* The certificate bags that were not trusted entries: each goes with the key
** of its localKeyId, or is an entry of its own that keytool does not list. */
static int p12_certs (p12read *pr) {
  ks_store *s = pr->s;
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(pr->certs); i++) {
    PKCS12_SAFEBAG *cb = sk_PKCS12_SAFEBAG_value(pr->certs, i);
    const ASN1_OCTET_STRING *id = local_key_id(cb);
    ks_entry *owner = NULL;
    for (size_t k = 0; id != NULL && k < s->n && owner == NULL; k++) {
      if (s->e[k].kind != KS_KEY || s->e[k].nbags == 0)
        continue;
      const unsigned char *q = s->e[k].bags[0].der;
      PKCS12_SAFEBAG *kb = d2i_PKCS12_SAFEBAG(NULL, &q, (long)s->e[k].bags[0].len);
      const ASN1_OCTET_STRING *kid = kb ? local_key_id(kb) : NULL;
      if (kid != NULL && ASN1_OCTET_STRING_cmp(kid, id) == 0)
        owner = &s->e[k];
      PKCS12_SAFEBAG_free(kb);
    }
    if (owner != NULL) {
      if (entry_bag(owner, cb, pr->cert_safe[i], pr->cert_order[i]) != 0 ||
          (owner->der == NULL && bag_cert(owner, cb) != 0))
        return -1;
      continue;
    }
    ks_entry e = {0};
    e.kind = KS_CERT;
    char *name = friendly_name(cb);
    int rc = set_name(&e, name);
    OPENSSL_free(name);
    if (rc != 0 || entry_bag(&e, cb, pr->cert_safe[i], pr->cert_order[i]) != 0 || bag_cert(&e, cb) != 0 ||
        push_entry(s, &e) != 0) {
      entry_free(&e);
      return -1;
    }
  }
  return 0;
}

static int p12_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
                     char *err, size_t errlen) {
  const unsigned char *p = data;
  PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
  STACK_OF(PKCS7) *safes = NULL;
  ASN1_OBJECT *trust = OBJ_txt2obj(TRUST_OID, 1);
  p12read pr = { s, trust, 0, 0, 0, sk_PKCS12_SAFEBAG_new_null(), NULL, NULL };
  int rc = -1;
  if (p12 == NULL) {
    ossl_error(err, errlen, "not a keystore (neither JKS nor PKCS#12)");
    goto done;
  }
  if (pr.certs == NULL || trust == NULL) {
    ossl_error(err, errlen, "out of memory");
    goto done;
  }
  if (!PKCS12_mac_present(p12)) {
    snprintf(err, errlen, "the PKCS#12 file has no integrity MAC: refusing to trust it");
    goto done;
  }
  legacy_provider();
  if (!PKCS12_verify_mac(p12, password, -1)) {
    ERR_clear_error();
    snprintf(err, errlen, "wrong password, or the keystore was tampered with (integrity check failed)");
    goto done;
  }
  safes = PKCS12_unpack_authsafes(p12);
  if (safes == NULL) {
    ossl_error(err, errlen, "corrupt PKCS#12 keystore");
    goto done;
  }
  int nsafes = sk_PKCS7_num(safes);
  if ((s->safes = calloc((size_t)nsafes + 1, sizeof(int))) == NULL) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (int i = 0; i < nsafes; i++) {
    PKCS7 *p7 = sk_PKCS7_value(safes, i);
    int nid = OBJ_obj2nid(p7->type);
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    if (nid == NID_pkcs7_data)
      bags = PKCS12_unpack_p7data(p7);
    else if (nid == NID_pkcs7_encrypted)
      bags = PKCS12_unpack_p7encdata(p7, password, -1);
    if (bags == NULL) {
      unsigned long e = ERR_peek_last_error();
      if (nid == NID_pkcs7_encrypted && ERR_GET_REASON(e) == ERR_R_UNSUPPORTED && !legacy_provider())
        ossl_error(err, errlen, "a part of the keystore is encrypted with a legacy algorithm (RC2, 3DES), and "
                   "OpenSSL's legacy provider could not be loaded");
      else
        ossl_error(err, errlen, nid == NID_pkcs7_data || nid == NID_pkcs7_encrypted
                   ? "cannot read a part of the PKCS#12 keystore"
                   : "a part of the PKCS#12 keystore is not data or password-encrypted data");
      goto done;
    }
    s->safes[i] = nid == NID_pkcs7_encrypted;
    s->nsafes = (size_t)i + 1;
    for (int k = 0; k < sk_PKCS12_SAFEBAG_num(bags); k++) {
      int r = p12_bag(&pr, sk_PKCS12_SAFEBAG_value(bags, k), (size_t)i);
      if (r < 0) {
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        ossl_error(err, errlen, "corrupt PKCS#12 keystore (a bag that cannot be read)");
        goto done;
      }
      if (r == 1)
        sk_PKCS12_SAFEBAG_set(bags, k, NULL);  /* kept in pr.certs */
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  }
  if (p12_certs(&pr) != 0 || mark_shadowed(s) != 0) {
    ossl_error(err, errlen, "out of memory");
    goto done;
  }
  rc = 0;
done:
  ERR_clear_error();
  sk_PKCS12_SAFEBAG_pop_free(pr.certs, PKCS12_SAFEBAG_free);
  free(pr.cert_order);
  free(pr.cert_safe);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  PKCS12_free(p12);
  ASN1_OBJECT_free(trust);
  return rc;
}

/* A new trusted certificate's bag: friendlyName as keytool writes it (a
** BMPString, surrogate pairs beyond U+FFFF) and the trust attribute. */
static PKCS12_SAFEBAG *trusted_bag (const ks_entry *e, const ASN1_OBJECT *any, char *err, size_t errlen) {
  uint16_t units[4096];
  long n = utf16(e->name ? e->name : e->alias, units, 4096);
  unsigned char be[2 * 4096];
  if (n < 0) {
    snprintf(err, errlen, "alias '%.100s' is too long for a PKCS#12 friendlyName", e->alias);
    return NULL;
  }
  for (long i = 0; i < n; i++) {
    be[2 * i] = (unsigned char)(units[i] >> 8);
    be[2 * i + 1] = (unsigned char)units[i];
  }
  const unsigned char *p = e->der;
  X509 *x = d2i_X509(NULL, &p, (long)e->der_len);
  PKCS12_SAFEBAG *bag = x ? PKCS12_SAFEBAG_create_cert(x) : NULL;
  X509_free(x);
  if (bag == NULL || !PKCS12_add_friendlyname_uni(bag, be, (int)(2 * n)) ||
      !PKCS12_add1_attr_by_txt(bag, TRUST_OID, V_ASN1_OBJECT, (const unsigned char *)any, -1)) {
    PKCS12_SAFEBAG_free(bag);
    ossl_error(err, errlen, "cannot write a trusted certificate");
    return NULL;
  }
  return bag;
}

typedef struct outbag { const ks_bag *b; size_t safe, order; PKCS12_SAFEBAG *made; } outbag;

static int by_order (const void *a, const void *b) {
  size_t x = ((const outbag *)a)->order, y = ((const outbag *)b)->order;
  return x < y ? -1 : x > y;
}

static int p12_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
                     char *err, size_t errlen) {
  size_t total = 0;
  int keys = 0;
  for (size_t i = 0; i < s->n; i++) {
    total += s->e[i].nbags ? s->e[i].nbags : 1;
    keys |= (s->e[i].kind == KS_KEY || s->e[i].kind == KS_SECRET) && s->e[i].nbags > 0;
  }
  if (keys && !same_password(s, password)) {
    snprintf(err, errlen, "the store holds private or secret keys protected by the password it was opened "
             "with: save it with that password (keytool -storepasswd changes it)");
    return -1;
  }
  /* every bag in its place: those read where they were, new ones at the end of
  ** the last encrypted safe (or of a new one) */
  size_t new_safe = s->nsafes;
  for (size_t i = s->nsafes; i-- > 0;)
    if (s->safes[i]) {
      new_safe = i;
      break;
    }
  outbag *ob = calloc(total ? total : 1, sizeof(outbag));
  STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
  ASN1_OBJECT *any = OBJ_txt2obj(ANY_EKU_OID, 1);
  PKCS12 *p12 = NULL;
  unsigned char *der = NULL;
  int rc = -1;
  size_t k = 0, next = (size_t)-1 / 2;
  ERR_clear_error();
  if (ob == NULL || safes == NULL || any == NULL) {
    ossl_error(err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < s->n; i++) {
    const ks_entry *e = &s->e[i];
    for (size_t b = 0; b < e->nbags; b++, k++)
      ob[k] = (outbag){ &e->bags[b], e->bags[b].safe, e->bags[b].order, NULL };
    if (e->nbags == 0) {
      if ((ob[k].made = trusted_bag(e, any, err, errlen)) == NULL)
        goto done;
      ob[k].safe = new_safe;
      ob[k].order = next++;
      k++;
    }
  }
  qsort(ob, k, sizeof(outbag), by_order);
  for (size_t safe = 0; safe <= s->nsafes; safe++) {
    STACK_OF(PKCS12_SAFEBAG) *bags = sk_PKCS12_SAFEBAG_new_null();
    int ok = bags != NULL;
    for (size_t i = 0; ok && i < k; i++) {
      if (ob[i].safe != safe)
        continue;
      PKCS12_SAFEBAG *bag = ob[i].made;
      if (bag == NULL) {
        const unsigned char *q = ob[i].b->der;
        bag = d2i_PKCS12_SAFEBAG(NULL, &q, (long)ob[i].b->len);
      }
      ok = bag != NULL && sk_PKCS12_SAFEBAG_push(bags, bag);
      if (!ok && bag != ob[i].made)
        PKCS12_SAFEBAG_free(bag);
      if (ok)
        ob[i].made = NULL;   /* the stack owns it now */
    }
    if (ok && sk_PKCS12_SAFEBAG_num(bags) > 0) {
      int encrypted = safe == s->nsafes || s->safes[safe];
      PKCS7 *p7 = encrypted ? PKCS12_pack_p7encdata_ex(NID_aes_256_cbc, password, -1, NULL, 0, ITERATIONS,
                                                        bags, NULL, NULL)
                            : PKCS12_pack_p7data(bags);
      ok = p7 != NULL && sk_PKCS7_push(safes, p7);
      if (!ok)
        PKCS7_free(p7);
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    if (!ok) {
      ossl_error(err, errlen, "cannot write the entries back");
      goto done;
    }
  }
  p12 = PKCS12_add_safes(safes, 0);
  if (p12 == NULL || !PKCS12_set_mac(p12, password, -1, NULL, 0, ITERATIONS, EVP_sha256())) {
    ossl_error(err, errlen, "cannot write the PKCS#12 keystore");
    goto done;
  }
  int n = i2d_PKCS12(p12, &der);
  if (n <= 0 || (*out = malloc((size_t)n)) == NULL) {
    ossl_error(err, errlen, "cannot encode the PKCS#12 keystore");
    goto done;
  }
  memcpy(*out, der, (size_t)n);
  *len = (size_t)n;
  rc = 0;
done:
  for (size_t i = 0; ob != NULL && i < k; i++)
    PKCS12_SAFEBAG_free(ob[i].made);
  free(ob);
  OPENSSL_free(der);
  PKCS12_free(p12);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  ASN1_OBJECT_free(any);
  return rc;
}


/* --- the store -------------------------------------------------------------------------- */

int ks_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
             enum ks_type type, char *err, size_t errlen) {
  memset(s, 0, sizeof(*s));
  ERR_clear_error();
  if (len > (size_t)1 << 30) {
    snprintf(err, errlen, "too large for a keystore");
    return -1;
  }
  int is_jks = len >= 4 && ((data[0] == 0xFE && data[1] == 0xED && data[2] == 0xFE && data[3] == 0xED) ||
                            (data[0] == 0xCE && data[1] == 0xCE && data[2] == 0xCE && data[3] == 0xCE));
  if (type == KS_AUTO)
    type = is_jks ? KS_JKS : KS_PKCS12;
  s->type = type;
  int rc = type == KS_JKS ? jks_load(s, data, len, password, err, errlen)
                          : p12_load(s, data, len, password, err, errlen);
  if (rc == 0 && type == KS_JKS && mark_shadowed(s) != 0) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
  }
  if (rc != 0)
    ks_free(s);
  else
    tag_password(s, password);
  return rc;
}

int ks_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
             char *err, size_t errlen) {
  return s->type == KS_JKS ? jks_save(s, password, out, len, err, errlen)
                           : p12_save(s, password, out, len, err, errlen);
}
