/*
** fuzz_cnf_edit.c: edit a parsed option file (set a value taken from the
** input, a bare flag, unset), render, parse again: the result must parse and
** read back the values that were set.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnfmodel.h"

static void check_value (const cm_doc *d, const char *group, const char *name, const char *want,
                         size_t wlen) {
  long i = cm_find(d, group, name);
  if (i < 0)
    abort();
  size_t len = 0;
  char *v = cm_value(&d->lines[i], &len);
  if (want == NULL ? v != NULL : (v == NULL || len != wlen || memcmp(v, want, len) != 0))
    abort();
  free(v);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  /* the first bytes (up to a NUL or 64) are a value, the rest the file */
  size_t vlen = 0;
  while (vlen < size && vlen < 64 && data[vlen] != 0)
    vlen++;
  const char *value = (const char *)data;
  const char *text = (const char *)data + vlen + (vlen < size ? 1 : 0);
  size_t tlen = size - (size_t)(text - (const char *)data);
  cm_doc d;
  char err[256];
  size_t line;
  if (cm_parse(&d, text, tlen, err, sizeof(err), &line) != 0)
    return 0;
  if (cm_set(&d, "mysqld", "fuzz-value", value, vlen) != 0 ||
      cm_set(&d, "mariadb", "fuzz_flag", NULL, 0) != 0)
    abort();
  cm_unset(&d, "mysqld", "port");
  size_t len;
  char *out = cm_render(&d, &len);
  cm_doc again;
  if (out == NULL || cm_parse(&again, out, len, err, sizeof(err), &line) != 0)
    abort();
  check_value(&again, "mysqld", "fuzz_value", value, vlen);
  check_value(&again, "mariadb", "fuzz-flag", NULL, 0);
  if (cm_find(&again, "mysqld", "port") >= 0)
    abort();
  free(out);
  cm_free(&again);
  cm_free(&d);
  return 0;
}
