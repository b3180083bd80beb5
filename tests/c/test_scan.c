/*
** test_scan.c: the pattern scanner counts what a naive search at every offset
** counts, whatever the pieces a stream is fed in, across buffer and range
** boundaries, in files, on one thread or several.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include "check.h"
#include "scan.h"

static uint64_t naive (const unsigned char *hay, size_t n, const unsigned char *pat, size_t m) {
  uint64_t c = 0;
  for (size_t i = 0; m <= n && i + m <= n; i++)
    if (memcmp(hay + i, pat, m) == 0)
      c++;
  return c;
}

static uint32_t rng = 12345;
static uint32_t next_rand (void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static scan_set *compile_strs (const char *const *pats, size_t n) {
  size_t lens[16];
  for (size_t i = 0; i < n; i++)
    lens[i] = strlen(pats[i]);
  int err;
  size_t bad;
  return scan_compile((const unsigned char *const *)pats, lens, n, &err, &bad);
}

/* Counts with one stream fed in pieces of `piece` bytes (0: random sizes). */
static void stream_counts (const scan_set *s, const void *data, size_t n, size_t piece, uint64_t *counts) {
  memset(counts, 0, scan_patterns(s) * sizeof(uint64_t));
  scan_stream *st = scan_stream_new(s, counts, UINT64_MAX);
  const unsigned char *p = data;
  size_t at = 0;
  while (at < n) {
    size_t k = piece ? piece : 1 + next_rand() % 300000;
    if (k > n - at)
      k = n - at;
    scan_stream_feed(st, p + at, k);
    at += k;
  }
  scan_stream_finish(st);
  scan_stream_free(st);
}

/* Every count of the set over data equals the naive one, for several ways of feeding it. */
static int agrees (const unsigned char *const *pats, const size_t *lens, size_t n,
                   const unsigned char *data, size_t len) {
  int err;
  size_t bad;
  scan_set *s = scan_compile(pats, lens, n, &err, &bad);
  if (s == NULL)
    return 0;
  uint64_t *counts = malloc(n * sizeof(uint64_t));
  static const size_t pieces[] = {0, 1, 7, 4096, SCAN_CHUNK, SIZE_MAX};
  int ok = 1;
  for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]) && ok; k++) {
    stream_counts(s, data, len, pieces[k], counts);
    for (size_t i = 0; i < n; i++)
      if (counts[i] != naive(data, len, pats[i], lens[i])) {
        fprintf(stderr, "pattern %zu (len %zu), pieces of %zu: got %llu want %llu\n", i, lens[i],
                pieces[k], (unsigned long long)counts[i],
                (unsigned long long)naive(data, len, pats[i], lens[i]));
        ok = 0;
      }
  }
  free(counts);
  scan_free(s);
  return ok;
}

static void test_compile (void) {
  int err;
  size_t bad;
  const unsigned char *p[] = {(const unsigned char *)"abcdefgh", (const unsigned char *)""};
  size_t lens[] = {8, 0};
  CHECK(scan_compile(p, lens, 2, &err, &bad) == NULL && err == EINVAL && bad == 1);
  CHECK(scan_compile(p, lens, 0, &err, &bad) == NULL && err == EINVAL && bad == 0);
  lens[1] = SCAN_MAX_PATTERN + 1;
  CHECK(scan_compile(p, lens, 2, &err, &bad) == NULL && err == EINVAL && bad == 1);
  scan_set *s = scan_compile(p, lens, 1, &err, &bad);
  CHECK(s != NULL && err == 0 && scan_patterns(s) == 1 && scan_samples(s) == 1);
  scan_free(s);
  const char *shorts[] = {"abcdefgh", "abc"};
  s = compile_strs(shorts, 2);
  CHECK(s != NULL && scan_samples(s) == 0);
  scan_free(s);
  scan_free(NULL);
  scan_stream_free(NULL);
}

static void test_simple (void) {
  const char *pats[] = {"needle-one", "needle-two!", "aaaaaaaa", "needle"};
  scan_set *s = compile_strs(pats, 4);
  const char *text = "xx needle-one yy needle-two! needle-one aaaaaaaaaa needle";
  uint64_t c[4];
  stream_counts(s, text, strlen(text), 1, c);
  CHECK(c[0] == 2 && c[1] == 1 && c[2] == 3 && c[3] == 4);
  stream_counts(s, text, strlen(text), SIZE_MAX, c);
  CHECK(c[0] == 2 && c[1] == 1 && c[2] == 3 && c[3] == 4);
  /* at the very start and the very end, nothing else */
  stream_counts(s, "needle-one", 10, 3, c);
  CHECK(c[0] == 1 && c[1] == 0 && c[2] == 0 && c[3] == 1);
  stream_counts(s, "needle-on", 9, 3, c);
  CHECK(c[0] == 0 && c[3] == 1);
  stream_counts(s, "", 0, 1, c);
  CHECK(c[0] == 0 && c[3] == 0);
  scan_free(s);
}

static void test_binary_and_duplicates (void) {
  const unsigned char a[] = {0, 1, 2, 0, 0, 0, 3, 4, 5};
  const unsigned char *pats[] = {a, a, a + 3};
  size_t lens[] = {9, 9, 3};
  unsigned char data[64] = {0};
  memcpy(data + 10, a, 9);
  memcpy(data + 40, a, 9);
  CHECK(agrees(pats, lens, 3, data, sizeof(data)));
  int err;
  size_t bad;
  scan_set *s = scan_compile(pats, lens, 3, &err, &bad);
  uint64_t c[3];
  stream_counts(s, data, sizeof(data), 5, c);
  CHECK(c[0] == 2 && c[1] == 2 && c[2] == naive(data, sizeof(data), a + 3, 3) && c[2] == 44);
  scan_free(s);
}

/* A match straddling the stream's buffer boundary and one across each piece. */
static void test_boundaries (void) {
  size_t n = 3 * SCAN_CHUNK + 1000;
  unsigned char *data = malloc(n);
  for (size_t i = 0; i < n; i++)
    data[i] = (unsigned char)('a' + next_rand() % 3);
  const unsigned char *marker = (const unsigned char *)"MYSEAL-BOUNDARY-MARKER-0123456789";
  size_t mlen = strlen((const char *)marker);
  size_t at[] = {0, SCAN_CHUNK - 5, 2 * SCAN_CHUNK - mlen + 1, 2 * SCAN_CHUNK + mlen + 100, n - mlen};
  for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++)
    memcpy(data + at[k], marker, mlen);
  const unsigned char *pats[] = {marker, marker + 20, (const unsigned char *)"abcabcab"};
  size_t lens[] = {mlen, mlen - 20, 8};
  CHECK(agrees(pats, lens, 3, data, n));
  CHECK(naive(data, n, marker, mlen) == 5);
  free(data);
}

/* Random sets over small alphabets, so that hashes collide and patterns overlap. */
static void test_random (void) {
  for (int round = 0; round < 300; round++) {
    size_t n = 1 + next_rand() % 12;
    unsigned alpha = 2 + next_rand() % 4;
    size_t len = next_rand() % 5000;
    unsigned char *data = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
      data[i] = (unsigned char)('a' + next_rand() % alpha);
    unsigned char *pats[12];
    const unsigned char *cpats[12];
    size_t lens[12];
    size_t base = 1 + next_rand() % 20;
    for (size_t i = 0; i < n; i++) {
      lens[i] = base + next_rand() % 30;
      pats[i] = malloc(lens[i]);
      if (len > lens[i] && next_rand() % 2) /* often one that occurs */
        memcpy(pats[i], data + next_rand() % (len - lens[i]), lens[i]);
      else
        for (size_t j = 0; j < lens[i]; j++)
          pats[i][j] = (unsigned char)('a' + next_rand() % alpha);
      cpats[i] = pats[i];
    }
    int ok = agrees(cpats, lens, n, data, len);
    CHECK(ok);
    for (size_t i = 0; i < n; i++)
      free(pats[i]);
    free(data);
    if (!ok)
      break;
  }
}

static void test_limit (void) {
  const char *pats[] = {"0123456789"};
  scan_set *s = compile_strs(pats, 1);
  const char *text = "0123456789 0123456789 0123456789";
  uint64_t c = 0;
  scan_stream *st = scan_stream_new(s, &c, 12);  /* starts 0 and 11 only */
  scan_stream_feed(st, text, strlen(text));
  scan_stream_finish(st);
  CHECK(c == 2);
  scan_stream_free(st);
  scan_free(s);
}

static char dir[] = "/tmp/test-scan-XXXXXX";

static const char *write_file (const char *name, const void *data, size_t len) {
  static char paths[8][256];
  static int k;
  char *p = paths[k++ % 8];
  snprintf(p, 256, "%s/%s", dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (write(fd, data, len) != (ssize_t)len)
    abort();
  close(fd);
  return p;
}

static void test_files (void) {
  if (mkdtemp(dir) == NULL)
    abort();
  const char *marker = "PATIENT-NAME-4711-Zweistein";
  size_t mlen = strlen(marker);
  /* 70 MB: three ranges, with the marker across both range boundaries */
  size_t n = (size_t)70 << 20;
  unsigned char *big = calloc(n, 1);
  size_t at[] = {5, ((size_t)32 << 20) - 3, ((size_t)64 << 20) - mlen, n - mlen};
  for (size_t k = 0; k < 4; k++)
    memcpy(big + at[k], marker, mlen);
  const char *f_big = write_file("big", big, n);
  free(big);
  const char *f_small = write_file("small", "..PATIENT-NAME-4711-Zweistein..", 31);
  const char *f_none = write_file("none", "nothing here", 12);
  const char *f_empty = write_file("empty", "", 0);
  char f_missing[300], f_dir[300];
  snprintf(f_missing, sizeof(f_missing), "%s/missing", dir);
  snprintf(f_dir, sizeof(f_dir), "%s", dir);
  const char *pats[] = {marker, "4711-Zwei"};
  scan_set *s = compile_strs(pats, 2);
  for (int threads = 1; threads <= 4; threads += 3) {
    scan_file files[] = {{.path = f_big}, {.path = f_small}, {.path = f_none}, {.path = f_empty},
                         {.path = f_missing}, {.path = f_dir}};
    CHECK(scan_files(s, files, 6, threads) == 0);
    CHECK(files[0].err == 0 && files[0].bytes == n && files[0].hits == 8);
    CHECK(files[0].counts != NULL && files[0].counts[0] == 4 && files[0].counts[1] == 4);
    CHECK(files[1].err == 0 && files[1].bytes == 31 && files[1].hits == 2);
    CHECK(files[2].err == 0 && files[2].bytes == 12 && files[2].hits == 0 && files[2].counts == NULL);
    CHECK(files[3].err == 0 && files[3].bytes == 0 && files[3].hits == 0);
    CHECK(files[4].err == ENOENT);
    CHECK(files[5].err == SCAN_ENOTREG);
    for (int i = 0; i < 6; i++)
      free(files[i].counts);
  }
  scan_free(s);
  unlink(f_big);
  unlink(f_small);
  unlink(f_none);
  unlink(f_empty);
  rmdir(dir);
}

int main (void) {
  test_compile();
  test_simple();
  test_binary_and_duplicates();
  test_boundaries();
  test_random();
  test_limit();
  test_files();
  return check_done();
}
