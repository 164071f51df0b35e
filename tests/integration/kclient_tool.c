/*
 * kclient_tool.c — drives net/kclient.c against a real broker (run by
 * tests/integration/test_kclient.sh): ApiVersions v3, Metadata v12,
 * CreateTopics v7, Produce v9 (a batch from core/batch_build.h), Fetch v12
 * as a consumer (replica id -1), each response decoded and checked, one
 * request at a time on a local shard.
 *
 * Usage: kclient_tool HOST PORT TOPIC. Exit 0 when every check passed,
 * 1 otherwise (the failed check is printed). Bounded: each request has a
 * 10 s timeout and the loop at most that many turns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_build.h"
#include "kafka_codec.h"
#include "kclient.h"
#include "shard.h"

#define TURNS_MAX 20000
#define RECORDS 5

struct tool {
	struct shard *sh;
	struct kclient *kc;
	struct karena arena;
	int done;
	enum sl_err status;
	void *resp;              /* decoded response struct, in the arena */
	void *frame;             /* the taken response buffer */
	int16_t api_key;
	int16_t version;
	int failures;
};

#define CHECK(t, cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		(t)->failures++; \
	} \
} while (0)

static void tool_done(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct tool *t = arg;
	const struct kafka_api *api = kafka_api_find(t->api_key);

	t->done = 1;
	t->status = status;
	if (body == NULL)
		return;
	/* keep the frame: decoded strings and records point into it */
	t->frame = kclient_response_take(kc, body);
	if (t->frame == NULL) {
		t->status = SL_ENOMEM;
		return;
	}
	t->resp = karena_alloc(&t->arena, api->response_size);
	if (t->resp == NULL || api->decode_response(body, t->version, t->resp, &t->arena) != SL_OK ||
	    kread_left(body) != 0)
		t->status = SL_ECORRUPT;
}

/* Sends one request and runs the loop until its response is decoded. */
static void *tool_call(struct tool *t, int16_t key, int16_t version, const void *req)
{
	enum sl_err err;

	if (t->frame != NULL)
		kclient_response_free(t->sh, t->frame);
	t->frame = NULL;
	karena_reset(&t->arena);
	t->done = 0;
	t->resp = NULL;
	t->api_key = key;
	t->version = version;
	err = kclient_send(t->kc, key, version, req, tool_done, t);
	if (err != SL_OK) {
		fprintf(stderr, "FAIL: send api %d v%d: %s\n", key, version, sl_err_str(err));
		t->failures++;
		return NULL;
	}
	for (int i = 0; i < TURNS_MAX && !t->done; i++)
		if (shard_run_once(t->sh, 10 * 1000 * 1000) != SL_OK)
			break;
	if (!t->done || t->status != SL_OK) {
		fprintf(stderr, "FAIL: api %d v%d: %s\n", key, version,
			t->done ? sl_err_str(t->status) : "no answer");
		t->failures++;
		return NULL;
	}
	return t->resp;
}

static void tool_api_versions(struct tool *t)
{
	struct ApiVersionsRequest req;
	struct ApiVersionsResponse *r;
	int found = 0;

	kafka_init_api_versions_request(&req);
	req.ClientSoftwareName = KSLICE_LIT("sluice-kclient-tool");
	req.ClientSoftwareVersion = KSLICE_LIT(SL_VERSION);
	r = tool_call(t, KAFKA_API_API_VERSIONS, 3, &req);
	if (r == NULL)
		return;
	CHECK(t, r->ErrorCode == 0, "error %d", r->ErrorCode);
	for (int32_t i = 0; i < r->ApiKeys.count; i++)
		if ((r->ApiKeys.items[i].ApiKey == KAFKA_API_FETCH ||
		     r->ApiKeys.items[i].ApiKey == KAFKA_API_PRODUCE) &&
		    r->ApiKeys.items[i].MaxVersion >= 9)
			found++;
	CHECK(t, found == 2, "Produce and Fetch v9+ advertised (%d)", found);
	printf("ApiVersions v3: %d apis\n", r->ApiKeys.count);
}

static void tool_metadata(struct tool *t, const char *topic, int want_topic)
{
	struct MetadataRequest req;
	struct MetadataRequest_MetadataRequestTopic mt;
	struct MetadataResponse *r;

	kafka_init_metadata_request(&req);
	kafka_init_metadata_request_metadata_request_topic(&mt);
	mt.Name.ptr = (const uint8_t *)topic;
	mt.Name.len = (int32_t)strlen(topic);
	req.Topics.count = want_topic ? 1 : -1;
	req.Topics.items = want_topic ? &mt : NULL;
	req.AllowAutoTopicCreation = false;
	r = tool_call(t, KAFKA_API_METADATA, 12, &req);
	if (r == NULL)
		return;
	CHECK(t, r->Brokers.count == 1, "one broker (%d)", r->Brokers.count);
	CHECK(t, r->ClusterId.len == 22, "cluster id length %d", r->ClusterId.len);
	if (want_topic) {
		CHECK(t, r->Topics.count == 1 && r->Topics.items[0].ErrorCode == 0 &&
			 r->Topics.items[0].Partitions.count == 1, "topic %s in metadata", topic);
	}
	printf("Metadata v12: %d brokers, %d topics\n", r->Brokers.count, r->Topics.count);
}

static void tool_create(struct tool *t, const char *topic)
{
	struct CreateTopicsRequest req;
	struct CreateTopicsRequest_CreatableTopic ct;
	struct CreateTopicsResponse *r;

	kafka_init_create_topics_request(&req);
	kafka_init_create_topics_request_creatable_topic(&ct);
	ct.Name.ptr = (const uint8_t *)topic;
	ct.Name.len = (int32_t)strlen(topic);
	ct.NumPartitions = 1;
	ct.ReplicationFactor = 1;
	ct.Assignments.count = 0;
	ct.Configs.count = 0;
	req.Topics.count = 1;
	req.Topics.items = &ct;
	req.timeoutMs = 10000;
	r = tool_call(t, KAFKA_API_CREATE_TOPICS, 7, &req);
	if (r == NULL)
		return;
	CHECK(t, r->Topics.count == 1 && r->Topics.items[0].ErrorCode == 0,
	      "created (error %d)", r->Topics.count == 1 ? r->Topics.items[0].ErrorCode : -999);
	printf("CreateTopics v7: %s created\n", topic);
}

static void tool_produce(struct tool *t, const char *topic, uint8_t *batch, size_t batch_len)
{
	struct ProduceRequest req;
	struct ProduceRequest_TopicProduceData td;
	struct ProduceRequest_PartitionProduceData pd;
	struct ProduceResponse *r;

	kafka_init_produce_request(&req);
	kafka_init_produce_request_topic_produce_data(&td);
	kafka_init_produce_request_partition_produce_data(&pd);
	pd.Index = 0;
	pd.Records.ptr = batch;
	pd.Records.len = (int32_t)batch_len;
	td.Name.ptr = (const uint8_t *)topic;
	td.Name.len = (int32_t)strlen(topic);
	td.PartitionData.count = 1;
	td.PartitionData.items = &pd;
	req.Acks = -1;
	req.TimeoutMs = 10000;
	req.TopicData.count = 1;
	req.TopicData.items = &td;
	r = tool_call(t, KAFKA_API_PRODUCE, 9, &req);
	if (r == NULL)
		return;
	CHECK(t, r->Responses.count == 1 && r->Responses.items[0].PartitionResponses.count == 1,
	      "one partition answered");
	if (t->failures > 0)
		return;
	struct ProduceResponse_PartitionProduceResponse *p =
		&r->Responses.items[0].PartitionResponses.items[0];
	CHECK(t, p->ErrorCode == 0 && p->BaseOffset == 0, "error %d base offset %lld",
	      p->ErrorCode, (long long)p->BaseOffset);
	printf("Produce v9: base offset %lld\n", (long long)p->BaseOffset);
}

static void tool_fetch(struct tool *t, const char *topic, const uint8_t *batch, size_t batch_len)
{
	struct FetchRequest req;
	struct FetchRequest_FetchTopic ft;
	struct FetchRequest_FetchPartition fp;
	struct FetchResponse *r;

	kafka_init_fetch_request(&req);
	kafka_init_fetch_request_fetch_topic(&ft);
	kafka_init_fetch_request_fetch_partition(&fp);
	fp.Partition = 0;
	fp.FetchOffset = 0;
	fp.PartitionMaxBytes = 1 << 20;
	ft.Topic.ptr = (const uint8_t *)topic;
	ft.Topic.len = (int32_t)strlen(topic);
	ft.Partitions.count = 1;
	ft.Partitions.items = &fp;
	req.ReplicaId = -1;
	req.MaxWaitMs = 500;
	req.MinBytes = 1;
	req.MaxBytes = 1 << 20;
	req.Topics.count = 1;
	req.Topics.items = &ft;
	req.ForgottenTopicsData.count = 0;
	r = tool_call(t, KAFKA_API_FETCH, 12, &req);
	if (r == NULL)
		return;
	CHECK(t, r->ErrorCode == 0 && r->Responses.count == 1 &&
		 r->Responses.items[0].Partitions.count == 1, "one partition answered");
	if (t->failures > 0)
		return;
	struct FetchResponse_PartitionData *p = &r->Responses.items[0].Partitions.items[0];
	CHECK(t, p->ErrorCode == 0 && p->HighWatermark == RECORDS, "error %d hw %lld",
	      p->ErrorCode, (long long)p->HighWatermark);
	/* Stored with base offset 0; bytes from magic on (past the leader epoch) as sent. */
	CHECK(t, p->Records.len == (int32_t)batch_len, "records %d bytes, sent %zu",
	      p->Records.len, batch_len);
	if (p->Records.len == (int32_t)batch_len)
		CHECK(t, memcmp(p->Records.ptr + 16, batch + 16, batch_len - 16) == 0 &&
			 be64_load(p->Records.ptr) == 0, "records as produced");
	printf("Fetch v12: %d record bytes, high watermark %lld\n", p->Records.len,
	       (long long)p->HighWatermark);
}

int main(int argc, char **argv)
{
	struct shard_group_options opt;
	struct shard_group *g;
	struct kclient_config cfg;
	struct tool t;
	static uint8_t batch[4096];
	struct batch_builder b;
	char value[32];

	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST PORT TOPIC\n", argv[0]);
		return 2;
	}
	memset(&t, 0, sizeof(t));
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	if (shard_group_create(&g, &opt) != SL_OK || shard_group_start_local(g) != SL_OK ||
	    karena_init_heap(&t.arena, 4u << 20) != SL_OK) {
		fprintf(stderr, "FAIL: set-up\n");
		return 1;
	}
	t.sh = shard_group_shard(g, 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.client_id = "kclient-tool";
	cfg.request_timeout_ms = 10000;
	if (kclient_open(&t.kc, t.sh, argv[1], (uint16_t)atoi(argv[2]), &cfg) != SL_OK) {
		fprintf(stderr, "FAIL: kclient_open\n");
		return 1;
	}
	batch_builder_init(&b, batch, sizeof(batch));
	for (int i = 0; i < RECORDS; i++) {
		int n = snprintf(value, sizeof(value), "value-%d", i);
		batch_builder_add(&b, 1700000000000 + i, "k", 1, value, n, NULL, 0);
	}
	size_t batch_len = batch_builder_finish(&b);

	tool_api_versions(&t);
	if (t.failures == 0)
		tool_metadata(&t, argv[3], 0);
	if (t.failures == 0)
		tool_create(&t, argv[3]);
	if (t.failures == 0)
		tool_metadata(&t, argv[3], 1);
	if (t.failures == 0 && batch_len > 0)
		tool_produce(&t, argv[3], batch, batch_len);
	if (t.failures == 0)
		tool_fetch(&t, argv[3], batch, batch_len);
	CHECK(&t, batch_len > 0, "batch built");

	if (t.frame != NULL)
		kclient_response_free(t.sh, t.frame);
	kclient_close(t.kc);
	shard_group_stop(g);
	if (shard_group_join(g) != SL_OK)
		t.failures++;
	shard_group_destroy(g);
	karena_destroy(&t.arena);
	printf("%s\n", t.failures == 0 ? "kclient_tool: all checks passed" : "kclient_tool: FAILED");
	return t.failures == 0 ? 0 : 1;
}
