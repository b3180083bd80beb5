/*
** pkiload.h: reading keys, certificates and names with OpenSSL, with no Lua
** in them (used by lpki.c, fuzzed by tests/fuzz/fuzz_pki_load.c).
**
** Each function returns its object, or NULL with a message in err (OpenSSL's
** reason included) and the OpenSSL error queue emptied.
*/
#ifndef MYSEAL_PKILOAD_H
#define MYSEAL_PKILOAD_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* Writes "what: reasons" into err and empties OpenSSL's error queue; returns
** the last OpenSSL reason code (0 when the queue was empty). */
int pl_error (char *err, size_t errlen, const char *what);

/* Every certificate in data: PEM (one or more blocks, other text ignored) or
** a single DER certificate. The stack is the caller's; it is never empty. */
STACK_OF(X509) *pl_load_certs (const unsigned char *data, size_t len, char *err, size_t errlen);

/* A private key, PEM (PKCS#8, PKCS#1, SEC1; encrypted when pass is given) or
** DER. pass may be NULL; a key that needs one is then an error. */
EVP_PKEY *pl_load_key (const unsigned char *data, size_t len, const char *pass,
                       char *err, size_t errlen);

/* A certificate signing request, PEM or DER. */
X509_REQ *pl_load_csr (const unsigned char *data, size_t len, char *err, size_t errlen);

/* A distinguished name from OpenSSL's one-line form "/C=NL/O=Org/CN=name" or
** the comma form "CN=name, O=Org, C=NL" (RFC 2253 order: most specific
** first). Backslash escapes the next character. Known attribute names
** only; empty values and empty names are refused. */
X509_NAME *pl_parse_name (const char *text, char *err, size_t errlen);

#endif
