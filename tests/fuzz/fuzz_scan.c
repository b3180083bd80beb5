/*
** fuzz_scan.c: the scanner's counts equal a naive search's, whatever the
** patterns, the data and the pieces it is fed in.
**
** Input: byte 0 = number of patterns (1 + b % 8), byte 1 = piece size seed;
** then each pattern as one length byte (1 + b % 48) and that many bytes; the
** rest is the data. Short inputs are padded with nothing: missing pattern bytes
** make the input uninteresting, not an error.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

static uint64_t naive (const uint8_t *hay, size_t n, const uint8_t *pat, size_t m) {
  uint64_t c = 0;
  for (size_t i = 0; m <= n && i + m <= n; i++)
    if (memcmp(hay + i, pat, m) == 0)
      c++;
  return c;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  size_t n = 1 + data[0] % 8;
  size_t piece = 1 + data[1] * 37u;
  size_t at = 2;
  const unsigned char *pats[8];
  size_t lens[8];
  for (size_t i = 0; i < n; i++) {
    if (at >= size)
      return 0;
    lens[i] = 1 + data[at++] % 48;
    if (size - at < lens[i])
      return 0;
    pats[i] = data + at;
    at += lens[i];
  }
  const uint8_t *hay = data + at;
  size_t len = size - at;
  int err;
  size_t bad;
  scan_set *s = scan_compile(pats, lens, n, &err, &bad);
  if (s == NULL)
    abort();  /* every pattern here is valid */
  uint64_t counts[8] = {0}, whole[8] = {0};
  scan_stream *st = scan_stream_new(s, counts, UINT64_MAX);
  for (size_t off = 0; off < len; off += piece)
    scan_stream_feed(st, hay + off, len - off < piece ? len - off : piece);
  scan_stream_finish(st);
  uint64_t want[8];
  for (size_t i = 0; i < n; i++)
    if ((want[i] = naive(hay, len, pats[i], lens[i])) != counts[i])
      abort();
  scan_stream_feed(st, hay, len);  /* a finished stream starts again at 0 */
  scan_stream_finish(st);
  scan_stream_free(st);
  uint64_t limit = len / 2;
  st = scan_stream_new(s, whole, limit);
  scan_stream_feed(st, hay, len);
  scan_stream_finish(st);
  scan_stream_free(st);
  for (size_t i = 0; i < n; i++) {
    if (counts[i] != 2 * want[i])
      abort();
    /* starts before limit: the matches in the first limit + len - 1 bytes that start there */
    size_t head = limit + lens[i] - 1 < len ? (size_t)limit + lens[i] - 1 : len;
    if (whole[i] != naive(hay, head, pats[i], lens[i]))
      abort();
  }
  scan_free(s);
  return 0;
}
