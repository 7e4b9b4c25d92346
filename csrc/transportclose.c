/*
 * transportclose.c - how a transport ends (see transport.h), for the
 * stream, datagram and pipe transports alike: close() and abort(),
 * _force_close() and the fatal errors that lead to it, the single
 * connection_lost() with the socket closed through the loop and the server
 * told, and the finaliser's close of a transport collected unclosed. The
 * behaviour and the messages given to the exception handler are those of
 * asyncio's selector transports of each supported version.
 */
#include "transport.h"

/* Forget everything waiting to be sent (no system call, no unwatching). */
static int
drop_pending(TransportObject *self)
{
    pa_wq_clear(&self->wq);
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

/* _force_close(exc): drop buffered data, stop reading, schedule
 * connection_lost(exc) - once. */
int
pa_tr_force_close(TransportObject *self, PyObject *exc)
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
    return pa_tr_call_soon_connection_lost(self, exc ? exc : Py_None);
}

/* _fatal_error(exc, message): OSErrors are only logged in debug mode (peers
 * go away all the time); anything else goes to the exception handler. Then
 * the transport is force-closed. Fails only for what must stop the loop. */
int
pa_tr_fatal_error(TransportObject *self, PyObject *exc, const char *message)
{
    pa_state *st = pa_tr_loop(self)->state;
    int rc = 0;
    /* A read pipe transport reports every OSError but EIO (a pty whose
     * other side closed), as asyncio's does. */
    int only_logged = PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_OSError);
    if (only_logged && self->is_read_pipe) {
        PyObject *err = PyObject_GetAttrString(exc, "errno");
        if (err == NULL) {
            return -1;
        }
        only_logged = PyLong_Check(err) && PyLong_AsLong(err) == EIO;
        Py_DECREF(err);
    }
    if (only_logged) {
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
        rc = pa_tr_report(self, message, exc);
    }
    if (rc == 0) {
        rc = pa_tr_force_close(self, exc);
    }
    return rc;
}

/* The fatal error for a system call that failed with errno `err`. */
int
pa_tr_fatal_errno(TransportObject *self, int err, const char *message)
{
    PyObject *exc = pa_tr_oserror(err);
    if (exc == NULL) {
        return -1;
    }
    int rc = pa_tr_fatal_error(self, exc, message);
    Py_DECREF(exc);
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

/* asyncio's transports, when collected unclosed, only close their socket or
 * pipe: they are not "closing", and a close() that comes later (from
 * another finaliser, at interpreter exit) schedules connection_lost() and
 * fails with "Event loop is closed" if the loop is. Code depends on that
 * failure: asyncio's subprocess transport, collected with the loop closed,
 * stops at it before killing its child. Ours mark themselves closing when
 * collected (nothing may reach their fd again) but say they are not
 * (closing_as_seen()) until this first close(), which fails the same way. */
PyObject *
pa_tr_close_again(TransportObject *self)
{
    int first_close = self->finalized;
    self->finalized = 0; /* closed now: is_closing() says so */
    if (first_close && pa_tr_loop(self)->closed) {
        (void)pa_loop_raise_closed(pa_tr_loop(self), NULL, 0);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_close(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->closing) {
        return pa_tr_close_again(self);
    }
    self->closing = 1;
    if (pa_tr_unwatch(self, PA_READABLE) < 0) {
        return NULL;
    }
    if (!pa_tr_has_pending(self)) {
        self->conn_lost++;
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0 || pa_tr_call_soon_connection_lost(self, Py_None) < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_abort(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0 || pa_tr_force_close(self, NULL) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
pa_tr_m_force_close(TransportObject *self, PyObject *exc)
{
    if (pa_tr_check_initialised(self) < 0 || pa_tr_force_close(self, exc == Py_None ? NULL : exc) < 0) {
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
    pa_loop_drop_fd_transport(loop, self->fd, (PyObject *)self);
    if (self->lazy_sock) {
        /* The fd is ours alone. close() frees it even when it fails (EINTR
         * included, on Linux): never retried. */
        self->lazy_sock = 0;
        Py_DECREF(sock);
        if (close(self->fd) < 0 && errno != EINTR) {
            PyObject *exc = pa_tr_oserror(errno);
            if (exc != NULL) {
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                Py_DECREF(exc);
            }
            keep_first_error(first);
        }
        return;
    }
    PyObject *res = PyObject_CallMethodNoArgs(sock, loop->state->str_close);
    Py_DECREF(sock);
    if (res == NULL) {
        keep_first_error(first);
    }
    Py_XDECREF(res);
}

PyObject *
pa_tr_server_call(TransportObject *self, PyObject *name)
{
#if PA_SERVER_ATTACH_TAKES_TRANSPORT
    return PyObject_CallMethodOneArg(self->server, name, (PyObject *)self);
#else
    return PyObject_CallMethodNoArgs(self->server, name);
#endif
}

/* The bound methods the loop called for readiness hold the transport: with
 * the fd closed nothing watches it any more, and dropping them ends the
 * cycle, so that a finished transport is freed when its last user lets go
 * instead of by the garbage collector. Every path that would watch the fd
 * again stops first at `closing` or a NULL sock. */
static void
drop_watch_callbacks(TransportObject *self)
{
    Py_CLEAR(self->read_ready);
    Py_CLEAR(self->write_ready);
}

/* The loop is closed and lets go of its watchers: if `callback` is the bound
 * _read_ready/_write_ready of one of our transports, that transport drops
 * its own references to both (nothing can watch again on a closed loop: a
 * later watch raises "Event loop is closed" first). That ends the cycle
 * transport -> bound method -> transport for a transport left open, so that
 * it is freed when its user lets go, its finaliser warning and closing the
 * socket or file first, as asyncio's datagram and pipe transports (which
 * are in no such cycle) are; in a garbage-collected cycle the socket or
 * file object could be finalised first and warn on its own. */
void
pa_tr_release_watch_callbacks_of(pa_state *st, PyObject *callback)
{
    if (callback == NULL || !PyCFunction_Check(callback)) {
        return;
    }
    PyObject *owner = PyCFunction_GET_SELF(callback);
    if (owner == NULL) {
        return;
    }
    PyTypeObject *tp = Py_TYPE(owner);
    if (PyType_IsSubtype(tp, st->TransportType) || PyType_IsSubtype(tp, st->DgramTransportType) ||
        PyType_IsSubtype(tp, st->ReadPipeTransportType) ||
        PyType_IsSubtype(tp, st->WritePipeTransportType)) {
        drop_watch_callbacks((TransportObject *)owner);
    }
}

/* Tell the server (if any) that this connection is gone, once. */
static void
detach_from_server(TransportObject *self, PyObject **first)
{
    if (self->server != NULL && self->server != Py_None) {
        PyObject *res = pa_tr_server_call(self, pa_tr_loop(self)->state->str_detach);
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
    drop_watch_callbacks(self);
    if (self->empty_waiter != NULL && err == NULL) {
        PyObject *lost = PyObject_CallFunction(PyExc_ConnectionError, "s",
                                               "Connection is closed by peer");
        if (lost == NULL || pa_tr_settle_empty_waiter(self, lost) < 0) {
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
 * socket closed too: its loop was checked before the socket was kept.
 * Once the loop is closed the server is let go without _detach(): that
 * would wake wait_closed()'s waiters, whose callbacks a closed loop refuses
 * to schedule (RuntimeError, reported from the finaliser), and nothing can
 * run on that loop any more anyway. */
PyObject *
pa_tr_m_close_unclosed(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->sock == NULL) {
        Py_RETURN_NONE; /* never set up, or closed already */
    }
    PyObject *err = NULL;
    self->finalized = !self->closing;
    self->closing = 1;
    if (self->conn_lost == 0) {
        self->conn_lost = 1;
    }
    if (drop_pending(self) < 0) {
        keep_first_error(&err);
    }
    close_socket(self, &err);
    if (pa_tr_loop(self)->closed) {
        Py_CLEAR(self->server);
    }
    detach_from_server(self, &err);
    drop_watch_callbacks(self);
    if (err != NULL) {
        pa_err_restore(err);
        return NULL;
    }
    Py_RETURN_NONE;
}
