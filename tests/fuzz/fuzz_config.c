/*
 * fuzz_config: the config loader is the one parser fed by a file a user
 * (or a config-management tool) writes by hand, so it must reject any
 * input with a message and never crash, hang or leak. Each input is
 * loaded as YAML over the defaults and validated; the same bytes are then
 * tried as a --set assignment, which shares the value parsers.
 *
 * Without SEG_FUZZ this file is linked with replay_main.c and run over
 * tests/fuzz/corpus/config/ (good and bad fixtures plus past findings) in
 * every `make test`, also under ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/seg_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static seg_cfg_t cfg;   /* ~2 KB: keep it off the fuzzer's stack */
    char err[512];

    seg_cfg_defaults(&cfg);
    if (seg_cfg_load_buffer(&cfg, "fuzz.yaml", (const char *)data, size, err,
                            sizeof err) == 0) {
        (void)seg_cfg_validate(&cfg, err, sizeof err);
    }
    /* An error message must always be a terminated string. */
    if (strnlen(err, sizeof err) == sizeof err) abort();

    char *a = malloc(size + 1);
    if (!a) return 0;
    memcpy(a, data, size);
    a[size] = '\0';
    seg_cfg_defaults(&cfg);
    if (seg_cfg_set(&cfg, a, err, sizeof err) == 0)
        (void)seg_cfg_validate(&cfg, err, sizeof err);
    free(a);
    return 0;
}
