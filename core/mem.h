/*
 * mem.h — per-shard memory: one jemalloc arena and one explicit tcache per
 * shard, so a shard's allocations never contend with another shard's and
 * stay on the memory it touches.
 *
 * Rule (DESIGN.md): memory is freed on the shard that allocated it. Another
 * shard may borrow a pointer through a cross-shard message, but the message
 * travels back and the owner frees it. Debug builds check the rule on every
 * mem_free by asking jemalloc which arena the pointer came from.
 *
 * Why an explicit tcache rather than MALLOCX_TCACHE_NONE: measured on this
 * machine (jemalloc 5.3, 64 live blocks then freed, ns per alloc+free):
 * 64 B: 78 without a tcache vs 23 with one; 512 B: 78 vs 60; 4 KiB: 278 vs
 * 247. The thread's implicit tcache would mix blocks of different arenas
 * (plain malloc and every shard in a single-threaded test share it), so
 * each shard creates its own with "tcache.create".
 *
 * Without jemalloc (ASan builds, where the sanitizer must own malloc)
 * SL_HAVE_JEMALLOC is undefined and these are malloc/calloc/free.
 *
 * States: mem_arena_create -> live -> mem_arena_destroy. `live_count`
 * counts blocks allocated and not yet freed through this arena; destroy
 * releases the arena only when it is zero (otherwise it logs the leak and
 * keeps the arena, rather than pulling memory from under a stray pointer).
 *
 * Runs on: the owning shard (create/destroy may run on any one thread
 * while the shard is not running).
 */
#ifndef SL_MEM_H
#define SL_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

struct shard;

struct mem_arena {
	unsigned arena;      /* jemalloc arena index (0 without jemalloc) */
	unsigned tcache;     /* jemalloc explicit tcache index */
	int64_t live_count;  /* blocks allocated minus blocks freed */
	int shard_id;        /* for log lines */
};

/* Creates the arena and its tcache. SL_OK or SL_ENOMEM. */
enum sl_err mem_arena_create(struct mem_arena *ma, int shard_id);

/* Releases the tcache, and the arena if nothing allocated from it is live. */
void mem_arena_destroy(struct mem_arena *ma);

/* `size` bytes from the shard's arena, or NULL. Runs on: sh. */
void *mem_alloc(struct shard *sh, size_t size);

/* As mem_alloc, zero-filled. */
void *mem_zalloc(struct shard *sh, size_t size);

/* Frees `p` (NULL is a no-op); `p` must come from mem_alloc on `sh`. */
void mem_free(struct shard *sh, void *p);

#endif
