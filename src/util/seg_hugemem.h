/*
 * seg_hugemem: the customer state's large arrays in memory the kernel may
 * back with transparent huge pages (2 MiB) instead of 4 KiB pages.
 *
 * Why: at 10M customers each event touches an index slot, a record and a
 * window block scattered over ~1.1 GB. With 4 KiB pages every one of them
 * is also a TLB miss, and on some hosts (a Zen 2 KVM guest, where a miss
 * walks the guest's and the host's page tables) the walk stalls the
 * read-ahead's prefetch instructions themselves: perf put 21% of a 10M
 * replay's samples on them (docs/benchmarks.md). 2 MiB pages cover the
 * state with a few hundred TLB entries.
 *
 * It is a process-wide policy, off unless turned on, and read when a
 * store or window pool is created, so set it before creating any. segd
 * replay turns it on; segd run leaves it off unless configured, because
 * its checkpoint child shares the state copy-on-write: a write during a
 * checkpoint splits the huge page it lands in (Linux >= 5.8; older
 * kernels copy all 2 MiB), so the gain fades after the first checkpoint
 * under load (docs/configuration.md, state.huge_pages). The kernel
 * decides in the end: with transparent_hugepage "never" the advice does
 * nothing, and the memory is the same either way.
 */
#ifndef SEG_HUGEMEM_H
#define SEG_HUGEMEM_H

#include <stddef.h>

#define SEG_HUGEMEM_PAGE ((size_t)2 << 20)

/* Turns the policy on (1) or off (0). Not thread-safe: call it at start. */
void seg_hugemem_set(int on);
int seg_hugemem_on(void);

/* n bytes aligned to `align` (a power of two, at least sizeof(void *)),
 * to be released with free(). With the policy on and n >= 2 MiB the
 * block is aligned to 2 MiB, rounded up to whole 2 MiB pages and advised
 * MADV_HUGEPAGE. NULL on allocation failure; a refused advice is not a
 * failure (the memory is then plain pages). */
void *seg_hugemem_alloc(size_t n, size_t align);

#endif
