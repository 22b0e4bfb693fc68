/*
 * seg_rule_vpool: interned, reference-counted strings (the values of
 * computed rules and string attributes, stored per customer as 4-byte ids).
 */
#ifndef SEG_RULE_VPOOL_H
#define SEG_RULE_VPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct seg_vpool seg_vpool_t;

/* NULL on allocation failure. _destroy(NULL) is a no-op. */
seg_vpool_t *seg_vpool_new(void);
void seg_vpool_destroy(seg_vpool_t *p);

/* The id of s (len bytes, no NUL inside), with one more reference; 0 on
 * allocation failure. */
uint32_t seg_vpool_intern(seg_vpool_t *p, const char *s, uint32_t len);
/* One more / one fewer reference; the last release frees the string.
 * id 0 is ignored. */
void seg_vpool_retain(seg_vpool_t *p, uint32_t id);
void seg_vpool_release(seg_vpool_t *p, uint32_t id);
/* The string (NUL-terminated) of id, NULL for 0 or a free id. Valid until
 * its last release. */
const char *seg_vpool_get(const seg_vpool_t *p, uint32_t id, uint32_t *len);

uint32_t seg_vpool_count(const seg_vpool_t *p);
size_t seg_vpool_bytes(const seg_vpool_t *p);

#endif
