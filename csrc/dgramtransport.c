/*
 * dgramtransport.c - the datagram transport (UDP and Unix datagram sockets).
 *
 * Same state machine as the stream transport (transport.c: close, abort,
 * connection_lost, flow control); what differs is the data path. A datagram
 * is read with sock.recvfrom() and handed to datagram_received(data, addr);
 * sendto() tries sock.send(data)/sock.sendto(data, addr) at once (asyncio's
 * calls; no MSG_NOSIGNAL, since Linux raises SIGPIPE for stream sockets
 * only) and queues (bytes, addr) pairs only when the socket would block.
 * OSErrors of a single datagram go to the protocol's error_received() and
 * the transport stays open, as in asyncio. The socket methods do the
 * address conversions, which are the socket module's business.
 *
 * The write buffer size counts each queued datagram as its length plus
 * PA_DGRAM_HEADER_SIZE (compat.h), added when it is queued and taken away,
 * the same amount, when it is sent.
 */
#include "transport.h"

static int
is_would_block(void)
{
    return PyErr_ExceptionMatches(PyExc_BlockingIOError) ||
           PyErr_ExceptionMatches(PyExc_InterruptedError);
}

/* The raised OSError goes to protocol.error_received(); its own failure
 * propagates (asyncio calls it unguarded). */
static int
error_received(TransportObject *self)
{
    PyObject *exc = pa_err_take();
    PyObject *res = pa_tr_call_protocol(self, pa_tr_loop(self)->state->str_error_received, &exc, 1);
    Py_DECREF(exc);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

static PyObject *
Dgram_read_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    if (self->conn_lost || self->sock == NULL) {
        Py_RETURN_NONE;
    }
    pa_state *st = pa_tr_loop(self)->state;
    Py_INCREF(self);
    int rc = 0;
    PyObject *sock = Py_NewRef(self->sock);
    PyObject *size = PyLong_FromLong(PA_MAX_READ);
    PyObject *res = size ? PyObject_CallMethodOneArg(sock, st->str_recvfrom, size) : NULL;
    Py_XDECREF(size);
    Py_DECREF(sock);
    if (res == NULL) {
        if (is_would_block()) {
            PyErr_Clear();
        } else if (PyErr_ExceptionMatches(PyExc_OSError)) {
            rc = error_received(self);
        } else {
            rc = pa_tr_fatal_error_from_raised(self, "Fatal read error on datagram transport");
        }
    } else if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 2) {
        PyErr_Format(PyExc_TypeError, "recvfrom() returned %R", res);
        rc = -1;
    } else {
        PyObject *out = pa_tr_call_protocol(self, st->str_datagram_received,
                                            &PyTuple_GET_ITEM(res, 0), 2);
        Py_XDECREF(out);
        rc = out ? 0 : -1;
    }
    Py_XDECREF(res);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether the socket is connected, as asyncio decides it: a true
 * extra['peername']. 1, 0, or -1 with an exception (Python code may have
 * replaced or deleted the `_extra` slot). */
static int
is_connected(TransportObject *self)
{
    PyObject *extra = self->extra;
    if (extra == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the transport has no _extra");
        return -1;
    }
    PyObject *key = pa_tr_loop(self)->state->str_peername;
    PyObject *peername;
    Py_INCREF(extra);
    if (PyDict_CheckExact(extra)) {
        peername = Py_XNewRef(PyDict_GetItemWithError(extra, key));
    } else {
        peername = PyObject_GetItem(extra, key);
        if (peername == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
        }
    }
    Py_DECREF(extra);
    if (peername == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    int connected = PyObject_IsTrue(peername);
    Py_DECREF(peername);
    return connected;
}

/* Send one datagram now: 1 sent, 0 would block, -1 handled by the error
 * paths of asyncio (error_received or a fatal error; also: the connection
 * was lost meanwhile, the datagram is dropped), -2 must propagate. */
static int
send_now(TransportObject *self, PyObject *data, PyObject *addr)
{
    pa_state *st = pa_tr_loop(self)->state;
    int connected = is_connected(self);
    PyObject *res = NULL;
    if (connected >= 0) {
        /* Reading _extra may have run Python code (a mapping's
         * __getitem__) that ended the connection. */
        PyObject *sock = self->sock;
        if (sock == NULL) {
            return -1;
        }
        Py_INCREF(sock);
        /* asyncio's calls, argument for argument: programs wrap or patch
         * these socket methods (to drop or count datagrams) with the
         * signatures asyncio uses. */
        res = connected ? PyObject_CallMethodObjArgs(sock, st->str_send, data, NULL)
                        : PyObject_CallMethodObjArgs(sock, st->str_sendto, data, addr, NULL);
        Py_DECREF(sock);
    }
    if (res != NULL) {
        Py_DECREF(res);
        return 1;
    }
    if (is_would_block()) {
        PyErr_Clear();
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_OSError)) {
        return error_received(self) < 0 ? -2 : -1;
    }
    return pa_tr_fatal_error_from_raised(self, "Fatal write error on datagram transport") < 0
               ? -2
               : -1;
}

/* Queue (bytes(data), addr) at the end, or (datagram already a queue item)
 * back at the front; the write buffer size counts it. */
static int
queue_datagram(TransportObject *self, PyObject *item, int at_front, Py_ssize_t len)
{
    pa_state *st = pa_tr_loop(self)->state;
    PyObject *res = PyObject_CallMethodOneArg(self->dgram_queue,
                                              at_front ? st->str_appendleft : st->str_append, item);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    self->dgram_count++;
    self->dgram_size += len + PA_DGRAM_HEADER_SIZE;
    return 0;
}

static PyObject *
Dgram_sendto(TransportObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *data, *addr = Py_None;
    static char *kwlist[] = {"data", "addr", NULL};
    if (pa_tr_check_initialised(self) < 0 ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "O|O:sendto", kwlist, &data, &addr)) {
        return NULL;
    }
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%.200s'",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    Py_ssize_t len = PyObject_Length(data);
    if (len < 0) {
        return NULL;
    }
    if (!PA_DGRAM_SENDS_EMPTY && len == 0) {
        Py_RETURN_NONE;
    }
    Py_INCREF(self);
    PyObject *result = NULL;
    PyObject *address = Py_XNewRef(self->address);
    if (address != NULL && address != Py_None) {
        int same = addr == Py_None || addr == address;
        if (!same) {
            same = PyObject_RichCompareBool(addr, address, Py_EQ);
            if (same < 0) {
                goto done;
            }
        }
        if (!same) {
            PyErr_Format(PyExc_ValueError, "Invalid address: must be None or %S", address);
            goto done;
        }
        addr = address;
        if (self->conn_lost) {
            result = pa_tr_write_after_lost(self);
            goto done;
        }
    }
    if (self->sock == NULL) {
        /* Unconnected and connection_lost ran: nowhere to send it. (asyncio
         * reports an AttributeError of its missing socket here.) */
        result = pa_tr_write_after_lost(self);
        goto done;
    }
    if (self->dgram_count == 0) {
        int rc = send_now(self, data, addr);
        if (rc == 0) {
            rc = pa_loop_watch_fd(pa_tr_loop(self), self->fd, PA_WRITABLE, self->write_ready) < 0
                     ? -2
                     : 0;
        }
        if (rc != 0) {
            result = rc == -2 ? NULL : Py_NewRef(Py_None);
            goto done;
        }
        if (self->sock == NULL) { /* lost while sending: nothing may be queued */
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    /* Queue a copy: the caller may change a bytearray afterwards. */
    PyObject *copy = PyBytes_FromObject(data);
    PyObject *item = copy ? PyTuple_Pack(2, copy, addr) : NULL;
    Py_XDECREF(copy);
    if (item == NULL) {
        goto done;
    }
    int rc = queue_datagram(self, item, 0, len);
    Py_DECREF(item);
    if (rc < 0 || pa_tr_maybe_pause_protocol(self) < 0) {
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(address);
    Py_DECREF(self);
    return result;
}

static int
sendto_ready(TransportObject *self)
{
    if (self->sock == NULL) {
        /* connection_lost ran (the queue was dropped then); the fd number
         * may belong to another file by now: leave the loop's table alone. */
        return 0;
    }
    pa_state *st = pa_tr_loop(self)->state;
    while (self->dgram_count > 0) {
        PyObject *item = PyObject_CallMethodNoArgs(self->dgram_queue, st->str_popleft);
        if (item == NULL) {
            return -1;
        }
        PyObject *data = PyTuple_GET_ITEM(item, 0), *addr = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t len = PyBytes_GET_SIZE(data);
        /* What was counted when it was queued, header included (asyncio 3.13
         * before CPython gh-135444 took the length alone away). */
        self->dgram_count--;
        self->dgram_size -= len + PA_DGRAM_HEADER_SIZE;
        int rc = send_now(self, data, addr);
        if (rc == 0 && self->sock != NULL) {
            /* Try again later, first in line. */
            rc = queue_datagram(self, item, 1, len);
            Py_DECREF(item);
            if (rc < 0) {
                return -1;
            }
            break;
        }
        Py_DECREF(item);
        if (rc < 0) {
            return rc == -2 ? -1 : 0;
        }
        if (self->sock == NULL) {
            return 0;
        }
    }
    if (pa_tr_maybe_resume_protocol(self) < 0) { /* may queue more */
        return -1;
    }
    if (self->dgram_count == 0 && self->sock != NULL) {
        if (pa_tr_unwatch(self, PA_WRITABLE) < 0) {
            return -1;
        }
        if (self->closing) {
            return pa_tr_call_connection_lost_now(self, Py_None);
        }
    }
    return 0;
}

static PyObject *
Dgram_sendto_ready(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    if (pa_tr_check_initialised(self) < 0) {
        return NULL;
    }
    Py_INCREF(self);
    int rc = sendto_ready(self);
    Py_DECREF(self);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Dgram_get_write_buffer_size(TransportObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->dgram_size);
}

/* DatagramTransportBase(loop, sock, protocol, address=None, extra=None) */
static int
Dgram_init(TransportObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *loop, *sock, *protocol, *address = Py_None, *extra = Py_None;
    static char *kwlist[] = {"loop", "sock", "protocol", "address", "extra", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|OO:DatagramTransportBase", kwlist, &loop,
                                     &sock, &protocol, &address, &extra)) {
        return -1;
    }
    self->is_dgram = 1;
    if (pa_tr_init(self, loop, sock, protocol, extra, Py_None, "_sendto_ready") < 0) {
        return -1;
    }
    PyObject *collections = PyImport_ImportModule("collections");
    PyObject *queue = collections ? PyObject_CallMethod(collections, "deque", NULL) : NULL;
    Py_XDECREF(collections);
    if (queue == NULL) {
        return -1;
    }
    Py_XSETREF(self->dgram_queue, queue);
    Py_XSETREF(self->address, Py_NewRef(address));
    if (pa_tr_own_fd(self) < 0) {
        return -1;
    }
    self->dgram_count = 0;
    self->dgram_size = 0;
    self->initialised = 1;
    return 0;
}

static PyMethodDef Dgram_methods[] = {
    {"sendto", (PyCFunction)(void (*)(void))Dgram_sendto, METH_VARARGS | METH_KEYWORDS, NULL},
    PA_TR_NOARGS("get_write_buffer_size", Dgram_get_write_buffer_size),
    PA_TR_NOARGS("_read_ready", Dgram_read_ready),
    PA_TR_NOARGS("_sendto_ready", Dgram_sendto_ready),
    PA_TR_COMMON_METHODS,
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Dgram_members[] = {
    {"_address", T_OBJECT, offsetof(TransportObject, address), READONLY, NULL},
    {"_buffer_size", T_PYSSIZET, offsetof(TransportObject, dgram_size), READONLY, NULL},
    PA_TR_COMMON_MEMBERS,
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Dgram_getset[] = {
    PA_TR_COMMON_GETSET,
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Dgram_slots[] = {
    {Py_tp_init, Dgram_init},
    {Py_tp_getset, Dgram_getset},
    {Py_tp_traverse, pa_tr_traverse},
    {Py_tp_clear, pa_tr_clear},
    {Py_tp_dealloc, pa_tr_dealloc},
    {Py_tp_finalize, pa_tr_finalize},
    {Py_tp_methods, Dgram_methods},
    {Py_tp_members, Dgram_members},
    {Py_tp_doc, "The data path of a datagram transport (see pyasync._transports)."},
    {0, NULL},
};

static PyType_Spec Dgram_spec = {
    .name = "pyasync._core.DatagramTransportBase",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Dgram_slots,
};

int
pa_dgram_transport_register_type(PyObject *module, pa_state *st)
{
    /* Both, like asyncio's own datagram transport (a Transport subclass
     * that is also a DatagramTransport from 3.12). */
    return pa_tr_register(module, &Dgram_spec, "Transport", "DatagramTransport",
                          &st->DgramTransportType);
}
