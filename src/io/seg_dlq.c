/*
 * seg_dlq: one cJSON object per rejected record. Not a hot path, so the
 * JSON library writes it; we only decide between "record" (valid UTF-8,
 * readable by a person) and "record_base64" (anything else, byte-exact).
 */
#include "io/seg_dlq.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seg_dlq {
    FILE *f;
    char  path[512];
};

seg_dlq_t *seg_dlq_open(const char *path, char *errstr, size_t errstr_size)
{
    seg_dlq_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    d->f = fopen(path, "w");
    if (!d->f) {
        snprintf(errstr, errstr_size, "cannot open DLQ file '%s': %s", path, strerror(errno));
        free(d);
        return NULL;
    }
    snprintf(d->path, sizeof d->path, "%s", path);
    return d;
}

int seg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c == 0) return 0;
        if (c < 0x80) { p++; continue; }
        int n;
        unsigned min;
        if ((c & 0xe0) == 0xc0)      { n = 1; min = 0x80; c &= 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; min = 0x800; c &= 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        if (end - p <= n) return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        p += n + 1;
    }
    return 1;
}

static char *base64(const char *data, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

int seg_dlq_write(seg_dlq_t *d, seg_reject_t reason, const char *error,
                  const char *source, uint64_t line, uint64_t offset,
                  const char *data, size_t len, char *errstr, size_t errstr_size)
{
    int rc = -1;
    char *text = NULL, *b64 = NULL, *rec = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) goto oom;
    cJSON_AddStringToObject(o, "reason", seg_reject_name(reason));
    cJSON_AddStringToObject(o, "error", error);
    cJSON_AddStringToObject(o, "source", source);
    if (line) cJSON_AddNumberToObject(o, "line", (double)line);
    cJSON_AddNumberToObject(o, "offset", (double)offset);
    if (len == 0 || seg_utf8_valid(data, len)) {
        rec = malloc(len + 1);
        if (!rec) goto oom;
        if (len) memcpy(rec, data, len);
        rec[len] = '\0';
        if (!cJSON_AddStringToObject(o, "record", rec)) goto oom;
    } else {
        b64 = base64(data, len);
        if (!b64 || !cJSON_AddStringToObject(o, "record_base64", b64)) goto oom;
    }
    text = cJSON_PrintUnformatted(o);
    if (!text) goto oom;
    if (fputs(text, d->f) == EOF || fputc('\n', d->f) == EOF) {
        snprintf(errstr, errstr_size, "cannot write DLQ file '%s': %s", d->path, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory writing the DLQ");
out:
    free(text);
    free(b64);
    free(rec);
    cJSON_Delete(o);
    return rc;
}

int seg_dlq_close(seg_dlq_t *d, char *errstr, size_t errstr_size)
{
    if (!d) return 0;
    int rc = 0;
    if (fclose(d->f) != 0) {
        snprintf(errstr, errstr_size, "cannot flush DLQ file '%s': %s", d->path, strerror(errno));
        rc = -1;
    }
    free(d);
    return rc;
}
