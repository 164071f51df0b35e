/*
 * api_init_producer_id.c — InitProducerId (key 22), versions 0-4.
 *
 *   api_init_producer_id_handle  (connection's shard) checks the request
 *                                and asks shard 0 for an id;
 *   init_producer_id_on_shard0   (shard 0) allocates it from the
 *                                process's producer-id allocator
 *                                (io/producer_ids.h, opened on first use
 *                                in the first log dir, kept in
 *                                struct broker until broker_destroy);
 *   init_producer_id_done        (connection's shard) answers.
 * In cluster mode (broker->zk_producer_id set) shard 0 runs that hook
 * instead: blocks of ids reserved in ZooKeeper's /latest_producer_id_block,
 * unique across the brokers (coordination/pid_block.h).
 *
 * Semantics (Kafka 3.9's TransactionCoordinator.handleInitProducerId and
 * KafkaApis.handleInitProducerIdRequest):
 *   - ProducerId and ProducerEpoch (v3+) must be both -1 or both set, else
 *     INVALID_REQUEST.
 *   - Null TransactionalId (idempotent producer): a fresh producer id with
 *     epoch 0, every time. That is also how Kafka answers the epoch bump of
 *     KIP-360 for a non-transactional producer: the client sends its current
 *     id and epoch and gets a new id (the old id's state then expires on the
 *     partitions), so the sequence numbers restart at 0 without ever
 *     colliding with the old ones.
 *   - Non-null TransactionalId: Sluice has no transaction coordinator (no
 *     FindCoordinator for transactions, no __transaction_state). Kafka
 *     answers COORDINATOR_NOT_AVAILABLE while its coordinator is not
 *     loaded, which every client retries until its timeout — a hang from
 *     the user's point of view. We answer TRANSACTIONAL_ID_AUTHORIZATION_
 *     FAILED instead: a fatal, non-retriable error in librdkafka and in the
 *     Java client, so a transactional producer fails at once and clearly.
 *   - The allocator cannot persist its next block (disk): UNKNOWN_SERVER_
 *     ERROR (logged on shard 0), the client may retry; its block file is
 *     corrupt: same, with an error line telling the operator what to do.
 */
#include <limits.h>
#include <string.h>

#include "broker.h"
#include "config.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"
#include "producer_ids.h"

/* pl.i64 slots of the message: out on shard 0's reply. */
#define IPI_PL_ID BROKER_PID_ID
#define IPI_PL_EPOCH BROKER_PID_EPOCH
#define IPI_PL_ERROR BROKER_PID_ERROR

/*
 * Opens the allocator on first use. SL_OK with b->producer_ids set, or the
 * producer_ids_open error (logged by it; retried by the next request).
 */
static enum sl_err init_producer_id_open(struct shard *sh, struct broker *b)
{
	char dir[PATH_MAX];
	enum sl_err err;

	if (b->producer_ids != NULL)
		return SL_OK;
	err = config_list_get(b->config->log_dirs, 0, dir, sizeof(dir));
	if (err != SL_OK)
		return err;
	err = producer_ids_open(&b->producer_ids, dir, PRODUCER_IDS_BLOCK_DEFAULT, (int)sh->id);
	if (err != SL_OK) {
		b->producer_ids = NULL;
		LOG_E(sh->id, "InitProducerId: cannot open %s/%s: %s%s", dir, PRODUCER_IDS_FILE_NAME,
		      sl_err_str(err),
		      err == SL_ECORRUPT ? " (restore the file, or delete it knowing that ids "
					   "may then be reused)" : "");
	}
	SL_ASSERT(err != SL_OK || b->producer_ids != NULL);
	return err;
}

/* Runs on: shard 0. Allocates one producer id into m->pl. */
static enum xmsg_fn_result init_producer_id_on_shard0(struct shard *sh, struct xmsg *m)
{
	struct broker *b = broker_shard_of(sh)->b;
	int64_t id = -1;
	int16_t epoch = -1;

	SL_ASSERT(sh->id == 0);
	m->pl.i64[IPI_PL_ERROR] = KERR_UNKNOWN_SERVER_ERROR;
	if (init_producer_id_open(sh, b) == SL_OK &&
	    producer_ids_next(b->producer_ids, &id, &epoch) == SL_OK) {
		SL_ASSERT(id >= 0 && epoch >= 0);
		m->pl.i64[IPI_PL_ERROR] = KERR_NONE;
	}
	m->pl.i64[IPI_PL_ID] = id;
	m->pl.i64[IPI_PL_EPOCH] = epoch;
	return XMSG_REPLY;
}

/* Runs on: the connection's shard. */
static void init_producer_id_done(struct shard *sh, struct xmsg *m)
{
	struct req *rq = m->ctx;
	struct InitProducerIdResponse *resp = rq->api;

	(void)sh;
	resp->ErrorCode = (int16_t)m->pl.i64[IPI_PL_ERROR];
	if (resp->ErrorCode == KERR_NONE) {
		resp->ProducerId = m->pl.i64[IPI_PL_ID];
		resp->ProducerEpoch = (int16_t)m->pl.i64[IPI_PL_EPOCH];
	}
	req_respond(rq, resp);
}

enum sl_err api_init_producer_id_handle(struct req *rq)
{
	const struct InitProducerIdRequest *req = rq->body;
	struct InitProducerIdResponse *resp = req_alloc(rq, sizeof(*resp));

	if (resp == NULL)
		return SL_ENOMEM;
	rq->api = resp;
	kafka_init_init_producer_id_response(resp);
	resp->ProducerId = -1;
	resp->ProducerEpoch = -1;
	if ((req->ProducerId == -1) != (req->ProducerEpoch == -1)) {
		resp->ErrorCode = KERR_INVALID_REQUEST;
		req_respond(rq, resp);
		return SL_OK;
	}
	if (req->TransactionalId.len >= 0) {
		resp->ErrorCode = KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
		req_respond(rq, resp);
		return SL_OK;
	}
	/* Cluster mode: blocks from ZooKeeper (broker.h zk_producer_id). */
	xmsg_fn *fn = rq->bs->b->zk_producer_id != NULL ? rq->bs->b->zk_producer_id
						      : init_producer_id_on_shard0;
	struct xmsg m = { .type = KAFKA_API_INIT_PRODUCER_ID, .fn = fn,
			  .done = init_producer_id_done, .ctx = rq };
	if (broker_send(rq->bs, 0, &m) != SL_OK) {
		/* Shard 0 cannot be asked (stopping): retriable. */
		resp->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
		req_respond(rq, resp);
	}
	return SL_OK;
}
