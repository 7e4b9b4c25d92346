/*
 * readyqueue.h - FIFO of callbacks that are due to run now.
 *
 * A ring buffer of strong references whose capacity is a power of two; it
 * grows by doubling when full, so the steady state allocates nothing per
 * callback. It is halved when less than a quarter full, never below its
 * initial size, so the memory of a burst of callbacks goes back once they
 * have run; the gap between the two thresholds keeps a count that hovers
 * around one size from resizing on every push and pop (O(1) amortised).
 * Pure C: returns 0 or -errno.
 */
#ifndef PYASYNC_READYQUEUE_H
#define PYASYNC_READYQUEUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define PA_READYQUEUE_INITIAL 256 /* a power of two */

typedef struct {
    PyObject **items;
    size_t head;     /* index of the oldest entry */
    size_t count;    /* number of entries */
    size_t mask;     /* capacity - 1 */
} pa_readyqueue;

int pa_readyqueue_init(pa_readyqueue *q);
void pa_readyqueue_fini(pa_readyqueue *q);
int pa_readyqueue_grow(pa_readyqueue *q);
/* Halve the capacity (the count is below a quarter of it); keeps the larger
 * buffer if memory is short. */
void pa_readyqueue_shrink(pa_readyqueue *q);

/* Append; steals the reference to obj only on success. */
static inline int
pa_readyqueue_push(pa_readyqueue *q, PyObject *obj)
{
    if (q->count > q->mask) {
        int rc = pa_readyqueue_grow(q);
        if (rc < 0) {
            return rc;
        }
    }
    q->items[(q->head + q->count) & q->mask] = obj;
    q->count++;
    return 0;
}

/* Remove the oldest entry; the caller owns the returned reference. */
static inline PyObject *
pa_readyqueue_pop(pa_readyqueue *q)
{
    PyObject *obj = q->items[q->head];
    q->items[q->head] = NULL;
    q->head = (q->head + 1) & q->mask;
    q->count--;
    if (q->count < (q->mask + 1) / 4 && q->mask >= PA_READYQUEUE_INITIAL) {
        pa_readyqueue_shrink(q);
    }
    return obj;
}

static inline PyObject *
pa_readyqueue_peek_at(const pa_readyqueue *q, size_t i)
{
    return q->items[(q->head + i) & q->mask];
}

/* Drop every entry. Re-entrancy: each decref may run arbitrary code that
 * pushes new entries, so entries are popped one at a time. */
void pa_readyqueue_clear(pa_readyqueue *q);

#endif /* PYASYNC_READYQUEUE_H */
