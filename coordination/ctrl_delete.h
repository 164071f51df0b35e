/*
 * ctrl_delete.h — the controller's topic deletion queue (Kafka's
 * TopicDeletionManager, ZooKeeper mode) and its partition-modification
 * watch (new partitions of CreatePartitions).
 *
 * Deletion, per child of /admin/delete_topics (watched; a new controller
 * finds the pending ones): once the controller's first sync is done,
 *   QUEUED    a topic the controller does not know: its request node is
 *             removed. Else the topic is marked deleting (UpdateMetadata
 *             carries its partitions with leader -2, LeaderAndIsr and
 *             elections skip it) -> STOPPING;
 *   STOPPING  StopReplica v3 (DeletePartition, leader epoch -2) to every
 *             live replica broker not yet acknowledged, retried every
 *             CD_TICK_MS; a dead replica keeps the topic here until it is
 *             back (Kafka's "ineligible") -> REMOVING once all answered NONE;
 *   REMOVING  epoch-fenced deletes (multi: check /controller_epoch +
 *             delete), leaves first: the partition states, /brokers/topics/<t>,
 *             /config/topics/<t>, /admin/delete_topics/<t> (absent nodes
 *             are fine) -> FORGET;
 *   FORGET    when no sync runs: the controller forgets the topic.
 * Partition modifications: every topic read by the controller carries a
 * data watch (ctrl_topic_watch); a change re-reads the assignment, re-arms
 * the watch and grows the controller's topic (controller_topic_grow), whose
 * sync then initialises the new partitions as for a new topic.
 *
 * Memory: struct ctrl_del is malloc'd per controller; controller_stop
 * marks it dead, and it is freed when its last operation completed.
 *
 * Runs on: shard 0.
 */
#ifndef SL_COORD_CTRL_DELETE_H
#define SL_COORD_CTRL_DELETE_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"
#include "sl.h"

struct cluster;
struct controller;
struct ctrl_del;
struct ctrl_pstate;
struct ctrlj_topic;
struct kclient;
struct zk;
struct zk_watch_event;

#define CD_TICK_MS 500
#define CD_LEADER_DURING_DELETE (-2)

/* ---- ctrl_delete.c ---- */

/* From controller_start / controller_stop. */
struct ctrl_del *ctrl_delete_start(struct cluster *cl, struct controller *ctl);
void ctrl_delete_stop(struct ctrl_del *d);
/* zk_watch_fn for /brokers/topics/<t> data (arg: the cluster). */
void ctrl_topic_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg);

/* ---- controller.c: what ctrl_delete.c needs of the controller ---- */

struct controller_topic_view {
	const char *name;
	struct kuuid id;
	uint32_t count;
	const struct ctrl_pstate *ps;   /* [count]; valid until the caller returns */
};

/* The controller's topic `name` (read: count > 0); false when unknown. */
bool controller_topic_view(struct controller *ctl, const char *name,
			   struct controller_topic_view *out);
/* Marks `name` deleting and sends UpdateMetadata (leader -2 for it). */
void controller_topic_deleting(struct controller *ctl, const char *name);
/* Forgets `name` (only when controller_idle). */
void controller_topic_forget(struct controller *ctl, const char *name);
/* The first sync is done and none runs. */
bool controller_idle(const struct controller *ctl);
/* A live broker's client and epoch, or NULL. */
struct kclient *controller_broker_client(struct controller *ctl, int32_t id, int64_t *epoch);
int32_t controller_epoch_of(const struct controller *ctl);
int32_t controller_epoch_zkversion(const struct controller *ctl);
/* Grows topic `jt_name` to jt's partitions (new ones without a state), then syncs. */
void controller_topic_grow(struct controller *ctl, const char *name, const struct ctrlj_topic *jt);
/* The controller's deletion state (ctrl_delete_start's). */
struct ctrl_del *controller_del(struct controller *ctl);

#endif
