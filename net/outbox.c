/*
 * outbox.c — see outbox.h.
 */
#include "outbox.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>


enum sl_err outbox_init(struct outbox *ob, struct shard *sh)
{
	memset(ob, 0, sizeof(*ob));
	ob->sh = sh;
	ob->shard_count = sh->xmsg.shard_count;
	ob->queues = calloc(ob->shard_count, sizeof(*ob->queues));
	return ob->queues != NULL ? SL_OK : SL_ENOMEM;
}

void outbox_free(struct outbox *ob)
{
	if (ob->queues == NULL)
		return;
	for (uint32_t i = 0; i < ob->shard_count; i++) {
		struct outbox_queue *q = ob->queues[i];
		if (q == NULL)
			continue;
		/* Empty, so its waiter is not queued (invariant 2): no shard access. */
		SL_ASSERT(q->count == 0 && !q->waiter.queued);
		free(q->items);
		free(q);
	}
	free(ob->queues);
	ob->queues = NULL;
}

static void outbox_flush(struct shard *sh, struct xmsg_waiter *w);

/*
 * Moves parked messages into the ring while credits last; re-registers the
 * waiter if some remain (invariant 2). Runs on: sh, from xmsg_drain.
 */
static void outbox_flush(struct shard *sh, struct xmsg_waiter *w)
{
	struct outbox_queue *q = (struct outbox_queue *)(void *)w;
	struct outbox *ob = q->box;

	SL_ASSERT(ob->sh == sh && q->count > 0);
	for (uint32_t n = 0; n < OUTBOX_QUEUE_MAX && q->count > 0; n++) {
		enum sl_err err = xmsg_send(sh, q->to, &q->items[q->head]);
		if (err == SL_EAGAIN)
			break;
		/* A quiescent shard has nothing outstanding, so nothing parked. */
		SL_ASSERT(err == SL_OK);
		q->head = (q->head + 1) % OUTBOX_QUEUE_MAX;
		q->count--;
		ob->parked_now--;
	}
	if (q->count > 0)
		xmsg_waiter_add(sh, q->to, &q->waiter, outbox_flush);
	SL_ASSERT(q->count == 0 || q->waiter.queued);
}

enum sl_err outbox_send(struct outbox *ob, uint32_t to, const struct xmsg *m)
{
	struct outbox_queue *q;

	SL_ASSERT(to < ob->shard_count && m->fn != NULL);
	q = ob->queues[to];
	if (q == NULL || q->count == 0) {
		enum sl_err err = xmsg_send(ob->sh, to, m);
		if (err != SL_EAGAIN)
			return err;
	}
	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return SL_ENOMEM;
		q->items = malloc(OUTBOX_QUEUE_MAX * sizeof(*q->items));
		if (q->items == NULL) {
			free(q);
			return SL_ENOMEM;
		}
		q->box = ob;
		q->to = to;
		ob->queues[to] = q;
	}
	if (q->count == OUTBOX_QUEUE_MAX)
		return SL_EAGAIN;
	q->items[(q->head + q->count) % OUTBOX_QUEUE_MAX] = *m;
	q->count++;
	ob->parked_now++;
	ob->parked_total++;
	if (!q->waiter.queued)
		xmsg_waiter_add(ob->sh, to, &q->waiter, outbox_flush);
	SL_ASSERT(q->count <= OUTBOX_QUEUE_MAX && q->waiter.queued);
	return SL_OK;
}
