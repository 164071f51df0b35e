/*
 * mem.c — see mem.h.
 */
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "shard.h"

/* Whether a new block is zero-filled. */
enum mem_fill {
	MEM_FILL_NONE,
	MEM_FILL_ZERO,
};

#ifdef SL_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

static int mem_flags(const struct mem_arena *ma)
{
	return (int)(MALLOCX_ARENA(ma->arena) | MALLOCX_TCACHE(ma->tcache));
}

enum sl_err mem_arena_create(struct mem_arena *ma, int shard_id)
{
	size_t len = sizeof(ma->arena);

	ma->live_count = 0;
	ma->shard_id = shard_id;
	if (mallctl("arenas.create", &ma->arena, &len, NULL, 0) != 0)
		return SL_ENOMEM;
	len = sizeof(ma->tcache);
	if (mallctl("tcache.create", &ma->tcache, &len, NULL, 0) != 0) {
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.destroy", ma->arena);
		mallctl(name, NULL, NULL, NULL, 0);
		return SL_ENOMEM;
	}
	return SL_OK;
}

void mem_arena_destroy(struct mem_arena *ma)
{
	char name[64];

	mallctl("tcache.destroy", NULL, NULL, &ma->tcache, sizeof(ma->tcache));
	if (ma->live_count != 0) {
		LOG_W(ma->shard_id, "mem: %lld blocks still allocated at shard exit; "
		      "keeping arena %u", (long long)ma->live_count, ma->arena);
		return;
	}
	snprintf(name, sizeof(name), "arena.%u.destroy", ma->arena);
	if (mallctl(name, NULL, NULL, NULL, 0) != 0)
		LOG_W(ma->shard_id, "mem: cannot destroy arena %u", ma->arena);
}

/* Debug check of the ownership rule: which arena did `p` come from? */
static SL_UNUSED int mem_owned_by(const struct mem_arena *ma, void *p)
{
	unsigned arena = UINT32_MAX;
	size_t len = sizeof(arena);

	if (mallctl("arenas.lookup", &arena, &len, &p, sizeof(p)) != 0)
		return 1;  /* cannot tell: do not fail the check */
	return arena == ma->arena;
}

/* The allocator calls behind mem_alloc, mem_zalloc and mem_free. */
static void *mem_raw_alloc(const struct mem_arena *ma, size_t size, enum mem_fill fill)
{
	return mallocx(size, mem_flags(ma) | (fill == MEM_FILL_ZERO ? MALLOCX_ZERO : 0));
}

static void mem_raw_free(const struct mem_arena *ma, void *p)
{
	dallocx(p, mem_flags(ma));
}

#else /* !SL_HAVE_JEMALLOC */

enum sl_err mem_arena_create(struct mem_arena *ma, int shard_id)
{
	ma->arena = 0;
	ma->tcache = 0;
	ma->live_count = 0;
	ma->shard_id = shard_id;
	return SL_OK;
}

void mem_arena_destroy(struct mem_arena *ma)
{
	if (ma->live_count != 0)
		LOG_W(ma->shard_id, "mem: %lld blocks still allocated at shard exit",
		      (long long)ma->live_count);
}

static void *mem_raw_alloc(const struct mem_arena *ma, size_t size, enum mem_fill fill)
{
	(void)ma;
	return fill == MEM_FILL_ZERO ? calloc(1, size) : malloc(size);
}

static void mem_raw_free(const struct mem_arena *ma, void *p)
{
	(void)ma;
	free(p);
}

/* The system allocator cannot tell which shard allocated `p`. */
static SL_UNUSED int mem_owned_by(const struct mem_arena *ma, void *p)
{
	(void)ma;
	(void)p;
	return 1;
}

#endif

/* Both allocators: count live blocks so that shard exit can report leaks. */
static void *mem_counted_alloc(struct shard *sh, size_t size, enum mem_fill fill)
{
	SL_ASSERT(size > 0);
	void *p = mem_raw_alloc(&sh->mem, size, fill);
	if (p != NULL)
		sh->mem.live_count++;
	return p;
}

void *mem_alloc(struct shard *sh, size_t size)
{
	return mem_counted_alloc(sh, size, MEM_FILL_NONE);
}

void *mem_zalloc(struct shard *sh, size_t size)
{
	return mem_counted_alloc(sh, size, MEM_FILL_ZERO);
}

void mem_free(struct shard *sh, void *p)
{
	if (p == NULL)
		return;
	SL_DEBUG_ASSERT(mem_owned_by(&sh->mem, p));
	SL_ASSERT(sh->mem.live_count > 0);
	sh->mem.live_count--;
	mem_raw_free(&sh->mem, p);
}
