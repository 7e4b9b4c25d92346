/*
 * sockop.c - the loop's sock_*() methods as C awaitables.
 *
 * asyncio's sock_recv() and friends are coroutines: each call makes a
 * coroutine object and a frame, tries the socket call, and only when it
 * would block makes a future, watches the fd and awaits the future. Here
 * the method returns a SockOp, an object with the coroutine protocol
 * (__await__, send, throw, close, and am_send for the C Task) that does the
 * same without a Python frame:
 *
 *   first step   the checks asyncio makes (an SSL socket is refused; in
 *                debug mode the socket must be non-blocking), then the socket method
 *                (sock.recv(n), ...), called as asyncio calls it, so that a
 *                socket subclass is honoured; its result ends the await.
 *   would block  a pyasync Future; the fd is watched (refused if a live
 *                transport owns it) with the SockOp as the callback, which
 *                retries the method each time the fd is ready until it
 *                stops blocking and settles the future; the future is
 *                yielded to the task. The future's done callback (the
 *                SockOp again, called with the future) stops the watch, so
 *                a cancelled operation leaves nothing watching the socket
 *                and reads or writes nothing more: the socket stays usable.
 *   next step    the future's result or exception.
 *
 * sock_sendall() keeps its progress in the SockOp and waits until all of
 * the data went out; sock_accept() makes the accepted socket non-blocking.
 *
 * Like a coroutine, a SockOp can be awaited once; unlike one, a SockOp that
 * is never awaited does nothing and warns of nothing.
 */
#include "future.h"
#include "handle.h"
#include "keywords.h"
#include "loop.h"

#include <limits.h>
#include <structmember.h>

enum sockop_kind {
    OP_RECV,          /* sock.recv(n) */
    OP_RECV_INTO,     /* sock.recv_into(buf) */
    OP_RECVFROM,      /* sock.recvfrom(bufsize) */
    OP_RECVFROM_INTO, /* sock.recvfrom_into(buf, nbytes) */
    OP_SENDTO,        /* sock.sendto(data, address) */
    OP_SENDALL,       /* sock.send(view[sent:]) until all is sent */
    OP_ACCEPT,        /* sock.accept(), then conn.setblocking(False) */
};

enum sockop_state { FRESH, WAITING, FINISHED };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *loop;
    PyObject *sock;
    PyObject *args[2];  /* the method's arguments */
    Py_ssize_t nargs;
    PyObject *fut;      /* while waiting (and until its result is taken) */
    PyObject *handle;   /* the watcher's handle while waiting */
    PyObject *fdobj;    /* the fd watched, as an int */
    PyObject *view;     /* sendall: memoryview of the data, cast to bytes */
    Py_ssize_t sent, total;
    char kind;
    char state;
} SockOpObject;

static PyObject *
method_name(pa_state *st, int kind)
{
    switch (kind) {
    case OP_RECV:
        return st->str_recv;
    case OP_RECV_INTO:
        return st->str_recv_into;
    case OP_RECVFROM:
        return st->str_recvfrom;
    case OP_RECVFROM_INTO:
        return st->str_recvfrom_into;
    case OP_SENDTO:
        return st->str_sendto;
    case OP_SENDALL:
        return st->str_send;
    default:
        return st->str_accept;
    }
}

static int
is_writing(int kind)
{
    return kind == OP_SENDTO || kind == OP_SENDALL;
}

/* Whether the exception set means "not ready yet". */
static int
would_block(void)
{
    return PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
           PyErr_ExceptionMatches(PyExc_InterruptedError);
}

/* One try of the operation: a new reference to its result; NULL with the
 * exception set (BlockingIOError when it must wait; for sendall also when
 * only part of the data went out). */
static PyObject *
attempt(SockOpObject *op, pa_state *st)
{
    PyObject *name = method_name(st, op->kind);
    if (op->kind == OP_SENDALL) {
        /* The first send() is given the data itself, as asyncio gives it;
         * what follows, the rest of a byte view of it. */
        PyObject *rest = op->view == NULL ? Py_NewRef(op->args[0])
                                          : PySequence_GetSlice(op->view, op->sent, op->total);
        if (rest == NULL) {
            return NULL;
        }
        PyObject *args[2] = {op->sock, rest};
        PyObject *n = PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                NULL);
        Py_DECREF(rest);
        Py_ssize_t sent = 0;
        if (n == NULL) {
            if (op->view != NULL || !would_block()) {
                return NULL;
            }
            PyErr_Clear(); /* nothing went out yet: wait below */
        } else {
            sent = PyLong_AsSsize_t(n);
            Py_DECREF(n);
            if (sent == -1 && PyErr_Occurred()) {
                return NULL;
            }
        }
        if (op->view == NULL) {
            /* All of it at once, the common case: no view is needed. */
            Py_buffer whole;
            if (PyObject_GetBuffer(op->args[0], &whole, PyBUF_SIMPLE) == 0) {
                Py_ssize_t len = whole.len;
                PyBuffer_Release(&whole);
                if (sent == len) {
                    Py_RETURN_NONE;
                }
            } else {
                PyErr_Clear(); /* not contiguous: the view below says what it is */
            }
            PyObject *mv = PyMemoryView_FromObject(op->args[0]);
            op->view = mv ? PyObject_CallMethod(mv, "cast", "s", "B") : NULL;
            Py_XDECREF(mv);
            op->total = op->view ? PyObject_Length(op->view) : -1;
            if (op->total < 0) {
                return NULL;
            }
        }
        op->sent += sent;
        if (op->sent < op->total) {
            PyErr_SetNone(PyExc_BlockingIOError);
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *args[3] = {op->sock, op->args[0], op->args[1]};
    PyObject *res = PyObject_VectorcallMethod(
        name, args, (size_t)(1 + op->nargs) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (op->kind != OP_ACCEPT) {
        return res;
    }
    if (res == NULL) {
        /* asyncio asks for sock.fileno() before sock.accept(): an object
         * with neither is reported as missing fileno, as there. */
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyObject *exc = pa_err_take();
            PyObject *fileno = PyObject_GetAttr(op->sock, st->str_fileno);
            if (fileno != NULL) {
                Py_DECREF(fileno);
                pa_err_restore(exc);
            } else {
                Py_DECREF(exc);
            }
        }
        return NULL;
    }
    /* (conn, address): asyncio hands conn over non-blocking. */
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        return res;
    }
    PyObject *ok = PyObject_CallMethod(PyTuple_GET_ITEM(res, 0), "setblocking", "O", Py_False);
    if (ok == NULL) {
        Py_DECREF(res);
        return NULL;
    }
    Py_DECREF(ok);
    return res;
}

/* sock_recvfrom_into() receives `nbytes or len(buf)`, worked out after the
 * socket's checks as asyncio's coroutine does: a bad buffer raises from the
 * await, not from the call. */
static int
resolve_nbytes(SockOpObject *op)
{
    if (op->kind != OP_RECVFROM_INTO) {
        return 0;
    }
    PyObject *nbytes = op->args[1];
    int truthy = nbytes != NULL ? PyObject_IsTrue(nbytes) : 0;
    if (truthy <= 0) {
        if (truthy < 0) {
            return -1;
        }
        Py_ssize_t len = PyObject_Length(op->args[0]);
        if (len < 0) {
            return -1;
        }
        PyObject *n = PyLong_FromSsize_t(len);
        if (n == NULL) {
            return -1;
        }
        Py_XSETREF(op->args[1], n);
    }
    return 0;
}

/* The checks asyncio makes before the first try: an SSL socket is refused
 * always; a blocking one only in debug mode, as asyncio does (outside it,
 * the socket call blocks the loop but works, and programs rely on that). */
static int
check_socket(SockOpObject *op, pa_state *st)
{
    if ((PyObject *)Py_TYPE(op->sock) != st->socket_class) {
        /* Not a plain socket.socket: maybe an ssl.SSLSocket. */
        PyObject *res = PyObject_CallOneArg(st->check_ssl_socket, op->sock);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (!((LoopObject *)op->loop)->debug) {
        return resolve_nbytes(op);
    }
    PyObject *timeout = PyObject_CallMethodNoArgs(op->sock, st->str_gettimeout);
    if (timeout == NULL) {
        return -1;
    }
    int blocking;
    if (timeout == Py_None) {
        blocking = 1;
    } else if (PyFloat_CheckExact(timeout)) {
        blocking = PyFloat_AS_DOUBLE(timeout) != 0.0;
    } else {
        PyObject *zero = PyLong_FromLong(0);
        blocking = zero ? PyObject_RichCompareBool(timeout, zero, Py_NE) : -1;
        Py_XDECREF(zero);
    }
    Py_DECREF(timeout);
    if (blocking < 0) {
        return -1;
    }
    if (blocking) {
        PyErr_SetString(PyExc_ValueError, "the socket must be non-blocking");
        return -1;
    }
    return resolve_nbytes(op);
}

/* Wait for the fd: a future, and a watch that retries the operation. */
static int
start_waiting(SockOpObject *op, LoopObject *loop)
{
    pa_state *st = loop->state;
    PyObject *fdobj = PyObject_CallMethodNoArgs(op->sock, st->str_fileno);
    if (fdobj == NULL) {
        return -1;
    }
    long fd = PyLong_AsLong(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        Py_DECREF(fdobj);
        return -1;
    }
    if (fd >= 0 && fd <= INT_MAX && pa_loop_check_no_transport(loop, (int)fd, fdobj) < 0) {
        Py_DECREF(fdobj);
        return -1;
    }
    PyObject *fut = pa_future_new(st, op->loop);
    if (fut == NULL) {
        Py_DECREF(fdobj);
        return -1;
    }
    PyObject *args[2] = {fdobj, (PyObject *)op};
    PyObject *handle = is_writing(op->kind) ? pa_loop_private_add_writer(loop, args, 2)
                                            : pa_loop_private_add_reader(loop, args, 2);
    if (handle == NULL) {
        Py_DECREF(fut);
        Py_DECREF(fdobj);
        return -1;
    }
    op->fut = fut;
    op->handle = handle;
    op->fdobj = fdobj;
    if (pa_future_add_done_callback(st, (FutureObject *)fut, (PyObject *)op, st->fresh_context) <
        0) {
        return -1;
    }
    op->state = WAITING;
    return 0;
}

/* The future is done: stop watching, unless the loop dropped the watch
 * already (its handle was cancelled by a new watcher or a removal). */
static PyObject *
finish_waiting(SockOpObject *op)
{
    PyObject *handle = op->handle, *fdobj = op->fdobj;
    op->handle = op->fdobj = NULL;
    PyObject *res = Py_None;
    if (handle != NULL && !((HandleObject *)handle)->cancelled && op->loop != NULL) {
        LoopObject *loop = (LoopObject *)op->loop;
        PyObject *removed = is_writing(op->kind) ? pa_loop_remove_writer(loop, fdobj, 0)
                                                 : pa_loop_remove_reader(loop, fdobj, 0);
        Py_XDECREF(removed);
        res = removed ? Py_None : NULL;
    }
    Py_XDECREF(handle);
    Py_XDECREF(fdobj);
    return Py_XNewRef(res);
}

/* The fd is ready: try again, settle the future unless it still blocks. */
static PyObject *
retry(SockOpObject *op)
{
    FutureObject *fut = (FutureObject *)op->fut;
    if (fut == NULL || fut->state != PA_FUT_PENDING) {
        Py_RETURN_NONE;
    }
    pa_state *st = ((LoopObject *)op->loop)->state;
    Py_INCREF(op);
    Py_INCREF(fut);
    PyObject *res = attempt(op, st);
    int rc = 0;
    if (res != NULL) {
        rc = pa_future_set_result(st, fut, res);
        Py_DECREF(res);
    } else if (would_block()) {
        PyErr_Clear();
    } else if (!PyErr_ExceptionMatches(PyExc_SystemExit) &&
               !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyObject *exc = pa_err_take();
        rc = pa_future_set_exception(st, fut, exc);
        Py_DECREF(exc);
    } else {
        rc = -1;
    }
    Py_DECREF(fut);
    Py_DECREF(op);
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

/* Called by the watcher (no argument) and as the future's done callback
 * (the future). */
static PyObject *
SockOp_vectorcall(SockOpObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) || nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "a sock_*() operation is called by the loop only");
        return NULL;
    }
    if (op->loop == NULL) {
        Py_RETURN_NONE;
    }
    if (nargs == 1) {
        return finish_waiting(op); /* acts only while a watch is in place */
    }
    return retry(op);
}

/* ------------------------------------------------------- awaiting it */

static PySendResult
SockOp_am_send(SockOpObject *op, PyObject *Py_UNUSED(arg), PyObject **result)
{
    *result = NULL;
    if (op->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the sock_*() operation is not initialized");
        return PYGEN_ERROR;
    }
    pa_state *st = ((LoopObject *)op->loop)->state;
    if (op->state == FRESH) {
        if (check_socket(op, st) < 0) {
            op->state = FINISHED;
            return PYGEN_ERROR;
        }
        PyObject *res = attempt(op, st);
        if (res != NULL) {
            op->state = FINISHED;
            *result = res;
            return PYGEN_RETURN;
        }
        if (!would_block() || (PyErr_Clear(), start_waiting(op, (LoopObject *)op->loop) < 0)) {
            op->state = FINISHED;
            if (op->fut != NULL) {
                /* Set up half-way: stop what was started. */
                PyObject *exc = pa_err_take();
                (void)pa_future_cancel(st, (FutureObject *)op->fut, NULL);
                PyObject *res2 = finish_waiting(op);
                Py_XDECREF(res2);
                PyErr_Clear();
                Py_CLEAR(op->fut);
                pa_err_restore(exc);
            }
            return PYGEN_ERROR;
        }
        FutureObject *fut = (FutureObject *)op->fut;
        fut->blocking = 1;
        *result = Py_NewRef(op->fut);
        return PYGEN_NEXT;
    }
    if (op->state == WAITING) {
        FutureObject *fut = (FutureObject *)op->fut;
        if (fut->state == PA_FUT_PENDING) {
            PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
            return PYGEN_ERROR;
        }
        op->state = FINISHED;
        PyObject *res = pa_future_result(st, fut);
        Py_CLEAR(op->fut);
        if (res == NULL) {
            return PYGEN_ERROR;
        }
        *result = res;
        return PYGEN_RETURN;
    }
    PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited sock_*() operation");
    return PYGEN_ERROR;
}

static PyObject *
SockOp_iternext(SockOpObject *op)
{
    PyObject *res;
    PySendResult r = SockOp_am_send(op, Py_None, &res);
    return pa_iternext_from_send(r, res);
}

static PyObject *
SockOp_send(SockOpObject *op, PyObject *Py_UNUSED(value))
{
    return SockOp_iternext(op);
}

/* Stop waiting: the future is cancelled, which stops the watch. */
static void
abandon(SockOpObject *op)
{
    if (op->fut != NULL && op->loop != NULL) {
        pa_state *st = ((LoopObject *)op->loop)->state;
        PyObject *exc = pa_err_take();
        if (((FutureObject *)op->fut)->state == PA_FUT_PENDING) {
            (void)pa_future_cancel(st, (FutureObject *)op->fut, NULL);
        }
        PyErr_Clear();
        pa_err_restore(exc);
    }
    Py_CLEAR(op->fut);
    op->state = FINISHED;
}

static PyObject *
SockOp_throw(SockOpObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *exc = pa_throw_args_to_exception(args, nargs);
    if (exc == NULL) {
        return NULL;
    }
    abandon(op);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *
SockOp_close(SockOpObject *op, PyObject *Py_UNUSED(ignored))
{
    abandon(op);
    Py_RETURN_NONE;
}

static PyObject *
SockOp_await(SockOpObject *op)
{
    return Py_NewRef(op);
}

/* ------------------------------------------------------ the type */

static int
SockOp_traverse(SockOpObject *op, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(op));
    Py_VISIT(op->loop);
    Py_VISIT(op->sock);
    Py_VISIT(op->args[0]);
    Py_VISIT(op->args[1]);
    Py_VISIT(op->fut);
    Py_VISIT(op->handle);
    Py_VISIT(op->fdobj);
    Py_VISIT(op->view);
    return 0;
}

static int
SockOp_clear(SockOpObject *op)
{
    Py_CLEAR(op->loop);
    Py_CLEAR(op->sock);
    Py_CLEAR(op->args[0]);
    Py_CLEAR(op->args[1]);
    Py_CLEAR(op->fut);
    Py_CLEAR(op->handle);
    Py_CLEAR(op->fdobj);
    Py_CLEAR(op->view);
    return 0;
}

/* One operation is made per sock_*() call: dead ones are kept for reuse,
 * linked through `loop` (the type cannot be subclassed: all have the same
 * size). Reuse skips the allocator and the GC's allocation count. */
#define SOCKOP_FREELIST_MAX 64

static void
SockOp_dealloc(SockOpObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    (void)SockOp_clear(op);
    pa_state *st = pa_state_of_quiet((PyObject *)op);
    if (st != NULL && tp == st->SockOpType && st->sockop_freelist_len < SOCKOP_FREELIST_MAX) {
        op->loop = st->sockop_freelist;
        st->sockop_freelist = op;
        st->sockop_freelist_len++;
    } else {
        tp->tp_free(op);
    }
    Py_DECREF(tp);
}

void
pa_sockop_freelist_clear(pa_state *st)
{
    SockOpObject *op = st->sockop_freelist;
    while (op != NULL) {
        SockOpObject *next = (SockOpObject *)(void *)op->loop;
        PyObject_GC_Del(op);
        op = next;
    }
    st->sockop_freelist = NULL;
    st->sockop_freelist_len = 0;
}

static PyObject *
SockOp_repr(SockOpObject *op)
{
    static const char *names[] = {"sock_recv",    "sock_recv_into", "sock_recvfrom",
                                  "sock_recvfrom_into", "sock_sendto", "sock_sendall",
                                  "sock_accept"};
    static const char *states[] = {"fresh", "waiting", "finished"};
    return PyUnicode_FromFormat("<%s() %s>", names[(int)op->kind], states[(int)op->state]);
}

static PyMethodDef SockOp_methods[] = {
    {"send", (PyCFunction)SockOp_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))SockOp_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)SockOp_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef SockOp_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(SockOpObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot SockOp_slots[] = {
    {Py_am_await, SockOp_await},
    {Py_am_send, SockOp_am_send},
    {Py_tp_iter, SockOp_await},
    {Py_tp_iternext, SockOp_iternext},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_traverse, SockOp_traverse},
    {Py_tp_clear, SockOp_clear},
    {Py_tp_dealloc, SockOp_dealloc},
    {Py_tp_repr, SockOp_repr},
    {Py_tp_methods, SockOp_methods},
    {Py_tp_members, SockOp_members},
    {Py_tp_doc, "A loop.sock_*() operation: awaitable once, like the coroutine asyncio returns."},
    {0, NULL},
};

static PyType_Spec SockOp_spec = {
    .name = "pyasync._core.SockOp",
    .basicsize = sizeof(SockOpObject),
    /* Made by the loop's methods only. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = SockOp_slots,
};

int
pa_sockop_register_type(PyObject *module, pa_state *st)
{
    st->SockOpType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &SockOp_spec, NULL);
    if (st->SockOpType == NULL) {
        return -1;
    }
    return PyModule_AddType(module, st->SockOpType);
}

/* ------------------------------------------------------ the methods */

static PyObject *
new_op(LoopObject *loop, int kind, PyObject *sock, PyObject *a0, PyObject *a1, Py_ssize_t nargs)
{
    pa_state *st = loop->state;
    SockOpObject *op = st->sockop_freelist;
    if (op != NULL) {
        st->sockop_freelist = (void *)op->loop;
        st->sockop_freelist_len--;
        (void)PyObject_Init((PyObject *)op, st->SockOpType);
    } else {
        op = PyObject_GC_New(SockOpObject, st->SockOpType);
        if (op == NULL) {
            return NULL;
        }
    }
    op->vectorcall = (vectorcallfunc)SockOp_vectorcall;
    op->loop = Py_NewRef((PyObject *)loop);
    op->sock = Py_NewRef(sock);
    op->args[0] = Py_XNewRef(a0);
    op->args[1] = Py_XNewRef(a1);
    op->nargs = nargs;
    op->fut = op->handle = op->fdobj = op->view = NULL;
    op->sent = op->total = 0;
    op->kind = (char)kind;
    op->state = FRESH;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* Parse (sock, <names...>) by position or keyword into out[]; `required`
 * of them must be given. */
static int
parse_args(const char *fname, const char *const *names, int required, PyObject *const *args,
           Py_ssize_t nargsf, PyObject *kwnames, PyObject **out)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int n = 0;
    while (names[n] != NULL) {
        out[n] = NULL;
        n++;
    }
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d positional arguments but %zd were given",
                     fname, n + 1, nargs + 1);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        out[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) {
            i++;
        }
        if (i == n) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument: '%s'", fname,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

#define SOCKOP_METHOD(func, fname, kind, nreq, ...)                                                \
    PyObject *func(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames) \
    {                                                                                              \
        static const char *const names_[] = {"sock", __VA_ARGS__, NULL};                          \
        PyObject *out_[4] = {NULL, NULL, NULL, NULL};                                              \
        if (parse_args(fname, names_, nreq, args, nargsf, kwnames, out_) < 0) {                   \
            return NULL;                                                                           \
        }                                                                                          \
        return new_op(self, kind, out_[0], out_[1], out_[2], nreq - 1);                           \
    }

SOCKOP_METHOD(pa_loop_sock_recv, "sock_recv", OP_RECV, 2, "n")
SOCKOP_METHOD(pa_loop_sock_recv_into, "sock_recv_into", OP_RECV_INTO, 2, "buf")
SOCKOP_METHOD(pa_loop_sock_recvfrom, "sock_recvfrom", OP_RECVFROM, 2, "bufsize")
SOCKOP_METHOD(pa_loop_sock_sendto, "sock_sendto", OP_SENDTO, 3, "data", "address")

PyObject *
pa_loop_sock_recvfrom_into(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                           PyObject *kwnames)
{
    static const char *const names[] = {"sock", "buf", "nbytes", NULL};
    PyObject *out[4] = {NULL, NULL, NULL, NULL};
    if (parse_args("sock_recvfrom_into", names, 2, args, nargsf, kwnames, out) < 0) {
        return NULL;
    }
    /* nbytes is made `nbytes or len(buf)` when awaited (resolve_nbytes()). */
    return new_op(self, OP_RECVFROM_INTO, out[0], out[1], out[2], 2);
}

PyObject *
pa_loop_sock_sendall(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                     PyObject *kwnames)
{
    static const char *const names[] = {"sock", "data", NULL};
    PyObject *out[3] = {NULL, NULL, NULL};
    if (parse_args("sock_sendall", names, 2, args, nargsf, kwnames, out) < 0) {
        return NULL;
    }
    return new_op(self, OP_SENDALL, out[0], out[1], NULL, 1);
}

PyObject *
pa_loop_sock_accept(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                    PyObject *kwnames)
{
    PyObject *sock;
    if (pa_parse_single_arg("sock_accept", "sock", args, nargsf, kwnames, &sock) < 0) {
        return NULL;
    }
    return new_op(self, OP_ACCEPT, sock, NULL, NULL, 0);
}
