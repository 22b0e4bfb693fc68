/*
 * test_kafka_log: librdkafka's log callback routed into seg_log.
 *
 * Besides the syslog-level mapping, real librdkafka clients are created
 * with the adapter as their log_cb, so the test sees lines librdkafka
 * itself emits (its "INIT" debug line, a "CONFWARN" warning) land in the
 * segd log with the right level, component and client name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/seg_kafka_log.h"
#include "util/seg_log.h"

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/test_kafka_log.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    seg_log_close();
    return unlink(path);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_level_mapping(void **state)
{
    (void)state;
    /* syslog: 0 emerg 1 alert 2 crit 3 err 4 warning 5 notice 6 info 7 debug */
    const int want[] = {SEG_LOG_ERROR, SEG_LOG_ERROR, SEG_LOG_ERROR, SEG_LOG_ERROR,
                        SEG_LOG_WARN, SEG_LOG_INFO, SEG_LOG_INFO, SEG_LOG_DEBUG};
    for (int i = 0; i < 8; i++) assert_int_equal(seg_kafka_log_level(i), want[i]);
    assert_int_equal(seg_kafka_log_level(-1), SEG_LOG_ERROR);
    assert_int_equal(seg_kafka_log_level(99), SEG_LOG_DEBUG);
}

static void test_callback_format(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(seg_log_open(path, SEG_LOG_INFO, SEG_LOG_PLAIN, err, sizeof err), 0);
    seg_log_rdkafka_cb(NULL, 3, "FAIL", "127.0.0.1:9092/bootstrap: Connect failed");
    seg_log_rdkafka_cb(NULL, 4, "CONFWARN", "odd");
    seg_log_rdkafka_cb(NULL, 6, "INFO", "hello");
    seg_log_rdkafka_cb(NULL, 7, "BROKER", "filtered out");
    seg_log_rdkafka_cb(NULL, 5, NULL, NULL);
    seg_log_close();
    char *s = slurp(path);
    assert_non_null(strstr(s, " error kafka: rdkafka FAIL: 127.0.0.1:9092/bootstrap: Connect failed\n"));
    assert_non_null(strstr(s, " warn  kafka: rdkafka CONFWARN: odd\n"));
    assert_non_null(strstr(s, " info  kafka: rdkafka INFO: hello\n"));
    assert_non_null(strstr(s, " info  kafka: rdkafka -: \n"));
    assert_null(strstr(s, "filtered out"));
    free(s);
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *k, const char *v)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, seg_log_rdkafka_cb);
    if (rd_kafka_conf_set(conf, "client.id", "segd-test", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        fail_msg("conf: %s", err);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) fail_msg("rd_kafka_new: %s", err);
    return rk;
}

static void test_real_client_lines(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(seg_log_open(path, SEG_LOG_DEBUG, SEG_LOG_PLAIN, err, sizeof err), 0);
    /* debug=generic makes rd_kafka_new log its INIT line at LOG_DEBUG. */
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, "debug", "generic");
    rd_kafka_destroy(rk);
    seg_log_set_level(SEG_LOG_INFO);
    /* A producer-only property on a consumer draws a CONFWARN warning. */
    rk = client(RD_KAFKA_CONSUMER, "queue.buffering.max.ms", "5");
    rd_kafka_destroy(rk);
    seg_log_close();

    char *s = slurp(path);
    /* librdkafka prefixes its messages with the thread, "[thrd:app]: ". */
    char want[128];
    snprintf(want, sizeof want,
             " debug kafka: segd-test#producer-1 INIT: [thrd:app]: librdkafka v%s ",
             rd_kafka_version_str());
    if (!strstr(s, want)) fail_msg("no INIT line in:\n%s", s);
    const char *w = strstr(s, " warn  kafka: segd-test#consumer-2 CONFWARN: ");
    if (!w) fail_msg("no CONFWARN line in:\n%s", s);
    assert_non_null(strstr(w, "queue.buffering.max.ms is a producer property"));
    /* Missing bootstrap.servers is a LOG_NOTICE: info. */
    assert_non_null(strstr(s, " info  kafka: segd-test#consumer-2 CONFWARN: [thrd:app]: "
                              "No `bootstrap.servers` configured"));
    /* At level info nothing from the consumer may be a debug line. */
    assert_null(strstr(s, "debug kafka: segd-test#consumer-2"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_mapping),
        cmocka_unit_test_setup_teardown(test_callback_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_client_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
