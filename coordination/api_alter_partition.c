/*
 * api_alter_partition.c — AlterPartition (key 56), versions 0-3: a
 * partition leader asks the controller to change its ISR (KIP-497).
 *
 *   api_alter_partition_handle (connection's shard) allocates the answer
 *       mirroring the request and asks shard 0.
 *   ap_on_ctl (shard 0): not the controller -> NOT_CONTROLLER (top level);
 *       else controller_alter_partition validates each partition
 *       (ctrl_alter_partition), writes accepted states conditionally and
 *       fills the answer (new partition epoch and ISR); the controller
 *       then sends UpdateMetadata to every broker.
 *   ap_done (connection's shard) answers.
 */
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "controller.h"
#include "ctrl_rules.h"
#include "kerr.h"
#include "req.h"

struct ap_op {
	struct req *rq;
	struct AlterPartitionResponse resp;
	struct xmsg msg;               /* shard 0: the deferred request */
	struct shard *sh0;
	bool in_fn;                    /* shard 0: inside ap_on_ctl */
	bool done_in_fn;               /* the controller finished synchronously */
};

/* Runs on: shard 0, when the controller finished every partition. */
static void ap_ctl_done(void *arg)
{
	struct ap_op *op = arg;

	/* Not deferred yet (no write was needed): ap_on_ctl replies itself. */
	if (op->in_fn) {
		op->done_in_fn = true;
		return;
	}
	xmsg_reply(op->sh0, &op->msg);
}

/* Runs on: shard 0. */
static enum xmsg_fn_result ap_on_ctl(struct shard *sh, struct xmsg *m)
{
	struct ap_op *op = m->pl.ptr[0];
	struct broker_shard *bs0 = broker_shard_of(sh);
	struct cluster *cl = bs0->b->cluster;

	op->msg = *m;
	op->sh0 = sh;
	op->in_fn = true;
	bool ran = cl != NULL && controller_alter_partition(cl, op->rq->body,
							     op->rq->api_version, &op->resp,
							     ap_ctl_done, op);
	op->in_fn = false;
	if (!ran) {
		op->resp.ErrorCode = CTRL_KERR_NOT_CONTROLLER;
		return XMSG_REPLY;
	}
	return op->done_in_fn ? XMSG_REPLY : XMSG_DEFER;
}

/* Runs on: the connection's shard. */
static void ap_done(struct shard *sh, struct xmsg *m)
{
	struct ap_op *op = m->pl.ptr[0];

	(void)sh;
	if (op->resp.ErrorCode != 0)
		op->resp.Topics.count = 0;
	req_respond(op->rq, &op->resp);
}

enum sl_err api_alter_partition_handle(struct req *rq)
{
	const struct AlterPartitionRequest *in = rq->body;
	struct ap_op *op = req_alloc(rq, sizeof(*op));
	int32_t nt = SL_MAX(in->Topics.count, 0);

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	kafka_init_alter_partition_response(&op->resp);
	op->resp.Topics.count = nt;
	op->resp.Topics.items = req_alloc(rq, (size_t)(nt + 1) * sizeof(*op->resp.Topics.items));
	if (op->resp.Topics.items == NULL)
		return SL_ENOMEM;
	for (int32_t i = 0; i < nt; i++) {
		const struct AlterPartitionRequest_TopicData *td = &in->Topics.items[i];
		struct AlterPartitionResponse_TopicData *to = &op->resp.Topics.items[i];
		int32_t np = SL_MAX(td->Partitions.count, 0);
		kafka_init_alter_partition_response_topic_data(to);
		to->TopicName = td->TopicName;
		to->TopicId = td->TopicId;
		to->Partitions.count = np;
		to->Partitions.items = req_alloc(rq, (size_t)(np + 1) * sizeof(*to->Partitions.items));
		if (to->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t j = 0; j < np; j++) {
			struct AlterPartitionResponse_PartitionData *o = &to->Partitions.items[j];
			kafka_init_alter_partition_response_partition_data(o);
			o->PartitionIndex = td->Partitions.items[j].PartitionIndex;
			o->LeaderId = -1;
			o->LeaderEpoch = -1;
			o->Isr.items = req_alloc(rq, CTRL_REPLICAS_MAX * sizeof(int32_t));
			o->Isr.count = 0;
			if (o->Isr.items == NULL)
				return SL_ENOMEM;
		}
	}
	struct xmsg m = { .fn = ap_on_ctl, .done = ap_done, .ctx = op };
	m.pl.ptr[0] = op;
	if (broker_send(rq->bs, 0, &m) != SL_OK) {
		op->resp.ErrorCode = KERR_REQUEST_TIMED_OUT;
		op->resp.Topics.count = 0;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
