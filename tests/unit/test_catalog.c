/*
 * test_catalog.c — the topics catalog (net/catalog.h): Kafka's topic-name
 * rules, the id text form, creation/deletion/config with persistence and
 * reload, snapshots and their lookups, refusal of corrupt files, rollback
 * when the file cannot be written, partition.metadata; cluster mode:
 * topics created with the controller's id, the broker list and partition
 * replica states carried by snapshots but not persisted.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"

struct tmpdir {
	char path[256];
};

static void tmpdir_make(struct tmpdir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/sl-catalog-test-XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void tmpdir_remove(struct tmpdir *d)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *read_file(const char *dir, const char *name)
{
	char path[512];
	char *buf = calloc(1, 1 << 16);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Deterministic randomness: a counter, or a constant when ctx says so. */
struct rnd {
	uint8_t next;
	int constant;
};

static int rnd_fn(void *ctx, void *buf, size_t len)
{
	struct rnd *r = ctx;
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = r->constant ? 0x11 : r->next++;
	return 0;
}

static void test_names(void **state)
{
	char long_ok[CATALOG_TOPIC_NAME_MAX + 2];

	(void)state;
	memset(long_ok, 'a', sizeof(long_ok));
	assert_true(catalog_name_valid("a", 1));
	assert_true(catalog_name_valid("A-b_c.9", 7));
	assert_true(catalog_name_valid("...", 3));
	assert_true(catalog_name_valid(long_ok, CATALOG_TOPIC_NAME_MAX));
	assert_false(catalog_name_valid(long_ok, CATALOG_TOPIC_NAME_MAX + 1));
	assert_false(catalog_name_valid("", 0));
	assert_false(catalog_name_valid(".", 1));
	assert_false(catalog_name_valid("..", 2));
	assert_false(catalog_name_valid("a b", 3));
	assert_false(catalog_name_valid("a/b", 3));
	assert_false(catalog_name_valid("a\nb", 3));
	assert_false(catalog_name_valid("\xc3\xa9", 2));
	assert_true(catalog_name_internal("__consumer_offsets", 18));
	assert_true(catalog_name_internal("__transaction_state", 19));
	assert_false(catalog_name_internal("__consumer_offsets2", 19));
	assert_true(catalog_name_reserved("__consumer_offsets", 18));
	assert_true(catalog_name_reserved("__sluice_x", 10));
	assert_false(catalog_name_reserved("_sluice", 7));
	assert_false(catalog_name_reserved("orders", 6));
}

static void test_uuid_text(void **state)
{
	struct kuuid id, back;
	char text[CATALOG_ID_CHARS + 1];

	(void)state;
	memset(&id, 0, sizeof(id));
	catalog_uuid_format(&id, text);
	assert_string_equal(text, "AAAAAAAAAAAAAAAAAAAAAA");
	assert_true(catalog_uuid_is_zero(&id));
	for (int i = 0; i < 16; i++)
		id.b[i] = (uint8_t)i;
	catalog_uuid_format(&id, text);
	assert_string_equal(text, "AAECAwQFBgcICQoLDA0ODw");   /* base64url, as Kafka prints */
	assert_int_equal(catalog_uuid_parse(text, 22, &back), SL_OK);
	assert_memory_equal(back.b, id.b, 16);
	for (int i = 0; i < 16; i++)
		id.b[i] = (uint8_t)(0xff - i * 7);
	catalog_uuid_format(&id, text);
	assert_int_equal(catalog_uuid_parse(text, 22, &back), SL_OK);
	assert_memory_equal(back.b, id.b, 16);
	assert_int_equal(catalog_uuid_parse(text, 21, &back), SL_EINVAL);
	assert_int_equal(catalog_uuid_parse("AAECAwQFBgcICQoLDA0OD+", 22, &back), SL_EINVAL);
	assert_int_equal(catalog_uuid_parse("AAECAwQFBgcICQoLDA0ODx", 22, &back), SL_EINVAL);
}

static void test_create_reload(void **state)
{
	struct tmpdir d;
	struct rnd r = { 0 };
	struct catalog *c;
	struct catalog_snap *s, *s2;
	struct kuuid id_orders, id_x;
	char cluster[CATALOG_ID_CHARS + 1];

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_open(&c, d.path, rnd_fn, &r), SL_OK);
	strcpy(cluster, catalog_cluster_id(c));
	assert_int_equal(strlen(cluster), CATALOG_ID_CHARS);
	uint64_t v0 = catalog_version(c);

	assert_int_equal(catalog_topic_create(c, "orders", 6, 6, 0, &id_orders), SL_OK);
	assert_int_equal(id_orders.b[6] >> 4, 4);            /* UUID v4 */
	assert_int_equal(id_orders.b[8] & 0xc0, 0x80);       /* RFC 4122 variant */
	assert_int_equal(catalog_version(c), v0 + 1);
	assert_int_equal(catalog_topic_create(c, "orders", 6, 3, 0, &id_x), SL_EEXIST);
	assert_memory_equal(id_x.b, id_orders.b, 16);
	assert_int_equal(catalog_topic_create(c, "a.b", 3, 1, 0, NULL), SL_OK);
	assert_int_equal(catalog_topic_create(c, "a_b", 3, 1, 0, NULL), SL_EINVAL);  /* collides */
	assert_int_equal(catalog_topic_create(c, "bad name", 8, 1, 0, NULL), SL_EINVAL);
	assert_int_equal(catalog_topic_create(c, "zero", 4, 0, 0, NULL), SL_ERANGE);
	assert_int_equal(catalog_topic_create(c, "huge", 4, CATALOG_PARTITIONS_MAX + 1, 0, NULL),
			 SL_ERANGE);
	assert_int_equal(catalog_topic_create(c, "__consumer_offsets", 18, 50,
					      CATALOG_TOPIC_INTERNAL, NULL), SL_OK);
	assert_int_equal(catalog_version(c), v0 + 3);        /* only successes count */
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "retention.ms", "1000"), SL_OK);
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "cleanup.policy", "compact"), SL_OK);
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "retention.ms", "2000"), SL_OK);
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "bad key", "1"), SL_EINVAL);
	assert_int_equal(catalog_topic_config_set(c, "nope", 4, "k", "1"), SL_ENOTFOUND);
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "absent", NULL), SL_ENOTFOUND);

	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	assert_int_equal(s->topic_count, 3);
	assert_int_equal(s->version, catalog_version(c));
	assert_string_equal(s->cluster_id, cluster);
	/* sorted by name */
	assert_string_equal(s->topics[0].name, "__consumer_offsets");
	assert_string_equal(s->topics[1].name, "a.b");
	assert_string_equal(s->topics[2].name, "orders");
	const struct catalog_topic *t = catalog_snap_find(s, "orders", 6);
	assert_non_null(t);
	assert_int_equal(t->partition_count, 6);
	assert_memory_equal(t->id.b, id_orders.b, 16);
	assert_int_equal(t->config_count, 2);
	assert_ptr_equal(catalog_snap_find_id(s, &id_orders), t);
	assert_null(catalog_snap_find(s, "order", 5));
	assert_null(catalog_snap_find(s, "ordersx", 7));
	assert_null(catalog_snap_find_id(s, &(struct kuuid){ { 0 } }));
	assert_true(catalog_snap_find(s, "__consumer_offsets", 18)->flags & CATALOG_TOPIC_INTERNAL);
	for (uint32_t i = 0; i < s->topic_count; i++)
		assert_ptr_equal(catalog_snap_find_id(s, &s->topics[i].id), &s->topics[i]);

	/* a snapshot is immutable: later changes do not show in it */
	assert_int_equal(catalog_topic_delete(c, "a.b", 3), SL_OK);
	assert_int_equal(catalog_topic_delete(c, "a.b", 3), SL_ENOTFOUND);
	assert_int_equal(s->topic_count, 3);
	assert_non_null(catalog_snap_find(s, "a.b", 3));
	catalog_close(c);

	/* reload: same cluster id, topics, ids, configs */
	assert_int_equal(catalog_open(&c, d.path, rnd_fn, &r), SL_OK);
	assert_string_equal(catalog_cluster_id(c), cluster);
	assert_int_equal(catalog_snapshot(c, &s2), SL_OK);
	assert_int_equal(s2->topic_count, 2);
	assert_null(catalog_snap_find(s2, "a.b", 3));
	t = catalog_snap_find(s2, "orders", 6);
	assert_non_null(t);
	assert_memory_equal(t->id.b, id_orders.b, 16);
	assert_int_equal(t->config_count, 2);
	for (uint32_t i = 0; i < t->config_count; i++) {
		if (strcmp(t->configs[i].key, "retention.ms") == 0)
			assert_string_equal(t->configs[i].value, "2000");
		else
			assert_string_equal(t->configs[i].value, "compact");
	}
	/* the freed name can be used again, and unsetting a key persists */
	assert_int_equal(catalog_topic_create(c, "a_b", 3, 2, 0, NULL), SL_OK);
	assert_int_equal(catalog_topic_config_set(c, "orders", 6, "retention.ms", NULL), SL_OK);
	catalog_close(c);
	char *text = read_file(d.path, CATALOG_FILE_NAME);
	assert_non_null(strstr(text, "sluice-catalog 1\ncluster.id "));
	assert_non_null(strstr(text, " 2 0 a_b\n"));
	assert_non_null(strstr(text, "config orders cleanup.policy compact\n"));
	assert_null(strstr(text, "retention.ms"));
	free(text);
	catalog_snap_free(s);
	catalog_snap_free(s2);
	tmpdir_remove(&d);
}

static void test_ids_unique(void **state)
{
	struct tmpdir d;
	struct rnd r = { .constant = 1 };
	struct catalog *c;

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_open(&c, d.path, rnd_fn, &r), SL_OK);
	/* the generator repeats itself: the first id is taken, a second cannot be found */
	assert_int_equal(catalog_topic_create(c, "t1", 2, 1, 0, NULL), SL_OK);
	uint64_t v = catalog_version(c);
	assert_int_equal(catalog_topic_create(c, "t2", 2, 1, 0, NULL), SL_EIO);
	assert_int_equal(catalog_topic_count(c), 1);
	assert_int_equal(catalog_version(c), v);
	catalog_close(c);
	tmpdir_remove(&d);
}

static void test_getrandom_ids(void **state)
{
	struct tmpdir d;
	struct catalog *c;
	struct catalog_snap *s;
	char name[16];

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_open(&c, d.path, NULL, NULL), SL_OK);
	for (int i = 0; i < 200; i++) {
		int n = snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(catalog_topic_create(c, name, (size_t)n, 1, 0, NULL), SL_OK);
	}
	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	for (uint32_t i = 0; i < s->topic_count; i++) {
		char text[CATALOG_ID_CHARS + 1];
		catalog_uuid_format(&s->topics[i].id, text);
		assert_true(text[0] != '-');
		assert_ptr_equal(catalog_snap_find_id(s, &s->topics[i].id), &s->topics[i]);
	}
	catalog_snap_free(s);
	catalog_close(c);
	tmpdir_remove(&d);
}

static void test_corrupt_files(void **state)
{
	static const char *bad[] = {
		"not a catalog\ncluster.id AAECAwQFBgcICQoLDA0ODw\n",
		"sluice-catalog 1\n",                                          /* no cluster id */
		"sluice-catalog 1\ncluster.id short\n",
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw",        /* no final newline */
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\ntopic AAECAwQFBgcICQoLDA0ODw 0 0 t\n",
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\ntopic AAAAAAAAAAAAAAAAAAAAAA 1 0 t\n",
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\ntopic AAECAwQFBgcICQoLDA0ODw 1 0 bad/name\n",
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\ntopic AAECAwQFBgcICQoLDA0ODw 1 0 t\n"
		"topic AAECAwQFBgcICQoLDA0OAA 1 0 t\n",                        /* name twice */
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\ntopic AAECAwQFBgcICQoLDA0ODw 1 0 t\n"
		"topic AAECAwQFBgcICQoLDA0ODw 1 0 u\n",                        /* id twice */
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\nconfig t k v\n", /* unknown topic */
		"sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\nsurprise\n",
	};
	struct tmpdir d;
	struct catalog *c;

	(void)state;
	tmpdir_make(&d);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		write_file(d.path, CATALOG_FILE_NAME, bad[i]);
		c = NULL;
		assert_int_equal(catalog_open(&c, d.path, NULL, NULL), SL_ECORRUPT);
		assert_null(c);
	}
	write_file(d.path, CATALOG_FILE_NAME,
		   "sluice-catalog 1\ncluster.id AAECAwQFBgcICQoLDA0ODw\n"
		   "topic AAECAwQFBgcICQoLDA0ODw 3 0 t\nconfig t retention.ms 5 6\n");
	assert_int_equal(catalog_open(&c, d.path, NULL, NULL), SL_OK);
	assert_string_equal(catalog_cluster_id(c), "AAECAwQFBgcICQoLDA0ODw");
	assert_int_equal(catalog_topic_count(c), 1);
	catalog_close(c);
	tmpdir_remove(&d);
}

static void test_write_failure_rolls_back(void **state)
{
	struct tmpdir d;
	struct catalog *c;
	char moved[300];

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_open(&c, d.path, NULL, NULL), SL_OK);
	assert_int_equal(catalog_topic_create(c, "kept", 4, 1, 0, NULL), SL_OK);
	uint64_t v = catalog_version(c);
	snprintf(moved, sizeof(moved), "%s.moved", d.path);
	assert_int_equal(rename(d.path, moved), 0);
	assert_int_equal(catalog_topic_create(c, "lost", 4, 1, 0, NULL), SL_EIO);
	assert_int_equal(catalog_topic_delete(c, "kept", 4), SL_EIO);
	assert_int_equal(catalog_topic_config_set(c, "kept", 4, "k", "v"), SL_EIO);
	assert_int_equal(catalog_topic_count(c), 1);
	assert_int_equal(catalog_version(c), v);
	assert_int_equal(rename(moved, d.path), 0);
	struct catalog_snap *s;
	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	assert_non_null(catalog_snap_find(s, "kept", 4));
	assert_null(catalog_snap_find(s, "lost", 4));
	assert_int_equal(catalog_snap_find(s, "kept", 4)->config_count, 0);
	catalog_snap_free(s);
	catalog_close(c);
	tmpdir_remove(&d);
}

static void test_partition_metadata(void **state)
{
	struct tmpdir d;
	struct kuuid id, back;
	char text[CATALOG_ID_CHARS + 1], want[64];

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_partition_metadata_read(d.path, &back), SL_ENOTFOUND);
	for (int i = 0; i < 16; i++)
		id.b[i] = (uint8_t)(i * 13 + 1);
	assert_int_equal(catalog_partition_metadata_write(d.path, &id), SL_OK);
	catalog_uuid_format(&id, text);
	snprintf(want, sizeof(want), "version: 0\ntopic_id: %s\n", text);
	char *got = read_file(d.path, CATALOG_PARTITION_METADATA);
	assert_string_equal(got, want);
	free(got);
	assert_int_equal(catalog_partition_metadata_read(d.path, &back), SL_OK);
	assert_memory_equal(back.b, id.b, 16);
	write_file(d.path, CATALOG_PARTITION_METADATA, "version: 1\ntopic_id: x\n");
	assert_int_equal(catalog_partition_metadata_read(d.path, &back), SL_ECORRUPT);
	tmpdir_remove(&d);
}

static void test_cluster_state(void **state)
{
	struct tmpdir d;
	struct rnd r = { 0 };
	struct catalog *c;
	struct catalog_snap *s;
	struct kuuid id, other;
	struct catalog_broker br[3];
	struct catalog_pstate ps;

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(catalog_open(&c, d.path, rnd_fn, &r), SL_OK);
	memset(&id, 0, sizeof(id));
	assert_int_equal(catalog_topic_create_id(c, "t", 1, 3, 0, &id), SL_EINVAL);  /* zero id */
	id.b[0] = 0x11;
	id.b[15] = 0x22;
	other = id;
	other.b[1] = 0x33;
	assert_int_equal(catalog_topic_create_id(c, "t", 1, 3, 0, &id), SL_OK);
	assert_int_equal(catalog_topic_create_id(c, "t", 1, 3, 0, &id), SL_EEXIST);
	assert_int_equal(catalog_topic_create_id(c, "t", 1, 3, 0, &other), SL_EINVAL);
	assert_int_equal(catalog_topic_create_id(c, "u", 1, 3, 0, &id), SL_EINVAL);  /* id taken */

	/* Single-node snapshots carry no cluster state. */
	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	assert_false(s->cluster);
	assert_int_equal(s->broker_count, 0);
	assert_null(s->topics[0].pstates);
	catalog_snap_free(s);

	memset(br, 0, sizeof(br));
	br[0].id = 3; br[0].port = 9093; strcpy(br[0].host, "h3");
	br[1].id = 1; br[1].port = 9091; strcpy(br[1].host, "h1"); strcpy(br[1].rack, "r1");
	br[2].id = 2; br[2].port = 9092; strcpy(br[2].host, "h2");
	assert_int_equal(catalog_cluster_brokers_set(c, br, 3, 2), SL_OK);
	br[2].id = 3;
	assert_int_equal(catalog_cluster_brokers_set(c, br, 3, 2), SL_EINVAL);      /* duplicate */
	assert_int_equal(catalog_cluster_brokers_set(c, br, CATALOG_BROKERS_MAX + 1, 2), SL_ERANGE);

	memset(&ps, 0, sizeof(ps));
	ps.leader = 2; ps.leader_epoch = 7; ps.partition_epoch = 9;
	ps.replica_count = 3; ps.replicas[0] = 2; ps.replicas[1] = 3; ps.replicas[2] = 4;
	ps.isr_count = 2; ps.isr[0] = 2; ps.isr[1] = 3;
	assert_int_equal(catalog_pstate_set(c, "t", 1, 1, &ps), SL_OK);
	assert_int_equal(catalog_pstate_set(c, "t", 1, 3, &ps), SL_ERANGE);
	assert_int_equal(catalog_pstate_set(c, "nope", 4, 0, &ps), SL_ENOTFOUND);
	ps.replica_count = CATALOG_REPLICAS_MAX + 1;
	assert_int_equal(catalog_pstate_set(c, "t", 1, 0, &ps), SL_ERANGE);
	assert_int_equal(catalog_topic_partitions_set(c, "t", 1, 5), SL_OK);

	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	assert_true(s->cluster);
	assert_int_equal(s->controller_id, 2);
	assert_int_equal(s->broker_count, 3);
	assert_int_equal(s->brokers[0].id, 1);          /* sorted by id */
	assert_string_equal(s->brokers[0].rack, "r1");
	assert_non_null(catalog_snap_broker(s, 3));
	assert_string_equal(catalog_snap_broker(s, 3)->host, "h3");
	assert_null(catalog_snap_broker(s, 4));
	const struct catalog_topic *t = catalog_snap_find(s, "t", 1);
	assert_non_null(t);
	assert_int_equal(t->partition_count, 5);
	assert_non_null(t->pstates);
	assert_int_equal(t->pstates[0].leader, -1);     /* never set */
	assert_int_equal(t->pstates[0].replica_count, 0);
	assert_int_equal(t->pstates[1].leader, 2);
	assert_int_equal(t->pstates[1].leader_epoch, 7);
	assert_int_equal(t->pstates[1].partition_epoch, 9);
	assert_int_equal(t->pstates[1].isr_count, 2);
	assert_int_equal(t->pstates[1].replicas[2], 4);
	assert_int_equal(t->pstates[4].leader, -1);     /* grown */
	catalog_snap_free(s);
	catalog_close(c);

	/* Reopened: the topic and its id are back, the cluster state is not. */
	assert_int_equal(catalog_open(&c, d.path, rnd_fn, &r), SL_OK);
	assert_int_equal(catalog_snapshot(c, &s), SL_OK);
	assert_false(s->cluster);
	t = catalog_snap_find(s, "t", 1);
	assert_non_null(t);
	assert_memory_equal(t->id.b, id.b, 16);
	assert_null(t->pstates);
	catalog_snap_free(s);
	catalog_close(c);
	tmpdir_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_uuid_text),
		cmocka_unit_test(test_create_reload),
		cmocka_unit_test(test_ids_unique),
		cmocka_unit_test(test_getrandom_ids),
		cmocka_unit_test(test_corrupt_files),
		cmocka_unit_test(test_write_failure_rolls_back),
		cmocka_unit_test(test_partition_metadata),
		cmocka_unit_test(test_cluster_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
