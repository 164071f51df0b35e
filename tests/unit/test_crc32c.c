/*
 * test_crc32c.c — CRC-32C: known vectors (RFC 3720 B.4 and the usual
 * "123456789" check value), the hardware path against the portable one on
 * every length 0..1024 at every alignment 0..15, and incremental use
 * (split anywhere) against one-shot.
 *
 * When the CPU has no SSE4.2, crc32c() is the portable code and the
 * equality tests still run (trivially); the vectors are checked on both.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

#define CRC_TEST_SEED 0x5eed1234abcdULL
#define CRC_LEN_MAX 1024
#define CRC_ALIGN_MAX 16

/* xorshift64*: deterministic bytes from a seed; state passed explicitly. */
static uint64_t crc_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void crc_fill(uint8_t *buf, size_t len, uint64_t *state)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(crc_rand(state) >> 56);
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn fn)
{
	uint8_t buf[32];

	memset(buf, 0x00, sizeof(buf));
	assert_int_equal(fn(0, buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	assert_int_equal(fn(0, buf, sizeof(buf)), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(fn(0, buf, sizeof(buf)), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(fn(0, buf, sizeof(buf)), 0x113FDB5Cu);
	assert_int_equal(fn(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(fn(0, "", 0), 0u);
	/* Zero bytes leave any running value unchanged. */
	assert_int_equal(fn(0xE3069283u, "", 0), 0xE3069283u);
}

static void test_vectors_default(void **state)
{
	(void)state;
	print_message("crc32c: hardware path %s\n",
		      crc32c_hw_available() ? "available" : "NOT available (portable only)");
	check_vectors(crc32c);
}

static void test_vectors_portable(void **state)
{
	(void)state;
	check_vectors(crc32c_portable);
}

/* Every length 0..1024 at every alignment 0..15, random contents. */
static void test_hw_equals_portable(void **state)
{
	static uint8_t raw[CRC_LEN_MAX + CRC_ALIGN_MAX + 8];
	uint64_t seed = CRC_TEST_SEED;
	int compared = 0;

	(void)state;
	crc_fill(raw, sizeof(raw), &seed);
	for (size_t align = 0; align < CRC_ALIGN_MAX; align++) {
		for (size_t len = 0; len <= CRC_LEN_MAX; len++) {
			const uint8_t *p = raw + align;
			uint32_t init = (uint32_t)crc_rand(&seed);
			assert_int_equal(crc32c(0, p, len), crc32c_portable(0, p, len));
			/* A running value in, too (both paths invert it). */
			assert_int_equal(crc32c(init, p, len), crc32c_portable(init, p, len));
			compared++;
		}
	}
	assert_int_equal(compared, CRC_ALIGN_MAX * (CRC_LEN_MAX + 1));
}

/* A larger random buffer, refilled a few times. */
static void test_hw_equals_portable_big(void **state)
{
	size_t len = 1 << 20;
	uint8_t *buf = malloc(len + 7);
	uint64_t seed = CRC_TEST_SEED ^ 0xabcdef;

	(void)state;
	assert_non_null(buf);
	for (int round = 0; round < 4; round++) {
		crc_fill(buf, len + 7, &seed);
		for (size_t off = 0; off < 8; off += 3)
			assert_int_equal(crc32c(0, buf + off, len - off),
					 crc32c_portable(0, buf + off, len - off));
	}
	free(buf);
}

/* crc(a ++ b) == crc(crc(a), b) for every split point, both paths. */
static void test_incremental_any_split(void **state)
{
	static uint8_t buf[CRC_LEN_MAX];
	uint64_t seed = CRC_TEST_SEED + 7;

	(void)state;
	crc_fill(buf, sizeof(buf), &seed);
	uint32_t whole = crc32c(0, buf, sizeof(buf));
	assert_int_equal(whole, crc32c_portable(0, buf, sizeof(buf)));
	for (size_t k = 0; k <= sizeof(buf); k++) {
		uint32_t a = crc32c(0, buf, k);
		assert_int_equal(crc32c(a, buf + k, sizeof(buf) - k), whole);
		uint32_t pa = crc32c_portable(0, buf, k);
		assert_int_equal(crc32c_portable(pa, buf + k, sizeof(buf) - k), whole);
		/* Mixed: start on one path, finish on the other. */
		assert_int_equal(crc32c_portable(a, buf + k, sizeof(buf) - k), whole);
	}
}

/* Many small random pieces equal one shot. */
static void test_incremental_random_pieces(void **state)
{
	static uint8_t buf[4096];
	uint64_t seed = CRC_TEST_SEED + 99;

	(void)state;
	for (int round = 0; round < 64; round++) {
		crc_fill(buf, sizeof(buf), &seed);
		uint32_t whole = crc32c(0, buf, sizeof(buf));
		uint32_t run = 0;
		size_t pos = 0;
		while (pos < sizeof(buf)) {
			size_t piece = (size_t)(crc_rand(&seed) % 37);
			if (piece > sizeof(buf) - pos)
				piece = sizeof(buf) - pos;
			run = crc32c(run, buf + pos, piece);
			pos += piece;
		}
		assert_int_equal(run, whole);
	}
}

/* A single flipped bit always changes the checksum. */
static void test_bit_flip_detected(void **state)
{
	uint8_t buf[64];
	uint64_t seed = CRC_TEST_SEED + 3;

	(void)state;
	crc_fill(buf, sizeof(buf), &seed);
	uint32_t good = crc32c(0, buf, sizeof(buf));
	for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(crc32c(0, buf, sizeof(buf)), good);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(crc32c(0, buf, sizeof(buf)), good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_default),
		cmocka_unit_test(test_vectors_portable),
		cmocka_unit_test(test_hw_equals_portable),
		cmocka_unit_test(test_hw_equals_portable_big),
		cmocka_unit_test(test_incremental_any_split),
		cmocka_unit_test(test_incremental_random_pieces),
		cmocka_unit_test(test_bit_flip_detected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
