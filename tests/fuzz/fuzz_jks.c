/*
** fuzz_jks.c: the JKS reader on arbitrary bytes. The integrity digest would
** turn away nearly every input before the parser, so the target appends the
** right one (password "changeit") to what it is given; a store that loads
** must save and load again.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "keystore.h"

static const unsigned char PASSWORD_UTF16[] = {0, 'c', 0, 'h', 0, 'a', 0, 'n', 0, 'g', 0, 'e', 0, 'i', 0, 't'};

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  unsigned char *buf = malloc(size + 20);
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
  EVP_DigestUpdate(ctx, PASSWORD_UTF16, sizeof(PASSWORD_UTF16));
  EVP_DigestUpdate(ctx, "Mighty Aphrodite", 16);
  EVP_DigestUpdate(ctx, data, size);
  EVP_DigestFinal_ex(ctx, buf + size, &n);
  EVP_MD_CTX_free(ctx);
  ks_store s;
  char err[512];
  if (ks_load(&s, buf, size + 20, "changeit", KS_JKS, err, sizeof(err)) == 0) {
    unsigned char *out;
    size_t len;
    ks_store again;
    if (ks_save(&s, "changeit", &out, &len, err, sizeof(err)) != 0 ||
        ks_load(&again, out, len, "changeit", KS_JKS, err, sizeof(err)) != 0 || again.n != s.n)
      abort();
    ks_free(&again);
    free(out);
    ks_free(&s);
  }
  free(buf);
  return 0;
}
