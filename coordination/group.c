/*
 * group.c — the classic consumer-group state machine (see group.h for the
 * states, transitions and invariants). Pure: no I/O, no clock of its own.
 *
 * Protocol selection follows Kafka's vote: the candidates are the
 * protocols every member supports; each member votes for the first
 * candidate in its own preference order; the most votes win (ties: the
 * candidate the first member prefers).
 */
#include "group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void group_config_default(struct group_config *c)
{
	c->initial_rebalance_delay_ms = 3000;
	c->max_size = INT32_MAX;
	c->min_session_timeout_ms = 6000;
	c->max_session_timeout_ms = 1800000;
}

static char *group_strdup(const char *s, int32_t len)
{
	if (s == NULL || len < 0)
		return NULL;
	char *p = malloc((size_t)len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, (size_t)len);
	p[len] = '\0';
	return p;
}

static bool group_str_eq(const char *a, const char *s, int32_t len)
{
	if (a == NULL || s == NULL || len < 0)
		return a == NULL && (s == NULL || len < 0);
	return strlen(a) == (size_t)len && memcmp(a, s, (size_t)len) == 0;
}

enum sl_err group_create(struct group **out, const char *id, size_t id_len,
			 const struct group_config *cfg, const struct group_ops *ops,
			 void *ops_ctx, uint64_t *id_seq)
{
	struct group *g = calloc(1, sizeof(*g));

	SL_ASSERT(cfg != NULL && ops != NULL && id_seq != NULL && id_len <= INT32_MAX);
	if (g == NULL)
		return SL_ENOMEM;
	g->group_id = group_strdup(id, (int32_t)id_len);
	if (g->group_id == NULL) {
		free(g);
		return SL_ENOMEM;
	}
	g->state = GROUP_EMPTY;
	g->cfg = cfg;
	g->ops = ops;
	g->ops_ctx = ops_ctx;
	g->id_seq = id_seq;
	*out = g;
	SL_ASSERT(group_check(g));
	return SL_OK;
}

static void group_member_free(struct group_member *m)
{
	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->protocol_count; i++) {
		free(m->protocols[i].name);
		free(m->protocols[i].meta);
	}
	free(m->protocols);
	free(m->assignment);
	free(m->member_id);
	free(m->instance_id);
	free(m->client_id);
	free(m->client_host);
	free(m);
}

void group_destroy(struct group *g)
{
	if (g == NULL)
		return;
	for (uint32_t i = 0; i < g->member_count; i++) {
		SL_ASSERT(g->members[i]->join_waiter == NULL && g->members[i]->sync_waiter == NULL);
		group_member_free(g->members[i]);
	}
	for (uint32_t i = 0; i < g->pending_count; i++)
		free(g->pending_ids[i]);
	free(g->pending_ids);
	free(g->pending_deadline_ms);
	free(g->members);
	free(g->protocol_type);
	free(g->protocol_name);
	free(g->group_id);
	free(g);
}

const char *group_state_name(enum group_state s)
{
	switch (s) {
	case GROUP_EMPTY: return "Empty";
	case GROUP_PREPARING_REBALANCE: return "PreparingRebalance";
	case GROUP_COMPLETING_REBALANCE: return "CompletingRebalance";
	case GROUP_STABLE: return "Stable";
	case GROUP_DEAD: return "Dead";
	}
	return "Unknown";
}

int group_state_parse(const char *name, size_t len)
{
	for (int s = GROUP_EMPTY; s <= GROUP_DEAD; s++) {
		const char *n = group_state_name((enum group_state)s);
		if (strlen(n) == len && strncasecmp(n, name, len) == 0)
			return s;
	}
	return -1;
}

struct group_member *group_member_find(const struct group *g, const char *id, int32_t len)
{
	for (uint32_t i = 0; i < g->member_count; i++)
		if (group_str_eq(g->members[i]->member_id, id, len))
			return g->members[i];
	return NULL;
}

static struct group_member *group_instance_find(const struct group *g, const char *id, int32_t len)
{
	if (id == NULL || len < 0)
		return NULL;
	for (uint32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->instance_id != NULL &&
		    group_str_eq(g->members[i]->instance_id, id, len))
			return g->members[i];
	return NULL;
}

bool group_check(const struct group *g)
{
	if (g->member_count > GROUP_MEMBERS_MAX || (int64_t)g->member_count > g->cfg->max_size)
		return false;
	if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE) {
		if (g->member_count == 0 || g->generation <= 0 || g->protocol_name == NULL ||
		    g->leader_id == NULL || group_member_find(g, g->leader_id,
							      (int32_t)strlen(g->leader_id)) == NULL)
			return false;
	}
	if ((g->state == GROUP_EMPTY || g->state == GROUP_DEAD) && g->member_count != 0)
		return false;
	for (uint32_t i = 0; i < g->member_count; i++) {
		const struct group_member *m = g->members[i];
		if (m->sync_waiter != NULL && g->state != GROUP_COMPLETING_REBALANCE)
			return false;
		if (m->join_waiter != NULL && g->state != GROUP_PREPARING_REBALANCE)
			return false;
		for (uint32_t j = i + 1; m->instance_id != NULL && j < g->member_count; j++)
			if (g->members[j]->instance_id != NULL &&
			    strcmp(m->instance_id, g->members[j]->instance_id) == 0)
				return false;
	}
	return true;
}

/* ---- answers ---- */

static void group_join_answer_error(struct group *g, void *waiter, int16_t err,
				    const char *member_id)
{
	struct group_join_result r = {
		.error_code = err, .generation = -1, .member_id = member_id != NULL ? member_id : "",
		.leader_id = "", .protocol_name = NULL, .protocol_type = NULL,
	};
	g->ops->join_done(g->ops_ctx, g, waiter, &r);
}

/* Answers member m's held join with the current generation. */
static void group_join_answer(struct group *g, struct group_member *m, bool skip_assignment)
{
	void *w = m->join_waiter;
	struct group_join_result r = {
		.error_code = GROUP_KERR_NONE, .generation = g->generation,
		.protocol_type = g->protocol_type, .protocol_name = g->protocol_name,
		.leader_id = g->leader_id, .member_id = m->member_id,
		.is_leader = g->leader_id != NULL && strcmp(g->leader_id, m->member_id) == 0,
		.skip_assignment = skip_assignment,
	};

	SL_ASSERT(w != NULL);
	m->join_waiter = NULL;
	g->ops->join_done(g->ops_ctx, g, w, &r);
}

static void group_sync_answer(struct group *g, struct group_member *m, int16_t err)
{
	void *w = m->sync_waiter;

	SL_ASSERT(w != NULL);
	m->sync_waiter = NULL;
	if (err == GROUP_KERR_NONE)
		g->ops->sync_done(g->ops_ctx, g, w, err, m->assignment, m->assignment_len);
	else
		g->ops->sync_done(g->ops_ctx, g, w, err, NULL, 0);
}

static void group_changed(struct group *g)
{
	if (g->ops->changed != NULL)
		g->ops->changed(g->ops_ctx, g);
}

/* ---- members ---- */

static void group_remove_member_at(struct group *g, uint32_t i, int16_t waiter_err)
{
	struct group_member *m = g->members[i];

	SL_ASSERT(i < g->member_count);
	if (m->join_waiter != NULL) {
		void *w = m->join_waiter;
		m->join_waiter = NULL;
		group_join_answer_error(g, w, waiter_err, m->member_id);
	}
	if (m->sync_waiter != NULL) {
		void *w = m->sync_waiter;
		m->sync_waiter = NULL;
		g->ops->sync_done(g->ops_ctx, g, w, waiter_err, NULL, 0);
	}
	if (g->leader_id == m->member_id)
		g->leader_id = NULL;
	g->members[i] = g->members[--g->member_count];
	group_member_free(m);
	if (g->leader_id == NULL && g->member_count > 0)
		g->leader_id = g->members[0]->member_id;
}

static enum sl_err group_member_set_protocols(struct group_member *m,
					      const struct group_join_req *jr)
{
	struct group_protocol *p = calloc(jr->protocol_count + 1, sizeof(*p));

	if (p == NULL)
		return SL_ENOMEM;
	for (uint32_t i = 0; i < jr->protocol_count; i++) {
		int32_t ml = SL_MAX(jr->protocol_meta_lens[i], 0);
		p[i].name = group_strdup(jr->protocol_names[i], jr->protocol_name_lens[i]);
		p[i].meta = malloc((size_t)ml + 1);
		p[i].meta_len = ml;
		if (p[i].name == NULL || p[i].meta == NULL) {
			for (uint32_t j = 0; j <= i; j++) {
				free(p[j].name);
				free(p[j].meta);
			}
			free(p);
			return SL_ENOMEM;
		}
		if (ml > 0)
			memcpy(p[i].meta, jr->protocol_metas[i], (size_t)ml);
	}
	for (uint32_t i = 0; i < m->protocol_count; i++) {
		free(m->protocols[i].name);
		free(m->protocols[i].meta);
	}
	free(m->protocols);
	m->protocols = p;
	m->protocol_count = jr->protocol_count;
	return SL_OK;
}

/* True when jr carries exactly m's protocols and metadata. */
static bool group_member_same_protocols(const struct group_member *m,
					const struct group_join_req *jr)
{
	if (m->protocol_count != jr->protocol_count)
		return false;
	for (uint32_t i = 0; i < m->protocol_count; i++) {
		if (!group_str_eq(m->protocols[i].name, jr->protocol_names[i],
				  jr->protocol_name_lens[i]))
			return false;
		if (m->protocols[i].meta_len != SL_MAX(jr->protocol_meta_lens[i], 0) ||
		    (m->protocols[i].meta_len > 0 &&
		     memcmp(m->protocols[i].meta, jr->protocol_metas[i],
			    (size_t)m->protocols[i].meta_len) != 0))
			return false;
	}
	return true;
}

static bool group_member_supports(const struct group_member *m, const char *name)
{
	for (uint32_t i = 0; i < m->protocol_count; i++)
		if (strcmp(m->protocols[i].name, name) == 0)
			return true;
	return false;
}

/* Can jr join: protocol type equal and one protocol common to everyone. */
static bool group_protocols_compatible(const struct group *g, const struct group_join_req *jr)
{
	if (jr->protocol_type_len <= 0 || jr->protocol_count == 0)
		return false;
	if (g->member_count == 0)
		return true;
	if (!group_str_eq(g->protocol_type, jr->protocol_type, jr->protocol_type_len))
		return false;
	for (uint32_t p = 0; p < jr->protocol_count; p++) {
		bool all = true;
		char name[GROUP_ID_BYTES_MAX + 1];
		int32_t len = SL_MIN(SL_MAX(jr->protocol_name_lens[p], 0), (int32_t)GROUP_ID_BYTES_MAX);
		memcpy(name, jr->protocol_names[p], (size_t)len);
		name[len] = '\0';
		for (uint32_t i = 0; i < g->member_count && all; i++)
			all = group_member_supports(g->members[i], name);
		if (all)
			return true;
	}
	return false;
}

/* Kafka's vote (file comment). NULL when there is no common protocol. */
static const char *group_select_protocol(const struct group *g)
{
	const struct group_member *first = g->members[0];
	const char *best = NULL;
	uint32_t best_votes = 0;

	for (uint32_t c = 0; c < first->protocol_count; c++) {
		const char *cand = first->protocols[c].name;
		bool all = true;
		for (uint32_t i = 1; i < g->member_count && all; i++)
			all = group_member_supports(g->members[i], cand);
		if (!all)
			continue;
		uint32_t votes = 0;
		for (uint32_t i = 0; i < g->member_count; i++) {
			const struct group_member *m = g->members[i];
			/* m's first protocol that every member supports */
			for (uint32_t k = 0; k < m->protocol_count; k++) {
				bool common = true;
				for (uint32_t j = 0; j < g->member_count && common; j++)
					common = group_member_supports(g->members[j],
								       m->protocols[k].name);
				if (!common)
					continue;
				if (strcmp(m->protocols[k].name, cand) == 0)
					votes++;
				break;
			}
		}
		if (best == NULL || votes > best_votes) {
			best = cand;
			best_votes = votes;
		}
	}
	return best;
}

static void group_new_member_id(struct group *g, const char *prefix, int32_t len, char *out,
				size_t cap)
{
	uint64_t x = ++*g->id_seq;

	/* splitmix64: spreads the counter so ids do not look sequential */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	len = SL_MIN(SL_MAX(len, 0), 200);
	snprintf(out, cap, "%.*s-%016llx", (int)len, prefix != NULL ? prefix : "",
		 (unsigned long long)x);
}

/* ---- join phase ---- */

static int32_t group_rebalance_timeout_max(const struct group *g)
{
	int32_t t = 0;

	for (uint32_t i = 0; i < g->member_count; i++)
		t = SL_MAX(t, g->members[i]->rebalance_timeout_ms);
	return t;
}

static void group_prepare_rebalance(struct group *g, int64_t now_ms)
{
	if (g->state == GROUP_COMPLETING_REBALANCE) {
		for (uint32_t i = 0; i < g->member_count; i++)
			if (g->members[i]->sync_waiter != NULL)
				group_sync_answer(g, g->members[i], GROUP_KERR_REBALANCE_IN_PROGRESS);
	}
	for (uint32_t i = 0; i < g->member_count; i++) {
		free(g->members[i]->assignment);
		g->members[i]->assignment = NULL;
		g->members[i]->assignment_len = 0;
	}
	int32_t rt = group_rebalance_timeout_max(g);
	if (g->state == GROUP_EMPTY && g->cfg->initial_rebalance_delay_ms > 0) {
		g->initial_delay_end_ms = now_ms + SL_MIN(g->cfg->initial_rebalance_delay_ms, rt);
		g->initial_delay_limit_ms = now_ms + rt;
		g->rebalance_deadline_ms = g->initial_delay_end_ms;
	} else {
		g->initial_delay_end_ms = 0;
		g->rebalance_deadline_ms = now_ms + rt;
	}
	g->state = GROUP_PREPARING_REBALANCE;
	g->state_since_ms = now_ms;
	g->rebalance_start_ms = now_ms;
}

static bool group_all_joined(const struct group *g)
{
	if (g->pending_count > 0)
		return false;
	for (uint32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->join_waiter == NULL)
			return false;
	return true;
}

/* Ends the join phase: next generation, answers every held join. */
static void group_complete_join(struct group *g, int64_t now_ms)
{
	SL_ASSERT(g->state == GROUP_PREPARING_REBALANCE);
	/* dynamic members that did not rejoin are gone; static ones stay */
	for (uint32_t i = g->member_count; i-- > 0;) {
		struct group_member *m = g->members[i];
		if (m->join_waiter == NULL && m->instance_id == NULL)
			group_remove_member_at(g, i, GROUP_KERR_UNKNOWN_MEMBER_ID);
	}
	uint32_t joined = 0;
	for (uint32_t i = 0; i < g->member_count; i++)
		joined += g->members[i]->join_waiter != NULL;
	g->initial_delay_end_ms = 0;
	g->generation++;
	g->state_since_ms = now_ms;
	free(g->protocol_name);
	g->protocol_name = NULL;
	if (joined == 0) {
		/* nobody rejoined: static members not back are dropped too */
		for (uint32_t i = g->member_count; i-- > 0;)
			group_remove_member_at(g, i, GROUP_KERR_UNKNOWN_MEMBER_ID);
		/* the protocol type stays, as in Kafka (ListGroups, offset expiry) */
		g->leader_id = NULL;
		g->state = GROUP_EMPTY;
		group_changed(g);
		SL_ASSERT(group_check(g));
		return;
	}
	const char *proto = group_select_protocol(g);
	SL_ASSERT(proto != NULL);  /* joins are refused unless a common one exists */
	g->protocol_name = strdup(proto);
	SL_ASSERT(g->protocol_name != NULL);
	if (g->leader_id == NULL || group_member_find(g, g->leader_id,
						      (int32_t)strlen(g->leader_id)) == NULL ||
	    group_member_find(g, g->leader_id, (int32_t)strlen(g->leader_id))->join_waiter == NULL) {
		for (uint32_t i = 0; i < g->member_count; i++)
			if (g->members[i]->join_waiter != NULL) {
				g->leader_id = g->members[i]->member_id;
				break;
			}
	}
	g->state = GROUP_COMPLETING_REBALANCE;
	for (uint32_t i = 0; i < g->member_count; i++) {
		struct group_member *m = g->members[i];
		m->heartbeat_deadline_ms = now_ms + m->session_timeout_ms;
		if (m->join_waiter != NULL)
			group_join_answer(g, m, false);
	}
	SL_ASSERT(group_check(g));
}

static void group_maybe_complete_join(struct group *g, int64_t now_ms)
{
	if (g->state == GROUP_PREPARING_REBALANCE && g->initial_delay_end_ms == 0 &&
	    group_all_joined(g))
		group_complete_join(g, now_ms);
}

static void group_pending_remove_at(struct group *g, uint32_t i)
{
	SL_ASSERT(i < g->pending_count);
	free(g->pending_ids[i]);
	g->pending_count--;
	g->pending_ids[i] = g->pending_ids[g->pending_count];
	g->pending_deadline_ms[i] = g->pending_deadline_ms[g->pending_count];
}

static int64_t group_pending_find(const struct group *g, const char *id, int32_t len)
{
	for (uint32_t i = 0; i < g->pending_count; i++)
		if (group_str_eq(g->pending_ids[i], id, len))
			return i;
	return -1;
}

static enum sl_err group_pending_add(struct group *g, const char *id, int64_t deadline_ms)
{
	if (g->pending_count == GROUP_PENDING_MAX)
		return SL_EAGAIN;
	if (g->pending_ids == NULL) {
		g->pending_ids = calloc(GROUP_PENDING_MAX, sizeof(*g->pending_ids));
		g->pending_deadline_ms = calloc(GROUP_PENDING_MAX, sizeof(*g->pending_deadline_ms));
		if (g->pending_ids == NULL || g->pending_deadline_ms == NULL)
			return SL_ENOMEM;
	}
	g->pending_ids[g->pending_count] = strdup(id);
	if (g->pending_ids[g->pending_count] == NULL)
		return SL_ENOMEM;
	g->pending_deadline_ms[g->pending_count++] = deadline_ms;
	return SL_OK;
}

/* Adds a member with id `member_id` holding `waiter`; NULL on ENOMEM. */
static struct group_member *group_add_member(struct group *g, int64_t now_ms, const char *member_id,
					     const struct group_join_req *jr, void *waiter)
{
	struct group_member *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	if (g->member_count == g->member_cap) {
		uint32_t cap = g->member_cap == 0 ? 8 : g->member_cap * 2;
		struct group_member **a = realloc(g->members, cap * sizeof(*a));
		if (a == NULL) {
			free(m);
			return NULL;
		}
		g->members = a;
		g->member_cap = cap;
	}
	m->member_id = strdup(member_id);
	m->instance_id = group_strdup(jr->instance_id, jr->instance_id_len);
	m->client_id = group_strdup(jr->client_id, SL_MAX(jr->client_id_len, 0));
	m->client_host = group_strdup(jr->client_host, SL_MAX(jr->client_host_len, 0));
	if (m->member_id == NULL || (jr->instance_id_len >= 0 && jr->instance_id != NULL &&
				     m->instance_id == NULL) ||
	    group_member_set_protocols(m, jr) != SL_OK) {
		group_member_free(m);
		return NULL;
	}
	m->session_timeout_ms = jr->session_timeout_ms;
	m->rebalance_timeout_ms = jr->rebalance_timeout_ms;
	m->heartbeat_deadline_ms = now_ms + jr->session_timeout_ms;
	if (g->member_count == 0) {
		free(g->protocol_type);
		g->protocol_type = group_strdup(jr->protocol_type, jr->protocol_type_len);
		g->leader_id = m->member_id;
	}
	m->join_waiter = waiter;
	g->members[g->member_count++] = m;
	if (g->leader_id == NULL)
		g->leader_id = m->member_id;
	return m;
}

/* A new member joins (its id already decided). */
static void group_join_new(struct group *g, int64_t now_ms, const char *member_id,
			   const struct group_join_req *jr, void *waiter)
{
	if ((int64_t)g->member_count >= g->cfg->max_size || g->member_count >= GROUP_MEMBERS_MAX) {
		group_join_answer_error(g, waiter, GROUP_KERR_GROUP_MAX_SIZE_REACHED, member_id);
		return;
	}
	if (group_add_member(g, now_ms, member_id, jr, waiter) == NULL) {
		group_join_answer_error(g, waiter, GROUP_KERR_COORDINATOR_NOT_AVAILABLE, member_id);
		return;
	}
	if (g->state == GROUP_PREPARING_REBALANCE) {
		if (g->initial_delay_end_ms > 0) {
			/* a new member during the initial delay extends it (bounded) */
			g->initial_delay_end_ms = SL_MIN(now_ms + g->cfg->initial_rebalance_delay_ms,
							 g->initial_delay_limit_ms);
			g->rebalance_deadline_ms = g->initial_delay_end_ms;
		}
		group_maybe_complete_join(g, now_ms);
	} else {
		group_prepare_rebalance(g, now_ms);
		group_maybe_complete_join(g, now_ms);
	}
}

/* A known member rejoins. */
static void group_join_known(struct group *g, int64_t now_ms, struct group_member *m,
			     const struct group_join_req *jr, void *waiter)
{
	bool same = group_member_same_protocols(m, jr);

	m->heartbeat_deadline_ms = now_ms + jr->session_timeout_ms;
	m->session_timeout_ms = jr->session_timeout_ms;
	m->rebalance_timeout_ms = jr->rebalance_timeout_ms;
	if (g->state == GROUP_PREPARING_REBALANCE) {
		if (!same && group_member_set_protocols(m, jr) != SL_OK) {
			group_join_answer_error(g, waiter, GROUP_KERR_COORDINATOR_NOT_AVAILABLE,
						m->member_id);
			return;
		}
		if (m->join_waiter != NULL) {
			/* the client retried: the older request gets the same answer later;
			 * answer it now as superseded */
			void *old = m->join_waiter;
			m->join_waiter = NULL;
			group_join_answer_error(g, old, GROUP_KERR_REBALANCE_IN_PROGRESS,
						m->member_id);
		}
		m->join_waiter = waiter;
		group_maybe_complete_join(g, now_ms);
		return;
	}
	bool leader = g->leader_id != NULL && strcmp(g->leader_id, m->member_id) == 0;
	if (same && (g->state == GROUP_COMPLETING_REBALANCE ||
		     (g->state == GROUP_STABLE && !leader))) {
		/* nothing changed: the current generation again */
		m->join_waiter = waiter;
		group_join_answer(g, m, false);
		return;
	}
	if (!same && group_member_set_protocols(m, jr) != SL_OK) {
		group_join_answer_error(g, waiter, GROUP_KERR_COORDINATOR_NOT_AVAILABLE,
					m->member_id);
		return;
	}
	group_prepare_rebalance(g, now_ms);
	m->join_waiter = waiter;
	group_maybe_complete_join(g, now_ms);
}

/* A static member joins without a member id (group.h). */
static void group_join_static(struct group *g, int64_t now_ms, const struct group_join_req *jr,
			      void *waiter)
{
	char id[GROUP_ID_BYTES_MAX * 2];
	struct group_member *old = group_instance_find(g, jr->instance_id, jr->instance_id_len);

	group_new_member_id(g, jr->instance_id, jr->instance_id_len, id, sizeof(id));
	if (old == NULL) {
		group_join_new(g, now_ms, id, jr, waiter);
		return;
	}
	char *nid = strdup(id);
	if (nid == NULL) {
		group_join_answer_error(g, waiter, GROUP_KERR_COORDINATOR_NOT_AVAILABLE, "");
		return;
	}
	/* the old id is fenced: its held requests learn it now */
	if (old->join_waiter != NULL) {
		void *w = old->join_waiter;
		old->join_waiter = NULL;
		group_join_answer_error(g, w, GROUP_KERR_FENCED_INSTANCE_ID, old->member_id);
	}
	if (old->sync_waiter != NULL) {
		void *w = old->sync_waiter;
		old->sync_waiter = NULL;
		g->ops->sync_done(g->ops_ctx, g, w, GROUP_KERR_FENCED_INSTANCE_ID, NULL, 0);
	}
	bool was_leader = g->leader_id == old->member_id;
	free(old->member_id);
	old->member_id = nid;
	if (was_leader)
		g->leader_id = nid;
	if (g->state == GROUP_STABLE && group_member_same_protocols(old, jr)) {
		/* KIP-345: same metadata, no rebalance; a leader keeps the assignment */
		old->heartbeat_deadline_ms = now_ms + jr->session_timeout_ms;
		old->session_timeout_ms = jr->session_timeout_ms;
		old->rebalance_timeout_ms = jr->rebalance_timeout_ms;
		old->join_waiter = waiter;
		group_join_answer(g, old, was_leader);
		return;
	}
	group_join_known(g, now_ms, old, jr, waiter);
}

void group_join(struct group *g, int64_t now_ms, const struct group_join_req *jr, void *waiter)
{
	bool unknown = jr->member_id == NULL || jr->member_id_len <= 0;
	bool is_static = jr->instance_id != NULL && jr->instance_id_len >= 0;

	SL_ASSERT(waiter != NULL);
	SL_ASSERT(group_check(g));
	if (g->state == GROUP_DEAD) {
		group_join_answer_error(g, waiter, GROUP_KERR_COORDINATOR_NOT_AVAILABLE, "");
		return;
	}
	if (jr->session_timeout_ms < g->cfg->min_session_timeout_ms ||
	    jr->session_timeout_ms > g->cfg->max_session_timeout_ms) {
		group_join_answer_error(g, waiter, GROUP_KERR_INVALID_SESSION_TIMEOUT, "");
		return;
	}
	if (jr->protocol_count > GROUP_PROTOCOLS_MAX || jr->member_id_len > (int32_t)GROUP_ID_BYTES_MAX ||
	    jr->instance_id_len > (int32_t)GROUP_ID_BYTES_MAX || !group_protocols_compatible(g, jr)) {
		group_join_answer_error(g, waiter, GROUP_KERR_INCONSISTENT_GROUP_PROTOCOL, "");
		return;
	}
	if (unknown) {
		if (is_static) {
			group_join_static(g, now_ms, jr, waiter);
			return;
		}
		char id[GROUP_ID_BYTES_MAX * 2];
		group_new_member_id(g, jr->client_id, jr->client_id_len, id, sizeof(id));
		if (jr->require_known_member_id) {
			if (group_pending_add(g, id, now_ms + jr->session_timeout_ms) != SL_OK)
				group_join_answer_error(g, waiter,
							GROUP_KERR_COORDINATOR_NOT_AVAILABLE, "");
			else
				group_join_answer_error(g, waiter, GROUP_KERR_MEMBER_ID_REQUIRED, id);
			return;
		}
		group_join_new(g, now_ms, id, jr, waiter);
		return;
	}
	int64_t pi = group_pending_find(g, jr->member_id, jr->member_id_len);
	if (pi >= 0) {
		char id[GROUP_ID_BYTES_MAX + 1];
		snprintf(id, sizeof(id), "%s", g->pending_ids[pi]);
		group_pending_remove_at(g, (uint32_t)pi);
		group_join_new(g, now_ms, id, jr, waiter);
		return;
	}
	struct group_member *m = group_member_find(g, jr->member_id, jr->member_id_len);
	if (is_static) {
		struct group_member *si = group_instance_find(g, jr->instance_id, jr->instance_id_len);
		if (si != NULL && si != m) {
			group_join_answer_error(g, waiter, GROUP_KERR_FENCED_INSTANCE_ID, "");
			return;
		}
	}
	if (m == NULL) {
		group_join_answer_error(g, waiter, GROUP_KERR_UNKNOWN_MEMBER_ID, "");
		return;
	}
	group_join_known(g, now_ms, m, jr, waiter);
	SL_ASSERT(group_check(g));
}

/* Resolves (member, instance) as Kafka does. */
static int16_t group_member_validate(struct group *g, const char *member_id, int32_t member_len,
				     const char *instance_id, int32_t instance_len,
				     struct group_member **out)
{
	*out = NULL;
	if (g->state == GROUP_DEAD)
		return GROUP_KERR_COORDINATOR_NOT_AVAILABLE;
	if (instance_id != NULL && instance_len >= 0) {
		struct group_member *si = group_instance_find(g, instance_id, instance_len);
		if (si != NULL && !group_str_eq(si->member_id, member_id, member_len))
			return GROUP_KERR_FENCED_INSTANCE_ID;
	}
	struct group_member *m = group_member_find(g, member_id, member_len);
	if (m == NULL)
		return GROUP_KERR_UNKNOWN_MEMBER_ID;
	*out = m;
	return GROUP_KERR_NONE;
}

void group_sync(struct group *g, int64_t now_ms, const struct group_sync_req *sr, void *waiter)
{
	struct group_member *m;
	int16_t err = group_member_validate(g, sr->member_id, sr->member_id_len, sr->instance_id,
					    sr->instance_id_len, &m);

	SL_ASSERT(waiter != NULL);
	if (err == GROUP_KERR_NONE && sr->generation != g->generation)
		err = GROUP_KERR_ILLEGAL_GENERATION;
	if (err == GROUP_KERR_NONE &&
	    ((sr->protocol_type != NULL && sr->protocol_type_len >= 0 &&
	      !group_str_eq(g->protocol_type, sr->protocol_type, sr->protocol_type_len)) ||
	     (sr->protocol_name != NULL && sr->protocol_name_len >= 0 &&
	      !group_str_eq(g->protocol_name, sr->protocol_name, sr->protocol_name_len))))
		err = GROUP_KERR_INCONSISTENT_GROUP_PROTOCOL;
	if (err == GROUP_KERR_NONE && g->state == GROUP_PREPARING_REBALANCE)
		err = GROUP_KERR_REBALANCE_IN_PROGRESS;
	if (err == GROUP_KERR_NONE && g->state == GROUP_EMPTY)
		err = GROUP_KERR_UNKNOWN_MEMBER_ID;
	if (err != GROUP_KERR_NONE) {
		g->ops->sync_done(g->ops_ctx, g, waiter, err, NULL, 0);
		return;
	}
	m->heartbeat_deadline_ms = now_ms + m->session_timeout_ms;
	if (g->state == GROUP_STABLE) {
		g->ops->sync_done(g->ops_ctx, g, waiter, GROUP_KERR_NONE, m->assignment,
				  m->assignment_len);
		return;
	}
	SL_ASSERT(g->state == GROUP_COMPLETING_REBALANCE);
	if (m->sync_waiter != NULL) {
		void *old = m->sync_waiter;
		m->sync_waiter = NULL;
		g->ops->sync_done(g->ops_ctx, g, old, GROUP_KERR_REBALANCE_IN_PROGRESS, NULL, 0);
	}
	m->sync_waiter = waiter;
	if (strcmp(g->leader_id, m->member_id) != 0)
		return;
	/* the leader's assignment: store it, answer everyone waiting */
	for (uint32_t i = 0; i < g->member_count; i++) {
		struct group_member *x = g->members[i];
		free(x->assignment);
		x->assignment = NULL;
		x->assignment_len = 0;
		for (uint32_t a = 0; a < sr->assignment_count; a++) {
			if (!group_str_eq(x->member_id, sr->assign_member_ids[a],
					  sr->assign_member_id_lens[a]))
				continue;
			int32_t len = SL_MAX(sr->assignment_lens[a], 0);
			x->assignment = malloc((size_t)len + 1);
			if (x->assignment != NULL) {
				if (len > 0)
					memcpy(x->assignment, sr->assignments[a], (size_t)len);
				x->assignment_len = len;
			}
			break;
		}
	}
	g->state = GROUP_STABLE;
	g->state_since_ms = now_ms;
	for (uint32_t i = 0; i < g->member_count; i++)
		if (g->members[i]->sync_waiter != NULL)
			group_sync_answer(g, g->members[i], GROUP_KERR_NONE);
	group_changed(g);
	SL_ASSERT(group_check(g));
}

int16_t group_heartbeat(struct group *g, int64_t now_ms, const char *member_id, int32_t member_len,
			const char *instance_id, int32_t instance_len, int32_t generation)
{
	struct group_member *m;
	int16_t err = group_member_validate(g, member_id, member_len, instance_id, instance_len, &m);

	if (err != GROUP_KERR_NONE)
		return err;
	if (g->state == GROUP_EMPTY)
		return GROUP_KERR_UNKNOWN_MEMBER_ID;
	if (generation != g->generation)
		return GROUP_KERR_ILLEGAL_GENERATION;
	m->heartbeat_deadline_ms = now_ms + m->session_timeout_ms;
	if (g->state == GROUP_PREPARING_REBALANCE)
		return GROUP_KERR_REBALANCE_IN_PROGRESS;
	return GROUP_KERR_NONE;
}

/* After a member left or expired: rebalance, or finish the join phase. */
static void group_after_removal(struct group *g, int64_t now_ms)
{
	if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE) {
		if (g->member_count == 0) {
			/* the join phase with nobody in it ends EMPTY at once */
			group_prepare_rebalance(g, now_ms);
			group_complete_join(g, now_ms);
			return;
		}
		group_prepare_rebalance(g, now_ms);
		return;
	}
	if (g->state == GROUP_PREPARING_REBALANCE) {
		if (g->member_count == 0)
			group_complete_join(g, now_ms);
		else
			group_maybe_complete_join(g, now_ms);
	}
}

int16_t group_leave(struct group *g, int64_t now_ms, const char *member_id, int32_t member_len,
		    const char *instance_id, int32_t instance_len)
{
	struct group_member *m = NULL;

	if (g->state == GROUP_DEAD)
		return GROUP_KERR_COORDINATOR_NOT_AVAILABLE;
	if (instance_id != NULL && instance_len >= 0) {
		m = group_instance_find(g, instance_id, instance_len);
		if (m == NULL)
			return GROUP_KERR_UNKNOWN_MEMBER_ID;
		if (member_len > 0 && !group_str_eq(m->member_id, member_id, member_len))
			return GROUP_KERR_FENCED_INSTANCE_ID;
	} else {
		int64_t pi = group_pending_find(g, member_id, member_len);
		if (pi >= 0) {
			group_pending_remove_at(g, (uint32_t)pi);
			group_maybe_complete_join(g, now_ms);
			return GROUP_KERR_NONE;
		}
		m = group_member_find(g, member_id, member_len);
		if (m == NULL)
			return GROUP_KERR_UNKNOWN_MEMBER_ID;
	}
	for (uint32_t i = 0; i < g->member_count; i++) {
		if (g->members[i] == m) {
			group_remove_member_at(g, i, GROUP_KERR_UNKNOWN_MEMBER_ID);
			break;
		}
	}
	group_after_removal(g, now_ms);
	SL_ASSERT(group_check(g));
	return GROUP_KERR_NONE;
}

int16_t group_commit_check(struct group *g, int64_t now_ms, const char *member_id,
			   int32_t member_len, const char *instance_id, int32_t instance_len,
			   int32_t generation)
{
	struct group_member *m;

	if (g->state == GROUP_DEAD)
		return GROUP_KERR_COORDINATOR_NOT_AVAILABLE;
	if (generation < 0 && member_len <= 0) {
		/* a simple (assign-mode) commit: only while no member uses the group */
		return g->state == GROUP_EMPTY ? GROUP_KERR_NONE : GROUP_KERR_ILLEGAL_GENERATION;
	}
	int16_t err = group_member_validate(g, member_id, member_len, instance_id, instance_len, &m);
	if (err != GROUP_KERR_NONE)
		return err;
	if (g->state == GROUP_COMPLETING_REBALANCE)
		return GROUP_KERR_REBALANCE_IN_PROGRESS;
	if (generation != g->generation)
		return GROUP_KERR_ILLEGAL_GENERATION;
	m->heartbeat_deadline_ms = now_ms + m->session_timeout_ms;
	return GROUP_KERR_NONE;
}

/* A member is kept alive while its join or sync is held. */
static bool group_member_expires(const struct group_member *m)
{
	return m->join_waiter == NULL && m->sync_waiter == NULL;
}

void group_tick(struct group *g, int64_t now_ms)
{
	if (g->state == GROUP_DEAD)
		return;
	for (uint32_t i = g->pending_count; i-- > 0;)
		if (g->pending_deadline_ms[i] <= now_ms)
			group_pending_remove_at(g, i);
	bool removed = false;
	for (uint32_t i = g->member_count; i-- > 0;) {
		struct group_member *m = g->members[i];
		if (group_member_expires(m) && m->heartbeat_deadline_ms <= now_ms) {
			group_remove_member_at(g, i, GROUP_KERR_UNKNOWN_MEMBER_ID);
			removed = true;
		}
	}
	if (removed)
		group_after_removal(g, now_ms);
	if (g->state == GROUP_PREPARING_REBALANCE) {
		if (g->initial_delay_end_ms > 0 && g->initial_delay_end_ms <= now_ms) {
			g->initial_delay_end_ms = 0;
			group_complete_join(g, now_ms);
		} else if (g->initial_delay_end_ms == 0 &&
			   (g->rebalance_deadline_ms <= now_ms || group_all_joined(g))) {
			group_complete_join(g, now_ms);
		}
	}
	SL_ASSERT(group_check(g));
}

int64_t group_next_deadline(const struct group *g)
{
	int64_t t = INT64_MAX;

	if (g->state == GROUP_DEAD)
		return t;
	for (uint32_t i = 0; i < g->pending_count; i++)
		t = SL_MIN(t, g->pending_deadline_ms[i]);
	for (uint32_t i = 0; i < g->member_count; i++)
		if (group_member_expires(g->members[i]))
			t = SL_MIN(t, g->members[i]->heartbeat_deadline_ms);
	if (g->state == GROUP_PREPARING_REBALANCE)
		t = SL_MIN(t, g->rebalance_deadline_ms);
	return t;
}

/* Drops every member and pending id (no request may be held). */
static void group_clear(struct group *g)
{
	for (uint32_t i = 0; i < g->member_count; i++) {
		SL_ASSERT(g->members[i]->join_waiter == NULL && g->members[i]->sync_waiter == NULL);
		group_member_free(g->members[i]);
	}
	g->member_count = 0;
	for (uint32_t i = 0; i < g->pending_count; i++)
		free(g->pending_ids[i]);
	g->pending_count = 0;
	g->leader_id = NULL;
	free(g->protocol_type);
	free(g->protocol_name);
	g->protocol_type = NULL;
	g->protocol_name = NULL;
	g->initial_delay_end_ms = 0;
}

/* One restored member, or NULL on ENOMEM. */
static struct group_member *group_restore_member(const struct group *g,
						 const struct group_restore_member *rm, int64_t now_ms)
{
	struct group_member *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->member_id = group_strdup(rm->member_id, rm->member_id_len);
	m->instance_id = group_strdup(rm->instance_id, rm->instance_id_len);
	m->client_id = group_strdup(rm->client_id != NULL ? rm->client_id : "",
				    SL_MAX(rm->client_id_len, 0));
	m->client_host = group_strdup(rm->client_host != NULL ? rm->client_host : "",
				      SL_MAX(rm->client_host_len, 0));
	m->protocols = calloc(1, sizeof(*m->protocols));
	int32_t sl = SL_MAX(rm->subscription_len, 0), al = SL_MAX(rm->assignment_len, 0);
	if (m->protocols != NULL) {
		m->protocol_count = 1;
		m->protocols[0].name = strdup(g->protocol_name);
		m->protocols[0].meta = malloc((size_t)sl + 1);
		m->protocols[0].meta_len = sl;
	}
	m->assignment = malloc((size_t)al + 1);
	m->assignment_len = al;
	if (m->member_id == NULL || m->client_id == NULL || m->client_host == NULL ||
	    (rm->instance_id != NULL && rm->instance_id_len >= 0 && m->instance_id == NULL) ||
	    m->protocols == NULL || m->protocols[0].name == NULL || m->protocols[0].meta == NULL ||
	    m->assignment == NULL) {
		group_member_free(m);
		return NULL;
	}
	if (sl > 0)
		memcpy(m->protocols[0].meta, rm->subscription, (size_t)sl);
	if (al > 0)
		memcpy(m->assignment, rm->assignment, (size_t)al);
	m->session_timeout_ms = rm->session_timeout_ms;
	m->rebalance_timeout_ms = rm->rebalance_timeout_ms;
	m->heartbeat_deadline_ms = now_ms + rm->session_timeout_ms;
	return m;
}

/* Can r be restored as it is (file comment of group_restore)? */
static bool group_restore_valid(const struct group *g, const struct group_restore *r)
{
	if (r->member_count == 0)
		return true;
	if (r->member_count > GROUP_MEMBERS_MAX || (int64_t)r->member_count > g->cfg->max_size ||
	    r->generation <= 0 || r->protocol_name == NULL || r->protocol_name_len <= 0 ||
	    r->protocol_name_len > (int32_t)GROUP_ID_BYTES_MAX || r->leader_id == NULL)
		return false;
	bool leader = false;
	for (uint32_t i = 0; i < r->member_count; i++) {
		const struct group_restore_member *a = &r->members[i];
		if (a->member_id == NULL || a->member_id_len <= 0 || a->session_timeout_ms <= 0)
			return false;
		leader = leader || (a->member_id_len == r->leader_id_len &&
				    memcmp(a->member_id, r->leader_id, (size_t)a->member_id_len) == 0);
		for (uint32_t j = i + 1; j < r->member_count; j++) {
			const struct group_restore_member *b = &r->members[j];
			if (a->member_id_len == b->member_id_len &&
			    memcmp(a->member_id, b->member_id, (size_t)a->member_id_len) == 0)
				return false;
			if (a->instance_id != NULL && a->instance_id_len >= 0 && b->instance_id != NULL &&
			    a->instance_id_len == b->instance_id_len &&
			    memcmp(a->instance_id, b->instance_id, (size_t)a->instance_id_len) == 0)
				return false;
		}
	}
	return leader;
}

enum sl_err group_restore(struct group *g, int64_t now_ms, const struct group_restore *r)
{
	enum sl_err err = SL_OK;

	SL_ASSERT(g->state == GROUP_EMPTY || g->state == GROUP_STABLE);
	group_clear(g);
	g->generation = SL_MAX(r->generation, 0);
	g->state = GROUP_EMPTY;
	g->state_since_ms = now_ms;
	g->protocol_type = r->protocol_type_len > 0 ? group_strdup(r->protocol_type,
								   r->protocol_type_len) : NULL;
	if (!group_restore_valid(g, r)) {
		err = SL_EINVAL;
		goto out;
	}
	if (r->member_count == 0)
		goto out;
	g->protocol_name = group_strdup(r->protocol_name, r->protocol_name_len);
	if (g->protocol_name == NULL) {
		err = SL_ENOMEM;
		goto out;
	}
	if (g->member_cap < r->member_count) {
		struct group_member **a = realloc(g->members, r->member_count * sizeof(*a));
		if (a == NULL) {
			err = SL_ENOMEM;
			goto out;
		}
		g->members = a;
		g->member_cap = r->member_count;
	}
	for (uint32_t i = 0; i < r->member_count; i++) {
		struct group_member *m = group_restore_member(g, &r->members[i], now_ms);
		if (m == NULL) {
			err = SL_ENOMEM;
			goto out;
		}
		g->members[g->member_count++] = m;
	}
	g->leader_id = group_member_find(g, r->leader_id, r->leader_id_len)->member_id;
	g->state = GROUP_STABLE;
	g->rebalance_start_ms = now_ms;
out:
	if (err != SL_OK) {
		/* EMPTY with r's generation and protocol type */
		char *pt = g->protocol_type;
		g->protocol_type = NULL;
		group_clear(g);
		g->protocol_type = pt;
		g->state = GROUP_EMPTY;
	}
	SL_ASSERT(group_check(g));
	return err;
}

void group_mark_dead(struct group *g)
{
	for (uint32_t i = g->member_count; i-- > 0;)
		group_remove_member_at(g, i, GROUP_KERR_COORDINATOR_NOT_AVAILABLE);
	g->leader_id = NULL;
	g->state = GROUP_DEAD;
	SL_ASSERT(group_check(g));
}
