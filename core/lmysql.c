/*
** lmysql.c: the mysql module, over MariaDB Connector/C or Oracle's
** libmysqlclient (chosen at configure time, see CMakeLists.txt).
**
**   mysql.connect{ host, port, socket, user, password, database,
**                  defaults_file, defaults_group, connect_timeout,
**                  read_timeout, tls = { mode, ca, capath, cert, key,
**                  cipher, versions } }     -> conn | nil, msg, errno, sqlstate
**   conn:query(sql, ...)  -> rows, meta      (values bound to '?')
**   conn:exec(sql, ...)   -> affected rows, insert id
**   conn:rows(sql, ...)   -> iterator (streams: mysql_use_result; raises on failure)
**   conn:quote(v), conn:server(), conn:tls(), conn:ping(), conn:close()
**   mysql.ident(name), mysql.format(sql, ...) (for display), mysql.null
**
** TLS modes follow MySQL's client: disabled, preferred (the default over
** TCP), required, verify_ca, verify_identity. Given a CA, Connector/C checks
** the chain in every mode but disabled (MySQL's client likewise turns
** REQUIRED with --ssl-ca into VERIFY_CA); verify_identity adds the host name.
**
** Values are bound by escaping with the connection's own rules
** (mysql_real_escape_string knows the charset and NO_BACKSLASH_ESCAPES);
** strings that are not UTF-8 go as hex literals, so binary data survives.
** A world failure returns nil, message, errno, sqlstate; a caller's mistake
** raises. No password is ever put into a message.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>
#include <errmsg.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lua.h"
#include "lauxlib.h"

#include "myseal.h"
#include "sqltext.h"

#if defined(MARIADB_PACKAGE_VERSION_ID)
/* Connector/C keeps the SSL* of a connection in net.pvio->ctls; its
** installed headers describe both (HAVE_TLS makes ma_pvio.h use ma_tls.h). */
#define HAVE_TLS 1
typedef unsigned char uchar;  /* ma_tls.h uses it; mysql.h does not define it */
#include <ma_pvio.h>
#define MYSEAL_CONNECTOR_C 1
#endif

#define CONN_MT "myseal.mysql.Connection"
#define CURSOR_MT "myseal.mysql.Cursor"

enum tls_mode { TLS_DISABLED, TLS_PREFERRED, TLS_REQUIRED, TLS_VERIFY_CA, TLS_VERIFY_IDENTITY };
static const char *const tls_modes[] = {
  "disabled", "preferred", "required", "verify_ca", "verify_identity", NULL
};

typedef struct cursor cursor;

typedef struct conn {
  MYSQL *m;
  int mode;        /* the tls mode asked for */
  int has_ca;      /* a CA was given: Connector/C then verifies the chain */
  int streaming;   /* a cursor of conn:rows is open: see active */
  cursor *active;  /* that cursor, freed first when the connection closes */
  char where[128]; /* "host:port" or the socket, for messages */
} conn;

struct cursor {
  MYSQL_RES *res;
  conn *c;         /* kept alive by the user value */
  int nfields;
};


/* --- helpers ----------------------------------------------------------- */

/* nil, "what: mysql_error", errno, sqlstate */
static int conn_fail (lua_State *L, MYSQL *m, const char *what) {
  lua_pushnil(L);
  if (what != NULL)
    lua_pushfstring(L, "%s: %s", what, mysql_error(m));
  else
    lua_pushstring(L, mysql_error(m));
  lua_pushinteger(L, (lua_Integer)mysql_errno(m));
  lua_pushstring(L, mysql_sqlstate(m));
  return 4;
}

static conn *check_conn (lua_State *L, int i) {
  conn *c = luaL_checkudata(L, i, CONN_MT);
  if (c->m == NULL)
    luaL_error(L, "attempt to use a closed connection");
  if (c->streaming)
    luaL_error(L, "the connection is busy: a conn:rows() result is still open "
                  "(finish the loop or close the iterator)");
  return c;
}

static void push_null (lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "myseal.mysql.null");
}

static int is_null (lua_State *L, int i) {
  if (lua_isnoneornil(L, i))
    return 1;
  push_null(L);
  int eq = lua_rawequal(L, i, -1);
  lua_pop(L, 1);
  return eq;
}

/* Appends the SQL literal for the value at index i to b. With a connection
** m, the literal the server gets: mysql_real_escape_string escapes for the
** connection's charset and follows the server's NO_BACKSLASH_ESCAPES. With
** m NULL, the literal shown to people (mysql.format): quotes doubled, no
** backslash escapes. Strings that are not UTF-8 are hex literals in both. */
static void add_literal (lua_State *L, MYSQL *m, luaL_Buffer *b, int i) {
  if (is_null(L, i)) {
    luaL_addstring(b, "NULL");
    return;
  }
  switch (lua_type(L, i)) {
    case LUA_TBOOLEAN:
      luaL_addstring(b, lua_toboolean(L, i) ? "TRUE" : "FALSE");
      return;
    case LUA_TNUMBER: {
      char num[64];
      if (lua_isinteger(L, i))
        snprintf(num, sizeof(num), LUA_INTEGER_FMT, lua_tointeger(L, i));
      else {
        lua_Number v = lua_tonumber(L, i);
        if (v != v || v == (lua_Number)HUGE_VAL || v == -(lua_Number)HUGE_VAL)
          luaL_error(L, "cannot bind %f: SQL has no such number", (double)v);
        snprintf(num, sizeof(num), "%.17g", (double)v);
      }
      luaL_addstring(b, num);
      return;
    }
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, i, &len);
      char *out = luaL_prepbuffsize(b, 2 * len + 3);
      if (!st_utf8_valid(s, len))
        luaL_addsize(b, st_hex_literal(s, len, out));
      else if (m == NULL)
        luaL_addsize(b, st_quote_doubled(s, len, out));
      else {
        out[0] = '\'';
        unsigned long n = mysql_real_escape_string(m, out + 1, s, (unsigned long)len);
        out[n + 1] = '\'';
        luaL_addsize(b, n + 2);
      }
      return;
    }
    default:
      luaL_error(L, "cannot bind a %s value (strings, numbers, booleans, nil or mysql.null)",
                 luaL_typename(L, i));
  }
}

/*
** The statement at index `arg` with the values from index arg + 1 on put into
** its '?' placeholders, as add_literal writes them for m (NULL: for display).
** Pushes the text and returns it. A count mismatch is the caller's mistake.
*/
static const char *bind_sql (lua_State *L, MYSQL *m, int arg) {
  size_t len;
  const char *sql = luaL_checklstring(L, arg, &len);
  int nvalues = lua_gettop(L) - arg;
  size_t stackpos[32];
  size_t *pos = stackpos;
  size_t n = st_placeholders(sql, len, pos, 32);
  if (n != (size_t)nvalues && m != NULL)
    luaL_error(L, "the statement has %d placeholder%s and %d value%s were given",
               (int)n, n == 1 ? "" : "s", nvalues, nvalues == 1 ? "" : "s");
  if (n != (size_t)nvalues)
    luaL_error(L, "SQL has %d placeholder(s) but %d value(s) were given: %s",
               (int)n, nvalues, sql);
  if (n == 0) {
    lua_pushvalue(L, arg);
    return sql;
  }
  if (n > 32) {
    pos = lua_newuserdatauv(L, n * sizeof(size_t), 0);
    st_placeholders(sql, len, pos, n);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t from = 0;
  for (size_t k = 0; k < n; k++) {
    luaL_addlstring(&b, sql + from, pos[k] - from);
    add_literal(L, m, &b, arg + 1 + (int)k);
    from = pos[k] + 1;
  }
  luaL_addlstring(&b, sql + from, len - from);
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Sends the statement bound from the arguments at `arg`. 0 or an errno. */
static int send_query (lua_State *L, conn *c, int arg) {
  size_t len;
  bind_sql(L, c->m, arg);
  const char *sql = lua_tolstring(L, -1, &len);
  int rc = mysql_real_query(c->m, sql, (unsigned long)len);
  lua_pop(L, 1);
  return rc;
}

static const char *type_name (enum enum_field_types t) {
  switch (t) {
    case MYSQL_TYPE_TINY: return "tinyint";
    case MYSQL_TYPE_SHORT: return "smallint";
    case MYSQL_TYPE_INT24: return "mediumint";
    case MYSQL_TYPE_LONG: return "int";
    case MYSQL_TYPE_LONGLONG: return "bigint";
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: return "decimal";
    case MYSQL_TYPE_FLOAT: return "float";
    case MYSQL_TYPE_DOUBLE: return "double";
    case MYSQL_TYPE_YEAR: return "year";
    case MYSQL_TYPE_BIT: return "bit";
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return "date";
    case MYSQL_TYPE_TIME: return "time";
    case MYSQL_TYPE_DATETIME: return "datetime";
    case MYSQL_TYPE_TIMESTAMP: return "timestamp";
    case MYSQL_TYPE_JSON: return "json";
    case MYSQL_TYPE_ENUM: return "enum";
    case MYSQL_TYPE_SET: return "set";
    case MYSQL_TYPE_GEOMETRY: return "geometry";
    case MYSQL_TYPE_NULL: return "null";
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB:
    case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB: return "blob";
    default: return "string";
  }
}

static int is_integer_type (enum enum_field_types t) {
  return t == MYSQL_TYPE_TINY || t == MYSQL_TYPE_SHORT || t == MYSQL_TYPE_INT24 ||
         t == MYSQL_TYPE_LONG || t == MYSQL_TYPE_LONGLONG || t == MYSQL_TYPE_YEAR;
}

/* Pushes one column value: integers as integers (unsigned above 2^63-1 as a
** string), NULL as mysql.null (the value at index null), everything else as
** the bytes sent. */
static void push_value (lua_State *L, MYSQL_FIELD *f, const char *v, unsigned long len, int null) {
  long long n;
  if (v == NULL)
    lua_pushvalue(L, null);
  else if (is_integer_type(f->type) && st_integer(v, len, &n))
    lua_pushinteger(L, (lua_Integer)n);
  else
    lua_pushlstring(L, v, len);
}

/* Pushes a table of the column names of res, the keys of every row: made
** once per result, so a row does not intern the names again. */
static void push_names (lua_State *L, MYSQL_RES *res) {
  int nfields = (int)mysql_num_fields(res);
  MYSQL_FIELD *fields = mysql_fetch_fields(res);
  lua_createtable(L, nfields, 0);
  for (int i = 0; i < nfields; i++) {
    lua_pushstring(L, fields[i].name);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Pushes a row table keyed by position and by column name; names and null
** are the stack indices of push_names' table and of mysql.null. */
static void push_row (lua_State *L, MYSQL_RES *res, MYSQL_ROW row, int nfields, int names,
                      int null) {
  MYSQL_FIELD *fields = mysql_fetch_fields(res);
  unsigned long *lengths = mysql_fetch_lengths(res);
  lua_createtable(L, nfields, nfields);
  for (int i = 0; i < nfields; i++) {
    lua_rawgeti(L, names, i + 1);
    push_value(L, &fields[i], row[i], lengths[i], null);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -4, i + 1);
    lua_rawset(L, -3);
  }
}


/* --- cursors (result holders) ------------------------------------------ */

static void cursor_free (cursor *k) {
  if (k->res != NULL) {
    mysql_free_result(k->res);  /* a use_result set: drains what is left */
    k->res = NULL;
  }
  if (k->c != NULL) {
    k->c->streaming = 0;
    k->c->active = NULL;
    k->c = NULL;
  }
}

static int cursor_close (lua_State *L) {
  cursor_free(luaL_checkudata(L, 1, CURSOR_MT));
  return 0;
}

static int cursor_tostring (lua_State *L) {
  cursor *k = luaL_checkudata(L, 1, CURSOR_MT);
  lua_pushstring(L, k->res ? "mysql result" : "mysql result (closed)");
  return 1;
}

/* A cursor userdata (closed) that keeps the connection at index ci alive. */
static cursor *new_cursor (lua_State *L, int ci) {
  cursor *k = lua_newuserdatauv(L, sizeof(cursor), 1);
  k->res = NULL;
  k->c = NULL;
  k->nfields = 0;
  luaL_setmetatable(L, CURSOR_MT);
  lua_pushvalue(L, ci);
  lua_setiuservalue(L, -2, 1);
  return k;
}


/* --- connect ----------------------------------------------------------- */

static const char *opt_string (lua_State *L, int t, const char *name) {
  lua_getfield(L, t, name);
  const char *s = NULL;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "mysql.connect: '%s' must be a string, not a %s", name, luaL_typename(L, -1));
    s = lua_tostring(L, -1);
  }
  lua_pop(L, 1);  /* the string stays referenced by the table */
  return s;
}

static unsigned int opt_uint (lua_State *L, int t, const char *name, unsigned int dflt) {
  lua_getfield(L, t, name);
  unsigned int v = dflt;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 65535)
      luaL_error(L, "mysql.connect: '%s' must be an integer from 0 to 65535", name);
    v = (unsigned int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* The tls = { ... } options, applied to m. Raises on a bad table. */
static int apply_tls (lua_State *L, int t, conn *c, int over_socket) {
  MYSQL *m = c->m;
  int mode = over_socket ? TLS_DISABLED : TLS_PREFERRED;
  lua_getfield(L, t, "tls");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  else if (!lua_istable(L, -1))
    luaL_error(L, "mysql.connect: 'tls' must be a table");
  int tt = lua_gettop(L);
  lua_getfield(L, tt, "mode");
  if (!lua_isnil(L, -1)) {
    const char *name = lua_tostring(L, -1);
    int found = -1;
    for (int i = 0; name != NULL && tls_modes[i] != NULL; i++)
      if (strcmp(name, tls_modes[i]) == 0)
        found = i;
    if (found < 0)
      luaL_error(L, "mysql.connect: unknown tls mode '%s' (disabled, preferred, required, "
                    "verify_ca or verify_identity)", name ? name : luaL_typename(L, -1));
    mode = found;
  }
  lua_pop(L, 1);
  const char *ca = opt_string(L, tt, "ca");
  const char *capath = opt_string(L, tt, "capath");
  const char *cert = opt_string(L, tt, "cert");
  const char *key = opt_string(L, tt, "key");
  const char *cipher = opt_string(L, tt, "cipher");
  const char *versions = opt_string(L, tt, "versions");
  c->has_ca = mode != TLS_DISABLED && (ca != NULL || capath != NULL);
  if (mode >= TLS_VERIFY_CA && ca == NULL && capath == NULL)
    luaL_error(L, "mysql.connect: tls mode '%s' needs tls.ca or tls.capath", tls_modes[mode]);
  if (mode != TLS_DISABLED) {
    if (ca) mysql_options(m, MYSQL_OPT_SSL_CA, ca);
    if (capath) mysql_options(m, MYSQL_OPT_SSL_CAPATH, capath);
    if (cert) mysql_options(m, MYSQL_OPT_SSL_CERT, cert);
    if (key) mysql_options(m, MYSQL_OPT_SSL_KEY, key);
    if (cipher) mysql_options(m, MYSQL_OPT_SSL_CIPHER, cipher);
  }
#if defined(MYSEAL_HAVE_SSL_MODE)
  /* Oracle's library: one enum says it all. */
  static const unsigned int modes[] = {
    SSL_MODE_DISABLED, SSL_MODE_PREFERRED, SSL_MODE_REQUIRED,
    SSL_MODE_VERIFY_CA, SSL_MODE_VERIFY_IDENTITY
  };
  mysql_options(m, MYSQL_OPT_SSL_MODE, &modes[mode]);
  if (versions && mode != TLS_DISABLED)
    mysql_options(m, MYSQL_OPT_TLS_VERSION, versions);
#else
  /* Connector/C: TLS is asked for by use_ssl (any ssl option or
  ** mysql_ssl_set), enforced by MYSQL_OPT_SSL_ENFORCE; with a CA the chain is
  ** verified, and MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name. */
  if (mode != TLS_DISABLED) {
    mysql_ssl_set(m, key, cert, ca, capath, cipher);
    my_bool enforce = mode >= TLS_REQUIRED;
    my_bool verify = mode == TLS_VERIFY_IDENTITY;
    mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &enforce);  /* also sets use_ssl: */
    m->options.use_ssl = 1;  /* preferred with no paths must still ask for TLS */
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    if (versions)
      mysql_options(m, MARIADB_OPT_TLS_VERSION, versions);
  }
  else {
    my_bool off = 0;
    mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &off);
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
  }
#endif
  lua_settop(L, tt - 1);
  return mode;
}

/* mysql.connect{ ... } -> conn | nil, msg, errno, sqlstate */
static int m_connect (lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  conn *c = lua_newuserdatauv(L, sizeof(conn), 0);
  memset(c, 0, sizeof(*c));
  luaL_setmetatable(L, CONN_MT);
  c->m = mysql_init(NULL);
  if (c->m == NULL)
    return myseal_fail(L, "mysql.connect: out of memory", ENOMEM);

  const char *host = opt_string(L, 1, "host");
  const char *sock = opt_string(L, 1, "socket");
  const char *user = opt_string(L, 1, "user");
  const char *password = opt_string(L, 1, "password");
  const char *database = opt_string(L, 1, "database");
  const char *dfile = opt_string(L, 1, "defaults_file");
  const char *dgroup = opt_string(L, 1, "defaults_group");
  unsigned int port = opt_uint(L, 1, "port", 0);
  unsigned int ctimeout = opt_uint(L, 1, "connect_timeout", 10);
  unsigned int rtimeout = opt_uint(L, 1, "read_timeout", 0);

  if (dfile || dgroup) {
    if (dfile) mysql_options(c->m, MYSQL_READ_DEFAULT_FILE, dfile);
    mysql_options(c->m, MYSQL_READ_DEFAULT_GROUP, dgroup ? dgroup : "client");
  }
  mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &ctimeout);
  if (rtimeout > 0) {
    mysql_options(c->m, MYSQL_OPT_READ_TIMEOUT, &rtimeout);
    mysql_options(c->m, MYSQL_OPT_WRITE_TIMEOUT, &rtimeout);
  }
  mysql_options(c->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  if (sock != NULL && host == NULL) {
    unsigned int proto = MYSQL_PROTOCOL_SOCKET;
    mysql_options(c->m, MYSQL_OPT_PROTOCOL, &proto);
  }
  else if (host != NULL) {
    unsigned int proto = MYSQL_PROTOCOL_TCP;
    mysql_options(c->m, MYSQL_OPT_PROTOCOL, &proto);
  }
  c->mode = apply_tls(L, 1, c, sock != NULL && host == NULL);

  if (host != NULL)
    snprintf(c->where, sizeof(c->where), "%s:%u", host, port ? port : 3306);
  else if (sock != NULL)
    snprintf(c->where, sizeof(c->where), "%s", sock);
  else
    snprintf(c->where, sizeof(c->where), "%s", dfile ? dfile : "the default server");

  if (mysql_real_connect(c->m, host, user, password, database, port, sock, 0) == NULL) {
    char what[200];
    snprintf(what, sizeof(what), "cannot connect to %s", c->where);
    conn_fail(L, c->m, what);
    mysql_close(c->m);
    c->m = NULL;
    return 4;
  }
  return 1;
}


/* --- connection methods ---------------------------------------------------- */

static int conn_close (lua_State *L) {
  conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->active != NULL)
    cursor_free(c->active);
  if (c->m != NULL) {
    mysql_close(c->m);
    c->m = NULL;
  }
  return 0;
}

static int conn_tostring (lua_State *L) {
  conn *c = luaL_checkudata(L, 1, CONN_MT);
  if (c->m == NULL)
    lua_pushliteral(L, "mysql connection (closed)");
  else
    lua_pushfstring(L, "mysql connection to %s", c->where);
  return 1;
}

/* Pushes { columns, types, affected_rows, insert_id, warnings }. */
static void push_meta (lua_State *L, MYSQL *m, MYSQL_RES *res) {
  lua_createtable(L, 0, 5);
  int n = res ? (int)mysql_num_fields(res) : 0;
  MYSQL_FIELD *f = res ? mysql_fetch_fields(res) : NULL;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, f[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "columns");
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, type_name(f[i].type));
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "types");
  my_ulonglong affected = mysql_affected_rows(m);
  lua_pushinteger(L, affected == (my_ulonglong)-1 ? -1 : (lua_Integer)affected);
  lua_setfield(L, -2, "affected_rows");
  lua_pushinteger(L, (lua_Integer)mysql_insert_id(m));
  lua_setfield(L, -2, "insert_id");
  lua_pushinteger(L, (lua_Integer)mysql_warning_count(m));
  lua_setfield(L, -2, "warnings");
}

/* conn:query(sql, ...) -> rows, meta | nil, msg, errno, sqlstate */
static int conn_query (lua_State *L) {
  conn *c = check_conn(L, 1);
  if (send_query(L, c, 2) != 0)
    return conn_fail(L, c->m, NULL);
  cursor *k = new_cursor(L, 1);  /* frees the result if building rows raises */
  k->res = mysql_store_result(c->m);
  if (k->res == NULL && mysql_field_count(c->m) != 0)
    return conn_fail(L, c->m, NULL);
  int nfields = k->res ? (int)mysql_num_fields(k->res) : 0;
  lua_Integer nrows = k->res ? (lua_Integer)mysql_num_rows(k->res) : 0;
  if (k->res)
    push_names(L, k->res);
  else
    lua_pushnil(L);
  push_null(L);
  int names = lua_gettop(L) - 1;
  lua_createtable(L, nrows > 1000000 ? 1000000 : (int)nrows, 0);
  MYSQL_ROW row;
  lua_Integer i = 0;
  while (k->res && (row = mysql_fetch_row(k->res)) != NULL) {
    push_row(L, k->res, row, nfields, names, names + 1);
    lua_rawseti(L, -2, ++i);
  }
  push_meta(L, c->m, k->res);
  if (k->res) {
    mysql_free_result(k->res);
    k->res = NULL;
  }
  return 2;
}

/* conn:exec(sql, ...) -> affected rows, insert id | nil, msg, errno, sqlstate */
static int conn_exec (lua_State *L) {
  conn *c = check_conn(L, 1);
  if (send_query(L, c, 2) != 0)
    return conn_fail(L, c->m, NULL);
  MYSQL_RES *res = mysql_store_result(c->m);
  if (res != NULL)
    mysql_free_result(res);
  else if (mysql_field_count(c->m) != 0)
    return conn_fail(L, c->m, NULL);
  my_ulonglong affected = mysql_affected_rows(c->m);
  lua_pushinteger(L, affected == (my_ulonglong)-1 ? 0 : (lua_Integer)affected);
  lua_pushinteger(L, (lua_Integer)mysql_insert_id(c->m));
  return 2;
}

/* Raises "message (errno N, sqlstate S)": a for loop cannot take nil, msg. */
static int rows_error (lua_State *L, conn *c, const char *what) {
  MYSQL *m = c->m;
  if (what != NULL)
    lua_pushfstring(L, "%s %s: %s (errno %d, sqlstate %s)", what, c->where, mysql_error(m),
                    (int)mysql_errno(m), mysql_sqlstate(m));
  else
    lua_pushfstring(L, "%s (errno %d, sqlstate %s)", mysql_error(m), (int)mysql_errno(m),
                    mysql_sqlstate(m));
  return lua_error(L);
}

/* The iterator of conn:rows: the next row, or nil at the end. Upvalues: the
** cursor, the column names (push_names) and mysql.null, so a row costs no
** lookup of any of them. */
static int rows_next (lua_State *L) {
  cursor *k = lua_touserdata(L, lua_upvalueindex(1));
  if (k->res == NULL)
    return 0;
  MYSQL_ROW row = mysql_fetch_row(k->res);
  if (row == NULL) {
    conn *c = k->c;
    if (mysql_errno(c->m) != 0) {
      lua_pushfstring(L, "reading a result from %s: %s (errno %d)", c->where,
                      mysql_error(c->m), (int)mysql_errno(c->m));
      cursor_free(k);
      return lua_error(L);
    }
    cursor_free(k);
    return 0;
  }
  push_row(L, k->res, row, k->nfields, lua_upvalueindex(2), lua_upvalueindex(3));
  return 1;
}

/* conn:rows(sql, ...) -> iterator, cursor, nil, cursor (to-be-closed).
** Streams the result (mysql_use_result): rows are read as the loop asks.
** Raises on failure, at the start or in the middle: a generic for has no
** place for nil, message. Breaking out of the loop closes the cursor. */
static int conn_rows (lua_State *L) {
  conn *c = check_conn(L, 1);
  if (send_query(L, c, 2) != 0)
    return rows_error(L, c, NULL);
  int top = lua_gettop(L);
  cursor *k = new_cursor(L, 1);
  k->res = mysql_use_result(c->m);
  if (k->res == NULL) {
    if (mysql_field_count(c->m) != 0)
      return rows_error(L, c, NULL);
    luaL_error(L, "conn:rows: the statement returns no rows (use conn:exec)");
  }
  k->c = c;
  k->nfields = (int)mysql_num_fields(k->res);
  c->streaming = 1;
  c->active = k;
  lua_pushvalue(L, top + 1);
  push_names(L, k->res);
  push_null(L);
  lua_pushcclosure(L, rows_next, 3);
  lua_pushvalue(L, top + 1);
  lua_pushnil(L);
  lua_pushvalue(L, top + 1);
  return 4;
}

/* conn:quote(v) -> the SQL literal for v */
static int conn_quote (lua_State *L) {
  conn *c = check_conn(L, 1);
  luaL_checkany(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  add_literal(L, c->m, &b, 2);
  luaL_pushresult(&b);
  return 1;
}

/* Runs a one-value query; pushes the value (or nil). 0 or an error. */
static int scalar (lua_State *L, MYSQL *m, const char *sql) {
  if (mysql_query(m, sql) != 0)
    return -1;
  MYSQL_RES *res = mysql_store_result(m);
  if (res == NULL)
    return -1;
  MYSQL_ROW row = mysql_fetch_row(res);
  unsigned long *len = row ? mysql_fetch_lengths(res) : NULL;
  if (row && row[mysql_num_fields(res) - 1])
    lua_pushlstring(L, row[mysql_num_fields(res) - 1], len[mysql_num_fields(res) - 1]);
  else
    lua_pushnil(L);
  mysql_free_result(res);
  return 0;
}

/* conn:server() -> { flavor, version, major, minor, patch, comment } */
static int conn_server (lua_State *L) {
  conn *c = check_conn(L, 1);
  const char *info = mysql_get_server_info(c->m);
  if (scalar(L, c->m, "SELECT @@version_comment") != 0)
    return conn_fail(L, c->m, NULL);
  const char *comment = lua_tostring(L, -1);
  int v[3] = {0, 0, 0};
  const char *p = info;
  if (strncmp(p, "5.5.5-", 6) == 0 && strstr(p, "MariaDB") != NULL)
    p += 6;  /* the replication-compatibility prefix of old MariaDB servers */
  sscanf(p, "%d.%d.%d", &v[0], &v[1], &v[2]);
  const char *flavor = "mysql";
  if (strstr(info, "MariaDB") != NULL || (comment && strstr(comment, "MariaDB") != NULL))
    flavor = "mariadb";
  else if ((comment && strstr(comment, "Percona") != NULL) || strstr(info, "Percona") != NULL)
    flavor = "percona";
  lua_createtable(L, 0, 6);
  lua_pushstring(L, flavor);
  lua_setfield(L, -2, "flavor");
  lua_pushfstring(L, "%d.%d.%d", v[0], v[1], v[2]);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, v[0]);
  lua_setfield(L, -2, "major");
  lua_pushinteger(L, v[1]);
  lua_setfield(L, -2, "minor");
  lua_pushinteger(L, v[2]);
  lua_setfield(L, -2, "patch");
  lua_pushstring(L, info);
  lua_setfield(L, -2, "full_version");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "comment");
  return 1;
}

/* The peer certificate of a Connector/C connection over OpenSSL, or NULL. */
static X509 *peer_cert (MYSQL *m) {
#if defined(MYSEAL_CONNECTOR_C)
  const char *lib = NULL;
  if (mariadb_get_infov(m, MARIADB_TLS_LIBRARY, &lib) != 0 || lib == NULL ||
      strncmp(lib, "OpenSSL", 7) != 0)
    return NULL;
  if (m->net.pvio == NULL || m->net.pvio->ctls == NULL || m->net.pvio->ctls->ssl == NULL)
    return NULL;
  return SSL_get1_peer_certificate((SSL *)m->net.pvio->ctls->ssl);
#else
  (void)m;
  return NULL;
#endif
}

static void push_name (lua_State *L, const X509_NAME *name) {
  char *s = X509_NAME_oneline(name, NULL, 0);
  lua_pushstring(L, s ? s : "");
  OPENSSL_free(s);
}

/* conn:tls() -> { version, cipher, verified, peer } | nil for a plain connection */
static int conn_tls (lua_State *L) {
  conn *c = check_conn(L, 1);
  const char *cipher = mysql_get_ssl_cipher(c->m);
  if (cipher == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, cipher);
  lua_setfield(L, -2, "cipher");
  if (scalar(L, c->m, "SHOW SESSION STATUS LIKE 'Ssl_version'") != 0)
    return conn_fail(L, c->m, NULL);
  lua_setfield(L, -2, "version");
  /* The connection exists, so any verification asked for passed: the modes
  ** verify_*, and on Connector/C any mode given a CA (as MySQL's client
  ** turns REQUIRED with --ssl-ca into VERIFY_CA). */
#if defined(MYSEAL_HAVE_SSL_MODE)
  lua_pushboolean(L, c->mode >= TLS_VERIFY_CA);
#else
  lua_pushboolean(L, c->mode >= TLS_VERIFY_CA || c->has_ca);
#endif
  lua_setfield(L, -2, "verified");
  lua_pushboolean(L, c->mode == TLS_VERIFY_IDENTITY);
  lua_setfield(L, -2, "identity");
  X509 *peer = peer_cert(c->m);
  if (peer != NULL) {
    lua_createtable(L, 0, 3);
    push_name(L, X509_get_subject_name(peer));
    lua_setfield(L, -2, "subject");
    push_name(L, X509_get_issuer_name(peer));
    lua_setfield(L, -2, "issuer");
    time_t t = 0;
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(peer), &tm) == 1) {
      t = timegm(&tm);
      lua_pushinteger(L, (lua_Integer)t);
      lua_setfield(L, -2, "not_after");
    }
    X509_free(peer);
    lua_setfield(L, -2, "peer");
  }
  return 1;
}

/* conn:ping() -> true | nil, msg, errno, sqlstate */
static int conn_ping (lua_State *L) {
  conn *c = check_conn(L, 1);
  if (mysql_ping(c->m) != 0)
    return conn_fail(L, c->m, NULL);
  lua_pushboolean(L, 1);
  return 1;
}


/* --- module functions ------------------------------------------------------ */

/* mysql.ident(name) -> `name` with backticks doubled */
static int m_ident (lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0, 1, "an identifier cannot be empty");
  luaL_argcheck(L, memchr(s, '\0', len) == NULL, 1, "an identifier cannot contain a NUL byte");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '`');
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '`')
      luaL_addchar(&b, '`');
    luaL_addchar(&b, s[i]);
  }
  luaL_addchar(&b, '`');
  luaL_pushresult(&b);
  return 1;
}

/***
The statement with its `?` placeholders replaced by literals, for people to
read (plan output, journals, messages); never sent to a server. The
placeholders are found by the scanner that binding uses (none inside quotes,
quoted identifiers or comments). Strings are quoted with quotes doubled and
no backslash escapes (not UTF-8: `X'hex'`); numbers as numbers; booleans
TRUE / FALSE; nil and mysql.null NULL.
@function format
@tparam string sql the statement
@param ... one value per placeholder
@treturn string the text
@raise "SQL has N placeholder(s) but M value(s) were given: SQL", or a value
that has no literal (a table, a function, NaN)
*/
static int m_format (lua_State *L) {
  bind_sql(L, NULL, 1);
  return 1;
}

static int null_tostring (lua_State *L) {
  lua_pushliteral(L, "mysql.null");
  return 1;
}

static const luaL_Reg m_funcs[] = {
  {"connect", m_connect},
  {"ident", m_ident},
  {"format", m_format},
  {NULL, NULL}
};

static const luaL_Reg conn_methods[] = {
  {"query", conn_query},
  {"exec", conn_exec},
  {"rows", conn_rows},
  {"quote", conn_quote},
  {"server", conn_server},
  {"tls", conn_tls},
  {"ping", conn_ping},
  {"close", conn_close},
  {NULL, NULL}
};

static const luaL_Reg conn_meta[] = {
  {"__gc", conn_close},
  {"__close", conn_close},
  {"__tostring", conn_tostring},
  {NULL, NULL}
};

static const luaL_Reg cursor_meta[] = {
  {"__gc", cursor_close},
  {"__close", cursor_close},
  {"__tostring", cursor_tostring},
  {NULL, NULL}
};

static const luaL_Reg cursor_methods[] = {
  {"close", cursor_close},
  {NULL, NULL}
};

#define NULL_MT "myseal.mysql.Null"

static const luaL_Reg null_meta[] = {
  {"__tostring", null_tostring},
  {NULL, NULL}
};

int luaopen_mysql (lua_State *L) {
  myseal_newtype(L, CONN_MT, conn_methods, conn_meta);
  myseal_newtype(L, CURSOR_MT, cursor_methods, cursor_meta);
  myseal_newtype(L, NULL_MT, NULL, null_meta);

  luaL_newlib(L, m_funcs);
  lua_newtable(L);  /* mysql.null: a unique sentinel */
  luaL_setmetatable(L, NULL_MT);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "myseal.mysql.null");
  lua_setfield(L, -2, "null");
  lua_pushstring(L, mysql_get_client_info());
  lua_setfield(L, -2, "client_version");
  return 1;
}
