/*
 * handle.h - Handle and TimerHandle, asyncio-compatible callback handles.
 *
 * One struct serves both types; `when` and `scheduled` are meaningful for
 * TimerHandle only. A handle owns its callback and arguments until it runs or
 * is cancelled; cancel() drops them at once so that a cancelled timer waiting
 * in the heap pins no user objects.
 */
#ifndef PYASYNC_HANDLE_H
#define PYASYNC_HANDLE_H

#include "state.h"

typedef struct {
    PyObject_HEAD
    PyObject *callback;         /* NULL once cancelled */
    PyObject *args;             /* tuple of two or more arguments, else NULL */
    PyObject *arg1;             /* the argument when there is exactly one (no tuple: most
                                 * callbacks take one, e.g. a future's done-callbacks) */
    PyObject *context;          /* contextvars.Context (or anything with .run); NULL stands
                                 * for a fresh empty one, created when first needed */
    PyObject *loop;
    PyObject *source_traceback; /* list of frame summaries in debug mode, else NULL */
    PyObject *repr;             /* repr kept at cancel time in debug mode */
    PyObject *weakreflist;
    double when;                /* TimerHandle: deadline on the loop's clock */
    char cancelled;
    char scheduled;             /* TimerHandle: sits in the loop's heap */
    char when_is_int;           /* TimerHandle: `when` was given as an int (asyncio keeps
                                 * the object given, so when() gives an int back) */
} HandleObject;

/* TimerHandle.when() as asyncio gives it: the int or float it was given. */
static inline PyObject *
pa_timer_when(HandleObject *h)
{
    return h->when_is_int ? PyLong_FromDouble(h->when) : PyFloat_FromDouble(h->when);
}

int pa_handle_register_types(PyObject *module, pa_state *st);

/* New handle with its arguments copied from an array; context NULL means a
 * copy of the current context, st->fresh_context a new empty one. Debug mode
 * records the creation stack. */
HandleObject *pa_handle_new(pa_state *st, PyTypeObject *type, PyObject *loop, PyObject *callback,
                            PyObject *const *args, Py_ssize_t nargs, PyObject *context,
                            int debug);

/* Free the objects parked in the free list (module teardown). */
void pa_handle_freelist_clear(pa_state *st);

/* Run the callback in its context. An exception goes to the loop's exception
 * handler; returns -1 only for what must stop the loop (SystemExit,
 * KeyboardInterrupt, or an error raised by the exception handler itself). */
int pa_handle_run(pa_state *st, HandleObject *h);

/* Report the raised exception as the failure of h's callback, through the
 * loop's exception handler (-1 if it must stop the loop instead). */
int pa_handle_report_error(pa_state *st, HandleObject *h);

/* Mark cancelled and drop the callback (no loop bookkeeping). */
int pa_handle_cancel_plain(pa_state *st, HandleObject *h, int debug);

/* The asyncio checks on a callback given to call_soon() and friends in
 * debug mode: TypeError for coroutines, coroutine functions and
 * non-callables. */
int pa_check_callback(pa_state *st, PyObject *callback, const char *method);

#endif /* PYASYNC_HANDLE_H */
