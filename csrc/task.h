/*
 * task.h - pyasync.Task, asyncio's Task in C.
 *
 * A Task is a Future (same layout, PA_FUTURE_HEAD first) that drives a
 * coroutine: each step sends into or throws into the coroutine, and what the
 * coroutine yields decides what happens next (wait on a future, yield to the
 * loop for one iteration, or fail with asyncio's RuntimeErrors).
 *
 * Fast path on a pyasync loop (outside debug mode): a step or a wakeup is
 * queued as the Task object itself in the ready queue, with what it needs in
 * `pending`/`pending_arg` - no Handle, no method object, no Python call. A
 * task waits on one of our futures by registering itself as the callback,
 * marked by st->wakeup_marker in place of a context. Anywhere else (another
 * loop, debug mode, a second pending step) a bound C callable is made for
 * that one use and scheduled through call_soon(), as CPython's Task does.
 */
#ifndef PYASYNC_TASK_H
#define PYASYNC_TASK_H

#include "future.h"

typedef struct {
    PA_FUTURE_HEAD
    PA_ASYNCIO_TASK_FIELDS   /* _asyncio.Task's own: coro, context, name, fut_waiter, flags */
    /* pyasync's additions; `name` stays NULL until asked for: "Task-<name_number>" */
    PyObject *registry_entry; /* our entry in asyncio's set of tasks, or NULL */
    PyObject *pending_arg;   /* PA_TASK_STEP: exception to throw in, or NULL;
                              * PA_TASK_WAKEUP: the future that completed */
    unsigned long long name_number;
    char pending;            /* what this task's ready-queue entry does */
    char context_shared;     /* `context` was given by the caller or handed out */
} TaskObject;

enum { PA_TASK_NONE = 0, PA_TASK_STEP = 1, PA_TASK_WAKEUP = 2 };

int pa_task_register_type(PyObject *module, pa_state *st);

/* pyasync's eager task factory type, in eagerfactory.c. */
int pa_eager_factory_register_type(PyObject *module, pa_state *st);

static inline int
pa_task_check(pa_state *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, st->TaskType);
}

/* Task(coro, loop=loop, name=name, context=context, eager_start=eager)
 * without the Python call (NULL name/context: the defaults; eager is ignored
 * before 3.12). */
PyObject *pa_task_new(pa_state *st, PyObject *coro, PyObject *loop, PyObject *name,
                      PyObject *context, int eager);

/* Run the step or wakeup a ready-queue entry stands for, in the task's
 * context. Errors go to the loop's exception handler; returns -1 only for
 * what must stop the loop (SystemExit, KeyboardInterrupt). */
int pa_task_run_pending(pa_state *st, TaskObject *task);

/* Forget a queued entry that will not run (the loop is closing). */
void pa_task_drop_pending(TaskObject *task);

/* Wake `task` because `fut` (which it waits on) is done: the done-callback
 * registered with st->wakeup_marker. */
int pa_task_schedule_wakeup(pa_state *st, TaskObject *task, PyObject *fut);

/* A bound C callable doing the task's wakeup(fut), for display and for loops
 * without the fast path. */
PyObject *pa_task_wakeup_callable(TaskObject *task);

/* task.cancel(msg): ask the task to cancel itself, and the future it waits
 * on. 1 if the request was made, 0 if the task is done, -1 on error. */
int pa_task_cancel(pa_state *st, TaskObject *task, PyObject *msg);

/* The task's context, for a caller that keeps it (made now if the task has
 * none yet): borrowed, NULL with an exception on failure. */
PyObject *pa_task_context_shared(TaskObject *task);

/* The Task type's methods and attributes (taskapi.c), for its slots. */
extern PyMethodDef pa_task_methods[];
extern PyGetSetDef pa_task_getset[];

#endif /* PYASYNC_TASK_H */
