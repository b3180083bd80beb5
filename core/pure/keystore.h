/*
** keystore.h: Java keystores, JKS and PKCS#12, read and written without a
** JVM and with no Lua in them (used by lkeystore.c, tested by
** tests/c/test_keystore.c, fuzzed by tests/fuzz/fuzz_jks.c and fuzz_pkcs12.c).
**
** A store is a list of entries, read as the JDK reads them. Trusted
** certificates are what myseal adds and removes; everything else (private
** keys with their chains, secret keys, certificates Java does not trust,
** bags of other kinds, unknown attributes) is kept as the bytes it was read
** as and written back unchanged. Aliases are UTF-8, keyed lower-cased as the
** JDK keys them (jdkcase.h); a PKCS#12 friendlyName keeps the case it was
** written with, as keytool keeps it.
*/
#ifndef MYSEAL_KEYSTORE_H
#define MYSEAL_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "notes.h"

enum ks_type { KS_AUTO = 0, KS_JKS = 1, KS_PKCS12 = 2 };

enum ks_kind {
  KS_KEY = 1,         /* a private key (with its certificates): kept as read */
  KS_TRUSTED = 2,     /* a trusted certificate */
  KS_CERT = 3,        /* PKCS#12: a certificate bag without Java's trust attribute and
                         without a key of its own (openssl pkcs12 -export -nokeys) */
  KS_SECRET = 4,      /* PKCS#12: a secret key (keytool -genseckey) */
  KS_OTHER = 5        /* PKCS#12: a bag of a kind the JDK does not read (CRL, keyBag, ...) */
};

/* PKCS#12: one SafeBag as it was read. */
typedef struct ks_bag {
  unsigned char *der;
  size_t len;
  size_t safe;              /* the authenticated safe it was in (ks_store.safes) */
  size_t order;             /* its place among all the bags of the file */
} ks_bag;

typedef struct ks_entry {
  enum ks_kind kind;
  char *alias;              /* the JDK's key: the name lower-cased ("" for an entry without one) */
  char *name;               /* the name as written (JKS alias, PKCS#12 friendlyName), or NULL */
  int listed;               /* keytool lists it (it lists trusted, key and secret entries) */
  int shadowed;             /* a later entry has the same alias: the JDK sees that one only */
  int64_t date_ms;          /* JKS creation date; PKCS#12 has none (0) */
  unsigned char *der;       /* the certificate (trusted and PKCS#12 certificate entries, and a
                               PKCS#12 key's own certificate when it has one) */
  size_t der_len;
  unsigned char *raw;       /* JKS key entries: the bytes after the date */
  size_t raw_len;
  ks_bag *bags;             /* PKCS#12: the bags read for this entry (none: a new one) */
  size_t nbags;
} ks_entry;

typedef struct ks_store {
  enum ks_type type;
  int version;              /* JKS: 1 or 2 as read (0: new, written as 2). A version 1
                               store is written as version 1: its key entries have no
                               certificate types, and they are kept byte for byte. */
  ks_entry *e;
  size_t n, cap;
  int *safes;               /* PKCS#12: per authenticated safe read, 1 when it was encrypted */
  size_t nsafes;
  nt_list warn;             /* how the JDK reads this store differently from what it holds */
  unsigned char pass_tag[32];  /* HMAC of the password the store was read with (keys and
                                  secret keys are protected by it): see ks_save */
  unsigned char pass_salt[16];
  int has_tag;
} ks_store;

/* Reads a store (type KS_AUTO: JKS by its magic, else PKCS#12). 0, or -1
** with a message in err: a wrong password is always an error. Legacy
** PKCS#12 (RC2-40, 3DES: older JDKs' and OpenSSL's default) is read with
** OpenSSL's legacy provider. */
int ks_load (ks_store *s, const unsigned char *data, size_t len, const char *password,
             enum ks_type type, char *err, size_t errlen);

/* Writes the store as its type into a new malloc'd buffer. PKCS#12 is
** written as keytool 17 writes it (PBES2 AES-256-CBC, HMAC-SHA-256 MAC)
** around the bags kept as read. A store holding keys must be written with
** the password it was read with (the keys stay protected by that one). 0,
** or -1 with a message in err. */
int ks_save (const ks_store *s, const char *password, unsigned char **out, size_t *len,
             char *err, size_t errlen);

/* The index of the entry the JDK finds for alias (compared lower-cased),
** or -1. */
long ks_find (const ks_store *s, const char *alias);

/* Adds (or, with replace, replaces) a trusted certificate. 0; EEXIST when
** the alias is taken and replace is 0; EINVAL for an empty alias or one that
** is not UTF-8; ENOMEM. */
int ks_add_trusted (ks_store *s, const char *alias, const unsigned char *der, size_t len,
                    int64_t date_ms, int replace);

/* Removes the entry (and earlier ones it shadows) with that alias; 0 or ENOENT. */
int ks_remove (ks_store *s, const char *alias);

void ks_free (ks_store *s);

#endif
