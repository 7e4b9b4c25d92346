/*
 * transport.h - socket transports: the stream transport (TCP and Unix) and
 * the datagram transport (UDP and Unix datagrams).
 *
 * Both C types hold everything on the data path: reading into the protocol,
 * writing with a try-first send and a buffer for what the kernel did not
 * take, flow control (pause_writing/resume_writing at the high/low marks),
 * close/abort and the single connection_lost. Their base classes are
 * asyncio.Transport and asyncio.DatagramTransport themselves, so transports
 * pass isinstance() checks; those classes' one slot (`_extra`, the
 * get_extra_info() dict) is the first field of our layout.
 * pyasync/_transports.py subclasses them in Python for what runs once per
 * connection (set-up, repr, the unclosed-transport warning).
 *
 * transport.c has what they share (the transport core), transportclose.c
 * how they end, flowcontrol.c the write side's flow control;
 * streamtransport.c the stream data path, dgramtransport.c the datagram
 * data path, pipetransport.c the pipes'.
 *
 * Ownership: the loop's watcher table owns the handles that call
 * _read_ready/_write_ready (bound methods that the transport keeps too; it
 * drops them once its fd is closed, or once the loop is closed, which ends
 * the cycle transport -> bound method -> transport, so a finished transport
 * is freed without the garbage collector). The socket is closed
 * by _call_connection_lost(), which runs exactly once, or for a transport
 * collected without close() by its finaliser (_close_unclosed()), both
 * through the loop.
 *
 * Python code may create these objects without __init__ (T.__new__(T)), call
 * __init__ with arguments that make it fail half-way, call any method in any
 * order, or delete the `_extra` slot. Two invariants keep that safe:
 *   - `initialised` is set only by a complete __init__ (and cleared by
 *     tp_clear); every method that reaches the loop, the socket, its fd or
 *     the protocol checks it first (pa_tr_check_initialised);
 *   - once _call_connection_lost() has run (sock == NULL), the transport is
 *     closing, conn_lost > 0 and nothing is buffered, so every path that would
 *     touch the fd - whose number now belongs to the next file opened - stops
 *     at those checks. `protocol` is NULL from then on: protocol callbacks go
 *     through pa_tr_call_protocol(), which skips a missing protocol.
 */
#ifndef PYASYNC_TRANSPORT_H
#define PYASYNC_TRANSPORT_H

#include "state.h"
#include "loop.h"
#include "writequeue.h"

#include <netinet/in.h>
#include <structmember.h>
#include <sys/socket.h>

/* Flags of every send(): a peer gone away must give EPIPE, not a SIGPIPE
 * that kills an embedding application which did not ignore it (CPython
 * ignores SIGPIPE at start-up, embedders need not). Where MSG_NOSIGNAL does
 * not exist the process keeps its own SIGPIPE disposition. */
#ifdef MSG_NOSIGNAL
#define PA_SEND_FLAGS MSG_NOSIGNAL
#else
#define PA_SEND_FLAGS 0
#endif

#define PA_MAX_READ (256 * 1024) /* bytes per read, as asyncio's max_size */
#define PA_STREAM_READER_READ (64 * 1024) /* an asyncio StreamReader's first read */
#define PA_LOG_THRESHOLD_FOR_CONNLOST_WRITES 5
/* A read at least this large makes the next one go straight into a bytes
 * object of read_size bytes, if read_size is at most PA_DIRECT_READ_MAX
 * (see pa_tr_read_bytes). */
#define PA_DIRECT_READ_MIN (16 * 1024)
#define PA_DIRECT_READ_MAX (64 * 1024)

typedef struct {
    PyObject_HEAD
    PyObject *extra;        /* asyncio.BaseTransport's `_extra` slot: keep first */
    PyObject *loop;         /* a pyasync loop (LoopObject) */
    PyObject *sock;         /* socket.socket; NULL once connection_lost ran; None
                             * while `lazy_sock` (an accepted connection whose
                             * socket object is made when first asked for) */
    PyObject *protocol;
    PyObject *server;       /* asyncio.Server or None */
    PyObject *empty_waiter; /* future for sendfile: set when the buffer drains */
    PyObject *read_ready;   /* bound self._read_ready, made once */
    PyObject *write_ready;  /* bound self._write_ready (_sendto_ready), made once */
    /* stream and pipe: what is still to be written */
    pa_writequeue wq;
    /* datagram: queued (bytes, addr) pairs, their accounted size, and the
     * address given as remote_addr (or NULL) */
    PyObject *dgram_queue;
    Py_ssize_t dgram_count;
    Py_ssize_t dgram_size;
    PyObject *address;
    Py_ssize_t high_water, low_water;
    Py_ssize_t read_size;   /* bytes asked of the next recv() for a Protocol */
    Py_ssize_t max_read;    /* the largest read_size: PA_MAX_READ, or a pipe's capacity */
    Py_ssize_t conn_lost;   /* connection_lost scheduled (then: writes since) */
    Py_ssize_t dropped;     /* pipe: writes dropped after close() or the loss */
    int fd;
    int family, socktype, proto; /* of a lazy socket, for making it */
    char is_dgram;
    char is_read_pipe;      /* asyncio reports a read pipe's OSErrors but EIO */
    char closing;
    char paused;            /* pause_reading() in effect */
    char eof;               /* write_eof() called */
    char protocol_paused;   /* pause_writing() called on the protocol */
    char protocol_connected;
    char buffered;          /* the protocol is an asyncio.BufferedProtocol */
    char initialised;       /* __init__ completed (see the invariants above) */
    char large_reads;       /* the last read was large: read into a new bytes */
    char stream_reads;      /* read_size follows the flow (see pa_tr_read_bytes) */
    char finalized;         /* closed by _close_unclosed(), not by close() */
    char fd_in_sock;        /* sock is a _socket.socket whose fd field we read */
    char lazy_sock;         /* the transport holds the fd; no socket object yet */
    /* An accepted TCP connection's peer address as accept() gave it, made
     * into get_extra_info('peername') when first asked for; peer_len is 0
     * once it was (or when 'peername' was in extra from the start). */
    struct sockaddr_in6 peer;
    socklen_t peer_len;
} TransportObject;

/* A socket address as the socket module gives it (accept.c). */
PyObject *pa_sockaddr_object(const struct sockaddr *addr, socklen_t len);

static inline LoopObject *
pa_tr_loop(TransportObject *self)
{
    return (LoopObject *)self->loop;
}

/* Bytes waiting to be sent, as get_write_buffer_size() reports them. */
static inline Py_ssize_t
pa_tr_buffer_size(TransportObject *self)
{
    return self->is_dgram ? self->dgram_size : self->wq.size;
}

/* Whether anything waits to be sent (what close() waits for). */
static inline int
pa_tr_has_pending(TransportObject *self)
{
    return self->is_dgram ? self->dgram_count > 0 : self->wq.size > 0;
}

static inline int
pa_tr_is_fatal_exception(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit) ||
           PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* RuntimeError and -1 unless __init__ completed. */
int pa_tr_check_initialised(TransportObject *self);

/* close() of a transport already closed: None, but RuntimeError('Event
 * loop is closed') when only its finaliser closed it and the loop is
 * closed (see transport.c). */
PyObject *pa_tr_close_again(TransportObject *self);

/* protocol.<name>(*args): a new reference, None when the protocol is gone
 * (connection_lost ran), NULL with an exception if the call failed. */
PyObject *pa_tr_call_protocol(TransportObject *self, PyObject *name, PyObject *const *args,
                              size_t nargs);

/* asyncio's default high-water mark of a transport's write buffer. */
#define PA_DEFAULT_HIGH_WATER (64 * 1024)

/* call_exception_handler({message, exception, transport, protocol}): 0, or
 * -1 if the handler itself failed. */
int pa_tr_report(TransportObject *self, const char *message, PyObject *exc);

/* Flow control, in flowcontrol.c. add_flowcontrol_defaults() of asyncio:
 * the high and low marks from what set_write_buffer_limits(high, low) was
 * given (None or NULL: the default high mark, a quarter of it low),
 * ValueError unless high >= low >= 0. Also for TLS (sslproto_type.c). */
int pa_flow_limits(PyObject *high, PyObject *low, Py_ssize_t default_high, Py_ssize_t *hi,
                   Py_ssize_t *lo);

/* Shared by both kinds, in transport.c. All return 0, or -1 with an
 * exception that must propagate (SystemExit, KeyboardInterrupt, or a failure
 * of the exception handler itself). */
int pa_tr_unwatch(TransportObject *self, uint32_t dir);
/* For the loop's close: see transportclose.c. */
void pa_tr_release_watch_callbacks_of(pa_state *st, PyObject *callback);
int pa_tr_fatal_error(TransportObject *self, PyObject *exc, const char *message);
int pa_tr_fatal_error_from_raised(TransportObject *self, const char *message);
int pa_tr_fatal_errno(TransportObject *self, int err, const char *message);

/* The scratch buffer the transports read into (PA_MAX_READ bytes, page
 * aligned), made when first needed; NULL with MemoryError. */
char *pa_tr_recv_buffer(pa_state *st);

/* One read of up to read_size bytes for data_received(), made with `io`
 * (recv() or read() on the transport's fd). 1 with *data a new bytes
 * object, 0 at end of file, -1 with errno when the call failed, -2 with an
 * exception. */
typedef ssize_t (*pa_tr_read_call)(TransportObject *self, void *buf, size_t len);
int pa_tr_read_bytes(TransportObject *self, pa_tr_read_call io, PyObject **data);
/* pause_writing() once the write buffer is above the high mark,
 * resume_writing() once it is back at the low mark (flowcontrol.c). */
int pa_tr_maybe_pause_protocol(TransportObject *self);
int pa_tr_maybe_resume_protocol(TransportObject *self);
int pa_tr_call_connection_lost_now(TransportObject *self, PyObject *exc);
PyObject *pa_tr_write_after_lost(TransportObject *self);
/* Settle the sendfile waiter (if any): its result, or exc. */
int pa_tr_settle_empty_waiter(TransportObject *self, PyObject *exc);

/* The OSError (subclass picked from errno) for a failed system call, as a
 * new reference, or NULL. */
PyObject *pa_tr_oserror(int err);

/* Whether the socket (or pipe) object still holds the fd number the
 * transport was made with; see transport.c. */
int pa_tr_sock_holds_fd(TransportObject *self);

/* The bytes the stream and pipe paths still have to write. */
#define PA_TR_WBUF_SIZE(t) ((t)->wq.size)

/* _force_close(exc): drop buffered data, stop reading, schedule
 * connection_lost(exc), once. exc may be NULL (None). */
int pa_tr_force_close(TransportObject *self, PyObject *exc);
/* Log through asyncio's logger at debug level with `format` % self, in
 * debug mode only. */
int pa_tr_debug_log(TransportObject *self, const char *format);
/* loop.call_soon(self._call_connection_lost, arg) */
int pa_tr_call_soon_connection_lost(TransportObject *self, PyObject *arg);

/* Initialise the common fields: Transport(loop, sock, protocol, extra,
 * server); `write_ready_name` names the method the writer watch calls
 * (NULL for a transport that never writes).
 * Refuses a transport already initialised; the caller sets `initialised`
 * once its own fields are ready too. */
int pa_tr_init(TransportObject *self, PyObject *loop, PyObject *sock, PyObject *protocol,
               PyObject *extra, PyObject *server, const char *write_ready_name);

/* A transport that holds an accepted connection's fd, its socket object
 * made only when asked for (pa_tr_make_socket); a stream transport. The fd
 * is the transport's from the call on: closed at once if the transport
 * cannot take it, else by closing the transport (or by tp_clear). */
int pa_tr_init_lazy(TransportObject *self, PyObject *loop, int fd, int family, int socktype,
                    int proto, PyObject *protocol, PyObject *extra, PyObject *server);

/* server._attach(self) or server._detach(self), as the version's Server
 * wants them (compat.h). */
PyObject *pa_tr_server_call(TransportObject *self, PyObject *name);

/* The methods both types have: asyncio's names, same behaviour. */
PyObject *pa_tr_m_close(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_abort(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_is_closing(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_is_reading(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_pause_reading(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_resume_reading(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_set_protocol(TransportObject *self, PyObject *protocol);
PyObject *pa_tr_m_get_protocol(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_get_write_buffer_limits(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_get_write_buffer_size(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_can_write_eof(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_set_write_buffer_limits(TransportObject *self, PyObject *args, PyObject *kwds);
PyObject *pa_tr_m_start_reading(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_force_close(TransportObject *self, PyObject *exc);
PyObject *pa_tr_m_fatal_error(TransportObject *self, PyObject *args);
PyObject *pa_tr_m_call_connection_lost(TransportObject *self, PyObject *exc);
PyObject *pa_tr_m_close_unclosed(TransportObject *self, PyObject *unused);
PyObject *pa_tr_m_own_fd(TransportObject *self, PyObject *owns);

#define PA_TR_NOARGS(name, func) {name, (PyCFunction)(void (*)(void))func, METH_NOARGS, NULL}

#define PA_TR_COMMON_METHODS                                                                       \
    PA_TR_NOARGS("close", pa_tr_m_close), PA_TR_NOARGS("abort", pa_tr_m_abort),                    \
        PA_TR_NOARGS("is_closing", pa_tr_m_is_closing),                                            \
        PA_TR_NOARGS("is_reading", pa_tr_m_is_reading),                                            \
        PA_TR_NOARGS("pause_reading", pa_tr_m_pause_reading),                                      \
        PA_TR_NOARGS("resume_reading", pa_tr_m_resume_reading),                                    \
        {"set_protocol", (PyCFunction)pa_tr_m_set_protocol, METH_O, NULL},                         \
        PA_TR_NOARGS("get_protocol", pa_tr_m_get_protocol),                                        \
        PA_TR_NOARGS("get_write_buffer_limits", pa_tr_m_get_write_buffer_limits),                  \
        {"set_write_buffer_limits", (PyCFunction)(void (*)(void))pa_tr_m_set_write_buffer_limits,  \
         METH_VARARGS | METH_KEYWORDS, NULL},                                                      \
        PA_TR_NOARGS("_start_reading", pa_tr_m_start_reading),                                     \
        {"_force_close", (PyCFunction)pa_tr_m_force_close, METH_O, NULL},                          \
        {"_fatal_error", (PyCFunction)pa_tr_m_fatal_error, METH_VARARGS, NULL},                    \
        {"_call_connection_lost", (PyCFunction)pa_tr_m_call_connection_lost, METH_O, NULL},        \
        PA_TR_NOARGS("_close_unclosed", pa_tr_m_close_unclosed),                                   \
        {"_own_fd", (PyCFunction)pa_tr_m_own_fd, METH_O, NULL}

#define PA_TR_COMMON_MEMBERS                                                                       \
    {"_loop", T_OBJECT, offsetof(TransportObject, loop), READONLY, NULL},                          \
        {"_sock_fd", T_INT, offsetof(TransportObject, fd), READONLY, NULL},                        \
        {"_protocol", T_OBJECT, offsetof(TransportObject, protocol), READONLY, NULL},              \
        {"_server", T_OBJECT, offsetof(TransportObject, server), READONLY, NULL},                  \
        {"_conn_lost", T_PYSSIZET, offsetof(TransportObject, conn_lost), READONLY, NULL},          \
        {"_closing", T_BOOL, offsetof(TransportObject, closing), READONLY, NULL},                  \
        {"_paused", T_BOOL, offsetof(TransportObject, paused), READONLY, NULL},                    \
        {"_protocol_paused", T_BOOL, offsetof(TransportObject, protocol_paused), READONLY, NULL},  \
        {"_high_water", T_PYSSIZET, offsetof(TransportObject, high_water), READONLY, NULL},        \
        {"_low_water", T_PYSSIZET, offsetof(TransportObject, low_water), READONLY, NULL}

/* `_sock`: the socket object, made now for a lazy socket; None once closed. */
PyObject *pa_tr_get_sock(TransportObject *self, void *closure);
/* `_has_socket`: whether the transport still holds its socket (or fd). */
PyObject *pa_tr_get_has_socket(TransportObject *self, void *closure);
#define PA_TR_COMMON_GETSET                                                                        \
    {"_sock", (getter)pa_tr_get_sock, NULL, NULL, NULL},                                           \
        {"_has_socket", (getter)pa_tr_get_has_socket, NULL, NULL, NULL}

/* The socket object of a transport whose `lazy_sock` is set, made now,
 * with get_extra_info()'s 'socket' and 'sockname'; 0, or -1 with an
 * exception. Nothing to do for other transports. */
int pa_tr_make_socket(TransportObject *self);

/* Record the transport as the owner of its fd in the loop's table (see
 * pa_loop_set_fd_transport); 0, or -1 with MemoryError. */
int pa_tr_own_fd(TransportObject *self);

int pa_tr_traverse(TransportObject *self, visitproc visit, void *arg);
int pa_tr_clear(TransportObject *self);
void pa_tr_dealloc(TransportObject *self);
void pa_tr_finalize(TransportObject *self);

/* The base class, by name, from asyncio.transports, checked for the
 * layout we build on. */
PyObject *pa_tr_asyncio_base(const char *name);

/* Make a transport type on that base (and a second one, or NULL) and add
 * it to the module. */
int pa_tr_register(PyObject *module, PyType_Spec *spec, const char *base_name,
                   const char *second_base_name, PyTypeObject **type);

int pa_transport_register_type(PyObject *module, pa_state *st);
int pa_acceptor_register_type(PyObject *module, pa_state *st);
int pa_dgram_transport_register_type(PyObject *module, pa_state *st);
int pa_pipe_transport_register_types(PyObject *module, pa_state *st);

#endif /* PYASYNC_TRANSPORT_H */
