/*
 * replica_api.h — the controller -> broker requests a replica obeys
 * (cluster mode): LeaderAndIsr (api_leader_and_isr.c) and StopReplica
 * (api_stop_replica.c). Their work per partition is replication/repl.h's.
 *
 * Runs on: the connection's shard, shard 0 (catalog), the owner shards.
 */
#ifndef SL_COORDINATION_REPLICA_API_H
#define SL_COORDINATION_REPLICA_API_H

#include "sl.h"

struct req;

enum sl_err api_leader_and_isr_handle(struct req *rq);
enum sl_err api_stop_replica_handle(struct req *rq);

/* Adds both to the dispatch table (main.c, cluster mode, before the shards start). */
void replica_api_register(void);

#endif
