/*
 * sslnames.c - what the TLS layer imports, once per module and kept in the
 * module state (pa_ssl_names): the ssl module's classes and exceptions,
 * asyncio's TLS constants (flow-control marks, timeouts), its logger and
 * _SSLProtocolTransport, and the interned names the SSL protocol calls.
 * Looked up when the first SSLProtocol is made; visited and freed with the
 * module state.
 */
#include "sslproto.h"

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
    Py_CLEAR(n->SSLProtocolTransport);
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

pa_ssl_names *
pa_ssl_names_get(pa_state *st)
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
    PyObject *sslproto = PyImport_ImportModule("asyncio.sslproto");
    n->SSLProtocolTransport =
        sslproto ? PyObject_GetAttrString(sslproto, "_SSLProtocolTransport") : NULL;
    Py_XDECREF(sslproto);
    if (n->SSLProtocolTransport == NULL) {
        goto fail;
    }
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
    NAME(str_closed, "_closed");
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
        Py_VISIT(n->SSLProtocolTransport);
        Py_VISIT(n->logger);
    }
    Py_VISIT(st->SSLProtocolType);
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
}
