/*
 * sl.h — what every Sluice file includes: the internal error enum, the
 * assertion macros and a few tiny helpers.
 *
 * Errors come in three kinds that are never mixed (see STYLE.md):
 *   1. system calls and io_uring completions return -errno;
 *   2. Sluice functions return enum sl_err, results go through out-params;
 *   3. Kafka error codes (int16_t) live only in the API handlers.
 */
#ifndef SL_H
#define SL_H

#include <stddef.h>
#include <stdint.h>

enum sl_err {
	SL_OK = 0,
	SL_EAGAIN,      /* a bounded ring, pool or queue is full: retry later */
	SL_EINVAL,      /* a caller passed something out of contract */
	SL_ECORRUPT,    /* bytes from the network or the disk failed validation */
	SL_ETRUNC,      /* not enough bytes yet (a partial batch or frame) */
	SL_ENOMEM,      /* an allocation failed */
	SL_EIO,         /* a system call or completion failed; see the log */
	SL_ERANGE,      /* an offset or value outside what exists */
	SL_ENOTFOUND,   /* no such file, key or entry */
	SL_EEXIST,      /* already exists */
	SL_ECLOSED,     /* the object is shutting down */
	SL_ETIMEDOUT,   /* a deadline passed before an answer */
	SL_ERR_COUNT,
};

const char *sl_err_str(enum sl_err err);

/*
 * SL_ASSERT stays on in every build, release included: a broken invariant
 * aborts with the expression, file and line instead of corrupting a log.
 * SL_DEBUG_ASSERT is for checks too costly for release (O(n) walks).
 */
void sl_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn, cold));

#define SL_ASSERT(expr) \
	(__builtin_expect(!!(expr), 1) ? (void)0 \
	 : sl_assert_fail(#expr, __FILE__, __LINE__))

#ifdef SL_DEBUG
#define SL_DEBUG_ASSERT(expr) SL_ASSERT(expr)
#else
#define SL_DEBUG_ASSERT(expr) ((void)sizeof(!!(expr)))
#endif

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SL_CACHELINE 64
#define SL_UNUSED __attribute__((unused))

#define SL_VERSION "0.1.0"

#endif
