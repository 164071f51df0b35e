/*
 * coord_log.h — records of __consumer_offsets (formats in coord_log.c):
 * encoding keys and values, building a batch, appending it to the
 * group's partition on the owner shard, and orphaning appends at stop.
 *
 * Runs on: the owner shard.
 */
#ifndef SL_COORD_LOG_H
#define SL_COORD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch_build.h"
#include "coord.h"

/* A bounded output buffer with a sticky overflow flag. */
struct coord_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool err;
};

void coord_key_offset(struct coord_buf *b, const char *group, int32_t glen, const char *topic,
		      int32_t tlen, int32_t partition);
void coord_value_offset(struct coord_buf *b, int64_t offset, int32_t leader_epoch, const char *meta,
			int32_t meta_len, int64_t ts_ms);
void coord_key_group(struct coord_buf *b, const char *group, int32_t glen);
/* Upper bound of coord_value_group's bytes for g. */
size_t coord_value_group_bytes(const struct group *g);
void coord_value_group(struct coord_buf *b, const struct group *g, int64_t ts_ms);

/* One uncompressed batch being built (heap buffer). */
struct coord_batch {
	struct batch_builder bb;
	uint8_t *mem;
};

enum sl_err coord_batch_init(struct coord_batch *cb, size_t bytes);
/* value NULL: a tombstone. SL_OK, SL_EAGAIN (full) or SL_EINVAL (bad key/value). */
enum sl_err coord_batch_add(struct coord_batch *cb, const struct coord_buf *key,
			    const struct coord_buf *value);
void coord_batch_free(struct coord_batch *cb);

/* After an append: err is KERR_NONE or the Kafka error. */
typedef void coord_append_done_fn(struct coord *c, struct coord_call *call, int16_t err);

/*
 * Finishes `cb` and appends it to __consumer_offsets partition p; takes
 * the batch memory. done(c, call, err) runs once the write completed (or
 * at once on failure). call may be NULL and done NULL (fire and forget).
 */
void coord_log_append(struct coord *c, int32_t p, struct coord_batch *cb, struct coord_call *call,
		      coord_append_done_fn *done);

/* Detaches in-flight appends from a coordinator being freed (coord_log.c). */
void coord_log_orphan(struct coord *c);

/* Wall-clock milliseconds (commit timestamps, expiry). */
int64_t coord_wall_ms(void);

#endif
