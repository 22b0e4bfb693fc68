/*
 * test_log: seg_log line formats, level filter, escaping, file reopen
 * (logrotate), stderr default and concurrent writers.
 *
 * Lines are written to a real file and read back; JSON lines are parsed
 * with cJSON (an independent reader), and timestamps with seg_ts, then
 * compared with the clock around the call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/seg_log.h"
#include "util/seg_ts.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_log.XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(path, sizeof path, "%s/segd.log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    seg_log_close();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0) break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void open_or_fail(const char *p, seg_log_level_t lvl, seg_log_format_t fmt)
{
    char err[256] = "";
    if (seg_log_open(p, lvl, fmt, err, sizeof err) != 0)
        fail_msg("seg_log_open(%s): %s", p ? p : "(stderr)", err);
}

/* Checks that s starts with a "YYYY-MM-DDTHH:MM:SS.mmmZ" stamp between
 * t0 and t1 (epoch seconds). */
static time_t now_s(void)
{
    /* Not time(): glibc may serve it from a coarse clock that lags the
     * CLOCK_REALTIME the logger reads, which would flake at a second
     * boundary. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

static void check_ts(const char *s, time_t t0, time_t t1)
{
    assert_true(strlen(s) >= 24);
    assert_int_equal(s[19], '.');
    for (int i = 20; i < 23; i++) assert_true(s[i] >= '0' && s[i] <= '9');
    assert_int_equal(s[23], 'Z');
    int64_t ts;
    assert_int_equal(seg_ts_parse_rfc3339(s, 24, &ts), 0);
    assert_true(ts >= (int64_t)t0);
    assert_true(ts <= (int64_t)t1);
}

static void test_parse_names(void **state)
{
    (void)state;
    seg_log_level_t l = SEG_LOG_ERROR;
    assert_int_equal(seg_log_level_parse("debug", &l), 0);
    assert_int_equal(l, SEG_LOG_DEBUG);
    assert_int_equal(seg_log_level_parse("info", &l), 0);
    assert_int_equal(l, SEG_LOG_INFO);
    assert_int_equal(seg_log_level_parse("warn", &l), 0);
    assert_int_equal(l, SEG_LOG_WARN);
    assert_int_equal(seg_log_level_parse("error", &l), 0);
    assert_int_equal(l, SEG_LOG_ERROR);
    assert_int_equal(seg_log_level_parse("INFO", &l), -1);
    assert_int_equal(seg_log_level_parse("warning", &l), -1);
    assert_int_equal(seg_log_level_parse("", &l), -1);
    assert_int_equal(seg_log_level_parse(NULL, &l), -1);
    assert_int_equal(l, SEG_LOG_ERROR);

    seg_log_format_t f = SEG_LOG_JSON;
    assert_int_equal(seg_log_format_parse("plain", &f), 0);
    assert_int_equal(f, SEG_LOG_PLAIN);
    assert_int_equal(seg_log_format_parse("json", &f), 0);
    assert_int_equal(f, SEG_LOG_JSON);
    assert_int_equal(seg_log_format_parse("text", &f), -1);
    assert_int_equal(seg_log_format_parse("JSON", &f), -1);

    assert_string_equal(seg_log_level_name(SEG_LOG_DEBUG), "debug");
    assert_string_equal(seg_log_level_name(SEG_LOG_WARN), "warn");
    assert_string_equal(seg_log_level_name((seg_log_level_t)7), "?");
}

static void test_plain_line(void **state)
{
    (void)state;
    open_or_fail(path, SEG_LOG_DEBUG, SEG_LOG_PLAIN);
    time_t t0 = now_s();
    seg_log(SEG_LOG_INFO, "kafka", "assigned %d partitions", 6);
    seg_log(SEG_LOG_ERROR, "engine", "%s", "boom");
    seg_log(SEG_LOG_DEBUG, "config", "x=%.2f", 1.5);
    seg_log(SEG_LOG_WARN, "http", "slow");
    time_t t1 = now_s();
    seg_log_close();

    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 4);
    const char *want[] = {" info  kafka: assigned 6 partitions\n",
                          " error engine: boom\n",
                          " debug config: x=1.50\n",
                          " warn  http: slow\n"};
    const char *line = s;
    for (int i = 0; i < 4; i++) {
        check_ts(line, t0, t1);
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t rest = (size_t)(nl + 1 - (line + 24));
        assert_int_equal(rest, strlen(want[i]));
        assert_memory_equal(line + 24, want[i], rest);
        line = nl + 1;
    }
    free(s);
}

static void test_level_filter(void **state)
{
    (void)state;
    open_or_fail(path, SEG_LOG_WARN, SEG_LOG_PLAIN);
    assert_false(seg_log_enabled(SEG_LOG_DEBUG));
    assert_false(seg_log_enabled(SEG_LOG_INFO));
    assert_true(seg_log_enabled(SEG_LOG_WARN));
    assert_true(seg_log_enabled(SEG_LOG_ERROR));
    seg_log(SEG_LOG_DEBUG, "t", "d1");
    seg_log(SEG_LOG_INFO, "t", "i1");
    seg_log(SEG_LOG_WARN, "t", "w1");
    seg_log(SEG_LOG_ERROR, "t", "e1");
    seg_log_set_level(SEG_LOG_DEBUG);
    assert_true(seg_log_enabled(SEG_LOG_DEBUG));
    seg_log(SEG_LOG_DEBUG, "t", "d2");
    seg_log_set_level(SEG_LOG_ERROR);
    seg_log(SEG_LOG_WARN, "t", "w2");
    /* An out-of-range level is treated as the nearest real one. */
    seg_log((seg_log_level_t)9, "t", "e2");
    seg_log_close();

    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 4);
    assert_non_null(strstr(s, " warn  t: w1\n"));
    assert_non_null(strstr(s, " error t: e1\n"));
    assert_non_null(strstr(s, " debug t: d2\n"));
    assert_non_null(strstr(s, " error t: e2\n"));
    assert_null(strstr(s, "d1"));
    assert_null(strstr(s, "i1"));
    assert_null(strstr(s, "w2"));
    free(s);
}

static void test_plain_escaping(void **state)
{
    (void)state;
    open_or_fail(path, SEG_LOG_INFO, SEG_LOG_PLAIN);
    seg_log(SEG_LOG_WARN, "kafka", "line1\nerror forged: x\r\x01 a\\b\ttab");
    seg_log(SEG_LOG_INFO, "comp\nx", "m");
    seg_log_close();

    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, " warn  kafka: line1\\nerror forged: x\\r\\x01 a\\\\b\ttab\n"));
    assert_non_null(strstr(s, " info  comp\\nx: m\n"));
    free(s);
}

static void test_json_lines(void **state)
{
    (void)state;
    open_or_fail(path, SEG_LOG_DEBUG, SEG_LOG_JSON);
    time_t t0 = now_s();
    seg_log(SEG_LOG_INFO, "kafka", "assigned %d partitions", 6);
    /* Quotes, backslash, newline, a control byte, valid UTF-8 (e-acute),
     * and a lone 0xff byte, which is not UTF-8. */
    seg_log(SEG_LOG_ERROR, "engine", "say \"hi\"\\ \n next \x01 caf\xc3\xa9 bad\xff!");
    /* An overlong encoding of '/' and a truncated 3-byte sequence. */
    seg_log(SEG_LOG_DEBUG, "http", "ov\xc0\xaf tr\xe2\x82");
    time_t t1 = now_s();
    seg_log_close();

    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 3);
    const char *want_level[] = {"info", "error", "debug"};
    const char *want_comp[] = {"kafka", "engine", "http"};
    const char *want_msg[] = {
        "assigned 6 partitions",
        "say \"hi\"\\ \n next \x01 caf\xc3\xa9 bad\xef\xbf\xbd!",
        "ov\xef\xbf\xbd\xef\xbf\xbd tr\xef\xbf\xbd\xef\xbf\xbd",
    };
    char *line = s;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        if (!o) fail_msg("not JSON: %s", line);
        assert_int_equal(cJSON_GetArraySize(o), 4);
        const char *keys[] = {"ts", "level", "component", "msg"};
        int k = 0;
        for (cJSON *it = o->child; it; it = it->next, k++) {
            assert_string_equal(it->string, keys[k]);
            assert_true(cJSON_IsString(it));
        }
        check_ts(cJSON_GetObjectItem(o, "ts")->valuestring, t0, t1);
        assert_int_equal(strlen(cJSON_GetObjectItem(o, "ts")->valuestring), 24);
        assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, want_level[i]);
        assert_string_equal(cJSON_GetObjectItem(o, "component")->valuestring, want_comp[i]);
        assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, want_msg[i]);
        cJSON_Delete(o);
        line = nl + 1;
    }
    free(s);
}

static void test_long_message(void **state)
{
    (void)state;
    size_t n = 50000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    open_or_fail(path, SEG_LOG_INFO, SEG_LOG_PLAIN);
    seg_log(SEG_LOG_INFO, "engine", "<%s>", big);
    seg_log_close();
    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 1);
    char *lt = strchr(s, '<');
    assert_non_null(lt);
    assert_memory_equal(lt + 1, big, n);
    assert_string_equal(lt + 1 + n, ">\n");
    free(s);
    free(big);
}

static void test_reopen_after_rotate(void **state)
{
    (void)state;
    char rotated[160], err[256] = "";
    snprintf(rotated, sizeof rotated, "%s.1", path);
    open_or_fail(path, SEG_LOG_INFO, SEG_LOG_PLAIN);
    seg_log(SEG_LOG_INFO, "t", "before rotate");
    assert_int_equal(rename(path, rotated), 0);
    seg_log(SEG_LOG_INFO, "t", "after rename, before reopen");
    assert_int_equal(seg_log_reopen(err, sizeof err), 0);
    seg_log(SEG_LOG_INFO, "t", "after reopen");
    seg_log_close();

    char *old = slurp(rotated), *cur = slurp(path);
    assert_non_null(old);
    assert_non_null(cur);
    assert_int_equal(count_lines(old), 2);
    assert_non_null(strstr(old, "t: before rotate\n"));
    assert_non_null(strstr(old, "t: after rename, before reopen\n"));
    assert_int_equal(count_lines(cur), 1);
    assert_non_null(strstr(cur, "t: after reopen\n"));
    free(old);
    free(cur);

    /* New files are not world-readable: logs may quote customer data. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0007, 0);
}

static void test_reopen_failure_keeps_old_file(void **state)
{
    (void)state;
    char sub[96], sub2[96], p[128], p2[128], err[256] = "";
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(sub2, sizeof sub2, "%s/sub2", dir);
    snprintf(p, sizeof p, "%s/segd.log", sub);
    snprintf(p2, sizeof p2, "%s/segd.log", sub2);
    assert_int_equal(mkdir(sub, 0700), 0);
    open_or_fail(p, SEG_LOG_INFO, SEG_LOG_PLAIN);
    seg_log(SEG_LOG_INFO, "t", "one");
    /* The directory disappears from under the path: reopen cannot
     * create the file and must keep writing to the descriptor it has. */
    assert_int_equal(rename(sub, sub2), 0);
    assert_int_equal(seg_log_reopen(err, sizeof err), -1);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, strerror(ENOENT)));
    seg_log(SEG_LOG_INFO, "t", "two");
    seg_log_close();
    char *s = slurp(p2);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 2);
    assert_non_null(strstr(s, "t: one\n"));
    assert_non_null(strstr(s, "t: two\n"));
    free(s);
}

static void test_open_failure_keeps_previous(void **state)
{
    (void)state;
    char bad[160], err[256] = "";
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.log", dir);
    open_or_fail(path, SEG_LOG_INFO, SEG_LOG_JSON);
    assert_int_equal(seg_log_open(bad, SEG_LOG_DEBUG, SEG_LOG_PLAIN, err, sizeof err), -1);
    assert_non_null(strstr(err, bad));
    /* Still the old file, level and format. */
    assert_false(seg_log_enabled(SEG_LOG_DEBUG));
    seg_log(SEG_LOG_INFO, "t", "still here");
    seg_log_close();
    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 1);
    assert_non_null(strstr(s, "\"msg\":\"still here\""));
    free(s);

    assert_int_equal(seg_log_open(path, (seg_log_level_t)4, SEG_LOG_PLAIN, err, sizeof err), -1);
}

static void test_default_is_stderr(void **state)
{
    (void)state;
    char err[256] = "";
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);

    seg_log_close();                       /* default: stderr, info, plain */
    seg_log(SEG_LOG_DEBUG, "t", "hidden");
    seg_log(SEG_LOG_INFO, "t", "to stderr");
    assert_int_equal(seg_log_reopen(err, sizeof err), 0);   /* no-op */
    assert_int_equal(seg_log_open("-", SEG_LOG_DEBUG, SEG_LOG_JSON, err, sizeof err), 0);
    seg_log(SEG_LOG_DEBUG, "t", "dash is stderr");
    seg_log_close();

    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), 2);
    assert_null(strstr(s, "hidden"));
    assert_non_null(strstr(s, " info  t: to stderr\n"));
    assert_non_null(strstr(s, "\"level\":\"debug\",\"component\":\"t\",\"msg\":\"dash is stderr\"}\n"));
    free(s);
}

#define THREADS 4
#define PER_THREAD 3000

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[301];
    memset(pad, 'a' + id, 300);
    pad[300] = '\0';
    for (int i = 0; i < PER_THREAD; i++) {
        seg_log(SEG_LOG_INFO, "kafka", "t%d n%d %s", id, i, pad);
        if (id == 0 && i % 500 == 0) {
            char err[256];
            seg_log_reopen(err, sizeof err);   /* races the other writers */
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    open_or_fail(path, SEG_LOG_INFO, SEG_LOG_PLAIN);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    seg_log_close();

    char *s = slurp(path);
    assert_non_null(s);
    assert_int_equal(count_lines(s), THREADS * PER_THREAD);
    int next[THREADS] = {0};
    char *line = s;
    while (*line) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        int id = -1, n = -1, used = 0;
        const char *body = line + 24;
        if (sscanf(body, " info  kafka: t%d n%d %n", &id, &n, &used) != 2 ||
            id < 0 || id >= THREADS)
            fail_msg("mangled line: %.80s", line);
        /* Each thread's lines appear whole and in its own order. */
        assert_int_equal(n, next[id]);
        next[id]++;
        assert_int_equal(strlen(body + used), 300);
        for (int i = 0; i < 300; i++) assert_int_equal(body[used + i], 'a' + id);
        line = nl + 1;
    }
    for (int i = 0; i < THREADS; i++) assert_int_equal(next[i], PER_THREAD);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test_setup_teardown(test_plain_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_failure_keeps_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_failure_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_is_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
