/*
 * sslproto_type.c - SSLProtocol as a Python type: construction with
 * asyncio's arguments and checks, the methods transports and Python
 * code call (connection_made, buffer_updated, eof_received, the timeouts,
 * ...), the attributes asyncio's tests read, and the type's slots. The
 * state machine they drive is in sslproto.c; what TLS imports (the ssl
 * module's classes, asyncio's constants) in sslnames.c.
 */
#include "sslproto.h"
#include "loop.h"
#include "transport.h"

/* ------------------------------------------------------------ Python methods */

static PyObject *
SSLProtocol_connection_made(SSLProtocolObject *self, PyObject *transport)
{
    Py_XSETREF(self->transport, Py_NewRef(transport));
    Py_INCREF(self);
    int rc = pa_ssl_start_handshake(self);
    if (rc == 0) {
        rc = pa_ssl_do_handshake(self);
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
    pa_state *st = pa_ssl_state_of(self);
    Py_INCREF(self);
    PyObject *res = NULL;
    if (PyList_SetSlice(self->backlog, 0, PY_SSIZE_T_MAX, NULL) < 0) {
        goto done;
    }
    self->write_buffer_size = 0;
    PyObject *drained = pa_ssl_call0(self->outgoing, pa_ssl_names_of(self)->str_read);
    if (drained == NULL) {
        goto done;
    }
    Py_DECREF(drained);
    self->conn_lost++;
    /* Just marked closed, so that its __del__ does not warn. */
    if (pa_ssl_mark_app_transport_closed(self) < 0) {
        goto done;
    }
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
    int woken = pa_ssl_wakeup_waiter(self, exc == Py_None ? NULL : exc);
    Py_CLEAR(self->transport);
    Py_CLEAR(self->app_transport);
    Py_CLEAR(self->app_protocol);
    if (woken < 0 || pa_ssl_cancel_handle(&self->shutdown_timeout_handle) < 0 ||
        pa_ssl_cancel_handle(&self->handshake_timeout_handle) < 0) {
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
    PyObject *write = pa_ssl_names_of(self)->str_write;
    PyObject *res = data ? pa_ssl_call1(self->incoming, write, data) : NULL;
    Py_XDECREF(data);
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
    Py_INCREF(self);
    int rc = pa_ssl_on_data_in(self);
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
    int debug = pa_loop_get_debug(pa_ssl_state_of(self), self->loop);
    if (debug < 0) {
        rc = -1;
    } else if (debug) {
        rc = pa_ssl_log(self, "debug", "%r received EOF", NULL, 0);
    }
    if (rc == 0) {
        switch (self->state) {
        case PA_SSL_DO_HANDSHAKE:
            rc = pa_ssl_on_handshake_complete(self, PyExc_ConnectionResetError);
            break;
        case PA_SSL_WRAPPED:
            rc = pa_ssl_set_state(self, PA_SSL_FLUSHING);
            if (rc == 0) {
                if (self->app_reading_paused) {
                    keep_open = 1;
                } else {
                    rc = pa_ssl_do_flush(self);
                }
            }
            break;
        case PA_SSL_FLUSHING:
            rc = pa_ssl_do_write(self);
            if (rc == 0) {
                rc = pa_ssl_set_state(self, PA_SSL_SHUTDOWN);
            }
            if (rc == 0) {
                rc = pa_ssl_do_shutdown(self);
            }
            break;
        case PA_SSL_SHUTDOWN:
            rc = pa_ssl_do_shutdown(self);
            break;
        default:
            break;
        }
    }
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_Exception) && self->transport != NULL) {
        /* except Exception: self._transport.close(); raise */
        PyObject *exc = pa_err_take();
        PyObject *res = pa_ssl_call0(self->transport, pa_ssl_names_of(self)->str_close);
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
    int rc = pa_ssl_process_outgoing(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_do_read_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_ssl_do_read(self) < 0) {
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
        rc = pa_ssl_do_read(self);
    } else if (self->state == PA_SSL_FLUSHING) {
        rc = pa_ssl_do_flush(self);
    } else if (self->state == PA_SSL_SHUTDOWN) {
        rc = pa_ssl_do_shutdown(self);
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
    int rc = pa_ssl_fatal_error(self, exc, "Fatal error on transport");
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
    int rc = pa_ssl_transport_force_close(self, exc);
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
    return Py_XNewRef(pa_ssl_get_app_transport(self));
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

/* The methods asyncio's _SSLProtocolTransport calls. */

static PyObject *
SSLProtocol_write_appdata_method(SSLProtocolObject *self, PyObject *list_of_data)
{
    if (pa_sslproto_write_appdata(self, list_of_data) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_pause_reading_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    self->app_reading_paused = 1;
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_resume_reading_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_sslproto_resume_reading(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
parse_limits(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **high,
             PyObject **low)
{
    static const char *const names[] = {"high", "low"};
    PyObject *values[2] = {Py_None, Py_None};
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "takes at most 2 arguments (high, low)");
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int which = -1;
        for (int j = 0; j < 2; j++) {
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0) {
                which = j;
            }
        }
        if (which < 0 || which < nargs) {
            PyErr_Format(PyExc_TypeError, "unexpected or repeated keyword argument %R", key);
            return -1;
        }
        values[which] = args[nargs + k];
    }
    *high = values[0];
    *low = values[1];
    return 0;
}

static PyObject *
SSLProtocol_set_write_buffer_limits_method(SSLProtocolObject *self, PyObject *const *args,
                                           Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *high, *low;
    if (parse_limits(args, nargs, kwnames, &high, &low) < 0 ||
        pa_flow_limits(high, low, pa_ssl_names_of(self)->flow_write_kb * 1024,
                       &self->outgoing_high, &self->outgoing_low) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_set_read_buffer_limits_method(SSLProtocolObject *self, PyObject *const *args,
                                          Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *high, *low;
    if (parse_limits(args, nargs, kwnames, &high, &low) < 0 ||
        pa_flow_limits(high, low, pa_ssl_names_of(self)->flow_read_kb * 1024,
                       &self->incoming_high, &self->incoming_low) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_control_app_writing_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    int rc = pa_sslproto_control_app_writing(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_control_ssl_reading_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    int rc = pa_sslproto_control_ssl_reading(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLProtocol_get_write_buffer_size_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = pa_sslproto_write_buffer_size(self);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
SSLProtocol_get_read_buffer_size_method(SSLProtocolObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = pa_sslproto_read_buffer_size(self);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
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
    pa_ssl_names *n = st ? pa_ssl_names_get(st) : NULL;
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
    if (pa_flow_limits(NULL, NULL, n->flow_read_kb * 1024, &self->incoming_high,
                           &self->incoming_low) < 0 ||
        pa_flow_limits(NULL, NULL, n->flow_write_kb * 1024, &self->outgoing_high,
                           &self->outgoing_low) < 0 ||
        pa_ssl_get_app_transport(self) == NULL) {
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
    Py_VISIT(self->dict);
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
    Py_CLEAR(self->dict);
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
    return PyUnicode_FromString(pa_ssl_state_name(self->state) + sizeof("SSLProtocolState.") - 1);
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
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
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
    /* written by _SSLProtocolTransport._test__append_write_backlog() */
    {"_write_buffer_size", T_PYSSIZET, offsetof(SSLProtocolObject, write_buffer_size), 0, NULL},
    {"_write_backlog", T_OBJECT, offsetof(SSLProtocolObject, backlog), READONLY, NULL},
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
    {"__dictoffset__", T_PYSSIZET, offsetof(SSLProtocolObject, dict), READONLY, NULL},
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
    {"_write_appdata", (PyCFunction)SSLProtocol_write_appdata_method, METH_O, NULL},
    NOARGS("_pause_reading", SSLProtocol_pause_reading_method),
    NOARGS("_resume_reading", SSLProtocol_resume_reading_method),
    {"_set_write_buffer_limits",
     (PyCFunction)(void (*)(void))SSLProtocol_set_write_buffer_limits_method,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"_set_read_buffer_limits",
     (PyCFunction)(void (*)(void))SSLProtocol_set_read_buffer_limits_method,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    NOARGS("_control_app_writing", SSLProtocol_control_app_writing_method),
    NOARGS("_control_ssl_reading", SSLProtocol_control_ssl_reading_method),
    NOARGS("_get_write_buffer_size", SSLProtocol_get_write_buffer_size_method),
    NOARGS("_get_read_buffer_size", SSLProtocol_get_read_buffer_size_method),
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
    return 0;
}
