/*
 * segd: command line entry point. It only parses arguments, loads the
 * configuration and hands over to a command; every exit() of the program
 * is here.
 *
 * Exit codes (docs/cli.md):
 *   0 success   1 runtime error (I/O, memory)   2 usage error   3 config error
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/seg_fit.h"
#include "cmd/seg_custtable.h"
#include "cmd/seg_replay.h"
#include "config/seg_cfg.h"
#include "daemon/seg_run.h"
#include "io/seg_auth.h"
#include "rule/seg_rule.h"
#include "rule/seg_rule_load.h"
#include "util/seg_hugemem.h"
#include "util/seg_log.h"
#include "util/seg_ts.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_CONFIG = 3 };

#define MAX_SETS 256

static void usage(FILE *f)
{
    fprintf(f,
        "usage: segd <command> [options]\n"
        "\n"
        "commands:\n"
        "  replay        fold an event file and print transitions\n"
        "      --config FILE        YAML configuration (default: built-in defaults)\n"
        "      --input FILE|-       events, NDJSON or MessagePack (required)\n"
        "      --format json|msgpack  overrides input.format\n"
        "      --until RFC3339      fire deadlines up to this instant at the end\n"
        "      --dlq FILE           write rejected records here (NDJSON)\n"
        "      --summary-json FILE  also write the summary as JSON\n"
        "      --customers-out FILE  at the end, one row per customer: values, features,\n"
        "                           predictions (docs/predict.md)\n"
        "      --customers-format csv|ndjson  of that table (default csv)\n"
        "      --set key=value      override a config key (repeatable)\n"
        "  run           the daemon: consume from Kafka, publish transitions\n"
        "      --config FILE        YAML configuration (default: built-in defaults,\n"
        "                           which start an embedded demo broker)\n"
        "      --set key=value      override a config key (repeatable)\n"
        "  fit           fit the prediction models (docs/predict.md) on an event file\n"
        "      --config FILE        YAML configuration (segments.predict.unit, input.*)\n"
        "      --input FILE|-       events, NDJSON or MessagePack (required)\n"
        "      --format json|msgpack  overrides input.format\n"
        "      --until RFC3339      end of the history (default: the largest ts)\n"
        "      --output yaml|json   the result (default yaml, to paste under segments.predict)\n"
        "  check-config FILE [--set key=value]...\n"
        "                validate a configuration file\n"
        "  --version     print the version\n"
        "  --help        this text\n"
        "\n"
        "exit codes: 0 ok, 1 runtime error, 2 usage error, 3 config error\n");
}

typedef struct args {
    const char *config, *input, *format, *until, *dlq, *summary_json, *output;
    const char *customers_out, *customers_format;
    const char *sets[MAX_SETS];
    int         nsets;
} args_t;

/* Parses "--opt value" and "--opt=value". Returns 0, or EXIT_USAGE. */
static int parse_args(int argc, char **argv, int first, args_t *a, int allow_positional,
                      const char **positional)
{
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (allow_positional && !*positional) {
                *positional = arg;
                continue;
            }
            fprintf(stderr, "segd: unexpected argument '%s'\n", arg);
            return EXIT_USAGE;
        }
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        static const struct { const char *name; size_t off; } opts[] = {
            { "--config", offsetof(args_t, config) },
            { "--input", offsetof(args_t, input) },
            { "--format", offsetof(args_t, format) },
            { "--until", offsetof(args_t, until) },
            { "--dlq", offsetof(args_t, dlq) },
            { "--summary-json", offsetof(args_t, summary_json) },
            { "--output", offsetof(args_t, output) },
            { "--customers-out", offsetof(args_t, customers_out) },
            { "--customers-format", offsetof(args_t, customers_format) },
            { "--set", 0 },
        };
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (strlen(opts[k].name) == nlen && strncmp(arg, opts[k].name, nlen) == 0) break;
        if (k == sizeof opts / sizeof opts[0]) {
            fprintf(stderr, "segd: unknown option '%.*s'\n", (int)nlen, arg);
            return EXIT_USAGE;
        }
        if (!val) {
            fprintf(stderr, "segd: option %s needs a value\n", opts[k].name);
            return EXIT_USAGE;
        }
        if (!eq) i++;
        if (strcmp(opts[k].name, "--set") == 0) {
            if (a->nsets == MAX_SETS) {
                fprintf(stderr, "segd: more than %d --set options\n", MAX_SETS);
                return EXIT_USAGE;
            }
            a->sets[a->nsets++] = val;
        } else {
            *(const char **)((char *)a + opts[k].off) = val;
        }
    }
    return 0;
}

/* The settings and the rules of the file: defaults, the file, --set in
 * order, cross-key checks, then the rules against the result. */
static int load_config(seg_cfg_t *cfg, const char *path, const args_t *a, seg_ruleset_t **rules)
{
    char err[1024];
    seg_ruleset_t *rs = seg_rule_load_config(path, a->sets, a->nsets, cfg, err, sizeof err);
    if (!rs) {
        fprintf(stderr, "segd: %s\n", err);   /* names file:line:col or --set */
        return EXIT_CONFIG;
    }
    if (rules) *rules = rs;
    else seg_ruleset_destroy(rs);
    return 0;
}

static int cmd_replay(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, 2, &a, 0, NULL);
    if (rc) return rc;
    if (!a.input) {
        fprintf(stderr, "segd replay: --input FILE (or - for stdin) is required\n");
        return EXIT_USAGE;
    }
    if (a.output) {
        fprintf(stderr, "segd replay: --output is an option of segd fit\n");
        return EXIT_USAGE;
    }
    seg_cfg_t cfg;
    seg_ruleset_t *rules = NULL;
    rc = load_config(&cfg, a.config, &a, &rules);
    if (rc) return rc;
    if (a.format) {
        if (strcmp(a.format, "json") == 0) cfg.input.format = SEG_FMT_JSON;
        else if (strcmp(a.format, "msgpack") == 0) cfg.input.format = SEG_FMT_MSGPACK;
        else {
            fprintf(stderr, "segd replay: --format must be json or msgpack, not '%s'\n", a.format);
            seg_ruleset_destroy(rules);
            return EXIT_USAGE;
        }
    }
    seg_replay_opts_t o = {
        .input = a.input, .dlq = a.dlq, .summary_json = a.summary_json,
        .out = stdout, .err = stderr, .rules = rules,
        .customers_out = a.customers_out, .customers_fmt = SEG_TABLE_CSV,
    };
    if (a.customers_format) {
        if (strcmp(a.customers_format, "ndjson") == 0) o.customers_fmt = SEG_TABLE_NDJSON;
        else if (strcmp(a.customers_format, "csv") != 0) {
            fprintf(stderr, "segd replay: --customers-format must be csv or ndjson, not '%s'\n",
                    a.customers_format);
            seg_ruleset_destroy(rules);
            return EXIT_USAGE;
        }
    }
    if (a.until) {
        if (seg_ts_parse_rfc3339(a.until, strlen(a.until), &o.until) != 0) {
            fprintf(stderr, "segd replay: --until '%s' is not an RFC 3339 date-time "
                            "(e.g. 1998-06-30T00:00:00Z)\n", a.until);
            seg_ruleset_destroy(rules);
            return EXIT_USAGE;
        }
        o.has_until = true;
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    char err[1024];
    seg_hugemem_set(cfg.state.huge_pages != SEG_CFG_HUGE_OFF);   /* auto: on for replay */
    rc = seg_replay_run(&cfg, &o, err, sizeof err);
    seg_ruleset_destroy(rules);
    if (rc != 0) {
        fprintf(stderr, "segd replay: %s\n", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static int cmd_run(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, 2, &a, 0, NULL);
    if (rc) return rc;
    if (a.input || a.format || a.until || a.dlq || a.summary_json || a.output) {
        fprintf(stderr, "segd run: only --config and --set apply to the daemon\n");
        return EXIT_USAGE;
    }
    seg_cfg_t *cfg = malloc(sizeof *cfg);   /* large: string maps */
    if (!cfg) {
        fprintf(stderr, "segd run: out of memory\n");
        return EXIT_RUNTIME;
    }
    seg_ruleset_t *rules = NULL;
    rc = load_config(cfg, a.config, &a, &rules);
    if (rc) {
        free(cfg);
        return rc;
    }
    char err[1024];
    if (seg_log_open(cfg->log.file[0] ? cfg->log.file : NULL, (seg_log_level_t)cfg->log.level,
                     (seg_log_format_t)cfg->log.format, err, sizeof err) != 0) {
        fprintf(stderr, "segd run: %s\n", err);
        seg_ruleset_destroy(rules);
        free(cfg);
        return EXIT_CONFIG;
    }
    /* A reload reads the same file with the same --set again. */
    seg_run_opts_t ro = { .cfg = cfg, .rules = rules, .config_path = a.config,
                          .sets = a.sets, .nsets = a.nsets };
    seg_hugemem_set(cfg->state.huge_pages == SEG_CFG_HUGE_ON);   /* auto: off, see seg_cfg.h */
    rc = seg_run(&ro, err, sizeof err);
    if (rc == SEG_RUN_ECONFIG)
        seg_log(SEG_LOG_ERROR, "main", "configuration error: %s", err);
    else if (rc != 0)
        seg_log(SEG_LOG_ERROR, "main", "segd stopped: %s", err);
    seg_log_close();
    free(cfg);
    return rc == 0 ? EXIT_OK : rc == SEG_RUN_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
}

static int cmd_fit(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, 2, &a, 0, NULL);
    if (rc) return rc;
    seg_fit_opts_t o = { .config = a.config, .sets = a.sets, .nsets = a.nsets, .input = a.input,
                         .format = -1, .out = stdout, .err = stderr };
    if (!a.input || a.dlq || a.summary_json) {
        fprintf(stderr, "segd fit: %s\n", !a.input ? "--input FILE (or - for stdin) is required"
                                                  : "--dlq and --summary-json are options of replay");
        return EXIT_USAGE;
    }
    if (a.format && strcmp(a.format, "json") && strcmp(a.format, "msgpack")) {
        fprintf(stderr, "segd fit: --format must be json or msgpack, not '%s'\n", a.format);
        return EXIT_USAGE;
    }
    if (a.format) o.format = strcmp(a.format, "json") == 0 ? SEG_FMT_JSON : SEG_FMT_MSGPACK;
    if (a.output && strcmp(a.output, "yaml") && strcmp(a.output, "json")) {
        fprintf(stderr, "segd fit: --output must be yaml or json, not '%s'\n", a.output);
        return EXIT_USAGE;
    }
    o.output = a.output && strcmp(a.output, "json") == 0 ? SEG_FIT_OUT_JSON : SEG_FIT_OUT_YAML;
    if (a.until) {
        if (seg_ts_parse_rfc3339(a.until, strlen(a.until), &o.until) != 0) {
            fprintf(stderr, "segd fit: --until '%s' is not an RFC 3339 date-time "
                            "(e.g. 1997-09-30T00:00:00Z)\n", a.until);
            return EXIT_USAGE;
        }
        o.has_until = true;
    }
    char err[1024];
    rc = seg_fit_run(&o, err, sizeof err);
    if (rc == SEG_FIT_OK) return EXIT_OK;
    fprintf(stderr, "segd fit: %s\n", err);
    return rc == SEG_FIT_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
}

static int cmd_check_config(int argc, char **argv)
{
    args_t a;
    memset(&a, 0, sizeof a);
    const char *path = NULL;
    int rc = parse_args(argc, argv, 2, &a, 1, &path);
    if (rc) return rc;
    if (!path) path = a.config;
    if (!path) {
        fprintf(stderr, "segd check-config: a configuration FILE is required\n");
        return EXIT_USAGE;
    }
    seg_cfg_t *cfg = malloc(sizeof *cfg);
    if (!cfg) {
        fprintf(stderr, "segd check-config: out of memory\n");
        return EXIT_RUNTIME;
    }
    seg_ruleset_t *rules = NULL;
    rc = load_config(cfg, path, &a, &rules);
    if (!rc) {
        char err[1024];
        if (seg_run_check(cfg, rules, err, sizeof err) != 0) {
            fprintf(stderr, "segd: %s\n", err);
            rc = EXIT_CONFIG;
        } else {
            char token[SEG_AUTH_TOKEN_MAX + 1], warn[700];
            if (seg_auth_from_config(cfg, token, sizeof token, warn, sizeof warn, err,
                                     sizeof err) == 0 && warn[0])
                fprintf(stderr, "segd: warning: %s\n", warn);
            memset(token, 0, sizeof token);
        }
    }
    seg_ruleset_destroy(rules);
    free(cfg);
    if (rc) return rc;
    printf("%s: ok\n", path);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("segd %s\n", SEGD_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "replay") == 0) return cmd_replay(argc, argv);
    if (strcmp(cmd, "run") == 0) return cmd_run(argc, argv);
    if (strcmp(cmd, "fit") == 0) return cmd_fit(argc, argv);
    if (strcmp(cmd, "check-config") == 0) return cmd_check_config(argc, argv);
    fprintf(stderr, "segd: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
