/*
** pkiload.h: reading keys, certificates, requests and names with OpenSSL,
** with no Lua in them (used by lpki.c, fuzzed by tests/fuzz/fuzz_pki_load.c).
**
** Each reader returns its object, or NULL with the reason in *e (OpenSSL's
** reasons included) and OpenSSL's error queue emptied. No reader prompts or
** calls back into its caller: a key's password is passed in as a string.
*/
#ifndef MYSEAL_PKILOAD_H
#define MYSEAL_PKILOAD_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct pl_err {
  int code;        /* OpenSSL's last reason code (ERR_GET_REASON), 0 when the reason is ours */
  int decrypt;     /* one of the reasons was a failed decryption (a wrong password) */
  char msg[768];   /* "what: reason; reason" */
} pl_err;

/* Writes "what: reasons" into e->msg and empties OpenSSL's error queue;
** sets e->decrypt and e->code, the last OpenSSL reason (0 when the queue was
** empty), and returns the code. */
int pl_error (pl_err *e, const char *what);

/* Every certificate in data, read as openssl x509 reads them: PEM (one or
** more CERTIFICATE or TRUSTED CERTIFICATE blocks, other blocks and text in
** between ignored; a TRUSTED CERTIFICATE keeps its trust settings, which
** verification then honours) or a single DER certificate (bytes after it
** ignored). The stack is the caller's; it is never empty. */
STACK_OF(X509) *pl_load_certs (const unsigned char *data, size_t len, pl_err *e);

/* A private key, PEM (PKCS#8, PKCS#1, SEC1; encrypted when pass is given) or
** DER (PKCS#8, also encrypted, PKCS#1, SEC1). pass may be NULL; a key that
** needs one is then an error, as is a wrong one. */
EVP_PKEY *pl_load_key (const unsigned char *data, size_t len, const char *pass, pl_err *e);

/* A certificate signing request, PEM or DER. */
X509_REQ *pl_load_csr (const unsigned char *data, size_t len, pl_err *e);

/* A distinguished name from OpenSSL's one-line form "/C=NL/O=Org/CN=name"
** (what X509_NAME_oneline writes: "\xHH" is a byte, so non-ASCII names
** read back) or the RFC 2253 comma form "CN=name,O=Org,C=NL" (most specific
** first; "\HH" is a byte). A backslash otherwise escapes the next character.
** Known attribute names only; empty names or values, and multi-valued RDNs
** ("+" in the comma form), are refused. */
X509_NAME *pl_parse_name (const char *text, pl_err *e);

#endif
