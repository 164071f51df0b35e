/*
 * plog_config.c — run-time changes of a partition log's settings (see
 * plog_config.h). Only fields read at use time are changed, so no state
 * derived from the old values (index maps, preallocated sizes, write
 * slots) is ever inconsistent with the log's configuration.
 *
 * Runs on: the log's owner shard.
 */
#include "plog_config.h"

#include "plog_internal.h"

/* Smallest segment Kafka accepts (segment.bytes >= 14). */
#define PLOG_CONFIG_SEGMENT_BYTES_MIN 14

enum sl_err plog_config_update(struct plog *log, const struct plog_config *cfg)
{
	SL_ASSERT(log != NULL && cfg != NULL);
	if (cfg->segment_bytes < PLOG_CONFIG_SEGMENT_BYTES_MIN || cfg->segment_bytes > INT32_MAX ||
	    cfg->index_interval_bytes < 0)
		return SL_EINVAL;
	log->cfg.segment_bytes = cfg->segment_bytes;
	log->cfg.roll_ms = cfg->roll_ms;
	log->cfg.index_interval_bytes = cfg->index_interval_bytes;
	log->cfg.retention_ms = cfg->retention_ms;
	log->cfg.retention_bytes = cfg->retention_bytes;
	log->cfg.flush_interval_messages = cfg->flush_interval_messages;
	log->cfg.flush_interval_ms = cfg->flush_interval_ms;
	if (cfg->checkpoint_interval_ms > 0)
		log->cfg.checkpoint_interval_ms = cfg->checkpoint_interval_ms;
	log->scfg.index_interval_bytes = cfg->index_interval_bytes;
	/* scfg.segment_bytes is the preallocation size: only follow it when
	 * nothing is preallocated, so a sealed segment's trim stays right. */
	if (!log->scfg.preallocate)
		log->scfg.segment_bytes = cfg->segment_bytes;
	SL_ASSERT(log->cfg.segment_bytes == cfg->segment_bytes);
	return SL_OK;
}

void plog_config_get(const struct plog *log, struct plog_config *out)
{
	SL_ASSERT(log != NULL && out != NULL);
	*out = log->cfg;
}
