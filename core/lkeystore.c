/*
** lkeystore.c: the keystore module: Java truststores (JKS and PKCS#12)
** without a JVM. The formats are core/pure/keystore.c; this file converts,
** taking and giving pki certificates.
**
**   keystore.new{ type = "pkcs12" | "jks" } -> store
**   keystore.open(path, { password =, type = "auto" | "jks" | "pkcs12" })
**       -> store | nil, msg
**   store:add_trusted(alias, cert [, { replace = true }]) -> true [, warning]
**       | nil, msg (the alias is taken)
**   store:remove(alias), store:aliases(), store:entries(), store:warnings(), store:get(alias),
**   store:type(), store:encode{ password = } -> bytes,
**   store:save(path, { password =, mode = 0644 }) -> true | nil, msg, errno
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "keystore.h"
#include "sysutil.h"

#define STORE_MT "myseal.keystore.Store"

typedef struct store {
  ks_store s;
  int open;
} store;

static store *check_store (lua_State *L, int i) {
  store *st = luaL_checkudata(L, i, STORE_MT);
  if (!st->open)
    luaL_error(L, "attempt to use a closed keystore");
  return st;
}

static int store_close (lua_State *L) {
  store *st = luaL_checkudata(L, 1, STORE_MT);
  if (st->open) {
    ks_free(&st->s);
    st->open = 0;
  }
  return 0;
}

static store *new_store (lua_State *L) {
  store *st = lua_newuserdatauv(L, sizeof(store), 0);
  memset(st, 0, sizeof(*st));
  luaL_setmetatable(L, STORE_MT);
  return st;
}

static enum ks_type check_type (lua_State *L, const char *name, int allow_auto) {
  if (strcmp(name, "pkcs12") == 0)
    return KS_PKCS12;
  if (strcmp(name, "jks") == 0)
    return KS_JKS;
  if (allow_auto && strcmp(name, "auto") == 0)
    return KS_AUTO;
  luaL_error(L, "unknown keystore type '%s' (pkcs12, jks%s)", name, allow_auto ? " or auto" : "");
  return KS_AUTO;
}

/* The password field of the options table at i: required, not empty. */
static const char *check_password (lua_State *L, int i) {
  luaL_checktype(L, i, LUA_TTABLE);
  lua_getfield(L, i, "password");
  const char *pass = lua_tostring(L, -1);
  if (pass == NULL || *pass == '\0')
    luaL_error(L, "a keystore needs a password (options.password)");
  lua_pop(L, 1);  /* the table keeps it */
  return pass;
}

/* keystore.new{ type = "pkcs12" } */
static int ks_new (lua_State *L) {
  const char *type = "pkcs12";
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "type");
    type = luaL_optstring(L, -1, "pkcs12");
  }
  enum ks_type t = check_type(L, type, 0);
  store *st = new_store(L);
  st->s.type = t;
  st->open = 1;
  return 1;
}

/* keystore.open(path, { password =, type = "auto" }) -> store | nil, msg */
static int ks_open (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *pass = check_password(L, 2);
  lua_getfield(L, 2, "type");
  enum ks_type t = check_type(L, luaL_optstring(L, -1, "auto"), 1);
  lua_pop(L, 1);
  store *st = new_store(L);
  int err = myseal_push_file(L, path);
  if (err)
    return myseal_fail_errno(L, path, err);
  size_t len;
  const unsigned char *data = (const unsigned char *)lua_tolstring(L, -1, &len);
  char msg[512];
  if (ks_load(&st->s, data, len, pass, t, msg, sizeof(msg)) != 0) {
    lua_pushfstring(L, "%s: %s", path, msg);
    return myseal_fail(L, lua_tostring(L, -1), EINVAL);
  }
  st->open = 1;
  lua_pop(L, 1);
  return 1;
}

static int64_t now_ms (void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* store:add_trusted(alias, cert [, { replace = true }]) -> true [, warning] */
static int store_add_trusted (lua_State *L) {
  store *st = check_store(L, 1);
  const char *alias = luaL_checkstring(L, 2);
  X509 *x = myseal_pki_checkcert(L, 3);
  int replace = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_getfield(L, 4, "replace");
    replace = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  luaL_argcheck(L, *alias != '\0', 2, "an alias cannot be empty");
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  if (n <= 0)
    return luaL_error(L, "cannot encode the certificate");
  int err = ks_add_trusted(&st->s, alias, der, (size_t)n, now_ms(), replace);
  OPENSSL_free(der);
  if (err == EEXIST) {
    lua_pushfstring(L, "alias '%s' is already in the keystore (add it with replace = true to "
                    "replace it)", alias);
    return myseal_fail(L, lua_tostring(L, -1), EEXIST);
  }
  if (err != 0)
    return luaL_error(L, "not enough memory");
  lua_pushboolean(L, 1);
  if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
    lua_pushfstring(L, "'%s' is not a CA certificate: Java will trust this exact certificate "
                    "only, not what it might sign", alias);
    return 2;
  }
  return 1;
}

/* store:remove(alias) -> true | nil, msg */
static int store_remove (lua_State *L) {
  store *st = check_store(L, 1);
  const char *alias = luaL_checkstring(L, 2);
  if (ks_remove(&st->s, alias) != 0) {
    lua_pushfstring(L, "no entry '%s' in the keystore", alias);
    return myseal_fail(L, lua_tostring(L, -1), ENOENT);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* store:aliases() -> the aliases keytool lists (lower-cased, as the JDK keys them) */
static int store_aliases (lua_State *L) {
  store *st = check_store(L, 1);
  lua_createtable(L, (int)st->s.n, 0);
  lua_Integer n = 0;
  for (size_t i = 0; i < st->s.n; i++)
    if (st->s.e[i].listed && !st->s.e[i].shadowed) {
      lua_pushstring(L, st->s.e[i].alias);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

static X509 *entry_cert (const ks_entry *e) {
  if (e->der == NULL)
    return NULL;
  const unsigned char *p = e->der;
  return d2i_X509(NULL, &p, (long)e->der_len);
}

/* store:entries() -> { { alias, kind = "trusted" | "key" | "secret" | "certificate" |
**                        "other", listed, name, date (ms, JKS),
**                        fingerprint (SHA-256 of the certificate) }, ... }
** Every entry kept, in file order, but those a later one with the same alias
** hides from the JDK (store:warnings() names them). listed: keytool lists it;
** name: the alias as written, when it is not the lower-cased one. */
static int store_entries (lua_State *L) {
  static const char *const kinds[] = {"", "key", "trusted", "certificate", "secret", "other"};
  store *st = check_store(L, 1);
  lua_createtable(L, (int)st->s.n, 0);
  lua_Integer n = 0;
  for (size_t i = 0; i < st->s.n; i++) {
    const ks_entry *e = &st->s.e[i];
    if (e->shadowed)
      continue;
    lua_createtable(L, 0, 6);
    lua_pushstring(L, e->alias);
    lua_setfield(L, -2, "alias");
    lua_pushstring(L, kinds[e->kind]);
    lua_setfield(L, -2, "kind");
    lua_pushboolean(L, e->listed);
    lua_setfield(L, -2, "listed");
    if (e->name != NULL && strcmp(e->name, e->alias) != 0) {
      lua_pushstring(L, e->name);
      lua_setfield(L, -2, "name");
    }
    if (e->date_ms) {
      lua_pushinteger(L, (lua_Integer)e->date_ms);
      lua_setfield(L, -2, "date");
    }
    if (e->der != NULL) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int mdlen = 0;
      if (EVP_Digest(e->der, e->der_len, md, &mdlen, EVP_sha256(), NULL)) {
        char hex[3 * EVP_MAX_MD_SIZE + 1];
        for (unsigned int k = 0; k < mdlen; k++)
          snprintf(hex + 3 * k, 4, "%02X%s", md[k], k + 1 < mdlen ? ":" : "");
        lua_pushstring(L, hex);
        lua_setfield(L, -2, "fingerprint");
      }
    }
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* store:warnings() -> { "what", ... }: how the JDK reads this store
** differently from what it holds (an alias twice, bytes after a JKS, bags
** it skips); nothing of it is lost when the store is saved */
static int store_warnings (lua_State *L) {
  store *st = check_store(L, 1);
  lua_createtable(L, (int)st->s.warn.n, 0);
  for (size_t i = 0; i < st->s.warn.n; i++) {
    lua_pushstring(L, st->s.warn.text[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* store:get(alias) -> pki certificate | nil (no such certificate entry) */
static int store_get (lua_State *L) {
  store *st = check_store(L, 1);
  long at = ks_find(&st->s, luaL_checkstring(L, 2));
  if (at < 0 || (st->s.e[at].kind != KS_TRUSTED && st->s.e[at].kind != KS_CERT))
    return 0;
  X509 *x = entry_cert(&st->s.e[at]);
  if (x == NULL)
    return 0;
  myseal_pki_pushcert(L, x);
  return 1;
}

static int store_type (lua_State *L) {
  store *st = check_store(L, 1);
  lua_pushstring(L, st->s.type == KS_JKS ? "jks" : "pkcs12");
  return 1;
}

/* Pushes the store's bytes; returns 1, or pushes nil, msg and returns 2. */
static int push_encoded (lua_State *L, store *st, const char *pass) {
  unsigned char *out = NULL;
  size_t len = 0;
  char msg[512];
  if (ks_save(&st->s, pass, &out, &len, msg, sizeof(msg)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
  }
  lua_pushlstring(L, (const char *)out, len);
  free(out);
  return 1;
}

/* store:encode{ password = } -> bytes | nil, msg */
static int store_encode (lua_State *L) {
  store *st = check_store(L, 1);
  return push_encoded(L, st, check_password(L, 2));
}

/* store:save(path, { password =, mode = 0644 }) -> true | nil, msg, errno
** Atomic: the old file stays whole until the new one is complete. */
static int store_save (lua_State *L) {
  myseal_gate(L, "store:save", lua_tostring(L, 2));
  store *st = check_store(L, 1);
  const char *path = luaL_checkstring(L, 2);
  const char *pass = check_password(L, 3);
  lua_getfield(L, 3, "mode");
  lua_Integer mode = luaL_optinteger(L, -1, 0644);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 3, "mode out of range");
  lua_pop(L, 1);
  if (push_encoded(L, st, pass) != 1) {
    lua_pushinteger(L, EINVAL);
    return 3;
  }
  size_t len;
  const char *data = lua_tolstring(L, -1, &len);
  int err = su_atomic_write(path, data, len, (int)mode);
  if (err != 0)
    return myseal_fail_errno(L, path, err);
  lua_pushboolean(L, 1);
  return 1;
}

static int store_tostring (lua_State *L) {
  store *st = luaL_checkudata(L, 1, STORE_MT);
  if (!st->open)
    lua_pushliteral(L, "keystore (closed)");
  else {
    int n = 0;
    for (size_t i = 0; i < st->s.n; i++)
      n += !st->s.e[i].shadowed;
    lua_pushfstring(L, "%s keystore (%d entr%s)", st->s.type == KS_JKS ? "JKS" : "PKCS#12", n,
                    n == 1 ? "y" : "ies");
  }
  return 1;
}

static const luaL_Reg ks_funcs[] = {
  {"new", ks_new},
  {"open", ks_open},
  {NULL, NULL}
};

static const luaL_Reg store_methods[] = {
  {"add_trusted", store_add_trusted},
  {"remove", store_remove},
  {"aliases", store_aliases},
  {"entries", store_entries},
  {"warnings", store_warnings},
  {"get", store_get},
  {"type", store_type},
  {"encode", store_encode},
  {"save", store_save},
  {"close", store_close},
  {NULL, NULL}
};

static const luaL_Reg store_meta[] = {
  {"__gc", store_close},
  {"__close", store_close},
  {"__tostring", store_tostring},
  {NULL, NULL}
};

int luaopen_keystore (lua_State *L) {
  myseal_newtype(L, STORE_MT, store_methods, store_meta);
  luaL_newlib(L, ks_funcs);
  return 1;
}
