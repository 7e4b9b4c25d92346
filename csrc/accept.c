/*
 * accept.c - the accept path of a server: the callback the loop calls when
 * a listening socket is readable.
 *
 * An Acceptor accepts a batch per readiness event (up to the backlog, as
 * asyncio does) with accept4(), which makes each connection non-blocking
 * and close-on-exec in the same call. A connection (loop not in debug mode)
 * is set up here: protocol_factory(), for TLS the SSL protocol around what
 * it made (sslproto.c), a SocketTransport that
 * holds the fd and makes its socket object only when asked for it
 * (pa_tr_init_lazy), TCP_NODELAY, the server's count of connections, and
 * connection_made() and the first read scheduled as asyncio schedules them.
 * Everything else goes to Python (pyasync/_network.py): debug mode gets a
 * socket object and `on_connection(conn, addr)`; running
 * out of descriptors or memory goes to `on_resource_error(exc)`, which
 * reports it and pauses accepting for a while, as asyncio does.
 *
 * The Acceptor holds the listening socket object and checks, once per
 * readiness event, that the object still holds the fd it was made with: a
 * socket closed behind the loop's back fails as sock.accept() would (EBADF)
 * instead of accepting on whatever file took the number.
 */
#include "transport.h"
#include "sslproto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *loop;              /* a pyasync loop */
    PyObject *sock;              /* the listening socket.socket */
    PyObject *protocol_factory;
    PyObject *server;            /* asyncio.Server, or None */
    PyObject *transport_type;    /* pyasync._transports.SocketTransport */
    PyObject *on_connection;     /* (conn, addr): connections set up in Python */
    PyObject *on_resource_error; /* (exc): out of fds or memory */
    PyObject *sockname;          /* every connection's local address, where it is
                                  * the listening socket's (see Acceptor_init); NULL */
    PyObject *ssl;               /* TLS: (sslcontext, handshake_timeout, shutdown_timeout);
                                  * NULL for plain connections */
    int fd, family, socktype, proto;
    int backlog;
    char plain;                  /* set connections up here (not in debug mode) */
    char tcp;                    /* TCP_NODELAY on each connection */
} AcceptorObject;

/* The address accept() gave, as the socket module gives it: (host, port)
 * for IPv4, (host, port, flowinfo, scope_id) for IPv6, the path for a Unix
 * socket ('' for an unnamed peer, bytes for Linux's abstract namespace). */
PyObject *
pa_sockaddr_object(const struct sockaddr *addr, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    switch (addr->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        if (inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host) == NULL) {
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port),
                             (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    case AF_UNIX: {
        const struct sockaddr_un *a = (const struct sockaddr_un *)addr;
        size_t offset = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > offset ? (size_t)len - offset : 0;
        if (n > sizeof a->sun_path) {
            n = sizeof a->sun_path;
        }
        if (n > 0 && a->sun_path[0] == '\0') {
            return PyBytes_FromStringAndSize(a->sun_path, (Py_ssize_t)n);
        }
        return PyUnicode_DecodeFSDefaultAndSize(a->sun_path, (Py_ssize_t)strnlen(a->sun_path, n));
    }
    default:
        PyErr_Format(PyExc_OSError, "unexpected address family %d", (int)addr->sa_family);
        return NULL;
    }
}

/* A connection set up in C; 0, or -1 with an exception that must propagate
 * (SystemExit, KeyboardInterrupt). Like asyncio outside debug mode, a
 * connection whose set-up fails is closed and not reported. */
static int
set_up_connection(AcceptorObject *self, int conn, const struct sockaddr_storage *addr,
                  socklen_t len)
{
    pa_state *st = ((LoopObject *)self->loop)->state;
    PyObject *protocol = PyObject_CallNoArgs(self->protocol_factory);
    if (protocol != NULL && self->ssl != NULL) {
        /* TLS: the transport's protocol is the SSL protocol around it. */
        Py_SETREF(protocol, pa_sslproto_new_server(st, self->loop, protocol,
                                                   PyTuple_GET_ITEM(self->ssl, 0),
                                                   PyTuple_GET_ITEM(self->ssl, 1),
                                                   PyTuple_GET_ITEM(self->ssl, 2)));
    }
    if (protocol == NULL) {
        (void)close(conn);
        goto failed;
    }
    if (self->tcp) {
        int one = 1;
        (void)setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    PyTypeObject *tp = (PyTypeObject *)self->transport_type;
    TransportObject *tr = (TransportObject *)tp->tp_alloc(tp, 0);
    if (tr == NULL) {
        (void)close(conn);
        Py_DECREF(protocol);
        goto failed;
    }
    /* An IP peer's address is kept raw, made into 'peername' only if asked
     * for (Transport_get_extra_info); a Unix peer's is usually unnamed, and
     * its path may not fit. */
    int lazy_peer = (addr->ss_family == AF_INET || addr->ss_family == AF_INET6) &&
                    (size_t)len <= sizeof tr->peer;
    PyObject *peer = lazy_peer ? NULL : pa_sockaddr_object((const struct sockaddr *)addr, len);
    PyObject *extra = lazy_peer || peer != NULL ? PyDict_New() : NULL;
    if (extra == NULL || (peer != NULL && PyDict_SetItem(extra, st->str_peername, peer) < 0) ||
        (self->sockname != NULL && PyDict_SetItem(extra, st->str_sockname, self->sockname) < 0)) {
        Py_XDECREF(peer);
        Py_XDECREF(extra);
        (void)close(conn);
        Py_DECREF(protocol);
        Py_DECREF(tr);
        goto failed;
    }
    Py_XDECREF(peer);
    if (lazy_peer) {
        memcpy(&tr->peer, addr, (size_t)len);
        tr->peer_len = len;
    }
    int rc = pa_tr_init_lazy(tr, self->loop, conn, self->family, self->socktype, self->proto,
                             protocol, extra, self->server);
    Py_DECREF(extra);
    if (rc == 0) {
        tr->initialised = 1;
        rc = pa_tr_own_fd(tr);
    }
    if (rc == 0 && self->server != Py_None) {
        PyObject *res = pa_tr_server_call(tr, st->str_attach);
        rc = res ? 0 : -1;
        Py_XDECREF(res);
        if (rc < 0) {
            Py_CLEAR(tr->server); /* not attached: nothing to detach */
            tr->server = Py_NewRef(Py_None);
        }
    }
    if (rc == 0) {
        PyObject *made = PyObject_GetAttr(protocol, st->str_connection_made);
        PyObject *arg = (PyObject *)tr;
        rc = made ? pa_call_soon(st, self->loop, made, &arg, 1, NULL) : -1;
        Py_XDECREF(made);
    }
    if (rc == 0) {
        /* Reading starts once connection_made() has run. */
        PyObject *start = PyObject_GetAttr((PyObject *)tr, st->str_start_reading);
        rc = start ? pa_call_soon(st, self->loop, start, NULL, 0, NULL) : -1;
        Py_XDECREF(start);
    }
    Py_DECREF(protocol);
    if (rc < 0) {
        /* The transport holds the fd (pa_tr_init_lazy closed it otherwise):
         * close it as a finaliser would, without connection_lost(). */
        PyObject *exc = pa_err_take();
        PyObject *res = pa_tr_m_close_unclosed(tr, NULL);
        Py_XDECREF(res);
        PyErr_Clear();
        pa_err_restore(exc);
        Py_DECREF(tr);
        goto failed;
    }
    Py_DECREF(tr);
    return 0;

failed:
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyErr_Clear();
    return 0;
}

/* asyncio sets each connection up in a task of its own, which runs in a
 * copy of the context the server started serving in (the one this callback
 * runs in): protocol_factory() runs in that copy, and connection_made() and
 * the reads in copies of it (pa_call_soon() with no context copies the
 * current one; an empty one costs no object). So a context variable set
 * before the server started is seen by its protocols (uvicorn's tests check
 * it), and one set by a protocol_factory() stays with its connection. */
static int
serve_here(AcceptorObject *self, int conn, const struct sockaddr_storage *addr, socklen_t len)
{
    PyObject *ctx = PyContext_CopyCurrent();
    if (ctx == NULL || PyContext_Enter(ctx) < 0) {
        Py_XDECREF(ctx);
        (void)close(conn);
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyErr_Clear(); /* as a failed set-up: not reported */
        return 0;
    }
    int rc = set_up_connection(self, conn, addr, len);
    PyObject *exc = pa_err_take();
    if (PyContext_Exit(ctx) < 0) {
        PyErr_Clear(); /* cannot fail: ctx is the current context */
    }
    pa_err_restore(exc);
    Py_DECREF(ctx);
    return rc;
}

/* A connection handed to Python with its socket object. */
static int
serve_in_python(AcceptorObject *self, int conn, PyObject *addr)
{
    pa_state *st = ((LoopObject *)self->loop)->state;
    PyObject *sock = PyObject_CallFunction(st->socket_class, "iiii", self->family,
                                           self->socktype | SOCK_NONBLOCK, self->proto, conn);
    if (sock == NULL) {
        (void)close(conn);
        return -1;
    }
    PyObject *args[2] = {sock, addr};
    PyObject *res = PyObject_Vectorcall(self->on_connection, args, 2, NULL);
    Py_DECREF(sock);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

static int
still_listening(AcceptorObject *self)
{
    pa_state *st = ((LoopObject *)self->loop)->state;
    PyObject *fdobj = PyObject_CallMethodNoArgs(self->sock, st->str_fileno);
    if (fdobj == NULL) {
        return -1;
    }
    long fd = PyLong_AsLong(fdobj);
    Py_DECREF(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (fd != self->fd) {
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static PyObject *
Acceptor_call(AcceptorObject *self, PyObject *const *Py_UNUSED(args), size_t nargsf,
              PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "an Acceptor takes no arguments");
        return NULL;
    }
    if (self->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Acceptor is not initialized");
        return NULL;
    }
    if (still_listening(self) < 0) {
        return NULL;
    }
    Py_INCREF(self); /* a callback may drop the last other reference */
    PyObject *result = Py_None;
    for (int i = 0; i < self->backlog; i++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int conn = accept4(self->fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) {
            int err = errno;
            if (err == EINTR) {
                continue; /* as sock.accept() retries (PEP 475) */
            }
            if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) {
                break; /* nothing more to accept now, or the peer gave up */
            }
            PyObject *exc = pa_tr_oserror(err);
            if (exc == NULL) {
                result = NULL;
            } else if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                /* Out of descriptors or memory: Python reports it and stops
                 * accepting for a while. */
                PyObject *res = PyObject_CallOneArg(self->on_resource_error, exc);
                Py_XDECREF(res);
                result = res ? Py_None : NULL;
            } else {
                /* The listening socket itself failed: the handler reports it. */
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
                result = NULL;
            }
            Py_XDECREF(exc);
            break;
        }
        int rc;
        if (self->plain && !((LoopObject *)self->loop)->debug) {
            rc = serve_here(self, conn, &addr, len);
        } else {
            PyObject *peer = pa_sockaddr_object((const struct sockaddr *)&addr, len);
            if (peer == NULL) {
                (void)close(conn);
                result = NULL;
                break;
            }
            rc = serve_in_python(self, conn, peer);
            Py_DECREF(peer);
        }
        if (rc < 0) {
            result = NULL;
            break;
        }
        if (self->loop == NULL || ((LoopObject *)self->loop)->closed) {
            break; /* a callback cleared us or closed the loop */
        }
    }
    Py_DECREF(self);
    return Py_XNewRef(result);
}

/* Acceptor(loop, sock, protocol_factory, server, backlog, transport_type,
 *          on_connection, on_resource_error, plain, ssl=None)
 * plain: set connections up here; ssl: (sslcontext, handshake_timeout,
 * shutdown_timeout) for a TLS server. */
static int
Acceptor_init(AcceptorObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *loop, *sock, *factory, *server, *tp, *on_connection, *on_resource_error;
    PyObject *ssl = Py_None;
    int backlog, plain;
    static char *kwlist[] = {"loop", "sock", "protocol_factory", "server", "backlog",
                             "transport_type", "on_connection", "on_resource_error", "plain",
                             "ssl", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOiOOOp|O:Acceptor", kwlist, &loop, &sock,
                                     &factory, &server, &backlog, &tp, &on_connection,
                                     &on_resource_error, &plain, &ssl)) {
        return -1;
    }
    if (ssl != Py_None && (!PyTuple_Check(ssl) || PyTuple_GET_SIZE(ssl) != 3)) {
        PyErr_SetString(PyExc_TypeError,
                        "ssl must be (sslcontext, handshake_timeout, shutdown_timeout) or None");
        return -1;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    if (st == NULL || pa_check_ready(st) < 0) {
        return -1;
    }
    if (!pa_loop_check(st, loop)) {
        PyErr_Format(PyExc_TypeError, "a pyasync loop is required, got %R", loop);
        return -1;
    }
    if (!PyType_Check(tp) || !PyType_IsSubtype((PyTypeObject *)tp, st->TransportType)) {
        PyErr_Format(PyExc_TypeError, "transport_type must be a StreamTransportBase subclass");
        return -1;
    }
    int values[4];
    static const char *names[4] = {"fileno", "family", "type", "proto"};
    for (int i = 0; i < 4; i++) {
        PyObject *v = i == 0 ? PyObject_CallMethodNoArgs(sock, st->str_fileno)
                             : PyObject_GetAttrString(sock, names[i]);
        long n = v ? PyLong_AsLong(v) : -1;
        Py_XDECREF(v);
        if (n == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (n < 0 || n > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "bad %s for a listening socket: %ld", names[i], n);
            return -1;
        }
        values[i] = (int)n;
    }
    if (backlog < 1) {
        backlog = 1;
    }
    Py_XSETREF(self->loop, Py_NewRef(loop));
    Py_XSETREF(self->sock, Py_NewRef(sock));
    Py_XSETREF(self->protocol_factory, Py_NewRef(factory));
    Py_XSETREF(self->server, Py_NewRef(server));
    Py_XSETREF(self->transport_type, Py_NewRef(tp));
    Py_XSETREF(self->on_connection, Py_NewRef(on_connection));
    Py_XSETREF(self->on_resource_error, Py_NewRef(on_resource_error));
    Py_XSETREF(self->ssl, ssl == Py_None ? NULL : Py_NewRef(ssl));
    self->fd = values[0];
    self->family = values[1];
    self->socktype = values[2];
    self->proto = values[3];
    self->backlog = backlog;
    /* Connections set up in C need an address we can convert. */
    self->plain = plain && (self->family == AF_INET || self->family == AF_INET6 ||
                            self->family == AF_UNIX);
    self->tcp = (self->family == AF_INET || self->family == AF_INET6) &&
                self->socktype == SOCK_STREAM &&
                (self->proto == IPPROTO_TCP || self->proto == 0);
    /* A connection's local address is the listening socket's for a Unix
     * socket and for a TCP socket bound to one address (not 0.0.0.0 or
     * ::): given to each transport at once, it stays known after the
     * transport closed, as asyncio's does. Otherwise it is asked of the
     * connection's socket, when first wanted. */
    Py_CLEAR(self->sockname);
    PyObject *local = PyObject_CallMethod(sock, "getsockname", NULL);
    if (local == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) {
            return -1;
        }
        PyErr_Clear();
    } else if (self->family == AF_UNIX) {
        self->sockname = local;
    } else if (PyTuple_Check(local) && PyTuple_GET_SIZE(local) >= 2 &&
               PyUnicode_Check(PyTuple_GET_ITEM(local, 0))) {
        const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(local, 0));
        if (host == NULL) {
            Py_DECREF(local);
            return -1;
        }
        if (strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0) {
            self->sockname = local;
        } else {
            Py_DECREF(local);
        }
    } else {
        Py_DECREF(local);
    }
    self->vectorcall = (vectorcallfunc)Acceptor_call;
    return 0;
}

static int
Acceptor_traverse(AcceptorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->sock);
    Py_VISIT(self->protocol_factory);
    Py_VISIT(self->server);
    Py_VISIT(self->transport_type);
    Py_VISIT(self->on_connection);
    Py_VISIT(self->on_resource_error);
    Py_VISIT(self->sockname);
    Py_VISIT(self->ssl);
    return 0;
}

static int
Acceptor_clear(AcceptorObject *self)
{
    Py_CLEAR(self->loop);
    Py_CLEAR(self->sock);
    Py_CLEAR(self->protocol_factory);
    Py_CLEAR(self->server);
    Py_CLEAR(self->transport_type);
    Py_CLEAR(self->on_connection);
    Py_CLEAR(self->on_resource_error);
    Py_CLEAR(self->sockname);
    Py_CLEAR(self->ssl);
    return 0;
}

static void
Acceptor_dealloc(AcceptorObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)Acceptor_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
Acceptor_repr(AcceptorObject *self)
{
    return PyUnicode_FromFormat("<Acceptor fd=%d plain=%d>", self->fd, (int)self->plain);
}

static PyObject *
Acceptor_tp_call(AcceptorObject *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "an Acceptor takes no arguments");
        return NULL;
    }
    return Acceptor_call(self, NULL, 0, NULL);
}

static PyMemberDef Acceptor_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(AcceptorObject, vectorcall), READONLY, NULL},
    {"_sock", T_OBJECT, offsetof(AcceptorObject, sock), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Acceptor_slots[] = {
    {Py_tp_init, Acceptor_init},
    {Py_tp_call, Acceptor_tp_call},
    {Py_tp_traverse, Acceptor_traverse},
    {Py_tp_clear, Acceptor_clear},
    {Py_tp_dealloc, Acceptor_dealloc},
    {Py_tp_repr, Acceptor_repr},
    {Py_tp_members, Acceptor_members},
    {Py_tp_doc, "A listening socket's reader callback: accepts and sets connections up."},
    {0, NULL},
};

static PyType_Spec Acceptor_spec = {
    .name = "pyasync._core.Acceptor",
    .basicsize = sizeof(AcceptorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = Acceptor_slots,
};

int
pa_acceptor_register_type(PyObject *module, pa_state *Py_UNUSED(st))
{
    PyObject *type = PyType_FromModuleAndSpec(module, &Acceptor_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int rc = PyModule_AddType(module, (PyTypeObject *)type);
    Py_DECREF(type);
    return rc;
}
