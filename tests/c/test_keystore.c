/*
** test_keystore.c: JKS and PKCS#12 stores written and read back, and the
** refusals: wrong password, truncation, a foreign magic.
*/
#include <errno.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "check.h"
#include "keystore.h"

static char err[512];

/* A throwaway self-signed certificate, DER. */
static unsigned char *make_cert (const char *cn, size_t *len) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_set_subject_name(x, name);
  X509_set_issuer_name(x, name);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_sign(x, k, EVP_sha256());
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  unsigned char *out = malloc((size_t)n);
  memcpy(out, der, (size_t)n);
  OPENSSL_free(der);
  X509_NAME_free(name);
  X509_free(x);
  EVP_PKEY_free(k);
  *len = (size_t)n;
  return out;
}

static void round_trip (enum ks_type type) {
  size_t alen, blen;
  unsigned char *a = make_cert("a", &alen), *b = make_cert("b", &blen);
  ks_store s = { .type = type };
  CHECK(ks_add_trusted(&s, "Root CA", a, alen, 1700000000000, 0) == 0);
  CHECK(ks_add_trusted(&s, "root ca", b, blen, 0, 0) == EEXIST);
  CHECK(ks_add_trusted(&s, "\xC3\xA9t\xC3\xA9 \xE2\x9C\x93", b, blen, 0, 0) == 0);  /* été ✓ */
  CHECK(ks_add_trusted(&s, "", b, blen, 0, 0) == EINVAL);
  unsigned char *out;
  size_t len;
  if (ks_save(&s, "s\xC3\xA9same", &out, &len, err, sizeof(err)) != 0) {
    fprintf(stderr, "ks_save: %s\n", err);
    CHECK(0);
    return;
  }
  ks_store r;
  CHECK(ks_load(&r, out, len, "s\xC3\xA9same", KS_AUTO, err, sizeof(err)) == 0);
  CHECK(r.type == type && r.n == 2);
  CHECK_STR(r.e[0].alias, "root ca");
  CHECK_STR(r.e[1].alias, "\xC3\xA9t\xC3\xA9 \xE2\x9C\x93");
  CHECK(r.e[0].kind == KS_TRUSTED && r.e[0].der_len == alen && memcmp(r.e[0].der, a, alen) == 0);
  if (type == KS_JKS)
    CHECK(r.e[0].date_ms == 1700000000000);
  CHECK(ks_remove(&r, "ROOT CA") == 0 && r.n == 1 && ks_remove(&r, "root ca") == ENOENT);
  ks_free(&r);
  CHECK(ks_load(&r, out, len, "wrong", type, err, sizeof(err)) == -1);
  CHECK_STR(err, "wrong password, or the keystore was tampered with (integrity check failed)");
  CHECK(r.n == 0 && r.e == NULL);
  CHECK(ks_load(&r, out, len / 2, "s\xC3\xA9same", type, err, sizeof(err)) == -1);
  out[len / 2] ^= 1;  /* one flipped bit: caught by the digest or MAC */
  CHECK(ks_load(&r, out, len, "s\xC3\xA9same", type, err, sizeof(err)) == -1);
  free(out);
  ks_free(&s);
  free(a);
  free(b);
}

/* An alias beyond U+FFFF: a PKCS#12 friendlyName (a BMPString) holds it as a
** surrogate pair, as keytool writes it; JKS as modified UTF-8. Aliases are
** compared lower-cased with Unicode's rules, as the JDK does. */
static void supplementary_alias (void) {
  size_t alen;
  unsigned char *a = make_cert("a", &alen), *out = NULL;
  size_t len;
  for (int type = KS_JKS; type <= KS_PKCS12; type++) {
    ks_store s = { .type = (enum ks_type)type };
    CHECK(ks_add_trusted(&s, "Key \xF0\x9F\x94\x91 \xC3\x84rger", a, alen, 0, 0) == 0);
    CHECK(ks_add_trusted(&s, "key \xF0\x9F\x94\x91 \xC3\xA4RGER", a, alen, 0, 0) == EEXIST);
    CHECK(ks_find(&s, "KEY \xF0\x9F\x94\x91 \xC3\x84RGER") == 0);
    CHECK(ks_save(&s, "pass", &out, &len, err, sizeof(err)) == 0);
    ks_store r;
    CHECK(ks_load(&r, out, len, "pass", KS_AUTO, err, sizeof(err)) == 0);
    CHECK(r.n == 1 && strcmp(r.e[0].alias, "key \xF0\x9F\x94\x91 \xC3\xA4rger") == 0);
    /* PKCS#12 keeps the name as it was given (keytool does too); JKS writes the lower-cased alias */
    CHECK_STR(r.e[0].name, type == KS_PKCS12 ? "Key \xF0\x9F\x94\x91 \xC3\x84rger" : "key \xF0\x9F\x94\x91 \xC3\xA4rger");
    ks_free(&r);
    ks_free(&s);
    free(out);
  }
  free(a);
}

/* The JDK reads a JKS's digest right after its last entry and ignores what
** follows; of two entries with one alias it keeps the later. */
static void jks_as_the_jdk_reads_it (void) {
  size_t alen, blen;
  unsigned char *a = make_cert("a", &alen), *b = make_cert("b", &blen), *out;
  size_t len;
  ks_store s = { .type = KS_JKS };
  CHECK(ks_add_trusted(&s, "one", a, alen, 1, 0) == 0);
  CHECK(ks_add_trusted(&s, "two", b, blen, 2, 0) == 0);
  CHECK(ks_save(&s, "pw", &out, &len, err, sizeof(err)) == 0);
  unsigned char *longer = malloc(len + 7);
  memcpy(longer, out, len);
  memcpy(longer + len, "garbage", 7);
  ks_store r;
  CHECK(ks_load(&r, longer, len + 7, "pw", KS_JKS, err, sizeof(err)) == 0);
  CHECK(r.n == 2 && r.warn.n == 1);
  CHECK_STR(r.warn.text[0], "7 bytes after the keystore's integrity check, which the JDK ignores (saving leaves them out)");
  ks_free(&r);
  CHECK(ks_load(&r, longer, len + 7, "wrong", KS_JKS, err, sizeof(err)) == -1);
  CHECK_STR(err, "wrong password, or the keystore was tampered with (integrity check failed)");
  free(longer);
  free(out);
  /* rename "two" to "one" in the bytes (same length): two entries, one alias */
  s.e[1].alias[0] = 'o', s.e[1].alias[1] = 'n', s.e[1].alias[2] = 'e';
  CHECK(ks_save(&s, "pw", &out, &len, err, sizeof(err)) == 0);
  CHECK(ks_load(&r, out, len, "pw", KS_JKS, err, sizeof(err)) == 0);
  CHECK(r.n == 2 && r.e[0].shadowed && !r.e[1].shadowed);
  CHECK(ks_find(&r, "ONE") == 1 && r.e[1].der_len == blen && memcmp(r.e[1].der, b, blen) == 0);
  CHECK_STR(r.warn.text[0], "entries 1 and 2 are both 'one': the JDK reads only the later one (both are kept)");
  CHECK(ks_remove(&r, "one") == 0 && r.n == 0);  /* both: the alias is gone */
  ks_free(&r);
  free(out);
  ks_free(&s);
  free(a);
  free(b);
}

/* A version 1 JKS with a private-key entry is written back as version 1: its
** key entry has no certificate types, and is kept byte for byte (fuzz_jks
** found the version-2 rewrite unreadable). */
static void version1 (void) {
  static const unsigned char body[] = {
    0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 1, 0, 0, 0, 1,         /* magic, version 1, 1 entry */
    0, 0, 0, 1, 0, 3, 'k', 'e', 'y', 0, 0, 0, 0, 0, 0, 0, 9, /* key entry "key", date 9 */
    0, 0, 0, 2, 0xAB, 0xCD,                                  /* protected key: 2 bytes */
    0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3,                         /* chain: 1 cert of 3 bytes */
  };
  unsigned char data[sizeof(body) + 20];
  memcpy(data, body, sizeof(body));
  /* the trailer for password "pw" */
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n;
  EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
  EVP_DigestUpdate(ctx, "\0p\0w", 4);
  EVP_DigestUpdate(ctx, "Mighty Aphrodite", 16);
  EVP_DigestUpdate(ctx, body, sizeof(body));
  EVP_DigestFinal_ex(ctx, data + sizeof(body), &n);
  EVP_MD_CTX_free(ctx);
  ks_store s;
  CHECK(ks_load(&s, data, sizeof(data), "pw", KS_AUTO, err, sizeof(err)) == 0);
  CHECK(s.version == 1 && s.n == 1 && s.e[0].kind == KS_KEY);
  unsigned char *out;
  size_t len;
  CHECK(ks_save(&s, "pw", &out, &len, err, sizeof(err)) == 0);
  CHECK(len == sizeof(data) && memcmp(out, data, len) == 0);
  free(out);
  ks_free(&s);
}

int main (void) {
  version1();
  round_trip(KS_JKS);
  round_trip(KS_PKCS12);
  supplementary_alias();
  jks_as_the_jdk_reads_it();
  ks_store r;
  CHECK(ks_load(&r, (const unsigned char *)"\xFE\xED\xFE\xED\0\0\0\3", 8, "x", KS_AUTO, err, sizeof(err)) == -1);
  CHECK_STR(err, "not a JKS keystore (no FEEDFEED magic, or too short)");
  CHECK(ks_load(&r, (const unsigned char *)"hello world", 11, "x", KS_AUTO, err, sizeof(err)) == -1);
  CHECK(strncmp(err, "not a keystore (neither JKS nor PKCS#12)", 40) == 0);
  return check_done();
}
