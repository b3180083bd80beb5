/*
** pkiload.c: see pkiload.h.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pkiload.h"

int pl_error (char *err, size_t errlen, const char *what) {
  char reasons[512] = "";
  size_t used = 0;
  int last = 0;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char *r = ERR_reason_error_string(e);
    char code[32];
    if (r == NULL) {
      snprintf(code, sizeof(code), "error %lu", e);
      r = code;
    }
    last = ERR_GET_REASON(e);
    if (strstr(reasons, r) != NULL)
      continue;  /* OpenSSL repeats itself up the stack */
    int n = snprintf(reasons + used, sizeof(reasons) - used, "%s%s", used ? "; " : "", r);
    if (n < 0 || (size_t)n >= sizeof(reasons) - used)
      break;
    used += (size_t)n;
  }
  if (used)
    snprintf(err, errlen, "%s: %s", what, reasons);
  else
    snprintf(err, errlen, "%s", what);
  return last;
}

static int looks_pem (const unsigned char *data, size_t len) {
  static const char tag[] = "-----BEGIN ";
  size_t n = sizeof(tag) - 1;
  for (size_t i = 0; i + n <= len; i++)
    if (data[i] == '-' && memcmp(data + i, tag, n) == 0)
      return 1;
  return 0;
}

/* Never prompts: certificates need no password, and keys get theirs from u. */
static int pass_cb (char *buf, int size, int rwflag, void *u) {
  (void)rwflag;
  if (u == NULL)
    return -1;
  size_t n = strlen((const char *)u);
  if (n > (size_t)size)
    return -1;
  memcpy(buf, u, n);
  return (int)n;
}

STACK_OF(X509) *pl_load_certs (const unsigned char *data, size_t len, char *err, size_t errlen) {
  ERR_clear_error();
  if (len == 0 || len > INT_MAX) {
    snprintf(err, errlen, "not a certificate: %s", len ? "too large" : "empty input");
    return NULL;
  }
  STACK_OF(X509) *sk = sk_X509_new_null();
  if (sk == NULL) {
    pl_error(err, errlen, "out of memory");
    return NULL;
  }
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    X509 *x;
    while (b != NULL && (x = PEM_read_bio_X509(b, NULL, pass_cb, NULL)) != NULL) {
      if (!sk_X509_push(sk, x)) {
        X509_free(x);
        break;
      }
    }
    BIO_free(b);
    unsigned long e = ERR_peek_last_error();
    int no_more = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (sk_X509_num(sk) > 0 && no_more)
      ERR_clear_error();  /* the end of the bundle */
    else if (e != 0 || sk_X509_num(sk) == 0) {
      if (e == 0 || no_more) {
        snprintf(err, errlen, "not a certificate: no CERTIFICATE block in the PEM text");
        ERR_clear_error();
      }
      else
        pl_error(err, errlen, "not a certificate");
      sk_X509_pop_free(sk, X509_free);
      return NULL;
    }
  }
  else {
    const unsigned char *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != data + len) {
      X509_free(x);
      if (x != NULL)
        snprintf(err, errlen, "not a certificate: trailing data after the DER certificate");
      else
        pl_error(err, errlen, "not a certificate (neither PEM nor DER)");
      ERR_clear_error();
      sk_X509_pop_free(sk, X509_free);
      return NULL;
    }
    if (!sk_X509_push(sk, x)) {
      X509_free(x);
      sk_X509_free(sk);
      pl_error(err, errlen, "out of memory");
      return NULL;
    }
  }
  return sk;
}

EVP_PKEY *pl_load_key (const unsigned char *data, size_t len, const char *pass,
                       char *err, size_t errlen) {
  ERR_clear_error();
  if (len == 0 || len > INT_MAX) {
    snprintf(err, errlen, "not a private key: %s", len ? "too large" : "empty input");
    return NULL;
  }
  EVP_PKEY *k = NULL;
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b != NULL)
      k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)pass);
    BIO_free(b);
    if (k == NULL) {
      unsigned long e = ERR_peek_last_error();
      int encrypted = memmem(data, len, "ENCRYPTED", 9) != NULL;
      if (pass == NULL && encrypted)
        snprintf(err, errlen, "the private key is encrypted: a password is needed");
      else if (ERR_GET_REASON(e) == EVP_R_BAD_DECRYPT ||
               (pass != NULL && encrypted && ERR_GET_LIB(e) != ERR_LIB_PEM))
        snprintf(err, errlen, "cannot decrypt the private key: wrong password");
      else
        pl_error(err, errlen, "not a private key");
      ERR_clear_error();
      return NULL;
    }
  }
  else {
    const unsigned char *p = data;
    k = d2i_AutoPrivateKey(NULL, &p, (long)len);
    if (k == NULL) {
      pl_error(err, errlen, "not a private key (neither PEM nor DER)");
      ERR_clear_error();
      return NULL;
    }
  }
  ERR_clear_error();
  return k;
}

X509_REQ *pl_load_csr (const unsigned char *data, size_t len, char *err, size_t errlen) {
  ERR_clear_error();
  if (len == 0 || len > INT_MAX) {
    snprintf(err, errlen, "not a certificate request: %s", len ? "too large" : "empty input");
    return NULL;
  }
  X509_REQ *r = NULL;
  if (looks_pem(data, len)) {
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b != NULL)
      r = PEM_read_bio_X509_REQ(b, NULL, pass_cb, NULL);
    BIO_free(b);
  }
  else {
    const unsigned char *p = data;
    r = d2i_X509_REQ(NULL, &p, (long)len);
  }
  if (r == NULL) {
    pl_error(err, errlen, "not a certificate request");
    return NULL;
  }
  ERR_clear_error();
  return r;
}

/* Copies the next field of text (up to an unescaped sep) into out, without
** the escapes and with surrounding blanks trimmed. Returns the position after
** the separator, or NULL at the end. */
static const char *next_field (const char *p, char sep, char *out, size_t outlen, int *toolong) {
  size_t n = 0;
  while (*p == ' ' || *p == '\t')
    p++;
  size_t last_plain = 0;
  while (*p != '\0' && *p != sep) {
    char c = *p++;
    int escaped = 0;
    if (c == '\\' && *p != '\0') {
      c = *p++;
      escaped = 1;
    }
    if (n + 1 >= outlen) {
      *toolong = 1;
      break;
    }
    out[n++] = c;
    if (escaped || (c != ' ' && c != '\t'))
      last_plain = n;
  }
  out[last_plain] = '\0';
  return *p == sep ? p + 1 : NULL;
}

X509_NAME *pl_parse_name (const char *text, char *err, size_t errlen) {
  ERR_clear_error();
  static const size_t FIELD = 1024;
  char store[64][1024];
  int count = 0, toolong = 0;
  int slash = text[0] == '/';
  char sep = slash ? '/' : ',';
  const char *p = slash ? text + 1 : text;
  if (*p == '\0') {
    snprintf(err, errlen, "malformed subject '%s': it is empty", text);
    return NULL;
  }
  while (p != NULL) {
    if (count == 64) {
      snprintf(err, errlen, "malformed subject '%s': more than 64 attributes", text);
      return NULL;
    }
    p = next_field(p, sep, store[count], FIELD, &toolong);
    if (toolong) {
      snprintf(err, errlen, "malformed subject '%s': an attribute is too long", text);
      return NULL;
    }
    count++;
  }
  X509_NAME *name = X509_NAME_new();
  if (name == NULL) {
    pl_error(err, errlen, "out of memory");
    return NULL;
  }
  for (int k = 0; k < count; k++) {
    /* RFC 2253 text lists the most specific attribute first: add it last. */
    char *f = store[slash ? k : count - 1 - k];
    char *eq = strchr(f, '=');
    if (eq == NULL || eq == f || eq[1] == '\0') {
      snprintf(err, errlen, "malformed subject '%s': '%s' is not NAME=value", text, f);
      X509_NAME_free(name);
      return NULL;
    }
    *eq = '\0';
    char *key = f, *value = eq + 1;
    size_t kl = strlen(key);
    while (kl > 0 && (key[kl - 1] == ' ' || key[kl - 1] == '\t'))
      key[--kl] = '\0';
    while (*value == ' ')
      value++;
    if (OBJ_txt2nid(key) == NID_undef) {
      snprintf(err, errlen, "malformed subject '%s': unknown attribute '%s'", text, key);
      X509_NAME_free(name);
      ERR_clear_error();
      return NULL;
    }
    if (!X509_NAME_add_entry_by_txt(name, key, MBSTRING_UTF8, (const unsigned char *)value,
                                    -1, -1, 0)) {
      char what[256];
      snprintf(what, sizeof(what), "malformed subject '%.120s': bad value for %.60s", text, key);
      pl_error(err, errlen, what);
      X509_NAME_free(name);
      return NULL;
    }
  }
  return name;
}
