/*
 * seg_http: routes and lifecycle on libmicrohttpd.
 *
 * We bind the listening socket ourselves and hand it to MHD
 * (MHD_OPTION_LISTEN_SOCKET) because MHD, with its error log off, fails
 * with nothing but NULL; binding here lets the daemon say "cannot listen
 * on [::1]:9464: Address already in use", and getsockname() gives the
 * ephemeral port.
 *
 * MHD runs one internal polling thread (no thread per connection): the
 * endpoints are tiny, and a bounded connection count and a timeout keep a
 * misbehaving client from holding more than a few descriptors.
 */
#include "io/seg_http.h"

#include "io/seg_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTION_LIMIT 32
#define CONNECTION_TIMEOUT_S 10
#define LISTEN_BACKLOG 64
#define MAX_ROUTES 8

typedef struct route {
    char                method[8];
    char                prefix[64];
    unsigned            flags;         /* SEG_HTTP_* */
    seg_http_handler_fn fn;
    void               *opaque;
} route_t;

/* A request parked for the main loop. */
typedef struct pending {
    struct pending        *next;
    struct MHD_Connection *conn;
    const route_t         *route;
    seg_http_call_t        call;
    char                  *path, *auth;
    int                    done;       /* answered: reply on the next callback */
} pending_t;

struct seg_http {
    struct MHD_Daemon *mhd;
    seg_metrics_t *metrics;
    uint16_t port;
    pthread_mutex_t mu;                     /* guards ready, reason, the queue */
    bool ready;
    char reason[SEG_HTTP_REASON_MAX + 1];
    route_t routes[MAX_ROUTES];
    unsigned n_routes;
    pending_t *queue;                       /* waiting for seg_http_serve */
    bool stopping;
    char *token;                            /* SEG_HTTP_AUTH routes need it; NULL: none */
    void (*wake)(void *);                   /* under mu */
    void *wake_opaque;
};

static const char CT_TEXT[] = "text/plain; charset=utf-8";
static const char CT_PROM[] = "text/plain; version=0.0.4; charset=utf-8";

int seg_http_parse_listen(const char *listen, char *host, size_t host_size,
                          uint16_t *port, char *errstr, size_t errstr_size)
{
    const char *colon, *h, *h_end;
    if (!listen || !*listen) {
        snprintf(errstr, errstr_size, "empty listen address");
        return -1;
    }
    if (listen[0] == '[') {
        h = listen + 1;
        h_end = strchr(h, ']');
        if (!h_end || h_end == h || h_end[1] != ':') {
            snprintf(errstr, errstr_size,
                     "invalid listen address '%s': expected [ipv6]:port", listen);
            return -1;
        }
        colon = h_end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon) {
            snprintf(errstr, errstr_size,
                     "invalid listen address '%s': expected host:port", listen);
            return -1;
        }
        h = listen;
        h_end = colon;
        if (memchr(h, ':', (size_t)(h_end - h))) {
            snprintf(errstr, errstr_size,
                     "invalid listen address '%s': write IPv6 addresses as [addr]:port",
                     listen);
            return -1;
        }
    }
    const char *p = colon + 1;
    unsigned long v = 0;
    size_t nd = 0;
    for (; p[nd] >= '0' && p[nd] <= '9' && nd < 6; nd++) v = v * 10 + (unsigned)(p[nd] - '0');
    if (nd == 0 || p[nd] != '\0' || v > 65535) {
        snprintf(errstr, errstr_size,
                 "invalid listen address '%s': port must be 0..65535", listen);
        return -1;
    }
    size_t hl = (size_t)(h_end - h);
    if (hl >= host_size) {
        snprintf(errstr, errstr_size, "invalid listen address '%s': host too long", listen);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return 0;
}

/* "[::1]:9464" / "127.0.0.1:9464", for error messages. */
static void addr_text(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        snprintf(buf, size, "[%s]:%u", ip, port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
        snprintf(buf, size, "%s:%u", ip, port);
    }
}

/* Creates, binds and listens; returns the socket or -1 with errno set. */
static int bind_one(const struct sockaddr *sa, socklen_t len, int v6only)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    /* A restarted daemon must not wait out TIME_WAIT connections of its
     * predecessor; on Linux this still refuses a port someone listens on. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, sa, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_listener(const char *listen, uint16_t *bound_port,
                         char *errstr, size_t errstr_size)
{
    char host[256], what[INET6_ADDRSTRLEN + 16];
    uint16_t port;
    if (seg_http_parse_listen(listen, host, sizeof host, &port, errstr, errstr_size) != 0)
        return -1;

    int fd = -1;
    if (host[0] == '\0') {
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                                  .sin6_addr = IN6ADDR_ANY_INIT};
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        /* Dual stack first; a host without IPv6 gets IPv4 only. */
        const struct sockaddr *sa = (struct sockaddr *)&s6;
        fd = bind_one(sa, sizeof s6, 0);
        int err = errno;
        if (fd < 0 && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
            sa = (struct sockaddr *)&s4;
            fd = bind_one(sa, sizeof s4, 0);
            err = errno;
        }
        if (fd < 0) {
            addr_text(sa, what, sizeof what);
            snprintf(errstr, errstr_size, "cannot listen on %s (%s): %s",
                     listen, what, strerror(err));
            return -1;
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        char port_s[8];
        snprintf(port_s, sizeof port_s, "%u", (unsigned)port);
        int gai = getaddrinfo(host, port_s, &hints, &res);
        if (gai != 0) {
            snprintf(errstr, errstr_size, "cannot resolve listen address '%s': %s",
                     listen, gai_strerror(gai));
            return -1;
        }
        int err = 0;
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = bind_one(ai->ai_addr, ai->ai_addrlen, 1);
            if (fd < 0) {
                err = errno;
                addr_text(ai->ai_addr, what, sizeof what);
            }
        }
        freeaddrinfo(res);
        if (fd < 0) {
            snprintf(errstr, errstr_size, "cannot listen on %s: %s", what, strerror(err));
            return -1;
        }
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(errstr, errstr_size, "getsockname on %s: %s", listen, strerror(errno));
        close(fd);
        return -1;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&ss)->sin6_port
                            : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *r, const char *content_type)
{
    if (!r) return MHD_NO;  /* out of memory: MHD drops the connection */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned status,
                                    const char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    return reply(conn, status, r, CT_TEXT);
}

static const route_t *find_route(const seg_http_t *h, const char *url, const char *method,
                                 bool *path_known)
{
    for (unsigned i = 0; i < h->n_routes; i++) {
        const route_t *r = &h->routes[i];
        size_t n = strlen(r->prefix);
        if ((r->flags & SEG_HTTP_EXACT) ? strcmp(url, r->prefix) != 0
                                        : strncmp(url, r->prefix, n) != 0)
            continue;
        *path_known = true;
        if (strcmp(method, r->method) == 0 ||
            (strcmp(r->method, "GET") == 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) == 0))
            return r;
    }
    return NULL;
}

/* A request for a route: parked until the main loop answered it, then
 * replied on the callback its resumption causes. */
static enum MHD_Result routed(seg_http_t *h, struct MHD_Connection *conn, const route_t *route,
                              const char *url, const char *method, void **req_cls)
{
    pending_t *p = *req_cls;
    if (p) {
        if (!p->done) return MHD_YES;          /* spurious: still parked */
        unsigned status = p->call.status ? p->call.status : MHD_HTTP_INTERNAL_SERVER_ERROR;
        struct MHD_Response *r;
        if (p->call.body) {
            r = MHD_create_response_from_buffer(p->call.len, p->call.body, MHD_RESPMEM_MUST_FREE);
            if (r) p->call.body = NULL;
        } else {
            r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        }
        enum MHD_Result ret = reply(conn, status, r,
                                    p->call.content_type ? p->call.content_type : CT_TEXT);
        return ret;   /* p is freed by on_completed */
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    if ((route->flags & SEG_HTTP_AUTH) && h->token && !seg_auth_check(h->token, auth)) {
        /* Nothing of the request reaches a handler. Basic is offered to
         * browsers (the page), Bearer to everything else. */
        static const char body[] = "{\"error\":\"unauthorized\",\"detail\":\"this endpoint "
                                   "needs the bearer token of metrics.token_file\"}\n";
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    (route->flags & SEG_HTTP_EXACT)
                                        ? "Basic realm=\"segd\", charset=\"UTF-8\""
                                        : "Bearer realm=\"segd\"");
        return reply(conn, MHD_HTTP_UNAUTHORIZED, r, "application/json");
    }
    if (route->flags & SEG_HTTP_DIRECT) {
        seg_http_call_t call = { .method = method, .path = url,
                                 .rest = url + strlen(route->prefix), .authorization = auth };
        route->fn(route->opaque, &call);
        struct MHD_Response *r =
            call.body ? MHD_create_response_from_buffer(call.len, call.body, MHD_RESPMEM_MUST_FREE)
                      : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r) free(call.body);
        return reply(conn, call.status ? call.status : MHD_HTTP_INTERNAL_SERVER_ERROR, r,
                     call.content_type ? call.content_type : CT_TEXT);
    }
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((clen && strcmp(clen, "0") != 0) ||
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
        return reply_static(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no request body is expected\n");
    p = calloc(1, sizeof *p);
    if (p) {
        p->path = strdup(url);
        p->auth = auth ? strdup(auth) : NULL;
    }
    if (!p || !p->path || (auth && !p->auth)) {
        if (p) {
            free(p->path);
            free(p->auth);
            free(p);
        }
        return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    p->conn = conn;
    p->route = route;
    p->call.method = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ? "HEAD" : route->method;
    p->call.path = p->path;
    p->call.rest = p->path + strlen(route->prefix);
    p->call.authorization = p->auth;
    *req_cls = p;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        p->done = 1;
        p->call.status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return routed(h, conn, route, url, method, req_cls);
    }
    MHD_suspend_connection(conn);
    p->next = h->queue;
    h->queue = p;
    if (h->wake) h->wake(h->wake_opaque);
    pthread_mutex_unlock(&h->mu);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    pending_t *p = *req_cls;
    if (!p) return;
    free(p->call.body);
    free(p->path);
    free(p->auth);
    free(p);
    *req_cls = NULL;
}

int seg_http_route(seg_http_t *h, const char *method, const char *prefix,
                   seg_http_handler_fn fn, void *opaque)
{
    return seg_http_route_ex(h, method, prefix, 0, fn, opaque);
}

int seg_http_set_token(seg_http_t *h, const char *token)
{
    free(h->token);
    h->token = token && *token ? strdup(token) : NULL;
    return token && *token && !h->token ? -1 : 0;
}

int seg_http_route_ex(seg_http_t *h, const char *method, const char *prefix, unsigned flags,
                      seg_http_handler_fn fn, void *opaque)
{
    if (h->n_routes == MAX_ROUTES || strlen(prefix) >= sizeof h->routes[0].prefix ||
        strlen(method) >= sizeof h->routes[0].method)
        return -1;
    route_t *r = &h->routes[h->n_routes];
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    r->flags = flags;
    r->fn = fn;
    r->opaque = opaque;
    pthread_mutex_lock(&h->mu);
    h->n_routes++;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void seg_http_set_wake(seg_http_t *h, void (*fn)(void *opaque), void *opaque)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->wake = fn;
    h->wake_opaque = opaque;
    pthread_mutex_unlock(&h->mu);
}

static int serve(seg_http_t *h, unsigned need)
{
    if (!h) return 0;
    pthread_mutex_lock(&h->mu);
    pending_t *q = h->queue, *keep = NULL, **keep_tail = &keep;
    h->queue = NULL;
    if (need) {
        /* Split: what may be answered now, and what stays parked (in
         * order, newest first as the queue is kept). */
        pending_t *take = NULL, **take_tail = &take;
        for (pending_t *p = q, *n; p; p = n) {
            n = p->next;
            p->next = NULL;
            if ((p->route->flags & need) == need) {
                *take_tail = p;
                take_tail = &p->next;
            } else {
                *keep_tail = p;
                keep_tail = &p->next;
            }
        }
        q = take;
        h->queue = keep;
    }
    pthread_mutex_unlock(&h->mu);
    /* oldest first */
    pending_t *rev = NULL;
    while (q) {
        pending_t *n = q->next;
        q->next = rev;
        rev = q;
        q = n;
    }
    int served = 0;
    while (rev) {
        pending_t *p = rev;
        rev = p->next;
        p->route->fn(p->route->opaque, &p->call);
        p->done = 1;
        MHD_resume_connection(p->conn);
        served++;
    }
    return served;
}

int seg_http_serve(seg_http_t *h) { return serve(h, 0); }

int seg_http_serve_reads(seg_http_t *h) { return serve(h, SEG_HTTP_READ); }

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    seg_http_t *h = cls;
    bool path_known = false;
    const route_t *route = find_route(h, url, method, &path_known);
    if (route) return routed(h, conn, route, url, method, req_cls);
    /* Answering on the first call, before any body is read, is what we
     * want for every other route: none takes a body, and MHD closes the
     * connection after the reply rather than read one it was not asked
     * to. */
    if (path_known || (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
                       strcmp(method, MHD_HTTP_METHOD_HEAD) != 0))
        return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");

    if (strcmp(url, "/healthz") == 0)
        return reply_static(conn, MHD_HTTP_OK, "ok");

    if (strcmp(url, "/readyz") == 0) {
        char reason[SEG_HTTP_REASON_MAX + 1];
        pthread_mutex_lock(&h->mu);
        bool ready = h->ready;
        memcpy(reason, h->reason, sizeof reason);
        pthread_mutex_unlock(&h->mu);
        if (ready) return reply_static(conn, MHD_HTTP_OK, "ready");
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(reason), reason, MHD_RESPMEM_MUST_COPY);
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, r, CT_TEXT);
    }

    if (strcmp(url, "/metrics") == 0 && h->metrics) {
        size_t len = 0;
        char *body = seg_metrics_render(h->metrics, &len);
        if (!body)
            return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        struct MHD_Response *r =
            MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) free(body);
        return reply(conn, MHD_HTTP_OK, r, CT_PROM);
    }

    return reply_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

seg_http_t *seg_http_new(const char *listen, seg_metrics_t *metrics,
                         char *errstr, size_t errstr_size)
{
    seg_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        snprintf(errstr, errstr_size, "cannot create mutex");
        free(h);
        return NULL;
    }
    h->metrics = metrics;
    snprintf(h->reason, sizeof h->reason, "starting");

    int fd = open_listener(listen, &h->port, errstr, errstr_size);
    if (fd < 0) goto fail;

    /* MHD closes the socket it is given when it stops, but whether it
     * does so when start-up fails differs between versions; handing it a
     * duplicate lets us close ours in every case without ever closing a
     * descriptor twice. */
    int mhd_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (mhd_fd < 0) {
        snprintf(errstr, errstr_size, "dup: %s", strerror(errno));
        close(fd);
        goto fail;
    }
    /* MHD_USE_ERROR_LOG is deliberately absent: MHD would print to stderr
     * in its own format, bypassing seg_log. */
    h->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC |
            MHD_ALLOW_SUSPEND_RESUME,
        0, NULL, NULL, on_request, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)mhd_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
        MHD_OPTION_END);
    close(fd);
    if (!h->mhd) {
        snprintf(errstr, errstr_size, "cannot start HTTP server on %s", listen);
        goto fail;
    }
    return h;

fail:
    pthread_mutex_destroy(&h->mu);
    free(h);
    return NULL;
}

uint16_t seg_http_port(const seg_http_t *h)
{
    return h->port;
}

void seg_http_set_ready(seg_http_t *h, bool ready, const char *reason)
{
    pthread_mutex_lock(&h->mu);
    h->ready = ready;
    if (!ready)
        snprintf(h->reason, sizeof h->reason, "%s",
                 reason && *reason ? reason : "not ready");
    pthread_mutex_unlock(&h->mu);
}

void seg_http_destroy(seg_http_t *h)
{
    if (!h) return;
    /* Parked requests must be resumed before the server stops. */
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pending_t *q = h->queue;
    h->queue = NULL;
    pthread_mutex_unlock(&h->mu);
    while (q) {
        pending_t *n = q->next;
        q->call.status = MHD_HTTP_SERVICE_UNAVAILABLE;
        q->done = 1;
        MHD_resume_connection(q->conn);
        q = n;
    }
    MHD_stop_daemon(h->mhd);
    pthread_mutex_destroy(&h->mu);
    free(h->token);
    free(h);
}
