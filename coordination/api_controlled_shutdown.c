/*
 * api_controlled_shutdown.c — ControlledShutdown (key 7), versions 0-3:
 * a broker about to stop asks the controller to move leadership off it
 * (Kafka's KafkaApis.handleControlledShutdownRequest).
 *
 *   api_controlled_shutdown_handle (connection's shard) asks shard 0.
 *   cs_on_ctl (shard 0): not the controller -> NOT_CONTROLLER; else
 *       controller_controlled_shutdown (controller.h) marks the broker
 *       shutting down, moves leadership, writes the states, tells the
 *       brokers and lists the partitions it still leads.
 *   cs_done (connection's shard) copies that list into the response
 *       (request memory) and answers.
 *
 * Invariant: op->res.parts is malloc'd on shard 0 and freed here once
 * copied (or never allocated).
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "controller.h"
#include "ctrl_rules.h"
#include "kerr.h"
#include "req.h"

struct cs_op {
	struct req *rq;
	int32_t broker_id;
	int64_t broker_epoch;
	struct controller_cs_result res;
	struct xmsg msg;               /* shard 0: the deferred request */
	struct shard *sh0;
	bool in_fn;                    /* shard 0: inside cs_on_ctl */
	bool done_in_fn;               /* the controller answered synchronously */
};

/* Runs on: shard 0, once the controller answered. */
static void cs_ctl_done(void *arg)
{
	struct cs_op *op = arg;

	/* Not deferred yet: cs_on_ctl answers with XMSG_REPLY itself. */
	if (op->in_fn) {
		op->done_in_fn = true;
		return;
	}
	xmsg_reply(op->sh0, &op->msg);
}

/* Runs on: shard 0. */
static enum xmsg_fn_result cs_on_ctl(struct shard *sh, struct xmsg *m)
{
	struct cs_op *op = m->pl.ptr[0];
	struct cluster *cl = broker_shard_of(sh)->b->cluster;

	op->msg = *m;
	op->sh0 = sh;
	op->in_fn = true;
	bool ran = cl != NULL && controller_controlled_shutdown(cl, op->broker_id,
								 op->broker_epoch, &op->res,
								 cs_ctl_done, op);
	op->in_fn = false;
	if (!ran) {
		op->res.error = CTRL_KERR_NOT_CONTROLLER;
		op->res.count = 0;
		return XMSG_REPLY;
	}
	return op->done_in_fn ? XMSG_REPLY : XMSG_DEFER;
}

/* Builds and sends the response from op->res. Runs on: the connection's shard. */
static void cs_respond(struct cs_op *op)
{
	struct ControlledShutdownResponse resp;
	struct controller_cs_result *r = &op->res;

	kafka_init_controlled_shutdown_response(&resp);
	resp.ErrorCode = r->error;
	resp.RemainingPartitions.count = 0;
	resp.RemainingPartitions.items =
		req_alloc(op->rq, ((size_t)r->count + 1) * sizeof(*resp.RemainingPartitions.items));
	if (resp.RemainingPartitions.items == NULL) {
		resp.ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
	} else if (r->error == 0) {
		for (uint32_t i = 0; i < r->count; i++) {
			struct ControlledShutdownResponse_RemainingPartition *o =
				&resp.RemainingPartitions.items[i];
			size_t len = strnlen(r->parts[i].topic, sizeof(r->parts[i].topic));
			uint8_t *name = req_alloc(op->rq, len + 1);
			if (name == NULL) {
				resp.ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				resp.RemainingPartitions.count = 0;
				break;
			}
			memcpy(name, r->parts[i].topic, len);
			kafka_init_controlled_shutdown_response_remaining_partition(o);
			o->TopicName = (struct kslice){ name, (int32_t)len };
			o->PartitionIndex = r->parts[i].partition;
			resp.RemainingPartitions.count++;
		}
	}
	free(r->parts);
	r->parts = NULL;
	r->count = 0;
	req_respond(op->rq, &resp);
}

/* Runs on: the connection's shard. */
static void cs_done(struct shard *sh, struct xmsg *m)
{
	(void)sh;
	cs_respond(m->pl.ptr[0]);
}

enum sl_err api_controlled_shutdown_handle(struct req *rq)
{
	const struct ControlledShutdownRequest *in = rq->body;
	struct cs_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	op->broker_id = in->BrokerId;
	op->broker_epoch = rq->api_version >= 2 ? in->BrokerEpoch : -1;
	struct xmsg m = { .fn = cs_on_ctl, .done = cs_done, .ctx = op };
	m.pl.ptr[0] = op;
	if (broker_send(rq->bs, 0, &m) != SL_OK) {
		op->res.error = KERR_REQUEST_TIMED_OUT;
		cs_respond(op);
	}
	return SL_OK;
}
