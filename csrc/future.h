/*
 * future.h - pyasync.Future, asyncio's Future in C.
 *
 * The first done-callback is stored inline (callback0/context0): most futures
 * have exactly one (the task awaiting them), so the common case allocates no
 * list. A future is "alive" once initialised (loop != NULL); every method
 * checks that, since a subclass may skip __init__.
 *
 * pyasync.Future is a subclass of asyncio's C Future (_asyncio.Future) that
 * uses the base's fields as its own (compat.h has the layout of each CPython
 * version), so isinstance(fut, asyncio.Future) holds and nothing is stored
 * twice. PA_FUTURE_HEAD is the layout Task extends (task.h puts its fields
 * after it, as _asyncio.Task does).
 */
#ifndef PYASYNC_FUTURE_H
#define PYASYNC_FUTURE_H

#include "state.h"

typedef enum {
    PA_FUT_PENDING,
    PA_FUT_CANCELLED,
    PA_FUT_FINISHED,
} pa_fut_state;

/* CPython's own Future fields (see compat.h): a Future adds nothing to its
 * base type _asyncio.Future. */
#define PA_FUTURE_HEAD PA_ASYNCIO_FUTURE_FIELDS

typedef struct {
    PA_FUTURE_HEAD
} FutureObject;

int pa_future_register_types(PyObject *module, pa_state *st);

static inline int
pa_future_check(pa_state *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, st->FutureType);
}

/* Initialise (or re-initialise) a future bound to loop (NULL: the current
 * event loop, like asyncio). -1 with an exception on error. */
int pa_future_init(pa_state *st, FutureObject *fut, PyObject *loop);

/* Future(loop=loop) without the Python call. */
PyObject *pa_future_new(pa_state *st, PyObject *loop);

/* The operations behind the methods, for the Task and the loop's fast paths.
 * All return -1 with an exception set on error. */
int pa_future_set_result(pa_state *st, FutureObject *fut, PyObject *result);
int pa_future_set_exception(pa_state *st, FutureObject *fut, PyObject *exc);
/* 1 if cancelled now, 0 if it was already done. */
int pa_future_cancel(pa_state *st, FutureObject *fut, PyObject *msg);
int pa_future_add_done_callback(pa_state *st, FutureObject *fut, PyObject *fn, PyObject *ctx);
/* add_done_callback(fn) with the current context, as from Python. */
int pa_future_add_done_callback_here(pa_state *st, FutureObject *fut, PyObject *fn);
/* The result, or NULL with the exception (or CancelledError) raised; marks
 * the exception as retrieved. */
PyObject *pa_future_result(pa_state *st, FutureObject *fut);
/* The CancelledError to raise for a cancelled future (new reference). */
PyObject *pa_future_make_cancelled_error(pa_state *st, FutureObject *fut);

/* The exception that throw(type[, value[, traceback]]) or throw(exc) of a
 * generator-like object raises (new reference), with CPython's checks. */
PyObject *pa_throw_args_to_exception(PyObject *const *args, Py_ssize_t nargs);

/* End an iterator's __next__ with `value` (StopIteration(value), or nothing
 * for None); the caller then returns NULL. */
void pa_raise_stop_iteration(PyObject *value);

/* What __next__ returns for an am_send() outcome `r` with its result `res`
 * (a new reference): res for PYGEN_NEXT; NULL with StopIteration(res)
 * raised for PYGEN_RETURN (res released); NULL for PYGEN_ERROR. */
PyObject *pa_iternext_from_send(PySendResult r, PyObject *res);

/* Parse cancel(msg=None) (Future's and Task's). */
int pa_parse_cancel_args(PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames,
                         PyObject **msg);

/* "<TypeName info...>" with info = repr_info(self), asyncio's repr. */
PyObject *pa_future_repr(PyObject *self, PyObject *repr_info);

/* Report an exception nobody retrieved (the Future's tp_finalize; Task's
 * calls it after its own report). */
void pa_future_finalize(FutureObject *fut);

/* Shared by Task's type slots. */
int pa_future_traverse(FutureObject *fut, visitproc visit, void *arg);
int pa_future_clear(FutureObject *fut);

/* RuntimeError("Future object is not initialized.") for a future whose
 * __init__ never ran: -1, else 0. */
int pa_future_ensure_alive(FutureObject *fut);

/* The await iterator (futureiter.c): a new one for `await fut`, the type's
 * creation at import, and the free list's teardown. */
PyObject *pa_future_iter_new(FutureObject *fut);
int pa_futureiter_register_type(PyObject *module, pa_state *st);
/* Free the await iterators parked in the free list (module teardown). */
void pa_futureiter_freelist_clear(pa_state *st);

#endif /* PYASYNC_FUTURE_H */
