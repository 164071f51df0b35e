/*
 * follower.c — the follower data path (see follower.h for the states and
 * invariants).
 *
 * Objects, all on one shard, all calloc'ed there and freed there:
 *   struct follower_shard  the shard's loops (partition_set.follower), made
 *                          on the first follower_start, freed with its
 *                          last loop.
 *   struct follower_loop   one source broker: its kclient, its followers,
 *                          the request in flight (`sent`: the followers it
 *                          names, in request order; a stopped follower's
 *                          slot is set to NULL), the response held while
 *                          its appends run (`resp_buf`, `apps`).
 *   struct follower        one partition (rp->follower).
 *
 * Re-entry: plog_append (under partition_append_replica) may dispatch
 * other completions, which may run a LeaderAndIsr or close a partition and
 * so call follower_stop on a follower being processed. So the response
 * walk re-reads `sent[i]` after every call that may dispatch, follower_stop
 * clears its slots in `sent` and `apps`, and a loop is freed only when no
 * request is in flight, no append is pending and no walk is running
 * (`busy`).
 */
#include "follower.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kclient.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"
#include "repl.h"

/* Headroom over replica.fetch.response.max.bytes for one oversized batch. */
#define FOLLOWER_RESPONSE_SLACK_BYTES (2u << 20)
#define FOLLOWER_BATCHES_MAX (1u << 24)

enum follower_state {
	FOLLOWER_TRUNCATE = 0,   /* ask the leader (ask_epoch), or the first step */
	FOLLOWER_FETCH,
	FOLLOWER_PAUSED,
};

struct follower_loop;

struct follower {
	struct repl_partition *rp;
	struct follower_loop *loop;
	struct follower *prev, *next;      /* loop->head */
	enum follower_state state;
	bool first;                        /* TRUNCATE: follower_truncation_first not run yet */
	int32_t ask_epoch;                 /* TRUNCATE: the epoch to ask about */
	uint32_t rounds;                   /* OffsetForLeaderEpoch answers this truncation */
	int64_t retry_at_ns;               /* not in a request before this */
	int32_t sent_idx;                  /* slot in loop->sent, -1: none */
	int32_t app_idx;                   /* slot in loop->apps, -1: none */
};

/* One append made from the held response. */
struct follower_app {
	struct partition_append pa;
	struct follower_loop *loop;
	struct follower *f;                /* NULL once stopped */
	int64_t leader_hw;
	int64_t leader_start;
};

enum follower_req {
	FOLLOWER_REQ_NONE = 0,
	FOLLOWER_REQ_OFLE,
	FOLLOWER_REQ_FETCH,
};

struct follower_shard {
	struct partition_set *ps;
	struct broker_shard *bs;
	struct follower_loop *loops;
	uint32_t loop_count;
};

struct follower_loop {
	struct follower_shard *fs;
	struct follower_loop *prev, *next;
	int32_t leader_id;
	struct kclient *kc;
	struct follower *head;
	uint32_t count;
	enum follower_req inflight;        /* NONE: no request out */
	int16_t version;                   /* of the request out */
	struct follower **sent;            /* [sent_count], request order */
	uint32_t sent_count;
	void *resp_buf;                    /* held until apps_pending is 0 */
	struct follower_app *apps;         /* [app_count] */
	uint32_t app_count;
	uint32_t apps_pending;
	struct timer wake;                 /* backoff / first request */
	bool busy;                         /* a response walk is running */
	bool closing;
};

/* ---- pure rules ---- */

enum follower_trunc follower_truncation_first(const struct lepoch *c, int64_t log_end,
					      int64_t hw, int64_t *offset, int32_t *epoch)
{
	SL_ASSERT(log_end >= 0);
	*epoch = lepoch_latest_epoch(c);
	if (*epoch == LEPOCH_UNDEFINED_EPOCH) {
		*offset = hw < log_end ? hw : log_end;
		return FOLLOWER_TRUNC_FETCH;
	}
	*offset = log_end;
	return FOLLOWER_TRUNC_ASK;
}

enum follower_trunc follower_truncation_answer(const struct lepoch *c, int64_t log_end,
					       int64_t hw, int16_t error_code,
					       int32_t leader_epoch, int64_t leader_end_offset,
					       uint32_t round, int64_t *offset, int32_t *epoch)
{
	struct lepoch left;  /* 4 KiB of stack: the cache as the cut leaves it */

	*offset = log_end;
	*epoch = LEPOCH_UNDEFINED_EPOCH;
	if (error_code == KERR_FENCED_LEADER_EPOCH)
		return FOLLOWER_TRUNC_PAUSE;
	if (error_code != KERR_NONE)
		return FOLLOWER_TRUNC_RETRY;
	enum lepoch_truncation t = lepoch_divergence(c, log_end, hw, leader_epoch,
						     leader_end_offset, offset);
	SL_ASSERT(*offset >= 0 && *offset <= log_end);
	if (t == LEPOCH_TRUNCATE_DONE)
		return FOLLOWER_TRUNC_FETCH;
	left = *c;
	lepoch_truncate_from_end(&left, *offset);
	*epoch = lepoch_latest_epoch(&left);
	if (*epoch == LEPOCH_UNDEFINED_EPOCH || round >= FOLLOWER_TRUNCATE_ROUNDS_MAX) {
		*offset = hw < *offset ? hw : *offset;
		*epoch = LEPOCH_UNDEFINED_EPOCH;
		return FOLLOWER_TRUNC_FETCH;
	}
	return FOLLOWER_TRUNC_ASK;
}

/* ---- helpers ---- */

static struct shard *follower_sh(const struct follower_loop *l)
{
	return l->fs->bs->sh;
}

static const struct config *follower_cfg(const struct follower_loop *l)
{
	return l->fs->bs->b->config;
}

static int64_t follower_backoff_ns(const struct follower_loop *l)
{
	return (int64_t)SL_MAX(follower_cfg(l)->replica_fetch_backoff_ms, 1) * 1000000;
}

/* Writes rp's leader-epoch-checkpoint (logged on failure). */
static void follower_epochs_write(struct repl_partition *rp)
{
	int dfd = open(partition_dir(rp->p), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum sl_err err = SL_EIO;

	if (dfd >= 0) {
		err = lepoch_write(&rp->epochs, dfd);
		close(dfd);
	}
	if (err != SL_OK)
		LOG_W(partition_set_of(rp->p)->sh->id, "partition %s: leader-epoch-checkpoint "
		      "not written", partition_dir(rp->p));
}

/* Cuts the partition and its epoch cache at `offset`. SL_OK, SL_EAGAIN, errors. */
static enum sl_err follower_truncate(struct follower *f, int64_t offset)
{
	struct repl_partition *rp = f->rp;
	enum sl_err err = partition_truncate_to(rp->p, offset);

	if (err == SL_ERANGE)
		err = partition_truncate_fully(rp->p, offset);
	if (err != SL_OK)
		return err;
	uint32_t before = rp->epochs.count;
	lepoch_truncate_from_end(&rp->epochs, offset);
	if (rp->epochs.count != before)
		follower_epochs_write(rp);
	SL_ASSERT(partition_log_end(rp->p) <= offset);
	return SL_OK;
}

static void follower_retry(struct follower_loop *l, struct follower *f)
{
	f->retry_at_ns = shard_now_ns(follower_sh(l)) + follower_backoff_ns(l);
}

/* Applies a truncation step's outcome to f. */
static void follower_step(struct follower_loop *l, struct follower *f, enum follower_trunc t,
			  int64_t offset, int32_t epoch)
{
	struct shard *sh = follower_sh(l);

	if (t == FOLLOWER_TRUNC_PAUSE) {
		LOG_I(sh->id, "partition %s: fenced by leader %d; waiting for LeaderAndIsr",
		      partition_dir(f->rp->p), l->leader_id);
		f->state = FOLLOWER_PAUSED;
		return;
	}
	if (t == FOLLOWER_TRUNC_RETRY) {
		follower_retry(l, f);
		return;
	}
	enum sl_err err = follower_truncate(f, offset);
	if (err != SL_OK) {
		if (err != SL_EAGAIN)
			LOG_W(sh->id, "partition %s: truncation to %lld failed: %s",
			      partition_dir(f->rp->p), (long long)offset, sl_err_str(err));
		follower_retry(l, f);
		return;
	}
	f->first = false;
	if (t == FOLLOWER_TRUNC_ASK) {
		f->ask_epoch = epoch;
		return;
	}
	LOG_D(sh->id, "partition %s: truncated to %lld, fetching from leader %d",
	      partition_dir(f->rp->p), (long long)offset, l->leader_id);
	f->state = FOLLOWER_FETCH;
	f->rounds = 0;
}

/* ---- loops ---- */

static void follower_loop_pump(struct follower_loop *l);

static void follower_wake_fire(struct timer *t, void *ctx)
{
	struct follower_loop *l = (struct follower_loop *)(void *)((char *)t -
								   offsetof(struct follower_loop, wake));
	(void)ctx;
	follower_loop_pump(l);
}

static void follower_wake_at(struct follower_loop *l, int64_t at_ns)
{
	struct shard *sh = follower_sh(l);

	if (timer_armed(&l->wake) && l->wake.deadline_ns <= at_ns)
		return;
	if (timer_rearm(&sh->timers, &l->wake, at_ns) != SL_OK)
		LOG_W(sh->id, "follower: timer table full; fetching from %d stalls", l->leader_id);
}

static void follower_response_free(struct follower_loop *l)
{
	SL_ASSERT(l->apps_pending == 0);
	for (uint32_t i = 0; i < l->app_count; i++)
		if (l->apps[i].f != NULL)
			l->apps[i].f->app_idx = -1;
	free(l->apps);
	l->apps = NULL;
	l->app_count = 0;
	if (l->resp_buf != NULL)
		kclient_response_free(follower_sh(l), l->resp_buf);
	l->resp_buf = NULL;
}

static void follower_sent_free(struct follower_loop *l)
{
	for (uint32_t i = 0; i < l->sent_count; i++)
		if (l->sent[i] != NULL)
			l->sent[i]->sent_idx = -1;
	free(l->sent);
	l->sent = NULL;
	l->sent_count = 0;
}

/* Frees l if it has no follower and nothing in flight (invariant 2). */
static void follower_loop_settle(struct follower_loop *l)
{
	struct follower_shard *fs = l->fs;

	if (l->count > 0 || l->busy)
		return;
	l->closing = true;
	if (l->kc != NULL) {
		struct kclient *kc = l->kc;
		l->kc = NULL;
		kclient_close(kc);  /* a request in flight completes now (SL_ECLOSED) */
	}
	if (l->inflight != FOLLOWER_REQ_NONE || l->apps_pending > 0)
		return;
	follower_response_free(l);
	follower_sent_free(l);
	timer_cancel(&follower_sh(l)->timers, &l->wake);
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		fs->loops = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	SL_ASSERT(fs->loop_count > 0);
	fs->loop_count--;
	free(l);
	if (fs->loop_count == 0) {
		fs->ps->follower = NULL;
		free(fs);
	}
}

static struct follower_loop *follower_loop_get(struct follower_shard *fs, int32_t leader_id)
{
	struct follower_loop *l;

	for (l = fs->loops; l != NULL; l = l->next)
		if (l->leader_id == leader_id && !l->closing)
			return l;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->fs = fs;
	l->leader_id = leader_id;
	timer_init(&l->wake, follower_wake_fire);
	l->next = fs->loops;
	if (fs->loops != NULL)
		fs->loops->prev = l;
	fs->loops = l;
	fs->loop_count++;
	return l;
}

/* The loop's client, opened on first use. NULL: leader unknown or failure. */
static struct kclient *follower_client(struct follower_loop *l)
{
	struct broker_shard *bs = l->fs->bs;
	const struct config *c = follower_cfg(l);

	if (l->kc != NULL)
		return l->kc;
	const struct catalog_broker *b = catalog_snap_broker(bs->snap, l->leader_id);
	if (b == NULL || b->port <= 0 || b->port > 65535)
		return NULL;
	struct kclient_config kcfg;
	memset(&kcfg, 0, sizeof(kcfg));
	kcfg.client_id = "sluice-replica-fetcher";
	kcfg.inflight_max = 2;
	kcfg.request_timeout_ms = (uint32_t)SL_MAX(c->replica_socket_timeout_ms, 1);
	kcfg.reconnect_backoff_ms = (uint32_t)SL_MAX(c->replica_fetch_backoff_ms, 1);
	kcfg.reconnect_backoff_max_ms = SL_MAX(kcfg.reconnect_backoff_ms, KCLIENT_BACKOFF_MAX_MS_DEFAULT);
	uint64_t need = (uint64_t)SL_MAX(c->replica_fetch_response_max_bytes, 0) +
			(uint64_t)SL_MAX(c->replica_fetch_max_bytes, 0) + FOLLOWER_RESPONSE_SLACK_BYTES;
	kcfg.response_bytes_max = need > KCLIENT_RESPONSE_BYTES_DEFAULT && need < (1u << 30)
					  ? (uint32_t)need : KCLIENT_RESPONSE_BYTES_DEFAULT;
	if (kclient_open(&l->kc, bs->sh, b->host, (uint16_t)b->port, &kcfg) != SL_OK) {
		l->kc = NULL;
		LOG_W(bs->sh->id, "follower: cannot reach broker %d at %s:%d", l->leader_id, b->host,
		      b->port);
	}
	return l->kc;
}

/* The newest version both this codec and a Sluice peer serve. */
static int16_t follower_version(int16_t key, int16_t codec_max)
{
	const struct dispatch_api *d = dispatch_find(key);
	return d != NULL && d->version_max < codec_max ? d->version_max : codec_max;
}

/* Followers of l eligible for a request of state `st` now, into l->sent. */
static uint32_t follower_collect(struct follower_loop *l, enum follower_state st, int64_t now)
{
	uint32_t n = 0;

	SL_ASSERT(l->sent == NULL);
	l->sent = calloc(l->count + 1, sizeof(*l->sent));
	if (l->sent == NULL)
		return 0;
	for (struct follower *f = l->head; f != NULL; f = f->next) {
		if (f->state != st || f->retry_at_ns > now || (st == FOLLOWER_TRUNCATE && f->first))
			continue;
		f->sent_idx = (int32_t)n;
		l->sent[n++] = f;
	}
	SL_ASSERT(n <= l->count);
	l->sent_count = n;
	if (n == 0)
		follower_sent_free(l);
	return n;
}

static void follower_ofle_done(struct kclient *kc, enum sl_err status, struct kread *body,
			       void *arg);
static void follower_fetch_done(struct kclient *kc, enum sl_err status, struct kread *body,
				void *arg);

/* Sends OffsetForLeaderEpoch for l->sent. */
static enum sl_err follower_send_ofle(struct follower_loop *l, struct kclient *kc)
{
	const struct catalog_snap *snap = l->fs->bs->snap;
	struct OffsetForLeaderEpochRequest req;
	uint32_t n = l->sent_count;
	enum sl_err err = SL_ENOMEM;

	kafka_init_offset_for_leader_epoch_request(&req);
	req.ReplicaId = l->fs->bs->b->node_id;
	/* One topic entry per partition: simple, and the leader answers in order. */
	req.Topics.items = calloc(n, sizeof(*req.Topics.items));
	struct OffsetForLeaderEpochRequest_OffsetForLeaderPartition *parts =
		calloc(n, sizeof(*parts));
	if (req.Topics.items == NULL || parts == NULL)
		goto out;
	req.Topics.count = (int32_t)n;
	for (uint32_t i = 0; i < n; i++) {
		struct follower *f = l->sent[i];
		struct OffsetForLeaderEpochRequest_OffsetForLeaderTopic *t = &req.Topics.items[i];
		const struct catalog_topic *topic = catalog_snap_find_id(
			snap, partition_topic_id(f->rp->p));
		kafka_init_offset_for_leader_epoch_request_offset_for_leader_topic(t);
		kafka_init_offset_for_leader_epoch_request_offset_for_leader_partition(&parts[i]);
		if (topic == NULL) {
			err = SL_ENOTFOUND;
			goto out;
		}
		t->Topic.ptr = (const uint8_t *)topic->name;
		t->Topic.len = (int32_t)topic->name_len;
		t->Partitions.count = 1;
		t->Partitions.items = &parts[i];
		parts[i].Partition = partition_index(f->rp->p);
		parts[i].CurrentLeaderEpoch = f->rp->leader_epoch;
		parts[i].LeaderEpoch = f->ask_epoch;
	}
	l->version = follower_version(KAFKA_API_OFFSET_FOR_LEADER_EPOCH,
				      KAFKA_OFFSET_FOR_LEADER_EPOCH_VERSION_MAX);
	err = kclient_send(kc, KAFKA_API_OFFSET_FOR_LEADER_EPOCH, l->version, &req,
			   follower_ofle_done, l);
out:
	free(parts);
	free(req.Topics.items);
	return err;
}

/* Sends a full Fetch (no session) for l->sent, grouped by topic. */
static enum sl_err follower_send_fetch(struct follower_loop *l, struct kclient *kc)
{
	const struct config *c = follower_cfg(l);
	struct FetchRequest req;
	uint32_t n = l->sent_count, topics = 0;
	enum sl_err err = SL_ENOMEM;

	kafka_init_fetch_request(&req);
	req.ReplicaId = l->fs->bs->b->node_id;
	req.ReplicaState.ReplicaId = l->fs->bs->b->node_id;
	req.ReplicaState.ReplicaEpoch = -1;
	req.MaxWaitMs = c->replica_fetch_wait_max_ms;
	req.MinBytes = c->replica_fetch_min_bytes;
	req.MaxBytes = c->replica_fetch_response_max_bytes;
	req.IsolationLevel = 0;
	req.SessionId = 0;
	req.SessionEpoch = -1;
	req.Topics.items = calloc(n, sizeof(*req.Topics.items));
	struct FetchRequest_FetchPartition *parts = calloc(n, sizeof(*parts));
	uint32_t *topic_of = calloc(n, sizeof(*topic_of));
	if (req.Topics.items == NULL || parts == NULL || topic_of == NULL)
		goto out;
	/* Topics in first-seen order; then each topic's partitions, contiguous. */
	for (uint32_t i = 0; i < n; i++) {
		const struct kuuid *id = partition_topic_id(l->sent[i]->rp->p);
		uint32_t t = 0;
		while (t < topics && memcmp(req.Topics.items[t].TopicId.b, id->b, sizeof(id->b)) != 0)
			t++;
		if (t == topics) {
			kafka_init_fetch_request_fetch_topic(&req.Topics.items[t]);
			req.Topics.items[t].TopicId = *id;
			topics++;
		}
		topic_of[i] = t;
		req.Topics.items[t].Partitions.count++;
	}
	uint32_t at = 0;
	struct follower **order = calloc(n + 1, sizeof(*order));
	if (order == NULL)
		goto out;
	for (uint32_t t = 0; t < topics; t++) {
		req.Topics.items[t].Partitions.items = &parts[at];
		for (uint32_t i = 0; i < n; i++) {
			if (topic_of[i] != t)
				continue;
			struct follower *f = l->sent[i];
			struct plog *log = partition_log(f->rp->p);
			struct FetchRequest_FetchPartition *fp = &parts[at];
			kafka_init_fetch_request_fetch_partition(fp);
			fp->Partition = partition_index(f->rp->p);
			fp->CurrentLeaderEpoch = f->rp->leader_epoch;
			fp->FetchOffset = partition_log_end(f->rp->p);
			fp->LastFetchedEpoch = -1;
			fp->LogStartOffset = log != NULL ? plog_start_offset(log) : -1;
			fp->PartitionMaxBytes = c->replica_fetch_max_bytes;
			f->sent_idx = (int32_t)at;
			order[at++] = f;
		}
	}
	SL_ASSERT(at == n);
	/* l->sent now in request order (the leader answers in that order). */
	free(l->sent);
	l->sent = order;
	req.Topics.count = (int32_t)topics;
	l->version = follower_version(KAFKA_API_FETCH, KAFKA_FETCH_VERSION_MAX);
	err = kclient_send(kc, KAFKA_API_FETCH, l->version, &req, follower_fetch_done, l);
out:
	free(topic_of);
	free(parts);
	free(req.Topics.items);
	return err;
}

/* Runs the first truncation step of every follower that needs it. */
static void follower_first_steps(struct follower_loop *l, int64_t now)
{
	for (struct follower *f = l->head; f != NULL; f = f->next) {
		if (f->state != FOLLOWER_TRUNCATE || !f->first || f->retry_at_ns > now)
			continue;
		int64_t offset;
		int32_t epoch;
		struct partition *p = f->rp->p;
		enum follower_trunc t = follower_truncation_first(&f->rp->epochs,
								  SL_MAX(partition_log_end(p), 0),
								  partition_hw(p), &offset, &epoch);
		f->rounds = 0;
		follower_step(l, f, t, offset, epoch);
	}
}

/*
 * Starts the next request if none is out and no response is held:
 * OffsetForLeaderEpoch for the partitions truncating, else a Fetch; with
 * nothing eligible, sleeps until the earliest retry.
 */
static void follower_loop_pump(struct follower_loop *l)
{
	struct shard *sh = follower_sh(l);

	if (l->inflight != FOLLOWER_REQ_NONE || l->apps_pending > 0 || l->busy || l->closing)
		return;
	if (l->count == 0) {
		follower_loop_settle(l);
		return;
	}
	int64_t now = shard_now_ns(sh);
	follower_first_steps(l, now);
	enum follower_req kind = FOLLOWER_REQ_OFLE;
	uint32_t n = follower_collect(l, FOLLOWER_TRUNCATE, now);
	if (n == 0) {
		kind = FOLLOWER_REQ_FETCH;
		n = follower_collect(l, FOLLOWER_FETCH, now);
	}
	if (n == 0) {
		int64_t next = INT64_MAX;
		for (struct follower *f = l->head; f != NULL; f = f->next)
			if (f->state != FOLLOWER_PAUSED && f->retry_at_ns > now)
				next = SL_MIN(next, f->retry_at_ns);
		if (next != INT64_MAX)
			follower_wake_at(l, next);
		return;
	}
	struct kclient *kc = follower_client(l);
	enum sl_err err = SL_ENOTFOUND;
	if (kc != NULL)
		err = kind == FOLLOWER_REQ_OFLE ? follower_send_ofle(l, kc) : follower_send_fetch(l, kc);
	if (err == SL_OK) {
		l->inflight = kind;
		return;
	}
	LOG_D(sh->id, "follower: request to broker %d not sent: %s", l->leader_id, sl_err_str(err));
	for (uint32_t i = 0; i < l->sent_count; i++)
		follower_retry(l, l->sent[i]);
	follower_sent_free(l);
	follower_wake_at(l, now + follower_backoff_ns(l));
}

/* A request ended without an answer to walk: every follower named retries. */
static void follower_request_failed(struct follower_loop *l, enum sl_err status)
{
	if (status != SL_ECLOSED)
		LOG_D(follower_sh(l)->id, "follower: request to broker %d failed: %s", l->leader_id,
		      sl_err_str(status));
	for (uint32_t i = 0; i < l->sent_count; i++)
		if (l->sent[i] != NULL)
			follower_retry(l, l->sent[i]);
}

/* After a walk: frees what the request held and goes on. */
static void follower_request_end(struct follower_loop *l)
{
	follower_sent_free(l);
	l->inflight = FOLLOWER_REQ_NONE;
	l->busy = false;
	if (l->apps_pending == 0)
		follower_response_free(l);
	if (l->closing)
		return;  /* the settle closing the client (our caller) or an append's done frees l */
	if (l->count == 0)
		follower_loop_settle(l);
	else
		follower_loop_pump(l);
}

/* ---- OffsetForLeaderEpoch answers ---- */

static const struct OffsetForLeaderEpochResponse_EpochEndOffset *
follower_ofle_find(const struct catalog_snap *snap, const struct OffsetForLeaderEpochResponse *r,
		   const struct follower *f)
{
	const struct catalog_topic *topic = catalog_snap_find_id(snap, partition_topic_id(f->rp->p));

	if (topic == NULL)
		return NULL;
	for (int32_t t = 0; t < r->Topics.count; t++) {
		const struct OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *tr =
			&r->Topics.items[t];
		if (tr->Topic.len != (int32_t)topic->name_len ||
		    memcmp(tr->Topic.ptr, topic->name, topic->name_len) != 0)
			continue;
		for (int32_t i = 0; i < tr->Partitions.count; i++)
			if (tr->Partitions.items[i].Partition == partition_index(f->rp->p))
				return &tr->Partitions.items[i];
	}
	return NULL;
}

static void follower_ofle_done(struct kclient *kc, enum sl_err status, struct kread *body,
			       void *arg)
{
	struct follower_loop *l = arg;
	struct OffsetForLeaderEpochResponse resp;
	struct karena arena;
	bool arena_ok = false;

	(void)kc;
	SL_ASSERT(l->inflight == FOLLOWER_REQ_OFLE);
	l->busy = true;
	if (status == SL_OK) {
		arena_ok = karena_init_heap(&arena, kread_left(body) * 4 + 4096) == SL_OK;
		if (!arena_ok || kafka_decode_offset_for_leader_epoch_response(
					 body, l->version, &resp, &arena) != SL_OK)
			status = SL_ECORRUPT;
	}
	if (status != SL_OK) {
		follower_request_failed(l, status);
		goto out;
	}
	/* Bounded by sent_count; sent[i] re-read each turn (file comment). */
	for (uint32_t i = 0; i < l->sent_count; i++) {
		struct follower *f = l->sent[i];
		if (f == NULL || f->state != FOLLOWER_TRUNCATE)
			continue;
		const struct OffsetForLeaderEpochResponse_EpochEndOffset *e =
			follower_ofle_find(l->fs->bs->snap, &resp, f);
		struct partition *p = f->rp->p;
		int64_t offset;
		int32_t epoch;
		f->rounds++;
		enum follower_trunc t = follower_truncation_answer(
			&f->rp->epochs, SL_MAX(partition_log_end(p), 0), partition_hw(p),
			e != NULL ? e->ErrorCode : KERR_UNKNOWN_TOPIC_OR_PARTITION,
			e != NULL ? e->LeaderEpoch : -1, e != NULL ? e->EndOffset : -1, f->rounds,
			&offset, &epoch);
		follower_step(l, f, t, offset, epoch);
	}
out:
	if (arena_ok)
		karena_destroy(&arena);
	follower_request_end(l);
}

/* ---- Fetch answers ---- */

static void follower_app_done(struct partition_append *a)
{
	struct follower_app *app = (struct follower_app *)(void *)((char *)a -
								   offsetof(struct follower_app, pa));
	struct follower_loop *l = app->loop;
	struct follower *f = app->f;

	SL_ASSERT(l->apps_pending > 0);
	l->apps_pending--;
	if (f != NULL) {
		struct partition *p = f->rp->p;
		if (a->error_code == KERR_NONE) {
			int64_t end = partition_log_end(p);
			partition_hw_set(p, SL_MIN(app->leader_hw, end));
			struct plog *log = partition_log(p);
			if (log != NULL && app->leader_start > plog_start_offset(log) &&
			    app->leader_start <= partition_hw(p))
				(void)plog_delete_before(log, app->leader_start);
		} else {
			follower_retry(l, f);
		}
	}
	if (l->apps_pending > 0 || l->busy)
		return;
	follower_response_free(l);
	if (l->closing || l->count == 0)
		follower_loop_settle(l);
	else
		follower_loop_pump(l);
}

/* Length of the whole batches at the start of `rec`; records their epochs. */
static size_t follower_batches(struct repl_partition *rp, const uint8_t *buf, size_t len,
			       int64_t *first_offset)
{
	struct batch_iter it;
	struct batch_header h;
	const uint8_t *b;
	bool epochs_changed = false;
	size_t whole = 0;

	*first_offset = -1;
	batch_iter_init(&it, buf, len, 0);
	for (uint32_t n = 0; n < FOLLOWER_BATCHES_MAX && batch_iter_next(&it, &h, &b) == SL_OK; n++) {
		if (*first_offset < 0)
			*first_offset = h.base_offset;
		whole = it.pos;
	}
	/* Epochs first (Kafka assigns them before the append); undone on refusal. */
	batch_iter_init(&it, buf, whole, 0);
	for (uint32_t n = 0; n < FOLLOWER_BATCHES_MAX && batch_iter_next(&it, &h, &b) == SL_OK; n++)
		if (lepoch_assign(&rp->epochs, h.partition_leader_epoch, h.base_offset) > 0)
			epochs_changed = true;
	if (epochs_changed)
		follower_epochs_write(rp);
	SL_ASSERT(whole <= len);
	return whole;
}

/* Undoes the epochs recorded for batches that were not appended. */
static void follower_epochs_undo(struct repl_partition *rp)
{
	uint32_t before = rp->epochs.count;
	int64_t end = partition_log_end(rp->p);

	if (end >= 0)
		lepoch_truncate_from_end(&rp->epochs, end);
	if (rp->epochs.count != before)
		follower_epochs_write(rp);
}

/* The leader answered OFFSET_OUT_OF_RANGE for f (Kafka's handleOutOfRange). */
static void follower_out_of_range(struct follower_loop *l, struct follower *f,
				  int64_t leader_start)
{
	struct partition *p = f->rp->p;
	int64_t end = partition_log_end(p);

	if (leader_start >= 0 && end < leader_start) {
		enum sl_err err = partition_truncate_fully(p, leader_start);
		if (err != SL_OK) {
			follower_retry(l, f);
			return;
		}
		LOG_I(follower_sh(l)->id, "partition %s: below leader %d's log start; restarted at "
		      "%lld", partition_dir(p), l->leader_id, (long long)leader_start);
		lepoch_init(&f->rp->epochs, f->rp->epochs.shard_id);
		follower_epochs_write(f->rp);
		return;
	}
	/* Past the leader's end: find the divergence again. */
	f->state = FOLLOWER_TRUNCATE;
	f->first = true;
	follower_retry(l, f);
}

/* One partition of a Fetch answer. */
static void follower_fetch_part(struct follower_loop *l, uint32_t i,
				const struct FetchResponse_PartitionData *pd)
{
	struct follower *f = l->sent[i];
	struct partition *p = f->rp->p;
	int16_t ec = pd->ErrorCode;

	if (ec == KERR_FENCED_LEADER_EPOCH) {
		follower_step(l, f, FOLLOWER_TRUNC_PAUSE, 0, 0);
		return;
	}
	if (ec == KERR_OFFSET_OUT_OF_RANGE) {
		follower_out_of_range(l, f, pd->LogStartOffset);
		return;
	}
	if (ec != KERR_NONE) {
		follower_retry(l, f);
		return;
	}
	int64_t first = -1;
	size_t len = pd->Records.len > 0
		? follower_batches(f->rp, pd->Records.ptr, (size_t)pd->Records.len, &first) : 0;
	if (len == 0) {
		partition_hw_set(p, SL_MIN(pd->HighWatermark, partition_log_end(p)));
		return;
	}
	struct follower_app *app = &l->apps[l->app_count];
	memset(app, 0, sizeof(*app));
	app->loop = l;
	app->f = f;
	app->leader_hw = pd->HighWatermark;
	app->leader_start = pd->LogStartOffset;
	app->pa.buf = (uint8_t *)(uintptr_t)pd->Records.ptr;  /* the held response: ours */
	app->pa.len = len;
	app->pa.done = follower_app_done;
	f->app_idx = (int32_t)l->app_count;
	l->app_count++;
	l->apps_pending++;
	int16_t kerr = partition_append_replica(p, &app->pa);
	if (kerr == KERR_NONE)
		return;
	/* Refused: done will not run. f may have been stopped meanwhile. */
	l->apps_pending--;
	app->f = NULL;
	f = l->sent[i];
	if (f == NULL)
		return;
	f->app_idx = -1;
	follower_epochs_undo(f->rp);
	if (kerr == KERR_OFFSET_OUT_OF_RANGE) {
		LOG_W(follower_sh(l)->id, "partition %s: leader %d sent offset %lld at log end %lld; "
		      "truncating again", partition_dir(p), l->leader_id, (long long)first,
		      (long long)partition_log_end(p));
		f->state = FOLLOWER_TRUNCATE;
		f->first = true;
	}
	follower_retry(l, f);
}

static bool follower_same(const struct follower *f, const struct kuuid *topic_id, int32_t index)
{
	return partition_index(f->rp->p) == index &&
	       memcmp(partition_topic_id(f->rp->p)->b, topic_id->b, sizeof(topic_id->b)) == 0;
}

/* The sent slot of (topic, index): the cursor's in the usual case. -1: none. */
static int32_t follower_fetch_slot(const struct follower_loop *l, uint32_t cursor,
				   const struct kuuid *topic_id, int32_t index)
{
	if (cursor < l->sent_count && l->sent[cursor] != NULL &&
	    follower_same(l->sent[cursor], topic_id, index))
		return (int32_t)cursor;
	for (uint32_t i = 0; i < l->sent_count; i++)
		if (l->sent[i] != NULL && follower_same(l->sent[i], topic_id, index))
			return (int32_t)i;
	return -1;
}

static void follower_fetch_done(struct kclient *kc, enum sl_err status, struct kread *body,
				void *arg)
{
	struct follower_loop *l = arg;
	struct FetchResponse resp;
	struct karena arena;
	bool arena_ok = false;

	SL_ASSERT(l->inflight == FOLLOWER_REQ_FETCH && l->apps_pending == 0 && l->apps == NULL);
	l->busy = true;
	if (status == SL_OK) {
		l->resp_buf = kclient_response_take(kc, body);
		arena_ok = karena_init_heap(&arena, kread_left(body) * 4 + 4096) == SL_OK;
		l->apps = calloc(l->sent_count + 1, sizeof(*l->apps));
		if (l->resp_buf == NULL || !arena_ok || l->apps == NULL ||
		    kafka_decode_fetch_response(body, l->version, &resp, &arena) != SL_OK ||
		    resp.ErrorCode != KERR_NONE)
			status = SL_ECORRUPT;
	}
	if (status != SL_OK) {
		follower_request_failed(l, status);
		goto out;
	}
	uint32_t cursor = 0;
	for (int32_t t = 0; t < resp.Responses.count; t++) {
		const struct FetchResponse_FetchableTopicResponse *tr = &resp.Responses.items[t];
		for (int32_t k = 0; k < tr->Partitions.count; k++, cursor++) {
			const struct FetchResponse_PartitionData *pd = &tr->Partitions.items[k];
			int32_t i = follower_fetch_slot(l, cursor, &tr->TopicId, pd->PartitionIndex);
			if (i < 0 || l->sent[i]->state != FOLLOWER_FETCH ||
			    l->sent[i]->app_idx >= 0 || l->app_count >= l->sent_count)
				continue;
			follower_fetch_part(l, (uint32_t)i, pd);
		}
	}
out:
	if (arena_ok)
		karena_destroy(&arena);
	follower_request_end(l);
}

/* ---- start / stop ---- */

static struct follower_shard *follower_shard_get(struct partition_set *ps)
{
	struct follower_shard *fs = ps->follower;

	if (fs != NULL)
		return fs;
	fs = calloc(1, sizeof(*fs));
	if (fs == NULL)
		return NULL;
	fs->ps = ps;
	fs->bs = broker_shard_of(ps->sh);
	ps->follower = fs;
	return fs;
}

enum sl_err follower_start(struct repl_partition *rp)
{
	struct partition_set *ps = partition_set_of(rp->p);

	SL_ASSERT(rp->leader_id >= 0);
	follower_stop(rp);
	struct follower_shard *fs = follower_shard_get(ps);
	struct follower_loop *l = fs != NULL ? follower_loop_get(fs, rp->leader_id) : NULL;
	struct follower *f = l != NULL ? calloc(1, sizeof(*f)) : NULL;
	if (f == NULL) {
		LOG_E(ps->sh->id, "partition %s: out of memory; not following %d",
		      partition_dir(rp->p), rp->leader_id);
		if (l != NULL)
			follower_loop_settle(l);
		else if (fs != NULL && fs->loop_count == 0) {
			ps->follower = NULL;
			free(fs);
		}
		return SL_ENOMEM;
	}
	f->rp = rp;
	f->loop = l;
	f->state = FOLLOWER_TRUNCATE;
	f->first = true;
	f->sent_idx = -1;
	f->app_idx = -1;
	f->next = l->head;
	if (l->head != NULL)
		l->head->prev = f;
	l->head = f;
	l->count++;
	rp->follower = f;
	/* Zero delay: the partitions of one LeaderAndIsr share the first request. */
	follower_wake_at(l, shard_now_ns(ps->sh));
	SL_ASSERT(f->loop->leader_id == rp->leader_id);
	return SL_OK;
}

void follower_stop(struct repl_partition *rp)
{
	struct follower *f = rp->follower;

	if (f == NULL)
		return;
	struct follower_loop *l = f->loop;
	if (f->sent_idx >= 0) {
		SL_ASSERT((uint32_t)f->sent_idx < l->sent_count && l->sent[f->sent_idx] == f);
		l->sent[f->sent_idx] = NULL;
	}
	if (f->app_idx >= 0) {
		SL_ASSERT((uint32_t)f->app_idx < l->app_count && l->apps[f->app_idx].f == f);
		l->apps[f->app_idx].f = NULL;
	}
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		l->head = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
	SL_ASSERT(l->count > 0);
	l->count--;
	rp->follower = NULL;
	free(f);
	if (l->count == 0)
		follower_loop_settle(l);
}

static void follower_ops_start(struct repl_partition *rp)
{
	(void)follower_start(rp);
}

const struct repl_follower_ops follower_repl_ops = {
	.start = follower_ops_start,
	.stop = follower_stop,
};
