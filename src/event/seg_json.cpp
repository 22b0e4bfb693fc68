/*
 * seg_json: simdjson On Demand behind the C interface of seg_json.h. The
 * one C++ translation unit of segd: no exception leaves it (simdjson is
 * used through its error codes, memory through malloc), and no C++ type
 * crosses the header.
 *
 * On Demand parses lazily: the parser finds the record's structure and
 * checks its UTF-8 up front, and a value is only parsed when it is asked
 * for. A member nobody reads would be skipped over unparsed, so
 * {"x":tru,...} would pass. walk() therefore asks for every value of the
 * record, at every depth (a number's digits, a literal's letters, a
 * string's escapes), and the record counts as parsed only when that walk
 * reached the end of the input. Anything simdjson refuses is
 * SEG_JSON_UNDECIDED, never an error of its own: the caller lets cJSON
 * decide, so the leniencies docs/events.md lists stay exactly cJSON's.
 */
#include "event/seg_json.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <simdjson.h>

namespace od = simdjson::ondemand;

struct seg_json {
    od::parser         parser;
    char              *buf = nullptr;      /* the record + SIMDJSON_PADDING */
    size_t             buf_cap = 0;
    seg_json_member_t *top = nullptr;
    size_t             n_top = 0, top_cap = 0;
    seg_json_member_t *nested = nullptr;
    size_t             n_nested = 0, nested_cap = 0;
};

namespace {

enum walk_rc { W_OK = 0, W_UNDECIDED, W_NOMEM };

/* A new member at the end of arr (grown by doubling), or nullptr. */
seg_json_member_t *push(seg_json_member_t *&arr, size_t &n, size_t &cap)
{
    if (n == cap) {
        size_t ncap = cap ? cap * 2 : 32;
        void *p = std::realloc(arr, ncap * sizeof *arr);
        if (!p) return nullptr;
        arr = static_cast<seg_json_member_t *>(p);
        cap = ncap;
    }
    seg_json_member_t *m = &arr[n++];
    std::memset(m, 0, sizeof *m);
    return m;
}

walk_rc walk_value(od::value v, int depth, seg_json_member_t *out);

/* More than 19 digits before the exponent. simdjson 3.0.1 (Debian
 * bookworm's) misreads some of those numbers: for one starting with "0."
 * its overflow check counts the leading zeros instead of the digits, so
 * the mantissa wraps and 0.3000000000073709551616 reads as 0.00116...
 * (simdjson issue #2093, fixed in 3.6.3; tests/fuzz/fuzz_json.c found it
 * here). Such numbers are left to cJSON: this is a cheap superset of the
 * affected ones, and no real amount or timestamp has 20 digits. The input
 * is padded with NULs, so the scan stops inside the buffer. */
bool long_mantissa(const char *p)
{
    int n = 0;
    if (*p == '-') p++;
    for (; *p >= '0' && *p <= '9'; p++) n++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) n++;
    return n > 19;
}

/* Every member of o, each value walked. */
walk_rc walk_object(od::object o, int depth)
{
    for (auto f : o) {
        std::string_view key;
        od::value v;
        if (f.unescaped_key().get(key) || f.value().get(v)) return W_UNDECIDED;
        walk_rc rc = walk_value(v, depth, nullptr);
        if (rc != W_OK) return rc;
    }
    return W_OK;
}

/* Parses v completely (and, for a container, everything in it), so that
 * nothing of the record goes unchecked. With out, fills its type and
 * scalar value. depth: containers around v. */
walk_rc walk_value(od::value v, int depth, seg_json_member_t *out)
{
    od::json_type t;
    if (v.type().get(t)) return W_UNDECIDED;
    seg_json_member_t ignored;
    if (!out) out = &ignored;
    switch (t) {
    case od::json_type::object: {
        od::object o;
        out->type = SEG_JSON_OBJECT;
        if (depth + 1 > SEG_JSON_MAX_DEPTH || v.get_object().get(o)) return W_UNDECIDED;
        return walk_object(o, depth + 1);
    }
    case od::json_type::array: {
        od::array a;
        out->type = SEG_JSON_ARRAY;
        if (depth + 1 > SEG_JSON_MAX_DEPTH || v.get_array().get(a)) return W_UNDECIDED;
        for (auto e : a) {
            od::value ev;
            if (e.get(ev)) return W_UNDECIDED;
            walk_rc rc = walk_value(ev, depth + 1, nullptr);
            if (rc != W_OK) return rc;
        }
        return W_OK;
    }
    case od::json_type::string: {
        std::string_view s;
        if (v.get_string().get(s)) return W_UNDECIDED;
        out->type = SEG_JSON_STRING;
        out->str = s.data();
        out->str_len = s.size();
        return W_OK;
    }
    case od::json_type::number: {
        double d;
        if (long_mantissa(v.raw_json_token().data()) || v.get_double().get(d)) return W_UNDECIDED;
        out->type = SEG_JSON_NUMBER;
        out->num = d;
        return W_OK;
    }
    case od::json_type::boolean: {
        bool b;
        if (v.get_bool().get(b)) return W_UNDECIDED;
        out->type = SEG_JSON_BOOL;
        out->b = b;
        return W_OK;
    }
    case od::json_type::null: {
        bool is_null;
        if (v.is_null().get(is_null) || !is_null) return W_UNDECIDED;
        out->type = SEG_JSON_NULL;
        return W_OK;
    }
    }
    return W_UNDECIDED;
}

/* The members of a top-level object member, one level deep: recorded in
 * j->nested, their own values walked. */
walk_rc walk_members(seg_json_t *j, od::value v, seg_json_member_t *m)
{
    od::object o;
    if (v.get_object().get(o)) return W_UNDECIDED;
    m->sub = (uint32_t)j->n_nested;
    for (auto f : o) {
        std::string_view key;
        od::value fv;
        if (f.unescaped_key().get(key) || f.value().get(fv)) return W_UNDECIDED;
        seg_json_member_t *s = push(j->nested, j->n_nested, j->nested_cap);
        if (!s) return W_NOMEM;
        s->key = key.data();
        s->key_len = key.size();
        walk_rc rc = walk_value(fv, 2, s);
        if (rc != W_OK) return rc;
    }
    if (j->n_nested - m->sub > UINT32_MAX) return W_UNDECIDED;
    m->n_sub = (uint32_t)(j->n_nested - m->sub);
    return W_OK;
}

seg_json_result_t parse(seg_json_t *j, const char *buf, size_t len)
{
    /* simdjson reads up to SIMDJSON_PADDING bytes past the end. */
    size_t need = len + simdjson::SIMDJSON_PADDING;
    if (need < len) return SEG_JSON_NOMEM;
    if (need > j->buf_cap) {
        size_t cap = j->buf_cap ? j->buf_cap : 4096;
        while (cap < need && cap <= SIZE_MAX / 2) cap *= 2;
        if (cap < need) cap = need;
        char *p = static_cast<char *>(std::malloc(cap));
        if (!p) return SEG_JSON_NOMEM;
        std::free(j->buf);
        j->buf = p;
        j->buf_cap = cap;
    }
    std::memcpy(j->buf, buf, len);
    std::memset(j->buf + len, 0, simdjson::SIMDJSON_PADDING);

    od::document doc;
    simdjson::error_code e = j->parser.iterate(j->buf, len, j->buf_cap).get(doc);
    if (e == simdjson::MEMALLOC) return SEG_JSON_NOMEM;
    od::object root;
    if (e || doc.get_object().get(root)) return SEG_JSON_UNDECIDED;
    for (auto f : root) {
        std::string_view key;
        od::value v;
        if (f.unescaped_key().get(key) || f.value().get(v)) return SEG_JSON_UNDECIDED;
        seg_json_member_t *m = push(j->top, j->n_top, j->top_cap);
        if (!m) return SEG_JSON_NOMEM;
        m->key = key.data();
        m->key_len = key.size();
        od::json_type t;
        if (v.type().get(t)) return SEG_JSON_UNDECIDED;
        walk_rc rc;
        if (t == od::json_type::object) {
            m->type = SEG_JSON_OBJECT;
            rc = walk_members(j, v, m);
        } else {
            rc = walk_value(v, 1, m);
        }
        if (rc == W_NOMEM) return SEG_JSON_NOMEM;
        if (rc != W_OK) return SEG_JSON_UNDECIDED;
    }
    /* Whatever follows the object (whitespace is not a token) makes the
     * record invalid: current_location() is OUT_OF_BOUNDS only at the end. */
    if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) return SEG_JSON_UNDECIDED;
    return SEG_JSON_OK;
}

} // namespace

extern "C" seg_json_t *seg_json_new(void)
{
    void *mem = std::malloc(sizeof(seg_json_t));
    if (!mem) return nullptr;
    return new (mem) seg_json_t();
}

extern "C" void seg_json_destroy(seg_json_t *j)
{
    if (!j) return;
    std::free(j->buf);
    std::free(j->top);
    std::free(j->nested);
    j->~seg_json_t();
    std::free(j);
}

extern "C" seg_json_result_t seg_json_parse_object(seg_json_t *j, const char *buf, size_t len,
                                                   seg_json_doc_t *doc)
{
    j->n_top = j->n_nested = 0;
    seg_json_result_t r = parse(j, buf, len);
    if (r != SEG_JSON_OK) {
        j->n_top = j->n_nested = 0;
        *doc = seg_json_doc_t{nullptr, 0, nullptr, 0};
        return r;
    }
    *doc = seg_json_doc_t{j->top, j->n_top, j->nested, j->n_nested};
    return SEG_JSON_OK;
}
