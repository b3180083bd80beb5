/*
** scan.h: counting many byte patterns in streams and files, with no Lua in it
** (used by lscan.c as sys.scan, tested by tests/c/test_scan.c, fuzzed by
** tests/fuzz/fuzz_scan.c).
**
** Every occurrence is counted, overlapping ones included, exactly as a naive
** search at every offset would count them. Memory per stream is constant: one
** buffer of SCAN_CHUNK bytes plus the longest pattern. The patterns are
** secrets: they are copied into the set, never reported, and wiped when the
** set is freed.
*/
#ifndef MYSEAL_SCAN_H
#define MYSEAL_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define SCAN_MAX_PATTERN 65536        /* bytes in one pattern */
#define SCAN_MAX_PATTERNS (1u << 20)  /* patterns in one set */
#define SCAN_CHUNK (128u * 1024)      /* bytes scanned per buffer */
#define SCAN_ENOTREG (-1)             /* scan_file.err: not a regular file */

typedef struct scan_set scan_set;

/* A matcher for n patterns (pats[i] of lens[i] bytes, 1 to SCAN_MAX_PATTERN;
** 1 to SCAN_MAX_PATTERNS of them). The bytes are copied. Returns the set, or
** NULL with *err set: EINVAL (*bad is then the index of the bad pattern, or n
** for a bad count) or ENOMEM. */
scan_set *scan_compile (const unsigned char *const *pats, const size_t *lens, size_t n,
                        int *err, size_t *bad);

size_t scan_patterns (const scan_set *s);

/* Wipes the copies of the patterns and frees the set. NULL is fine. */
void scan_free (scan_set *s);

/* For tests: 1 when the set uses the sampling filter (every pattern is at
** least 5 bytes long), 0 when it checks every offset. */
int scan_samples (const scan_set *s);


/* --- streams: feed bytes in pieces of any size ---------------------------- */

typedef struct scan_stream scan_stream;

/* A stream adding its matches into counts[0 .. scan_patterns(s)-1]. Only
** matches starting before byte `limit` of the stream are counted (UINT64_MAX:
** all of them). The set must outlive the stream. NULL: out of memory. */
scan_stream *scan_stream_new (const scan_set *s, uint64_t *counts, uint64_t limit);

void scan_stream_feed (scan_stream *st, const void *data, size_t len);

/* Where up to *avail bytes may be written directly (no copy), then
** scan_stream_commit(st, n) with the number written. */
unsigned char *scan_stream_space (scan_stream *st, size_t *avail);
void scan_stream_commit (scan_stream *st, size_t n);

/* Counts what the last bytes still hold; the stream may be fed again after
** as a new stream starting at offset 0. */
void scan_stream_finish (scan_stream *st);

/* Wipes the buffer (it held file data) and frees the stream. NULL is fine. */
void scan_stream_free (scan_stream *st);


/* --- files: many files, large ones split into ranges, on several threads -- */

typedef struct scan_file {
  const char *path;   /* in */
  int err;            /* out: 0, an errno value, or SCAN_ENOTREG */
  uint64_t bytes;     /* out: bytes read */
  uint64_t hits;      /* out: matches of every pattern */
  uint64_t *counts;   /* out: NULL when hits is 0, else scan_patterns(s) counts (free()) */
} scan_file;

/* Scans every file (a file that cannot be read gets its err, the others go
** on) with up to `threads` threads (< 1: one). Files are read with
** O_NOATIME where allowed, up to their end as found while reading. Returns 0,
** or ENOMEM when nothing could be scanned. */
int scan_files (const scan_set *s, scan_file *files, size_t nfiles, int threads);

#endif
