/*
 * fuzz_config: the config loader is the one parser fed by a file a user
 * (or a config-management tool) writes by hand, so it must reject any
 * input with a message and never crash, hang or leak. Each input is
 * loaded as YAML over the defaults and validated; the same bytes are then
 * tried as a --set assignment, which shares the value parsers.
 *
 * A load that succeeds must also survive printing: every key's value,
 * formatted with seg_cfg_format_value and applied again with --set, must
 * give back the same configuration. That is what `segd` relies on when it
 * shows the effective configuration, and it is where the escaping of the
 * string maps' "sub=value;sub=value" form would break first.
 *
 * Without SEG_FUZZ this file is linked with replay_main.c and run over
 * tests/fuzz/corpus/config/ (good and bad fixtures plus past findings) in
 * every `make test`, also under ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The values only: origins and entry positions differ by design. */
static void strip(seg_cfg_t *c)
{
    seg_cfg_strmap_t *maps[] = { &c->kafka.consumer, &c->kafka.producer, &c->routes };
    memset(&c->origin, 0, sizeof c->origin);
    for (size_t m = 0; m < sizeof maps / sizeof maps[0]; m++) {
        for (unsigned k = 0; k < SEG_CFG_MAP_MAX; k++) {
            maps[m]->e[k].line = maps[m]->e[k].col = 0;
            maps[m]->e[k].src = 0;
        }
    }
}

static void round_trip(const seg_cfg_t *cfg)
{
    /* ~46 KB each: keep them off the fuzzer's stack */
    static seg_cfg_t copy, a, b;
    static char val[SEG_CFG_MAP_MAX * (SEG_CFG_MAPKEY_MAX + 2 * SEG_CFG_STR_MAX + 2)];
    static char assign[sizeof val + 256];
    char err[512], where[SEG_CFG_FILE_MAX + 32];
    const seg_cfg_schema_t *s = seg_cfg_schema();

    seg_cfg_defaults(&copy);
    for (size_t i = 0; i < s->n; i++) {
        size_t need = seg_cfg_format_value(s, cfg, i, val, sizeof val);
        if (need >= sizeof val) abort();
        snprintf(assign, sizeof assign, "%s=%s", s->keys[i].key, val);
        if (seg_cfg_set(&copy, assign, err, sizeof err) != 0) abort();
        if (seg_cfg_where(cfg, s->keys[i].key, NULL, where, sizeof where) != 0) abort();
    }
    memcpy(&a, cfg, sizeof a);
    memcpy(&b, &copy, sizeof b);
    strip(&a);
    strip(&b);
    if (memcmp(&a, &b, sizeof a) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static seg_cfg_t cfg;
    char err[512] = "";

    seg_cfg_defaults(&cfg);
    if (seg_cfg_load_buffer(&cfg, "fuzz.yaml", (const char *)data, size, err,
                            sizeof err) == 0) {
        round_trip(&cfg);
        (void)seg_cfg_validate(&cfg, err, sizeof err);
    }
    /* An error message must always be a terminated string. */
    if (strnlen(err, sizeof err) == sizeof err) abort();

    char *a = malloc(size + 1);
    if (!a) return 0;
    memcpy(a, data, size);
    a[size] = '\0';
    seg_cfg_defaults(&cfg);
    if (seg_cfg_set(&cfg, a, err, sizeof err) == 0) {
        round_trip(&cfg);
        (void)seg_cfg_validate(&cfg, err, sizeof err);
    }
    free(a);
    return 0;
}
