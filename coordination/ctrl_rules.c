/*
 * ctrl_rules.c — the controller's decision rules (see ctrl_rules.h for
 * the contract and the invariants). Everything here is pure: inputs in,
 * new states out, no I/O. Written from Kafka's documented behaviour and a
 * reading of its ZK-mode controller (AdminUtils.assignReplicasToBrokers,
 * PartitionLeaderElectionAlgorithms, ZkPartitionStateMachine,
 * ZkReplicaStateMachine.doRemoveReplicasFromIsr, KafkaController's
 * doControlledShutdown and processAlterPartition).
 *
 * Runs on: the controller (shard 0 of the broker holding /controller).
 */
#include "ctrl_rules.h"

#include <stdlib.h>
#include <string.h>

const struct ctrl_broker *ctrl_cluster_find(const struct ctrl_cluster *c, int32_t id)
{
	SL_ASSERT(c != NULL);
	SL_ASSERT(c->broker_count <= CTRL_BROKERS_MAX);
	for (uint32_t i = 0; i < c->broker_count; i++) {
		if (c->brokers[i].id == id)
			return &c->brokers[i];
	}
	return NULL;
}

bool ctrl_replica_online(const struct ctrl_cluster *c, int32_t id)
{
	const struct ctrl_broker *b = ctrl_cluster_find(c, id);

	return b != NULL && b->alive && !b->shutting_down;
}

/* Registered, shutting down or not (Kafka's liveOrShuttingDownBrokerIds). */
static bool ctrl_replica_alive(const struct ctrl_cluster *c, int32_t id)
{
	const struct ctrl_broker *b = ctrl_cluster_find(c, id);

	return b != NULL && b->alive;
}

static bool ctrl_ids_contain(const int32_t *ids, uint32_t count, int32_t id)
{
	for (uint32_t i = 0; i < count; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

static bool ctrl_ids_distinct(const int32_t *ids, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		if (ctrl_ids_contain(ids + i + 1, count - i - 1, ids[i]))
			return false;
	}
	return true;
}

bool ctrl_pstate_in_isr(const struct ctrl_pstate *ps, int32_t id)
{
	return ctrl_ids_contain(ps->isr, ps->isr_count, id);
}

bool ctrl_pstate_has_replica(const struct ctrl_pstate *ps, int32_t id)
{
	return ctrl_ids_contain(ps->replicas, ps->replica_count, id);
}

void ctrl_pstate_check(const struct ctrl_pstate *ps)
{
	SL_ASSERT(ps != NULL);
	SL_ASSERT(ps->replica_count >= 1 && ps->replica_count <= CTRL_REPLICAS_MAX);
	SL_ASSERT(ps->isr_count <= CTRL_REPLICAS_MAX);
	SL_ASSERT(ps->leader_epoch >= 0 && ps->partition_epoch >= 0);
	SL_ASSERT(ps->leader == CTRL_NO_LEADER || ps->leader >= 0);
	SL_DEBUG_ASSERT(ctrl_ids_distinct(ps->replicas, ps->replica_count));
	SL_DEBUG_ASSERT(ctrl_ids_distinct(ps->isr, ps->isr_count));
}

/* ---- replica assignment ---- */

/* Kafka's replicaIndex: the broker `j` steps after the first replica. */
static uint32_t ctrl_replica_index(uint32_t first, uint64_t shift, uint64_t j, uint32_t n)
{
	SL_ASSERT(n >= 2 && first < n);
	uint64_t step = 1 + (shift + j) % (n - 1);

	return (uint32_t)((first + step) % n);
}

static int ctrl_id_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct ctrl_broker *)a)->id;
	int32_t y = ((const struct ctrl_broker *)b)->id;

	return (x > y) - (x < y);
}

/*
 * Kafka's getRackAlternatedBrokerList: racks sorted by name, brokers of
 * each rack sorted by id, then one broker from each rack in turn until
 * all are taken. `sorted` is in id order; writes `n` ids into `out` and
 * the number of distinct racks into *rack_count.
 */
static void ctrl_rack_alternate(const struct ctrl_broker *sorted, uint32_t n, int32_t *out,
				const char **out_rack, uint32_t *rack_count)
{
	uint32_t racks = 0;
	uint8_t *taken = calloc(n, 1);
	const char **names = calloc(n, sizeof(*names));

	SL_ASSERT(taken != NULL && names != NULL);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = 0;

		while (r < racks && strcmp(names[r], sorted[i].rack) != 0)
			r++;
		if (r == racks)
			names[racks++] = sorted[i].rack;
	}
	/* Insertion sort of the rack names (at most n of them). */
	for (uint32_t i = 1; i < racks; i++) {
		for (uint32_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	}
	uint32_t done = 0;
	for (uint32_t round = 0; done < n && round < n; round++) {
		for (uint32_t r = 0; r < racks && done < n; r++) {
			/* The round-th broker (by id) of rack r, if it has one. */
			uint32_t seen = 0;

			for (uint32_t i = 0; i < n; i++) {
				if (strcmp(sorted[i].rack, names[r]) != 0)
					continue;
				if (seen++ == round) {
					SL_ASSERT(!taken[i]);
					taken[i] = 1;
					out_rack[done] = sorted[i].rack;
					out[done++] = sorted[i].id;
					break;
				}
			}
		}
	}
	SL_ASSERT(done == n);
	*rack_count = racks;
	free(names);
	free(taken);
}

static bool ctrl_rack_used(const char **racks, uint32_t count, const char *rack)
{
	for (uint32_t i = 0; i < count; i++) {
		if (strcmp(racks[i], rack) == 0)
			return true;
	}
	return false;
}

/* Rack-aware choice of the replicas after the first of one partition. */
static void ctrl_assign_rack_row(const int32_t *arranged, const char **arack, uint32_t n,
				 uint32_t racks, uint32_t first, uint64_t shift, int32_t rf,
				 int32_t *row)
{
	const char *used_racks[CTRL_REPLICAS_MAX];
	uint32_t used_rack_count = 1;
	uint64_t k = 0;

	row[0] = arranged[first];
	used_racks[0] = arack[first];
	for (int32_t j = 1; j < rf; j++) {
		bool placed = false;

		/* Each replica is found within n - 1 probes (see header). */
		for (uint32_t probe = 0; !placed && probe < n; probe++, k++) {
			uint32_t idx = ctrl_replica_index(first, shift * racks, k, n);
			int32_t b = arranged[idx];
			bool rack_ok = !ctrl_rack_used(used_racks, used_rack_count, arack[idx]) ||
				       used_rack_count == racks;
			bool broker_ok = !ctrl_ids_contain(row, (uint32_t)j, b) || (uint32_t)j == n;

			if (rack_ok && broker_ok) {
				row[j] = b;
				if (!ctrl_rack_used(used_racks, used_rack_count, arack[idx]))
					used_racks[used_rack_count++] = arack[idx];
				placed = true;
			}
		}
		SL_ASSERT(placed);
	}
}

int16_t ctrl_assign(const struct ctrl_cluster *c, int32_t partitions, int32_t rf,
		    enum ctrl_rack_mode mode, int32_t start_idx, int32_t shift,
		    int32_t start_partition, int32_t *out, uint32_t out_cap)
{
	int16_t err = CTRL_KERR_NONE;
	struct ctrl_broker *sorted = NULL;
	int32_t *arranged = NULL;
	const char **arack = NULL;
	uint32_t n = 0, with_rack = 0, racks = 0;

	SL_ASSERT(c != NULL && c->broker_count <= CTRL_BROKERS_MAX);
	if (partitions <= 0)
		return CTRL_KERR_INVALID_PARTITIONS;
	if (rf <= 0 || rf > CTRL_REPLICAS_MAX)
		return CTRL_KERR_INVALID_REPLICATION_FACTOR;
	sorted = calloc(c->broker_count + 1, sizeof(*sorted));
	arranged = calloc(c->broker_count + 1, sizeof(*arranged));
	arack = calloc(c->broker_count + 1, sizeof(*arack));
	if (sorted == NULL || arranged == NULL || arack == NULL) {
		err = CTRL_KERR_UNKNOWN_SERVER_ERROR;
		goto out;
	}
	for (uint32_t i = 0; i < c->broker_count; i++) {
		if (!c->brokers[i].alive)
			continue;
		sorted[n] = c->brokers[i];
		if (mode == CTRL_RACK_DISABLED)
			sorted[n].rack = NULL;
		with_rack += sorted[n].rack != NULL;
		n++;
	}
	if (rf > (int64_t)n) {
		err = CTRL_KERR_INVALID_REPLICATION_FACTOR;
		goto out;
	}
	if (with_rack != 0 && with_rack != n) {
		if (mode == CTRL_RACK_ENFORCED) {
			err = CTRL_KERR_UNKNOWN_SERVER_ERROR;
			goto out;
		}
		with_rack = 0;   /* SAFE: ignore racks */
	}
	if (start_idx < 0 || shift < 0 || start_partition < 0 ||
	    (uint64_t)partitions * (uint64_t)rf > out_cap) {
		err = CTRL_KERR_INVALID_REQUEST;
		goto out;
	}
	qsort(sorted, n, sizeof(*sorted), ctrl_id_cmp);
	if (with_rack == n) {
		ctrl_rack_alternate(sorted, n, arranged, arack, &racks);
	} else {
		for (uint32_t i = 0; i < n; i++)
			arranged[i] = sorted[i].id;
	}

	uint64_t next_shift = (uint64_t)shift;
	for (int32_t p = 0; p < partitions; p++) {
		uint64_t pid = (uint64_t)start_partition + (uint64_t)p;
		uint32_t first = (uint32_t)((pid + (uint64_t)start_idx) % n);
		int32_t *row = out + (uint64_t)p * (uint64_t)rf;

		if (pid > 0 && pid % n == 0)
			next_shift++;
		if (racks > 0) {
			ctrl_assign_rack_row(arranged, arack, n, racks, first, next_shift, rf, row);
			continue;
		}
		row[0] = arranged[first];
		for (int32_t j = 0; j < rf - 1; j++)
			row[j + 1] = arranged[ctrl_replica_index(first, next_shift, (uint64_t)j, n)];
		SL_DEBUG_ASSERT(ctrl_ids_distinct(row, (uint32_t)rf));
	}
out:
	free(arack);
	free(arranged);
	free(sorted);
	return err;
}

int16_t ctrl_assign_more(const struct ctrl_cluster *c, const int32_t *p0_replicas,
			 uint32_t p0_count, int32_t existing_count, int32_t new_total,
			 enum ctrl_rack_mode mode, int32_t *out, uint32_t out_cap)
{
	int32_t start = 0;
	int32_t pos = 0;
	bool found = false;
	int32_t *ids = NULL;
	uint32_t n = 0;

	SL_ASSERT(c != NULL && p0_replicas != NULL);
	if (existing_count <= 0 || new_total <= existing_count)
		return CTRL_KERR_INVALID_PARTITIONS;
	if (p0_count == 0 || p0_count > CTRL_REPLICAS_MAX)
		return CTRL_KERR_INVALID_REPLICATION_FACTOR;
	/* indexWhere(_.id >= first replica of partition 0) over brokers by id. */
	ids = calloc(c->broker_count + 1, sizeof(*ids));
	if (ids == NULL)
		return CTRL_KERR_UNKNOWN_SERVER_ERROR;
	for (uint32_t i = 0; i < c->broker_count; i++) {
		if (c->brokers[i].alive)
			ids[n++] = c->brokers[i].id;
	}
	for (uint32_t i = 0; i < n; i++) {
		int32_t below = 0;

		for (uint32_t j = 0; j < n; j++)
			below += ids[j] < ids[i];
		if (ids[i] >= p0_replicas[0] && (!found || below < pos)) {
			pos = below;
			found = true;
		}
	}
	free(ids);
	start = found ? pos : 0;
	return ctrl_assign(c, new_total - existing_count, (int32_t)p0_count, mode, start, start,
			   existing_count, out, out_cap);
}

/* ---- partition states ---- */

enum sl_err ctrl_pstate_init(const struct ctrl_cluster *c, const int32_t *replicas,
			     uint32_t replica_count, int32_t controller_epoch,
			     struct ctrl_pstate *out)
{
	SL_ASSERT(c != NULL && replicas != NULL && out != NULL);
	SL_ASSERT(replica_count >= 1 && replica_count <= CTRL_REPLICAS_MAX);
	memset(out, 0, sizeof(*out));
	memcpy(out->replicas, replicas, replica_count * sizeof(*replicas));
	out->replica_count = replica_count;
	out->leader = CTRL_NO_LEADER;
	out->controller_epoch = controller_epoch;
	for (uint32_t i = 0; i < replica_count; i++) {
		if (ctrl_replica_online(c, replicas[i]))
			out->isr[out->isr_count++] = replicas[i];
	}
	if (out->isr_count == 0)
		return SL_ENOTFOUND;
	out->leader = out->isr[0];
	ctrl_pstate_check(out);
	return SL_OK;
}

/* Keeps the members of the ISR for which keep() holds, in order. */
static void ctrl_isr_filter(struct ctrl_pstate *ps, const struct ctrl_cluster *c,
			    bool (*keep)(const struct ctrl_cluster *, int32_t))
{
	uint32_t w = 0;

	for (uint32_t i = 0; i < ps->isr_count; i++) {
		if (keep(c, ps->isr[i]))
			ps->isr[w++] = ps->isr[i];
	}
	ps->isr_count = w;
}

static int32_t ctrl_first_candidate(const struct ctrl_cluster *c, const struct ctrl_pstate *ps,
				    const int32_t *order, uint32_t count, bool need_isr,
				    bool (*ok)(const struct ctrl_cluster *, int32_t))
{
	for (uint32_t i = 0; i < count; i++) {
		if (ok(c, order[i]) && (!need_isr || ctrl_pstate_in_isr(ps, order[i])))
			return order[i];
	}
	return CTRL_NO_LEADER;
}

static bool ctrl_alive_not_shutting(const struct ctrl_cluster *c, int32_t id)
{
	const struct ctrl_broker *b = ctrl_cluster_find(c, id);

	return b != NULL && b->alive && !b->shutting_down;
}

static bool ctrl_not_shutting(const struct ctrl_cluster *c, int32_t id)
{
	const struct ctrl_broker *b = ctrl_cluster_find(c, id);

	return b == NULL || !b->shutting_down;
}

int16_t ctrl_elect(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
		   enum ctrl_elect how, struct ctrl_pstate *next)
{
	int32_t leader = CTRL_NO_LEADER;
	bool unclean = false;

	ctrl_pstate_check(cur);
	*next = *cur;
	switch (how) {
	case CTRL_ELECT_OFFLINE:
	case CTRL_ELECT_OFFLINE_UNCLEAN:
		leader = ctrl_first_candidate(c, cur, cur->replicas, cur->replica_count, true,
					      ctrl_replica_online);
		if (leader == CTRL_NO_LEADER && how == CTRL_ELECT_OFFLINE_UNCLEAN) {
			leader = ctrl_first_candidate(c, cur, cur->replicas, cur->replica_count,
						      false, ctrl_replica_online);
			unclean = leader != CTRL_NO_LEADER;
		}
		if (leader == CTRL_NO_LEADER)
			return CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
		if (unclean) {
			next->isr[0] = leader;
			next->isr_count = 1;
			next->leader_recovery_state = CTRL_RECOVERING;
		} else {
			ctrl_isr_filter(next, c, ctrl_replica_online);
		}
		break;
	case CTRL_ELECT_CONTROLLED_SHUTDOWN:
		/* Candidates: registered (shutting-down allowed by liveness), in
		 * the ISR, and themselves not shutting down. */
		leader = ctrl_first_candidate(c, cur, cur->replicas, cur->replica_count, true,
					      ctrl_alive_not_shutting);
		if (leader == CTRL_NO_LEADER)
			return CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
		ctrl_isr_filter(next, c, ctrl_not_shutting);
		break;
	case CTRL_ELECT_PREFERRED:
		if (cur->leader == cur->replicas[0])
			return CTRL_KERR_ELECTION_NOT_NEEDED;
		if (!ctrl_replica_online(c, cur->replicas[0]) ||
		    !ctrl_pstate_in_isr(cur, cur->replicas[0]))
			return CTRL_KERR_PREFERRED_LEADER_NOT_AVAILABLE;
		leader = cur->replicas[0];
		break;
	default:
		SL_ASSERT(!"unknown election kind");
	}
	next->leader = leader;
	next->leader_epoch = cur->leader_epoch + 1;
	SL_ASSERT(ctrl_pstate_in_isr(next, leader));
	ctrl_pstate_check(next);
	return CTRL_KERR_NONE;
}

int16_t ctrl_elect_reassign(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
			    const int32_t *target, uint32_t target_count,
			    struct ctrl_pstate *next)
{
	ctrl_pstate_check(cur);
	SL_ASSERT(target != NULL && target_count <= CTRL_REPLICAS_MAX);
	*next = *cur;
	int32_t leader = ctrl_first_candidate(c, cur, target, target_count, true,
					      ctrl_replica_online);
	if (leader == CTRL_NO_LEADER)
		return CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
	next->leader = leader;
	next->leader_epoch = cur->leader_epoch + 1;
	return CTRL_KERR_NONE;
}

enum ctrl_change ctrl_remove_from_isr(struct ctrl_pstate *ps, int32_t broker)
{
	ctrl_pstate_check(ps);
	if (!ctrl_pstate_in_isr(ps, broker))
		return CTRL_CHANGE_NONE;
	enum ctrl_change what = CTRL_CHANGE_ISR;
	if (ps->leader == broker) {
		ps->leader = CTRL_NO_LEADER;
		what = CTRL_CHANGE_OFFLINE;
	}
	if (ps->isr_count > 1) {
		uint32_t w = 0;

		for (uint32_t i = 0; i < ps->isr_count; i++) {
			if (ps->isr[i] != broker)
				ps->isr[w++] = ps->isr[i];
		}
		ps->isr_count = w;
	}
	ps->leader_epoch++;
	SL_ASSERT(ps->isr_count >= 1);
	return what;
}

/* Merges two changes of one partition into what the caller must know. */
static enum ctrl_change ctrl_change_merge(enum ctrl_change a, enum ctrl_change b)
{
	if (a == CTRL_CHANGE_NONE)
		return b;
	if (b == CTRL_CHANGE_NONE)
		return a;
	return a == CTRL_CHANGE_ISR ? b : a;
}

uint32_t ctrl_broker_failed(const struct ctrl_cluster *c, int32_t broker,
			    const bool *unclean, struct ctrl_pstate *states, uint32_t count,
			    enum ctrl_change *changes, uint32_t *moved)
{
	uint32_t moved_count = 0;

	SL_ASSERT(c != NULL && states != NULL && changes != NULL);
	SL_ASSERT(!ctrl_replica_alive(c, broker));
	for (uint32_t i = 0; i < count; i++) {
		struct ctrl_pstate *ps = &states[i];
		enum ctrl_change what = CTRL_CHANGE_NONE;

		changes[i] = CTRL_CHANGE_NONE;
		if (!ctrl_pstate_has_replica(ps, broker))
			continue;
		int32_t old_leader = ps->leader;
		if (old_leader == CTRL_NO_LEADER || !ctrl_replica_online(c, old_leader)) {
			struct ctrl_pstate next;
			enum ctrl_elect how = unclean != NULL && unclean[i]
						      ? CTRL_ELECT_OFFLINE_UNCLEAN
						      : CTRL_ELECT_OFFLINE;

			if (ctrl_elect(c, ps, how, &next) == CTRL_KERR_NONE) {
				*ps = next;
				what = CTRL_CHANGE_LEADER;
			}
		}
		what = ctrl_change_merge(what, ctrl_remove_from_isr(ps, broker));
		changes[i] = what;
		if (ps->leader != old_leader) {
			if (moved != NULL)
				moved[moved_count] = i;
			moved_count++;
		}
		ctrl_pstate_check(ps);
	}
	SL_ASSERT(moved_count <= count);
	return moved_count;
}

uint32_t ctrl_controlled_shutdown(const struct ctrl_cluster *c, int32_t broker,
				  struct ctrl_pstate *states, uint32_t count,
				  enum ctrl_change *changes, uint32_t *remaining)
{
	uint32_t left = 0;
	const struct ctrl_broker *b = ctrl_cluster_find(c, broker);

	SL_ASSERT(b != NULL && b->shutting_down);
	SL_ASSERT(states != NULL && changes != NULL && remaining != NULL);
	for (uint32_t i = 0; i < count; i++) {
		struct ctrl_pstate *ps = &states[i];

		changes[i] = CTRL_CHANGE_NONE;
		if (!ctrl_pstate_has_replica(ps, broker) || ps->replica_count <= 1)
			continue;
		if (ps->leader == broker) {
			struct ctrl_pstate next;

			if (ctrl_elect(c, ps, CTRL_ELECT_CONTROLLED_SHUTDOWN, &next) ==
			    CTRL_KERR_NONE) {
				*ps = next;
				changes[i] = CTRL_CHANGE_LEADER;
			}
		} else {
			changes[i] = ctrl_remove_from_isr(ps, broker);
		}
		if (ps->leader == broker)
			remaining[left++] = i;
		ctrl_pstate_check(ps);
	}
	SL_ASSERT(left <= count);
	return left;
}

/* Same leader, leader epoch, recovery state, and ISR as a set. */
static bool ctrl_same_state(const struct ctrl_pstate *cur, const struct ctrl_isr_req *req)
{
	if (req->leader_epoch != cur->leader_epoch ||
	    req->leader_recovery_state != cur->leader_recovery_state ||
	    req->isr_count != cur->isr_count || !ctrl_ids_distinct(req->isr, req->isr_count))
		return false;
	for (uint32_t i = 0; i < req->isr_count; i++) {
		if (!ctrl_pstate_in_isr(cur, req->isr[i]))
			return false;
	}
	return true;
}

static bool ctrl_isr_req_valid(const struct ctrl_pstate *cur, const struct ctrl_isr_req *req)
{
	if (req->isr_count == 0 || req->isr_count > cur->replica_count ||
	    !ctrl_ids_distinct(req->isr, req->isr_count) ||
	    !ctrl_ids_contain(req->isr, req->isr_count, cur->leader))
		return false;
	for (uint32_t i = 0; i < req->isr_count; i++) {
		if (!ctrl_pstate_has_replica(cur, req->isr[i]))
			return false;
	}
	if (req->leader_recovery_state > CTRL_RECOVERING)
		return false;
	if (req->leader_recovery_state == CTRL_RECOVERING && req->isr_count > 1)
		return false;
	return !(cur->leader_recovery_state == CTRL_RECOVERED &&
		 req->leader_recovery_state == CTRL_RECOVERING);
}

int16_t ctrl_alter_partition(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
			     const struct ctrl_isr_req *req, struct ctrl_pstate *next)
{
	ctrl_pstate_check(cur);
	SL_ASSERT(req != NULL && next != NULL);
	*next = *cur;
	if (req->isr == NULL && req->isr_count > 0)
		return CTRL_KERR_INVALID_REQUEST;
	if (req->leader_epoch > cur->leader_epoch || req->partition_epoch > cur->partition_epoch)
		return CTRL_KERR_NOT_CONTROLLER;
	if (req->leader_epoch < cur->leader_epoch)
		return CTRL_KERR_FENCED_LEADER_EPOCH;
	if (req->broker_id != cur->leader)
		return CTRL_KERR_NOT_LEADER_OR_FOLLOWER;
	if (ctrl_same_state(cur, req))
		return CTRL_KERR_NONE;
	if (req->partition_epoch < cur->partition_epoch)
		return CTRL_KERR_INVALID_UPDATE_VERSION;
	if (req->isr_count > CTRL_REPLICAS_MAX || !ctrl_isr_req_valid(cur, req))
		return CTRL_KERR_INVALID_REQUEST;
	for (uint32_t i = 0; i < req->isr_count; i++) {
		if (!ctrl_replica_online(c, req->isr[i]))
			return req->api_version >= 2 ? CTRL_KERR_INELIGIBLE_REPLICA
						     : CTRL_KERR_OPERATION_NOT_ATTEMPTED;
	}
	memcpy(next->isr, req->isr, req->isr_count * sizeof(*req->isr));
	next->isr_count = req->isr_count;
	next->leader_recovery_state = req->leader_recovery_state;
	next->partition_epoch = cur->partition_epoch + 1;
	SL_ASSERT(next->leader_epoch == cur->leader_epoch);
	ctrl_pstate_check(next);
	return CTRL_KERR_NONE;
}

/* ---- broker epochs ---- */

bool ctrl_broker_epoch_stale(int64_t req_epoch, int64_t cur_epoch)
{
	if (req_epoch == CTRL_EPOCH_UNKNOWN)
		return false;
	if (cur_epoch == CTRL_EPOCH_UNKNOWN)
		return true;
	return req_epoch < cur_epoch;
}

bool ctrl_broker_epoch_exact_stale(int64_t req_epoch, int64_t cur_epoch)
{
	if (req_epoch == CTRL_EPOCH_UNKNOWN)
		return false;
	return cur_epoch == CTRL_EPOCH_UNKNOWN || req_epoch != cur_epoch;
}

/* The registration of `id` in `regs`, or NULL. */
static const struct ctrl_reg *ctrl_reg_find(const struct ctrl_reg *regs, uint32_t count,
					    int32_t id)
{
	for (uint32_t i = 0; i < count; i++)
		if (regs[i].id == id)
			return &regs[i];
	return NULL;
}

enum ctrl_reg_change ctrl_reg_classify(const struct ctrl_reg *prev, uint32_t prev_count,
				       const struct ctrl_reg *cur, uint32_t cur_count, int32_t id)
{
	SL_ASSERT(prev != NULL || prev_count == 0);
	SL_ASSERT(cur != NULL || cur_count == 0);
	const struct ctrl_reg *a = ctrl_reg_find(prev, prev_count, id);
	const struct ctrl_reg *b = ctrl_reg_find(cur, cur_count, id);

	if (a == NULL)
		return b == NULL ? CTRL_REG_ABSENT : CTRL_REG_NEW;
	if (b == NULL)
		return CTRL_REG_DEAD;
	return a->epoch == b->epoch ? CTRL_REG_SAME : CTRL_REG_BOUNCED;
}

uint32_t ctrl_reg_diff(const struct ctrl_reg *prev, uint32_t prev_count,
		       const struct ctrl_reg *cur, uint32_t cur_count, int32_t *ids,
		       enum ctrl_reg_change *changes, uint32_t cap)
{
	uint32_t n = 0;

	SL_ASSERT(ids != NULL && changes != NULL);
	for (uint32_t i = 0; i < prev_count && n < cap; i++) {
		ids[n] = prev[i].id;
		changes[n] = ctrl_reg_classify(prev, prev_count, cur, cur_count, prev[i].id);
		n++;
	}
	for (uint32_t i = 0; i < cur_count && n < cap; i++) {
		if (ctrl_reg_find(prev, prev_count, cur[i].id) != NULL)
			continue;
		ids[n] = cur[i].id;
		changes[n] = CTRL_REG_NEW;
		n++;
	}
	SL_ASSERT(n <= prev_count + cur_count);
	return n;
}
