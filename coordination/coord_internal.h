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

/* Offset expiry (offsets.retention.minutes) of an EMPTY group. */
void coord_offsets_expire(struct coord_group *cg);
int64_t coord_offsets_next_expiry(struct coord_group *cg);

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
