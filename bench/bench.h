/*
 * bench.h — sluice-bench's one interface between the load generator
 * (sluice_bench.c: options, threads, clocks, histograms, reports) and one
 * driver per system (bench_kafka.c, bench_jetstream.c, bench_redis.c).
 *
 * Payload: every message starts with struct bench_stamp (magic, intended
 * send time in CLOCK_MONOTONIC ns, sequence); the rest is filler up to
 * msg_bytes. Producer and consumers run in this one process, so one clock
 * serves both ends.
 *
 * Threads: one producer thread per producer and one consumer thread per
 * consumer. A driver reports each acknowledgement with bench_ack() and each
 * received message with bench_msg(), passing the worker it was opened with;
 * a worker's histograms have exactly one writer at a time (a driver whose
 * library calls back from several threads serialises them itself).
 *
 * Bounded memory: every driver caps the messages in flight (librdkafka's
 * queue, JetStream's MaxPending, the Redis pipeline window) and allocates
 * nothing per message that outlives the acknowledgement.
 */
#ifndef SL_BENCH_H
#define SL_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "sl.h"

#define BENCH_MAGIC 0x534c4243u   /* "SLBC" */
#define BENCH_WORKERS_MAX 64
#define BENCH_PARTITIONS_MAX 256

struct bench_stamp {
	uint32_t magic;
	uint32_t partition;
	uint64_t intended_ns;         /* when the message was meant to leave */
	uint64_t seq;
};

struct bench_cfg {
	const char *system;       /* kafka | jetstream | redis */
	const char *url;          /* host:port (kafka, redis) or nats://host:port */
	const char *name;         /* topic / stream / key prefix, unique per run */
	const char *durability;   /* kafka: acks=0|1|all; redis: everysec|always; jetstream: file */
	size_t msg_bytes;
	double target_rate;       /* msgs/s over all producers; 0 = as fast as possible */
	int producers;
	int consumers;
	int partitions;
	int inflight_max;         /* per producer */
	int linger_ms;            /* kafka: librdkafka linger.ms (default 0) */
	double warmup_s;
	double duration_s;
};

/* Per thread: written by its thread (or its driver's callbacks), read by the
 * main thread after the thread ended; the atomics feed the progress line. */
struct bench_worker {
	const struct bench_cfg *cfg;
	int idx;
	uint64_t warm_end_ns;     /* messages intended before this are warm-up */
	uint64_t meas_end_ns;     /* ... and from this on, cool-down */
	struct hist *lat;         /* produce: ack latency; consume: end-to-end */
	_Atomic uint64_t done_count;   /* acks or messages, all of them */
	_Atomic uint64_t measured_count;
	_Atomic uint64_t error_count;
	_Atomic uint64_t p99_us;       /* refreshed about once a second */
	uint64_t p99_next_ns;
	void *drv;                     /* the driver's handle */
	void *owner;                   /* the load generator's run (opaque to drivers) */
};

uint64_t bench_now_ns(void);
/* A driver got the broker's answer for the message sent with `intended_ns`;
 * `ok` is 0 when the broker refused it. */
void bench_ack(struct bench_worker *w, uint64_t intended_ns, int ok);
/* A driver received a message (payload as produced). */
void bench_msg(struct bench_worker *w, const void *payload, size_t len);

struct bench_driver {
	const char *name;
	/* Creates the topic/stream with cfg->partitions (once, before workers). */
	enum sl_err (*setup)(const struct bench_cfg *cfg);
	/* Removes what setup made (best effort). */
	void (*teardown)(const struct bench_cfg *cfg);
	enum sl_err (*producer_open)(struct bench_worker *w);
	/* Sends one message to `partition`; SL_EAGAIN when the in-flight window
	 * is full (the caller polls and retries). Copies `buf`. */
	enum sl_err (*produce)(struct bench_worker *w, int partition,
			       const void *buf, size_t len);
	/* Delivers pending acks; waits at most timeout_ms. */
	void (*producer_poll)(struct bench_worker *w, int timeout_ms);
	/* Waits (at most timeout_ms) until every sent message is acked. */
	void (*producer_flush)(struct bench_worker *w, int timeout_ms);
	void (*producer_close)(struct bench_worker *w);
	/* Starts reading the partitions p with p % consumers == w->idx. */
	enum sl_err (*consumer_open)(struct bench_worker *w);
	/* Delivers received messages; waits at most timeout_ms. */
	void (*consumer_poll)(struct bench_worker *w, int timeout_ms);
	void (*consumer_close)(struct bench_worker *w);
};

extern const struct bench_driver bench_kafka_driver;
extern const struct bench_driver bench_jetstream_driver;
extern const struct bench_driver bench_redis_driver;

#endif
