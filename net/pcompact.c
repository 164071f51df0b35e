/*
 * pcompact.c — compaction settings per topic and the periodic check (see
 * pcompact.h).
 */
#include "pcompact.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "compact.h"
#include "config.h"
#include "log.h"

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

int pcompact_check(struct plog *log, const struct pcompact *pc, const char *name, int shard_id,
		   int64_t now_ms)
{
	struct compact_dirty dirty;
	struct compact_config cfg;
	struct compact_stats st;
	enum sl_err err;

	if (!pc->compact)
		return 0;
	err = plog_compact_dirty(log, &dirty);
	if (err != SL_OK) {
		LOG_W(shard_id, "partition %s: compaction check failed: %s", name, sl_err_str(err));
		return 0;
	}
	if (dirty.dirty_bytes == 0 || dirty.ratio < pc->min_dirty_ratio)
		return 0;
	compact_config_default(&cfg);
	cfg.delete_retention_ms = pc->delete_retention_ms;
	cfg.max_dirty_bytes = PCOMPACT_DIRTY_BYTES_PER_CHECK;
	cfg.shard_id = shard_id;
	err = plog_compact(log, now_ms, &cfg, &st);
	if (err != SL_OK) {
		LOG_W(shard_id, "partition %s: compaction failed: %s", name, sl_err_str(err));
		return 0;
	}
	return 1;
}
