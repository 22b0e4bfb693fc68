/* seg_snapshot: a loaded snapshot continues exactly like the engine that
 * wrote it; truncated or corrupt files are rejected whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/seg_cfg.h"
#include "persist/seg_snapshot.h"
#include "publish/seg_tjson.h"

typedef struct out { char *buf; size_t len, cap; } out_t;

static int collect(void *opaque, const seg_transition_t *t)
{
    out_t *o = opaque;
    char line[SEG_TJSON_MAX + 1];
    size_t n = seg_tjson_encode(t, false, line);
    line[n++] = '\n';
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->buf = realloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, line, n);
    o->len += n;
    return 0;
}

static seg_cfg_t cfg;
static char dir[] = "/tmp/segd-snap-XXXXXX";

/* A deterministic mixed stream over 300 customers, in time order. */
static void event_at(int i, seg_event_t *e, char *id)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    memset(e, 0, sizeof *e);
    snprintf(id, 16, "c%03d", (int)(x % 300));
    e->customer_id = id;
    e->customer_id_len = strlen(id);
    e->ts = 1700000000 + (int64_t)i * 3600 * 7;
    int k = (int)((x >> 20) % 10);
    e->type = k < 6 ? SEG_EV_PURCHASE : k < 7 ? SEG_EV_REFUND : SEG_EV_CONTACT;
    e->kind = e->type == SEG_EV_CONTACT ? (k == 9 ? SEG_CONTACT_VISIT : SEG_CONTACT_COMPLAINT) : 0;
    e->amount = (int64_t)((x >> 30) % 5000000);
}

static seg_engine_t *engine(out_t *o)
{
    char err[128];
    seg_engine_t *e = seg_engine_new(&cfg.seg, collect, o, err, sizeof err);
    assert_non_null(e);
    return e;
}

static void run(seg_engine_t *e, int from, int to)
{
    char err[128], id[16];
    for (int i = from; i < to; i++) {
        seg_event_t ev;
        event_at(i, &ev, id);
        assert_int_equal(seg_engine_fold(e, &ev, err, sizeof err), 0);
    }
}

static void round_trip_continues_identically(void **state)
{
    (void)state;
    char err[256], path[512];
    out_t full = { 0 }, first = { 0 }, second = { 0 };
    seg_engine_t *a = engine(&full);
    run(a, 0, 4000);
    assert_int_equal(seg_engine_advance(a, 1700000000 + 4000LL * 3600 * 7 + 400 * 86400LL, err, sizeof err), 0);
    seg_engine_destroy(a);

    seg_engine_t *b = engine(&first);
    run(b, 0, 2000);
    seg_snapshot_info_t wi, li;
    seg_engine_stats_t bs;
    seg_engine_stats(b, &bs);
    assert_true(bs.customers > 250);
    assert_int_equal(seg_snapshot_write(dir, "events", 3, b, 2000, &wi, err, sizeof err), 0);
    assert_int_equal(wi.customers, bs.customers);
    seg_engine_destroy(b);

    seg_engine_t *c = engine(&second);
    seg_snapshot_path(dir, "events", 3, path, sizeof path);
    assert_int_equal(seg_snapshot_load(path, "events", 3, c, &li, err, sizeof err), 0);
    assert_int_equal(li.next_offset, 2000);
    assert_int_equal(li.customers, bs.customers);
    assert_int_equal(li.max_ts, seg_engine_max_ts(c));
    run(c, 2000, 4000);
    assert_int_equal(seg_engine_advance(c, 1700000000 + 4000LL * 3600 * 7 + 400 * 86400LL, err, sizeof err), 0);
    seg_engine_destroy(c);
    /* before + after the snapshot == one uninterrupted run, byte for byte */
    assert_int_equal(first.len + second.len, full.len);
    assert_memory_equal(first.buf, full.buf, first.len);
    assert_memory_equal(second.buf, full.buf + first.len, second.len);
    assert_true(full.len > 10000);
    free(full.buf); free(first.buf); free(second.buf);

    /* wrong partition */
    out_t o = { 0 };
    seg_engine_t *d = engine(&o);
    assert_int_equal(seg_snapshot_load(path, "events", 4, d, &li, err, sizeof err), -1);
    assert_non_null(strstr(err, "belongs to events[3]"));
    seg_engine_destroy(d);
}

static void damaged_files_rejected(void **state)
{
    (void)state;
    char err[256], path[512], bad[600];
    out_t o = { 0 };
    seg_engine_t *e = engine(&o);
    run(e, 0, 500);
    assert_int_equal(seg_snapshot_write(dir, "events", 1, e, 500, NULL, err, sizeof err), 0);
    seg_engine_destroy(e);
    seg_snapshot_path(dir, "events", 1, path, sizeof path);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *img = malloc((size_t)n);
    assert_int_equal(fread(img, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    static const struct { long len; long flip; const char *want; } cases[] = {
        { -1, 100, "fails its checksum" },
        { -1, 9, "truncated or padded" },          /* length field */
        { -1, 0, "bad magic" },
        { 10, -1, "truncated (10 bytes)" },
        { -2, -1, "truncated or padded" },        /* cut in the middle */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(bad, sizeof bad, "%s/bad%zu.snap", dir, i);
        long len = cases[i].len == -1 ? n : cases[i].len == -2 ? n / 2 : cases[i].len;
        char *copy = malloc((size_t)n);
        memcpy(copy, img, (size_t)n);
        if (cases[i].flip >= 0) copy[cases[i].flip] ^= 0x10;
        f = fopen(bad, "wb");
        fwrite(copy, 1, (size_t)len, f);
        fclose(f);
        free(copy);
        seg_snapshot_info_t info;
        out_t o2 = { 0 };
        seg_engine_t *x = engine(&o2);
        assert_int_equal(seg_snapshot_load(bad, NULL, 0, x, &info, err, sizeof err), -1);
        if (!strstr(err, cases[i].want)) fail_msg("case %zu: '%s'", i, err);
        seg_engine_destroy(x);
    }
    free(img);
    free(o.buf);
}

static void crash_before_rename_keeps_previous(void **state)
{
    (void)state;
    char err[256], path[512];
    out_t o = { 0 };
    seg_engine_t *e = engine(&o);
    run(e, 0, 300);
    assert_int_equal(seg_snapshot_write(dir, "t", 0, e, 300, NULL, err, sizeof err), 0);
    run(e, 300, 600);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SEGD_FAULT", "snapshot-before-rename", 1);
        seg_snapshot_write(dir, "t", 0, e, 600, NULL, err, sizeof err);
        _exit(0);   /* not reached: the hook kills the process */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    seg_engine_destroy(e);
    seg_snapshot_path(dir, "t", 0, path, sizeof path);
    seg_snapshot_info_t info;
    seg_engine_t *x = engine(&o);
    assert_int_equal(seg_snapshot_load(path, "t", 0, x, &info, err, sizeof err), 0);
    assert_int_equal(info.next_offset, 300);     /* the previous one */
    seg_engine_destroy(x);
    free(o.buf);
}

static int setup(void **state)
{
    (void)state;
    seg_cfg_defaults(&cfg);
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_continues_identically),
        cmocka_unit_test(damaged_files_rejected),
        cmocka_unit_test(crash_before_rename_keeps_previous),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
