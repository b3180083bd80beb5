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
** UTF-8.
**
** PKCS#12 goes through OpenSSL's PKCS12 API. A trusted certificate is a
** certificate bag with a friendlyName and Java's trusted-key-usage attribute
** (2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage), which is what
** makes JDK 9+ list it as a trustedCertEntry. Written with PBES2 (PBKDF2,
** AES-256-CBC) and an HMAC-SHA-256 MAC, 10000 iterations, as JDK 17 does.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keystore.h"

#define JKS_MAGIC 0xFEEDFEEDu
#define TRUST_OID "2.16.840.1.113894.746875.1.1"
#define ANY_EKU_OID "2.5.29.37.0"
#define ITERATIONS 10000
#define MAX_ENTRIES 100000


/* --- entries ------------------------------------------------------------- */

static void entry_free (ks_entry *e) {
  free(e->alias);
  free(e->der);
  free(e->raw);
  memset(e, 0, sizeof(*e));
}

void ks_free (ks_store *s) {
  for (size_t i = 0; i < s->n; i++)
    entry_free(&s->e[i]);
  free(s->e);
  s->e = NULL;
  s->n = s->cap = 0;
}

/* A lower-cased (ASCII) copy of an alias, as the JDK keys its entries. */
static char *lower_dup (const char *s, size_t n) {
  char *out = malloc(n + 1);
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    out[i] = (char)tolower((unsigned char)s[i]);
  out[n] = '\0';
  return out;
}

long ks_find (const ks_store *s, const char *alias) {
  for (size_t i = 0; i < s->n; i++)
    if (strcasecmp(s->e[i].alias, alias) == 0)
      return (long)i;
  return -1;
}

/* Appends an entry (taking ownership of alias, der, raw); 0 or ENOMEM. */
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

int ks_add_trusted (ks_store *s, const char *alias, const unsigned char *der, size_t len,
                    int64_t date_ms, int replace) {
  if (alias == NULL || *alias == '\0' || len == 0)
    return EINVAL;
  long at = ks_find(s, alias);
  if (at >= 0 && !replace)
    return EEXIST;
  ks_entry e = { KS_TRUSTED, lower_dup(alias, strlen(alias)), date_ms, malloc(len), len, NULL, 0 };
  if (e.alias == NULL || e.der == NULL) {
    entry_free(&e);
    return ENOMEM;
  }
  memcpy(e.der, der, len);
  if (at >= 0) {
    entry_free(&s->e[at]);
    s->e[at] = e;
    return 0;
  }
  return push_entry(s, &e);
}

int ks_remove (ks_store *s, const char *alias) {
  long at = ks_find(s, alias);
  if (at < 0)
    return ENOENT;
  entry_free(&s->e[at]);
  memmove(&s->e[at], &s->e[at + 1], (s->n - (size_t)at - 1) * sizeof(ks_entry));
  s->n--;
  return 0;
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
  if (len < 12 + 20 || rd_u4(&r) != JKS_MAGIC) {
    snprintf(err, errlen, "not a JKS keystore (no FEEDFEED magic, or too short)");
    return -1;
  }
  uint32_t version = rd_u4(&r);
  if (version != 1 && version != 2) {
    snprintf(err, errlen, "unsupported JKS version %u", version);
    return -1;
  }
  /* the digest first: a wrong password must never read as garbage */
  unsigned char md[20];
  if (jks_digest(password, data, len - 20, md) != 0) {
    snprintf(err, errlen, "the password is not valid UTF-8");
    return -1;
  }
  if (memcmp(md, data + len - 20, 20) != 0) {
    snprintf(err, errlen, "wrong password, or the keystore was tampered with (integrity check failed)");
    return -1;
  }
  r.len = len - 20;
  s->version = (int)version;
  uint32_t count = rd_u4(&r);
  if (count > MAX_ENTRIES) {
    snprintf(err, errlen, "corrupt keystore: %u entries", count);
    return -1;
  }
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    ks_entry e = {0};
    uint32_t tag = rd_u4(&r);
    if (tag != 1 && tag != 2) {
      snprintf(err, errlen, "corrupt keystore: entry %u has tag %u (1 and 2 are known)", i + 1, tag);
      return -1;
    }
    char *alias = rd_utf(&r);
    if (alias == NULL)
      break;
    e.alias = lower_dup(alias, strlen(alias));
    free(alias);
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
        rd_bytes(&r, cl);
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
    if (e.alias == NULL || (e.kind == KS_TRUSTED ? e.der == NULL : e.raw == NULL) || push_entry(s, &e)) {
      entry_free(&e);
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  }
  if (r.bad || r.pos != r.len) {
    snprintf(err, errlen, "corrupt keystore: %s", r.bad ? "truncated or malformed entry"
                                                        : "bytes after the last entry");
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
  uint32_t count = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->e[i].kind != KS_CERT)
      count++;
  wb_u4(&w, count);
  for (size_t i = 0; i < s->n; i++) {
    const ks_entry *e = &s->e[i];
    if (e->kind == KS_CERT)
      continue;
    wb_u4(&w, e->kind == KS_KEY ? 1 : 2);
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

/* Appends the DER of bag to an entry's raw bytes. */
static int raw_append (ks_entry *e, const PKCS12_SAFEBAG *bag) {
  unsigned char *der;
  size_t n;
  if (bag_der(bag, &der, &n) != 0)
    return -1;
  unsigned char *p = realloc(e->raw, e->raw_len + n);
  if (p == NULL) {
    free(der);
    return -1;
  }
  memcpy(p + e->raw_len, der, n);
  free(der);
  e->raw = p;
  e->raw_len += n;
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

static int p12_bag (ks_store *s, PKCS12_SAFEBAG *bag, const ASN1_OBJECT *trust,
                    STACK_OF(PKCS12_SAFEBAG) *keycerts) {
  int nid = PKCS12_SAFEBAG_get_nid(bag);
  char *name = friendly_name(bag);
  ks_entry e = {0};
  int rc = 0;
  if (nid == NID_keyBag || nid == NID_pkcs8ShroudedKeyBag) {
    e.kind = KS_KEY;
    e.alias = lower_dup(name ? name : "", name ? strlen(name) : 0);
    if (e.alias == NULL || raw_append(&e, bag) != 0)
      rc = -1;
  }
  else if (nid == NID_certBag) {
    if (keycerts != NULL && local_key_id(bag) != NULL && !java_trusted(bag, trust)) {
      /* a key's certificate: it goes with its key, later */
      OPENSSL_free(name);
      return sk_PKCS12_SAFEBAG_push(keycerts, bag) ? 1 : -1;
    }
    X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
    unsigned char *der = NULL;
    int n = x ? i2d_X509(x, &der) : -1;
    X509_free(x);
    if (n <= 0) {
      OPENSSL_free(name);
      return -1;
    }
    e.kind = java_trusted(bag, trust) ? KS_TRUSTED : KS_CERT;
    e.alias = lower_dup(name ? name : "", name ? strlen(name) : 0);
    e.der = malloc((size_t)n);
    if (e.der != NULL) {
      memcpy(e.der, der, (size_t)n);
      e.der_len = (size_t)n;
    }
    OPENSSL_free(der);
    if (e.alias == NULL || e.der == NULL || (e.kind == KS_CERT && raw_append(&e, bag) != 0))
      rc = -1;
  }
  else {
    OPENSSL_free(name);
    return 0;  /* secret bags and the like: Java truststores have none */
  }
  OPENSSL_free(name);
  if (rc != 0) {
    entry_free(&e);
    return -1;
  }
  if (e.alias[0] == '\0') {  /* no friendlyName: name it as keytool would show */
    free(e.alias);
    char gen[32];
    snprintf(gen, sizeof(gen), "%s-%zu", e.kind == KS_KEY ? "key" : "cert", s->n + 1);
    e.alias = lower_dup(gen, strlen(gen));
    if (e.alias == NULL) {
      entry_free(&e);
      return -1;
    }
  }
  return push_entry(s, &e) == 0 ? 0 : -1;
}

static int p12_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
                     char *err, size_t errlen) {
  const unsigned char *p = data;
  PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
  STACK_OF(PKCS7) *safes = NULL;
  STACK_OF(PKCS12_SAFEBAG) *keycerts = sk_PKCS12_SAFEBAG_new_null();
  ASN1_OBJECT *trust = OBJ_txt2obj(TRUST_OID, 1);
  int rc = -1;
  if (p12 == NULL) {
    ossl_error(err, errlen, "not a keystore (neither JKS nor PKCS#12)");
    goto done;
  }
  if (keycerts == NULL || trust == NULL) {
    ossl_error(err, errlen, "out of memory");
    goto done;
  }
  if (!PKCS12_mac_present(p12)) {
    snprintf(err, errlen, "the PKCS#12 file has no integrity MAC: refusing to trust it");
    goto done;
  }
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
  for (int i = 0; i < sk_PKCS7_num(safes); i++) {
    PKCS7 *p7 = sk_PKCS7_value(safes, i);
    int nid = OBJ_obj2nid(p7->type);
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    if (nid == NID_pkcs7_data)
      bags = PKCS12_unpack_p7data(p7);
    else if (nid == NID_pkcs7_encrypted)
      bags = PKCS12_unpack_p7encdata(p7, password, -1);
    if (bags == NULL) {
      ossl_error(err, errlen, "cannot read a part of the PKCS#12 keystore");
      goto done;
    }
    for (int k = 0; k < sk_PKCS12_SAFEBAG_num(bags); k++) {
      PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, k);
      int r = p12_bag(s, bag, trust, keycerts);
      if (r < 0) {
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        ossl_error(err, errlen, "corrupt PKCS#12 keystore (a certificate or key bag)");
        goto done;
      }
      if (r == 1)
        sk_PKCS12_SAFEBAG_set(bags, k, NULL);  /* kept in keycerts */
    }
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  }
  /* a key's certificates join the key entry with the same localKeyId */
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(keycerts); i++) {
    PKCS12_SAFEBAG *cb = sk_PKCS12_SAFEBAG_value(keycerts, i);
    const ASN1_OCTET_STRING *id = local_key_id(cb);
    ks_entry *owner = NULL;
    for (size_t k = 0; k < s->n && owner == NULL; k++) {
      if (s->e[k].kind != KS_KEY)
        continue;
      const unsigned char *q = s->e[k].raw;
      PKCS12_SAFEBAG *kb = d2i_PKCS12_SAFEBAG(NULL, &q, (long)s->e[k].raw_len);
      const ASN1_OCTET_STRING *kid = kb ? local_key_id(kb) : NULL;
      if (kid != NULL && ASN1_OCTET_STRING_cmp(kid, id) == 0)
        owner = &s->e[k];
      PKCS12_SAFEBAG_free(kb);
    }
    if (owner != NULL ? raw_append(owner, cb) != 0 : p12_bag(s, cb, trust, NULL) < 0) {
      ossl_error(err, errlen, "out of memory");
      goto done;
    }
  }
  rc = 0;
done:
  ERR_clear_error();
  sk_PKCS12_SAFEBAG_pop_free(keycerts, PKCS12_SAFEBAG_free);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  PKCS12_free(p12);
  ASN1_OBJECT_free(trust);
  return rc;
}

/* The bags in raw (DER SAFEBAGs one after another) pushed onto bags. */
static int push_raw_bags (STACK_OF(PKCS12_SAFEBAG) *bags, const unsigned char *raw, size_t len) {
  const unsigned char *p = raw, *end = raw + len;
  while (p < end) {
    PKCS12_SAFEBAG *b = d2i_PKCS12_SAFEBAG(NULL, &p, (long)(end - p));
    if (b == NULL || !sk_PKCS12_SAFEBAG_push(bags, b)) {
      PKCS12_SAFEBAG_free(b);
      return -1;
    }
  }
  return 0;
}

static int p12_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
                     char *err, size_t errlen) {
  STACK_OF(PKCS12_SAFEBAG) *certs = sk_PKCS12_SAFEBAG_new_null();
  STACK_OF(PKCS12_SAFEBAG) *keys = sk_PKCS12_SAFEBAG_new_null();
  STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
  ASN1_OBJECT *any = OBJ_txt2obj(ANY_EKU_OID, 1);
  PKCS12 *p12 = NULL;
  unsigned char *der = NULL;
  int rc = -1;
  ERR_clear_error();
  if (certs == NULL || keys == NULL || safes == NULL || any == NULL) {
    ossl_error(err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < s->n; i++) {
    const ks_entry *e = &s->e[i];
    if (e->kind == KS_TRUSTED) {
      const unsigned char *p = e->der;
      X509 *x = d2i_X509(NULL, &p, (long)e->der_len);
      PKCS12_SAFEBAG *bag = x ? PKCS12_SAFEBAG_create_cert(x) : NULL;
      X509_free(x);
      if (bag != NULL && !PKCS12_add_friendlyname_utf8(bag, e->alias, -1)) {
        PKCS12_SAFEBAG_free(bag);
        ERR_clear_error();
        snprintf(err, errlen, "alias '%.100s' cannot be a PKCS#12 friendlyName (a BMPString: "
                 "no characters beyond U+FFFF)", e->alias);
        goto done;
      }
      if (bag == NULL ||
          !PKCS12_add1_attr_by_txt(bag, TRUST_OID, V_ASN1_OBJECT, (const unsigned char *)any, -1) ||
          !sk_PKCS12_SAFEBAG_push(certs, bag)) {
        PKCS12_SAFEBAG_free(bag);
        ossl_error(err, errlen, "cannot write a trusted certificate");
        goto done;
      }
    }
    else if (push_raw_bags(e->kind == KS_KEY ? keys : certs, e->raw, e->raw_len) != 0) {
      ossl_error(err, errlen, "cannot write back an entry kept as it was read");
      goto done;
    }
  }
  if (sk_PKCS12_SAFEBAG_num(certs) > 0) {
    PKCS7 *p7 = PKCS12_pack_p7encdata_ex(NID_aes_256_cbc, password, -1, NULL, 0, ITERATIONS,
                                         certs, NULL, NULL);
    if (p7 == NULL || !sk_PKCS7_push(safes, p7)) {
      PKCS7_free(p7);
      ossl_error(err, errlen, "cannot encrypt the certificates");
      goto done;
    }
  }
  if (sk_PKCS12_SAFEBAG_num(keys) > 0) {  /* key bags are encrypted on their own already */
    PKCS7 *p7 = PKCS12_pack_p7data(keys);
    if (p7 == NULL || !sk_PKCS7_push(safes, p7)) {
      PKCS7_free(p7);
      ossl_error(err, errlen, "cannot write the private keys");
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
  OPENSSL_free(der);
  PKCS12_free(p12);
  sk_PKCS7_pop_free(safes, PKCS7_free);
  sk_PKCS12_SAFEBAG_pop_free(certs, PKCS12_SAFEBAG_free);
  sk_PKCS12_SAFEBAG_pop_free(keys, PKCS12_SAFEBAG_free);
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
  int is_jks = len >= 4 && data[0] == 0xFE && data[1] == 0xED && data[2] == 0xFE && data[3] == 0xED;
  if (type == KS_AUTO)
    type = is_jks ? KS_JKS : KS_PKCS12;
  s->type = type;
  int rc = type == KS_JKS ? jks_load(s, data, len, password, err, errlen)
                          : p12_load(s, data, len, password, err, errlen);
  if (rc != 0)
    ks_free(s);
  return rc;
}

int ks_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
             char *err, size_t errlen) {
  return s->type == KS_JKS ? jks_save(s, password, out, len, err, errlen)
                           : p12_save(s, password, out, len, err, errlen);
}
