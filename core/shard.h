/*
 * shard.h — the thread-per-core runtime: a group of N shards, each a thread
 * pinned to one CPU with its own io_uring, timers, memory arena and
 * cross-shard message port.
 *
 * The loop turn (shard_run_once), always in this order:
 *   1. run expired timers (injected clock);
 *   2. drain incoming cross-shard rings, bounded per ring (xmsg_drain);
 *   3. advance the shutdown state (below);
 *   4. post wake-ups for shards this one pushed messages to;
 *   5. submit and wait for completions (ring_wait) with the timeout of the
 *      next timer deadline — or forever when there is none — after the
 *      sleep check of xmsg.h; then dispatch the completions.
 * There is no busy polling: an idle shard blocks in io_uring_enter until a
 * completion, a timer, a cross-shard wake-up (MSG_RING or its eventfd) or
 * a stop.
 *
 * Wake-ups. Every shard keeps a read armed on its own eventfd; threads
 * that are not shards (main, signal handling, library threads) wake a shard
 * by writing to it. Shards wake each other with IORING_OP_MSG_RING when the
 * kernel has it (probed at set-up; SHARD_WAKE_EVENTFD forces the eventfd).
 *
 * Shard states and the function behind each transition:
 *
 *   NEW --shard_setup (ring, eventfd, arena, timers; then on_start)--> RUNNING
 *   RUNNING --stop flag seen in a turn; on_stop runs--> STOPPING
 *   STOPPING --own outstanding messages reach 0; xmsg_send closes--> QUIESCENT
 *   QUIESCENT --every shard quiescent (group `active` == 0)--> DONE
 *   DONE --shard_finish (cancel wake read, drain ring)--> released by join
 *
 * A quiescent shard still answers requests (others may be waiting on it),
 * it just sends no new ones. When the last shard turns quiescent nothing
 * is outstanding anywhere, so every ring is empty (asserted) and all exit.
 *
 * Invariants:
 *   1. A shard's ring, timers, arena and port are touched only by the
 *      thread running it (the shard's thread, or the single test thread of
 *      a local group). Other threads only write `sleeping`, the group's stop
 *      flag and the shard's eventfd.
 *   2. group->active == number of shards not yet QUIESCENT.
 *   3. on_stop runs once, on the shard, and only if on_start returned SL_OK.
 *
 * Two ways to run a group:
 *   - shard_group_start: one pinned thread per shard (production).
 *   - shard_group_start_local: no threads; the caller drives every shard
 *     with shard_run_once from one thread, in any order it likes
 *     (deterministic tests, simulation). shard_group_join then drives the
 *     shards until all are done.
 */
#ifndef SL_SHARD_H
#define SL_SHARD_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem.h"
#include "ring.h"
#include "sl.h"
#include "timer.h"
#include "xmsg.h"

#define SHARD_COUNT_MAX 256u
#define SHARD_RING_ENTRIES_DEFAULT 256u
#define SHARD_TIMER_COUNT_DEFAULT 65536u

struct shard;
struct shard_group;

/* Runs on the shard, once, before its first loop turn. */
typedef enum sl_err shard_start_fn(struct shard *sh, void *arg);
/* Runs on the shard, once, in the turn it first sees the stop request. */
typedef void shard_stop_fn(struct shard *sh, void *arg);
/* Returns nanoseconds of a monotonic clock. */
typedef int64_t shard_clock_fn(void *ctx);

enum shard_wake {
	SHARD_WAKE_BEST = 0,     /* MSG_RING when supported, else eventfd */
	SHARD_WAKE_EVENTFD,      /* always the eventfd (tests the fallback) */
};

enum shard_state {
	SHARD_NEW = 0,
	SHARD_RUNNING,
	SHARD_STOPPING,
	SHARD_QUIESCENT,
	SHARD_DONE,
};

/* Zero-initialise, then set what you need: zero means "default". */
struct shard_group_options {
	uint32_t shard_count;        /* 0: one per CPU in the affinity mask */
	uint32_t xmsg_capacity;      /* per ring, power of two; 0: default */
	uint32_t xmsg_budget;        /* per ring per turn; 0: default */
	uint32_t timer_count_max;    /* per shard; 0: default */
	uint32_t ring_entries;       /* SQ size; 0: default */
	enum ring_setup ring_setup;
	enum shard_wake wake;
	shard_start_fn *on_start;    /* optional */
	shard_stop_fn *on_stop;      /* optional */
	void *arg;                   /* for on_start / on_stop */
	shard_clock_fn *clock;       /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
};

struct shard {
	uint32_t id;
	int cpu;                     /* pinned CPU; -1 in a local group */
	struct shard_group *group;
	struct shard *peers;         /* every shard of the group, by id */
	struct xmsg_grid *grid;
	void *app;                   /* the application's per-shard state: set
	                              * by on_start, never touched by core */
	enum shard_state state;
	bool started;                /* on_start returned SL_OK */
	bool mem_ready;              /* arena created */
	bool ring_ready;             /* ring initialised */
	bool finishing;              /* shard_finish: do not re-arm the read */
	bool wake_msg_ring;          /* wake peers with MSG_RING */
	bool wake_skip_cqe;          /* IOSQE_CQE_SKIP_SUCCESS on those SQEs */
	bool wake_armed;             /* the eventfd read is in flight */
	struct ring ring;
	struct timer_set timers;
	struct mem_arena mem;
	struct xmsg_port xmsg;
	shard_clock_fn *clock;
	void *clock_ctx;
	int wake_fd;                 /* eventfd, -1 when closed */
	uint64_t wake_buf;           /* the kernel's until the read completes */
	struct ring_op wake_op;
	uint32_t error_run;          /* consecutive failed ring waits */
	/* statistics, read by tests after join */
	uint64_t turn_count;         /* loop turns */
	uint64_t block_count;        /* turns that blocked with no timeout */
	uint64_t wake_read_count;    /* eventfd reads completed */
	uint64_t wake_sent_count;    /* peers this shard woke */
	/* Written by other shards (xmsg.h wake-up protocol): own cache line. */
	alignas(SL_CACHELINE) _Atomic uint32_t sleeping;
};

/*
 * Allocates a group (shards, grid, ports) without starting anything.
 * `opt` is copied. Returns SL_OK; SL_EINVAL for a shard count above
 * SHARD_COUNT_MAX or a bad capacity; SL_EIO when the affinity mask cannot
 * be read; SL_ENOMEM. Runs on: any thread.
 */
enum sl_err shard_group_create(struct shard_group **out, const struct shard_group_options *opt);

/*
 * Starts one thread per shard, pinned round robin to the CPUs of the
 * process affinity mask, with async signals blocked (main keeps them).
 * Returns once every shard ran on_start: SL_OK; SL_EIO if a thread, ring or
 * eventfd could not be made; on_start's error. On failure every started
 * thread has already been stopped and joined: just destroy the group.
 */
enum sl_err shard_group_start(struct shard_group *g);

/*
 * Sets every shard up in the calling thread and runs every on_start, in id
 * order. The caller then drives shards with shard_run_once. Errors as
 * shard_group_start (the group is stopped and joined on failure).
 */
enum sl_err shard_group_start_local(struct shard_group *g);

/*
 * Asks every shard to finish (on_stop, quiesce, exit) and wakes them.
 * Idempotent; callable from any thread, and async-signal-safe.
 */
void shard_group_stop(struct shard_group *g);

/*
 * Threads: waits for every shard thread to exit. Local: stop must have been
 * requested; drives turns (timeout 0) until every shard is done, then
 * finishes them. Either way releases rings, eventfds, timers and arenas.
 * Returns SL_OK, or SL_EAGAIN if local shards did not finish within a
 * bounded number of turns (drive them more, then join again).
 */
enum sl_err shard_group_join(struct shard_group *g);

/* Frees a group that was never started or has been joined. */
void shard_group_destroy(struct shard_group *g);

uint32_t shard_group_count(const struct shard_group *g);
struct shard *shard_group_shard(struct shard_group *g, uint32_t id);
/* The group's grid (tests check it is empty after join). */
const struct xmsg_grid *shard_group_grid(const struct shard_group *g);

/*
 * One loop turn (header comment). `timeout_ns` caps the wait: 0 never
 * blocks, negative waits as long as the timers allow. Returns SL_OK;
 * SL_ECLOSED once the shard is DONE (nothing left but shard_group_join);
 * SL_EIO if waiting on the ring failed (logged). Runs on: sh.
 */
enum sl_err shard_run_once(struct shard *sh, int64_t timeout_ns);

/* The shard's clock, in nanoseconds. */
int64_t shard_now_ns(struct shard *sh);

/* True once the shard saw the stop request (STOPPING or later). */
static inline bool shard_stopping(const struct shard *sh)
{
	return sh->state >= SHARD_STOPPING;
}

static inline struct shard *shard_peer(struct shard *sh, uint32_t id)
{
	SL_ASSERT(id < sh->xmsg.shard_count);
	return &sh->peers[id];
}

/*
 * Wakes `peer` from `sh` (MSG_RING queued on sh's ring, or an eventfd
 * write). Used by xmsg_flush_wakes. Runs on: sh.
 */
void shard_wake_peer(struct shard *sh, struct shard *peer);

/* "SINGLE_ISSUER|DEFER_TASKRUN" and the like, for logs. */
const char *shard_ring_flags_str(unsigned setup_flags);

#endif
