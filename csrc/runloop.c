/*
 * runloop.c - one iteration of the event loop (pa_loop_run_once), which
 * reads top to bottom as the loop's phases:
 *   1. drop cancelled timers (compact the heap when most are cancelled);
 *   2. compute the poll timeout (0 if callbacks are ready or we are stopping,
 *      else until the earliest timer, else forever; a loop of virtual time
 *      decides here whether its clock may jump, see virtualclock.h);
 *   3. poll with the GIL released; EINTR runs the Python handlers of
 *      signals;
 *   4. queue the handles of the fds that fired, drain the self-pipe;
 *   5. queue the timers that are due;
 *   6. run exactly the callbacks that were queued when this phase began
 *      (callbacks they schedule wait for the next iteration, as in asyncio);
 *   7. run the Python handlers of signals that arrived while callbacks ran
 *      C code, so that what they do counts when phase 2 comes round again.
 */
#include "loop.h"
#include "clock.h"
#include "handle.h"
#include "task.h"

#include <math.h>

/* asyncio's limits: no poll longer than a day, compaction thresholds. */
#define MAXIMUM_POLL_TIMEOUT (24.0 * 3600.0)
#define MIN_SCHEDULED_TIMERS 100
#define MIN_CANCELLED_FRACTION 0.5

static int
timer_is_live(PyObject *timer)
{
    return !((HandleObject *)timer)->cancelled;
}

void
pa_loop_timer_unschedule(PyObject *timer)
{
    ((HandleObject *)timer)->scheduled = 0;
    Py_DECREF(timer);
}

/* Phase 1. */
static int
drop_cancelled_timers(LoopObject *self)
{
    pa_timerheap *heap = &self->timers;
    if (heap->count > MIN_SCHEDULED_TIMERS &&
        (double)self->timer_cancelled_count / (double)heap->count > MIN_CANCELLED_FRACTION) {
        if (pa_timerheap_filter(heap, timer_is_live, pa_loop_timer_unschedule) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        self->timer_cancelled_count = 0;
        return 0;
    }
    const pa_timer_entry *top;
    while ((top = pa_timerheap_top(heap)) != NULL && ((HandleObject *)top->timer)->cancelled) {
        self->timer_cancelled_count--;
        pa_loop_timer_unschedule(pa_timerheap_pop(heap));
    }
    return 0;
}

static int
timeout_of(double seconds)
{
    if (seconds > MAXIMUM_POLL_TIMEOUT) {
        seconds = MAXIMUM_POLL_TIMEOUT;
    }
    return (int)ceil(seconds * 1e3);
}

/* A virtual clock's poll (see virtualclock.h): the next timer is `delay`
 * virtual seconds away, at `when`. */
static void
virtual_poll_timeout(LoopObject *self, double when, double delay, int *timeout_ms)
{
    pa_virtual_clock *vc = &self->vclock;
    if (vc->threads_busy > 0) {
        vc->pending = PA_VCLOCK_FOLLOW_REAL;
        vc->target = delay;
        vc->poll_started = pa_clock_now();
        *timeout_ms = timeout_of(delay);
    } else if (when <= vc->jump_limit) {
        vc->pending = PA_VCLOCK_JUMP;
        vc->target = when;
        *timeout_ms = vc->threshold > 0 ? timeout_of(vc->threshold) : 0;
    } else {
        /* Manual mode, nothing to advance to: time stands still until
         * advance() moves the limit, I/O comes or another thread calls. */
        *timeout_ms = -1;
    }
}

/* After the poll: move the virtual clock as virtual_poll_timeout() decided,
 * given the number of events the poll returned. */
static void
virtual_clock_after_poll(LoopObject *self, int nevents)
{
    pa_virtual_clock *vc = &self->vclock;
    if (vc->pending == PA_VCLOCK_JUMP) {
        if (nevents == 0 && self->ready.count == 0 && vc->target > vc->now) {
            vc->now = vc->target;
        }
    } else if (vc->pending == PA_VCLOCK_FOLLOW_REAL) {
        /* The real time that passed, but no further than the timer. A poll
         * that timed out waited for the whole (rounded up) timeout; one cut
         * short by a signal did not, and moves the clock only as far. */
        double passed = pa_clock_now() - vc->poll_started;
        if (passed > vc->target || (nevents == 0 && passed >= vc->target - 1e-3)) {
            passed = vc->target;
        }
        vc->now += passed;
    }
    vc->pending = PA_VCLOCK_NONE;
}

/* Phase 2: milliseconds to block, rounded up so that we never wake before a
 * deadline and spin; -1 blocks. 0, or -1 with an exception (from an
 * overridden time()). */
static int
poll_timeout_ms(LoopObject *self, int *timeout_ms)
{
    *timeout_ms = 0;
    if (self->ready.count > 0 || self->stopping) {
        return 0;
    }
    if (pa_timerheap_top(&self->timers) == NULL) {
        *timeout_ms = -1;
        return 0;
    }
    double now;
    if (pa_loop_now(self, &now) < 0) {
        return -1;
    }
    /* An overridden time() is Python code: a signal handler may have run in
     * it and stopped the loop or queued work, and the heap may have
     * changed. Look again. */
    if (self->ready.count > 0 || self->stopping) {
        return 0;
    }
    const pa_timer_entry *top = pa_timerheap_top(&self->timers);
    if (top == NULL) {
        *timeout_ms = -1;
        return 0;
    }
    double delay = top->when - now;
    if (delay <= 0) {
        return 0;
    }
    if (self->vclock.on) {
        virtual_poll_timeout(self, top->when, delay, timeout_ms);
        return 0;
    }
    *timeout_ms = timeout_of(delay);
    return 0;
}

/* Phase 3. Returns the number of events, or -1 with an exception set. */
static int
poll_events(LoopObject *self, int timeout_ms)
{
    /* A loop inherited through fork() gets a poller of this process's own
     * before it polls (afterfork.c). */
    if (pa_loop_own_kernel_state(self) < 0 ||
        (self->unwatched_count > 0 && pa_loop_withdraw_unwatched(self) < 0)) {
        return -1;
    }
    int n;
    /* Only a poll that may block is timed (see metrics.h). */
    double blocked_since = self->metrics.timing && timeout_ms != 0 ? pa_clock_now() : 0.0;
    Py_BEGIN_ALLOW_THREADS
    n = self->poller_ops->wait(self->poller, self->events, PA_EVENTS_PER_POLL, timeout_ms);
    Py_END_ALLOW_THREADS
    if (blocked_since != 0.0) {
        self->metrics.poll_seconds += pa_clock_now() - blocked_since;
    }
    if (n >= 0) {
        self->metrics.io_events += (uint64_t)n;
        return n;
    }
    if (n == -EINTR) {
        /* A signal arrived: run its Python handler now (KeyboardInterrupt
         * comes out of here); the next iteration polls again. */
        return PyErr_CheckSignals() < 0 ? -1 : 0;
    }
    errno = -n;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Phase 5. */
static int
queue_due_timers(LoopObject *self)
{
    /* No timer: nothing to queue, and reading our own clock would only
     * cost time. An overridden time() is still called, as asyncio calls it
     * on every iteration (Python code may count on that). */
    if (pa_timerheap_top(&self->timers) == NULL && pa_loop_clock_is_ours(self)) {
        return 0;
    }
    double now;
    if (pa_loop_now(self, &now) < 0) {
        return -1;
    }
    double end_time = now + self->clock_resolution;
    const pa_timer_entry *top;
    while ((top = pa_timerheap_top(&self->timers)) != NULL && top->when < end_time) {
        PyObject *timer = pa_timerheap_pop(&self->timers);
        HandleObject *h = (HandleObject *)timer;
        h->scheduled = 0;
        if (h->cancelled) {
            self->timer_cancelled_count--;
            Py_DECREF(timer);
            continue;
        }
        if (pa_readyqueue_push(&self->ready, timer) < 0) {
            Py_DECREF(timer);
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static int
warn_slow_callback(LoopObject *self, PyObject *handle, double seconds)
{
    pa_state *st = self->state;
    PyObject *desc = PyObject_CallOneArg(st->format_handle, handle);
    if (desc == NULL) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(st->logger, "warning", "sOd",
                                        "Executing %s took %.3f seconds", desc, seconds);
    Py_DECREF(desc);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static int
run_handle_debug(LoopObject *self, HandleObject *h)
{
    double t0 = 0.0, t1 = 0.0;
    self->current_handle = (PyObject *)h;
    if (pa_loop_now(self, &t0) < 0) {
        self->current_handle = NULL;
        return -1;
    }
    int rc = pa_handle_run(self->state, h);
    if (rc == 0) {
        rc = pa_loop_now(self, &t1);
    }
    self->current_handle = NULL;
    if (rc == 0 && t1 - t0 >= self->slow_callback_duration) {
        rc = warn_slow_callback(self, (PyObject *)h, t1 - t0);
    }
    return rc;
}

/* Phase 6. On error the callbacks not yet run stay queued, as in asyncio. */
static int
run_ready(LoopObject *self)
{
    pa_state *st = self->state;
    size_t ntodo = self->ready.count;
    for (size_t i = 0; i < ntodo && self->ready.count > 0; i++) {
        PyObject *entry = pa_readyqueue_pop(&self->ready);
        int rc = 0;
        double started = self->metrics.timing ? pa_clock_now() : 0.0;
        PyTypeObject *type = Py_TYPE(entry);
        if (type != st->HandleType && type != st->TimerHandleType && pa_task_check(st, entry)) {
            /* A task step or wakeup queued without a handle. */
            self->metrics.task_steps++;
            rc = pa_task_run_pending(st, (TaskObject *)entry);
        } else {
            HandleObject *h = (HandleObject *)entry;
            if (!h->cancelled) {
                self->metrics.callbacks++;
                rc = self->debug ? run_handle_debug(self, h) : pa_handle_run(st, h);
            }
        }
        if (started != 0.0) {
            double took = pa_clock_now() - started;
            if (took >= self->slow_callback_duration) {
                pa_metrics_note_slow((PyObject *)self, entry, took);
            }
        }
        Py_DECREF(entry);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

int
pa_loop_run_once(LoopObject *self)
{
    self->metrics.iterations++;
    if (drop_cancelled_timers(self) < 0) {
        return -1;
    }
    int timeout_ms;
    if (poll_timeout_ms(self, &timeout_ms) < 0) {
        return -1;
    }
    int n = poll_events(self, timeout_ms);
    if (self->vclock.pending != PA_VCLOCK_NONE) {
        virtual_clock_after_poll(self, n < 0 ? 1 : n);
    }
    if (n < 0) {
        return -1;
    }
    if (pa_loop_dispatch_io(self, self->events, n) < 0) {
        return -1;
    }
    if (queue_due_timers(self) < 0) {
        return -1;
    }
    if (run_ready(self) < 0) {
        return -1;
    }
    /* A signal that arrived while callbacks ran C code (no bytecode ran
     * after it) has not had its Python handler run yet, and poll would not
     * be interrupted for it. Run the handlers now, before run_forever()
     * looks at `stopping` and before the next timeout is computed: a
     * handler that calls stop(), or call_soon_threadsafe() (which does not
     * write to the self-pipe from the loop's own thread), must not leave
     * the loop blocked in poll. Cheap when no signal is pending. */
    return PyErr_CheckSignals();
}

