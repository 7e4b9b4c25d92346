/*
 * sslproto.h - TLS over any stream transport: the SSL protocol that sits
 * between the socket transport and the application (asyncio.sslproto's
 * SSLProtocol, same behaviour, same state machine). The application's
 * transport is asyncio's own _SSLProtocolTransport: a thin Python class
 * whose methods call the protocol's private methods (_write_appdata(),
 * _start_shutdown(), ...), which ours has; so isinstance() checks, its
 * warnings and its attributes are asyncio's.
 *
 * The cryptography is the standard library's: an ssl.SSLObject over two
 * ssl.MemoryBIOs, as asyncio and uvloop use it. What moves into C is
 * everything around it: the state machine, the read loop that drains the
 * incoming BIO, the write backlog, flow control in both directions, and the
 * calls between the socket transport and this protocol, which skip Python
 * entirely when both are ours (the transport receives straight into a
 * scratch buffer and hands the bytes to pa_sslproto_data_in()).
 *
 * sslproto.c has the protocol's state machine and data paths;
 * sslproto_type.c the Python type around it (construction, the methods a
 * transport, the application's transport and Python code call,
 * attributes) and the module state it imports.
 */
#ifndef PYASYNC_SSLPROTO_H
#define PYASYNC_SSLPROTO_H

#include "state.h"

typedef enum {
    PA_SSL_UNWRAPPED = 0,
    PA_SSL_DO_HANDSHAKE,
    PA_SSL_WRAPPED,
    PA_SSL_FLUSHING,
    PA_SSL_SHUTDOWN,
} pa_ssl_state;

typedef enum {
    PA_APP_INIT = 0,
    PA_APP_CON_MADE,
    PA_APP_EOF,
    PA_APP_CON_LOST,
} pa_app_state;

typedef struct {
    PyObject_HEAD
    PyObject *loop;
    PyObject *app_protocol;       /* NULL once connection_lost() ran */
    PyObject *app_transport;      /* asyncio's _SSLProtocolTransport; NULL once
                                   * connection_lost() ran */
    PyObject *transport;          /* the transport below us; NULL until connection_made() */
    PyObject *sslcontext;
    PyObject *server_hostname;    /* str or None */
    PyObject *extra;              /* dict: sslcontext, then what the handshake tells */
    PyObject *waiter;             /* future or None, settled once */
    PyObject *handshake_timeout;  /* the number given (or the default), for messages */
    PyObject *shutdown_timeout;
    PyObject *handshake_timeout_handle;
    PyObject *shutdown_timeout_handle;
    PyObject *handshake_start_time; /* loop time, in debug mode only */
    PyObject *incoming;           /* ssl.MemoryBIO: bytes from the peer */
    PyObject *outgoing;           /* ssl.MemoryBIO: bytes for the peer */
    PyObject *sslobj;             /* what context.wrap_bio() gave (ssl.SSLObject) */
    /* What read/write/do_handshake/getpeercert/cipher/compression are
     * called on: the _ssl object inside an ssl.SSLObject of exactly that
     * class (its methods only forward), else sslobj itself, whose class may
     * override them. */
    PyObject *sslcore;
    PyObject *backlog;            /* list of app data not yet given to sslobj */
    PyObject *buffer;             /* bytearray for get_buffer() called from Python */
    PyObject *buffer_view;        /* memoryview of it */
    PyObject *weakreflist;
    PyObject *dict;               /* attributes set from Python, as on asyncio's class */
    Py_ssize_t write_buffer_size; /* bytes in backlog */
    Py_ssize_t conn_lost;
    Py_ssize_t incoming_high, incoming_low;
    Py_ssize_t outgoing_high, outgoing_low;
    pa_ssl_state state;
    pa_app_state app_state;
    char server_side;
    char app_is_buffer;           /* the app protocol is a BufferedProtocol */
    char app_transport_created;
    char sslcore_is_raw;          /* sslcore is the _ssl object: unwrap is shutdown() */
    char ssl_writing_paused;      /* the transport below asked us to stop writing */
    char ssl_reading_paused;      /* we paused the transport below */
    char app_reading_paused;      /* the app paused its transport */
    char app_writing_paused;      /* we paused the app */
    char eof_received;
    /* Made by a server's accept path, which has no task awaiting a waiter:
     * a failed handshake is reported here, as asyncio's task reports it. */
    char report_accept_errors;
} SSLProtocolObject;

/* What sslproto.c needs from Python, imported when the first SSL protocol
 * is made (a program that never uses TLS never imports ssl). */
typedef struct pa_ssl_names {
    PyObject *ssl_module;
    PyObject *MemoryBIO;
    PyObject *SSLObject;
    PyObject *SSLError;
    PyObject *SSLWantReadError;
    PyObject *SSLSyscallError;
    PyObject *CertificateError;
    PyObject *SSLProtocolTransport; /* asyncio.sslproto._SSLProtocolTransport */
    PyObject *logger;
    Py_ssize_t flow_read_kb, flow_write_kb;  /* asyncio.constants' defaults */
    Py_ssize_t log_threshold;
    double default_handshake_timeout, default_shutdown_timeout;
    PyObject *str_read, *str_write, *str_pending, *str_do_handshake, *str_unwrap, *str_shutdown,
        *str_getpeercert, *str_cipher, *str_compression, *str_force_close, *str_abort,
        *str_pause_reading, *str_resume_reading, *str_cancelled, *str_call_later,
        *str_wrap_bio, *str_sslobj_attr, *str_do_read, *str_resume, *str_check_handshake_timeout,
        *str_check_shutdown_timeout, *str_get_extra_info, *str_close, *str_closed, *kwnames_wrap_bio;
} pa_ssl_names;

int pa_sslproto_register_types(PyObject *module, pa_state *st);
/* The names TLS imports (sslnames.c): made on first use; NULL with an
 * exception if the import fails. */
pa_ssl_names *pa_ssl_names_get(pa_state *st);
int pa_sslproto_traverse_state(pa_state *st, visitproc visit, void *arg);
void pa_sslproto_clear_state(pa_state *st);

static inline int
pa_sslproto_check(pa_state *st, PyObject *obj)
{
    return st->SSLProtocolType != NULL && Py_IS_TYPE(obj, st->SSLProtocolType);
}

/* The SSL protocol of a connection a server accepted (accept.c):
 * SSLProtocol(loop, app_protocol, sslcontext, None, server_side=True, ...)
 * that reports a failed handshake as asyncio's accept task does. */
PyObject *pa_sslproto_new_server(pa_state *st, PyObject *loop, PyObject *app_protocol,
                                 PyObject *sslcontext, PyObject *handshake_timeout,
                                 PyObject *shutdown_timeout);

/* The socket transport received `n` bytes at `data` for this protocol: what
 * buffer_updated() does, without a buffer of ours in between. 0, or -1 with
 * an exception (to be reported as buffer_updated()'s failure). */
int pa_sslproto_data_in(SSLProtocolObject *self, const char *data, Py_ssize_t n);

/* The protocol's side of the application transport (asyncio's SSLProtocol
 * methods of the same names). */
PyObject *pa_sslproto_get_extra_info(SSLProtocolObject *self, PyObject *name, PyObject *dflt);
int pa_sslproto_set_app_protocol(SSLProtocolObject *self, PyObject *app_protocol);
int pa_sslproto_start_shutdown(SSLProtocolObject *self);
int pa_sslproto_abort(SSLProtocolObject *self, PyObject *exc);
int pa_sslproto_write_appdata(SSLProtocolObject *self, PyObject *list_of_data);
int pa_sslproto_resume_reading(SSLProtocolObject *self);
int pa_sslproto_control_app_writing(SSLProtocolObject *self);
int pa_sslproto_control_ssl_reading(SSLProtocolObject *self);
/* -1 with an exception if a BIO's pending count cannot be read. */
Py_ssize_t pa_sslproto_write_buffer_size(SSLProtocolObject *self);
Py_ssize_t pa_sslproto_read_buffer_size(SSLProtocolObject *self);

/* ---- Between sslproto.c (the state machine) and sslproto_type.c (the
 * Python type): asyncio's SSLProtocol methods of the same names; each
 * returns 0 (or a borrowed object), or -1 (NULL) with an exception. */

#define SSL_MAX_SIZE (256 * 1024)  /* asyncio's SSLProtocol.max_size */
#define SSL_RECORD_MAX (16 * 1024) /* the most plaintext a TLS record carries */

static inline pa_state *
pa_ssl_state_of(SSLProtocolObject *self)
{
    return pa_get_state(PyType_GetModule(Py_TYPE(self)));
}

static inline pa_ssl_names *
pa_ssl_names_of(SSLProtocolObject *self)
{
    return pa_ssl_state_of(self)->ssl; /* made before any instance */
}

static inline PyObject *
pa_ssl_call0(PyObject *obj, PyObject *name)
{
    return PyObject_VectorcallMethod(name, &obj, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static inline PyObject *
pa_ssl_call1(PyObject *obj, PyObject *name, PyObject *arg)
{
    PyObject *args[2] = {obj, arg};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* "SSLProtocolState.WRAPPED" and so on, as asyncio's enum prints them. */
const char *pa_ssl_state_name(pa_ssl_state state);
int pa_ssl_start_handshake(SSLProtocolObject *self);
int pa_ssl_do_handshake(SSLProtocolObject *self);
int pa_ssl_on_handshake_complete(SSLProtocolObject *self, PyObject *handshake_exc);
int pa_ssl_set_state(SSLProtocolObject *self, pa_ssl_state new_state);
int pa_ssl_do_flush(SSLProtocolObject *self);
int pa_ssl_do_write(SSLProtocolObject *self);
int pa_ssl_do_shutdown(SSLProtocolObject *self);
int pa_ssl_do_read(SSLProtocolObject *self);
int pa_ssl_process_outgoing(SSLProtocolObject *self);
int pa_ssl_fatal_error(SSLProtocolObject *self, PyObject *exc, const char *message);
int pa_ssl_wakeup_waiter(SSLProtocolObject *self, PyObject *exc);
int pa_ssl_cancel_handle(PyObject **handle);
int pa_ssl_mark_app_transport_closed(SSLProtocolObject *self);
PyObject *pa_ssl_get_app_transport(SSLProtocolObject *self);
int pa_ssl_transport_force_close(SSLProtocolObject *self, PyObject *exc);
/* logger.<level>(fmt, self[, arg]) through asyncio's logger. */
int pa_ssl_log(SSLProtocolObject *self, const char *level, const char *fmt, PyObject *arg,
               int exc_info);
int pa_ssl_on_data_in(SSLProtocolObject *self);
/* Shared by the state machine (sslproto.c) and the data paths
 * (sslproto_data.c). */
int pa_ssl_again_error_raised(pa_ssl_names *n);
Py_ssize_t pa_ssl_bio_pending(pa_ssl_names *n, PyObject *bio);
int pa_ssl_call_soon_method(SSLProtocolObject *self, PyObject *method_name);
int pa_ssl_fatal_error_from_raised(SSLProtocolObject *self, const char *message);
int pa_ssl_call_eof_received(SSLProtocolObject *self);
/* transport.<name>(arg) (no argument for NULL), the result dropped. */
int pa_ssl_transport_call_void(SSLProtocolObject *self, PyObject *name, PyObject *arg);
/* app_protocol.<name>(arg): a new reference, or NULL with an exception. */
PyObject *pa_ssl_app_call(SSLProtocolObject *self, PyObject *name, PyObject *arg);


#endif /* PYASYNC_SSLPROTO_H */
