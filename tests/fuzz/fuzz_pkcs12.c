/*
** fuzz_pkcs12.c: the PKCS#12 reader on arbitrary bytes, as given, and again
** with a valid MAC for "changeit" put on whatever OpenSSL could parse (so the
** bags are read, not only the MAC refused). A store that loads must save
** and load again.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>

#include "keystore.h"

static void try_load (const unsigned char *data, size_t size) {
  ks_store s;
  char err[512];
  if (ks_load(&s, data, size, "changeit", KS_PKCS12, err, sizeof(err)) != 0)
    return;
  unsigned char *out;
  size_t len;
  ks_store again;
  if (ks_save(&s, "changeit", &out, &len, err, sizeof(err)) == 0) {
    if (ks_load(&again, out, len, "changeit", KS_PKCS12, err, sizeof(err)) != 0)
      abort();
    ks_free(&again);
    free(out);
  }
  ks_free(&s);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  try_load(data, size);
  const unsigned char *p = data;
  PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)size);
  if (p12 != NULL && PKCS12_set_mac(p12, "changeit", -1, NULL, 0, 1, EVP_sha256())) {
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p12, &der);
    if (n > 0)
      try_load(der, (size_t)n);
    OPENSSL_free(der);
  }
  PKCS12_free(p12);
  ERR_clear_error();
  return 0;
}
