/*
 * pcompact.h — when a partition's log is compacted (cleanup.policy contains
 * "compact"): the topic's settings, resolved from its overrides and the
 * broker config, and the periodic check the owner shard runs on its
 * retention timer (log.retention.check.interval.ms), which starts a
 * compaction job (io/compact.h) once the dirty ratio reaches
 * min.cleanable.dirty.ratio.
 *
 * Background: the job runs in slices of PCOMPACT_SLICE_BYTES of input, one
 * per firing of a zero-delay timer (`step`), so the shard's loop serves
 * requests and completions between two slices; the job's fsyncs go through
 * the shard's ring and their completion re-arms the timer. One job covers at
 * most PCOMPACT_DIRTY_BYTES_PER_CHECK dirty bytes; when it finishes with
 * more to do the next job starts at once. States of one partition:
 *   idle --check: ratio reached--> running (step armed | fsync in flight)
 *   running --finished, nothing more / error / pcompact_stop--> idle
 * A check while running does nothing. pcompact_stop (partition close or
 * delete, before plog_close) cancels the job (compact_job_free: leftover
 * names unlinked). Runs on: the owner shard. With sh == NULL (tests) a check
 * runs plog_compact inline instead.
 */
#ifndef SL_NET_PCOMPACT_H
#define SL_NET_PCOMPACT_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"
#include "timer.h"

struct compact_job;
struct shard;
struct config;
struct catalog_config_entry;
struct plog;

#define PCOMPACT_DIRTY_BYTES_PER_CHECK (64ll << 20)
#define PCOMPACT_SLICE_BYTES (1u << 20)

struct pcompact {
	bool compact;                  /* cleanup.policy has "compact" (and the cleaner is on) */
	bool delete_policy;            /* cleanup.policy has "delete": time/size retention runs */
	int64_t delete_retention_ms;   /* delete.retention.ms */
	double min_dirty_ratio;        /* min.cleanable.dirty.ratio */
	/* The background job (zero-initialised: none; pcompact_settings keeps
	 * these). */
	struct compact_job *job;       /* NULL: idle */
	struct timer step;             /* armed: the next slice is due */
	struct shard *sh;
	struct plog *log;
	const char *name;
	int64_t now_ms;                /* of the check that started the job */
	bool waiting;                  /* the job's fsyncs are in flight */
	uint64_t jobs_finished;        /* statistics (tests) */
	uint64_t steps;
};

/*
 * Resolves the settings from the topic overrides ov[0, n) over the broker
 * config `c` (NULL: Kafka's defaults: delete, 86400000, 0.5). Values that do
 * not parse keep the broker's.
 */
void pcompact_settings(const struct config *c, const struct catalog_config_entry *ov, uint32_t n,
		       struct pcompact *out);

/*
 * The periodic check: with `compact` set, no job running and the dirty ratio
 * >= the minimum (and some dirty bytes), starts a job at now_ms on shard sh
 * (its timers and ring, which must be log's ring); `name` must outlive the
 * job. With sh NULL runs one bounded plog_compact inline instead.
 * Failures are logged (the log stays readable; the next check retries).
 * Returns 1 when it started a job (sh) or compacted (NULL), 0 otherwise.
 */
int pcompact_check(struct plog *log, struct pcompact *pc, const char *name, struct shard *sh,
		   int64_t now_ms);

/* Cancels the running job, if any. Call before plog_close. */
void pcompact_stop(struct pcompact *pc);

#endif
