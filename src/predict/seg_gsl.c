/*
 * seg_gsl: see seg_gsl.h.
 */
#include "predict/seg_gsl.h"

#include <gsl/gsl_errno.h>
#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void quiet(void)
{
    gsl_set_error_handler_off();
}

void seg_gsl_init(void)
{
    pthread_once(&once, quiet);
}
