/*
 * log.h — leveled logging to stderr with a timestamp and the shard id.
 *
 * The level is process-wide and set once at start-up (before shards start),
 * so reading it from any shard needs no synchronisation. Each line is built
 * in a stack buffer and written with one write(2), so lines from different
 * shards never interleave.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Shard id used for lines logged outside any shard (main, setup, tests). */
#define LOG_NO_SHARD (-1)

void log_level_set(enum log_level level);
enum log_level log_level_get(void);
/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, int shard_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_D(shard_id, ...) \
	do { if (log_level_get() <= LOG_DEBUG) log_msg(LOG_DEBUG, shard_id, __VA_ARGS__); } while (0)
#define LOG_I(shard_id, ...) log_msg(LOG_INFO, shard_id, __VA_ARGS__)
#define LOG_W(shard_id, ...) log_msg(LOG_WARN, shard_id, __VA_ARGS__)
#define LOG_E(shard_id, ...) log_msg(LOG_ERROR, shard_id, __VA_ARGS__)

#endif
