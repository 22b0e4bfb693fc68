/* libFuzzer target: the snapshot body parser must reject anything
 * malformed without crashing, leaking or allocating without bound. The
 * checksum is skipped here (parse is what runs after it passes), so the
 * fuzzer reaches the parser. */
#include <stdint.h>
#include <stdlib.h>

#include "config/seg_cfg.h"
#include "persist/seg_snapshot.h"

static int ignore(void *opaque, const seg_transition_t *t)
{
    (void)opaque;
    (void)t;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static seg_cfg_t cfg;
    static int init;
    if (!init) {
        seg_cfg_defaults(&cfg);
        init = 1;
    }
    char err[256];
    seg_engine_t *e = seg_engine_new(&cfg.seg, ignore, NULL, err, sizeof err);
    if (!e) abort();
    seg_snapshot_info_t info;
    if (seg_snapshot_parse((const char *)data, size, e, &info, err, sizeof err) == 0) {
        /* accepted: the engine must be usable */
        seg_engine_advance(e, info.max_ts, err, sizeof err);
    }
    seg_engine_destroy(e);
    return 0;
}
