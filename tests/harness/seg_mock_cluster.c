/*
 * seg_mock_cluster: a Kafka-protocol cluster on 127.0.0.1 for segd's
 * integration tests, driven by line commands so a test can inject faults.
 *
 * Why a separate process: segd, kcat and kafka-python must all talk to the
 * SAME cluster. librdkafka's `test.mock.num.brokers` gives each client its
 * own private cluster, so instead one process owns one cluster
 * (rd_kafka_mock_cluster_new) and every client is pointed at its bootstrap
 * address. Clients never see that it is a mock: they speak the real
 * protocol over real sockets.
 *
 * Protocol (stdout is reserved for it; librdkafka logs go to stderr):
 *   startup:  exactly one line "BOOTSTRAP 127.0.0.1:p1,127.0.0.1:p2,..."
 *   then one line per command read, "OK[ detail]" or "ERR <reason>".
 *   Blank lines and lines starting with '#' are ignored (no answer).
 * Commands (see usage() for the list) come from stdin and, with
 * --control FIFO, also from a named pipe that any number of writers may
 * open and close (answers still go to stdout, in order).
 *
 * Lifetime: the process exits 0 on stdin EOF, `quit`, SIGTERM/SIGINT/SIGHUP,
 * when its parent dies (it polls getppid(), or --parent-pid's pid, every
 * 200 ms, so a killed test script never leaves a cluster behind) or after
 * --max-lifetime seconds (exit 3, a safety net for tests). Exit 1 on startup errors, 2 on usage errors.
 *
 * Limits of librdkafka 2.0.2's mock, which tests must design around: about
 * 5 MB or 100k message sets kept per partition (oldest dropped), no log
 * compaction, no transaction markers, no CreateTopics API (use --topic or
 * `create_topic`), and broker_down does NOT move leadership (use `leader`;
 * the group coordinator too: `coordinator`). Consumer groups: the first
 * member of an empty group waits a fixed 3 s; a rebalance with members
 * present waits up to session.timeout.ms - 1 s for them per round, so
 * tests that add members use short sessions (e.g. 3000 ms). Topics that a
 * client's Metadata request names are auto-created with 4 partitions.
 * Idempotent producers' sequence numbers are checked only for
 * transactional ones: with injected Produce errors and requests
 * pipelined, a batch is appended after its refused predecessor, and
 * librdkafka then counts the refused one as delivered (a broker would
 * have refused both); tests that inject Produce errors give the
 * producer one request in flight per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_ARGS 64
#define LINE_MAX_LEN 4096

static volatile sig_atomic_t g_stop_signal;

static void on_signal(int sig)
{
    g_stop_signal = sig;
}

/* Kafka protocol ApiKeys by name. librdkafka keeps its own table private
 * (rd_kafka_ApiKey2str), so tests name the requests they fail here. */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},           {"Fetch", 1},
    {"ListOffsets", 2},       {"Offset", 2},
    {"Metadata", 3},          {"OffsetCommit", 8},
    {"OffsetFetch", 9},       {"FindCoordinator", 10},
    {"GroupCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},        {"LeaveGroup", 13},
    {"SyncGroup", 14},        {"DescribeGroups", 15},
    {"ListGroups", 16},       {"SaslHandshake", 17},
    {"ApiVersion", 18},       {"ApiVersions", 18},
    {"CreateTopics", 19},     {"DeleteTopics", 20},
    {"DeleteRecords", 21},    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23}, {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},  {"EndTxn", 26},
    {"TxnOffsetCommit", 28},  {"DescribeConfigs", 32},
    {"AlterConfigs", 33},     {"CreatePartitions", 37},
    {"DeleteGroups", 42},     {"OffsetDelete", 47},
};

/* Error names the Kafka docs use that librdkafka spells differently. */
static const struct {
    const char *name;
    rd_kafka_resp_err_t err;
} err_aliases[] = {
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
    {"TRANSPORT", RD_KAFKA_RESP_ERR__TRANSPORT},
    {"NONE", RD_KAFKA_RESP_ERR_NO_ERROR},
};

typedef struct {
    rd_kafka_t *rk;                 /* book-keeping handle; outlives mcluster */
    rd_kafka_mock_cluster_t *mcluster;
    rd_kafka_t *meta_rk;            /* lazily made client for `metadata` */
    int brokers;
    char bootstrap[1024];
} harness_t;

/* Parses a whole decimal int in [lo, hi]. Returns 0 or -1. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_api_key(const char *s, int16_t *out)
{
    long v;
    if (parse_int(s, 0, INT16_MAX, &v) == 0) {
        *out = (int16_t)v;
        return 0;
    }
    /* "ProduceRequest" is accepted too, as librdkafka's docs write it. */
    size_t n = strlen(s);
    if (n > 7 && strcasecmp(s + n - 7, "Request") == 0)
        n -= 7;
    for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
        if (strlen(api_keys[i].name) == n && strncasecmp(s, api_keys[i].name, n) == 0) {
            *out = api_keys[i].key;
            return 0;
        }
    }
    return -1;
}

/* Accepts a number, a librdkafka error name ("NOT_LEADER_FOR_PARTITION",
 * "_TRANSPORT"), the same with the RD_KAFKA_RESP_ERR_ prefix, or an alias. */
static int parse_error(const char *s, rd_kafka_resp_err_t *out)
{
    long v;
    if (parse_int(s, INT_MIN, INT_MAX, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";
    if (strncasecmp(s, prefix, sizeof(prefix) - 1) == 0)
        s += sizeof(prefix) - 1;
    for (size_t i = 0; i < sizeof(err_aliases) / sizeof(err_aliases[0]); i++) {
        if (strcasecmp(s, err_aliases[i].name) == 0) {
            *out = err_aliases[i].err;
            return 0;
        }
    }
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && strcasecmp(s, descs[i].name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

static int parse_broker(const harness_t *h, const char *s, int32_t *out)
{
    long v;
    /* -1 means "all brokers" to the mock's broker functions. */
    if (parse_int(s, -1, h->brokers, &v) < 0 || v == 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* Writes one answer line and flushes: the reader waits for it. */
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err)
{
    reply("ERR %s: %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* The book-keeping handle has no bootstrap.servers by design. */
    if (strstr(buf, "No `bootstrap.servers` configured"))
        return;
    fprintf(stderr, "seg_mock_cluster: %%%d|%s|%s: %s\n", level, fac, rd_kafka_name(rk), buf);
}

/* A producer handle; bootstrap NULL for the cluster's book-keeping handle,
 * debug (e.g. "mock,protocol") NULL for none. The caller destroys it. */
static rd_kafka_t *new_client(const char *bootstrap, const char *debug, char *errstr,
                              size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (rd_kafka_conf_set(conf, "client.id", "seg_mock_cluster", errstr, errstr_size) ||
        (debug && rd_kafka_conf_set(conf, "debug", debug, errstr, errstr_size)) ||
        (bootstrap &&
         (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) ||
          /* `metadata` must never create the topic it asks about. */
          rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errstr_size)))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(conf);
    return rk;  /* on success rd_kafka_new owns conf */
}

/* `metadata <topic>`: the partition leaders as clients see them, so a test
 * can take down the leader of a partition without guessing the mock's
 * initial placement. */
static void cmd_metadata(harness_t *h, const char *topic)
{
    char errstr[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    /* Right after broker_down, the client may send the request down a
     * connection the mock is closing, and it then times out. A new client
     * bootstraps again and finds the brokers that are up. */
    for (int attempt = 0; attempt < 4; attempt++) {
        if (!h->meta_rk &&
            !(h->meta_rk = new_client(h->bootstrap, NULL, errstr, sizeof(errstr)))) {
            reply("ERR cannot create metadata client: %s", errstr);
            return;
        }
        err = rd_kafka_metadata(h->meta_rk, 1, NULL, &md, 5000);
        if (!err)
            break;
        rd_kafka_destroy(h->meta_rk);
        h->meta_rk = NULL;
    }
    if (err) {
        reply_err(err);
        return;
    }
    char out[LINE_MAX_LEN];
    int found = 0;
    size_t off = 0;
    for (int i = 0; i < md->topic_cnt && !found; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0)
            continue;
        found = 1;
        if (t->err) {
            rd_kafka_metadata_destroy(md);
            reply_err(t->err);
            return;
        }
        off += (size_t)snprintf(out, sizeof(out), "OK %s", topic);
        /* Metadata lists partitions in no promised order. */
        for (int p = 0; p < t->partition_cnt; p++) {
            for (int j = 0; j < t->partition_cnt; j++) {
                if (t->partitions[j].id != p || off >= sizeof(out))
                    continue;
                off += (size_t)snprintf(out + off, sizeof(out) - off, " %d:%" PRId32, p,
                                        t->partitions[j].leader);
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    if (!found)
        reply("ERR UNKNOWN_TOPIC_OR_PART: no topic %s", topic);
    else if (off >= sizeof(out))
        reply("ERR too many partitions to list");
    else
        reply("%s", out);
}

/* Runs one command line. Returns 1 when the harness should stop. */
static int run_command(harness_t *h, char *line)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r", &save); tok;
         tok = strtok_r(NULL, " \t\r", &save)) {
        if (argc == MAX_ARGS) {
            reply("ERR too many arguments (max %d)", MAX_ARGS);
            return 0;
        }
        argv[argc++] = tok;
    }
    if (argc == 0 || argv[0][0] == '#')
        return 0;

    const char *cmd = argv[0];
    rd_kafka_resp_err_t err;
    int32_t broker;
    long a, b;

    if (strcmp(cmd, "quit") == 0) {
        reply("OK bye");
        return 1;
    } else if (strcmp(cmd, "ping") == 0) {
        reply("OK %s", h->bootstrap);
    } else if (strcmp(cmd, "broker_down") == 0 || strcmp(cmd, "broker_up") == 0) {
        if (argc != 2 || parse_broker(h, argv[1], &broker) < 0) {
            reply("ERR usage: %s <broker_id 1..%d|-1>", cmd, h->brokers);
            return 0;
        }
        err = cmd[7] == 'd' ? rd_kafka_mock_broker_set_down(h->mcluster, broker)
                            : rd_kafka_mock_broker_set_up(h->mcluster, broker);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "leader") == 0) {
        /* -1 makes the partition leaderless, which the mock allows. */
        if (argc != 4 || parse_int(argv[2], 0, INT32_MAX, &a) < 0 ||
            parse_broker(h, argv[3], &broker) < 0) {
            reply("ERR usage: leader <topic> <partition> <broker_id 1..%d|-1>", h->brokers);
            return 0;
        }
        err = rd_kafka_mock_partition_set_leader(h->mcluster, argv[1], (int32_t)a, broker);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "push_errors") == 0) {
        /* push_errors <api> <count> <err>...: with one error and count > 1
         * the error is repeated count times ("NOT_LEADER_FOR_PARTITION x3");
         * otherwise count must equal the number of errors given. */
        int16_t key;
        rd_kafka_resp_err_t errs[MAX_ARGS];
        if (argc < 4 || parse_api_key(argv[1], &key) < 0 ||
            parse_int(argv[2], 1, MAX_ARGS, &a) < 0) {
            reply("ERR usage: push_errors <ApiKeyName|number> <count 1..%d> <ErrorName|number>...",
                  MAX_ARGS);
            return 0;
        }
        int given = argc - 3;
        if (given != 1 && given != a) {
            reply("ERR count %ld does not match the %d errors given", a, given);
            return 0;
        }
        for (int i = 0; i < given; i++) {
            if (parse_error(argv[3 + i], &errs[i]) < 0) {
                reply("ERR unknown error name %s", argv[3 + i]);
                return 0;
            }
        }
        size_t n = (size_t)a;
        for (size_t i = (size_t)given; i < n; i++)
            errs[i] = errs[0];
        rd_kafka_mock_push_request_errors_array(h->mcluster, key, n, errs);
        reply("OK %zu", n);
    } else if (strcmp(cmd, "broker_push_errors") == 0) {
        /* broker_push_errors <broker> <api> <err>[:rtt_ms]... : errors (and
         * delays) on one broker only; they take precedence over the
         * cluster-wide stack. Pushed one by one: each push appends. */
        int16_t key;
        if (argc < 4 || parse_broker(h, argv[1], &broker) < 0 || broker < 1 ||
            parse_api_key(argv[2], &key) < 0) {
            reply("ERR usage: broker_push_errors <broker_id> <ApiKey> <Error>[:rtt_ms]...");
            return 0;
        }
        for (int i = 3; i < argc; i++) {
            char *colon = strchr(argv[i], ':');
            long rtt = 0;
            if (colon) {
                *colon = '\0';
                if (parse_int(colon + 1, 0, INT_MAX, &rtt) < 0) {
                    reply("ERR bad rtt %s", colon + 1);
                    return 0;
                }
            }
            rd_kafka_resp_err_t e;
            if (parse_error(argv[i], &e) < 0) {
                reply("ERR unknown error name %s", argv[i]);
                return 0;
            }
            err = rd_kafka_mock_broker_push_request_error_rtts(h->mcluster, broker, key, 1,
                                                               e, (int)rtt);
            if (err) {
                reply_err(err);
                return 0;
            }
        }
        reply("OK %d", argc - 3);
    } else if (strcmp(cmd, "error_count") == 0) {
        /* How many of a broker's pushed errors are still unserved: lets a
         * test prove its client actually hit (and so retried past) them. */
        int16_t key;
        size_t cnt = 0;
        if (argc != 3 || parse_broker(h, argv[1], &broker) < 0 || broker < 1 ||
            parse_api_key(argv[2], &key) < 0) {
            reply("ERR usage: error_count <broker_id> <ApiKey>");
            return 0;
        }
        err = rd_kafka_mock_broker_error_stack_cnt(h->mcluster, broker, key, &cnt);
        err ? reply_err(err) : reply("OK %zu", cnt);
    } else if (strcmp(cmd, "clear_errors") == 0) {
        int16_t key;
        if (argc != 2 || parse_api_key(argv[1], &key) < 0) {
            reply("ERR usage: clear_errors <ApiKeyName|number>");
            return 0;
        }
        rd_kafka_mock_clear_request_errors(h->mcluster, key);
        reply("OK");
    } else if (strcmp(cmd, "coordinator") == 0) {
        /* coordinator <group> <broker> or coordinator transaction <id> <broker> */
        const char *type = "group";
        int k = 1;
        if (argc == 4 && (strcmp(argv[1], "group") == 0 || strcmp(argv[1], "transaction") == 0)) {
            type = argv[1];
            k = 2;
        }
        if (argc != k + 2 || parse_broker(h, argv[k + 1], &broker) < 0 || broker < 1) {
            reply("ERR usage: coordinator [group|transaction] <key> <broker_id>");
            return 0;
        }
        err = rd_kafka_mock_coordinator_set(h->mcluster, type, argv[k], broker);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "rtt") == 0) {
        if (argc != 3 || parse_broker(h, argv[1], &broker) < 0 ||
            parse_int(argv[2], 0, INT_MAX, &a) < 0) {
            reply("ERR usage: rtt <broker_id|-1> <ms>");
            return 0;
        }
        err = rd_kafka_mock_broker_set_rtt(h->mcluster, broker, (int)a);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "create_topic") == 0) {
        if (argc < 3 || argc > 4 || parse_int(argv[2], 1, 100000, &a) < 0 ||
            (argc == 4 && parse_int(argv[3], 1, h->brokers, &b) < 0)) {
            reply("ERR usage: create_topic <name> <partitions> [replication 1..%d]", h->brokers);
            return 0;
        }
        if (argc == 3)
            b = h->brokers < 3 ? h->brokers : 3;
        err = rd_kafka_mock_topic_create(h->mcluster, argv[1], (int)a, (int)b);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "topic_error") == 0) {
        /* Metadata answers for <topic> carry <err> until set back to NONE. */
        rd_kafka_resp_err_t e;
        if (argc != 3 || parse_error(argv[2], &e) < 0) {
            reply("ERR usage: topic_error <topic> <ErrorName|NONE>");
            return 0;
        }
        rd_kafka_mock_topic_set_error(h->mcluster, argv[1], e);
        reply("OK");
    } else if (strcmp(cmd, "apiversion") == 0) {
        int16_t key;
        if (argc != 4 || parse_api_key(argv[1], &key) < 0 ||
            parse_int(argv[2], -1, INT16_MAX, &a) < 0 || parse_int(argv[3], -1, INT16_MAX, &b) < 0) {
            reply("ERR usage: apiversion <ApiKey> <min|-1> <max|-1>");
            return 0;
        }
        err = rd_kafka_mock_set_apiversion(h->mcluster, key, (int16_t)a, (int16_t)b);
        err ? reply_err(err) : reply("OK");
    } else if (strcmp(cmd, "metadata") == 0) {
        if (argc != 2) {
            reply("ERR usage: metadata <topic>");
            return 0;
        }
        cmd_metadata(h, argv[1]);
    } else {
        reply("ERR unknown command %s", cmd);
    }
    return 0;
}

/* One command source (stdin or the FIFO) with its partial line. */
typedef struct {
    char buf[LINE_MAX_LEN];
    size_t len;
    int discarding;  /* inside an over-long line: drop up to its newline */
} source_t;

/* Splits buffered bytes into lines and runs them. Returns 1 to stop. */
static int drain_lines(harness_t *h, source_t *src)
{
    size_t start = 0;
    for (size_t i = 0; i < src->len; i++) {
        if (src->buf[i] != '\n')
            continue;
        src->buf[i] = '\0';
        if (src->discarding) {
            src->discarding = 0;
        } else if (run_command(h, src->buf + start)) {
            src->len = 0;
            return 1;
        }
        start = i + 1;
    }
    memmove(src->buf, src->buf + start, src->len - start);
    src->len -= start;
    if (src->len == sizeof(src->buf) - 1) {  /* full, and no newline in it */
        if (!src->discarding)
            reply("ERR line too long (max %d bytes)", LINE_MAX_LEN - 2);
        src->discarding = 1;
        src->len = 0;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: seg_mock_cluster [--brokers N] [--topic NAME:PARTITIONS[:REPLICATION]]...\n"
            "                        [--bootstrap-file PATH] [--control FIFO]\n"
            "                        [--max-lifetime SECONDS] [--parent-pid PID|0]\n"
            "                        [--debug CONTEXTS]\n"
            "Starts a librdkafka mock cluster of N (default 3) brokers on 127.0.0.1,\n"
            "prints 'BOOTSTRAP host:port,...', then answers commands on stdin\n"
            "(and on FIFO) with 'OK ...' or 'ERR reason', one line each:\n"
            "  broker_down <id|-1>        broker_up <id|-1>\n"
            "  leader <topic> <partition> <id|-1>\n"
            "  push_errors <ApiKey> <count> <Error>...  (one Error is repeated count times)\n"
            "  broker_push_errors <id> <ApiKey> <Error>[:rtt_ms]...\n"
            "  error_count <id> <ApiKey>  -> 'OK <errors pushed on that broker not yet served>'\n"
            "  clear_errors <ApiKey>      coordinator [group|transaction] <key> <id>\n"
            "  rtt <id|-1> <ms>           create_topic <name> <partitions> [replication]\n"
            "  topic_error <topic> <Error|NONE>   apiversion <ApiKey> <min> <max>\n"
            "  metadata <topic>  -> 'OK <topic> 0:<leader> 1:<leader> ...'\n"
            "  ping  -> 'OK <bootstrap>'  quit\n"
            "ApiKey: a name (Produce, Fetch, OffsetCommit, JoinGroup, ...) or number.\n"
            "Error: a librdkafka name (NOT_LEADER_FOR_PARTITION, _TRANSPORT, ...) or number.\n"
            "Exits on stdin EOF, quit, SIGTERM/SIGINT/SIGHUP, after --max-lifetime, or\n"
            "when its parent (or --parent-pid PID; 0: never) exits.\n");
}

int main(int argc, char **argv)
{
    long brokers = 3, max_lifetime = 0, watch_pid = -1;
    const char *bootstrap_file = NULL, *control = NULL, *debug = NULL;
    const char *topics[256];
    int topic_cnt = 0;
    int rc = 1, control_fd = -1, made_fifo = 0;
    harness_t h = {0};
    char errstr[512];

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "seg_mock_cluster: %s needs a value\n", opt);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(opt, "--brokers") == 0) {
            if (parse_int(val, 1, 64, &brokers) < 0) {
                fprintf(stderr, "seg_mock_cluster: --brokers wants 1..64, got %s\n", val);
                return 2;
            }
        } else if (strcmp(opt, "--topic") == 0) {
            if (topic_cnt == (int)(sizeof(topics) / sizeof(topics[0]))) {
                fprintf(stderr, "seg_mock_cluster: too many --topic\n");
                return 2;
            }
            topics[topic_cnt++] = val;
        } else if (strcmp(opt, "--bootstrap-file") == 0) {
            bootstrap_file = val;
        } else if (strcmp(opt, "--control") == 0) {
            control = val;
        } else if (strcmp(opt, "--max-lifetime") == 0) {
            if (parse_int(val, 0, 86400, &max_lifetime) < 0) {
                fprintf(stderr, "seg_mock_cluster: --max-lifetime wants 0..86400 seconds\n");
                return 2;
            }
        } else if (strcmp(opt, "--parent-pid") == 0) {
            if (parse_int(val, 0, INT_MAX, &watch_pid) < 0) {
                fprintf(stderr, "seg_mock_cluster: --parent-pid wants a pid, or 0 for none\n");
                return 2;
            }
        } else if (strcmp(opt, "--debug") == 0) {
            debug = val;
        } else {
            fprintf(stderr, "seg_mock_cluster: unknown option %s\n", opt);
            usage(stderr);
            return 2;
        }
    }
    h.brokers = (int)brokers;

    /* Validate topics before starting anything. */
    struct {
        char name[250];
        long parts, rf;
    } tspec[256];
    for (int t = 0; t < topic_cnt; t++) {
        char buf[300];
        if (strlen(topics[t]) >= sizeof(buf)) {
            fprintf(stderr, "seg_mock_cluster: --topic %.40s...: too long\n", topics[t]);
            return 2;
        }
        memcpy(buf, topics[t], strlen(topics[t]) + 1);
        char *c1 = strchr(buf, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1)
            *c1 = '\0';
        if (c2)
            *c2 = '\0';
        tspec[t].rf = brokers < 3 ? brokers : 3;
        if (!c1 || !buf[0] || strlen(buf) >= sizeof(tspec[t].name) ||
            parse_int(c1 + 1, 1, 100000, &tspec[t].parts) < 0 ||
            (c2 && parse_int(c2 + 1, 1, brokers, &tspec[t].rf) < 0)) {
            fprintf(stderr,
                    "seg_mock_cluster: --topic wants NAME:PARTITIONS[:REPLICATION<=%ld], got %s\n",
                    brokers, topics[t]);
            return 2;
        }
        memcpy(tspec[t].name, buf, strlen(buf) + 1);  /* length checked above */
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;  /* no SA_RESTART: poll() must return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);  /* a closed stdout shows as a write error */
    /* Which process's death ends us: by default whoever started us, so a
     * test killed with SIGKILL never leaves a cluster listening. A launcher
     * that double-forks names the test's pid instead, or 0. */
    pid_t parent = getppid();
    if (watch_pid >= 0)
        parent = (pid_t)watch_pid;

    /* rd_kafka_mock_cluster_new needs a client handle for its book-keeping
     * (logging, timers); it must stay alive until the cluster is destroyed.
     * A producer with no bootstrap servers does nothing else. */
    h.rk = new_client(NULL, debug, errstr, sizeof(errstr));
    if (!h.rk) {
        fprintf(stderr, "seg_mock_cluster: cannot create client handle: %s\n", errstr);
        goto out;
    }
    h.mcluster = rd_kafka_mock_cluster_new(h.rk, h.brokers);
    if (!h.mcluster) {
        fprintf(stderr, "seg_mock_cluster: rd_kafka_mock_cluster_new(%d) failed\n", h.brokers);
        goto out;
    }
    snprintf(h.bootstrap, sizeof(h.bootstrap), "%s",
             rd_kafka_mock_cluster_bootstraps(h.mcluster));

    for (int t = 0; t < topic_cnt; t++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            h.mcluster, tspec[t].name, (int)tspec[t].parts, (int)tspec[t].rf);
        if (err) {
            fprintf(stderr, "seg_mock_cluster: cannot create topic %s: %s\n", tspec[t].name,
                    rd_kafka_err2str(err));
            goto out;
        }
    }

    if (control) {
        if (mkfifo(control, 0600) == 0) {
            made_fifo = 1;
        } else if (errno != EEXIST) {
            fprintf(stderr, "seg_mock_cluster: cannot create FIFO %s: %s\n", control,
                    strerror(errno));
            goto out;
        }
        /* O_RDWR: we hold a writer ourselves, so the FIFO never reads EOF
         * between one test command and the next. */
        control_fd = open(control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (control_fd < 0) {
            fprintf(stderr, "seg_mock_cluster: cannot open %s: %s\n", control, strerror(errno));
            goto out;
        }
    }

    if (bootstrap_file) {
        /* Written to a temporary name and renamed, so a test polling for
         * the file never reads half a line. */
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.tmp%ld", bootstrap_file, (long)getpid());
        FILE *f = fopen(tmp, "w");
        int werr = !f || fprintf(f, "%s\n", h.bootstrap) < 0;
        if (f && fclose(f) != 0)
            werr = 1;
        if (werr || rename(tmp, bootstrap_file) != 0) {
            unlink(tmp);
            fprintf(stderr, "seg_mock_cluster: cannot write %s: %s\n", bootstrap_file,
                    strerror(errno));
            goto out;
        }
    }
    reply("BOOTSTRAP %s", h.bootstrap);
    fprintf(stderr, "seg_mock_cluster: %d brokers at %s, %d topics, pid %ld\n", h.brokers,
            h.bootstrap, topic_cnt, (long)getpid());

    static source_t sources[2];  /* stdin, FIFO */
    int stdin_open = 1;
    time_t started = time(NULL);
    rc = 0;
    while (!g_stop_signal) {
        struct pollfd pfd[2] = {{.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN},
                                {.fd = control_fd, .events = POLLIN}};
        int n = poll(pfd, 2, 200);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "seg_mock_cluster: poll: %s\n", strerror(errno));
            rc = 1;
            break;
        }
        if (parent > 0 && (watch_pid < 0 ? getppid() != parent
                                         : kill(parent, 0) < 0 && errno == ESRCH)) {
            fprintf(stderr, "seg_mock_cluster: parent %ld exited, stopping\n", (long)parent);
            break;
        }
        if (max_lifetime && time(NULL) - started >= max_lifetime) {
            fprintf(stderr, "seg_mock_cluster: --max-lifetime %lds reached, stopping\n",
                    max_lifetime);
            rc = 3;
            break;
        }
        if (n <= 0)
            continue;
        int stop = 0;
        for (int s = 0; s < 2 && !stop; s++) {
            if (pfd[s].fd < 0 || !(pfd[s].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            source_t *src = &sources[s];
            ssize_t got = read(pfd[s].fd, src->buf + src->len, sizeof(src->buf) - 1 - src->len);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                if (s == 0) {
                    /* EOF on stdin: the test closed its end, we are done,
                     * unless commands come through the FIFO. */
                    if (src->len) {  /* last line without a newline */
                        src->buf[src->len++] = '\n';
                        stop = drain_lines(&h, src);
                    }
                    stdin_open = 0;
                    if (control_fd < 0)
                        stop = 1;
                }
                continue;
            }
            src->len += (size_t)got;
            stop = drain_lines(&h, src);
        }
        if (stop || ferror(stdout))
            break;
    }
    if (g_stop_signal)
        fprintf(stderr, "seg_mock_cluster: signal %d, stopping\n", (int)g_stop_signal);

out:
    if (control_fd >= 0)
        close(control_fd);
    if (made_fifo)
        unlink(control);
    if (h.meta_rk)
        rd_kafka_destroy(h.meta_rk);
    if (h.mcluster)
        rd_kafka_mock_cluster_destroy(h.mcluster);
    if (h.rk)
        rd_kafka_destroy(h.rk);
    return rc;
}
