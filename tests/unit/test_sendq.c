/*
 * test_sendq.c — the order responses leave a connection in (net/sendq.h):
 * request order even when later requests are answered first, gathering
 * across responses, file holes, partial sends, responses with no bytes
 * (acks=0), and removal when a connection closes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sendq.h"

#define IOV_MAX_TEST 8

/* Concatenates what sendq_next offers for memory into out (returns bytes). */
static size_t gather(const struct sendq_next *nx, const struct iovec *iov, uint8_t *out)
{
	size_t at = 0;

	for (uint32_t i = 0; i < nx->iov_count; i++) {
		memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	assert_int_equal(at, nx->bytes);
	return at;
}

static void test_order_later_ready_first(void **state)
{
	struct sendq q;
	struct sendq_item a, b, c;
	struct iovec iov[IOV_MAX_TEST];
	struct sendq_next nx;
	uint8_t out[64];

	(void)state;
	sendq_init(&q);
	sendq_push(&q, &a);
	sendq_push(&q, &b);
	sendq_push(&q, &c);
	/* c answers first: nothing may leave, a is still being handled */
	sendq_item_ready(&c, (const uint8_t *)"CCC", 3, NULL, NULL, 0);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_IDLE);
	assert_null(sendq_pop(&q));
	/* a answers: only a leaves (b blocks c) */
	sendq_item_ready(&a, (const uint8_t *)"AA", 2, NULL, NULL, 0);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_MEM);
	assert_int_equal(gather(&nx, iov, out), 2);
	assert_memory_equal(out, "AA", 2);
	/* a partial send, then the rest */
	sendq_advance(&q, 1);
	assert_null(sendq_pop(&q));
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(gather(&nx, iov, out), 1);
	assert_memory_equal(out, "A", 1);
	sendq_advance(&q, 1);
	assert_ptr_equal(sendq_pop(&q), &a);
	assert_null(sendq_pop(&q));
	/* b answers: b and c leave together, in order, in one gather */
	sendq_item_ready(&b, (const uint8_t *)"BBBB", 4, NULL, NULL, 0);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.iov_count, 2);
	assert_int_equal(gather(&nx, iov, out), 7);
	assert_memory_equal(out, "BBBBCCC", 7);
	sendq_advance(&q, 7);
	assert_ptr_equal(sendq_pop(&q), &b);
	assert_ptr_equal(sendq_pop(&q), &c);
	assert_null(sendq_pop(&q));
	assert_int_equal(q.count, 0);
	assert_int_equal(q.bytes_sent, 9);
}

static void test_holes(void **state)
{
	struct sendq q;
	struct sendq_item a, b;
	struct iovec iov[IOV_MAX_TEST];
	struct sendq_next nx;
	uint8_t out[64];
	/* "HDR" + 10 file bytes at offset 3 + "MID" + 5 file bytes + "END" */
	const uint8_t buf[] = "HDRMIDEND";
	struct kwrite_hole holes[2] = { { .offset = 3, .len = 10 }, { .offset = 6, .len = 5 } };
	struct sendq_file files[2] = { { .fd = 7, .pos = 100, .len = 10 },
				       { .fd = 8, .pos = 0, .len = 5 } };

	(void)state;
	sendq_init(&q);
	sendq_push(&q, &a);
	sendq_push(&q, &b);
	sendq_item_ready(&a, buf, 9, holes, files, 2);
	sendq_item_ready(&b, (const uint8_t *)"next", 4, NULL, NULL, 0);

	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_MEM);      /* stops before the first hole */
	assert_int_equal(gather(&nx, iov, out), 3);
	assert_memory_equal(out, "HDR", 3);
	sendq_advance(&q, 3);

	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_FILE);
	assert_int_equal(nx.file.fd, 7);
	assert_int_equal(nx.file.pos, 100);
	assert_int_equal(nx.file.len, 10);
	sendq_advance(&q, 4);                      /* the socket took 4 file bytes */
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_FILE);
	assert_int_equal(nx.file.pos, 104);
	assert_int_equal(nx.file.len, 6);
	sendq_advance(&q, 6);

	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(gather(&nx, iov, out), 3);
	assert_memory_equal(out, "MID", 3);
	sendq_advance(&q, 3);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.kind, SENDQ_FILE);
	assert_int_equal(nx.file.fd, 8);
	sendq_advance(&q, 5);
	/* the tail of a and all of b in one gather */
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(gather(&nx, iov, out), 7);
	assert_memory_equal(out, "ENDnext", 7);
	assert_null(sendq_pop(&q));
	sendq_advance(&q, 5);                      /* "END" + "ne" */
	assert_ptr_equal(sendq_pop(&q), &a);
	assert_null(sendq_pop(&q));
	sendq_advance(&q, 2);
	assert_ptr_equal(sendq_pop(&q), &b);
	assert_int_equal(q.bytes_sent, 3 + 10 + 3 + 5 + 3 + 4);
}

static void test_adjacent_and_edge_holes(void **state)
{
	struct sendq q;
	struct sendq_item a;
	struct iovec iov[IOV_MAX_TEST];
	struct sendq_next nx;
	/* holes at offset 0, twice at 2, and at the end (4): empty memory pieces */
	const uint8_t buf[] = "abcd";
	struct kwrite_hole holes[4] = { { .offset = 0, .len = 1 }, { .offset = 2, .len = 2 },
					{ .offset = 2, .len = 3 }, { .offset = 4, .len = 4 } };
	struct sendq_file files[4] = { { 1, 0, 1 }, { 2, 0, 2 }, { 3, 0, 3 }, { 4, 0, 4 } };
	int expect_fd[] = { 1, -1, 2, 3, -1, 4 };

	(void)state;
	sendq_init(&q);
	sendq_push(&q, &a);
	sendq_item_ready(&a, buf, 4, holes, files, 4);
	for (size_t i = 0; i < SL_ARRAY_LEN(expect_fd); i++) {
		sendq_next(&q, iov, IOV_MAX_TEST, &nx);
		if (expect_fd[i] < 0) {
			assert_int_equal(nx.kind, SENDQ_MEM);
			assert_int_equal(nx.bytes, 2);
		} else {
			assert_int_equal(nx.kind, SENDQ_FILE);
			assert_int_equal(nx.file.fd, expect_fd[i]);
		}
		sendq_advance(&q, nx.bytes);
	}
	assert_ptr_equal(sendq_pop(&q), &a);
	assert_int_equal(q.bytes_sent, 4 + 1 + 2 + 3 + 4);
}

static void test_no_response_and_iov_cap(void **state)
{
	struct sendq q;
	struct sendq_item it[12];
	struct iovec iov[IOV_MAX_TEST];
	struct sendq_next nx;

	(void)state;
	sendq_init(&q);
	for (int i = 0; i < 12; i++)
		sendq_push(&q, &it[i]);
	/* acks=0 style: answered with nothing; popped as soon as it is the head */
	sendq_item_ready(&it[0], NULL, 0, NULL, NULL, 0);
	assert_true(sendq_item_done(&it[0]));
	assert_ptr_equal(sendq_pop(&q), &it[0]);
	for (int i = 1; i < 12; i++)
		sendq_item_ready(&it[i], (const uint8_t *)"x", 1, NULL, NULL, 0);
	/* 11 one-byte responses, at most IOV_MAX_TEST per gather */
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.iov_count, IOV_MAX_TEST);
	sendq_advance(&q, nx.bytes);
	for (int i = 1; i <= IOV_MAX_TEST; i++)
		assert_ptr_equal(sendq_pop(&q), &it[i]);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.iov_count, 3);
	sendq_advance(&q, 3);
	for (int i = IOV_MAX_TEST + 1; i < 12; i++)
		assert_ptr_equal(sendq_pop(&q), &it[i]);
	assert_null(q.head);
	assert_null(q.tail);
}

static void test_remove(void **state)
{
	struct sendq q;
	struct sendq_item a, b, c;
	struct iovec iov[IOV_MAX_TEST];
	struct sendq_next nx;

	(void)state;
	sendq_init(&q);
	sendq_push(&q, &a);
	sendq_push(&q, &b);
	sendq_push(&q, &c);
	sendq_remove(&q, &b);
	assert_int_equal(q.count, 2);
	sendq_remove(&q, &c);
	assert_ptr_equal(q.tail, &a);
	sendq_push(&q, &b);
	sendq_remove(&q, &a);
	assert_ptr_equal(q.head, &b);
	sendq_item_ready(&b, (const uint8_t *)"b", 1, NULL, NULL, 0);
	sendq_next(&q, iov, IOV_MAX_TEST, &nx);
	assert_int_equal(nx.bytes, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_later_ready_first),
		cmocka_unit_test(test_holes),
		cmocka_unit_test(test_adjacent_and_edge_holes),
		cmocka_unit_test(test_no_response_and_iov_cap),
		cmocka_unit_test(test_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
