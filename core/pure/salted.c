/*
** salted.c: see salted.h.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "salted.h"

#define MAGIC "Salted__"
#define MAGIC_LEN 8
#define SALT_LEN 8
#define HEADER_LEN (MAGIC_LEN + SALT_LEN)
#define BLOCK 16

void sa_free (unsigned char *buf, size_t len) {
  OPENSSL_clear_free(buf, len);
}

/* Runs AES-256-CBC over in[0..len) (enc: 1 encrypt, 0 decrypt) with the key
** and IV of pass and salt. 0, or -1 with OpenSSL's last reason in *reason. */
static int run_cipher (int enc, const unsigned char *in, size_t len, const char *pass, size_t passlen,
                  const unsigned char *salt, unsigned char *out, size_t *outlen, int *reason) {
  unsigned char key[32], iv[16];
  EVP_CIPHER_CTX *ctx = NULL;
  int ok = 0, n = 0, fin = 0;
  ERR_clear_error();
  if (len > INT_MAX - BLOCK || passlen > INT_MAX)
    goto done;
  if (EVP_BytesToKey(EVP_aes_256_cbc(), EVP_sha1(), salt, (const unsigned char *)pass, (int)passlen,
                     1, key, iv) != (int)sizeof(key))
    goto done;
  ctx = EVP_CIPHER_CTX_new();
  ok = ctx != NULL && EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, iv, enc) &&
       EVP_CipherUpdate(ctx, out, &n, in, (int)len) && EVP_CipherFinal_ex(ctx, out + n, &fin);
done:
  *reason = ok ? 0 : ERR_GET_REASON(ERR_peek_last_error());
  ERR_clear_error();
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(key, sizeof(key));
  OPENSSL_cleanse(iv, sizeof(iv));
  *outlen = ok ? (size_t)n + (size_t)fin : 0;
  return ok ? 0 : -1;
}

int sa_encrypt (const unsigned char *data, size_t len, const char *pass, size_t passlen,
                const unsigned char *salt, unsigned char **out, size_t *outlen,
                char *err, size_t errlen) {
  if (len > INT_MAX - HEADER_LEN - 2 * BLOCK) {
    snprintf(err, errlen, "too large to encrypt");
    return -1;
  }
  size_t cap = HEADER_LEN + len + BLOCK;
  unsigned char *buf = OPENSSL_malloc(cap);
  if (buf == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  memcpy(buf, MAGIC, MAGIC_LEN);
  if (salt != NULL)
    memcpy(buf + MAGIC_LEN, salt, SALT_LEN);
  else if (RAND_bytes(buf + MAGIC_LEN, SALT_LEN) != 1) {
    ERR_clear_error();
    OPENSSL_free(buf);
    snprintf(err, errlen, "the random generator failed");
    return -1;
  }
  size_t n = 0;
  int reason;
  if (run_cipher(1, data, len, pass, passlen, buf + MAGIC_LEN, buf + HEADER_LEN, &n, &reason) != 0) {
    sa_free(buf, cap);
    snprintf(err, errlen, "cannot encrypt (OpenSSL reason %d)", reason);
    return -1;
  }
  *out = buf;
  *outlen = HEADER_LEN + n;
  return 0;
}

int sa_decrypt (const unsigned char *data, size_t len, const char *pass, size_t passlen,
                unsigned char **out, size_t *outlen, int *code, char *err, size_t errlen) {
  *code = EINVAL;
  if (len < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0) {
    snprintf(err, errlen, "not OpenSSL salted data (it does not start with 'Salted__')");
    return -1;
  }
  if (len < HEADER_LEN) {
    snprintf(err, errlen, "truncated: the 8-byte salt after 'Salted__' is cut short");
    return -1;
  }
  size_t body = len - HEADER_LEN;
  if (body == 0 || body % BLOCK != 0) {
    snprintf(err, errlen, "truncated: %zu bytes after the salt, not a whole number of 16-byte blocks", body);
    return -1;
  }
  if (body > INT_MAX - BLOCK) {
    snprintf(err, errlen, "too large to decrypt");
    return -1;
  }
  unsigned char *buf = OPENSSL_malloc(body + BLOCK);
  if (buf == NULL) {
    *code = ENOMEM;
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t n = 0;
  int reason;
  if (run_cipher(0, data + HEADER_LEN, body, pass, passlen, data + MAGIC_LEN, buf, &n, &reason) != 0) {
    sa_free(buf, body + BLOCK);
    *code = reason ? reason : EINVAL;
    snprintf(err, errlen, "wrong password, or the data is damaged (bad decrypt)");
    return -1;
  }
  *out = buf;
  *outlen = n;
  *code = 0;
  return 0;
}
