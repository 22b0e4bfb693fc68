/*
 * test_http: the metrics/health server, driven over real sockets.
 *
 * The server binds an ephemeral loopback port; a small blocking client
 * written here sends raw HTTP/1.1 requests and parses status, headers and
 * body, so the test checks the bytes a scraper or probe actually gets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "io/seg_http.h"
#include "util/seg_metrics.h"

static char err[256];

struct resp {
    int status;
    char head[4096];     /* status line and headers */
    char body[65536];
    size_t body_len;
};

static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    }
    if (rc != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends raw request bytes and reads the whole response (the request asks
 * for Connection: close). Returns 0, or -1 if the exchange failed. */
static int exchange(int family, uint16_t port, const char *request, struct resp *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_to(family, port);
    if (fd < 0) return -1;
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;   /* the server may answer and close early */
        off += (size_t)w;
    }
    size_t cap = sizeof r->head + sizeof r->body, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    size_t hl = sep ? (size_t)(sep - buf) + 2 : 0;
    int rc = -1;
    if (sep && sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1 && hl < sizeof r->head &&
        got - hl - 2 < sizeof r->body) {
        memcpy(r->head, buf, hl);
        r->body_len = got - hl - 2;
        memcpy(r->body, sep + 4, r->body_len);
        rc = 0;
    }
    free(buf);
    return rc;
}

static struct resp *req(int family, uint16_t port, const char *method, const char *path)
{
    static struct resp r;
    char request[512];
    snprintf(request, sizeof request,
             "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
             method, path);
    if (exchange(family, port, request, &r) != 0)
        fail_msg("%s %s: no HTTP response (%s)", method, path, strerror(errno));
    return &r;
}

static struct resp *get(uint16_t port, const char *path)
{
    return req(AF_INET, port, "GET", path);
}

/* Value of header name (case-insensitive), or NULL. */
static const char *header(const struct resp *r, const char *name)
{
    static char val[512];
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= sizeof val) n = sizeof val - 1;
            memcpy(val, v, n);
            val[n] = '\0';
            return val;
        }
    }
    return NULL;
}

static void expect(const struct resp *r, int status, const char *body)
{
    if (r->status != status) fail_msg("status %d, want %d; body: %.*s", r->status, status,
                                      (int)r->body_len, r->body);
    if (body) {
        if (r->body_len != strlen(body) || memcmp(r->body, body, r->body_len) != 0)
            fail_msg("body \"%.*s\", want \"%s\"", (int)r->body_len, r->body, body);
    }
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static seg_http_t *start(const char *listen, seg_metrics_t *m)
{
    seg_http_t *h = seg_http_new(listen, m, err, sizeof err);
    if (!h) fail_msg("seg_http_new(%s): %s", listen, err);
    return h;
}

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 1;
    assert_int_equal(seg_http_parse_listen("127.0.0.1:9464", host, sizeof host, &port,
                                           err, sizeof err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(seg_http_parse_listen("[::1]:0", host, sizeof host, &port,
                                           err, sizeof err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(seg_http_parse_listen(":65535", host, sizeof host, &port,
                                           err, sizeof err), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 65535);
    assert_int_equal(seg_http_parse_listen("localhost:80", host, sizeof host, &port,
                                           err, sizeof err), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 80);

    const struct { const char *in, *msg; } bad[] = {
        {"", "empty listen address"},
        {"9464", "invalid listen address '9464': expected host:port"},
        {"127.0.0.1", "invalid listen address '127.0.0.1': expected host:port"},
        {"127.0.0.1:", "invalid listen address '127.0.0.1:': port must be 0..65535"},
        {"127.0.0.1:65536", "invalid listen address '127.0.0.1:65536': port must be 0..65535"},
        {"127.0.0.1:0009464", "invalid listen address '127.0.0.1:0009464': port must be 0..65535"},
        {"127.0.0.1:94x", "invalid listen address '127.0.0.1:94x': port must be 0..65535"},
        {"127.0.0.1:-1", "invalid listen address '127.0.0.1:-1': port must be 0..65535"},
        {"::1:9464", "invalid listen address '::1:9464': write IPv6 addresses as [addr]:port"},
        {"[::1]9464", "invalid listen address '[::1]9464': expected [ipv6]:port"},
        {"[::1", "invalid listen address '[::1': expected [ipv6]:port"},
        {"[]:1", "invalid listen address '[]:1': expected [ipv6]:port"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        if (seg_http_parse_listen(bad[i].in, host, sizeof host, &port, err, sizeof err) != -1)
            fail_msg("accepted '%s'", bad[i].in);
        assert_string_equal(err, bad[i].msg);
    }
    char tiny[4];
    assert_int_equal(seg_http_parse_listen("127.0.0.1:1", tiny, sizeof tiny, &port,
                                           err, sizeof err), -1);
    assert_string_equal(err, "invalid listen address '127.0.0.1:1': host too long");

    /* seg_http_new reports the same errors, and a name that does not
     * resolve. */
    assert_null(seg_http_new("127.0.0.1", NULL, err, sizeof err));
    assert_string_equal(err, "invalid listen address '127.0.0.1': expected host:port");
    assert_null(seg_http_new("no-such-host.invalid:0", NULL, err, sizeof err));
    assert_non_null(strstr(err, "cannot resolve listen address 'no-such-host.invalid:0'"));
}

static void test_routes(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    seg_counter_t *c = seg_metrics_counter(m, "segd_events_in_total", "Input events by type.",
                                           (const seg_label_t[]){{"type", "purchase"}}, 1,
                                           err, sizeof err);
    assert_non_null(c);
    seg_counter_add(c, 41);
    seg_http_t *h = start("127.0.0.1:0", m);
    uint16_t port = seg_http_port(h);
    assert_true(port != 0);

    struct resp *r = get(port, "/healthz");
    expect(r, 200, "ok");
    assert_string_equal(header(r, "Content-Type"), "text/plain; charset=utf-8");

    r = get(port, "/metrics");
    expect(r, 200,
           "# HELP segd_events_in_total Input events by type.\n"
           "# TYPE segd_events_in_total counter\n"
           "segd_events_in_total{type=\"purchase\"} 41\n");
    assert_string_equal(header(r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", r->body_len);
    assert_string_equal(header(r, "Content-Length"), cl);

    /* Every scrape renders afresh. */
    seg_counter_add(c, 1);
    r = get(port, "/metrics");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "segd_events_in_total{type=\"purchase\"} 42\n"));

    /* The query string is not part of the path. */
    expect(get(port, "/healthz?probe=1"), 200, "ok");

    const char *missing[] = {"/", "/metrics/", "/Metrics", "/healthz/x", "/readyz2", "/%2e%2e/etc"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++)
        expect(get(port, missing[i]), 404, "not found\n");

    /* HEAD is GET without the body. */
    r = req(AF_INET, port, "HEAD", "/healthz");
    expect(r, 200, "");
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        r = req(AF_INET, port, methods[i], "/metrics");
        expect(r, 405, "method not allowed\n");
        assert_string_equal(header(r, "Allow"), "GET, HEAD");
    }
    /* A POST with a body is refused without the body being needed. */
    struct resp pr;
    assert_int_equal(exchange(AF_INET, port,
                              "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
                              "partial", &pr), 0);
    expect(&pr, 405, "method not allowed\n");

    /* Still serving after all that. */
    expect(get(port, "/healthz"), 200, "ok");
    seg_http_destroy(h);
    seg_metrics_destroy(m);
}

static void test_readiness(void **state)
{
    (void)state;
    seg_http_t *h = start("127.0.0.1:0", NULL);
    uint16_t port = seg_http_port(h);
    struct resp *r = get(port, "/readyz");
    expect(r, 503, "starting");
    assert_string_equal(header(r, "Content-Type"), "text/plain; charset=utf-8");

    seg_http_set_ready(h, false, "no partitions assigned");
    expect(get(port, "/readyz"), 503, "no partitions assigned");
    seg_http_set_ready(h, true, "ignored when ready");
    expect(get(port, "/readyz"), 200, "ready");
    seg_http_set_ready(h, false, "catching up: lag 1200");
    expect(get(port, "/readyz"), 503, "catching up: lag 1200");
    seg_http_set_ready(h, false, NULL);
    expect(get(port, "/readyz"), 503, "not ready");
    seg_http_set_ready(h, false, "");
    expect(get(port, "/readyz"), 503, "not ready");

    char longr[400];
    memset(longr, 'r', sizeof longr - 1);
    longr[sizeof longr - 1] = '\0';
    seg_http_set_ready(h, false, longr);
    r = get(port, "/readyz");
    assert_int_equal(r->status, 503);
    assert_int_equal(r->body_len, SEG_HTTP_REASON_MAX);

    /* Liveness does not depend on readiness; /metrics without a registry
     * does not exist. */
    expect(get(port, "/healthz"), 200, "ok");
    expect(get(port, "/metrics"), 404, "not found\n");
    seg_http_destroy(h);
    seg_http_destroy(NULL);
}

static void test_address_in_use_and_clean_stop(void **state)
{
    (void)state;
    int fds_before = open_fds();
    seg_http_t *h = start("127.0.0.1:0", NULL);
    uint16_t port = seg_http_port(h);
    char listen[32], want[128];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port);

    assert_null(seg_http_new(listen, NULL, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%u: %s", (unsigned)port,
             strerror(EADDRINUSE));
    assert_string_equal(err, want);

    /* Keep a connection open across the stop: destroy must not hang on it. */
    int idle = connect_to(AF_INET, port);
    assert_true(idle >= 0);
    seg_http_destroy(h);
    close(idle);

    /* Stopped: nothing listens, and nothing of ours was left open... */
    assert_int_equal(connect_to(AF_INET, port), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(open_fds(), fds_before);
    /* ...so the same port can be served again at once. */
    h = start(listen, NULL);
    assert_int_equal(seg_http_port(h), port);
    expect(get(port, "/healthz"), 200, "ok");
    seg_http_destroy(h);
}

static void test_ipv6_and_wildcard(void **state)
{
    (void)state;
    seg_http_t *h = start("[::1]:0", NULL);
    uint16_t port = seg_http_port(h);
    expect(req(AF_INET6, port, "GET", "/healthz"), 200, "ok");
    /* Bound to ::1 only, not to IPv4 loopback. */
    assert_int_equal(connect_to(AF_INET, port), -1);
    char listen[32], want[128];
    snprintf(listen, sizeof listen, "[::1]:%u", (unsigned)port);
    assert_null(seg_http_new(listen, NULL, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on [::1]:%u: %s", (unsigned)port,
             strerror(EADDRINUSE));
    assert_string_equal(err, want);
    seg_http_destroy(h);

    /* ":port" answers on both families, and holds the port for both. */
    h = start(":0", NULL);
    port = seg_http_port(h);
    expect(req(AF_INET, port, "GET", "/healthz"), 200, "ok");
    expect(req(AF_INET6, port, "GET", "/healthz"), 200, "ok");
    snprintf(listen, sizeof listen, ":%u", (unsigned)port);
    assert_null(seg_http_new(listen, NULL, err, sizeof err));
    snprintf(want, sizeof want, "cannot listen on :%u ([::]:%u): %s", (unsigned)port,
             (unsigned)port, strerror(EADDRINUSE));
    assert_string_equal(err, want);
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)port);
    assert_null(seg_http_new(listen, NULL, err, sizeof err));
    seg_http_destroy(h);

    h = start("localhost:0", NULL);
    port = seg_http_port(h);
    struct resp r4, r6;
    int ok4 = exchange(AF_INET, port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r4);
    int ok6 = exchange(AF_INET6, port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r6);
    /* localhost resolves to one of the loopbacks first; that one serves. */
    assert_true((ok4 == 0 && r4.status == 200) || (ok6 == 0 && r6.status == 200));
    seg_http_destroy(h);
}

static void test_idle_clients_do_not_block(void **state)
{
    (void)state;
    seg_http_t *h = start("127.0.0.1:0", NULL);
    uint16_t port = seg_http_port(h);
    /* Clients that connect and say nothing, or half a request, occupy
     * connections; the single server thread must still answer others. */
    int idle[6];
    for (int i = 0; i < 6; i++) {
        idle[i] = connect_to(AF_INET, port);
        assert_true(idle[i] >= 0);
        if (i % 2) assert_true(send(idle[i], "GET /metr", 9, MSG_NOSIGNAL) == 9);
    }
    expect(get(port, "/healthz"), 200, "ok");
    /* Garbage gets an error status, not a crash. */
    struct resp r;
    assert_int_equal(exchange(AF_INET, port, "\x01\x02 nonsense\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 400);
    expect(get(port, "/healthz"), 200, "ok");
    for (int i = 0; i < 6; i++) close(idle[i]);
    seg_http_destroy(h);
}

struct scraper {
    uint16_t port;
    int ok;
    const char *failure;
};

static void *scrape(void *arg)
{
    struct scraper *sc = arg;
    static struct resp r;   /* large: keep it off the thread's stack */
    for (int i = 0; i < 200; i++) {
        if (exchange(AF_INET, sc->port,
                     "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) != 0 ||
            r.status != 200) {
            sc->failure = "scrape failed";
            return NULL;
        }
        r.body[r.body_len] = '\0';
        if (!strstr(r.body, "segd_up 1\n") || r.body[r.body_len - 1] != '\n') {
            sc->failure = "scrape body incomplete";
            return NULL;
        }
        sc->ok++;
    }
    return NULL;
}

static void test_scrape_during_rebalance(void **state)
{
    (void)state;
    seg_metrics_t *m = seg_metrics_new();
    seg_gauge_t *up = seg_metrics_gauge(m, "segd_up", "Up.", NULL, 0, err, sizeof err);
    assert_non_null(up);
    seg_gauge_set(up, 1);
    seg_http_t *h = start("127.0.0.1:0", m);
    struct scraper sc = {.port = seg_http_port(h)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, scrape, &sc), 0);
    /* The server thread renders while this thread assigns and revokes
     * per-partition series, as the rebalance callback will. */
    for (int round = 0; round < 3000; round++) {
        seg_gauge_t *g[4];
        for (int p = 0; p < 4; p++) {
            char v[8];
            snprintf(v, sizeof v, "%d", p);
            g[p] = seg_metrics_gauge(m, "segd_consumer_lag", "Lag.",
                                     (const seg_label_t[]){{"partition", v}}, 1,
                                     err, sizeof err);
            assert_non_null(g[p]);
            seg_gauge_set(g[p], round);
        }
        for (int p = 0; p < 4; p++) seg_gauge_remove(m, g[p]);
    }
    pthread_join(t, NULL);
    if (sc.failure) fail_msg("%s after %d scrapes", sc.failure, sc.ok);
    assert_int_equal(sc.ok, 200);
    seg_http_destroy(h);
    seg_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_readiness),
        cmocka_unit_test(test_address_in_use_and_clean_stop),
        cmocka_unit_test(test_ipv6_and_wildcard),
        cmocka_unit_test(test_idle_clients_do_not_block),
        cmocka_unit_test(test_scrape_during_rebalance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
