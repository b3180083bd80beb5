/*
** test_cnfmodel.c: the option-file line model: byte-exact round trips, the
** server's reading rules, edits, and refusals.
*/
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "cnfmodel.h"

static char err[256];
static size_t errline;

static int parse (cm_doc *d, const char *text) {
  return cm_parse(d, text, strlen(text), err, sizeof(err), &errline);
}

static char *render (const cm_doc *d) {
  static char *last;
  free(last);
  size_t len;
  last = cm_render(d, &len);
  return last;
}

static char *value_of (const cm_doc *d, const char *section, const char *name) {
  static char *last;
  free(last);
  last = NULL;
  long i = cm_find(d, section, name);
  if (i < 0)
    return NULL;
  size_t len;
  last = cm_value(&d->lines[i], &len);
  return last ? last : (char *)"(flag)";
}

static void test_round_trip (void) {
  const char *texts[] = {
    "",
    "[mysqld]\nport = 3306\n",
    "\xEF\xBB\xBF[mysqld]\r\nbasedir=\"C:/Program Files/MariaDB 10.11\"\r\n\r\n; comment\r\n",
    "# top\n[client]\n  socket\t=  /run/mysqld/mysqld.sock   # trailing\nskip-ssl\n!includedir /etc/mysql/conf.d/\n",
    "[mysqld]\nno-final-newline=1",
  };
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    cm_doc d;
    CHECK(parse(&d, texts[i]) == 0);
    CHECK_STR(render(&d), texts[i]);
    cm_free(&d);
  }
}

static void test_reading (void) {
  cm_doc d;
  CHECK(parse(&d, "[mysqld]\n"
                  "skip-name-resolve\n"
                  "a = 'x # not a comment'  # a comment\n"
                  "b=\"C:\\\\data\\\\my\"\n"
                  "c=tab\\there\n"
                  "d=it's#1\n"
                  "loose-ssl-ca=/etc/ca.pem\n"
                  "[Client]\n"
                  "user=app\n") == 0);
  CHECK_STR(value_of(&d, "mysqld", "skip_name_resolve"), "(flag)");
  CHECK_STR(value_of(&d, "mysqld", "a"), "x # not a comment");
  CHECK_STR(value_of(&d, "mysqld", "b"), "C:\\data\\my");
  CHECK_STR(value_of(&d, "mysqld", "c"), "tab\there");
  CHECK_STR(value_of(&d, "mysqld", "d"), "it's#1");   /* the quote opens: no comment */
  CHECK_STR(value_of(&d, "mysqld", "ssl_ca"), "/etc/ca.pem");
  CHECK_STR(value_of(&d, "client", "USER"), "app");
  CHECK(value_of(&d, "client", "a") == NULL);
  CHECK(d.lines[2].section == 0 && d.lines[8].section == 7);
  cm_free(&d);
}

/* What my_print_defaults (MariaDB 10.11) prints for the same lines; the
** server reads them so, a person may not expect it: flagged. */
static void test_server_rules (void) {
  cm_doc d;
  CHECK(parse(&d, "[mysqld]\n"
                  "fields-optionally-enclosed-by=\"\n"           /* mysql-test's bug15328.cnf */
                  "plugin_dir = \"C:\\Program Files\\plugin\\\" \n"
                  "q1 = \"abc\n"
                  "q4 = a \"b # c\" d # e\n"
                  "q8 = \"\n"
                  "v1 = a\v\n"
                  "v2 = b\f\n"
                  "v3 = voil\xC3\xA0\n"
                  "\vv4 = d\n"
                  "! include /etc/x.cnf\n"
                  "!bogus directive\n"
                  "[ mysqld ]\n"
                  "a=1\n"
                  "[mysqld ] trailing\n"
                  "[]\n") == 0);
  CHECK_STR(value_of(&d, "mysqld", "fields_optionally_enclosed_by"), "\"");
  CHECK(d.lines[1].warn == CM_W_OPEN_QUOTE);
  CHECK_STR(value_of(&d, "mysqld", "plugin_dir"), "C:\\Program Files\\plugin\\");
  CHECK(d.lines[2].warn == 0);
  CHECK_STR(value_of(&d, "mysqld", "q1"), "\"abc");
  CHECK_STR(value_of(&d, "mysqld", "q4"), "a \"b # c\" d");
  CHECK_STR(value_of(&d, "mysqld", "q8"), "\"");
  CHECK_STR(value_of(&d, "mysqld", "v1"), "a");
  CHECK_STR(value_of(&d, "mysqld", "v2"), "b");
  CHECK_STR(value_of(&d, "mysqld", "v3"), "voil\xC3");   /* 0xA0 is a latin1 blank */
  CHECK(d.lines[8].warn == CM_W_A0);
  CHECK_STR(value_of(&d, "mysqld", "v4"), "d");
  CHECK(d.lines[10].kind == CM_INCLUDE && d.lines[10].name_len == 10);
  CHECK(d.lines[11].kind == CM_DIRECTIVE && d.lines[11].warn == CM_W_DIRECTIVE);
  CHECK(d.lines[12].kind == CM_SECTION && d.lines[12].warn == CM_W_GROUP_BLANK);
  CHECK(!cm_same_section(&d.lines[12], "mysqld") && cm_same_section(&d.lines[12], " mysqld"));
  CHECK(cm_find(&d, "mysqld", "a") == -1 && cm_find(&d, " mysqld", "a") == 13);
  CHECK(cm_same_section(&d.lines[14], "mysqld") && d.lines[14].warn == CM_W_GROUP_TEXT);
  CHECK(d.lines[15].name_len == 0 && d.lines[15].warn == CM_W_GROUP_EMPTY);
  cm_free(&d);

  /* a line longer than the server's buffer: split, the rest a second (bogus) option */
  char *text = malloc(CM_SERVER_LINE * 3);
  int n = snprintf(text, CM_SERVER_LINE * 3, "[mysqld]\nlong=");
  memset(text + n, 'x', 5000);
  strcpy(text + n + 5000, "\nexact=");
  n += 5000 + 7;
  memset(text + n, 'y', CM_SERVER_LINE - 6);   /* the newline is the 4095th byte: harmless */
  strcpy(text + n + CM_SERVER_LINE - 6, "\n");
  CHECK(parse(&d, text) == 0);
  CHECK(d.lines[1].warn == CM_W_LONG && d.lines[2].warn == 0);
  cm_free(&d);
  free(text);
}

static void test_errors (void) {
  cm_doc d;
  CHECK(parse(&d, "port=1\n") == -1);
  CHECK_STR(err, "option 'port' comes before any [group]");
  CHECK(errline == 1);
  CHECK(parse(&d, "[mysqld\n") == -1);
  CHECK_STR(err, "unterminated group name (no ']')");
  CHECK(parse(&d, "[mysqld]\nbind address = 1\n") == -1);
  CHECK_STR(err, "'bind' is followed by 'address = 1': a space in an option name, or a missing '='");
  CHECK(parse(&d, "[mysqld]\n!include \t\n") == -1);
  CHECK_STR(err, "!include without a path");
  CHECK(errline == 2);
  CHECK(cm_parse(&d, "[a]\nx=1\n\0\1\2", 11, err, sizeof(err), &errline) == -1);
  CHECK_STR(err, "a binary file, not an option file (a NUL byte)");
  CHECK(errline == 3);
}

static void test_editing (void) {
  cm_doc d;
  CHECK(parse(&d, "[mysqld]\r\n  port = 3306   # the port\r\nskip-ssl\r\n\r\n[client]\r\nuser=x") == 0);
  CHECK(cm_set(&d, "mysqld", "port", "3307", 4) == 0);
  CHECK(cm_set(&d, "mysqld", "ssl-ca", "/etc/my ca.pem", 14) == 0);
  CHECK(cm_set(&d, "mysqld", "skip_ssl", NULL, 0) == 0);
  CHECK(cm_set(&d, "client", "password", "p#ss\"w", 6) == 0);
  CHECK(cm_set(&d, "mariadb", "plugin_load_add", "file_key_management", 19) == 0);
  CHECK_STR(render(&d), "[mysqld]\r\n  port = 3307   # the port\r\nskip-ssl\r\nssl-ca=/etc/my ca.pem\r\n\r\n"
                        "[client]\r\nuser=x\r\npassword=\"p#ss\\\"w\"\r\n\r\n[mariadb]\r\n"
                        "plugin_load_add=file_key_management\r\n");
  CHECK_STR(value_of(&d, "client", "password"), "p#ss\"w");
  CHECK(cm_unset(&d, "mysqld", "port") == 1);
  CHECK(cm_unset(&d, "mysqld", "port") == 0);
  CHECK(cm_set(&d, "mysqld", "bad name", "1", 1) == EINVAL);
  CHECK(cm_add_section(&d, "client") == 0);
  CHECK_STR(render(&d), "[mysqld]\r\nskip-ssl\r\nssl-ca=/etc/my ca.pem\r\n\r\n"
                        "[client]\r\nuser=x\r\npassword=\"p#ss\\\"w\"\r\n\r\n[mariadb]\r\n"
                        "plugin_load_add=file_key_management\r\n");
  /* what we wrote reads back the same */
  size_t len;
  char *text = cm_render(&d, &len);
  cm_doc again;
  CHECK(cm_parse(&again, text, len, err, sizeof(err), &errline) == 0);
  CHECK_STR(value_of(&again, "mysqld", "ssl_ca"), "/etc/my ca.pem");
  free(text);
  cm_free(&again);
  cm_free(&d);
}

int main (void) {
  test_round_trip();
  test_reading();
  test_server_rules();
  test_errors();
  test_editing();
  return check_done();
}
