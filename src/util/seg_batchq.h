/*
 * seg_batchq: hands batches from one producer thread to one consumer
 * thread, in order, through a ring of n batches.
 *
 * Why: replay decodes on one core and folds on the other (src/cmd/
 * seg_replay.c). Handing events over one by one would cost a
 * synchronisation per event; in batches of a few hundred it costs nothing
 * measurable, and a side that runs ahead sleeps on a condition variable
 * instead of spinning on a machine whose cores are shared.
 *
 * The queue owns no batch memory: it hands out indices 0..n-1. The
 * producer fills the batches in ring order and hands each over; the
 * consumer takes them in the same order and gives each back once done
 * with it. Whoever holds an index owns that batch; the mutex inside makes
 * everything written to a batch before it is handed over visible to the
 * thread that takes it.
 */
#ifndef SEG_BATCHQ_H
#define SEG_BATCHQ_H

typedef struct seg_batchq seg_batchq_t;

/* A queue of n >= 1 batches, all free. NULL on allocation failure. */
seg_batchq_t *seg_batchq_new(unsigned n);
/* NULL is a no-op. Only once neither thread uses the queue any more. */
void seg_batchq_destroy(seg_batchq_t *q);

/* Producer: waits for the next free batch and returns its index, or -1
 * once the queue is cancelled. */
int seg_batchq_get_free(seg_batchq_t *q);
/* Producer: hands batch i (the one get_free returned last) over. */
void seg_batchq_put_full(seg_batchq_t *q, int i);
/* Producer: no more batches will come. */
void seg_batchq_finish(seg_batchq_t *q);

/* Consumer: waits for the next full batch and returns its index, or -1
 * when the producer finished and every batch was taken, or once the queue
 * is cancelled. */
int seg_batchq_get_full(seg_batchq_t *q);
/* Consumer: the next full batch if one is ready now, else -1. */
int seg_batchq_try_full(seg_batchq_t *q);
/* Consumer: gives back the oldest batch it holds (batches are given back
 * in the order they were taken). */
void seg_batchq_put_free(seg_batchq_t *q, int i);

/* A consumer waiting for a batch is woken once `k` full batches wait
 * (1..n; 1, the default, wakes it for each). Before either side starts.
 * For a consumer that is the faster side, and whose batches need not
 * reach it promptly: replay's writer thread is woken once per half ring
 * instead of once per batch, which saved the fold thread a futex wake-up
 * per batch. finish and cancel wake it whatever k is. */
void seg_batchq_set_wake(seg_batchq_t *q, unsigned k);

/* Either side: stop. Every call waiting now or later returns -1. */
void seg_batchq_cancel(seg_batchq_t *q);

#endif
