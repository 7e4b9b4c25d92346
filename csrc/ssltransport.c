/*
 * ssltransport.c - the transport an application gets over TLS: asyncio's
 * _SSLProtocolTransport, each method forwarding to the SSL protocol
 * (sslproto.c), which holds all the state.
 *
 * Its base is asyncio.Transport, so isinstance() checks pass; the base's
 * one slot (`_extra`) is our first field and stays unset, as in asyncio,
 * whose extra info lives in the protocol.
 *
 * The protocol and this transport point at each other until the
 * connection is lost (the protocol lets go then) or close() is called a
 * second time (the transport lets go, as asyncio's does); in between the
 * garbage collector sees the cycle through tp_traverse.
 */
#include "sslproto.h"
#include "transport.h"

#define PROTO(self) ((SSLProtocolObject *)(self)->ssl_protocol)

/* asyncio.constants' default high-water mark in KiB, for writes or reads. */
static Py_ssize_t
proto_flow_kb(SSLProtocolObject *p, int for_writes)
{
    pa_ssl_names *n = pa_get_state(PyType_GetModule(Py_TYPE(p)))->ssl;
    return for_writes ? n->flow_write_kb : n->flow_read_kb;
}

/* The protocol, or AttributeError as asyncio gives after a second close(). */
static SSLProtocolObject *
protocol_of(SSLTransportObject *self, const char *attr)
{
    if (self->ssl_protocol == NULL) {
        PyErr_Format(PyExc_AttributeError, "'NoneType' object has no attribute '%s'", attr);
        return NULL;
    }
    return PROTO(self);
}

PyObject *
pa_ssltransport_new(pa_state *st, PyObject *loop, PyObject *protocol)
{
    PyTypeObject *tp = st->SSLTransportType;
    SSLTransportObject *self = (SSLTransportObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->loop = Py_NewRef(loop);
    self->ssl_protocol = Py_NewRef(protocol);
    return (PyObject *)self;
}

static PyObject *
SSLTransport_get_extra_info(SSLTransportObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:get_extra_info", kwlist, &name, &dflt)) {
        return NULL;
    }
    SSLProtocolObject *p = protocol_of(self, "_get_extra_info");
    if (p == NULL) {
        return NULL;
    }
    Py_INCREF(p);
    PyObject *res = pa_sslproto_get_extra_info(p, name, dflt);
    Py_DECREF(p);
    return res;
}

static PyObject *
SSLTransport_set_protocol(SSLTransportObject *self, PyObject *protocol)
{
    SSLProtocolObject *p = protocol_of(self, "_set_app_protocol");
    if (p == NULL) {
        return NULL;
    }
    /* the checks of the new protocol run Python code, which may close us */
    Py_INCREF(p);
    int rc = pa_sslproto_set_app_protocol(p, protocol);
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_get_protocol(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_app_protocol");
    if (p == NULL) {
        return NULL;
    }
    return Py_NewRef(p->app_protocol ? p->app_protocol : Py_None);
}

static PyObject *
SSLTransport_is_closing(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
SSLTransport_close(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->closed) {
        Py_CLEAR(self->ssl_protocol);
        Py_RETURN_NONE;
    }
    self->closed = 1;
    SSLProtocolObject *p = protocol_of(self, "_start_shutdown");
    if (p == NULL) {
        return NULL;
    }
    Py_INCREF(p);
    int rc = pa_sslproto_start_shutdown(p);
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_is_reading(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_app_reading_paused");
    return p ? PyBool_FromLong(!p->app_reading_paused) : NULL;
}

static PyObject *
SSLTransport_pause_reading(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_pause_reading");
    if (p == NULL) {
        return NULL;
    }
    p->app_reading_paused = 1;
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_resume_reading(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_resume_reading");
    if (p == NULL || pa_sslproto_resume_reading(p) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_set_write_buffer_limits(SSLTransportObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *high = Py_None, *low = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_limits", kwlist, &high,
                                     &low)) {
        return NULL;
    }
    SSLProtocolObject *p = protocol_of(self, "_set_write_buffer_limits");
    if (p == NULL) {
        return NULL;
    }
    /* __index__() of the limits is Python code, which may close us */
    Py_INCREF(p);
    int rc = pa_flow_limits(high, low, proto_flow_kb(p, 1) * 1024, &p->outgoing_high,
                            &p->outgoing_low);
    if (rc == 0) {
        rc = pa_sslproto_control_app_writing(p);
    }
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_get_write_buffer_limits(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_outgoing_low_water");
    return p ? Py_BuildValue("(nn)", p->outgoing_low, p->outgoing_high) : NULL;
}

static PyObject *
SSLTransport_get_write_buffer_size(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_get_write_buffer_size");
    Py_ssize_t n = p ? pa_sslproto_write_buffer_size(p) : -1;
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
SSLTransport_set_read_buffer_limits(SSLTransportObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *high = Py_None, *low = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_read_buffer_limits", kwlist, &high,
                                     &low)) {
        return NULL;
    }
    SSLProtocolObject *p = protocol_of(self, "_set_read_buffer_limits");
    if (p == NULL) {
        return NULL;
    }
    /* __index__() of the limits is Python code, which may close us */
    Py_INCREF(p);
    int rc = pa_flow_limits(high, low, proto_flow_kb(p, 0) * 1024, &p->incoming_high,
                            &p->incoming_low);
    if (rc == 0) {
        rc = pa_sslproto_control_ssl_reading(p);
    }
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_get_read_buffer_limits(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_incoming_low_water");
    return p ? Py_BuildValue("(nn)", p->incoming_low, p->incoming_high) : NULL;
}

static PyObject *
SSLTransport_get_read_buffer_size(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    SSLProtocolObject *p = protocol_of(self, "_get_read_buffer_size");
    Py_ssize_t n = p ? pa_sslproto_read_buffer_size(p) : -1;
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
SSLTransport_get_protocol_paused(SSLTransportObject *self, void *Py_UNUSED(closure))
{
    SSLProtocolObject *p = protocol_of(self, "_app_writing_paused");
    return p ? PyBool_FromLong(p->app_writing_paused) : NULL;
}

static PyObject *
SSLTransport_write(SSLTransportObject *self, PyObject *data)
{
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError, "data: expecting a bytes-like instance, got %.200s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    int truth = PyObject_IsTrue(data);
    if (truth <= 0) {
        return truth < 0 ? NULL : Py_NewRef(Py_None);
    }
    SSLProtocolObject *p = protocol_of(self, "_write_appdata");
    if (p == NULL || pa_sslproto_write_appdata(p, &data, 1, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_writelines(SSLTransportObject *self, PyObject *list_of_data)
{
    SSLProtocolObject *p = protocol_of(self, "_write_appdata");
    if (p == NULL || pa_sslproto_write_appdata(p, NULL, 0, list_of_data) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_write_eof(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_SetNone(PyExc_NotImplementedError);
    return NULL;
}

static PyObject *
SSLTransport_can_write_eof(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_FALSE;
}

static PyObject *
SSLTransport_force_close(SSLTransportObject *self, PyObject *exc)
{
    self->closed = 1;
#if PY_VERSION_HEX < 0x030D0000
    /* 3.11/3.12 reach _abort() even after a second close(): AttributeError */
    SSLProtocolObject *p = protocol_of(self, "_abort");
    if (p == NULL) {
        return NULL;
    }
#else
    SSLProtocolObject *p = PROTO(self);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
#endif
    Py_INCREF(p);
    int rc = pa_sslproto_abort(p, exc);
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
SSLTransport_abort(SSLTransportObject *self, PyObject *Py_UNUSED(ignored))
{
    self->closed = 1;
    SSLProtocolObject *p = PROTO(self);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(p);
    int rc = pa_sslproto_abort(p, Py_None);
    Py_DECREF(p);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* For CPython's tests only, as asyncio has it. */
static PyObject *
SSLTransport_test_append_write_backlog(SSLTransportObject *self, PyObject *data)
{
    SSLProtocolObject *p = protocol_of(self, "_write_backlog");
    if (p == NULL) {
        return NULL;
    }
    Py_ssize_t len = PyObject_Size(data);
    if (len < 0 || PyList_Append(p->backlog, data) < 0) {
        return NULL;
    }
    p->write_buffer_size += len;
    Py_RETURN_NONE;
}

static void
SSLTransport_finalize(SSLTransportObject *self)
{
    if (self->closed) {
        return;
    }
    self->closed = 1;
    PyObject *exc = pa_err_take();
    if (PyErr_WarnEx(PyExc_ResourceWarning,
                     "unclosed transport <asyncio._SSLProtocolTransport object>", 1) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    pa_err_restore(exc);
}

static int
SSLTransport_traverse(SSLTransportObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->extra);
    Py_VISIT(self->loop);
    Py_VISIT(self->ssl_protocol);
    Py_VISIT(self->dict);
    return 0;
}

static int
SSLTransport_clear(SSLTransportObject *self)
{
    Py_CLEAR(self->extra);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->ssl_protocol);
    Py_CLEAR(self->dict);
    return 0;
}

static void
SSLTransport_dealloc(SSLTransportObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    SSLTransport_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

#define NOARGS(name, func) {name, (PyCFunction)(void (*)(void))func, METH_NOARGS, NULL}
#define KWARGS(name, func)                                                                         \
    {name, (PyCFunction)(void (*)(void))func, METH_VARARGS | METH_KEYWORDS, NULL}

static PyMethodDef SSLTransport_methods[] = {
    KWARGS("get_extra_info", SSLTransport_get_extra_info),
    {"set_protocol", (PyCFunction)SSLTransport_set_protocol, METH_O, NULL},
    NOARGS("get_protocol", SSLTransport_get_protocol),
    NOARGS("is_closing", SSLTransport_is_closing),
    NOARGS("close", SSLTransport_close),
    NOARGS("is_reading", SSLTransport_is_reading),
    NOARGS("pause_reading", SSLTransport_pause_reading),
    NOARGS("resume_reading", SSLTransport_resume_reading),
    KWARGS("set_write_buffer_limits", SSLTransport_set_write_buffer_limits),
    NOARGS("get_write_buffer_limits", SSLTransport_get_write_buffer_limits),
    NOARGS("get_write_buffer_size", SSLTransport_get_write_buffer_size),
    KWARGS("set_read_buffer_limits", SSLTransport_set_read_buffer_limits),
    NOARGS("get_read_buffer_limits", SSLTransport_get_read_buffer_limits),
    NOARGS("get_read_buffer_size", SSLTransport_get_read_buffer_size),
    {"write", (PyCFunction)SSLTransport_write, METH_O, NULL},
    {"writelines", (PyCFunction)SSLTransport_writelines, METH_O, NULL},
    NOARGS("write_eof", SSLTransport_write_eof),
    NOARGS("can_write_eof", SSLTransport_can_write_eof),
    NOARGS("abort", SSLTransport_abort),
    {"_force_close", (PyCFunction)SSLTransport_force_close, METH_O, NULL},
    {"_test__append_write_backlog", (PyCFunction)SSLTransport_test_append_write_backlog, METH_O,
     NULL},
    {NULL},
};

static PyObject *
SSLTransport_get_ssl_protocol(SSLTransportObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->ssl_protocol ? self->ssl_protocol : Py_None);
}

static PyObject *
SSLTransport_get_closed(SSLTransportObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->closed);
}

static PyGetSetDef SSLTransport_getset[] = {
    {"_ssl_protocol", (getter)SSLTransport_get_ssl_protocol, NULL, NULL, NULL},
    {"_closed", (getter)SSLTransport_get_closed, NULL, NULL, NULL},
    {"_protocol_paused", (getter)SSLTransport_get_protocol_paused, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyMemberDef SSLTransport_members[] = {
    {"_loop", T_OBJECT, offsetof(SSLTransportObject, loop), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SSLTransportObject, weakreflist), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(SSLTransportObject, dict), READONLY, NULL},
    {NULL},
};

static PyType_Slot SSLTransport_slots[] = {
    {Py_tp_doc, "The transport an application gets over TLS, as "
                "asyncio.sslproto._SSLProtocolTransport."},
    {Py_tp_dealloc, SSLTransport_dealloc},
    {Py_tp_finalize, SSLTransport_finalize},
    {Py_tp_traverse, SSLTransport_traverse},
    {Py_tp_clear, SSLTransport_clear},
    {Py_tp_methods, SSLTransport_methods},
    {Py_tp_members, SSLTransport_members},
    {Py_tp_getset, SSLTransport_getset},
    {0, NULL},
};

static PyType_Spec SSLTransport_spec = {
    .name = "pyasync._core._SSLProtocolTransport",
    .basicsize = sizeof(SSLTransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SSLTransport_slots,
};

int
pa_ssltransport_register_type(PyObject *module, pa_state *st)
{
    if (pa_tr_register(module, &SSLTransport_spec, "Transport", NULL, &st->SSLTransportType) < 0) {
        return -1;
    }
    /* asyncio's class attributes: start_tls() may run over this transport,
     * and loop.sendfile() falls back to reading the file and writing it. */
    PyObject *constants = PyImport_ImportModule("asyncio.constants");
    PyObject *mode = constants ? PyObject_GetAttrString(constants, "_SendfileMode") : NULL;
    PyObject *fallback = mode ? PyObject_GetAttrString(mode, "FALLBACK") : NULL;
    Py_XDECREF(constants);
    Py_XDECREF(mode);
    if (fallback == NULL) {
        return -1;
    }
    PyObject *dict = st->SSLTransportType->tp_dict;
    int rc = PyDict_SetItemString(dict, "_sendfile_compatible", fallback);
    Py_DECREF(fallback);
    if (rc < 0 || PyDict_SetItemString(dict, "_start_tls_compatible", Py_True) < 0) {
        return -1;
    }
    PyType_Modified(st->SSLTransportType);
    return 0;
}
