/*
 * task.h - pyasync.Task, asyncio's Task in C.
 *
 * A Task is a Future (same layout, PA_FUTURE_HEAD first) that drives a
 * coroutine: each step sends into or throws into the coroutine, and what the
 * coroutine yields decides what happens next (wait on a future, yield to the
 * loop for one iteration, or fail with asyncio's RuntimeErrors).
 *
 * step_cb and wakeup_cb are C callables bound to the task, made once at
 * creation: scheduling a step or waiting on a future allocates no method
 * object, and on a pyasync loop no Python-level call_soon() runs.
 */
#ifndef PYASYNC_TASK_H
#define PYASYNC_TASK_H

#include "future.h"

typedef struct {
    PA_FUTURE_HEAD
    PyObject *coro;
    PyObject *context;
    PyObject *name;          /* NULL until asked for: "Task-<name_number>" */
    PyObject *fut_waiter;    /* the future this task waits on, or NULL */
    PyObject *step_cb;       /* bound C callable: step(exc=None) */
    PyObject *wakeup_cb;     /* bound C callable: wakeup(future) */
    unsigned long long name_number;
    Py_ssize_t num_cancels_requested;
    char must_cancel;
    char log_destroy_pending;
} TaskObject;

int pa_task_register_type(PyObject *module, pa_state *st);

#endif /* PYASYNC_TASK_H */
