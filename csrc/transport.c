/*
 * transport.c - see transport.h. The behaviour follows asyncio's selector
 * socket transport of each supported version; the messages given to the
 * exception handler are asyncio's.
 *
 * The write buffer is one contiguous block [wstart, wend) of wcap bytes:
 * appending copies, sending never does, and a drained buffer of more than
 * WBUF_KEEP bytes is freed so that idle connections hold no memory.
 */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define WBUF_KEEP (16 * 1024)          /* a drained write buffer up to this size is kept */
#define DEFAULT_HIGH_WATER (64 * 1024) /* asyncio's default write buffer limits */
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define WBUF_SIZE(t) ((t)->wend - (t)->wstart)

/* ---------------------------------------------------------------- helpers */

/* The OSError (subclass picked from errno) for a failed syscall, as an
 * object; NULL only if making it failed. */
static PyObject *
oserror_from_errno(int err)
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
static int
call_soon_connection_lost(TransportObject *self, PyObject *arg)
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

static int
report(TransportObject *self, const char *message, PyObject *exc)
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

static void
wbuf_clear(TransportObject *self)
{
    free(self->wbuf);
    self->wbuf = NULL;
    self->wstart = self->wend = self->wcap = 0;
}

/* The buffer just drained: start again at offset 0, or give it back. */
static void
wbuf_drained(TransportObject *self)
{
    if (self->wcap > WBUF_KEEP) {
        wbuf_clear(self);
    } else {
        self->wstart = self->wend = 0;
    }
}

static int
wbuf_append(TransportObject *self, const char *data, Py_ssize_t len)
{
    if (self->wend + len > self->wcap) {
        Py_ssize_t used = WBUF_SIZE(self);
        if (self->wstart > 0) {
            memmove(self->wbuf, self->wbuf + self->wstart, (size_t)used);
            self->wstart = 0;
            self->wend = used;
        }
        if (used + len > self->wcap) {
            Py_ssize_t cap = self->wcap ? self->wcap : 4096;
            while (cap < used + len) {
                if (cap > PY_SSIZE_T_MAX / 2) {
                    PyErr_NoMemory();
                    return -1;
                }
                cap *= 2;
            }
            char *buf = realloc(self->wbuf, (size_t)cap);
            if (buf == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            self->wbuf = buf;
            self->wcap = cap;
        }
    }
    memcpy(self->wbuf + self->wend, data, (size_t)len);
    self->wend += len;
    return 0;
}

/* Forget everything waiting to be sent (no system call, no unwatching). */
static int
drop_pending(TransportObject *self)
{
    wbuf_clear(self);
    if (self->dgram_queue != NULL && self->dgram_count > 0) {
        PyObject *res = PyObject_CallMethodNoArgs(self->dgram_queue,
                                                  pa_tr_loop(self)->state->str_clear);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    self->dgram_count = 0;
    self->dgram_size = 0;
    return 0;
}

/* ---------------------------------------------------------------- closing */

/* _force_close(exc): drop buffered data, stop reading, schedule
 * connection_lost(exc) - once. */
static int
force_close(TransportObject *self, PyObject *exc)
{
    if (self->conn_lost) {
        return 0;
    }
    if (pa_tr_has_pending(self)) {
        if (drop_pending(self) < 0 || pa_tr_unwatch(self, PA_WRITABLE) < 0) {
            return -1;
        }
    }
    if (!self->closing) {
        self->closing = 1;
        if (pa_tr_unwatch(self, PA_READABLE) < 0) {
            return -1;
        }
    }
    self->conn_lost++;
    return call_soon_connection_lost(self, exc ? exc : Py_None);
}

/* _fatal_error(exc, message): OSErrors are only logged in debug mode (peers
 * go away all the time); anything else goes to the exception handler. Then
 * the transport is force-closed. Fails only for what must stop the loop. */
int
pa_tr_fatal_error(TransportObject *self, PyObject *exc, const char *message)
{
    pa_state *st = pa_tr_loop(self)->state;
    int rc = 0;
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError)) {
        if (pa_tr_loop(self)->debug) {
            PyObject *kw = Py_BuildValue("{sO}", "exc_info", exc);
            PyObject *fn = kw ? PyObject_GetAttr(st->logger, st->str_debug) : NULL;
            PyObject *args = fn ? Py_BuildValue("(sOs)", "%r: %s", (PyObject *)self, message)
                                : NULL;
            PyObject *res = args ? PyObject_Call(fn, args, kw) : NULL;
            Py_XDECREF(kw);
            Py_XDECREF(fn);
            Py_XDECREF(args);
            Py_XDECREF(res);
            rc = res ? 0 : -1;
        }
    } else {
        rc = report(self, message, exc);
    }
    if (rc == 0) {
        rc = force_close(self, exc);
    }
    return rc;
}

/* The raised exception as a fatal error with `message`; SystemExit and
 * KeyboardInterrupt stay raised (-1). */
int
pa_tr_fatal_error_from_raised(TransportObject *self, const char *message)
{
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = pa_tr_fatal_error(self, exc, message);
    Py_DECREF(exc);
    return rc;
}

/* ---------------------------------------------------------------- flow control */

static int
protocol_callback_failed(TransportObject *self, const char *message)
{
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = report(self, message, exc);
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

/* ---------------------------------------------------------------- reading */

static int
on_eof(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    if (pa_tr_loop(self)->debug) {
        PyObject *res = PyObject_CallMethod(st->logger, "debug", "sO", "%r received EOF",
                                            (PyObject *)self);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    PyObject *res = pa_tr_call_protocol(self, st->str_eof_received, NULL, 0);
    if (res == NULL) {
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.eof_received() call failed.");
    }
    int keep_open = PyObject_IsTrue(res);
    Py_DECREF(res);
    if (keep_open < 0) {
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.eof_received() call failed.");
    }
    if (keep_open) {
        /* The protocol may still write, but nothing more can be read. */
        return pa_tr_unwatch(self, PA_READABLE);
    }
    res = PyObject_CallMethodNoArgs((PyObject *)self, st->str_close);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* ------------------------------------------------ system calls on the fd */

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
static int
sock_holds_fd(TransportObject *self)
{
    if (self->sock == NULL) {
        return 0;
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

static ssize_t
sock_recv(TransportObject *self, void *buf, size_t len)
{
    if (!sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return recv(self->fd, buf, len, 0);
}

static ssize_t
sock_send(TransportObject *self, const void *buf, size_t len)
{
    if (!sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return send(self->fd, buf, len, PA_SEND_FLAGS);
}

static ssize_t
sock_sendmsg(TransportObject *self, const struct msghdr *msg)
{
    if (!sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return sendmsg(self->fd, msg, PA_SEND_FLAGS);
}

static int
read_failed(TransportObject *self, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
        return 0;
    }
    PyObject *exc = oserror_from_errno(err);
    if (exc == NULL) {
        return -1;
    }
    int rc = pa_tr_fatal_error(self, exc, "Fatal read error on socket transport");
    Py_DECREF(exc);
    return rc;
}

static int
read_into_buffered_protocol(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *minus_one = PyLong_FromLong(-1);
    PyObject *buf = minus_one ? pa_tr_call_protocol(self, st->str_get_buffer, &minus_one, 1)
                              : NULL;
    Py_XDECREF(minus_one);
    Py_buffer view;
    if (buf == NULL || PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        Py_XDECREF(buf);
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.get_buffer() call failed.");
    }
    Py_DECREF(buf);
    if (self->sock == NULL) {
        /* get_buffer() ended the connection: the fd is closed. */
        PyBuffer_Release(&view);
        return 0;
    }
    if (view.len == 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.get_buffer() call failed.");
    }
    ssize_t n = sock_recv(self, view.buf, (size_t)view.len);
    int err = errno;
    PyBuffer_Release(&view);
    if (n < 0) {
        return read_failed(self, err);
    }
    if (n == 0) {
        return on_eof(self);
    }
    PyObject *nbytes = PyLong_FromSsize_t(n);
    PyObject *res = nbytes ? pa_tr_call_protocol(self, st->str_buffer_updated, &nbytes, 1) : NULL;
    Py_XDECREF(nbytes);
    if (res == NULL) {
        return pa_tr_fatal_error_from_raised(self,
                                       "Fatal error: protocol.buffer_updated() call failed.");
    }
    Py_DECREF(res);
    return 0;
}

static int
read_into_protocol(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    if (st->recv_buffer == NULL) {
        st->recv_buffer = PyMem_RawMalloc(PA_MAX_READ);
        if (st->recv_buffer == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    ssize_t n = sock_recv(self, st->recv_buffer, (size_t)self->read_size);
    if (n < 0) {
        return read_failed(self, errno);
    }
    if (n == 0) {
        return on_eof(self);
    }
    PyObject *data = PyBytes_FromStringAndSize(st->recv_buffer, n);
    if (data == NULL) {
        return -1;
    }
    PyObject *res = pa_tr_call_protocol(self, st->str_data_received, &data, 1);
    Py_DECREF(data);
    if (res == NULL) {
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.data_received() call failed.");
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *
Transport_read_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->conn_lost || self->sock == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(self); /* the protocol may drop the last other reference */
    int rc = self->buffered ? read_into_buffered_protocol(self) : read_into_protocol(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- writing */

static int
write_failed(TransportObject *self, int err)
{
    PyObject *exc = oserror_from_errno(err);
    if (exc == NULL) {
        return -1;
    }
    int rc = pa_tr_fatal_error(self, exc, "Fatal write error on socket transport");
    Py_DECREF(exc);
    return rc;
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

static int
check_can_write(TransportObject *self, const char *what)
{
    if (self->eof) {
        PyErr_Format(PyExc_RuntimeError, "Cannot call %s() after write_eof()", what);
        return -1;
    }
    if (self->empty_waiter != NULL) {
        PyErr_Format(PyExc_RuntimeError, "unable to %s; sendfile is in progress", what);
        return -1;
    }
    return 0;
}

/* Data is left in the buffer: make sure the writer runs, and tell the
 * protocol if the buffer went over the high mark. */
static int
buffered_data_pending(TransportObject *self, int was_empty)
{
    if (was_empty && pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_WRITABLE, self->write_ready) < 0) {
        return -1;
    }
    return pa_tr_maybe_pause_protocol(self);
}

static PyObject *
Transport_write(TransportObject *self, PyObject *data)
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (check_can_write(self, "write") < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (view.len == 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    if (self->conn_lost) {
        PyBuffer_Release(&view);
        return pa_tr_write_after_lost(self);
    }
    const char *p = view.buf;
    Py_ssize_t len = view.len;
    int was_empty = WBUF_SIZE(self) == 0;
    if (was_empty) {
        /* Try to send at once; buffer only what the kernel did not take. */
        ssize_t n = sock_send(self, p, (size_t)len);
        if (n < 0) {
            int err = errno;
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
                PyBuffer_Release(&view);
                Py_INCREF(self);
                int rc = write_failed(self, err);
                Py_DECREF(self);
                if (rc < 0) {
                    return NULL;
                }
                Py_RETURN_NONE;
            }
        } else {
            p += n;
            len -= n;
        }
    }
    int rc = 0;
    if (len > 0) {
        rc = wbuf_append(self, p, len);
        if (rc == 0) {
            rc = buffered_data_pending(self, was_empty);
        }
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* writelines(): with nothing buffered the pieces go out in one sendmsg()
 * without being copied; whatever is left is buffered. */
static PyObject *
Transport_writelines(TransportObject *self, PyObject *list_of_data)
{
    if (pa_tr_check_initialised(self) < 0 || check_can_write(self, "writelines") < 0) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(list_of_data, "writelines() argument must be iterable");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    Py_buffer *views = count ? PyMem_Calloc((size_t)count, sizeof(Py_buffer)) : NULL;
    if (count && views == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t nviews = 0, total = 0;
    for (; nviews < count; nviews++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, nviews), &views[nviews],
                               PyBUF_SIMPLE) < 0) {
            goto done;
        }
        total += views[nviews].len;
    }
    if (total == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (self->conn_lost) {
        result = pa_tr_write_after_lost(self);
        goto done;
    }
    int was_empty = WBUF_SIZE(self) == 0;
    Py_ssize_t sent = 0;
    if (was_empty) {
        struct iovec iov[IOV_MAX];
        int niov = 0;
        for (Py_ssize_t i = 0; i < nviews && niov < IOV_MAX; i++) {
            if (views[i].len > 0) {
                iov[niov].iov_base = views[i].buf;
                iov[niov].iov_len = (size_t)views[i].len;
                niov++;
            }
        }
        /* sendmsg() rather than writev(): it takes PA_SEND_FLAGS. */
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = niov};
        ssize_t n = sock_sendmsg(self, &msg);
        if (n < 0) {
            int err = errno;
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
                Py_INCREF(self);
                int rc = write_failed(self, err);
                Py_DECREF(self);
                result = rc < 0 ? NULL : Py_NewRef(Py_None);
                goto done;
            }
        } else {
            sent = n;
        }
    }
    /* Buffer the rest: skip the `sent` bytes the kernel took. */
    for (Py_ssize_t i = 0; i < nviews; i++) {
        Py_ssize_t len = views[i].len;
        if (sent >= len) {
            sent -= len;
            continue;
        }
        if (wbuf_append(self, (const char *)views[i].buf + sent, len - sent) < 0) {
            goto done;
        }
        sent = 0;
    }
    if (WBUF_SIZE(self) > 0 && buffered_data_pending(self, was_empty) < 0) {
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < nviews; i++) {
        PyBuffer_Release(&views[i]);
    }
    PyMem_Free(views);
    Py_DECREF(seq);
    return result;
}

static int
shutdown_write(TransportObject *self)
{
    if (!sock_holds_fd(self)) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (shutdown(self->fd, SHUT_WR) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

int
pa_tr_call_connection_lost_now(TransportObject *self, PyObject *exc)
{
    PyObject *res = PyObject_CallMethodOneArg((PyObject *)self,
                                              pa_tr_loop(self)->state->str_call_connection_lost, exc);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

static int
settle_empty_waiter(TransportObject *self, PyObject *exc)
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

static int
write_ready(TransportObject *self)
{
    if (self->conn_lost || WBUF_SIZE(self) == 0) {
        return 0;
    }
    ssize_t n = sock_send(self, self->wbuf + self->wstart, (size_t)WBUF_SIZE(self));
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
            return 0;
        }
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0) {
            return -1;
        }
        wbuf_clear(self);
        PyObject *exc = oserror_from_errno(err);
        if (exc == NULL) {
            return -1;
        }
        int rc = pa_tr_fatal_error(self, exc, "Fatal write error on socket transport");
        if (rc == 0) {
            rc = settle_empty_waiter(self, exc);
        }
        Py_DECREF(exc);
        return rc;
    }
    self->wstart += n;
    if (WBUF_SIZE(self) == 0) {
        wbuf_drained(self);
    }
    if (pa_tr_maybe_resume_protocol(self) < 0) { /* may write more */
        return -1;
    }
    if (WBUF_SIZE(self) > 0) {
        return 0;
    }
    if (pa_tr_unwatch(self, PA_WRITABLE) < 0 || settle_empty_waiter(self, NULL) < 0) {
        return -1;
    }
    if (self->closing) {
        return pa_tr_call_connection_lost_now(self, Py_None);
    }
    if (self->eof) {
        return shutdown_write(self);
    }
    return 0;
}

static PyObject *
Transport_write_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    Py_INCREF(self);
    int rc = write_ready(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing || self->eof) {
        Py_RETURN_NONE;
    }
    self->eof = 1;
    if (WBUF_SIZE(self) == 0 && shutdown_write(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_can_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

/* ---------------------------------------------------------------- state changes */

PyObject *
pa_tr_m_close(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing) {
        Py_RETURN_NONE;
    }
    self->closing = 1;
    if (pa_tr_unwatch(self, PA_READABLE) < 0) {
        return NULL;
    }
    if (!pa_tr_has_pending(self)) {
        self->conn_lost++;
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0 || call_soon_connection_lost(self, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_abort(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0 || force_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_force_close(TransportObject *self, PyObject *exc)
{
    if (pa_tr_check_initialised(self) < 0 || force_close(self, exc == Py_None ? NULL : exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_fatal_error(TransportObject *self, PyObject *args)
{
    PyObject *exc;
    const char *message = "Fatal error on transport";
    if (pa_tr_check_initialised(self) < 0 ||
        !PyArg_ParseTuple(args, "O|s:_fatal_error", &exc, &message)) {
        return NULL;
    }
    if (pa_tr_fatal_error(self, exc, message) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Keep the first exception of a series of clean-up steps in *first; the
 * later ones are dropped. */
static void
keep_first_error(PyObject **first)
{
    PyObject *exc = pa_err_take();
    if (*first == NULL) {
        *first = exc;
    } else {
        Py_XDECREF(exc);
    }
}

/* Close the socket through the loop: its watchers go first, so that no
 * interest outlives the fd (see pa_loop_unwatch_fd_lazily) and the next file
 * given that number is registered afresh. The first error is kept in
 * *first. */
static void
close_socket(TransportObject *self, PyObject **first)
{
    PyObject *sock = self->sock; /* the transport's reference, taken over */
    if (sock == NULL) {
        return;
    }
    self->sock = NULL;
    /* Our watchers only: if the socket was closed behind our back, the
     * number may already be watched for a new file by someone else. */
    LoopObject *loop = pa_tr_loop(self);
    if (pa_loop_unwatch_fd_for(loop, self->fd, PA_READABLE, self->read_ready) < 0 ||
        pa_loop_unwatch_fd_for(loop, self->fd, PA_WRITABLE, self->write_ready) < 0) {
        keep_first_error(first);
    }
    PyObject *res = PyObject_CallMethodNoArgs(sock, loop->state->str_close);
    Py_DECREF(sock);
    if (res == NULL) {
        keep_first_error(first);
    }
    Py_XDECREF(res);
}

/* Tell the server (if any) that this connection is gone, once. */
static void
detach_from_server(TransportObject *self, PyObject **first)
{
    if (self->server != NULL && self->server != Py_None) {
        PyObject *res = PyObject_CallMethodNoArgs((PyObject *)self,
                                                  pa_tr_loop(self)->state->str_detach_server);
        if (res == NULL) {
            keep_first_error(first);
        }
        Py_XDECREF(res);
    }
    Py_CLEAR(self->server);
}

/* _call_connection_lost(exc): tell the protocol, then close the socket and
 * drop what the transport holds, whatever the protocol did. Whoever calls it
 * (normally the callback that close() or _force_close() scheduled), the
 * transport is finished afterwards: closing, conn_lost > 0 and nothing
 * buffered, so that no path reaches the closed fd again (transport.h). */
PyObject *
pa_tr_m_call_connection_lost(TransportObject *self, PyObject *exc)
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *err = NULL;
    self->closing = 1;
    if (self->conn_lost == 0) {
        self->conn_lost = 1;
    }
    if (drop_pending(self) < 0) {
        keep_first_error(&err);
    }
    if (self->protocol_connected && self->protocol != NULL) {
        PyObject *res = pa_tr_call_protocol(self, st->str_connection_lost, &exc, 1);
        if (res == NULL) {
            keep_first_error(&err);
        }
        Py_XDECREF(res);
    }
    /* What connection_lost() wrote was dropped (conn_lost), but make sure
     * nothing is left for a writer. */
    if (drop_pending(self) < 0) {
        keep_first_error(&err);
    }
    close_socket(self, &err);
    Py_CLEAR(self->protocol);
    detach_from_server(self, &err);
    if (self->empty_waiter != NULL && err == NULL) {
        PyObject *lost = PyObject_CallFunction(PyExc_ConnectionError, "s",
                                               "Connection is closed by peer");
        if (lost == NULL || settle_empty_waiter(self, lost) < 0) {
            keep_first_error(&err);
        }
        Py_XDECREF(lost);
    }
    if (err != NULL) {
        pa_err_restore(err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _close_unclosed(): what the finaliser of a transport that was never
 * closed does, as asyncio's __del__: close the socket (through the loop
 * here) and detach from the server, so that Server.wait_closed() does not
 * wait for a connection that is gone. connection_lost() is not called. The
 * transport is finished afterwards, as after _call_connection_lost(), in
 * case the finaliser resurrected it. A transport set up half-way has its
 * socket closed too: its loop was checked before the socket was kept. */
PyObject *
pa_tr_m_close_unclosed(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->sock == NULL) {
        Py_RETURN_NONE; /* never set up, or closed already */
    }
    PyObject *err = NULL;
    self->closing = 1;
    if (self->conn_lost == 0) {
        self->conn_lost = 1;
    }
    if (drop_pending(self) < 0) {
        keep_first_error(&err);
    }
    close_socket(self, &err);
    detach_from_server(self, &err);
    if (err != NULL) {
        pa_err_restore(err);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_is_closing(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closing);
}

PyObject *
pa_tr_m_is_reading(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!self->closing && !self->paused);
}

static int
debug_log(TransportObject *self, const char *format)
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
    if (pa_tr_unwatch(self, PA_READABLE) < 0 || debug_log(self, "%r pauses reading") < 0) {
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
        debug_log(self, "%r resumes reading") < 0) {
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
     * chunks. */
    self->read_size = streams ? PA_STREAM_READER_READ : PA_MAX_READ;
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

static PyObject *
Transport_get_write_buffer_size(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(WBUF_SIZE(self));
}

PyObject *
pa_tr_m_get_write_buffer_limits(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", self->low_water, self->high_water);
}

static int
set_limits(TransportObject *self, PyObject *high_obj, PyObject *low_obj)
{
    Py_ssize_t high, low;
    if (high_obj == Py_None) {
        if (low_obj == Py_None) {
            high = DEFAULT_HIGH_WATER;
        } else {
            low = PyNumber_AsSsize_t(low_obj, PyExc_OverflowError);
            if (low == -1 && PyErr_Occurred()) {
                return -1;
            }
            high = low > PY_SSIZE_T_MAX / 4 ? PY_SSIZE_T_MAX : 4 * low;
        }
    } else {
        high = PyNumber_AsSsize_t(high_obj, PyExc_OverflowError);
        if (high == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (low_obj == Py_None) {
        low = high / 4;
        /* Python's floor division, for a negative high. */
        if (high < 0 && high % 4 != 0) {
            low--;
        }
    } else {
        low = PyNumber_AsSsize_t(low_obj, PyExc_OverflowError);
        if (low == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError, "high (%zd) must be >= low (%zd) must be >= 0", high, low);
        return -1;
    }
    self->high_water = high;
    self->low_water = low;
    return 0;
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

static PyObject *
Transport_make_empty_waiter(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->empty_waiter != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Empty waiter is already set");
        return NULL;
    }
    PyObject *fut = PyObject_CallMethodNoArgs(self->loop, pa_tr_loop(self)->state->str_create_future);
    if (fut == NULL) {
        return NULL;
    }
    Py_XSETREF(self->empty_waiter, Py_NewRef(fut));
    if (WBUF_SIZE(self) == 0 && settle_empty_waiter(self, NULL) < 0) {
        Py_DECREF(fut);
        return NULL;
    }
    return fut;
}

static PyObject *
Transport_reset_empty_waiter(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(self->empty_waiter);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- type slots */

int
pa_tr_init(TransportObject *self, PyObject *loop, PyObject *sock, PyObject *protocol,
           PyObject *extra, PyObject *server, const char *write_ready_name)
{
    pa_state *st = pa_state_of((PyObject *)self);
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
    PyObject *extra_dict = extra == Py_None ? PyDict_New() : Py_NewRef(extra);
    if (extra_dict == NULL) {
        return -1;
    }
    Py_XSETREF(self->extra, extra_dict);
    Py_XSETREF(self->loop, Py_NewRef(loop));
    Py_XSETREF(self->sock, Py_NewRef(sock));
    Py_XSETREF(self->server, Py_NewRef(server));
    self->fd = (int)fd;
    /* Read the fd out of the socket object only where the field proves to
     * hold what fileno() said. */
    self->fd_in_sock = st->socket_type != NULL && PyType_Check(st->socket_type) &&
                       PyObject_TypeCheck(sock, (PyTypeObject *)st->socket_type) &&
                       ((socket_head *)sock)->sock_fd == self->fd;
    pa_loop_claim_fd((LoopObject *)loop, self->fd);
    if (self->read_ready == NULL || self->write_ready == NULL) {
        Py_XSETREF(self->read_ready, PyObject_GetAttrString((PyObject *)self, "_read_ready"));
        if (self->read_ready == NULL) {
            return -1;
        }
        Py_XSETREF(self->write_ready, PyObject_GetAttrString((PyObject *)self, write_ready_name));
        if (self->write_ready == NULL) {
            return -1;
        }
    }
    self->high_water = DEFAULT_HIGH_WATER;
    self->low_water = DEFAULT_HIGH_WATER / 4;
    return set_protocol(self, protocol);
}

/* StreamTransportBase(loop, sock, protocol, extra=None, server=None) */
static int
Transport_init(TransportObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *loop, *sock, *protocol, *extra = Py_None, *server = Py_None;
    static char *kwlist[] = {"loop", "sock", "protocol", "extra", "server", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OO:StreamTransportBase", kwlist, &loop,
                                     &sock, &protocol, &extra, &server)) {
        return -1;
    }
    if (pa_tr_init(self, loop, sock, protocol, extra, server, "_write_ready") < 0) {
        return -1;
    }
    self->initialised = 1;
    return 0;
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
    free(self->wbuf);
    tp->tp_free(self);
    Py_DECREF(tp);
}


#define NOARGS(name, func) {name, (PyCFunction)func, METH_NOARGS, NULL}

static PyMethodDef Transport_methods[] = {
    {"write", (PyCFunction)Transport_write, METH_O, NULL},
    {"writelines", (PyCFunction)Transport_writelines, METH_O, NULL},
    NOARGS("write_eof", Transport_write_eof),
    NOARGS("can_write_eof", Transport_can_write_eof),
    NOARGS("get_write_buffer_size", Transport_get_write_buffer_size),
    NOARGS("_read_ready", Transport_read_ready),
    NOARGS("_write_ready", Transport_write_ready),
    NOARGS("_make_empty_waiter", Transport_make_empty_waiter),
    NOARGS("_reset_empty_waiter", Transport_reset_empty_waiter),
    PA_TR_COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Transport_members[] = {
    {"_empty_waiter", T_OBJECT, offsetof(TransportObject, empty_waiter), READONLY, NULL},
    {"_eof", T_BOOL, offsetof(TransportObject, eof), READONLY, NULL},
    PA_TR_COMMON_MEMBERS,
    {NULL, 0, 0, 0, NULL},
};

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

static PyType_Slot Transport_slots[] = {
    {Py_tp_init, Transport_init},
    {Py_tp_traverse, pa_tr_traverse},
    {Py_tp_clear, pa_tr_clear},
    {Py_tp_dealloc, pa_tr_dealloc},
    {Py_tp_methods, Transport_methods},
    {Py_tp_members, Transport_members},
    {Py_tp_doc, "The data path of a socket stream transport (see pyasync._transports)."},
    {0, NULL},
};

static PyType_Spec Transport_spec = {
    .name = "pyasync._core.StreamTransportBase",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Transport_slots,
};

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

int
pa_transport_register_type(PyObject *module, pa_state *st)
{
    return pa_tr_register(module, &Transport_spec, "Transport", NULL, &st->TransportType);
}
