/*
 * hwcheck.c — see hwcheck.h. The file is read whole (its size is known from
 * fstat and bounded), parsed once to validate and once to hand the entries
 * out, so a corrupt tail never leaves the caller with half a file applied.
 */
#include "hwcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "log.h"

static int hwcheck_topic_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static int hwcheck_topic_ok(const char *t, size_t len)
{
	if (len == 0 || len > HWCHECK_TOPIC_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!hwcheck_topic_char_ok(t[i]))
			return 0;
	return 1;
}

enum sl_err hwcheck_write(int dirfd, const struct hwcheck_entry *entries, uint32_t count,
			  int shard_id)
{
	size_t cap = 32 + (size_t)count * HWCHECK_LINE_BYTES_MAX;
	size_t len;
	char *buf;
	int rc;

	SL_ASSERT(dirfd >= 0 && (entries != NULL || count == 0));
	if (count > HWCHECK_ENTRIES_MAX)
		return SL_EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		const struct hwcheck_entry *e = &entries[i];
		if (e->topic == NULL || !hwcheck_topic_ok(e->topic, strnlen(e->topic,
		    HWCHECK_TOPIC_BYTES_MAX + 1)) || e->partition < 0 || e->hw < 0)
			return SL_EINVAL;
	}
	buf = malloc(cap);
	if (buf == NULL)
		return SL_ENOMEM;
	len = (size_t)snprintf(buf, cap, "0\n%u\n", count);
	for (uint32_t i = 0; i < count; i++) {
		rc = snprintf(buf + len, cap - len, "%s %d %lld\n", entries[i].topic,
			      entries[i].partition, (long long)entries[i].hw);
		SL_ASSERT(rc > 0 && (size_t)rc < cap - len);
		len += (size_t)rc;
	}
	rc = checkpoint_write_file_atomic(dirfd, HWCHECK_FILE_NAME, buf, len);
	free(buf);
	if (rc != 0) {
		LOG_E(shard_id, "hwcheck: writing %s failed: %s", HWCHECK_FILE_NAME, strerror(-rc));
		return SL_EIO;
	}
	return SL_OK;
}

/* Strict decimal in [min, max] up to `stop` (see lepoch.c); 0 or -1. */
static int hwcheck_parse_num(const char **p, const char *end, char stop, int64_t min, int64_t max,
			     int64_t *out)
{
	const char *s = *p;
	int neg = 0, digits = 0;
	uint64_t v = 0;                 /* 19 digits always fit */
	int64_t sv;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	while (s < end && *s >= '0' && *s <= '9' && digits < 19) {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		digits++;
	}
	if (digits == 0 || s >= end || *s != stop || v > (uint64_t)INT64_MAX)
		return -1;
	sv = neg ? -(int64_t)v : (int64_t)v;
	if (sv < min || sv > max)
		return -1;
	*out = sv;
	*p = s + 1;
	return 0;
}

/*
 * Parses the whole file; with `cb` NULL only validates. Returns 0, 1 (cb
 * asked to stop) or -1 (malformed; *line says which line).
 */
static int hwcheck_parse(const char *p, const char *end, hwcheck_entry_fn *cb, void *arg,
			 int64_t *line)
{
	char topic[HWCHECK_TOPIC_BYTES_MAX + 1];
	int64_t version, count, partition, hw;

	*line = 1;
	if (hwcheck_parse_num(&p, end, '\n', 0, 0, &version) != 0)
		return -1;
	*line = 2;
	if (hwcheck_parse_num(&p, end, '\n', 0, HWCHECK_ENTRIES_MAX, &count) != 0)
		return -1;
	for (int64_t i = 0; i < count; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t tlen = sp == NULL ? 0 : (size_t)(sp - p);
		*line = 3 + i;
		if (sp == NULL || !hwcheck_topic_ok(p, tlen))
			return -1;
		memcpy(topic, p, tlen);
		topic[tlen] = '\0';
		p = sp + 1;
		if (hwcheck_parse_num(&p, end, ' ', 0, INT32_MAX, &partition) != 0 ||
		    hwcheck_parse_num(&p, end, '\n', 0, INT64_MAX, &hw) != 0)
			return -1;
		if (cb != NULL && cb(arg, topic, (int32_t)partition, hw) != 0)
			return 1;
	}
	*line = 3 + count;
	return p == end ? 0 : -1;
}

enum sl_err hwcheck_read(int dirfd, hwcheck_entry_fn *cb, void *arg, int shard_id)
{
	enum sl_err err = SL_OK;
	char *buf = NULL;
	struct stat st;
	size_t n = 0;
	int64_t line = 0;
	int fd, parsed;

	SL_ASSERT(dirfd >= 0 && cb != NULL);
	fd = openat(dirfd, HWCHECK_FILE_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return SL_ENOTFOUND;
		LOG_E(shard_id, "hwcheck: open %s: %s", HWCHECK_FILE_NAME, strerror(errno));
		return SL_EIO;
	}
	if (fstat(fd, &st) != 0) {
		LOG_E(shard_id, "hwcheck: fstat %s: %s", HWCHECK_FILE_NAME, strerror(errno));
		err = SL_EIO;
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > HWCHECK_FILE_BYTES_MAX) {
		LOG_E(shard_id, "hwcheck: %s is corrupt: %lld bytes, more than any valid file",
		      HWCHECK_FILE_NAME, (long long)st.st_size);
		err = SL_ECORRUPT;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		err = SL_ENOMEM;
		goto out;
	}
	/* Each turn reads at least one byte or ends; the size bounds the turns. */
	while (n < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_E(shard_id, "hwcheck: read %s: %s", HWCHECK_FILE_NAME, strerror(errno));
			err = SL_EIO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (hwcheck_parse(buf, buf + n, NULL, NULL, &line) != 0) {
		LOG_E(shard_id, "hwcheck: %s is corrupt at line %lld (%zu bytes): expected "
		      "\"0\\n<count>\\n<topic> <partition> <offset>\\n...\"", HWCHECK_FILE_NAME,
		      (long long)line, n);
		err = SL_ECORRUPT;
		goto out;
	}
	parsed = hwcheck_parse(buf, buf + n, cb, arg, &line);
	SL_ASSERT(parsed >= 0);  /* validated above */
out:
	free(buf);
	close(fd);
	return err;
}
