/*
 * timerheap.h - binary min-heap of timers ordered by (when, seq).
 *
 * The sequence number breaks ties so that timers with the same deadline fire
 * in the order they were scheduled. Entries hold a strong reference to their
 * TimerHandle; the key is copied into the entry so that sifting never touches
 * the handle objects (fewer cache misses than comparing through pointers).
 * Cancelled timers stay in the heap until they reach the top or until the
 * loop compacts the heap (see loop.c). Pure C: returns 0 or -errno.
 *
 * The array doubles when full and is halved when less than a quarter full
 * (never below PA_TIMERHEAP_MIN_CAPACITY), so memory taken by a burst of
 * timers goes back once they are gone. The gap between the two thresholds
 * means a count that hovers around one size never resizes on every push and
 * pop: the copying stays O(1) amortised per operation.
 */
#ifndef PYASYNC_TIMERHEAP_H
#define PYASYNC_TIMERHEAP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    double when;
    uint64_t seq;
    PyObject *timer; /* strong reference to a TimerHandle */
} pa_timer_entry;

#define PA_TIMERHEAP_MIN_CAPACITY 64

typedef struct {
    pa_timer_entry *entries;
    size_t count;
    size_t capacity;
    uint64_t next_seq;
} pa_timerheap;

void pa_timerheap_init(pa_timerheap *h);
void pa_timerheap_fini(pa_timerheap *h);

/* Steals the reference to timer only on success. */
int pa_timerheap_push(pa_timerheap *h, double when, PyObject *timer);

static inline const pa_timer_entry *
pa_timerheap_top(const pa_timerheap *h)
{
    return h->count ? &h->entries[0] : NULL;
}

/* Remove the top entry; the caller owns the returned reference. Entry
 * pointers taken before the call (pa_timerheap_top) are invalid after it. */
PyObject *pa_timerheap_pop(pa_timerheap *h);

/* Keep only the entries for which keep(timer) is true, then restore the
 * heap order; entries dropped are handed to drop(timer), which owns them.
 * Returns 0, or -ENOMEM with the heap untouched. */
int pa_timerheap_filter(pa_timerheap *h, int (*keep)(PyObject *), void (*drop)(PyObject *));

#endif /* PYASYNC_TIMERHEAP_H */
