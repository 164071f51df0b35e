/*
 * test_codec.c — the Kafka codec (net/kread, net/kwrite, the generated
 * net/kafka_codec*):
 *   - primitives: varints (edges, over-long, truncated), sticky errors,
 *     writer caps, tagged-field size back-patching;
 *   - hand-built byte vectors checked field by field: ApiVersions v3 request
 *     (flexible header, client software name/version, an unknown tag),
 *     Metadata v1 and v12 requests (null/empty arrays, topic ids, null
 *     names), Produce v3 (record set as a slice of the buffer), Fetch v12
 *     (known and unknown tags);
 *   - every api x version x request/response: sample values (every field
 *     non-default) encode -> decode -> encode byte-identical, every prefix
 *     of the encoding fails cleanly (decoded from an exactly-sized copy so
 *     ASan sees any over-read), and random byte flips never crash;
 *   - huge counts rejected before any allocation, arena and writer caps;
 *   - holes for zero-copy record data in Fetch responses;
 *   - header versions and the api table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka_codec.h"
#include "kread.h"
#include "kwrite.h"

#define TEST_ARENA_BYTES (1u << 20)
#define TEST_WRITE_MAX (1u << 20)
#define TEST_FLIPS_PER_MESSAGE 24

/* xorshift64*: deterministic noise from an explicit state. */
static uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void assert_slice_str(struct kslice s, const char *want)
{
	assert_int_equal(s.len, (int32_t)strlen(want));
	assert_memory_equal(s.ptr, want, strlen(want));
}

/* ------------------------------------------------------------ primitives */

static void test_uvarint_edges(void **state)
{
	static const struct {
		uint8_t bytes[6];
		size_t len;
		uint32_t value;
	} ok[] = {
		{ { 0x00 }, 1, 0 },
		{ { 0x01 }, 1, 1 },
		{ { 0x7f }, 1, 127 },
		{ { 0x80, 0x01 }, 2, 128 },
		{ { 0xac, 0x02 }, 2, 300 },
		{ { 0xff, 0xff, 0x03 }, 3, 65535 },
		{ { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5, UINT32_MAX },
	};
	static const uint8_t too_long[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };
	static const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t cut[] = { 0x80, 0x80 };
	struct kread r;
	uint8_t buf[8];
	struct kwrite w;

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_LEN(ok); i++) {
		kread_init(&r, ok[i].bytes, ok[i].len);
		assert_int_equal(kread_uvarint(&r), ok[i].value);
		assert_int_equal(r.err, SL_OK);
		assert_ptr_equal(r.p, r.end);
		/* and the writer produces exactly those bytes */
		kwrite_init_fixed(&w, buf, sizeof(buf));
		kwrite_uvarint(&w, ok[i].value);
		assert_int_equal(w.err, SL_OK);
		assert_int_equal(w.len, ok[i].len);
		assert_memory_equal(buf, ok[i].bytes, ok[i].len);
		assert_int_equal(kwrite_uvarint_bytes(ok[i].value), ok[i].len);
	}
	kread_init(&r, too_long, sizeof(too_long));
	assert_int_equal(kread_uvarint(&r), 0);
	assert_int_equal(r.err, SL_ECORRUPT);
	kread_init(&r, six, sizeof(six));
	(void)kread_uvarint(&r);
	assert_int_equal(r.err, SL_ECORRUPT);
	kread_init(&r, cut, sizeof(cut));
	(void)kread_uvarint(&r);
	assert_int_equal(r.err, SL_ETRUNC);
}

static void test_kread_sticky(void **state)
{
	static const uint8_t bytes[] = { 0x01, 0x02, 0x03, 0x04, 0x05 };
	struct kread r;
	const uint8_t *p;

	(void)state;
	kread_init(&r, bytes, sizeof(bytes));
	assert_int_equal(kread_i32(&r), 0x01020304);
	assert_int_equal(kread_i16(&r), 0);   /* one byte left: fails */
	assert_int_equal(r.err, SL_ETRUNC);
	p = r.p;
	assert_int_equal(kread_i8(&r), 0);    /* sticky: even a byte that exists */
	assert_ptr_equal(r.p, p);
	assert_int_equal(kread_string(&r, 0).len, 0);
	assert_int_equal(r.err, SL_ETRUNC);
}

static void test_kread_lengths(void **state)
{
	static const uint8_t neg2[] = { 0xff, 0xfe };
	static const uint8_t null16[] = { 0xff, 0xff };
	static const uint8_t long16[] = { 0x7f, 0xff, 'a', 'b' };
	static const uint8_t compact_null[] = { 0x00 };
	static const uint8_t compact_empty[] = { 0x01 };
	struct kread r;
	struct kslice s;

	(void)state;
	kread_init(&r, neg2, sizeof(neg2));
	(void)kread_string(&r, KFMT_NULLABLE);
	assert_int_equal(r.err, SL_ECORRUPT);
	kread_init(&r, null16, sizeof(null16));
	(void)kread_string(&r, 0);
	assert_int_equal(r.err, SL_ECORRUPT);      /* null, not nullable */
	kread_init(&r, null16, sizeof(null16));
	s = kread_string(&r, KFMT_NULLABLE);
	assert_int_equal(r.err, SL_OK);
	assert_int_equal(s.len, -1);
	kread_init(&r, long16, sizeof(long16));
	(void)kread_string(&r, 0);
	assert_int_equal(r.err, SL_ETRUNC);
	kread_init(&r, compact_null, sizeof(compact_null));
	s = kread_string(&r, KFMT_COMPACT | KFMT_NULLABLE);
	assert_int_equal(s.len, -1);
	kread_init(&r, compact_null, sizeof(compact_null));
	(void)kread_bytes(&r, KFMT_COMPACT);
	assert_int_equal(r.err, SL_ECORRUPT);
	kread_init(&r, compact_empty, sizeof(compact_empty));
	s = kread_string(&r, KFMT_COMPACT | KFMT_NULLABLE);
	assert_int_equal(r.err, SL_OK);
	assert_int_equal(s.len, 0);
}

static void test_kwrite_caps(void **state)
{
	uint8_t buf[3];
	struct kwrite w;

	(void)state;
	kwrite_init_fixed(&w, buf, sizeof(buf));
	kwrite_i16(&w, 7);
	kwrite_i32(&w, 8);                 /* does not fit */
	assert_int_equal(w.err, SL_ENOMEM);
	assert_int_equal(w.len, 2);
	kwrite_i8(&w, 1);                  /* sticky */
	assert_int_equal(w.len, 2);
	kwrite_reset(&w);
	assert_int_equal(w.err, SL_OK);
	kwrite_i8(&w, 1);
	assert_int_equal(w.len, 1);

	kwrite_init(&w, 1000);
	for (int i = 0; i < 250; i++)
		kwrite_i32(&w, i);
	assert_int_equal(w.err, SL_OK);
	assert_int_equal(w.len, 1000);
	kwrite_i8(&w, 0);
	assert_int_equal(w.err, SL_ENOMEM);
	assert_true(w.cap <= 1000);
	kwrite_destroy(&w);

	/* null where not nullable, and a STRING over 32767 bytes */
	kwrite_init(&w, 1 << 17);
	kwrite_string(&w, KSLICE_NULL, 0);
	assert_int_equal(w.err, SL_EINVAL);
	kwrite_reset(&w);
	{
		static uint8_t big[40000];
		struct kslice s = { big, (int32_t)sizeof(big) };

		kwrite_string(&w, s, 0);
		assert_int_equal(w.err, SL_EINVAL);
		kwrite_reset(&w);
		kwrite_string(&w, s, KFMT_COMPACT);   /* compact has no such limit */
		assert_int_equal(w.err, SL_OK);
		kwrite_reset(&w);
		kwrite_bytes(&w, s, 0);
		assert_int_equal(w.err, SL_OK);
		assert_int_equal(w.len, 4 + sizeof(big));
	}
	kwrite_destroy(&w);
}

static void test_kwrite_tag_size(void **state)
{
	struct kwrite w;
	size_t mark;
	struct kread r, t;
	static uint8_t data[300];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	kwrite_init(&w, 4096);
	kwrite_uvarint(&w, 2);
	kwrite_uvarint(&w, 1);
	mark = kwrite_tag_begin(&w);
	kwrite_i8(&w, 42);
	kwrite_tag_end(&w, mark);
	kwrite_uvarint(&w, 7);
	mark = kwrite_tag_begin(&w);
	kwrite_raw(&w, data, sizeof(data));        /* a 2-byte size varint */
	kwrite_tag_end(&w, mark);
	assert_int_equal(w.err, SL_OK);
	assert_int_equal(w.len, 1 + (1 + 1 + 1) + (1 + 2 + sizeof(data)));

	kread_init(&r, w.buf, w.len);
	assert_int_equal(kread_tags_count(&r), 2);
	assert_int_equal(kread_tag_begin(&r, &t), 1);
	assert_int_equal(kread_i8(&t), 42);
	kread_tag_end(&r, &t);
	assert_int_equal(kread_tag_begin(&r, &t), 7);
	assert_int_equal(kread_left(&t), sizeof(data));
	assert_memory_equal(t.p, data, sizeof(data));
	kread_skip_rest(&t);
	kread_tag_end(&r, &t);
	assert_int_equal(r.err, SL_OK);
	assert_ptr_equal(r.p, r.end);
	kwrite_destroy(&w);
}

/* ------------------------------------------------------------ vectors */

static void test_api_versions_v3_request(void **state)
{
	static const uint8_t frame[] = {
		0x00, 0x12,                   /* RequestApiKey 18 */
		0x00, 0x03,                   /* RequestApiVersion 3 */
		0x00, 0x00, 0x00, 0x07,       /* CorrelationId 7 */
		0x00, 0x07, 'r', 'd', 'k', 'a', 'f', 'k', 'a', /* ClientId: int16 length */
		0x00,                         /* header tagged fields: none */
		0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a', /* ClientSoftwareName */
		0x06, '2', '.', '0', '.', '2', /* ClientSoftwareVersion */
		0x01,                         /* one tagged field ... */
		0x05, 0x02, 0xaa, 0xbb,       /* ... unknown tag 5, 2 bytes: skipped */
	};
	struct karena a;
	struct kread r;
	struct RequestHeader h;
	struct ApiVersionsRequest req;
	struct kwrite w;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	kread_init(&r, frame, sizeof(frame));
	assert_int_equal(kafka_decode_request_header_auto(&r, &h, &a), SL_OK);
	assert_int_equal(h.RequestApiKey, KAFKA_API_API_VERSIONS);
	assert_int_equal(h.RequestApiVersion, 3);
	assert_int_equal(h.CorrelationId, 7);
	assert_slice_str(h.ClientId, "rdkafka");
	assert_ptr_equal(h.ClientId.ptr, frame + 10);   /* no copy */

	assert_int_equal(kafka_decode_api_versions_request(&r, 3, &req, &a), SL_OK);
	assert_slice_str(req.ClientSoftwareName, "librdkafka");
	assert_slice_str(req.ClientSoftwareVersion, "2.0.2");
	assert_ptr_equal(r.p, r.end);

	/* Re-encoding drops the unknown tag: everything else is identical. */
	kwrite_init(&w, 4096);
	assert_int_equal(kafka_encode_request_header(&w, 2, &h), SL_OK);
	assert_int_equal(kafka_encode_api_versions_request(&w, 3, &req), SL_OK);
	assert_int_equal(w.len, sizeof(frame) - 4);
	assert_memory_equal(w.buf, frame, sizeof(frame) - 5);
	assert_int_equal(w.buf[w.len - 1], 0x00);
	kwrite_destroy(&w);

	/* v0-v2 bodies are empty; the same struct encodes to nothing. */
	kwrite_init(&w, 64);
	assert_int_equal(kafka_encode_api_versions_request(&w, 2, &req), SL_OK);
	assert_int_equal(w.len, 0);
	kwrite_destroy(&w);
	karena_destroy(&a);
}

static void test_metadata_v1_request(void **state)
{
	static const uint8_t frame[] = {
		0x00, 0x03, 0x00, 0x01,       /* Metadata v1 */
		0x00, 0x00, 0x01, 0x00,       /* CorrelationId 256 */
		0xff, 0xff,                   /* ClientId null */
		0x00, 0x00, 0x00, 0x02,       /* Topics: 2 */
		0x00, 0x03, 'f', 'o', 'o',
		0x00, 0x00,                   /* "" */
	};
	static const uint8_t null_topics[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t empty_topics[] = { 0x00, 0x00, 0x00, 0x00 };
	struct karena a;
	struct kread r;
	struct RequestHeader h;
	struct MetadataRequest req;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	kread_init(&r, frame, sizeof(frame));
	assert_int_equal(kafka_request_header_version(KAFKA_API_METADATA, 1), 1);
	assert_int_equal(kafka_decode_request_header(&r, 1, &h, &a), SL_OK);
	assert_int_equal(h.CorrelationId, 256);
	assert_int_equal(h.ClientId.len, -1);
	assert_int_equal(kafka_decode_metadata_request(&r, 1, &req, &a), SL_OK);
	assert_int_equal(req.Topics.count, 2);
	assert_slice_str(req.Topics.items[0].Name, "foo");
	assert_int_equal(req.Topics.items[1].Name.len, 0);   /* empty, not null */
	assert_true(req.AllowAutoTopicCreation);            /* v4+, default true */
	assert_false(req.IncludeTopicAuthorizedOperations);
	assert_ptr_equal(r.p, r.end);

	/* v1+: null = all topics; empty = none. v0 cannot say null. */
	kread_init(&r, null_topics, sizeof(null_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, 1, &req, &a), SL_OK);
	assert_int_equal(req.Topics.count, -1);
	assert_null(req.Topics.items);
	kread_init(&r, empty_topics, sizeof(empty_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, 1, &req, &a), SL_OK);
	assert_int_equal(req.Topics.count, 0);
	kread_init(&r, null_topics, sizeof(null_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, 0, &req, &a), SL_ECORRUPT);
	/* a version the schema does not define */
	kread_init(&r, empty_topics, sizeof(empty_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, 13, &req, &a), SL_EINVAL);
	kread_init(&r, empty_topics, sizeof(empty_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, -1, &req, &a), SL_EINVAL);
	karena_destroy(&a);
}

static void test_metadata_v12_request(void **state)
{
	static const uint8_t frame[] = {
		0x00, 0x03, 0x00, 0x0c,       /* Metadata v12 */
		0x00, 0x00, 0x00, 0x2a,       /* CorrelationId 42 */
		0x00, 0x03, 'c', 'l', 'i',    /* ClientId "cli" (int16 length, always) */
		0x00,                         /* header tags */
		0x03,                         /* Topics: compact, 2 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* TopicId */
		0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
		0x00,                         /* Name: null (by id) */
		0x00,                         /* topic tags */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* TopicId zero */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x04, 'b', 'a', 'r',          /* Name "bar" */
		0x00,
		0x00,                         /* AllowAutoTopicCreation false */
		0x01,                         /* IncludeTopicAuthorizedOperations */
		0x00,                         /* tags */
	};
	static const uint8_t null_topics[] = { 0x00, 0x01, 0x00, 0x00 };
	struct karena a;
	struct kread r;
	struct RequestHeader h;
	struct MetadataRequest req;
	struct kwrite w;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	kread_init(&r, frame, sizeof(frame));
	assert_int_equal(kafka_decode_request_header_auto(&r, &h, &a), SL_OK);
	assert_int_equal(h.RequestApiVersion, 12);
	assert_slice_str(h.ClientId, "cli");
	assert_int_equal(kafka_decode_metadata_request(&r, 12, &req, &a), SL_OK);
	assert_int_equal(req.Topics.count, 2);
	for (int i = 0; i < 16; i++)
		assert_int_equal(req.Topics.items[0].TopicId.b[i], i + 1);
	assert_int_equal(req.Topics.items[0].Name.len, -1);
	assert_slice_str(req.Topics.items[1].Name, "bar");
	assert_false(req.AllowAutoTopicCreation);
	assert_true(req.IncludeTopicAuthorizedOperations);
	assert_false(req.IncludeClusterAuthorizedOperations);   /* v8-10 only */
	assert_ptr_equal(r.p, r.end);

	kwrite_init(&w, 4096);
	assert_int_equal(kafka_encode_request_header(&w, 2, &h), SL_OK);
	assert_int_equal(kafka_encode_metadata_request(&w, 12, &req), SL_OK);
	assert_int_equal(w.len, sizeof(frame));
	assert_memory_equal(w.buf, frame, sizeof(frame));
	kwrite_destroy(&w);

	/* Compact null array (0) = all topics; compact empty (1) = none. */
	kread_init(&r, null_topics, sizeof(null_topics));
	assert_int_equal(kafka_decode_metadata_request(&r, 12, &req, &a), SL_OK);
	assert_int_equal(req.Topics.count, -1);
	assert_true(req.AllowAutoTopicCreation);
	karena_destroy(&a);
}

static void test_produce_v3_request(void **state)
{
	static const uint8_t frame[] = {
		0x00, 0x00, 0x00, 0x03,       /* Produce v3 */
		0x00, 0x00, 0x00, 0x01,       /* CorrelationId 1 */
		0x00, 0x02, 'p', '1',         /* ClientId */
		0xff, 0xff,                   /* TransactionalId null */
		0xff, 0xff,                   /* Acks -1 */
		0x00, 0x00, 0x75, 0x30,       /* TimeoutMs 30000 */
		0x00, 0x00, 0x00, 0x01,       /* TopicData: 1 */
		0x00, 0x05, 't', 'o', 'p', 'i', 'c',
		0x00, 0x00, 0x00, 0x01,       /* PartitionData: 1 */
		0x00, 0x00, 0x00, 0x02,       /* Index 2 */
		0x00, 0x00, 0x00, 0x0c,       /* Records: 12 bytes */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
		0x00, 0x00, 0x00, 0x31,
	};
	const size_t records_at = sizeof(frame) - 12;
	struct karena a;
	struct kread r;
	struct RequestHeader h;
	struct ProduceRequest req;
	const struct ProduceRequest_PartitionProduceData *pd;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	kread_init(&r, frame, sizeof(frame));
	assert_int_equal(kafka_decode_request_header_auto(&r, &h, &a), SL_OK);
	assert_int_equal(h.RequestApiKey, KAFKA_API_PRODUCE);
	assert_int_equal(kafka_decode_produce_request(&r, 3, &req, &a), SL_OK);
	assert_int_equal(req.TransactionalId.len, -1);
	assert_int_equal(req.Acks, -1);
	assert_int_equal(req.TimeoutMs, 30000);
	assert_int_equal(req.TopicData.count, 1);
	assert_slice_str(req.TopicData.items[0].Name, "topic");
	assert_int_equal(req.TopicData.items[0].PartitionData.count, 1);
	pd = &req.TopicData.items[0].PartitionData.items[0];
	assert_int_equal(pd->Index, 2);
	assert_int_equal(pd->Records.len, 12);
	assert_ptr_equal(pd->Records.ptr, frame + records_at);   /* zero copy */
	assert_ptr_equal(r.p, r.end);

	/* v2 has no TransactionalId: the body starts at Acks. */
	kread_init(&r, frame + 14, sizeof(frame) - 14);
	assert_int_equal(kafka_decode_produce_request(&r, 2, &req, &a), SL_OK);
	assert_int_equal(req.Acks, -1);
	assert_int_equal(req.TransactionalId.len, -1);   /* default null */
	assert_ptr_equal(r.p, r.end);
	karena_destroy(&a);
}

/* A Fetch v12 request body: known tag 0 (ClusterId) and unknown tag 9. */
static const uint8_t fetch_v12_body[] = {
	0x00, 0x00, 0x00, 0x01,       /* ReplicaId 1 */
	0x00, 0x00, 0x01, 0xf4,       /* MaxWaitMs 500 */
	0x00, 0x00, 0x00, 0x01,       /* MinBytes 1 */
	0x00, 0x10, 0x00, 0x00,       /* MaxBytes */
	0x01,                         /* IsolationLevel */
	0x00, 0x00, 0x00, 0x00,       /* SessionId */
	0xff, 0xff, 0xff, 0xff,       /* SessionEpoch -1 */
	0x02,                         /* Topics: 1 */
	0x02, 't',                    /* Topic "t" */
	0x02,                         /* Partitions: 1 */
	0x00, 0x00, 0x00, 0x00,       /* Partition 0 */
	0x00, 0x00, 0x00, 0x05,       /* CurrentLeaderEpoch 5 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* FetchOffset 100 */
	0xff, 0xff, 0xff, 0xff,       /* LastFetchedEpoch -1 */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* LogStartOffset -1 */
	0x00, 0x10, 0x00, 0x00,       /* PartitionMaxBytes */
	0x00,                         /* partition tags */
	0x00,                         /* topic tags */
	0x01,                         /* ForgottenTopicsData: empty */
	0x01,                         /* RackId "" */
	0x02,                         /* two tagged fields: */
	0x00, 0x03, 0x03, 'a', 'b',   /*   tag 0 ClusterId "ab" */
	0x09, 0x01, 0xff,             /*   tag 9 unknown */
};

#define FETCH_V12_TAG_BYTES 9   /* the tagged-field section at its end */

static void test_fetch_v12_tags(void **state)
{
	static const uint8_t bad_tags[] = { 0x01, 0x00, 0x04, 0x03, 'a', 'b', 'x' };
	uint8_t bad[sizeof(fetch_v12_body)];
	struct karena a;
	struct kread r;
	struct FetchRequest req;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	kread_init(&r, fetch_v12_body, sizeof(fetch_v12_body));
	assert_int_equal(kafka_decode_fetch_request(&r, 12, &req, &a), SL_OK);
	assert_int_equal(req.ReplicaId, 1);
	assert_int_equal(req.MaxWaitMs, 500);
	assert_int_equal(req.IsolationLevel, 1);
	assert_int_equal(req.SessionEpoch, -1);
	assert_int_equal(req.Topics.count, 1);
	assert_slice_str(req.Topics.items[0].Topic, "t");
	assert_int_equal(req.Topics.items[0].Partitions.items[0].CurrentLeaderEpoch, 5);
	assert_int_equal(req.Topics.items[0].Partitions.items[0].FetchOffset, 100);
	assert_int_equal(req.ForgottenTopicsData.count, 0);
	assert_int_equal(req.RackId.len, 0);
	assert_slice_str(req.ClusterId, "ab");
	assert_int_equal(req.ReplicaState.ReplicaId, -1);      /* v15+ tag: default */
	assert_ptr_equal(r.p, r.end);

	/*
	 * A known tag whose size disagrees with its content is corrupt: here
	 * the only tag is ClusterId, claiming 4 bytes of which the string
	 * takes 3, so nothing but the size check can object.
	 */
	memcpy(bad, fetch_v12_body, sizeof(bad) - FETCH_V12_TAG_BYTES);
	memcpy(bad + sizeof(bad) - FETCH_V12_TAG_BYTES, bad_tags, sizeof(bad_tags));
	kread_init(&r, bad, sizeof(bad) - FETCH_V12_TAG_BYTES + sizeof(bad_tags));
	assert_int_equal(kafka_decode_fetch_request(&r, 12, &req, &a), SL_ECORRUPT);
	bad[sizeof(bad) - FETCH_V12_TAG_BYTES + 2] = 0x03;   /* honest size: fine */
	kread_init(&r, bad, sizeof(bad) - FETCH_V12_TAG_BYTES + sizeof(bad_tags) - 1);
	assert_int_equal(kafka_decode_fetch_request(&r, 12, &req, &a), SL_OK);
	assert_slice_str(req.ClusterId, "ab");
	/* A tag size running past the end is caught. */
	memcpy(bad, fetch_v12_body, sizeof(bad));
	bad[sizeof(bad) - 2] = 0x7f;
	kread_init(&r, bad, sizeof(bad));
	assert_int_equal(kafka_decode_fetch_request(&r, 12, &req, &a), SL_ETRUNC);
	karena_destroy(&a);
}

static void test_tagged_defaults_not_sent(void **state)
{
	struct ApiVersionsResponse resp;
	struct kwrite w;
	struct kread r;
	struct karena a;
	struct ApiVersionsResponse back;

	(void)state;
	kafka_init_api_versions_response(&resp);
	assert_int_equal(resp.FinalizedFeaturesEpoch, -1);
	kwrite_init(&w, 256);
	assert_int_equal(kafka_encode_api_versions_response(&w, 3, &resp), SL_OK);
	/* ErrorCode, ApiKeys (empty), ThrottleTimeMs, no tags */
	assert_int_equal(w.len, 2 + 1 + 4 + 1);
	assert_int_equal(w.buf[w.len - 1], 0);
	kwrite_reset(&w);
	resp.FinalizedFeaturesEpoch = 5;
	resp.ZkMigrationReady = true;
	assert_int_equal(kafka_encode_api_versions_response(&w, 3, &resp), SL_OK);
	/* 2 tags: tag 1 (size 8) and tag 3 (size 1), ascending */
	assert_int_equal(w.len, 2 + 1 + 4 + 1 + (2 + 8) + (2 + 1));
	assert_int_equal(w.buf[7], 2);
	assert_int_equal(w.buf[8], 1);
	assert_int_equal(w.buf[9], 8);
	assert_int_equal(w.buf[18], 3);
	assert_int_equal(karena_init_heap(&a, 1024), SL_OK);
	kread_init(&r, w.buf, w.len);
	assert_int_equal(kafka_decode_api_versions_response(&r, 3, &back, &a), SL_OK);
	assert_int_equal(back.FinalizedFeaturesEpoch, 5);
	assert_true(back.ZkMigrationReady);
	assert_int_equal(back.SupportedFeatures.count, 0);
	/* v2 has no tags at all */
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_api_versions_response(&w, 2, &resp), SL_OK);
	assert_int_equal(w.len, 2 + 4 + 4);
	kwrite_destroy(&w);
	karena_destroy(&a);
}

static void test_null_vs_empty_encode(void **state)
{
	struct MetadataRequest req;
	struct ProduceRequest preq;
	struct kwrite w;

	(void)state;
	kafka_init_metadata_request(&req);
	req.Topics.count = -1;
	kwrite_init(&w, 256);
	assert_int_equal(kafka_encode_metadata_request(&w, 1, &req), SL_OK);
	assert_int_equal(w.len, 4);            /* v1: only Topics */
	assert_int_equal((int32_t)be32_load(w.buf), -1);
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_metadata_request(&w, 9, &req), SL_OK);
	assert_int_equal(w.buf[0], 0x00);     /* compact null */
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_metadata_request(&w, 0, &req), SL_EINVAL);
	kwrite_reset(&w);
	req.Topics.count = 0;
	assert_int_equal(kafka_encode_metadata_request(&w, 9, &req), SL_OK);
	assert_int_equal(w.buf[0], 0x01);     /* compact empty */
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_metadata_request(&w, 13, &req), SL_EINVAL);

	kafka_init_produce_request(&preq);
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_produce_request(&w, 3, &preq), SL_OK);
	assert_int_equal(be16_load(w.buf), 0xffff);    /* TransactionalId null */
	kwrite_reset(&w);
	preq.TransactionalId = KSLICE_EMPTY;
	assert_int_equal(kafka_encode_produce_request(&w, 3, &preq), SL_OK);
	assert_int_equal(be16_load(w.buf), 0);         /* "" */
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_produce_request(&w, 9, &preq), SL_OK);
	assert_int_equal(w.buf[0], 0x01);
	kwrite_destroy(&w);
}

/* ------------------------------------------------------------ limits */

static void test_huge_counts(void **state)
{
	static const uint8_t count_2g[] = { 0x7f, 0xff, 0xff, 0xff, 0x00, 0x01, 'x' };
	static const uint8_t count_neg[] = { 0x80, 0x00, 0x00, 0x00 };
	static const uint8_t compact_4g[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00 };
	/* 1000 int32 partitions claimed, 8 bytes present (OffsetDelete v0) */
	static const uint8_t short_ints[] = {
		0x00, 0x01, 'g',              /* GroupId */
		0x00, 0x00, 0x00, 0x01,       /* Topics: 1 */
		0x00, 0x01, 't',
		0x00, 0x00, 0x03, 0xe8,       /* Partitions: 1000 */
		0, 0, 0, 1, 0, 0, 0, 2,
	};
	struct karena a;
	struct kread r;
	struct MetadataRequest req;
	struct OffsetDeleteRequest odr;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 1 << 16), SL_OK);
	kread_init(&r, count_2g, sizeof(count_2g));
	assert_int_equal(kafka_decode_metadata_request(&r, 1, &req, &a), SL_ECORRUPT);
	assert_int_equal(a.used, 0);
	kread_init(&r, count_neg, sizeof(count_neg));
	assert_int_equal(kafka_decode_metadata_request(&r, 4, &req, &a), SL_ECORRUPT);
	assert_int_equal(a.used, 0);
	kread_init(&r, compact_4g, sizeof(compact_4g));
	assert_int_not_equal(kafka_decode_metadata_request(&r, 9, &req, &a), SL_OK);
	assert_int_equal(a.used, 0);
	kread_init(&r, short_ints, sizeof(short_ints));
	assert_int_equal(kafka_decode_offset_delete_request(&r, 0, &odr, &a), SL_ETRUNC);
	assert_true(a.used <= sizeof(struct OffsetDeleteRequest_OffsetDeleteRequestTopic) + 16);
	assert_int_equal(odr.Topics.count, 1);
	assert_int_equal(odr.Topics.items[0].Partitions.count, 0);
	karena_destroy(&a);
}

/* Decodes `buf` with a tiny arena: SL_ENOMEM, never more than the cap. */
static void test_arena_cap(void **state)
{
	uint8_t mem[200];
	struct karena big, small;
	struct MetadataResponse resp, back;
	struct kwrite w;
	struct kread r;

	(void)state;
	assert_int_equal(karena_init_heap(&big, TEST_ARENA_BYTES), SL_OK);
	assert_int_equal(kafka_sample_metadata_response(&resp, &big, 1), SL_OK);
	kwrite_init(&w, TEST_WRITE_MAX);
	assert_int_equal(kafka_encode_metadata_response(&w, 12, &resp), SL_OK);
	karena_init(&small, mem, sizeof(mem));
	kread_init(&r, w.buf, w.len);
	assert_int_equal(kafka_decode_metadata_response(&r, 12, &back, &small), SL_ENOMEM);
	assert_true(small.used <= sizeof(mem));
	kwrite_destroy(&w);

	/* and a writer cap below the message size */
	kwrite_init(&w, 32);
	assert_int_equal(kafka_encode_metadata_response(&w, 12, &resp), SL_ENOMEM);
	assert_true(w.len <= 32);
	kwrite_destroy(&w);
	karena_destroy(&small);
	karena_destroy(&big);
}

/* ------------------------------------------------------------ every api */

/* Decodes a copy of buf[0, len) that is exactly len bytes long. */
static enum sl_err decode_copy(kafka_decode_fn *dec, int16_t version, const uint8_t *buf,
	size_t len, void *out, struct karena *a)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct kread r;
	enum sl_err err;

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	karena_reset(a);
	kread_init(&r, copy, len);
	err = dec(&r, version, out, a);
	free(copy);
	return err;
}

struct side {
	const char *what;
	size_t size;
	kafka_decode_fn *decode;
	kafka_encode_fn *encode;
	kafka_sample_fn *sample;
};

static void check_one(const struct kafka_api *api, const struct side *sd, int16_t version,
	uint64_t *noise)
{
	struct karena a_in, a_out, a_tmp;
	struct kwrite w1, w2;
	struct kread r;
	void *in = calloc(1, sd->size);
	void *out = calloc(1, sd->size);
	enum sl_err err;

	assert_non_null(in);
	assert_non_null(out);
	assert_int_equal(karena_init_heap(&a_in, TEST_ARENA_BYTES), SL_OK);
	assert_int_equal(karena_init_heap(&a_out, TEST_ARENA_BYTES), SL_OK);
	assert_int_equal(karena_init_heap(&a_tmp, TEST_ARENA_BYTES), SL_OK);
	assert_int_equal(sd->sample(in, &a_in, (uint32_t)(api->api_key * 100 + version)), SL_OK);
	kwrite_init(&w1, TEST_WRITE_MAX);
	kwrite_init(&w2, TEST_WRITE_MAX);
	err = sd->encode(&w1, version, in);
	if (err != SL_OK)
		fail_msg("%s %s v%d: encode: %s", api->name, sd->what, version, sl_err_str(err));

	/* decode -> encode gives the same bytes, and decode uses them all */
	kread_init(&r, w1.buf, w1.len);
	err = sd->decode(&r, version, out, &a_out);
	if (err != SL_OK)
		fail_msg("%s %s v%d: decode: %s", api->name, sd->what, version, sl_err_str(err));
	assert_ptr_equal(r.p, r.end);
	assert_int_equal(sd->encode(&w2, version, out), SL_OK);
	if (w1.len != w2.len || (w1.len > 0 && memcmp(w1.buf, w2.buf, w1.len) != 0))
		fail_msg("%s %s v%d: re-encoding differs", api->name, sd->what, version);

	/* every strict prefix fails, without reading past it */
	for (size_t len = 0; len < w1.len; len++) {
		err = decode_copy(sd->decode, version, w1.buf, len, out, &a_tmp);
		if (err == SL_OK)
			fail_msg("%s %s v%d: prefix %zu of %zu decoded", api->name, sd->what,
				 version, len, w1.len);
	}

	/* random byte flips: any result but a crash or an over-read */
	for (int i = 0; i < TEST_FLIPS_PER_MESSAGE && w1.len > 0; i++) {
		uint64_t x = test_rand(noise);
		size_t at = (size_t)(x % w1.len);
		uint8_t saved = w1.buf[at];

		w1.buf[at] ^= (uint8_t)((x >> 32) | 1);
		(void)decode_copy(sd->decode, version, w1.buf, w1.len, out, &a_tmp);
		w1.buf[at] = saved;
	}
	kwrite_destroy(&w2);
	kwrite_destroy(&w1);
	karena_destroy(&a_tmp);
	karena_destroy(&a_out);
	karena_destroy(&a_in);
	free(out);
	free(in);
}

static void test_every_api_round_trip(void **state)
{
	uint64_t noise = 0x5eedc0dec0ffeeULL;
	int checked = 0;

	(void)state;
	for (size_t k = 0; k < KAFKA_API_COUNT; k++) {
		const struct kafka_api *api = &kafka_api_table[k];
		const struct side sides[2] = {
			{ "request", api->request_size, api->decode_request,
			  api->encode_request, api->sample_request },
			{ "response", api->response_size, api->decode_response,
			  api->encode_response, api->sample_response },
		};

		assert_true(api->version_min <= api->version_max);
		for (int16_t v = api->version_min; v <= api->version_max; v++) {
			for (int s = 0; s < 2; s++) {
				check_one(api, &sides[s], v, &noise);
				checked++;
			}
		}
	}
	/* 30 apis, each request and response, ~6 versions on average */
	assert_true(checked > 300);
}

static void test_headers_round_trip(void **state)
{
	struct karena a;
	struct RequestHeader h, hb;
	struct ResponseHeader rh, rhb;
	struct kwrite w;
	struct kread r;

	(void)state;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	assert_int_equal(kafka_sample_request_header(&h, &a, 3), SL_OK);
	assert_int_equal(kafka_sample_response_header(&rh, &a, 3), SL_OK);
	kwrite_init(&w, 256);
	for (int16_t v = 0; v <= 2; v++) {
		kwrite_reset(&w);
		assert_int_equal(kafka_encode_request_header(&w, v, &h), SL_OK);
		assert_int_equal(w.len, (size_t)(8 + (v >= 1 ? 2 + h.ClientId.len : 0) + (v == 2)));
		kread_init(&r, w.buf, w.len);
		assert_int_equal(kafka_decode_request_header(&r, v, &hb, &a), SL_OK);
		assert_int_equal(hb.CorrelationId, h.CorrelationId);
		assert_int_equal(hb.ClientId.len, v >= 1 ? h.ClientId.len : 0);  /* default "" */
		for (size_t len = 0; len < w.len; len++) {
			kread_init(&r, w.buf, len);
			assert_int_not_equal(kafka_decode_request_header(&r, v, &hb, &a), SL_OK);
		}
	}
	for (int16_t v = 0; v <= 1; v++) {
		kwrite_reset(&w);
		assert_int_equal(kafka_encode_response_header(&w, v, &rh), SL_OK);
		assert_int_equal(w.len, (size_t)(4 + v));
		kread_init(&r, w.buf, w.len);
		assert_int_equal(kafka_decode_response_header(&r, v, &rhb, &a), SL_OK);
		assert_int_equal(rhb.CorrelationId, rh.CorrelationId);
	}
	kwrite_reset(&w);
	assert_int_equal(kafka_encode_response_header(&w, 2, &rh), SL_EINVAL);
	kwrite_destroy(&w);
	karena_destroy(&a);
}

static void test_header_versions_and_table(void **state)
{
	(void)state;
	assert_int_equal(kafka_request_header_version(KAFKA_API_CONTROLLED_SHUTDOWN, 0), 0);
	assert_int_equal(kafka_request_header_version(KAFKA_API_CONTROLLED_SHUTDOWN, 1), 1);
	assert_int_equal(kafka_request_header_version(KAFKA_API_CONTROLLED_SHUTDOWN, 3), 2);
	assert_int_equal(kafka_request_header_version(KAFKA_API_METADATA, 8), 1);
	assert_int_equal(kafka_request_header_version(KAFKA_API_METADATA, 9), 2);
	assert_int_equal(kafka_request_header_version(KAFKA_API_API_VERSIONS, 3), 2);
	assert_int_equal(kafka_request_header_version(KAFKA_API_API_VERSIONS, 99), 2);
	assert_int_equal(kafka_request_header_version(KAFKA_API_OFFSET_DELETE, 0), 1);
	assert_int_equal(kafka_request_header_version(9999, 0), 1);
	assert_int_equal(kafka_response_header_version(KAFKA_API_API_VERSIONS, 3), 0);
	assert_int_equal(kafka_response_header_version(KAFKA_API_METADATA, 9), 1);
	assert_int_equal(kafka_response_header_version(KAFKA_API_METADATA, 8), 0);
	assert_int_equal(kafka_response_header_version(KAFKA_API_DESCRIBE_CLUSTER, 0), 1);

	for (size_t k = 0; k < KAFKA_API_COUNT; k++) {
		const struct kafka_api *api = &kafka_api_table[k];

		assert_ptr_equal(kafka_api_find(api->api_key), api);
		if (k > 0)
			assert_true(kafka_api_table[k - 1].api_key < api->api_key);
		assert_true(api->flexible_min == -1 ||
			    (api->flexible_min >= api->version_min &&
			     api->flexible_min <= api->version_max));
	}
	assert_null(kafka_api_find(-1));
	assert_null(kafka_api_find(KAFKA_API_COUNT + 1000));
	assert_string_equal(kafka_api_find(KAFKA_API_FETCH)->name, "Fetch");
	assert_int_equal(kafka_api_find(KAFKA_API_FETCH)->version_max, 17);
	assert_int_equal(kafka_api_find(KAFKA_API_FETCH)->flexible_min, 12);
	assert_int_equal(kafka_api_find(KAFKA_API_OFFSET_DELETE)->flexible_min, -1);
}

/* ------------------------------------------------------------ holes */

#define HOLE_BYTES 100

/*
 * Builds a Fetch response with two partitions: one whose records are in
 * memory, one whose records are deferred (or, with `inline_all`, given in
 * memory too, for comparison).
 */
static void fetch_response_build(struct FetchResponse *resp,
	struct FetchResponse_FetchableTopicResponse *topic,
	struct FetchResponse_PartitionData parts[2], const uint8_t *file_bytes, int inline_all)
{
	static const uint8_t small[] = { 1, 2, 3, 4, 5 };

	kafka_init_fetch_response(resp);
	kafka_init_fetch_response_fetchable_topic_response(topic);
	topic->Topic = KSLICE_LIT("events");
	topic->TopicId.b[0] = 7;
	for (int i = 0; i < 2; i++) {
		kafka_init_fetch_response_partition_data(&parts[i]);
		parts[i].PartitionIndex = i;
		parts[i].HighWatermark = 1000 + i;
	}
	parts[0].Records = (struct kslice){ small, (int32_t)sizeof(small) };
	parts[1].Records = inline_all ? (struct kslice){ file_bytes, HOLE_BYTES }
				      : KSLICE_DEFERRED(HOLE_BYTES);
	topic->Partitions.count = 2;
	topic->Partitions.items = parts;
	resp->Responses.count = 1;
	resp->Responses.items = topic;
}

static void test_fetch_holes(void **state)
{
	uint8_t file_bytes[HOLE_BYTES];

	(void)state;
	for (size_t i = 0; i < sizeof(file_bytes); i++)
		file_bytes[i] = (uint8_t)(0xa0 + i);
	for (int16_t v = 4; v <= 17; v += 8) {   /* v4 (plain) and v12 (flexible) */
		struct FetchResponse resp, full;
		struct FetchResponse_FetchableTopicResponse topic, topic_full;
		struct FetchResponse_PartitionData parts[2], parts_full[2];
		struct kwrite_hole holes[2];
		struct kwrite w, wf;
		struct ResponseHeader rh = { .CorrelationId = 9 };
		size_t frame;
		uint8_t *joined;
		size_t at;

		fetch_response_build(&resp, &topic, parts, file_bytes, 0);
		fetch_response_build(&full, &topic_full, parts_full, file_bytes, 1);

		kwrite_init(&w, 4096);
		kwrite_holes_set(&w, holes, SL_ARRAY_LEN(holes));
		frame = kwrite_frame_begin(&w);
		assert_int_equal(kafka_encode_response_header(&w,
			kafka_response_header_version(KAFKA_API_FETCH, v), &rh), SL_OK);
		assert_int_equal(kafka_encode_fetch_response(&w, v, &resp), SL_OK);
		kwrite_frame_end(&w, frame);
		assert_int_equal(w.err, SL_OK);
		assert_int_equal(w.hole_count, 1);
		assert_ptr_equal(holes[0].src, &parts[1].Records);
		assert_int_equal(holes[0].len, HOLE_BYTES);
		assert_int_equal(w.hole_bytes, HOLE_BYTES);
		assert_int_equal(be32_load(w.buf), w.len - 4 + HOLE_BYTES);

		kwrite_init(&wf, 4096);
		frame = kwrite_frame_begin(&wf);
		assert_int_equal(kafka_encode_response_header(&wf,
			kafka_response_header_version(KAFKA_API_FETCH, v), &rh), SL_OK);
		assert_int_equal(kafka_encode_fetch_response(&wf, v, &full), SL_OK);
		kwrite_frame_end(&wf, frame);
		assert_int_equal(wf.len, w.len + HOLE_BYTES);

		/* memory before the hole + file bytes + memory after = the full frame */
		joined = malloc(wf.len);
		assert_non_null(joined);
		at = holes[0].offset;
		memcpy(joined, w.buf, at);
		memcpy(joined + at, file_bytes, HOLE_BYTES);
		memcpy(joined + at + HOLE_BYTES, w.buf + at, w.len - at);
		assert_memory_equal(joined, wf.buf, wf.len);
		free(joined);
		kwrite_destroy(&wf);

		/* without a hole table a deferred value is a caller bug */
		kwrite_destroy(&w);
		kwrite_init(&w, 4096);
		assert_int_equal(kafka_encode_fetch_response(&w, v, &resp), SL_EINVAL);
		kwrite_destroy(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uvarint_edges),
		cmocka_unit_test(test_kread_sticky),
		cmocka_unit_test(test_kread_lengths),
		cmocka_unit_test(test_kwrite_caps),
		cmocka_unit_test(test_kwrite_tag_size),
		cmocka_unit_test(test_api_versions_v3_request),
		cmocka_unit_test(test_metadata_v1_request),
		cmocka_unit_test(test_metadata_v12_request),
		cmocka_unit_test(test_produce_v3_request),
		cmocka_unit_test(test_fetch_v12_tags),
		cmocka_unit_test(test_tagged_defaults_not_sent),
		cmocka_unit_test(test_null_vs_empty_encode),
		cmocka_unit_test(test_huge_counts),
		cmocka_unit_test(test_arena_cap),
		cmocka_unit_test(test_every_api_round_trip),
		cmocka_unit_test(test_headers_round_trip),
		cmocka_unit_test(test_header_versions_and_table),
		cmocka_unit_test(test_fetch_holes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
