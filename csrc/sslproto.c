/*
 * sslproto.c - the SSL protocol: TLS between a stream transport and the
 * application, with the behaviour of asyncio.sslproto.SSLProtocol of the
 * running Python (see sslproto.h for the split of work).
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

#define SSL_MAX_SIZE (256 * 1024) /* asyncio's SSLProtocol.max_size */
#define SSL_RECORD_MAX (16 * 1024)  /* the most plaintext a TLS record carries */

static const char *const state_names[] = {
    "SSLProtocolState.UNWRAPPED", "SSLProtocolState.DO_HANDSHAKE", "SSLProtocolState.WRAPPED",
    "SSLProtocolState.FLUSHING",  "SSLProtocolState.SHUTDOWN",
};

static int do_read(SSLProtocolObject *self);
static int do_write(SSLProtocolObject *self);
static int do_flush(SSLProtocolObject *self);
static int do_shutdown(SSLProtocolObject *self);
static int process_outgoing(SSLProtocolObject *self);
static int fatal_error(SSLProtocolObject *self, PyObject *exc, const char *message);

/* ------------------------------------------------------------ module state */

static void
names_clear(pa_ssl_names *n)
{
    Py_CLEAR(n->ssl_module);
    Py_CLEAR(n->MemoryBIO);
    Py_CLEAR(n->SSLObject);
    Py_CLEAR(n->SSLError);
    Py_CLEAR(n->SSLWantReadError);
    Py_CLEAR(n->SSLSyscallError);
    Py_CLEAR(n->CertificateError);
    Py_CLEAR(n->logger);
    PyObject **names[] = {
        &n->str_read, &n->str_write, &n->str_pending, &n->str_do_handshake, &n->str_unwrap,
        &n->str_shutdown, &n->str_getpeercert, &n->str_cipher, &n->str_compression,
        &n->str_force_close, &n->str_abort, &n->str_pause_reading, &n->str_resume_reading,
        &n->str_cancelled, &n->str_call_later, &n->str_wrap_bio, &n->str_sslobj_attr,
        &n->str_do_read, &n->str_resume, &n->str_check_handshake_timeout,
        &n->str_check_shutdown_timeout, &n->str_get_extra_info, &n->str_close,
        &n->kwnames_wrap_bio,
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        Py_CLEAR(*names[i]);
    }
}

static Py_ssize_t
constant(PyObject *constants, const char *name)
{
    PyObject *v = PyObject_GetAttrString(constants, name);
    Py_ssize_t n = v ? PyNumber_AsSsize_t(v, PyExc_OverflowError) : -1;
    Py_XDECREF(v);
    return n;
}

static double
constant_double(PyObject *constants, const char *name)
{
    PyObject *v = PyObject_GetAttrString(constants, name);
    double d = v ? PyFloat_AsDouble(v) : -1.0;
    Py_XDECREF(v);
    return d;
}

/* Import what TLS needs, once per module. */
static pa_ssl_names *
ssl_names(pa_state *st)
{
    if (st->ssl != NULL) {
        return st->ssl;
    }
    pa_ssl_names *n = PyMem_Calloc(1, sizeof(*n));
    if (n == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *constants = NULL, *log = NULL;
    n->ssl_module = PyImport_ImportModule("ssl");
    if (n->ssl_module == NULL) {
        if (PyErr_ExceptionMatches(PyExc_ImportError)) {
            PyErr_SetString(PyExc_RuntimeError, "stdlib ssl module not available");
        }
        goto fail;
    }
#define GET(field, name)                                                                           \
    if ((n->field = PyObject_GetAttrString(n->ssl_module, name)) == NULL)                         \
        goto fail;
    GET(MemoryBIO, "MemoryBIO");
    GET(SSLObject, "SSLObject");
    GET(SSLError, "SSLError");
    GET(SSLWantReadError, "SSLWantReadError");
    GET(SSLSyscallError, "SSLSyscallError");
    GET(CertificateError, "CertificateError");
#undef GET
    constants = PyImport_ImportModule("asyncio.constants");
    log = constants ? PyImport_ImportModule("asyncio.log") : NULL;
    n->logger = log ? PyObject_GetAttrString(log, "logger") : NULL;
    if (n->logger == NULL) {
        goto fail;
    }
    n->flow_read_kb = constant(constants, "FLOW_CONTROL_HIGH_WATER_SSL_READ");
    n->flow_write_kb = constant(constants, "FLOW_CONTROL_HIGH_WATER_SSL_WRITE");
    n->log_threshold = constant(constants, "LOG_THRESHOLD_FOR_CONNLOST_WRITES");
    n->default_handshake_timeout = constant_double(constants, "SSL_HANDSHAKE_TIMEOUT");
    n->default_shutdown_timeout = constant_double(constants, "SSL_SHUTDOWN_TIMEOUT");
    if (PyErr_Occurred()) {
        goto fail;
    }
#define NAME(field, text)                                                                          \
    if ((n->field = PyUnicode_InternFromString(text)) == NULL)                                    \
        goto fail;
    NAME(str_read, "read");
    NAME(str_write, "write");
    NAME(str_pending, "pending");
    NAME(str_do_handshake, "do_handshake");
    NAME(str_unwrap, "unwrap");
    NAME(str_shutdown, "shutdown");
    NAME(str_getpeercert, "getpeercert");
    NAME(str_cipher, "cipher");
    NAME(str_compression, "compression");
    NAME(str_force_close, "_force_close");
    NAME(str_abort, "abort");
    NAME(str_pause_reading, "pause_reading");
    NAME(str_resume_reading, "resume_reading");
    NAME(str_cancelled, "cancelled");
    NAME(str_call_later, "call_later");
    NAME(str_wrap_bio, "wrap_bio");
    NAME(str_sslobj_attr, "_sslobj");
    NAME(str_do_read, "_do_read");
    NAME(str_resume, "_resume");
    NAME(str_check_handshake_timeout, "_check_handshake_timeout");
    NAME(str_check_shutdown_timeout, "_check_shutdown_timeout");
    NAME(str_get_extra_info, "get_extra_info");
    NAME(str_close, "close");
#undef NAME
    n->kwnames_wrap_bio = Py_BuildValue("(ss)", "server_side", "server_hostname");
    if (n->kwnames_wrap_bio == NULL) {
        goto fail;
    }
    Py_DECREF(constants);
    Py_DECREF(log);
    st->ssl = n;
    return n;
fail:
    Py_XDECREF(constants);
    Py_XDECREF(log);
    names_clear(n);
    PyMem_Free(n);
    return NULL;
}

int
pa_sslproto_traverse_state(pa_state *st, visitproc visit, void *arg)
{
    pa_ssl_names *n = st->ssl;
    if (n != NULL) {
        Py_VISIT(n->ssl_module);
        Py_VISIT(n->MemoryBIO);
        Py_VISIT(n->SSLObject);
        Py_VISIT(n->SSLError);
        Py_VISIT(n->SSLWantReadError);
        Py_VISIT(n->SSLSyscallError);
        Py_VISIT(n->CertificateError);
        Py_VISIT(n->logger);
    }
    Py_VISIT(st->SSLProtocolType);
    Py_VISIT(st->SSLTransportType);
    return 0;
}

void
pa_sslproto_clear_state(pa_state *st)
{
    if (st->ssl != NULL) {
        names_clear(st->ssl);
        PyMem_Free(st->ssl);
        st->ssl = NULL;
    }
    Py_CLEAR(st->SSLProtocolType);
    Py_CLEAR(st->SSLTransportType);
}

/* ------------------------------------------------------------ small helpers */

static inline pa_state *
proto_state(SSLProtocolObject *self)
{
    return pa_get_state(PyType_GetModule(Py_TYPE(self)));
}

static inline pa_ssl_names *
proto_names(SSLProtocolObject *self)
{
    return proto_state(self)->ssl; /* made before any instance */
}

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

static PyObject *
call_method0(PyObject *obj, PyObject *name)
{
    return PyObject_VectorcallMethod(name, &obj, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *
call_method1(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {obj, arg};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
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
    PyObject *res = arg ? call_method1(tr, name, arg) : call_method0(tr, name);
    Py_DECREF(tr);
    return res;
}

static int
transport_call_void(SSLProtocolObject *self, PyObject *name, PyObject *arg)
{
    PyObject *res = transport_call(self, name, arg);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* transport._force_close(exc) on 3.13, and on 3.11/3.12 for everything but
 * _abort(), which calls abort() there. */
static int
transport_force_close(SSLProtocolObject *self, PyObject *exc)
{
    return transport_call_void(self, proto_names(self)->str_force_close, exc ? exc : Py_None);
}

static int
log_at(SSLProtocolObject *self, const char *level, const char *fmt, PyObject *arg, int exc_info)
{
    pa_ssl_names *n = proto_names(self);
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

static int
set_state(SSLProtocolObject *self, pa_ssl_state new_state)
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
    pa_state *st = proto_state(self);
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
    PyObject *res = call_method1(self->loop, st->str_call_exception_handler, context);
    Py_DECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

static int
wakeup_waiter(SSLProtocolObject *self, PyObject *exc)
{
    if (self->waiter == NULL || self->waiter == Py_None) {
        if (self->report_accept_errors && exc != NULL) {
            return accept_failed(self, exc);
        }
        self->report_accept_errors = 0;
        return 0;
    }
    pa_state *st = proto_state(self);
    PyObject *waiter = self->waiter;
    self->waiter = NULL; /* asyncio drops it after settling; we own the reference now */
    PyObject *cancelled = call_method0(waiter, proto_names(self)->str_cancelled);
    int rc = -1;
    if (cancelled != NULL) {
        int is = PyObject_IsTrue(cancelled);
        Py_DECREF(cancelled);
        if (is == 0) {
            PyObject *res = exc ? call_method1(waiter, st->str_set_exception, exc)
                                : call_method1(waiter, st->str_set_result, Py_None);
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

static int
cancel_handle(PyObject **handle)
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
    PyObject *h = PyObject_VectorcallMethod(proto_names(self)->str_call_later, args,
                                            3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(cb);
    return h;
}

/* loop.call_soon(self.<method>) */
static int
call_soon_method(SSLProtocolObject *self, PyObject *method_name)
{
    PyObject *cb = PyObject_GetAttr((PyObject *)self, method_name);
    if (cb == NULL) {
        return -1;
    }
    int rc = pa_call_soon(proto_state(self), self->loop, cb, NULL, 0, NULL);
    Py_DECREF(cb);
    return rc;
}

int
pa_ssl_flow_limits(PyObject *high, PyObject *low, Py_ssize_t kb, Py_ssize_t *hi, Py_ssize_t *lo)
{
    Py_ssize_t h, l;
    if (high == NULL || high == Py_None) {
        if (low == NULL || low == Py_None) {
            h = kb * 1024;
        } else {
            l = PyNumber_AsSsize_t(low, PyExc_OverflowError);
            if (l == -1 && PyErr_Occurred()) {
                return -1;
            }
            h = l > PY_SSIZE_T_MAX / 4 ? PY_SSIZE_T_MAX : 4 * l;
        }
    } else {
        h = PyNumber_AsSsize_t(high, PyExc_OverflowError);
        if (h == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (low == NULL || low == Py_None) {
        l = h / 4;
        if (h < 0 && h % 4 != 0) {
            l--; /* Python's floor division */
        }
    } else {
        l = PyNumber_AsSsize_t(low, PyExc_OverflowError);
        if (l == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (!(h >= l && l >= 0)) {
        PyErr_Format(PyExc_ValueError, "high (%zd) must be >= low (%zd) must be >= 0", h, l);
        return -1;
    }
    *hi = h;
    *lo = l;
    return 0;
}

Py_ssize_t
pa_sslproto_write_buffer_size(SSLProtocolObject *self)
{
    Py_ssize_t p = bio_pending(proto_names(self), self->outgoing);
    return p < 0 ? -1 : p + self->write_buffer_size;
}

Py_ssize_t
pa_sslproto_read_buffer_size(SSLProtocolObject *self)
{
    return bio_pending(proto_names(self), self->incoming);
}

/* ------------------------------------------------------------ app protocol */

int
pa_sslproto_set_app_protocol(SSLProtocolObject *self, PyObject *app_protocol)
{
    pa_state *st = proto_state(self);
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
app_call(SSLProtocolObject *self, PyObject *name, PyObject *arg)
{
    if (self->app_protocol == NULL) {
        PyErr_Format(PyExc_AttributeError, "'NoneType' object has no attribute '%U'", name);
        return NULL;
    }
    PyObject *app = Py_NewRef(self->app_protocol);
    PyObject *res = arg ? call_method1(app, name, arg) : call_method0(app, name);
    Py_DECREF(app);
    return res;
}

static PyObject *
get_app_transport(SSLProtocolObject *self)
{
    if (self->app_transport == NULL) {
        if (self->app_transport_created) {
            PyErr_SetString(PyExc_RuntimeError, "Creating _SSLProtocolTransport twice");
            return NULL;
        }
        self->app_transport = pa_ssltransport_new(proto_state(self), self->loop, (PyObject *)self);
        if (self->app_transport == NULL) {
            return NULL;
        }
        self->app_transport_created = 1;
    }
    return self->app_transport; /* borrowed */
}

static void
app_transport_mark_closed(SSLProtocolObject *self)
{
    if (self->app_transport != NULL) {
        ((SSLTransportObject *)self->app_transport)->closed = 1;
    }
}

/* ------------------------------------------------------------ errors */

static int
fatal_error(SSLProtocolObject *self, PyObject *exc, const char *message)
{
    pa_state *st = proto_state(self);
    if (self->transport != NULL && transport_force_close(self, exc) < 0) {
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
            PyObject *meth = msg ? PyObject_GetAttrString(proto_names(self)->logger, "debug") : NULL;
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
    PyObject *res = context ? call_method1(self->loop, st->str_call_exception_handler, context)
                            : NULL;
    Py_XDECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* The raised exception, if it is an Exception, goes to fatal_error();
 * BaseExceptions propagate (asyncio's `except Exception`). */
static int
fatal_error_from_raised(SSLProtocolObject *self, const char *message)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

/* ------------------------------------------------------------ handshake */

static int on_handshake_complete(SSLProtocolObject *self, PyObject *handshake_exc);

static int
start_handshake(SSLProtocolObject *self)
{
    pa_state *st = proto_state(self);
    pa_ssl_names *n = proto_names(self);
    int debug = pa_loop_get_debug(st, self->loop);
    if (debug < 0) {
        return -1;
    }
    if (debug) {
        if (log_at(self, "debug", "%r starts SSL handshake", NULL, 0) < 0) {
            return -1;
        }
        PyObject *now = call_method0(self->loop, st->str_time);
        if (now == NULL) {
            return -1;
        }
        Py_XSETREF(self->handshake_start_time, now);
    } else {
        Py_CLEAR(self->handshake_start_time);
    }
    if (set_state(self, PA_SSL_DO_HANDSHAKE) < 0) {
        return -1;
    }
    PyObject *h = call_later(self, self->handshake_timeout, n->str_check_handshake_timeout);
    if (h == NULL) {
        return -1;
    }
    Py_XSETREF(self->handshake_timeout_handle, h);
    return 0;
}

static int
do_handshake(SSLProtocolObject *self)
{
    pa_ssl_names *n = proto_names(self);
    PyObject *res = call_method0(self->sslcore, n->str_do_handshake);
    if (res != NULL) {
        Py_DECREF(res);
        return on_handshake_complete(self, NULL);
    }
    if (again_error_raised(n)) {
        PyErr_Clear();
        return process_outgoing(self);
    }
    if (PyErr_ExceptionMatches(n->SSLError)) {
        PyObject *exc = pa_err_take();
        int rc = on_handshake_complete(self, exc);
        Py_DECREF(exc);
        return rc;
    }
    return -1;
}

static int
on_handshake_complete(SSLProtocolObject *self, PyObject *handshake_exc)
{
    pa_state *st = proto_state(self);
    pa_ssl_names *n = proto_names(self);
    if (cancel_handle(&self->handshake_timeout_handle) < 0) {
        return -1;
    }
    PyObject *peercert = NULL;
    PyObject *exc = NULL;
    if (handshake_exc == NULL) {
        if (set_state(self, PA_SSL_WRAPPED) == 0) {
            peercert = call_method0(self->sslcore, n->str_getpeercert);
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
        int rc = fatal_error(self, exc, msg);
        if (rc == 0) {
            rc = wakeup_waiter(self, exc);
        }
        Py_DECREF(exc);
        return rc;
    }
    if (self->handshake_start_time != NULL) {
        PyObject *now = call_method0(self->loop, st->str_time);
        double dt = now ? PyFloat_AsDouble(now) - PyFloat_AsDouble(self->handshake_start_time) : 0;
        Py_XDECREF(now);
        PyObject *ms = now && !PyErr_Occurred() ? PyFloat_FromDouble(dt * 1e3) : NULL;
        int rc = ms ? log_at(self, "debug", "%r: SSL handshake took %.1f ms", ms, 0) : -1;
        Py_XDECREF(ms);
        if (rc < 0) {
            Py_DECREF(peercert);
            return -1;
        }
    }
    PyObject *cipher = call_method0(self->sslcore, n->str_cipher);
    PyObject *compression = cipher ? call_method0(self->sslcore, n->str_compression) : NULL;
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
        PyObject *tr = get_app_transport(self);
        PyObject *res = tr ? app_call(self, st->str_connection_made, tr) : NULL;
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (wakeup_waiter(self, NULL) < 0) {
        return -1;
    }
    return do_read(self);
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
    return transport_force_close(self, exc);
#else
    (void)exc;
    return transport_call_void(self, proto_names(self)->str_abort, NULL);
#endif
}

int
pa_sslproto_start_shutdown(SSLProtocolObject *self)
{
    pa_ssl_state s = self->state;
    if (s == PA_SSL_FLUSHING || s == PA_SSL_SHUTDOWN || s == PA_SSL_UNWRAPPED) {
        return 0;
    }
    app_transport_mark_closed(self);
    if (s == PA_SSL_DO_HANDSHAKE) {
        return pa_sslproto_abort(self, NULL);
    }
    if (set_state(self, PA_SSL_FLUSHING) < 0) {
        return -1;
    }
    PyObject *h = call_later(self, self->shutdown_timeout,
                             proto_names(self)->str_check_shutdown_timeout);
    if (h == NULL) {
        return -1;
    }
    Py_XSETREF(self->shutdown_timeout_handle, h);
    return do_flush(self);
}

static int
do_flush(SSLProtocolObject *self)
{
    if (do_read(self) < 0 || set_state(self, PA_SSL_SHUTDOWN) < 0) {
        return -1;
    }
    return do_shutdown(self);
}

static int
on_shutdown_complete(SSLProtocolObject *self, PyObject *shutdown_exc)
{
    if (cancel_handle(&self->shutdown_timeout_handle) < 0) {
        return -1;
    }
    if (shutdown_exc != NULL) {
        return fatal_error(self, shutdown_exc, "Fatal error on transport");
    }
    if (self->transport == NULL) {
        PyErr_SetString(PyExc_AttributeError, "'NoneType' object has no attribute 'close'");
        return -1;
    }
    PyObject *close = PyObject_GetAttr(self->transport, proto_names(self)->str_close);
    if (close == NULL) {
        return -1;
    }
    int rc = pa_call_soon(proto_state(self), self->loop, close, NULL, 0, NULL);
    Py_DECREF(close);
    return rc;
}

static int call_eof_received(SSLProtocolObject *self);

static int
do_shutdown(SSLProtocolObject *self)
{
    pa_ssl_names *n = proto_names(self);
    if (!self->eof_received) {
        PyObject *res = call_method0(self->sslcore,
                                     self->sslcore_is_raw ? n->str_shutdown : n->str_unwrap);
        if (res == NULL) {
            if (again_error_raised(n)) {
                PyErr_Clear();
                return process_outgoing(self);
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
    if (process_outgoing(self) < 0 || call_eof_received(self) < 0) {
        return -1;
    }
    return on_shutdown_complete(self, NULL);
}

/* ------------------------------------------------------------ writing */

/* Flow control of the application's writes. */
int
pa_sslproto_control_app_writing(SSLProtocolObject *self)
{
    pa_state *st = proto_state(self);
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
    PyObject *res = app_call(self, name, NULL);
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
    res = context ? call_method1(self->loop, st->str_call_exception_handler, context) : NULL;
    Py_XDECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* Send what the SSL object wrote into the outgoing BIO. */
static int
process_outgoing(SSLProtocolObject *self)
{
    if (!self->ssl_writing_paused) {
        pa_ssl_names *n = proto_names(self);
        PyObject *data = call_method0(self->outgoing, n->str_read);
        if (data == NULL) {
            return -1;
        }
        int rc = 0;
        if (PyBytes_GET_SIZE(data) > 0) {
            rc = transport_call_void(self, n->str_write, data);
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
    PyObject *res = call_method1(self->sslcore, proto_names(self)->str_write, data);
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
static int
do_write(SSLProtocolObject *self)
{
    pa_ssl_names *n = proto_names(self);
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
    return process_outgoing(self);
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
pa_sslproto_write_appdata(SSLProtocolObject *self, PyObject *const *data, Py_ssize_t n,
                          PyObject *iterable)
{
    pa_ssl_state s = self->state;
    if (s == PA_SSL_FLUSHING || s == PA_SSL_SHUTDOWN || s == PA_SSL_UNWRAPPED) {
        if (self->conn_lost >= proto_names(self)->log_threshold &&
            log_at(self, "warning", "SSL connection is closed", NULL, 0) < 0) {
            return -1;
        }
        self->conn_lost++;
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    if (iterable != NULL) {
        PyObject *it = PyObject_GetIter(iterable);
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
    } else if (n == 1 && self->state == PA_SSL_WRAPPED && PyList_GET_SIZE(self->backlog) == 0) {
        /* The common case: straight into the SSL object, queue what it
         * did not take. */
        Py_ssize_t len = PyObject_Size(data[0]);
        Py_ssize_t count = len < 0 ? -1 : ssl_write(self, data[0]);
        if (count < 0) {
            if (again_error_raised(proto_names(self))) {
                PyErr_Clear();
                if (append_backlog(self, data[0]) < 0) {
                    rc = -1;
                    goto done;
                }
                rc = process_outgoing(self);
            } else {
                rc = -1;
            }
        } else if (count < len) {
            PyObject *rest = PySequence_GetSlice(data[0], count, PY_SSIZE_T_MAX);
            rc = rest ? append_backlog(self, rest) : -1;
            Py_XDECREF(rest);
            if (rc == 0) {
                rc = do_write(self);
            }
        } else {
            rc = process_outgoing(self);
        }
        if (rc < 0) {
            rc = fatal_error_from_raised(self, "Fatal error on SSL protocol");
        }
        goto done;
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            if (append_backlog(self, data[i]) < 0) {
                rc = -1;
                goto done;
            }
        }
    }
    if (self->state == PA_SSL_WRAPPED && do_write(self) < 0) {
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
    PyObject *keep_open = app_call(self, proto_state(self)->str_eof_received, NULL);
    if (keep_open == NULL) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = fatal_error(self, exc, "Error calling eof_received()");
        Py_DECREF(exc);
        return rc;
    }
    int truth = PyObject_IsTrue(keep_open);
    Py_DECREF(keep_open);
    if (truth > 0) {
        truth = log_at(self, "warning",
                       "returning true from eof_received() has no effect when using ssl", NULL, 0);
    }
    if (truth < 0) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = fatal_error(self, exc, "Error calling eof_received()");
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
    pa_ssl_names *n = proto_names(self);
    Py_ssize_t in = bio_pending(n, self->incoming);
    if (in != 0) {
        if (in < 0) {
            PyErr_Clear(); /* the read will tell */
        }
        return 0;
    }
    PyObject *p = call_method0(self->sslcore, n->str_pending);
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

/* Records after the first, read straight into one bytes object that
 * starts with `first`: no bytes per record and no join. Its size is an
 * upper bound of what can still be read: the plaintext of what the BIO
 * holds, plus one record that OpenSSL may hold in part. 1 with *data (a
 * new reference) and *eof set, or -1 with an exception. */
static int
read_rest(SSLProtocolObject *self, PyObject *first, PyObject **data, int *eof)
{
    pa_ssl_names *n = proto_names(self);
    Py_ssize_t in = bio_pending(n, self->incoming);
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
        PyObject *want = PyLong_FromSsize_t(cap - off);
        PyObject *view = want ? PyMemoryView_FromMemory(PyBytes_AS_STRING(buf) + off, cap - off,
                                                        PyBUF_WRITE)
                              : NULL;
        PyObject *res = NULL;
        if (view != NULL) {
            PyObject *args[3] = {self->sslcore, want, view};
            res = PyObject_VectorcallMethod(n->str_read, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                            NULL);
            /* buf may be resized: no view of it may outlive the read (a
             * traceback of an SSLObject subclass's read() may hold one) */
            if (Py_REFCNT(view) > 1) {
                PyObject *exc = pa_err_take();
                PyObject *released = PyObject_CallMethod(view, "release", NULL);
                if (released == NULL) {
                    Py_XDECREF(exc);
                    Py_CLEAR(res);
                } else {
                    Py_DECREF(released);
                    pa_err_restore(exc);
                }
            }
        }
        Py_XDECREF(want);
        Py_XDECREF(view);
        if (res == NULL) {
            if (again_error_raised(n)) {
                PyErr_Clear();
                break;
            }
            Py_DECREF(buf);
            return -1;
        }
        Py_ssize_t count = PyLong_AsSsize_t(res);
        Py_DECREF(res);
        if (count < 0 || count > cap - off) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_RuntimeError, "SSLObject.read() returned %zd", count);
            }
            Py_DECREF(buf);
            return -1;
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
    pa_state *st = proto_state(self);
    pa_ssl_names *n = proto_names(self);
    /* One read gives at most one record, whose plaintext is at most 16 KiB
     * (TLS's limit): asking for that much, not asyncio's max_size, spares
     * the allocation of 256 KiB per record. */
    PyObject *size = PyLong_FromSsize_t(SSL_RECORD_MAX);
    if (size == NULL) {
        return -1;
    }
    PyObject *data = call_method1(self->sslcore, n->str_read, size);
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
        PyObject *res = app_call(self, st->str_data_received, data);
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
    pa_state *st = proto_state(self);
    pa_ssl_names *n = proto_names(self);
    Py_ssize_t hint = pa_sslproto_read_buffer_size(self);
    if (hint < 0) {
        return -1;
    }
    PyObject *hint_obj = PyLong_FromSsize_t(hint);
    PyObject *buf = hint_obj ? app_call(self, st->str_get_buffer, hint_obj) : NULL;
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
        PyObject *want = PyLong_FromSsize_t(wants - offset);
        PyObject *args[3] = {self->sslcore, want, target};
        PyObject *res = want ? PyObject_VectorcallMethod(n->str_read, args,
                                                         3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                             : NULL;
        Py_XDECREF(want);
        Py_CLEAR(target);
        if (res == NULL) {
            if (again_error_raised(n)) {
                PyErr_Clear();
                break;
            }
            Py_DECREF(buf);
            return -1;
        }
        count = PyLong_AsSsize_t(res);
        Py_DECREF(res);
        if (count == -1 && PyErr_Occurred()) {
            Py_DECREF(buf);
            return -1;
        }
        if (count <= 0) {
            break;
        }
        offset += count;
        if (offset >= wants) {
            /* The app's buffer is full: the rest waits for the next round. */
            if (call_soon_method(self, n->str_do_read) < 0) {
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
        PyObject *res = nbytes ? app_call(self, st->str_buffer_updated, nbytes) : NULL;
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
    pa_ssl_names *n = proto_names(self);
    if (size >= self->incoming_high && !self->ssl_reading_paused) {
        self->ssl_reading_paused = 1;
        return transport_call_void(self, n->str_pause_reading, NULL);
    }
    if (size <= self->incoming_low && self->ssl_reading_paused) {
        self->ssl_reading_paused = 0;
        return transport_call_void(self, n->str_resume_reading, NULL);
    }
    return 0;
}

static int
do_read(SSLProtocolObject *self)
{
    if (self->state != PA_SSL_WRAPPED && self->state != PA_SSL_FLUSHING) {
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    if (!self->app_reading_paused) {
        rc = self->app_is_buffer ? do_read_buffered(self) : do_read_copied(self);
        if (rc == 0) {
            rc = PyList_GET_SIZE(self->backlog) > 0 ? do_write(self) : process_outgoing(self);
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
static int
on_data_in(SSLProtocolObject *self)
{
    switch (self->state) {
    case PA_SSL_DO_HANDSHAKE:
        return do_handshake(self);
    case PA_SSL_WRAPPED:
        return do_read(self);
    case PA_SSL_FLUSHING:
        return do_flush(self);
    case PA_SSL_SHUTDOWN:
        return do_shutdown(self);
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
    PyObject *res = call_method1(self->incoming, proto_names(self)->str_write, view);
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
    int rc = on_data_in(self);
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
    return call_soon_method(self, proto_names(self)->str_resume);
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
        PyObject *res = PyObject_VectorcallMethod(proto_names(self)->str_get_extra_info, args,
                                                  3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(tr);
        return res;
    }
    return Py_NewRef(dflt);
}

/* ------------------------------------------------------------ Python methods */

static PyObject *
SSLProtocol_connection_made(SSLProtocolObject *self, PyObject *transport)
{
    Py_XSETREF(self->transport, Py_NewRef(transport));
    Py_INCREF(self);
    int rc = start_handshake(self);
    if (rc == 0) {
        rc = do_handshake(self);
    }
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_connection_lost(SSLProtocolObject *self, PyObject *exc)
{
    pa_state *st = proto_state(self);
    Py_INCREF(self);
    PyObject *res = NULL;
    if (PyList_SetSlice(self->backlog, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        goto done;
    }
    self->write_buffer_size = 0;
    PyObject *drained = call_method0(self->outgoing, proto_names(self)->str_read);
    if (drained == NULL) {
        goto done;
    }
    Py_DECREF(drained);
    self->conn_lost++;
    app_transport_mark_closed(self);
    if (self->state != PA_SSL_DO_HANDSHAKE &&
        (self->app_state == PA_APP_CON_MADE || self->app_state == PA_APP_EOF)) {
        self->app_state = PA_APP_CON_LOST;
        if (self->app_protocol == NULL) {
            PyErr_SetString(PyExc_AttributeError,
                            "'NoneType' object has no attribute 'connection_lost'");
            goto done;
        }
        PyObject *cb = PyObject_GetAttr(self->app_protocol, st->str_connection_lost);
        int rc = cb ? pa_call_soon(st, self->loop, cb, &exc, 1, NULL) : -1;
        Py_XDECREF(cb);
        if (rc < 0) {
            goto done;
        }
    }
    self->state = PA_SSL_UNWRAPPED;
    /* The waiter before the app objects go (asyncio: after; a waiter's
     * callbacks run later either way), so that a failed accept is reported
     * with them. */
    int woken = wakeup_waiter(self, exc == Py_None ? NULL : exc);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->app_transport);
    Py_CLEAR(self->app_protocol);
    if (woken < 0 || cancel_handle(&self->shutdown_timeout_handle) < 0 ||
        cancel_handle(&self->handshake_timeout_handle) < 0) {
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    Py_DECREF(self);
    return res;
}

static PyObject *
SSLProtocol_get_buffer(SSLProtocolObject *self, PyObject *arg)
{
    Py_ssize_t want = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    (void)want; /* every size fits the one buffer of max_size */
    if (self->buffer_view == NULL) {
        self->buffer = PyByteArray_FromStringAndSize(NULL, SSL_MAX_SIZE);
        self->buffer_view = self->buffer ? PyMemoryView_FromObject(self->buffer) : NULL;
        if (self->buffer_view == NULL) {
            Py_CLEAR(self->buffer);
            return NULL;
        }
    }
    return Py_NewRef(self->buffer_view);
}

static PyObject *
SSLProtocol_buffer_updated(SSLProtocolObject *self, PyObject *arg)
{
    Py_ssize_t nbytes = PyNumber_AsSsize_t(arg, PyExc_OverflowError);
    if (nbytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (self->buffer == NULL || nbytes < 0 || nbytes > PyByteArray_GET_SIZE(self->buffer)) {
        PyErr_SetString(PyExc_ValueError, "buffer_updated(): no such bytes in the buffer");
        return NULL;
    }
    PyObject *data = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self->buffer), nbytes);
    PyObject *res = data ? call_method1(self->incoming, proto_names(self)->str_write, data) : NULL;
    Py_XDECREF(data);
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
    Py_INCREF(self);
    int rc = on_data_in(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_eof_received(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    self->eof_received = 1;
    Py_INCREF(self);
    int rc = 0, keep_open = 0;
    int debug = pa_loop_get_debug(proto_state(self), self->loop);
    if (debug < 0) {
        rc = -1;
    } else if (debug) {
        rc = log_at(self, "debug", "%r received EOF", NULL, 0);
    }
    if (rc == 0) {
        switch (self->state) {
        case PA_SSL_DO_HANDSHAKE:
            rc = on_handshake_complete(self, PyExc_ConnectionResetError);
            break;
        case PA_SSL_WRAPPED:
            rc = set_state(self, PA_SSL_FLUSHING);
            if (rc == 0) {
                if (self->app_reading_paused) {
                    keep_open = 1;
                } else {
                    rc = do_flush(self);
                }
            }
            break;
        case PA_SSL_FLUSHING:
            rc = do_write(self);
            if (rc == 0) {
                rc = set_state(self, PA_SSL_SHUTDOWN);
            }
            if (rc == 0) {
                rc = do_shutdown(self);
            }
            break;
        case PA_SSL_SHUTDOWN:
            rc = do_shutdown(self);
            break;
        default:
            break;
        }
    }
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_Exception) && self->transport != NULL) {
        /* except Exception: self._transport.close(); raise */
        PyObject *exc = pa_err_take();
        PyObject *res = call_method0(self->transport, proto_names(self)->str_close);
        if (res == NULL) {
            Py_DECREF(exc);
        } else {
            Py_DECREF(res);
            pa_err_restore(exc);
        }
    }
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    if (keep_open) {
        Py_RETURN_TRUE;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_pause_writing(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->ssl_writing_paused) {
        PyErr_SetNone(PyExc_AssertionError);
        return NULL;
    }
    self->ssl_writing_paused = 1;
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_resume_writing(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->ssl_writing_paused) {
        PyErr_SetNone(PyExc_AssertionError);
        return NULL;
    }
    self->ssl_writing_paused = 0;
    Py_INCREF(self);
    int rc = process_outgoing(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_do_read_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (do_read(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* What _resume_reading() schedules. */
static PyObject *
SSLProtocol_resume(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    int rc = 0;
    if (self->state == PA_SSL_WRAPPED) {
        rc = do_read(self);
    } else if (self->state == PA_SSL_FLUSHING) {
        rc = do_flush(self);
    } else if (self->state == PA_SSL_SHUTDOWN) {
        rc = do_shutdown(self);
    }
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_check_handshake_timeout(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->state != PA_SSL_DO_HANDSHAKE) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyObject_CallFunction(
        PyExc_ConnectionAbortedError, "N",
        PyUnicode_FromFormat("SSL handshake is taking longer than %S seconds: aborting the "
                             "connection",
                             self->handshake_timeout));
    if (exc == NULL) {
        return NULL;
    }
    Py_INCREF(self);
    int rc = fatal_error(self, exc, "Fatal error on transport");
    Py_DECREF(self);
    Py_DECREF(exc);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_check_shutdown_timeout(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->state != PA_SSL_FLUSHING && self->state != PA_SSL_SHUTDOWN) {
        Py_RETURN_NONE;
    }
    PyObject *exc = PyObject_CallFunction(PyExc_TimeoutError, "s", "SSL shutdown timed out");
    if (exc == NULL) {
        return NULL;
    }
    int rc = transport_force_close(self, exc);
    Py_DECREF(exc);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_get_extra_info_method(SSLProtocolObject *self, PyObject *const *args,
                                  Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_get_extra_info(name, default=None)");
        return NULL;
    }
    return pa_sslproto_get_extra_info(self, args[0], nargs > 1 ? args[1] : Py_None);
}

static PyObject *
SSLProtocol_set_app_protocol_method(SSLProtocolObject *self, PyObject *protocol)
{
    if (pa_sslproto_set_app_protocol(self, protocol) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_get_app_transport_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_XNewRef(get_app_transport(self));
}

static PyObject *
SSLProtocol_start_shutdown_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    int rc = pa_sslproto_start_shutdown(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_abort_method(SSLProtocolObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_abort(exc=None)");
        return NULL;
    }
    if (pa_sslproto_abort(self, nargs ? args[0] : Py_None) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ type slots */

static PyObject *
SSLProtocol_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"loop",
                             "app_protocol",
                             "sslcontext",
                             "waiter",
                             "server_side",
                             "server_hostname",
                             "call_connection_made",
                             "ssl_handshake_timeout",
                             "ssl_shutdown_timeout",
                             NULL};
    PyObject *loop, *app_protocol, *sslcontext, *waiter;
    int server_side = 0, call_connection_made = 1;
    PyObject *server_hostname = Py_None, *hs_timeout = Py_None, *sd_timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|pOpOO:SSLProtocol", kwlist, &loop,
                                     &app_protocol, &sslcontext, &waiter, &server_side,
                                     &server_hostname, &call_connection_made, &hs_timeout,
                                     &sd_timeout)) {
        return NULL;
    }
    pa_state *st = pa_state_from_type(type);
    pa_ssl_names *n = st ? ssl_names(st) : NULL;
    if (n == NULL) {
        return NULL;
    }
    PyObject *timeouts[2] = {hs_timeout, sd_timeout};
    const char *timeout_names[2] = {"ssl_handshake_timeout", "ssl_shutdown_timeout"};
    double defaults[2] = {n->default_handshake_timeout, n->default_shutdown_timeout};
    PyObject *timeout_values[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        if (timeouts[i] == Py_None) {
            timeout_values[i] = PyFloat_FromDouble(defaults[i]);
        } else {
            PyObject *zero = PyLong_FromLong(0);
            int le = zero ? PyObject_RichCompareBool(timeouts[i], zero, Py_LE) : -1;
            Py_XDECREF(zero);
            if (le > 0) {
                PyErr_Format(PyExc_ValueError, "%s should be a positive number, got %R",
                             timeout_names[i], timeouts[i]);
            }
            timeout_values[i] = le == 0 ? Py_NewRef(timeouts[i]) : NULL;
        }
        if (timeout_values[i] == NULL) {
            Py_XDECREF(timeout_values[0]);
            return NULL;
        }
    }
    PyObject *context = NULL;
    int truth = PyObject_IsTrue(sslcontext);
    if (truth < 0) {
        goto fail_timeouts;
    }
    if (truth) {
        context = Py_NewRef(sslcontext);
    } else {
        if (server_side) {
            PyErr_SetString(PyExc_ValueError, "Server side SSL needs a valid SSLContext");
            goto fail_timeouts;
        }
        /* looked up now: programs and tests replace it */
        PyObject *create = PyObject_GetAttrString(n->ssl_module, "create_default_context");
        context = create ? PyObject_CallNoArgs(create) : NULL;
        Py_XDECREF(create);
        if (context == NULL) {
            goto fail_timeouts;
        }
        int has_name = PyObject_IsTrue(server_hostname);
        if (has_name < 0 ||
            (!has_name && PyObject_SetAttrString(context, "check_hostname", Py_False) < 0)) {
            goto fail_context;
        }
    }
    SSLProtocolObject *self = (SSLProtocolObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        goto fail_context;
    }
    self->handshake_timeout = timeout_values[0];
    self->shutdown_timeout = timeout_values[1];
    self->sslcontext = context;
    self->server_side = (char)server_side;
    int name_truth = PyObject_IsTrue(server_hostname);
    if (name_truth < 0) {
        goto fail;
    }
    self->server_hostname = Py_NewRef(name_truth && !server_side ? server_hostname : Py_None);
    self->extra = Py_BuildValue("{s:O}", "sslcontext", context);
    self->backlog = PyList_New(0);
    self->waiter = Py_NewRef(waiter);
    self->loop = Py_NewRef(loop);
    if (self->extra == NULL || self->backlog == NULL ||
        pa_sslproto_set_app_protocol(self, app_protocol) < 0) {
        goto fail;
    }
    self->incoming = PyObject_CallNoArgs(n->MemoryBIO);
    self->outgoing = self->incoming ? PyObject_CallNoArgs(n->MemoryBIO) : NULL;
    if (self->outgoing == NULL) {
        goto fail;
    }
    self->state = PA_SSL_UNWRAPPED;
    self->app_state = call_connection_made ? PA_APP_INIT : PA_APP_CON_MADE;
    {
        PyObject *wrap_args[6] = {context, self->incoming, self->outgoing,
                                  server_side ? Py_True : Py_False, self->server_hostname};
        self->sslobj = PyObject_VectorcallMethod(n->str_wrap_bio, wrap_args,
                                                 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                 n->kwnames_wrap_bio);
    }
    if (self->sslobj == NULL) {
        goto fail;
    }
    if (Py_IS_TYPE(self->sslobj, (PyTypeObject *)n->SSLObject)) {
        self->sslcore = PyObject_GetAttr(self->sslobj, n->str_sslobj_attr);
        if (self->sslcore == NULL) {
            goto fail;
        }
        self->sslcore_is_raw = 1;
    } else {
        self->sslcore = Py_NewRef(self->sslobj);
    }
    if (pa_ssl_flow_limits(NULL, NULL, n->flow_read_kb, &self->incoming_high,
                           &self->incoming_low) < 0 ||
        pa_ssl_flow_limits(NULL, NULL, n->flow_write_kb, &self->outgoing_high,
                           &self->outgoing_low) < 0 ||
        get_app_transport(self) == NULL) {
        goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
fail_context:
    Py_DECREF(context);
fail_timeouts:
    Py_DECREF(timeout_values[0]);
    Py_DECREF(timeout_values[1]);
    return NULL;
}

PyObject *
pa_sslproto_new_server(pa_state *st, PyObject *loop, PyObject *app_protocol, PyObject *sslcontext,
                       PyObject *handshake_timeout, PyObject *shutdown_timeout)
{
    PyObject *args = Py_BuildValue("(OOOOOOOOO)", loop, app_protocol, sslcontext, Py_None,
                                   Py_True, Py_None, Py_True, handshake_timeout, shutdown_timeout);
    if (args == NULL) {
        return NULL;
    }
    PyObject *proto = SSLProtocol_new(st->SSLProtocolType, args, NULL);
    Py_DECREF(args);
    if (proto != NULL) {
        ((SSLProtocolObject *)proto)->report_accept_errors = 1;
    }
    return proto;
}

static int
SSLProtocol_traverse(SSLProtocolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->app_protocol);
    Py_VISIT(self->app_transport);
    Py_VISIT(self->transport);
    Py_VISIT(self->sslcontext);
    Py_VISIT(self->server_hostname);
    Py_VISIT(self->extra);
    Py_VISIT(self->waiter);
    Py_VISIT(self->handshake_timeout);
    Py_VISIT(self->shutdown_timeout);
    Py_VISIT(self->handshake_timeout_handle);
    Py_VISIT(self->shutdown_timeout_handle);
    Py_VISIT(self->handshake_start_time);
    Py_VISIT(self->incoming);
    Py_VISIT(self->outgoing);
    Py_VISIT(self->sslobj);
    Py_VISIT(self->sslcore);
    Py_VISIT(self->backlog);
    Py_VISIT(self->buffer);
    Py_VISIT(self->buffer_view);
    return 0;
}

static int
SSLProtocol_clear(SSLProtocolObject *self)
{
    Py_CLEAR(self->loop);
    Py_CLEAR(self->app_protocol);
    Py_CLEAR(self->app_transport);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->sslcontext);
    Py_CLEAR(self->server_hostname);
    Py_CLEAR(self->extra);
    Py_CLEAR(self->waiter);
    Py_CLEAR(self->handshake_timeout);
    Py_CLEAR(self->shutdown_timeout);
    Py_CLEAR(self->handshake_timeout_handle);
    Py_CLEAR(self->shutdown_timeout_handle);
    Py_CLEAR(self->handshake_start_time);
    Py_CLEAR(self->incoming);
    Py_CLEAR(self->outgoing);
    Py_CLEAR(self->sslobj);
    Py_CLEAR(self->sslcore);
    Py_CLEAR(self->backlog);
    if (self->buffer_view != NULL) {
        PyObject *res = PyObject_CallMethod(self->buffer_view, "release", NULL);
        if (res == NULL) {
            PyErr_Clear(); /* still exported by someone: it keeps the bytearray alive */
        }
        Py_XDECREF(res);
    }
    Py_CLEAR(self->buffer_view);
    Py_CLEAR(self->buffer);
    return 0;
}

static void
SSLProtocol_dealloc(SSLProtocolObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    PyObject *exc = pa_err_take();
    SSLProtocol_clear(self);
    pa_err_restore(exc);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* The fields asyncio's tests and some libraries read. */
static PyObject *
SSLProtocol_get_state(SSLProtocolObject *self, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(state_names[self->state] + sizeof("SSLProtocolState.") - 1);
}

static PyObject *
SSLProtocol_get_app_transport_attr(SSLProtocolObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->app_transport ? self->app_transport : Py_None);
}

#define OBJ_OR_NONE_GETTER(field)                                                                  \
    static PyObject *SSLProtocol_get_##field(SSLProtocolObject *self, void *Py_UNUSED(closure))    \
    {                                                                                              \
        return Py_NewRef(self->field ? self->field : Py_None);                                     \
    }
OBJ_OR_NONE_GETTER(app_protocol)
OBJ_OR_NONE_GETTER(transport)
OBJ_OR_NONE_GETTER(waiter)
#undef OBJ_OR_NONE_GETTER

static PyGetSetDef SSLProtocol_getset[] = {
    {"_state_name", (getter)SSLProtocol_get_state, NULL, NULL, NULL},
    {"_app_transport", (getter)SSLProtocol_get_app_transport_attr, NULL, NULL, NULL},
    {"_app_protocol", (getter)SSLProtocol_get_app_protocol, NULL, NULL, NULL},
    {"_transport", (getter)SSLProtocol_get_transport, NULL, NULL, NULL},
    {"_waiter", (getter)SSLProtocol_get_waiter, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef SSLProtocol_members[] = {
    {"_sslobj", T_OBJECT, offsetof(SSLProtocolObject, sslobj), READONLY, NULL},
    {"_sslcontext", T_OBJECT, offsetof(SSLProtocolObject, sslcontext), READONLY, NULL},
    {"_extra", T_OBJECT, offsetof(SSLProtocolObject, extra), READONLY, NULL},
    {"_loop", T_OBJECT, offsetof(SSLProtocolObject, loop), READONLY, NULL},
    {"_incoming", T_OBJECT, offsetof(SSLProtocolObject, incoming), READONLY, NULL},
    {"_outgoing", T_OBJECT, offsetof(SSLProtocolObject, outgoing), READONLY, NULL},
    {"_server_side", T_BOOL, offsetof(SSLProtocolObject, server_side), READONLY, NULL},
    {"_server_hostname", T_OBJECT, offsetof(SSLProtocolObject, server_hostname), READONLY, NULL},
    {"_ssl_handshake_timeout", T_OBJECT, offsetof(SSLProtocolObject, handshake_timeout), READONLY,
     NULL},
    {"_ssl_shutdown_timeout", T_OBJECT, offsetof(SSLProtocolObject, shutdown_timeout), READONLY,
     NULL},
    {"_conn_lost", T_PYSSIZET, offsetof(SSLProtocolObject, conn_lost), READONLY, NULL},
    {"_write_buffer_size", T_PYSSIZET, offsetof(SSLProtocolObject, write_buffer_size), READONLY,
     NULL},
    {"_app_reading_paused", T_BOOL, offsetof(SSLProtocolObject, app_reading_paused), READONLY,
     NULL},
    {"_app_writing_paused", T_BOOL, offsetof(SSLProtocolObject, app_writing_paused), READONLY,
     NULL},
    {"_ssl_reading_paused", T_BOOL, offsetof(SSLProtocolObject, ssl_reading_paused), READONLY,
     NULL},
    {"_ssl_writing_paused", T_BOOL, offsetof(SSLProtocolObject, ssl_writing_paused), READONLY,
     NULL},
    {"_eof_received", T_BOOL, offsetof(SSLProtocolObject, eof_received), READONLY, NULL},
    {"_incoming_high_water", T_PYSSIZET, offsetof(SSLProtocolObject, incoming_high), READONLY,
     NULL},
    {"_incoming_low_water", T_PYSSIZET, offsetof(SSLProtocolObject, incoming_low), READONLY, NULL},
    {"_outgoing_high_water", T_PYSSIZET, offsetof(SSLProtocolObject, outgoing_high), READONLY,
     NULL},
    {"_outgoing_low_water", T_PYSSIZET, offsetof(SSLProtocolObject, outgoing_low), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SSLProtocolObject, weakreflist), READONLY, NULL},
    {NULL},
};

#define NOARGS(name, func) {name, (PyCFunction)(void (*)(void))func, METH_NOARGS, NULL}

static PyMethodDef SSLProtocol_methods[] = {
    {"connection_made", (PyCFunction)SSLProtocol_connection_made, METH_O, NULL},
    {"connection_lost", (PyCFunction)SSLProtocol_connection_lost, METH_O, NULL},
    {"get_buffer", (PyCFunction)SSLProtocol_get_buffer, METH_O, NULL},
    {"buffer_updated", (PyCFunction)SSLProtocol_buffer_updated, METH_O, NULL},
    NOARGS("eof_received", SSLProtocol_eof_received),
    NOARGS("pause_writing", SSLProtocol_pause_writing),
    NOARGS("resume_writing", SSLProtocol_resume_writing),
    NOARGS("_do_read", SSLProtocol_do_read_method),
    NOARGS("_resume", SSLProtocol_resume),
    NOARGS("_check_handshake_timeout", SSLProtocol_check_handshake_timeout),
    NOARGS("_check_shutdown_timeout", SSLProtocol_check_shutdown_timeout),
    NOARGS("_get_app_transport", SSLProtocol_get_app_transport_method),
    NOARGS("_start_shutdown", SSLProtocol_start_shutdown_method),
    {"_abort", (PyCFunction)(void (*)(void))SSLProtocol_abort_method, METH_FASTCALL, NULL},
    {"_get_extra_info", (PyCFunction)(void (*)(void))SSLProtocol_get_extra_info_method,
     METH_FASTCALL, NULL},
    {"_set_app_protocol", (PyCFunction)SSLProtocol_set_app_protocol_method, METH_O, NULL},
    {NULL},
};

static PyType_Slot SSLProtocol_slots[] = {
    {Py_tp_doc, "TLS between a stream transport and an application protocol, "
                "as asyncio.sslproto.SSLProtocol."},
    {Py_tp_new, SSLProtocol_new},
    {Py_tp_dealloc, SSLProtocol_dealloc},
    {Py_tp_traverse, SSLProtocol_traverse},
    {Py_tp_clear, SSLProtocol_clear},
    {Py_tp_methods, SSLProtocol_methods},
    {Py_tp_members, SSLProtocol_members},
    {Py_tp_getset, SSLProtocol_getset},
    {0, NULL},
};

static PyType_Spec SSLProtocol_spec = {
    .name = "pyasync._core.SSLProtocol",
    .basicsize = sizeof(SSLProtocolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = SSLProtocol_slots,
};

int
pa_sslproto_register_types(PyObject *module, pa_state *st)
{
    /* asyncio.BufferedProtocol, so that isinstance() checks pass; its
     * layout is object's (empty __slots__). */
    PyObject *protocols = PyImport_ImportModule("asyncio.protocols");
    PyObject *base = protocols ? PyObject_GetAttrString(protocols, "BufferedProtocol") : NULL;
    Py_XDECREF(protocols);
    if (base == NULL) {
        return -1;
    }
    if (!PyType_Check(base) || ((PyTypeObject *)base)->tp_basicsize != sizeof(PyObject)) {
        PyErr_SetString(PyExc_ImportError,
                        "asyncio.BufferedProtocol's layout is not the one pyasync was built for");
        Py_DECREF(base);
        return -1;
    }
    st->SSLProtocolType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &SSLProtocol_spec, base);
    Py_DECREF(base);
    if (st->SSLProtocolType == NULL || PyModule_AddType(module, st->SSLProtocolType) < 0) {
        return -1;
    }
    /* class attribute, as asyncio has it (the type is immutable once made) */
    PyObject *max_size = PyLong_FromLong(SSL_MAX_SIZE);
    if (max_size == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(st->SSLProtocolType->tp_dict, "max_size", max_size);
    Py_DECREF(max_size);
    if (rc < 0) {
        return -1;
    }
    PyType_Modified(st->SSLProtocolType);
    return pa_ssltransport_register_type(module, st);
}
