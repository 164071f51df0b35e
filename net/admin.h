/*
 * admin.h — small helpers shared by the admin API handlers
 * (api_create_topics.c, api_delete_topics.c, api_create_partitions.c,
 * api_incremental_alter_configs.c): request-lifetime strings and the
 * "run a catalog mutation on shard 0, answer when every shard has it"
 * round trip (broker_topics_create with a mutate function).
 *
 * Runs on: the connection's shard (except the mutate functions the
 * handlers pass, which run on shard 0).
 */
#ifndef SL_NET_ADMIN_H
#define SL_NET_ADMIN_H

#include <stdarg.h>
#include <stdint.h>

#include "broker.h"
#include "kread.h"
#include "req.h"
#include "sl.h"

/* NUL-terminated copy of `s` in request memory; NULL (null slice or no memory). */
char *admin_strdup(struct req *rq, struct kslice s);

/* A formatted message as a slice in request memory (null slice if no memory). */
struct kslice admin_msg(struct req *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A slice of a C string (not copied). */
static inline struct kslice admin_slice(const char *s)
{
	struct kslice k = { (const uint8_t *)s, s != NULL ? (int32_t)__builtin_strlen(s) : -1 };
	return k;
}

/*
 * Runs `mutate(bs0, c)` on shard 0 (c allocated by the caller in request
 * memory, c->arg its state) and `done` back here once every shard adopted
 * the result. SL_OK, or the broker_topics_create error (nothing ran).
 */
enum sl_err admin_mutate(struct req *rq, struct broker_create *c, broker_mutate_fn *mutate,
			 broker_create_done_fn *done, void *arg);



struct tcfg_key;
struct catalog_topic;

/*
 * The value topic key `k` has for `topic` (its override, else the broker
 * value) copied into request memory as *value; returns its source
 * (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG or DEFAULT_CONFIG).
 * `topic` may be NULL (no overrides: validate-only creations).
 */
int8_t admin_topic_value(struct req *rq, const struct tcfg_key *k,
			 const struct catalog_topic *topic, struct kslice *value);
#endif
