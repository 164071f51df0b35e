/*
 * sl.c — error strings and the assertion failure path.
 */
#include "sl.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const sl_err_names[SL_ERR_COUNT] = {
	[SL_OK] = "ok",
	[SL_EAGAIN] = "resource temporarily full",
	[SL_EINVAL] = "invalid argument",
	[SL_ECORRUPT] = "corrupt data",
	[SL_ETRUNC] = "truncated data",
	[SL_ENOMEM] = "out of memory",
	[SL_EIO] = "I/O error",
	[SL_ERANGE] = "out of range",
	[SL_ENOTFOUND] = "not found",
	[SL_EEXIST] = "already exists",
	[SL_ECLOSED] = "closed",
	[SL_ETIMEDOUT] = "timed out",
};

const char *sl_err_str(enum sl_err err)
{
	if ((unsigned)err >= SL_ERR_COUNT)
		return "unknown error";
	return sl_err_names[err];
}

void sl_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
	fflush(stderr);
	abort();
}
