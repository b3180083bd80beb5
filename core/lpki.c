/*
** lpki.c: the pki module, over OpenSSL 3: keys, a CA, certificate requests,
** server and client certificates with the extensions MySQL, MariaDB and Java
** clients need, reading certificates, and verifying chains and host names.
** The readers (PEM/DER, names) are pure C in core/pure/pkiload.c.
**
** Keys (myseal.pki.Key)
**   pki.genkey{ type = "rsa", bits = 2048..8192 (2048) }
**   pki.genkey{ type = "ec", curve = "P-256" | "P-384" (P-256) }
**   pki.load_key(pem_der_or_path [, password]) (PKCS#8, PKCS#1, SEC1; encrypted)
**   key:pem([{ password = }]) -> PKCS#8 PEM, AES-256-CBC (PBKDF2) with a password
**   key:save(path [, { password =, mode = 0600 }]) -> true: THE way a private
**       key reaches a file: created with its mode (0600; group-readable 0640
**       at most) before the first byte, written whole, renamed into place
**   key:public_pem(), key:type() -> "rsa" | "ec", key:bits(), key:curve() -> "P-256" | nil
** Certificates (myseal.pki.Certificate)
**   pki.self_signed{ key, subject, days = 3650, ca = true, path_len }
**   pki.csr{ key, subject, san } -> request (myseal.pki.Request: :pem(), :subject())
**   pki.load_cert(pem_der_or_path) -> cert, or a list when the PEM holds several
**   pki.load_certs(pem_der_or_path) -> { cert, ... } always
**   pki.load_csr(pem_der_or_path) -> request
**   ca_cert:sign{ ca_key, csr | public_key, subject, days = 825,
**                 usage = "server" | "client" | "ca", san = { name | ip, ... }, path_len }
**   cert:subject([format]), cert:issuer([format]): "oneline" (default: the
**       "/C=NL/CN=x" form MySQL's REQUIRE SUBJECT/ISSUER compares) or "rfc2253"
**   cert:not_before(), cert:not_after() (epoch), cert:days_left([now]) (nil, msg
**       for a date that is not a valid ASN.1 time),
**   cert:serial() (hex), cert:san() -> { "db.example.org", "10.0.0.5", "::1" } (DNS
**       names and IP addresses), cert:alt_names() -> every subjectAltName entry,
**       typed: { { type = "dns" | "ip" | "email" | "uri" | "dirname" | "rid" |
**       "othername" | "x400" | "ediparty", value = text, oid =, der = }, ... },
**   cert:fingerprint([digest = "sha256"]) -> "AB:CD:..", cert:is_ca(),
**   cert:usage() -> { key = {..}, extended = {..} }, cert:pem(), cert:der(),
**   cert:matches_key(key), cert == other, tostring(cert)
**   pki.verify(cert, { trusted = {..}, untrusted = {..}, hostname = name | ip,
**              purpose = "server" | "client", at = epoch }) -> true
** Other
**   pki.digest(data [, alg = "sha256"]) -> hex, pki.random(n) -> n bytes
**   pki.salted_encrypt(data, password) -> bytes, pki.salted_decrypt(bytes, password)
**       -> data: OpenSSL's "Salted__" format, as `openssl enc -aes-256-cbc -md sha1
**       -pass file:K` writes and reads it (EVP_BytesToKey, SHA-1, one iteration, a
**       random 8-byte salt; no -pbkdf2): MariaDB's encrypted key file. The password
**       is the bytes openssl reads from K: its first line, without the newline.
** Every object has :close() (also __gc and __close); a closed one says so.
**
** Subjects are "/C=NL/O=Org/CN=name" or "CN=name,O=Org,C=NL" (see
** pkiload.h). What is made: version 3, a random 159-bit serial, SHA-256,
** notBefore 5 minutes back, basicConstraints (critical; CA:TRUE and pathlen
** on CAs), keyUsage (critical), extendedKeyUsage serverAuth or clientAuth on
** leaves a CA signs, subjectAltName (DNS names and IPv4/IPv6 addresses told
** apart), subject and authority key identifiers.
**
** Failures: a caller's mistake (wrong types, unknown usage, a closed object,
** a malformed SAN entry) raises; bad input (garbage PEM, a wrong password, a
** mismatched or too small key, an unknown curve, a malformed subject) returns
** nil, message (OpenSSL's reasons), code (OpenSSL's reason code, an errno,
** or the X509_V_ERR code for pki.verify). Arguments are checked before any
** OpenSSL object exists, so a Lua error never leaks one; passwords reach
** OpenSSL as strings, never through a callback into Lua.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "pkiload.h"
#include "salted.h"
#include "sysutil.h"

#define KEY_MT "myseal.pki.Key"
#define CERT_MT "myseal.pki.Certificate"
#define REQ_MT "myseal.pki.Request"

/* Certificates start this long before they are made: clocks disagree. */
#define BACKDATE_SECONDS 300

typedef struct pkey { EVP_PKEY *k; } pkey;
typedef struct pcert { X509 *x; } pcert;
typedef struct preq { X509_REQ *r; } preq;



/* --- userdata ------------------------------------------------------------ */

static pkey *new_key (lua_State *L) {
  pkey *p = lua_newuserdatauv(L, sizeof(pkey), 0);
  p->k = NULL;
  luaL_setmetatable(L, KEY_MT);
  return p;
}

static pcert *new_cert (lua_State *L) {
  pcert *p = lua_newuserdatauv(L, sizeof(pcert), 0);
  p->x = NULL;
  luaL_setmetatable(L, CERT_MT);
  return p;
}

static preq *new_req (lua_State *L) {
  preq *p = lua_newuserdatauv(L, sizeof(preq), 0);
  p->r = NULL;
  luaL_setmetatable(L, REQ_MT);
  return p;
}

static EVP_PKEY *check_key (lua_State *L, int i) {
  pkey *p = luaL_checkudata(L, i, KEY_MT);
  if (p->k == NULL)
    luaL_error(L, "attempt to use a closed key");
  return p->k;
}

X509 *myseal_pki_checkcert (lua_State *L, int i) {
  pcert *p = luaL_checkudata(L, i, CERT_MT);
  if (p->x == NULL)
    luaL_error(L, "attempt to use a closed certificate");
  return p->x;
}

void myseal_pki_pushcert (lua_State *L, X509 *x) {
  /* luaL_newmetatable may not have run yet when another module asks first */
  luaL_requiref(L, "pki", luaopen_pki, 0);
  lua_pop(L, 1);
  pcert *p = lua_newuserdatauv(L, sizeof(pcert), 0);
  p->x = x;
  luaL_setmetatable(L, CERT_MT);
}

static X509_REQ *check_req (lua_State *L, int i) {
  preq *p = luaL_checkudata(L, i, REQ_MT);
  if (p->r == NULL)
    luaL_error(L, "attempt to use a closed certificate request");
  return p->r;
}

static int key_close (lua_State *L) {
  pkey *p = luaL_checkudata(L, 1, KEY_MT);
  EVP_PKEY_free(p->k);
  p->k = NULL;
  return 0;
}

static int cert_close (lua_State *L) {
  pcert *p = luaL_checkudata(L, 1, CERT_MT);
  X509_free(p->x);
  p->x = NULL;
  return 0;
}

static int req_close (lua_State *L) {
  preq *p = luaL_checkudata(L, 1, REQ_MT);
  X509_REQ_free(p->r);
  p->r = NULL;
  return 0;
}


/* --- small helpers ------------------------------------------------------ */

/* The bytes to load: the argument itself when it is PEM or DER, else the
** contents of the file it names. Pushes nothing; returns NULL with the
** failure shape pushed (3 values) when the file cannot be read. */
static const unsigned char *input_bytes (lua_State *L, int i, size_t *len, int *pushed) {
  const char *s = luaL_checklstring(L, i, len);
  *pushed = 0;
  int is_data = strstr(s, "-----BEGIN ") != NULL || (*len > 0 && (unsigned char)s[0] == 0x30 &&
                                                      memchr(s, '\0', *len) != NULL);
  if (is_data || *len == 0 || memchr(s, '\n', *len) != NULL)
    return (const unsigned char *)s;
  int err = myseal_push_file(L, s);
  if (err) {
    *pushed = myseal_fail_errno(L, s, err);
    return NULL;
  }
  lua_replace(L, i);  /* keep the bytes alive in the argument's slot */
  return (const unsigned char *)lua_tolstring(L, i, len);
}

/* nil, message, code from a pkiload failure: OpenSSL's reason code when
** OpenSSL gave the reason, else EINVAL. */
static int fail_pl (lua_State *L, const pl_err *e) {
  return myseal_fail(L, e->msg, e->code != 0 ? e->code : EINVAL);
}

/* nil, "what: OpenSSL's reasons", reason code (OpenSSL's queue emptied). */
static int fail_ossl (lua_State *L, const char *what) {
  pl_err e;
  pl_error(&e, what);
  return fail_pl(L, &e);
}

/* Pushes what was written into memory BIO b (ok: the write succeeded) and
** frees b; on failure returns the failure shape naming what. */
static int push_bio (lua_State *L, BIO *b, int ok, const char *what) {
  if (b == NULL || !ok) {
    BIO_free(b);
    return fail_ossl(L, what);
  }
  char *data;
  long n = BIO_get_mem_data(b, &data);
  lua_pushlstring(L, data, (size_t)n);
  BIO_free(b);
  return 1;
}

/* An ASN.1 time as epoch seconds: 1, or 0 when it is not a valid time
** (openssl x509 prints "Bad time value" then). */
static int asn1_epoch (const ASN1_TIME *t, time_t *out) {
  struct tm tm;
  int ok = t != NULL && ASN1_TIME_check(t) == 1 && ASN1_TIME_to_tm(t, &tm) == 1;
  ERR_clear_error();
  if (ok)
    *out = timegm(&tm);
  return ok;
}

/* Pushes a certificate's notBefore (which = "notBefore") or notAfter as
** epoch seconds and returns 1, or the failure shape (3) for a time that is
** not valid, showing its text. */
static int push_cert_time (lua_State *L, const ASN1_TIME *t, const char *which) {
  time_t when;
  if (asn1_epoch(t, &when)) {
    lua_pushinteger(L, (lua_Integer)when);
    return 1;
  }
  const char *text = t != NULL ? (const char *)ASN1_STRING_get0_data(t) : NULL;
  int len = t != NULL ? ASN1_STRING_length(t) : 0;
  lua_pushfstring(L, "the certificate's %s is not a valid time ('", which);
  for (int i = 0; i < len && i < 40; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 0x20 && c < 0x7f)
      lua_pushfstring(L, "%c", c);
    else
      lua_pushfstring(L, "\\x%02X", (unsigned int)c);
  }
  lua_pushliteral(L, "')");
  lua_concat(L, len < 40 ? len + 2 : 42);
  return myseal_fail(L, lua_tostring(L, -1), EINVAL);
}

/* An optional string field of the table at t (raises on a wrong type). */
static const char *field_string (lua_State *L, int t, const char *name, const char *dflt) {
  lua_getfield(L, t, name);
  const char *s = dflt;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "'%s' must be a string, not a %s", name, luaL_typename(L, -1));
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  return s;
}

static lua_Integer field_int (lua_State *L, int t, const char *name, lua_Integer dflt,
                              lua_Integer lo, lua_Integer hi) {
  lua_getfield(L, t, name);
  lua_Integer v = dflt;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1))
      luaL_error(L, "'%s' must be an integer, not a %s", name, luaL_typename(L, -1));
    v = lua_tointeger(L, -1);
    if (v < lo || v > hi)
      luaL_error(L, "'%s' must be from %d to %d", name, (int)lo, (int)hi);
  }
  lua_pop(L, 1);
  return v;
}

/* The userdata in field name of table t, checked against tname (or nil). */
static void *field_udata (lua_State *L, int t, const char *name, const char *tname, int required) {
  lua_getfield(L, t, name);
  void *p = NULL;
  if (!lua_isnil(L, -1)) {
    p = luaL_testudata(L, -1, tname);
    if (p == NULL)
      luaL_error(L, "'%s' must be a %s, not a %s", name, tname, luaL_typename(L, -1));
  }
  else if (required)
    luaL_error(L, "'%s' is required", name);
  lua_pop(L, 1);
  return p;
}

/* Checks a san = { "name", "10.0.0.5", ... } list and pushes its OpenSSL
** form "DNS:name,IP:10.0.0.5", or pushes nil when there is none. */
static void push_san_conf (lua_State *L, int t) {
  lua_getfield(L, t, "san");
  if (lua_isnil(L, -1))
    return;
  if (!lua_istable(L, -1))
    luaL_error(L, "'san' must be a list of host names and IP addresses");
  int list = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = luaL_len(L, list);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    const char *s = lua_tostring(L, -1);
    if (s == NULL || *s == '\0')
      luaL_error(L, "san[%d] must be a host name or an IP address", (int)i);
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);
    ERR_clear_error();
    if (ip != NULL)
      ASN1_OCTET_STRING_free(ip);
    else {
      for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.' || *c == '_' || (*c == '*' && c == s)))
          luaL_error(L, "san[%d] '%s' is neither an IP address nor a DNS name", (int)i, s);
    }
    if (i > 1)
      luaL_addchar(&b, ',');
    luaL_addstring(&b, ip != NULL ? "IP:" : "DNS:");
    luaL_addstring(&b, s);
    lua_pop(L, 1);
  }
  luaL_pushresult(&b);
  lua_remove(L, list);
  if (n == 0) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Adds an extension from its configuration text; 0 on failure. */
static int add_ext (X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
  if (ext == NULL)
    return 0;
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok;
}

/* 159 bits with the top one set: always 20 octets and positive (RFC 5280's
** limit), 158 of them from OpenSSL's CSPRNG. */
static int set_random_serial (X509 *x) {
  BIGNUM *bn = BN_new();
  int ok = bn != NULL && BN_rand(bn, 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) &&
           BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
  BN_free(bn);
  return ok;
}

static int set_validity (X509 *x, lua_Integer days) {
  time_t now = time(NULL);
  return X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_SECONDS, &now) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now) != NULL;
}

/* Refuses (nil, message) a key OpenSSL's security level 2 would reject in a
** TLS handshake ("ee key too small"), before it goes into a certificate;
** returns 0 when the key is fine. */
static int weak_key (lua_State *L, EVP_PKEY *k, const char *role) {
  if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) >= 2048)
    return 0;
  lua_pushnil(L);
  lua_pushfstring(L, "the %s is a %d-bit RSA key: at least 2048 bits are needed (OpenSSL's security "
                  "level 2 refuses smaller ones)", role, EVP_PKEY_get_bits(k));
  lua_pushinteger(L, EINVAL);
  return 3;
}

static const char *key_usage_for (EVP_PKEY *k, const char *usage) {
  if (strcmp(usage, "ca") == 0)
    return "critical,keyCertSign,cRLSign,digitalSignature";
  if (EVP_PKEY_base_id(k) == EVP_PKEY_RSA)
    return "critical,digitalSignature,keyEncipherment";
  return "critical,digitalSignature,keyAgreement";
}


/* --- keys ---------------------------------------------------------------- */

/* pki.genkey{ type = "rsa", bits = 2048 } | { type = "ec", curve = "P-256" } */
static int pki_genkey (lua_State *L) {
  if (lua_isnoneornil(L, 1))
    lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *type = field_string(L, 1, "type", "rsa");
  char msg[160];
  pkey *p;
  if (strcmp(type, "rsa") == 0) {
    lua_Integer bits = field_int(L, 1, "bits", 2048, 0, 1 << 20);
    if (bits < 2048 || bits > 8192) {
      snprintf(msg, sizeof(msg), bits < 2048
               ? "RSA keys need at least 2048 bits (OpenSSL's security level 2 refuses "
                 "smaller ones): %d asked"
               : "RSA keys of more than 8192 bits are not supported: %d asked", (int)bits);
      return myseal_fail(L, msg, EINVAL);
    }
    p = new_key(L);
    ERR_clear_error();
    p->k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
  }
  else if (strcmp(type, "ec") == 0) {
    const char *curve = field_string(L, 1, "curve", "P-256");
    const char *name = NULL;
    if (strcmp(curve, "P-256") == 0 || strcmp(curve, "prime256v1") == 0)
      name = "P-256";
    else if (strcmp(curve, "P-384") == 0 || strcmp(curve, "secp384r1") == 0)
      name = "P-384";
    if (name == NULL) {
      snprintf(msg, sizeof(msg), "unknown curve '%.60s' (P-256 or P-384)", curve);
      return myseal_fail(L, msg, EINVAL);
    }
    p = new_key(L);
    ERR_clear_error();
    p->k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", name);
  }
  else {
    snprintf(msg, sizeof(msg), "unknown key type '%.60s' (rsa or ec)", type);
    return myseal_fail(L, msg, EINVAL);
  }
  if (p->k == NULL)
    return fail_ossl(L, "cannot generate a key");
  return 1;
}

/* pki.load_key(pem_der_or_path [, password]) -> key | nil, msg, code */
static int pki_load_key (lua_State *L) {
  const char *pass = luaL_optstring(L, 2, NULL);
  size_t len;
  int pushed;
  const unsigned char *data = input_bytes(L, 1, &len, &pushed);
  if (data == NULL)
    return pushed;
  pkey *p = new_key(L);
  pl_err err;
  p->k = pl_load_key(data, len, pass, &err);
  if (p->k == NULL)
    return fail_pl(L, &err);
  return 1;
}

/* The PEM of a key (PKCS#8; AES-256-CBC when a password is given) into a
** BIO that wipes itself when freed. NULL on failure. */
static BIO *key_pem_bio (EVP_PKEY *k, const char *pass) {
  BIO *b = BIO_new(BIO_s_secmem());
  if (b == NULL)
    return NULL;
  int ok = pass ? PEM_write_bio_PKCS8PrivateKey(b, k, EVP_aes_256_cbc(), pass, (int)strlen(pass),
                                                NULL, NULL)
                : PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
  if (!ok) {
    BIO_free(b);
    return NULL;
  }
  return b;
}

static const char *opt_password (lua_State *L, int i) {
  if (lua_isnoneornil(L, i))
    return NULL;
  luaL_checktype(L, i, LUA_TTABLE);
  const char *pass = field_string(L, i, "password", NULL);
  if (pass != NULL && *pass == '\0')
    luaL_error(L, "an empty password protects nothing: leave it out");
  return pass;
}

/* key:pem{ password = } -> PKCS#8 PEM text */
static int key_pem (lua_State *L) {
  EVP_PKEY *k = check_key(L, 1);
  const char *pass = opt_password(L, 2);
  ERR_clear_error();
  BIO *b = key_pem_bio(k, pass);
  return push_bio(L, b, 1, "cannot write the private key");
}

/* key:save(path [, { password =, mode = 0600 }]) -> true | nil, msg, errno
** The one way a private key reaches a file: the file is created with its
** mode (0600 by default) before the first byte, and replaced atomically. */
static int key_save (lua_State *L) {
  myseal_gate(L, "key:save", lua_tostring(L, 2));
  EVP_PKEY *k = check_key(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *pass = opt_password(L, 3);
  lua_Integer mode = lua_istable(L, 3) ? field_int(L, 3, "mode", 0600, 0, 07777) : 0600;
  luaL_argcheck(L, (mode & 0037) == 0, 3, "a private key must not be writable by the group "
                "or readable by others (use 0600, 0640 or 0400)");
  ERR_clear_error();
  BIO *b = key_pem_bio(k, pass);
  if (b == NULL)
    return fail_ossl(L, "cannot write the private key");
  char *data;
  long n = BIO_get_mem_data(b, &data);
  int err = su_atomic_write(path, data, (size_t)n, (int)mode);
  BIO_free(b);
  if (err != 0)
    return myseal_fail_errno(L, path, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int key_public_pem (lua_State *L) {
  EVP_PKEY *k = check_key(L, 1);
  ERR_clear_error();
  BIO *b = BIO_new(BIO_s_mem());
  return push_bio(L, b, b && PEM_write_bio_PUBKEY(b, k), "cannot write the public key");
}

static const char *key_type_name (EVP_PKEY *k) {
  switch (EVP_PKEY_base_id(k)) {
    case EVP_PKEY_RSA: return "rsa";
    case EVP_PKEY_EC: return "ec";
    case EVP_PKEY_ED25519: return "ed25519";
    default: return "other";
  }
}

static int key_type (lua_State *L) {
  lua_pushstring(L, key_type_name(check_key(L, 1)));
  return 1;
}

static int key_bits (lua_State *L) {
  lua_pushinteger(L, EVP_PKEY_get_bits(check_key(L, 1)));
  return 1;
}

/* key:curve() -> "P-256" | "P-384" | nil */
static int key_curve (lua_State *L) {
  EVP_PKEY *k = check_key(L, 1);
  char name[64];
  size_t n;
  if (EVP_PKEY_base_id(k) != EVP_PKEY_EC ||
      !EVP_PKEY_get_utf8_string_param(k, "group", name, sizeof(name), &n)) {
    ERR_clear_error();
    return 0;
  }
  int nid = OBJ_sn2nid(name);
  const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
  lua_pushstring(L, nist ? nist : name);
  return 1;
}

static int key_tostring (lua_State *L) {
  pkey *p = luaL_checkudata(L, 1, KEY_MT);
  if (p->k == NULL)
    lua_pushliteral(L, "key (closed)");
  else
    lua_pushfstring(L, "%s %d-bit key", key_type_name(p->k), EVP_PKEY_get_bits(p->k));
  return 1;
}


/* --- certificates: loading and reading ------------------------------------ */

/* A stack of certificates on its way into userdata: freed if Lua raises. */
#define STACK_MT "myseal.pki.CertStack"

static int stack_gc (lua_State *L) {
  STACK_OF(X509) **sk = luaL_checkudata(L, 1, STACK_MT);
  sk_X509_pop_free(*sk, X509_free);
  *sk = NULL;
  return 0;
}

/* pki.load_certs(input) -> { cert, ... } | nil, msg, code */
static int pki_load_certs (lua_State *L) {
  size_t len;
  int pushed;
  const unsigned char *data = input_bytes(L, 1, &len, &pushed);
  if (data == NULL)
    return pushed;
  STACK_OF(X509) **guard = lua_newuserdatauv(L, sizeof(*guard), 0);
  *guard = NULL;
  luaL_setmetatable(L, STACK_MT);
  pl_err err;
  *guard = pl_load_certs(data, len, &err);
  if (*guard == NULL)
    return fail_pl(L, &err);
  int n = sk_X509_num(*guard);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    pcert *p = new_cert(L);
    p->x = sk_X509_value(*guard, i);
    sk_X509_set(*guard, i, NULL);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* pki.load_cert(input) -> cert (one certificate) | { cert, ... } (a bundle) */
static int pki_load_cert (lua_State *L) {
  int n = pki_load_certs(L);
  if (n != 1)
    return n;
  if (luaL_len(L, -1) == 1)
    lua_rawgeti(L, -1, 1);
  return 1;
}

/* pki.load_csr(input) -> request | nil, msg, code */
static int pki_load_csr (lua_State *L) {
  size_t len;
  int pushed;
  const unsigned char *data = input_bytes(L, 1, &len, &pushed);
  if (data == NULL)
    return pushed;
  preq *p = new_req(L);
  pl_err err;
  p->r = pl_load_csr(data, len, &err);
  if (p->r == NULL)
    return fail_pl(L, &err);
  return 1;
}

/* Pushes a name as OpenSSL's one-line "/C=../CN=.." (what MySQL's REQUIRE
** SUBJECT and ISSUER compare) or as RFC 2253 text. */
static void push_name (lua_State *L, const X509_NAME *name, int rfc2253) {
  if (!rfc2253) {
    char *s = X509_NAME_oneline(name, NULL, 0);
    lua_pushstring(L, s ? s : "");
    OPENSSL_free(s);
    return;
  }
  BIO *b = BIO_new(BIO_s_mem());
  if (!push_bio(L, b, b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0,
                "")) {
    lua_pop(L, 3);
    lua_pushliteral(L, "");
  }
}

static int name_format (lua_State *L, int i) {
  static const char *const formats[] = {"oneline", "rfc2253", NULL};
  return luaL_checkoption(L, i, "oneline", formats);
}

static int cert_subject (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  push_name(L, X509_get_subject_name(x), name_format(L, 2));
  return 1;
}

static int cert_issuer (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  push_name(L, X509_get_issuer_name(x), name_format(L, 2));
  return 1;
}

/* cert:not_before() -> epoch seconds | nil, msg (not a valid time) */
static int cert_not_before (lua_State *L) {
  return push_cert_time(L, X509_get0_notBefore(myseal_pki_checkcert(L, 1)), "notBefore");
}

/* cert:not_after() -> epoch seconds | nil, msg (not a valid time) */
static int cert_not_after (lua_State *L) {
  return push_cert_time(L, X509_get0_notAfter(myseal_pki_checkcert(L, 1)), "notAfter");
}

/* cert:days_left([now]) -> whole days until notAfter (negative: expired)
** | nil, msg (notAfter is not a valid time) */
static int cert_days_left (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  lua_Integer now = luaL_optinteger(L, 2, (lua_Integer)time(NULL));
  time_t until;
  if (!asn1_epoch(X509_get0_notAfter(x), &until))
    return push_cert_time(L, X509_get0_notAfter(x), "notAfter");
  lua_Integer left = (lua_Integer)until - now;
  lua_pushinteger(L, left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
  return 1;
}

static int cert_serial (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  lua_pushstring(L, hex == NULL ? "" : strcmp(hex, "0") == 0 ? "00" : hex);  /* as openssl x509 -serial */
  OPENSSL_free(hex);
  BN_free(bn);
  return 1;
}

/* An iPAddress as text: 0 for a length that is not IPv4's or IPv6's. */
static int ip_text (const ASN1_OCTET_STRING *s, char *text, size_t size) {
  int len = ASN1_STRING_length(s);
  return (len == 4 || len == 16) &&
         inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), text, (socklen_t)size) != NULL;
}

static void push_asn1_string (lua_State *L, const ASN1_STRING *s) {
  lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

/* Pushes the DER of a GENERAL_NAME's value (names OpenSSL does not read). */
static void push_name_der (lua_State *L, const GENERAL_NAME *g) {
  unsigned char *der = NULL;
  int n = i2d_GENERAL_NAME(g, &der);
  if (n > 0)
    lua_pushlstring(L, (const char *)der, (size_t)n);
  else
    lua_pushliteral(L, "");
  OPENSSL_free(der);
  ERR_clear_error();
}

static void push_oid (lua_State *L, const ASN1_OBJECT *o) {
  char text[128];
  int n = OBJ_obj2txt(text, sizeof(text), o, 1);
  lua_pushstring(L, n > 0 && n < (int)sizeof(text) ? text : "");
}

/* The certificate's subjectAltName entries, or NULL (none, or OpenSSL cannot
** read the extension: then openssl x509 shows its bytes only). */
static GENERAL_NAMES *alt_names (X509 *x) {
  GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  ERR_clear_error();
  return names;
}

/* cert:san() -> { "db.example.org", "10.0.0.5", ... }: the DNS names and IP
** addresses only (what a TLS client matches); cert:alt_names() has them all. */
static int cert_san (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  GENERAL_NAMES *names = alt_names(x);
  lua_newtable(L);
  int k = 0;
  for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    char text[INET6_ADDRSTRLEN];
    if (g->type == GEN_DNS)
      push_asn1_string(L, g->d.dNSName);
    else if (g->type == GEN_IPADD && ip_text(g->d.iPAddress, text, sizeof(text)))
      lua_pushstring(L, text);
    else
      continue;
    lua_rawseti(L, -2, ++k);
  }
  GENERAL_NAMES_free(names);
  return 1;
}

/* cert:alt_names() -> { { type =, value = [, oid =] [, der =] }, ... }: every
** subjectAltName entry in order, typed: "dns", "ip" (text; a bad length has
** value nil and der), "email", "uri", "dirname" (the one-line "/C=../CN=.."
** form), "rid" (the OID, numeric), "othername" (oid, and value when it is a
** string, else der), "x400" and "ediparty" (der only). */
static int cert_alt_names (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  GENERAL_NAMES *names = alt_names(x);
  lua_newtable(L);
  for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    char text[INET6_ADDRSTRLEN];
    const char *type = "other";
    lua_createtable(L, 0, 3);
    switch (g->type) {
      case GEN_DNS: type = "dns"; push_asn1_string(L, g->d.dNSName); break;
      case GEN_EMAIL: type = "email"; push_asn1_string(L, g->d.rfc822Name); break;
      case GEN_URI: type = "uri"; push_asn1_string(L, g->d.uniformResourceIdentifier); break;
      case GEN_IPADD:
        type = "ip";
        if (ip_text(g->d.iPAddress, text, sizeof(text)))
          lua_pushstring(L, text);
        else {
          push_name_der(L, g);
          lua_setfield(L, -2, "der");
          lua_pushnil(L);
        }
        break;
      case GEN_DIRNAME: {
        type = "dirname";
        char *s = X509_NAME_oneline(g->d.directoryName, NULL, 0);
        lua_pushstring(L, s ? s : "");
        OPENSSL_free(s);
        break;
      }
      case GEN_RID: type = "rid"; push_oid(L, g->d.registeredID); break;
      case GEN_OTHERNAME: {
        type = "othername";
        const ASN1_TYPE *v = g->d.otherName->value;
        push_oid(L, g->d.otherName->type_id);
        lua_setfield(L, -2, "oid");
        if (v != NULL && (v->type == V_ASN1_UTF8STRING || v->type == V_ASN1_IA5STRING ||
                          v->type == V_ASN1_PRINTABLESTRING || v->type == V_ASN1_VISIBLESTRING))
          push_asn1_string(L, v->value.asn1_string);
        else {
          push_name_der(L, g);
          lua_setfield(L, -2, "der");
          lua_pushnil(L);
        }
        break;
      }
      default:
        type = g->type == GEN_X400 ? "x400" : g->type == GEN_EDIPARTY ? "ediparty" : "other";
        push_name_der(L, g);
        lua_setfield(L, -2, "der");
        lua_pushnil(L);
    }
    lua_setfield(L, -2, "value");
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_rawseti(L, -2, i + 1);
  }
  GENERAL_NAMES_free(names);
  return 1;
}

/* cert:fingerprint([alg = "sha256"]) -> "AB:CD:..." */
static int cert_fingerprint (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  const char *alg = luaL_optstring(L, 2, "sha256");
  const EVP_MD *md = EVP_get_digestbyname(alg);
  luaL_argcheck(L, md != NULL, 2, "unknown digest");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!X509_digest(x, md, digest, &n))
    return fail_ossl(L, "cannot compute the fingerprint");
  char out[3 * EVP_MAX_MD_SIZE + 1];
  for (unsigned int i = 0; i < n; i++)
    snprintf(out + 3 * i, 4, "%02X%s", digest[i], i + 1 < n ? ":" : "");
  lua_pushstring(L, out);
  return 1;
}

static int cert_is_ca (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  lua_pushboolean(L, (X509_get_extension_flags(x) & EXFLAG_CA) != 0);
  return 1;
}

/* cert:key_id() -> the subject key identifier as colon-separated hex, or nil when the
** certificate has none (a CA without one cannot give the certificates it signs an
** authority key identifier). */
static int cert_key_id (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  const ASN1_OCTET_STRING *id = X509_get0_subject_key_id(x);
  if (id == NULL) {
    lua_pushnil(L);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const unsigned char *p = ASN1_STRING_get0_data(id);
  int n = ASN1_STRING_length(id);
  for (int i = 0; i < n; i++) {
    char hex[4];
    snprintf(hex, sizeof(hex), i == 0 ? "%02X" : ":%02X", p[i]);
    luaL_addstring(&b, hex);
  }
  luaL_pushresult(&b);
  return 1;
}

/* cert:usage() -> { key = {...}, extended = {...} } as names */
static int cert_usage (lua_State *L) {
  static const struct { uint32_t bit; const char *name; } ku[] = {
    {KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
    {KU_KEY_ENCIPHERMENT, "keyEncipherment"}, {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
    {KU_KEY_AGREEMENT, "keyAgreement"}, {KU_KEY_CERT_SIGN, "keyCertSign"},
    {KU_CRL_SIGN, "cRLSign"},
  };
  static const struct { uint32_t bit; const char *name; } xku[] = {
    {XKU_SSL_SERVER, "serverAuth"}, {XKU_SSL_CLIENT, "clientAuth"},
    {XKU_CODE_SIGN, "codeSigning"}, {XKU_SMIME, "emailProtection"},
    {XKU_ANYEKU, "anyExtendedKeyUsage"},
  };
  X509 *x = myseal_pki_checkcert(L, 1);
  uint32_t flags = X509_get_extension_flags(x);
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  int k = 0;
  uint32_t bits = X509_get_key_usage(x);
  for (size_t i = 0; (flags & EXFLAG_KUSAGE) && i < sizeof(ku) / sizeof(ku[0]); i++)
    if (bits & ku[i].bit) {
      lua_pushstring(L, ku[i].name);
      lua_rawseti(L, -2, ++k);
    }
  lua_setfield(L, -2, "key");
  lua_newtable(L);
  k = 0;
  bits = X509_get_extended_key_usage(x);
  for (size_t i = 0; (flags & EXFLAG_XKUSAGE) && i < sizeof(xku) / sizeof(xku[0]); i++)
    if (bits & xku[i].bit) {
      lua_pushstring(L, xku[i].name);
      lua_rawseti(L, -2, ++k);
    }
  lua_setfield(L, -2, "extended");
  return 1;
}

static int cert_pem (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  BIO *b = BIO_new(BIO_s_mem());
  return push_bio(L, b, b && PEM_write_bio_X509(b, x), "cannot write the certificate");
}

static int cert_der (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  if (n < 0)
    return fail_ossl(L, "cannot encode the certificate");
  lua_pushlstring(L, (const char *)der, (size_t)n);
  OPENSSL_free(der);
  return 1;
}

/* cert:matches_key(key) -> boolean: is key the private half of the cert's? */
static int cert_matches_key (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  EVP_PKEY *k = check_key(L, 2);
  lua_pushboolean(L, EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1);
  ERR_clear_error();
  return 1;
}

static int cert_eq (lua_State *L) {
  X509 *a = myseal_pki_checkcert(L, 1), *b = myseal_pki_checkcert(L, 2);
  lua_pushboolean(L, X509_cmp(a, b) == 0);
  return 1;
}

static int cert_tostring (lua_State *L) {
  pcert *p = luaL_checkudata(L, 1, CERT_MT);
  if (p->x == NULL) {
    lua_pushliteral(L, "certificate (closed)");
    return 1;
  }
  time_t t;
  struct tm tm;
  char date[32] = "?";
  if (asn1_epoch(X509_get0_notAfter(p->x), &t) && gmtime_r(&t, &tm) != NULL)
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
  char *s = X509_NAME_oneline(X509_get_subject_name(p->x), NULL, 0);
  lua_pushfstring(L, "certificate %s (until %s)", s ? s : "?", date);
  OPENSSL_free(s);
  return 1;
}


/* --- making certificates --------------------------------------------------- */

/* Copies the subjectAltName a request asks for into x. */
static int copy_req_san (X509_REQ *r, X509 *x) {
  STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(r);
  int ok = 1;
  for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++) {
    X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name)
      ok = X509_add_ext(x, e, -1);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return ok;
}

/*
** Fills and signs x: version 3, a random serial, subject, issuer (issuer's
** subject, or subject itself when issuer is NULL), validity, the subject's
** public key and the extensions for usage ("server", "client" or "ca"; a
** self-signed "server" leaf gets no extendedKeyUsage), then signs with signer.
** Returns NULL, or what failed (OpenSSL's queue holds why).
*/
static const char *build_cert (X509 *x, X509 *issuer, const X509_NAME *subject,
                               EVP_PKEY *subject_key, EVP_PKEY *signer, lua_Integer days,
                               const char *usage, lua_Integer path_len, const char *san,
                               X509_REQ *csr) {
  X509V3_CTX ctx;
  char bc[64];
  int is_ca = strcmp(usage, "ca") == 0;
  if (!X509_set_version(x, 2) || !set_random_serial(x) || !X509_set_subject_name(x, subject) ||
      !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) ||
      !set_validity(x, days) || !X509_set_pubkey(x, subject_key))
    return "cannot build the certificate";
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  if (is_ca && path_len >= 0)
    snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", (int)path_len);
  else
    snprintf(bc, sizeof(bc), "critical,CA:%s", is_ca ? "TRUE" : "FALSE");
  if (!add_ext(x, &ctx, NID_basic_constraints, bc) ||
      !add_ext(x, &ctx, NID_key_usage, key_usage_for(subject_key, usage)) ||
      (!is_ca && issuer != NULL &&
       !add_ext(x, &ctx, NID_ext_key_usage, strcmp(usage, "server") == 0 ? "serverAuth" : "clientAuth")) ||
      !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
      !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
    return "cannot add the certificate's extensions";
  if (san != NULL ? !add_ext(x, &ctx, NID_subject_alt_name, san)
                  : (csr != NULL && !copy_req_san(csr, x)))
    return "cannot add the subject alternative names";
  if (X509_sign(x, signer, EVP_sha256()) <= 0)
    return "cannot sign the certificate";
  return NULL;
}

/* pki.self_signed{ key, subject, days = 3650, ca = true, path_len } */
static int pki_self_signed (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  pkey *kp = field_udata(L, 1, "key", KEY_MT, 1);
  if (kp->k == NULL)
    luaL_error(L, "attempt to use a closed key");
  const char *subject = field_string(L, 1, "subject", NULL);
  if (subject == NULL)
    luaL_error(L, "'subject' is required");
  lua_Integer days = field_int(L, 1, "days", 3650, 1, 36500);
  lua_getfield(L, 1, "ca");
  int ca = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_Integer path_len = field_int(L, 1, "path_len", -1, 0, 16);
  if (!ca && path_len >= 0)
    luaL_error(L, "'path_len' applies to a CA only");
  int weak = weak_key(L, kp->k, "key");
  if (weak)
    return weak;

  pcert *out = new_cert(L);
  pl_err err;
  X509_NAME *name = pl_parse_name(subject, &err);
  if (name == NULL)
    return fail_pl(L, &err);
  ERR_clear_error();
  X509 *x = X509_new();
  const char *what = x == NULL ? "out of memory"
    : build_cert(x, NULL, name, kp->k, kp->k, days, ca ? "ca" : "server", path_len, NULL, NULL);
  X509_NAME_free(name);
  if (what != NULL) {
    X509_free(x);
    return fail_ossl(L, what);
  }
  out->x = x;
  return 1;
}

/* pki.csr{ key, subject, san } -> request */
static int pki_csr (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  pkey *kp = field_udata(L, 1, "key", KEY_MT, 1);
  if (kp->k == NULL)
    luaL_error(L, "attempt to use a closed key");
  const char *subject = field_string(L, 1, "subject", NULL);
  if (subject == NULL)
    luaL_error(L, "'subject' is required");
  push_san_conf(L, 1);
  const char *san = lua_tostring(L, -1);
  int weak = weak_key(L, kp->k, "key");
  if (weak)
    return weak;

  preq *out = new_req(L);
  pl_err err;
  const char *what = NULL;
  X509_REQ *r = NULL;
  STACK_OF(X509_EXTENSION) *exts = NULL;
  X509_NAME *name = pl_parse_name(subject, &err);
  if (name == NULL)
    return fail_pl(L, &err);
  ERR_clear_error();
  r = X509_REQ_new();
  if (r == NULL || !X509_REQ_set_version(r, 0) || !X509_REQ_set_subject_name(r, name) ||
      !X509_REQ_set_pubkey(r, kp->k)) {
    what = "cannot build the certificate request";
    goto cleanup;
  }
  if (san != NULL) {
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
    exts = sk_X509_EXTENSION_new_null();
    if (ext == NULL || exts == NULL || !sk_X509_EXTENSION_push(exts, ext)) {
      X509_EXTENSION_free(ext);
      what = "cannot add the subject alternative names";
      goto cleanup;
    }
    if (!X509_REQ_add_extensions(r, exts)) {
      what = "cannot add the subject alternative names";
      goto cleanup;
    }
  }
  if (X509_REQ_sign(r, kp->k, EVP_sha256()) <= 0) {
    what = "cannot sign the certificate request";
    goto cleanup;
  }
  out->r = r;
  r = NULL;
cleanup:
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_NAME_free(name);
  X509_REQ_free(r);
  if (what != NULL)
    return fail_ossl(L, what);
  return 1;
}

/* ca_cert:sign{ ca_key, csr | public_key, subject, days = 825,
**               usage = "server" | "client" | "ca", san, path_len } */
static int cert_sign (lua_State *L) {
  X509 *ca = myseal_pki_checkcert(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  pkey *cakey = field_udata(L, 2, "ca_key", KEY_MT, 1);
  preq *csr = field_udata(L, 2, "csr", REQ_MT, 0);
  pkey *pub = field_udata(L, 2, "public_key", KEY_MT, 0);
  if ((csr == NULL) == (pub == NULL))
    luaL_error(L, "give exactly one of 'csr' and 'public_key'");
  if (cakey->k == NULL || (pub && pub->k == NULL) || (csr && csr->r == NULL))
    luaL_error(L, "attempt to use a closed key or request");
  const char *subject = field_string(L, 2, "subject", NULL);
  if (subject == NULL && csr == NULL)
    luaL_error(L, "'subject' is required with 'public_key'");
  lua_Integer days = field_int(L, 2, "days", 825, 1, 36500);
  const char *usage = field_string(L, 2, "usage", "server");
  if (strcmp(usage, "server") != 0 && strcmp(usage, "client") != 0 && strcmp(usage, "ca") != 0)
    luaL_error(L, "unknown usage '%s' (server, client or ca)", usage);
  lua_Integer path_len = field_int(L, 2, "path_len", -1, 0, 16);
  if (strcmp(usage, "ca") != 0 && path_len >= 0)
    luaL_error(L, "'path_len' applies to usage = \"ca\" only");
  push_san_conf(L, 2);
  const char *san = lua_tostring(L, -1);

  if (!(X509_get_extension_flags(ca) & EXFLAG_CA))
    return myseal_fail(L, "the signing certificate is not a CA (its basicConstraints say "
                          "CA:FALSE or are missing)", EINVAL);
  if (EVP_PKEY_eq(X509_get0_pubkey(ca), cakey->k) != 1) {
    ERR_clear_error();
    return myseal_fail(L, "the CA key does not match the CA certificate", EINVAL);
  }
  EVP_PKEY *subject_key = pub ? pub->k : NULL;
  if (csr != NULL) {
    subject_key = X509_REQ_get0_pubkey(csr->r);
    if (subject_key == NULL || X509_REQ_verify(csr->r, subject_key) <= 0) {
      ERR_clear_error();
      return myseal_fail(L, "the certificate request's signature does not verify", EINVAL);
    }
  }
  int weak = weak_key(L, subject_key, csr ? "request's key" : "public key");
  if (!weak)
    weak = weak_key(L, cakey->k, "CA key");
  if (weak)
    return weak;

  pcert *out = new_cert(L);
  X509_NAME *name = NULL;
  if (subject != NULL) {
    pl_err err;
    name = pl_parse_name(subject, &err);
    if (name == NULL)
      return fail_pl(L, &err);
  }
  ERR_clear_error();
  X509 *x = X509_new();
  const char *what = x == NULL ? "out of memory"
    : build_cert(x, ca, name ? name : X509_REQ_get_subject_name(csr->r), subject_key, cakey->k,
                 days, usage, path_len, san, csr ? csr->r : NULL);
  X509_NAME_free(name);
  if (what != NULL) {
    X509_free(x);
    return fail_ossl(L, what);
  }
  out->x = x;
  return 1;
}


/* --- requests ---------------------------------------------------------------- */

static int req_pem (lua_State *L) {
  X509_REQ *r = check_req(L, 1);
  BIO *b = BIO_new(BIO_s_mem());
  return push_bio(L, b, b && PEM_write_bio_X509_REQ(b, r), "cannot write the certificate request");
}

static int req_subject (lua_State *L) {
  X509_REQ *r = check_req(L, 1);
  push_name(L, X509_REQ_get_subject_name(r), name_format(L, 2));
  return 1;
}

static int req_tostring (lua_State *L) {
  preq *p = luaL_checkudata(L, 1, REQ_MT);
  if (p->r == NULL) {
    lua_pushliteral(L, "certificate request (closed)");
    return 1;
  }
  char *s = X509_NAME_oneline(X509_REQ_get_subject_name(p->r), NULL, 0);
  lua_pushfstring(L, "certificate request %s", s ? s : "?");
  OPENSSL_free(s);
  return 1;
}


/* --- verification ------------------------------------------------------------ */

/* Checks that t[field] is nil or a list of certificates and pushes a plain
** copy of it (so reading it again runs no metamethod, hence raises nothing,
** while OpenSSL objects are live). Returns its length. */
static int push_cert_list (lua_State *L, int t, const char *field) {
  lua_getfield(L, t, field);
  int n = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1))
      luaL_error(L, "'%s' must be a list of certificates", field);
    n = (int)luaL_len(L, -1);
  }
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    lua_geti(L, -2, i);
    pcert *p = luaL_testudata(L, -1, CERT_MT);
    if (p == NULL || p->x == NULL)
      luaL_error(L, "%s[%d] is not a certificate", field, i);
    lua_rawseti(L, -2, i);
  }
  lua_remove(L, -2);
  return n;
}

/* Certificate i of a list push_cert_list made (no Lua errors in here). */
static X509 *cert_at (lua_State *L, int list, int i) {
  lua_rawgeti(L, list, i);
  X509 *x = ((pcert *)lua_touserdata(L, -1))->x;
  lua_pop(L, 1);
  return x;
}

/* pki.verify(cert, { trusted, untrusted, hostname, purpose, at })
** -> true | nil, "certificate verify failed: reason", X509_V_ERR code */
static int pki_verify (lua_State *L) {
  X509 *x = myseal_pki_checkcert(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *host = field_string(L, 2, "hostname", NULL);
  const char *purpose = field_string(L, 2, "purpose", NULL);
  int pid = 0;
  if (purpose != NULL) {
    if (strcmp(purpose, "server") == 0)
      pid = X509_PURPOSE_SSL_SERVER;
    else if (strcmp(purpose, "client") == 0)
      pid = X509_PURPOSE_SSL_CLIENT;
    else
      luaL_error(L, "unknown purpose '%s' (server or client)", purpose);
  }
  lua_getfield(L, 2, "at");
  int have_at = !lua_isnil(L, -1);
  if (have_at && !lua_isinteger(L, -1))
    luaL_error(L, "'at' must be a time in epoch seconds, not a %s", luaL_typename(L, -1));
  time_t at = (time_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, 8, NULL);
  int ntrusted = push_cert_list(L, 2, "trusted");
  int trusted = lua_gettop(L);
  int nuntrusted = push_cert_list(L, 2, "untrusted");
  int untrusted = lua_gettop(L);

  const char *what = NULL;
  int code = 0;
  char reason[512];
  ERR_clear_error();
  X509_STORE *store = X509_STORE_new();
  STACK_OF(X509) *chain = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  if (store == NULL || chain == NULL || ctx == NULL) {
    what = "out of memory";
    goto cleanup;
  }
  for (int i = 1; i <= ntrusted; i++)
    if (!X509_STORE_add_cert(store, cert_at(L, trusted, i))) {
      what = "cannot use a trusted certificate";
      goto cleanup;
    }
  for (int i = 1; i <= nuntrusted; i++)
    if (!sk_X509_push(chain, cert_at(L, untrusted, i))) {
      what = "out of memory";
      goto cleanup;
    }
  if (!X509_STORE_CTX_init(ctx, store, x, chain)) {
    what = "cannot set up the verification";
    goto cleanup;
  }
  X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
  if (pid != 0)
    X509_STORE_CTX_set_purpose(ctx, pid);
  if (host != NULL) {
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
    int ok = ip != NULL ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                        : X509_VERIFY_PARAM_set1_host(vp, host, 0);
    ASN1_OCTET_STRING_free(ip);
    if (!ok) {
      what = "bad host name";
      goto cleanup;
    }
  }
  if (have_at)
    X509_VERIFY_PARAM_set_time(vp, at);
  if (X509_verify_cert(ctx) != 1) {
    code = X509_STORE_CTX_get_error(ctx);
    snprintf(reason, sizeof(reason), "certificate verify failed: %s",
             X509_verify_cert_error_string(code));
    if (code == X509_V_ERR_HOSTNAME_MISMATCH || code == X509_V_ERR_IP_ADDRESS_MISMATCH)
      snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
               " ('%.200s' is not in the certificate's subject alternative names)", host);
    ERR_clear_error();
  }
cleanup:
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);  /* the certificates belong to their userdata */
  X509_STORE_free(store);
  if (what != NULL)
    return fail_ossl(L, what);
  if (code != 0)
    return myseal_fail(L, reason, code);
  lua_pushboolean(L, 1);
  return 1;
}


/* --- digests and randomness ------------------------------------------------- */

/* pki.digest(data [, alg = "sha256"]) -> lower-case hex */
static int pki_digest (lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  const EVP_MD *md = EVP_get_digestbyname(luaL_optstring(L, 2, "sha256"));
  luaL_argcheck(L, md != NULL, 2, "unknown digest");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(data, len, out, &n, md, NULL))
    return fail_ossl(L, "cannot compute the digest");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned int i = 0; i < n; i++)
    snprintf(hex + 2 * i, 3, "%02x", out[i]);
  lua_pushlstring(L, hex, 2 * (size_t)n);
  return 1;
}

/* pki.random(n) -> n bytes from OpenSSL's CSPRNG (for keys: never math.random) */
static int pki_random (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= 65536, 1, "from 1 to 65536 bytes");
  luaL_Buffer b;
  unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
  if (RAND_bytes(p, (int)n) != 1)
    return fail_ossl(L, "the random generator failed");
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}


/* --- MariaDB's encrypted key file: OpenSSL's Salted__ format -------------------- */

/* The password argument at i: a string, not empty. */
static const char *check_secret (lua_State *L, int i, size_t *len) {
  const char *pass = luaL_checklstring(L, i, len);
  luaL_argcheck(L, *len > 0, i, "an empty password protects nothing");
  return pass;
}

/* Pushes a buffer salted.c made and wipes it. */
static void push_wiped (lua_State *L, unsigned char *buf, size_t len) {
  lua_pushlstring(L, (const char *)buf, len);
  sa_free(buf, len);
}

/* pki.salted_encrypt(data, password) -> bytes | nil, msg, code */
static int pki_salted_encrypt (lua_State *L) {
  size_t len, plen;
  const char *data = luaL_checklstring(L, 1, &len);
  const char *pass = check_secret(L, 2, &plen);
  unsigned char *out;
  size_t outlen;
  char msg[128];
  if (sa_encrypt((const unsigned char *)data, len, pass, plen, NULL, &out, &outlen, msg, sizeof(msg)) != 0)
    return myseal_fail(L, msg, EINVAL);
  push_wiped(L, out, outlen);
  return 1;
}

/* pki.salted_decrypt(data, password) -> plaintext | nil, msg, code */
static int pki_salted_decrypt (lua_State *L) {
  size_t len, plen;
  const char *data = luaL_checklstring(L, 1, &len);
  const char *pass = check_secret(L, 2, &plen);
  unsigned char *out;
  size_t outlen;
  int code;
  char msg[128];
  if (sa_decrypt((const unsigned char *)data, len, pass, plen, &out, &outlen, &code, msg, sizeof(msg)) != 0)
    return myseal_fail(L, msg, code);
  push_wiped(L, out, outlen);
  return 1;
}


/* --- registration ------------------------------------------------------------ */

static const luaL_Reg pki_funcs[] = {
  {"genkey", pki_genkey},
  {"load_key", pki_load_key},
  {"load_cert", pki_load_cert},
  {"load_certs", pki_load_certs},
  {"load_csr", pki_load_csr},
  {"self_signed", pki_self_signed},
  {"csr", pki_csr},
  {"verify", pki_verify},
  {"digest", pki_digest},
  {"random", pki_random},
  {"salted_encrypt", pki_salted_encrypt},
  {"salted_decrypt", pki_salted_decrypt},
  {NULL, NULL}
};

static const luaL_Reg key_methods[] = {
  {"pem", key_pem},
  {"save", key_save},
  {"public_pem", key_public_pem},
  {"type", key_type},
  {"bits", key_bits},
  {"curve", key_curve},
  {"close", key_close},
  {NULL, NULL}
};

static const luaL_Reg cert_methods[] = {
  {"subject", cert_subject},
  {"issuer", cert_issuer},
  {"not_before", cert_not_before},
  {"not_after", cert_not_after},
  {"days_left", cert_days_left},
  {"serial", cert_serial},
  {"san", cert_san},
  {"alt_names", cert_alt_names},
  {"fingerprint", cert_fingerprint},
  {"is_ca", cert_is_ca},
  {"key_id", cert_key_id},
  {"usage", cert_usage},
  {"pem", cert_pem},
  {"der", cert_der},
  {"matches_key", cert_matches_key},
  {"sign", cert_sign},
  {"close", cert_close},
  {NULL, NULL}
};

static const luaL_Reg req_methods[] = {
  {"pem", req_pem},
  {"subject", req_subject},
  {"close", req_close},
  {NULL, NULL}
};

static const luaL_Reg key_meta[] = {
  {"__gc", key_close},
  {"__close", key_close},
  {"__tostring", key_tostring},
  {NULL, NULL}
};

static const luaL_Reg cert_meta[] = {
  {"__gc", cert_close},
  {"__close", cert_close},
  {"__tostring", cert_tostring},
  {"__eq", cert_eq},
  {NULL, NULL}
};

static const luaL_Reg req_meta[] = {
  {"__gc", req_close},
  {"__close", req_close},
  {"__tostring", req_tostring},
  {NULL, NULL}
};

static const luaL_Reg stack_meta[] = {
  {"__gc", stack_gc},
  {NULL, NULL}
};

int luaopen_pki (lua_State *L) {
  myseal_newtype(L, KEY_MT, key_methods, key_meta);
  myseal_newtype(L, REQ_MT, req_methods, req_meta);
  myseal_newtype(L, CERT_MT, cert_methods, cert_meta);
  myseal_newtype(L, STACK_MT, NULL, stack_meta);
  luaL_newlib(L, pki_funcs);
  return 1;
}
