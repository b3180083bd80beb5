/*
** fuzz_pki_load.c: the certificate, key, request and name readers of
** core/pure/pkiload.c (PEM and DER) on arbitrary bytes. They must fail
** cleanly, never crash, leak or leave OpenSSL's error queue full.
**
** The first byte picks the reader (its value mod 5), the rest is its input,
** so the slow key decoders do not hold back the others:
**   'A' certificates, 'B' a key with no password, 'C' a key with the
**   password "fuzz", 'D' a certificate request, 'E' a subject name.
** Seeds in tests/fuzz/corpus/pki_load/ start with that byte.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "pkiload.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int which = (data[0] - 'A' + 5) % 5;
  data++;
  size--;
  pl_err e;
  e.msg[0] = '\0';
  switch (which) {
    case 0: {
      STACK_OF(X509) *sk = pl_load_certs(data, size, &e);
      if (sk == NULL && e.msg[0] == '\0')
        abort();
      sk_X509_pop_free(sk, X509_free);
      break;
    }
    case 1:
    case 2: {
      EVP_PKEY *k = pl_load_key(data, size, which == 2 ? "fuzz" : NULL, &e);
      if (k == NULL && e.msg[0] == '\0')
        abort();
      EVP_PKEY_free(k);
      break;
    }
    case 3:
      X509_REQ_free(pl_load_csr(data, size, &e));
      break;
    default: {
      if (size > 4096)
        break;
      char *text = malloc(size + 1);
      if (text == NULL)
        break;
      memcpy(text, data, size);
      text[size] = '\0';
      X509_NAME_free(pl_parse_name(text, &e));
      free(text);
    }
  }
  if (ERR_peek_error() != 0)  /* every reader empties the queue */
    abort();
  return 0;
}
