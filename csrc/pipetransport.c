/*
 * pipetransport.c - the data paths of the pipe transports, on the transport
 * core (transport.c): connect_read_pipe() and connect_write_pipe(), and the
 * stdin/stdout/stderr pipes of subprocesses. They follow asyncio's
 * _UnixReadPipeTransport and _UnixWritePipeTransport, which differ from the
 * socket transports in a few ways kept here:
 *   - read() and write() instead of recv() and send();
 *   - end of file ends the read transport at once: eof_received() and then
 *     connection_lost(None) are scheduled, whatever eof_received() returns;
 *   - an exception raised by data_received() is not a fatal error of the
 *     transport: it goes to the loop's exception handler as a failed
 *     callback, and reading goes on;
 *   - the read transport reports every OSError but EIO to the exception
 *     handler (the core does that for it);
 *   - the write transport watches its fd for reading too, where the kernel
 *     reports the other end going away that way (FIFOs, sockets): the
 *     transport closes, with BrokenPipeError if data was still buffered;
 *   - close() of the write transport is write_eof(): the buffer is flushed
 *     first; writes after it are dropped;
 *   - resume_writing() comes only once the buffer is empty.
 * What runs once per pipe (checking the file type, non-blocking mode,
 * scheduling connection_made()) is Python: pyasync/_pipes.py.
 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <structmember.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---------------------------------------------------------------- reading */

static ssize_t
pipe_read(TransportObject *self, void *buf, size_t len)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return read(self->fd, buf, len);
}

static ssize_t
pipe_write(TransportObject *self, const void *buf, size_t len)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    return write(self->fd, buf, len);
}

/* Write what is queued: write() for one segment, writev() for more. */
static ssize_t
pipe_write_queued(TransportObject *self)
{
    if (!pa_tr_sock_holds_fd(self)) {
        errno = EBADF;
        return -1;
    }
    struct iovec iov[PA_WQ_IOV];
    int n = pa_wq_iov(&self->wq, iov, PA_WQ_IOV);
    if (n == 1) {
        return write(self->fd, iov[0].iov_base, iov[0].iov_len);
    }
    return writev(self->fd, iov, n);
}

static int
log_info_closed_by_peer(TransportObject *self)
{
    if (!pa_tr_loop(self)->debug) {
        return 0;
    }
    PyObject *res = PyObject_CallMethod(pa_tr_loop(self)->state->logger, "info", "sO",
                                        "%r was closed by peer", (PyObject *)self);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* End of file: the transport is done reading and done. */
static int
read_eof(TransportObject *self)
{
    pa_state *st = pa_tr_loop(self)->state;
    if (log_info_closed_by_peer(self) < 0) {
        return -1;
    }
    self->closing = 1;
    if (pa_tr_unwatch(self, PA_READABLE) < 0) {
        return -1;
    }
    if (self->protocol != NULL) {
        PyObject *eof_received = PyObject_GetAttr(self->protocol, st->str_eof_received);
        if (eof_received == NULL) {
            return -1;
        }
        int rc = pa_call_soon(st, self->loop, eof_received, NULL, 0, NULL);
        Py_DECREF(eof_received);
        if (rc < 0) {
            return -1;
        }
    }
    self->conn_lost++;
    return pa_tr_call_soon_connection_lost(self, Py_None);
}

static PyObject *
ReadPipe_read_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing) {
        Py_RETURN_NONE;
    }
    pa_state *st = pa_tr_loop(self)->state;
    Py_INCREF(self);
    PyObject *result = NULL;
    PyObject *data = NULL;
    int got = pa_tr_read_bytes(self, pipe_read, &data);
    if (got == -1) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR ||
            pa_tr_fatal_errno(self, err, "Fatal read error on pipe transport") == 0) {
            result = Py_NewRef(Py_None);
        }
    } else if (got == 0) {
        if (read_eof(self) == 0) {
            result = Py_NewRef(Py_None);
        }
    } else if (got == 1) {
        /* An exception propagates: the loop reports the failed callback. */
        result = pa_tr_call_protocol(self, st->str_data_received, &data, 1);
        Py_DECREF(data);
    }
    Py_DECREF(self);
    return result;
}

/* ---------------------------------------------------------------- writing */

static int
check_data(PyObject *data)
{
    if (PyBytes_Check(data) || PyByteArray_Check(data) || PyMemoryView_Check(data)) {
        return 0;
    }
    /* asyncio asserts the type: the same exception, with the repr. */
    PyObject *repr = PyObject_Repr(data);
    if (repr != NULL) {
        PyErr_SetObject(PyExc_AssertionError, repr);
        Py_DECREF(repr);
    }
    return -1;
}

/* asyncio counts the writes dropped after close() or the loss of the pipe
 * (in its _conn_lost) and warns once there were enough of them; the core's
 * conn_lost means "connection_lost() scheduled", so the count is kept
 * apart. */
static PyObject *
write_after_close(TransportObject *self)
{
    if (self->dropped >= PA_LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        pa_state *st = pa_tr_loop(self)->state;
        PyObject *res =
            PyObject_CallMethod(st->logger, "warning", "s",
                                "pipe closed by peer or os.write(pipe, data) raised exception.");
        if (res == NULL) {
            return NULL;
        }
        Py_DECREF(res);
    }
    self->dropped++;
    Py_RETURN_NONE;
}

static PyObject *
WritePipe_write(TransportObject *self, PyObject *data)
{
    if (pa_tr_check_initialised(self) < 0 || check_data(data) < 0) {
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
    if (self->conn_lost || self->closing) {
        PyBuffer_Release(&view);
        return write_after_close(self);
    }
    const char *p = view.buf;
    Py_ssize_t len = view.len;
    int was_empty = PA_TR_WBUF_SIZE(self) == 0;
    if (was_empty) {
        ssize_t n = pipe_write(self, p, (size_t)len);
        if (n < 0) {
            int err = errno;
            if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
                PyBuffer_Release(&view);
                Py_INCREF(self);
                int rc = pa_tr_fatal_errno(self, err, "Fatal write error on pipe transport");
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
        if (rc == 0 && was_empty) {
            rc = pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_WRITABLE, self->write_ready);
        }
        if (rc == 0) {
            rc = pa_tr_maybe_pause_protocol(self);
        }
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* writelines(): asyncio's WriteTransport joins the pieces and writes them. */
static PyObject *
WritePipe_writelines(TransportObject *self, PyObject *list_of_data)
{
    PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
    /* One argument as it is: a tuple given to a format would be spread
     * into several. */
    PyObject *data = empty ? PyObject_CallMethod(empty, "join", "(O)", list_of_data) : NULL;
    Py_XDECREF(empty);
    if (data == NULL) {
        return NULL;
    }
    PyObject *res = WritePipe_write(self, data);
    Py_DECREF(data);
    return res;
}

static int
write_ready(TransportObject *self)
{
    if (PA_TR_WBUF_SIZE(self) == 0) {
        return 0;
    }
    ssize_t n = pipe_write_queued(self);
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
            return 0;
        }
        pa_wq_clear(&self->wq);
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0) {
            return -1;
        }
        return pa_tr_fatal_errno(self, err, "Fatal write error on pipe transport");
    }
    pa_wq_consume(&self->wq, n);
    if (PA_TR_WBUF_SIZE(self) > 0) {
        return 0;
    }
    /* The interest stays in the poller until the pipe next polls writable,
     * and then until just before the poll after (pa_loop_unwatch_fd_lazily()):
     * when its reader is the slower side, as in every bulk transfer, the
     * write that drained the buffer filled the pipe, the next write() fails
     * with EAGAIN and watches again, and the two epoll_ctl() calls of
     * dropping and restoring the interest are saved. A socket, by contrast, stays writable after such a write (see
     * pa_tr_unwatch()). */
    if (pa_loop_unwatch_fd_lazily(pa_tr_loop(self), self->fd, PA_WRITABLE) < 0 ||
        pa_tr_maybe_resume_protocol(self) < 0) {
        return -1;
    }
    if (self->closing && PA_TR_WBUF_SIZE(self) == 0 && !self->conn_lost) {
        self->conn_lost++;
        if (pa_tr_unwatch(self, PA_READABLE) < 0) {
            return -1;
        }
        return pa_tr_call_connection_lost_now(self, Py_None);
    }
    return 0;
}

static PyObject *
WritePipe_write_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
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

/* The fd polled readable: the reading end went away. */
static PyObject *
WritePipe_read_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (log_info_closed_by_peer(self) < 0) {
        return NULL;
    }
    PyObject *exc = NULL;
    if (PA_TR_WBUF_SIZE(self) > 0) {
        exc = PyObject_CallNoArgs(PyExc_BrokenPipeError);
        if (exc == NULL) {
            return NULL;
        }
    }
    Py_INCREF(self);
    int rc = pa_tr_force_close(self, exc);
    Py_DECREF(self);
    Py_XDECREF(exc);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* write_eof(), and close(): no more writes; connection_lost(None) once the
 * buffer is flushed. */
static PyObject *
WritePipe_write_eof(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing || self->sock == NULL) {
        return pa_tr_close_again(self);
    }
    self->closing = 1;
    if (PA_TR_WBUF_SIZE(self) == 0 && !self->conn_lost) {
        self->conn_lost++;
        if (pa_tr_unwatch(self, PA_READABLE) < 0 ||
            pa_tr_call_soon_connection_lost(self, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* Watch the fd for the reading end going away (the Python side decides
 * where the kernel reports it). */
static PyObject *
WritePipe_watch_peer(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->sock == NULL || self->conn_lost) {
        Py_RETURN_NONE;
    }
    if (pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_READABLE, self->read_ready) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- types */

/* No read from a pipe brings more than the pipe holds (64 KiB unless its
 * owner set another size): asking for that much, not 256 KiB, lets a large
 * read go straight into a bytes object of its size instead of through the
 * scratch buffer and a copy (pa_tr_read_bytes()). The capacity is read once;
 * if the writer grows it later, reads stay at the old size, which costs
 * more reads, never data. */
static void
cap_reads_at_pipe_capacity(TransportObject *self)
{
    struct stat st;
    if (fstat(self->fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
        return;
    }
#ifdef F_GETPIPE_SZ
    int capacity = fcntl(self->fd, F_GETPIPE_SZ);
    if (capacity > 0 && capacity < self->max_read) {
        self->max_read = capacity;
        if (self->read_size > capacity) {
            self->read_size = capacity;
        }
    }
#endif
}

/* ReadPipeTransportBase(loop, pipe, protocol, extra=None) and the same for
 * WritePipeTransportBase. */
static int
pipe_init(TransportObject *self, PyObject *args, PyObject *kwds, const char *name,
          const char *write_ready_name)
{
    PyObject *loop, *pipe, *protocol, *extra = Py_None;
    static char *kwlist[] = {"loop", "pipe", "protocol", "extra", NULL};
    char format[64];
    PyOS_snprintf(format, sizeof(format), "OOO|O:%s", name);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &loop, &pipe, &protocol, &extra)) {
        return -1;
    }
    self->is_read_pipe = write_ready_name == NULL;
    if (pa_tr_init(self, loop, pipe, protocol, extra, Py_None, write_ready_name) < 0) {
        return -1;
    }
    if (self->is_read_pipe) {
        cap_reads_at_pipe_capacity(self);
    }
    self->initialised = 1;
    return 0;
}

static int
ReadPipe_init(TransportObject *self, PyObject *args, PyObject *kwds)
{
    return pipe_init(self, args, kwds, "ReadPipeTransportBase", NULL);
}

static int
WritePipe_init(TransportObject *self, PyObject *args, PyObject *kwds)
{
    return pipe_init(self, args, kwds, "WritePipeTransportBase", "_write_ready");
}

#define PIPE_COMMON_METHODS                                                                        \
    PA_TR_NOARGS("is_closing", pa_tr_m_is_closing),                                                \
        {"set_protocol", (PyCFunction)pa_tr_m_set_protocol, METH_O, NULL},                         \
        PA_TR_NOARGS("get_protocol", pa_tr_m_get_protocol),                                        \
        {"_fatal_error", (PyCFunction)pa_tr_m_fatal_error, METH_VARARGS, NULL},                    \
        {"_close", (PyCFunction)pa_tr_m_force_close, METH_O, NULL},                                \
        {"_call_connection_lost", (PyCFunction)pa_tr_m_call_connection_lost, METH_O, NULL},        \
        PA_TR_NOARGS("_close_unclosed", pa_tr_m_close_unclosed)

#define PIPE_COMMON_MEMBERS                                                                        \
    {"_loop", T_OBJECT, offsetof(TransportObject, loop), READONLY, NULL},                          \
        {"_fileno", T_INT, offsetof(TransportObject, fd), READONLY, NULL},                         \
        {"_protocol", T_OBJECT, offsetof(TransportObject, protocol), READONLY, NULL},              \
        {"_closing", T_BOOL, offsetof(TransportObject, closing), READONLY, NULL},                  \
    {                                                                                              \
        "_conn_lost", T_PYSSIZET, offsetof(TransportObject, conn_lost), READONLY, NULL             \
    }

static PyObject *
pipe_get(TransportObject *self, void *Py_UNUSED(closure))
{
    return pa_ref_or_none(self->sock);
}

/* `_pipe` is writable, as on asyncio's transports: code (CPython's own
 * tests among it) sets it to None to forget a pipe it closed itself, so
 * that the finaliser neither warns nor closes it. Without its pipe the
 * transport's system calls fail with EBADF. */
static int
pipe_set(TransportObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _pipe");
        return -1;
    }
    Py_XSETREF(self->sock, value == Py_None ? NULL : Py_NewRef(value));
    self->fd_in_sock = 0;
    return 0;
}

static PyGetSetDef Pipe_getset[] = {
    {"_pipe", (getter)pipe_get, (setter)pipe_set, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef ReadPipe_methods[] = {
    PA_TR_NOARGS("_read_ready", ReadPipe_read_ready),
    PA_TR_NOARGS("close", pa_tr_m_close),
    PA_TR_NOARGS("is_reading", pa_tr_m_is_reading),
    PA_TR_NOARGS("pause_reading", pa_tr_m_pause_reading),
    PA_TR_NOARGS("resume_reading", pa_tr_m_resume_reading),
    PA_TR_NOARGS("_start_reading", pa_tr_m_start_reading),
    PIPE_COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef ReadPipe_members[] = {
    {"_paused", T_BOOL, offsetof(TransportObject, paused), READONLY, NULL},
    PIPE_COMMON_MEMBERS,
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef WritePipe_methods[] = {
    {"write", (PyCFunction)WritePipe_write, METH_O, NULL},
    {"writelines", (PyCFunction)WritePipe_writelines, METH_O, NULL},
    PA_TR_NOARGS("write_eof", WritePipe_write_eof),
    PA_TR_NOARGS("close", WritePipe_write_eof),
    PA_TR_NOARGS("can_write_eof", pa_tr_m_can_write_eof),
    PA_TR_NOARGS("abort", pa_tr_m_abort),
    PA_TR_NOARGS("get_write_buffer_size", pa_tr_m_get_write_buffer_size),
    PA_TR_NOARGS("get_write_buffer_limits", pa_tr_m_get_write_buffer_limits),
    {"set_write_buffer_limits", (PyCFunction)(void (*)(void))pa_tr_m_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    PA_TR_NOARGS("_read_ready", WritePipe_read_ready),
    PA_TR_NOARGS("_write_ready", WritePipe_write_ready),
    PA_TR_NOARGS("_watch_peer", WritePipe_watch_peer),
    PIPE_COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef WritePipe_members[] = {
    {"_protocol_paused", T_BOOL, offsetof(TransportObject, protocol_paused), READONLY, NULL},
    {"_high_water", T_PYSSIZET, offsetof(TransportObject, high_water), READONLY, NULL},
    {"_low_water", T_PYSSIZET, offsetof(TransportObject, low_water), READONLY, NULL},
    PIPE_COMMON_MEMBERS,
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot ReadPipe_slots[] = {
    {Py_tp_init, ReadPipe_init},
    {Py_tp_traverse, pa_tr_traverse},
    {Py_tp_clear, pa_tr_clear},
    {Py_tp_dealloc, pa_tr_dealloc},
    {Py_tp_methods, ReadPipe_methods},
    {Py_tp_members, ReadPipe_members},
    {Py_tp_getset, Pipe_getset},
    {Py_tp_doc, "The data path of a read pipe transport (see pyasync._pipes)."},
    {0, NULL},
};

static PyType_Slot WritePipe_slots[] = {
    {Py_tp_init, WritePipe_init},
    {Py_tp_traverse, pa_tr_traverse},
    {Py_tp_clear, pa_tr_clear},
    {Py_tp_dealloc, pa_tr_dealloc},
    {Py_tp_methods, WritePipe_methods},
    {Py_tp_members, WritePipe_members},
    {Py_tp_getset, Pipe_getset},
    {Py_tp_doc, "The data path of a write pipe transport (see pyasync._pipes)."},
    {0, NULL},
};

static PyType_Spec ReadPipe_spec = {
    .name = "pyasync._core.ReadPipeTransportBase",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = ReadPipe_slots,
};

static PyType_Spec WritePipe_spec = {
    .name = "pyasync._core.WritePipeTransportBase",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = WritePipe_slots,
};

int
pa_pipe_transport_register_types(PyObject *module, pa_state *st)
{
    if (pa_tr_register(module, &ReadPipe_spec, "ReadTransport", NULL, &st->ReadPipeTransportType) <
        0) {
        return -1;
    }
    /* asyncio's write pipe transport derives from its _FlowControlMixin, a
     * Transport: it is an instance of asyncio.Transport and ReadTransport
     * too, and pause_reading() on it raises NotImplementedError. */
    return pa_tr_register(module, &WritePipe_spec, "Transport", NULL,
                          &st->WritePipeTransportType);
}
