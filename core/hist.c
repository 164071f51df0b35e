/*
 * hist.c — log-linear latency histogram (see hist.h for layout and
 * invariants). Bucket index of v >= 2*HIST_SUB: with msb the highest set bit
 * and shift = msb - HIST_SUB_BITS, idx = (shift << HIST_SUB_BITS) + (v >> shift);
 * v >> shift lies in [HIST_SUB, 2*HIST_SUB), so octaves tile without gaps.
 * A plain array walk is used for percentiles: 28 K counters, microseconds
 * per call, which is cheap next to the once-a-second reporting that uses it.
 */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

#include "sl.h"

_Static_assert(HIST_COUNTS == 28672, "bucket layout changed: update hist.h");

struct hist *hist_new(void)
{
	struct hist *h = malloc(sizeof(*h));

	if (h == NULL)
		return NULL;
	hist_reset(h);
	return h;
}

void hist_free(struct hist *h)
{
	free(h);
}

void hist_reset(struct hist *h)
{
	SL_ASSERT(h != NULL);
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint32_t hist_index(uint64_t value)
{
	uint32_t msb, shift, idx;

	if (value > HIST_VALUE_MAX)
		value = HIST_VALUE_MAX;
	if (value < 2 * HIST_SUB)
		return (uint32_t)value;
	msb = 63u - (uint32_t)__builtin_clzll(value);
	shift = msb - HIST_SUB_BITS;
	idx = (shift << HIST_SUB_BITS) + (uint32_t)(value >> shift);
	SL_ASSERT(idx >= 2 * HIST_SUB && idx < HIST_COUNTS);
	return idx;
}

uint64_t hist_bucket_low(uint32_t idx)
{
	uint32_t shift;

	SL_ASSERT(idx < HIST_COUNTS);
	if (idx < 2 * HIST_SUB)
		return idx;
	shift = (idx >> HIST_SUB_BITS) - 1;
	return (uint64_t)(idx - (shift << HIST_SUB_BITS)) << shift;
}

uint64_t hist_bucket_high(uint32_t idx)
{
	uint32_t shift;

	SL_ASSERT(idx < HIST_COUNTS);
	if (idx < 2 * HIST_SUB)
		return idx;
	shift = (idx >> HIST_SUB_BITS) - 1;
	return hist_bucket_low(idx) + (UINT64_C(1) << shift) - 1;
}

void hist_record_n(struct hist *h, uint64_t value, uint64_t n)
{
	SL_ASSERT(h != NULL && n >= 1);
	if (value > HIST_VALUE_MAX)
		h->clamped_count += n;
	h->counts[hist_index(value)] += n;
	h->total_count += n;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	SL_ASSERT(h->min <= h->max);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	uint32_t i;

	SL_ASSERT(dst != NULL && src != NULL && dst != src);
	if (src->total_count == 0)
		return;
	for (i = 0; i < HIST_COUNTS; i++)
		dst->counts[i] += src->counts[i];
	dst->total_count += src->total_count;
	dst->clamped_count += src->clamped_count;
	dst->min = SL_MIN(dst->min, src->min);
	dst->max = SL_MAX(dst->max, src->max);
	SL_ASSERT(dst->min <= dst->max);
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	uint64_t rank, seen = 0;
	uint32_t i;

	SL_ASSERT(h != NULL && pct > 0.0 && pct <= 100.0);
	if (h->total_count == 0)
		return 0;
	/* rank = ceil(pct/100 * total), at least 1, at most total */
	rank = (uint64_t)((pct / 100.0) * (double)h->total_count);
	if ((double)rank < (pct / 100.0) * (double)h->total_count)
		rank++;
	rank = SL_MAX(rank, UINT64_C(1));
	rank = SL_MIN(rank, h->total_count);
	for (i = 0; i < HIST_COUNTS; i++) {
		seen += h->counts[i];
		if (seen >= rank)
			return SL_MIN(hist_bucket_high(i), h->max);
	}
	SL_ASSERT(0 && "total_count exceeds the sum of the counters");
	return h->max;
}

uint64_t hist_count(const struct hist *h)
{
	return h->total_count;
}

uint64_t hist_max(const struct hist *h)
{
	return h->max;
}

uint64_t hist_min(const struct hist *h)
{
	return h->total_count == 0 ? 0 : h->min;
}

double hist_mean(const struct hist *h)
{
	double sum = 0.0;
	uint32_t i;

	if (h->total_count == 0)
		return 0.0;
	for (i = 0; i < HIST_COUNTS; i++) {
		if (h->counts[i] != 0) {
			double mid = ((double)hist_bucket_low(i) +
				      (double)hist_bucket_high(i)) / 2.0;
			sum += mid * (double)h->counts[i];
		}
	}
	return sum / (double)h->total_count;
}
