/*
 * checkpoint.c — see checkpoint.h.
 *
 * The reader treats the file as untrusted bytes: every line is bounded, the
 * count is checked against CHECKPOINT_ENTRIES_MAX before any loop, numbers
 * are parsed without strtoll's silent clamping.
 */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define CHECKPOINT_VERSION 0

static int checkpoint_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > CHECKPOINT_KEY_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* Writes all of buf; returns 0 or -errno. */
static int checkpoint_write_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;

	/* Each turn writes at least one byte or fails. */
	while (done < len) {
		ssize_t w = write(fd, buf + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
}

int checkpoint_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len)
{
	char tmp[CHECKPOINT_NAME_BYTES_MAX];
	int fd, rc;

	SL_ASSERT(dirfd >= 0 && name != NULL && (buf != NULL || len == 0));
	rc = snprintf(tmp, sizeof(tmp), "%s%s", name, CHECKPOINT_TMP_SUFFIX);
	if (rc < 0 || (size_t)rc >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = checkpoint_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
		rc = -errno;
	if (rc == 0 && fsync(dirfd) != 0)
		rc = -errno;
	if (rc != 0)
		(void)unlinkat(dirfd, tmp, 0);  /* ENOENT once the rename happened */
	SL_ASSERT(rc <= 0);
	return rc;
}

enum sl_err checkpoint_write(int dirfd, const char *name, const struct checkpoint_entry *entries,
			     uint32_t count)
{
	char buf[CHECKPOINT_FILE_BYTES_MAX];
	size_t len = 0;
	int rc;

	SL_ASSERT(name != NULL && (entries != NULL || count == 0));
	if (count > CHECKPOINT_ENTRIES_MAX)
		return SL_EINVAL;
	if (strlen(name) + sizeof(CHECKPOINT_TMP_SUFFIX) > CHECKPOINT_NAME_BYTES_MAX)
		return SL_EINVAL;
	len = (size_t)snprintf(buf, sizeof(buf), "%d\n%u\n", CHECKPOINT_VERSION, count);
	for (uint32_t i = 0; i < count; i++) {
		if (!checkpoint_key_ok(entries[i].key))
			return SL_EINVAL;
		rc = snprintf(buf + len, sizeof(buf) - len, "%s %lld\n", entries[i].key,
			      (long long)entries[i].value);
		SL_ASSERT(rc > 0 && (size_t)rc < sizeof(buf) - len);
		len += (size_t)rc;
	}
	rc = checkpoint_write_file_atomic(dirfd, name, buf, len);
	if (rc != 0) {
		LOG_E(LOG_NO_SHARD, "checkpoint: writing %s failed: %s", name, strerror(-rc));
		return SL_EIO;
	}
	return SL_OK;
}

/* Parses a decimal int64 from [p, end); returns 0 on success. */
static int checkpoint_parse_i64(const char *p, const char *end, int64_t *out)
{
	int neg = 0;
	uint64_t v = 0;
	uint64_t limit = (uint64_t)INT64_MAX;

	if (p < end && *p == '-') {
		neg = 1;
		limit = (uint64_t)INT64_MAX + 1;
		p++;
	}
	if (p == end || end - p > 19)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (limit - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Returns the next line [*p, eol) and advances past '\n'; NULL if none. */
static const char *checkpoint_line(const char **p, const char *end, const char **eol)
{
	const char *start = *p;
	const char *nl;

	if (start >= end)
		return NULL;
	nl = memchr(start, '\n', (size_t)(end - start));
	if (nl == NULL)
		return NULL;
	*eol = nl;
	*p = nl + 1;
	return start;
}

enum sl_err checkpoint_read(int dirfd, const char *name, struct checkpoint_entry *entries,
			    uint32_t count)
{
	char buf[CHECKPOINT_FILE_BYTES_MAX + 1];
	const char *p, *end, *line, *eol;
	int64_t version, n;
	ssize_t got;
	int fd;

	SL_ASSERT(name != NULL && (entries != NULL || count == 0));
	for (uint32_t i = 0; i < count; i++)
		entries[i].found = 0;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return SL_ENOTFOUND;
		LOG_E(LOG_NO_SHARD, "checkpoint: open %s: %s", name, strerror(errno));
		return SL_EIO;
	}
	got = pread(fd, buf, sizeof(buf), 0);
	int read_errno = errno;
	close(fd);
	if (got < 0) {
		LOG_E(LOG_NO_SHARD, "checkpoint: read %s: %s", name, strerror(read_errno));
		return SL_EIO;
	}
	if ((size_t)got > CHECKPOINT_FILE_BYTES_MAX)
		return SL_ECORRUPT;
	p = buf;
	end = buf + got;

	line = checkpoint_line(&p, end, &eol);
	if (line == NULL || checkpoint_parse_i64(line, eol, &version) != 0 ||
	    version != CHECKPOINT_VERSION)
		return SL_ECORRUPT;
	line = checkpoint_line(&p, end, &eol);
	if (line == NULL || checkpoint_parse_i64(line, eol, &n) != 0 || n < 0 ||
	    n > CHECKPOINT_ENTRIES_MAX)
		return SL_ECORRUPT;
	for (int64_t i = 0; i < n; i++) {
		line = checkpoint_line(&p, end, &eol);
		if (line == NULL)
			return SL_ECORRUPT;
		const char *sp = memchr(line, ' ', (size_t)(eol - line));
		int64_t v;
		if (sp == NULL || sp == line || sp - line > CHECKPOINT_KEY_BYTES_MAX ||
		    checkpoint_parse_i64(sp + 1, eol, &v) != 0)
			return SL_ECORRUPT;
		for (uint32_t k = 0; k < count; k++) {
			size_t klen = strlen(entries[k].key);
			if (klen == (size_t)(sp - line) && memcmp(entries[k].key, line, klen) == 0) {
				entries[k].value = v;
				entries[k].found = 1;
			}
		}
	}
	if (p != end)
		return SL_ECORRUPT;  /* trailing bytes: not a file we wrote */
	return SL_OK;
}
