/*
 * seg_bench_ceiling: the fastest segd replay could possibly go on this
 * machine, measured in the same run as replay itself.
 *
 * A replay rate in events/s means little on its own: it moves with the CPU,
 * the compiler and the library builds. What we can hold segd to is a ratio
 * against the cost it cannot avoid, parsing each record with the library it
 * uses:
 *   json:    simdjson On Demand through src/event/seg_json (every value of
 *            every NDJSON line parsed and validated, members listed), the
 *            parser segd's decoder uses; --parser cjson: cJSON_ParseWithLength
 *            + cJSON_Delete (segd's parser before, and still its fallback);
 *            --parser jsmn: jsmn_parse (JSMN_STRICT) into a token array plus
 *            strtod of every number token: a tokenizer that checks far less
 *            of the grammar (built only where jsmn.h is installed), for the
 *            comparison in docs/benchmarks.md;
 *   msgpack: msgpack_unpacker streaming over the file, one
 *            msgpack_unpacker_next per record, as a file reader would feed it.
 * The whole file is read into memory before the clock starts, so I/O is out
 * of the measurement (replay is fed from the page cache by bench/run.py).
 *
 * Output: one JSON object on stdout with the rate, so bench/run.py can read it
 * without scraping. Exit codes: 0 ok, 1 I/O or memory error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "event/seg_json.h"

#ifdef SEG_HAVE_JSMN
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>
#endif

/* Bytes handed to the unpacker per feed: what a reader's read() returns. */
#define MSGPACK_CHUNK (1u << 20)

typedef struct {
    uint64_t records;       /* values parsed */
    uint64_t objects;       /* of which objects/maps (candidate events) */
    uint64_t errors;        /* lines (json) or streams (msgpack) that failed */
} tally_t;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads the whole file into a malloc'd buffer. Returns 0, or -1 with a
 * sentence in errstr. The caller frees *out. */
static int slurp(const char *path, char **out, size_t *len, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY);
    char *buf = NULL;
    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(errstr, errstr_size, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        snprintf(errstr, errstr_size, "cannot allocate %zu bytes for %s", size, path);
        goto fail;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(errstr, errstr_size, "cannot read %s: %s", path,
                     n < 0 ? strerror(errno) : "file shrank");
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = size;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

static void run_cjson(const char *buf, size_t len, tally_t *t)
{
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            cJSON *j = cJSON_ParseWithLength(p, n);
            if (j) {
                t->records++;
                t->objects += cJSON_IsObject(j) ? 1 : 0;
                cJSON_Delete(j);
            } else {
                t->errors++;
            }
        }
        p += n + 1;
    }
}

/* Every line is an object in the bench's files; a line that is not (or
 * that simdjson refuses) counts as an error, so the rate is never that of
 * a fallback. */
static int run_simdjson(const char *buf, size_t len, tally_t *t, char *errstr, size_t errstr_size)
{
    seg_json_t *sj = seg_json_new();
    if (!sj) {
        snprintf(errstr, errstr_size, "seg_json_new failed");
        return -1;
    }
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            seg_json_doc_t doc;
            if (seg_json_parse_object(sj, p, n, &doc) == SEG_JSON_OK) {
                t->records++;
                t->objects++;
            } else {
                t->errors++;
            }
        }
        p += n + 1;
    }
    seg_json_destroy(sj);
    return 0;
}

#ifdef SEG_HAVE_JSMN
static void run_jsmn(const char *buf, size_t len, tally_t *t)
{
    jsmntok_t tok[256];
    const char *p = buf, *end = buf + len;
    double sink = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n) {
            jsmn_parser jp;
            jsmn_init(&jp);
            int k = jsmn_parse(&jp, p, n, tok, sizeof tok / sizeof tok[0]);
            if (k > 0) {
                /* numbers are all a decoder needs converted (strings are
                 * used in place when they hold no escape) */
                for (int i = 0; i < k; i++)
                    if (tok[i].type == JSMN_PRIMITIVE && (p[tok[i].start] == '-' ||
                                                          (p[tok[i].start] >= '0' &&
                                                           p[tok[i].start] <= '9')))
                        sink += strtod(p + tok[i].start, NULL);
                t->records++;
                t->objects += tok[0].type == JSMN_OBJECT ? 1 : 0;
            } else {
                t->errors++;
            }
        }
        p += n + 1;
    }
    if (sink == -1) t->errors++;   /* keeps the conversions */
}
#endif

static int run_msgpack(const char *buf, size_t len, tally_t *t, char *errstr, size_t errstr_size)
{
    msgpack_unpacker *up = msgpack_unpacker_new(MSGPACK_CHUNK);
    if (!up) {
        snprintf(errstr, errstr_size, "msgpack_unpacker_new failed");
        return -1;
    }
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    size_t off = 0;
    int rc = 0;
    while (off < len) {
        size_t n = len - off < MSGPACK_CHUNK ? len - off : MSGPACK_CHUNK;
        if (!msgpack_unpacker_reserve_buffer(up, n)) {
            snprintf(errstr, errstr_size, "msgpack_unpacker_reserve_buffer failed");
            rc = -1;
            break;
        }
        memcpy(msgpack_unpacker_buffer(up), buf + off, n);
        msgpack_unpacker_buffer_consumed(up, n);
        off += n;
        msgpack_unpack_return r;
        while ((r = msgpack_unpacker_next(up, &res)) == MSGPACK_UNPACK_SUCCESS) {
            t->records++;
            t->objects += res.data.type == MSGPACK_OBJECT_MAP ? 1 : 0;
        }
        if (r == MSGPACK_UNPACK_PARSE_ERROR || r == MSGPACK_UNPACK_NOMEM_ERROR) {
            /* The stream cannot be resynchronised; count it and stop. */
            t->errors++;
            break;
        }
    }
    if (rc == 0 && off == len && msgpack_unpacker_message_size(up) > 0 && t->errors == 0)
        t->errors++;        /* a truncated value at the end of the file */
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_free(up);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: seg_bench_ceiling --format json|msgpack [--parser simdjson|cjson|jsmn] FILE\n"
               "Parses every record of FILE (read into memory first) and prints\n"
               "{\"format\":..,\"records\":N,\"events_per_second\":x,...} on stdout.\n"
               "JSON is parsed with simdjson (as segd does) unless --parser says otherwise.\n");
}

int main(int argc, char **argv)
{
    const char *format = NULL, *path = NULL, *parser = "simdjson";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strcmp(argv[i], "--parser") && i + 1 < argc) {
            parser = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage(stderr);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!format || !path || (strcmp(format, "json") && strcmp(format, "msgpack"))) {
        usage(stderr);
        return 2;
    }
    if (strcmp(parser, "simdjson") && strcmp(parser, "cjson") && strcmp(parser, "jsmn")) {
        usage(stderr);
        return 2;
    }
#ifndef SEG_HAVE_JSMN
    if (!strcmp(parser, "jsmn")) {
        fprintf(stderr, "seg_bench_ceiling: built without jsmn.h (apt-get install libjsmn-dev)\n");
        return 2;
    }
#endif

    char err[512];
    char *buf;
    size_t len;
    if (slurp(path, &buf, &len, err, sizeof err)) {
        fprintf(stderr, "seg_bench_ceiling: %s\n", err);
        return 1;
    }

    tally_t t = { 0 };
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    int rc = 0;
    if (strcmp(format, "json"))
        rc = run_msgpack(buf, len, &t, err, sizeof err);
    else if (!strcmp(parser, "cjson"))
        run_cjson(buf, len, &t);
#ifdef SEG_HAVE_JSMN
    else if (!strcmp(parser, "jsmn"))
        run_jsmn(buf, len, &t);
#endif
    else
        rc = run_simdjson(buf, len, &t, err, sizeof err);
    double wall = clock_s(CLOCK_MONOTONIC) - w0;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    free(buf);
    if (rc) {
        fprintf(stderr, "seg_bench_ceiling: %s\n", err);
        return 1;
    }

    printf("{\"format\":\"%s\",\"parser\":\"%s\",\"bytes\":%zu,\"records\":%" PRIu64 ",\"objects\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"wall_seconds\":%.6f,\"cpu_seconds\":%.6f"
           ",\"events_per_second\":%.1f}\n",
           format, strcmp(format, "json") ? "msgpack-c" : parser, len, t.records, t.objects, t.errors, wall, cpu,
           wall > 0 ? (double)t.records / wall : 0.0);
    return 0;
}
