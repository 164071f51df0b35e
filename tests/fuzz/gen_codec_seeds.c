/*
 * gen_codec_seeds.c — writes the seed corpus of fuzz_codec: for every api x
 * version of kafka_api_table, the codec's own sample request and response
 * (kafka_sample_*, every field non-default) encoded in that version, plus
 * each sample request framed as the broker receives it (RequestHeader in
 * the matching header version, then the body). Each file carries the three
 * selector bytes fuzz_codec.c reads first.
 *
 * Usage: gen_codec_seeds <dir>   (the directory must exist; files are
 * overwritten; the output is deterministic: the seeds are fixed numbers).
 * Exit 0 on success, 1 with a message on any failure.
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

#define SEEDS_ARENA_BYTES (1u << 20)
#define SEEDS_WRITE_MAX (16u << 20)
#define SEEDS_PATH_MAX 1024

enum seeds_mode {
	SEEDS_REQUEST = 0,
	SEEDS_RESPONSE = 1,
	SEEDS_FRAME = 2,
};

/* Writes prefix + w's bytes to dir/name. Returns 0 or -1 (message printed). */
static int seeds_write(const char *dir, const char *name, const uint8_t prefix[3],
		       const struct kwrite *w)
{
	char path[SEEDS_PATH_MAX];
	FILE *f;
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = 0;

	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "gen_codec_seeds: path too long: %s/%s\n", dir, name);
		return -1;
	}
	f = fopen(path, "wb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	if (fwrite(prefix, 1, 3, f) != 3 || (w->len > 0 && fwrite(w->buf, 1, w->len, f) != w->len))
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		fprintf(stderr, "gen_codec_seeds: write failed: %s\n", path);
	return rc;
}

/*
 * One seed: the sample of `api` on side `mode` (SEEDS_FRAME: the request
 * behind a header) encoded as `version`. Returns 0 or -1.
 */
static int seeds_one(const char *dir, size_t api_idx, int16_t version, enum seeds_mode mode,
		     struct karena *a)
{
	const struct kafka_api *api = &kafka_api_table[api_idx];
	int response = mode == SEEDS_RESPONSE;
	size_t size = response ? api->response_size : api->request_size;
	kafka_sample_fn *sample = response ? api->sample_response : api->sample_request;
	kafka_encode_fn *encode = response ? api->encode_response : api->encode_request;
	static const char *const suffix[] = { "request", "response", "frame" };
	uint8_t prefix[3] = { (uint8_t)api_idx, (uint8_t)(version - api->version_min),
			      (uint8_t)mode };
	void *msg = calloc(1, size);
	struct kwrite w;
	char name[128];
	enum sl_err err = SL_ENOMEM;
	int rc = -1;

	kwrite_init(&w, SEEDS_WRITE_MAX);
	karena_reset(a);
	if (msg == NULL)
		goto cleanup;
	err = sample(msg, a, (uint32_t)(api->api_key * 100 + version));
	if (err != SL_OK)
		goto cleanup;
	if (mode == SEEDS_FRAME) {
		struct RequestHeader h;

		err = kafka_sample_request_header(&h, a, (uint32_t)version);
		if (err != SL_OK)
			goto cleanup;
		h.RequestApiKey = api->api_key;
		h.RequestApiVersion = version;
		err = kafka_encode_request_header(&w,
			kafka_request_header_version(api->api_key, version), &h);
		if (err != SL_OK)
			goto cleanup;
	}
	err = encode(&w, version, msg);
	if (err != SL_OK)
		goto cleanup;
	snprintf(name, sizeof(name), "%s-v%d-%s", api->name, version, suffix[mode]);
	rc = seeds_write(dir, name, prefix, &w);
	err = SL_OK;

cleanup:
	if (err != SL_OK)
		fprintf(stderr, "gen_codec_seeds: %s v%d %s: %s\n", api->name, version,
			suffix[mode], sl_err_str(err));
	kwrite_destroy(&w);
	free(msg);
	return rc;
}

int main(int argc, char **argv)
{
	struct karena a;
	int files = 0;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_codec_seeds <dir>\n");
		return 1;
	}
	if (karena_init_heap(&a, SEEDS_ARENA_BYTES) != SL_OK)
		return 1;
	for (size_t k = 0; k < KAFKA_API_COUNT && rc == 0; k++) {
		const struct kafka_api *api = &kafka_api_table[k];

		for (int16_t v = api->version_min; v <= api->version_max && rc == 0; v++) {
			for (int m = SEEDS_REQUEST; m <= SEEDS_FRAME && rc == 0; m++) {
				rc = seeds_one(argv[1], k, v, (enum seeds_mode)m, &a);
				files++;
			}
		}
	}
	karena_destroy(&a);
	if (rc != 0)
		return 1;
	printf("gen_codec_seeds: %d files in %s\n", files, argv[1]);
	return 0;
}
