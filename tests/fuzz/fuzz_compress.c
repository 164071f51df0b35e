/*
 * fuzz_compress.c — libFuzzer target for the record batch codecs
 * (core/compress.h) over arbitrary compressed bytes.
 *
 * Input: byte 0 picks the codec (value % 5, so NONE is tried too), byte 1
 * the output cap (byte * 1 KiB, 0..255 KiB), the rest is the compressed
 * records section. Seeds (corpus/fuzz_compress) are the captured client
 * batches' bodies (tests/data) behind those two bytes.
 *
 * Properties checked (abort() with a message when one fails):
 *   1. No read outside the input nor write outside the output (ASan: both
 *      are exact-size heap buffers), no UB, no SL_ASSERT.
 *   2. Only documented results: SL_OK, SL_ENOMEM, SL_ECORRUPT, and
 *      SL_EINVAL exactly for NONE; *out_len <= cap, and 0 on error.
 *   3. A stream that decodes re-encodes (compress_bound is enough) and that
 *      decodes back to the same bytes.
 *   4. A stream that decodes at cap also decodes with a larger cap, to the
 *      same bytes (the cap only ever stops, never changes, the output).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "sl.h"

#define FUZZ_COMPRESS_CAP_UNIT 1024
#define FUZZ_COMPRESS_CAP_MORE (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_compress_fail(const char *what)
{
	fprintf(stderr, "fuzz_compress: %s\n", what);
	abort();
}

/* Decodes `in` into an exact-size buffer of `cap` bytes (returned). */
static uint8_t *fuzz_compress_decode(enum batch_compression codec, const uint8_t *in,
				     size_t in_len, size_t cap, size_t *out_len,
				     enum sl_err *err)
{
	uint8_t *out = malloc(cap ? cap : 1);
	if (out == NULL)
		fuzz_compress_fail("malloc");
	*out_len = 12345;
	*err = compress_decode(codec, in, in_len, out, cap, out_len);
	if (*err != SL_OK && *out_len != 0)
		fuzz_compress_fail("out_len not 0 on error");
	if (*out_len > cap)
		fuzz_compress_fail("out_len past cap");
	return out;
}

static void fuzz_compress_reencode(enum batch_compression codec, const uint8_t *plain,
				   size_t len)
{
	size_t bound = compress_bound(codec, len), zlen = 0, back_len = 0;
	uint8_t *z = malloc(bound ? bound : 1), *back;
	enum sl_err err;

	if (z == NULL || bound == 0)
		fuzz_compress_fail("bound");
	if (compress_encode(codec, plain, len, z, bound, &zlen) != SL_OK)
		fuzz_compress_fail("re-encode within compress_bound failed");
	back = fuzz_compress_decode(codec, z, zlen, len, &back_len, &err);
	if (err != SL_OK || back_len != len || (len > 0 && memcmp(back, plain, len) != 0))
		fuzz_compress_fail("round trip changed the bytes");
	free(back);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum batch_compression codec;
	size_t cap, in_len, out_len = 0, more_len = 0;
	uint8_t *in, *out, *more;
	enum sl_err err, err_more;

	if (size < 2)
		return 0;
	codec = (enum batch_compression)(data[0] % 5);
	cap = (size_t)data[1] * FUZZ_COMPRESS_CAP_UNIT;
	in_len = size - 2;
	in = malloc(in_len ? in_len : 1);
	if (in == NULL)
		fuzz_compress_fail("malloc");
	memcpy(in, data + 2, in_len);

	out = fuzz_compress_decode(codec, in, in_len, cap, &out_len, &err);
	if (codec == BATCH_COMPRESSION_NONE) {
		if (err != SL_EINVAL)
			fuzz_compress_fail("NONE not SL_EINVAL");
	} else if (err != SL_OK && err != SL_ENOMEM && err != SL_ECORRUPT) {
		fuzz_compress_fail("undocumented error");
	}
	if (err == SL_OK) {
		more = fuzz_compress_decode(codec, in, in_len, cap + FUZZ_COMPRESS_CAP_MORE,
					    &more_len, &err_more);
		if (err_more != SL_OK || more_len != out_len ||
		    (out_len > 0 && memcmp(more, out, out_len) != 0))
			fuzz_compress_fail("a larger cap changed the result");
		free(more);
		fuzz_compress_reencode(codec, out, out_len);
	}
	free(out);
	free(in);
	return 0;
}
