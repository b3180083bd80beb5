/*
** fuzz_salted.c: the Salted__ reader of core/pure/salted.c on arbitrary
** bytes, with the password "fuzz". It must fail with a reason or decrypt;
** what decrypts must encrypt and decrypt back to the same bytes, and
** OpenSSL's error queue must be left empty.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "salted.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  unsigned char *plain, *again, *back;
  size_t plen, alen, blen;
  int code;
  char err[256] = "";
  if (sa_decrypt(data, size, "fuzz", 4, &plain, &plen, &code, err, sizeof(err)) != 0) {
    if (err[0] == '\0' || code == 0)
      abort();
  }
  else {
    if (sa_encrypt(plain, plen, "fuzz", 4, NULL, &again, &alen, err, sizeof(err)) != 0 ||
        sa_decrypt(again, alen, "fuzz", 4, &back, &blen, &code, err, sizeof(err)) != 0 ||
        blen != plen || memcmp(back, plain, plen) != 0)
      abort();
    sa_free(back, blen);
    sa_free(again, alen);
    sa_free(plain, plen);
  }
  if (ERR_peek_error() != 0)
    abort();
  return 0;
}
