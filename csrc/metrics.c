/*
 * metrics.c - the loop's counters and timing as pyasync.metrics() shows
 * them, and the record of the slowest callbacks (see metrics.h).
 */
#include "metrics.h"
#include "clock.h"
#include "loop.h"
#include "task.h"

#include <string.h>

#define DESCRIPTION_MAX 200

void
pa_metrics_clear(pa_loop_metrics *m)
{
    for (int i = 0; i < m->nslowest; i++) {
        Py_CLEAR(m->slowest_what[i]);
    }
    m->nslowest = 0;
}

int
pa_metrics_traverse(pa_loop_metrics *m, visitproc visit, void *arg)
{
    for (int i = 0; i < m->nslowest; i++) {
        Py_VISIT(m->slowest_what[i]);
    }
    return 0;
}

/* What a slow entry was, as a short str: a task's repr, or a handle as
 * asyncio's debug mode names it (the callback and where it was defined). */
static PyObject *
describe(pa_state *st, PyObject *entry)
{
    PyObject *text = pa_task_check(st, entry) ? PyObject_Repr(entry)
                                              : PyObject_CallOneArg(st->format_handle, entry);
    if (text != NULL && !PyUnicode_Check(text)) {
        Py_SETREF(text, PyObject_Str(text));
    }
    if (text != NULL && PyUnicode_GET_LENGTH(text) > DESCRIPTION_MAX) {
        Py_SETREF(text, PyUnicode_Substring(text, 0, DESCRIPTION_MAX));
    }
    if (text == NULL) {
        PyErr_Clear();
        text = PyUnicode_FromString(Py_TYPE(entry)->tp_name);
        PyErr_Clear();
    }
    return text;
}

void
pa_metrics_note_slow(PyObject *loop, PyObject *entry, double seconds)
{
    LoopObject *lp = (LoopObject *)loop;
    pa_loop_metrics *m = &lp->metrics;
    m->slow_callbacks++;
    int at = m->nslowest;
    while (at > 0 && m->slowest_seconds[at - 1] < seconds) {
        at--;
    }
    if (at >= PA_SLOWEST_KEPT) {
        return;
    }
    /* The description runs Python code: keep any exception of the caller. */
    PyObject *saved = pa_err_take();
    PyObject *what = describe(lp->state, entry);
    pa_err_restore(saved);
    if (what == NULL) {
        return;
    }
    if (m->nslowest == PA_SLOWEST_KEPT) {
        Py_CLEAR(m->slowest_what[PA_SLOWEST_KEPT - 1]);
        m->nslowest--;
    }
    memmove(&m->slowest_seconds[at + 1], &m->slowest_seconds[at],
            (size_t)(m->nslowest - at) * sizeof(double));
    memmove(&m->slowest_what[at + 1], &m->slowest_what[at],
            (size_t)(m->nslowest - at) * sizeof(PyObject *));
    m->slowest_seconds[at] = seconds;
    m->slowest_what[at] = what;
    m->nslowest++;
}

/* dict[key] = value, stealing `value` (NULL: making it failed). */
static int
set_new(PyObject *dict, const char *key, PyObject *value)
{
    int rc = value != NULL ? PyDict_SetItemString(dict, key, value) : -1;
    Py_XDECREF(value);
    return rc;
}

static int
set_u64(PyObject *dict, const char *key, uint64_t value)
{
    return set_new(dict, key, PyLong_FromUnsignedLongLong(value));
}

static int
set_double(PyObject *dict, const char *key, double value)
{
    return set_new(dict, key, PyFloat_FromDouble(value));
}

static uint64_t
watched_fds(LoopObject *lp)
{
    uint64_t n = 0;
    for (int fd = 0; fd < lp->io_capacity; fd++) {
        n += lp->io[fd].events != 0;
    }
    return n;
}

static PyObject *
slowest_list(pa_loop_metrics *m)
{
    PyObject *list = PyList_New(m->nslowest);
    for (int i = 0; list != NULL && i < m->nslowest; i++) {
        PyObject *pair = Py_BuildValue("(dO)", m->slowest_seconds[i], m->slowest_what[i]);
        if (pair == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, pair);
    }
    return list;
}

PyObject *
pa_metrics_snapshot(PyObject *loop)
{
    LoopObject *lp = (LoopObject *)loop;
    pa_loop_metrics *m = &lp->metrics;
    double now = pa_clock_now();
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    int timing = m->timing;
    double window = timing ? now - m->timing_since : 0.0;
    double busy = window > m->poll_seconds ? window - m->poll_seconds : 0.0;
    PyObject *slowest = slowest_list(m);
    if (slowest == NULL || set_u64(d, "iterations", m->iterations) < 0 ||
        set_u64(d, "callbacks", m->callbacks) < 0 || set_u64(d, "task_steps", m->task_steps) < 0 ||
        set_u64(d, "tasks_created", m->tasks_created) < 0 ||
        set_u64(d, "tasks_finished", m->tasks_finished) < 0 ||
        set_u64(d, "timers_scheduled", m->timers_scheduled) < 0 ||
        set_u64(d, "timers_cancelled", m->timers_cancelled) < 0 ||
        set_u64(d, "io_events", m->io_events) < 0 ||
        set_u64(d, "interest_changes", m->interest_changes) < 0 ||
        set_u64(d, "ready", lp->ready.count) < 0 ||
        set_u64(d, "timers", (uint64_t)lp->timers.count - (uint64_t)lp->timer_cancelled_count) < 0 ||
        set_u64(d, "fds", watched_fds(lp)) < 0 ||
        PyDict_SetItemString(d, "timing", timing ? Py_True : Py_False) < 0 ||
        set_double(d, "seconds", window) < 0 || set_double(d, "seconds_in_poll", m->poll_seconds) < 0 ||
        set_double(d, "seconds_running", busy) < 0 ||
        set_double(d, "utilisation", window > 0 ? busy / window : 0.0) < 0 ||
        set_double(d, "slow_callback_duration", lp->slow_callback_duration) < 0 ||
        set_u64(d, "slow_callbacks", m->slow_callbacks) < 0 ||
        PyDict_SetItemString(d, "slowest", slowest) < 0) {
        Py_XDECREF(slowest);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(slowest);
    if (!timing) {
        m->timing = 1;
        m->timing_since = now;
    }
    return d;
}
