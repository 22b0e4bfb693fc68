/*
 * libFuzzer target for segd's JSON library, simdjson behind seg_json.h,
 * as a differential test against cJSON, the parser it stands in front of.
 *
 * The decoder trusts seg_json_parse_object for every record it accepts and
 * hands cJSON the rest (src/event/seg_decode.c). That is only the same
 * contract as before if every record simdjson accepts is one cJSON accepts
 * too, with the same members, in the same order, with the same values
 * (bit for bit for numbers). So on any bytes, as one record and as NDJSON
 * lines (not NUL-terminated, exact-size copies, so ASan sees any read past
 * the end): no crash, no leak, and whenever seg_json says SEG_JSON_OK,
 * cJSON must agree member by member, one level into object members (what
 * the decoder lists as attrs). Where simdjson says undecided, cJSON
 * decides and there is nothing to compare. Records with a raw NUL are
 * refused before either parser sees them, so they are only parsed, not
 * compared.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/seg_json.h"

#define INV(cond)                                                        \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond,     \
                    __FILE__, __LINE__);                                 \
            abort();                                                     \
        }                                                                \
    } while (0)

static seg_json_t *sj;

/* cJSON keeps strings NUL-terminated: it cuts one at a \u0000, so the
 * parsers agree when simdjson's string, cut at its first NUL, is cJSON's. */
static void same_str(const char *s, size_t n, const char *c)
{
    const char *nul = memchr(s, '\0', n);
    size_t m = nul ? (size_t)(nul - s) : n;
    INV(strlen(c) == m && memcmp(s, c, m) == 0);
}

static void same_value(const seg_json_member_t *m, const cJSON *c)
{
    switch (m->type) {
    case SEG_JSON_NULL:   INV(cJSON_IsNull(c)); break;
    case SEG_JSON_BOOL:   INV(m->b ? cJSON_IsTrue(c) : cJSON_IsFalse(c)); break;
    case SEG_JSON_NUMBER:
        INV(cJSON_IsNumber(c));
        INV(memcmp(&m->num, &c->valuedouble, sizeof m->num) == 0);
        break;
    case SEG_JSON_STRING: INV(cJSON_IsString(c)); same_str(m->str, m->str_len, c->valuestring); break;
    case SEG_JSON_ARRAY:  INV(cJSON_IsArray(c)); break;
    case SEG_JSON_OBJECT: INV(cJSON_IsObject(c)); break;
    default:              INV(0);
    }
}

static void one(const char *buf, size_t len)
{
    seg_json_doc_t doc;
    seg_json_result_t r = seg_json_parse_object(sj, buf, len, &doc);
    INV(r == SEG_JSON_OK || r == SEG_JSON_UNDECIDED);
    if (r != SEG_JSON_OK) {
        INV(doc.n_top == 0 && doc.n_nested == 0);
        return;
    }
    if (len && memchr(buf, '\0', len)) return;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    INV(root != NULL);
    for (const char *p = end; p < buf + len; p++)
        INV(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n');
    INV(cJSON_IsObject(root));
    size_t i = 0;
    for (const cJSON *c = root->child; c; c = c->next, i++) {
        INV(i < doc.n_top);
        const seg_json_member_t *m = &doc.top[i];
        same_str(m->key, m->key_len, c->string);
        same_value(m, c);
        if (m->type != SEG_JSON_OBJECT) continue;
        INV((size_t)m->sub + m->n_sub <= doc.n_nested);
        size_t k = 0;
        for (const cJSON *d = c->child; d; d = d->next, k++) {
            INV(k < m->n_sub);
            const seg_json_member_t *s = &doc.nested[m->sub + k];
            same_str(s->key, s->key_len, d->string);
            same_value(s, d);
        }
        INV(k == m->n_sub);
    }
    INV(i == doc.n_top);
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sj) sj = seg_json_new();
    if (!sj) abort();
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    one(buf, size);
    const char *p = buf, *end = buf + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;          /* whole input already covered above */
        size_t n = (size_t)(nl - p);
        char *line = malloc(n ? n : 1);
        if (!line) break;
        memcpy(line, p, n);
        one(line, n);
        free(line);
        p = nl + 1;
    }
    free(buf);
    return 0;
}
