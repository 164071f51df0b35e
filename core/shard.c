/*
 * shard.c — see shard.h for the loop turn, the states and the invariants.
 *
 * Start-up rendezvous (threads only). shard_group_start and the shard
 * threads meet twice: after set-up (so that no shard sends to a ring or
 * eventfd that does not exist yet, and a failed set-up aborts everyone),
 * and after on_start (so that start can report its errors). The
 * rendezvous is a mutex and a condition variable used at start-up only;
 * nothing on the data path takes a lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shard.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Turns shard_group_join drives a local group before giving up. */
#define SHARD_LOCAL_JOIN_TURNS_MAX 1000000u
/* Consecutive failed ring waits after which a shard gives up. */
#define SHARD_ERROR_RUN_MAX 1000u

enum shard_group_mode {
	SHARD_GROUP_IDLE = 0,    /* created, not started */
	SHARD_GROUP_THREADS,     /* shard_group_start */
	SHARD_GROUP_LOCAL,       /* shard_group_start_local */
	SHARD_GROUP_JOINED,      /* everything released; only destroy left */
};

struct shard_group {
	struct shard *shards;
	uint32_t shard_count;
	struct shard_group_options opt;  /* defaults filled in */
	struct xmsg_grid grid;
	int *cpus;                       /* the process affinity mask */
	uint32_t cpu_count;
	pthread_t *threads;
	uint32_t thread_count;           /* threads actually created */
	enum shard_group_mode mode;
	/* start-up rendezvous (file comment) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t arrived;
	uint32_t released_phase;
	bool go;
	enum sl_err phase_err;
	/* shared by every shard and by stop */
	_Atomic uint32_t stop;
	_Atomic uint32_t active;         /* invariant 2 */
};

static int64_t shard_clock_monotonic(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t shard_now_ns(struct shard *sh)
{
	return sh->clock(sh->clock_ctx);
}

const char *shard_ring_flags_str(unsigned setup_flags)
{
	static const struct {
		unsigned flags;
		const char *name;
	} names[] = {
		{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		  "SINGLE_ISSUER|DEFER_TASKRUN" },
		{ IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
		  "SINGLE_ISSUER|COOP_TASKRUN" },
		{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
		{ 0, "plain" },
	};

	for (size_t i = 0; i < SL_ARRAY_LEN(names); i++)
		if (names[i].flags == setup_flags)
			return names[i].name;
	return "other";
}

uint32_t shard_group_count(const struct shard_group *g)
{
	return g->shard_count;
}

struct shard *shard_group_shard(struct shard_group *g, uint32_t id)
{
	SL_ASSERT(id < g->shard_count);
	return &g->shards[id];
}

const struct xmsg_grid *shard_group_grid(const struct shard_group *g)
{
	return &g->grid;
}

/* Bumps `peer`'s eventfd; its armed read completes and it runs a turn. */
static void shard_eventfd_signal(const struct shard *peer)
{
	uint64_t one = 1;
	ssize_t n = write(peer->wake_fd, &one, sizeof(one));

	/* Only EBADF (not set up) or a counter at 2^64-2 can fail: both moot. */
	(void)n;
}

/* Wakes every shard but `self` (NULL from a thread that is no shard). */
static void shard_group_wake_all(struct shard_group *g, const struct shard *self)
{
	for (uint32_t i = 0; i < g->shard_count; i++)
		if (&g->shards[i] != self)
			shard_eventfd_signal(&g->shards[i]);
}

void shard_wake_peer(struct shard *sh, struct shard *peer)
{
	SL_ASSERT(peer != sh && peer->group == sh->group);
	sh->wake_sent_count++;
	if (!sh->wake_msg_ring) {
		shard_eventfd_signal(peer);
		return;
	}
	/* Submitted by this turn's ring_wait; the peer's ring ignores the CQE. */
	struct io_uring_sqe *sqe = ring_get_sqe(&sh->ring);
	io_uring_prep_msg_ring(sqe, ring_fd(&peer->ring), 0, RING_UDATA_WAKE, 0);
	sqe->user_data = RING_UDATA_NONE;
	if (sh->wake_skip_cqe)
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

static void shard_wake_read_done(struct ring_op *op, int res, uint32_t cqe_flags);

/* Arms the read on the shard's eventfd. The buffer is the kernel's until done. */
static void shard_wake_arm(struct shard *sh)
{
	SL_ASSERT(!sh->wake_armed && sh->wake_fd >= 0);
	struct io_uring_sqe *sqe = ring_get_sqe(&sh->ring);
	io_uring_prep_read(sqe, sh->wake_fd, &sh->wake_buf, sizeof(sh->wake_buf), 0);
	sh->wake_op.done = shard_wake_read_done;
	ring_sqe_set_op(&sh->ring, sqe, &sh->wake_op);
	sh->wake_armed = true;
}

/*
 * The eventfd read completed: someone woke us (the loop turn that follows
 * does the rest). Re-armed unless the shard is finishing or the read was
 * cancelled; an unexpected error is logged and the read left unarmed
 * (MSG_RING wake-ups and the stop flag re-check still work without it).
 */
static void shard_wake_read_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct shard *sh = (struct shard *)((char *)op - offsetof(struct shard, wake_op));

	(void)cqe_flags;
	SL_ASSERT(sh->wake_armed);
	sh->wake_armed = false;
	if (res == (int)sizeof(sh->wake_buf)) {
		sh->wake_read_count++;
	} else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
		LOG_E(sh->id, "shard: eventfd read failed: %s",
		      res < 0 ? strerror(-res) : "short read");
		return;
	}
	if (sh->finishing || res == -ECANCELED)
		return;
	shard_wake_arm(sh);
	SL_ASSERT(sh->wake_armed);
}

/* Releases what shard_setup made. Any thread, once the shard is finished. */
static void shard_release(struct shard *sh)
{
	if (sh->ring_ready) {
		SL_ASSERT(!sh->wake_armed);
		ring_exit(&sh->ring);
		sh->ring_ready = false;
	}
	if (sh->wake_fd >= 0) {
		close(sh->wake_fd);
		sh->wake_fd = -1;
	}
	if (sh->timers.heap != NULL)
		timer_set_free(&sh->timers);
	if (sh->mem_ready) {
		mem_arena_destroy(&sh->mem);
		sh->mem_ready = false;
	}
}

/* Probes MSG_RING and CQE skipping on the shard's own ring. */
static void shard_wake_probe(struct shard *sh)
{
	struct io_uring_probe *probe;

	sh->wake_msg_ring = false;
	sh->wake_skip_cqe = (sh->ring.uring.features & IORING_FEAT_CQE_SKIP) != 0;
	if (sh->group->opt.wake == SHARD_WAKE_EVENTFD)
		return;
	probe = io_uring_get_probe_ring(&sh->ring.uring);
	if (probe == NULL)
		return;
	sh->wake_msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
	io_uring_free_probe(probe);
}

/*
 * Makes the shard's arena, timers, ring and eventfd, arms the eventfd read.
 * Runs on: the thread that will run the shard (SINGLE_ISSUER/DEFER_TASKRUN
 * bind the ring to it). SL_OK, SL_ENOMEM or SL_EIO; on failure nothing is
 * left allocated.
 */
static enum sl_err shard_setup(struct shard *sh)
{
	const struct shard_group_options *opt = &sh->group->opt;
	enum sl_err err;
	int rc;

	SL_ASSERT(sh->state == SHARD_NEW && !sh->ring_ready);
	err = mem_arena_create(&sh->mem, (int)sh->id);
	if (err != SL_OK)
		goto out;
	sh->mem_ready = true;
	err = timer_set_init(&sh->timers, opt->timer_count_max, sh);
	if (err != SL_OK)
		goto out;
	rc = ring_init(&sh->ring, opt->ring_entries, opt->ring_setup);
	if (rc < 0) {
		LOG_E(sh->id, "shard: io_uring setup failed: %s", strerror(-rc));
		err = SL_EIO;
		goto out;
	}
	sh->ring_ready = true;
	sh->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (sh->wake_fd < 0) {
		LOG_E(sh->id, "shard: eventfd failed: %s", strerror(errno));
		err = SL_EIO;
		goto out;
	}
	shard_wake_probe(sh);
	shard_wake_arm(sh);
	ring_submit(&sh->ring);
	sh->state = SHARD_RUNNING;
	LOG_I(sh->id, "shard %u up: cpu %d, io_uring %s (%u entries), wake-up %s",
	      sh->id, sh->cpu, shard_ring_flags_str(sh->ring.setup_flags), sh->ring.entries,
	      sh->wake_msg_ring ? "MSG_RING" : "eventfd");
out:
	if (err != SL_OK)
		shard_release(sh);
	SL_ASSERT(err != SL_OK || (sh->ring_ready && sh->wake_armed));
	return err;
}

/* Runs on_start once. Runs on: sh. */
static enum sl_err shard_start(struct shard *sh)
{
	const struct shard_group_options *opt = &sh->group->opt;
	enum sl_err err = SL_OK;

	SL_ASSERT(sh->state == SHARD_RUNNING && !sh->started);
	if (opt->on_start != NULL)
		err = opt->on_start(sh, opt->arg);
	sh->started = err == SL_OK;
	if (err != SL_OK)
		LOG_E(sh->id, "shard: start failed: %s", sl_err_str(err));
	return err;
}

/*
 * Cancels the eventfd read and waits for every operation of the ring,
 * submitting wake-ups still queued. Runs on: sh, after its last turn.
 */
static void shard_finish(struct shard *sh)
{
	SL_ASSERT(sh->ring_ready && !sh->finishing);
	sh->finishing = true;
	if (sh->wake_armed) {
		struct io_uring_sqe *sqe = ring_get_sqe(&sh->ring);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&sh->wake_op, 0);
	}
	ring_submit(&sh->ring);
	int rc = ring_drain(&sh->ring);
	if (rc < 0)
		LOG_E(sh->id, "shard: ring drain failed: %s", strerror(-rc));
	SL_ASSERT(sh->ring.inflight == 0 && !sh->wake_armed);
}

/* The shutdown state machine (shard.h), evaluated once per turn. */
static void shard_state_step(struct shard *sh)
{
	struct shard_group *g = sh->group;

	if (sh->state == SHARD_RUNNING && atomic_load_explicit(&g->stop, memory_order_acquire)) {
		sh->state = SHARD_STOPPING;
		if (sh->started && g->opt.on_stop != NULL)
			g->opt.on_stop(sh, g->opt.arg);
	}
	if (sh->state == SHARD_STOPPING && sh->xmsg.outstanding_total == 0) {
		sh->state = SHARD_QUIESCENT;
		sh->xmsg.closed = true;
		if (atomic_fetch_sub_explicit(&g->active, 1, memory_order_acq_rel) == 1)
			shard_group_wake_all(g, sh);
	}
	if (sh->state == SHARD_QUIESCENT &&
	    atomic_load_explicit(&g->active, memory_order_acquire) == 0) {
		/* Nothing is outstanding anywhere, so nothing can be in our rings. */
		SL_ASSERT(!xmsg_pending(sh) && sh->xmsg.deferred_count == 0);
		sh->state = SHARD_DONE;
	}
}

/* True when the shard must not block: called after sleeping=1 + fence. */
static bool shard_has_work(const struct shard *sh)
{
	struct shard_group *g = sh->group;

	if (xmsg_pending(sh))
		return true;
	if (sh->state == SHARD_RUNNING && atomic_load_explicit(&g->stop, memory_order_acquire))
		return true;
	return sh->state == SHARD_QUIESCENT &&
	       atomic_load_explicit(&g->active, memory_order_acquire) == 0;
}

/* How long this turn may wait: the next timer, capped by `cap_ns` (>= 0). */
static int64_t shard_wait_ns(struct shard *sh, int64_t cap_ns)
{
	int64_t deadline = timer_next_deadline(&sh->timers);
	int64_t wait_ns = -1;

	if (deadline != TIMER_DEADLINE_NONE) {
		int64_t now = shard_now_ns(sh);
		wait_ns = deadline > now ? deadline - now : 0;
	}
	if (cap_ns >= 0 && (wait_ns < 0 || cap_ns < wait_ns))
		wait_ns = cap_ns;
	return wait_ns;
}

enum sl_err shard_run_once(struct shard *sh, int64_t timeout_ns)
{
	SL_ASSERT(sh->ring_ready && !sh->finishing);
	if (sh->state == SHARD_DONE)
		return SL_ECLOSED;
	SL_ASSERT(sh->state >= SHARD_RUNNING);
	sh->turn_count++;

	timer_run_expired(&sh->timers, shard_now_ns(sh));
	xmsg_drain(sh);
	shard_state_step(sh);
	xmsg_flush_wakes(sh);
	if (sh->state == SHARD_DONE)
		return SL_ECLOSED;

	int64_t wait_ns = shard_wait_ns(sh, timeout_ns);
	if (wait_ns != 0) {
		/* Sleep check: see the wake-up protocol in xmsg.h. */
		atomic_store_explicit(&sh->sleeping, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (shard_has_work(sh))
			wait_ns = 0;
		else if (wait_ns < 0)
			sh->block_count++;
	}
	int rc = ring_wait(&sh->ring, 1, wait_ns);
	atomic_store_explicit(&sh->sleeping, 0, memory_order_relaxed);
	if (rc < 0) {
		sh->error_run++;
		SL_ASSERT(sh->error_run < SHARD_ERROR_RUN_MAX);
		LOG_E(sh->id, "shard: waiting on io_uring failed: %s", strerror(-rc));
		return SL_EIO;
	}
	sh->error_run = 0;
	return SL_OK;
}

/*
 * The shard's life on its thread. The loop has no fixed bound by design:
 * it runs until the group is stopped (shard_run_once returns SL_ECLOSED);
 * each turn is bounded.
 */
static void shard_loop(struct shard *sh)
{
	for (;;) {
		enum sl_err err = shard_run_once(sh, -1);
		if (err == SL_ECLOSED)
			break;
		if (err != SL_OK)
			shard_group_stop(sh->group);
	}
}

/* Shard thread: reports `err` for `phase`, then waits for main's verdict. */
static bool shard_group_arrive(struct shard_group *g, uint32_t phase, enum sl_err err)
{
	bool go;

	pthread_mutex_lock(&g->mu);
	if (err != SL_OK && g->phase_err == SL_OK)
		g->phase_err = err;
	g->arrived++;
	pthread_cond_broadcast(&g->cv);
	while (g->released_phase < phase)
		pthread_cond_wait(&g->cv, &g->mu);
	go = g->go;
	pthread_mutex_unlock(&g->mu);
	return go;
}

/*
 * Main: waits until `count` threads arrived at `phase`, then lets them go
 * on (unless `abort` or one of them failed). Returns the first error.
 */
static enum sl_err shard_group_gather(struct shard_group *g, uint32_t phase, uint32_t count,
				      bool abort)
{
	enum sl_err err;

	pthread_mutex_lock(&g->mu);
	while (g->arrived < count)
		pthread_cond_wait(&g->cv, &g->mu);
	err = g->phase_err;
	g->go = !abort && err == SL_OK;
	g->arrived = 0;
	g->released_phase = phase;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return err;
}

static void *shard_thread_main(void *arg)
{
	struct shard *sh = arg;
	struct shard_group *g = sh->group;
	enum sl_err err = shard_setup(sh);

	if (!shard_group_arrive(g, 1, err)) {
		if (err == SL_OK)
			shard_finish(sh);
		return NULL;
	}
	/* Phase 2 always goes on: a failed start is handled by a group stop. */
	shard_group_arrive(g, 2, shard_start(sh));
	shard_loop(sh);
	shard_finish(sh);
	return NULL;
}

/* Reads the CPUs this process may run on. */
static enum sl_err shard_cpus_read(struct shard_group *g)
{
	cpu_set_t set;
	uint32_t n = 0;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return SL_EIO;
	g->cpus = calloc((size_t)CPU_COUNT(&set) + 1, sizeof(*g->cpus));
	if (g->cpus == NULL)
		return SL_ENOMEM;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			g->cpus[n++] = cpu;
	g->cpu_count = n;
	SL_ASSERT(n == (uint32_t)CPU_COUNT(&set));
	return n > 0 ? SL_OK : SL_EIO;
}

/* Fills the zero ("default") options in. */
static void shard_options_defaults(struct shard_group_options *opt, uint32_t cpu_count)
{
	if (opt->shard_count == 0)
		opt->shard_count = cpu_count;
	if (opt->shard_count > 0 && opt->shard_count <= SHARD_COUNT_MAX && opt->xmsg_capacity == 0)
		opt->xmsg_capacity = xmsg_capacity_default(opt->shard_count);
	if (opt->xmsg_budget == 0)
		opt->xmsg_budget = XMSG_BUDGET_DEFAULT;
	if (opt->timer_count_max == 0)
		opt->timer_count_max = SHARD_TIMER_COUNT_DEFAULT;
	if (opt->ring_entries == 0)
		opt->ring_entries = SHARD_RING_ENTRIES_DEFAULT;
	if (opt->clock == NULL) {
		opt->clock = shard_clock_monotonic;
		opt->clock_ctx = NULL;
	}
}

enum sl_err shard_group_create(struct shard_group **out, const struct shard_group_options *opt)
{
	struct shard_group *g;
	enum sl_err err;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return SL_ENOMEM;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->opt = *opt;
	err = shard_cpus_read(g);
	if (err != SL_OK)
		goto out;
	shard_options_defaults(&g->opt, g->cpu_count);
	err = SL_EINVAL;
	if (g->opt.shard_count > SHARD_COUNT_MAX)
		goto out;
	err = xmsg_grid_create(&g->grid, g->opt.shard_count, g->opt.xmsg_capacity);
	if (err != SL_OK)
		goto out;
	err = SL_ENOMEM;
	g->shards = aligned_alloc(SL_CACHELINE, g->opt.shard_count * sizeof(struct shard));
	g->threads = calloc(g->opt.shard_count, sizeof(*g->threads));
	if (g->shards == NULL || g->threads == NULL)
		goto out;
	memset(g->shards, 0, g->opt.shard_count * sizeof(struct shard));
	g->shard_count = g->opt.shard_count;
	for (uint32_t i = 0; i < g->shard_count; i++) {
		struct shard *sh = &g->shards[i];
		sh->id = i;
		sh->cpu = -1;
		sh->group = g;
		sh->peers = g->shards;
		sh->grid = &g->grid;
		sh->state = SHARD_NEW;
		sh->wake_fd = -1;
		sh->clock = g->opt.clock;
		sh->clock_ctx = g->opt.clock_ctx;
		atomic_init(&sh->sleeping, 0);
		err = xmsg_port_init(&sh->xmsg, g->shard_count, g->opt.xmsg_capacity,
				     g->opt.xmsg_budget);
		if (err != SL_OK)
			goto out;
	}
	atomic_init(&g->stop, 0);
	atomic_init(&g->active, g->shard_count);
	g->mode = SHARD_GROUP_IDLE;
	*out = g;
	err = SL_OK;
out:
	if (err != SL_OK)
		shard_group_destroy(g);
	SL_ASSERT((err == SL_OK) == (*out != NULL));
	return err;
}

/* Joins the threads created so far and releases every shard. */
static void shard_group_reap(struct shard_group *g)
{
	for (uint32_t i = 0; i < g->thread_count; i++)
		pthread_join(g->threads[i], NULL);
	g->thread_count = 0;
	for (uint32_t i = 0; i < g->shard_count; i++)
		shard_release(&g->shards[i]);
	g->mode = SHARD_GROUP_JOINED;
}

/* Creates one pinned thread per shard, async signals blocked in them. */
static enum sl_err shard_group_spawn(struct shard_group *g)
{
	sigset_t block, saved;
	enum sl_err err = SL_OK;

	sigemptyset(&block);
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
				    SIGPIPE, SIGCHLD, SIGALRM };
	for (size_t i = 0; i < SL_ARRAY_LEN(sigs); i++)
		sigaddset(&block, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	for (uint32_t i = 0; i < g->shard_count; i++) {
		struct shard *sh = &g->shards[i];
		pthread_attr_t attr;
		cpu_set_t set;

		sh->cpu = g->cpus[i % g->cpu_count];
		CPU_ZERO(&set);
		CPU_SET(sh->cpu, &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		int rc = pthread_create(&g->threads[i], &attr, shard_thread_main, sh);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			LOG_E(LOG_NO_SHARD, "shard: cannot start thread %u: %s", i, strerror(rc));
			err = SL_EIO;
			break;
		}
		g->thread_count++;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return err;
}

enum sl_err shard_group_start(struct shard_group *g)
{
	enum sl_err err;

	SL_ASSERT(g->mode == SHARD_GROUP_IDLE);
	g->mode = SHARD_GROUP_THREADS;
	err = shard_group_spawn(g);
	enum sl_err setup = shard_group_gather(g, 1, g->thread_count, err != SL_OK);
	if (err == SL_OK)
		err = setup;
	if (err != SL_OK) {
		shard_group_reap(g);
		return err;
	}
	err = shard_group_gather(g, 2, g->thread_count, false);
	if (err != SL_OK) {
		shard_group_stop(g);
		shard_group_join(g);
	}
	SL_ASSERT(err != SL_OK || g->thread_count == g->shard_count);
	return err;
}

enum sl_err shard_group_start_local(struct shard_group *g)
{
	enum sl_err err = SL_OK;

	SL_ASSERT(g->mode == SHARD_GROUP_IDLE);
	g->mode = SHARD_GROUP_LOCAL;
	for (uint32_t i = 0; i < g->shard_count && err == SL_OK; i++)
		err = shard_setup(&g->shards[i]);
	if (err != SL_OK) {
		for (uint32_t i = 0; i < g->shard_count; i++)
			if (g->shards[i].ring_ready)
				shard_finish(&g->shards[i]);
		shard_group_reap(g);
		return err;
	}
	for (uint32_t i = 0; i < g->shard_count; i++) {
		enum sl_err e = shard_start(&g->shards[i]);
		if (err == SL_OK)
			err = e;
	}
	if (err != SL_OK) {
		shard_group_stop(g);
		if (shard_group_join(g) != SL_OK)
			SL_ASSERT(!"local group did not stop after a failed start");
	}
	return err;
}

void shard_group_stop(struct shard_group *g)
{
	if (atomic_exchange_explicit(&g->stop, 1, memory_order_acq_rel) == 0)
		shard_group_wake_all(g, NULL);
}

/* Local mode: drives every shard until all are done. */
static enum sl_err shard_group_drive_local(struct shard_group *g)
{
	for (uint32_t turn = 0; turn < SHARD_LOCAL_JOIN_TURNS_MAX; turn++) {
		bool all_done = true;
		for (uint32_t i = 0; i < g->shard_count; i++)
			if (shard_run_once(&g->shards[i], 0) != SL_ECLOSED)
				all_done = false;
		if (all_done)
			return SL_OK;
	}
	return SL_EAGAIN;
}

enum sl_err shard_group_join(struct shard_group *g)
{
	SL_ASSERT(g->mode == SHARD_GROUP_THREADS || g->mode == SHARD_GROUP_LOCAL);
	if (g->mode == SHARD_GROUP_LOCAL) {
		SL_ASSERT(atomic_load_explicit(&g->stop, memory_order_acquire) != 0);
		enum sl_err err = shard_group_drive_local(g);
		if (err != SL_OK)
			return err;
		for (uint32_t i = 0; i < g->shard_count; i++)
			shard_finish(&g->shards[i]);
	}
	shard_group_reap(g);
	SL_ASSERT(xmsg_grid_empty(&g->grid));
	return SL_OK;
}

void shard_group_destroy(struct shard_group *g)
{
	if (g == NULL)
		return;
	SL_ASSERT(g->mode == SHARD_GROUP_IDLE || g->mode == SHARD_GROUP_JOINED);
	if (g->shards != NULL)
		for (uint32_t i = 0; i < g->shard_count; i++)
			xmsg_port_free(&g->shards[i].xmsg);
	xmsg_grid_destroy(&g->grid);
	free(g->shards);
	free(g->threads);
	free(g->cpus);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}
