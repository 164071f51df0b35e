/*
 * coord_internal.h — what coordination/'s files share beyond coord.h: the
 * group callbacks (answered by the JoinGroup / SyncGroup handlers), the
 * persistence of offsets and group metadata (coord_log.c), and the
 * handlers registered in net/dispatch by coord_register.
 *
 * Runs on: as tagged in coord.h.
 */
#ifndef SL_COORD_INTERNAL_H
#define SL_COORD_INTERNAL_H

#include "coord.h"

/* This shard's coordinator, made on first use; NULL once stopping. */
struct coord *coord_of(struct broker_shard *bs);

/* group_ops (owner): api_join_group.c, api_sync_group.c, coord_log.c. */
void coord_join_answer(void *ctx, struct group *g, void *waiter, const struct group_join_result *r);
void coord_sync_answer(void *ctx, struct group *g, void *waiter, int16_t error_code,
		       const uint8_t *assignment, int32_t assignment_len);
void coord_group_changed(void *ctx, struct group *g);

/*
 * Rebuilds the groups of __consumer_offsets partition `p` from its log
 * the first time the partition is used on this shard (coord_log.c).
 * SL_OK, or an error when the log cannot be read (answered
 * COORDINATOR_LOAD_IN_PROGRESS).
 */
enum sl_err coord_load(struct coord *c, int32_t p);

/*
 * Rebuilds partition p's groups from `log` (coord_load's work, callable
 * from tests): applies every record from the log's start, then drops
 * groups left with neither metadata nor offsets and arms the timers.
 * *records (may be NULL) gets the number of records read.
 */
struct plog;
/* __consumer_offsets partition p as this shard holds it, or NULL. */
struct partition *coord_partition(struct coord *c, int32_t p);
/* Grows c->loaded to hold partition p. SL_OK or SL_ENOMEM. */
enum sl_err coord_table_ensure(struct coord *c, int32_t p);
/*
 * Cluster mode: partition p stopped being led here. Its appends in flight
 * are answered NOT_COORDINATOR when they complete (coord_log.c).
 */
void coord_log_unload(struct coord *c, int32_t p);
/* A failed append's Kafka error as the coordinator answers it (Kafka's
 * mapping): NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE. */
int16_t coord_append_kerr(int16_t append_err);

enum sl_err coord_load_log(struct coord *c, int32_t p, struct plog *log, uint64_t *records);

/*
 * Offset expiry (offsets.retention.minutes, KIP-211) of an EMPTY group:
 * writes tombstones for the expired offsets; a group left without offsets
 * is removed (group tombstone, freed: returns true, cg is gone).
 */
bool coord_offsets_expire(struct coord_group *cg);
/* When coord_offsets_expire has work next (shard clock ms, rounded up to
 * offsets.retention.check.interval.ms), or INT64_MAX. */
int64_t coord_offsets_next_expiry(struct coord_group *cg);

/* The wall clock of `c` (c->wall_fn in tests), ms. */
int64_t coord_wall(struct coord *c);

/* Handlers (coordination/api_*.c). */
enum sl_err api_find_coordinator_handle(struct req *rq);
enum sl_err api_join_group_handle(struct req *rq);
enum sl_err api_sync_group_handle(struct req *rq);
enum sl_err api_heartbeat_handle(struct req *rq);
enum sl_err api_leave_group_handle(struct req *rq);
enum sl_err api_offset_commit_handle(struct req *rq);
enum sl_err api_offset_fetch_handle(struct req *rq);
enum sl_err api_list_groups_handle(struct req *rq);
enum sl_err api_describe_groups_handle(struct req *rq);
enum sl_err api_delete_groups_handle(struct req *rq);
enum sl_err api_offset_delete_handle(struct req *rq);

#endif
