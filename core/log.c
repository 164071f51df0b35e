/*
 * log.c — see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level_current = LOG_INFO;

void log_level_set(enum log_level level)
{
	log_level_current = level;
}

enum log_level log_level_get(void)
{
	return log_level_current;
}

int log_level_parse(const char *name)
{
	static const char *const names[] = { "debug", "info", "warn", "error", "off" };
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

void log_msg(enum log_level level, int shard_id, const char *fmt, ...)
{
	static const char tags[] = "DIWE";
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	if (level < log_level_current || level >= LOG_OFF)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	if (shard_id >= 0)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %c [s%d] ",
				      ts.tv_nsec / 1000000, tags[level], shard_id);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %c [main] ",
				      ts.tv_nsec / 1000000, tags[level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from different shards never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
