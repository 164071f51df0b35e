/*
 * isr.c — see isr.h. Sets are tiny (<= ISR_REPLICAS_MAX), so membership is
 * a linear scan: cheaper than any index at this size, and obviously right.
 */
#include "isr.h"

#include <string.h>

static int isr_ids_contain(const int32_t *ids, uint32_t count, int32_t id)
{
	for (uint32_t i = 0; i < count; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* 1 when ids are distinct and >= 0. */
static int isr_ids_distinct(const int32_t *ids, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (ids[i] < 0 || isr_ids_contain(ids, i, ids[i]))
			return 0;
	}
	return 1;
}

/* 1 when `isr` is a valid ISR for the assignment in cfg (invariant 2). */
static int isr_set_ok(const struct isr_config *cfg, const int32_t *isr, uint32_t count)
{
	if (count < 1 || count > cfg->replica_count || !isr_ids_distinct(isr, count) ||
	    !isr_ids_contain(isr, count, cfg->leader_id))
		return 0;
	for (uint32_t i = 0; i < count; i++)
		if (!isr_ids_contain(cfg->replicas, cfg->replica_count, isr[i]))
			return 0;
	return 1;
}

static struct isr_follower *isr_follower_find(struct isr *s, int32_t id)
{
	for (uint32_t i = 0; i < s->follower_count; i++)
		if (s->followers[i].id == id)
			return &s->followers[i];
	return NULL;
}

const struct isr_follower *isr_follower(const struct isr *s, int32_t replica_id)
{
	return isr_follower_find((struct isr *)s, replica_id);
}

int isr_contains(const struct isr *s, int32_t replica_id)
{
	return isr_ids_contain(s->isr, s->isr_count, replica_id);
}

/* The maximal ISR: committed, or the proposal while an expansion is pending. */
static int isr_maximal_contains(const struct isr *s, int32_t id)
{
	if (s->pending == ISR_PENDING_EXPAND)
		return isr_ids_contain(s->proposed, s->proposed_count, id);
	return isr_contains(s, id);
}

uint32_t isr_maximal_count(const struct isr *s)
{
	return s->pending == ISR_PENDING_EXPAND ? s->proposed_count : s->isr_count;
}

int64_t isr_hw(const struct isr *s)
{
	return s->hw;
}

void isr_check(const struct isr *s)
{
	const struct isr_config *c = &s->cfg;

	SL_ASSERT(c->replica_count >= 1 && c->replica_count <= ISR_REPLICAS_MAX);
	SL_ASSERT(isr_ids_distinct(c->replicas, c->replica_count));
	SL_ASSERT(isr_ids_contain(c->replicas, c->replica_count, c->leader_id));
	SL_ASSERT(s->follower_count == c->replica_count - 1);
	SL_ASSERT(isr_set_ok(c, s->isr, s->isr_count));
	if (s->pending == ISR_PENDING_SHRINK) {
		SL_ASSERT(isr_set_ok(c, s->proposed, s->proposed_count));
		SL_ASSERT(s->proposed_count < s->isr_count);
		for (uint32_t i = 0; i < s->proposed_count; i++)
			SL_ASSERT(isr_contains(s, s->proposed[i]));
	} else if (s->pending == ISR_PENDING_EXPAND) {
		SL_ASSERT(isr_set_ok(c, s->proposed, s->proposed_count));
		SL_ASSERT(s->proposed_count == s->isr_count + 1);
		for (uint32_t i = 0; i < s->isr_count; i++)
			SL_ASSERT(isr_ids_contain(s->proposed, s->proposed_count, s->isr[i]));
	} else {
		SL_ASSERT(s->pending == ISR_PENDING_NONE);
	}
	SL_ASSERT(s->hw >= 0 && s->hw <= s->leader_leo);
	for (uint32_t i = 0; i < s->follower_count; i++) {
		const struct isr_follower *f = &s->followers[i];
		SL_ASSERT(f->id != c->leader_id);
		SL_ASSERT(f->leo == ISR_OFFSET_UNKNOWN || (f->leo >= 0 && f->leo <= s->leader_leo));
	}
}

/*
 * Kafka's Replica.isCaughtUp: the follower has the leader's LEO, or caught
 * up within the last replica.lag.time.max.ms.
 */
static int isr_caught_up(const struct isr *s, const struct isr_follower *f, int64_t now_ms)
{
	if (f->leo == s->leader_leo)
		return 1;
	if (f->last_caught_up_ms == ISR_TIME_NEVER)
		return 0;
	return now_ms - f->last_caught_up_ms <= s->cfg.replica_lag_time_max_ms;
}

/*
 * Kafka's maybeIncrementLeaderHW: the smallest LEO over the leader, the
 * maximal ISR and the caught-up followers outside it (whose LEO would
 * otherwise never reach a HW that runs ahead of them). Only moves up.
 * Returns 1 when it moved.
 */
static int isr_hw_update(struct isr *s, int64_t now_ms)
{
	int64_t candidate = s->leader_leo;
	int64_t before = s->hw;

	for (uint32_t i = 0; i < s->follower_count; i++) {
		const struct isr_follower *f = &s->followers[i];
		if (f->leo >= candidate)
			continue;
		if (isr_maximal_contains(s, f->id) || isr_caught_up(s, f, now_ms))
			candidate = f->leo;
	}
	if (candidate > s->hw)
		s->hw = candidate;
	SL_ASSERT(s->hw >= before && s->hw <= s->leader_leo);
	return s->hw != before;
}

static int isr_config_ok(const struct isr_config *cfg)
{
	if (cfg->replica_count < 1 || cfg->replica_count > ISR_REPLICAS_MAX)
		return 0;
	if (!isr_ids_distinct(cfg->replicas, cfg->replica_count) ||
	    !isr_ids_contain(cfg->replicas, cfg->replica_count, cfg->leader_id))
		return 0;
	if (!isr_set_ok(cfg, cfg->isr, cfg->isr_count))
		return 0;
	if (cfg->min_insync_replicas < 1 || cfg->replica_lag_time_max_ms < 0)
		return 0;
	if (cfg->leader_epoch < 0 || cfg->partition_epoch < 0 || cfg->leader_leo < 0 ||
	    cfg->hw < 0 || cfg->leader_epoch_start_offset < 0 ||
	    cfg->leader_epoch_start_offset > cfg->leader_leo)
		return 0;
	return 1;
}

/* Kafka's Replica.resetReplicaState for one follower. */
static void isr_follower_reset(struct isr_follower *f, const struct isr_follower *old,
			       int in_isr, int64_t leader_leo, int64_t now_ms)
{
	f->last_caught_up_ms = in_isr ? now_ms : ISR_TIME_NEVER;
	if (old == NULL) {
		f->leo = ISR_OFFSET_UNKNOWN;
		f->last_fetch_leader_leo = ISR_OFFSET_UNKNOWN;
		f->last_fetch_ms = ISR_TIME_NEVER;
		return;
	}
	/* A follower LEO above our (possibly truncated) LEO is unknown again. */
	f->leo = old->leo <= leader_leo ? old->leo : ISR_OFFSET_UNKNOWN;
	f->last_fetch_leader_leo = leader_leo;
	f->last_fetch_ms = in_isr ? now_ms : ISR_TIME_NEVER;
}

enum sl_err isr_init(struct isr *s, const struct isr_config *cfg, enum isr_init_mode mode,
		     int64_t now_ms)
{
	struct isr_follower followers[ISR_REPLICAS_MAX - 1];
	uint32_t n = 0;
	int64_t hw;

	SL_ASSERT(s != NULL && cfg != NULL);
	SL_ASSERT(mode == ISR_INIT_NEW_LEADER || mode == ISR_INIT_REELECTED);
	if (!isr_config_ok(cfg))
		return SL_EINVAL;
	hw = SL_MIN(cfg->hw, cfg->leader_leo);
	if (mode == ISR_INIT_REELECTED && s->hw > hw && s->hw <= cfg->leader_leo)
		hw = s->hw;
	for (uint32_t i = 0; i < cfg->replica_count; i++) {
		int32_t id = cfg->replicas[i];
		const struct isr_follower *old = NULL;
		if (id == cfg->leader_id)
			continue;
		if (mode == ISR_INIT_REELECTED)
			old = isr_follower_find(s, id);
		followers[n].id = id;
		isr_follower_reset(&followers[n], old, isr_ids_contain(cfg->isr, cfg->isr_count, id),
				   cfg->leader_leo, now_ms);
		n++;
	}
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->follower_count = n;
	memcpy(s->followers, followers, n * sizeof(followers[0]));
	s->isr_count = cfg->isr_count;
	memcpy(s->isr, cfg->isr, cfg->isr_count * sizeof(cfg->isr[0]));
	s->partition_epoch = cfg->partition_epoch;
	s->pending = ISR_PENDING_NONE;
	s->leader_leo = cfg->leader_leo;
	s->hw = hw;
	(void)isr_hw_update(s, now_ms);
	isr_check(s);
	return SL_OK;
}

void isr_leader_append(struct isr *s, int64_t leo, int64_t now_ms, int *hw_moved)
{
	int moved;

	SL_ASSERT(leo >= s->leader_leo);
	s->leader_leo = leo;
	moved = isr_hw_update(s, now_ms);
	if (hw_moved != NULL)
		*hw_moved = moved;
	isr_check(s);
}

enum sl_err isr_follower_fetch(struct isr *s, int32_t replica_id, int64_t fetch_offset,
			       int64_t now_ms, int *hw_moved)
{
	struct isr_follower *f = isr_follower_find(s, replica_id);
	int moved = 0;
	int64_t old_leo;

	if (hw_moved != NULL)
		*hw_moved = 0;
	if (f == NULL)
		return SL_ENOTFOUND;
	if (fetch_offset < 0 || fetch_offset > s->leader_leo)
		return SL_ERANGE;
	/* Kafka's Replica.updateFetchStateOrThrow. */
	if (fetch_offset >= s->leader_leo)
		f->last_caught_up_ms = SL_MAX(f->last_caught_up_ms, now_ms);
	else if (f->last_fetch_leader_leo != ISR_OFFSET_UNKNOWN &&
		 fetch_offset >= f->last_fetch_leader_leo)
		f->last_caught_up_ms = SL_MAX(f->last_caught_up_ms, f->last_fetch_ms);
	old_leo = f->leo;
	f->leo = fetch_offset;
	f->last_fetch_leader_leo = s->leader_leo;
	f->last_fetch_ms = now_ms;
	/* Kafka recomputes only when the follower's LEO changed. */
	if (old_leo != fetch_offset)
		moved = isr_hw_update(s, now_ms);
	if (hw_moved != NULL)
		*hw_moved = moved;
	isr_check(s);
	return SL_OK;
}

static void isr_proposal_fill(const struct isr *s, struct isr_proposal *out)
{
	out->leader_id = s->cfg.leader_id;
	out->leader_epoch = s->cfg.leader_epoch;
	out->partition_epoch = s->partition_epoch;
	out->isr_count = s->proposed_count;
	memcpy(out->isr, s->proposed, s->proposed_count * sizeof(s->proposed[0]));
}

enum sl_err isr_propose_shrink(struct isr *s, int64_t now_ms, struct isr_proposal *out)
{
	uint32_t keep = 0;

	SL_ASSERT(out != NULL);
	if (s->pending != ISR_PENDING_NONE)
		return SL_EAGAIN;
	for (uint32_t i = 0; i < s->isr_count; i++) {
		int32_t id = s->isr[i];
		const struct isr_follower *f = isr_follower_find(s, id);
		if (id == s->cfg.leader_id || isr_caught_up(s, f, now_ms))
			s->proposed[keep++] = id;
	}
	if (keep == s->isr_count)
		return SL_ENOTFOUND;
	s->proposed_count = keep;
	s->pending = ISR_PENDING_SHRINK;
	isr_proposal_fill(s, out);
	isr_check(s);
	return SL_OK;
}

enum sl_err isr_propose_expand(struct isr *s, struct isr_proposal *out)
{
	SL_ASSERT(out != NULL);
	if (s->pending != ISR_PENDING_NONE)
		return SL_EAGAIN;
	/* Assignment order, so the choice does not depend on fetch order. */
	for (uint32_t i = 0; i < s->cfg.replica_count; i++) {
		int32_t id = s->cfg.replicas[i];
		const struct isr_follower *f;
		if (id == s->cfg.leader_id || isr_contains(s, id))
			continue;
		f = isr_follower_find(s, id);
		if (f->leo == ISR_OFFSET_UNKNOWN || f->leo < s->hw ||
		    f->leo < s->cfg.leader_epoch_start_offset)
			continue;
		memcpy(s->proposed, s->isr, s->isr_count * sizeof(s->isr[0]));
		s->proposed[s->isr_count] = id;
		s->proposed_count = s->isr_count + 1;
		s->pending = ISR_PENDING_EXPAND;
		isr_proposal_fill(s, out);
		isr_check(s);
		return SL_OK;
	}
	return SL_ENOTFOUND;
}

enum sl_err isr_pending_commit(struct isr *s, int32_t leader_epoch, const int32_t *isr,
			       uint32_t isr_count, int32_t partition_epoch, int64_t now_ms,
			       int *hw_moved)
{
	int moved;

	if (hw_moved != NULL)
		*hw_moved = 0;
	if (s->pending == ISR_PENDING_NONE)
		return SL_ENOTFOUND;
	if (leader_epoch != s->cfg.leader_epoch || partition_epoch < s->partition_epoch)
		return SL_ERANGE;
	if (isr == NULL || !isr_set_ok(&s->cfg, isr, isr_count))
		return SL_EINVAL;
	memcpy(s->isr, isr, isr_count * sizeof(isr[0]));
	s->isr_count = isr_count;
	s->partition_epoch = partition_epoch;
	s->pending = ISR_PENDING_NONE;
	s->proposed_count = 0;
	/* A committed shrink may let the HW move (the ISR may be the leader alone now). */
	moved = isr_hw_update(s, now_ms);
	if (hw_moved != NULL)
		*hw_moved = moved;
	isr_check(s);
	return SL_OK;
}

void isr_pending_fail(struct isr *s)
{
	s->pending = ISR_PENDING_NONE;
	s->proposed_count = 0;
	isr_check(s);
}

enum sl_err isr_pending_proposal(const struct isr *s, struct isr_proposal *out)
{
	SL_ASSERT(out != NULL);
	if (s->pending == ISR_PENDING_NONE)
		return SL_ENOTFOUND;
	isr_proposal_fill(s, out);
	return SL_OK;
}

enum isr_acks isr_acks_all_append_check(const struct isr *s)
{
	if ((int64_t)s->isr_count < s->cfg.min_insync_replicas)
		return ISR_ACKS_NOT_ENOUGH_REPLICAS;
	return ISR_ACKS_OK;
}

enum isr_acks isr_acks_all_check(const struct isr *s, int64_t last_offset)
{
	SL_ASSERT(last_offset >= 0);
	if (s->hw <= last_offset)
		return ISR_ACKS_WAIT;
	if ((int64_t)isr_maximal_count(s) < s->cfg.min_insync_replicas)
		return ISR_ACKS_NOT_ENOUGH_AFTER_APPEND;
	return ISR_ACKS_OK;
}
