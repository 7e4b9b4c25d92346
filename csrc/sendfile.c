/*
 * sendfile.c - the native path of loop.sock_sendfile(), and so of
 * loop.sendfile() on a socket transport: sendfile(2) from a file into a
 * non-blocking stream socket, waiting for the socket to be writable between
 * calls, as asyncio's unix_events does with os.sendfile().
 *
 * It is C because it is the data path of sendfile, and because a system
 * call made here is no Python call: tools that flag blocking calls made
 * while a loop runs (blockbuster) let os.sendfile() through only from
 * asyncio's own frames.
 *
 * One SendfileOperation per call. While it waits, the loop's watcher table
 * holds it (the writer handle calls its bound _step) and so does the
 * future's done callback (its bound _future_done); it holds the loop, the
 * future and the socket, and drops the future and the socket when it ends.
 *
 * asyncio's rules, kept here:
 *  - The first sendfile() runs at once; each later one when the socket is
 *    writable. Each asks for the rest of `count`, or without a count for
 *    `blocksize` (the file's size when the call began) until one returns 0
 *    (end of file).
 *  - An error before any byte went out becomes SendfileNotAvailableError
 *    (the caller may fall back to read/send); after that, the error itself,
 *    with ENOTCONN on a later call turned into ConnectionError.
 *  - When it ends, the file position is set past what was sent (lseek);
 *    a cancelled future stops the watching and leaves the position alone.
 */
#include "sendfile.h"
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif

typedef struct {
    PyObject_HEAD
    PyObject *loop;          /* a pyasync loop (LoopObject) */
    PyObject *fut;           /* what the caller awaits; NULL once it is settled or given up */
    PyObject *sock;          /* the socket; its fileno() is read before each call */
    PyObject *step;          /* bound self._step, the writer's callback, made when first needed */
    PyObject *not_available; /* asyncio.SendfileNotAvailableError */
    int file_fd;
    int watched_fd;          /* fd of the writer registered by us, or -1 */
    long long offset;        /* where the next block starts in the file */
    Py_ssize_t count;        /* bytes to send in all; 0: up to the end of the file */
    Py_ssize_t blocksize;    /* bytes asked of each call when there is no count */
    Py_ssize_t total_sent;
} SendfileOperation;

/* -------------------------------------------------------------- helpers */

static int
stop_watching(SendfileOperation *self)
{
    int fd = self->watched_fd;
    if (fd < 0) {
        return 0;
    }
    self->watched_fd = -1;
    return pa_loop_unwatch_fd((LoopObject *)self->loop, fd, PA_WRITABLE) < 0 ? -1 : 0;
}

/* Forget the future and the socket: nothing more will be sent. Dropping
 * the bound _step too ends the cycle self -> step -> self, so that the
 * operation is freed without the cyclic collector. */
static void
drop_operation(SendfileOperation *self)
{
    Py_CLEAR(self->fut);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->step);
}

/* Set the file position past what was sent, as asyncio does when it ends. */
static int
update_file_position(SendfileOperation *self)
{
    if (self->total_sent > 0 && lseek(self->file_fd, (off_t)self->offset, SEEK_SET) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* Settle the future with the bytes sent (exc NULL) or with exc, and stop. */
static int
finish(SendfileOperation *self, PyObject *exc)
{
    PyObject *position_error = NULL;
    if (update_file_position(self) < 0) {
        position_error = pa_err_take();
        if (exc == NULL) {
            exc = position_error;
        }
    }
    PyObject *unwatch_error = stop_watching(self) < 0 ? pa_err_take() : NULL;
    PyObject *fut = Py_NewRef(self->fut);
    drop_operation(self);
    PyObject *res;
    if (exc != NULL) {
        res = PyObject_CallMethod(fut, "set_exception", "O", exc);
    } else {
        PyObject *sent = PyLong_FromSsize_t(self->total_sent);
        res = sent ? PyObject_CallMethod(fut, "set_result", "O", sent) : NULL;
        Py_XDECREF(sent);
    }
    Py_DECREF(fut);
    Py_XDECREF(position_error);
    int rc = res ? 0 : -1;
    Py_XDECREF(res);
    if (unwatch_error != NULL) {
        if (rc == 0) {
            pa_err_restore(unwatch_error);
            rc = -1;
        } else {
            Py_DECREF(unwatch_error);
        }
    }
    return rc;
}

/* Settle the future with the exception being raised, unless it must go on
 * up (SystemExit, KeyboardInterrupt). */
static int
finish_with_raised(SendfileOperation *self)
{
    if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
        PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    int rc = finish(self, exc);
    Py_DECREF(exc);
    return rc;
}

/* sendfile() failed with err (not EAGAIN). */
static int
finish_with_errno(SendfileOperation *self, int err, int later_call)
{
    PyObject *exc;
    if (self->total_sent == 0) {
        /* Nothing went out (often: not a file sendfile() can read): the
         * caller falls back to plain sends. */
        exc = PyObject_CallFunction(self->not_available, "s", "os.sendfile call failed");
    } else {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        exc = pa_err_take();
        if (exc != NULL && later_call && err == ENOTCONN &&
            !Py_IS_TYPE(exc, (PyTypeObject *)PyExc_ConnectionError)) {
            /* The peer went away in the middle: ConnectionError on every
             * POSIX system, caused by the original error. */
            PyObject *lost = PyObject_CallFunction(PyExc_ConnectionError, "si",
                                                   "socket is not connected", ENOTCONN);
            if (lost != NULL) {
                PyException_SetCause(lost, exc); /* steals exc */
            } else {
                Py_DECREF(exc);
            }
            exc = lost;
        }
    }
    if (exc == NULL) {
        return finish_with_raised(self);
    }
    int rc = finish(self, exc);
    Py_DECREF(exc);
    return rc;
}

/* The socket's fd now (-1 once it is closed), or -2 with an exception. */
static int
socket_fd(PyObject *sock)
{
    PyObject *num = PyObject_CallMethod(sock, "fileno", NULL);
    if (num == NULL) {
        return -2;
    }
    long fd = PyLong_AsLong(num);
    Py_DECREF(num);
    if (fd == -1 && PyErr_Occurred()) {
        return -2;
    }
    return fd < 0 || fd > INT_MAX ? -1 : (int)fd;
}

/* Wait for fd to be writable. The first time, like asyncio's add_writer():
 * refuse an fd that a transport owns, and stop watching if the future is
 * cancelled. */
static int
watch(SendfileOperation *self, int fd)
{
    if (self->watched_fd == fd) {
        return 0; /* still registered from the previous call */
    }
    if (self->step == NULL) {
        PyObject *res = PyObject_CallMethod(self->loop, "_ensure_fd_no_transport", "i", fd);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
        PyObject *done = PyObject_GetAttrString((PyObject *)self, "_future_done");
        res = done ? PyObject_CallMethod(self->fut, "add_done_callback", "O", done) : NULL;
        Py_XDECREF(done);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
        self->step = PyObject_GetAttrString((PyObject *)self, "_step");
        if (self->step == NULL) {
            return -1;
        }
    }
    if (stop_watching(self) < 0 ||
        pa_loop_watch_fd((LoopObject *)self->loop, fd, PA_WRITABLE, self->step) < 0) {
        return -1;
    }
    self->watched_fd = fd;
    return 0;
}

/* One sendfile() call and what follows from it. later_call: made when the
 * socket became writable (not the first, direct one). 0, or -1 with an
 * exception for the caller. */
static int
send_block(SendfileOperation *self, int later_call)
{
    Py_ssize_t want = self->blocksize;
    if (self->count > 0) {
        want = self->count - self->total_sent;
        if (want <= 0) {
            return finish(self, NULL);
        }
    }
    int fd = socket_fd(self->sock);
    if (fd == -2) {
        return finish_with_raised(self);
    }
#ifdef __linux__
    off_t offset = (off_t)self->offset;
    ssize_t n;
    int err;
    Py_BEGIN_ALLOW_THREADS /* the file may have to be read from disk */
    n = sendfile(fd, self->file_fd, &offset, (size_t)want);
    err = errno;
    Py_END_ALLOW_THREADS
#else
    /* No sendfile(2) with Linux's semantics: the caller falls back. */
    ssize_t n = -1;
    int err = ENOSYS;
#endif
    if (n < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) {
            return watch(self, fd);
        }
        return finish_with_errno(self, err, later_call);
    }
    if (n == 0) {
        return finish(self, NULL); /* end of file */
    }
    self->offset += n;
    self->total_sent += n;
    if (self->count > 0 && self->total_sent >= self->count) {
        return finish(self, NULL);
    }
    return watch(self, fd);
}

/* ---------------------------------------------------------------- methods */

/* The writer's callback: the socket is writable. */
static PyObject *
SendfileOperation_step(SendfileOperation *self, PyObject *Py_UNUSED(ignored))
{
    if (self->fut == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(self); /* the handle that called us may be dropped below */
    PyObject *cancelled = PyObject_CallMethod(self->fut, "cancelled", NULL);
    int rc = cancelled ? 0 : -1;
    if (cancelled == Py_True) {
        /* The done callback has not run yet: what asyncio does when its
         * writer callback sees the cancelled future. */
        rc = stop_watching(self);
        drop_operation(self);
        if (rc == 0) {
            rc = update_file_position(self);
        }
    } else if (cancelled != NULL) {
        rc = send_block(self, 1);
        if (rc < 0 && self->fut != NULL) {
            /* Nobody would hear of it from the loop's exception handler
             * alone: the awaiting caller gets it. */
            rc = finish_with_raised(self);
        }
    }
    Py_XDECREF(cancelled);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The future's done callback: only a future settled by someone else (a
 * cancellation) finds the operation still going. */
static PyObject *
SendfileOperation_future_done(SendfileOperation *self, PyObject *fut)
{
    if (self->fut == NULL) {
        Py_RETURN_NONE;
    }
    Py_INCREF(self);
    int rc = stop_watching(self);
    drop_operation(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _core.sock_sendfile_native(loop, sock, fileno, offset, count, blocksize)
 * -> a future of the number of bytes sent. count 0 means up to the end of
 * the file. Errors of the sending go to the future; errors of the set-up
 * (a transport owns the socket, ...) are raised. */
static PyObject *
sock_sendfile_native(PyObject *module, PyObject *args)
{
    pa_state *st = pa_get_state(module);
    PyObject *loop, *sock;
    int file_fd;
    long long offset;
    Py_ssize_t count, blocksize;
    if (!PyArg_ParseTuple(args, "OOiLnn:sock_sendfile_native", &loop, &sock, &file_fd, &offset,
                          &count, &blocksize)) {
        return NULL;
    }
    if (!pa_loop_check(st, loop)) {
        PyErr_Format(PyExc_TypeError, "a pyasync loop is required, got %R", loop);
        return NULL;
    }
    if (offset < 0 || count < 0 || blocksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "negative offset or count, or an empty block");
        return NULL;
    }
    PyObject *fut = PyObject_CallMethod(loop, "create_future", NULL);
    if (fut == NULL) {
        return NULL;
    }
    PyTypeObject *tp = st->SendfileOperationType;
    SendfileOperation *self = (SendfileOperation *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        Py_DECREF(fut);
        return NULL;
    }
    self->loop = Py_NewRef(loop);
    self->fut = Py_NewRef(fut);
    self->sock = Py_NewRef(sock);
    self->not_available = Py_NewRef(st->SendfileNotAvailableError);
    self->file_fd = file_fd;
    self->watched_fd = -1;
    self->offset = offset;
    self->count = count;
    self->blocksize = blocksize;
    if (send_block(self, 0) < 0) {
        PyObject *exc = pa_err_take();
        if (stop_watching(self) < 0) {
            PyErr_Clear(); /* the first error is the one to tell */
        }
        drop_operation(self);
        pa_err_restore(exc);
        Py_CLEAR(fut);
    }
    Py_DECREF(self);
    return fut;
}

/* ------------------------------------------------------------ type slots */

static int
SendfileOperation_traverse(SendfileOperation *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->fut);
    Py_VISIT(self->sock);
    Py_VISIT(self->step);
    Py_VISIT(self->not_available);
    return 0;
}

static int
SendfileOperation_clear(SendfileOperation *self)
{
    Py_CLEAR(self->loop);
    Py_CLEAR(self->fut);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->step);
    Py_CLEAR(self->not_available);
    return 0;
}

static void
SendfileOperation_dealloc(SendfileOperation *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)SendfileOperation_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef SendfileOperation_methods[] = {
    {"_step", (PyCFunction)SendfileOperation_step, METH_NOARGS, NULL},
    {"_future_done", (PyCFunction)SendfileOperation_future_done, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot SendfileOperation_slots[] = {
    {Py_tp_traverse, SendfileOperation_traverse},
    {Py_tp_clear, SendfileOperation_clear},
    {Py_tp_dealloc, SendfileOperation_dealloc},
    {Py_tp_methods, SendfileOperation_methods},
    {Py_tp_doc, "One loop.sock_sendfile() in progress (made by sock_sendfile_native())."},
    {0, NULL},
};

static PyType_Spec SendfileOperation_spec = {
    .name = "pyasync._core.SendfileOperation",
    .basicsize = sizeof(SendfileOperation),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SendfileOperation_slots,
};

static PyMethodDef sendfile_functions[] = {
    {"sock_sendfile_native", sock_sendfile_native, METH_VARARGS,
     "Start sendfile() of a file into a non-blocking socket; a future of the bytes sent."},
    {NULL, NULL, 0, NULL},
};

int
pa_sendfile_register(PyObject *module, pa_state *st)
{
    PyObject *exceptions = PyImport_ImportModule("asyncio.exceptions");
    st->SendfileNotAvailableError =
        exceptions ? PyObject_GetAttrString(exceptions, "SendfileNotAvailableError") : NULL;
    Py_XDECREF(exceptions);
    if (st->SendfileNotAvailableError == NULL) {
        return -1;
    }
    st->SendfileOperationType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &SendfileOperation_spec, NULL);
    if (st->SendfileOperationType == NULL) {
        return -1;
    }
    return PyModule_AddFunctions(module, sendfile_functions);
}
