/*
 * sslproto.c - the SSL protocol's state machine and data paths: TLS between
 * a stream transport and the application, with the behaviour of
 * asyncio.sslproto.SSLProtocol of the running Python (see sslproto.h for
 * the split of work; the Python type is in sslproto_type.c).
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
static int
again_error_raised(pa_ssl_names *n)
{
    return PyErr_ExceptionMatches(n->SSLWantReadError) ||
           PyErr_ExceptionMatches(n->SSLSyscallError);
}

static Py_ssize_t
bio_pending(pa_ssl_names *n, PyObject *bio)
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

static int
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
static int
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
    Py_ssize_t p = bio_pending(pa_ssl_names_of(self), self->outgoing);
    return p < 0 ? -1 : p + self->write_buffer_size;
}

Py_ssize_t
pa_sslproto_read_buffer_size(SSLProtocolObject *self)
{
    return bio_pending(pa_ssl_names_of(self), self->incoming);
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
static PyObject *
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
static int
fatal_error_from_raised(SSLProtocolObject *self, const char *message)
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
    if (again_error_raised(n)) {
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

static int call_eof_received(SSLProtocolObject *self);

int
pa_ssl_do_shutdown(SSLProtocolObject *self)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    if (!self->eof_received) {
        PyObject *res = pa_ssl_call0(self->sslcore,
                                     self->sslcore_is_raw ? n->str_shutdown : n->str_unwrap);
        if (res == NULL) {
            if (again_error_raised(n)) {
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
    if (pa_ssl_process_outgoing(self) < 0 || call_eof_received(self) < 0) {
        return -1;
    }
    return on_shutdown_complete(self, NULL);
}

/* ------------------------------------------------------------ writing */

/* Flow control of the application's writes. */
int
pa_sslproto_control_app_writing(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    Py_ssize_t size = pa_sslproto_write_buffer_size(self);
    if (size < 0) {
        return -1;
    }
    PyObject *name, *message;
    if (size >= self->outgoing_high && !self->app_writing_paused) {
        self->app_writing_paused = 1;
        name = st->str_pause_writing;
        message = NULL;
    } else if (size <= self->outgoing_low && self->app_writing_paused) {
        self->app_writing_paused = 0;
        name = st->str_resume_writing;
    } else {
        return 0;
    }
    PyObject *res = pa_ssl_app_call(self, name, NULL);
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    message = PyUnicode_FromFormat("protocol.%U() failed", name);
    PyObject *context =
        message ? Py_BuildValue("{s:O,s:O,s:O,s:O}", "message", message, "exception", exc,
                                "transport", self->app_transport ? self->app_transport : Py_None,
                                "protocol", (PyObject *)self)
                : NULL;
    Py_DECREF(exc);
    Py_XDECREF(message);
    res = context ? pa_ssl_call1(self->loop, st->str_call_exception_handler, context) : NULL;
    Py_XDECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* Send what the SSL object wrote into the outgoing BIO. */
int
pa_ssl_process_outgoing(SSLProtocolObject *self)
{
    if (!self->ssl_writing_paused) {
        pa_ssl_names *n = pa_ssl_names_of(self);
        PyObject *data = pa_ssl_call0(self->outgoing, n->str_read);
        if (data == NULL) {
            return -1;
        }
        int rc = 0;
        if (PyBytes_GET_SIZE(data) > 0) {
            rc = pa_ssl_transport_call_void(self, n->str_write, data);
        }
        Py_DECREF(data);
        if (rc < 0) {
            return -1;
        }
    }
    return pa_sslproto_control_app_writing(self);
}

/* sslobj.write(data): the count written, or -1 with an exception. */
static Py_ssize_t
ssl_write(SSLProtocolObject *self, PyObject *data)
{
    PyObject *res = pa_ssl_call1(self->sslcore, pa_ssl_names_of(self)->str_write, data);
    if (res == NULL) {
        return -1;
    }
    Py_ssize_t count = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    if (count < 0 && !PyErr_Occurred()) {
        count = 0;
    }
    return count;
}

/* The backlog into the SSL object, then out. 0, or -1 with an exception
 * that is not one of SSLAgainErrors. */
int
pa_ssl_do_write(SSLProtocolObject *self)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    while (self->backlog != NULL && PyList_GET_SIZE(self->backlog) > 0) {
        PyObject *data = Py_NewRef(PyList_GET_ITEM(self->backlog, 0));
        Py_ssize_t count = ssl_write(self, data);
        Py_ssize_t data_len = count < 0 ? -1 : PyObject_Size(data);
        if (count < 0 || data_len < 0) {
            Py_DECREF(data);
            if (again_error_raised(n)) {
                PyErr_Clear();
                break;
            }
            return -1;
        }
        /* sslobj.write() may have run Python code (a subclass) that changed
         * the backlog: only touch it if data is still its head. */
        if (PyList_GET_SIZE(self->backlog) == 0 || PyList_GET_ITEM(self->backlog, 0) != data) {
            Py_DECREF(data);
            continue;
        }
        if (count < data_len) {
            PyObject *rest = PySequence_GetSlice(data, count, PY_SSIZE_T_MAX);
            if (rest == NULL) {
                Py_DECREF(data);
                return -1;
            }
            PyList_SetItem(self->backlog, 0, rest); /* steals rest, drops data's list ref */
            self->write_buffer_size -= count;
        } else {
            if (PySequence_DelItem(self->backlog, 0) < 0) {
                Py_DECREF(data);
                return -1;
            }
            self->write_buffer_size -= data_len;
        }
        Py_DECREF(data);
    }
    return pa_ssl_process_outgoing(self);
}

static int
append_backlog(SSLProtocolObject *self, PyObject *data)
{
    Py_ssize_t len = PyObject_Size(data);
    if (len < 0 || PyList_Append(self->backlog, data) < 0) {
        return -1;
    }
    self->write_buffer_size += len;
    return 0;
}

int
pa_sslproto_write_appdata(SSLProtocolObject *self, PyObject *list_of_data)
{
    pa_ssl_state s = self->state;
    if (s == PA_SSL_FLUSHING || s == PA_SSL_SHUTDOWN || s == PA_SSL_UNWRAPPED) {
        if (self->conn_lost >= pa_ssl_names_of(self)->log_threshold &&
            pa_ssl_log(self, "warning", "SSL connection is closed", NULL, 0) < 0) {
            return -1;
        }
        self->conn_lost++;
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    /* write(data) passes (data,): with nothing queued it goes straight into
     * the SSL object, and only what it did not take is queued. */
    PyObject *data = PyTuple_CheckExact(list_of_data) && PyTuple_GET_SIZE(list_of_data) == 1
                         ? PyTuple_GET_ITEM(list_of_data, 0)
                         : NULL;
    if (data == NULL || self->state != PA_SSL_WRAPPED || PyList_GET_SIZE(self->backlog) > 0) {
        PyObject *it = PyObject_GetIter(list_of_data);
        if (it == NULL) {
            rc = -1;
        } else {
            PyObject *item;
            while (rc == 0 && (item = PyIter_Next(it)) != NULL) {
                rc = append_backlog(self, item);
                Py_DECREF(item);
            }
            Py_DECREF(it);
            if (rc == 0 && PyErr_Occurred()) {
                rc = -1;
            }
        }
        if (rc < 0) {
            goto done;
        }
    } else {
        Py_ssize_t len = PyObject_Size(data);
        Py_ssize_t count = len < 0 ? -1 : ssl_write(self, data);
        if (count < 0) {
            if (again_error_raised(pa_ssl_names_of(self))) {
                PyErr_Clear();
                if (append_backlog(self, data) < 0) {
                    rc = -1;
                    goto done;
                }
                rc = pa_ssl_process_outgoing(self);
            } else {
                rc = -1;
            }
        } else if (count < len) {
            PyObject *rest = PySequence_GetSlice(data, count, PY_SSIZE_T_MAX);
            rc = rest ? append_backlog(self, rest) : -1;
            Py_XDECREF(rest);
            if (rc == 0) {
                rc = pa_ssl_do_write(self);
            }
        } else {
            rc = pa_ssl_process_outgoing(self);
        }
        if (rc < 0) {
            rc = fatal_error_from_raised(self, "Fatal error on SSL protocol");
        }
        goto done;
    }
    if (self->state == PA_SSL_WRAPPED && pa_ssl_do_write(self) < 0) {
        rc = fatal_error_from_raised(self, "Fatal error on SSL protocol");
    }
done:
    Py_DECREF(self);
    return rc;
}

/* ------------------------------------------------------------ reading */

static int
call_eof_received(SSLProtocolObject *self)
{
    if (self->app_state != PA_APP_CON_MADE) {
        return 0;
    }
    self->app_state = PA_APP_EOF;
    PyObject *keep_open = pa_ssl_app_call(self, pa_ssl_state_of(self)->str_eof_received, NULL);
    if (keep_open == NULL) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = pa_ssl_fatal_error(self, exc, "Error calling eof_received()");
        Py_DECREF(exc);
        return rc;
    }
    int truth = PyObject_IsTrue(keep_open);
    Py_DECREF(keep_open);
    if (truth > 0) {
        truth = pa_ssl_log(self, "warning",
                       "returning true from eof_received() has no effect when using ssl", NULL, 0);
    }
    if (truth < 0) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = pa_ssl_fatal_error(self, exc, "Error calling eof_received()");
        Py_DECREF(exc);
        return rc;
    }
    return 0;
}

/* Whether another read could only raise SSLWantReadError (see the top of
 * the file). */
static int
nothing_to_read(SSLProtocolObject *self)
{
    if (!self->sslcore_is_raw) {
        return 0;
    }
    pa_ssl_names *n = pa_ssl_names_of(self);
    Py_ssize_t in = bio_pending(n, self->incoming);
    if (in != 0) {
        if (in < 0) {
            PyErr_Clear(); /* the read will tell */
        }
        return 0;
    }
    PyObject *p = pa_ssl_call0(self->sslcore, n->str_pending);
    if (p == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t pending = PyLong_AsSsize_t(p);
    Py_DECREF(p);
    if (pending < 0) {
        PyErr_Clear();
    }
    return pending == 0;
}

/* sslobj.read(want, buffer): 1 with *count (>= 0; 0 is close_notify), 0
 * when it raised one of SSLAgainErrors (nothing more to read now), -1 with
 * an exception. */
static int
read_into(SSLProtocolObject *self, Py_ssize_t want, PyObject *buffer, Py_ssize_t *count)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    PyObject *want_obj = PyLong_FromSsize_t(want);
    if (want_obj == NULL) {
        return -1;
    }
    PyObject *args[3] = {self->sslcore, want_obj, buffer};
    PyObject *res = PyObject_VectorcallMethod(n->str_read, args,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(want_obj);
    if (res == NULL) {
        if (again_error_raised(n)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    *count = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    if (*count < 0 || *count > want) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_RuntimeError, "SSLObject.read() returned %zd", *count);
        }
        return -1;
    }
    return 1;
}

/* Records after the first, read straight into one bytes object that
 * starts with `first`: no bytes per record and no join. Its size is an
 * upper bound of what can still be read: the plaintext of what the BIO
 * holds, plus one record that OpenSSL may hold in part. 1 with *data (a
 * new reference) and *eof set, or -1 with an exception. */
static int
read_rest(SSLProtocolObject *self, PyObject *first, PyObject **data, int *eof)
{
    Py_ssize_t in = bio_pending(pa_ssl_names_of(self), self->incoming);
    if (in < 0) {
        return -1;
    }
    Py_ssize_t off = PyBytes_GET_SIZE(first);
    Py_ssize_t cap = off + in + SSL_RECORD_MAX;
    PyObject *buf = PyBytes_FromStringAndSize(NULL, cap);
    if (buf == NULL) {
        return -1;
    }
    memcpy(PyBytes_AS_STRING(buf), PyBytes_AS_STRING(first), (size_t)off);
    for (;;) {
        if (off == cap) {
            /* not expected (see above); grow rather than trust it */
            cap += SSL_RECORD_MAX;
            if (_PyBytes_Resize(&buf, cap) < 0) {
                return -1;
            }
        }
        PyObject *view =
            PyMemoryView_FromMemory(PyBytes_AS_STRING(buf) + off, cap - off, PyBUF_WRITE);
        Py_ssize_t count = 0;
        int got = view ? read_into(self, cap - off, view, &count) : -1;
        /* buf may be resized: no view of it may outlive the read (a
         * traceback of an SSLObject subclass's read() may hold one) */
        if (view != NULL && Py_REFCNT(view) > 1) {
            PyObject *exc = pa_err_take();
            PyObject *released = PyObject_CallMethod(view, "release", NULL);
            if (released == NULL) {
                Py_XDECREF(exc);
                got = -1;
            } else {
                Py_DECREF(released);
                pa_err_restore(exc);
            }
        }
        Py_XDECREF(view);
        if (got < 0) {
            Py_DECREF(buf);
            return -1;
        }
        if (got == 0) {
            break;
        }
        if (count == 0) {
            *eof = 1;
            break;
        }
        off += count;
        if (nothing_to_read(self)) {
            break;
        }
    }
    if (off != cap && _PyBytes_Resize(&buf, off) < 0) {
        return -1;
    }
    *data = buf;
    return 1;
}

/* sslobj.read() until it has nothing more; data_received() with what was
 * read, in one piece. */
static int
do_read_copied(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    /* One read gives at most one record, whose plaintext is at most 16 KiB
     * (TLS's limit): asking for that much, not asyncio's max_size, spares
     * the allocation of 256 KiB per record. */
    PyObject *size = PyLong_FromSsize_t(SSL_RECORD_MAX);
    if (size == NULL) {
        return -1;
    }
    PyObject *data = pa_ssl_call1(self->sslcore, n->str_read, size);
    Py_DECREF(size);
    int eof = 0;
    if (data == NULL) {
        if (!again_error_raised(n)) {
            return -1;
        }
        PyErr_Clear();
    } else if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "SSLObject.read() returned %.200s, not bytes",
                     Py_TYPE(data)->tp_name);
        Py_DECREF(data);
        return -1;
    } else if (PyBytes_GET_SIZE(data) == 0) {
        Py_CLEAR(data);
        eof = 1;
    } else if (!nothing_to_read(self)) {
        PyObject *all;
        int rc = read_rest(self, data, &all, &eof);
        Py_DECREF(data);
        if (rc < 0) {
            return -1;
        }
        data = all;
    }
    if (data != NULL) {
        PyObject *res = pa_ssl_app_call(self, st->str_data_received, data);
        Py_DECREF(data);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (eof) {
        if (call_eof_received(self) < 0 || pa_sslproto_start_shutdown(self) < 0) {
            return -1;
        }
    }
    return 0;
}

/* sslobj.read(n, buffer) into the app's get_buffer(); buffer_updated(). */
static int
do_read_buffered(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    Py_ssize_t hint = pa_sslproto_read_buffer_size(self);
    if (hint < 0) {
        return -1;
    }
    PyObject *hint_obj = PyLong_FromSsize_t(hint);
    PyObject *buf = hint_obj ? pa_ssl_app_call(self, st->str_get_buffer, hint_obj) : NULL;
    Py_XDECREF(hint_obj);
    if (buf == NULL) {
        return -1;
    }
    Py_ssize_t wants = PyObject_Size(buf);
    if (wants < 0) {
        Py_DECREF(buf);
        return -1;
    }
    Py_ssize_t offset = 0, count = 1;
    PyObject *target = Py_NewRef(buf);
    /* The rest of a read goes into memoryview(buf)[offset:]: asyncio slices
     * buf itself, which for a bytearray is a copy, and loses those bytes. */
    PyObject *view = PyMemoryView_FromObject(buf);
    if (view == NULL) {
        Py_DECREF(target);
        Py_DECREF(buf);
        return -1;
    }
    Py_SETREF(buf, view);
    for (;;) {
        int got = read_into(self, wants - offset, target, &count);
        Py_CLEAR(target);
        if (got < 0) {
            Py_DECREF(buf);
            return -1;
        }
        if (got == 0) {
            break;
        }
        if (count <= 0) {
            break;
        }
        offset += count;
        if (offset >= wants) {
            /* The app's buffer is full: the rest waits for the next round. */
            if (pa_ssl_call_soon_method(self, n->str_do_read) < 0) {
                Py_DECREF(buf);
                return -1;
            }
            break;
        }
        if (nothing_to_read(self)) {
            break;
        }
        PyObject *start = PyLong_FromSsize_t(offset);
        PyObject *slice = start ? PySlice_New(start, NULL, NULL) : NULL;
        Py_XDECREF(start);
        target = slice ? PyObject_GetItem(buf, slice) : NULL;
        Py_XDECREF(slice);
        if (target == NULL) {
            Py_DECREF(buf);
            return -1;
        }
    }
    Py_DECREF(buf);
    if (offset > 0) {
        PyObject *nbytes = PyLong_FromSsize_t(offset);
        PyObject *res = nbytes ? pa_ssl_app_call(self, st->str_buffer_updated, nbytes) : NULL;
        Py_XDECREF(nbytes);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (count == 0) {
        /* close_notify */
        if (call_eof_received(self) < 0 || pa_sslproto_start_shutdown(self) < 0) {
            return -1;
        }
    }
    return 0;
}

int
pa_sslproto_control_ssl_reading(SSLProtocolObject *self)
{
    Py_ssize_t size = pa_sslproto_read_buffer_size(self);
    if (size < 0) {
        return -1;
    }
    pa_ssl_names *n = pa_ssl_names_of(self);
    if (size >= self->incoming_high && !self->ssl_reading_paused) {
        self->ssl_reading_paused = 1;
        return pa_ssl_transport_call_void(self, n->str_pause_reading, NULL);
    }
    if (size <= self->incoming_low && self->ssl_reading_paused) {
        self->ssl_reading_paused = 0;
        return pa_ssl_transport_call_void(self, n->str_resume_reading, NULL);
    }
    return 0;
}

int
pa_ssl_do_read(SSLProtocolObject *self)
{
    if (self->state != PA_SSL_WRAPPED && self->state != PA_SSL_FLUSHING) {
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    if (!self->app_reading_paused) {
        rc = self->app_is_buffer ? do_read_buffered(self) : do_read_copied(self);
        if (rc == 0) {
            rc = PyList_GET_SIZE(self->backlog) > 0 ? pa_ssl_do_write(self)
                                                    : pa_ssl_process_outgoing(self);
        }
    }
    if (rc == 0) {
        rc = pa_sslproto_control_ssl_reading(self);
    }
    if (rc < 0) {
        rc = fatal_error_from_raised(self, "Fatal error on SSL protocol");
    }
    Py_DECREF(self);
    return rc;
}

/* What arrived from the peer is in the incoming BIO: move on. */
int
pa_ssl_on_data_in(SSLProtocolObject *self)
{
    switch (self->state) {
    case PA_SSL_DO_HANDSHAKE:
        return pa_ssl_do_handshake(self);
    case PA_SSL_WRAPPED:
        return pa_ssl_do_read(self);
    case PA_SSL_FLUSHING:
        return pa_ssl_do_flush(self);
    case PA_SSL_SHUTDOWN:
        return pa_ssl_do_shutdown(self);
    default:
        return 0;
    }
}

int
pa_sslproto_data_in(SSLProtocolObject *self, const char *data, Py_ssize_t n)
{
    PyObject *view = PyMemoryView_FromMemory((char *)data, n, PyBUF_READ);
    if (view == NULL) {
        return -1;
    }
    PyObject *res = pa_ssl_call1(self->incoming, pa_ssl_names_of(self)->str_write, view);
    /* The memory is the transport's scratch buffer: the view must not
     * outlive this call (MemoryBIO.write() keeps no reference; release it
     * if anything else does). */
    if (Py_REFCNT(view) > 1) {
        PyObject *released = PyObject_CallMethod(view, "release", NULL);
        if (released == NULL) {
            Py_DECREF(view);
            Py_XDECREF(res);
            return -1;
        }
        Py_DECREF(released);
    }
    Py_DECREF(view);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    Py_INCREF(self);
    int rc = pa_ssl_on_data_in(self);
    Py_DECREF(self);
    return rc;
}

int
pa_sslproto_resume_reading(SSLProtocolObject *self)
{
    if (!self->app_reading_paused) {
        return 0;
    }
    self->app_reading_paused = 0;
    return pa_ssl_call_soon_method(self, pa_ssl_names_of(self)->str_resume);
}

PyObject *
pa_sslproto_get_extra_info(SSLProtocolObject *self, PyObject *name, PyObject *dflt)
{
    PyObject *v = PyDict_GetItemWithError(self->extra, name);
    if (v != NULL) {
        return Py_NewRef(v);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (self->transport != NULL) {
        PyObject *tr = Py_NewRef(self->transport);
        PyObject *args[3] = {tr, name, dflt};
        PyObject *res = PyObject_VectorcallMethod(pa_ssl_names_of(self)->str_get_extra_info, args,
                                                  3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(tr);
        return res;
    }
    return Py_NewRef(dflt);
}
