/*
** notes.h: a list of formatted messages (the warnings a reader collects
** while it reads), with no Lua in it. Used by keystore.c and lcnf.c.
*/
#ifndef MYSEAL_NOTES_H
#define MYSEAL_NOTES_H

#include <stddef.h>

typedef struct nt_list {
  char **text;
  size_t n;
} nt_list;

/* Appends a message made like printf's. 0, or ENOMEM. */
__attribute__((format(printf, 2, 3)))
int nt_addf (nt_list *l, const char *fmt, ...);

void nt_free (nt_list *l);

#endif
