/*
 * hist.h — an HDR-style latency histogram: log-linear buckets, fixed memory.
 *
 * Values are unsigned integers in the caller's unit (sluice-bench records
 * microseconds). Layout, with HIST_SUB = 1024 sub-buckets per power of two:
 *   - values 0 .. 2*HIST_SUB-1 (0 .. 2047) each get their own counter
 *     (exact: 1 unit resolution);
 *   - above that, the values [2^k, 2^(k+1)) (k >= 11) share HIST_SUB counters,
 *     each 2^(k-10) wide, so every recorded value is known to within 1/1024
 *     of itself (three significant digits), like HdrHistogram with 3 digits.
 *
 * Invariants:
 *   1. memory is fixed at creation: HIST_COUNTS counters (~229 KiB), never
 *      grown; recording never allocates;
 *   2. values up to HIST_VALUE_MAX (2^37 - 1: 38 hours in µs, far above the
 *      60 s the benchmarks need) land in their bucket; larger values are
 *      clamped into the last bucket and counted in `clamped_count`, while
 *      `max` keeps the true largest value;
 *   3. total_count == the sum of all counters; min <= max when total > 0;
 *   4. hist_percentile() returns the highest value equivalent to the bucket
 *      holding the requested rank, capped at `max` (so p100 == max exactly).
 *
 * A histogram is owned by one thread; hist_merge() folds one into another
 * (after the writer is done, or under the caller's own synchronisation).
 */
#ifndef SL_HIST_H
#define SL_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 10
#define HIST_SUB (1u << HIST_SUB_BITS)          /* sub-buckets per octave */
#define HIST_SHIFT_MAX 26                        /* widest bucket: 2^26 units */
#define HIST_COUNTS (((HIST_SHIFT_MAX + 1) << HIST_SUB_BITS) + HIST_SUB)
#define HIST_VALUE_MAX ((UINT64_C(1) << (HIST_SHIFT_MAX + HIST_SUB_BITS + 1)) - 1)

struct hist {
	uint64_t total_count;
	uint64_t clamped_count;   /* values above HIST_VALUE_MAX */
	uint64_t min;             /* UINT64_MAX while empty */
	uint64_t max;             /* 0 while empty */
	uint64_t counts[HIST_COUNTS];
};

/* Allocates an empty histogram; NULL when out of memory. */
struct hist *hist_new(void);
void hist_free(struct hist *h);
/* Empties `h` (keeps its memory). */
void hist_reset(struct hist *h);

/* Records `value` `n` times (n >= 1). Never allocates, never fails. */
void hist_record_n(struct hist *h, uint64_t value, uint64_t n);
static inline void hist_record(struct hist *h, uint64_t value)
{
	hist_record_n(h, value, 1);
}

/* Adds every count of `src` into `dst`; `src` is unchanged. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile `pct` (0 < pct <= 100): the smallest recorded
 * value v (to bucket precision) such that at least pct% of the samples are
 * <= v. 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double pct);
uint64_t hist_count(const struct hist *h);
uint64_t hist_max(const struct hist *h);
uint64_t hist_min(const struct hist *h);
double hist_mean(const struct hist *h);

/* Bucket helpers (exposed for tests): index of a value, and the lowest and
 * highest values that share bucket `idx`. */
uint32_t hist_index(uint64_t value);
uint64_t hist_bucket_low(uint32_t idx);
uint64_t hist_bucket_high(uint32_t idx);

#endif
