/*
 * seg_json: one JSON object record -> its members, with simdjson's On
 * Demand parser, behind a C interface.
 *
 * Why it exists: cJSON builds a tree of malloc'd nodes (or arena nodes)
 * for every record and parses numbers with strtod; on the bench's records
 * that parse alone was about half of a JSON replay (docs/benchmarks.md).
 * simdjson finds a record's structure with SIMD instructions and parses
 * numbers without strtod, several times faster on the same records. It is
 * C++, so this header is the only door to it: seg_json.cpp is the one C++
 * translation unit of segd, and nothing else sees a C++ type.
 *
 * What it decides, and what it leaves to the caller: a record is either
 * fully parsed and validated here (every value of the record, at every
 * depth, not only the members read: On Demand is lazy and would otherwise
 * skip over what it is not asked for), or refused with "undecided"
 * (SEG_JSON_UNDECIDED). simdjson is stricter than cJSON, whose leniencies
 * docs/events.md lists (raw control characters, bytes that are not UTF-8,
 * leading zeros, a BOM, ...), so the decoder hands an undecided record to
 * cJSON, which decides as it always did. What this accepts, cJSON accepts
 * too, with the same values (tests/fuzz/fuzz_json.c checks that on every
 * input).
 *
 * Ownership: the member arrays and every key and string they point to
 * belong to the seg_json_t and stay valid until its next parse call or
 * its _destroy. The input buffer is copied (simdjson needs padding after
 * the bytes) and not kept. One seg_json_t per thread.
 */
#ifndef SEG_JSON_H
#define SEG_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct seg_json seg_json_t;

typedef enum {
    SEG_JSON_NULL = 0,
    SEG_JSON_BOOL,
    SEG_JSON_NUMBER,   /* every JSON number, as the nearest double */
    SEG_JSON_STRING,
    SEG_JSON_ARRAY,
    SEG_JSON_OBJECT,
} seg_json_type_t;

typedef struct seg_json_member {
    const char     *key;       /* unescaped, not NUL-terminated; may hold a
                                * NUL byte (from a \u0000 escape) */
    size_t          key_len;
    seg_json_type_t type;
    int             b;         /* SEG_JSON_BOOL */
    double          num;       /* SEG_JSON_NUMBER */
    const char     *str;       /* SEG_JSON_STRING: unescaped, valid UTF-8,
                                * may hold a NUL byte; not NUL-terminated */
    size_t          str_len;
    uint32_t        sub;       /* top-level SEG_JSON_OBJECT: its members are */
    uint32_t        n_sub;     /* nested[sub .. sub + n_sub) (one level only) */
} seg_json_member_t;

typedef struct seg_json_doc {
    const seg_json_member_t *top;      /* the record's members, in order */
    size_t                   n_top;
    const seg_json_member_t *nested;   /* members of its object members */
    size_t                   n_nested;
} seg_json_doc_t;

typedef enum {
    SEG_JSON_OK = 0,           /* a JSON object, parsed and validated */
    SEG_JSON_UNDECIDED,        /* not a JSON object simdjson accepts: let
                                * another parser decide (invalid, not an
                                * object, or a leniency simdjson lacks) */
    SEG_JSON_NOMEM,            /* out of memory */
} seg_json_result_t;

/* Returns a new parser, or NULL on allocation failure. */
seg_json_t *seg_json_new(void);
/* Frees the parser and the members of its last parse. NULL is a no-op. */
void seg_json_destroy(seg_json_t *j);

/* Parses buf[0..len) (not NUL-terminated; whitespace around the object is
 * allowed) as one JSON object nested at most SEG_JSON_MAX_DEPTH deep.
 * SEG_JSON_OK fills *doc; anything else leaves it empty. */
#define SEG_JSON_MAX_DEPTH 64
seg_json_result_t seg_json_parse_object(seg_json_t *j, const char *buf, size_t len,
                                        seg_json_doc_t *doc);

#ifdef __cplusplus
}
#endif

#endif
