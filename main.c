/*
 * main.c — the `sluice` binary: reads the configuration, starts the shards
 * and waits for SIGTERM/SIGINT.
 *
 *   sluice --config FILE [--set key=value]... [--help] [--version]
 *   sluice --api-versions     (the served APIs as a Markdown table)
 *
 * Start-up, in this order (each step's failure and exit code):
 *   1. parse arguments            bad usage          -> message + usage, 2
 *   2. config_init, load FILE, apply every --set in order, config_finish
 *                                 any config error   -> the message, 2
 *   3. set the log level, log the effective configuration
 *   4. create every log.dirs entry (mkdir -p)   failure -> path + reason, 1
 *   5. broker_create: load the topics catalog, bind the listening socket
 *      (so the port is known, and taken, before any shard runs)
 *                                 failure            -> 1
 *   6. block SIGTERM/SIGINT (every thread inherits the mask), start the
 *      shard group; each shard's on_start (broker_shard_start) opens the
 *      partitions it owns and starts accepting
 *                                 failure            -> 1
 *   7. sigwait; on SIGTERM/SIGINT: log "shutting down"; in cluster mode
 *      the controlled shutdown first (cluster_controlled_shutdown: the
 *      controller moves leadership off this broker while every shard
 *      keeps running; bounded); then stop the shards
 *      (broker_shard_stop: close listeners and connections, close the
 *      partition logs cleanly), join, broker_destroy, exit 0.
 *
 * Threads: main only parses, starts, waits for signals and stops; all the
 * broker's work happens on the shards (net/broker.h).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker.h"
#include "cluster.h"
#include "config.h"
#include "coord.h"
#include "dispatch.h"
#include "follower.h"
#include "hwsave.h"
#include "log.h"
#include "repl.h"
#include "replica_api.h"
#include "shard.h"
#include "sl.h"
#include "topic_admin.h"

enum main_exit {
	MAIN_EXIT_OK = 0,
	MAIN_EXIT_FAILURE = 1,   /* the broker could not start */
	MAIN_EXIT_USAGE = 2,     /* bad arguments or configuration */
};

/* Upper bound on --set options (each is one argv entry anyway). */
#define MAIN_SETS_MAX 1024

struct main_args {
	const char *config_path;
	const char *sets[MAIN_SETS_MAX];  /* "key=value", argv-owned */
	int set_count;
	bool help;
	bool version;
	bool api_versions;
};

/* What every shard's start/stop hook sees. Read-only once shards run. */
struct main_ctx {
	const struct config *config;
	struct broker *broker;
};

static void main_usage(FILE *out)
{
	fprintf(out,
		"usage: sluice --config FILE [--set key=value]... [--help] [--version]\n"
		"       sluice --api-versions\n"
		"\n"
		"Sluice, a Kafka-compatible broker.\n"
		"\n"
		"  -c, --config FILE      broker configuration (server.properties syntax)\n"
		"  -s, --set key=value    override one configuration key; repeatable,\n"
		"                         applied in order after FILE\n"
		"  -A, --api-versions     print the Kafka APIs and versions served\n"
		"                         (Markdown) and exit\n"
		"  -h, --help             show this help and exit\n"
		"  -V, --version          print the version and exit\n"
		"\n"
		"Stops cleanly on SIGTERM or SIGINT. Exit codes: 0 ok, 1 could not\n"
		"start, 2 bad arguments or configuration.\n");
}

/* Reports a usage error: "sluice: <what><detail>". Returns MAIN_EXIT_USAGE. */
static int main_usage_error(const char *what, const char *detail)
{
	fprintf(stderr, "sluice: %s%s\n", what, detail);
	main_usage(stderr);
	return MAIN_EXIT_USAGE;
}

/*
 * Parses argv into `a`. Returns MAIN_EXIT_OK, or MAIN_EXIT_USAGE after
 * printing the problem and the usage on stderr.
 */
static int main_args_parse(int argc, char **argv, struct main_args *a)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "set", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "api-versions", no_argument, NULL, 'A' },
		{ NULL, 0, NULL, 0 },
	};

	memset(a, 0, sizeof(*a));
	opterr = 0;
	/* Each iteration consumes at least one argv entry. */
	for (int i = 0; i <= argc; i++) {
		int opt = getopt_long(argc, argv, ":c:s:hVA", longopts, NULL);
		if (opt == -1)
			break;
		switch (opt) {
		case 'c':
			a->config_path = optarg;
			break;
		case 's':
			if (strchr(optarg, '=') == NULL || optarg[0] == '=')
				return main_usage_error("--set expects key=value, got: ", optarg);
			if (a->set_count == MAIN_SETS_MAX)
				return main_usage_error("too many --set options", "");
			a->sets[a->set_count++] = optarg;
			break;
		case 'h':
			a->help = true;
			break;
		case 'V':
			a->version = true;
			break;
		case 'A':
			a->api_versions = true;
			break;
		case ':':
			return main_usage_error("missing value for option ", argv[optind - 1]);
		default:
			return main_usage_error("unknown option ", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return main_usage_error("unexpected argument: ", argv[optind]);
	if (!a->help && !a->version && !a->api_versions && a->config_path == NULL)
		return main_usage_error("--config FILE is required", "");
	return MAIN_EXIT_OK;
}

/*
 * Builds the configuration: defaults, the file, the --set overrides in
 * order, then config_finish. Returns MAIN_EXIT_OK or MAIN_EXIT_USAGE (the
 * reason printed on stderr). `c` must be freed either way.
 */
static int main_config_load(struct config *c, const struct main_args *a)
{
	char err[512];
	char key[256];

	config_init(c);
	if (config_load_file(c, a->config_path, err, sizeof(err)) != SL_OK)
		goto fail;
	for (int i = 0; i < a->set_count; i++) {
		const char *eq = strchr(a->sets[i], '=');
		size_t key_len = (size_t)(eq - a->sets[i]);
		if (key_len >= sizeof(key)) {
			snprintf(err, sizeof(err), "--set: key too long: %.40s...", a->sets[i]);
			goto fail;
		}
		memcpy(key, a->sets[i], key_len);
		key[key_len] = '\0';
		if (config_set(c, key, eq + 1, err, sizeof(err)) != SL_OK)
			goto fail;
	}
	if (config_finish(c, err, sizeof(err)) != SL_OK)
		goto fail;
	return MAIN_EXIT_OK;
fail:
	fprintf(stderr, "sluice: %s\n", err);
	return MAIN_EXIT_USAGE;
}

/*
 * mkdir -p `path`: creates every missing component (mode 0755). Returns 0
 * or -errno (ENOTDIR when something on the way is not a directory).
 */
static int main_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = saved;
	}
	if (stat(path, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Creates every log.dirs entry. Returns MAIN_EXIT_OK or MAIN_EXIT_FAILURE. */
static int main_log_dirs_create(const struct config *c)
{
	char dir[PATH_MAX];
	int count = config_list_count(c->log_dirs);

	for (int i = 0; i < count; i++) {
		if (config_list_get(c->log_dirs, i, dir, sizeof(dir)) != SL_OK) {
			LOG_E(LOG_NO_SHARD, "log.dirs entry %d is too long", i);
			return MAIN_EXIT_FAILURE;
		}
		int rc = main_mkdir_p(dir);
		if (rc < 0) {
			LOG_E(LOG_NO_SHARD, "cannot create log directory %s: %s", dir, strerror(-rc));
			return MAIN_EXIT_FAILURE;
		}
	}
	return MAIN_EXIT_OK;
}

/* Runs on every shard before its first turn: the broker's per-shard state. */
static enum sl_err main_shard_start(struct shard *sh, void *arg)
{
	struct main_ctx *ctx = arg;

	SL_ASSERT(ctx->config != NULL && ctx->broker != NULL);
	enum sl_err err = broker_shard_start(sh, ctx->broker);
	/* Cluster mode: shard 0 owns the ZooKeeper session (and maybe the controller). */
	if (err == SL_OK && sh->id == 0 && ctx->broker->cluster != NULL)
		err = cluster_shard_start(broker_shard_of(sh));
	/* Cluster mode: replication takes the partitions' data path over. */
	if (err == SL_OK && ctx->config->zookeeper_connect[0] != '\0')
		broker_shard_of(sh)->parts.hooks = &repl_partition_hooks;
	return err;
}

/* The layers above net/ let go of a stopping shard: groups, then replication. */
static void main_ext_stop(struct broker_shard *bs)
{
	coord_shard_stop(bs);
	repl_shard_stop(bs);
}

/* Runs on every shard when it sees the stop request. */
static void main_shard_stop(struct shard *sh, void *arg)
{
	struct main_ctx *ctx = arg;

	LOG_D(sh->id, "shard stopping");
	if (sh->id == 0 && ctx->broker->cluster != NULL)
		cluster_shard_stop(broker_shard_of(sh));
	broker_shard_stop(sh, ctx->broker);
}

/*
 * Starts the shards, waits for SIGTERM/SIGINT, stops them. The signals
 * must already be blocked in this thread. Returns a main_exit code.
 */
static int main_run(const struct config *c, struct broker *b, const sigset_t *sigs)
{
	struct main_ctx ctx = { .config = c, .broker = b };
	struct shard_group_options opt;
	struct shard_group *g = NULL;
	enum sl_err err;
	int sig = 0;

	memset(&opt, 0, sizeof(opt));
	opt.shard_count = (uint32_t)c->num_shards;
	opt.on_start = main_shard_start;
	opt.on_stop = main_shard_stop;
	opt.arg = &ctx;
	err = shard_group_create(&g, &opt);
	if (err != SL_OK) {
		LOG_E(LOG_NO_SHARD, "cannot create %d shards: %s", c->num_shards, sl_err_str(err));
		return MAIN_EXIT_FAILURE;
	}
	err = shard_group_start(g);
	if (err != SL_OK) {
		LOG_E(LOG_NO_SHARD, "cannot start the shards: %s", sl_err_str(err));
		shard_group_destroy(g);
		return MAIN_EXIT_FAILURE;
	}
	LOG_I(LOG_NO_SHARD, "sluice %s running with %u shards", SL_VERSION, shard_group_count(g));
	/* Only SIGTERM and SIGINT are in the set, so this waits for one of them. */
	for (int i = 0; i < 1000; i++) {
		int rc = sigwait(sigs, &sig);
		if (rc == 0 && (sig == SIGTERM || sig == SIGINT))
			break;
		if (rc != 0)
			LOG_W(LOG_NO_SHARD, "sigwait: %s", strerror(rc));
	}
	LOG_I(LOG_NO_SHARD, "shutting down (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
	/* Cluster mode: leadership moves away while the loops still run. */
	if (b->cluster != NULL)
		(void)cluster_controlled_shutdown(b->cluster);
	shard_group_stop(g);
	err = shard_group_join(g);
	SL_ASSERT(err == SL_OK);
	shard_group_destroy(g);
	LOG_I(LOG_NO_SHARD, "stopped");
	return MAIN_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct main_args args;
	struct config config;
	struct broker *broker = NULL;
	struct cluster *cluster = NULL;
	sigset_t sigs;
	int rc;

	rc = main_args_parse(argc, argv, &args);
	if (rc != MAIN_EXIT_OK)
		return rc;
	/* Group APIs live above net/ (coordination/): plug them into the table. */
	coord_register();
	/* OffsetForLeaderEpoch (also single-node: KIP-320 clients ask it) and
	 * the follower data path replication/repl.c starts and stops. */
	follower_api_register();
	repl_follower_ops_set(&follower_repl_ops);
	/* The group coordinator follows its __consumer_offsets leaders. */
	repl_role_hook_set(coord_role_changed);
	if (args.help) {
		main_usage(stdout);
		return MAIN_EXIT_OK;
	}
	if (args.version) {
		printf("sluice %s\n", SL_VERSION);
		return MAIN_EXIT_OK;
	}
	if (args.api_versions) {
		dispatch_print_markdown(stdout);
		return MAIN_EXIT_OK;
	}

	rc = main_config_load(&config, &args);
	if (rc != MAIN_EXIT_OK)
		goto out;
	log_level_set(config.log_level);
	config_log(&config);
	rc = main_log_dirs_create(&config);
	if (rc != MAIN_EXIT_OK)
		goto out;
	/* A peer closing its socket is an error result, never a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (broker_create(&broker, &config) != SL_OK) {
		LOG_E(LOG_NO_SHARD, "cannot start the broker (see above)");
		rc = MAIN_EXIT_FAILURE;
		goto out;
	}
	broker->ext_stop = main_ext_stop;
	/* Cluster mode: the controller's requests to replicas. */
	if (config.zookeeper_connect[0] != '\0') {
		replica_api_register();
		/* ZooKeeper presence, the controller, UpdateMetadata, AlterPartition. */
		if (cluster_create(&cluster, broker) != SL_OK) {
			LOG_E(LOG_NO_SHARD, "bad zookeeper.connect: %s", config.zookeeper_connect);
			rc = MAIN_EXIT_FAILURE;
			goto out;
		}
		/* replication-offset-checkpoint upkeep (replication/hwsave.h). */
		if (hwsave_create(broker) != SL_OK) {
			LOG_E(LOG_NO_SHARD, "out of memory");
			rc = MAIN_EXIT_FAILURE;
			goto out;
		}
		cluster_api_register();
		/* DeleteTopics / CreatePartitions through ZooKeeper (topic_admin.h). */
		broker->zk_topics_delete = topic_admin_delete;
		broker->zk_partitions_create = topic_admin_partitions;
	}

	/* Before any thread exists, so that every thread inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rc = main_run(&config, broker, &sigs);
	/* The shards joined: the shutdown HW checkpoint (hwsave.h). */
	hwsave_finish(broker->hwsave);
	broker->hwsave = NULL;
	if (rc == MAIN_EXIT_OK && cluster_failed(cluster))
		rc = MAIN_EXIT_FAILURE;
out:
	broker_destroy(broker);
	cluster_destroy(cluster);
	config_free(&config);
	return rc;
}
