/*
 * pcompact.h — when a partition's log is compacted (cleanup.policy contains
 * "compact"): the topic's settings, resolved from its overrides and the
 * broker config, and the periodic check the owner shard runs on its
 * retention timer (log.retention.check.interval.ms), which calls
 * plog_compact (io/compact.h) once the dirty ratio reaches
 * min.cleanable.dirty.ratio.
 *
 * Blocking: plog_compact is synchronous; one check compacts at most
 * PCOMPACT_DIRTY_BYTES_PER_CHECK dirty bytes (plus a rewrite of the clean
 * head below them), then resumes at the next check. Runs on: the owner shard.
 */
#ifndef SL_NET_PCOMPACT_H
#define SL_NET_PCOMPACT_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

struct config;
struct catalog_config_entry;
struct plog;

#define PCOMPACT_DIRTY_BYTES_PER_CHECK (64ll << 20)

struct pcompact {
	bool compact;                  /* cleanup.policy has "compact" (and the cleaner is on) */
	bool delete_policy;            /* cleanup.policy has "delete": time/size retention runs */
	int64_t delete_retention_ms;   /* delete.retention.ms */
	double min_dirty_ratio;        /* min.cleanable.dirty.ratio */
};

/*
 * Resolves the settings from the topic overrides ov[0, n) over the broker
 * config `c` (NULL: Kafka's defaults: delete, 86400000, 0.5). Values that do
 * not parse keep the broker's.
 */
void pcompact_settings(const struct config *c, const struct catalog_config_entry *ov, uint32_t n,
		       struct pcompact *out);

/*
 * The periodic check: with `compact` set and the dirty ratio >= the
 * minimum (and some dirty bytes), runs one bounded plog_compact at now_ms.
 * Failures are logged (the log stays readable; the next check retries).
 * Returns 1 when it compacted, 0 otherwise.
 */
int pcompact_check(struct plog *log, const struct pcompact *pc, const char *name, int shard_id,
		   int64_t now_ms);

#endif
