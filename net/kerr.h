/*
 * kerr.h — Kafka error codes (the int16 `ErrorCode` fields of responses),
 * the third kind of error in STYLE.md. They are set only by API handlers
 * and by the helpers those handlers call (catalog name checks, the owner
 * side of an append); everything below net/ speaks enum sl_err.
 *
 * The values are Kafka's (org.apache.kafka.common.protocol.Errors); only
 * the codes Sluice emits are listed. kerr_name() gives Kafka's name for log
 * lines; kerr_from_storage() is the one mapping from storage-engine results
 * to what a client sees.
 */
#ifndef SL_NET_KERR_H
#define SL_NET_KERR_H

#include <stdint.h>

#include "sl.h"

enum kerr {
	KERR_UNKNOWN_SERVER_ERROR = -1,
	KERR_NONE = 0,
	KERR_OFFSET_OUT_OF_RANGE = 1,
	KERR_CORRUPT_MESSAGE = 2,
	KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
	KERR_INVALID_FETCH_SIZE = 4,
	KERR_LEADER_NOT_AVAILABLE = 5,
	KERR_NOT_LEADER_OR_FOLLOWER = 6,
	KERR_REQUEST_TIMED_OUT = 7,
	KERR_MESSAGE_TOO_LARGE = 10,
	KERR_STALE_CONTROLLER_EPOCH = 11,
	KERR_COORDINATOR_NOT_AVAILABLE = 15,
	KERR_INVALID_TOPIC_EXCEPTION = 17,
	KERR_RECORD_LIST_TOO_LARGE = 18,
	KERR_NOT_ENOUGH_REPLICAS = 19,
	KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
	KERR_INVALID_REQUIRED_ACKS = 21,
	KERR_INVALID_TIMESTAMP = 32,
	KERR_UNSUPPORTED_VERSION = 35,
	KERR_TOPIC_ALREADY_EXISTS = 36,
	KERR_INVALID_PARTITIONS = 37,
	KERR_INVALID_REPLICATION_FACTOR = 38,
	KERR_INVALID_REPLICA_ASSIGNMENT = 39,
	KERR_INVALID_CONFIG = 40,
	KERR_NOT_CONTROLLER = 41,
	KERR_INVALID_REQUEST = 42,
	KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
	KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
	KERR_INVALID_PRODUCER_EPOCH = 47,
	KERR_INVALID_TXN_STATE = 48,
	KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
	KERR_OPERATION_NOT_ATTEMPTED = 55,
	KERR_KAFKA_STORAGE_ERROR = 56,
	KERR_FETCH_SESSION_ID_NOT_FOUND = 70,
	KERR_INVALID_FETCH_SESSION_EPOCH = 71,
	KERR_TOPIC_DELETION_DISABLED = 73,
	KERR_FENCED_LEADER_EPOCH = 74,
	KERR_UNKNOWN_LEADER_EPOCH = 75,
	KERR_STALE_BROKER_EPOCH = 77,
	KERR_PREFERRED_LEADER_NOT_AVAILABLE = 80,
	KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
	KERR_ELECTION_NOT_NEEDED = 84,
	KERR_INVALID_RECORD = 87,
	KERR_NEW_LEADER_ELECTED = 91,
	KERR_UNKNOWN_TOPIC_ID = 100,
	KERR_INELIGIBLE_REPLICA = 107,
	KERR_INVALID_UPDATE_VERSION = 108,
};

/* Kafka's name for `code` ("UNKNOWN_TOPIC_OR_PARTITION"), "UNKNOWN(n)" style fallback. */
const char *kerr_name(int16_t code);

/*
 * What a client sees for a storage-engine result on a partition:
 * SL_OK -> NONE, SL_ERANGE -> OFFSET_OUT_OF_RANGE, SL_ECLOSED ->
 * NOT_LEADER_OR_FOLLOWER (the partition is going away: retry elsewhere),
 * SL_EAGAIN -> REQUEST_TIMED_OUT, everything else -> KAFKA_STORAGE_ERROR.
 */
int16_t kerr_from_storage(enum sl_err err);

#endif
