/*
 * zk_client_test.c — coordination/zk.c against a real ZooKeeper ensemble
 * (started by test_zk_client.py, connect string in argv[1]).
 *
 * One local shard (shard_group_start_local) driven from this thread with
 * shard_run_once, so the test reads like a script: start an operation,
 * run turns until its callback recorded the answer (bounded), check.
 * Checks: connect; persistent / ephemeral / sequential creates; get/set
 * with versions (ZBADVERSION on a stale one); get_children + child watch;
 * exists watches (deleted, created); multi that fails changes nothing, one
 * that succeeds applies all; create_parents; the ZK_CALLS_MAX bound; close
 * of a second session removes its ephemeral node, fails its pending
 * watch with LOST, and zk_close from inside a callback; session expiry
 * (a raw second handle with the same id and password closes the session):
 * EXPIRED, watches LOST, a NEW session where the ephemeral node can be
 * re-created; kill -9 of the server we are connected to (the driver does
 * it when we print "KILL <port>" and answers "OK"): DISCONNECTED, then
 * CONNECTED to another server with the same session and its ephemeral
 * node intact.
 *
 * Prints one line per check ("ok ..." / "FAIL ..."); exits 1 on any
 * failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "log.h"
#include "shard.h"
#include "zk.h"

#define SESSION_TIMEOUT_MS 6000
#define WAIT_S 30

static int failures;
static struct shard *the_shard;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failures++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drives the shard until *flag becomes true or WAIT_S pass. */
static bool run_until(const bool *flag)
{
	double deadline = now_s() + WAIT_S;

	while (!*flag && now_s() < deadline)
		shard_run_once(the_shard, 20 * 1000 * 1000);
	return *flag;
}

static void run_for_ms(int ms)
{
	double deadline = now_s() + ms / 1000.0;

	while (now_s() < deadline)
		shard_run_once(the_shard, 5 * 1000 * 1000);
}

/* ---- session events ---- */

struct sess {
	int new_count, connected_count, disconnected_count, expired_count;
	int64_t last_id;
	bool got_new, got_connected, got_disconnected, got_expired;
};

static void sess_event(struct zk *zk, const struct zk_event *ev, void *arg)
{
	struct sess *s = arg;

	(void)zk;
	s->last_id = ev->session_id;
	if (ev->type == ZK_EVENT_SESSION_NEW) {
		s->new_count++;
		s->got_new = true;
	} else if (ev->type == ZK_EVENT_CONNECTED) {
		s->connected_count++;
		s->got_connected = true;
	} else if (ev->type == ZK_EVENT_DISCONNECTED) {
		s->disconnected_count++;
		s->got_disconnected = true;
	} else if (ev->type == ZK_EVENT_EXPIRED) {
		s->expired_count++;
		s->got_expired = true;
	}
}

/* ---- one operation's answer ---- */

struct ans {
	bool done;
	int calls;
	enum sl_err err;
	int zrc;
	char path[ZK_PATH_MAX];
	char data[256];
	uint32_t data_len;
	struct zk_stat stat;
	bool stat_valid;
	uint32_t child_count;
	char children[8][64];
	uint32_t op_count;
	int op_zrc[8];
};

static void ans_done(struct zk *zk, const struct zk_result *r, void *arg)
{
	struct ans *a = arg;

	(void)zk;
	a->done = true;
	a->calls++;
	a->err = r->err;
	a->zrc = r->zrc;
	if (r->path != NULL)
		snprintf(a->path, sizeof(a->path), "%s", r->path);
	a->data_len = r->data_len;
	if (r->data != NULL)
		memcpy(a->data, r->data, SL_MIN(r->data_len, (uint32_t)sizeof(a->data) - 1));
	a->stat = r->stat;
	a->stat_valid = r->stat_valid;
	a->child_count = r->child_count;
	for (uint32_t i = 0; i < r->child_count && i < 8; i++)
		snprintf(a->children[i], sizeof(a->children[i]), "%s", r->children[i]);
	a->op_count = r->op_count;
	for (uint32_t i = 0; i < r->op_count && i < 8; i++)
		a->op_zrc[i] = r->ops[i].zrc;
}

struct wat {
	bool fired;
	int calls;
	enum zk_watch_type type;
	char path[ZK_PATH_MAX];
};

static void wat_fire(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct wat *w = arg;

	(void)zk;
	w->fired = true;
	w->calls++;
	w->type = ev->type;
	snprintf(w->path, sizeof(w->path), "%s", ev->path != NULL ? ev->path : "");
}

static char base[128];

static const char *P(const char *rel)
{
	static char buf[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s%s", base, rel);
	return buf[k];
}

/* Synchronous helpers: start, run until answered, return the answer. */
#define ANS_RUN(a, start) do { memset(&(a), 0, sizeof(a)); \
	enum sl_err st_ = (start); \
	if (st_ != SL_OK) { check(false, "start %s: %s", #start, sl_err_str(st_)); } \
	else if (!run_until(&(a).done)) check(false, "no answer: %s", #start); } while (0)

/* ---- raw handle used to expire a session ---- */

static bool raw_connected;

static void raw_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh; (void)path; (void)ctx;
	if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE)
		raw_connected = true;
}

/*
 * Opens a second handle on session (id, passwd), waits until it connected,
 * then closes it: the server ends the session, so the first client's
 * session is expired. Blocks this thread (the shard is not driven).
 */
static bool expire_session(const char *connect, int64_t id, const char *passwd)
{
	clientid_t cid;
	zhandle_t *zh;
	double deadline = now_s() + WAIT_S;

	memset(&cid, 0, sizeof(cid));
	cid.client_id = id;
	memcpy(cid.passwd, passwd, sizeof(cid.passwd));
	raw_connected = false;
	zh = zookeeper_init(connect, raw_watch, SESSION_TIMEOUT_MS, &cid, NULL, 0);
	if (zh == NULL)
		return false;
	while (!raw_connected && now_s() < deadline) {
		int fd = -1, interest = 0;
		struct timeval tv;
		if (zookeeper_interest(zh, &fd, &interest, &tv) != ZOK && fd < 0) {
			usleep(10000);
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = 0 };
		if (interest & ZOOKEEPER_READ)
			pfd.events |= POLLIN;
		if (interest & ZOOKEEPER_WRITE)
			pfd.events |= POLLOUT;
		int ms = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
		int n = poll(&pfd, fd >= 0 ? 1 : 0, SL_MIN(SL_MAX(ms, 1), 100));
		int ev = 0;
		if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			ev |= ZOOKEEPER_READ;
		if (n > 0 && (pfd.revents & POLLOUT))
			ev |= ZOOKEEPER_WRITE;
		zookeeper_process(zh, ev);
	}
	bool ok = raw_connected && zoo_client_id(zh)->client_id == id;
	zookeeper_close(zh);
	return ok;
}

/* ---- close from inside a callback ---- */

struct inner {
	struct zk *zk;
	bool closed_in_cb;
	bool created;
	int create_calls;
};

static void inner_created(struct zk *zk, const struct zk_result *r, void *arg)
{
	struct inner *in = arg;

	in->create_calls++;
	in->created = r->err == SL_OK;
	zk_close(zk);        /* deferred: we are inside the library's callback */
	in->closed_in_cb = true;
}

static void inner_event(struct zk *zk, const struct zk_event *ev, void *arg)
{
	struct inner *in = arg;

	if (ev->type != ZK_EVENT_SESSION_NEW)
		return;
	if (zk_create(zk, P("/eph3"), "x", 1, ZK_EPHEMERAL, inner_created, in) != SL_OK)
		in->closed_in_cb = true;   /* the check below then fails */
}

static void test_basic(struct zk *zk, struct sess *s)
{
	struct ans a, b;
	struct wat w, w2;

	check(s->new_count == 1 && s->last_id != 0 && zk_session_id(zk) == s->last_id,
	      "connect: SESSION_NEW once, session 0x%llx", (unsigned long long)s->last_id);
	check(zk_connected(zk) && zk_server_port(zk) > 0, "connected to port %d", zk_server_port(zk));

	ANS_RUN(a, zk_create_parents(zk, P("/x/y"), ans_done, &a));
	check(a.err == SL_OK && a.calls == 1, "create_parents %s: %s", P("/x"), sl_err_str(a.err));
	ANS_RUN(a, zk_create_parents(zk, P("/x/y"), ans_done, &a));
	check(a.err == SL_OK, "create_parents again ignores ZNODEEXISTS");
	ANS_RUN(a, zk_create(zk, P("/x/y"), "v1", 2, ZK_PERSISTENT, ans_done, &a));
	check(a.err == SL_OK && strcmp(a.path, P("/x/y")) == 0, "create persistent -> %s", a.path);
	ANS_RUN(a, zk_create(zk, P("/x/y"), "v1", 2, ZK_PERSISTENT, ans_done, &a));
	check(a.zrc == ZK_ZNODEEXISTS && a.err == SL_EEXIST, "create twice: ZNODEEXISTS (%d)", a.zrc);
	ANS_RUN(a, zk_create(zk, P("/seq-"), NULL, 0, ZK_SEQUENCE, ans_done, &a));
	check(a.err == SL_OK && strncmp(a.path, P("/seq-00"), strlen(P("/seq-00"))) == 0,
	      "create sequential -> %s", a.path);
	ANS_RUN(a, zk_create(zk, P("/eph"), "e", 1, ZK_EPHEMERAL, ans_done, &a));
	check(a.err == SL_OK, "create ephemeral");
	ANS_RUN(a, zk_exists(zk, P("/eph"), NULL, NULL, ans_done, &a));
	check(a.err == SL_OK && a.stat_valid && a.stat.ephemeral_owner == zk_session_id(zk),
	      "ephemeral owner is our session");

	ANS_RUN(a, zk_get(zk, P("/x/y"), NULL, NULL, ans_done, &a));
	check(a.err == SL_OK && a.data_len == 2 && memcmp(a.data, "v1", 2) == 0 &&
	      a.stat.version == 0, "get: data v1 version %d", a.stat.version);
	ANS_RUN(a, zk_set(zk, P("/x/y"), "v2", 2, 0, ans_done, &a));
	check(a.err == SL_OK && a.stat.version == 1, "set with version 0 -> version %d",
	      a.stat.version);
	ANS_RUN(a, zk_set(zk, P("/x/y"), "v3", 2, 0, ans_done, &a));
	check(a.zrc == ZK_ZBADVERSION && a.err == SL_ERANGE, "set with stale version: ZBADVERSION");
	ANS_RUN(a, zk_get(zk, P("/x/y"), NULL, NULL, ans_done, &a));
	check(a.err == SL_OK && memcmp(a.data, "v2", 2) == 0 && a.stat.version == 1,
	      "stale set changed nothing");
	ANS_RUN(a, zk_get(zk, P("/nope"), NULL, NULL, ans_done, &a));
	check(a.zrc == ZK_ZNONODE && a.err == SL_ENOTFOUND, "get missing: ZNONODE");
	ANS_RUN(a, zk_delete(zk, P("/x/y"), 0, ans_done, &a));
	check(a.zrc == ZK_ZBADVERSION, "delete with stale version: ZBADVERSION");

	/* children watch */
	memset(&w, 0, sizeof(w));
	ANS_RUN(a, zk_get_children(zk, P("/x"), wat_fire, &w, ans_done, &a));
	check(a.err == SL_OK && a.child_count == 1 && strcmp(a.children[0], "y") == 0,
	      "get_children: [y]");
	check(!w.fired && zk_watches_pending(zk) == 1, "child watch pending");
	ANS_RUN(b, zk_create(zk, P("/x/z"), NULL, 0, ZK_PERSISTENT, ans_done, &b));
	run_until(&w.fired);
	check(w.calls == 1 && w.type == ZK_WATCH_CHILD && strcmp(w.path, P("/x")) == 0,
	      "child watch fired once on %s", w.path);

	/* exists watches: deleted, then created */
	ANS_RUN(a, zk_create(zk, P("/gone"), NULL, 0, ZK_PERSISTENT, ans_done, &a));
	memset(&w, 0, sizeof(w));
	ANS_RUN(a, zk_exists(zk, P("/gone"), wat_fire, &w, ans_done, &a));
	check(a.err == SL_OK, "exists with watch");
	ANS_RUN(b, zk_delete(zk, P("/gone"), -1, ans_done, &b));
	check(b.err == SL_OK, "delete");
	run_until(&w.fired);
	check(w.calls == 1 && w.type == ZK_WATCH_DELETED, "exists watch fired: deleted");
	memset(&w2, 0, sizeof(w2));
	ANS_RUN(a, zk_exists(zk, P("/gone"), wat_fire, &w2, ans_done, &a));
	check(a.zrc == ZK_ZNONODE && zk_watches_pending(zk) == 1,
	      "exists on a missing node: ZNONODE, watch set");
	ANS_RUN(b, zk_create(zk, P("/gone"), NULL, 0, ZK_PERSISTENT, ans_done, &b));
	run_until(&w2.fired);
	check(w2.calls == 1 && w2.type == ZK_WATCH_CREATED && zk_watches_pending(zk) == 0,
	      "exists watch fired: created");
	memset(&w, 0, sizeof(w));
	ANS_RUN(a, zk_get(zk, P("/nope"), wat_fire, &w, ans_done, &a));
	check(a.zrc == ZK_ZNONODE && zk_watches_pending(zk) == 0, "failed get sets no watch");

	/* multi */
	struct zk_op bad[3] = {
		{ .type = ZK_OP_SET, .path = P("/x/y"), .data = "m", .data_len = 1, .version = -1 },
		{ .type = ZK_OP_CREATE, .path = P("/multi-new"), .version = -1 },
		{ .type = ZK_OP_CHECK, .path = P("/x/y"), .version = 99 },
	};
	ANS_RUN(a, zk_multi(zk, bad, 3, ans_done, &a));
	check(a.err != SL_OK && a.op_count == 3 && a.op_zrc[2] == ZK_ZBADVERSION,
	      "multi with failing check fails (op results %d %d %d)", a.op_zrc[0], a.op_zrc[1],
	      a.op_zrc[2]);
	ANS_RUN(a, zk_get(zk, P("/x/y"), NULL, NULL, ans_done, &a));
	ANS_RUN(b, zk_exists(zk, P("/multi-new"), NULL, NULL, ans_done, &b));
	check(a.data_len == 2 && memcmp(a.data, "v2", 2) == 0 && a.stat.version == 1 &&
	      b.zrc == ZK_ZNONODE, "failed multi changed nothing");
	struct zk_op good[3] = {
		{ .type = ZK_OP_CHECK, .path = P("/x/y"), .version = 1 },
		{ .type = ZK_OP_CREATE, .path = P("/multi-new"), .data = "n", .data_len = 1,
		  .version = -1 },
		{ .type = ZK_OP_DELETE, .path = P("/x/z"), .version = -1 },
	};
	ANS_RUN(a, zk_multi(zk, good, 3, ans_done, &a));
	check(a.err == SL_OK && a.op_count == 3 && a.op_zrc[0] == 0 && a.op_zrc[1] == 0 &&
	      a.op_zrc[2] == 0, "multi succeeds");
	ANS_RUN(a, zk_exists(zk, P("/multi-new"), NULL, NULL, ans_done, &a));
	ANS_RUN(b, zk_exists(zk, P("/x/z"), NULL, NULL, ans_done, &b));
	check(a.err == SL_OK && b.zrc == ZK_ZNONODE, "multi applied every op");

	/* bound on outstanding operations */
	static struct ans many[ZK_CALLS_MAX + 1];
	uint32_t queued = 0;
	enum sl_err last = SL_OK;
	memset(many, 0, sizeof(many));
	for (uint32_t i = 0; i <= ZK_CALLS_MAX; i++) {
		last = zk_exists(zk, P("/x"), NULL, NULL, ans_done, &many[i]);
		if (last != SL_OK)
			break;
		queued++;
	}
	check(queued == ZK_CALLS_MAX && last == SL_EAGAIN, "ZK_CALLS_MAX bound: %u queued, then %s",
	      queued, sl_err_str(last));
	run_until(&many[ZK_CALLS_MAX - 1].done);
	uint32_t answered = 0;
	for (uint32_t i = 0; i < ZK_CALLS_MAX; i++)
		answered += many[i].calls == 1 && many[i].err == SL_OK;
	check(answered == ZK_CALLS_MAX && zk_calls_outstanding(zk) == 0,
	      "all %u answered once", answered);
	check(zk_create(zk, P("/big"), many, ZK_DATA_MAX + 1, 0, ans_done, &a) == SL_EINVAL,
	      "data above ZK_DATA_MAX: SL_EINVAL");
}

static void test_second_session(struct zk *zk, const char *connect)
{
	struct sess s2 = { 0 };
	struct zk *zk2 = NULL;
	struct ans a, pend;
	struct wat w, lost;
	struct inner in = { 0 };

	check(zk_open(&zk2, the_shard, connect, SESSION_TIMEOUT_MS, sess_event, &s2) == SL_OK,
	      "open second session");
	run_until(&s2.got_new);
	check(s2.got_new && s2.last_id != zk_session_id(zk), "second session is another one");
	ANS_RUN(a, zk_create(zk2, P("/eph2"), "2", 1, ZK_EPHEMERAL, ans_done, &a));
	check(a.err == SL_OK, "second session creates an ephemeral node");
	ANS_RUN(a, zk_sync(zk, P("/eph2"), ans_done, &a));
	check(a.err == SL_OK && strcmp(a.path, P("/eph2")) == 0, "sync (reads across sessions)");
	memset(&w, 0, sizeof(w));
	ANS_RUN(a, zk_exists(zk, P("/eph2"), wat_fire, &w, ans_done, &a));
	check(a.err == SL_OK && a.stat.ephemeral_owner == s2.last_id, "first session sees it");
	memset(&lost, 0, sizeof(lost));
	ANS_RUN(a, zk_get(zk2, P("/x/y"), wat_fire, &lost, ans_done, &a));
	memset(&pend, 0, sizeof(pend));
	check(zk_get(zk2, P("/x/y"), NULL, NULL, ans_done, &pend) == SL_OK, "queue a get, then close");
	zk_close(zk2);
	check(pend.calls == 1 && (pend.err == SL_OK || pend.err == SL_ECLOSED),
	      "pending op completed exactly once by close (%s)", sl_err_str(pend.err));
	check(lost.calls == 1 && lost.type == ZK_WATCH_LOST, "pending watch LOST on close");
	run_until(&w.fired);
	check(w.calls == 1 && w.type == ZK_WATCH_DELETED, "ephemeral deleted when its session closed");
	ANS_RUN(a, zk_exists(zk, P("/eph2"), NULL, NULL, ans_done, &a));
	check(a.zrc == ZK_ZNONODE, "ephemeral gone");

	/* zk_close from inside a completion */
	check(zk_open(&in.zk, the_shard, connect, SESSION_TIMEOUT_MS, inner_event, &in) == SL_OK,
	      "open third session");
	run_until(&in.closed_in_cb);
	run_for_ms(50);
	check(in.created && in.create_calls == 1, "close from inside a callback");
	ANS_RUN(a, zk_sync(zk, P("/eph3"), ans_done, &a));
	ANS_RUN(a, zk_exists(zk, P("/eph3"), NULL, NULL, ans_done, &a));
	check(a.zrc == ZK_ZNONODE, "its ephemeral node is gone");
}

static void test_expiry(struct zk *zk, struct sess *s, const char *connect)
{
	char passwd[16];
	int64_t old_id = zk_session_id(zk);
	struct wat w;
	struct ans a;

	memset(&w, 0, sizeof(w));
	ANS_RUN(a, zk_get(zk, P("/x/y"), wat_fire, &w, ans_done, &a));
	zk_session_passwd(zk, passwd, sizeof(passwd));
	s->got_expired = s->got_new = false;
	check(expire_session(connect, old_id, passwd), "raw handle took over session and closed it");
	struct ans racing;
	memset(&racing, 0, sizeof(racing));
	check(zk_get(zk, P("/x/y"), NULL, NULL, ans_done, &racing) == SL_OK,
	      "queue a get on the dying session");
	run_until(&s->got_expired);
	check(s->got_expired && s->expired_count == 1, "EXPIRED reported");
	check(w.calls == 1 && w.type == ZK_WATCH_LOST && zk_watches_pending(zk) == 0,
	      "watch LOST on expiry");
	run_until(&racing.done);
	check(racing.calls == 1 && (racing.err == SL_OK || racing.err == SL_EAGAIN),
	      "op racing the expiry answered once (%s, %d)", sl_err_str(racing.err), racing.zrc);
	run_until(&s->got_new);
	check(s->got_new && zk_session_id(zk) != old_id && zk_session_id(zk) != 0,
	      "new session 0x%llx after expiry", (unsigned long long)zk_session_id(zk));
	ANS_RUN(a, zk_exists(zk, P("/eph"), NULL, NULL, ans_done, &a));
	check(a.zrc == ZK_ZNONODE, "old ephemeral gone with the expired session");
	ANS_RUN(a, zk_create(zk, P("/eph"), "e", 1, ZK_EPHEMERAL, ans_done, &a));
	check(a.err == SL_OK, "ephemeral re-created in the new session");
	ANS_RUN(a, zk_exists(zk, P("/eph"), NULL, NULL, ans_done, &a));
	check(a.err == SL_OK && a.stat.ephemeral_owner == zk_session_id(zk),
	      "owned by the new session");
}

static bool read_line(char *buf, size_t cap)
{
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	double deadline = now_s() + WAIT_S;

	while (now_s() < deadline) {
		shard_run_once(the_shard, 0);
		if (poll(&pfd, 1, 20) > 0)
			return fgets(buf, (int)cap, stdin) != NULL;
	}
	return false;
}

static void test_server_kill(struct zk *zk, struct sess *s)
{
	int64_t id = zk_session_id(zk);
	int port = zk_server_port(zk);
	char line[64];
	struct ans a;

	s->got_disconnected = s->got_connected = s->got_new = false;
	printf("KILL %d\n", port);
	fflush(stdout);
	check(read_line(line, sizeof(line)) && strncmp(line, "OK", 2) == 0,
	      "driver killed server on port %d", port);
	run_until(&s->got_disconnected);
	check(s->got_disconnected, "DISCONNECTED reported");
	run_until(&s->got_connected);
	check(s->got_connected && !s->got_new && zk_session_id(zk) == id,
	      "CONNECTED again, same session");
	check(zk_server_port(zk) > 0 && zk_server_port(zk) != port, "now on port %d",
	      zk_server_port(zk));
	ANS_RUN(a, zk_exists(zk, P("/eph"), NULL, NULL, ans_done, &a));
	check(a.err == SL_OK && a.stat.ephemeral_owner == id, "ephemeral survived the failover");
	ANS_RUN(a, zk_set(zk, P("/x/y"), "v9", 2, -1, ans_done, &a));
	check(a.err == SL_OK, "writes work after failover");
}

int main(int argc, char **argv)
{
	struct shard_group_options opt;
	struct shard_group *g = NULL;
	struct sess s = { 0 };
	struct zk *zk = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: %s host:port,...\n", argv[0]);
		return 2;
	}
	log_level_set(LOG_WARN);
	snprintf(base, sizeof(base), "/sl-zk-test-%d", (int)getpid());
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	if (shard_group_create(&g, &opt) != SL_OK || shard_group_start_local(g) != SL_OK) {
		fprintf(stderr, "cannot start a shard\n");
		return 1;
	}
	the_shard = shard_group_shard(g, 0);
	check(zk_open(&zk, the_shard, argv[1], SESSION_TIMEOUT_MS, sess_event, &s) == SL_OK,
	      "zk_open");
	struct zk *bad = NULL;
	check(zk_open(&bad, the_shard, "", SESSION_TIMEOUT_MS, sess_event, &s) == SL_EINVAL &&
	      bad == NULL,
	      "zk_open rejects an empty connect string");
	run_until(&s.got_new);
	if (s.got_new) {
		test_basic(zk, &s);
		test_second_session(zk, argv[1]);
		test_expiry(zk, &s, argv[1]);
		test_server_kill(zk, &s);
	} else {
		check(false, "no session within %d s", WAIT_S);
	}
	check(zk_calls_outstanding(zk) == 0, "nothing outstanding at the end");
	zk_close(zk);
	shard_group_stop(g);
	while (shard_group_join(g) == SL_EAGAIN)
		;
	shard_group_destroy(g);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
