/*
 * seg_test_rng: the one pseudo-random generator of the unit tests.
 *
 * Why: randomized tests must be reproducible run to run, and five tests
 * had each written their own copy of the same xorshift64. Each test keeps
 * its own state and seed, so its sequence is what it always was.
 */
#ifndef SEG_TEST_RNG_H
#define SEG_TEST_RNG_H

#include <stdint.h>

/* Marsaglia's xorshift64: advances *s (never 0) and returns it. */
static inline uint64_t seg_test_rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif
