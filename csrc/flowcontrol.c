/*
 * flowcontrol.c - the write side's flow control, shared by the transports:
 * the limits set_write_buffer_limits() takes (with asyncio's arithmetic and
 * errors, also for TLS), what get_write_buffer_size() and
 * get_write_buffer_limits() report, and the protocol's pause_writing() and
 * resume_writing() as the buffer crosses them. A protocol whose
 * pause_writing() or resume_writing() raises is reported to the exception
 * handler, as asyncio does, and the transport goes on.
 */
#include "transport.h"

#include <math.h>

static int
protocol_callback_failed(TransportObject *self, const char *message)
{
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = pa_tr_report(self, message, exc);
    Py_DECREF(exc);
    return rc;
}

int
pa_tr_maybe_pause_protocol(TransportObject *self)
{
    if (pa_tr_buffer_size(self) <= self->high_water || self->protocol_paused) {
        return 0;
    }
    self->protocol_paused = 1;
    PyObject *res = pa_tr_call_protocol(self, pa_tr_loop(self)->state->str_pause_writing, NULL, 0);
    if (res == NULL) {
        return protocol_callback_failed(self, "protocol.pause_writing() failed");
    }
    Py_DECREF(res);
    return 0;
}

int
pa_tr_maybe_resume_protocol(TransportObject *self)
{
    if (!self->protocol_paused || pa_tr_buffer_size(self) > self->low_water) {
        return 0;
    }
    self->protocol_paused = 0;
    PyObject *res = pa_tr_call_protocol(self, pa_tr_loop(self)->state->str_resume_writing, NULL, 0);
    if (res == NULL) {
        return protocol_callback_failed(self, "protocol.resume_writing() failed");
    }
    Py_DECREF(res);
    return 0;
}

/* get_write_buffer_size() of the stream and pipe transports (the datagram
 * transport counts its queue instead). */
PyObject *
pa_tr_m_get_write_buffer_size(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(PA_TR_WBUF_SIZE(self));
}

PyObject *
pa_tr_m_get_write_buffer_limits(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", self->low_water, self->high_water);
}

/* A limit asyncio accepted (any number >= 0) as the byte count the flow
 * control compares sizes with: its floor, since sizes are whole numbers
 * (`size > 1.5` is `size > 1`), and PY_SSIZE_T_MAX for anything larger,
 * which no buffer reaches. */
static int
limit_as_ssize_t(PyObject *value, Py_ssize_t *out)
{
    if (PyFloat_Check(value) && isinf(PyFloat_AS_DOUBLE(value))) {
        *out = PY_SSIZE_T_MAX; /* (-inf failed the check for >= 0) */
        return 0;
    }
    PyObject *whole;
    if (PyLong_Check(value)) {
        whole = Py_NewRef(value);
    } else {
        PyObject *math = PyImport_ImportModule("math");
        whole = math ? PyObject_CallMethod(math, "floor", "(O)", value) : NULL;
        Py_XDECREF(math);
        if (whole == NULL) {
            return -1;
        }
    }
    Py_ssize_t n = PyNumber_AsSsize_t(whole, NULL); /* clamped, never raises for an int */
    Py_DECREF(whole);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = n;
    return 0;
}

/* asyncio's arithmetic, on the objects given (ints, floats or any other
 * numbers), with its errors: high defaults to 4 * low, low to high // 4. */
int
pa_flow_limits(PyObject *high_obj, PyObject *low_obj, Py_ssize_t default_high, Py_ssize_t *hi,
               Py_ssize_t *lo)
{
    if (high_obj == Py_None) {
        high_obj = NULL;
    }
    if (low_obj == Py_None) {
        low_obj = NULL;
    }
    if (high_obj != NULL && low_obj != NULL && PyLong_CheckExact(high_obj) &&
        PyLong_CheckExact(low_obj)) {
        /* The usual call: two ints, checked without objects. */
        int overflow_high, overflow_low;
        long long high = PyLong_AsLongLongAndOverflow(high_obj, &overflow_high);
        long long low = PyLong_AsLongLongAndOverflow(low_obj, &overflow_low);
        if (!overflow_high && !overflow_low && high >= low && low >= 0 &&
            high <= PY_SSIZE_T_MAX) {
            *hi = (Py_ssize_t)high;
            *lo = (Py_ssize_t)low;
            return 0;
        }
    }
    PyObject *high = NULL, *low = NULL;
    int rc = -1;
    PyObject *four = PyLong_FromLong(4);
    if (four == NULL) {
        return -1;
    }
    if (high_obj != NULL) {
        high = Py_NewRef(high_obj);
    } else if (low_obj == NULL) {
        high = PyLong_FromSsize_t(default_high);
    } else {
        high = PyNumber_Multiply(four, low_obj);
    }
    if (high == NULL) {
        goto done;
    }
    low = low_obj != NULL ? Py_NewRef(low_obj) : PyNumber_FloorDivide(high, four);
    if (low == NULL) {
        goto done;
    }
    /* not high >= low >= 0 */
    int ok = PyObject_RichCompareBool(high, low, Py_GE);
    if (ok > 0) {
        PyObject *zero = PyLong_FromLong(0);
        ok = zero ? PyObject_RichCompareBool(low, zero, Py_GE) : -1;
        Py_XDECREF(zero);
    }
    if (ok < 0) {
        goto done;
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "high (%R) must be >= low (%R) must be >= 0", high, low);
        goto done;
    }
    Py_ssize_t h, l;
    if (limit_as_ssize_t(high, &h) < 0 || limit_as_ssize_t(low, &l) < 0) {
        goto done;
    }
    *hi = h;
    *lo = l;
    rc = 0;
done:
    Py_DECREF(four);
    Py_XDECREF(high);
    Py_XDECREF(low);
    return rc;
}

static int
set_limits(TransportObject *self, PyObject *high_obj, PyObject *low_obj)
{
    return pa_flow_limits(high_obj, low_obj, PA_DEFAULT_HIGH_WATER, &self->high_water,
                          &self->low_water);
}

PyObject *
pa_tr_m_set_write_buffer_limits(TransportObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *high = Py_None, *low = Py_None;
    static char *kwlist[] = {"high", "low", NULL};
    if (pa_tr_check_initialised(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_limits", kwlist, &high,
                                     &low)) {
        return NULL;
    }
    if (set_limits(self, high, low) < 0 || pa_tr_maybe_pause_protocol(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}
