/*
 * frame.c — see frame.h.
 */
#include "frame.h"

enum frame_verdict frame_size_check(int32_t size, int32_t max_bytes)
{
	SL_ASSERT(max_bytes > 0);
	if (size < 0)
		return FRAME_NEGATIVE;
	if (size < FRAME_BYTES_MIN)
		return FRAME_TOO_SMALL;
	if (size > max_bytes)
		return FRAME_TOO_LARGE;
	return FRAME_OK;
}

const char *frame_verdict_str(enum frame_verdict v)
{
	switch (v) {
	case FRAME_OK:
		return "ok";
	case FRAME_NEGATIVE:
		return "negative frame size";
	case FRAME_TOO_SMALL:
		return "frame too small for a request header";
	case FRAME_TOO_LARGE:
		return "frame size exceeds socket.request.max.bytes";
	}
	return "?";
}

size_t frame_arena_bytes(uint32_t frame_len, uint32_t attempt)
{
	size_t bytes = FRAME_ARENA_BYTES_FIRST + frame_len / 4;

	if (attempt >= FRAME_ARENA_ATTEMPTS_MAX)
		return 0;
	for (uint32_t i = 0; i < attempt; i++) {
		if (bytes >= FRAME_ARENA_BYTES_MAX)
			return 0;   /* the previous attempt already had the cap */
		bytes *= 8;
	}
	if (bytes > FRAME_ARENA_BYTES_MAX)
		bytes = FRAME_ARENA_BYTES_MAX;
	SL_ASSERT(bytes >= FRAME_ARENA_BYTES_FIRST);
	return bytes;
}
