/*
 * test_compress.c — record batch codecs (core/compress.c).
 *
 *   - round trips for every codec over empty, tiny, multi-block,
 *     compressible and incompressible inputs, with the output cap exactly
 *     the size (works) and one byte less (SL_ENOMEM);
 *   - the captured client batches in tests/data (kcat: gzip, raw snappy,
 *     lz4, zstd; kafka-python: gzip) decompress and their five records walk
 *     with the documented keys and values; their records re-encoded by us
 *     decode to the same bytes;
 *   - framings a client may send: raw snappy and xerial, several gzip
 *     members, several lz4 / zstd frames;
 *   - every truncation fails (or, for xerial at a block boundary, yields a
 *     shorter output), gzip fails for any flipped byte in its body, garbage
 *     fails, unknown codecs are SL_EINVAL;
 *   - a decompression bomb (8 MiB of zeros, a few KiB compressed) stops at
 *     the cap with SL_ENOMEM.
 * Inputs checked are exact-size heap copies so ASan sees any over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "batch.h"
#include "compress.h"

#define TC_FILE_CAP (256 * 1024)
#define TC_BOMB_BYTES (8u * 1024 * 1024)
#define TC_SEED 0x5eed0c0dec5ULL

static const enum batch_compression tc_codecs[] = {
	BATCH_COMPRESSION_GZIP,
	BATCH_COMPRESSION_SNAPPY,
	BATCH_COMPRESSION_LZ4,
	BATCH_COMPRESSION_ZSTD,
};

static uint64_t tc_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static uint8_t *tc_dup(const uint8_t *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len)
		memcpy(p, buf, len);
	return p;
}

/* Decodes an exact-size copy of `in`. */
static enum sl_err tc_decode(enum batch_compression c, const uint8_t *in, size_t in_len,
			     uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t *copy = tc_dup(in, in_len);
	enum sl_err err = compress_decode(c, copy, in_len, out, cap, out_len);
	free(copy);
	return err;
}

/* Compresses `in` into a fresh buffer of compress_bound() bytes. */
static uint8_t *tc_encode(enum batch_compression c, const uint8_t *in, size_t in_len,
			  size_t *out_len)
{
	size_t cap = compress_bound(c, in_len);
	assert_true(cap > 0);
	uint8_t *out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(compress_encode(c, in, in_len, out, cap, out_len), SL_OK);
	assert_true(*out_len > 0 && *out_len <= cap);
	return out;
}

/* Text-like (compressible) when `text`, else random bytes. */
static uint8_t *tc_input(size_t len, int text, uint64_t *seed)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog ";
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = text ? (uint8_t)words[(i + tc_rand(seed) % 3) % (sizeof(words) - 1)]
			    : (uint8_t)tc_rand(seed);
	return p;
}

static void tc_roundtrip(enum batch_compression c, const uint8_t *in, size_t len)
{
	size_t clen = 0, dlen = 99;
	uint8_t *z = tc_encode(c, in, len, &clen);
	uint8_t *out = malloc(len + 1);
	assert_non_null(out);

	assert_int_equal(tc_decode(c, z, clen, out, len, &dlen), SL_OK);
	assert_int_equal(dlen, len);
	assert_memory_equal(out, in, len ? len : 0);
	if (len > 0) {
		assert_int_equal(tc_decode(c, z, clen, out, len - 1, &dlen), SL_ENOMEM);
		assert_int_equal(dlen, 0);
	}
	/* Too small an output buffer for encoding is an error, not an overflow. */
	if (clen > 1) {
		uint8_t *small = malloc(clen - 1);
		size_t slen = 0;
		assert_non_null(small);
		assert_int_not_equal(compress_encode(c, in, len, small, clen / 2, &slen), SL_OK);
		free(small);
	}
	free(out);
	free(z);
}

static void test_roundtrip(void **state)
{
	static const size_t sizes[] = { 0, 1, 7, 1000, 32768, 32769, 65536 + 17, 300000 };
	uint64_t seed = TC_SEED;
	(void)state;

	for (size_t ci = 0; ci < SL_ARRAY_LEN(tc_codecs); ci++) {
		for (size_t si = 0; si < SL_ARRAY_LEN(sizes); si++) {
			for (int text = 0; text <= 1; text++) {
				uint8_t *in = tc_input(sizes[si], text, &seed);
				tc_roundtrip(tc_codecs[ci], in, sizes[si]);
				free(in);
			}
		}
	}
}

static void test_bad_codec(void **state)
{
	uint8_t in[4] = { 1, 2, 3, 4 }, out[64];
	size_t len = 7;
	(void)state;

	assert_int_equal(compress_decode(BATCH_COMPRESSION_NONE, in, 4, out, 64, &len), SL_EINVAL);
	assert_int_equal(len, 0);
	assert_int_equal(compress_decode((enum batch_compression)5, in, 4, out, 64, &len),
			 SL_EINVAL);
	assert_int_equal(compress_encode((enum batch_compression)7, in, 4, out, 64, &len),
			 SL_EINVAL);
	assert_int_equal(compress_bound(BATCH_COMPRESSION_NONE, 100), 0);
}

/* ---------------------------------------------------------------- captured */

static uint8_t *tc_load(const char *name, size_t *len)
{
	char path[512];
	uint8_t *buf = malloc(TC_FILE_CAP);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", SL_TEST_DATA_DIR, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_non_null(buf);
	*len = fread(buf, 1, TC_FILE_CAP, f);
	fclose(f);
	assert_true(*len > BATCH_HEADER_BYTES && *len < TC_FILE_CAP);
	return buf;
}

/* Checks the five documented records of a captured batch. */
static void tc_check_records(const uint8_t *records, size_t len, int32_t count, int kcat)
{
	struct batch_record_iter it;
	struct batch_record r;
	char want[160];

	batch_record_iter_init(&it, records, len, count);
	for (int i = 0; i < 5; i++) {
		char key[8];
		assert_int_equal(batch_record_next(&it, &r), SL_OK);
		assert_int_equal(r.offset_delta, i);
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(r.key_len, (int32_t)strlen(key));
		assert_memory_equal(r.key, key, strlen(key));
		snprintf(want, sizeof(want),
			 kcat ? "value %d \xe2\x80\x94 the quick brown fox jumps over the lazy dog "
				"xxxxxxxxxxxxxxxxxxxx"
			      : "value %d \xe2\x80\x94 the quick brown fox",
			 i);
		assert_int_equal(r.value_len, (int32_t)strlen(want));
		assert_memory_equal(r.value, want, strlen(want));
		assert_int_equal(r.headers_count, kcat ? 2 : 1);
	}
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);
}

static void tc_captured(const char *name, enum batch_compression codec, int kcat)
{
	struct batch_header h, hn;
	size_t len, nlen, rlen = 0;
	uint8_t *buf = tc_load(name, &len);
	uint8_t *none = tc_load(kcat ? "batch-kcat-none.bin" : "batch-kafkapython-none.bin", &nlen);
	uint8_t *out = malloc(64 * 1024);
	const uint8_t *records = NULL;
	struct batch_record_iter it;
	struct batch_record r;

	assert_non_null(out);
	assert_int_equal(batch_validate(buf, len, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, codec);
	assert_int_equal(h.records_count, 5);
	assert_int_equal(compress_batch_records(buf, &h, out, 64 * 1024, &records, &rlen), SL_OK);
	assert_ptr_equal(records, out);
	tc_check_records(records, rlen, h.records_count, kcat);

	/* The same through the iterator helper. */
	assert_int_equal(compress_batch_record_iter_init(&it, buf, &h, out, 64 * 1024), SL_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(batch_record_next(&it, &r), SL_OK);
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);

	/* Capped below the records' size: SL_ENOMEM, nothing returned. */
	assert_int_equal(compress_batch_records(buf, &h, out, rlen - 1, &records, &rlen),
			 SL_ENOMEM);
	assert_null(records);

	/* The uncompressed capture's records, compressed by us, decode alike. */
	assert_int_equal(batch_validate(none, nlen, BATCH_CHECK_ALL, &hn), SL_OK);
	assert_int_equal(compress_batch_records(none, &hn, NULL, 0, &records, &rlen), SL_OK);
	assert_ptr_equal(records, none + BATCH_HEADER_BYTES);
	tc_check_records(records, rlen, hn.records_count, kcat);
	tc_roundtrip(codec, records, rlen);

	free(out);
	free(none);
	free(buf);
}

static void test_captured_kcat(void **state)
{
	(void)state;
	tc_captured("batch-kcat-gzip.bin", BATCH_COMPRESSION_GZIP, 1);
	tc_captured("batch-kcat-snappy.bin", BATCH_COMPRESSION_SNAPPY, 1);
	tc_captured("batch-kcat-lz4.bin", BATCH_COMPRESSION_LZ4, 1);
	tc_captured("batch-kcat-zstd.bin", BATCH_COMPRESSION_ZSTD, 1);
}

static void test_captured_kafkapython(void **state)
{
	(void)state;
	tc_captured("batch-kafkapython-gzip.bin", BATCH_COMPRESSION_GZIP, 0);
}

/* librdkafka writes raw snappy (no xerial magic): the capture shows it. */
static void test_kcat_snappy_is_raw(void **state)
{
	struct batch_header h;
	size_t len;
	uint8_t *buf = tc_load("batch-kcat-snappy.bin", &len);
	(void)state;

	assert_int_equal(batch_header_parse(buf, len, &h), SL_OK);
	assert_int_not_equal(buf[BATCH_HEADER_BYTES], 0x82);
	free(buf);
}

/* -------------------------------------------------------------- framings */

static void test_snappy_framings(void **state)
{
	uint64_t seed = TC_SEED + 1;
	size_t n = 100000, zlen = snappy_max_compressed_length(n), dlen = 0, xlen = 0;
	uint8_t *in = tc_input(n, 1, &seed);
	uint8_t *raw = malloc(zlen);
	uint8_t *out = malloc(n);
	uint8_t *x;
	(void)state;

	assert_non_null(raw);
	assert_non_null(out);
	/* Raw snappy, as librdkafka writes it. */
	assert_int_equal(snappy_compress((const char *)in, n, (char *)raw, &zlen), SNAPPY_OK);
	assert_int_equal(tc_decode(BATCH_COMPRESSION_SNAPPY, raw, zlen, out, n, &dlen), SL_OK);
	assert_int_equal(dlen, n);
	assert_memory_equal(out, in, n);
	assert_int_equal(tc_decode(BATCH_COMPRESSION_SNAPPY, raw, zlen, out, n - 1, &dlen),
			 SL_ENOMEM);
	/* Xerial as we write it: magic, versions 1/1, 32 KiB blocks. */
	x = tc_encode(BATCH_COMPRESSION_SNAPPY, in, n, &xlen);
	assert_memory_equal(x, "\x82SNAPPY\0\0\0\0\1\0\0\0\1", COMPRESS_XERIAL_HEADER_BYTES);
	/* A zero-length block is corrupt. */
	memset(x + COMPRESS_XERIAL_HEADER_BYTES, 0, 4);
	assert_int_equal(tc_decode(BATCH_COMPRESSION_SNAPPY, x, xlen, out, n, &dlen),
			 SL_ECORRUPT);
	/* A block length past the end is corrupt. */
	be32_store(x + COMPRESS_XERIAL_HEADER_BYTES, (uint32_t)xlen);
	assert_int_equal(tc_decode(BATCH_COMPRESSION_SNAPPY, x, xlen, out, n, &dlen),
			 SL_ECORRUPT);
	free(x);
	free(out);
	free(raw);
	free(in);
}

/* Two gzip members, two lz4 frames, two zstd frames back to back. */
static void test_concatenated(void **state)
{
	static const enum batch_compression multi[] = {
		BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_LZ4, BATCH_COMPRESSION_ZSTD,
		BATCH_COMPRESSION_SNAPPY,
	};
	uint64_t seed = TC_SEED + 2;
	uint8_t *a = tc_input(5000, 1, &seed), *b = tc_input(7000, 0, &seed);
	uint8_t *out = malloc(12000);
	(void)state;

	assert_non_null(out);
	for (size_t i = 0; i < SL_ARRAY_LEN(multi); i++) {
		enum batch_compression c = multi[i];
		size_t alen, blen, dlen = 0;
		uint8_t *za = tc_encode(c, a, 5000, &alen), *zb = tc_encode(c, b, 7000, &blen);
		size_t skip = c == BATCH_COMPRESSION_SNAPPY ? COMPRESS_XERIAL_HEADER_BYTES : 0;
		uint8_t *both = malloc(alen + blen);
		assert_non_null(both);
		/* Xerial: one header, then the blocks of both streams. */
		memcpy(both, za, alen);
		memcpy(both + alen, zb + skip, blen - skip);
		assert_int_equal(tc_decode(c, both, alen + blen - skip, out, 12000, &dlen), SL_OK);
		assert_int_equal(dlen, 12000);
		assert_memory_equal(out, a, 5000);
		assert_memory_equal(out + 5000, b, 7000);
		assert_int_equal(tc_decode(c, both, alen + blen - skip, out, 11999, &dlen),
				 SL_ENOMEM);
		free(both);
		free(za);
		free(zb);
	}
	free(out);
	free(a);
	free(b);
}

/* ------------------------------------------------------------ bad inputs */

static void test_truncated(void **state)
{
	uint64_t seed = TC_SEED + 3;
	size_t n = 70000;
	uint8_t *in = tc_input(n, 1, &seed);
	uint8_t *out = malloc(n);
	(void)state;

	assert_non_null(out);
	for (size_t ci = 0; ci < SL_ARRAY_LEN(tc_codecs); ci++) {
		enum batch_compression c = tc_codecs[ci];
		size_t zlen, dlen;
		uint8_t *z = tc_encode(c, in, n, &zlen);
		/* Every cut near both ends, every 37th in between. */
		for (size_t cut = 0; cut < zlen; cut += (cut < 300 || cut + 300 > zlen) ? 1 : 37) {
			enum sl_err err = tc_decode(c, z, cut, out, n, &dlen);
			if (err == SL_OK) {
				/* Only xerial stops cleanly at a block boundary. */
				assert_int_equal(c, BATCH_COMPRESSION_SNAPPY);
				assert_true(dlen < n && dlen % COMPRESS_SNAPPY_BLOCK_BYTES == 0);
			} else {
				assert_int_equal(err, SL_ECORRUPT);
				assert_int_equal(dlen, 0);
			}
		}
		free(z);
	}
	free(out);
	free(in);
}

static void test_corrupt(void **state)
{
	static const uint8_t garbage[] = "this is not compressed at all, not even a little";
	uint64_t seed = TC_SEED + 4;
	size_t n = 3000, dlen;
	uint8_t *in = tc_input(n, 1, &seed);
	uint8_t *out = malloc(n);
	(void)state;

	assert_non_null(out);
	for (size_t ci = 0; ci < SL_ARRAY_LEN(tc_codecs); ci++) {
		enum batch_compression c = tc_codecs[ci];
		size_t zlen;
		uint8_t *z = tc_encode(c, in, n, &zlen);
		assert_int_equal(tc_decode(c, garbage, sizeof(garbage), out, n, &dlen),
				 SL_ECORRUPT);
		assert_int_equal(tc_decode(c, z, zlen, out, n, &dlen), SL_OK);
		/* Every single-byte flip: never a crash or an over-read. gzip
		 * carries a CRC-32 and the size, so a flip after its 10-byte
		 * header (mtime, flags, OS) either fails or changed nothing
		 * that matters (say, the code length of an unused symbol). */
		for (size_t i = 0; i < zlen; i++) {
			z[i] ^= 0x5a;
			enum sl_err err = tc_decode(c, z, zlen, out, n, &dlen);
			if (c == BATCH_COMPRESSION_GZIP && i >= 10 && err == SL_OK &&
			    (dlen != n || memcmp(out, in, n) != 0))
				fail_msg("gzip flip at %zu of %zu gave wrong data", i, zlen);
			assert_true(dlen <= n);
			z[i] ^= 0x5a;
		}
		/* Trailing junk after a complete stream is corrupt. */
		uint8_t *longer = malloc(zlen + 3);
		assert_non_null(longer);
		memcpy(longer, z, zlen);
		memcpy(longer + zlen, "\x01\x02\x03", 3);
		assert_int_not_equal(tc_decode(c, longer, zlen + 3, out, n, &dlen), SL_OK);
		free(longer);
		free(z);
	}
	free(out);
	free(in);
}

/* 8 MiB of zeros compress to a few KiB; decoding them into 1 MiB stops. */
static void test_bomb(void **state)
{
	uint8_t *zeros = calloc(1, TC_BOMB_BYTES);
	size_t cap = 1024 * 1024;
	uint8_t *out = malloc(cap);
	(void)state;

	assert_non_null(zeros);
	assert_non_null(out);
	for (size_t ci = 0; ci < SL_ARRAY_LEN(tc_codecs); ci++) {
		enum batch_compression c = tc_codecs[ci];
		size_t zlen, dlen = 5;
		uint8_t *z = tc_encode(c, zeros, TC_BOMB_BYTES, &zlen);
		assert_true(zlen < TC_BOMB_BYTES / 16);
		assert_int_equal(tc_decode(c, z, zlen, out, cap, &dlen), SL_ENOMEM);
		assert_int_equal(dlen, 0);
		free(z);
	}
	free(out);
	free(zeros);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_codec),
		cmocka_unit_test(test_captured_kcat),
		cmocka_unit_test(test_captured_kafkapython),
		cmocka_unit_test(test_kcat_snappy_is_raw),
		cmocka_unit_test(test_snappy_framings),
		cmocka_unit_test(test_concatenated),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_bomb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
