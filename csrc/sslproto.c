/*
 * sslproto.c - the SSL protocol's state machine: TLS between a stream
 * transport and the application, with the behaviour of
 * asyncio.sslproto.SSLProtocol of the running Python (see sslproto.h for
 * the split of work). The handshake, the shutdown, errors and the
 * application protocol are here; the data paths (writing, reading) are in
 * sslproto_data.c, the Python type in sslproto_type.c.
 *
 * States, as asyncio names them:
 *
 *     UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN
 *          ^______________________________________________|  (any -> UNWRAPPED)
 *
 * and the application's: INIT -> CON_MADE [-> EOF] -> CON_LOST.
 *
 * Where this differs in how, never in what:
 *   - reading: after a read that returned data, the next read is skipped
 *     when neither the incoming BIO nor the SSL object holds a byte: it
 *     could only raise SSLWantReadError, whose making costs more than
 *     decrypting a small record (about 2.4 us). This holds because OpenSSL
 *     reads from its BIO exactly the record it processes (read-ahead is off:
 *     Python never turns it on), so a record not yet decrypted is either
 *     still in the BIO or, when incomplete, was taken by a read that failed
 *     with SSLWantReadError. Done only through the _ssl object itself
 *     (sslcore_is_raw), whose pending() is OpenSSL's SSL_pending().
 *   - app writes with an empty backlog go to sslobj.write() without being
 *     queued first; what it does not take is queued as asyncio queues it.
 *   - bytes from a transport of ours arrive through pa_sslproto_data_in()
 *     from its receive buffer; get_buffer()/buffer_updated() remain for any
 *     other transport (and for Python callers), with a buffer made on demand.
 *
 * Re-entrancy: the application's callbacks (data_received, eof_received,
 * pause_writing, connection_made) may close or abort either transport, set
 * another protocol or call back into us. Every path keeps a reference to
 * self across such calls and re-reads fields after them; a field that
 * Python sets to None (transport, app_protocol, app_transport after
 * connection_lost) is NULL here and checked where asyncio would have raised
 * AttributeError on None.
 */
#include "sslproto.h"
#include "loop.h"
#include "transport.h"


static const char *const state_names[] = {
    "SSLProtocolState.UNWRAPPED", "SSLProtocolState.DO_HANDSHAKE", "SSLProtocolState.WRAPPED",
    "SSLProtocolState.FLUSHING",  "SSLProtocolState.SHUTDOWN",
};


const char *
pa_ssl_state_name(pa_ssl_state state)
{
    return state_names[state];
}

/* ------------------------------------------------------------ small helpers */


/* The exceptions asyncio's SSLAgainErrors catches. */
int
pa_ssl_again_error_raised(pa_ssl_names *n)
{
    return PyErr_ExceptionMatches(n->SSLWantReadError) ||
           PyErr_ExceptionMatches(n->SSLSyscallError);
}

Py_ssize_t
pa_ssl_bio_pending(pa_ssl_names *n, PyObject *bio)
{
    PyObject *v = PyObject_GetAttr(bio, n->str_pending);
    if (v == NULL) {
        return -1;
    }
    Py_ssize_t p = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return p;
}


/* A method of the transport below, as Python would call it on None when
 * connection_lost() already dropped it. */
static PyObject *
transport_call(SSLProtocolObject *self, PyObject *name, PyObject *arg)
{
    if (self->transport == NULL) {
        PyErr_Format(PyExc_AttributeError, "'NoneType' object has no attribute '%U'", name);
        return NULL;
    }
    PyObject *tr = Py_NewRef(self->transport);
    PyObject *res = arg ? pa_ssl_call1(tr, name, arg) : pa_ssl_call0(tr, name);
    Py_DECREF(tr);
    return res;
}

int
pa_ssl_transport_call_void(SSLProtocolObject *self, PyObject *name, PyObject *arg)
{
    PyObject *res = transport_call(self, name, arg);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* transport._force_close(exc) on 3.13, and on 3.11/3.12 for everything but
 * _abort(), which calls abort() there. */
int
pa_ssl_transport_force_close(SSLProtocolObject *self, PyObject *exc)
{
    return pa_ssl_transport_call_void(self, pa_ssl_names_of(self)->str_force_close,
                                      exc ? exc : Py_None);
}

int
pa_ssl_log(SSLProtocolObject *self, const char *level, const char *fmt, PyObject *arg, int exc_info)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    PyObject *res;
    if (exc_info) {
        PyObject *meth = PyObject_GetAttrString(n->logger, level);
        PyObject *args = meth ? Py_BuildValue("(sOO)", fmt, (PyObject *)self, arg) : NULL;
        PyObject *kw = args ? Py_BuildValue("{s:O}", "exc_info", Py_True) : NULL;
        res = kw ? PyObject_Call(meth, args, kw) : NULL;
        Py_XDECREF(meth);
        Py_XDECREF(args);
        Py_XDECREF(kw);
    } else if (arg != NULL) {
        res = PyObject_CallMethod(n->logger, level, "sOO", fmt, (PyObject *)self, arg);
    } else if (strstr(fmt, "%r") != NULL) {
        res = PyObject_CallMethod(n->logger, level, "sO", fmt, (PyObject *)self);
    } else {
        res = PyObject_CallMethod(n->logger, level, "s", fmt);
    }
    Py_XDECREF(res);
    return res ? 0 : -1;
}

int
pa_ssl_set_state(SSLProtocolObject *self, pa_ssl_state new_state)
{
    pa_ssl_state s = self->state;
    int allowed = new_state == PA_SSL_UNWRAPPED ||
                  (s == PA_SSL_UNWRAPPED && new_state == PA_SSL_DO_HANDSHAKE) ||
                  (s == PA_SSL_DO_HANDSHAKE && new_state == PA_SSL_WRAPPED) ||
                  (s == PA_SSL_WRAPPED && new_state == PA_SSL_FLUSHING) ||
                  (s == PA_SSL_FLUSHING && new_state == PA_SSL_SHUTDOWN);
    if (!allowed) {
        PyErr_Format(PyExc_RuntimeError, "cannot switch state from %s to %s", state_names[s],
                     state_names[new_state]);
        return -1;
    }
    self->state = new_state;
    return 0;
}

/* What asyncio's accept task does when the waiter it awaits fails: close
 * the app transport (by then a no-op: the connection is already going) and,
 * in debug mode, report the error. */
static int
accept_failed(SSLProtocolObject *self, PyObject *exc)
{
    self->report_accept_errors = 0;
    pa_state *st = pa_ssl_state_of(self);
    int debug = pa_loop_get_debug(st, self->loop);
    if (debug <= 0) {
        return debug;
    }
    PyObject *context = Py_BuildValue(
        "{s:s,s:O}", "message", "Error on transport creation for incoming connection",
        "exception", exc);
    if (context == NULL ||
        (self->app_protocol && PyDict_SetItemString(context, "protocol", self->app_protocol) < 0) ||
        (self->app_transport &&
         PyDict_SetItemString(context, "transport", self->app_transport) < 0)) {
        Py_XDECREF(context);
        return -1;
    }
    PyObject *res = pa_ssl_call1(self->loop, st->str_call_exception_handler, context);
    Py_DECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

int
pa_ssl_wakeup_waiter(SSLProtocolObject *self, PyObject *exc)
{
    if (self->waiter == NULL || self->waiter == Py_None) {
        if (self->report_accept_errors && exc != NULL) {
            return accept_failed(self, exc);
        }
        self->report_accept_errors = 0;
        return 0;
    }
    pa_state *st = pa_ssl_state_of(self);
    PyObject *waiter = self->waiter;
    self->waiter = NULL; /* asyncio drops it after settling; we own the reference now */
    PyObject *cancelled = pa_ssl_call0(waiter, pa_ssl_names_of(self)->str_cancelled);
    int rc = -1;
    if (cancelled != NULL) {
        int is = PyObject_IsTrue(cancelled);
        Py_DECREF(cancelled);
        if (is == 0) {
            PyObject *res = exc ? pa_ssl_call1(waiter, st->str_set_exception, exc)
                                : pa_ssl_call1(waiter, st->str_set_result, Py_None);
            Py_XDECREF(res);
            rc = res ? 0 : -1;
        } else {
            rc = is < 0 ? -1 : 0;
        }
    }
    if (rc < 0) {
        /* asyncio leaves the waiter in place when settling it raised */
        Py_XSETREF(self->waiter, waiter);
        return -1;
    }
    Py_DECREF(waiter);
    return 0;
}

int
pa_ssl_cancel_handle(PyObject **handle)
{
    PyObject *h = *handle;
    if (h == NULL || h == Py_None) {
        Py_CLEAR(*handle);
        return 0;
    }
    *handle = NULL;
    PyObject *res = PyObject_CallMethod(h, "cancel", NULL);
    Py_DECREF(h);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* loop.call_later(delay, self.<method>) */
static PyObject *
call_later(SSLProtocolObject *self, PyObject *delay, PyObject *method_name)
{
    PyObject *cb = PyObject_GetAttr((PyObject *)self, method_name);
    if (cb == NULL) {
        return NULL;
    }
    PyObject *args[3] = {self->loop, delay, cb};
    PyObject *h = PyObject_VectorcallMethod(pa_ssl_names_of(self)->str_call_later, args,
                                            3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(cb);
    return h;
}

/* loop.call_soon(self.<method>) */
int
pa_ssl_call_soon_method(SSLProtocolObject *self, PyObject *method_name)
{
    PyObject *cb = PyObject_GetAttr((PyObject *)self, method_name);
    if (cb == NULL) {
        return -1;
    }
    int rc = pa_call_soon(pa_ssl_state_of(self), self->loop, cb, NULL, 0, NULL);
    Py_DECREF(cb);
    return rc;
}

Py_ssize_t
pa_sslproto_write_buffer_size(SSLProtocolObject *self)
{
    Py_ssize_t p = pa_ssl_bio_pending(pa_ssl_names_of(self), self->outgoing);
    return p < 0 ? -1 : p + self->write_buffer_size;
}

Py_ssize_t
pa_sslproto_read_buffer_size(SSLProtocolObject *self)
{
    return pa_ssl_bio_pending(pa_ssl_names_of(self), self->incoming);
}

/* ------------------------------------------------------------ app protocol */

int
pa_sslproto_set_app_protocol(SSLProtocolObject *self, PyObject *app_protocol)
{
    pa_state *st = pa_ssl_state_of(self);
    int is_buffer = 0;
    PyObject *get_buffer;
    int has = pa_get_optional_attr(app_protocol, st->str_get_buffer, &get_buffer);
    if (has < 0) {
        return -1;
    }
    Py_XDECREF(get_buffer);
    if (has) {
        is_buffer = PyObject_IsInstance(app_protocol, st->BufferedProtocol);
        if (is_buffer < 0) {
            return -1;
        }
    }
    Py_XSETREF(self->app_protocol, Py_NewRef(app_protocol));
    self->app_is_buffer = (char)is_buffer;
    return 0;
}

/* app_protocol.<name>(arg): as Python would do it, AttributeError on None. */
PyObject *
pa_ssl_app_call(SSLProtocolObject *self, PyObject *name, PyObject *arg)
{
    if (self->app_protocol == NULL) {
        PyErr_Format(PyExc_AttributeError, "'NoneType' object has no attribute '%U'", name);
        return NULL;
    }
    PyObject *app = Py_NewRef(self->app_protocol);
    PyObject *res = arg ? pa_ssl_call1(app, name, arg) : pa_ssl_call0(app, name);
    Py_DECREF(app);
    return res;
}

PyObject *
pa_ssl_get_app_transport(SSLProtocolObject *self)
{
    if (self->app_transport == NULL) {
        if (self->app_transport_created) {
            PyErr_SetString(PyExc_RuntimeError, "Creating _SSLProtocolTransport twice");
            return NULL;
        }
        self->app_transport = PyObject_CallFunctionObjArgs(
            pa_ssl_names_of(self)->SSLProtocolTransport, self->loop, (PyObject *)self, NULL);
        if (self->app_transport == NULL) {
            return NULL;
        }
        self->app_transport_created = 1;
    }
    return self->app_transport; /* borrowed */
}

/* app_transport._closed = True */
int
pa_ssl_mark_app_transport_closed(SSLProtocolObject *self)
{
    if (self->app_transport == NULL) {
        return 0;
    }
    return PyObject_SetAttr(self->app_transport, pa_ssl_names_of(self)->str_closed, Py_True);
}

/* ------------------------------------------------------------ errors */

int
pa_ssl_fatal_error(SSLProtocolObject *self, PyObject *exc, const char *message)
{
    pa_state *st = pa_ssl_state_of(self);
    if (self->transport != NULL && pa_ssl_transport_force_close(self, exc) < 0) {
        return -1;
    }
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        int debug = pa_loop_get_debug(st, self->loop);
        if (debug < 0) {
            return -1;
        }
        if (debug) {
            PyObject *msg = PyUnicode_FromString(message);
            /* logger.debug("%r: %s", self, message, exc_info=True): the
             * exception is the one being handled by our caller in asyncio;
             * here it is passed as the exc_info value itself. */
            PyObject *logger = pa_ssl_names_of(self)->logger;
            PyObject *meth = msg ? PyObject_GetAttrString(logger, "debug") : NULL;
            PyObject *args = meth ? Py_BuildValue("(sOO)", "%r: %s", (PyObject *)self, msg) : NULL;
            PyObject *kw = args ? Py_BuildValue("{s:O}", "exc_info", exc) : NULL;
            PyObject *res = kw ? PyObject_Call(meth, args, kw) : NULL;
            Py_XDECREF(msg);
            Py_XDECREF(meth);
            Py_XDECREF(args);
            Py_XDECREF(kw);
            if (res == NULL) {
                return -1;
            }
            Py_DECREF(res);
        }
        return 0;
    }
    if (PyObject_TypeCheck(exc, (PyTypeObject *)st->CancelledError)) {
        return 0;
    }
    PyObject *context = Py_BuildValue("{s:s,s:O,s:O,s:O}", "message", message, "exception", exc,
                                      "transport", self->transport ? self->transport : Py_None,
                                      "protocol", (PyObject *)self);
    PyObject *res = context ? pa_ssl_call1(self->loop, st->str_call_exception_handler, context)
                            : NULL;
    Py_XDECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* The raised exception, if it is an Exception, goes to pa_ssl_fatal_error();
 * BaseExceptions propagate (asyncio's `except Exception`). */
int
pa_ssl_fatal_error_from_raised(SSLProtocolObject *self, const char *message)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = pa_ssl_fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

/* ------------------------------------------------------------ handshake */


int
pa_ssl_start_handshake(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    int debug = pa_loop_get_debug(st, self->loop);
    if (debug < 0) {
        return -1;
    }
    if (debug) {
        if (pa_ssl_log(self, "debug", "%r starts SSL handshake", NULL, 0) < 0) {
            return -1;
        }
        PyObject *now = pa_ssl_call0(self->loop, st->str_time);
        if (now == NULL) {
            return -1;
        }
        Py_XSETREF(self->handshake_start_time, now);
    } else {
        Py_CLEAR(self->handshake_start_time);
    }
    if (pa_ssl_set_state(self, PA_SSL_DO_HANDSHAKE) < 0) {
        return -1;
    }
    PyObject *h = call_later(self, self->handshake_timeout, n->str_check_handshake_timeout);
    if (h == NULL) {
        return -1;
    }
    Py_XSETREF(self->handshake_timeout_handle, h);
    return 0;
}

int
pa_ssl_do_handshake(SSLProtocolObject *self)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    PyObject *res = pa_ssl_call0(self->sslcore, n->str_do_handshake);
    if (res != NULL) {
        Py_DECREF(res);
        return pa_ssl_on_handshake_complete(self, NULL);
    }
    if (pa_ssl_again_error_raised(n)) {
        PyErr_Clear();
        return pa_ssl_process_outgoing(self);
    }
    if (PyErr_ExceptionMatches(n->SSLError)) {
        PyObject *exc = pa_err_take();
        int rc = pa_ssl_on_handshake_complete(self, exc);
        Py_DECREF(exc);
        return rc;
    }
    return -1;
}

int
pa_ssl_on_handshake_complete(SSLProtocolObject *self, PyObject *handshake_exc)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    if (pa_ssl_cancel_handle(&self->handshake_timeout_handle) < 0) {
        return -1;
    }
    PyObject *peercert = NULL;
    PyObject *exc = NULL;
    if (handshake_exc == NULL) {
        if (pa_ssl_set_state(self, PA_SSL_WRAPPED) == 0) {
            peercert = pa_ssl_call0(self->sslcore, n->str_getpeercert);
        }
    } else if (PyType_Check(handshake_exc)) {
        exc = PyObject_CallNoArgs(handshake_exc); /* `raise ConnectionResetError` */
        if (exc != NULL) {
            pa_err_restore(exc);
            exc = NULL;
        }
    } else {
        pa_err_restore(Py_NewRef(handshake_exc));
    }
    if (peercert == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;
        }
        exc = pa_err_take();
        self->state = PA_SSL_UNWRAPPED;
        const char *msg = PyObject_TypeCheck(exc, (PyTypeObject *)n->CertificateError)
                              ? "SSL handshake failed on verifying the certificate"
                              : "SSL handshake failed";
        int rc = pa_ssl_fatal_error(self, exc, msg);
        if (rc == 0) {
            rc = pa_ssl_wakeup_waiter(self, exc);
        }
        Py_DECREF(exc);
        return rc;
    }
    if (self->handshake_start_time != NULL) {
        PyObject *now = pa_ssl_call0(self->loop, st->str_time);
        double dt = now ? PyFloat_AsDouble(now) - PyFloat_AsDouble(self->handshake_start_time) : 0;
        Py_XDECREF(now);
        PyObject *ms = now && !PyErr_Occurred() ? PyFloat_FromDouble(dt * 1e3) : NULL;
        int rc = ms ? pa_ssl_log(self, "debug", "%r: SSL handshake took %.1f ms", ms, 0) : -1;
        Py_XDECREF(ms);
        if (rc < 0) {
            Py_DECREF(peercert);
            return -1;
        }
    }
    PyObject *cipher = pa_ssl_call0(self->sslcore, n->str_cipher);
    PyObject *compression = cipher ? pa_ssl_call0(self->sslcore, n->str_compression) : NULL;
    int rc = compression ? 0 : -1;
    if (rc == 0) {
        rc = PyDict_SetItemString(self->extra, "peercert", peercert);
    }
    if (rc == 0) {
        rc = PyDict_SetItemString(self->extra, "cipher", cipher);
    }
    if (rc == 0) {
        rc = PyDict_SetItemString(self->extra, "compression", compression);
    }
    if (rc == 0) {
        rc = PyDict_SetItemString(self->extra, "ssl_object", self->sslobj);
    }
    Py_DECREF(peercert);
    Py_XDECREF(cipher);
    Py_XDECREF(compression);
    if (rc < 0) {
        return -1;
    }
    if (self->app_state == PA_APP_INIT) {
        self->app_state = PA_APP_CON_MADE;
        PyObject *tr = pa_ssl_get_app_transport(self);
        PyObject *res = tr ? pa_ssl_app_call(self, st->str_connection_made, tr) : NULL;
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (pa_ssl_wakeup_waiter(self, NULL) < 0) {
        return -1;
    }
    return pa_ssl_do_read(self);
}

/* ------------------------------------------------------------ shutdown */

int
pa_sslproto_abort(SSLProtocolObject *self, PyObject *exc)
{
    self->state = PA_SSL_UNWRAPPED;
    if (self->transport == NULL) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    return pa_ssl_transport_force_close(self, exc);
#else
    (void)exc;
    return pa_ssl_transport_call_void(self, pa_ssl_names_of(self)->str_abort, NULL);
#endif
}

int
pa_sslproto_start_shutdown(SSLProtocolObject *self)
{
    pa_ssl_state s = self->state;
    if (s == PA_SSL_FLUSHING || s == PA_SSL_SHUTDOWN || s == PA_SSL_UNWRAPPED) {
        return 0;
    }
    if (pa_ssl_mark_app_transport_closed(self) < 0) {
        return -1;
    }
    if (s == PA_SSL_DO_HANDSHAKE) {
        return pa_sslproto_abort(self, NULL);
    }
    if (pa_ssl_set_state(self, PA_SSL_FLUSHING) < 0) {
        return -1;
    }
    PyObject *h = call_later(self, self->shutdown_timeout,
                             pa_ssl_names_of(self)->str_check_shutdown_timeout);
    if (h == NULL) {
        return -1;
    }
    Py_XSETREF(self->shutdown_timeout_handle, h);
    return pa_ssl_do_flush(self);
}

int
pa_ssl_do_flush(SSLProtocolObject *self)
{
    if (pa_ssl_do_read(self) < 0 || pa_ssl_set_state(self, PA_SSL_SHUTDOWN) < 0) {
        return -1;
    }
    return pa_ssl_do_shutdown(self);
}

static int
on_shutdown_complete(SSLProtocolObject *self, PyObject *shutdown_exc)
{
    if (pa_ssl_cancel_handle(&self->shutdown_timeout_handle) < 0) {
        return -1;
    }
    if (shutdown_exc != NULL) {
        return pa_ssl_fatal_error(self, shutdown_exc, "Fatal error on transport");
    }
    if (self->transport == NULL) {
        PyErr_SetString(PyExc_AttributeError, "'NoneType' object has no attribute 'close'");
        return -1;
    }
    PyObject *close = PyObject_GetAttr(self->transport, pa_ssl_names_of(self)->str_close);
    if (close == NULL) {
        return -1;
    }
    int rc = pa_call_soon(pa_ssl_state_of(self), self->loop, close, NULL, 0, NULL);
    Py_DECREF(close);
    return rc;
}


int
pa_ssl_do_shutdown(SSLProtocolObject *self)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    if (!self->eof_received) {
        PyObject *res = pa_ssl_call0(self->sslcore,
                                     self->sslcore_is_raw ? n->str_shutdown : n->str_unwrap);
        if (res == NULL) {
            if (pa_ssl_again_error_raised(n)) {
                PyErr_Clear();
                return pa_ssl_process_outgoing(self);
            }
            if (PyErr_ExceptionMatches(n->SSLError)) {
                PyObject *exc = pa_err_take();
                int rc = on_shutdown_complete(self, exc);
                Py_DECREF(exc);
                return rc;
            }
            return -1;
        }
        Py_DECREF(res);
    }
    if (pa_ssl_process_outgoing(self) < 0 || pa_ssl_call_eof_received(self) < 0) {
        return -1;
    }
    return on_shutdown_complete(self, NULL);
}

