/*
 * writequeue.c - the write queue of the stream and pipe transports (see
 * writequeue.h).
 */
#include "writequeue.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_SEGMENTS 8

/* Room for one more segment at the tail: slide the live ones down to the
 * start of the array, or grow it. */
static int
reserve_segment(pa_writequeue *q)
{
    if (q->head + q->count < q->cap) {
        return 0;
    }
    if (q->head > 0) {
        memmove(q->segs, q->segs + q->head, (size_t)q->count * sizeof(pa_wq_segment));
        q->head = 0;
        return 0;
    }
    Py_ssize_t cap = q->cap ? q->cap * 2 : INITIAL_SEGMENTS;
    if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(pa_wq_segment)) {
        PyErr_NoMemory();
        return -1;
    }
    pa_wq_segment *segs = realloc(q->segs, (size_t)cap * sizeof(pa_wq_segment));
    if (segs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    q->segs = segs;
    q->cap = cap;
    return 0;
}

static void
release_segment(pa_writequeue *q, pa_wq_segment *seg)
{
    if (seg->owner != NULL) {
        Py_DECREF(seg->owner); /* an exact bytes object: runs no Python code */
    } else if (seg->block != NULL) {
        if (q->spare == NULL && seg->len + seg->room + (seg->data - seg->block) == PA_WQ_BLOCK) {
            q->spare = seg->block;
        } else {
            free(seg->block);
        }
    }
}

/* Copy into the last segment's block if it has room, else into a new block
 * (the spare one when it is big enough). */
static int
push_copy(pa_writequeue *q, const char *data, Py_ssize_t len)
{
    if (q->count > 0) {
        pa_wq_segment *tail = &q->segs[q->head + q->count - 1];
        if (tail->owner == NULL && tail->room >= len) {
            memcpy((char *)tail->data + tail->len, data, (size_t)len);
            tail->len += len;
            tail->room -= len;
            q->size += len;
            return 0;
        }
    }
    if (reserve_segment(q) < 0) {
        return -1;
    }
    Py_ssize_t size = len > PA_WQ_BLOCK ? len : PA_WQ_BLOCK;
    char *block;
    if (size == PA_WQ_BLOCK && q->spare != NULL) {
        block = q->spare;
        q->spare = NULL;
    } else {
        block = malloc((size_t)size);
        if (block == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    memcpy(block, data, (size_t)len);
    q->segs[q->head + q->count] = (pa_wq_segment){
        .owner = NULL, .block = block, .data = block, .len = len, .room = size - len};
    q->count++;
    q->size += len;
    return 0;
}

int
pa_wq_push(pa_writequeue *q, PyObject *owner, const char *data, Py_ssize_t len)
{
    if (len <= 0) {
        return 0;
    }
    if (owner == NULL || len < PA_WQ_REF_MIN || !PyBytes_CheckExact(owner)) {
        return push_copy(q, data, len);
    }
    if (reserve_segment(q) < 0) {
        return -1;
    }
    q->segs[q->head + q->count] = (pa_wq_segment){
        .owner = Py_NewRef(owner), .block = NULL, .data = data, .len = len, .room = 0};
    q->count++;
    q->size += len;
    return 0;
}

int
pa_wq_iov(const pa_writequeue *q, struct iovec *iov, int max)
{
    int n = 0;
    for (Py_ssize_t i = 0; i < q->count && n < max; i++) {
        const pa_wq_segment *seg = &q->segs[q->head + i];
        iov[n].iov_base = (void *)seg->data;
        iov[n].iov_len = (size_t)seg->len;
        n++;
    }
    return n;
}

void
pa_wq_consume(pa_writequeue *q, Py_ssize_t n)
{
    q->size -= n;
    while (n > 0 && q->count > 0) {
        pa_wq_segment *seg = &q->segs[q->head];
        if (n < seg->len) {
            seg->data += n;
            seg->len -= n;
            return;
        }
        n -= seg->len;
        release_segment(q, seg);
        q->head++;
        q->count--;
    }
    if (q->count == 0) {
        q->head = 0;
    }
}

void
pa_wq_clear(pa_writequeue *q)
{
    for (Py_ssize_t i = 0; i < q->count; i++) {
        release_segment(q, &q->segs[q->head + i]);
    }
    q->head = q->count = 0;
    q->size = 0;
    free(q->segs);
    free(q->spare);
    q->segs = NULL;
    q->spare = NULL;
    q->cap = 0;
}
