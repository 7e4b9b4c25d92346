/*
 * schedule.c - scheduling callbacks: call_soon(), call_soon_threadsafe(),
 * call_later() and call_at() of the Loop type, and pa_call_soon() and
 * pa_loop_push_ready(), through which the C code schedules its own.
 *
 * A callback becomes a Handle in the ready queue (readyqueue.c) or a
 * TimerHandle in the timer heap (timerheap.c); runloop.c runs them. Errors
 * and their messages are asyncio's, argument for argument.
 */
#include "loop.h"
#include "keywords.h"

#include "handle.h"

#include <math.h>
#include <string.h>

/* Debug mode: refuse non-threadsafe calls from a thread other than the one
 * running the loop, like asyncio's _check_thread(). */
static int
check_thread(LoopObject *self)
{
    if (self->running && self->thread_id != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "Non-thread-safe operation invoked on an event loop "
                                            "other than the current one");
        return -1;
    }
    return 0;
}

/* Split `*args, context=None` of the call_* methods. */
static int
parse_context_kw(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **context,
                 const char *method)
{
    *context = NULL;
    if (kwnames == NULL) {
        return 0;
    }
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "context") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", method,
                         name);
            return -1;
        }
        *context = args[nargs + i];
    }
    return 0;
}

int
pa_loop_push_ready(LoopObject *loop, PyObject *handle, int threadsafe)
{
    if (pa_readyqueue_push(&loop->ready, Py_NewRef(handle)) < 0) {
        Py_DECREF(handle);
        PyErr_NoMemory();
        return -1;
    }
    /* A loop that runs in this very thread is executing a callback, not
     * polling: no need to wake it. */
    if (threadsafe &&
        !(loop->running && loop->thread_id == PyThread_get_thread_ident())) {
        pa_wakeup_notify(loop);
    }
    return 0;
}


int
pa_call_soon(pa_state *st, PyObject *loop, PyObject *callback, PyObject *const *args,
             Py_ssize_t nargs, PyObject *context)
{
    if (pa_loop_fast_path(st, loop)) {
        LoopObject *lp = (LoopObject *)loop;
        if (lp->closed) {
            PyObject *kept[3] = {callback, nargs > 0 ? args[0] : NULL, nargs > 1 ? args[1] : NULL};
            return pa_loop_raise_closed(lp, kept, nargs > 2 ? 1 : 1 + nargs);
        }
        HandleObject *h =
            pa_handle_new(st, st->HandleType, loop, callback, args, nargs, context, 0);
        if (h == NULL) {
            return -1;
        }
        int rc = pa_loop_push_ready(lp, (PyObject *)h, 0);
        Py_DECREF(h);
        return rc;
    }
    /* Any other loop, debug mode (whose checks live in call_soon), or a
     * replaced call_soon(). */
    PyObject *fresh = NULL;
    if (context == st->fresh_context) {
        context = fresh = PyContext_New();
        if (fresh == NULL) {
            return -1;
        }
    }
    PyObject *stack[4];
    if (nargs > 2) {
        PyErr_SetString(PyExc_SystemError, "pa_call_soon: too many arguments");
        return -1;
    }
    stack[0] = callback;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        stack[1 + i] = args[i];
    }
    stack[1 + nargs] = context;
    PyObject *meth = PyObject_GetAttr(loop, st->str_call_soon);
    PyObject *res = meth ? PyObject_Vectorcall(meth, stack, 1 + nargs,
                                               context ? st->kwnames_context : NULL)
                         : NULL;
    Py_XDECREF(meth);
    Py_XDECREF(fresh);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *
schedule_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames,
              const char *method, int threadsafe)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *context;
    if (parse_context_kw(args, nargs, kwnames, &context, method) < 0) {
        return NULL;
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: 'callback'",
                     method);
        return NULL;
    }
    if (pa_loop_check_closed_keeping(self, args, nargs) < 0) {
        return NULL;
    }
    if (self->debug && !threadsafe && check_thread(self) < 0) {
        return NULL;
    }
    pa_state *st = self->state;
    /* asyncio checks the callback in debug mode only; a bad one otherwise
     * fails when it runs, reported to the exception handler. */
    if (self->debug && pa_check_callback(st, args[0], method) < 0) {
        return NULL;
    }
    HandleObject *h = pa_handle_new(st, st->HandleType, (PyObject *)self, args[0], args + 1,
                                    nargs - 1, context, self->debug);
    if (h == NULL) {
        return NULL;
    }
    if (pa_loop_push_ready(self, (PyObject *)h, threadsafe) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

PyObject *
pa_loop_m_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(pa_loop_m_call_soon, "call_soon", "callback");
    return schedule_soon(self, args, nargsf, kwnames, "call_soon", 0);
}

PyObject *
pa_loop_m_call_soon_threadsafe(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                          PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(pa_loop_m_call_soon_threadsafe, "call_soon_threadsafe", "callback");
    return schedule_soon(self, args, nargsf, kwnames, "call_soon_threadsafe", 1);
}

/* call_at(when, callback, *args, context=None); call_later() arrives here
 * with its deadline already computed, and shares call_at's error messages as
 * it does in asyncio. */
static PyObject *
schedule_at(LoopObject *self, double when, PyObject *const *args, Py_ssize_t nargs,
            PyObject *context)
{
    if (pa_loop_check_closed_keeping(self, args, nargs) < 0) {
        return NULL;
    }
    if (self->debug && check_thread(self) < 0) {
        return NULL;
    }
    pa_state *st = self->state;
    if (self->debug && pa_check_callback(st, args[0], "call_at") < 0) { /* as call_soon */
        return NULL;
    }
    HandleObject *h = pa_handle_new(st, st->TimerHandleType, (PyObject *)self, args[0], args + 1,
                                    nargs - 1, context, self->debug);
    if (h == NULL) {
        return NULL;
    }
    h->when = when;
    if (pa_timerheap_push(&self->timers, when, Py_NewRef((PyObject *)h)) < 0) {
        Py_DECREF(h); /* the heap's reference */
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    h->scheduled = 1;
    self->metrics.timers_scheduled++;
    return (PyObject *)h;
}

static int
parse_time_arg(PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames, const char *method,
               const char *argname, const char *none_msg, double *value, PyObject **context)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (parse_context_kw(args, nargs, kwnames, context, method) < 0) {
        return -1;
    }
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() missing required positional arguments: '%s' and "
                                      "'callback'",
                     method, argname);
        return -1;
    }
    if (args[0] == Py_None) {
        PyErr_SetString(PyExc_TypeError, none_msg);
        return -1;
    }
    *value = PyFloat_AsDouble(args[0]);
    if (*value == -1.0 && PyErr_Occurred()) {
        if (strcmp(argname, "delay") == 0 && PyErr_ExceptionMatches(PyExc_TypeError)) {
            /* asyncio's call_later() fails in `self.time() + delay`. */
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "unsupported operand type(s) for +: 'float' and '%.100s'",
                         Py_TYPE(args[0])->tp_name);
        }
        return -1;
    }
    if (isnan(*value)) {
        /* A NaN deadline compares false with everything: it would sit at the
         * top of the heap forever, never due, and make the loop spin. */
        PyErr_Format(PyExc_ValueError, "%s must not be NaN", argname);
        return -1;
    }
    return 0;
}

PyObject *
pa_loop_m_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(pa_loop_m_call_later, "call_later", "delay", "callback");
    double delay;
    PyObject *context;
    if (parse_time_arg(args, nargsf, kwnames, "call_later", "delay", "delay must not be None",
                       &delay, &context) < 0) {
        return NULL;
    }
    double now;
    if (pa_loop_now(self, &now) < 0) {
        return NULL;
    }
    return schedule_at(self, now + delay, args + 1, PyVectorcall_NARGS(nargsf) - 1, context);
}

PyObject *
pa_loop_m_call_at(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(pa_loop_m_call_at, "call_at", "when", "callback");
    double when;
    PyObject *context;
    if (parse_time_arg(args, nargsf, kwnames, "call_at", "when", "when cannot be None", &when,
                       &context) < 0) {
        return NULL;
    }
    PyObject *h = schedule_at(self, when, args + 1, PyVectorcall_NARGS(nargsf) - 1, context);
    if (h != NULL && PyLong_Check(args[0])) {
        ((HandleObject *)h)->when_is_int = 1;
    }
    return h;
}
