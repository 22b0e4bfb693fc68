/*
 * seg_clock: the process's clock readings in one place. Durations (restore
 * and checkpoint times, deadlines of waits) use the monotonic clock, which
 * no NTP step moves; only wall-clock time mode and log timestamps read
 * the real-time clock.
 */
#ifndef SEG_CLOCK_H
#define SEG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds on clock clk (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, ...). */
static inline double seg_clock_s(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Milliseconds on clock clk. */
static inline int64_t seg_clock_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
