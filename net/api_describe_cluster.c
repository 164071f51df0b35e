/*
 * api_describe_cluster.c — DescribeCluster (key 60), versions 0-1.
 *
 *   api_describe_cluster_handle (connection's shard) answers from struct
 *   broker: cluster id, this node as controller and only broker (its
 *   advertised host/port and rack); in cluster mode from the catalog
 *   snapshot: the live brokers and the controller. v1: EndpointType 1 (brokers) is
 *   served; asking for controllers (2) gets MISMATCHED_ENDPOINT_TYPE, as a
 *   Kafka broker listener answers. No authorizer: authorized operations
 *   keep the schema default (not requested / unknown).
 */
#include "admin.h"
#include "broker.h"
#include "dispatch.h"
#include "kerr.h"

#define DESCRIBE_CLUSTER_ENDPOINT_BROKERS 1
#define DESCRIBE_CLUSTER_MISMATCHED_ENDPOINT_TYPE 114

enum sl_err api_describe_cluster_handle(struct req *rq)
{
	const struct DescribeClusterRequest *in = rq->body;
	const struct broker *b = rq->bs->b;
	struct DescribeClusterResponse resp;
	struct DescribeClusterResponse_DescribeClusterBroker *node = req_alloc(rq, sizeof(*node));

	if (node == NULL)
		return SL_ENOMEM;
	kafka_init_describe_cluster_response(&resp);
	resp.EndpointType = DESCRIBE_CLUSTER_ENDPOINT_BROKERS;
	resp.ClusterId = admin_slice(rq->bs->snap->cluster_id);
	if (rq->api_version >= 1 && in->EndpointType != DESCRIBE_CLUSTER_ENDPOINT_BROKERS) {
		resp.ErrorCode = DESCRIBE_CLUSTER_MISMATCHED_ENDPOINT_TYPE;
		resp.ErrorMessage = admin_slice("The request was sent to an endpoint of type BROKER");
		resp.ControllerId = -1;
		req_respond(rq, &resp);
		return SL_OK;
	}
	const struct catalog_snap *snap = rq->bs->snap;
	if (snap->cluster) {
		resp.ControllerId = snap->controller_id;
		resp.Brokers.count = (int32_t)snap->broker_count;
		resp.Brokers.items = req_alloc(rq, (size_t)SL_MAX(snap->broker_count, 1u) *
						   sizeof(*resp.Brokers.items));
		if (resp.Brokers.items == NULL)
			return SL_ENOMEM;
		for (uint32_t i = 0; i < snap->broker_count; i++) {
			const struct catalog_broker *cb = &snap->brokers[i];
			node = &resp.Brokers.items[i];
			kafka_init_describe_cluster_response_describe_cluster_broker(node);
			node->BrokerId = cb->id;
			node->Host = admin_slice(cb->host);
			node->Port = cb->port;
			node->Rack = admin_slice(cb->rack[0] != '\0' ? cb->rack : NULL);
		}
		req_respond(rq, &resp);
		return SL_OK;
	}
	kafka_init_describe_cluster_response_describe_cluster_broker(node);
	node->BrokerId = b->node_id;
	node->Host = admin_slice(b->adv_host);
	node->Port = b->adv_port;
	node->Rack = admin_slice(b->rack);
	resp.ControllerId = b->node_id;
	resp.Brokers.count = 1;
	resp.Brokers.items = node;
	SL_ASSERT(resp.ClusterId.len > 0);
	req_respond(rq, &resp);
	return SL_OK;
}
