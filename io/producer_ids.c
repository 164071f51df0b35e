/*
 * producer_ids.c — see producer_ids.h. The block file goes through
 * checkpoint.c, which already writes atomically and parses untrusted text
 * strictly (a torn or edited file reads as SL_ECORRUPT, never as a number).
 */
#include "producer_ids.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "log.h"

#define PRODUCER_IDS_KEY "producer_id_block_end"

struct producer_ids {
	int dirfd;
	int shard_id;
	int64_t next_id;        /* next id to hand out */
	int64_t block_end;      /* durable: ids below it are used or skipped */
	int64_t block_size;
	uint64_t blocks_persisted;
};

/* Reads the persisted block end; SL_ENOTFOUND when the file is absent. */
static enum sl_err producer_ids_load(struct producer_ids *pi, int64_t *block_end)
{
	struct checkpoint_entry e = { .key = PRODUCER_IDS_KEY };
	enum sl_err err = checkpoint_read(pi->dirfd, PRODUCER_IDS_FILE_NAME, &e, 1);

	if (err == SL_ENOTFOUND || err == SL_EIO)
		return err;
	if (err != SL_OK || !e.found || e.value < 0) {
		LOG_E(pi->shard_id, "producer_ids: %s is corrupt (%s): refusing to allocate "
		      "producer ids; restore it, or delete it only if no partition holds "
		      "idempotent data (ids would restart at 0)", PRODUCER_IDS_FILE_NAME,
		      err != SL_OK ? sl_err_str(err) : !e.found ? "no " PRODUCER_IDS_KEY
							       : "negative value");
		return SL_ECORRUPT;
	}
	*block_end = e.value;
	return SL_OK;
}

enum sl_err producer_ids_open(struct producer_ids **out, const char *log_dir,
			      int64_t block_size, int shard_id)
{
	struct producer_ids *pi;
	int64_t end = 0;
	enum sl_err err;

	SL_ASSERT(out != NULL && log_dir != NULL);
	*out = NULL;
	if (block_size < 1 || block_size > PRODUCER_IDS_BLOCK_MAX)
		return SL_EINVAL;
	pi = calloc(1, sizeof(*pi));
	if (pi == NULL)
		return SL_ENOMEM;
	pi->shard_id = shard_id;
	pi->block_size = block_size;
	pi->dirfd = open(log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pi->dirfd < 0) {
		LOG_E(shard_id, "producer_ids: open %s: %s", log_dir, strerror(errno));
		err = SL_EIO;
		goto cleanup;
	}
	err = producer_ids_load(pi, &end);
	if (err == SL_ENOTFOUND) {
		LOG_I(shard_id, "producer_ids: no %s in %s: starting at producer id 0",
		      PRODUCER_IDS_FILE_NAME, log_dir);
		end = 0;
		err = SL_OK;
	}
	if (err != SL_OK)
		goto cleanup;
	/* Start a fresh block on first use: the rest of the old one is skipped. */
	pi->next_id = end;
	pi->block_end = end;
	*out = pi;
	pi = NULL;

cleanup:
	if (pi != NULL) {
		if (pi->dirfd >= 0)
			close(pi->dirfd);
		free(pi);
	}
	SL_ASSERT(err != SL_OK || (*out)->next_id == (*out)->block_end);
	return err;
}

/* Persists the block after the current one. */
static enum sl_err producer_ids_persist_next(struct producer_ids *pi)
{
	struct checkpoint_entry e = { .key = PRODUCER_IDS_KEY };
	enum sl_err err;

	SL_ASSERT(pi->next_id == pi->block_end);
	if (pi->block_end > INT64_MAX - pi->block_size) {
		LOG_E(pi->shard_id, "producer_ids: producer ids exhausted at %" PRId64,
		      pi->block_end);
		return SL_ERANGE;
	}
	e.value = pi->block_end + pi->block_size;
	err = checkpoint_write(pi->dirfd, PRODUCER_IDS_FILE_NAME, &e, 1);
	if (err != SL_OK) {
		LOG_E(pi->shard_id, "producer_ids: could not persist the block ending at %" PRId64
		      ": %s", e.value, sl_err_str(err));
		return SL_EIO;
	}
	pi->block_end = e.value;
	pi->blocks_persisted++;
	return SL_OK;
}

enum sl_err producer_ids_next(struct producer_ids *pi, int64_t *producer_id, int16_t *epoch)
{
	enum sl_err err;

	SL_ASSERT(pi != NULL && producer_id != NULL && epoch != NULL);
	SL_ASSERT(pi->next_id <= pi->block_end);
	if (pi->next_id == pi->block_end) {
		err = producer_ids_persist_next(pi);
		if (err != SL_OK)
			return err;
	}
	*producer_id = pi->next_id++;
	*epoch = PRODUCER_IDS_EPOCH_INITIAL;
	SL_ASSERT(*producer_id >= 0 && pi->next_id <= pi->block_end);
	return SL_OK;
}

void producer_ids_close(struct producer_ids *pi)
{
	if (pi == NULL)
		return;
	close(pi->dirfd);
	free(pi);
}

int64_t producer_ids_next_id(const struct producer_ids *pi)
{
	return pi->next_id;
}

int64_t producer_ids_block_end(const struct producer_ids *pi)
{
	return pi->block_end;
}

uint64_t producer_ids_blocks_persisted(const struct producer_ids *pi)
{
	return pi->blocks_persisted;
}
