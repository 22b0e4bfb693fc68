/*
 * seg_reload: a new configuration while running (SIGHUP, POST /-/reload).
 *
 * Marketing changes an audience's threshold on a Tuesday afternoon; a
 * restart would drop the consumer group membership, move partitions and
 * reload state for nothing. A reload instead re-reads the file and, if
 * it is valid and can be applied exactly, switches every partition's
 * engine at one point of its input (docs/rules.md):
 *   1. checkpoint every partition (and give up if that fails: the switch
 *      point must be one a crash can come back to);
 *   2. switch rules and built-in settings; every customer is re-evaluated
 *      at its own clock and what changed is published with cause "rule";
 *   3. checkpoint again.
 * A crash between 1 and 3 restarts from checkpoint 1 under the new file,
 * and a restart under a different rule set re-evaluates exactly as step 2
 * did (seg_rulestate_adopt), so the same ids carry the same contents.
 *
 * Only what can change without a restart may change: segments.* (rules,
 * built-in settings, retain, predict), routes, output.features and
 * log.level. Anything else is refused, naming the key. So is a change
 * whose rules read history the state does not hold, with the message of
 * seg_engine_check_rules. A refused or invalid file changes nothing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/seg_daemon_int.h"
#include "daemon/seg_run.h"
#include "rule/seg_rule_load.h"
#include "util/seg_log.h"

/* Keys a reload may change. */
static bool reloadable(const char *key)
{
    return strncmp(key, "segments.", 9) == 0 || strcmp(key, "routes") == 0 ||
           strcmp(key, "output.features") == 0 || strcmp(key, "log.level") == 0;
}

/* The first key that differs and may not change live, or NULL. */
static const char *fixed_key_changed(const seg_cfg_t *a, const seg_cfg_t *b)
{
    const seg_cfg_schema_t *s = seg_cfg_schema();
    static char va[16384], vb[16384];
    for (size_t i = 0; i < s->n; i++) {
        if (reloadable(s->keys[i].key)) continue;
        seg_cfg_format_value(s, a, i, va, sizeof va);
        seg_cfg_format_value(s, b, i, vb, sizeof vb);
        if (strcmp(va, vb) != 0) return s->keys[i].key;
    }
    return NULL;
}

/* Test hook: SEGD_FAULT names a point of the reload where segd kills
 * itself with SIGKILL (tests/integration/rules_daemon_tests.py), after
 * delivering what it produced so far, so the crash leaves published
 * transitions behind. */
static void fault(daemon_t *d, const char *point)
{
    const char *f = getenv("SEGD_FAULT");
    if (!f || strcmp(f, point) != 0) return;
    seg_log(SEG_LOG_WARN, "reload", "SEGD_FAULT=%s: killing myself", point);
    rd_kafka_flush(d->producer, 10000);
    raise(SIGKILL);
}

int seg_daemon_reload(daemon_t *d, const char *how, char *errstr, size_t errstr_size)
{
    seg_cfg_t *cfg = malloc(sizeof *cfg);
    seg_ruleset_t *rules = NULL;
    seg_routes_t *routes = NULL;
    rd_kafka_topic_t **route_rkt = NULL;
    char err[1024];
    int64_t t0 = mono_ms();
    if (!cfg) {
        snprintf(errstr, errstr_size, "out of memory");
        goto refused;
    }
    rules = seg_rule_load_config(d->config_path, d->sets, d->nsets, cfg, err, sizeof err);
    if (!rules) {
        snprintf(errstr, errstr_size, "%s", err);
        goto refused;
    }
    const char *key = fixed_key_changed(d->cfg, cfg);
    if (key) {
        snprintf(errstr, errstr_size, "%s cannot change in a reload (only segments.*, routes, "
                 "output.features and log.level can); restart segd for it", key);
        goto refused;
    }
    if (seg_run_check(cfg, rules, errstr, errstr_size) != 0) goto refused;
    routes = seg_routes_new(cfg, rules, errstr, errstr_size);
    if (!routes) goto refused;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        if (seg_engine_check_rules(s->engine, &cfg->seg, rules, err, sizeof err) != 0) {
            snprintf(errstr, errstr_size, "%s[%d]: %s", s->topic, s->partition, err);
            goto refused;
        }
    }
    size_t nr = seg_routes_count(routes);
    route_rkt = calloc(nr ? nr : 1, sizeof *route_rkt);
    if (!route_rkt) {
        snprintf(errstr, errstr_size, "out of memory");
        goto refused;
    }
    for (size_t i = 0; i < nr; i++) {
        route_rkt[i] = rd_kafka_topic_new(d->producer, seg_routes_topic(routes, i), NULL);
        if (!route_rkt[i]) {
            snprintf(errstr, errstr_size, "cannot create topic handle '%s'",
                     seg_routes_topic(routes, i));
            goto refused;
        }
    }

    /* 1. a point a crash can come back to */
    if (seg_daemon_checkpoint(d, NULL, "reload") != 0) {
        snprintf(errstr, errstr_size, "the checkpoint before the switch failed (see the "
                 "checkpoint log); nothing changed");
        goto refused;
    }
    fault(d, "reload-before-switch");
    /* 2. switch, re-evaluating everyone (the sizes learn the new
     * dimensions first: the switch's transitions land in them) */
    if (d->sizes && seg_sizes_set_dims(d->sizes, &cfg->seg, rules) != 0)
        seg_log(SEG_LOG_WARN, "reload", "out of memory: segment sizes are inexact");
    uint64_t before = 0, after = 0, customers = 0;
    d->cur_slot = NO_SLOT;
    for (unsigned i = 0; i < MAX_SLOTS; i++) {
        slot_t *s = &d->slots[i];
        if (!s->used) continue;
        seg_engine_stats_t st;
        seg_engine_stats(s->engine, &st);
        before += st.transitions;
        if (seg_engine_change_rules(s->engine, &cfg->seg, rules, false, true, err,
                                    sizeof err) != 0) {
            /* Engines already switched cannot go back: stop, and a
             * restart comes back to checkpoint 1 under the new file. */
            seg_daemon_fatal(d, "reload: %s[%d]: %s", s->topic, s->partition, err);
            break;
        }
        seg_engine_stats(s->engine, &st);
        after += st.transitions;
        customers += st.customers;
    }
    seg_ruleset_t *old_rules = d->rules;
    seg_routes_t *old_routes = d->routes;
    rd_kafka_topic_t **old_rkt = d->route_rkt;
    size_t old_nr = seg_routes_count(old_routes);
    seg_cfg_t *old_cfg = d->cfg_own;
    d->rules = rules;
    d->routes = routes;
    d->route_rkt = route_rkt;
    d->cfg_own = cfg;
    d->cfg = cfg;
    seg_log_set_level((seg_log_level_t)cfg->log.level);
    seg_ruleset_destroy(old_rules);
    seg_routes_destroy(old_routes);
    /* A delivery still in flight, or kept for a retry, may name an old
     * route's topic handle: those are closed at exit, not now. */
    for (size_t i = 0; i < old_nr; i++) {
        rd_kafka_topic_t **nr_ = realloc(d->retired_rkt, (d->n_retired + 1) * sizeof *nr_);
        if (!nr_) continue;   /* not closed at all: a handle, not a leak that grows */
        d->retired_rkt = nr_;
        d->retired_rkt[d->n_retired++] = old_rkt[i];
    }
    free(old_rkt);
    free(old_cfg);
    if (d->fatal) {
        snprintf(errstr, errstr_size, "%s", d->fatal_msg);
        count(d->reload_error, 1);
        return -1;
    }
    fault(d, "reload-after-switch");
    /* 3. the new state, checkpointed */
    if (seg_daemon_checkpoint(d, NULL, "reload") != 0)
        seg_log(SEG_LOG_WARN, "reload", "the checkpoint after the switch failed; a crash "
                "before the next one re-evaluates again from the one before, identically");
    count(d->reload_ok, 1);
    seg_log(SEG_LOG_INFO, "reload", "%s: configuration reloaded: %u user rule(s), %llu "
            "customers re-evaluated, %llu transitions (cause \"rule\"), %lld ms", how,
            seg_ruleset_count(d->rules), (unsigned long long)customers,
            (unsigned long long)(after - before), (long long)(mono_ms() - t0));
    return 0;

refused:
    count(d->reload_error, 1);
    seg_log(SEG_LOG_ERROR, "reload", "%s: configuration not reloaded: %s", how, errstr);
    for (size_t i = 0; route_rkt && routes && i < seg_routes_count(routes); i++)
        if (route_rkt[i]) rd_kafka_topic_destroy(route_rkt[i]);
    free(route_rkt);
    seg_routes_destroy(routes);
    seg_ruleset_destroy(rules);
    free(cfg);
    return -1;
}

void seg_daemon_http_reload(void *opaque, seg_http_call_t *call)
{
    daemon_t *d = opaque;
    char err[1200];
    if (seg_daemon_reload(d, "POST /-/reload", err, sizeof err) == 0) {
        call->status = 200;
        call->body = strdup("reloaded\n");
    } else {
        call->status = 400;
        size_t n = strlen(err);
        call->body = malloc(n + 2);
        if (call->body) {
            memcpy(call->body, err, n);
            memcpy(call->body + n, "\n", 2);
        }
    }
    call->len = call->body ? strlen(call->body) : 0;
}
