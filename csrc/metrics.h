/*
 * metrics.h - what a loop has done, for pyasync.metrics().
 *
 * Counters are kept always: each is one increment on a path that already
 * does far more. Timing needs clock reads, so it is off until metrics() is
 * first asked for on the loop: from then on the loop adds up the time it
 * spends blocked in poll (only polls that may block are timed: a
 * zero-timeout poll is part of running) and times each callback and task
 * step, keeping the slowest ones above loop.slow_callback_duration.
 */
#ifndef PYASYNC_METRICS_H
#define PYASYNC_METRICS_H

#include <Python.h>
#include <stdint.h>

#define PA_SLOWEST_KEPT 5

typedef struct {
    uint64_t iterations;
    uint64_t callbacks;        /* handles run (callbacks, timers, I/O callbacks) */
    uint64_t task_steps;       /* steps and wakeups of tasks queued without a handle */
    uint64_t tasks_created;    /* pyasync tasks made for the loop */
    uint64_t tasks_finished;   /* ... that returned, raised or were cancelled */
    uint64_t timers_scheduled; /* call_at() and call_later(), asyncio.sleep() included */
    uint64_t timers_cancelled;
    uint64_t io_events;        /* readiness events the poller returned */
    uint64_t interest_changes; /* registrations the poller was asked to change (epoll_ctl) */

    char timing;               /* timing is on (metrics() was asked for) */
    double timing_since;       /* CLOCK_MONOTONIC when timing started */
    double poll_seconds;       /* time blocked in poll since then */
    uint64_t slow_callbacks;   /* callbacks and steps at or above the threshold */
    int nslowest;
    double slowest_seconds[PA_SLOWEST_KEPT]; /* longest first */
    PyObject *slowest_what[PA_SLOWEST_KEPT]; /* str: the handle or task, described */
} pa_loop_metrics;

/* Record one callback or task step (`entry`, from the ready queue) that
 * took `seconds` >= the loop's threshold. Never fails: a description that
 * cannot be made is replaced by the entry's type name. */
void pa_metrics_note_slow(PyObject *loop, PyObject *entry, double seconds);

/* loop._metrics(): the counters, the current sizes and the timing as a
 * dict; turns timing on. */
PyObject *pa_metrics_snapshot(PyObject *loop);

void pa_metrics_clear(pa_loop_metrics *m);
int pa_metrics_traverse(pa_loop_metrics *m, visitproc visit, void *arg);

#endif
