/*
 * test_config.c — core/config: Kafka's defaults, the .properties syntax,
 * every value check and its error message, the ignored-keys list, --set, the
 * precedence rules of config_finish, config_log, and the shipped
 * deploy/config/single-node.properties.
 *
 * Files are written into one mkdtemp directory under /tmp, removed at the
 * end. Warnings are checked by pointing stderr (where log.c writes) at a
 * temporary file for the duration of one call.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

/* Number of keys in config.c's table: config_log prints one line per key. */
#define KEYS_TOTAL 74

struct tstate {
	char dir[64];
	char path[128];   /* dir/server.properties, rewritten by each test */
	char err[1024];
};

static int group_setup(void **state)
{
	struct tstate *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/sl-test-config-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/server.properties", t->dir);
	*state = t;
	return 0;
}

static int group_teardown(void **state)
{
	struct tstate *t = *state;
	char big[160];

	unlink(t->path);
	snprintf(big, sizeof(big), "%s/big.properties", t->dir);
	unlink(big);
	rmdir(t->dir);
	free(t);
	return 0;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Writes `text` as t->path and loads it into c. */
static enum sl_err load(struct tstate *t, struct config *c, const char *text)
{
	write_file(t->path, text, strlen(text));
	t->err[0] = '\0';
	return config_load_file(c, t->path, t->err, sizeof(t->err));
}

/* Asserts that t->err equals "config: <path>:<line>: <rest>". */
static void assert_err_at(struct tstate *t, int line, const char *rest)
{
	char want[1024];

	snprintf(want, sizeof(want), "config: %s:%d: %s", t->path, line, rest);
	assert_string_equal(t->err, want);
}

/* ---- stderr capture (log.c writes each line with one write(2) to fd 2) ---- */

struct capture {
	int saved;
	int fd;
	char path[64];
};

static void capture_begin(struct capture *cap)
{
	snprintf(cap->path, sizeof(cap->path), "/tmp/sl-test-config-log-XXXXXX");
	cap->fd = mkstemp(cap->path);
	assert_true(cap->fd >= 0);
	cap->saved = dup(STDERR_FILENO);
	assert_true(cap->saved >= 0);
	assert_true(dup2(cap->fd, STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (caller frees). */
static char *capture_end(struct capture *cap)
{
	struct stat st;
	char *buf;
	ssize_t r;

	assert_true(dup2(cap->saved, STDERR_FILENO) >= 0);
	close(cap->saved);
	assert_int_equal(fstat(cap->fd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	r = pread(cap->fd, buf, (size_t)st.st_size, 0);
	assert_int_equal(r, st.st_size);
	close(cap->fd);
	unlink(cap->path);
	return buf;
}

static int count_substr(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ------------------------------------------------------------- defaults */

static void test_defaults_are_kafkas(void **state)
{
	struct config c;

	(void)state;
	config_init(&c);
	assert_int_equal(c.broker_id, -1);
	assert_string_equal(c.broker_rack, "");
	assert_int_equal(c.num_shards, 0);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.message_max_bytes, 1048588);
	assert_true(c.auto_create_topics_enable);
	assert_true(c.delete_topic_enable);
	assert_true(c.controlled_shutdown_enable);
	assert_int_equal(c.compression_type, CONFIG_COMPRESSION_PRODUCER);
	assert_int_equal(c.fetch_max_bytes, 57671680);
	assert_string_equal(c.listeners, "PLAINTEXT://:9092");
	assert_null(c.advertised_listeners);
	assert_int_equal(c.socket_send_buffer_bytes, 102400);
	assert_int_equal(c.socket_receive_buffer_bytes, 102400);
	assert_int_equal(c.socket_request_max_bytes, 104857600);
	assert_int_equal(c.socket_listen_backlog_size, 50);
	assert_int_equal(c.max_connections, INT32_MAX);
	assert_int_equal(c.max_connections_per_ip, INT32_MAX);
	assert_int_equal(c.connections_max_idle_ms, 600000);
	assert_int_equal(c.queued_max_requests, 500);
	assert_int_equal(c.queued_max_request_bytes, -1);
	assert_int_equal(c.num_partitions, 1);
	assert_int_equal(c.default_replication_factor, 1);
	assert_int_equal(c.min_insync_replicas, 1);
	assert_null(c.log_dirs);
	assert_string_equal(c.log_dir, "/tmp/kafka-logs");
	assert_int_equal(c.log_segment_bytes, 1073741824);
	assert_int_equal(c.log_roll_hours, 168);
	assert_int_equal(c.log_retention_hours, 168);
	assert_int_equal(c.log_retention_bytes, -1);
	assert_int_equal(c.log_retention_check_interval_ms, 300000);
	assert_int_equal(c.log_cleanup_policy, CONFIG_CLEANUP_DELETE);
	assert_true(c.log_cleaner_enable);
	assert_int_equal(c.log_cleaner_delete_retention_ms, 86400000);
	assert_true(c.log_cleaner_min_cleanable_ratio == 0.5);
	assert_int_equal(c.log_index_size_max_bytes, 10485760);
	assert_int_equal(c.log_index_interval_bytes, 4096);
	assert_true(c.log_flush_interval_messages == INT64_MAX);
	assert_true(c.log_flush_scheduler_interval_ms == INT64_MAX);
	assert_int_equal(c.log_flush_offset_checkpoint_interval_ms, 60000);
	assert_false(c.log_preallocate);
	assert_int_equal(c.log_message_timestamp_type, CONFIG_TIMESTAMP_CREATE_TIME);
	assert_true(c.log_message_timestamp_difference_max_ms == INT64_MAX);
	assert_true(c.log_message_timestamp_before_max_ms == INT64_MAX);
	assert_true(c.log_message_timestamp_after_max_ms == INT64_MAX);
	assert_int_equal(c.replica_lag_time_max_ms, 30000);
	assert_int_equal(c.replica_fetch_max_bytes, 1048576);
	assert_int_equal(c.replica_fetch_wait_max_ms, 500);
	assert_int_equal(c.replica_fetch_min_bytes, 1);
	assert_int_equal(c.replica_fetch_response_max_bytes, 10485760);
	assert_int_equal(c.replica_fetch_backoff_ms, 1000);
	assert_int_equal(c.replica_socket_timeout_ms, 30000);
	assert_int_equal(c.replica_high_watermark_checkpoint_interval_ms, 5000);
	assert_false(c.unclean_leader_election_enable);
	assert_string_equal(c.zookeeper_connect, "");
	assert_int_equal(c.zookeeper_session_timeout_ms, 18000);
	assert_int_equal(c.group_initial_rebalance_delay_ms, 3000);
	assert_int_equal(c.group_min_session_timeout_ms, 6000);
	assert_int_equal(c.group_max_session_timeout_ms, 1800000);
	assert_int_equal(c.group_max_size, INT32_MAX);
	assert_int_equal(c.offsets_topic_num_partitions, 50);
	assert_int_equal(c.offsets_topic_replication_factor, 3);
	assert_int_equal(c.offsets_topic_segment_bytes, 104857600);
	assert_int_equal(c.offsets_retention_minutes, 10080);
	assert_int_equal(c.offsets_retention_check_interval_ms, 600000);
	assert_int_equal(c.offsets_commit_timeout_ms, 5000);
	assert_int_equal(c.offset_metadata_max_bytes, 4096);
	config_free(&c);
}

/* config_finish on pure defaults: every nullable key resolved as Kafka does. */
static void test_defaults_finish(void **state)
{
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	cpu_set_t set;
	char *log;
	enum sl_err e;

	config_init(&c);
	capture_begin(&cap);
	e = config_finish(&c, t->err, sizeof(t->err));
	log = capture_end(&cap);
	assert_int_equal(e, SL_OK);
	assert_int_equal(c.log_retention_ms, 168LL * 3600 * 1000);
	assert_int_equal(c.log_roll_ms, 168LL * 3600 * 1000);
	assert_true(c.log_flush_interval_ms == INT64_MAX);
	assert_string_equal(c.log_dirs, "/tmp/kafka-logs");
	assert_string_equal(c.advertised_listeners, "PLAINTEXT://:9092");
	assert_int_equal(c.zookeeper_connection_timeout_ms, 18000);
	assert_int_equal(c.broker_id, 0);   /* embedded single-node mode */
	CPU_ZERO(&set);
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_int_equal(c.num_shards, SL_MIN(CPU_COUNT(&set), CONFIG_SHARDS_MAX));
	/* Kafka's offsets.topic.replication.factor=3 cannot work with one broker. */
	assert_non_null(strstr(log, "offsets.topic.replication.factor=3"));
	free(log);
	config_free(&c);
}

/* --------------------------------------------------------------- syntax */

static void test_syntax_forms(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c,
		"# a comment\n"
		"! another comment\n"
		"\n"
		"   \t \n"
		"broker.id=5\n"
		"broker.rack : rack-1   \n"
		"num.partitions 7\n"
		"\tlog.index.interval.bytes\t=\t8192\t\n"
		"message.max.bytes:2000\n"
		"   # indented comment = still a comment\n"
		"num.shards       =3\n"
		"log.dir = /var/sluice\n"
		"zookeeper.connect\n"), SL_OK);
	assert_int_equal(c.broker_id, 5);
	assert_string_equal(c.broker_rack, "rack-1");
	assert_int_equal(c.num_partitions, 7);
	assert_int_equal(c.log_index_interval_bytes, 8192);
	assert_int_equal(c.message_max_bytes, 2000);
	assert_int_equal(c.num_shards, 3);
	assert_string_equal(c.log_dir, "/var/sluice");
	assert_string_equal(c.zookeeper_connect, "");
	config_free(&c);
}

static void test_syntax_separators_in_value(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	/* Only the first separator splits; later '=' and ':' belong to the value. */
	assert_int_equal(load(t, &c, "broker.rack = =a:b=c\n"), SL_OK);
	assert_string_equal(c.broker_rack, "=a:b=c");
	assert_int_equal(load(t, &c, "broker.rack==x\n"), SL_OK);
	assert_string_equal(c.broker_rack, "=x");
	assert_int_equal(load(t, &c, "broker.rack: :x\n"), SL_OK);
	assert_string_equal(c.broker_rack, ":x");
	config_free(&c);
}

static void test_duplicate_key_last_wins(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "num.partitions=2\nnum.partitions=9\n"), SL_OK);
	assert_int_equal(c.num_partitions, 9);
	config_free(&c);
}

static void test_continuation_lines(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c,
		"listeners=PLAINTEXT://127.0.0.1:9092,\\\n"
		"          PLAINTEXT://127.0.0.1:9093\n"
		"log.dirs=/a,\\\n"
		"   /b,\\\n"
		"\t/c\n"
		"broker.rack=ab\\\\\n"          /* even backslashes: no continuation */
		"num.partitions=3\n"
		"# a comment ending in a backslash does not continue \\\n"
		"num.shards=4\n"
		"log.dir=/x\\\n"                /* continuation at end of file */
		), SL_OK);
	assert_string_equal(c.listeners, "PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093");
	assert_string_equal(c.log_dirs, "/a,/b,/c");
	assert_string_equal(c.broker_rack, "ab\\");
	assert_int_equal(c.num_partitions, 3);
	assert_int_equal(c.num_shards, 4);
	assert_string_equal(c.log_dir, "/x");
	/* A continued key: "num.\<nl>  partitions". */
	assert_int_equal(load(t, &c, "num.\\\n   partitions=11\n"), SL_OK);
	assert_int_equal(c.num_partitions, 11);
	config_free(&c);
}

static void test_line_endings_crlf_and_cr(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "num.partitions=2\r\nnum.shards=5\rbroker.id=4\r\n"), SL_OK);
	assert_int_equal(c.num_partitions, 2);
	assert_int_equal(c.num_shards, 5);
	assert_int_equal(c.broker_id, 4);
	/* The error line number counts CRLF as one line. */
	assert_int_equal(load(t, &c, "num.partitions=2\r\n\r\nnum.shards=x\r\n"), SL_EINVAL);
	assert_err_at(t, 3, "num.shards: \"x\" is not an integer");
	config_free(&c);
}

static void test_escapes(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "broker.rack=a\\tb\\u0041\\\\c\\=\\:\\ d\\#\\!\\q\n"), SL_OK);
	assert_string_equal(c.broker_rack, "a\tbA\\c=: d#!q");
	/* Escapes in the key; an escaped separator is part of the key. */
	assert_int_equal(load(t, &c, "broker\\.r\\u0061ck=k\n"), SL_OK);
	assert_string_equal(c.broker_rack, "k");
	assert_int_equal(load(t, &c, "broker\\=rack=1\n"), SL_EINVAL);
	assert_err_at(t, 1, "broker=rack: unknown key");
	/* \u as UTF-8, including a surrogate pair. */
	assert_int_equal(load(t, &c, "broker.rack=\\u00e9\\u20AC\\uD83D\\uDE00\n"), SL_OK);
	assert_string_equal(c.broker_rack, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* Trailing unescaped whitespace is trimmed, an escaped space is kept. */
	assert_int_equal(load(t, &c, "broker.rack=ab\\  \t\n"), SL_OK);
	assert_string_equal(c.broker_rack, "ab ");
	assert_int_equal(load(t, &c, "broker.rack=x\\n\n"), SL_OK);
	assert_string_equal(c.broker_rack, "x\n");
	config_free(&c);
}

static void test_escape_errors(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "\n\nbroker.rack=a\\u12\n"), SL_EINVAL);
	assert_err_at(t, 3, "broker.rack: malformed \\uXXXX escape");
	assert_int_equal(load(t, &c, "broker.rack=a\\u12G4\n"), SL_EINVAL);
	assert_err_at(t, 1, "broker.rack: malformed \\uXXXX escape");
	assert_int_equal(load(t, &c, "broker.rack=\\u0000\n"), SL_EINVAL);
	assert_err_at(t, 1, "broker.rack: \\u0000 is not allowed");
	assert_int_equal(load(t, &c, "broker.rack=\\uD83D!\n"), SL_EINVAL);
	assert_err_at(t, 1, "broker.rack: unpaired UTF-16 surrogate in \\u escape");
	assert_int_equal(load(t, &c, "broker.rack=\\uDE00\n"), SL_EINVAL);
	assert_err_at(t, 1, "broker.rack: unpaired UTF-16 surrogate in \\u escape");
	assert_int_equal(load(t, &c, "bro\\u00zzker=1\n"), SL_EINVAL);
	assert_err_at(t, 1, "bro\\u00zzker: malformed \\uXXXX escape");
	/* The failed values left the field unchanged. */
	assert_string_equal(c.broker_rack, "");
	config_free(&c);
}

static void test_line_numbers(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c,
		"# 1\n"
		"num.partitions=1\n"
		"\n"
		"log.dirs=/a,\\\n"
		"  /b\n"
		"! 6\n"
		"log.segment.bytes=12x\n"), SL_EINVAL);
	assert_err_at(t, 7, "log.segment.bytes: \"12x\" is not an integer");
	/* A continued logical line reports the line it starts on. */
	assert_int_equal(load(t, &c, "\nnum.partitions=\\\n  1\\\n  x\n"), SL_EINVAL);
	assert_err_at(t, 2, "num.partitions: \"1x\" is not an integer");
	config_free(&c);
}

static void test_unknown_key(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "num.partitions=2\n\nfoo.bar=1\nnum.shards=9\n"), SL_EINVAL);
	assert_err_at(t, 3, "foo.bar: unknown key");
	assert_int_equal(c.num_partitions, 2);   /* applied before the error */
	assert_int_equal(c.num_shards, 0);       /* stopped at the error */
	/* Security keys are not silently ignored. */
	assert_int_equal(load(t, &c, "ssl.keystore.location=/k.jks\n"), SL_EINVAL);
	assert_err_at(t, 1, "ssl.keystore.location: unknown key");
	/* Keys are case-sensitive, as in Kafka. */
	assert_int_equal(load(t, &c, "Num.Partitions=2\n"), SL_EINVAL);
	assert_err_at(t, 1, "Num.Partitions: unknown key");
	assert_int_equal(load(t, &c, "=5\n"), SL_EINVAL);
	assert_err_at(t, 1, "missing key before \"5\"");
	config_free(&c);
}

/* -------------------------------------------------------- value checks */

static void test_integer_malformed(void **state)
{
	static const char *const bad[] = { "12x", "", "x", "-", "+", "1.0", "0x10", "1 2", "1e3", "--1" };
	struct tstate *t = *state;
	char text[128], msg[128];
	struct config c;

	config_init(&c);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		snprintf(text, sizeof(text), "log.segment.bytes=%s\n", bad[i]);
		assert_int_equal(load(t, &c, text), SL_EINVAL);
		snprintf(msg, sizeof(msg), "log.segment.bytes: \"%s\" is not an integer", bad[i]);
		assert_err_at(t, 1, msg);
	}
	assert_int_equal(c.log_segment_bytes, 1073741824);
	assert_int_equal(load(t, &c, "log.segment.bytes=+2048\nbroker.id=-1\n"), SL_OK);
	assert_int_equal(c.log_segment_bytes, 2048);
	assert_int_equal(load(t, &c, "log.segment.bytes=007\n"), SL_ERANGE); /* 7 < 14 */
	config_free(&c);
}

static void test_integer_overflow(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "broker.id=2147483648\n"), SL_ERANGE);
	assert_err_at(t, 1, "broker.id: \"2147483648\" is out of range (at least -1)");
	assert_int_equal(load(t, &c, "log.retention.minutes=-2147483649\n"), SL_ERANGE);
	assert_err_at(t, 1, "log.retention.minutes: \"-2147483649\" is out of range (a 32-bit integer)");
	assert_int_equal(load(t, &c, "log.retention.bytes=9223372036854775808\n"), SL_ERANGE);
	assert_err_at(t, 1, "log.retention.bytes: \"9223372036854775808\" is out of range (a 64-bit integer)");
	assert_int_equal(load(t, &c, "log.retention.bytes=-9223372036854775809\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "log.retention.bytes=99999999999999999999999\n"), SL_ERANGE);
	/* Junk after too many digits is "not an integer", not "out of range". */
	assert_int_equal(load(t, &c, "log.retention.bytes=99999999999999999999x\n"), SL_EINVAL);
	/* The extremes themselves are accepted. */
	assert_int_equal(load(t, &c, "log.retention.bytes=-9223372036854775808\n"
				   "log.retention.ms=9223372036854775807\n"
				   "log.retention.minutes=-2147483648\n"
				   "broker.id=2147483647\n"), SL_OK);
	assert_true(c.log_retention_bytes == INT64_MIN);
	assert_true(c.log_retention_ms == INT64_MAX);
	assert_int_equal(c.log_retention_minutes, INT32_MIN);
	assert_int_equal(c.broker_id, INT32_MAX);
	config_free(&c);
}

static void test_integer_range(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "log.segment.bytes=13\n"), SL_ERANGE);
	assert_err_at(t, 1, "log.segment.bytes: \"13\" is out of range (at least 14)");
	assert_int_equal(load(t, &c, "num.shards=257\n"), SL_ERANGE);
	assert_err_at(t, 1, "num.shards: \"257\" is out of range [0, 256]");
	assert_int_equal(load(t, &c, "num.shards=-1\n"), SL_ERANGE);
	assert_err_at(t, 1, "num.shards: \"-1\" is out of range [0, 256]");
	assert_int_equal(load(t, &c, "num.partitions=0\n"), SL_ERANGE);
	assert_err_at(t, 1, "num.partitions: \"0\" is out of range (at least 1)");
	assert_int_equal(load(t, &c, "default.replication.factor=32768\n"), SL_ERANGE);
	assert_err_at(t, 1, "default.replication.factor: \"32768\" is out of range [1, 32767]");
	assert_int_equal(load(t, &c, "log.roll.ms=0\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "log.flush.interval.messages=0\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "socket.send.buffer.bytes=-2\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "fetch.max.bytes=1023\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "log.index.size.max.bytes=3\n"), SL_ERANGE);
	/* Boundaries are inside. */
	assert_int_equal(load(t, &c, "log.segment.bytes=14\nnum.shards=256\nsocket.send.buffer.bytes=-1\n"
				   "log.index.interval.bytes=0\nfetch.max.bytes=1024\n"), SL_OK);
	assert_int_equal(c.log_segment_bytes, 14);
	assert_int_equal(c.num_shards, 256);
	assert_int_equal(c.socket_send_buffer_bytes, -1);
	assert_int_equal(c.log_index_interval_bytes, 0);
	assert_int_equal(c.fetch_max_bytes, 1024);
	config_free(&c);
}

static void test_booleans(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "log.preallocate=TRUE\nauto.create.topics.enable=False\n"
				   "unclean.leader.election.enable=true\n"), SL_OK);
	assert_true(c.log_preallocate);
	assert_false(c.auto_create_topics_enable);
	assert_true(c.unclean_leader_election_enable);
	assert_int_equal(load(t, &c, "log.preallocate=yes\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.preallocate: \"yes\" is not a boolean (true or false)");
	assert_int_equal(load(t, &c, "log.preallocate=1\n"), SL_EINVAL);
	assert_int_equal(load(t, &c, "log.preallocate=\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.preallocate: \"\" is not a boolean (true or false)");
	assert_true(c.log_preallocate);
	config_free(&c);
}

static void test_doubles(void **state)
{
	static const char *const bad[] = { "abc", "", "nan", "inf", "0x1p-1", "1e", "0.5.5", "--1" };
	struct tstate *t = *state;
	char text[128], msg[128];
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "log.cleaner.min.cleanable.ratio=0.75\n"), SL_OK);
	assert_true(c.log_cleaner_min_cleanable_ratio == 0.75);
	assert_int_equal(load(t, &c, "log.cleaner.min.cleanable.ratio=1e-1\n"), SL_OK);
	assert_true(c.log_cleaner_min_cleanable_ratio == 0.1);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		snprintf(text, sizeof(text), "log.cleaner.min.cleanable.ratio=%s\n", bad[i]);
		assert_int_equal(load(t, &c, text), SL_EINVAL);
		snprintf(msg, sizeof(msg), "log.cleaner.min.cleanable.ratio: \"%s\" is not a number", bad[i]);
		assert_err_at(t, 1, msg);
	}
	assert_int_equal(load(t, &c, "log.cleaner.min.cleanable.ratio=1.5\n"), SL_ERANGE);
	assert_err_at(t, 1, "log.cleaner.min.cleanable.ratio: \"1.5\" is out of range [0, 1]");
	assert_int_equal(load(t, &c, "log.cleaner.min.cleanable.ratio=-0.1\n"), SL_ERANGE);
	assert_int_equal(load(t, &c, "log.cleaner.min.cleanable.ratio=1e999\n"), SL_ERANGE);
	assert_true(c.log_cleaner_min_cleanable_ratio == 0.1);
	config_free(&c);
}

static void test_enums_and_flags(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "log.message.timestamp.type=LogAppendTime\ncompression.type=zstd\n"
				   "log.cleanup.policy=compact, delete\nlog.level=debug\n"), SL_OK);
	assert_int_equal(c.log_message_timestamp_type, CONFIG_TIMESTAMP_LOG_APPEND_TIME);
	assert_int_equal(c.compression_type, CONFIG_COMPRESSION_ZSTD);
	assert_int_equal(c.log_cleanup_policy, CONFIG_CLEANUP_DELETE | CONFIG_CLEANUP_COMPACT);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(load(t, &c, "log.message.timestamp.type=logappendtime\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.message.timestamp.type: \"logappendtime\" is not one of "
		      "CreateTime, LogAppendTime");
	assert_int_equal(load(t, &c, "compression.type=brotli\n"), SL_EINVAL);
	assert_err_at(t, 1, "compression.type: \"brotli\" is not one of uncompressed, gzip, snappy, "
		      "lz4, zstd, producer");
	assert_int_equal(load(t, &c, "log.cleanup.policy=delete,shred\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.cleanup.policy: \"shred\" is not one of delete, compact");
	assert_int_equal(load(t, &c, "log.level=verbose\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.level: \"verbose\" is not one of debug, info, warn, error");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(load(t, &c, "log.cleanup.policy=compact\ncompression.type=uncompressed\n"), SL_OK);
	assert_int_equal(c.log_cleanup_policy, CONFIG_CLEANUP_COMPACT);
	assert_int_equal(c.compression_type, CONFIG_COMPRESSION_UNCOMPRESSED);
	assert_int_equal(load(t, &c, "log.cleanup.policy=\n"), SL_OK);  /* Kafka: neither */
	assert_int_equal(c.log_cleanup_policy, 0);
	config_free(&c);
}

/* ------------------------------------------------------------ listeners */

static void test_listeners_valid(void **state)
{
	struct tstate *t = *state;
	struct config c;
	char host[64];
	uint16_t port = 1;

	config_init(&c);
	assert_int_equal(load(t, &c, "listeners= PLAINTEXT://:9092 , plaintext://host-1.example:1,"
				   "PLAINTEXT://[::1]:9093,,PLAINTEXT://0.0.0.0:0\n"), SL_OK);
	assert_string_equal(c.listeners, "PLAINTEXT://:9092,plaintext://host-1.example:1,"
			    "PLAINTEXT://[::1]:9093,PLAINTEXT://0.0.0.0:0");
	assert_int_equal(config_listener_count(c.listeners), 4);
	assert_int_equal(config_listener_parse(c.listeners, 0, host, sizeof(host), &port), SL_OK);
	assert_string_equal(host, "");
	assert_int_equal(port, 9092);
	assert_int_equal(config_listener_parse(c.listeners, 1, host, sizeof(host), &port), SL_OK);
	assert_string_equal(host, "host-1.example");
	assert_int_equal(port, 1);
	assert_int_equal(config_listener_parse(c.listeners, 2, host, sizeof(host), &port), SL_OK);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9093);
	assert_int_equal(config_listener_parse(c.listeners, 3, host, sizeof(host), &port), SL_OK);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 0);
	assert_int_equal(config_listener_parse(c.listeners, 4, host, sizeof(host), &port), SL_ENOTFOUND);
	assert_int_equal(config_listener_parse(c.listeners, -1, host, sizeof(host), &port), SL_ENOTFOUND);
	assert_int_equal(config_listener_parse(c.listeners, 1, host, 5, &port), SL_ERANGE);
	assert_int_equal(config_listener_parse("PLAINTEXT://h:65535", 0, host, sizeof(host), &port), SL_OK);
	assert_int_equal(port, 65535);
	assert_int_equal(config_listener_parse("SSL://h:1", 0, host, sizeof(host), &port), SL_EINVAL);
	assert_int_equal(config_listener_count(NULL), 0);
	assert_int_equal(config_listener_count(" , "), 0);
	config_free(&c);
}

static void test_listeners_invalid(void **state)
{
	static const struct { const char *value, *msg; } bad[] = {
		{ "SSL://:9093", "listeners: \"SSL://:9093\": only PLAINTEXT listeners are supported" },
		{ "PLAINTEXT://host", "listeners: \"PLAINTEXT://host\": missing :port" },
		{ "PLAINTEXT://host:65536",
		  "listeners: \"PLAINTEXT://host:65536\": port must be a number in 0..65535" },
		{ "PLAINTEXT://host:-1",
		  "listeners: \"PLAINTEXT://host:-1\": port must be a number in 0..65535" },
		{ "PLAINTEXT://host:", "listeners: \"PLAINTEXT://host:\": port must be a number in 0..65535" },
		{ "PLAINTEXT://::1:9092", "listeners: \"PLAINTEXT://::1:9092\": invalid character in host "
		  "(an IPv6 address needs [brackets])" },
		{ "PLAINTEXT://[::1:9092", "listeners: \"PLAINTEXT://[::1:9092\": bad [IPv6] host" },
		{ "PLAINTEXT://[::1]x9092",
		  "listeners: \"PLAINTEXT://[::1]x9092\": port must be a number in 0..65535" },
		{ "PLAINTEXT://a b:1", "listeners: \"PLAINTEXT://a b:1\": invalid character in host "
		  "(an IPv6 address needs [brackets])" },
		{ "localhost:9092", "listeners: \"localhost:9092\": expected PLAINTEXT://host:port" },
		{ "", "listeners: no listener given (expected PLAINTEXT://host:port)" },
		{ "PLAINTEXT://a:9092,PLAINTEXT://b:9092",
		  "listeners: \"PLAINTEXT://b:9092\": port 9092 is already used by another listener" },
	};
	struct tstate *t = *state;
	char text[256];
	struct config c;

	config_init(&c);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		snprintf(text, sizeof(text), "# listeners\nlisteners=%s\n", bad[i].value);
		assert_int_equal(load(t, &c, text), SL_EINVAL);
		assert_err_at(t, 2, bad[i].msg);
	}
	assert_string_equal(c.listeners, "PLAINTEXT://:9092");
	/* Port 0 twice is fine: the kernel picks two different ports. */
	assert_int_equal(load(t, &c, "listeners=PLAINTEXT://a:0,PLAINTEXT://b:0\n"), SL_OK);
	config_free(&c);
}

static void test_advertised_listeners(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "advertised.listeners=PLAINTEXT://0.0.0.0:9092\n"), SL_EINVAL);
	assert_err_at(t, 1, "advertised.listeners: \"PLAINTEXT://0.0.0.0:9092\": 0.0.0.0 cannot be "
		      "advertised (not routable)");
	assert_int_equal(load(t, &c, "advertised.listeners=PLAINTEXT://[::]:9092\n"), SL_EINVAL);
	/* Same port twice is fine when advertising (Kafka only checks listeners). */
	assert_int_equal(load(t, &c, "advertised.listeners=PLAINTEXT://a:9092,PLAINTEXT://b:9092\n"), SL_OK);
	config_free(&c);

	/* Derived from listeners: 0.0.0.0 is refused at config_finish, as Kafka does. */
	config_init(&c);
	assert_int_equal(load(t, &c, "listeners=PLAINTEXT://0.0.0.0:9092\n"), SL_OK);
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: advertised.listeners: not set, so listeners would be "
			    "advertised, but \"PLAINTEXT://0.0.0.0:9092\": 0.0.0.0 cannot be advertised "
			    "(not routable); set advertised.listeners");
	assert_int_equal(load(t, &c, "advertised.listeners=PLAINTEXT://broker1.example:9092\n"), SL_OK);
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_OK);
	assert_string_equal(c.advertised_listeners, "PLAINTEXT://broker1.example:9092");
	config_free(&c);
}

/* ------------------------------------------------------------ ZooKeeper */

static void test_zookeeper_connect(void **state)
{
	static const char *const bad[] = {
		"zk1:2181/kafka,zk2:2181", "zk1:0", ":2181", "zk1:abc", "zk1:2181/a/", "zk1:2181/a//b",
		"zk1:2181//", "[::1", "zk1:70000", "zk1:2181,/chroot",
	};
	struct tstate *t = *state;
	char text[128];
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "zookeeper.connect=zk1:2181, zk2:2182,[::1]:2183,zk4/sluice/a\n"), SL_OK);
	assert_string_equal(c.zookeeper_connect, "zk1:2181,zk2:2182,[::1]:2183,zk4/sluice/a");
	/* A chroot of "/" is no chroot, as in the ZooKeeper client. */
	assert_int_equal(load(t, &c, "zookeeper.connect=zk1:2181/\n"), SL_OK);
	assert_int_equal(load(t, &c, "zookeeper.connect=zk1:2181, zk2:2182,[::1]:2183,zk4/sluice/a\n"),
			 SL_OK);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		snprintf(text, sizeof(text), "zookeeper.connect=%s\n", bad[i]);
		assert_int_equal(load(t, &c, text), SL_EINVAL);
		assert_non_null(strstr(t->err, ":1: zookeeper.connect: \""));
	}
	assert_string_equal(c.zookeeper_connect, "zk1:2181,zk2:2182,[::1]:2183,zk4/sluice/a");
	/* With ZooKeeper, broker.id must be given. */
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: broker.id: must be set (0..2147483647) when "
			    "zookeeper.connect is set; Sluice does not generate broker ids");
	assert_int_equal(load(t, &c, "broker.id=3\nzookeeper.session.timeout.ms=6000\n"), SL_OK);
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_OK);
	assert_int_equal(c.broker_id, 3);
	assert_int_equal(c.zookeeper_connection_timeout_ms, 6000);  /* falls back to session */
	assert_int_equal(load(t, &c, "zookeeper.connection.timeout.ms=1000\n"), SL_OK);
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_OK);
	assert_int_equal(c.zookeeper_connection_timeout_ms, 1000);
	config_free(&c);
}

/* ----------------------------------------------------------- precedence */

/*
 * Loads `text`, finishes, returns the result (err in t->err). Sets
 * offsets.topic.replication.factor=1 first (the text may override it) so
 * that embedded mode does not warn about Kafka's default of 3.
 */
static enum sl_err load_finish(struct tstate *t, struct config *c, const char *text)
{
	enum sl_err e;

	config_init(c);
	assert_int_equal(config_set(c, "offsets.topic.replication.factor", "1", t->err, sizeof(t->err)),
			 SL_OK);
	e = load(t, c, text);
	if (e != SL_OK)
		return e;
	return config_finish(c, t->err, sizeof(t->err));
}

static void test_precedence_retention(void **state)
{
	struct tstate *t = *state;
	struct config c;

	assert_int_equal(load_finish(t, &c, "log.retention.hours=24\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, 86400000);
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.hours=1\nlog.retention.minutes=30\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, 1800000);
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.ms=1234\nlog.retention.minutes=30\n"
				     "log.retention.hours=1\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, 1234);
	assert_int_equal(c.log_retention_minutes, 30);   /* kept as written */
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.hours=-1\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, -1);
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.ms=-5\nlog.retention.hours=2\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, -1);
	config_free(&c);
	/* The highest-precedence key that is set wins even if it means "unlimited". */
	assert_int_equal(load_finish(t, &c, "log.retention.minutes=-1\nlog.retention.hours=2\n"), SL_OK);
	assert_int_equal(c.log_retention_ms, -1);
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.minutes=0\n"), SL_ERANGE);
	assert_string_equal(t->err, "config: log.retention.minutes: a retention of 0 ms is not "
			    "allowed; use -1 for unlimited or a positive value");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.ms=0\n"), SL_ERANGE);
	assert_non_null(strstr(t->err, "config: log.retention.ms: a retention of 0 ms"));
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.hours=0\n"), SL_ERANGE);
	assert_non_null(strstr(t->err, "config: log.retention.hours: a retention of 0 ms"));
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.retention.bytes=-100\n"), SL_OK);
	assert_int_equal(c.log_retention_bytes, -1);
	config_free(&c);
}

static void test_precedence_roll_flush_dirs(void **state)
{
	struct tstate *t = *state;
	struct config c;

	assert_int_equal(load_finish(t, &c, "log.roll.hours=1\nlog.flush.scheduler.interval.ms=1000\n"
				     "log.dir=/x\n"), SL_OK);
	assert_int_equal(c.log_roll_ms, 3600000);
	assert_int_equal(c.log_flush_interval_ms, 1000);
	assert_string_equal(c.log_dirs, "/x");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "log.roll.ms=5\nlog.roll.hours=1\n"
				     "log.flush.interval.ms=0\nlog.flush.scheduler.interval.ms=1000\n"
				     "log.dirs=/y, /z\nlog.dir=/x\n"), SL_OK);
	assert_int_equal(c.log_roll_ms, 5);
	assert_int_equal(c.log_flush_interval_ms, 0);
	assert_string_equal(c.log_dirs, "/y,/z");
	assert_int_equal(config_list_count(c.log_dirs), 2);
	config_free(&c);
	/* before/after.max.ms fall back to the deprecated difference.max.ms (Kafka 3.6+). */
	assert_int_equal(load_finish(t, &c, "log.message.timestamp.difference.max.ms=1000\n"
				     "log.message.timestamp.after.max.ms=5\n"), SL_OK);
	assert_int_equal(c.log_message_timestamp_before_max_ms, 1000);
	assert_int_equal(c.log_message_timestamp_after_max_ms, 5);
	config_free(&c);
}

static void test_log_dirs_checks(void **state)
{
	struct tstate *t = *state;
	struct config c;

	config_init(&c);
	assert_int_equal(load(t, &c, "log.dirs=/a,/b,/a\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.dirs: directory \"/a\" is listed twice");
	assert_int_equal(load(t, &c, "log.dirs= , ,\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.dirs: no directory given");
	assert_int_equal(load(t, &c, "log.dir=\n"), SL_EINVAL);
	assert_err_at(t, 1, "log.dir: no directory given");
	config_free(&c);
}

static void test_cross_checks(void **state)
{
	struct tstate *t = *state;
	struct config c;

	assert_int_equal(load_finish(t, &c, "replica.fetch.wait.max.ms=40000\n"), SL_EINVAL);
	assert_string_equal(t->err, "config: replica.fetch.wait.max.ms: 40000 must not exceed "
			    "replica.lag.time.max.ms (30000)");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "replica.fetch.wait.max.ms=20000\n"
				     "replica.socket.timeout.ms=10000\n"), SL_EINVAL);
	assert_string_equal(t->err, "config: replica.fetch.wait.max.ms: 20000 must not exceed "
			    "replica.socket.timeout.ms (10000)");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "group.min.session.timeout.ms=7000\n"
				     "group.max.session.timeout.ms=6000\n"), SL_EINVAL);
	assert_string_equal(t->err, "config: group.min.session.timeout.ms: 7000 must not exceed "
			    "group.max.session.timeout.ms (6000)");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "queued.max.request.bytes=100\n"), SL_EINVAL);
	assert_string_equal(t->err, "config: queued.max.request.bytes: 100 must be <= 0 (no limit) "
			    "or at least socket.request.max.bytes (104857600)");
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "queued.max.request.bytes=0\n"), SL_OK);
	config_free(&c);
	assert_int_equal(load_finish(t, &c, "queued.max.request.bytes=104857600\n"), SL_OK);
	config_free(&c);
}

static void test_finish_idempotent(void **state)
{
	struct tstate *t = *state;
	struct config c;

	assert_int_equal(load_finish(t, &c, "log.retention.minutes=10\nlog.dir=/d\n"
				     "offsets.topic.replication.factor=1\n"), SL_OK);
	assert_int_equal(config_finish(&c, t->err, sizeof(t->err)), SL_OK);
	assert_int_equal(c.log_retention_ms, 600000);
	assert_string_equal(c.log_dirs, "/d");
	assert_string_equal(c.advertised_listeners, "PLAINTEXT://:9092");
	assert_int_equal(c.broker_id, 0);
	config_free(&c);
	config_free(&c);   /* a second free is harmless: fields are NULL */
	assert_null(c.listeners);
}

/* -------------------------------------------------------- ignored keys */

static void test_ignored_keys(void **state)
{
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	char *log, want[256];
	enum sl_err e;

	config_init(&c);
	capture_begin(&cap);
	e = load(t, &c,
		 "num.network.threads=3\n"
		 "num.io.threads=not-even-a-number\n"
		 "transaction.state.log.replication.factor=1\n"
		 "transaction.state.log.min.isr=1\n"
		 "num.recovery.threads.per.data.dir=1\n"
		 "num.replica.fetchers=4\n"
		 "background.threads=10\n"
		 "log.cleaner.threads=2\n"
		 "num.partitions=6\n");
	log = capture_end(&cap);
	assert_int_equal(e, SL_OK);
	assert_int_equal(c.num_partitions, 6);
	assert_int_equal(count_substr(log, " W [main] config: "), 8);
	snprintf(want, sizeof(want), "config: %s:1: ignored: num.network.threads has no effect in Sluice",
		 t->path);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "config: %s:3: ignored: transaction.state.log.replication.factor "
		 "has no effect in Sluice", t->path);
	assert_non_null(strstr(log, want));
	assert_non_null(strstr(log, "ignored: log.cleaner.threads has no effect in Sluice"));
	free(log);
	/* The prefix rule matches only that prefix. */
	assert_int_equal(load(t, &c, "transaction.state.logX=1\n"), SL_EINVAL);
	config_free(&c);
}

/* ---------------------------------------------------------------- --set */

static void test_set(void **state)
{
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	char *log;
	enum sl_err e;

	config_init(&c);
	assert_int_equal(load(t, &c, "num.partitions=2\n"), SL_OK);
	assert_int_equal(config_set(&c, " num.partitions ", " 4 ", t->err, sizeof(t->err)), SL_OK);
	assert_int_equal(c.num_partitions, 4);   /* --set after the file wins */
	assert_int_equal(config_set(&c, "listeners", "PLAINTEXT://127.0.0.1:0", t->err, sizeof(t->err)),
			 SL_OK);
	assert_string_equal(c.listeners, "PLAINTEXT://127.0.0.1:0");
	/* No escapes on the command line: a backslash is a backslash. */
	assert_int_equal(config_set(&c, "broker.rack", "a\\tb", t->err, sizeof(t->err)), SL_OK);
	assert_string_equal(c.broker_rack, "a\\tb");

	assert_int_equal(config_set(&c, "foo.bar", "1", t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: --set foo.bar: unknown key");
	assert_int_equal(config_set(&c, "log.segment.bytes", "12x", t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: --set log.segment.bytes: \"12x\" is not an integer");
	assert_int_equal(config_set(&c, "num.shards", "300", t->err, sizeof(t->err)), SL_ERANGE);
	assert_string_equal(t->err, "config: --set num.shards: \"300\" is out of range [0, 256]");
	assert_int_equal(config_set(&c, "log.preallocate", "on", t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: --set log.preallocate: \"on\" is not a boolean (true or false)");
	assert_int_equal(config_set(&c, "listeners", "SSL://:1", t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: --set listeners: \"SSL://:1\": only PLAINTEXT listeners "
			    "are supported");
	assert_int_equal(config_set(&c, "", "1", t->err, sizeof(t->err)), SL_EINVAL);
	assert_string_equal(t->err, "config: --set missing key before \"1\"");

	capture_begin(&cap);
	e = config_set(&c, "num.io.threads", "8", t->err, sizeof(t->err));
	log = capture_end(&cap);
	assert_int_equal(e, SL_OK);
	assert_non_null(strstr(log, "config: --set ignored: num.io.threads has no effect in Sluice"));
	free(log);

	/* A small err buffer truncates, never overflows; NULL err is allowed. */
	{
		char small[16];

		assert_int_equal(config_set(&c, "foo.bar", "1", small, sizeof(small)), SL_EINVAL);
		assert_string_equal(small, "config: --set f");
		assert_int_equal(config_set(&c, "foo.bar", "1", NULL, 0), SL_EINVAL);
	}
	config_free(&c);
}

/* ---------------------------------------------------------- file errors */

static void test_file_errors(void **state)
{
	struct tstate *t = *state;
	char path[192], want[256], *big;
	struct config c;
	size_t n;

	config_init(&c);
	snprintf(path, sizeof(path), "%s/missing.properties", t->dir);
	assert_int_equal(config_load_file(&c, path, t->err, sizeof(t->err)), SL_ENOTFOUND);
	snprintf(want, sizeof(want), "config: %s: No such file or directory", path);
	assert_string_equal(t->err, want);
	/* A directory is not a config file. */
	assert_int_equal(config_load_file(&c, t->dir, t->err, sizeof(t->err)), SL_EIO);
	assert_non_null(strstr(t->err, "not a regular file"));
	/* A NUL byte is refused, naming its line. */
	write_file(t->path, "num.partitions=1\nbroker.rack=a\0b\n", 33);
	assert_int_equal(config_load_file(&c, t->path, t->err, sizeof(t->err)), SL_EINVAL);
	assert_err_at(t, 2, "NUL byte in file");
	/* A logical line longer than the bound. */
	n = CONFIG_LINE_BYTES_MAX + 64;
	big = malloc(n + 1);
	assert_non_null(big);
	memcpy(big, "broker.rack=", 12);
	memset(big + 12, 'r', n - 13);
	big[n - 1] = '\n';
	big[n] = '\0';
	assert_int_equal(load(t, &c, big), SL_EINVAL);
	assert_non_null(strstr(t->err, ":1: line longer than 65536 bytes"));
	free(big);
	/* A file larger than the bound. */
	snprintf(path, sizeof(path), "%s/big.properties", t->dir);
	n = CONFIG_FILE_BYTES_MAX + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	write_file(path, big, n);
	free(big);
	assert_int_equal(config_load_file(&c, path, t->err, sizeof(t->err)), SL_EIO);
	assert_non_null(strstr(t->err, "at most 1048576 bytes"));
	/* An empty file and a comment-only file load fine. */
	assert_int_equal(load(t, &c, ""), SL_OK);
	assert_int_equal(load(t, &c, "# nothing\n"), SL_OK);
	config_free(&c);
}

/* ------------------------------------------------------------ list helpers */

static void test_list_helpers(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(config_list_count("a, ,b,"), 2);
	assert_int_equal(config_list_count(""), 0);
	assert_int_equal(config_list_count(NULL), 0);
	assert_int_equal(config_list_get(" a , b ", 1, out, sizeof(out)), SL_OK);
	assert_string_equal(out, "b");
	assert_int_equal(config_list_get("a,b", 2, out, sizeof(out)), SL_ENOTFOUND);
	assert_int_equal(config_list_get("a,b", -1, out, sizeof(out)), SL_ENOTFOUND);
	assert_int_equal(config_list_get("abcdefgh", 0, out, sizeof(out)), SL_ERANGE);
	assert_int_equal(config_list_get("abcdefg", 0, out, sizeof(out)), SL_OK);
}

/* --------------------------------------------------------------- config_log */

static void test_config_log(void **state)
{
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	char *log, want[64];

	assert_int_equal(load_finish(t, &c, "broker.id=7\nlog.retention.hours=10\n"), SL_OK);
	capture_begin(&cap);
	config_log(&c);
	log = capture_end(&cap);
	assert_int_equal(count_substr(log, " I [main] config: "), KEYS_TOTAL);
	assert_int_equal(count_substr(log, "\n"), KEYS_TOTAL);
	assert_non_null(strstr(log, "config: broker.id=7\n"));
	assert_non_null(strstr(log, "config: log.segment.bytes=1073741824 (default)\n"));
	assert_non_null(strstr(log, "config: log.retention.hours=10\n"));
	assert_non_null(strstr(log, "config: log.retention.ms=36000000 (derived)\n"));
	assert_non_null(strstr(log, "config: log.retention.minutes=(unset)\n"));
	assert_non_null(strstr(log, "config: log.dirs=/tmp/kafka-logs (derived)\n"));
	assert_non_null(strstr(log, "config: log.flush.interval.messages=9223372036854775807 (default)\n"));
	assert_non_null(strstr(log, "config: log.cleaner.min.cleanable.ratio=0.5 (default)\n"));
	assert_non_null(strstr(log, "config: log.cleanup.policy=delete (default)\n"));
	assert_non_null(strstr(log, "config: compression.type=producer (default)\n"));
	assert_non_null(strstr(log, "config: log.level=info (default)\n"));
	assert_non_null(strstr(log, "config: auto.create.topics.enable=true (default)\n"));
	assert_non_null(strstr(log, "config: broker.rack= (default)\n"));
	assert_non_null(strstr(log, "config: offsets.topic.replication.factor=1\n"));
	snprintf(want, sizeof(want), "config: num.shards=%d (derived)\n", c.num_shards);
	assert_non_null(strstr(log, want));
	free(log);
	config_free(&c);
}

/* ------------------------------------------------ the shipped config file */

static void test_single_node_properties(void **state)
{
	const char *path = SL_TEST_DATA_DIR "/../../deploy/config/single-node.properties";
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	char host[64], *log;
	uint16_t port = 0;
	enum sl_err e1, e2;

	config_init(&c);
	capture_begin(&cap);
	e1 = config_load_file(&c, path, t->err, sizeof(t->err));
	e2 = e1 == SL_OK ? config_finish(&c, t->err, sizeof(t->err)) : e1;
	log = capture_end(&cap);
	if (e2 != SL_OK)
		fprintf(stderr, "%s\n", t->err);
	assert_int_equal(e1, SL_OK);
	assert_int_equal(e2, SL_OK);
	assert_string_equal(log, "");   /* loads without warnings */
	free(log);
	assert_int_equal(c.broker_id, 0);
	assert_string_equal(c.listeners, "PLAINTEXT://127.0.0.1:9092");
	assert_string_equal(c.advertised_listeners, "PLAINTEXT://127.0.0.1:9092");
	assert_string_equal(c.log_dirs, "./data");
	assert_int_equal(c.num_partitions, 1);
	assert_string_equal(c.zookeeper_connect, "");
	assert_int_equal(c.offsets_topic_replication_factor, 1);
	assert_int_equal(config_listener_parse(c.listeners, 0, host, sizeof(host), &port), SL_OK);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9092);
	config_free(&c);
}

/* deploy/config/README.md documents exactly the keys config_log prints. */
static void test_readme_lists_every_key(void **state)
{
	const char *path = SL_TEST_DATA_DIR "/../../deploy/config/README.md";
	struct tstate *t = *state;
	struct capture cap;
	struct config c;
	char *log, *readme, row[160];
	const char *p;
	int keys = 0;
	FILE *f;
	long n;

	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	readme = calloc(1, (size_t)n + 1);
	assert_non_null(readme);
	assert_int_equal(fread(readme, 1, (size_t)n, f), (size_t)n);
	fclose(f);

	assert_int_equal(load_finish(t, &c, ""), SL_OK);
	capture_begin(&cap);
	config_log(&c);
	log = capture_end(&cap);
	for (p = strstr(log, "config: "); p != NULL; p = strstr(p + 1, "config: ")) {
		const char *eq = strchr(p, '=');

		assert_non_null(eq);
		snprintf(row, sizeof(row), "\n| `%.*s` |", (int)(eq - p - 8), p + 8);
		if (strstr(readme, row) == NULL)
			fail_msg("README.md has no row for %s", row + 1);
		keys++;
	}
	assert_int_equal(keys, KEYS_TOTAL);
	/* No extra rows: count the key table's rows by their type column. */
	{
		static const char *const types[] = { "int", "long", "boolean", "double", "string",
						     "list", "enum", "list of enum" };
		int rows = 0;

		for (size_t i = 0; i < SL_ARRAY_LEN(types); i++) {
			snprintf(row, sizeof(row), "` | %s | ", types[i]);
			rows += count_substr(readme, row);
		}
		assert_int_equal(rows, KEYS_TOTAL);
	}
	free(log);
	free(readme);
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_kafkas),
		cmocka_unit_test(test_defaults_finish),
		cmocka_unit_test(test_syntax_forms),
		cmocka_unit_test(test_syntax_separators_in_value),
		cmocka_unit_test(test_duplicate_key_last_wins),
		cmocka_unit_test(test_continuation_lines),
		cmocka_unit_test(test_line_endings_crlf_and_cr),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_escape_errors),
		cmocka_unit_test(test_line_numbers),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_integer_malformed),
		cmocka_unit_test(test_integer_overflow),
		cmocka_unit_test(test_integer_range),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_doubles),
		cmocka_unit_test(test_enums_and_flags),
		cmocka_unit_test(test_listeners_valid),
		cmocka_unit_test(test_listeners_invalid),
		cmocka_unit_test(test_advertised_listeners),
		cmocka_unit_test(test_zookeeper_connect),
		cmocka_unit_test(test_precedence_retention),
		cmocka_unit_test(test_precedence_roll_flush_dirs),
		cmocka_unit_test(test_log_dirs_checks),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_finish_idempotent),
		cmocka_unit_test(test_ignored_keys),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_list_helpers),
		cmocka_unit_test(test_config_log),
		cmocka_unit_test(test_single_node_properties),
		cmocka_unit_test(test_readme_lists_every_key),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
