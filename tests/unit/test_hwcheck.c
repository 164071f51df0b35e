/*
 * test_hwcheck.c — `replication-offset-checkpoint` (replication/hwcheck.c):
 * Kafka's exact bytes, a round trip (empty, a few, many entries), the
 * callback's early stop, refusals on write (bad topic, partition, hw) that
 * leave the old file, and corrupt files refused whole (no callback runs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "hwcheck.h"
#include "log.h"

struct tdir {
	char path[64];
	int fd;
};

static void tdir_make(struct tdir *d)
{
	strcpy(d->path, "/tmp/sl-hwcheck-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY);
	assert_true(d->fd >= 0);
}

static void tdir_put(struct tdir *d, const char *text, size_t len)
{
	int fd = openat(d->fd, HWCHECK_FILE_NAME, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static size_t tdir_get(struct tdir *d, char *buf, size_t cap)
{
	int fd = openat(d->fd, HWCHECK_FILE_NAME, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static void tdir_remove(struct tdir *d)
{
	(void)unlinkat(d->fd, HWCHECK_FILE_NAME, 0);
	close(d->fd);
	assert_int_equal(rmdir(d->path), 0);
}

/* Collects what hwcheck_read hands out. */
struct got {
	uint32_t n;
	uint32_t stop_after;        /* 0: never stop */
	char topic[4][HWCHECK_TOPIC_BYTES_MAX + 1];
	int32_t partition[4];
	int64_t hw[4];
	uint64_t hw_sum;            /* wraps: hw may be INT64_MAX */
};

static int collect(void *arg, const char *topic, int32_t partition, int64_t hw)
{
	struct got *g = arg;

	if (g->n < 4) {
		snprintf(g->topic[g->n], sizeof(g->topic[0]), "%s", topic);
		g->partition[g->n] = partition;
		g->hw[g->n] = hw;
	}
	g->n++;
	g->hw_sum += (uint64_t)hw;
	return g->stop_after != 0 && g->n == g->stop_after;
}

static void test_roundtrip(void **state)
{
	const struct hwcheck_entry e[] = {
		{ "orders", 0, 42 },
		{ "__consumer_offsets", 17, 0 },
		{ "a.b-c_D9", 2147483647, 9223372036854775807LL },
	};
	const char *kafka = "0\n3\norders 0 42\n__consumer_offsets 17 0\n"
			    "a.b-c_D9 2147483647 9223372036854775807\n";
	struct got g = { 0 };
	struct tdir d;
	char buf[256];

	(void)state;
	tdir_make(&d);
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_ENOTFOUND);
	assert_int_equal(hwcheck_write(d.fd, e, 3, LOG_NO_SHARD), SL_OK);
	tdir_get(&d, buf, sizeof(buf));
	assert_string_equal(buf, kafka);
	assert_int_equal(faccessat(d.fd, HWCHECK_FILE_NAME ".tmp", F_OK, 0), -1);
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_OK);
	assert_int_equal(g.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(g.topic[i], e[i].topic);
		assert_int_equal(g.partition[i], e[i].partition);
		assert_int_equal(g.hw[i], e[i].hw);
	}
	/* The callback may stop early. */
	memset(&g, 0, sizeof(g));
	g.stop_after = 2;
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_OK);
	assert_int_equal(g.n, 2);
	/* Empty. */
	assert_int_equal(hwcheck_write(d.fd, NULL, 0, LOG_NO_SHARD), SL_OK);
	tdir_get(&d, buf, sizeof(buf));
	assert_string_equal(buf, "0\n0\n");
	memset(&g, 0, sizeof(g));
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_OK);
	assert_int_equal(g.n, 0);
	tdir_remove(&d);
}

static void test_many_entries(void **state)
{
	enum { N = 20000 };
	struct hwcheck_entry *e = calloc(N, sizeof(*e));
	struct got g = { 0 };
	struct tdir d;
	uint64_t sum = 0;

	(void)state;
	assert_non_null(e);
	tdir_make(&d);
	for (int i = 0; i < N; i++) {
		e[i].topic = (i % 2) ? "odd-topic" : "even.topic";
		e[i].partition = i;
		e[i].hw = (int64_t)i * 1000003;
		sum += (uint64_t)e[i].hw;
	}
	assert_int_equal(hwcheck_write(d.fd, e, N, LOG_NO_SHARD), SL_OK);
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_OK);
	assert_int_equal(g.n, N);
	assert_int_equal(g.hw_sum, sum);
	free(e);
	tdir_remove(&d);
}

static void test_write_refusals(void **state)
{
	char long_topic[HWCHECK_TOPIC_BYTES_MAX + 2];
	struct hwcheck_entry bad[] = {
		{ "has space", 0, 1 },
		{ "", 0, 1 },
		{ NULL, 0, 1 },
		{ "t", -1, 1 },
		{ "t", 0, -1 },
		{ long_topic, 0, 1 },
	};
	const struct hwcheck_entry good = { "t", 1, 5 };
	struct got g = { 0 };
	struct tdir d;

	(void)state;
	memset(long_topic, 'a', sizeof(long_topic) - 1);
	long_topic[sizeof(long_topic) - 1] = '\0';
	tdir_make(&d);
	assert_int_equal(hwcheck_write(d.fd, &good, 1, LOG_NO_SHARD), SL_OK);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++)
		assert_int_equal(hwcheck_write(d.fd, &bad[i], 1, LOG_NO_SHARD), SL_EINVAL);
	assert_int_equal(hwcheck_write(d.fd, &good, HWCHECK_ENTRIES_MAX + 1, LOG_NO_SHARD),
			 SL_EINVAL);
	/* The good file is still there. */
	assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_OK);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.hw[0], 5);
	/* A 249-byte topic is fine. */
	long_topic[HWCHECK_TOPIC_BYTES_MAX] = '\0';
	bad[5].topic = long_topic;
	assert_int_equal(hwcheck_write(d.fd, &bad[5], 1, LOG_NO_SHARD), SL_OK);
	tdir_remove(&d);
}

static void test_corrupt(void **state)
{
	static const char *const bad[] = {
		"",
		"0\n",
		"1\n0\n",                        /* version */
		"0\n2\nt 0 1\n",                 /* fewer entries than counted */
		"0\n1\nt 0 1\nt 1 1\n",          /* more */
		"0\n1\nt 0 1",                   /* no final newline */
		"0\n1\nt -1 1\n",
		"0\n1\nt 0 -1\n",
		"0\n1\nt 0\n",
		"0\n1\n 0 1\n",                  /* empty topic */
		"0\n1\nt/x 0 1\n",               /* bad topic character */
		"0\n1\nt 2147483648 1\n",        /* partition beyond int32 */
		"0\n1\nt 0 99999999999999999999\n",
		"0\n1\nt 0 1\r\n",
		"0\n2\nok 0 1\nbad 0 x\n",       /* good first line, bad second */
		"0\n-1\n",
	};
	struct tdir d;

	(void)state;
	tdir_make(&d);
	log_level_set(LOG_OFF);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		struct got g = { 0 };
		tdir_put(&d, bad[i], strlen(bad[i]));
		assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_ECORRUPT);
		assert_int_equal(g.n, 0);
	}
	/* A NUL byte in a topic. */
	{
		struct got g = { 0 };
		tdir_put(&d, "0\n1\nt\0x 0 1\n", 12);
		assert_int_equal(hwcheck_read(d.fd, collect, &g, LOG_NO_SHARD), SL_ECORRUPT);
		assert_int_equal(g.n, 0);
	}
	log_level_set(LOG_INFO);
	tdir_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_write_refusals),
		cmocka_unit_test(test_corrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
