/*
 * seg_http: the metrics and health endpoint of the daemon.
 *
 * Prometheus scrapes /metrics; an orchestrator (Kubernetes, a load
 * balancer, a deploy script) asks /healthz whether the process should be
 * restarted and /readyz whether it is worth sending traffic or waiting
 * for. libmicrohttpd serves them from its own thread, so a slow scraper
 * never stalls the consume loop; the loop only flips the readiness flag.
 *
 *   GET /metrics  200, text/plain; version=0.0.4, the registry rendered
 *   GET /healthz  200 "ok" while the process is up
 *   GET /readyz   200 "ready", or 503 with the reason the daemon gave
 *   routes added with seg_http_route (the daemon's API, /-/reload)
 *   other paths   404; methods other than GET and HEAD: 405
 *
 * Routes added with seg_http_route are answered by the daemon's main loop,
 * which owns the engines they read: the server thread parks the request
 * (libmicrohttpd's suspend/resume, so other requests go on being served)
 * and seg_http_serve, called by the loop, answers it. Request bodies are
 * never read (a request that sends one gets 413), so the untrusted input
 * is the request line and headers, which libmicrohttpd parses, and the
 * path handed to a route.
 */
#ifndef SEG_HTTP_H
#define SEG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/seg_metrics.h"

typedef struct seg_http seg_http_t;

/* Longest readiness reason kept; longer ones are truncated. */
#define SEG_HTTP_REASON_MAX 200

/* Splits a listen address: "127.0.0.1:9464", "[::1]:9464", "host:9464",
 * or ":9464" (all interfaces, host ""). Port 0 asks for an ephemeral
 * port. Returns 0, or -1 with errstr naming the problem. Lets the config
 * loader reject a bad metrics.listen before anything starts. */
int seg_http_parse_listen(const char *listen, char *host, size_t host_size,
                          uint16_t *port, char *errstr, size_t errstr_size);

/* Binds listen and starts serving on a libmicrohttpd thread. ":port"
 * binds IPv6 and IPv4 (dual stack) where IPv6 exists, IPv4 otherwise;
 * a host name binds its first address that works. metrics is borrowed
 * and must outlive the server; NULL makes /metrics a 404. Starts not
 * ready, with reason "starting". Returns NULL with errstr (for example
 * "cannot listen on 127.0.0.1:9464: Address already in use"). */
seg_http_t *seg_http_new(const char *listen, seg_metrics_t *metrics,
                         char *errstr, size_t errstr_size);

/* The bound port (the real one when 0 was asked for). */
uint16_t seg_http_port(const seg_http_t *h);

/* Sets what /readyz answers. reason (copied; may be NULL) is the 503
 * body when not ready, e.g. "no partitions assigned"; ignored when
 * ready. Thread-safe. */
void seg_http_set_ready(seg_http_t *h, bool ready, const char *reason);

/* A request for a route, and the reply its handler writes. */
typedef struct seg_http_call {
    const char *method;        /* "GET", "HEAD" or "POST" */
    const char *path;          /* as decoded by the server ("%2F" is "/") */
    const char *rest;          /* path after the route's prefix */
    const char *authorization; /* the header, or NULL */
    unsigned    status;        /* set by the handler; 0 means 500 */
    const char *content_type;  /* set by the handler; NULL: text/plain */
    char       *body;          /* set by the handler: malloc'd, taken over */
    size_t      len;
} seg_http_call_t;

typedef void (*seg_http_handler_fn)(void *opaque, seg_http_call_t *call);

/* Sends requests with this method (GET also takes HEAD) whose path is
 * prefix or starts with it to fn, called from seg_http_serve. Routes are
 * added before requests arrive (right after seg_http_new). Returns 0, or
 * -1 if there are too many. */
int seg_http_route(seg_http_t *h, const char *method, const char *prefix,
                   seg_http_handler_fn fn, void *opaque);

/* Route flags for seg_http_route_ex. */
enum {
    SEG_HTTP_EXACT  = 1 << 0,  /* the path must equal prefix (for "/") */
    SEG_HTTP_AUTH   = 1 << 1,  /* needs the token of seg_http_set_token, if one is
                                * set: 401 with a JSON error otherwise, before the
                                * handler is ever called */
    SEG_HTTP_DIRECT = 1 << 2,  /* fn runs on the server thread at once (it must
                                * touch nothing of the main loop: a static page) */
    SEG_HTTP_READ   = 1 << 3,  /* fn only reads: seg_http_serve_reads may answer it
                                * between two records of a batch */
};

/* seg_http_route with flags. */
int seg_http_route_ex(seg_http_t *h, const char *method, const char *prefix, unsigned flags,
                      seg_http_handler_fn fn, void *opaque);

/* The token SEG_HTTP_AUTH routes require (copied; src/io/seg_auth.h says
 * what is accepted). NULL or "": none, they answer everyone. Call before
 * requests arrive. Returns 0, or -1 when out of memory (then the server
 * must not go on: it would answer without the token). */
int seg_http_set_token(seg_http_t *h, const char *token);

/* Called (from the server thread, under its lock: keep it short and
 * thread-safe) each time a request is parked for seg_http_serve, so a
 * loop blocked in a poll can wake up and answer it now rather than at its
 * poll's timeout. NULL: nobody is woken. Clear it before whatever fn wakes
 * goes away. */
void seg_http_set_wake(seg_http_t *h, void (*fn)(void *opaque), void *opaque);

/* Answers the requests for routes that arrived since the last call, on
 * the calling thread. Returns how many. NULL is a no-op. */
int seg_http_serve(seg_http_t *h);

/* As seg_http_serve, for the requests of SEG_HTTP_READ routes only; the
 * others stay parked for the next seg_http_serve. */
int seg_http_serve_reads(seg_http_t *h);

/* Stops the server: answers parked requests with 503, closes the
 * listening socket and open connections and joins the server thread, so
 * no render runs after it returns. NULL is a no-op. */
void seg_http_destroy(seg_http_t *h);

#endif
