/*
 * pid_block.c — producer-id blocks from ZooKeeper (see pid_block.h).
 */
#include "pid_block.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "kerr.h"
#include "log.h"
#include "zk.h"

/* Shard 0's allocator (cl->pids), created on first use. */
struct pid_alloc {
	struct cluster *cl;
	int64_t next, end;               /* invariant 1; next > end: none left */
	bool busy;                       /* a ZooKeeper round in flight */
	uint32_t tries;                  /* attempts of the current round */
	struct pid_block taking;         /* the block being written */
	char json[PID_BLOCK_JSON_MAX];
	uint32_t head, count;            /* ring of waiting requests */
	struct xmsg wait[PID_WAIT_MAX];
};

enum sl_err pid_block_encode(const struct pid_block *pb, char *buf, size_t cap, size_t *len)
{
	SL_ASSERT(pb != NULL && buf != NULL && len != NULL);
	char tmp[PID_BLOCK_JSON_MAX];
	int n = snprintf(tmp, sizeof(tmp),
			 "{\"version\":1,\"broker\":%" PRId32 ",\"block_start\":\"%" PRId64
			 "\",\"block_end\":\"%" PRId64 "\"}",
			 pb->broker, pb->start, pb->end);

	if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n > cap)
		return SL_ERANGE;
	memcpy(buf, tmp, (size_t)n);
	*len = (size_t)n;
	return SL_OK;
}

/* Java's Long.parseLong for non-negative values: digits only, in range. */
static bool pid_parse_i64(const json_t *v, int64_t *out)
{
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	uint64_t x = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > (uint64_t)INT64_MAX)
		return false;
	*out = (int64_t)x;
	return true;
}

enum sl_err pid_block_decode(const char *data, size_t len, struct pid_block *out,
			     const char **reason)
{
	json_error_t jerr;
	enum sl_err err = SL_ECORRUPT;

	SL_ASSERT(out != NULL && reason != NULL);
	if (data == NULL || len == 0)
		return SL_ENOTFOUND;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		*reason = "not a JSON object";
		goto out;
	}
	const json_t *broker = json_object_get(root, "broker");
	if (!json_is_integer(broker) || json_integer_value(broker) < INT32_MIN ||
	    json_integer_value(broker) > INT32_MAX) {
		*reason = "broker is not an int32";
		goto out;
	}
	if (!pid_parse_i64(json_object_get(root, "block_start"), &out->start) ||
	    !pid_parse_i64(json_object_get(root, "block_end"), &out->end)) {
		*reason = "block_start / block_end are not non-negative decimal strings";
		goto out;
	}
	if (out->end < out->start) {
		*reason = "block_end below block_start";
		goto out;
	}
	out->broker = (int32_t)json_integer_value(broker);
	err = SL_OK;
out:
	json_decref(root);
	return err;
}

enum sl_err pid_block_next(const struct pid_block *prev, int32_t broker, struct pid_block *out)
{
	int64_t start = prev == NULL ? 0 : prev->end + 1;

	SL_ASSERT(out != NULL);
	if (prev != NULL && prev->end > INT64_MAX - 1 - PID_BLOCK_SIZE)
		return SL_ERANGE;
	out->broker = broker;
	out->start = start;
	out->end = start + PID_BLOCK_SIZE - 1;
	SL_ASSERT(out->end >= out->start);
	return SL_OK;
}

/* ---- the allocator (shard 0) ---- */

static void pid_answer(struct xmsg *m, int64_t id, int16_t kerr)
{
	m->pl.i64[BROKER_PID_ID] = kerr == KERR_NONE ? id : -1;
	m->pl.i64[BROKER_PID_EPOCH] = kerr == KERR_NONE ? 0 : -1;
	m->pl.i64[BROKER_PID_ERROR] = kerr;
}

/* Hands ids to waiting requests while the block lasts. */
static void pid_drain(struct pid_alloc *pa)
{
	struct shard *sh = pa->cl->bs0->sh;

	for (uint32_t guard = 0; guard < PID_WAIT_MAX && pa->count > 0 && pa->next <= pa->end;
	     guard++) {
		struct xmsg *m = &pa->wait[pa->head];
		pid_answer(m, pa->next++, KERR_NONE);
		pa->head = (pa->head + 1) % PID_WAIT_MAX;
		pa->count--;
		xmsg_reply(sh, m);
	}
}

/* Every waiting request gets `kerr` (a failed round, or stopping). */
static void pid_fail_all(struct pid_alloc *pa, int16_t kerr)
{
	struct shard *sh = pa->cl->bs0->sh;

	for (uint32_t guard = 0; guard < PID_WAIT_MAX && pa->count > 0; guard++) {
		struct xmsg *m = &pa->wait[pa->head];
		pid_answer(m, -1, kerr);
		pa->head = (pa->head + 1) % PID_WAIT_MAX;
		pa->count--;
		xmsg_reply(sh, m);
	}
	SL_ASSERT(pa->count == 0);
}

static enum sl_err pid_round_start(struct pid_alloc *pa);

/* The round ended (busy cleared): answer or fail the waiting requests. */
static void pid_round_end(struct pid_alloc *pa, bool ok, const char *why)
{
	pa->busy = false;
	if (!ok) {
		LOG_W(0, "InitProducerId: cannot reserve a producer-id block in %s: %s",
		      PID_BLOCK_PATH, why);
		pid_fail_all(pa, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	pid_drain(pa);
	pa->tries = 0;
	if (pa->count > 0 && pid_round_start(pa) != SL_OK)
		pid_fail_all(pa, KERR_COORDINATOR_NOT_AVAILABLE);
	SL_ASSERT(pa->count == 0 || pa->busy);
}

static void pid_retry(struct pid_alloc *pa, const char *why)
{
	pa->busy = false;
	if (pa->tries >= PID_ROUND_TRIES || pid_round_start(pa) != SL_OK)
		pid_round_end(pa, false, why);
}

static void pid_written(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct pid_alloc *pa = arg;

	(void)zk;
	SL_ASSERT(pa->busy);
	if (res->err == SL_ERANGE || res->err == SL_EEXIST) {
		pid_retry(pa, "version conflicts");   /* another broker took one */
		return;
	}
	if (res->err != SL_OK) {
		pid_round_end(pa, false, sl_err_str(res->err));
		return;
	}
	SL_ASSERT(pa->taking.start > pa->end || pa->next > pa->end);
	pa->next = pa->taking.start;
	pa->end = pa->taking.end;
	LOG_I(0, "InitProducerId: producer-id block %" PRId64 "..%" PRId64 " reserved",
	      pa->next, pa->end);
	pid_round_end(pa, true, NULL);
}

static void pid_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct pid_alloc *pa = arg;
	struct pid_block cur;
	const char *reason = NULL;
	enum sl_err err;
	size_t len = 0;
	bool have = false;
	char path[CLUSTER_PATH_MAX];

	SL_ASSERT(pa->busy);
	if (res->err != SL_OK && res->err != SL_ENOTFOUND) {
		pid_round_end(pa, false, sl_err_str(res->err));
		return;
	}
	if (res->err == SL_OK) {
		err = pid_block_decode(res->data, res->data_len, &cur, &reason);
		if (err == SL_ECORRUPT) {
			pid_round_end(pa, false, reason);
			return;
		}
		have = err == SL_OK;
	}
	if (pid_block_next(have ? &cur : NULL, pa->cl->b->node_id, &pa->taking) != SL_OK) {
		pid_round_end(pa, false, "producer ids exhausted");
		return;
	}
	err = pid_block_encode(&pa->taking, pa->json, sizeof(pa->json), &len);
	SL_ASSERT(err == SL_OK);
	cluster_path(pa->cl, path, "%s", PID_BLOCK_PATH);
	if (res->err == SL_OK)
		err = zk_set(zk, path, pa->json, (uint32_t)len, res->stat.version, pid_written, pa);
	else
		err = zk_create(zk, path, pa->json, (uint32_t)len, ZK_PERSISTENT, pid_written, pa);
	if (err != SL_OK)
		pid_round_end(pa, false, sl_err_str(err));
}

/* Starts reading the znode; busy while it runs. */
static enum sl_err pid_round_start(struct pid_alloc *pa)
{
	char path[CLUSTER_PATH_MAX];

	SL_ASSERT(!pa->busy);
	if (pa->cl->zk == NULL || pa->cl->stopping)
		return SL_ECLOSED;
	cluster_path(pa->cl, path, "%s", PID_BLOCK_PATH);
	pa->tries++;
	enum sl_err err = zk_get(pa->cl->zk, path, NULL, NULL, pid_got, pa);
	if (err == SL_OK)
		pa->busy = true;
	return err;
}

enum xmsg_fn_result pid_alloc_on_shard0(struct shard *sh, struct xmsg *m)
{
	struct cluster *cl = broker_shard_of(sh)->b->cluster;
	struct pid_alloc *pa;

	SL_ASSERT(sh->id == 0 && cl != NULL);
	if (cl->stopping || cl->bs0 == NULL) {
		pid_answer(m, -1, KERR_COORDINATOR_NOT_AVAILABLE);
		return XMSG_REPLY;
	}
	if (cl->pids == NULL) {
		cl->pids = calloc(1, sizeof(*cl->pids));
		if (cl->pids == NULL) {
			pid_answer(m, -1, KERR_UNKNOWN_SERVER_ERROR);
			return XMSG_REPLY;
		}
		cl->pids->cl = cl;
		cl->pids->next = 0;
		cl->pids->end = -1;
	}
	pa = cl->pids;
	if (pa->count == 0 && pa->next <= pa->end) {
		pid_answer(m, pa->next++, KERR_NONE);
		return XMSG_REPLY;
	}
	if (pa->count == PID_WAIT_MAX) {
		pid_answer(m, -1, KERR_COORDINATOR_NOT_AVAILABLE);
		return XMSG_REPLY;
	}
	if (!pa->busy) {
		pa->tries = 0;
		enum sl_err err = pid_round_start(pa);
		if (err != SL_OK) {
			LOG_W(0, "InitProducerId: cannot read %s: %s", PID_BLOCK_PATH,
			      sl_err_str(err));
			pid_answer(m, -1, KERR_COORDINATOR_NOT_AVAILABLE);
			return XMSG_REPLY;
		}
	}
	pa->wait[(pa->head + pa->count) % PID_WAIT_MAX] = *m;
	pa->count++;
	SL_ASSERT(pa->busy);
	return XMSG_DEFER;
}

void pid_alloc_stop(struct cluster *cl)
{
	if (cl == NULL || cl->pids == NULL)
		return;
	pid_fail_all(cl->pids, KERR_COORDINATOR_NOT_AVAILABLE);
}

void pid_alloc_free(struct cluster *cl)
{
	if (cl == NULL || cl->pids == NULL)
		return;
	SL_ASSERT(cl->pids->count == 0);
	free(cl->pids);
	cl->pids = NULL;
}
