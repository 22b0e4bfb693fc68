/*
 * seg_ndjson2msgpack: NDJSON events -> a stream of MessagePack maps.
 *
 * Why: `segd replay --format msgpack` must give exactly the transitions of
 * the NDJSON input. The integration tests prove it on CDNOW by converting
 * the same events with this tool, which is deliberately dumb: cJSON parses
 * a line, msgpack-c's packer writes the same tree back, value for value.
 *
 *   object -> map, array -> array, string -> str (same bytes),
 *   true/false -> bool, null -> nil,
 *   number -> int when cJSON's double is integral and fits an int64
 *             (JSON does not say whether 12.00 is an int; segd treats an
 *             amount of 12 and 12.0 alike), else float64.
 *
 * Blank lines are skipped. A line that is not JSON stops the conversion
 * with exit 1: the tool makes test inputs, and silently dropping a record
 * would make the JSON and MessagePack runs differ for the wrong reason.
 *
 * Usage: seg_ndjson2msgpack [INPUT|- [OUTPUT]]
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Packs one cJSON value. Returns 0, or -1 if the packer failed to write. */
static int pack_value(msgpack_packer *pk, const cJSON *v)
{
    int rc = 0;
    if (cJSON_IsObject(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v);
        rc |= msgpack_pack_map(pk, n);
        for (const cJSON *c = v->child; c != NULL; c = c->next) {
            size_t klen = strlen(c->string);
            rc |= msgpack_pack_str(pk, klen);
            rc |= msgpack_pack_str_body(pk, c->string, klen);
            rc |= pack_value(pk, c);
        }
    } else if (cJSON_IsArray(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v);
        rc |= msgpack_pack_array(pk, n);
        for (const cJSON *c = v->child; c != NULL; c = c->next)
            rc |= pack_value(pk, c);
    } else if (cJSON_IsString(v)) {
        size_t len = strlen(v->valuestring);
        rc |= msgpack_pack_str(pk, len);
        rc |= msgpack_pack_str_body(pk, v->valuestring, len);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        /* 2^63 is exactly representable; anything below it in magnitude
         * and integral converts to int64 without loss. */
        if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 &&
            d < 9223372036854775808.0)
            rc |= msgpack_pack_int64(pk, (int64_t)d);
        else
            rc |= msgpack_pack_double(pk, d);
    } else if (cJSON_IsTrue(v)) {
        rc |= msgpack_pack_true(pk);
    } else if (cJSON_IsFalse(v)) {
        rc |= msgpack_pack_false(pk);
    } else {
        rc |= msgpack_pack_nil(pk);
    }
    return rc ? -1 : 0;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 3 || (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
                                  strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: %s [INPUT|- [OUTPUT]]\n", argv[0]);
        return 2;
    }
    const char *in_path = argc > 1 ? argv[1] : "-";
    const char *out_path = argc > 2 ? argv[2] : "-";
    FILE *in = strcmp(in_path, "-") == 0 ? stdin : fopen(in_path, "rb");
    if (in == NULL) {
        fprintf(stderr, "seg_ndjson2msgpack: cannot open %s\n", in_path);
        return 1;
    }
    FILE *out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "wb");
    if (out == NULL) {
        fprintf(stderr, "seg_ndjson2msgpack: cannot create %s\n", out_path);
        if (in != stdin) fclose(in);
        return 1;
    }

    int status = 0;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0, records = 0;
    while ((n = getline(&line, &cap, in)) != -1) {
        lineno++;
        if (is_blank(line, (size_t)n)) continue;
        cJSON *doc = cJSON_ParseWithLength(line, (size_t)n);
        if (doc == NULL) {
            fprintf(stderr, "seg_ndjson2msgpack: %s:%lu: not JSON\n",
                    in_path, lineno);
            status = 1;
            break;
        }
        msgpack_sbuffer_clear(&sbuf);
        int rc = pack_value(&pk, doc);
        cJSON_Delete(doc);
        if (rc != 0 || fwrite(sbuf.data, 1, sbuf.size, out) != sbuf.size) {
            fprintf(stderr, "seg_ndjson2msgpack: write failed at %s:%lu\n",
                    in_path, lineno);
            status = 1;
            break;
        }
        records++;
    }
    if (status == 0 && ferror(in)) {
        fprintf(stderr, "seg_ndjson2msgpack: read error on %s\n", in_path);
        status = 1;
    }
    free(line);
    msgpack_sbuffer_destroy(&sbuf);
    if (in != stdin) fclose(in);
    if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
        fprintf(stderr, "seg_ndjson2msgpack: cannot write %s\n", out_path);
        status = 1;
    }
    if (status == 0)
        fprintf(stderr, "seg_ndjson2msgpack: %lu records\n", records);
    return status;
}
