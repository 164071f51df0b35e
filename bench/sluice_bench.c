/*
 * sluice_bench.c — sluice-bench, the end-to-end load generator: one
 * workload, one driver per system (bench.h), latency from HDR-style
 * histograms (core/hist.h), the server's CPU and peak RSS from /proc.
 *
 * Timeline of a run (all CLOCK_MONOTONIC):
 *   setup → consumers open → t0 → producers send → warm_end (t0 + warm-up)
 *   → meas_end (warm_end + duration): producers stop → drain (acks and
 *   consumers catch up, at most BENCH_DRAIN_S) → report.
 * Only messages whose intended send time lies in [warm_end, meas_end) are
 * measured. In open-loop mode (--rate/--mbps) message i of a producer is
 * intended for t0 + i/rate and latency counts from that instant, so a stall
 * that delays sending shows up in the percentiles (no coordinated omission);
 * in closed-loop mode (as fast as possible) the intended time is the moment
 * of sending.
 *
 * Memory is bounded: one payload buffer per producer, two histograms per
 * worker, and each driver's in-flight window.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define BENCH_DRAIN_S 10
#define BENCH_TIMER_SLACK_NS 10000ul   /* producer wake-up precision (prctl) */
#define BENCH_POLL_WAIT_MIN_NS 2000000ull  /* gaps this long wait in producer_poll */
#define BENCH_POLL_EVERY 64
#define BENCH_MB 1000000.0             /* MB = 10^6 bytes, as network/disk specs */

struct bench_run {
	struct bench_cfg cfg;
	const struct bench_driver *drv;
	int server_pid;
	const char *json_path;
	const char *plot_path;
	const char *curve_path;
	const char *workload;
	uint64_t t0_ns;
	uint64_t warm_end_ns;
	uint64_t meas_end_ns;
	_Atomic int consumers_ready;
	_Atomic int consumers_stop;
	_Atomic int open_failed;
	struct bench_worker prod[BENCH_WORKERS_MAX];
	struct bench_worker cons[BENCH_WORKERS_MAX];
};

struct bench_proc {
	double cpu_user_s;
	double cpu_sys_s;
	double rss_peak_mb;
	int valid;
};

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bench_sleep_until(uint64_t t_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t_ns / 1000000000ull),
		.tv_nsec = (long)(t_ns % 1000000000ull),
	};
	int i;

	for (i = 0; i < 8; i++)   /* bounded retries on EINTR */
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != EINTR)
			break;
}

/* Records one latency sample into `w` if its intended time is measured, and
 * refreshes the worker's p99 for the progress line about once a second. */
static void bench_record(struct bench_worker *w, uint64_t intended_ns, uint64_t now_ns)
{
	uint64_t lat_ns = now_ns > intended_ns ? now_ns - intended_ns : 0;

	atomic_fetch_add_explicit(&w->done_count, 1, memory_order_relaxed);
	if (intended_ns < w->warm_end_ns || intended_ns >= w->meas_end_ns)
		return;
	hist_record(w->lat, lat_ns / 1000);
	atomic_fetch_add_explicit(&w->measured_count, 1, memory_order_relaxed);
	if (now_ns >= w->p99_next_ns) {
		atomic_store_explicit(&w->p99_us, hist_percentile(w->lat, 99.0),
				      memory_order_relaxed);
		w->p99_next_ns = now_ns + 1000000000ull;
	}
}

void bench_ack(struct bench_worker *w, uint64_t intended_ns, int ok)
{
	SL_ASSERT(w != NULL);
	if (!ok) {
		atomic_fetch_add_explicit(&w->error_count, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->done_count, 1, memory_order_release);
		return;
	}
	bench_record(w, intended_ns, bench_now_ns());
}

void bench_msg(struct bench_worker *w, const void *payload, size_t len)
{
	struct bench_stamp st;

	SL_ASSERT(w != NULL);
	if (len < sizeof(st)) {
		atomic_fetch_add_explicit(&w->error_count, 1, memory_order_relaxed);
		return;
	}
	memcpy(&st, payload, sizeof(st));
	if (st.magic != BENCH_MAGIC) {
		atomic_fetch_add_explicit(&w->error_count, 1, memory_order_relaxed);
		return;
	}
	bench_record(w, st.intended_ns, bench_now_ns());
}

/* ---- /proc of the server ---- */

static void bench_proc_read(int pid, struct bench_proc *out)
{
	char path[64], buf[4096], *p;
	unsigned long utime = 0, stime = 0;
	long tck = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (pid <= 0 || tck <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');   /* comm may hold spaces: fields follow the last ')' */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				&utime, &stime) != 2)
		return;
	out->cpu_user_s = (double)utime / (double)tck;
	out->cpu_sys_s = (double)stime / (double)tck;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		unsigned long kb;

		if (sscanf(buf, "VmHWM: %lu kB", &kb) == 1)
			out->rss_peak_mb = (double)kb / 1024.0;
	}
	fclose(f);
	out->valid = 1;
}

/* ---- threads ---- */

static void *bench_producer_main(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_run *run = w->owner;
	const struct bench_cfg *cfg = w->cfg;
	uint64_t interval_ns = 0, next_ns, seq = 0, i;
	struct bench_stamp st = { .magic = BENCH_MAGIC };
	unsigned char *buf;

	buf = calloc(1, cfg->msg_bytes);
	if (buf == NULL || run->drv->producer_open(w) != SL_OK) {
		fprintf(stderr, "sluice-bench: producer %d failed to open\n", w->idx);
		atomic_store(&run->open_failed, 1);
		free(buf);
		return NULL;
	}
	memset(buf + sizeof(st), 'x', cfg->msg_bytes - sizeof(st));
	(void)prctl(PR_SET_TIMERSLACK, BENCH_TIMER_SLACK_NS, 0, 0, 0);
	if (cfg->target_rate > 0)
		interval_ns = (uint64_t)(1e9 * cfg->producers / cfg->target_rate);
	next_ns = run->t0_ns;
	for (i = 0;; i++) {
		uint64_t now = bench_now_ns();
		int part, tries;

		if (now >= run->meas_end_ns || atomic_load(&run->open_failed))
			break;
		if (interval_ns != 0) {
			/* Sleep to the next send time, never spin: on a small machine a
			 * spinning producer takes a whole core from the server and the
			 * client's own I/O threads, which inflated every system's tail.
			 * The oversleep (timer slack) counts in e2e latency, which is
			 * measured from the intended time; sends that fell due meanwhile
			 * go out back to back. */
			if (next_ns > now) {
				/* Long gaps (low rates) wait in the driver's poll, so acks
				 * are taken as they arrive, not at the next send. */
				if (next_ns - now >= BENCH_POLL_WAIT_MIN_NS) {
					run->drv->producer_poll(w, (int)((next_ns - now) / 1000000ull) - 1);
					continue;
				}
				run->drv->producer_poll(w, 0);
				bench_sleep_until(next_ns);
				continue;
			}
			st.intended_ns = next_ns;
			next_ns += interval_ns;
		} else {
			st.intended_ns = now;
		}
		part = (int)((uint64_t)w->idx + seq * (uint64_t)cfg->producers) % cfg->partitions;
		st.partition = (uint32_t)part;
		st.seq = seq++;
		memcpy(buf, &st, sizeof(st));
		for (tries = 0; tries < 100000; tries++) {
			if (run->drv->produce(w, part, buf, cfg->msg_bytes) == SL_OK)
				break;
			run->drv->producer_poll(w, 1);
			if (bench_now_ns() >= run->meas_end_ns + BENCH_DRAIN_S * 1000000000ull)
				break;
		}
		/* open loop: serve acks between every send so produce latency is not
		 * inflated by a late poll; max rate: every BENCH_POLL_EVERY sends */
		if (interval_ns != 0 || i % BENCH_POLL_EVERY == 0)
			run->drv->producer_poll(w, 0);
	}
	run->drv->producer_flush(w, BENCH_DRAIN_S * 1000);
	run->drv->producer_close(w);
	free(buf);
	return NULL;
}

static uint64_t bench_sum(_Atomic uint64_t *first, size_t stride, int n)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += atomic_load((_Atomic uint64_t *)((char *)first + stride * (size_t)i));
	return sum;
}

static void *bench_consumer_main(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_run *run = w->owner;
	int turns;

	if (run->drv->consumer_open(w) != SL_OK) {
		fprintf(stderr, "sluice-bench: consumer %d failed to open\n", w->idx);
		atomic_store(&run->open_failed, 1);
		atomic_fetch_add(&run->consumers_ready, 1);
		return NULL;
	}
	atomic_fetch_add(&run->consumers_ready, 1);
	/* bounded: the main thread raises consumers_stop by the drain deadline */
	for (turns = 0; turns < 100000000; turns++) {
		if (atomic_load(&run->consumers_stop))
			break;
		run->drv->consumer_poll(w, 100);
	}
	run->drv->consumer_close(w);
	return NULL;
}

/* ---- reporting ---- */

struct bench_result {
	double msgs_per_s, mb_per_s, produce_msgs_per_s;
	uint64_t produced, acked_errors, consumed, lost, bad;
	struct hist *prod_lat, *e2e_lat;
	struct bench_proc cpu0, cpu1;
};

static void bench_json_num(FILE *f, const char *key, double v, int valid, const char *sep)
{
	if (valid)
		fprintf(f, "\"%s\": %.3f%s", key, v, sep);
	else
		fprintf(f, "\"%s\": null%s", key, sep);
}

static int bench_write_json(const struct bench_run *run, const struct bench_result *r)
{
	const struct hist *e = r->e2e_lat, *p = r->prod_lat;
	int cpu = r->cpu0.valid && r->cpu1.valid;
	FILE *f = fopen(run->json_path, "w");

	if (f == NULL) {
		fprintf(stderr, "sluice-bench: cannot write %s: %s\n", run->json_path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\"system\": \"%s\", \"workload\": \"%s\", \"msg_bytes\": %zu, ",
		run->cfg.system, run->workload, run->cfg.msg_bytes);
	bench_json_num(f, "target_rate", run->cfg.target_rate, run->cfg.target_rate > 0, ", ");
	bench_json_num(f, "msgs_per_s", r->msgs_per_s, 1, ", ");
	bench_json_num(f, "mb_per_s", r->mb_per_s, 1, ", ");
	fprintf(f, "\"produce_p50_us\": %" PRIu64 ", \"produce_p99_us\": %" PRIu64 ", ",
		hist_percentile(p, 50.0), hist_percentile(p, 99.0));
	fprintf(f, "\"e2e_p50_us\": %" PRIu64 ", \"e2e_p90_us\": %" PRIu64
		", \"e2e_p99_us\": %" PRIu64 ", \"e2e_p999_us\": %" PRIu64
		", \"e2e_p9999_us\": %" PRIu64 ", \"e2e_max_us\": %" PRIu64 ", ",
		hist_percentile(e, 50.0), hist_percentile(e, 90.0), hist_percentile(e, 99.0),
		hist_percentile(e, 99.9), hist_percentile(e, 99.99), hist_max(e));
	bench_json_num(f, "server_cpu_s", r->cpu1.cpu_user_s + r->cpu1.cpu_sys_s -
		       r->cpu0.cpu_user_s - r->cpu0.cpu_sys_s, cpu, ", ");
	bench_json_num(f, "server_rss_peak_mb", r->cpu1.rss_peak_mb, r->cpu1.valid, "}\n");
	return fclose(f) == 0 ? 0 : -1;
}

/* Percentile curve: "percentile  1/(1-p)  e2e_us  produce_us" rows, the
 * x axis of an HdrHistogram plot. */
static int bench_write_curve(const char *path, const struct bench_result *r)
{
	static const double pcts[] = { 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95,
				       99.99, 99.995, 99.999, 100 };
	FILE *f = fopen(path, "w");
	size_t i;

	if (f == NULL)
		return -1;
	fprintf(f, "# percentile inv_tail e2e_us produce_us\n");
	for (i = 0; i < SL_ARRAY_LEN(pcts); i++) {
		double inv = pcts[i] >= 100 ? 1e6 : 100.0 / (100.0 - pcts[i]);

		fprintf(f, "%g %g %" PRIu64 " %" PRIu64 "\n", pcts[i], inv,
			hist_percentile(r->e2e_lat, pcts[i]),
			hist_percentile(r->prod_lat, pcts[i]));
	}
	return fclose(f) == 0 ? 0 : -1;
}

static void bench_plot(const struct bench_run *run, const char *curve)
{
	char cmd[2048];
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "gnuplot -e \""
		 "set terminal png size 900,600; set output '%s'; set logscale x; set logscale y; "
		 "set xlabel 'percentile'; set ylabel 'latency (us)'; set key left top; "
		 "set xtics ('p50' 2, 'p90' 10, 'p99' 100, 'p99.9' 1000, 'p99.99' 10000, 'p99.999' 100000); "
		 "plot '%s' using 2:3 with linespoints title '%s e2e', "
		 "'' using 2:4 with linespoints title '%s produce'\" 2>&1",
		 run->plot_path, curve, run->cfg.system, run->cfg.system);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "sluice-bench: gnuplot failed (%d); no plot\n", rc);
}

static void bench_print_table(const struct bench_run *run, const struct bench_result *r)
{
	const struct hist *e = r->e2e_lat, *p = r->prod_lat;

	printf("\n%-10s %s (durability %s, %zu B, %s)\n", run->cfg.system, run->workload,
	       run->cfg.durability, run->cfg.msg_bytes,
	       run->cfg.target_rate > 0 ? "open loop" : "max rate");
	printf("  throughput  %12.0f msgs/s %10.2f MB/s consumed (%.0f msgs/s acked)\n",
	       r->msgs_per_s, r->mb_per_s, r->produce_msgs_per_s);
	printf("  %-10s %9s %9s %9s %9s %9s %9s  (us)\n", "latency", "p50", "p90", "p99",
	       "p99.9", "p99.99", "max");
	printf("  %-10s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
	       "produce", hist_percentile(p, 50), hist_percentile(p, 90), hist_percentile(p, 99),
	       hist_percentile(p, 99.9), hist_percentile(p, 99.99), hist_max(p));
	printf("  %-10s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 "\n",
	       "end-to-end", hist_percentile(e, 50), hist_percentile(e, 90), hist_percentile(e, 99),
	       hist_percentile(e, 99.9), hist_percentile(e, 99.99), hist_max(e));
	printf("  messages    produced %" PRIu64 ", produce errors %" PRIu64 ", consumed %" PRIu64
	       ", missing %" PRIu64 ", bad %" PRIu64 "\n",
	       r->produced, r->acked_errors, r->consumed, r->lost, r->bad);
	if (r->cpu0.valid && r->cpu1.valid)
		printf("  server      cpu user %.2f s, sys %.2f s, peak RSS %.1f MB\n",
		       r->cpu1.cpu_user_s - r->cpu0.cpu_user_s, r->cpu1.cpu_sys_s - r->cpu0.cpu_sys_s,
		       r->cpu1.rss_peak_mb);
	else
		printf("  server      (no --server-pid: CPU and RSS not measured)\n");
}

/* ---- run ---- */

static void bench_progress(const struct bench_run *run, uint64_t now, uint64_t *last_done,
			   uint64_t *last_ns)
{
	const struct bench_cfg *c = &run->cfg;
	uint64_t acked = 0, got = 0, p99p = 0, p99e = 0;
	double dt = (double)(now - *last_ns) / 1e9;
	int i;

	for (i = 0; i < c->producers; i++) {
		acked += atomic_load(&run->prod[i].done_count);
		p99p = SL_MAX(p99p, atomic_load(&run->prod[i].p99_us));
	}
	for (i = 0; i < c->consumers; i++) {
		got += atomic_load(&run->cons[i].done_count);
		p99e = SL_MAX(p99e, atomic_load(&run->cons[i].p99_us));
	}
	fprintf(stderr, "[%s %5.1fs%s] consumed %9.0f msgs/s %8.2f MB/s | acked %" PRIu64
		" consumed %" PRIu64 " | p99 produce %" PRIu64 " us e2e %" PRIu64 " us\n",
		c->system, (double)(now - run->t0_ns) / 1e9, now < run->warm_end_ns ? " warm-up" : "",
		dt > 0 ? (double)(got - *last_done) / dt : 0.0,
		dt > 0 ? (double)(got - *last_done) * (double)c->msg_bytes / dt / BENCH_MB : 0.0,
		acked, got, p99p, p99e);
	*last_done = got;
	*last_ns = now;
}

/* Drives the whole run; fills `r`. Returns 0, or -1 when a worker could not
 * open (nothing was measured). */
static int bench_execute(struct bench_run *run, struct bench_result *r)
{
	const struct bench_cfg *c = &run->cfg;
	pthread_t pt[BENCH_WORKERS_MAX], ct[BENCH_WORKERS_MAX];
	uint64_t last_done = 0, last_ns, deadline, now, acked_ok;
	int i, turns, rc = 0;

	for (i = 0; i < c->consumers; i++) {
		struct bench_worker *w = &run->cons[i];

		w->cfg = c;
		w->idx = i;
		w->owner = run;
		w->warm_end_ns = UINT64_MAX;   /* nothing measured before t0 is set */
		w->meas_end_ns = UINT64_MAX;
		pthread_create(&ct[i], NULL, bench_consumer_main, w);
	}
	for (turns = 0; turns < 3000 && atomic_load(&run->consumers_ready) < c->consumers; turns++)
		usleep(10000);
	if (atomic_load(&run->consumers_ready) < c->consumers || atomic_load(&run->open_failed)) {
		fprintf(stderr, "sluice-bench: consumers did not start\n");
		rc = -1;
	}
	run->t0_ns = bench_now_ns();
	run->warm_end_ns = run->t0_ns + (uint64_t)(c->warmup_s * 1e9);
	run->meas_end_ns = run->warm_end_ns + (uint64_t)(c->duration_s * 1e9);
	for (i = 0; i < c->consumers; i++) {
		run->cons[i].warm_end_ns = run->warm_end_ns;
		run->cons[i].meas_end_ns = run->meas_end_ns;
	}
	for (i = 0; i < c->producers && rc == 0; i++) {
		struct bench_worker *w = &run->prod[i];

		w->cfg = c;
		w->idx = i;
		w->owner = run;
		w->warm_end_ns = run->warm_end_ns;
		w->meas_end_ns = run->meas_end_ns;
		pthread_create(&pt[i], NULL, bench_producer_main, w);
	}
	last_ns = run->t0_ns;
	if (rc == 0) {
		int cpu0_taken = 0;

		for (now = bench_now_ns(); now < run->meas_end_ns && !atomic_load(&run->open_failed);
		     now = bench_now_ns()) {
			uint64_t next = SL_MIN(last_ns + 1000000000ull, run->meas_end_ns);

			if (!cpu0_taken && run->warm_end_ns <= next) {
				bench_sleep_until(run->warm_end_ns);
				bench_proc_read(run->server_pid, &r->cpu0);
				cpu0_taken = 1;
			}
			bench_sleep_until(next);
			now = bench_now_ns();
			if (now >= last_ns + 1000000000ull || now >= run->meas_end_ns)
				bench_progress(run, now, &last_done, &last_ns);
		}
		bench_proc_read(run->server_pid, &r->cpu1);
		for (i = 0; i < c->producers; i++)
			pthread_join(pt[i], NULL);
	}
	/* drain: stop consumers once they saw every acknowledged message */
	acked_ok = bench_sum(&run->prod[0].done_count, sizeof(run->prod[0]), c->producers) -
		   bench_sum(&run->prod[0].error_count, sizeof(run->prod[0]), c->producers);
	deadline = bench_now_ns() + BENCH_DRAIN_S * 1000000000ull;
	while (rc == 0 && bench_now_ns() < deadline &&
	       bench_sum(&run->cons[0].done_count, sizeof(run->cons[0]), c->consumers) < acked_ok)
		usleep(10000);
	atomic_store(&run->consumers_stop, 1);
	for (i = 0; i < c->consumers; i++)
		pthread_join(ct[i], NULL);

	for (i = 0; i < c->producers; i++) {
		hist_merge(r->prod_lat, run->prod[i].lat);
		r->produced += atomic_load(&run->prod[i].done_count);
		r->acked_errors += atomic_load(&run->prod[i].error_count);
	}
	for (i = 0; i < c->consumers; i++) {
		hist_merge(r->e2e_lat, run->cons[i].lat);
		r->consumed += atomic_load(&run->cons[i].done_count);
		r->bad += atomic_load(&run->cons[i].error_count);
	}
	r->lost = r->produced - r->acked_errors > r->consumed ?
		  r->produced - r->acked_errors - r->consumed : 0;
	r->msgs_per_s = (double)hist_count(r->e2e_lat) / c->duration_s;
	r->produce_msgs_per_s = (double)hist_count(r->prod_lat) / c->duration_s;
	r->mb_per_s = r->msgs_per_s * (double)c->msg_bytes / BENCH_MB;
	return rc == 0 && !atomic_load(&run->open_failed) ? 0 : -1;
}

static void bench_usage(void)
{
	fprintf(stderr,
"usage: sluice-bench --system kafka|jetstream|redis [options]\n"
"  --url ADDR          kafka: host:port (127.0.0.1:9092); redis: host:port (127.0.0.1:6379);\n"
"                      jetstream: nats://host:port (nats://127.0.0.1:4222)\n"
"  --msg-bytes N       message size (default 1024, at least %zu)\n"
"  --rate N            open loop: N msgs/s over all producers (default: as fast as possible)\n"
"  --mbps N            open loop: N MB/s (10^6 bytes) over all producers\n"
"  --producers N --consumers N --partitions N   (default 1 1 1)\n"
"  --durability D      kafka: acks=0|acks=1|acks=all (default acks=all); redis: everysec|always\n"
"                      (default everysec; set on the server with CONFIG SET); jetstream: file\n"
"  --inflight N        unacknowledged messages per producer (default 10000)\n"
"  --linger-ms N       kafka: librdkafka linger.ms (default 0: send as soon as possible)\n"
"  --warmup S --duration S   (default 2 and 30 seconds)\n"
"  --name NAME         topic/stream name (default sluice-bench-<pid>-<time>)\n"
"  --workload LABEL    label in the report and JSON (default derived from the options)\n"
"  --server-pid PID    measure this process's CPU seconds and peak RSS (/proc)\n"
"  --json FILE         write the result object;  --curve FILE  write the percentile curve\n"
"  --plot FILE.png     draw the latency-by-percentile curve with gnuplot\n",
		sizeof(struct bench_stamp));
}

static const struct bench_driver *bench_driver_find(const char *name)
{
	if (strcmp(name, "kafka") == 0)
		return &bench_kafka_driver;
	if (strcmp(name, "jetstream") == 0)
		return &bench_jetstream_driver;
	if (strcmp(name, "redis") == 0)
		return &bench_redis_driver;
	return NULL;
}

/* Parses argv into `run`; -1 on a bad option (usage printed). */
static int bench_parse(struct bench_run *run, int argc, char **argv, char *name_buf,
		       size_t name_len, char *label_buf, size_t label_len)
{
	static const struct option opts[] = {
		{ "system", 1, NULL, 's' }, { "url", 1, NULL, 'u' }, { "msg-bytes", 1, NULL, 'b' },
		{ "rate", 1, NULL, 'r' }, { "mbps", 1, NULL, 'm' }, { "producers", 1, NULL, 'P' },
		{ "consumers", 1, NULL, 'C' }, { "partitions", 1, NULL, 'N' },
		{ "durability", 1, NULL, 'd' }, { "inflight", 1, NULL, 'i' },
		{ "warmup", 1, NULL, 'w' }, { "duration", 1, NULL, 't' }, { "name", 1, NULL, 'n' },
		{ "workload", 1, NULL, 'l' }, { "server-pid", 1, NULL, 'p' },
		{ "json", 1, NULL, 'j' }, { "curve", 1, NULL, 'c' }, { "plot", 1, NULL, 'g' },
		{ "linger-ms", 1, NULL, 'L' }, { "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct bench_cfg *c = &run->cfg;
	double mbps = 0;
	int ch;

	c->msg_bytes = 1024;
	c->producers = c->consumers = c->partitions = 1;
	c->inflight_max = 10000;
	c->warmup_s = 2;
	c->duration_s = 30;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': c->system = optarg; break;
		case 'u': c->url = optarg; break;
		case 'b': c->msg_bytes = strtoul(optarg, NULL, 10); break;
		case 'r': c->target_rate = strtod(optarg, NULL); break;
		case 'm': mbps = strtod(optarg, NULL); break;
		case 'P': c->producers = atoi(optarg); break;
		case 'C': c->consumers = atoi(optarg); break;
		case 'N': c->partitions = atoi(optarg); break;
		case 'd': c->durability = optarg; break;
		case 'i': c->inflight_max = atoi(optarg); break;
		case 'w': c->warmup_s = strtod(optarg, NULL); break;
		case 't': c->duration_s = strtod(optarg, NULL); break;
		case 'n': c->name = optarg; break;
		case 'l': run->workload = optarg; break;
		case 'p': run->server_pid = atoi(optarg); break;
		case 'j': run->json_path = optarg; break;
		case 'c': run->curve_path = optarg; break;
		case 'g': run->plot_path = optarg; break;
		case 'L': c->linger_ms = atoi(optarg); break;
		default: bench_usage(); return -1;
		}
	}
	run->drv = c->system ? bench_driver_find(c->system) : NULL;
	if (run->drv == NULL || c->msg_bytes < sizeof(struct bench_stamp) ||
	    c->msg_bytes > (64u << 20) || c->producers < 1 || c->producers > BENCH_WORKERS_MAX ||
	    c->consumers < 1 || c->consumers > BENCH_WORKERS_MAX || c->partitions < 1 ||
	    c->partitions > BENCH_PARTITIONS_MAX || c->inflight_max < 1 || c->duration_s <= 0 ||
	    c->warmup_s < 0 || c->linger_ms < 0 || c->target_rate < 0 || mbps < 0) {
		bench_usage();
		return -1;
	}
	if (mbps > 0)
		c->target_rate = mbps * BENCH_MB / (double)c->msg_bytes;
	if (c->url == NULL)
		c->url = strcmp(c->system, "kafka") == 0 ? "127.0.0.1:9092" :
			 strcmp(c->system, "redis") == 0 ? "127.0.0.1:6379" : "nats://127.0.0.1:4222";
	if (c->durability == NULL)
		c->durability = strcmp(c->system, "kafka") == 0 ? "acks=all" :
				strcmp(c->system, "redis") == 0 ? "everysec" : "file";
	if (c->name == NULL) {
		snprintf(name_buf, name_len, "sluice-bench-%d-%ld", (int)getpid(), (long)time(NULL));
		c->name = name_buf;
	}
	if (run->workload == NULL) {
		char rate[48];

		if (c->target_rate > 0)
			snprintf(rate, sizeof(rate), "%.0fmsg/s", c->target_rate);
		else
			snprintf(rate, sizeof(rate), "max");
		snprintf(label_buf, label_len, "%zuB-%s-p%d-c%d-n%d", c->msg_bytes, rate,
			 c->producers, c->consumers, c->partitions);
		run->workload = label_buf;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct bench_run run;   /* large (worker array); zeroed */
	struct bench_result res = { 0 };
	char name[128], label[128], curve[512];
	int i, rc = 1, setup = 0;

	if (bench_parse(&run, argc, argv, name, sizeof(name), label, sizeof(label)) != 0)
		return 2;
	res.prod_lat = hist_new();
	res.e2e_lat = hist_new();
	for (i = 0; i < run.cfg.producers; i++)
		if ((run.prod[i].lat = hist_new()) == NULL)
			goto cleanup;
	for (i = 0; i < run.cfg.consumers; i++)
		if ((run.cons[i].lat = hist_new()) == NULL)
			goto cleanup;
	if (res.prod_lat == NULL || res.e2e_lat == NULL)
		goto cleanup;
	fprintf(stderr, "sluice-bench: %s at %s, %s, %zu B, %s, durability %s\n", run.cfg.system,
		run.cfg.url, run.cfg.name, run.cfg.msg_bytes, run.workload, run.cfg.durability);
	if (run.drv->setup(&run.cfg) != SL_OK) {
		fprintf(stderr, "sluice-bench: setup failed for %s at %s\n", run.cfg.system, run.cfg.url);
		goto cleanup;
	}
	setup = 1;
	if (bench_execute(&run, &res) != 0)
		goto cleanup;
	bench_print_table(&run, &res);
	rc = 0;
	if (run.json_path != NULL && bench_write_json(&run, &res) != 0)
		rc = 1;
	if (run.curve_path != NULL && bench_write_curve(run.curve_path, &res) != 0)
		rc = 1;
	if (run.plot_path != NULL) {
		if (run.curve_path == NULL) {
			snprintf(curve, sizeof(curve), "%s.dat", run.plot_path);
			bench_write_curve(curve, &res);
			bench_plot(&run, curve);
			unlink(curve);
		} else {
			bench_plot(&run, run.curve_path);
		}
	}
cleanup:
	if (setup)
		run.drv->teardown(&run.cfg);
	for (i = 0; i < BENCH_WORKERS_MAX; i++) {
		hist_free(run.prod[i].lat);
		hist_free(run.cons[i].lat);
	}
	hist_free(res.prod_lat);
	hist_free(res.e2e_lat);
	return rc;
}
