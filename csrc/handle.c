/*
 * handle.c - Handle and TimerHandle.
 *
 * They mirror asyncio.events.Handle/TimerHandle attribute for attribute
 * (_callback, _args, _cancelled, _loop, _source_traceback, _repr, _context,
 * _when, _scheduled) so that code written against asyncio's handles keeps
 * working, but they are C objects created without running any Python code.
 */
#include "handle.h"
#include "loop.h"

#include <structmember.h>

/* ---------------------------------------------------------------- checks */

static int
raise_coroutine_callback(const char *method)
{
    PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()", method);
    return -1;
}

/* 1 when callback is a coroutine function, 0 when not, -1 on error. Plain
 * functions and bound methods are decided from their code flags; functions
 * carrying attributes may have been marked with
 * inspect.markcoroutinefunction(), so they take asyncio's own check, as do
 * unusual callables (functools.partial, ...). */
static int
is_coroutine_function(pa_state *st, PyObject *callback)
{
    PyObject *func = callback;
    if (PyMethod_Check(func)) {
        func = PyMethod_GET_FUNCTION(func);
    }
    if (PyFunction_Check(func)) {
        PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(func);
        if (code->co_flags & CO_COROUTINE) {
            return 1;
        }
        PyObject *dict = ((PyFunctionObject *)func)->func_dict;
        if (dict == NULL || PyDict_GET_SIZE(dict) == 0) {
            return 0;
        }
    } else if (PyCFunction_Check(func) || PyType_Check(func)) {
        return 0;
    }
    PyObject *res = PyObject_CallOneArg(st->iscoroutinefunction, callback);
    if (res == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(res);
    Py_DECREF(res);
    return r;
}

int
pa_check_callback(pa_state *st, PyObject *callback, const char *method)
{
    if (PyCoro_CheckExact(callback)) {
        return raise_coroutine_callback(method);
    }
    if (!PyCallable_Check(callback)) {
        PyObject *res = PyObject_CallOneArg(st->iscoroutine, callback);
        if (res == NULL) {
            return -1;
        }
        int is_coro = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (is_coro < 0) {
            return -1;
        }
        if (is_coro) {
            return raise_coroutine_callback(method);
        }
        PyErr_Format(PyExc_TypeError, "a callable object was expected by %s(), got %R", method,
                     callback);
        return -1;
    }
    int r = is_coroutine_function(st, callback);
    if (r < 0) {
        return -1;
    }
    if (r) {
        return raise_coroutine_callback(method);
    }
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static inline int
is_timer(pa_state *st, HandleObject *h)
{
    return Py_IS_TYPE(h, st->TimerHandleType) ||
           PyType_IsSubtype(Py_TYPE(h), st->TimerHandleType);
}

static PyObject *
capture_stack(pa_state *st)
{
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed */
    if (frame == NULL) {
        return Py_NewRef(Py_None);
    }
    return PyObject_CallOneArg(st->extract_stack, (PyObject *)frame);
}

static PyObject *
format_callback(pa_state *st, PyObject *callback, PyObject *args, int debug)
{
    PyObject *argv[3] = {callback, args ? args : Py_None, debug ? Py_True : Py_False};
    PyObject *empty = NULL;
    if (args == NULL) {
        empty = PyTuple_New(0);
        if (empty == NULL) {
            return NULL;
        }
        argv[1] = empty;
    }
    PyObject *res = PyObject_Vectorcall(st->format_callback_source, argv, 3, NULL);
    Py_XDECREF(empty);
    return res;
}

/* ---------------------------------------------------------------- creation */

#define HANDLE_FREELIST_MAX 1024

static inline int
uses_freelist(pa_state *st, PyTypeObject *type)
{
    /* Only our exact types: subclasses may have a different size. Once the
     * module is cleared the types are NULL here and the list is off. */
    return type == st->HandleType || type == st->TimerHandleType;
}

static HandleObject *
handle_alloc(pa_state *st, PyTypeObject *type)
{
    HandleObject *h = st->handle_freelist;
    if (h != NULL && uses_freelist(st, type)) {
        st->handle_freelist = (void *)h->callback;
        st->handle_freelist_len--;
        /* Sets the refcount to 1 and takes a reference to the type. */
        (void)PyObject_Init((PyObject *)h, type);
        return h;
    }
    return PyObject_GC_New(HandleObject, type);
}

void
pa_handle_freelist_clear(pa_state *st)
{
    HandleObject *h = st->handle_freelist;
    while (h != NULL) {
        HandleObject *next = (HandleObject *)(void *)h->callback;
        PyObject_GC_Del(h);
        h = next;
    }
    st->handle_freelist = NULL;
    st->handle_freelist_len = 0;
}

/* A copy of the current context, as asyncio takes for every callback. When
 * that copy is empty (no context variable set: the common case) we keep
 * nothing and create the fresh empty context when the handle runs or is
 * asked for it (materialize_context). The callback still gets a context of
 * its own, but thousands of pending handles no longer pin thousands of
 * GC-tracked Context objects, and the run-time ones come from CPython's
 * context free list. */
static int
capture_context(HandleObject *h)
{
    PyObject *ctx = PyContext_CopyCurrent();
    if (ctx == NULL) {
        return -1;
    }
    Py_ssize_t size = PyObject_Length(ctx);
    if (size < 0) {
        Py_DECREF(ctx);
        return -1;
    }
    if (size == 0) {
        Py_DECREF(ctx);
        h->context = NULL;
    } else {
        h->context = ctx;
    }
    return 0;
}

static int
materialize_context(HandleObject *h)
{
    if (h->context == NULL) {
        h->context = PyContext_New();
        if (h->context == NULL) {
            return -1;
        }
    }
    return 0;
}

HandleObject *
pa_handle_new(pa_state *st, PyTypeObject *type, PyObject *loop, PyObject *callback,
              PyObject *const *args, Py_ssize_t nargs, PyObject *context, int debug)
{
    HandleObject *h = handle_alloc(st, type);
    if (h == NULL) {
        return NULL;
    }
    h->callback = Py_NewRef(callback);
    h->context = NULL; /* the memory is not zeroed: every field is set before any failure */
    h->args = NULL;
    h->arg1 = NULL;
    h->loop = Py_NewRef(loop);
    h->source_traceback = NULL;
    h->repr = NULL;
    h->weakreflist = NULL;
    h->when = 0.0;
    h->when_is_int = 0;
    h->cancelled = 0;
    h->scheduled = 0;
    if (context == NULL || context == Py_None) {
        if (capture_context(h) < 0) {
            goto error;
        }
    } else if (context == st->fresh_context) {
        h->context = NULL; /* materialize_context() makes it when needed */
    } else {
        h->context = Py_NewRef(context);
    }
    if (nargs == 1) {
        h->arg1 = Py_NewRef(args[0]);
    } else if (nargs > 1) {
        h->args = PyTuple_New(nargs);
        if (h->args == NULL) {
            goto error;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            PyTuple_SET_ITEM(h->args, i, Py_NewRef(args[i]));
        }
    }
    if (debug) {
        h->source_traceback = capture_stack(st);
        if (h->source_traceback == NULL) {
            goto error;
        }
    }
    PyObject_GC_Track(h);
    return h;

error:
    PyObject_GC_Track(h);
    Py_DECREF(h);
    return NULL;
}

/* ---------------------------------------------------------------- running */

/* The arguments as a tuple (new reference), for formatting and _args. */
static PyObject *
args_tuple(PyObject *args, PyObject *arg1)
{
    if (args != NULL) {
        return Py_NewRef(args);
    }
    if (arg1 != NULL) {
        return PyTuple_Pack(1, arg1);
    }
    return PyTuple_New(0);
}

/* Hand the raised exception of a failed callback to the loop's exception
 * handler, like asyncio.Handle._run(). Returns 0 when handled, -1 when the
 * exception must stop the loop. */
static int
report_callback_error(pa_state *st, HandleObject *h, PyObject *callback, PyObject *args,
                      PyObject *arg1)
{
    if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    PyObject *source = NULL, *msg = NULL, *tuple = NULL;
    int rc = -1;
    int debug = pa_loop_get_debug(st, h->loop);
    if (debug < 0) {
        goto done;
    }
    tuple = args_tuple(args, arg1);
    if (tuple == NULL) {
        goto done;
    }
    source = format_callback(st, callback, tuple, debug);
    if (source == NULL) {
        goto done;
    }
    msg = PyUnicode_FromFormat("Exception in callback %U", source);
    if (msg == NULL) {
        goto done;
    }
    rc = pa_loop_report(st, h->loop, msg, st->str_handle, (PyObject *)h, exc,
                        h->source_traceback);

done:
    Py_XDECREF(tuple);
    Py_XDECREF(exc);
    Py_XDECREF(source);
    Py_XDECREF(msg);
    return rc;
}

int
pa_handle_report_error(pa_state *st, HandleObject *h)
{
    return report_callback_error(st, h, h->callback, h->args, h->arg1);
}

int
pa_handle_run(pa_state *st, HandleObject *h)
{
    if (h->callback == NULL) {
        return 0; /* cancelled after it was queued */
    }
    if (materialize_context(h) < 0) {
        return report_callback_error(st, h, h->callback, h->args, h->arg1);
    }
    /* The callback may cancel its own handle, which drops these fields:
     * hold our own references for the duration of the call. */
    PyObject *callback = Py_NewRef(h->callback);
    PyObject *args = Py_XNewRef(h->args);
    PyObject *arg1 = Py_XNewRef(h->arg1);
    PyObject *ctx = Py_NewRef(h->context);
    PyObject *const *argv = NULL;
    Py_ssize_t nargs = 0;
    if (arg1 != NULL) {
        argv = &arg1;
        nargs = 1;
    } else if (args != NULL) {
        argv = &PyTuple_GET_ITEM(args, 0);
        nargs = PyTuple_GET_SIZE(args);
    }
    PyObject *res;
    if (PyContext_CheckExact(ctx)) {
        if (PyContext_Enter(ctx) < 0) {
            res = NULL;
        } else {
            res = PyObject_Vectorcall(callback, argv, nargs, NULL);
            if (PyContext_Exit(ctx) < 0) {
                Py_CLEAR(res);
            }
        }
    } else {
        /* A context-like object: call its run(callback, *args). */
        PyObject *run = PyObject_GetAttr(ctx, st->str_run);
        if (run == NULL) {
            res = NULL;
        } else {
            PyObject *full = PyTuple_New(nargs + 1);
            if (full == NULL) {
                res = NULL;
            } else {
                PyTuple_SET_ITEM(full, 0, Py_NewRef(callback));
                for (Py_ssize_t i = 0; i < nargs; i++) {
                    PyTuple_SET_ITEM(full, i + 1, Py_NewRef(argv[i]));
                }
                res = PyObject_Call(run, full, NULL);
                Py_DECREF(full);
            }
            Py_DECREF(run);
        }
    }
    int rc = 0;
    if (res == NULL) {
        rc = report_callback_error(st, h, callback, args, arg1);
    } else {
        Py_DECREF(res);
    }
    Py_DECREF(callback);
    Py_XDECREF(args);
    Py_XDECREF(arg1);
    Py_DECREF(ctx);
    return rc;
}

int
pa_handle_cancel_plain(pa_state *st, HandleObject *h, int debug)
{
    if (h->cancelled) {
        return 0;
    }
    h->cancelled = 1;
    if (debug) {
        /* Keep the repr: the callback is about to be dropped, but a
         * slow-callback warning may still want to name it. */
        PyObject *repr = PyObject_Repr((PyObject *)h);
        if (repr == NULL) {
            return -1;
        }
        Py_XSETREF(h->repr, repr);
    }
    Py_CLEAR(h->callback);
    Py_CLEAR(h->args);
    Py_CLEAR(h->arg1);
    return 0;
}

/* ---------------------------------------------------------------- type slots */

static inline pa_state *
handle_state(PyObject *self)
{
    return pa_state_of(self);
}

static int
Handle_traverse(HandleObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->callback);
    Py_VISIT(self->args);
    Py_VISIT(self->arg1);
    Py_VISIT(self->context);
    Py_VISIT(self->loop);
    Py_VISIT(self->source_traceback);
    Py_VISIT(self->repr);
    return 0;
}

static int
Handle_clear(HandleObject *self)
{
    Py_CLEAR(self->callback);
    Py_CLEAR(self->args);
    Py_CLEAR(self->arg1);
    Py_CLEAR(self->context);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->source_traceback);
    Py_CLEAR(self->repr);
    return 0;
}

static void
Handle_dealloc(HandleObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    (void)Handle_clear(self);
    pa_state *st = pa_state_of_quiet((PyObject *)self);
    if (st != NULL && uses_freelist(st, tp) && st->handle_freelist_len < HANDLE_FREELIST_MAX) {
        self->callback = (PyObject *)st->handle_freelist;
        st->handle_freelist = self;
        st->handle_freelist_len++;
    } else {
        tp->tp_free(self);
    }
    Py_DECREF(tp);
}

/* Handle(callback, args, loop, context=None) and
 * TimerHandle(when, callback, args, loop, context=None), as in asyncio. */
static PyObject *
handle_construct(PyTypeObject *type, int timer, PyObject *args, PyObject *kwds)
{
    static char *handle_kw[] = {"callback", "args", "loop", "context", NULL};
    static char *timer_kw[] = {"when", "callback", "args", "loop", "context", NULL};
    PyObject *when = NULL, *callback, *cbargs, *loop, *context = Py_None;
    int ok = timer ? PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O:TimerHandle", timer_kw,
                                                 &when, &callback, &cbargs, &loop, &context)
                   : PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O:Handle", handle_kw, &callback,
                                                 &cbargs, &loop, &context);
    if (!ok) {
        return NULL;
    }
    pa_state *st = pa_state_from_type(type);
    if (st == NULL || pa_check_ready(st) < 0) {
        return NULL;
    }
    double when_value = 0.0;
    if (timer) {
        when_value = PyFloat_AsDouble(when);
        if (when_value == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *tuple = Py_None == cbargs ? PyTuple_New(0) : PySequence_Tuple(cbargs);
    if (tuple == NULL) {
        return NULL;
    }
    int debug = pa_loop_get_debug(st, loop);
    HandleObject *h = NULL;
    if (debug >= 0) {
        h = pa_handle_new(st, type, loop, callback, &PyTuple_GET_ITEM(tuple, 0),
                          PyTuple_GET_SIZE(tuple), context, debug);
    }
    Py_DECREF(tuple);
    if (h != NULL) {
        h->when = when_value;
        h->when_is_int = timer && PyLong_Check(when);
    }
    return (PyObject *)h;
}

static PyObject *
Handle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return handle_construct(type, 0, args, kwds);
}

static PyObject *
TimerHandle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    return handle_construct(type, 1, args, kwds);
}

static PyObject *
Handle_repr(HandleObject *self)
{
    if (self->repr != NULL) {
        return Py_NewRef(self->repr);
    }
    pa_state *st = handle_state((PyObject *)self);
    if (st == NULL) {
        return NULL;
    }
    PyObject *parts = PyList_New(0), *item = NULL, *sep = NULL, *joined = NULL, *result = NULL;
    if (parts == NULL) {
        return NULL;
    }
    int debug = pa_loop_get_debug(st, self->loop);
    if (debug < 0) {
        goto done;
    }
    item = PyType_GetName(Py_TYPE(self));
    if (item == NULL || PyList_Append(parts, item) < 0) {
        goto done;
    }
    Py_CLEAR(item);
    if (self->cancelled) {
        item = PyUnicode_FromString("cancelled");
        if (item == NULL || PyList_Append(parts, item) < 0) {
            goto done;
        }
        Py_CLEAR(item);
    }
    if (is_timer(st, self)) {
        PyObject *when = pa_timer_when(self);
        if (when == NULL) {
            goto done;
        }
        item = PyUnicode_FromFormat("when=%R", when);
        Py_DECREF(when);
        if (item == NULL || PyList_Append(parts, item) < 0) {
            goto done;
        }
        Py_CLEAR(item);
    }
    if (self->callback != NULL) {
        PyObject *tuple = args_tuple(self->args, self->arg1);
        item = tuple ? format_callback(st, self->callback, tuple, debug) : NULL;
        Py_XDECREF(tuple);
        if (item == NULL || PyList_Append(parts, item) < 0) {
            goto done;
        }
        Py_CLEAR(item);
    }
    if (self->source_traceback != NULL && PyList_Check(self->source_traceback) &&
        PyList_GET_SIZE(self->source_traceback) > 0) {
        PyObject *frame = PyList_GET_ITEM(self->source_traceback,
                                          PyList_GET_SIZE(self->source_traceback) - 1);
        PyObject *file = PySequence_GetItem(frame, 0);
        PyObject *line = file ? PySequence_GetItem(frame, 1) : NULL;
        if (line != NULL) {
            item = PyUnicode_FromFormat("created at %S:%S", file, line);
        }
        Py_XDECREF(file);
        Py_XDECREF(line);
        if (item == NULL || PyList_Append(parts, item) < 0) {
            goto done;
        }
        Py_CLEAR(item);
    }
    sep = PyUnicode_FromString(" ");
    if (sep == NULL) {
        goto done;
    }
    joined = PyUnicode_Join(sep, parts);
    if (joined == NULL) {
        goto done;
    }
    result = PyUnicode_FromFormat("<%U>", joined);

done:
    Py_XDECREF(item);
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    Py_DECREF(parts);
    return result;
}

static PyObject *
Handle_cancel(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->cancelled) {
        Py_RETURN_NONE;
    }
    pa_state *st = handle_state((PyObject *)self);
    if (st == NULL) {
        return NULL;
    }
    if (is_timer(st, self) && self->loop != NULL) {
        /* asyncio: the loop counts cancelled timers still in its heap. */
        if (pa_loop_check(st, self->loop)) {
            if (self->scheduled) {
                pa_loop_note_timer_cancelled((LoopObject *)self->loop);
            }
        } else {
            PyObject *res = PyObject_CallMethodOneArg(self->loop, st->str_timer_handle_cancelled,
                                                      (PyObject *)self);
            if (res == NULL) {
                return NULL;
            }
            Py_DECREF(res);
        }
    }
    int debug = pa_loop_get_debug(st, self->loop);
    if (debug < 0 || pa_handle_cancel_plain(st, self, debug) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Handle_cancelled(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->cancelled);
}

static PyObject *
Handle_get_context(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    if (materialize_context(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->context);
}

static PyObject *
Handle_run_method(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    pa_state *st = handle_state((PyObject *)self);
    if (st == NULL || pa_handle_run(st, self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
TimerHandle_when(HandleObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_timer_when(self);
}

static PyObject *
Handle_get_callback(HandleObject *self, void *closure)
{
    return pa_ref_or_none(self->callback);
}

static PyObject *
Handle_get_args(HandleObject *self, void *closure)
{
    if (self->cancelled) {
        Py_RETURN_NONE;
    }
    return args_tuple(self->args, self->arg1);
}

static PyObject *
Handle_get_cancelled(HandleObject *self, void *closure)
{
    return PyBool_FromLong(self->cancelled);
}

static PyObject *
Handle_get_loop(HandleObject *self, void *closure)
{
    return pa_ref_or_none(self->loop);
}

static PyObject *
Handle_get_source_traceback(HandleObject *self, void *closure)
{
    return pa_ref_or_none(self->source_traceback);
}

static int
Handle_set_source_traceback(HandleObject *self, PyObject *value, void *closure)
{
    Py_XSETREF(self->source_traceback, value == Py_None ? NULL : Py_XNewRef(value));
    return 0;
}

static PyObject *
Handle_get_repr_attr(HandleObject *self, void *closure)
{
    return pa_ref_or_none(self->repr);
}

static PyObject *
Handle_get_context_attr(HandleObject *self, void *closure)
{
    return Handle_get_context(self, NULL);
}

static PyObject *
TimerHandle_get_when(HandleObject *self, void *closure)
{
    return pa_timer_when(self);
}

static PyObject *
TimerHandle_get_scheduled(HandleObject *self, void *closure)
{
    return PyBool_FromLong(self->scheduled);
}

static PyObject *
TimerHandle_richcompare(HandleObject *self, PyObject *other, int op)
{
    pa_state *st = handle_state((PyObject *)self);
    if (st == NULL) {
        return NULL;
    }
    if (!PyObject_TypeCheck(other, st->TimerHandleType)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    HandleObject *o = (HandleObject *)other;
    int eq = 0;
    if (op == Py_EQ || op == Py_NE || op == Py_LE || op == Py_GE) {
        eq = self->when == o->when && self->cancelled == o->cancelled;
        if (eq) {
            eq = PyObject_RichCompareBool(self->callback ? self->callback : Py_None,
                                          o->callback ? o->callback : Py_None, Py_EQ);
            if (eq < 0) {
                return NULL;
            }
        }
        if (eq) {
            PyObject *a = Handle_get_args(self, NULL), *b = Handle_get_args(o, NULL);
            eq = (a && b) ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
            Py_XDECREF(a);
            Py_XDECREF(b);
            if (eq < 0) {
                return NULL;
            }
        }
    }
    switch (op) {
    case Py_LT:
        return PyBool_FromLong(self->when < o->when);
    case Py_GT:
        return PyBool_FromLong(self->when > o->when);
    case Py_LE:
        return PyBool_FromLong(self->when < o->when || eq);
    case Py_GE:
        return PyBool_FromLong(self->when > o->when || eq);
    case Py_EQ:
        return PyBool_FromLong(eq);
    default:
        return PyBool_FromLong(!eq);
    }
}

static Py_hash_t
TimerHandle_hash(HandleObject *self)
{
    PyObject *when = PyFloat_FromDouble(self->when);
    if (when == NULL) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(when);
    Py_DECREF(when);
    return h;
}

static PyMethodDef Handle_methods[] = {
    {"cancel", (PyCFunction)Handle_cancel, METH_NOARGS,
     "cancel($self, /, msg=None)\n--\n\nCancel the call."},
    {"cancelled", (PyCFunction)Handle_cancelled, METH_NOARGS,
     "cancelled($self, /)\n--\n\nWhether cancel() was called."},
    {"get_context", (PyCFunction)Handle_get_context, METH_NOARGS,
     "get_context($self, /)\n--\n\nThe contextvars.Context the callback runs in."},
    {"_run", (PyCFunction)Handle_run_method, METH_NOARGS,
     "_run($self, /)\n--\n\nRun the callback now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"_callback", (getter)Handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)Handle_get_args, NULL, NULL, NULL},
    {"_cancelled", (getter)Handle_get_cancelled, NULL, NULL, NULL},
    {"_loop", (getter)Handle_get_loop, NULL, NULL, NULL},
    {"_source_traceback", (getter)Handle_get_source_traceback,
     (setter)Handle_set_source_traceback, NULL, NULL},
    {"_repr", (getter)Handle_get_repr_attr, NULL, NULL, NULL},
    {"_context", (getter)Handle_get_context_attr, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Handle_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HandleObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Handle_slots[] = {
    {Py_tp_new, Handle_new},
    {Py_tp_dealloc, Handle_dealloc},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_clear, Handle_clear},
    {Py_tp_repr, Handle_repr},
    {Py_tp_methods, Handle_methods},
    {Py_tp_getset, Handle_getset},
    {Py_tp_members, Handle_members},
    {Py_tp_doc, "Object returned by callback registration methods."},
    {0, NULL},
};

static PyType_Spec Handle_spec = {
    .name = "pyasync.Handle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Handle_slots,
};

static PyMethodDef TimerHandle_methods[] = {
    {"when", (PyCFunction)TimerHandle_when, METH_NOARGS,
     "when($self, /)\n--\n\nThe scheduled time, on the loop's clock."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef TimerHandle_getset[] = {
    {"_when", (getter)TimerHandle_get_when, NULL, NULL, NULL},
    {"_scheduled", (getter)TimerHandle_get_scheduled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot TimerHandle_slots[] = {
    {Py_tp_new, TimerHandle_new},
    {Py_tp_dealloc, Handle_dealloc},
    {Py_tp_traverse, Handle_traverse},
    {Py_tp_clear, Handle_clear},
    {Py_tp_richcompare, TimerHandle_richcompare},
    {Py_tp_hash, TimerHandle_hash},
    {Py_tp_methods, TimerHandle_methods},
    {Py_tp_getset, TimerHandle_getset},
    {Py_tp_doc, "Object returned by timed callback registration methods."},
    {0, NULL},
};

static PyType_Spec TimerHandle_spec = {
    .name = "pyasync.TimerHandle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = TimerHandle_slots,
};

int
pa_handle_register_types(PyObject *module, pa_state *st)
{
    st->HandleType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Handle_spec, NULL);
    if (st->HandleType == NULL || PyModule_AddType(module, st->HandleType) < 0) {
        return -1;
    }
    st->TimerHandleType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &TimerHandle_spec, (PyObject *)st->HandleType);
    if (st->TimerHandleType == NULL || PyModule_AddType(module, st->TimerHandleType) < 0) {
        return -1;
    }
    return 0;
}
