/*
** test_pkiload.c: the pure readers of core/pure/pkiload.c: names in both
** forms (escapes, non-ASCII, refusals), certificates PEM/DER/bundles, keys
** plain and encrypted (right, wrong and missing passwords), requests, and
** the messages each failure gives.
*/
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "check.h"
#include "pkiload.h"

static pl_err e;

/* The one-line form of a parsed name, or the error message. */
static const char *name_of (const char *text) {
  static char out[1024];
  X509_NAME *n = pl_parse_name(text, &e);
  if (n == NULL)
    return e.msg;
  X509_NAME_oneline(n, out, sizeof(out));
  X509_NAME_free(n);
  return out;
}

static void test_names (void) {
  CHECK_STR(name_of("/C=NL/O=Biobank/CN=db.example.org"), "/C=NL/O=Biobank/CN=db.example.org");
  CHECK_STR(name_of("CN=db.example.org, O=Biobank, C=NL"), "/C=NL/O=Biobank/CN=db.example.org");
  CHECK_STR(name_of("CN=x"), "/CN=x");
  CHECK_STR(name_of("/CN= padded  /O=Org"), "/CN=padded/O=Org");
  CHECK_STR(name_of("/CN=a\\/b"), "/CN=a\\/b");                    /* X509_NAME_oneline escapes '/' */
  CHECK_STR(name_of("O=Biobank\\, Inc.,CN=x"), "/CN=x/O=Biobank, Inc.");
  CHECK_STR(name_of("/O=Universit\\xC3\\xA4t/CN=x"), "/O=Universit\\xC3\\xA4t/CN=x");
  CHECK_STR(name_of("CN=x,O=Universit\\C3\\A4t"), "/O=Universit\\xC3\\xA4t/CN=x");
  CHECK_STR(name_of("/O=Universit\xC3\xA4t/CN=x"), "/O=Universit\\xC3\\xA4t/CN=x");
  CHECK_STR(name_of("/CN=trailing\\ "), "/CN=trailing ");
  CHECK_STR(name_of(""), "malformed subject '': it is empty");
  CHECK_STR(name_of("/"), "malformed subject '/': it is empty");
  CHECK_STR(name_of("/CN"), "malformed subject '/CN': 'CN' is not NAME=value");
  CHECK_STR(name_of("/CN="), "malformed subject '/CN=': 'CN=' is not NAME=value");
  CHECK_STR(name_of("/=x"), "malformed subject '/=x': '=x' is not NAME=value");
  CHECK_STR(name_of("/CN=a/"), "malformed subject '/CN=a/': '' is not NAME=value");
  CHECK_STR(name_of("/XX=1/CN=a"), "malformed subject '/XX=1/CN=a': unknown attribute 'XX'");
  CHECK_STR(name_of("CN=a+UID=b"), "malformed subject 'CN=a+UID=b': multi-valued RDNs ('+') are not supported");
  CHECK_STR(name_of("/C=NLD/CN=x"), "malformed subject '/C=NLD/CN=x': bad value for C: string too long");
  CHECK(e.code != 0);
  char many[65 * 5 + 1] = "";
  for (int i = 0; i < 65; i++)
    strcat(many, "/O=x");
  CHECK(strstr(name_of(many), "more than 64 attributes") != NULL);
  CHECK(ERR_peek_error() == 0);
}

/* A self-signed EC certificate (CN=test, CA:TRUE, valid to 2126) and its
** key, PKCS#8 encrypted with the password "pw", as openssl wrote them. */
static const char CERT_PEM[] =
  "-----BEGIN CERTIFICATE-----\n"
  "MIIBdTCCARugAwIBAgIUd2XYpZvp/DeauJp5LDzmkZUhqZEwCgYIKoZIzj0EAwIw\n"
  "DzENMAsGA1UEAwwEdGVzdDAgFw0yNjExMjMxNTIxNTJaGA8yMTI2MTAzMDE1MjE1\n"
  "MlowDzENMAsGA1UEAwwEdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABL/u\n"
  "UPcJAPuDUvovjhJYWnzN4/MvLUDV1UyjM4kHlNKhMgCqbIS00JoU+VxHgecD4S7Z\n"
  "fcDDiFfxsHkQk65iOjWjUzBRMB0GA1UdDgQWBBRGKtPTz5zSGw9cX/UGb7oF9nC/\n"
  "zDAfBgNVHSMEGDAWgBRGKtPTz5zSGw9cX/UGb7oF9nC/zDAPBgNVHRMBAf8EBTAD\n"
  "AQH/MAoGCCqGSM49BAMCA0gAMEUCIBAjXArpZSH4taJVAvmwj4E5JHcGOjic9dBM\n"
  "vuGXn7IQAiEArBT979Bs+SKQuafSd6GYPuokF0TBpqoCkgFZ0Olj10Y=\n"
  "-----END CERTIFICATE-----\n";

static const char KEY_PEM[] =
  "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
  "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgk/K6THxAd9QICA+gw\n"
  "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEBQGLk+jGYKNnkkxpxqPuk8EgZBT\n"
  "CjK7g9Nj/JrJ3V7+EAd6QGc2IcGkcG1OXSjVpjFs4r9dFTM76WPZxqk+Zcu7bW1E\n"
  "nTA7n9CUNs4OWqytmz38+uZVePgDMSWgJK5S7CzRdLzW2zm2dLSOhZvMRe17LW1K\n"
  "49BHUCau+5TQ0Og+xSnl1CoG5tqmAYk1cGALuj/qMhEVwlKISqpuxWRihDbmlsQ=\n"
  "-----END ENCRYPTED PRIVATE KEY-----\n";

static const unsigned char *u (const char *s) { return (const unsigned char *)s; }

static void test_certs (const char *pem) {
  STACK_OF(X509) *sk = pl_load_certs(u(pem), strlen(pem), &e);
  CHECK(sk != NULL && sk_X509_num(sk) == 1);
  unsigned char *der = NULL;
  int n = i2d_X509(sk_X509_value(sk, 0), &der);
  sk_X509_pop_free(sk, X509_free);

  sk = pl_load_certs(der, (size_t)n, &e);  /* DER */
  CHECK(sk != NULL && sk_X509_num(sk) == 1);
  sk_X509_pop_free(sk, X509_free);
  CHECK(pl_load_certs(der, (size_t)n - 1, &e) == NULL);
  CHECK(strncmp(e.msg, "not a certificate (DER): ", 25) == 0);
  unsigned char *longer = malloc((size_t)n + 5);
  memcpy(longer, der, (size_t)n);
  memcpy(longer + n, "junk!", 5);
  sk = pl_load_certs(longer, (size_t)n + 5, &e);  /* trailing bytes: ignored, as openssl x509 does */
  CHECK(sk != NULL && sk_X509_num(sk) == 1);
  sk_X509_pop_free(sk, X509_free);
  free(longer);
  OPENSSL_free(der);

  /* a TRUSTED CERTIFICATE block (openssl x509 -trustout) reads as its certificate */
  X509 *x = NULL;
  sk = pl_load_certs(u(pem), strlen(pem), &e);
  x = sk_X509_value(sk, 0);
  X509_add1_trust_object(x, OBJ_nid2obj(NID_server_auth));
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_AUX(b, x);
  char *aux;
  long auxlen = BIO_get_mem_data(b, &aux);
  CHECK(strncmp(aux, "-----BEGIN TRUSTED CERTIFICATE-----", 35) == 0);
  STACK_OF(X509) *t = pl_load_certs(u(aux), (size_t)auxlen, &e);
  CHECK(t != NULL && sk_X509_num(t) == 1 && X509_cmp(sk_X509_value(t, 0), x) == 0);
  sk_X509_pop_free(t, X509_free);
  BIO_free(b);
  sk_X509_pop_free(sk, X509_free);

  size_t len = strlen(pem);
  char *two = malloc(2 * len + 20);
  sprintf(two, "text\n%s\n%s", pem, pem);  /* a bundle, with text around */
  sk = pl_load_certs(u(two), strlen(two), &e);
  CHECK(sk != NULL && sk_X509_num(sk) == 2);
  sk_X509_pop_free(sk, X509_free);
  sprintf(two, "%s%s", pem, pem);
  two[len + 40] = '!';  /* break the second block */
  CHECK(pl_load_certs(u(two), strlen(two), &e) == NULL);
  CHECK_STR(e.msg, "not a certificate (number 2 in the PEM text): bad base64 decode");
  free(two);

  CHECK(pl_load_certs(u(""), 0, &e) == NULL);
  CHECK_STR(e.msg, "not a certificate: empty input");
  CHECK(pl_load_certs(u("hello\n"), 6, &e) == NULL);
  CHECK_STR(e.msg, "not a certificate: neither PEM nor DER");
  const char *pub = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  CHECK(pl_load_certs(u(pub), strlen(pub), &e) == NULL);
  CHECK_STR(e.msg, "not a certificate: no CERTIFICATE block in the PEM text");
  CHECK(ERR_peek_error() == 0);
}

static void test_keys (const char *enc) {
  size_t len = strlen(enc);
  EVP_PKEY *k = pl_load_key(u(enc), len, "pw", &e);
  CHECK(k != NULL);
  CHECK(pl_load_key(u(enc), len, NULL, &e) == NULL);
  CHECK_STR(e.msg, "the private key is encrypted: a password is needed");
  CHECK(pl_load_key(u(enc), len, "wrong", &e) == NULL);
  CHECK(strncmp(e.msg, "wrong password for the private key: ", 36) == 0);
  CHECK(e.decrypt && e.code != 0);

  /* encrypted PKCS#8 DER */
  BIO *b = BIO_new(BIO_s_mem());
  i2d_PKCS8PrivateKey_bio(b, k, EVP_aes_256_cbc(), NULL, 0, NULL, "pw");
  char *data;
  long n = BIO_get_mem_data(b, &data);
  EVP_PKEY *back = pl_load_key(u(data), (size_t)n, "pw", &e);
  CHECK(back != NULL && EVP_PKEY_eq(back, k) == 1);
  EVP_PKEY_free(back);
  CHECK(pl_load_key(u(data), (size_t)n, NULL, &e) == NULL);
  CHECK_STR(e.msg, "the private key is encrypted: a password is needed");
  CHECK(pl_load_key(u(data), (size_t)n, "wrong", &e) == NULL);
  CHECK(strncmp(e.msg, "wrong password for the private key: ", 36) == 0);
  BIO_free(b);

  /* plain DER */
  unsigned char *der = NULL;
  int dn = i2d_PrivateKey(k, &der);
  back = pl_load_key(der, (size_t)dn, NULL, &e);
  CHECK(back != NULL && EVP_PKEY_eq(back, k) == 1);
  EVP_PKEY_free(back);
  OPENSSL_free(der);
  EVP_PKEY_free(k);

  const char *cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  CHECK(pl_load_key(u(cert), strlen(cert), NULL, &e) == NULL);
  CHECK_STR(e.msg, "not a private key: no PRIVATE KEY block in the PEM text");
  CHECK(pl_load_key(u("key"), 3, NULL, &e) == NULL);
  CHECK_STR(e.msg, "not a private key: neither PEM nor DER");
  CHECK(pl_load_csr(u("\x30\x03\x02\x01\x00"), 5, &e) == NULL);
  CHECK(strncmp(e.msg, "not a certificate request (DER): ", 33) == 0);
  CHECK(pl_load_csr(u(cert), strlen(cert), &e) == NULL);
  CHECK_STR(e.msg, "not a certificate request: no CERTIFICATE REQUEST block in the PEM text");
  CHECK(ERR_peek_error() == 0);
}

/* The key is the certificate's. */
static void test_pair (void) {
  STACK_OF(X509) *sk = pl_load_certs(u(CERT_PEM), strlen(CERT_PEM), &e);
  EVP_PKEY *k = pl_load_key(u(KEY_PEM), strlen(KEY_PEM), "pw", &e);
  CHECK(sk != NULL && k != NULL && EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(sk, 0)), k) == 1);
  sk_X509_pop_free(sk, X509_free);
  EVP_PKEY_free(k);
}

int main (void) {
  test_names();
  test_certs(CERT_PEM);
  test_keys(KEY_PEM);
  test_pair();
  return check_done();
}
