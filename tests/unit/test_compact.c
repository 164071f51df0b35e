/*
 * test_compact.c — log compaction (io/compact.c): latest record per key,
 * tombstones kept before and removed after delete.retention.ms, offsets
 * preserved (read back with plog_read and walked), keyless records kept,
 * compressed batches rewritten with their codec, a bounded key map resuming
 * over several calls, the dirty ratio, crash images at each step of the
 * swap (.cleaned / .swap / indexes gone), and a read slice holding the
 * replaced segment; incremental jobs (compact_job_*) with appends and reads
 * between slices, a crash image and a cancel at every step, DeleteRecords
 * and truncation under a running job. test_compact_throughput prints MB/s
 * (no assertion on it).
 *
 * Every test keeps a model (offset, key, value, batch max timestamp) of
 * what was appended and compares the log with the model's expected result.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "compact.h"
#include "compress.h"
#include "io_testutil.h"
#include "segment.h"

#define MODEL_MAX 40000
#define KEY_NULL (-1)
#define VAL_NULL (-1)

struct mrec {
	int64_t off;
	int key;                /* KEY_NULL: no key */
	int val;                /* VAL_NULL: tombstone */
	int64_t max_ts;         /* of its batch */
};

struct model {
	struct mrec r[MODEL_MAX];
	int n;
};

struct kv {
	int key;
	int val;
};

/* Appends one batch of n records (timestamps ts), optionally compressed. */
static int64_t put(struct iot_log_fixture *f, struct plog *log, struct model *m,
		   const struct kv *kv, int n, int64_t ts, enum batch_compression codec,
		   int32_t pad)
{
	static uint8_t buf[1 << 18], cbuf[1 << 18], val[1 << 12];
	struct batch_builder b;
	char key[16];
	struct iot_app t;

	assert_true(pad >= 0 && (size_t)pad + 16 < sizeof(val));
	batch_builder_init(&b, buf, sizeof(buf));
	for (int i = 0; i < n; i++) {
		int klen = snprintf(key, sizeof(key), "k%05d", kv[i].key);
		int vlen = snprintf((char *)val, 16, "v%08d", kv[i].val);
		/* Pseudo-random filler (deterministic per key/value): compresses
		 * about as badly as real payloads do. */
		uint32_t x = (uint32_t)kv[i].key * 2654435761u ^ (uint32_t)kv[i].val;
		for (int32_t j = 0; j < pad; j++) {
			x = x * 1103515245u + 12345u;
			val[vlen + j] = (uint8_t)('a' + (x >> 16) % 26);
		}
		assert_int_equal(batch_builder_add(&b, ts, kv[i].key == KEY_NULL ? NULL : key,
						   kv[i].key == KEY_NULL ? -1 : klen,
						   kv[i].val == VAL_NULL ? NULL : val,
						   kv[i].val == VAL_NULL ? -1 : vlen + pad, NULL, 0),
				 SL_OK);
	}
	size_t len = batch_builder_finish(&b);
	assert_true(len > 0);
	uint8_t *out = buf;
	if (codec != BATCH_COMPRESSION_NONE) {
		size_t clen;
		memcpy(cbuf, buf, BATCH_HEADER_BYTES);
		assert_int_equal(compress_encode(codec, buf + BATCH_HEADER_BYTES,
						 len - BATCH_HEADER_BYTES, cbuf + BATCH_HEADER_BYTES,
						 sizeof(cbuf) - BATCH_HEADER_BYTES, &clen),
				 SL_OK);
		len = BATCH_HEADER_BYTES + clen;
		be32_store(cbuf + BATCH_OFF_LENGTH, (uint32_t)(len - BATCH_LOG_OVERHEAD));
		be16_store(cbuf + BATCH_OFF_ATTRIBUTES, (uint16_t)codec);
		be32_store(cbuf + BATCH_OFF_CRC, crc32c(0, cbuf + BATCH_OFF_ATTRIBUTES,
							len - BATCH_OFF_ATTRIBUTES));
		out = cbuf;
	}
	assert_int_equal(iot_app_submit(log, &t, out, len, ts, NULL), SL_OK);
	iot_drive(&f->ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	int64_t base = t.a.base_offset;
	iot_app_free(&t);
	for (int i = 0; i < n; i++) {
		assert_true(m->n < MODEL_MAX);
		m->r[m->n++] = (struct mrec){ .off = base + i, .key = kv[i].key, .val = kv[i].val,
					      .max_ts = ts };
	}
	return base;
}

static int parse_num(const uint8_t *p, int32_t len)
{
	int v = 0;
	assert_true(len >= 2);
	for (int32_t i = 1; i < len && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/*
 * Reads the whole log with plog_read, walking every batch (CRC checked)
 * and record; fills `out` (offset, key, value). *codec_seen gets the OR of
 * 1 << codec over the non-empty batches.
 */
static void collect(struct plog *log, struct model *out, unsigned *codec_seen)
{
	static uint8_t buf[1 << 22], dec[1 << 22];
	int64_t off = plog_start_offset(log);

	out->n = 0;
	if (codec_seen != NULL)
		*codec_seen = 0;
	for (int guard = 0; off < plog_end_offset(log); guard++) {
		struct plog_slice s;
		struct batch_iter it;
		struct batch_header h;
		const uint8_t *b;

		assert_true(guard < 1000000);
		assert_int_equal(plog_read(log, off, 1 << 20, INT64_MAX, &s), SL_OK);
		assert_true(s.len > 0);
		assert_int_equal(pread(s.fd, buf, s.len, s.file_pos), (ssize_t)s.len);
		batch_iter_init(&it, buf, s.len, BATCH_CHECK_ALL);
		int64_t prev = -1;
		while (batch_iter_next(&it, &h, &b) == SL_OK) {
			struct batch_record_iter ri;
			struct batch_record r;
			assert_true(h.base_offset > prev);
			prev = batch_last_offset(&h);
			if (h.records_count == 0)
				continue;
			if (codec_seen != NULL)
				*codec_seen |= 1u << (h.attributes & BATCH_ATTR_COMPRESSION_MASK);
			assert_int_equal(compress_batch_record_iter_init(&ri, b, &h, dec, sizeof(dec)),
					 SL_OK);
			int32_t last_delta = -1;
			while (batch_record_next(&ri, &r) == SL_OK) {
				assert_true(out->n < MODEL_MAX);
				assert_true(r.offset_delta > last_delta);
				last_delta = r.offset_delta;
				out->r[out->n++] = (struct mrec){
					.off = h.base_offset + r.offset_delta,
					.key = r.key == NULL ? KEY_NULL : parse_num(r.key, r.key_len),
					.val = r.value == NULL ? VAL_NULL
							       : parse_num(r.value, r.value_len),
				};
			}
			assert_int_equal(last_delta, h.last_offset_delta);
		}
		assert_int_equal(it.pos, s.len);
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
}

/*
 * The model after one pass covering [clean, map_end) at now_ms with
 * delete.retention.ms ret (compact.h's keep rules).
 */
static void expect_pass(struct model *m, int64_t clean, int64_t map_end, int64_t now_ms,
			int64_t ret)
{
	static int64_t latest[100000];
	int k = 0;

	for (int i = 0; i < (int)SL_ARRAY_LEN(latest); i++)
		latest[i] = -1;
	for (int i = 0; i < m->n; i++)
		if (m->r[i].key != KEY_NULL && m->r[i].off >= clean && m->r[i].off < map_end)
			latest[m->r[i].key] = m->r[i].off;
	for (int i = 0; i < m->n; i++) {
		const struct mrec *r = &m->r[i];
		int keep = 1;
		if (r->off < map_end && r->key != KEY_NULL) {
			if (latest[r->key] >= 0 && r->off < latest[r->key])
				keep = 0;
			else if (r->val == VAL_NULL && r->max_ts + ret <= now_ms)
				keep = 0;
		}
		if (keep)
			m->r[k++] = *r;
	}
	m->n = k;
}

static void assert_log_is(struct plog *log, const struct model *want)
{
	static struct model got;

	collect(log, &got, NULL);
	assert_int_equal(got.n, want->n);
	for (int i = 0; i < want->n; i++) {
		assert_int_equal(got.r[i].off, want->r[i].off);
		assert_int_equal(got.r[i].key, want->r[i].key);
		assert_int_equal(got.r[i].val, want->r[i].val);
	}
	iot_verify_log(log);
}

static struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	return m;
}

static void cfg_small(struct compact_config *cc, int64_t ret)
{
	compact_config_default(cc);
	cc->delete_retention_ms = ret;
}

/* Rounds of keys 0..nkeys-1 with value = round * 1000 + key; 3 records per batch. */
static void put_rounds(struct iot_log_fixture *f, struct plog *log, struct model *m, int rounds,
		       int nkeys, int64_t ts, enum batch_compression codec)
{
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < nkeys; k += 3) {
			struct kv kv[3];
			int n = 0;
			for (; n < 3 && k + n < nkeys; n++)
				kv[n] = (struct kv){ .key = k + n, .val = r * 1000 + k + n };
			put(f, log, m, kv, n, ts, codec, 20);
		}
}

static void test_compact_latest_per_key(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	struct compact_config cc;
	struct compact_stats st;
	struct compact_dirty dirty;
	struct plog *log;

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_compact_dirty(log, &dirty), SL_OK);
	assert_true(dirty.ratio == 0.0);
	put_rounds(f, log, m, 5, 10, 100, BATCH_COMPRESSION_NONE);
	struct kv nokey[2] = { { KEY_NULL, 7 }, { KEY_NULL, 8 } };
	put(f, log, m, nokey, 2, 100, BATCH_COMPRESSION_NONE, 0);
	put_rounds(f, log, m, 1, 10, 100, BATCH_COMPRESSION_NONE);
	uint32_t segs = plog_segment_count(log);
	int64_t end = plog_end_offset(log);
	int64_t size_before = plog_size_bytes(log);
	assert_true(segs > 4);
	assert_int_equal(plog_compact_dirty(log, &dirty), SL_OK);
	assert_true(dirty.ratio == 1.0 && dirty.dirty_bytes > 0 && dirty.clean_offset == 0);

	cfg_small(&cc, 1000);
	assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
	int64_t active_base = end;
	{
		struct plog_slice s;
		assert_int_equal(plog_read(log, end - 1, 100, INT64_MAX, &s), SL_OK);
		active_base = s.first_offset;  /* at most the active segment's base */
		plog_slice_release(&s);
	}
	assert_true(st.clean_offset_after <= active_base);
	assert_int_equal(st.clean_offset_before, 0);
	assert_false(st.more);
	assert_false(st.map_full);
	assert_true(st.segments_rewritten > 0);
	assert_true(st.records_removed > 0);
	assert_true(st.bytes_after < st.bytes_before);
	expect_pass(m, 0, st.clean_offset_after, 200, 1000);
	assert_log_is(log, m);
	/* Offsets, segment count and end offset are unchanged. */
	assert_int_equal(plog_segment_count(log), segs);
	assert_int_equal(plog_end_offset(log), end);
	assert_true(plog_size_bytes(log) < size_before);
	assert_int_equal(plog_compact_dirty(log, &dirty), SL_OK);
	assert_true(dirty.ratio == 0.0 && dirty.clean_offset == st.clean_offset_after);

	/* Nothing new: a second call does nothing. */
	assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
	assert_int_equal(st.segments_rewritten + st.segments_unchanged, 0);

	/* Close and reopen (trusted walk of the rewritten segments): same data. */
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(compact_recover(f->d.part, 0), SL_OK);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 300), SL_OK);
	assert_log_is(log, m);
	assert_int_equal(plog_end_offset(log), end);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
}

/* One record per key in [from, to), value 1; 3 per batch (filler that rolls segments). */
static void put_filler(struct iot_log_fixture *f, struct plog *log, struct model *m, int from,
		       int to, int64_t ts)
{
	for (int k = from; k < to; k += 3) {
		struct kv kv[3];
		int n = 0;
		for (; n < 3 && k + n < to; n++)
			kv[n] = (struct kv){ .key = k + n, .val = 1 };
		put(f, log, m, kv, n, ts, BATCH_COMPRESSION_NONE, 20);
	}
}

static void test_compact_tombstones(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	struct compact_config cc;
	struct compact_stats st;
	struct plog *log;

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, m, 3, 6, 100, BATCH_COMPRESSION_NONE);
	struct kv del[2] = { { 1, VAL_NULL }, { 4, VAL_NULL } };
	put(f, log, m, del, 2, 500, BATCH_COMPRESSION_NONE, 0);
	put_rounds(f, log, m, 2, 3, 600, BATCH_COMPRESSION_NONE);  /* key 1 written again */
	put_filler(f, log, m, 10, 40, 600);                        /* seals the tombstone */

	/* now = 1000, retention 1000: the tombstone (ts 500) stays. */
	cfg_small(&cc, 1000);
	assert_int_equal(plog_compact(log, 1000, &cc, &st), SL_OK);
	assert_int_equal(st.tombstones_removed, 0);
	int64_t end1 = st.clean_offset_after;
	expect_pass(m, 0, end1, 1000, 1000);
	assert_log_is(log, m);
	int tomb = 0;
	for (int i = 0; i < m->n; i++)
		tomb += m->r[i].val == VAL_NULL;
	assert_true(tomb >= 1);   /* key 4's tombstone is its latest record */

	/* More dirty data, then a pass at now = 1500 (500 + 1000 <= 1500): removed. */
	put_filler(f, log, m, 10, 70, 1400);
	assert_int_equal(plog_compact(log, 1500, &cc, &st), SL_OK);
	assert_int_equal(st.clean_offset_before, end1);
	assert_true(st.tombstones_removed >= 1);
	expect_pass(m, end1, st.clean_offset_after, 1500, 1000);
	for (int i = 0; i < m->n; i++)
		assert_true(m->r[i].off >= st.clean_offset_after || m->r[i].val != VAL_NULL);
	assert_log_is(log, m);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
}

static void test_compact_compressed(void **state)
{
	static const enum batch_compression codecs[] = {
		BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY, BATCH_COMPRESSION_LZ4,
		BATCH_COMPRESSION_ZSTD,
	};
	struct iot_log_fixture *f = *state;

	for (size_t c = 0; c < SL_ARRAY_LEN(codecs); c++) {
		struct model *m = model_new();
		struct compact_config cc;
		struct compact_stats st;
		struct plog *log;
		unsigned seen;
		char dir[IOT_PATH_MAX + 16];

		snprintf(dir, sizeof(dir), "%s/c%zu", f->d.base, c);
		f->cfg.segment_bytes = 1024;
		assert_int_equal(plog_open(&log, &f->ring, dir, &f->cfg, 0), SL_OK);
		put_rounds(f, log, m, 6, 9, 100, codecs[c]);
		put_rounds(f, log, m, 1, 9, 100, codecs[c]);
		cfg_small(&cc, 1000);
		assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
		assert_true(st.records_removed > 0);
		expect_pass(m, 0, st.clean_offset_after, 200, 1000);
		assert_log_is(log, m);
		static struct model got;
		collect(log, &got, &seen);
		assert_int_equal(seen, 1u << codecs[c]);   /* recompressed with the same codec */
		assert_int_equal(plog_close(log), SL_OK);
		free(m);
	}
}

static void test_compact_bounded_map(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	struct compact_config cc;
	struct compact_stats st;
	struct plog *log;
	int calls = 0, full = 0;

	f->cfg.segment_bytes = 2048;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, m, 3, 300, 100, BATCH_COMPRESSION_NONE);
	put_rounds(f, log, m, 1, 30, 100, BATCH_COMPRESSION_NONE);
	cfg_small(&cc, 1000);
	cc.map_bytes = COMPACT_MAP_BYTES_MIN;     /* 128 slots, 115 keys */
	do {
		assert_true(++calls < 100);
		assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
		full += st.map_full;
		assert_true(st.clean_offset_after > st.clean_offset_before);
		expect_pass(m, st.clean_offset_before, st.clean_offset_after, 200, 1000);
		assert_log_is(log, m);
	} while (st.more);
	assert_true(full > 0 && calls > 2);
	/* Converged: one record per key among the sealed ones. */
	static int count[1000];
	memset(count, 0, sizeof(count));
	for (int i = 0; i < m->n; i++)
		if (m->r[i].off < st.clean_offset_after)
			assert_int_equal(++count[m->r[i].key], 1);

	/* A byte budget also bounds a call and resumes. */
	put_rounds(f, log, m, 2, 300, 100, BATCH_COMPRESSION_NONE);
	put_rounds(f, log, m, 1, 30, 100, BATCH_COMPRESSION_NONE);
	compact_config_default(&cc);
	cc.delete_retention_ms = 1000;
	cc.max_dirty_bytes = 3000;
	calls = 0;
	do {
		assert_true(++calls < 200);
		assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
		assert_true(st.bytes_scanned <= 3000 || st.bytes_scanned < 600);
		expect_pass(m, st.clean_offset_before, st.clean_offset_after, 200, 1000);
		assert_log_is(log, m);
	} while (st.more);
	assert_true(calls > 2);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
}

/* Copies one file (whole) from dir a to dir b under a new name. */
static void copy_file(const char *from_dir, const char *from, const char *to_dir, const char *to)
{
	static uint8_t buf[1 << 22];
	char p[IOT_PATH_MAX + 160];
	snprintf(p, sizeof(p), "%s/%s", from_dir, from);
	size_t n = iot_read_file(p, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	snprintf(p, sizeof(p), "%s/%s", to_dir, to);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, n, fp), n);
	fclose(fp);
}

static void rm_file(const char *dir, const char *name)
{
	char p[IOT_PATH_MAX + 160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
}

static int has_file(const char *dir, const char *name)
{
	char p[IOT_PATH_MAX + 160];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return iot_exists(p);
}

/*
 * The crash images: the log before compaction (`copy`), the compacted log
 * (`part`); for the first segment, each state a kill -9 can leave. After
 * compact_recover + plog_open the log must read as the old or the new
 * data (never less), and as the new data once past the commit point.
 */
static void test_compact_crash(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *old = model_new(), *neu = model_new();
	struct compact_config cc;
	struct compact_stats st;
	struct plog *log;
	char img[IOT_PATH_MAX + 16];

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, old, 4, 6, 100, BATCH_COMPRESSION_NONE);
	put_rounds(f, log, old, 1, 6, 100, BATCH_COMPRESSION_NONE);
	assert_int_equal(plog_close(log), SL_OK);
	iot_copy_dir(f->d.part, f->d.copy);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	cfg_small(&cc, 1000);
	assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
	assert_true(st.segments_rewritten > 0);
	*neu = *old;
	expect_pass(neu, 0, st.clean_offset_after, 200, 1000);
	assert_int_equal(plog_close(log), SL_OK);

	/* The first segment (base 0) was rewritten: its files in both images. */
	char n_log[SEGMENT_NAME_BYTES], n_idx[SEGMENT_NAME_BYTES], n_tix[SEGMENT_NAME_BYTES];
	segment_file_name(n_log, 0, ".log");
	segment_file_name(n_idx, 0, ".index");
	segment_file_name(n_tix, 0, ".timeindex");
	char n_cleaned[64], n_swap[64];
	snprintf(n_cleaned, sizeof(n_cleaned), "%s.cleaned", n_log);
	snprintf(n_swap, sizeof(n_swap), "%s.swap", n_log);

	for (int step = 0; step < 5; step++) {
		snprintf(img, sizeof(img), "%s/img%d", f->d.base, step);
		iot_copy_dir(f->d.copy, img);
		/* A crash left the partition checkpoint unclean. */
		iot_set_checkpoint(img, 0, 0, 0);
		struct model *want = old;
		switch (step) {
		case 0:   /* .cleaned half written */
			copy_file(f->d.part, n_log, img, n_cleaned);
			{
				char p[IOT_PATH_MAX + 160];
				snprintf(p, sizeof(p), "%s/%s", img, n_cleaned);
				iot_truncate(p, iot_file_size(p) / 2);
			}
			break;
		case 1:   /* .cleaned written and synced, not renamed */
			copy_file(f->d.part, n_log, img, n_cleaned);
			break;
		case 2:   /* renamed to .swap (commit point) */
			copy_file(f->d.part, n_log, img, n_swap);
			want = neu;
			break;
		case 3:   /* old indexes unlinked */
			copy_file(f->d.part, n_log, img, n_swap);
			rm_file(img, n_idx);
			rm_file(img, n_tix);
			want = neu;
			break;
		default:  /* renamed over the .log, indexes not rebuilt yet */
			copy_file(f->d.part, n_log, img, n_log);
			rm_file(img, n_idx);
			rm_file(img, n_tix);
			want = neu;
			break;
		}
		assert_int_equal(compact_recover(img, 0), SL_OK);
		assert_false(has_file(img, n_cleaned));
		assert_false(has_file(img, n_swap));
		assert_int_equal(plog_open(&log, &f->ring, img, &f->cfg, 0), SL_OK);
		/* Segment 0 as `want` says; the others are still the old data. */
		static struct model got;
		collect(log, &got, NULL);
		int64_t seg1 = -1;
		{
			struct plog_slice s;
			assert_int_equal(plog_read(log, 0, 1 << 20, INT64_MAX, &s), SL_OK);
			seg1 = s.last_offset + 1;
			plog_slice_release(&s);
		}
		int gi = 0;
		for (int i = 0; i < want->n && want->r[i].off < seg1; i++, gi++) {
			assert_true(gi < got.n);
			assert_int_equal(got.r[gi].off, want->r[i].off);
			assert_int_equal(got.r[gi].val, want->r[i].val);
		}
		for (int i = 0; i < old->n; i++) {
			if (old->r[i].off < seg1)
				continue;
			assert_true(gi < got.n);
			assert_int_equal(got.r[gi].off, old->r[i].off);
			assert_int_equal(got.r[gi].val, old->r[i].val);
			gi++;
		}
		assert_int_equal(gi, got.n);
		iot_verify_log(log);
		assert_int_equal(plog_close(log), SL_OK);
	}
	free(old);
	free(neu);
}

static void test_compact_slice_keeps_old_segment(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	struct compact_config cc;
	struct compact_stats st;
	struct plog *log;
	struct plog_slice s;
	static uint8_t before[1 << 16], after[1 << 16];

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, m, 4, 6, 100, BATCH_COMPRESSION_NONE);
	assert_int_equal(plog_read(log, 0, 1 << 16, INT64_MAX, &s), SL_OK);
	assert_true(s.len > 0 && s.len <= sizeof(before));
	assert_int_equal(pread(s.fd, before, s.len, s.file_pos), (ssize_t)s.len);
	cfg_small(&cc, 1000);
	assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
	assert_true(st.segments_rewritten > 0);
	/* The slice still reads the old bytes (old inode, fd held by the slice). */
	assert_int_equal(pread(s.fd, after, s.len, s.file_pos), (ssize_t)s.len);
	assert_memory_equal(before, after, s.len);
	struct batch_iter it;
	struct batch_header h;
	const uint8_t *b;
	batch_iter_init(&it, after, s.len, BATCH_CHECK_ALL);
	assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
	assert_int_equal(h.base_offset, 0);
	plog_slice_release(&s);
	expect_pass(m, 0, st.clean_offset_after, 200, 1000);
	assert_log_is(log, m);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Prints compaction throughput (MB/s of sealed input read, both passes
 * included) for uncompressed and zstd batches; asserts correctness only.
 * Values are ~1 KiB of pseudo-random letters (zstd shrinks them to ~60%).
 */
static void test_compact_throughput(void **state)
{
	static const enum batch_compression codecs[] = { BATCH_COMPRESSION_NONE,
							 BATCH_COMPRESSION_ZSTD };
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	const char *env = getenv("SL_COMPACT_BENCH_ROUNDS");
	int rounds = env != NULL ? atoi(env) : 8;

	if (rounds < 1 || rounds > 40)
		rounds = 8;
	for (size_t c = 0; c < SL_ARRAY_LEN(codecs); c++) {
		struct compact_config cc;
		struct compact_stats st;
		struct plog *log;
		char dir[IOT_PATH_MAX + 16];

		snprintf(dir, sizeof(dir), "%s/bench%zu", f->d.base, c);
		f->cfg.segment_bytes = 4 << 20;
		assert_int_equal(plog_open(&log, &f->ring, dir, &f->cfg, 0), SL_OK);
		/* rounds x 4000 keys x ~1 KiB values; 3 records per batch. */
		for (int r = 0; r < rounds; r++)
			for (int k = 0; k < 4000; k += 3) {
				struct kv kv[3];
				int n = 0;
				for (; n < 3 && k + n < 4000; n++)
					kv[n] = (struct kv){ .key = k + n, .val = r * 10000 + k + n };
				put(f, log, m, kv, n, 100, codecs[c], 1000);
				m->n = 0;   /* the model is not needed here */
			}
		cfg_small(&cc, 1000);
		double t0 = now_s();
		assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
		double dt = now_s() - t0;
		assert_true(st.segments_rewritten > 0 && st.records_removed > 0);
		printf("compaction (%s): %.1f MB in, %.1f MB out, %llu records, %.3f s: "
		       "%.1f MB/s in, %.0f records/s\n",
		       codecs[c] == BATCH_COMPRESSION_NONE ? "none" : "zstd",
		       (double)st.bytes_before / 1e6, (double)st.bytes_after / 1e6,
		       (unsigned long long)st.records_read, dt,
		       dt > 0 ? (double)st.bytes_before / 1e6 / dt : 0.0,
		       dt > 0 ? (double)st.records_read / dt : 0.0);
		iot_verify_log(log);
		assert_int_equal(plog_close(log), SL_OK);
	}
	free(m);
}

/* ---- incremental jobs (compact_job_*) ---- */

struct jwake {
	int woken;
};

static void jwake_fn(void *arg)
{
	((struct jwake *)arg)->woken++;
}

/* Whether dir holds a compaction temporary (.cleaned, .swap, checkpoint tmp). */
static int has_temp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, ".cleaned") != NULL || strstr(de->d_name, ".swap") != NULL ||
		    strcmp(de->d_name, COMPACT_CHECKPOINT_NAME ".tmp") == 0)
			found = 1;
	closedir(d);
	return found;
}

/*
 * got must lie between a full pass (neu) and no pass (old): every record of
 * neu is in got, every record of got is in old at the same offset, from
 * offset `from` on.
 */
static void assert_between(const struct model *got, const struct model *neu,
			   const struct model *old, int64_t from)
{
	int gi = 0, ni = 0;

	while (ni < neu->n && neu->r[ni].off < from)
		ni++;
	for (int oi = 0; oi < old->n; oi++) {
		const struct mrec *o = &old->r[oi];
		if (o->off < from)
			continue;
		int in_got = gi < got->n && got->r[gi].off == o->off;
		int in_neu = ni < neu->n && neu->r[ni].off == o->off;
		if (in_neu)
			assert_true(in_got);
		if (in_got) {
			assert_int_equal(got->r[gi].key, o->key);
			assert_int_equal(got->r[gi].val, o->val);
			gi++;
		}
		if (in_neu)
			ni++;
	}
	assert_int_equal(gi, got->n);   /* nothing that old did not have */
	assert_int_equal(ni, neu->n);
}

/* Drives the ring until *v >= target. */
static void iot_drive_until(struct ring *r, const int *v, int target)
{
	for (int n = 0; *v < target; n++) {
		assert_true(n < IOT_DRIVE_TURNS_MAX);
		assert_true(ring_wait(r, 1, 1000000000LL) >= 0);
	}
}

/* One step in ring mode; waits for the fsyncs when it returns WAITING. */
static enum compact_progress jstep(struct iot_log_fixture *f, struct compact_job *j,
				   struct jwake *w, uint64_t budget, int *waits)
{
	enum compact_progress prog;

	assert_int_equal(compact_job_step(j, budget, &prog), SL_OK);
	if (prog == COMPACT_WAITING) {
		int before = w->woken;
		iot_drive_until(&f->ring, &w->woken, before + 1);
		(*waits)++;
	}
	return prog;
}

static void job_cfg(struct compact_config *cc, struct iot_log_fixture *f, struct jwake *w)
{
	cfg_small(cc, 1000);
	cc->ring = &f->ring;
	cc->wake = jwake_fn;
	cc->wake_arg = w;
}

/*
 * A job in small slices with appends and reads between every two slices:
 * the result is a full pass over the segments sealed at its start, the
 * appends are intact after it, no temporary file is left.
 */
static void test_compact_job_interleaved(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new();
	struct compact_config cc;
	struct compact_job *j;
	struct jwake w = { 0 };
	struct plog *log;
	int steps = 0, waits = 0, appended = 0;
	enum compact_progress prog = COMPACT_RUNNING;

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, m, 5, 12, 100, BATCH_COMPRESSION_NONE);
	job_cfg(&cc, f, &w);
	assert_int_equal(compact_job_start(&j, log, 200, &cc), SL_OK);
	for (; prog != COMPACT_FINISHED; steps++) {
		assert_true(steps < 100000);
		prog = jstep(f, j, &w, 200, &waits);
		/* Produce and fetch between slices. */
		struct kv kv[1] = { { .key = appended % 12, .val = 50000 + appended } };
		put(f, log, m, kv, 1, 100, BATCH_COMPRESSION_NONE, 20);
		appended++;
		struct plog_slice s;
		assert_int_equal(plog_read(log, 0, 4096, INT64_MAX, &s), SL_OK);
		assert_true(s.len > 0);
		plog_slice_release(&s);
	}
	struct compact_stats st = *compact_job_stats(j);
	compact_job_free(j);
	assert_true(steps > 10 && waits > 3);
	assert_true(st.segments_rewritten > 0 && st.records_removed > 0);
	assert_false(has_temp(f->d.part));
	expect_pass(m, 0, st.clean_offset_after, 200, 1000);
	assert_log_is(log, m);
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 300), SL_OK);
	assert_log_is(log, m);
	struct compact_dirty dirty;
	assert_int_equal(plog_compact_dirty(log, &dirty), SL_OK);
	assert_int_equal(dirty.clean_offset, st.clean_offset_after);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
}

/*
 * Every step is a crash point and a cancel point: after k steps (k = 0 ..
 * the whole job) a copy of the directory is what kill -9 leaves (recovered
 * with compact_recover + plog_open: between no pass and a full pass, nothing
 * lost, offsets as before), then the job is cancelled — with its fsync still
 * in flight when the step was waiting — and the log closes cleanly with no
 * temporary file left.
 */
static void test_compact_job_crash_and_cancel_points(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *old = model_new(), *neu = model_new();
	static struct model got;
	struct compact_config cc;
	struct jwake w = { 0 };
	struct plog *log;
	char img[IOT_PATH_MAX + 32];
	int finished = 0;

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, old, 10, 6, 100, BATCH_COMPRESSION_NONE);
	int64_t end = plog_end_offset(log);
	assert_int_equal(plog_close(log), SL_OK);
	iot_copy_dir(f->d.part, f->d.copy);
	/* The full pass, for reference (blocking plog_compact on a copy). */
	{
		struct compact_stats st;
		snprintf(img, sizeof(img), "%s/ref", f->d.base);
		iot_copy_dir(f->d.copy, img);
		assert_int_equal(plog_open(&log, &f->ring, img, &f->cfg, 0), SL_OK);
		cfg_small(&cc, 1000);
		assert_int_equal(plog_compact(log, 200, &cc, &st), SL_OK);
		assert_true(st.segments_rewritten > 1);
		*neu = *old;
		expect_pass(neu, 0, st.clean_offset_after, 200, 1000);
		assert_int_equal(plog_close(log), SL_OK);
	}
	job_cfg(&cc, f, &w);
	for (int k = 0; !finished; k++) {
		struct compact_job *j;
		int waits = 0, inflight = 0;
		assert_true(k < 10000);
		snprintf(img, sizeof(img), "%s/w%d", f->d.base, k);
		iot_copy_dir(f->d.copy, img);
		assert_int_equal(plog_open(&log, &f->ring, img, &f->cfg, 0), SL_OK);
		assert_int_equal(compact_job_start(&j, log, 200, &cc), SL_OK);
		for (int i = 0; i < k && !finished; i++) {
			enum compact_progress prog;
			assert_int_equal(compact_job_step(j, 300, &prog), SL_OK);
			inflight = prog == COMPACT_WAITING;
			finished = prog == COMPACT_FINISHED;
			if (inflight && i + 1 < k) {
				int before = w.woken;
				iot_drive_until(&f->ring, &w.woken, before + 1);
				inflight = 0;
				waits++;
			}
		}
		/* The crash image. */
		char crash[IOT_PATH_MAX + 48];
		snprintf(crash, sizeof(crash), "%s/c%d", f->d.base, k);
		iot_copy_dir(img, crash);
		iot_set_checkpoint(crash, 0, 0, 0);
		/* Cancel (possibly with an fsync in flight) and close. */
		compact_job_free(j);
		assert_int_equal(plog_close(log), SL_OK);
		assert_int_equal(ring_drain(&f->ring), 0);
		assert_false(has_temp(img));
		assert_int_equal(plog_open(&log, &f->ring, img, &f->cfg, 0), SL_OK);
		collect(log, &got, NULL);
		assert_between(&got, neu, old, 0);
		assert_int_equal(plog_end_offset(log), end);
		assert_int_equal(plog_close(log), SL_OK);
		/* kill -9 at this point. */
		assert_int_equal(compact_recover(crash, 0), SL_OK);
		assert_false(has_temp(crash));
		assert_int_equal(plog_open(&log, &f->ring, crash, &f->cfg, 0), SL_OK);
		collect(log, &got, NULL);
		assert_between(&got, neu, old, 0);
		if (finished) {
			assert_int_equal(got.n, neu->n);
		}
		assert_int_equal(plog_end_offset(log), end);
		iot_verify_log(log);
		assert_int_equal(plog_close(log), SL_OK);
		(void)waits;
	}
	free(old);
	free(neu);
}

/*
 * DeleteRecords deleting the segments under a running job: the job goes on
 * (dropping those rewrites) and the rest is compacted; truncation below the
 * first unsealed segment makes the next step fail with SL_EAGAIN.
 */
static void test_compact_job_trim_and_truncate(void **state)
{
	struct iot_log_fixture *f = *state;
	struct model *m = model_new(), *neu = model_new();
	static struct model got;
	struct compact_config cc;
	struct compact_job *j;
	struct jwake w = { 0 };
	struct plog *log;
	enum compact_progress prog = COMPACT_RUNNING;
	int waits = 0;

	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	put_rounds(f, log, m, 5, 12, 100, BATCH_COMPRESSION_NONE);
	*neu = *m;
	job_cfg(&cc, f, &w);
	assert_int_equal(compact_job_start(&j, log, 200, &cc), SL_OK);
	/* Past pass 1 (reads everything) into the rewrites, then trim. */
	int64_t cut = -1;
	for (int n = 0; prog != COMPACT_FINISHED; n++) {
		assert_true(n < 100000);
		prog = jstep(f, j, &w, 300, &waits);
		if (cut < 0 && waits == 2) {
			struct plog_slice s;
			assert_int_equal(plog_read(log, 40, 1 << 16, INT64_MAX, &s), SL_OK);
			cut = s.first_offset + 1;   /* inside the segment holding 40 */
			plog_slice_release(&s);
			assert_int_equal(plog_delete_before(log, cut), SL_OK);
		}
	}
	assert_true(cut > 0);
	struct compact_stats st = *compact_job_stats(j);
	compact_job_free(j);
	assert_false(has_temp(f->d.part));
	expect_pass(neu, 0, st.clean_offset_after, 200, 1000);
	collect(log, &got, NULL);
	assert_true(got.n > 0 && got.r[0].off >= plog_start_offset(log) - 3);
	assert_between(&got, neu, m, got.r[0].off);
	iot_verify_log(log);

	/* Truncation under a job. */
	put_rounds(f, log, m, 3, 12, 100, BATCH_COMPRESSION_NONE);
	assert_int_equal(compact_job_start(&j, log, 300, &cc), SL_OK);
	assert_int_equal(compact_job_step(j, 300, &prog), SL_OK);
	assert_int_equal(plog_truncate_to(log, st.clean_offset_after + 2), SL_OK);
	assert_int_equal(compact_job_step(j, 300, &prog), SL_EAGAIN);
	compact_job_free(j);
	assert_int_equal(ring_drain(&f->ring), 0);
	assert_false(has_temp(f->d.part));
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	free(m);
	free(neu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_compact_latest_per_key),
		IOT_LOG_TEST(test_compact_tombstones),
		IOT_LOG_TEST(test_compact_compressed),
		IOT_LOG_TEST(test_compact_bounded_map),
		IOT_LOG_TEST(test_compact_crash),
		IOT_LOG_TEST(test_compact_slice_keeps_old_segment),
		IOT_LOG_TEST(test_compact_job_interleaved),
		IOT_LOG_TEST(test_compact_job_crash_and_cancel_points),
		IOT_LOG_TEST(test_compact_job_trim_and_truncate),
		IOT_LOG_TEST(test_compact_throughput),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
