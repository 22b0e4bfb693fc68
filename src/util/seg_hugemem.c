/*
 * seg_hugemem: large state arrays advised for transparent huge pages.
 * Why and when: seg_hugemem.h.
 */
#include "util/seg_hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

static int policy_on;

void seg_hugemem_set(int on) { policy_on = on != 0; }

int seg_hugemem_on(void) { return policy_on; }

void *seg_hugemem_alloc(size_t n, size_t align)
{
    if (n == 0) n = 1;
    if (!policy_on || n < SEG_HUGEMEM_PAGE) {
        size_t a = align < sizeof(void *) ? sizeof(void *) : align;
        void *p = NULL;
        return posix_memalign(&p, a, n) == 0 ? p : NULL;
    }
    if (n > SIZE_MAX - SEG_HUGEMEM_PAGE) return NULL;
    size_t len = (n + SEG_HUGEMEM_PAGE - 1) & ~(SEG_HUGEMEM_PAGE - 1);
    void *p = NULL;
    if (posix_memalign(&p, SEG_HUGEMEM_PAGE, len) != 0) return NULL;
    (void)madvise(p, len, MADV_HUGEPAGE);
    return p;
}
