/*
** notes.c: see notes.h.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notes.h"

int nt_addf (nt_list *l, const char *fmt, ...) {
  char text[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  char **t = realloc(l->text, (l->n + 1) * sizeof(char *));
  if (t == NULL)
    return ENOMEM;
  l->text = t;
  if ((t[l->n] = strdup(text)) == NULL)
    return ENOMEM;
  l->n++;
  return 0;
}

void nt_free (nt_list *l) {
  for (size_t i = 0; i < l->n; i++)
    free(l->text[i]);
  free(l->text);
  l->text = NULL;
  l->n = 0;
}
