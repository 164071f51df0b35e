/*
 * admin.c — helpers for the admin API handlers (see admin.h).
 * Runs on: the connection's shard.
 */
#include "admin.h"

#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "topic_config.h"

char *admin_strdup(struct req *rq, struct kslice s)
{
	if (s.len < 0 || (s.len > 0 && s.ptr == NULL))
		return NULL;
	char *out = req_alloc(rq, (size_t)s.len + 1);
	if (out == NULL)
		return NULL;
	if (s.len > 0)
		memcpy(out, s.ptr, (size_t)s.len);
	out[s.len] = '\0';
	return out;
}

struct kslice admin_msg(struct req *rq, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return admin_slice(NULL);
	struct kslice s = { (const uint8_t *)buf, (int32_t)SL_MIN((size_t)n, sizeof(buf) - 1) };
	char *copy = admin_strdup(rq, s);
	return admin_slice(copy);
}

enum sl_err admin_mutate(struct req *rq, struct broker_create *c, broker_mutate_fn *mutate,
			 broker_create_done_fn *done, void *arg)
{
	SL_ASSERT(c != NULL && mutate != NULL && done != NULL);
	c->mutate = mutate;
	c->done = done;
	c->arg = arg;
	c->topics = NULL;
	c->count = 0;
	return broker_topics_create(rq->bs, c);
}

int8_t admin_topic_value(struct req *rq, const struct tcfg_key *k,
			 const struct catalog_topic *topic, struct kslice *value)
{
	char buf[TCFG_VALUE_MAX];

	SL_ASSERT(k != NULL && value != NULL);
	for (uint32_t i = 0; topic != NULL && i < topic->config_count; i++) {
		if (strcmp(topic->configs[i].key, k->name) == 0) {
			*value = admin_slice(admin_strdup(rq, admin_slice(topic->configs[i].value)));
			return TCFG_SRC_DYNAMIC_TOPIC;
		}
	}
	enum tcfg_source src = tcfg_broker_value(rq->bs->b->config, k, buf, sizeof(buf));
	*value = admin_slice(admin_strdup(rq, admin_slice(buf)));
	return (int8_t)src;
}
