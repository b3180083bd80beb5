/*
** fuzz_cnf_parse.c: any bytes either fail to parse with a message and a
** line, or parse and render back to exactly the same bytes.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cnfmodel.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  cm_doc d;
  char err[256];
  size_t line = 0;
  if (cm_parse(&d, (const char *)data, size, err, sizeof(err), &line) != 0) {
    if (err[0] == '\0' || line == 0)
      abort();  /* a failure must say what and where */
    return 0;
  }
  size_t len;
  char *text = cm_render(&d, &len);
  if (text == NULL || len != size || memcmp(text, data, size) != 0)
    abort();
  for (size_t i = 0; i < d.n; i++) {
    size_t vlen;
    free(cm_value(&d.lines[i], &vlen));
  }
  free(text);
  cm_free(&d);
  return 0;
}
