/*
** test_salted.c: the Salted__ format against a vector openssl made:
**   printf '1;0123...cdef\n' > kf; printf 'correct horse\n' > kp
**   openssl enc -aes-256-cbc -md sha1 -S 0102030405060708 -pass file:kp -in kf
** (OpenSSL 3.0.19; with -S it leaves out the "Salted__" header and salt,
** which the test puts in front), and the refusals.
*/
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "salted.h"

static const char PLAIN[] = "1;0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
static const unsigned char SALT[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char CIPHER[] = {
  'S', 'a', 'l', 't', 'e', 'd', '_', '_', 1, 2, 3, 4, 5, 6, 7, 8,
  0x45, 0x97, 0x7d, 0xa2, 0xc8, 0x78, 0xeb, 0x9a, 0x3d, 0x37, 0x18, 0x33,
  0x23, 0x59, 0x51, 0xb4, 0x9c, 0x83, 0xb7, 0x53, 0xaf, 0x14, 0x7e, 0xc5,
  0x25, 0xff, 0x1a, 0x8e, 0x8d, 0x80, 0xbf, 0x3f, 0x25, 0x24, 0x24, 0xbd,
  0x5c, 0x9e, 0xf0, 0x05, 0x47, 0x21, 0xd1, 0x5b, 0xd2, 0xfd, 0x6c, 0x8e,
  0x73, 0xac, 0xe8, 0xda, 0x20, 0xee, 0x79, 0x20, 0x41, 0x27, 0x74, 0xef,
  0xe1, 0xd3, 0x92, 0xe2, 0xbc, 0x33, 0x68, 0x78, 0xbe, 0xe0, 0xf4, 0xdc,
  0xda, 0x25, 0x6f, 0xb8, 0x30, 0xe0, 0x38, 0xf0,
};
/* openssl enc ... -S 0102030405060708 -pass file:kp -in /dev/null */
static const unsigned char EMPTY[] = {
  'S', 'a', 'l', 't', 'e', 'd', '_', '_', 1, 2, 3, 4, 5, 6, 7, 8,
  0x6c, 0x1d, 0x9e, 0x0e, 0xb9, 0xc6, 0xb7, 0x38, 0x6c, 0xdb, 0xb4, 0x24, 0x65, 0x6c, 0xfd, 0x14,
};
static const char PASS[] = "correct horse";

static char err[256];

static void vectors (void) {
  unsigned char *out = NULL;
  size_t len = 0;
  CHECK(sa_encrypt((const unsigned char *)PLAIN, strlen(PLAIN), PASS, strlen(PASS), SALT, &out, &len,
                   err, sizeof(err)) == 0);
  CHECK(len == sizeof(CIPHER) && memcmp(out, CIPHER, len) == 0);
  sa_free(out, len);
  CHECK(sa_encrypt((const unsigned char *)"", 0, PASS, strlen(PASS), SALT, &out, &len, err, sizeof(err)) == 0);
  CHECK(len == sizeof(EMPTY) && memcmp(out, EMPTY, len) == 0);
  sa_free(out, len);
  int code = -1;
  CHECK(sa_decrypt(CIPHER, sizeof(CIPHER), PASS, strlen(PASS), &out, &len, &code, err, sizeof(err)) == 0);
  CHECK(code == 0 && len == strlen(PLAIN) && memcmp(out, PLAIN, len) == 0);
  sa_free(out, len);
  CHECK(sa_decrypt(EMPTY, sizeof(EMPTY), PASS, strlen(PASS), &out, &len, &code, err, sizeof(err)) == 0);
  CHECK(len == 0);
  sa_free(out, len);
}

static void random_salt (void) {
  unsigned char *a, *b, *plain;
  size_t alen, blen, plen;
  int code;
  CHECK(sa_encrypt((const unsigned char *)PLAIN, 10, PASS, strlen(PASS), NULL, &a, &alen, err, sizeof(err)) == 0);
  CHECK(sa_encrypt((const unsigned char *)PLAIN, 10, PASS, strlen(PASS), NULL, &b, &blen, err, sizeof(err)) == 0);
  CHECK(alen == 32 && blen == 32 && memcmp(a, b, 16) != 0);  /* new salt, new bytes */
  CHECK(sa_decrypt(b, blen, PASS, strlen(PASS), &plain, &plen, &code, err, sizeof(err)) == 0);
  CHECK(plen == 10 && memcmp(plain, PLAIN, 10) == 0);
  sa_free(plain, plen);
  sa_free(a, alen);
  sa_free(b, blen);
}

static void refusals (void) {
  unsigned char *out = NULL;
  size_t len = 0;
  int code = 0;
  CHECK(sa_decrypt(CIPHER, sizeof(CIPHER), "wrong", 5, &out, &len, &code, err, sizeof(err)) == -1);
  CHECK_STR(err, "wrong password, or the data is damaged (bad decrypt)");
  CHECK(code == 100);  /* PROV_R_BAD_DECRYPT */
  CHECK(sa_decrypt((const unsigned char *)PLAIN, strlen(PLAIN), PASS, 13, &out, &len, &code, err, sizeof(err)) == -1);
  CHECK_STR(err, "not OpenSSL salted data (it does not start with 'Salted__')");
  CHECK(code == EINVAL);
  CHECK(sa_decrypt(CIPHER, 12, PASS, 13, &out, &len, &code, err, sizeof(err)) == -1);
  CHECK_STR(err, "truncated: the 8-byte salt after 'Salted__' is cut short");
  CHECK(sa_decrypt(CIPHER, sizeof(CIPHER) - 1, PASS, 13, &out, &len, &code, err, sizeof(err)) == -1);
  CHECK_STR(err, "truncated: 79 bytes after the salt, not a whole number of 16-byte blocks");
  CHECK(sa_decrypt(CIPHER, 16, PASS, 13, &out, &len, &code, err, sizeof(err)) == -1);
  CHECK_STR(err, "truncated: 0 bytes after the salt, not a whole number of 16-byte blocks");
  CHECK(out == NULL);
}

int main (void) {
  vectors();
  random_salt();
  refusals();
  return check_done();
}
