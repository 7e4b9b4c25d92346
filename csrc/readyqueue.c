/*
 * readyqueue.c - growth, shrinking and teardown of the ready ring buffer.
 */
#include "readyqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
pa_readyqueue_init(pa_readyqueue *q)
{
    q->items = calloc(PA_READYQUEUE_INITIAL, sizeof(PyObject *));
    if (q->items == NULL) {
        return -ENOMEM;
    }
    q->head = 0;
    q->count = 0;
    q->mask = PA_READYQUEUE_INITIAL - 1;
    return 0;
}

void
pa_readyqueue_fini(pa_readyqueue *q)
{
    pa_readyqueue_clear(q);
    free(q->items);
    q->items = NULL;
    q->mask = 0;
}

/* Move the entries to a new buffer of newcap (>= count) slots. */
static int
resize(pa_readyqueue *q, size_t newcap)
{
    size_t cap = q->mask + 1;
    PyObject **items = malloc(newcap * sizeof(PyObject *));
    if (items == NULL) {
        return -ENOMEM;
    }
    /* Unroll the ring so that the oldest entry lands at index 0. */
    size_t first = cap - q->head;
    if (first > q->count) {
        first = q->count;
    }
    memcpy(items, q->items + q->head, first * sizeof(PyObject *));
    memcpy(items + first, q->items, (q->count - first) * sizeof(PyObject *));
    memset(items + q->count, 0, (newcap - q->count) * sizeof(PyObject *));
    free(q->items);
    q->items = items;
    q->head = 0;
    q->mask = newcap - 1;
    return 0;
}

int
pa_readyqueue_grow(pa_readyqueue *q)
{
    size_t cap = q->mask + 1;
    size_t newcap = cap * 2;
    if (newcap < cap || newcap > SIZE_MAX / sizeof(PyObject *)) {
        return -ENOMEM;
    }
    return resize(q, newcap);
}

void
pa_readyqueue_shrink(pa_readyqueue *q)
{
    (void)resize(q, (q->mask + 1) / 2);
}

void
pa_readyqueue_clear(pa_readyqueue *q)
{
    while (q->count > 0) {
        PyObject *obj = pa_readyqueue_pop(q);
        Py_DECREF(obj);
    }
}
