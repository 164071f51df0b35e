/*
 * group.h — one consumer group under Kafka's classic group protocol: pure
 * logic, no I/O, time passed in by the caller (`now_ms`), answers handed
 * out through callbacks (struct group_ops). The coordinator (coord.c)
 * wraps it with timers, cross-shard messages and persistence.
 *
 * States and the function behind each transition:
 *
 *   EMPTY --group_join (first member)--> PREPARING_REBALANCE
 *   PREPARING_REBALANCE --every member rejoined (group_join/leave) or the
 *        rebalance deadline passed (group_tick)--> COMPLETING_REBALANCE
 *        (members left) or EMPTY (nobody left); generation + 1 either way
 *   COMPLETING_REBALANCE --leader's group_sync--> STABLE
 *   COMPLETING_REBALANCE / STABLE --join of a new member, a member with
 *        new metadata or the leader, group_leave, session expiry
 *        (group_tick)--> PREPARING_REBALANCE
 *   any --group_mark_dead (DeleteGroups)--> DEAD
 *   EMPTY / STABLE --group_restore (the coordinator's load)--> STABLE
 *        (stored members) or EMPTY; no callback runs
 *
 * First join of an EMPTY group waits group.initial.rebalance.delay.ms
 * (extended by that much for each new member, never beyond the rebalance
 * timeout) before completing, so a burst of consumers lands in one
 * generation.
 *
 * Members: dynamic members get an id "<client id>-<16 hex>" from the
 * coordinator; with require_known_member_id (JoinGroup v4+, KIP-394) the
 * first join answers MEMBER_ID_REQUIRED with that id and the id stays
 * "pending" until the member joins with it (or a session timeout passes).
 * Static members (group.instance.id, KIP-345) join directly; a rejoin
 * with the same instance id gets a fresh member id that replaces the old
 * one (FENCED_INSTANCE_ID for the old id), without a rebalance when the
 * group is STABLE and the metadata did not change.
 *
 * Invariants (group_check):
 *   1. member_count <= cfg->max_size and <= GROUP_MEMBERS_MAX.
 *   2. STABLE / COMPLETING_REBALANCE: member_count > 0, generation > 0,
 *      leader is a member, protocol_name set.
 *   3. EMPTY / DEAD: member_count == 0.
 *   4. A member has at most one held JoinGroup and one held SyncGroup;
 *      held SyncGroups only in COMPLETING_REBALANCE; held JoinGroups only
 *      in PREPARING_REBALANCE.
 *   5. Instance ids are unique among members.
 *
 * Every callback runs exactly once per held request, possibly inside the
 * call that made it (an immediate answer).
 *
 * Runs on: the shard that owns the group (coord.c); not thread-safe.
 */
#ifndef SL_COORD_GROUP_H
#define SL_COORD_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

/* Kafka error codes used by the group protocol. */
enum group_kerr {
	GROUP_KERR_NONE = 0,
	GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
	GROUP_KERR_COORDINATOR_NOT_AVAILABLE = 15,
	GROUP_KERR_NOT_COORDINATOR = 16,
	GROUP_KERR_ILLEGAL_GENERATION = 22,
	GROUP_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
	GROUP_KERR_INVALID_GROUP_ID = 24,
	GROUP_KERR_UNKNOWN_MEMBER_ID = 25,
	GROUP_KERR_INVALID_SESSION_TIMEOUT = 26,
	GROUP_KERR_REBALANCE_IN_PROGRESS = 27,
	GROUP_KERR_NON_EMPTY_GROUP = 68,
	GROUP_KERR_GROUP_ID_NOT_FOUND = 69,
	GROUP_KERR_MEMBER_ID_REQUIRED = 79,
	GROUP_KERR_GROUP_MAX_SIZE_REACHED = 81,
	GROUP_KERR_FENCED_INSTANCE_ID = 82,
};

enum group_state {
	GROUP_EMPTY = 0,
	GROUP_PREPARING_REBALANCE,
	GROUP_COMPLETING_REBALANCE,
	GROUP_STABLE,
	GROUP_DEAD,
};

#define GROUP_MEMBERS_MAX 4096u
#define GROUP_PROTOCOLS_MAX 64u
#define GROUP_PENDING_MAX 4096u
#define GROUP_ID_BYTES_MAX 255u      /* member / instance / protocol strings */
#define GROUP_META_BYTES_MAX (1u << 20)

struct group_config {
	int64_t initial_rebalance_delay_ms;   /* group.initial.rebalance.delay.ms */
	int32_t max_size;                     /* group.max.size */
	int32_t min_session_timeout_ms;       /* group.min.session.timeout.ms */
	int32_t max_session_timeout_ms;       /* group.max.session.timeout.ms */
};

/* Kafka's defaults (3000, INT32_MAX, 6000, 1800000). */
void group_config_default(struct group_config *c);

struct group_protocol {
	char *name;
	uint8_t *meta;
	int32_t meta_len;
};

struct group_member {
	char *member_id;
	char *instance_id;                /* NULL: dynamic member */
	char *client_id;
	char *client_host;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;
	struct group_protocol *protocols;
	uint32_t protocol_count;
	uint8_t *assignment;              /* from the leader's SyncGroup */
	int32_t assignment_len;
	int64_t heartbeat_deadline_ms;
	void *join_waiter;                /* held JoinGroup, NULL if none */
	void *sync_waiter;                /* held SyncGroup, NULL if none */
};

/* What a JoinGroup is answered with. Strings borrowed for the callback. */
struct group_join_result {
	int16_t error_code;
	int32_t generation;
	const char *protocol_type;
	const char *protocol_name;
	const char *leader_id;
	const char *member_id;
	bool is_leader;                   /* members[] of the group go to this one */
	bool skip_assignment;             /* static leader rejoined: keep the assignment */
};

struct group;
struct group_ops {
	/* A JoinGroup answered (waiter = what group_join got). */
	void (*join_done)(void *ctx, struct group *g, void *waiter,
			  const struct group_join_result *r);
	/* A SyncGroup answered; assignment borrowed for the call. */
	void (*sync_done)(void *ctx, struct group *g, void *waiter, int16_t error_code,
			  const uint8_t *assignment, int32_t assignment_len);
	/* The group reached STABLE, or EMPTY after a rebalance (may be NULL). */
	void (*changed)(void *ctx, struct group *g);
};

struct group {
	char *group_id;
	enum group_state state;
	int32_t generation;
	char *protocol_type;              /* NULL until the first member */
	char *protocol_name;              /* chosen at the end of a join phase */
	char *leader_id;                  /* points at a member's member_id */
	struct group_member **members;
	uint32_t member_count;
	uint32_t member_cap;
	/* KIP-394 pending member ids and when they lapse */
	char **pending_ids;
	int64_t *pending_deadline_ms;
	uint32_t pending_count;
	/* PREPARING_REBALANCE */
	int64_t rebalance_deadline_ms;
	int64_t initial_delay_end_ms;     /* > 0: in the initial delayed join */
	int64_t initial_delay_limit_ms;   /* the delay never extends past this */
	int64_t state_since_ms;           /* when the current state began */
	int64_t rebalance_start_ms;       /* when the last rebalance began */
	const struct group_config *cfg;
	const struct group_ops *ops;
	void *ops_ctx;
	uint64_t *id_seq;                 /* the coordinator's member-id counter */
};

/* Creates an EMPTY group (copies `id`). SL_OK or SL_ENOMEM. */
enum sl_err group_create(struct group **out, const char *id, size_t id_len,
			 const struct group_config *cfg, const struct group_ops *ops,
			 void *ops_ctx, uint64_t *id_seq);
/* Frees the group. Held requests must have been answered (group_mark_dead). */
void group_destroy(struct group *g);

/* A JoinGroup request, strings as (ptr, len); len < 0 means null. */
struct group_join_req {
	const char *member_id;
	int32_t member_id_len;
	const char *instance_id;
	int32_t instance_id_len;
	const char *client_id;
	int32_t client_id_len;
	const char *client_host;
	int32_t client_host_len;
	const char *protocol_type;
	int32_t protocol_type_len;
	int32_t session_timeout_ms;
	int32_t rebalance_timeout_ms;     /* -1: = session timeout (v0) */
	bool require_known_member_id;     /* JoinGroup v4+ */
	uint32_t protocol_count;
	const char *const *protocol_names;
	const int32_t *protocol_name_lens;
	const uint8_t *const *protocol_metas;
	const int32_t *protocol_meta_lens;
};

/*
 * Handles a JoinGroup; join_done runs exactly once for `waiter` (now or
 * when the join phase completes). SL_ENOMEM only when memory ran out
 * (join_done then ran with COORDINATOR_NOT_AVAILABLE).
 */
void group_join(struct group *g, int64_t now_ms, const struct group_join_req *jr, void *waiter);

/* SyncGroup; protocol type/name may be NULL (before v5). */
struct group_sync_req {
	const char *member_id;
	int32_t member_id_len;
	const char *instance_id;
	int32_t instance_id_len;
	int32_t generation;
	const char *protocol_type;
	int32_t protocol_type_len;
	const char *protocol_name;
	int32_t protocol_name_len;
	uint32_t assignment_count;        /* leader only */
	const char *const *assign_member_ids;
	const int32_t *assign_member_id_lens;
	const uint8_t *const *assignments;
	const int32_t *assignment_lens;
};
void group_sync(struct group *g, int64_t now_ms, const struct group_sync_req *sr, void *waiter);

/* Heartbeat: returns the Kafka error code. */
int16_t group_heartbeat(struct group *g, int64_t now_ms, const char *member_id, int32_t member_len,
			const char *instance_id, int32_t instance_len, int32_t generation);

/*
 * LeaveGroup of one member (by member id, or by instance id when given).
 * Returns the Kafka error code for that member.
 */
int16_t group_leave(struct group *g, int64_t now_ms, const char *member_id, int32_t member_len,
		    const char *instance_id, int32_t instance_len);

/*
 * Validates an OffsetCommit's member and generation (generation -1 with an
 * empty member id: a commit from outside the group protocol, allowed when
 * the group is EMPTY). Returns the Kafka error code.
 */
int16_t group_commit_check(struct group *g, int64_t now_ms, const char *member_id,
			   int32_t member_len, const char *instance_id, int32_t instance_len,
			   int32_t generation);

/* Expires sessions, pending ids and join phases whose time passed. */
void group_tick(struct group *g, int64_t now_ms);

/* The earliest time group_tick has something to do, or INT64_MAX. */
int64_t group_next_deadline(const struct group *g);

/*
 * DeleteGroups / expiry: answers held requests (COORDINATOR_NOT_AVAILABLE)
 * and moves to DEAD. Only EMPTY groups may be deleted (the caller checks).
 */
void group_mark_dead(struct group *g);

/* One member of a group being restored (group_restore); strings (ptr, len), len < 0 null. */
struct group_restore_member {
	const char *member_id;
	int32_t member_id_len;
	const char *instance_id;
	int32_t instance_id_len;
	const char *client_id;
	int32_t client_id_len;
	const char *client_host;
	int32_t client_host_len;
	int32_t rebalance_timeout_ms;
	int32_t session_timeout_ms;
	const uint8_t *subscription;      /* the metadata of the group's protocol */
	int32_t subscription_len;
	const uint8_t *assignment;
	int32_t assignment_len;
};

/* A group as stored in GroupMetadataValue. */
struct group_restore {
	const char *protocol_type;        /* len <= 0: none (a standalone group) */
	int32_t protocol_type_len;
	int32_t generation;
	const char *protocol_name;
	int32_t protocol_name_len;
	const char *leader_id;
	int32_t leader_id_len;
	uint32_t member_count;
	const struct group_restore_member *members;
};

/*
 * Replaces the group's state with `r` (the coordinator's load, Kafka's
 * GroupMetadataManager.loadGroup): STABLE with r's generation, protocol,
 * leader and members when r has members, else EMPTY with r's generation
 * and protocol type. Every member's session starts at now_ms (a member
 * that does not heartbeat within its session timeout is removed by
 * group_tick and a rebalance follows). Only for a group holding no request
 * (EMPTY or STABLE, as while loading). SL_OK; SL_EINVAL when r is not a
 * consistent group (no/unknown leader, no protocol, duplicate member or
 * instance ids, too many members, generation <= 0 with members): the
 * group is then EMPTY with r's generation; SL_ENOMEM likewise.
 */
enum sl_err group_restore(struct group *g, int64_t now_ms, const struct group_restore *r);

const char *group_state_name(enum group_state s);
/* Parses Kafka's state names ("Stable", case-insensitive); -1 if unknown. */
int group_state_parse(const char *name, size_t len);

struct group_member *group_member_find(const struct group *g, const char *id, int32_t len);

/* Checks invariants 1-5. */
bool group_check(const struct group *g);

#endif
