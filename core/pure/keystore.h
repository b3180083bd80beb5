/*
** keystore.h: Java keystores, JKS and PKCS#12, read and written without a
** JVM and with no Lua in them (used by lkeystore.c, tested by
** tests/c/test_keystore.c, fuzzed by tests/fuzz/fuzz_jks.c and fuzz_pkcs12.c).
**
** A store is a list of entries. Trusted certificates are what myseal adds and
** removes; private-key entries (and, in PKCS#12, certificate bags Java does
** not trust) are kept as the bytes they were read as and written back
** unchanged. Aliases are UTF-8 here, lower-cased (ASCII) as the JDK does.
*/
#ifndef MYSEAL_KEYSTORE_H
#define MYSEAL_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

enum ks_type { KS_AUTO = 0, KS_JKS = 1, KS_PKCS12 = 2 };

enum ks_kind {
  KS_KEY = 1,         /* a private key with its chain: raw, kept as read */
  KS_TRUSTED = 2,     /* a trusted certificate: der */
  KS_CERT = 3         /* PKCS#12 only: a certificate bag without Java's trust
                         attribute (openssl pkcs12 -export -nokeys): raw */
};

typedef struct ks_entry {
  enum ks_kind kind;
  char *alias;
  int64_t date_ms;          /* JKS creation date; PKCS#12 has none (0) */
  unsigned char *der;       /* KS_TRUSTED and KS_CERT: the certificate */
  size_t der_len;
  unsigned char *raw;       /* KS_KEY and KS_CERT: the bytes to write back */
  size_t raw_len;
} ks_entry;

typedef struct ks_store {
  enum ks_type type;
  int version;              /* JKS: 1 or 2 as read (0: new, written as 2). A version 1
                               store is written as version 1: its key entries have no
                               certificate types, and they are kept byte for byte. */
  ks_entry *e;
  size_t n, cap;
} ks_store;

/* Reads a store (type KS_AUTO: JKS by its magic, else PKCS#12). 0, or -1
** with a message in err: a wrong password is always an error. */
int ks_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
             enum ks_type type, char *err, size_t errlen);

/* Writes the store as its type into a new malloc'd buffer. 0, or -1. */
int ks_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
             char *err, size_t errlen);

/* The index of alias (compared lower-cased), or -1. */
long ks_find (const ks_store *s, const char *alias);

/* Adds (or, with replace, replaces) a trusted certificate. 0; EEXIST when
** the alias is taken and replace is 0; EINVAL for an empty alias; ENOMEM. */
int ks_add_trusted (ks_store *s, const char *alias, const unsigned char *der, size_t len,
                    int64_t date_ms, int replace);

/* Removes an entry; 0 or ENOENT. */
int ks_remove (ks_store *s, const char *alias);

void ks_free (ks_store *s);

#endif
