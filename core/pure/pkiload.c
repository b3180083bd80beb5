/*
** pkiload.c: see pkiload.h.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/proverr.h>
#include <openssl/x509.h>

#include "pkiload.h"

int pl_error (pl_err *e, const char *what) {
  char reasons[512] = "";
  size_t used = 0;
  int last = 0;
  unsigned long code;
  e->decrypt = 0;
  while ((code = ERR_get_error()) != 0) {
    const char *r = ERR_reason_error_string(code);
    int lib = ERR_GET_LIB(code), reason = ERR_GET_REASON(code);
    if ((lib == ERR_LIB_EVP && reason == EVP_R_BAD_DECRYPT) ||
        (lib == ERR_LIB_PROV && reason == PROV_R_BAD_DECRYPT) ||
        (lib == ERR_LIB_PEM && reason == PEM_R_BAD_DECRYPT) ||
        (lib == ERR_LIB_PKCS12 && reason == PKCS12_R_PKCS12_CIPHERFINAL_ERROR))
      e->decrypt = 1;
    char num[32];
    if (r == NULL) {
      snprintf(num, sizeof(num), "error %lu", code);
      r = num;
    }
    last = reason;
    if (used >= sizeof(reasons) - 1 || strstr(reasons, r) != NULL)
      continue;  /* OpenSSL repeats itself up the stack */
    int n = snprintf(reasons + used, sizeof(reasons) - used, "%s%s", used ? "; " : "", r);
    used = n < 0 ? sizeof(reasons) - 1 : used + (size_t)n;
  }
  if (used)
    snprintf(e->msg, sizeof(e->msg), "%s: %s", what, reasons);
  else
    snprintf(e->msg, sizeof(e->msg), "%s", what);
  e->code = last;
  return last;
}

/* Our own reason, with no OpenSSL error behind it. */
static void pl_fail (pl_err *e, const char *what, const char *reason) {
  ERR_clear_error();
  snprintf(e->msg, sizeof(e->msg), "%s: %s", what, reason);
  e->code = 0;
  e->decrypt = 0;
}

static int has_bytes (const unsigned char *data, size_t len, const char *s) {
  size_t n = strlen(s);
  for (size_t i = 0; i + n <= len; i++)
    if (data[i] == (unsigned char)s[0] && memcmp(data + i, s, n) == 0)
      return 1;
  return 0;
}

static int looks_pem (const unsigned char *data, size_t len) {
  return has_bytes(data, len, "-----BEGIN ");
}

/* DER always starts with a SEQUENCE: anything else is not worth OpenSSL's
** (slow, noisy) attempt. */
static int looks_der (const unsigned char *data, size_t len) {
  return len >= 2 && data[0] == 0x30;
}

/* Never prompts: certificates need no password, and keys get theirs from u. */
static int pass_cb (char *buf, int size, int rwflag, void *u) {
  (void)rwflag;
  if (u == NULL)
    return -1;
  size_t n = strlen((const char *)u);
  if (size < 0 || n > (size_t)size)
    return -1;
  memcpy(buf, u, n);
  return (int)n;
}

/* After a d2i_* call: 1 when obj was read and used all the bytes up to
** end, else 0 with e set. */
static int der_whole (const void *obj, const unsigned char *p, const unsigned char *end,
                      const char *what, pl_err *e) {
  if (obj != NULL && p == end)
    return 1;
  if (obj != NULL)
    pl_fail(e, what, "trailing data after the DER encoding");
  else {
    char heading[96];
    snprintf(heading, sizeof(heading), "%s (DER)", what);
    pl_error(e, heading);
  }
  return 0;
}

/* 0 when len fits OpenSSL's int lengths and is not empty; else sets e. */
static int bad_length (size_t len, const char *what, pl_err *e) {
  if (len != 0 && len <= INT_MAX)
    return 0;
  pl_fail(e, what, len ? "too large" : "empty input");
  return 1;
}

STACK_OF(X509) *pl_load_certs (const unsigned char *data, size_t len, pl_err *e) {
  static const char what[] = "not a certificate";
  ERR_clear_error();
  if (bad_length(len, what, e))
    return NULL;
  STACK_OF(X509) *sk = sk_X509_new_null();
  if (sk == NULL) {
    pl_error(e, "out of memory");
    return NULL;
  }
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    X509 *x;
    /* the _AUX reader takes TRUSTED CERTIFICATE blocks too, as openssl x509 does */
    while (b != NULL && (x = PEM_read_bio_X509_AUX(b, NULL, pass_cb, NULL)) != NULL)
      if (!sk_X509_push(sk, x)) {
        X509_free(x);
        break;
      }
    BIO_free(b);
    unsigned long last = ERR_peek_last_error();
    int no_more = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
    int n = sk_X509_num(sk);
    if (n > 0 && no_more)
      ERR_clear_error();  /* the end of the bundle */
    else {
      char where[96];
      snprintf(where, sizeof(where), "%s (number %d in the PEM text)", what, n + 1);
      if (n == 0 && (last == 0 || no_more))
        pl_fail(e, what, "no CERTIFICATE block in the PEM text");
      else if (last == 0)
        pl_fail(e, where, "an unreadable CERTIFICATE block");
      else
        pl_error(e, n == 0 ? what : where);
      sk_X509_pop_free(sk, X509_free);
      return NULL;
    }
  }
  else if (!looks_der(data, len)) {
    pl_fail(e, what, "neither PEM nor DER");
    sk_X509_free(sk);
    return NULL;
  }
  else {
    /* bytes after the certificate are ignored, as openssl x509 -inform DER does */
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL) {
      char heading[96];
      snprintf(heading, sizeof(heading), "%s (DER)", what);
      pl_error(e, heading);
      sk_X509_free(sk);
      return NULL;
    }
    if (!sk_X509_push(sk, x)) {
      X509_free(x);
      sk_X509_free(sk);
      pl_error(e, "out of memory");
      return NULL;
    }
  }
  return sk;
}

/* An encrypted PKCS#8 DER key (EncryptedPrivateKeyInfo). */
static EVP_PKEY *load_encrypted_der (X509_SIG *p8, const char *pass, pl_err *e) {
  if (pass == NULL) {
    pl_fail(e, "the private key is encrypted", "a password is needed");
    return NULL;
  }
  PKCS8_PRIV_KEY_INFO *info = PKCS8_decrypt(p8, pass, (int)strlen(pass));
  if (info == NULL) {
    pl_error(e, "wrong password for the private key");
    return NULL;
  }
  EVP_PKEY *k = EVP_PKCS82PKEY(info);
  PKCS8_PRIV_KEY_INFO_free(info);
  if (k == NULL)
    pl_error(e, "not a private key (DER)");
  return k;
}

EVP_PKEY *pl_load_key (const unsigned char *data, size_t len, const char *pass, pl_err *e) {
  static const char what[] = "not a private key";
  ERR_clear_error();
  if (bad_length(len, what, e))
    return NULL;
  EVP_PKEY *k = NULL;
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b != NULL)
      k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)pass);
    BIO_free(b);
    if (k != NULL) {
      ERR_clear_error();
      return k;
    }
    int encrypted = has_bytes(data, len, "ENCRYPTED");
    if (!has_bytes(data, len, "PRIVATE KEY-----"))
      pl_fail(e, what, "no PRIVATE KEY block in the PEM text");
    else if (pass == NULL && encrypted)
      pl_fail(e, "the private key is encrypted", "a password is needed");
    else {
      pl_error(e, what);
      if (encrypted && e->decrypt) {  /* the same reasons under a clearer heading */
        char reasons[sizeof(e->msg)];
        memcpy(reasons, e->msg + strlen(what), sizeof(e->msg) - strlen(what));
        snprintf(e->msg, sizeof(e->msg), "wrong password for the private key%.700s", reasons);
      }
    }
    return NULL;
  }
  if (!looks_der(data, len)) {
    pl_fail(e, what, "neither PEM nor DER");
    return NULL;
  }
  const unsigned char *p = data;
  X509_SIG *p8 = d2i_X509_SIG(NULL, &p, (long)len);
  if (p8 != NULL && p == data + len) {
    ERR_clear_error();
    k = load_encrypted_der(p8, pass, e);
    X509_SIG_free(p8);
    return k;
  }
  X509_SIG_free(p8);
  ERR_clear_error();
  p = data;
  k = d2i_AutoPrivateKey(NULL, &p, (long)len);
  if (k == NULL) {
    pl_error(e, "not a private key (DER)");
    return NULL;
  }
  ERR_clear_error();
  return k;
}

X509_REQ *pl_load_csr (const unsigned char *data, size_t len, pl_err *e) {
  static const char what[] = "not a certificate request";
  ERR_clear_error();
  if (bad_length(len, what, e))
    return NULL;
  X509_REQ *r = NULL;
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b != NULL)
      r = PEM_read_bio_X509_REQ(b, NULL, pass_cb, NULL);
    BIO_free(b);
    if (r == NULL) {
      unsigned long last = ERR_peek_last_error();
      if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)
        pl_fail(e, what, "no CERTIFICATE REQUEST block in the PEM text");
      else
        pl_error(e, what);
      return NULL;
    }
  }
  else if (!looks_der(data, len)) {
    pl_fail(e, what, "neither PEM nor DER");
    return NULL;
  }
  else {
    const unsigned char *p = data;
    r = d2i_X509_REQ(NULL, &p, (long)len);
    if (!der_whole(r, p, data + len, what, e)) {
      X509_REQ_free(r);
      return NULL;
    }
  }
  ERR_clear_error();
  return r;
}


/* --- names ---------------------------------------------------------------- */

#define MAX_RDNS 64

static int hexval (char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
** Splits buf (a copy of the text) in place into fields at unescaped sep,
** removing escapes and the blanks around each field; "\xHH" (slash form) or
** "\HH" (comma form) becomes one byte. Returns the number of fields, or -1
** when there are too many, or -2 on an unescaped '+' in the comma form.
** A decoded byte never makes a field end, so "\2C" is a comma in a value.
*/
static int split_fields (char *buf, char sep, char **fields, size_t *lens) {
  int count = 0;
  char *r = buf, *w = buf;
  for (;;) {
    if (count == MAX_RDNS)
      return -1;
    while (*r == ' ' || *r == '\t')
      r++;
    char *start = w;
    size_t keep = 0;  /* length up to the last byte that is not a trailing blank */
    while (*r != '\0' && *r != sep) {
      char c = *r++;
      int literal = 0;
      if (c == '\\' && *r != '\0') {
        literal = 1;
        const char *h = sep == '/' && (*r == 'x' || *r == 'X') ? r + 1 : r;
        int hi = hexval(h[0]), lo = hi >= 0 ? hexval(h[1]) : -1;
        if (hi >= 0 && lo >= 0 && (sep == '/' ? h != r : 1)) {
          c = (char)(hi * 16 + lo);
          r = (char *)h + 2;
        }
        else
          c = *r++;
      }
      else if (c == '+' && sep == ',')
        return -2;
      *w++ = c;
      if (literal || (c != ' ' && c != '\t'))
        keep = (size_t)(w - start);
    }
    fields[count] = start;
    lens[count] = keep;
    count++;
    if (*r == '\0')
      break;
    r++;
    *w++ = '\0';  /* never past r: escapes only shrink the text */
  }
  return count;
}

X509_NAME *pl_parse_name (const char *text, pl_err *e) {
  char what[200];
  snprintf(what, sizeof(what), "malformed subject '%.120s%s'", text, strlen(text) > 120 ? "..." : "");
  ERR_clear_error();
  int slash = text[0] == '/';
  char sep = slash ? '/' : ',';
  const char *body = slash ? text + 1 : text;
  if (body[strspn(body, " \t")] == '\0') {
    pl_fail(e, what, "it is empty");
    return NULL;
  }
  char *buf = strdup(body);
  char *fields[MAX_RDNS];
  size_t lens[MAX_RDNS];
  X509_NAME *name = NULL;
  if (buf == NULL) {
    pl_error(e, "out of memory");
    return NULL;
  }
  int count = split_fields(buf, sep, fields, lens);
  if (count == -1) {
    pl_fail(e, what, "more than 64 attributes");
    goto cleanup;
  }
  if (count == -2) {
    pl_fail(e, what, "multi-valued RDNs ('+') are not supported");
    goto cleanup;
  }
  name = X509_NAME_new();
  if (name == NULL) {
    pl_error(e, "out of memory");
    goto cleanup;
  }
  for (int i = 0; i < count; i++) {
    /* RFC 2253 text lists the most specific attribute first: add it last. */
    int k = slash ? i : count - 1 - i;
    char *f = fields[k];
    size_t flen = lens[k];
    char *eq = memchr(f, '=', flen);
    if (eq == NULL || eq == f || (size_t)(eq - f) + 1 == flen) {
      char reason[160];
      snprintf(reason, sizeof(reason), "'%.*s' is not NAME=value", (int)(flen > 100 ? 100 : flen), f);
      pl_fail(e, what, reason);
      X509_NAME_free(name);
      name = NULL;
      goto cleanup;
    }
    char *key = f, *value = eq + 1;
    size_t vlen = flen - (size_t)(value - f);
    char *kend = eq;
    while (kend > key && (kend[-1] == ' ' || kend[-1] == '\t'))
      kend--;
    *kend = '\0';
    while (vlen > 0 && *value == ' ') {
      value++;
      vlen--;
    }
    if (OBJ_txt2nid(key) == NID_undef) {
      char reason[120];
      snprintf(reason, sizeof(reason), "unknown attribute '%.60s'", key);
      pl_fail(e, what, reason);
      X509_NAME_free(name);
      name = NULL;
      goto cleanup;
    }
    if (vlen == 0 || !X509_NAME_add_entry_by_txt(name, key, MBSTRING_UTF8, (const unsigned char *)value,
                                                 (int)vlen, -1, 0)) {
      char where[280];
      snprintf(where, sizeof(where), "%s: bad value for %.60s", what, key);
      if (vlen == 0)
        pl_fail(e, where, "it is empty");
      else
        pl_error(e, where);
      X509_NAME_free(name);
      name = NULL;
      goto cleanup;
    }
  }
cleanup:
  free(buf);
  return name;
}
