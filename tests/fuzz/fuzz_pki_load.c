/*
** fuzz_pki_load.c: the certificate, key, request and name readers of
** core/pure/pkiload.c on arbitrary bytes. They must fail cleanly, never
** crash or leak.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "pkiload.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  char err[512];
  STACK_OF(X509) *sk = pl_load_certs(data, size, err, sizeof(err));
  sk_X509_pop_free(sk, X509_free);
  EVP_PKEY_free(pl_load_key(data, size, "fuzz", err, sizeof(err)));
  EVP_PKEY_free(pl_load_key(data, size, NULL, err, sizeof(err)));
  X509_REQ_free(pl_load_csr(data, size, err, sizeof(err)));
  if (size < 4096) {
    char *text = malloc(size + 1);
    if (text != NULL) {
      memcpy(text, data, size);
      text[size] = '\0';
      X509_NAME_free(pl_parse_name(text, err, sizeof(err)));
      free(text);
    }
  }
  ERR_clear_error();
  return 0;
}
