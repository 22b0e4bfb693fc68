/*
 * seg_log: the daemon's log lines, with a level and a component on each.
 *
 * Operators grep and ship these lines, so every line says how bad it is
 * and which part of segd wrote it ("kafka", "engine", "config", "http").
 * Two formats: "plain" for people
 *
 *   2026-11-23T18:00:00.123Z info  kafka: assigned 6 partitions
 *
 * and "json" for log shippers, one object per line:
 *
 *   {"ts":"2026-11-23T18:00:00.123Z","level":"info","component":"kafka","msg":"assigned 6 partitions"}
 *
 * The logger is process-wide rather than an object passed around, because
 * its callers include librdkafka's log callback (src/io/seg_kafka_log.c),
 * which runs on librdkafka's own threads and carries no segd context.
 * Every function here is thread-safe. Until seg_log_open() is called the
 * logger writes plain lines at level info to stderr.
 *
 * Each line is handed to the kernel in one write(2) on an O_APPEND file,
 * so lines from several threads (or a second process sharing the file)
 * never interleave mid-line.
 */
#ifndef SEG_LOG_H
#define SEG_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    SEG_LOG_DEBUG = 0,
    SEG_LOG_INFO  = 1,
    SEG_LOG_WARN  = 2,
    SEG_LOG_ERROR = 3,
} seg_log_level_t;

typedef enum {
    SEG_LOG_PLAIN = 0,
    SEG_LOG_JSON  = 1,
} seg_log_format_t;

/* "debug", "info", "warn", "error" -> *out. Returns 0, or -1 if s is not
 * one of them (case-sensitive, as config values are). */
int seg_log_level_parse(const char *s, seg_log_level_t *out);

/* "plain", "json" -> *out. Returns 0 or -1. */
int seg_log_format_parse(const char *s, seg_log_format_t *out);

/* The config spelling of a level ("info"); "?" for an out-of-range value. */
const char *seg_log_level_name(seg_log_level_t level);

/* Directs output to path (created 0640 if missing, appended to), or to
 * stderr when path is NULL or "-"; sets the level filter and the format.
 * May be called again to change any of them. On failure returns -1 with
 * errstr and leaves the previous destination and settings in place. */
int seg_log_open(const char *path, seg_log_level_t min_level,
                 seg_log_format_t format, char *errstr, size_t errstr_size);

/* Reopens the current file by path, so a rotated-away file is released
 * and a fresh one created (logrotate's "create" mode, then SIGHUP). Call it
 * from the main loop, never from the signal handler: it takes a mutex and
 * calls open(2). A no-op returning 0 when logging to stderr. On failure
 * returns -1 with errstr and keeps writing to the old file, so nothing is
 * lost. */
int seg_log_reopen(char *errstr, size_t errstr_size);

/* Closes a log file and goes back to stderr, plain, info. */
void seg_log_close(void);

/* Changes only the level filter. */
void seg_log_set_level(seg_log_level_t min_level);

/* 1 if a line at level would be written. Lets a caller skip building an
 * expensive message at debug level. Lock-free. */
int seg_log_enabled(seg_log_level_t level);

/* Writes one line if level passes the filter. component is a short word
 * naming the subsystem; fmt is printf-style. A message containing line
 * breaks still yields one line: plain escapes them as \n, json as JSON. */
void seg_log(seg_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void seg_logv(seg_log_level_t level, const char *component, const char *fmt,
              va_list ap) __attribute__((format(printf, 3, 0)));

#endif
