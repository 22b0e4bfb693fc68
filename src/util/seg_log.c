/*
 * seg_log: formatting and writing log lines.
 *
 * A line is built completely outside the lock, then written with one
 * write(2) under the mutex. The mutex is only there so a reopen (SIGHUP)
 * never swaps the descriptor out from under a writer, and so a partial
 * write of a long line (a pipe or a full disk) is finished before another
 * thread's line starts. The level filter and format are atomics, so a
 * filtered-out debug call costs one relaxed load.
 *
 * JSON lines are built by cJSON, which escapes quotes, backslashes and
 * control characters but passes other bytes through; messages can quote
 * record bytes, so invalid UTF-8 is replaced by U+FFFD first to keep every
 * line parseable by strict JSON readers.
 */
#include "util/seg_log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL, with room for wide years. */
#define TS_BUFSZ 40
#define MSG_STACK 1024

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;  /* guarded by log_mu */
static char *log_path;              /* guarded by log_mu; NULL = stderr */
static atomic_int log_min_level = SEG_LOG_INFO;
static atomic_int log_format = SEG_LOG_PLAIN;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* Padded to the widest name so the component column lines up. */
static const char *const level_cols[] = {"debug", "info ", "warn ", "error"};

int seg_log_level_parse(const char *s, seg_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (seg_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

int seg_log_format_parse(const char *s, seg_log_format_t *out)
{
    if (s && strcmp(s, "plain") == 0) { *out = SEG_LOG_PLAIN; return 0; }
    if (s && strcmp(s, "json") == 0) { *out = SEG_LOG_JSON; return 0; }
    return -1;
}

const char *seg_log_level_name(seg_log_level_t level)
{
    return (int)level >= 0 && (int)level < 4 ? level_names[level] : "?";
}

static int open_file(const char *path, int *fd, char *errstr, size_t errstr_size)
{
    int f = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (f < 0) {
        snprintf(errstr, errstr_size, "cannot open log file '%s': %s",
                 path, strerror(errno));
        return -1;
    }
    *fd = f;
    return 0;
}

int seg_log_open(const char *path, seg_log_level_t min_level,
                 seg_log_format_t format, char *errstr, size_t errstr_size)
{
    if ((int)min_level < SEG_LOG_DEBUG || min_level > SEG_LOG_ERROR ||
        (format != SEG_LOG_PLAIN && format != SEG_LOG_JSON)) {
        snprintf(errstr, errstr_size, "invalid log level or format");
        return -1;
    }
    int fd = STDERR_FILENO;
    char *copy = NULL;
    if (path && strcmp(path, "-") != 0) {
        copy = strdup(path);
        if (!copy) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        if (open_file(path, &fd, errstr, errstr_size) != 0) {
            free(copy);
            return -1;
        }
    }
    pthread_mutex_lock(&log_mu);
    if (log_fd != STDERR_FILENO) close(log_fd);
    free(log_path);
    log_fd = fd;
    log_path = copy;
    atomic_store(&log_min_level, (int)min_level);
    atomic_store(&log_format, (int)format);
    pthread_mutex_unlock(&log_mu);
    return 0;
}

int seg_log_reopen(char *errstr, size_t errstr_size)
{
    int rc = 0;
    pthread_mutex_lock(&log_mu);
    if (log_path) {
        int fd;
        if (open_file(log_path, &fd, errstr, errstr_size) == 0) {
            close(log_fd);
            log_fd = fd;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&log_mu);
    return rc;
}

void seg_log_close(void)
{
    pthread_mutex_lock(&log_mu);
    if (log_fd != STDERR_FILENO) close(log_fd);
    free(log_path);
    log_fd = STDERR_FILENO;
    log_path = NULL;
    atomic_store(&log_min_level, SEG_LOG_INFO);
    atomic_store(&log_format, SEG_LOG_PLAIN);
    pthread_mutex_unlock(&log_mu);
}

void seg_log_set_level(seg_log_level_t min_level)
{
    if ((int)min_level >= SEG_LOG_DEBUG && min_level <= SEG_LOG_ERROR)
        atomic_store(&log_min_level, (int)min_level);
}

int seg_log_enabled(seg_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&log_min_level, memory_order_relaxed);
}

static void format_ts(char *buf)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, TS_BUFSZ, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, TS_BUFSZ - n, ".%03dZ", (int)(now.tv_nsec / 1000000L));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and > U+10FFFF included). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned min;
    if ((c & 0xe0) == 0xc0)      { n = 1; min = 0x80;    c &= 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 2; min = 0x800;   c &= 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 3; min = 0x10000; c &= 0x07; }
    else return 0;
    if ((size_t)(end - p) <= n) return 0;
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    return n + 1;
}

/* NULL when s is already valid UTF-8 (the usual case, no copy); otherwise
 * a malloc'd copy with each invalid byte replaced by U+FFFD, or NULL on
 * out-of-memory with *oom set. */
static char *utf8_sanitize(const char *s, int *oom)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), bad = 0;
    const unsigned char *end = p + len;
    for (const unsigned char *q = p; q < end;) {
        size_t n = utf8_seq(q, end);
        if (n == 0) { bad++; q++; } else q += n;
    }
    if (bad == 0) return NULL;
    char *out = malloc(len + 2 * bad + 1), *o = out;
    if (!out) { *oom = 1; return NULL; }
    for (const unsigned char *q = p; q < end;) {
        size_t n = utf8_seq(q, end);
        if (n == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            q++;
        } else {
            memcpy(o, q, n);
            o += n;
            q += n;
        }
    }
    *o = '\0';
    return out;
}

/* Plain lines must stay one line per call: a newline in a message would
 * let it forge a second, differently-levelled line. */
static char *plain_escape(char *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') { *o++ = '\\'; *o++ = 'n'; }
        else if (*p == '\r') { *o++ = '\\'; *o++ = 'r'; }
        else if (*p == '\\') { *o++ = '\\'; *o++ = '\\'; }
        else if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            *o++ = '\\'; *o++ = 'x';
            *o++ = hex[*p >> 4]; *o++ = hex[*p & 15];
        } else *o++ = (char)*p;
    }
    return o;
}

static char *build_plain(const char *ts, seg_log_level_t level,
                         const char *component, const char *msg, size_t *len)
{
    /* Escaping at most quadruples a byte. */
    size_t cap = strlen(ts) + 8 + 4 * strlen(component) + 2 + 4 * strlen(msg) + 2;
    char *line = malloc(cap), *o = line;
    if (!line) return NULL;
    o += sprintf(o, "%s %s ", ts, level_cols[level]);
    o = plain_escape(o, component);
    *o++ = ':';
    *o++ = ' ';
    o = plain_escape(o, msg);
    *o++ = '\n';
    *len = (size_t)(o - line);
    return line;
}

static char *build_json(const char *ts, seg_log_level_t level,
                        const char *component, const char *msg, size_t *len)
{
    int oom = 0;
    char *comp_ok = utf8_sanitize(component, &oom);
    char *msg_ok = utf8_sanitize(msg, &oom);
    char *printed = NULL, *line = NULL;
    cJSON *o = NULL;
    if (oom) goto done;
    o = cJSON_CreateObject();
    if (!o ||
        !cJSON_AddStringToObject(o, "ts", ts) ||
        !cJSON_AddStringToObject(o, "level", level_names[level]) ||
        !cJSON_AddStringToObject(o, "component", comp_ok ? comp_ok : component) ||
        !cJSON_AddStringToObject(o, "msg", msg_ok ? msg_ok : msg))
        goto done;
    printed = cJSON_PrintUnformatted(o);
    if (!printed) goto done;
    size_t n = strlen(printed);
    line = malloc(n + 1);
    if (!line) goto done;
    memcpy(line, printed, n);
    line[n] = '\n';
    *len = n + 1;
done:
    cJSON_free(printed);
    cJSON_Delete(o);
    free(comp_ok);
    free(msg_ok);
    return line;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;  /* nowhere left to report a failing log */
        }
        p += w;
        n -= (size_t)w;
    }
}

void seg_logv(seg_log_level_t level, const char *component, const char *fmt,
              va_list ap)
{
    if ((int)level < SEG_LOG_DEBUG) level = SEG_LOG_DEBUG;
    if ((int)level > SEG_LOG_ERROR) level = SEG_LOG_ERROR;
    if (!seg_log_enabled(level)) return;
    if (!component) component = "segd";

    char ts[TS_BUFSZ];
    format_ts(ts);

    char stack[MSG_STACK], *heap = NULL;
    const char *msg = stack;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    if (n < 0) {
        msg = "(unformattable log message)";
    } else if ((size_t)n >= sizeof stack) {
        heap = malloc((size_t)n + 1);
        if (heap) {
            vsnprintf(heap, (size_t)n + 1, fmt, ap2);
            msg = heap;
        }  /* else: keep the truncated stack copy */
    }
    va_end(ap2);

    size_t len = 0;
    char *line = atomic_load_explicit(&log_format, memory_order_relaxed) == SEG_LOG_JSON
                     ? build_json(ts, level, component, msg, &len)
                     : build_plain(ts, level, component, msg, &len);
    free(heap);
    if (!line) return;

    pthread_mutex_lock(&log_mu);
    write_all(log_fd, line, len);
    pthread_mutex_unlock(&log_mu);
    free(line);
}

void seg_log(seg_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    seg_logv(level, component, fmt, ap);
    va_end(ap);
}
