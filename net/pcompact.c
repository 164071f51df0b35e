/*
 * pcompact.c — compaction settings per topic and the periodic check (see
 * pcompact.h).
 */
#include "pcompact.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "compact.h"
#include "config.h"
#include "log.h"
#include "shard.h"

#define PCOMPACT_LIST_ITEMS_MAX 16

/* Sets *compact / *del from a list value such as "compact,delete". */
static void pcompact_policy_parse(const char *v, bool *compact, bool *del)
{
	const char *p = v;

	*compact = false;
	*del = false;
	for (int n = 0; n < PCOMPACT_LIST_ITEMS_MAX && *p != '\0'; n++) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t len = strcspn(p, ", ");
		if (len == 7 && strncmp(p, "compact", 7) == 0)
			*compact = true;
		else if (len == 6 && strncmp(p, "delete", 6) == 0)
			*del = true;
		p += len;
	}
}

void pcompact_settings(const struct config *c, const struct catalog_config_entry *ov, uint32_t n,
		       struct pcompact *out)
{
	bool enabled = c == NULL || c->log_cleaner_enable;

	out->compact = c != NULL && (c->log_cleanup_policy & CONFIG_CLEANUP_COMPACT);
	out->delete_policy = c == NULL || (c->log_cleanup_policy & CONFIG_CLEANUP_DELETE);
	out->delete_retention_ms = c != NULL ? c->log_cleaner_delete_retention_ms
					     : COMPACT_DELETE_RETENTION_MS_DEFAULT;
	out->min_dirty_ratio = c != NULL ? c->log_cleaner_min_cleanable_ratio
					 : COMPACT_DIRTY_RATIO_DEFAULT;
	for (uint32_t i = 0; i < n; i++) {
		const char *k = ov[i].key, *v = ov[i].value;
		char *end = NULL;
		if (k == NULL || v == NULL)
			continue;
		if (strcmp(k, "cleanup.policy") == 0) {
			pcompact_policy_parse(v, &out->compact, &out->delete_policy);
		} else if (strcmp(k, "delete.retention.ms") == 0) {
			long long x = strtoll(v, &end, 10);
			if (end != v && *end == '\0' && x >= 0)
				out->delete_retention_ms = x;
		} else if (strcmp(k, "min.cleanable.dirty.ratio") == 0) {
			double x = strtod(v, &end);
			if (end != v && *end == '\0' && x >= 0.0 && x <= 1.0)
				out->min_dirty_ratio = x;
		}
	}
	out->compact = out->compact && enabled;
}

/* Whether the log is dirty enough to compact (logs a failed check). */
static bool pcompact_due(struct plog *log, const struct pcompact *pc, const char *name,
			 int shard_id)
{
	struct compact_dirty dirty;
	enum sl_err err;

	if (!pc->compact)
		return false;
	err = plog_compact_dirty(log, &dirty);
	if (err != SL_OK) {
		LOG_W(shard_id, "partition %s: compaction check failed: %s", name, sl_err_str(err));
		return false;
	}
	return dirty.dirty_bytes > 0 && dirty.ratio >= pc->min_dirty_ratio;
}

static void pcompact_cfg(const struct pcompact *pc, int shard_id, struct compact_config *cfg)
{
	compact_config_default(cfg);
	cfg->delete_retention_ms = pc->delete_retention_ms;
	cfg->max_dirty_bytes = PCOMPACT_DIRTY_BYTES_PER_CHECK;
	cfg->shard_id = shard_id;
}

static void pcompact_arm(struct pcompact *pc)
{
	if (timer_add(&pc->sh->timers, &pc->step, shard_now_ns(pc->sh)) != SL_OK) {
		LOG_W((int)pc->sh->id, "partition %s: timer table full, compaction cancelled",
		      pc->name);
		compact_job_free(pc->job);
		pc->job = NULL;
	}
}

/* compact_config.wake: the job's fsyncs completed. */
static void pcompact_wake(void *arg)
{
	struct pcompact *pc = arg;

	SL_ASSERT(pc->job != NULL && pc->waiting);
	pc->waiting = false;
	pcompact_arm(pc);
}

/* Starts a job; false when there is none (logged). */
static bool pcompact_start(struct pcompact *pc)
{
	struct compact_config cfg;
	enum sl_err err;

	SL_ASSERT(pc->job == NULL);
	pcompact_cfg(pc, (int)pc->sh->id, &cfg);
	cfg.ring = &pc->sh->ring;
	cfg.wake = pcompact_wake;
	cfg.wake_arg = pc;
	err = compact_job_start(&pc->job, pc->log, pc->now_ms, &cfg);
	if (err != SL_OK) {
		LOG_W((int)pc->sh->id, "partition %s: compaction not started: %s", pc->name,
		      sl_err_str(err));
		pc->job = NULL;
		return false;
	}
	LOG_I((int)pc->sh->id, "partition %s: compaction started", pc->name);
	pcompact_arm(pc);
	return pc->job != NULL;
}

/* The step timer: one slice of the job. */
static void pcompact_step_fire(struct timer *t, void *ctx)
{
	struct pcompact *pc = (struct pcompact *)(void *)((char *)t - offsetof(struct pcompact, step));
	enum compact_progress prog;
	enum sl_err err;
	int more;

	(void)ctx;
	SL_ASSERT(pc->job != NULL && !pc->waiting);
	pc->steps++;
	err = compact_job_step(pc->job, PCOMPACT_SLICE_BYTES, &prog);
	if (err == SL_OK && prog == COMPACT_RUNNING) {
		pcompact_arm(pc);
		return;
	}
	if (err == SL_OK && prog == COMPACT_WAITING) {
		pc->waiting = true;
		return;
	}
	more = err == SL_OK && compact_job_stats(pc->job)->more;
	if (err == SL_OK)
		pc->jobs_finished++;
	else
		LOG_W((int)pc->sh->id, "partition %s: compaction %s: %s", pc->name,
		      err == SL_EAGAIN ? "interrupted" : "failed", sl_err_str(err));
	compact_job_free(pc->job);
	pc->job = NULL;
	if (more && pcompact_due(pc->log, pc, pc->name, (int)pc->sh->id))
		(void)pcompact_start(pc);
}

int pcompact_check(struct plog *log, struct pcompact *pc, const char *name, struct shard *sh,
		   int64_t now_ms)
{
	struct compact_config cfg;
	struct compact_stats st;
	enum sl_err err;
	int shard_id = sh != NULL ? (int)sh->id : LOG_NO_SHARD;

	if (pc->job != NULL || !pcompact_due(log, pc, name, shard_id))
		return 0;
	if (sh != NULL) {
		timer_init(&pc->step, pcompact_step_fire);
		pc->sh = sh;
		pc->log = log;
		pc->name = name;
		pc->now_ms = now_ms;
		pc->waiting = false;
		return pcompact_start(pc) ? 1 : 0;
	}
	pcompact_cfg(pc, shard_id, &cfg);
	err = plog_compact(log, now_ms, &cfg, &st);
	if (err != SL_OK) {
		LOG_W(shard_id, "partition %s: compaction failed: %s", name, sl_err_str(err));
		return 0;
	}
	return 1;
}

void pcompact_stop(struct pcompact *pc)
{
	if (pc->job == NULL)
		return;
	if (!pc->waiting)
		timer_cancel(&pc->sh->timers, &pc->step);
	compact_job_free(pc->job);
	pc->job = NULL;
	pc->waiting = false;
}
