/*
 * timerheap.c - the timer heap (see timerheap.h for the invariants).
 */
#include "timerheap.h"

#include <errno.h>
#include <stdlib.h>

static inline int
entry_less(const pa_timer_entry *a, const pa_timer_entry *b)
{
    if (a->when != b->when) {
        return a->when < b->when;
    }
    return a->seq < b->seq;
}

static void
sift_up(pa_timer_entry *e, size_t i)
{
    pa_timer_entry item = e[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(&item, &e[parent])) {
            break;
        }
        e[i] = e[parent];
        i = parent;
    }
    e[i] = item;
}

static void
sift_down(pa_timer_entry *e, size_t n, size_t i)
{
    pa_timer_entry item = e[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && entry_less(&e[child + 1], &e[child])) {
            child++;
        }
        if (!entry_less(&e[child], &item)) {
            break;
        }
        e[i] = e[child];
        i = child;
    }
    e[i] = item;
}

void
pa_timerheap_init(pa_timerheap *h)
{
    h->entries = NULL;
    h->count = 0;
    h->capacity = 0;
    h->next_seq = 0;
}

void
pa_timerheap_fini(pa_timerheap *h)
{
    /* Pop one at a time: a decref may run code that touches the heap. */
    while (h->count > 0) {
        PyObject *timer = h->entries[--h->count].timer;
        Py_DECREF(timer);
    }
    free(h->entries);
    h->entries = NULL;
    h->capacity = 0;
}

/* Halve the array while it is less than a quarter full (see timerheap.h).
 * A failed realloc keeps the larger array: giving memory back is optional. */
static void
shrink_if_sparse(pa_timerheap *h)
{
    size_t newcap = h->capacity;
    while (newcap > PA_TIMERHEAP_MIN_CAPACITY && h->count < newcap / 4) {
        newcap /= 2;
    }
    if (newcap == h->capacity) {
        return;
    }
    pa_timer_entry *entries = realloc(h->entries, newcap * sizeof(pa_timer_entry));
    if (entries != NULL) {
        h->entries = entries;
        h->capacity = newcap;
    }
}

int
pa_timerheap_push(pa_timerheap *h, double when, PyObject *timer)
{
    if (h->count == h->capacity) {
        size_t newcap = h->capacity ? h->capacity * 2 : PA_TIMERHEAP_MIN_CAPACITY;
        if (newcap > SIZE_MAX / sizeof(pa_timer_entry)) {
            return -ENOMEM;
        }
        pa_timer_entry *entries = realloc(h->entries, newcap * sizeof(pa_timer_entry));
        if (entries == NULL) {
            return -ENOMEM;
        }
        h->entries = entries;
        h->capacity = newcap;
    }
    pa_timer_entry *e = &h->entries[h->count];
    e->when = when;
    e->seq = h->next_seq++;
    e->timer = timer;
    sift_up(h->entries, h->count);
    h->count++;
    return 0;
}

/* Bottom-up removal of the top: the hole at the root sinks to a leaf along
 * the smaller children (one comparison per level), then the last entry fills
 * it and sifts up, which rarely climbs more than a level or two. About half
 * the comparisons of the textbook sift-down. */
PyObject *
pa_timerheap_pop(pa_timerheap *h)
{
    pa_timer_entry *e = h->entries;
    PyObject *timer = e[0].timer;
    size_t n = --h->count;
    if (n > 0) {
        size_t hole = 0;
        for (;;) {
            size_t child = 2 * hole + 1;
            if (child >= n) {
                break;
            }
            if (child + 1 < n && entry_less(&e[child + 1], &e[child])) {
                child++;
            }
            e[hole] = e[child];
            hole = child;
        }
        e[hole] = e[n];
        sift_up(e, hole);
    }
    if (n < h->capacity / 4 && h->capacity > PA_TIMERHEAP_MIN_CAPACITY) {
        shrink_if_sparse(h);
    }
    return timer;
}

int
pa_timerheap_filter(pa_timerheap *h, int (*keep)(PyObject *), void (*drop)(PyObject *))
{
    size_t n = h->count;
    if (n == 0) {
        return 0;
    }
    /* Dropped timers are collected first and handed to drop() only once the
     * heap is consistent again: drop() may run arbitrary code (a decref) that
     * schedules new timers. */
    PyObject **dropped = malloc(n * sizeof(PyObject *));
    if (dropped == NULL) {
        return -ENOMEM;
    }
    size_t kept = 0, ndropped = 0;
    pa_timer_entry *e = h->entries;
    for (size_t i = 0; i < n; i++) {
        if (keep(e[i].timer)) {
            e[kept++] = e[i];
        } else {
            dropped[ndropped++] = e[i].timer;
        }
    }
    h->count = kept;
    for (size_t i = kept / 2; i-- > 0;) {
        sift_down(e, kept, i);
    }
    shrink_if_sparse(h);
    for (size_t i = 0; i < ndropped; i++) {
        drop(dropped[i]);
    }
    free(dropped);
    return 0;
}
