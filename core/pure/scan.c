/*
** scan.c: many patterns counted in streams and files. No Lua here.
**
** The method is a sampling q-gram filter. Let m be the shortest pattern
** (capped at WINDOW_MAX) and q the gram length (4 bytes, 8 when m >= 16,
** m itself when m < 4). Any occurrence starting at p covers the q-grams
** starting at p .. p+m-q, which are s = m-q+1 consecutive offsets, so exactly
** one of them is a multiple of s. The scan therefore reads one q-gram every s
** bytes (a fixed stride: no data-dependent jump, nothing for the processor to
** wait on), tests a bitmap of hashed q-grams, and only on a hit looks up the
** q-gram in an exact table listing (pattern, offset) pairs to compare in full.
** A match at p is found at its one sample, so every occurrence counts once.
** With probes of 8 bytes or more that reads a fifth of the offsets; with
** patterns under 5 bytes it checks every offset, which is still correct.
**
** The m bytes need not be a pattern's first ones: any m consecutive bytes of
** it serve, and each pattern gets those whose q-grams are rarest among all
** the patterns. Values often share a prefix ("specimen ", "https://"); where
** the data is full of it, grams of that prefix would make every sample a
** candidate for every pattern that starts so.
**
** Streams keep the last (longest pattern - 1) bytes of a buffer in front of
** the next one, so a match across two pieces is seen whole; a start is counted
** in the buffer where the whole longest pattern after it is present.
*/
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define WINDOW_MAX 40
#define WINDOW_SHIFT 64            /* furthest a pattern's window may start */
#define WINDOW_CHOICE (1u << 22)   /* grams counted at most to choose windows */
#define RANGE_BYTES ((uint64_t)32 << 20)  /* larger files are split into ranges this long */

typedef struct gram_slot {
  uint64_t gram;
  uint32_t first, count;    /* entries[first .. first+count); count 0: empty slot */
} gram_slot;

typedef struct gram_entry {
  uint32_t pat, off;        /* pattern pat has the gram at offset off */
} gram_entry;

struct scan_set {
  size_t n;
  unsigned char *blob;      /* every pattern, one after another */
  size_t blob_len;
  size_t *start, *len;      /* pattern i is blob[start[i] .. start[i]+len[i]) */
  uint64_t *tail;           /* its last 8 bytes (8 or more): compared before the whole */
  size_t minlen, maxlen;
  unsigned q, window, stride;
  size_t span;              /* a sample lies at most this far after a start */
  uint64_t mask;            /* the first q bytes of a little or big endian load */
  unsigned bits;            /* the bitmap has 1 << bits bits */
  uint64_t *bitmap;
  unsigned tbits;           /* the exact table has 1 << tbits slots */
  gram_slot *slots;
  gram_entry *entries;
  size_t nentries;
};


static void wipe (void *p, size_t n) {
  if (p == NULL || n == 0)
    return;
#if defined(__GLIBC__)
  explicit_bzero(p, n);
#else
  volatile unsigned char *v = p;
  while (n--)
    *v++ = 0;
#endif
}


static inline uint64_t load8 (const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}


/* The first avail (< 8) bytes at p, the rest zero: same byte order as load8. */
static uint64_t load_short (const unsigned char *p, size_t avail) {
  unsigned char b[8] = {0};
  memcpy(b, p, avail < 8 ? avail : 8);
  return load8(b);
}


static inline size_t hash_bit (uint64_t g, unsigned bits) {
  return (size_t)((g * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}


static inline size_t hash_slot (uint64_t g, unsigned bits) {
  g ^= g >> 29;
  return (size_t)((g * 0xBF58476D1CE4E5B9ull) >> (64 - bits));
}


static unsigned ceil_log2 (uint64_t x) {
  unsigned b = 0;
  while (b < 63 && ((uint64_t)1 << b) < x)
    b++;
  return b;
}


typedef struct gram_tmp {
  uint64_t gram;
  uint32_t pat, off;
} gram_tmp;


static int cmp_gram (const void *a, const void *b) {
  const gram_tmp *x = a, *y = b;
  if (x->gram != y->gram)
    return x->gram < y->gram ? -1 : 1;
  if (x->pat != y->pat)
    return x->pat < y->pat ? -1 : 1;
  return x->off < y->off ? -1 : x->off > y->off;
}


void scan_free (scan_set *s) {
  if (s == NULL)
    return;
  wipe(s->blob, s->blob_len);
  wipe(s->tail, s->n * sizeof(uint64_t));
  free(s->tail);
  wipe(s->slots, ((size_t)1 << s->tbits) * sizeof(gram_slot));
  wipe(s->bitmap, ((size_t)1 << s->bits) / 8);
  free(s->blob);
  free(s->slots);
  free(s->bitmap);
  free(s->entries);
  free(s->start);
  free(s->len);
  wipe(s, sizeof(*s));
  free(s);
}


size_t scan_patterns (const scan_set *s) {
  return s->n;
}


int scan_samples (const scan_set *s) {
  return s->stride > 1;
}


/* Groups the (gram, pattern, offset) triples by gram into the exact table. */
static int build_tables (scan_set *s, gram_tmp *tmp) {
  qsort(tmp, s->nentries, sizeof(gram_tmp), cmp_gram);
  size_t distinct = 0;
  for (size_t i = 0; i < s->nentries; i++)
    if (i == 0 || tmp[i].gram != tmp[i - 1].gram)
      distinct++;
  s->tbits = ceil_log2(distinct * 2);
  if (s->tbits < 4)
    s->tbits = 4;
  s->bits = ceil_log2((uint64_t)s->nentries * 64);  /* about 1 bit in 64 set */
  if (s->bits < 15)
    s->bits = 15;
  if (s->bits > 22)
    s->bits = 22;
  s->slots = calloc((size_t)1 << s->tbits, sizeof(gram_slot));
  s->bitmap = calloc(((size_t)1 << s->bits) / 64, sizeof(uint64_t));
  s->entries = malloc(s->nentries * sizeof(gram_entry));
  if (s->slots == NULL || s->bitmap == NULL || s->entries == NULL)
    return ENOMEM;
  size_t tmask = ((size_t)1 << s->tbits) - 1;
  for (size_t i = 0; i < s->nentries; i++) {
    s->entries[i].pat = tmp[i].pat;
    s->entries[i].off = tmp[i].off;
    size_t b = hash_bit(tmp[i].gram, s->bits);
    s->bitmap[b >> 6] |= (uint64_t)1 << (b & 63);
    if (i > 0 && tmp[i].gram == tmp[i - 1].gram)
      continue;
    size_t k = hash_slot(tmp[i].gram, s->tbits);
    while (s->slots[k].count != 0)
      k = (k + 1) & tmask;
    size_t j = i;
    while (j < s->nentries && tmp[j].gram == tmp[i].gram)
      j++;
    s->slots[k].gram = tmp[i].gram;
    s->slots[k].first = (uint32_t)i;
    s->slots[k].count = (uint32_t)(j - i);
  }
  return 0;
}


/* The q-gram of pattern i at offset off. */
static uint64_t pattern_gram (const scan_set *s, size_t i, size_t off) {
  const unsigned char *p = s->blob + s->start[i] + off;
  size_t rest = s->len[i] - off;
  return (rest >= 8 ? load8(p) : load_short(p, rest)) & s->mask;
}


typedef struct gram_count {
  uint64_t gram;
  uint32_t count;           /* 0: empty slot */
} gram_count;


static uint32_t *count_slot (gram_count *t, unsigned bits, uint64_t g, int add) {
  size_t mask = ((size_t)1 << bits) - 1, k = hash_slot(g, bits);
  while (t[k].count != 0 && t[k].gram != g)
    k = (k + 1) & mask;
  if (t[k].count == 0 && add)
    t[k].gram = g;
  return &t[k].count;
}


/* The start of each pattern's window: where the sum, over its grams, of how
** often each gram occurs in all the patterns is least (first such place). */
static void choose_windows (const scan_set *s, size_t *wstart) {
  size_t total = 0;
  memset(wstart, 0, s->n * sizeof(size_t));
  for (size_t i = 0; i < s->n; i++) {
    size_t shift = s->len[i] - s->window;
    total += (shift < WINDOW_SHIFT ? shift : WINDOW_SHIFT) + s->stride;
  }
  if (total > WINDOW_CHOICE)
    return;  /* a very large set keeps its first bytes: choosing would cost more than it saves */
  unsigned bits = ceil_log2(total * 2);
  gram_count *t = calloc((size_t)1 << bits, sizeof(gram_count));
  if (t == NULL)
    return;
  for (size_t i = 0; i < s->n; i++) {
    size_t shift = s->len[i] - s->window, end = (shift < WINDOW_SHIFT ? shift : WINDOW_SHIFT) + s->stride;
    for (size_t off = 0; off < end; off++)
      (*count_slot(t, bits, pattern_gram(s, i, off), 1))++;
  }
  for (size_t i = 0; i < s->n; i++) {
    size_t shift = s->len[i] - s->window;
    if (shift > WINDOW_SHIFT)
      shift = WINDOW_SHIFT;
    uint64_t c[WINDOW_SHIFT + WINDOW_MAX], sum = 0, best = UINT64_MAX;
    for (size_t off = 0; off < shift + s->stride; off++)
      c[off] = *count_slot(t, bits, pattern_gram(s, i, off), 0);
    for (size_t w = 0; w <= shift; w++) {
      if (w == 0)
        for (size_t k = 0; k < s->stride; k++)
          sum += c[k];
      else
        sum += c[w + s->stride - 1] - c[w - 1];
      if (sum < best) {
        best = sum;
        wstart[i] = w;
      }
    }
  }
  wipe(t, ((size_t)1 << bits) * sizeof(gram_count));
  free(t);
}


scan_set *scan_compile (const unsigned char *const *pats, const size_t *lens, size_t n,
                        int *err, size_t *bad) {
  *err = EINVAL;
  *bad = n;
  if (n < 1 || n > SCAN_MAX_PATTERNS)
    return NULL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (pats[i] == NULL || lens[i] < 1 || lens[i] > SCAN_MAX_PATTERN) {
      *bad = i;
      return NULL;
    }
    total += lens[i];
  }
  *err = ENOMEM;
  scan_set *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->n = n;
  s->blob_len = total;
  s->blob = malloc(total);
  s->start = malloc(n * sizeof(size_t));
  s->len = malloc(n * sizeof(size_t));
  s->tail = malloc(n * sizeof(uint64_t));
  if (s->blob == NULL || s->start == NULL || s->len == NULL || s->tail == NULL) {
    scan_free(s);
    return NULL;
  }
  s->minlen = SIZE_MAX;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(s->blob + at, pats[i], lens[i]);
    s->start[i] = at;
    s->len[i] = lens[i];
    at += lens[i];
    s->tail[i] = lens[i] >= 8 ? load8(s->blob + at - 8) : 0;
    if (lens[i] < s->minlen)
      s->minlen = lens[i];
    if (lens[i] > s->maxlen)
      s->maxlen = lens[i];
  }
  s->q = s->minlen >= 16 ? 8 : s->minlen < 4 ? (unsigned)s->minlen : 4;
  s->window = s->minlen < WINDOW_MAX ? (unsigned)s->minlen : WINDOW_MAX;
  s->stride = s->window - s->q + 1;
  unsigned char m[8] = {0};
  memset(m, 0xff, s->q);
  s->mask = load8(m);
  s->nentries = n * s->stride;
  gram_tmp *tmp = malloc(s->nentries * sizeof(gram_tmp));
  size_t *wstart = malloc(n * sizeof(size_t));
  if (tmp == NULL || wstart == NULL) {
    free(tmp);
    free(wstart);
    scan_free(s);
    return NULL;
  }
  choose_windows(s, wstart);
  size_t k = 0, widest = 0;
  for (size_t i = 0; i < n; i++) {
    for (unsigned j = 0; j < s->stride; j++) {
      tmp[k].gram = pattern_gram(s, i, wstart[i] + j);
      tmp[k].pat = (uint32_t)i;
      tmp[k].off = (uint32_t)(wstart[i] + j);
      k++;
    }
    if (wstart[i] > widest)
      widest = wstart[i];
  }
  free(wstart);
  s->span = widest + s->stride - 1;
  int e = build_tables(s, tmp);
  wipe(tmp, s->nentries * sizeof(gram_tmp));
  free(tmp);
  if (e != 0) {
    scan_free(s);
    return NULL;
  }
  *err = 0;
  return s;
}


/* The sample at i holds gram g whose bit is set: compare the patterns that
** have g at some offset and would start in [lo, hi). */
static void verify (const scan_set *s, const unsigned char *data, size_t len, size_t i,
                    uint64_t g, size_t lo, size_t hi, uint64_t *counts) {
  size_t tmask = ((size_t)1 << s->tbits) - 1;
  size_t k = hash_slot(g, s->tbits);
  while (s->slots[k].gram != g || s->slots[k].count == 0) {
    if (s->slots[k].count == 0)
      return;
    k = (k + 1) & tmask;
  }
  const gram_entry *e = s->entries + s->slots[k].first;
  const gram_entry *end = e + s->slots[k].count;
  for (; e < end; e++) {
    if (e->off > i)
      continue;
    size_t p = i - e->off, plen = s->len[e->pat];
    if (p < lo || p >= hi || plen > len - p)
      continue;
    if (plen >= 8 && load8(data + p + plen - 8) != s->tail[e->pat])
      continue;  /* the gram matched, the end does not: the usual case in text */
    if (memcmp(data + p, s->blob + s->start[e->pat], plen) == 0)
      counts[e->pat]++;
  }
}


/* Counts the matches in data[0 .. len) that start in [lo, hi). */
static void scan_block (const scan_set *s, const unsigned char *data, size_t len,
                        size_t lo, size_t hi, uint64_t *counts) {
  if (len < s->minlen)
    return;
  if (hi > len - s->minlen + 1)
    hi = len - s->minlen + 1;
  if (lo >= hi)
    return;
  const size_t st = s->stride, span = s->span;
  const uint64_t mask = s->mask, *const bm = s->bitmap;
  const unsigned shift = 64 - s->bits;
#define BIT(g) ((bm[((g) * 0x9E3779B97F4A7C15ull) >> shift >> 6] >> \
                 ((((g) * 0x9E3779B97F4A7C15ull) >> shift) & 63)) & 1)
  size_t i = (lo + st - 1) / st * st;
  size_t last = hi - 1 + span;
  if (last > len - s->q)
    last = len - s->q;
  /* two samples at a time while eight bytes can be loaded at each */
  size_t fast_last = len >= 8 && last > len - 8 ? len - 8 : last;
  if (len >= 8 && fast_last >= st) {
    const unsigned char *p = data + i, *const end = data + (fast_last - st);
    for (; p <= end; p += 2 * st) {
      uint64_t g0 = load8(p) & mask, g1 = load8(p + st) & mask;
      uint64_t b0 = BIT(g0), b1 = BIT(g1);
      if (__builtin_expect(b0 | b1, 0)) {
        size_t at = (size_t)(p - data);
        if (b0) verify(s, data, len, at, g0, lo, hi, counts);
        if (b1) verify(s, data, len, at + st, g1, lo, hi, counts);
      }
    }
    i = (size_t)(p - data);
  }
  for (; i <= last; i += st) {
    uint64_t g = (i + 8 <= len ? load8(data + i) : load_short(data + i, len - i)) & mask;
    if (BIT(g))
      verify(s, data, len, i, g, lo, hi, counts);
  }
#undef BIT
}


/* --- streams --------------------------------------------------------------- */

struct scan_stream {
  const scan_set *set;
  uint64_t *counts;
  uint64_t limit;           /* count starts before this stream offset */
  uint64_t base;            /* stream offset of buf[head] */
  size_t keep;              /* bytes carried from one buffer to the next */
  size_t front;             /* new data goes from here: keep rounded up to a page */
  size_t cap, head, len;    /* the bytes held are buf[head .. head+len) */
  unsigned char *buf;
};


scan_stream *scan_stream_new (const scan_set *s, uint64_t *counts, uint64_t limit) {
  scan_stream *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return NULL;
  st->set = s;
  st->counts = counts;
  st->limit = limit;
  st->keep = s->maxlen - 1;
  /* reads land page-aligned (the kernel copies faster), the carried bytes just before */
  st->front = (st->keep + 4095) / 4096 * 4096;
  st->cap = st->front + SCAN_CHUNK;
  st->head = st->front;
  void *buf;
  if (posix_memalign(&buf, 4096, st->cap) != 0) {
    free(st);
    return NULL;
  }
  st->buf = buf;
  return st;
}


void scan_stream_free (scan_stream *st) {
  if (st == NULL)
    return;
  wipe(st->buf, st->cap);
  free(st->buf);
  free(st);
}


/* Scans the bytes held: all of them at the end, else every start whose
** longest possible match is inside; the last keep bytes are carried over. */
static void stream_scan (scan_stream *st, int final) {
  size_t hi = final ? st->len : st->len - st->keep;
  if (st->limit <= st->base)
    hi = 0;
  else if (st->limit - st->base < hi)
    hi = (size_t)(st->limit - st->base);
  scan_block(st->set, st->buf + st->head, st->len, 0, hi, st->counts);
  if (final) {
    st->head = st->front;
    st->len = 0;
    st->base = 0;
    return;
  }
  memmove(st->buf + st->front - st->keep, st->buf + st->head + st->len - st->keep, st->keep);
  st->base += st->len - st->keep;
  st->head = st->front - st->keep;
  st->len = st->keep;
}


unsigned char *scan_stream_space (scan_stream *st, size_t *avail) {
  *avail = st->cap - st->head - st->len;
  return st->buf + st->head + st->len;
}


void scan_stream_commit (scan_stream *st, size_t n) {
  st->len += n;
  if (st->head + st->len == st->cap)
    stream_scan(st, 0);
}


void scan_stream_feed (scan_stream *st, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len > 0) {
    size_t avail;
    unsigned char *dst = scan_stream_space(st, &avail);
    size_t n = len < avail ? len : avail;
    memcpy(dst, p, n);
    scan_stream_commit(st, n);
    p += n;
    len -= n;
  }
}


void scan_stream_finish (scan_stream *st) {
  stream_scan(st, 1);
}


/* --- files ------------------------------------------------------------------- */

typedef struct range {
  size_t file;
  uint64_t start, end;      /* end: UINT64_MAX for the last range (read to the end) */
} range;

typedef struct job {
  const scan_set *set;
  scan_file *files;
  range *ranges;
  size_t nranges, next;
  pthread_mutex_t mu;
} job;

typedef struct worker {
  job *job;
  uint64_t *counts;
  scan_stream *stream;
  pthread_t thread;
} worker;


static int open_file (const char *path, int *fd) {
  *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOATIME);
  if (*fd < 0 && errno == EPERM)  /* O_NOATIME needs the owner or CAP_FOWNER */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (*fd < 0)
    return errno;
  struct stat sb;
  int err = fstat(*fd, &sb) != 0 ? errno : !S_ISREG(sb.st_mode) ? SCAN_ENOTREG : 0;
  if (err != 0) {
    close(*fd);
    *fd = -1;
  }
  return err;
}


/* Reads one range and the longest pattern beyond it; returns 0 or an errno,
** and the bytes of the range itself read in *bytes. */
static int scan_range (worker *w, const range *r, uint64_t *bytes) {
  const scan_set *s = w->job->set;
  int fd;
  int err = open_file(w->job->files[r->file].path, &fd);
  if (err != 0)
    return err;
  int last = r->end == UINT64_MAX;
  uint64_t own = last ? UINT64_MAX : r->end - r->start;
  uint64_t want = last ? UINT64_MAX : own + (s->maxlen - 1);
  (void)posix_fadvise(fd, (off_t)r->start, 0, POSIX_FADV_SEQUENTIAL);
  w->stream->limit = own;
  uint64_t got = 0;
  while (got < want) {
    size_t avail;
    unsigned char *p = scan_stream_space(w->stream, &avail);
    if (avail > want - got)
      avail = (size_t)(want - got);
    ssize_t n = pread(fd, p, avail, (off_t)(r->start + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0)
      break;
    scan_stream_commit(w->stream, (size_t)n);
    got += (uint64_t)n;
  }
  scan_stream_finish(w->stream);
  close(fd);
  *bytes = got < own ? got : own;
  return err;
}


static void merge (worker *w, const range *r, int err, uint64_t bytes) {
  size_t n = w->job->set->n;
  uint64_t hits = 0;
  for (size_t i = 0; i < n; i++)
    hits += w->counts[i];
  pthread_mutex_lock(&w->job->mu);
  scan_file *f = &w->job->files[r->file];
  f->bytes += bytes;
  if (err != 0 && f->err == 0)
    f->err = err;
  if (hits > 0 && f->counts == NULL && f->err == 0) {
    f->counts = calloc(n, sizeof(uint64_t));
    if (f->counts == NULL)
      f->err = ENOMEM;
  }
  if (hits > 0 && f->counts != NULL) {
    for (size_t i = 0; i < n; i++)
      f->counts[i] += w->counts[i];
    f->hits += hits;
  }
  pthread_mutex_unlock(&w->job->mu);
  if (hits > 0)
    memset(w->counts, 0, n * sizeof(uint64_t));
}


static void *work (void *arg) {
  worker *w = arg;
  job *j = w->job;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    size_t k = j->next++;
    pthread_mutex_unlock(&j->mu);
    if (k >= j->nranges)
      break;
    uint64_t bytes = 0;
    int err = scan_range(w, &j->ranges[k], &bytes);
    merge(w, &j->ranges[k], err, bytes);
  }
  return NULL;
}


static void worker_free (worker *w) {
  scan_stream_free(w->stream);
  free(w->counts);
}


int scan_files (const scan_set *s, scan_file *files, size_t nfiles, int threads) {
  uint64_t *sizes = calloc(nfiles ? nfiles : 1, sizeof(uint64_t));
  if (sizes == NULL)
    return ENOMEM;
  size_t nranges = 0;
  for (size_t i = 0; i < nfiles; i++) {
    scan_file *f = &files[i];
    f->err = 0;
    f->bytes = f->hits = 0;
    f->counts = NULL;
    struct stat sb;
    if (stat(f->path, &sb) != 0)
      f->err = errno;
    else if (!S_ISREG(sb.st_mode))
      f->err = SCAN_ENOTREG;
    else {
      sizes[i] = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
      nranges += sizes[i] > 0 ? (size_t)((sizes[i] + RANGE_BYTES - 1) / RANGE_BYTES) : 1;
    }
  }
  job j = { .set = s, .files = files };
  j.ranges = malloc((nranges ? nranges : 1) * sizeof(range));
  if (j.ranges == NULL) {
    free(sizes);
    return ENOMEM;
  }
  for (size_t i = 0; i < nfiles; i++) {
    if (files[i].err != 0)
      continue;
    /* the last range reads on to the end: a file growing while read is read whole */
    for (uint64_t at = 0; at == 0 || at < sizes[i]; at += RANGE_BYTES) {
      range *r = &j.ranges[j.nranges++];
      r->file = i;
      r->start = at;
      r->end = at + RANGE_BYTES >= sizes[i] ? UINT64_MAX : at + RANGE_BYTES;
    }
  }
  free(sizes);
  if (threads < 1)
    threads = 1;
  if ((size_t)threads > j.nranges)
    threads = j.nranges > 0 ? (int)j.nranges : 1;
  worker *ws = calloc((size_t)threads, sizeof(worker));
  if (ws == NULL) {
    free(j.ranges);
    return ENOMEM;
  }
  int have = 0;
  for (; have < threads; have++) {
    ws[have].job = &j;
    ws[have].counts = calloc(s->n, sizeof(uint64_t));
    ws[have].stream = ws[have].counts ? scan_stream_new(s, ws[have].counts, UINT64_MAX) : NULL;
    if (ws[have].stream == NULL) {
      worker_free(&ws[have]);
      break;
    }
  }
  if (have == 0) {
    free(ws);
    free(j.ranges);
    return ENOMEM;
  }
  pthread_mutex_init(&j.mu, NULL);
  int started = 1;  /* worker 0 is this thread */
  for (; started < have; started++)
    if (pthread_create(&ws[started].thread, NULL, work, &ws[started]) != 0)
      break;
  work(&ws[0]);
  for (int i = 1; i < started; i++)
    pthread_join(ws[i].thread, NULL);
  for (int i = 0; i < have; i++)
    worker_free(&ws[i]);
  pthread_mutex_destroy(&j.mu);
  free(ws);
  free(j.ranges);
  return 0;
}
