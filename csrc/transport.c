/*
 * transport.c - the transport core (see transport.h): what the stream,
 * datagram and pipe data paths share - reading into bytes, reading's
 * state (pause, resume, the protocol), set-up and the type plumbing; how a
 * transport ends (close, abort, fatal errors, connection_lost) is in
 * transportclose.c. The behaviour follows asyncio's selector transports of
 * each supported version; the messages given to the exception handler are
 * asyncio's.
 *
 * What the stream and pipe paths have still to write is a write queue
 * (writequeue.c).
 */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* ---------------------------------------------------------------- helpers */

/* The OSError (subclass picked from errno) for a failed syscall, as an
 * object; NULL only if making it failed. */
PyObject *
pa_tr_oserror(int err)
{
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return pa_err_take();
}

int
pa_tr_check_initialised(TransportObject *self)
{
    if (!self->initialised) {
        PyErr_Format(PyExc_RuntimeError, "%s object is not initialized", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

PyObject *
pa_tr_call_protocol(TransportObject *self, PyObject *name, PyObject *const *args, size_t nargs)
{
    if (self->protocol == NULL) {
        Py_RETURN_NONE;
    }
    /* The call may replace or drop self->protocol: hold our own reference. */
    PyObject *stack[3];
    if (nargs > 2) {
        PyErr_SetString(PyExc_SystemError, "pa_tr_call_protocol: too many arguments");
        return NULL;
    }
    stack[0] = Py_NewRef(self->protocol);
    for (size_t i = 0; i < nargs; i++) {
        stack[1 + i] = args[i];
    }
    PyObject *res = PyObject_VectorcallMethod(name, stack, 1 + nargs, NULL);
    Py_DECREF(stack[0]);
    return res;
}

/* loop.call_soon(self._call_connection_lost, arg) */
int
pa_tr_call_soon_connection_lost(TransportObject *self, PyObject *arg)
{
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *method = PyObject_GetAttr((PyObject *)self, st->str_call_connection_lost);
    if (method == NULL) {
        return -1;
    }
    PyObject *args[1] = {arg};
    int rc = pa_call_soon(st, self->loop, method, args, 1, NULL);
    Py_DECREF(method);
    return rc;
}

int
pa_tr_report(TransportObject *self, const char *message, PyObject *exc)
{
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *ctx = Py_BuildValue("{sssOsOsO}", "message", message, "exception", exc,
                                  "transport", (PyObject *)self, "protocol",
                                  self->protocol ? self->protocol : Py_None);
    if (ctx == NULL) {
        return -1;
    }
    PyObject *res = PyObject_CallMethodOneArg(self->loop, st->str_call_exception_handler, ctx);
    Py_DECREF(ctx);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

int
pa_tr_unwatch(TransportObject *self, uint32_t dir)
{
    /* Reading stops and restarts often (flow control of streams); the
     * writer, once the buffer drains, would only make the next poll return
     * at once for a writable socket, so it goes for good. */
    LoopObject *loop = pa_tr_loop(self);
    int rc = dir == PA_READABLE ? pa_loop_unwatch_fd_lazily(loop, self->fd, dir)
                                : pa_loop_unwatch_fd(loop, self->fd, dir);
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------ the fd under the socket */

/* Python's socket object keeps its fd as the first field after the object
 * header (PySocketSockObject in CPython's Modules/socketmodule.h, the same in
 * 3.11 to 3.13) and sets it to -1 when it is closed. pa_tr_init() checks
 * the field against fileno() before trusting it. */
typedef struct {
    PyObject_HEAD
    int sock_fd;
} socket_head;

/* Whether the socket object still holds the number this transport was made
 * with. Other code may close it behind the transport's back (say
 * get_extra_info("socket").close()), and the kernel gives the number to the
 * next file opened: a system call on it would read or write that file.
 * asyncio's transport calls the socket object, which then fails with EBADF;
 * every system call below fails the same way. */
int
pa_tr_sock_holds_fd(TransportObject *self)
{
    if (self->sock == NULL) {
        return 0;
    }
    if (self->lazy_sock) {
        return 1; /* no object holds the fd but this transport */
    }
    if (self->fd_in_sock) {
        return ((socket_head *)self->sock)->sock_fd == self->fd;
    }
    /* Not a _socket.socket: ask it (any error counts as closed). */
    PyObject *exc = pa_err_take();
    PyObject *fdobj = PyObject_CallMethodNoArgs(self->sock, pa_tr_loop(self)->state->str_fileno);
    long fd = fdobj ? PyLong_AsLong(fdobj) : -1;
    Py_XDECREF(fdobj);
    PyErr_Clear();
    pa_err_restore(exc);
    return fd == self->fd;
}

/* A write after connection_lost was scheduled: counted, and logged once
 * the count passes asyncio's threshold. */
PyObject *
pa_tr_write_after_lost(TransportObject *self)
{
    if (self->conn_lost >= PA_LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        pa_state *st = pa_tr_loop(self)->state;
        PyObject *msg = PyUnicode_FromString("socket.send() raised exception.");
        PyObject *res = msg ? PyObject_CallMethodOneArg(st->logger, st->str_warning, msg) : NULL;
        Py_XDECREF(msg);
        if (res == NULL) {
            return NULL;
        }
        Py_DECREF(res);
    }
    self->conn_lost++;
    Py_RETURN_NONE;
}

int
pa_tr_call_connection_lost_now(TransportObject *self, PyObject *exc)
{
    PyObject *res = PyObject_CallMethodOneArg((PyObject *)self,
                                              pa_tr_loop(self)->state->str_call_connection_lost, exc);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

int
pa_tr_settle_empty_waiter(TransportObject *self, PyObject *exc)
{
    if (self->empty_waiter == NULL) {
        return 0;
    }
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *waiter = Py_NewRef(self->empty_waiter);
    PyObject *res = exc ? PyObject_CallMethodOneArg(waiter, st->str_set_exception, exc)
                        : PyObject_CallMethodOneArg(waiter, st->str_set_result, Py_None);
    Py_DECREF(waiter);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* ---------------------------------------------------------------- reading */

/* Page aligned because the kernel copies a pipe's or a socket's pages into
 * it: on x86-64 that copy ran 2.5-3x slower into malloc()'s usual
 * 16-bytes-past-a-page address than into a page boundary (3.8 against
 * 1.3 GB/s for 64 KiB pipe reads, measured in C on this project's build
 * machine), and it dominated the profile of a pipe reader. */
char *
pa_tr_recv_buffer(pa_state *st)
{
    if (st->recv_buffer == NULL) {
        void *buf = NULL;
        if (posix_memalign(&buf, 4096, PA_MAX_READ) != 0) {
            PyErr_NoMemory();
            return NULL;
        }
        st->recv_buffer = buf;
    }
    return st->recv_buffer;
}

/* What a read of n bytes, asked for `want`, says of the next. For an asyncio
 * StreamReader the size follows the flow: 64 KiB, 256 KiB once a read
 * filled what it asked for (more is waiting: a large message), 64 KiB again
 * once one did not (the message ended). Each 64 KiB chunk costs the
 * StreamReader a feed_data(), a wake-up and a task step, which with 1 MiB
 * messages cost more than the larger blocks do; chunks of up to 64 KiB
 * keep it short for messages that fit (see set_protocol()). Measured with
 * bench/echo.py, 1 MiB messages, against the fixed 64 KiB: the server's CPU
 * per request 0.55-0.68x with `reader.read(256 KiB)`, 0.92x with
 * `readexactly()`, 1.11-1.15x with `reader.read(64 KiB)` (a 256 KiB chunk
 * pauses and resumes the transport); 100 KiB messages unchanged within the
 * noise. See docs/design.md, "Read size", for the rules that lost. */
static void
after_read(TransportObject *self, size_t n, size_t want)
{
    self->large_reads = n >= PA_DIRECT_READ_MIN;
    if (self->stream_reads) {
        self->read_size = n == want ? self->max_read : PA_STREAM_READER_READ;
    }
}

/* A large read is likely followed by another: it goes straight into a new
 * bytes object of read_size bytes, shrunk to what came (realloc() shrinks
 * in place), which saves copying it out of the scratch buffer. A small read
 * goes into the scratch buffer and is copied out, so that a connection that
 * carries small messages does not allocate read_size bytes for each. The
 * last read decides. Only for reads of up to PA_DIRECT_READ_MAX: malloc()
 * serves larger blocks (above 128 KiB by default) with mmap(), and a
 * mapping made, faulted in, shrunk and unmapped for every read cost 1.7x
 * the time of the copy it saved (bench/echo.py, 100 KiB messages to a
 * Protocol, whose reads are 256 KiB). */
int
pa_tr_read_bytes(TransportObject *self, pa_tr_read_call io, PyObject **data)
{
    size_t want = (size_t)self->read_size;
    ssize_t n;
    if (self->large_reads && want <= PA_DIRECT_READ_MAX) {
        PyObject *obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
        if (obj == NULL) {
            return -2;
        }
        n = io(self, PyBytes_AS_STRING(obj), want);
        if (n <= 0) {
            int err = errno;
            Py_DECREF(obj);
            errno = err;
            self->large_reads = 0;
            return n == 0 ? 0 : -1;
        }
        after_read(self, (size_t)n, want);
        if ((size_t)n < want && _PyBytes_Resize(&obj, n) < 0) {
            return -2;
        }
        *data = obj;
        return 1;
    }
    char *buf = pa_tr_recv_buffer(pa_tr_loop(self)->state);
    if (buf == NULL) {
        return -2;
    }
    n = io(self, buf, want);
    if (n <= 0) {
        return n == 0 ? 0 : -1;
    }
    after_read(self, (size_t)n, want);
    *data = PyBytes_FromStringAndSize(buf, n);
    return *data != NULL ? 1 : -2;
}

/* ---------------------------------------------------------------- state */

/* What the program sees: a transport its finaliser closed is not closing
 * until close() is called, as asyncio's __del__ leaves it. StreamWriter's
 * finaliser, for one, asks: it warns about an unclosed writer (or a closed
 * loop) only when its transport is not closing. */
static int
closing_as_seen(TransportObject *self)
{
    return self->closing && !self->finalized;
}

PyObject *
pa_tr_m_is_closing(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(closing_as_seen(self));
}

PyObject *
pa_tr_m_is_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!closing_as_seen(self) && !self->paused);
}

int
pa_tr_debug_log(TransportObject *self, const char *format)
{
    if (!pa_tr_loop(self)->debug) {
        return 0;
    }
    PyObject *res =
        PyObject_CallMethod(pa_tr_loop(self)->state->logger, "debug", "sO", format, (PyObject *)self);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

PyObject *
pa_tr_m_pause_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing || self->paused) {
        Py_RETURN_NONE;
    }
    self->paused = 1;
    if (pa_tr_unwatch(self, PA_READABLE) < 0 || pa_tr_debug_log(self, "%r pauses reading") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_resume_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing || !self->paused) {
        Py_RETURN_NONE;
    }
    self->paused = 0;
    if (pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_READABLE, self->read_ready) < 0 ||
        pa_tr_debug_log(self, "%r resumes reading") < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Start reading (scheduled right after connection_made), unless paused or
 * closed meanwhile. */
PyObject *
pa_tr_m_start_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing || self->paused) {
        Py_RETURN_NONE;
    }
    if (pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_READABLE, self->read_ready) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
set_protocol(TransportObject *self, PyObject *protocol)
{
    pa_state *st = pa_tr_loop(self)->state;
    int buffered = PyObject_IsInstance(protocol, st->BufferedProtocol);
    int streams = buffered ? 0 : PyObject_IsInstance(protocol, st->StreamReaderProtocol);
    if (buffered < 0 || streams < 0) {
        return -1;
    }
    /* asyncio's StreamReader copies out and shifts its buffer on every
     * read(n) (n = 64 KiB by default) and stops the transport above twice
     * its limit: chunks of its own read size keep it short. Measured with
     * bench/echo.py (streams, 100 KiB messages): 1.25x the requests/s of
     * 256 KiB chunks, while plain protocols do better with fewer, larger
     * chunks. Larger messages grow the reads (after_read()). */
    self->read_size = streams ? PA_STREAM_READER_READ : PA_MAX_READ;
    if (self->read_size > self->max_read) {
        self->read_size = self->max_read;
    }
    self->stream_reads = (char)streams;
    Py_XSETREF(self->protocol, Py_NewRef(protocol));
    self->buffered = (char)buffered;
    self->protocol_connected = 1;
    return 0;
}

PyObject *
pa_tr_m_set_protocol(TransportObject *self, PyObject *protocol)
{
    if (pa_tr_check_initialised(self) < 0 || set_protocol(self, protocol) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_get_protocol(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_ref_or_none(self->protocol);
}

PyObject *
pa_tr_m_can_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

/* ---------------------------------------------------------------- type slots */

/* What both ways of making a transport share, once the socket (or the
 * fd of a lazy one) is in place. */
static int
setup(TransportObject *self, PyObject *loop, PyObject *protocol, PyObject *extra,
      PyObject *server, const char *write_ready_name)
{
    PyObject *extra_dict = extra == Py_None ? PyDict_New() : Py_NewRef(extra);
    if (extra_dict == NULL) {
        return -1;
    }
    Py_XSETREF(self->extra, extra_dict);
    Py_XSETREF(self->loop, Py_NewRef(loop));
    Py_XSETREF(self->server, Py_NewRef(server));
    pa_loop_claim_fd((LoopObject *)loop, self->fd);
    if (self->read_ready == NULL) {
        self->read_ready =
            PyObject_GetAttr((PyObject *)self, pa_tr_loop(self)->state->str_read_ready);
        if (self->read_ready == NULL) {
            return -1;
        }
    }
    if (write_ready_name != NULL && self->write_ready == NULL) {
        self->write_ready = PyObject_GetAttrString((PyObject *)self, write_ready_name);
        if (self->write_ready == NULL) {
            return -1;
        }
    }
    self->high_water = PA_DEFAULT_HIGH_WATER;
    self->low_water = PA_DEFAULT_HIGH_WATER / 4;
    self->max_read = PA_MAX_READ;
    return set_protocol(self, protocol);
}

static int
check_init(pa_state *st, TransportObject *self, PyObject *loop)
{
    if (st == NULL || pa_check_ready(st) < 0) {
        return -1;
    }
    if (self->initialised) {
        /* The loop watches the fd with this transport's methods: a second
         * set-up would leave them on a socket it no longer holds. */
        PyErr_Format(PyExc_RuntimeError, "%s object is already initialized",
                     Py_TYPE(self)->tp_name);
        return -1;
    }
    if (!pa_loop_check(st, loop)) {
        PyErr_Format(PyExc_TypeError, "a pyasync loop is required, got %R", loop);
        return -1;
    }
    return 0;
}

int
pa_tr_init(TransportObject *self, PyObject *loop, PyObject *sock, PyObject *protocol,
           PyObject *extra, PyObject *server, const char *write_ready_name)
{
    pa_state *st = pa_state_of((PyObject *)self);
    if (check_init(st, self, loop) < 0) {
        return -1;
    }
    PyObject *fdobj = PyObject_CallMethodNoArgs(sock, st->str_fileno);
    if (fdobj == NULL) {
        return -1;
    }
    long fd = PyLong_AsLong(fdobj);
    Py_DECREF(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "the socket is closed");
        return -1;
    }
    if (self->lazy_sock) {
        PyErr_SetString(PyExc_RuntimeError, "the transport holds an fd already");
        return -1;
    }
    Py_XSETREF(self->sock, Py_NewRef(sock));
    self->fd = (int)fd;
    /* Read the fd out of the socket object only where the field proves to
     * hold what fileno() said. */
    self->fd_in_sock = st->socket_type != NULL && PyType_Check(st->socket_type) &&
                       PyObject_TypeCheck(sock, (PyTypeObject *)st->socket_type) &&
                       ((socket_head *)sock)->sock_fd == self->fd;
    return setup(self, loop, protocol, extra, server, write_ready_name);
}

int
pa_tr_init_lazy(TransportObject *self, PyObject *loop, int fd, int family, int socktype,
                int proto, PyObject *protocol, PyObject *extra, PyObject *server)
{
    pa_state *st = pa_state_of((PyObject *)self);
    if (check_init(st, self, loop) < 0 || self->sock != NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "the transport holds a socket already");
        }
        (void)close(fd);
        return -1;
    }
    /* From here the transport owns the fd: closed by close_socket() (the
     * loop is set first for it) or, for a transport never finished, by
     * tp_clear. */
    Py_XSETREF(self->loop, Py_NewRef(loop));
    Py_XSETREF(self->sock, Py_NewRef(Py_None));
    self->fd = fd;
    self->lazy_sock = 1;
    self->fd_in_sock = 0;
    self->family = family;
    self->socktype = socktype;
    self->proto = proto;
    return setup(self, loop, protocol, extra, server, "_write_ready");
}

int
pa_tr_own_fd(TransportObject *self)
{
    return pa_loop_set_fd_transport(pa_tr_loop(self), self->fd, (PyObject *)self);
}

/* _own_fd(owns): sendfile lends the fd to sock_sendfile() (own_fd(False))
 * and takes it back (own_fd(True)), as asyncio pops and restores its
 * _transports entry. Only a transport still holding its socket is
 * recorded. */
PyObject *
pa_tr_m_own_fd(TransportObject *self, PyObject *owns)
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    int flag = PyObject_IsTrue(owns);
    if (flag < 0) {
        return NULL;
    }
    if (!flag) {
        pa_loop_drop_fd_transport(pa_tr_loop(self), self->fd, (PyObject *)self);
    } else if (self->sock != NULL && pa_tr_own_fd(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

int
pa_tr_make_socket(TransportObject *self)
{
    if (!self->lazy_sock || self->sock == NULL) {
        return 0;
    }
    pa_state *st = pa_tr_loop(self)->state;
    /* SOCK_NONBLOCK: the object knows it is non-blocking without asking
     * the kernel, as setblocking(False) would. */
    PyObject *sock = PyObject_CallFunction(st->socket_class, "iiii", self->family,
                                           self->socktype | SOCK_NONBLOCK, self->proto,
                                           self->fd);
    if (sock == NULL) {
        return -1;
    }
    PyObject *trsock = PyObject_CallOneArg(st->TransportSocket, sock);
    if (trsock == NULL || PyDict_SetItem(self->extra, st->str_socket, trsock) < 0) {
        Py_XDECREF(trsock);
        /* The object took the fd: detach it so that its collection does not
         * close the fd this transport still uses. */
        PyObject *exc = pa_err_take();
        PyObject *res = PyObject_CallMethod(sock, "detach", NULL);
        Py_XDECREF(res);
        PyErr_Clear();
        pa_err_restore(exc);
        Py_DECREF(sock);
        return -1;
    }
    Py_DECREF(trsock);
    /* From now on the transport is as if made with this socket. */
    Py_SETREF(self->sock, sock);
    self->lazy_sock = 0;
    self->fd_in_sock = st->socket_type != NULL && PyType_Check(st->socket_type) &&
                       PyObject_TypeCheck(sock, (PyTypeObject *)st->socket_type) &&
                       ((socket_head *)sock)->sock_fd == self->fd;
    PyObject *name = PyObject_CallMethod(sock, "getsockname", NULL);
    if (name == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) {
            return -1;
        }
        PyErr_Clear();
        name = Py_NewRef(Py_None);
    }
    /* The acceptor may have given it already (the listening address). */
    PyObject *kept = PyDict_SetDefault(self->extra, st->str_sockname, name);
    Py_DECREF(name);
    return kept ? 0 : -1;
}

PyObject *
pa_tr_get_sock(TransportObject *self, void *Py_UNUSED(closure))
{
    if (pa_tr_make_socket(self) < 0) {
        return NULL;
    }
    return Py_NewRef(self->sock != NULL ? self->sock : Py_None);
}

/* The finaliser: a transport collected with its socket open warns, as
 * asyncio's __del__ does, and closes the socket through the loop
 * (_close_unclosed()). In C so that a connection's end runs no Python code
 * of ours. */
void
pa_tr_finalize(TransportObject *self)
{
    if (self->sock == NULL) {
        return;
    }
    PyObject *exc = pa_err_take();
    if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed transport %R", (PyObject *)self) <
        0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    PyObject *res = pa_tr_m_close_unclosed(self, NULL);
    if (res == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(res);
    pa_err_restore(exc);
}

PyObject *
pa_tr_get_has_socket(TransportObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->sock != NULL);
}

int
pa_tr_traverse(TransportObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->extra);
    Py_VISIT(self->loop);
    Py_VISIT(self->sock);
    Py_VISIT(self->protocol);
    Py_VISIT(self->server);
    Py_VISIT(self->empty_waiter);
    Py_VISIT(self->read_ready);
    Py_VISIT(self->write_ready);
    Py_VISIT(self->dgram_queue);
    Py_VISIT(self->address);
    return 0;
}

int
pa_tr_clear(TransportObject *self)
{
    self->initialised = 0;
    if (self->loop != NULL) {
        pa_loop_drop_fd_transport(pa_tr_loop(self), self->fd, (PyObject *)self);
    }
    if (self->lazy_sock) {
        /* Collected with its fd open and no finaliser run (never, for a
         * transport with __del__): close it rather than leak it. */
        self->lazy_sock = 0;
        (void)close(self->fd);
    }
    Py_CLEAR(self->extra);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->protocol);
    Py_CLEAR(self->server);
    Py_CLEAR(self->empty_waiter);
    Py_CLEAR(self->read_ready);
    Py_CLEAR(self->write_ready);
    Py_CLEAR(self->dgram_queue);
    Py_CLEAR(self->address);
    return 0;
}

void
pa_tr_dealloc(TransportObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    (void)pa_tr_clear(self);
    pa_wq_clear(&self->wq);
    tp->tp_free(self);
    Py_DECREF(tp);
}


PyObject *
pa_tr_asyncio_base(const char *name)
{
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    PyObject *base = transports ? PyObject_GetAttrString(transports, name) : NULL;
    Py_XDECREF(transports);
    if (base == NULL) {
        return NULL;
    }
    /* Our layout starts with the base's only slot; refuse to build on a
     * base that changed shape. */
    if (!PyType_Check(base) ||
        ((PyTypeObject *)base)->tp_basicsize != (Py_ssize_t)offsetof(TransportObject, loop)) {
        PyErr_Format(PyExc_ImportError,
                     "asyncio.%s's layout is not the one pyasync was built for", name);
        Py_DECREF(base);
        return NULL;
    }
    return base;
}

int
pa_tr_register(PyObject *module, PyType_Spec *spec, const char *base_name,
               const char *second_base_name, PyTypeObject **type)
{
    PyObject *base = pa_tr_asyncio_base(base_name);
    PyObject *second = base && second_base_name ? pa_tr_asyncio_base(second_base_name) : NULL;
    if (base == NULL || (second_base_name != NULL && second == NULL)) {
        Py_XDECREF(base);
        return -1;
    }
    PyObject *bases = second ? PyTuple_Pack(2, base, second) : Py_NewRef(base);
    Py_DECREF(base);
    Py_XDECREF(second);
    if (bases == NULL) {
        return -1;
    }
    *type = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, bases);
    Py_DECREF(bases);
    if (*type == NULL || PyModule_AddType(module, *type) < 0) {
        return -1;
    }
    return 0;
}

