/*
 * compress.c — gzip (zlib), snappy (libsnappy, raw and xerial framing),
 * lz4 (liblz4 frame API) and zstd (libzstd) for record batch bodies. The
 * framings and invariants are in compress.h.
 *
 * Every decoder streams into the caller's buffer and stops when it is full,
 * so the only memory a hostile input can make us use is the caller's
 * out_cap plus each library's bounded working state. Streaming loops stop
 * as soon as a call makes no progress (no input consumed, no output made),
 * which bounds them by in_len + out_cap turns.
 */
#include "compress.h"

#include <limits.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define COMPRESS_GZIP_WINDOW_BITS (15 + 16)  /* 32 KiB window, gzip wrapper */
#define COMPRESS_GZIP_MEMBER_MIN 18          /* 10-byte header + 8-byte trailer */
#define COMPRESS_GZIP_OVERHEAD 32            /* gzip wrapper beyond compressBound */
#define COMPRESS_ZSTD_LEVEL 3
#define COMPRESS_XERIAL_VERSION 1

static const uint8_t compress_xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };

_Static_assert(COMPRESS_XERIAL_HEADER_BYTES == sizeof(compress_xerial_magic) + 8,
	       "xerial header: magic, version, compatible version");

/* ------------------------------------------------------------------ gzip */

/*
 * Inflates consecutive gzip members (zlib checks each member's CRC-32 and
 * size). Trailing bytes that are not a whole member are SL_ECORRUPT.
 */
static enum sl_err compress_gzip_decode(const uint8_t *in, size_t in_len, uint8_t *out,
					size_t out_cap, size_t *out_len)
{
	enum sl_err err = SL_ECORRUPT;
	z_stream zs;

	if (in_len < COMPRESS_GZIP_MEMBER_MIN || in_len > UINT_MAX)
		return SL_ECORRUPT;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, COMPRESS_GZIP_WINDOW_BITS) != Z_OK)
		return SL_ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	zs.next_out = out;
	zs.avail_out = (uInt)SL_MIN(out_cap, (size_t)UINT_MAX);
	/* Each turn consumes one member of >= COMPRESS_GZIP_MEMBER_MIN bytes. */
	for (size_t n = 0; n <= in_len / COMPRESS_GZIP_MEMBER_MIN; n++) {
		int rc = inflate(&zs, Z_FINISH);
		if (rc == Z_STREAM_END) {
			if (zs.avail_in == 0) {
				err = SL_OK;
				break;
			}
			if (inflateReset(&zs) != Z_OK)
				break;
			continue;
		}
		if (rc == Z_MEM_ERROR)
			err = SL_ENOMEM;
		else if ((rc == Z_BUF_ERROR || rc == Z_OK) && zs.avail_out == 0 &&
			 zs.avail_in > 0)
			err = SL_ENOMEM;  /* more output than out_cap */
		break;
	}
	*out_len = err == SL_OK ? (size_t)(zs.next_out - out) : 0;
	inflateEnd(&zs);
	return err;
}

static enum sl_err compress_gzip_encode(const uint8_t *in, size_t in_len, uint8_t *out,
					size_t out_cap, size_t *out_len)
{
	enum sl_err err = SL_ENOMEM;
	z_stream zs;

	if (in_len > UINT_MAX)
		return SL_EINVAL;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, COMPRESS_GZIP_WINDOW_BITS, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return SL_ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)in_len;
	zs.next_out = out;
	zs.avail_out = (uInt)SL_MIN(out_cap, (size_t)UINT_MAX);
	if (deflate(&zs, Z_FINISH) == Z_STREAM_END) {
		*out_len = (size_t)(zs.next_out - out);
		err = SL_OK;
	}
	deflateEnd(&zs);
	return err;
}

/* ---------------------------------------------------------------- snappy */

/* One raw snappy block into out (at most out_cap bytes). */
static enum sl_err compress_snappy_raw_decode(const uint8_t *in, size_t in_len, uint8_t *out,
					      size_t out_cap, size_t *out_len)
{
	size_t need = 0, got = out_cap;

	if (snappy_uncompressed_length((const char *)in, in_len, &need) != SNAPPY_OK)
		return SL_ECORRUPT;
	if (need > out_cap)
		return SL_ENOMEM;
	if (snappy_uncompress((const char *)in, in_len, (char *)out, &got) != SNAPPY_OK)
		return SL_ECORRUPT;
	SL_ASSERT(got == need && got <= out_cap);
	*out_len = got;
	return SL_OK;
}

/*
 * The xerial stream: header (magic, version, compatible version; the
 * versions are not checked, as snappy-java only ever wrote 1), then
 * [int32 length][raw block] until the input ends.
 */
static enum sl_err compress_xerial_decode(const uint8_t *in, size_t in_len, uint8_t *out,
					  size_t out_cap, size_t *out_len)
{
	size_t pos = COMPRESS_XERIAL_HEADER_BYTES, done = 0;

	SL_ASSERT(in_len >= COMPRESS_XERIAL_HEADER_BYTES);
	/* Each turn consumes at least 5 bytes (length + a non-empty block). */
	for (size_t n = 0; pos < in_len && n <= in_len / 5; n++) {
		size_t block_len, got = 0;
		enum sl_err err;
		if (in_len - pos < 4)
			return SL_ECORRUPT;
		block_len = be32_load(in + pos);
		pos += 4;
		if (block_len == 0 || block_len > in_len - pos)
			return SL_ECORRUPT;
		err = compress_snappy_raw_decode(in + pos, block_len, out + done, out_cap - done,
						 &got);
		if (err != SL_OK)
			return err;
		pos += block_len;
		done += got;
	}
	SL_ASSERT(pos == in_len && done <= out_cap);
	*out_len = done;
	return SL_OK;
}

static enum sl_err compress_snappy_decode(const uint8_t *in, size_t in_len, uint8_t *out,
					  size_t out_cap, size_t *out_len)
{
	if (in_len >= COMPRESS_XERIAL_HEADER_BYTES &&
	    memcmp(in, compress_xerial_magic, sizeof(compress_xerial_magic)) == 0)
		return compress_xerial_decode(in, in_len, out, out_cap, out_len);
	return compress_snappy_raw_decode(in, in_len, out, out_cap, out_len);
}

static size_t compress_snappy_bound(size_t in_len)
{
	size_t blocks = (in_len + COMPRESS_SNAPPY_BLOCK_BYTES - 1) / COMPRESS_SNAPPY_BLOCK_BYTES;
	return COMPRESS_XERIAL_HEADER_BYTES +
	       blocks * (4 + snappy_max_compressed_length(COMPRESS_SNAPPY_BLOCK_BYTES));
}

/* The xerial stream with COMPRESS_SNAPPY_BLOCK_BYTES blocks. */
static enum sl_err compress_snappy_encode(const uint8_t *in, size_t in_len, uint8_t *out,
					  size_t out_cap, size_t *out_len)
{
	size_t pos = 0, done = COMPRESS_XERIAL_HEADER_BYTES;

	if (out_cap < COMPRESS_XERIAL_HEADER_BYTES)
		return SL_ENOMEM;
	memcpy(out, compress_xerial_magic, sizeof(compress_xerial_magic));
	be32_store(out + 8, COMPRESS_XERIAL_VERSION);
	be32_store(out + 12, COMPRESS_XERIAL_VERSION);
	/* Each turn consumes one block of input. */
	while (pos < in_len) {
		size_t chunk = SL_MIN(in_len - pos, (size_t)COMPRESS_SNAPPY_BLOCK_BYTES);
		size_t room;
		if (out_cap - done < 4 + snappy_max_compressed_length(chunk))
			return SL_ENOMEM;
		room = out_cap - done - 4;
		if (snappy_compress((const char *)in + pos, chunk, (char *)out + done + 4, &room) !=
		    SNAPPY_OK)
			return SL_ENOMEM;
		SL_ASSERT(room <= INT32_MAX);
		be32_store(out + done, (uint32_t)room);
		done += 4 + room;
		pos += chunk;
	}
	SL_ASSERT(done <= out_cap);
	*out_len = done;
	return SL_OK;
}

/* ------------------------------------------------------------------- lz4 */

/* Consecutive LZ4 frames (block and content checksums checked by liblz4). */
static enum sl_err compress_lz4_decode(const uint8_t *in, size_t in_len, uint8_t *out,
				       size_t out_cap, size_t *out_len)
{
	enum sl_err err = SL_ECORRUPT;
	LZ4F_dctx *dctx = NULL;
	size_t src_pos = 0, dst_pos = 0, hint = 1;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return SL_ENOMEM;
	/* Each turn consumes input or makes output, else it stops. */
	for (size_t n = 0; n <= in_len + out_cap + 1; n++) {
		size_t src_size = in_len - src_pos, dst_size = out_cap - dst_pos;
		hint = LZ4F_decompress(dctx, out + dst_pos, &dst_size, in + src_pos, &src_size,
				       NULL);
		if (LZ4F_isError(hint))
			break;
		src_pos += src_size;
		dst_pos += dst_size;
		if (hint == 0 && src_pos == in_len) {
			err = SL_OK;  /* a frame ended with the input */
			break;
		}
		if (src_size == 0 && dst_size == 0) {
			/* No progress: input ended mid-frame, or output full. */
			err = src_pos == in_len ? SL_ECORRUPT : SL_ENOMEM;
			break;
		}
	}
	SL_ASSERT(dst_pos <= out_cap && src_pos <= in_len);
	*out_len = err == SL_OK ? dst_pos : 0;
	LZ4F_freeDecompressionContext(dctx);
	return err;
}

static void compress_lz4_prefs(LZ4F_preferences_t *prefs)
{
	memset(prefs, 0, sizeof(*prefs));
	prefs->frameInfo.blockSizeID = LZ4F_max64KB;
	prefs->frameInfo.blockMode = LZ4F_blockIndependent;
}

static enum sl_err compress_lz4_encode(const uint8_t *in, size_t in_len, uint8_t *out,
				       size_t out_cap, size_t *out_len)
{
	LZ4F_preferences_t prefs;
	size_t r;

	compress_lz4_prefs(&prefs);
	r = LZ4F_compressFrame(out, out_cap, in, in_len, &prefs);
	if (LZ4F_isError(r))
		return SL_ENOMEM;
	*out_len = r;
	return SL_OK;
}

/* ------------------------------------------------------------------ zstd */

/* Consecutive zstd frames, window at most 2^COMPRESS_ZSTD_WINDOW_LOG_MAX. */
static enum sl_err compress_zstd_decode(const uint8_t *in, size_t in_len, uint8_t *out,
					size_t out_cap, size_t *out_len)
{
	enum sl_err err = SL_ECORRUPT;
	ZSTD_inBuffer ib = { in, in_len, 0 };
	ZSTD_outBuffer ob = { out, out_cap, 0 };
	ZSTD_DCtx *dctx = ZSTD_createDCtx();

	if (dctx == NULL)
		return SL_ENOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax,
						COMPRESS_ZSTD_WINDOW_LOG_MAX))) {
		err = SL_ENOMEM;
		goto out;
	}
	if (in_len == 0)
		goto out;
	/* Each turn consumes input or makes output, else it stops. */
	for (size_t n = 0; n <= in_len + out_cap + 1; n++) {
		size_t in_before = ib.pos, out_before = ob.pos;
		size_t r = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(r)) {
			err = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SL_ENOMEM
										    : SL_ECORRUPT;
			break;
		}
		if (r == 0 && ib.pos == ib.size) {
			err = SL_OK;
			break;
		}
		if (ib.pos == in_before && ob.pos == out_before) {
			/* No progress: input ended mid-frame, or output full. */
			err = ib.pos == ib.size ? SL_ECORRUPT : SL_ENOMEM;
			break;
		}
	}
out:
	SL_ASSERT(ob.pos <= out_cap);
	*out_len = err == SL_OK ? ob.pos : 0;
	ZSTD_freeDCtx(dctx);
	return err;
}

static enum sl_err compress_zstd_encode(const uint8_t *in, size_t in_len, uint8_t *out,
					size_t out_cap, size_t *out_len)
{
	size_t r = ZSTD_compress(out, out_cap, in, in_len, COMPRESS_ZSTD_LEVEL);

	if (ZSTD_isError(r))
		return SL_ENOMEM;
	*out_len = r;
	return SL_OK;
}

/* ------------------------------------------------------------ public API */

enum sl_err compress_decode(enum batch_compression codec, const uint8_t *in, size_t in_len,
			    uint8_t *out, size_t out_cap, size_t *out_len)
{
	enum sl_err err;

	SL_ASSERT(in != NULL || in_len == 0);
	SL_ASSERT(out != NULL || out_cap == 0);
	SL_ASSERT(out_len != NULL);
	*out_len = 0;
	switch (codec) {
	case BATCH_COMPRESSION_GZIP:
		err = compress_gzip_decode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_SNAPPY:
		err = compress_snappy_decode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_LZ4:
		err = compress_lz4_decode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_ZSTD:
		err = compress_zstd_decode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_NONE:
	default:
		return SL_EINVAL;
	}
	if (err != SL_OK)
		*out_len = 0;
	SL_ASSERT(*out_len <= out_cap);
	return err;
}

size_t compress_bound(enum batch_compression codec, size_t in_len)
{
	LZ4F_preferences_t prefs;

	switch (codec) {
	case BATCH_COMPRESSION_GZIP:
		return (size_t)compressBound((uLong)in_len) + COMPRESS_GZIP_OVERHEAD;
	case BATCH_COMPRESSION_SNAPPY:
		return compress_snappy_bound(in_len);
	case BATCH_COMPRESSION_LZ4:
		compress_lz4_prefs(&prefs);
		return LZ4F_compressFrameBound(in_len, &prefs);
	case BATCH_COMPRESSION_ZSTD:
		return ZSTD_compressBound(in_len);
	case BATCH_COMPRESSION_NONE:
	default:
		return 0;
	}
}

enum sl_err compress_encode(enum batch_compression codec, const uint8_t *in, size_t in_len,
			    uint8_t *out, size_t out_cap, size_t *out_len)
{
	enum sl_err err;

	SL_ASSERT(in != NULL || in_len == 0);
	SL_ASSERT(out != NULL && out_len != NULL);
	*out_len = 0;
	switch (codec) {
	case BATCH_COMPRESSION_GZIP:
		err = compress_gzip_encode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_SNAPPY:
		err = compress_snappy_encode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_LZ4:
		err = compress_lz4_encode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_ZSTD:
		err = compress_zstd_encode(in, in_len, out, out_cap, out_len);
		break;
	case BATCH_COMPRESSION_NONE:
	default:
		return SL_EINVAL;
	}
	SL_ASSERT(err != SL_OK || (*out_len > 0 && *out_len <= out_cap));
	return err;
}

enum sl_err compress_batch_records(const uint8_t *batch, const struct batch_header *h,
				   uint8_t *out, size_t out_cap, const uint8_t **records,
				   size_t *records_len)
{
	enum batch_compression codec =
		(enum batch_compression)(h->attributes & BATCH_ATTR_COMPRESSION_MASK);
	size_t size = batch_size_bytes(h);
	enum sl_err err;

	SL_ASSERT(batch != NULL && records != NULL && records_len != NULL);
	SL_ASSERT(size >= BATCH_HEADER_BYTES);
	*records = NULL;
	*records_len = 0;
	if (codec == BATCH_COMPRESSION_NONE || size == BATCH_HEADER_BYTES) {
		/* Uncompressed, or the empty batch compaction leaves (no body). */
		*records = batch + BATCH_HEADER_BYTES;
		*records_len = size - BATCH_HEADER_BYTES;
		return SL_OK;
	}
	err = compress_decode(codec, batch + BATCH_HEADER_BYTES, size - BATCH_HEADER_BYTES, out,
			      out_cap, records_len);
	if (err == SL_EINVAL)
		err = SL_ECORRUPT;  /* codec bits 5-7: bad bytes, not a caller bug */
	if (err == SL_OK)
		*records = out;
	return err;
}

enum sl_err compress_batch_record_iter_init(struct batch_record_iter *it, const uint8_t *batch,
					    const struct batch_header *h, uint8_t *out,
					    size_t out_cap)
{
	const uint8_t *records = NULL;
	size_t len = 0;
	enum sl_err err;

	SL_ASSERT(it != NULL);
	err = compress_batch_records(batch, h, out, out_cap, &records, &len);
	if (err != SL_OK)
		return err;
	batch_record_iter_init(it, records, len, h->records_count);
	return SL_OK;
}
