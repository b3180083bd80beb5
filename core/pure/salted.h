/*
** salted.h: OpenSSL's password-encrypted "Salted__" format, exactly as
** `openssl enc -aes-256-cbc -md sha1 -pass file:K` writes and reads it (no
** -pbkdf2): "Salted__", an 8-byte salt, then AES-256-CBC with PKCS#7
** padding under the key and IV that EVP_BytesToKey makes from the password
** and the salt with SHA-1 and one iteration. MariaDB's file_key_management
** plugin reads its encrypted key file in this format. No Lua in here (used by
** lpki.c, tested by tests/c/test_salted.c, fuzzed by tests/fuzz/fuzz_salted.c).
*/
#ifndef MYSEAL_SALTED_H
#define MYSEAL_SALTED_H

#include <stddef.h>

/* Encrypts data with pass (passlen bytes). salt: 8 bytes, or NULL for 8
** random ones (tests pass their own). 0 and a new buffer in *out (free it
** with sa_free), or -1 with the reason in err. */
int sa_encrypt (const unsigned char *data, size_t len, const char *pass, size_t passlen,
                const unsigned char *salt, unsigned char **out, size_t *outlen,
                char *err, size_t errlen);

/* Decrypts what sa_encrypt or openssl enc wrote. 0 and the plaintext in *out
** (free it with sa_free: it wipes), or -1 with the reason in err and *code
** set: EINVAL for data that is not in the format or is cut short, else
** OpenSSL's reason code (a wrong password: bad decrypt). */
int sa_decrypt (const unsigned char *data, size_t len, const char *pass, size_t passlen,
                unsigned char **out, size_t *outlen, int *code, char *err, size_t errlen);

/* Wipes and frees a buffer sa_encrypt or sa_decrypt returned. */
void sa_free (unsigned char *buf, size_t len);

#endif
