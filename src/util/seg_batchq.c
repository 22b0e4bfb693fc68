/*
 * seg_batchq: a bounded single-producer single-consumer ring of batch
 * indices (see seg_batchq.h for why).
 *
 * Three counters say everything: `filled` batches were handed over,
 * `taken` of them by the consumer, `freed` given back. Batch k (counting
 * from 0) is index k % n. The producer may fill batch `filled` while
 * filled - freed < n; the consumer may take batch `taken` while
 * taken < filled. Every change happens under the mutex, and a side that
 * cannot go on waits on its condition variable; a hand-over is two
 * mutex operations per batch.
 *
 * A producer that waits for a free batch is woken only once half the ring
 * is free, not for every batch given back: when it is the faster side it
 * then fills half a ring per wake-up instead of one batch, so the two
 * threads hand the CPU back and forth (and wait for the scheduler, on a
 * busy machine) a few times per ring instead of once per batch.
 */
#include "util/seg_batchq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct seg_batchq {
    pthread_mutex_t mu;
    pthread_cond_t  can_fill;    /* the producer waits for a free batch */
    pthread_cond_t  can_take;    /* the consumer waits for a full batch */
    unsigned        n;
    unsigned        wake;        /* full batches that wake a waiting consumer */
    uint64_t        filled, taken, freed;
    bool            finished, cancelled;
    bool            producer_waits, consumer_waits;
};

seg_batchq_t *seg_batchq_new(unsigned n)
{
    if (n == 0) return NULL;
    seg_batchq_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->n = n;
    q->wake = 1;
    if (pthread_mutex_init(&q->mu, NULL) != 0) goto fail_mu;
    if (pthread_cond_init(&q->can_fill, NULL) != 0) goto fail_fill;
    if (pthread_cond_init(&q->can_take, NULL) != 0) goto fail_take;
    return q;
fail_take:
    pthread_cond_destroy(&q->can_fill);
fail_fill:
    pthread_mutex_destroy(&q->mu);
fail_mu:
    free(q);
    return NULL;
}

void seg_batchq_destroy(seg_batchq_t *q)
{
    if (!q) return;
    pthread_cond_destroy(&q->can_take);
    pthread_cond_destroy(&q->can_fill);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

int seg_batchq_get_free(seg_batchq_t *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && q->filled - q->freed >= q->n) {
        q->producer_waits = true;
        pthread_cond_wait(&q->can_fill, &q->mu);
    }
    q->producer_waits = false;
    int i = q->cancelled ? -1 : (int)(q->filled % q->n);
    pthread_mutex_unlock(&q->mu);
    return i;
}

void seg_batchq_put_full(seg_batchq_t *q, int i)
{
    (void)i;    /* always batch `filled`: the ring order says which */
    pthread_mutex_lock(&q->mu);
    q->filled++;
    if (q->consumer_waits && q->filled - q->taken >= q->wake) pthread_cond_signal(&q->can_take);
    pthread_mutex_unlock(&q->mu);
}

void seg_batchq_set_wake(seg_batchq_t *q, unsigned k)
{
    q->wake = k < 1 ? 1 : k > q->n ? q->n : k;
}

void seg_batchq_finish(seg_batchq_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->finished = true;
    pthread_cond_signal(&q->can_take);
    pthread_mutex_unlock(&q->mu);
}

/* With the mutex held. */
static int take(seg_batchq_t *q)
{
    if (q->cancelled || q->taken == q->filled) return -1;
    return (int)(q->taken++ % q->n);
}

int seg_batchq_get_full(seg_batchq_t *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && !q->finished && q->taken == q->filled) {
        q->consumer_waits = true;
        pthread_cond_wait(&q->can_take, &q->mu);
    }
    q->consumer_waits = false;
    int i = take(q);
    pthread_mutex_unlock(&q->mu);
    return i;
}

int seg_batchq_try_full(seg_batchq_t *q)
{
    pthread_mutex_lock(&q->mu);
    int i = take(q);
    pthread_mutex_unlock(&q->mu);
    return i;
}

void seg_batchq_put_free(seg_batchq_t *q, int i)
{
    (void)i;    /* always batch `freed`: batches come back in order */
    pthread_mutex_lock(&q->mu);
    q->freed++;
    if (q->producer_waits && (q->filled - q->freed) * 2 <= q->n)
        pthread_cond_signal(&q->can_fill);
    pthread_mutex_unlock(&q->mu);
}

void seg_batchq_cancel(seg_batchq_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->cancelled = true;
    pthread_cond_broadcast(&q->can_fill);
    pthread_cond_broadcast(&q->can_take);
    pthread_mutex_unlock(&q->mu);
}
