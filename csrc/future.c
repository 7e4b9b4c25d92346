/*
 * future.c - pyasync.Future (its await iterator is in futureiter.c).
 *
 * Semantics are asyncio.Future's (the C one CPython ships as
 * _asyncio.Future): states PENDING -> CANCELLED | FINISHED, done-callbacks
 * scheduled through the loop with their contexts, "exception was never
 * retrieved" reported through the loop's exception handler when an unread
 * exception dies with the future.
 *
 * Fast path: when the future belongs to a pyasync loop (and debug mode is
 * off), done-callbacks are queued as handles directly, without a Python-level
 * call_soon(). Any other loop gets loop.call_soon(callback, future,
 * context=ctx), as asyncio does.
 */
#include "future.h"
#include "handle.h"
#include "loop.h"
#include "task.h"

#include <structmember.h>

/* ---------------------------------------------------------------- helpers */

static inline int
is_alive(FutureObject *fut)
{
    return fut->loop != NULL;
}

int
pa_future_ensure_alive(FutureObject *fut)
{
    if (!is_alive(fut)) {
        PyErr_SetString(PyExc_RuntimeError, "Future object is not initialized.");
        return -1;
    }
    return 0;
}

/* Schedule callback(fut) on the future's loop in context ctx; a task that
 * registered itself (ctx is the wakeup marker) is woken instead. */
static int
schedule_callback(pa_state *st, FutureObject *fut, PyObject *callback, PyObject *ctx)
{
    if (ctx == st->wakeup_marker) {
        return pa_task_schedule_wakeup(st, (TaskObject *)callback, (PyObject *)fut);
    }
    PyObject *arg = (PyObject *)fut;
    return pa_call_soon(st, fut->loop, callback, &arg, 1, ctx);
}

/* What _callbacks shows for one registration: a task's own registration is
 * shown as its bound wakeup callable and its context, as in asyncio. */
static PyObject *
callback_pair(pa_state *st, PyObject *callback, PyObject *ctx)
{
    if (ctx == st->fresh_context) {
        PyObject *fresh = PyContext_New();
        PyObject *pair = fresh ? PyTuple_Pack(2, callback, fresh) : NULL;
        Py_XDECREF(fresh);
        return pair;
    }
    if (ctx != st->wakeup_marker) {
        return PyTuple_Pack(2, callback, ctx);
    }
    PyObject *task_ctx = PyObject_CallMethod(callback, "get_context", NULL);
    PyObject *wakeup = task_ctx ? pa_task_wakeup_callable((TaskObject *)callback) : NULL;
    PyObject *pair = wakeup ? PyTuple_Pack(2, wakeup, task_ctx) : NULL;
    Py_XDECREF(wakeup);
    Py_XDECREF(task_ctx);
    return pair;
}

/* Hand every done-callback to the loop. The callbacks are moved out of the
 * future first: scheduling may run code that adds new ones. On error the
 * rest are dropped, as asyncio does. */
static int
schedule_callbacks(pa_state *st, FutureObject *fut)
{
    PyObject *cb0 = fut->callback0, *ctx0 = fut->context0, *list = fut->callbacks;
    fut->callback0 = NULL;
    fut->context0 = NULL;
    fut->callbacks = NULL;
    int rc = 0;
    if (cb0 != NULL) {
        rc = schedule_callback(st, fut, cb0, ctx0);
    }
    if (rc == 0 && list != NULL) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
            PyObject *pair = PyList_GET_ITEM(list, i); /* borrowed; list is ours */
            if (schedule_callback(st, fut, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) <
                0) {
                rc = -1;
                break;
            }
        }
    }
    Py_XDECREF(cb0);
    Py_XDECREF(ctx0);
    Py_XDECREF(list);
    return rc;
}

static PyObject *
raise_invalid_state(pa_state *st, const char *msg)
{
    PyErr_SetString(st->InvalidStateError, msg);
    return NULL;
}

/* ---------------------------------------------------------------- operations */

int
pa_future_init(pa_state *st, FutureObject *fut, PyObject *loop)
{
    (void)pa_future_clear(fut);
    fut->state = PA_FUT_PENDING;
    fut->log_tb = 0;
    fut->blocking = 0;
    if (loop == NULL || loop == Py_None) {
        loop = PyObject_CallNoArgs(st->get_event_loop);
        if (loop == NULL) {
            return -1;
        }
    } else {
        Py_INCREF(loop);
    }
    fut->loop = loop;
    int debug = pa_loop_get_debug(st, loop);
    if (debug < 0) {
        return -1;
    }
    if (debug && !pa_is_finalizing()) {
        PyFrameObject *frame = PyEval_GetFrame(); /* borrowed */
        fut->source_tb = frame ? PyObject_CallOneArg(st->extract_stack, (PyObject *)frame)
                               : PyList_New(0);
        if (fut->source_tb == NULL) {
            return -1;
        }
    }
    return 0;
}

int
pa_future_set_result(pa_state *st, FutureObject *fut, PyObject *result)
{
    if (pa_future_ensure_alive(fut) < 0) {
        return -1;
    }
    if (fut->state != PA_FUT_PENDING) {
        raise_invalid_state(st, "invalid state");
        return -1;
    }
    Py_XSETREF(fut->result, Py_NewRef(result));
    fut->state = PA_FUT_FINISHED;
    return schedule_callbacks(st, fut);
}

int
pa_future_set_exception(pa_state *st, FutureObject *fut, PyObject *exc)
{
    if (pa_future_ensure_alive(fut) < 0) {
        return -1;
    }
    if (fut->state != PA_FUT_PENDING) {
        raise_invalid_state(st, "invalid state");
        return -1;
    }
    PyObject *value;
    if (PyExceptionClass_Check(exc)) {
        value = PyObject_CallNoArgs(exc);
        if (value == NULL) {
            return -1;
        }
        if (fut->state != PA_FUT_PENDING) { /* the constructor may have run anything */
            Py_DECREF(value);
            raise_invalid_state(st, "invalid state");
            return -1;
        }
    } else {
        value = Py_NewRef(exc);
    }
    if (!PyExceptionInstance_Check(value)) {
        Py_DECREF(value);
        PyErr_SetString(PyExc_TypeError, "invalid exception object");
        return -1;
    }
    if (PyErr_GivenExceptionMatches(value, PyExc_StopIteration)) {
#if PA_FUTURE_WRAPS_STOPITERATION
        PyObject *wrapped = PyObject_CallFunction(
            PyExc_RuntimeError, "s",
            "StopIteration interacts badly with generators and cannot be raised into a Future");
        if (wrapped == NULL) {
            Py_DECREF(value);
            return -1;
        }
        PyException_SetCause(wrapped, Py_NewRef(value));
        PyException_SetContext(wrapped, value); /* steals value */
        value = wrapped;
#else
        Py_DECREF(value);
        PyErr_SetString(PyExc_TypeError, "StopIteration interacts badly with generators and "
                                         "cannot be raised into a Future");
        return -1;
#endif
    }
    Py_XSETREF(fut->exception, value);
    Py_XSETREF(fut->exception_tb, PyException_GetTraceback(value));
    fut->state = PA_FUT_FINISHED;
    if (schedule_callbacks(st, fut) < 0) {
        return -1;
    }
    fut->log_tb = 1;
    return 0;
}

int
pa_future_cancel(pa_state *st, FutureObject *fut, PyObject *msg)
{
    if (pa_future_ensure_alive(fut) < 0) {
        return -1;
    }
    fut->log_tb = 0;
    if (fut->state != PA_FUT_PENDING) {
        return 0;
    }
    fut->state = PA_FUT_CANCELLED;
    Py_XSETREF(fut->cancel_msg, Py_XNewRef(msg == Py_None ? NULL : msg));
    return schedule_callbacks(st, fut) < 0 ? -1 : 1;
}

int
pa_future_add_done_callback(pa_state *st, FutureObject *fut, PyObject *fn, PyObject *ctx)
{
    if (!is_alive(fut)) {
        PyErr_SetString(PyExc_RuntimeError, "uninitialized Future object");
        return -1;
    }
    if (fut->state != PA_FUT_PENDING) {
        return schedule_callback(st, fut, fn, ctx);
    }
    if (fut->callback0 == NULL && fut->callbacks == NULL) {
        fut->callback0 = Py_NewRef(fn);
        fut->context0 = Py_NewRef(ctx);
        return 0;
    }
    PyObject *pair = PyTuple_Pack(2, fn, ctx);
    if (pair == NULL) {
        return -1;
    }
    if (fut->callbacks == NULL) {
        fut->callbacks = PyList_New(0);
        if (fut->callbacks == NULL) {
            Py_DECREF(pair);
            return -1;
        }
    }
    int rc = PyList_Append(fut->callbacks, pair);
    Py_DECREF(pair);
    return rc;
}

int
pa_future_add_done_callback_here(pa_state *st, FutureObject *fut, PyObject *fn)
{
    /* A copy of an empty context is kept as the fresh-context marker: the
     * context is made when the callback runs (see handle.c). */
    PyObject *copy = PyContext_CopyCurrent();
    Py_ssize_t size = copy ? PyObject_Length(copy) : -1;
    if (size < 0) {
        Py_XDECREF(copy);
        return -1;
    }
    int rc = pa_future_add_done_callback(st, fut, fn, size ? copy : st->fresh_context);
    Py_DECREF(copy);
    return rc;
}

PyObject *
pa_future_make_cancelled_error(pa_state *st, FutureObject *fut)
{
    if (fut->cancelled_exc != NULL) {
        PyObject *exc = fut->cancelled_exc; /* ownership moves to the caller */
        fut->cancelled_exc = NULL;
        return exc;
    }
    if (fut->cancel_msg == NULL || fut->cancel_msg == Py_None) {
        return PyObject_CallNoArgs(st->CancelledError);
    }
    return PyObject_CallOneArg(st->CancelledError, fut->cancel_msg);
}

static void
raise_cancelled(pa_state *st, FutureObject *fut)
{
    PyObject *exc = pa_future_make_cancelled_error(st, fut);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
}

/* The result, or NULL with the future's exception (or CancelledError)
 * raised. Marks the exception as retrieved. */
PyObject *
pa_future_result(pa_state *st, FutureObject *fut)
{
    if (!is_alive(fut)) {
        return raise_invalid_state(st, "Future object is not initialized.");
    }
    if (fut->state == PA_FUT_CANCELLED) {
        raise_cancelled(st, fut);
        return NULL;
    }
    if (fut->state != PA_FUT_FINISHED) {
        return raise_invalid_state(st, "Result is not set.");
    }
    fut->log_tb = 0;
    if (fut->exception != NULL) {
        /* Raise with the traceback it had when set, not one that grew each
         * time result() raised it. */
        if (PyException_SetTraceback(fut->exception,
                                     fut->exception_tb ? fut->exception_tb : Py_None) < 0) {
            return NULL;
        }
        PyErr_SetObject((PyObject *)Py_TYPE(fut->exception), fut->exception);
        return NULL;
    }
    return Py_NewRef(fut->result);
}

void
pa_raise_stop_iteration(PyObject *value)
{
    if (value == Py_None) {
        return; /* an iterator ends with None by returning NULL, no exception */
    }
    /* StopIteration(value) built explicitly, so that a tuple value is not
     * taken as the exception's arguments. */
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
}

PyObject *
pa_iternext_from_send(PySendResult r, PyObject *res)
{
    if (r == PYGEN_NEXT) {
        return res;
    }
    if (r == PYGEN_RETURN) {
        pa_raise_stop_iteration(res);
        Py_DECREF(res);
    }
    return NULL;
}

PyObject *
pa_future_new(pa_state *st, PyObject *loop)
{
    FutureObject *fut = (FutureObject *)st->FutureType->tp_alloc(st->FutureType, 0);
    if (fut == NULL) {
        return NULL;
    }
    if (pa_future_init(st, fut, loop) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return (PyObject *)fut;
}

/* ---------------------------------------------------------------- methods */

static PyObject *
Future_result(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_future_result(pa_state_of((PyObject *)self), self);
}

static PyObject *
Future_exception(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    pa_state *st = pa_state_of((PyObject *)self);
    if (!is_alive(self)) {
        return raise_invalid_state(st, "Future object is not initialized.");
    }
    if (self->state == PA_FUT_CANCELLED) {
        raise_cancelled(st, self);
        return NULL;
    }
    if (self->state != PA_FUT_FINISHED) {
        return raise_invalid_state(st, "Exception is not set.");
    }
    self->log_tb = 0;
    return Py_NewRef(self->exception ? self->exception : Py_None);
}

static PyObject *
Future_set_result(FutureObject *self, PyObject *result)
{
    if (pa_future_set_result(pa_state_of((PyObject *)self), self, result) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Future_set_exception(FutureObject *self, PyObject *exc)
{
    if (pa_future_set_exception(pa_state_of((PyObject *)self), self, exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Future_add_done_callback(FutureObject *self, PyObject *const *args, Py_ssize_t nargsf,
                         PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *ctx = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "add_done_callback() takes exactly 1 positional argument "
                                      "(%zd given)",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "context") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "add_done_callback() got an unexpected keyword argument '%U'", name);
            return NULL;
        }
        ctx = args[nargs + i];
    }
    pa_state *st = pa_state_of((PyObject *)self);
    int rc;
    if (ctx == NULL || ctx == Py_None) {
        rc = pa_future_add_done_callback_here(st, self, args[0]);
    } else {
        rc = pa_future_add_done_callback(st, self, args[0], ctx);
    }
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Future_remove_done_callback(FutureObject *self, PyObject *fn)
{
    if (pa_future_ensure_alive(self) < 0) {
        return NULL;
    }
    Py_ssize_t removed = 0;
    PyObject *marker = pa_state_of((PyObject *)self)->wakeup_marker;
    /* A task's own registration (context is the marker) is never removed:
     * nobody outside holds its callable, as with asyncio's fresh ones. */
    if (self->callback0 != NULL && self->context0 != marker) {
        int eq = PyObject_RichCompareBool(self->callback0, fn, Py_EQ);
        if (eq < 0) {
            return NULL;
        }
        if (eq) {
            Py_CLEAR(self->callback0);
            Py_CLEAR(self->context0);
            removed++;
        }
    }
    if (self->callbacks != NULL) {
        /* Work on a copy: a comparison may run code that changes the list. */
        PyObject *old = PyList_GetSlice(self->callbacks, 0, PyList_GET_SIZE(self->callbacks));
        PyObject *kept = old ? PyList_New(0) : NULL;
        if (kept == NULL) {
            Py_XDECREF(old);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(old); i++) {
            PyObject *pair = PyList_GET_ITEM(old, i);
            int eq = PyTuple_GET_ITEM(pair, 1) == marker
                         ? 0
                         : PyObject_RichCompareBool(PyTuple_GET_ITEM(pair, 0), fn, Py_EQ);
            if (eq < 0 || (!eq && PyList_Append(kept, pair) < 0)) {
                Py_DECREF(old);
                Py_DECREF(kept);
                return NULL;
            }
            removed += eq;
        }
        Py_DECREF(old);
        if (PyList_GET_SIZE(kept) == 0) {
            Py_DECREF(kept);
            kept = NULL;
        }
        Py_XSETREF(self->callbacks, kept);
    }
    return PyLong_FromSsize_t(removed);
}

int
pa_parse_cancel_args(PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames, PyObject **msg)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    *msg = Py_None;
    if (nargs + nkw > 1) {
        PyErr_SetString(PyExc_TypeError, "cancel() takes at most 1 argument");
        return -1;
    }
    if (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0) {
        PyErr_Format(PyExc_TypeError, "cancel() got an unexpected keyword argument '%U'",
                     PyTuple_GET_ITEM(kwnames, 0));
        return -1;
    }
    if (nargs + nkw == 1) {
        *msg = args[0];
    }
    return 0;
}

static PyObject *
Future_cancel(FutureObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PyObject *msg;
    if (pa_parse_cancel_args(args, nargsf, kwnames, &msg) < 0) {
        return NULL;
    }
    int r = pa_future_cancel(pa_state_of((PyObject *)self), self, msg);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
Future_cancelled(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_alive(self) && self->state == PA_FUT_CANCELLED);
}

static PyObject *
Future_done(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(is_alive(self) && self->state != PA_FUT_PENDING);
}

static PyObject *
Future_get_loop(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_future_ensure_alive(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->loop);
}

static PyObject *
Future_make_cancelled_error(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_future_make_cancelled_error(pa_state_of((PyObject *)self), self);
}

static PyObject *
Future_repr_info(FutureObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_CallOneArg(pa_state_of((PyObject *)self)->future_repr_info, (PyObject *)self);
}

PyObject *
pa_future_repr(PyObject *self, PyObject *repr_info)
{
    PyObject *info = PyObject_CallOneArg(repr_info, self);
    if (info == NULL) {
        return NULL;
    }
    PyObject *sep = PyUnicode_FromString(" ");
    PyObject *joined = sep ? PyUnicode_Join(sep, info) : NULL;
    PyObject *name = joined ? PyType_GetName(Py_TYPE(self)) : NULL;
    PyObject *res = name ? PyUnicode_FromFormat("<%U %U>", name, joined) : NULL;
    Py_XDECREF(name);
    Py_XDECREF(joined);
    Py_XDECREF(sep);
    Py_DECREF(info);
    return res;
}

static PyObject *
Future_repr(FutureObject *self)
{
    return pa_future_repr((PyObject *)self, pa_state_of((PyObject *)self)->future_repr_info);
}

/* ---------------------------------------------------------------- attributes */

static PyObject *
Future_get_blocking(FutureObject *self, void *closure)
{
    return PyBool_FromLong(is_alive(self) && self->blocking);
}

static int
Future_set_blocking(FutureObject *self, PyObject *value, void *closure)
{
    if (pa_future_ensure_alive(self) < 0) {
        return -1;
    }
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    int r = PyObject_IsTrue(value);
    if (r < 0) {
        return -1;
    }
    self->blocking = r != 0;
    return 0;
}

static PyObject *
Future_get_log_traceback(FutureObject *self, void *closure)
{
    if (pa_future_ensure_alive(self) < 0) {
        return NULL;
    }
    return PyBool_FromLong(self->log_tb);
}

static int
Future_set_log_traceback(FutureObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    int r = PyObject_IsTrue(value);
    if (r < 0) {
        return -1;
    }
    if (r) {
        PyErr_SetString(PyExc_ValueError, "_log_traceback can only be set to False");
        return -1;
    }
    self->log_tb = 0;
    return 0;
}

static PyObject *
Future_get_loop_attr(FutureObject *self, void *closure)
{
    return pa_ref_or_none(self->loop);
}

static PyObject *
Future_get_callbacks(FutureObject *self, void *closure)
{
    if (self->callback0 == NULL && self->callbacks == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    if (self->callback0 != NULL) {
        PyObject *pair = callback_pair(st, self->callback0, self->context0);
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(pair);
    }
    for (Py_ssize_t i = 0; self->callbacks != NULL && i < PyList_GET_SIZE(self->callbacks); i++) {
        PyObject *stored = PyList_GET_ITEM(self->callbacks, i);
        PyObject *pair =
            callback_pair(st, PyTuple_GET_ITEM(stored, 0), PyTuple_GET_ITEM(stored, 1));
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return list;
}

static PyObject *
Future_get_result_attr(FutureObject *self, void *closure)
{
    return pa_ref_or_none(self->result);
}

static PyObject *
Future_get_exception_attr(FutureObject *self, void *closure)
{
    return pa_ref_or_none(self->exception);
}

static PyObject *
Future_get_source_traceback(FutureObject *self, void *closure)
{
    return pa_ref_or_none(self->source_tb);
}

static PyObject *
Future_get_cancel_message(FutureObject *self, void *closure)
{
    return pa_ref_or_none(self->cancel_msg);
}

static int
Future_set_cancel_message(FutureObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    Py_XSETREF(self->cancel_msg, Py_NewRef(value));
    return 0;
}

static PyObject *
Future_get_state(FutureObject *self, void *closure)
{
    if (!is_alive(self)) {
        Py_RETURN_NONE;
    }
    switch (self->state) {
    case PA_FUT_PENDING:
        return PyUnicode_FromString("PENDING");
    case PA_FUT_CANCELLED:
        return PyUnicode_FromString("CANCELLED");
    default:
        return PyUnicode_FromString("FINISHED");
    }
}

/* ---------------------------------------------------------------- lifecycle */

int
pa_future_traverse(FutureObject *fut, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(fut));
    Py_VISIT(fut->loop);
    Py_VISIT(fut->callback0);
    Py_VISIT(fut->context0);
    Py_VISIT(fut->callbacks);
    Py_VISIT(fut->result);
    Py_VISIT(fut->exception);
    Py_VISIT(fut->exception_tb);
    Py_VISIT(fut->source_tb);
    Py_VISIT(fut->cancel_msg);
    Py_VISIT(fut->cancelled_exc);
    PA_FUTURE_VISIT_DICT(fut, visit, arg);
    return 0;
}

int
pa_future_clear(FutureObject *fut)
{
    Py_CLEAR(fut->loop);
    Py_CLEAR(fut->callback0);
    Py_CLEAR(fut->context0);
    Py_CLEAR(fut->callbacks);
    Py_CLEAR(fut->result);
    Py_CLEAR(fut->exception);
    Py_CLEAR(fut->exception_tb);
    Py_CLEAR(fut->source_tb);
    Py_CLEAR(fut->cancel_msg);
    Py_CLEAR(fut->cancelled_exc);
    return 0;
}

static int
Future_tp_clear(FutureObject *fut)
{
    (void)pa_future_clear(fut);
    PA_FUTURE_CLEAR_DICT(fut);
    return 0;
}

static int
Future_tp_init(FutureObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop", NULL};
    PyObject *loop = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:Future", kwlist, &loop)) {
        return -1;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    if (st == NULL || pa_check_ready(st) < 0) {
        return -1;
    }
    return pa_future_init(st, self, loop);
}

/* An exception nobody retrieved is reported when the future dies, through
 * the loop's exception handler (asyncio's Future.__del__). */
void
pa_future_finalize(FutureObject *self)
{
    if (!self->log_tb || self->loop == NULL) {
        return;
    }
    self->log_tb = 0;
    PyObject *saved = pa_err_take();
    pa_state *st = pa_state_of((PyObject *)self);
    PyObject *name = st ? PyType_GetName(Py_TYPE(self)) : NULL;
    PyObject *msg = name ? PyUnicode_FromFormat("%U exception was never retrieved", name) : NULL;
    if (msg == NULL ||
        pa_loop_report(st, self->loop, msg, st->str_future, (PyObject *)self,
                       self->exception ? self->exception : Py_None, self->source_tb) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(msg);
    Py_XDECREF(name);
    pa_err_restore(saved);
}

static void
Future_dealloc(FutureObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected by the exception handler */
    }
    PyObject_GC_UnTrack(self);
    PA_FUTURE_CLEAR_WEAKREFS(self);
    (void)Future_tp_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---------------------------------------------------------------- Future type */

static PyObject *
Future_iter(FutureObject *self)
{
    return pa_future_iter_new(self);
}

static PyMethodDef Future_methods[] = {
    {"result", (PyCFunction)Future_result, METH_NOARGS,
     "result($self, /)\n--\n\nReturn the result, or raise."},
    {"exception", (PyCFunction)Future_exception, METH_NOARGS,
     "exception($self, /)\n--\n\nReturn the exception, or None."},
    {"set_result", (PyCFunction)Future_set_result, METH_O,
     "set_result($self, result, /)\n--\n\nMark done with a result."},
    {"set_exception", (PyCFunction)Future_set_exception, METH_O,
     "set_exception($self, exception, /)\n--\n\nMark done with an exception."},
    {"add_done_callback", (PyCFunction)(void (*)(void))Future_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS,
     "add_done_callback($self, fn, /, *, context=None)\n--\n\nCall fn(future) once the future is done."},
    {"remove_done_callback", (PyCFunction)Future_remove_done_callback, METH_O,
     "remove_done_callback($self, fn, /)\n--\n\nRemove every registration of fn; return how many."},
    {"cancel", (PyCFunction)(void (*)(void))Future_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel($self, /, msg=None)\n--\n\nCancel the future and schedule its callbacks."},
    {"cancelled", (PyCFunction)Future_cancelled, METH_NOARGS, "cancelled($self, /)\n--\n\n"},
    {"done", (PyCFunction)Future_done, METH_NOARGS, "done($self, /)\n--\n\n"},
    {"get_loop", (PyCFunction)Future_get_loop, METH_NOARGS, "get_loop($self, /)\n--\n\n"},
    {"_make_cancelled_error", (PyCFunction)Future_make_cancelled_error, METH_NOARGS,
     "_make_cancelled_error($self, /)\n--\n\n"},
    {"_repr_info", (PyCFunction)Future_repr_info, METH_NOARGS, "_repr_info($self, /)\n--\n\n"},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Future_getset[] = {
    {"_asyncio_future_blocking", (getter)Future_get_blocking, (setter)Future_set_blocking, NULL,
     NULL},
    {"_log_traceback", (getter)Future_get_log_traceback, (setter)Future_set_log_traceback, NULL,
     NULL},
    {"_loop", (getter)Future_get_loop_attr, NULL, NULL, NULL},
    {"_callbacks", (getter)Future_get_callbacks, NULL, NULL, NULL},
    {"_result", (getter)Future_get_result_attr, NULL, NULL, NULL},
    {"_exception", (getter)Future_get_exception_attr, NULL, NULL, NULL},
    {"_source_traceback", (getter)Future_get_source_traceback, NULL, NULL, NULL},
    {"_cancel_message", (getter)Future_get_cancel_message, (setter)Future_set_cancel_message, NULL,
     NULL},
    {"_state", (getter)Future_get_state, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Future_slots[] = {
    {Py_tp_init, Future_tp_init},
    {Py_tp_dealloc, Future_dealloc},
    {Py_tp_traverse, pa_future_traverse},
    {Py_tp_clear, Future_tp_clear},
    {Py_tp_finalize, pa_future_finalize},
    {Py_tp_repr, Future_repr},
    {Py_tp_iter, Future_iter},
    {Py_am_await, Future_iter},
    {Py_tp_methods, Future_methods},
    {Py_tp_getset, Future_getset},
    {Py_tp_doc, "An asyncio-compatible Future, in C."},
    {0, NULL},
};

static PyType_Spec Future_spec = {
    .name = "pyasync.Future",
    .basicsize = sizeof(FutureObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Future_slots,
};

/* Whether the running interpreter's _asyncio.Future and _asyncio.Task have
 * the layout compat.h describes (sizes, and where the dict and weak
 * references are): our types use the base's fields, so a mismatch (a
 * CPython release that changed them) must stop the import, not corrupt
 * memory. */
static int
check_asyncio_layout(PyTypeObject *future, PyTypeObject *task)
{
    Py_ssize_t task_size = (Py_ssize_t)offsetof(TaskObject, registry_entry);
    int ok = future->tp_basicsize == (Py_ssize_t)sizeof(FutureObject) &&
             task->tp_basicsize == task_size && PyType_IsSubtype(task, future) &&
             (future->tp_flags & Py_TPFLAGS_HAVE_GC) && (future->tp_flags & Py_TPFLAGS_BASETYPE) &&
             (task->tp_flags & Py_TPFLAGS_BASETYPE);
#if PA_FUTURE_MANAGED_DICT
    unsigned long managed = Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
    ok = ok && (future->tp_flags & managed) == managed && (task->tp_flags & managed) == managed;
#else
    ok = ok && future->tp_dictoffset == (Py_ssize_t)offsetof(FutureObject, dict) &&
         future->tp_weaklistoffset == (Py_ssize_t)offsetof(FutureObject, weakreflist) &&
         task->tp_dictoffset == future->tp_dictoffset &&
         task->tp_weaklistoffset == future->tp_weaklistoffset;
#endif
    if (!ok) {
        PyErr_Format(PyExc_ImportError,
                     "pyasync: this interpreter's _asyncio.Future/_asyncio.Task (sizes %zd/%zd) "
                     "do not have the layout pyasync was built for (%zd/%zd); "
                     "pyasync supports CPython 3.11, 3.12 and 3.13 releases only",
                     future->tp_basicsize, task->tp_basicsize, (Py_ssize_t)sizeof(FutureObject),
                     task_size);
        return -1;
    }
    return 0;
}

int
pa_future_register_types(PyObject *module, pa_state *st)
{
    if (pa_futureiter_register_type(module, st) < 0) {
        return -1;
    }
    /* The bases: asyncio.Future and asyncio.Task, CPython's C types. They
     * are taken from asyncio, not by importing _asyncio first: _asyncio
     * imports asyncio while it initialises, and asyncio.tasks, finding it
     * half-made, would fall back to its Python current-task bookkeeping. */
    PyObject *asyncio_mod = PyImport_ImportModule("asyncio");
    if (asyncio_mod == NULL) {
        return -1;
    }
    PyObject *future_base = PyObject_GetAttrString(asyncio_mod, "Future");
    PyObject *task_base = future_base ? PyObject_GetAttrString(asyncio_mod, "Task") : NULL;
    Py_DECREF(asyncio_mod);
    int rc = -1;
    if (task_base == NULL) {
        goto done;
    }
    if (!PyType_Check(future_base) || !PyType_Check(task_base)) {
        PyErr_SetString(PyExc_ImportError, "pyasync: asyncio.Future/asyncio.Task are not CPython's C types");
        goto done;
    }
    if (check_asyncio_layout((PyTypeObject *)future_base, (PyTypeObject *)task_base) < 0) {
        goto done;
    }
    st->FutureType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Future_spec, future_base);
    if (st->FutureType == NULL || PyModule_AddType(module, st->FutureType) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(future_base);
    Py_XDECREF(task_base);
    return rc;
}
