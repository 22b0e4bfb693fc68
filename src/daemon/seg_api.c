/*
 * seg_api: what segd answers about the segments themselves, on the
 * metrics address (metrics.api, docs/operations.md):
 *
 *   GET /v1/segments        sizes, entries, exits, volatility and flows per
 *                           dimension and value (src/segment/seg_sizes.h)
 *   GET /v1/customers/{id}  one customer: its partition, every dimension's
 *                           current value, features, seq, clock and next
 *                           deadline; 404 when this instance does not hold it
 *   GET /                   the live page (src/daemon/seg_page.html)
 *
 * Why here and not in libmicrohttpd's thread: engines and sizes belong to
 * the main loop (one thread owns the state, as Redis's keyspace). The two
 * API routes are parked by seg_http and answered by seg_http_serve from
 * the loop, between batches; the loop is woken (its consumer queue
 * yielded) when a request arrives, so a lookup waits for the batch in
 * progress at most, not for a poll timeout. The page is static and is
 * served by the server thread itself.
 *
 * Credentials (src/io/seg_auth.h): all three need the token of
 * metrics.token_file when one is configured, which seg_http checks before
 * anything reaches a handler.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/seg_daemon_int.h"
#include "io/seg_auth.h"
#include "util/seg_log.h"
#include "util/seg_money.h"
#include "util/seg_ts.h"

extern const char seg_page_html[];
extern const unsigned long seg_page_html_len;

static const char CT_JSON[] = "application/json";

static void reply_json(seg_http_call_t *call, unsigned status, char *text)
{
    if (!text) {
        call->status = 500;
        call->body = strdup("{\"error\":\"out of memory\"}\n");
    } else {
        call->status = status;
        call->body = text;
    }
    call->len = call->body ? strlen(call->body) : 0;
    call->content_type = CT_JSON;
}

static void reply_error(seg_http_call_t *call, unsigned status, const char *error,
                        const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", error);
        if (detail) cJSON_AddStringToObject(o, "detail", detail);
    }
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    reply_json(call, status, text);
}

static void api_segments(void *opaque, seg_http_call_t *call)
{
    daemon_t *d = opaque;
    if (strcmp(call->method, "GET") != 0 && strcmp(call->method, "HEAD") != 0) {
        reply_error(call, 405, "method not allowed", NULL);
        return;
    }
    reply_json(call, 200, seg_sizes_json(d->sizes, NULL));
}

static void add_ts(cJSON *o, const char *key, int64_t t)
{
    char buf[SEG_TS_BUFSZ];
    if (t == INT64_MAX || t == INT64_MIN) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    seg_ts_format(t, buf);
    cJSON_AddStringToObject(o, key, buf);
}

/* The lookup's JSON for customer idx of slot s. NULL when out of memory. */
static char *customer_json(daemon_t *d, slot_t *s, uint32_t idx)
{
    seg_engine_t *e = s->engine;
    seg_cust_view_t v;
    if (seg_engine_customer_view(e, idx, INT64_MIN, &v) != 0) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *id = malloc(v.id_len + 1);
    if (!id) {
        cJSON_Delete(o);
        return NULL;
    }
    memcpy(id, v.id, v.id_len);
    id[v.id_len] = '\0';
    cJSON_AddStringToObject(o, "customer_id", id);
    free(id);
    cJSON_AddStringToObject(o, "topic", s->topic);
    cJSON_AddNumberToObject(o, "partition", s->partition);
    cJSON_AddNumberToObject(o, "seq", v.seq);
    add_ts(o, "clock", v.now);
    cJSON *segs = cJSON_AddObjectToObject(o, "segments");
    const seg_segcfg_t *g = seg_engine_segcfg(e);
    const bool on[SEG_DIM__COUNT] = { g->lifecycle.enabled, g->value.enabled, g->rfm.enabled,
                                      g->dissatisfied.enabled };
    for (int k = 0; segs && k < SEG_DIM__COUNT; k++) {
        if (!on[k]) continue;
        const char *val = seg_engine_customer_value(e, idx, (seg_dim_t)k);
        if (val) cJSON_AddStringToObject(segs, seg_dim_name((seg_dim_t)k), val);
        else cJSON_AddNullToObject(segs, seg_dim_name((seg_dim_t)k));
    }
    const seg_ruleset_t *rs = seg_engine_rules(e);
    for (uint32_t r = 0; segs && rs && r < seg_ruleset_count(rs); r++) {
        const char *val = seg_engine_customer_value(e, idx, SEG_DIM_RULE(r));
        if (val) cJSON_AddStringToObject(segs, seg_ruleset_name(rs, r), val);
        else cJSON_AddNullToObject(segs, seg_ruleset_name(rs, r));
    }
    /* The same names and units as a transition's "features" (output.features). */
    cJSON *f = cJSON_AddObjectToObject(o, "features");
    if (f) {
        if (v.features.has_purchase) {
            cJSON_AddNumberToObject(f, "recency_s", (double)v.features.recency);
            cJSON_AddNumberToObject(f, "age_s", (double)v.features.age);
        } else {
            cJSON_AddNullToObject(f, "recency_s");
            cJSON_AddNullToObject(f, "age_s");
        }
        cJSON_AddNumberToObject(f, "frequency", (double)v.features.frequency);
        char money[48];
        money[seg_money_format(v.features.monetary, money)] = '\0';
        cJSON_AddRawToObject(f, "monetary", money);   /* exact decimal, as in transitions */
        cJSON_AddNumberToObject(f, "complaints", (double)v.features.complaints);
        /* The models' view (docs/predict.md), with segments.predict. */
        if (v.has_predict) {
            const seg_rule_pview_t *p = &v.predict;
            const struct { const char *k; double x; } pv[] = {
                { "x", p->x }, { "t_x", p->t_x }, { "T", p->T }, { "p_alive", p->p_alive },
                { "expected_purchases", p->expected }, { "clv", p->clv },
            };
            for (size_t k = 0; k < sizeof pv / sizeof pv[0]; k++) {
                if (pv[k].x == pv[k].x) cJSON_AddNumberToObject(f, pv[k].k, pv[k].x);
                else cJSON_AddNullToObject(f, pv[k].k);
            }
        }
    }
    cJSON *nc = cJSON_AddObjectToObject(o, "next_change");
    if (nc) {
        add_ts(nc, "at", v.next_at);
        if (v.next_at != INT64_MAX) cJSON_AddStringToObject(nc, "what", v.next_what);
        else cJSON_AddNullToObject(nc, "what");
    }
    (void)d;
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void api_customer(void *opaque, seg_http_call_t *call)
{
    daemon_t *d = opaque;
    if (strcmp(call->method, "GET") != 0 && strcmp(call->method, "HEAD") != 0) {
        reply_error(call, 405, "method not allowed", NULL);
        return;
    }
    const char *id = call->rest;   /* already percent-decoded by the server */
    size_t len = strlen(id);
    if (len == 0 || len > 255) {
        reply_error(call, 404, "not found", len ? "customer ids are at most 255 bytes"
                                                : "GET /v1/customers/{id} (URL-encoded)");
        return;
    }
    /* Which partition a key lands on is the producer's business (its
     * partitioner); every held partition is asked, one hash lookup each. */
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        uint32_t idx = seg_engine_customer_find(s->engine, id, len);
        if (idx == UINT32_MAX) continue;
        reply_json(call, 200, customer_json(d, s, idx));
        return;
    }
    reply_error(call, 404, "not found",
                "this instance holds no customer with that id (it may be held by another "
                "instance of the group, or not exist)");
}

static void api_unknown(void *opaque, seg_http_call_t *call)
{
    (void)opaque;
    reply_error(call, 404, "not found", "the API has GET /v1/segments and "
                "GET /v1/customers/{id}");
}

/* On the server thread (SEG_HTTP_DIRECT): static bytes only. */
static void page(void *opaque, seg_http_call_t *call)
{
    (void)opaque;
    call->body = malloc(seg_page_html_len);
    if (!call->body) {
        call->status = 500;
        return;
    }
    memcpy(call->body, seg_page_html, seg_page_html_len);
    call->len = seg_page_html_len;
    call->status = 200;
    call->content_type = "text/html; charset=utf-8";
}

/* From the server thread: a busy loop answers within its batch anyway;
 * breaking the batch for every lookup would cost it a loop turn each. */
static void wake(void *opaque)
{
    daemon_t *d = opaque;
    if (atomic_load(&d->polling)) rd_kafka_queue_yield(d->wake_q);
}

int seg_daemon_api_init(daemon_t *d, char *errstr, size_t errstr_size)
{
    const seg_cfg_t *cfg = d->cfg;
    if (!d->http || !cfg->metrics.api) return 0;
    char token[SEG_AUTH_TOKEN_MAX + 1], warn[700];
    if (seg_auth_from_config(cfg, token, sizeof token, warn, sizeof warn, errstr,
                             errstr_size) != 0) {
        d->fatal_config = 1;
        return -1;
    }
    if (warn[0]) seg_log(SEG_LOG_WARN, "http", "%s", warn);
    int rc = seg_http_set_token(d->http, token);
    memset(token, 0, sizeof token);
    const unsigned auth = SEG_HTTP_AUTH | SEG_HTTP_READ;
    if (rc != 0 ||
        seg_http_route_ex(d->http, "GET", "/v1/segments", auth | SEG_HTTP_EXACT, api_segments,
                          d) != 0 ||
        seg_http_route_ex(d->http, "GET", "/v1/customers/", auth, api_customer, d) != 0 ||
        seg_http_route_ex(d->http, "GET", "/v1/", auth, api_unknown, d) != 0 ||
        seg_http_route_ex(d->http, "GET", "/", auth | SEG_HTTP_EXACT | SEG_HTTP_DIRECT, page,
                          NULL) != 0) {
        snprintf(errstr, errstr_size, "cannot add the API routes");
        return -1;
    }
    d->wake_q = rd_kafka_queue_get_consumer(d->consumer);
    if (d->wake_q) seg_http_set_wake(d->http, wake, d);
    seg_log(SEG_LOG_INFO, "http", "API and page on %s (%s)", cfg->metrics.listen,
            cfg->metrics.token_file[0] ? "bearer token required" : "loopback, no token");
    return 0;
}

void seg_daemon_sizes_slot(daemon_t *d, unsigned i, int sign)
{
    slot_t *s = &d->slots[i];
    if (!d->sizes || !s->engine) return;
    if (sign > 0) seg_engine_on_customer(s->engine, seg_sizes_on_customer, d->sizes);
    if (seg_sizes_add_engine(d->sizes, s->engine, sign) != 0)
        seg_log(SEG_LOG_WARN, "sizes", "out of memory counting %s[%d]'s customers; segment "
                "sizes are inexact from now on", s->topic, s->partition);
}
