/*
** jdkcase.h: lower-casing as the JDK's keystores do it, with no Lua in it.
** JKS and PKCS#12 key their entries by alias.toLowerCase(Locale.ENGLISH):
** Unicode's simple lower-case mappings as Java has them (its tables are in
** jdkcase.c, made by tests/corpus/Reference.java and checked against the JDK
** by tests/spec/corpus_spec.lua), 'İ' (U+0130) to "i̇", and Σ to ς at the end
** of a word.
*/
#ifndef MYSEAL_JDKCASE_H
#define MYSEAL_JDKCASE_H

#include <stddef.h>

/* UTF-8 s lower-cased, as a new malloc'd string; NULL for malformed UTF-8
** (or when out of memory). */
char *jc_lower (const char *s);

#endif
