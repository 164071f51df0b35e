/*
 * fuzz_codec.c — libFuzzer target for the Kafka codec (net/kafka_codec.h):
 * every api x version x side of kafka_api_table, and the request header.
 *
 * Input layout:
 *   byte 0  api: index into kafka_api_table (modulo KAFKA_API_COUNT)
 *   byte 1  version: version_min + byte % (range + 1), where the extra value
 *           is version_max + 1 (must be refused with SL_EINVAL)
 *   byte 2  mode (low two bits):
 *             0  request body of the chosen api/version
 *             1  response body of the chosen api/version
 *             2, 3  a RequestHeader read with kafka_decode_request_header_auto,
 *                then the request body of the api and version it names
 *                (bytes 0 and 1 unused): how the broker reads a frame
 *   rest    the message bytes
 *
 * Properties checked (abort() with a message when one fails; libFuzzer
 * saves the input):
 *   1. Decoding never reads outside the input (ASan), never overflows
 *      (UBSan), never trips an SL_ASSERT, never allocates beyond its arena.
 *   2. A version outside the schema is SL_EINVAL.
 *   3. When decoding succeeds: encoding the struct succeeds; decoding those
 *      bytes succeeds and consumes exactly all of them; encoding again gives
 *      identical bytes (encode . decode is idempotent after one step: the
 *      first step may normalise non-minimal varints, bools other than 0/1,
 *      unknown tags and trailing bytes).
 *   4. The same for a decoded RequestHeader in its header version.
 *
 * Harness state (the arenas) is static: a fuzz target is one thread running
 * one input at a time, and reusing the memory keeps the rate high. The
 * decoded structs themselves are calloc'ed at their exact size per input,
 * so ASan sees any write past them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_codec.h"
#include "kread.h"
#include "kwrite.h"
#include "sl.h"

/* Arena for one decoded message: ample for 4 KiB inputs, bounded for big ones. */
#define FUZZ_CODEC_ARENA_BYTES (4u << 20)
/* Encoder cap: a decoded message never encodes larger than its input by much. */
#define FUZZ_CODEC_WRITE_MAX (64u << 20)
#define FUZZ_CODEC_PREFIX_BYTES 3

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_codec {
	struct karena a1;   /* first decode */
	struct karena a2;   /* decode of the re-encoded bytes */
};

static struct fuzz_codec fuzz_codec_state;

/* A broken property: print what and where, then abort for libFuzzer. */
static void fuzz_fail(const char *what, const char *api, const char *side, int version,
		      enum sl_err err)
{
	fprintf(stderr, "fuzz_codec: %s: %s %s v%d (%s)\n", what, api, side, version,
		sl_err_str(err));
	abort();
}

/*
 * Round trip of one message body: decode `len` bytes at `buf` as `version`
 * of the message `decode`/`encode` handle (struct of `size` bytes), then
 * checks properties 2 and 3 above. Returns nothing: a failure aborts.
 */
static void fuzz_codec_body(struct fuzz_codec *f, const struct kafka_api *api, int side,
			    int16_t version, const uint8_t *buf, size_t len)
{
	const char *side_name = side == 0 ? "request" : "response";
	size_t size = side == 0 ? api->request_size : api->response_size;
	kafka_decode_fn *decode = side == 0 ? api->decode_request : api->decode_response;
	kafka_encode_fn *encode = side == 0 ? api->encode_request : api->encode_response;
	void *m1 = calloc(1, size);
	void *m2 = calloc(1, size);
	struct kwrite w1, w2;
	struct kread r;
	enum sl_err err;

	SL_ASSERT(m1 != NULL && m2 != NULL);
	karena_reset(&f->a1);
	karena_reset(&f->a2);
	kwrite_init(&w1, FUZZ_CODEC_WRITE_MAX);
	kwrite_init(&w2, FUZZ_CODEC_WRITE_MAX);

	kread_init(&r, buf, len);
	err = decode(&r, version, m1, &f->a1);
	SL_ASSERT(r.p >= buf && r.p <= buf + len);
	if (version < api->version_min || version > api->version_max) {
		if (err != SL_EINVAL)
			fuzz_fail("version outside the schema not refused", api->name, side_name,
				  version, err);
		goto cleanup;
	}
	if (err != SL_OK)
		goto cleanup;

	err = encode(&w1, version, m1);
	if (err != SL_OK)
		fuzz_fail("decoded message does not encode", api->name, side_name, version, err);
	kread_init(&r, w1.buf, w1.len);
	err = decode(&r, version, m2, &f->a2);
	if (err != SL_OK)
		fuzz_fail("re-encoded message does not decode", api->name, side_name, version,
			  err);
	if (r.p != r.end)
		fuzz_fail("re-encoded message decodes with bytes left over", api->name, side_name,
			  version, err);
	err = encode(&w2, version, m2);
	if (err != SL_OK)
		fuzz_fail("second encode failed", api->name, side_name, version, err);
	if (w1.len != w2.len || (w1.len > 0 && memcmp(w1.buf, w2.buf, w1.len) != 0))
		fuzz_fail("re-encoding differs", api->name, side_name, version, err);

cleanup:
	kwrite_destroy(&w2);
	kwrite_destroy(&w1);
	free(m2);
	free(m1);
}

/*
 * Mode 2: a request header (auto version), round-tripped in its header
 * version, then the body of the api/version it names when the codec covers
 * them (an unknown api or version is the handler's business, not ours).
 */
static void fuzz_codec_frame(struct fuzz_codec *f, const uint8_t *buf, size_t len)
{
	struct RequestHeader h1, h2;
	struct kwrite w1, w2;
	struct kread r;
	const struct kafka_api *api;
	int16_t hv;
	enum sl_err err;

	karena_reset(&f->a1);
	kread_init(&r, buf, len);
	err = kafka_decode_request_header_auto(&r, &h1, &f->a1);
	if (err != SL_OK)
		return;
	SL_ASSERT(r.p >= buf + 4 && r.p <= buf + len);
	hv = kafka_request_header_version(h1.RequestApiKey, h1.RequestApiVersion);
	SL_ASSERT(hv >= 0 && hv <= 2);

	kwrite_init(&w1, FUZZ_CODEC_WRITE_MAX);
	kwrite_init(&w2, FUZZ_CODEC_WRITE_MAX);
	err = kafka_encode_request_header(&w1, hv, &h1);
	if (err != SL_OK)
		fuzz_fail("decoded header does not encode", "RequestHeader", "header", hv, err);
	{
		struct kread r2;

		kread_init(&r2, w1.buf, w1.len);
		err = kafka_decode_request_header(&r2, hv, &h2, &f->a2);
		if (err != SL_OK || r2.p != r2.end)
			fuzz_fail("re-encoded header does not decode exactly", "RequestHeader",
				  "header", hv, err);
	}
	err = kafka_encode_request_header(&w2, hv, &h2);
	if (err != SL_OK || w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len) != 0)
		fuzz_fail("header re-encoding differs", "RequestHeader", "header", hv, err);
	kwrite_destroy(&w2);
	kwrite_destroy(&w1);

	api = kafka_api_find(h1.RequestApiKey);
	if (api == NULL || h1.RequestApiVersion < api->version_min ||
	    h1.RequestApiVersion > api->version_max)
		return;
	/* The body starts where the header ended; the header's slices stay valid. */
	fuzz_codec_body(f, api, 0, h1.RequestApiVersion, r.p, kread_left(&r));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (karena_init_heap(&fuzz_codec_state.a1, FUZZ_CODEC_ARENA_BYTES) != SL_OK ||
	    karena_init_heap(&fuzz_codec_state.a2, FUZZ_CODEC_ARENA_BYTES) != SL_OK) {
		fprintf(stderr, "fuzz_codec: no memory for the arenas\n");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_codec *f = &fuzz_codec_state;
	const struct kafka_api *api;
	int range;
	int16_t version;
	int mode;

	if (size < FUZZ_CODEC_PREFIX_BYTES)
		return 0;
	api = &kafka_api_table[data[0] % KAFKA_API_COUNT];
	range = api->version_max - api->version_min + 1;
	SL_ASSERT(range >= 1);
	version = (int16_t)(api->version_min + data[1] % (range + 1));
	mode = data[2] & 3;
	if (mode >= 2)
		fuzz_codec_frame(f, data + FUZZ_CODEC_PREFIX_BYTES, size - FUZZ_CODEC_PREFIX_BYTES);
	else
		fuzz_codec_body(f, api, mode, version, data + FUZZ_CODEC_PREFIX_BYTES,
				size - FUZZ_CODEC_PREFIX_BYTES);
	return 0;
}
