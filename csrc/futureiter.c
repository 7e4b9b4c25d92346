/*
 * futureiter.c - what `await future` runs: the iterator a Future's
 * __await__ (and __iter__) returns, with asyncio's protocol. While the
 * future is pending it yields the future itself, once, with
 * _asyncio_future_blocking set, which is how a Task learns what to wait
 * for; then it returns the result or raises the exception. Iterators are
 * kept in a small free list, since every await of a pending future makes
 * one. throw() takes the arguments generators take, with CPython's checks
 * and warnings of the running version.
 */
#include "future.h"

typedef struct {
    PyObject_HEAD
    FutureObject *future; /* NULL once exhausted */
} FutureIterObject;

PyObject *
pa_future_iter_new(FutureObject *fut)
{
    pa_state *st = pa_state_of((PyObject *)fut);
    if (st == NULL) {
        return NULL;
    }
    if (pa_future_ensure_alive(fut) < 0) {
        return NULL;
    }
    FutureIterObject *it = st->futureiter_freelist;
    if (it != NULL) {
        /* Free-list entries are linked through `future`. */
        st->futureiter_freelist = (void *)it->future;
        st->futureiter_freelist_len--;
        (void)PyObject_Init((PyObject *)it, st->FutureIterType);
    } else {
        it = PyObject_GC_New(FutureIterObject, st->FutureIterType);
        if (it == NULL) {
            return NULL;
        }
    }
    it->future = (FutureObject *)Py_NewRef(fut);
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

/* One step of `await future`: yield the future itself while it is pending
 * (the Task sees _asyncio_future_blocking and waits on it), then return its
 * result or raise its exception. */
static PySendResult
FutureIter_am_send(FutureIterObject *it, PyObject *Py_UNUSED(arg), PyObject **result)
{
    *result = NULL;
    FutureObject *fut = it->future;
    if (fut == NULL) {
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    if (fut->state == PA_FUT_PENDING) {
        if (!fut->blocking) {
            fut->blocking = 1;
            *result = Py_NewRef(fut);
            return PYGEN_NEXT;
        }
        PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
        return PYGEN_ERROR;
    }
    it->future = NULL;
    PyObject *res = pa_future_result(pa_state_of((PyObject *)fut), fut);
    Py_DECREF(fut);
    if (res == NULL) {
        return PYGEN_ERROR;
    }
    *result = res;
    return PYGEN_RETURN;
}

static PyObject *
FutureIter_iternext(FutureIterObject *it)
{
    PyObject *res;
    PySendResult r = FutureIter_am_send(it, Py_None, &res);
    return pa_iternext_from_send(r, res);
}

static PyObject *
FutureIter_send(FutureIterObject *it, PyObject *Py_UNUSED(value))
{
    /* Future.__await__ ignores what is sent to it. */
    return FutureIter_iternext(it);
}

PyObject *
pa_throw_args_to_exception(PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected 1 to 3 arguments, got %zd", nargs);
        return NULL;
    }
#if PA_THROW_3ARGS_DEPRECATED
    if (nargs > 1 &&
        PyErr_WarnEx(PyExc_DeprecationWarning,
                     "the (type, exc, tb) signature of throw() is deprecated, "
                     "use the single-arg signature instead.",
                     1) < 0) {
        return NULL;
    }
#endif
    PyObject *type = args[0];
    PyObject *val = nargs > 1 ? args[1] : NULL;
    PyObject *tb = nargs > 2 ? args[2] : NULL;
    if (val == Py_None) {
        val = NULL;
    }
    if (tb == Py_None) {
        tb = NULL;
    } else if (tb != NULL && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback");
        return NULL;
    }
    PyObject *exc;
    if (PyExceptionClass_Check(type)) {
        if (val != NULL && PyObject_TypeCheck(val, (PyTypeObject *)type)) {
            exc = Py_NewRef(val);
        } else if (val == NULL) {
            exc = PyObject_CallNoArgs(type);
        } else if (PyTuple_Check(val)) {
            exc = PyObject_Call(type, val, NULL);
        } else {
            exc = PyObject_CallOneArg(type, val);
        }
        if (exc == NULL) {
            return NULL;
        }
        if (!PyExceptionInstance_Check(exc)) {
            PyErr_Format(PyExc_TypeError,
                         "calling %R should have returned an instance of BaseException, not %s",
                         type, Py_TYPE(exc)->tp_name);
            Py_DECREF(exc);
            return NULL;
        }
    } else if (PyExceptionInstance_Check(type)) {
        if (val != NULL) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        exc = Py_NewRef(type);
    } else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes deriving BaseException or "
                        "instances of such a class");
        return NULL;
    }
    if (tb != NULL && PyException_SetTraceback(exc, tb) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    return exc;
}

static PyObject *
FutureIter_throw(FutureIterObject *it, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *exc = pa_throw_args_to_exception(args, nargs);
    if (exc == NULL) {
        return NULL;
    }
    Py_CLEAR(it->future);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *
FutureIter_close(FutureIterObject *it, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(it->future);
    Py_RETURN_NONE;
}

static int
FutureIter_traverse(FutureIterObject *it, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(it));
    Py_VISIT(it->future);
    return 0;
}

static int
FutureIter_clear(FutureIterObject *it)
{
    Py_CLEAR(it->future);
    return 0;
}

/* One await iterator is made per `await future`: dead ones are kept for
 * reuse (the type cannot be subclassed, so all have the same size). */
#define FUTUREITER_FREELIST_MAX 256

static void
FutureIter_dealloc(FutureIterObject *it)
{
    PyTypeObject *tp = Py_TYPE(it);
    PyObject_GC_UnTrack(it);
    Py_CLEAR(it->future);
    pa_state *st = pa_state_of_quiet((PyObject *)it);
    if (st != NULL && tp == st->FutureIterType &&
        st->futureiter_freelist_len < FUTUREITER_FREELIST_MAX) {
        it->future = st->futureiter_freelist;
        st->futureiter_freelist = it;
        st->futureiter_freelist_len++;
    } else {
        tp->tp_free(it);
    }
    Py_DECREF(tp);
}

void
pa_futureiter_freelist_clear(pa_state *st)
{
    FutureIterObject *it = st->futureiter_freelist;
    while (it != NULL) {
        FutureIterObject *next = (FutureIterObject *)(void *)it->future;
        PyObject_GC_Del(it);
        it = next;
    }
    st->futureiter_freelist = NULL;
    st->futureiter_freelist_len = 0;
}

static PyMethodDef FutureIter_methods[] = {
    {"send", (PyCFunction)FutureIter_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))FutureIter_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)FutureIter_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot FutureIter_slots[] = {
    {Py_tp_dealloc, FutureIter_dealloc},
    {Py_tp_traverse, FutureIter_traverse},
    {Py_tp_clear, FutureIter_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, FutureIter_iternext},
    {Py_tp_methods, FutureIter_methods},
    {Py_am_send, FutureIter_am_send},
    {0, NULL},
};

static PyType_Spec FutureIter_spec = {
    .name = "pyasync.FutureIter",
    .basicsize = sizeof(FutureIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = FutureIter_slots,
};

int
pa_futureiter_register_type(PyObject *module, pa_state *st)
{
    st->FutureIterType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &FutureIter_spec, NULL);
    return st->FutureIterType != NULL ? 0 : -1;
}
