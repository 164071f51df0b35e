/*
 * frame.h — the decisions of request framing, as pure functions (the
 * connection in conn.c applies them; tests/unit/test_frame.c checks them).
 *
 * A Kafka request is a 4-byte big-endian size followed by that many bytes
 * (request header, then body). The size is judged before a single byte is
 * allocated for the frame:
 *   - negative            -> close ("negative frame size")
 *   - < FRAME_BYTES_MIN   -> close (cannot hold a request header v0)
 *   - > socket.request.max.bytes -> close (Kafka's InvalidReceiveException)
 * Only then is the exact-size request buffer allocated.
 *
 * Decoding memory: a request decodes into a bounded arena (kread.h). The
 * first attempt is small (most requests are small, and Produce's records
 * are slices of the frame, not copies); a decode that runs out of arena is
 * retried with a larger one, up to FRAME_ARENA_BYTES_MAX.
 */
#ifndef SL_NET_FRAME_H
#define SL_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

/* api_key (2) + api_version (2) + correlation_id (4): RequestHeader v0. */
#define FRAME_BYTES_MIN 8
#define FRAME_PREFIX_BYTES 4
#define FRAME_ARENA_BYTES_FIRST (16u * 1024u)
#define FRAME_ARENA_BYTES_MAX (64u << 20)
#define FRAME_ARENA_ATTEMPTS_MAX 4u

enum frame_verdict {
	FRAME_OK = 0,
	FRAME_NEGATIVE,
	FRAME_TOO_SMALL,
	FRAME_TOO_LARGE,
};

/* Judges a frame size read from the wire against `max_bytes` (> 0). */
enum frame_verdict frame_size_check(int32_t size, int32_t max_bytes);

/* "negative frame size" and the like, for the close log line. */
const char *frame_verdict_str(enum frame_verdict v);

/*
 * Arena bytes for decode attempt `attempt` (0-based) of a `frame_len`-byte
 * request: FRAME_ARENA_BYTES_FIRST + frame_len / 4 at first, then 8 times
 * more per attempt, capped at FRAME_ARENA_BYTES_MAX. Returns 0 when there
 * is no further attempt (the previous one already had the cap, or
 * attempt >= FRAME_ARENA_ATTEMPTS_MAX).
 */
size_t frame_arena_bytes(uint32_t frame_len, uint32_t attempt);

#endif
