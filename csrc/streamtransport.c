/*
 * streamtransport.c - the data path of the stream transport (TCP and Unix
 * sockets) on the transport core (transport.c): reading into a Protocol or
 * a BufferedProtocol, writing with a try-first send() and the core's
 * buffer, write_eof() by shutdown(), and the wait for an empty buffer that
 * sendfile uses. The behaviour follows asyncio's _SelectorSocketTransport.
 */
#include "transport.h"
#include "sslproto.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <structmember.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

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


static ssize_t
sock_recv(TransportObject *self, void *buf, size_t len)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return recv(self->fd, buf, len, 0);
}

static ssize_t
sock_send(TransportObject *self, const void *buf, size_t len)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return send(self->fd, buf, len, PA_SEND_FLAGS);
}

static ssize_t
sock_sendmsg(TransportObject *self, const struct msghdr *msg)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return sendmsg(self->fd, msg, PA_SEND_FLAGS);
}

/* Send what is queued: send() for one segment, sendmsg() for more. */
static ssize_t
sock_send_queued(TransportObject *self)
{
    struct iovec iov[PA_WQ_IOV];
    int n = pa_wq_iov(&self->wq, iov, PA_WQ_IOV);
    if (n == 1) {
        return sock_send(self, iov[0].iov_base, iov[0].iov_len);
    }
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sock_sendmsg(self, &msg);
}

static int
read_failed(TransportObject *self, int err)
{
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
        return 0;
    }
    return pa_tr_fatal_errno(self, err, "Fatal read error on socket transport");
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

/* TLS over this transport, both ours: receive into the scratch buffer and
 * give the bytes to the SSL protocol, with no get_buffer()/buffer_updated()
 * calls and no buffer per connection (the SSL protocol copies them into its
 * incoming BIO at once). */
static int
read_into_ssl_protocol(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    char *buf = pa_tr_recv_buffer(st);
    if (buf == NULL) {
        return pa_tr_fatal_error_from_raised(self, "Fatal error: protocol.get_buffer() call failed.");
    }
    ssize_t n = sock_recv(self, buf, PA_MAX_READ);
    if (n < 0) {
        return read_failed(self, errno);
    }
    if (n == 0) {
        return on_eof(self);
    }
    PyObject *proto = Py_NewRef(self->protocol);
    int rc = pa_sslproto_data_in((SSLProtocolObject *)proto, buf, n);
    Py_DECREF(proto);
    if (rc < 0) {
        return pa_tr_fatal_error_from_raised(self,
                                             "Fatal error: protocol.buffer_updated() call failed.");
    }
    return 0;
}

static int
read_into_protocol(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *data = NULL;
    int got = pa_tr_read_bytes(self, sock_recv, &data);
    if (got == -2) {
        return -1;
    }
    if (got < 0) {
        return read_failed(self, errno);
    }
    if (got == 0) {
        return on_eof(self);
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
    int rc;
    if (!self->buffered) {
        rc = read_into_protocol(self);
    } else if (self->protocol != NULL && pa_sslproto_check(pa_tr_loop(self)->state, self->protocol)) {
        rc = read_into_ssl_protocol(self);
    } else {
        rc = read_into_buffered_protocol(self);
    }
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
    return pa_tr_fatal_errno(self, err, "Fatal write error on socket transport");
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
    int was_empty = PA_TR_WBUF_SIZE(self) == 0;
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
        rc = pa_wq_push(&self->wq, data, p, len);
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
    /* (3.11's writelines() is a write() of the joined pieces, and says so.) */
    const char *what = PA_WRITELINES_PIECEWISE ? "writelines" : "write";
    if (pa_tr_check_initialised(self) < 0 || check_can_write(self, what) < 0) {
        return NULL;
    }
#if PA_WRITELINES_PIECEWISE
    int any = PyObject_IsTrue(list_of_data);
    if (any <= 0) {
        return any < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *seq = PyList_Check(list_of_data) || PyTuple_Check(list_of_data)
                        ? Py_NewRef(list_of_data)
                        : PySequence_List(list_of_data); /* "'int' object is not iterable" */
#else
    PyObject *seq = PySequence_Fast(list_of_data, "can only join an iterable");
#endif
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
        PyObject *piece = PySequence_Fast_GET_ITEM(seq, nviews);
        if (PyObject_GetBuffer(piece, &views[nviews], PyBUF_SIMPLE) < 0) {
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                /* In the words of asyncio's memoryview() or b"".join(). */
                PyErr_Clear();
#if PA_WRITELINES_PIECEWISE
                PyErr_Format(PyExc_TypeError,
                             "memoryview: a bytes-like object is required, not '%.200s'",
                             Py_TYPE(piece)->tp_name);
#else
                PyErr_Format(PyExc_TypeError,
                             "sequence item %zd: expected a bytes-like object, %.80s found",
                             nviews, Py_TYPE(piece)->tp_name);
#endif
            }
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
    int was_empty = PA_TR_WBUF_SIZE(self) == 0;
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
        if (pa_wq_push(&self->wq, views[i].obj, (const char *)views[i].buf + sent,
                       len - sent) < 0) {
            goto done;
        }
        sent = 0;
    }
    if (PA_TR_WBUF_SIZE(self) > 0 && buffered_data_pending(self, was_empty) < 0) {
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
    if (!pa_tr_sock_holds_fd(self)) {
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



static int
write_ready(TransportObject *self)
{
    if (self->conn_lost || PA_TR_WBUF_SIZE(self) == 0) {
        return 0;
    }
    ssize_t n = sock_send_queued(self);
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
            return 0;
        }
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0) {
            return -1;
        }
        pa_wq_clear(&self->wq);
        PyObject *exc = pa_tr_oserror(err);
        if (exc == NULL) {
            return -1;
        }
        int rc = pa_tr_fatal_error(self, exc, "Fatal write error on socket transport");
        if (rc == 0) {
            rc = pa_tr_settle_empty_waiter(self, exc);
        }
        Py_DECREF(exc);
        return rc;
    }
    pa_wq_consume(&self->wq, n);
    if (pa_tr_maybe_resume_protocol(self) < 0) { /* may write more */
        return -1;
    }
    if (PA_TR_WBUF_SIZE(self) > 0) {
        return 0;
    }
    if (pa_tr_unwatch(self, PA_WRITABLE) < 0 || pa_tr_settle_empty_waiter(self, NULL) < 0) {
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
    if (PA_TR_WBUF_SIZE(self) == 0 && shutdown_write(self) < 0) {
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
    if (PA_TR_WBUF_SIZE(self) == 0 && pa_tr_settle_empty_waiter(self, NULL) < 0) {
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
    if (pa_tr_init(self, loop, sock, protocol, extra, server, "_write_ready") < 0 ||
        pa_tr_own_fd(self) < 0) {
        return -1;
    }
    self->initialised = 1;
    return 0;
}

/* The peer's address kept by accept (csrc/accept.c) into `_extra`, made
 * into an object on first use. */
static PyObject *
make_peername(TransportObject *self, PyObject *name)
{
    PyObject *peer = pa_sockaddr_object((const struct sockaddr *)&self->peer, self->peer_len);
    if (peer == NULL || PyDict_SetItem(self->extra, name, peer) < 0) {
        Py_XDECREF(peer);
        return NULL;
    }
    self->peer_len = 0;
    return peer;
}

/* asyncio's socket transport inherits get_extra_info() from
 * asyncio.BaseTransport, so one put on asyncio's classes reaches it: test
 * suites patch asyncio.Transport.get_extra_info (websockets' do). Ours is
 * defined here, before those classes in the MRO. Returns the method
 * asyncio's classes resolve to when it is no longer BaseTransport's own (a
 * new reference), else NULL. _PyType_Lookup() is served by the type
 * attribute cache: the check costs a pointer comparison. */
static PyObject *
asyncio_get_extra_info_replaced(TransportObject *self)
{
    pa_state *st = self->loop != NULL ? pa_tr_loop(self)->state : NULL;
    if (st == NULL || st->base_get_extra_info == NULL) {
        return NULL;
    }
    /* StreamTransportBase's base is asyncio.Transport. */
    PyObject *found = _PyType_Lookup(st->TransportType->tp_base, st->str_get_extra_info);
    if (found == NULL || found == st->base_get_extra_info) {
        return NULL;
    }
    return Py_NewRef(found);
}

/* Calls `method`, found on a class, as a method of self would be called:
 * bound through its descriptor (a function), or as it is (a mock). What is
 * still to be made of `_extra` is made first, so that a replacement that
 * reads `_extra` (a wrapping mock calls BaseTransport's) finds it all. */
static PyObject *
call_replaced(PyObject *method, TransportObject *self, PyObject *args, PyObject *kwds)
{
    if (self->extra != NULL && PyDict_Check(self->extra)) {
        pa_state *st = pa_tr_loop(self)->state;
        if (self->peer_len > 0) {
            PyObject *peer = make_peername(self, st->str_peername);
            if (peer == NULL) {
                return NULL;
            }
            Py_DECREF(peer);
        }
        if (pa_tr_make_socket(self) < 0) {
            return NULL;
        }
    }
    descrgetfunc get = Py_TYPE(method)->tp_descr_get;
    PyObject *bound = get != NULL ? get(method, (PyObject *)self, (PyObject *)Py_TYPE(self))
                                  : Py_NewRef(method);
    if (bound == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_Call(bound, args, kwds);
    Py_DECREF(bound);
    return res;
}

/* get_extra_info(name, default=None), as asyncio's; the socket object of an
 * accepted connection and its addresses ('socket', 'sockname', 'peername')
 * are made when first asked for. Once the transport closed its fd, 'socket'
 * and a wildcard server's 'sockname' can no longer be made; 'peername' can,
 * from the address kept: docs/differences.md. */
static PyObject *
Transport_get_extra_info(TransportObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None;
    PyObject *replaced = asyncio_get_extra_info_replaced(self);
    if (replaced != NULL) {
        PyObject *res = call_replaced(replaced, self, args, kwds);
        Py_DECREF(replaced);
        return res;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:get_extra_info", kwlist, &name, &dflt)) {
        return NULL;
    }
    if (self->extra == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_extra");
        return NULL;
    }
    if (!PyDict_Check(self->extra)) {
        return PyObject_CallMethod(self->extra, "get", "OO", name, dflt);
    }
    PyObject *value = PyDict_GetItemWithError(self->extra, name);
    if (value == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (value == NULL && self->peer_len > 0 && PyUnicode_Check(name) && self->loop != NULL &&
        PyUnicode_Compare(name, pa_tr_loop(self)->state->str_peername) == 0) {
        return make_peername(self, name);
    }
    if (value == NULL && self->lazy_sock && self->loop != NULL) {
        pa_state *st = pa_tr_loop(self)->state;
        if (PyUnicode_Check(name) && (PyUnicode_Compare(name, st->str_socket) == 0 ||
                                      PyUnicode_Compare(name, st->str_sockname) == 0)) {
            if (pa_tr_make_socket(self) < 0) {
                return NULL;
            }
            value = PyDict_GetItemWithError(self->extra, name);
            if (value == NULL && PyErr_Occurred()) {
                return NULL;
            }
        }
    }
    return Py_NewRef(value != NULL ? value : dflt);
}

#define NOARGS(name, func) {name, (PyCFunction)func, METH_NOARGS, NULL}

static PyMethodDef Transport_methods[] = {
    {"write", (PyCFunction)Transport_write, METH_O, NULL},
    {"writelines", (PyCFunction)Transport_writelines, METH_O, NULL},
    NOARGS("write_eof", Transport_write_eof),
    NOARGS("can_write_eof", pa_tr_m_can_write_eof),
    NOARGS("get_write_buffer_size", pa_tr_m_get_write_buffer_size),
    NOARGS("_read_ready", Transport_read_ready),
    NOARGS("_write_ready", Transport_write_ready),
    NOARGS("_make_empty_waiter", Transport_make_empty_waiter),
    NOARGS("_reset_empty_waiter", Transport_reset_empty_waiter),
    {"get_extra_info", (PyCFunction)(void (*)(void))Transport_get_extra_info,
     METH_VARARGS | METH_KEYWORDS, NULL},
    PA_TR_COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Transport_members[] = {
    {"_empty_waiter", T_OBJECT, offsetof(TransportObject, empty_waiter), READONLY, NULL},
    {"_eof", T_BOOL, offsetof(TransportObject, eof), READONLY, NULL},
    PA_TR_COMMON_MEMBERS,
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Transport_getset[] = {
    PA_TR_COMMON_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Transport_slots[] = {
    {Py_tp_init, Transport_init},
    {Py_tp_getset, Transport_getset},
    {Py_tp_traverse, pa_tr_traverse},
    {Py_tp_clear, pa_tr_clear},
    {Py_tp_dealloc, pa_tr_dealloc},
    {Py_tp_finalize, pa_tr_finalize},
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
pa_transport_register_type(PyObject *module, pa_state *st)
{
    return pa_tr_register(module, &Transport_spec, "Transport", NULL, &st->TransportType);
}
