/*
 * sslproto_data.c - the SSL protocol's data paths, in both directions
 * (the state machine they serve is sslproto.c):
 *   - writing: the application's writes go through sslobj.write() into the
 *     outgoing BIO, whose bytes go to the transport below; what the SSL
 *     object cannot take yet waits in a backlog, with asyncio's flow
 *     control of the application's writes;
 *   - reading: what the transport below received goes into the incoming
 *     BIO; the plaintext goes to the application, copied into bytes for a
 *     Protocol, into the application's own buffer for a BufferedProtocol;
 *     a close_notify from the peer ends reading with eof_received() and
 *     the shutdown. The transport below stops reading while the incoming
 *     BIO holds more than the read limit, as asyncio's does.
 * See sslproto.c's opening comment for where this differs from asyncio in
 * how (never in what).
 */
#include "sslproto.h"
#include "loop.h"
#include "transport.h"

/* ------------------------------------------------------------ writing */

/* Flow control of the application's writes. */
int
pa_sslproto_control_app_writing(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    Py_ssize_t size = pa_sslproto_write_buffer_size(self);
    if (size < 0) {
        return -1;
    }
    PyObject *name, *message;
    if (size >= self->outgoing_high && !self->app_writing_paused) {
        self->app_writing_paused = 1;
        name = st->str_pause_writing;
        message = NULL;
    } else if (size <= self->outgoing_low && self->app_writing_paused) {
        self->app_writing_paused = 0;
        name = st->str_resume_writing;
    } else {
        return 0;
    }
    PyObject *res = pa_ssl_app_call(self, name, NULL);
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    if (pa_tr_is_fatal_exception()) {
        return -1;
    }
    PyObject *exc = pa_err_take();
    message = PyUnicode_FromFormat("protocol.%U() failed", name);
    PyObject *context =
        message ? Py_BuildValue("{s:O,s:O,s:O,s:O}", "message", message, "exception", exc,
                                "transport", self->app_transport ? self->app_transport : Py_None,
                                "protocol", (PyObject *)self)
                : NULL;
    Py_DECREF(exc);
    Py_XDECREF(message);
    res = context ? pa_ssl_call1(self->loop, st->str_call_exception_handler, context) : NULL;
    Py_XDECREF(context);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* Send what the SSL object wrote into the outgoing BIO. */
int
pa_ssl_process_outgoing(SSLProtocolObject *self)
{
    if (!self->ssl_writing_paused) {
        pa_ssl_names *n = pa_ssl_names_of(self);
        PyObject *data = pa_ssl_call0(self->outgoing, n->str_read);
        if (data == NULL) {
            return -1;
        }
        int rc = 0;
        if (PyBytes_GET_SIZE(data) > 0) {
            rc = pa_ssl_transport_call_void(self, n->str_write, data);
        }
        Py_DECREF(data);
        if (rc < 0) {
            return -1;
        }
    }
    return pa_sslproto_control_app_writing(self);
}

/* sslobj.write(data): the count written, or -1 with an exception. */
static Py_ssize_t
ssl_write(SSLProtocolObject *self, PyObject *data)
{
    PyObject *res = pa_ssl_call1(self->sslcore, pa_ssl_names_of(self)->str_write, data);
    if (res == NULL) {
        return -1;
    }
    Py_ssize_t count = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    if (count < 0 && !PyErr_Occurred()) {
        count = 0;
    }
    return count;
}

/* The backlog into the SSL object, then out. 0, or -1 with an exception
 * that is not one of SSLAgainErrors. */
int
pa_ssl_do_write(SSLProtocolObject *self)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    while (self->backlog != NULL && PyList_GET_SIZE(self->backlog) > 0) {
        PyObject *data = Py_NewRef(PyList_GET_ITEM(self->backlog, 0));
        Py_ssize_t count = ssl_write(self, data);
        Py_ssize_t data_len = count < 0 ? -1 : PyObject_Size(data);
        if (count < 0 || data_len < 0) {
            Py_DECREF(data);
            if (pa_ssl_again_error_raised(n)) {
                PyErr_Clear();
                break;
            }
            return -1;
        }
        /* sslobj.write() may have run Python code (a subclass) that changed
         * the backlog: only touch it if data is still its head. */
        if (PyList_GET_SIZE(self->backlog) == 0 || PyList_GET_ITEM(self->backlog, 0) != data) {
            Py_DECREF(data);
            continue;
        }
        if (count < data_len) {
            PyObject *rest = PySequence_GetSlice(data, count, PY_SSIZE_T_MAX);
            if (rest == NULL) {
                Py_DECREF(data);
                return -1;
            }
            PyList_SetItem(self->backlog, 0, rest); /* steals rest, drops data's list ref */
            self->write_buffer_size -= count;
        } else {
            if (PySequence_DelItem(self->backlog, 0) < 0) {
                Py_DECREF(data);
                return -1;
            }
            self->write_buffer_size -= data_len;
        }
        Py_DECREF(data);
    }
    return pa_ssl_process_outgoing(self);
}

static int
append_backlog(SSLProtocolObject *self, PyObject *data)
{
    Py_ssize_t len = PyObject_Size(data);
    if (len < 0 || PyList_Append(self->backlog, data) < 0) {
        return -1;
    }
    self->write_buffer_size += len;
    return 0;
}

int
pa_sslproto_write_appdata(SSLProtocolObject *self, PyObject *list_of_data)
{
    pa_ssl_state s = self->state;
    if (s == PA_SSL_FLUSHING || s == PA_SSL_SHUTDOWN || s == PA_SSL_UNWRAPPED) {
        if (self->conn_lost >= pa_ssl_names_of(self)->log_threshold &&
            pa_ssl_log(self, "warning", "SSL connection is closed", NULL, 0) < 0) {
            return -1;
        }
        self->conn_lost++;
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    /* write(data) passes (data,): with nothing queued it goes straight into
     * the SSL object, and only what it did not take is queued. */
    PyObject *data = PyTuple_CheckExact(list_of_data) && PyTuple_GET_SIZE(list_of_data) == 1
                         ? PyTuple_GET_ITEM(list_of_data, 0)
                         : NULL;
    if (data == NULL || self->state != PA_SSL_WRAPPED || PyList_GET_SIZE(self->backlog) > 0) {
        PyObject *it = PyObject_GetIter(list_of_data);
        if (it == NULL) {
            rc = -1;
        } else {
            PyObject *item;
            while (rc == 0 && (item = PyIter_Next(it)) != NULL) {
                rc = append_backlog(self, item);
                Py_DECREF(item);
            }
            Py_DECREF(it);
            if (rc == 0 && PyErr_Occurred()) {
                rc = -1;
            }
        }
        if (rc < 0) {
            goto done;
        }
    } else {
        Py_ssize_t len = PyObject_Size(data);
        Py_ssize_t count = len < 0 ? -1 : ssl_write(self, data);
        if (count < 0) {
            if (pa_ssl_again_error_raised(pa_ssl_names_of(self))) {
                PyErr_Clear();
                if (append_backlog(self, data) < 0) {
                    rc = -1;
                    goto done;
                }
                rc = pa_ssl_process_outgoing(self);
            } else {
                rc = -1;
            }
        } else if (count < len) {
            PyObject *rest = PySequence_GetSlice(data, count, PY_SSIZE_T_MAX);
            rc = rest ? append_backlog(self, rest) : -1;
            Py_XDECREF(rest);
            if (rc == 0) {
                rc = pa_ssl_do_write(self);
            }
        } else {
            rc = pa_ssl_process_outgoing(self);
        }
        if (rc < 0) {
            rc = pa_ssl_fatal_error_from_raised(self, "Fatal error on SSL protocol");
        }
        goto done;
    }
    if (self->state == PA_SSL_WRAPPED && pa_ssl_do_write(self) < 0) {
        rc = pa_ssl_fatal_error_from_raised(self, "Fatal error on SSL protocol");
    }
done:
    Py_DECREF(self);
    return rc;
}

/* ------------------------------------------------------------ reading */

int
pa_ssl_call_eof_received(SSLProtocolObject *self)
{
    if (self->app_state != PA_APP_CON_MADE) {
        return 0;
    }
    self->app_state = PA_APP_EOF;
    PyObject *keep_open = pa_ssl_app_call(self, pa_ssl_state_of(self)->str_eof_received, NULL);
    if (keep_open == NULL) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = pa_ssl_fatal_error(self, exc, "Error calling eof_received()");
        Py_DECREF(exc);
        return rc;
    }
    int truth = PyObject_IsTrue(keep_open);
    Py_DECREF(keep_open);
    if (truth > 0) {
        truth = pa_ssl_log(self, "warning",
                       "returning true from eof_received() has no effect when using ssl", NULL, 0);
    }
    if (truth < 0) {
        if (pa_tr_is_fatal_exception()) {
            return -1;
        }
        PyObject *exc = pa_err_take();
        int rc = pa_ssl_fatal_error(self, exc, "Error calling eof_received()");
        Py_DECREF(exc);
        return rc;
    }
    return 0;
}

/* Whether another read could only raise SSLWantReadError (see the top of
 * the file). */
static int
nothing_to_read(SSLProtocolObject *self)
{
    if (!self->sslcore_is_raw) {
        return 0;
    }
    pa_ssl_names *n = pa_ssl_names_of(self);
    Py_ssize_t in = pa_ssl_bio_pending(n, self->incoming);
    if (in != 0) {
        if (in < 0) {
            PyErr_Clear(); /* the read will tell */
        }
        return 0;
    }
    PyObject *p = pa_ssl_call0(self->sslcore, n->str_pending);
    if (p == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t pending = PyLong_AsSsize_t(p);
    Py_DECREF(p);
    if (pending < 0) {
        PyErr_Clear();
    }
    return pending == 0;
}

/* sslobj.read(want, buffer): 1 with *count (>= 0; 0 is close_notify), 0
 * when it raised one of SSLAgainErrors (nothing more to read now), -1 with
 * an exception. */
static int
read_into(SSLProtocolObject *self, Py_ssize_t want, PyObject *buffer, Py_ssize_t *count)
{
    pa_ssl_names *n = pa_ssl_names_of(self);
    PyObject *want_obj = PyLong_FromSsize_t(want);
    if (want_obj == NULL) {
        return -1;
    }
    PyObject *args[3] = {self->sslcore, want_obj, buffer};
    PyObject *res = PyObject_VectorcallMethod(n->str_read, args,
                                              3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(want_obj);
    if (res == NULL) {
        if (pa_ssl_again_error_raised(n)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    *count = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    if (*count < 0 || *count > want) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_RuntimeError, "SSLObject.read() returned %zd", *count);
        }
        return -1;
    }
    return 1;
}

/* Records after the first, read straight into one bytes object that
 * starts with `first`: no bytes per record and no join. Its size is an
 * upper bound of what can still be read: the plaintext of what the BIO
 * holds, plus one record that OpenSSL may hold in part. 1 with *data (a
 * new reference) and *eof set, or -1 with an exception. */
static int
read_rest(SSLProtocolObject *self, PyObject *first, PyObject **data, int *eof)
{
    Py_ssize_t in = pa_ssl_bio_pending(pa_ssl_names_of(self), self->incoming);
    if (in < 0) {
        return -1;
    }
    Py_ssize_t off = PyBytes_GET_SIZE(first);
    Py_ssize_t cap = off + in + SSL_RECORD_MAX;
    PyObject *buf = PyBytes_FromStringAndSize(NULL, cap);
    if (buf == NULL) {
        return -1;
    }
    memcpy(PyBytes_AS_STRING(buf), PyBytes_AS_STRING(first), (size_t)off);
    for (;;) {
        if (off == cap) {
            /* not expected (see above); grow rather than trust it */
            cap += SSL_RECORD_MAX;
            if (_PyBytes_Resize(&buf, cap) < 0) {
                return -1;
            }
        }
        PyObject *view =
            PyMemoryView_FromMemory(PyBytes_AS_STRING(buf) + off, cap - off, PyBUF_WRITE);
        Py_ssize_t count = 0;
        int got = view ? read_into(self, cap - off, view, &count) : -1;
        /* buf may be resized: no view of it may outlive the read (a
         * traceback of an SSLObject subclass's read() may hold one) */
        if (view != NULL && Py_REFCNT(view) > 1) {
            PyObject *exc = pa_err_take();
            PyObject *released = PyObject_CallMethod(view, "release", NULL);
            if (released == NULL) {
                Py_XDECREF(exc);
                got = -1;
            } else {
                Py_DECREF(released);
                pa_err_restore(exc);
            }
        }
        Py_XDECREF(view);
        if (got < 0) {
            Py_DECREF(buf);
            return -1;
        }
        if (got == 0) {
            break;
        }
        if (count == 0) {
            *eof = 1;
            break;
        }
        off += count;
        if (nothing_to_read(self)) {
            break;
        }
    }
    if (off != cap && _PyBytes_Resize(&buf, off) < 0) {
        return -1;
    }
    *data = buf;
    return 1;
}

/* sslobj.read() until it has nothing more; data_received() with what was
 * read, in one piece. */
static int
do_read_copied(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    /* One read gives at most one record, whose plaintext is at most 16 KiB
     * (TLS's limit): asking for that much, not asyncio's max_size, spares
     * the allocation of 256 KiB per record. */
    PyObject *size = PyLong_FromSsize_t(SSL_RECORD_MAX);
    if (size == NULL) {
        return -1;
    }
    PyObject *data = pa_ssl_call1(self->sslcore, n->str_read, size);
    Py_DECREF(size);
    int eof = 0;
    if (data == NULL) {
        if (!pa_ssl_again_error_raised(n)) {
            return -1;
        }
        PyErr_Clear();
    } else if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "SSLObject.read() returned %.200s, not bytes",
                     Py_TYPE(data)->tp_name);
        Py_DECREF(data);
        return -1;
    } else if (PyBytes_GET_SIZE(data) == 0) {
        Py_CLEAR(data);
        eof = 1;
    } else if (!nothing_to_read(self)) {
        PyObject *all;
        int rc = read_rest(self, data, &all, &eof);
        Py_DECREF(data);
        if (rc < 0) {
            return -1;
        }
        data = all;
    }
    if (data != NULL) {
        PyObject *res = pa_ssl_app_call(self, st->str_data_received, data);
        Py_DECREF(data);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (eof) {
        if (pa_ssl_call_eof_received(self) < 0 || pa_sslproto_start_shutdown(self) < 0) {
            return -1;
        }
    }
    return 0;
}

/* sslobj.read(n, buffer) into the app's get_buffer(); buffer_updated(). */
static int
do_read_buffered(SSLProtocolObject *self)
{
    pa_state *st = pa_ssl_state_of(self);
    pa_ssl_names *n = pa_ssl_names_of(self);
    Py_ssize_t hint = pa_sslproto_read_buffer_size(self);
    if (hint < 0) {
        return -1;
    }
    PyObject *hint_obj = PyLong_FromSsize_t(hint);
    PyObject *buf = hint_obj ? pa_ssl_app_call(self, st->str_get_buffer, hint_obj) : NULL;
    Py_XDECREF(hint_obj);
    if (buf == NULL) {
        return -1;
    }
    Py_ssize_t wants = PyObject_Size(buf);
    if (wants < 0) {
        Py_DECREF(buf);
        return -1;
    }
    Py_ssize_t offset = 0, count = 1;
    PyObject *target = Py_NewRef(buf);
    /* The rest of a read goes into memoryview(buf)[offset:]: asyncio slices
     * buf itself, which for a bytearray is a copy, and loses those bytes. */
    PyObject *view = PyMemoryView_FromObject(buf);
    if (view == NULL) {
        Py_DECREF(target);
        Py_DECREF(buf);
        return -1;
    }
    Py_SETREF(buf, view);
    for (;;) {
        int got = read_into(self, wants - offset, target, &count);
        Py_CLEAR(target);
        if (got < 0) {
            Py_DECREF(buf);
            return -1;
        }
        if (got == 0) {
            break;
        }
        if (count <= 0) {
            break;
        }
        offset += count;
        if (offset >= wants) {
            /* The app's buffer is full: the rest waits for the next round. */
            if (pa_ssl_call_soon_method(self, n->str_do_read) < 0) {
                Py_DECREF(buf);
                return -1;
            }
            break;
        }
        if (nothing_to_read(self)) {
            break;
        }
        PyObject *start = PyLong_FromSsize_t(offset);
        PyObject *slice = start ? PySlice_New(start, NULL, NULL) : NULL;
        Py_XDECREF(start);
        target = slice ? PyObject_GetItem(buf, slice) : NULL;
        Py_XDECREF(slice);
        if (target == NULL) {
            Py_DECREF(buf);
            return -1;
        }
    }
    Py_DECREF(buf);
    if (offset > 0) {
        PyObject *nbytes = PyLong_FromSsize_t(offset);
        PyObject *res = nbytes ? pa_ssl_app_call(self, st->str_buffer_updated, nbytes) : NULL;
        Py_XDECREF(nbytes);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    if (count == 0) {
        /* close_notify */
        if (pa_ssl_call_eof_received(self) < 0 || pa_sslproto_start_shutdown(self) < 0) {
            return -1;
        }
    }
    return 0;
}

int
pa_sslproto_control_ssl_reading(SSLProtocolObject *self)
{
    Py_ssize_t size = pa_sslproto_read_buffer_size(self);
    if (size < 0) {
        return -1;
    }
    pa_ssl_names *n = pa_ssl_names_of(self);
    if (size >= self->incoming_high && !self->ssl_reading_paused) {
        self->ssl_reading_paused = 1;
        return pa_ssl_transport_call_void(self, n->str_pause_reading, NULL);
    }
    if (size <= self->incoming_low && self->ssl_reading_paused) {
        self->ssl_reading_paused = 0;
        return pa_ssl_transport_call_void(self, n->str_resume_reading, NULL);
    }
    return 0;
}

int
pa_ssl_do_read(SSLProtocolObject *self)
{
    if (self->state != PA_SSL_WRAPPED && self->state != PA_SSL_FLUSHING) {
        return 0;
    }
    Py_INCREF(self);
    int rc = 0;
    if (!self->app_reading_paused) {
        rc = self->app_is_buffer ? do_read_buffered(self) : do_read_copied(self);
        if (rc == 0) {
            rc = PyList_GET_SIZE(self->backlog) > 0 ? pa_ssl_do_write(self)
                                                    : pa_ssl_process_outgoing(self);
        }
    }
    if (rc == 0) {
        rc = pa_sslproto_control_ssl_reading(self);
    }
    if (rc < 0) {
        rc = pa_ssl_fatal_error_from_raised(self, "Fatal error on SSL protocol");
    }
    Py_DECREF(self);
    return rc;
}

/* What arrived from the peer is in the incoming BIO: move on. */
int
pa_ssl_on_data_in(SSLProtocolObject *self)
{
    switch (self->state) {
    case PA_SSL_DO_HANDSHAKE:
        return pa_ssl_do_handshake(self);
    case PA_SSL_WRAPPED:
        return pa_ssl_do_read(self);
    case PA_SSL_FLUSHING:
        return pa_ssl_do_flush(self);
    case PA_SSL_SHUTDOWN:
        return pa_ssl_do_shutdown(self);
    default:
        return 0;
    }
}

int
pa_sslproto_data_in(SSLProtocolObject *self, const char *data, Py_ssize_t n)
{
    PyObject *view = PyMemoryView_FromMemory((char *)data, n, PyBUF_READ);
    if (view == NULL) {
        return -1;
    }
    PyObject *res = pa_ssl_call1(self->incoming, pa_ssl_names_of(self)->str_write, view);
    /* The memory is the transport's scratch buffer: the view must not
     * outlive this call (MemoryBIO.write() keeps no reference; release it
     * if anything else does). */
    if (Py_REFCNT(view) > 1) {
        PyObject *released = PyObject_CallMethod(view, "release", NULL);
        if (released == NULL) {
            Py_DECREF(view);
            Py_XDECREF(res);
            return -1;
        }
        Py_DECREF(released);
    }
    Py_DECREF(view);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    Py_INCREF(self);
    int rc = pa_ssl_on_data_in(self);
    Py_DECREF(self);
    return rc;
}

int
pa_sslproto_resume_reading(SSLProtocolObject *self)
{
    if (!self->app_reading_paused) {
        return 0;
    }
    self->app_reading_paused = 0;
    return pa_ssl_call_soon_method(self, pa_ssl_names_of(self)->str_resume);
}

PyObject *
pa_sslproto_get_extra_info(SSLProtocolObject *self, PyObject *name, PyObject *dflt)
{
    PyObject *v = PyDict_GetItemWithError(self->extra, name);
    if (v != NULL) {
        return Py_NewRef(v);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (self->transport != NULL) {
        PyObject *tr = Py_NewRef(self->transport);
        PyObject *args[3] = {tr, name, dflt};
        PyObject *res = PyObject_VectorcallMethod(pa_ssl_names_of(self)->str_get_extra_info, args,
                                                  3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(tr);
        return res;
    }
    return Py_NewRef(dflt);
}
