/*
 * seg_gsl: GSL's process-wide error policy, set once.
 *
 * GSL's default error handler calls abort() on any error, including a
 * special function that merely cannot reach its precision. segd is a
 * daemon: a numerical failure must become a return value (a prediction
 * without a value, a fit that reports why), never a crash. GSL keeps the
 * handler in one global, so every module that calls GSL calls
 * seg_gsl_init() first; it turns the handler off exactly once
 * (pthread_once), so concurrent engines never race on the global.
 */
#ifndef SEG_GSL_H
#define SEG_GSL_H

/* Turns GSL's abort-on-error handler off for the whole process. Cheap
 * after the first call; safe from any thread. */
void seg_gsl_init(void);

#endif
