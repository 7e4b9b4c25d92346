/*
 * iowatch.c - add_reader/add_writer and the fd-indexed watcher table.
 *
 * The loop owns one pa_io_watch per fd (reader handle, writer handle, and the
 * interest mask the poller was told). The poller only reports readiness; this
 * file turns readiness into queued handles. Semantics follow asyncio's
 * selector loop: a new reader replaces and cancels the old one, removal
 * reports whether a callback was registered, and a cancelled handle found at
 * dispatch time unregisters its fd.
 *
 * Like a selector's keys, each watcher remembers the object it was
 * registered with. A socket closed while registered has no fd any more
 * (fileno() is -1), so remove_reader(sock) finds its watcher by identity, as
 * selectors' _fileobj_lookup() does; the kernel already forgot that file, so
 * its interest is withdrawn without fuss. The fd number is then free for the
 * next file: adding a watcher through add_reader()/add_writer() always
 * renews the kernel's registration, and so does a transport taking over an
 * fd for which the table still records an interest (pa_loop_claim_fd):
 * whoever left it, a watcher registered through a file object or a
 * transport whose socket was closed without the loop, the registration may
 * have gone with a file closed behind the loop's back. Transports close
 * their sockets through the loop, their finaliser too.
 *
 * An fd is checked to be open before the table grows for it: the table
 * stays under twice the highest open fd watched.
 */
#include "handle.h"
#include "loop.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The fd of an int or of an object with fileno(), like selectors does: -1
 * with ValueError for a negative number or an object without a usable
 * fileno(). A number beyond any fd (past INT_MAX) sets *too_large and
 * returns -1 with no exception: asyncio's selector fails to register it
 * (OverflowError) and never finds it registered. */
static int
fileobj_to_fd(PyObject *fileobj, int *too_large)
{
    *too_large = 0;
    PyObject *num;
    if (PyLong_Check(fileobj)) {
        num = Py_NewRef(fileobj);
    } else {
        PyObject *res = PyObject_CallMethod(fileobj, "fileno", NULL);
        num = res ? PyNumber_Index(res) : NULL;
        Py_XDECREF(res);
        if (num == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError) ||
                PyErr_ExceptionMatches(PyExc_TypeError) ||
                PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "Invalid file object: %R", fileobj);
            }
            return -1;
        }
    }
    int overflow;
    long fd = PyLong_AsLongAndOverflow(num, &overflow);
    if (fd == -1 && PyErr_Occurred()) {
        Py_DECREF(num);
        return -1;
    }
    if (overflow > 0 || (overflow == 0 && fd > INT_MAX)) {
        Py_DECREF(num);
        *too_large = 1;
        return -1;
    }
    if (overflow < 0 || fd < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %R", num);
        Py_DECREF(num);
        return -1;
    }
    Py_DECREF(num);
    return (int)fd;
}

/* Where fileobj is watched, like selectors' _fileobj_lookup(): its fd, or
 * for an object without one any more (a socket closed while registered) the
 * fd of a watcher registered with that very object; *gone says which. -1
 * with the ValueError of fileobj_to_fd() when neither, or with no exception
 * and *too_large set for a number no fd can have. */
static int
lookup_fd(LoopObject *self, PyObject *fileobj, int *gone, int *too_large)
{
    *gone = 0;
    int fd = fileobj_to_fd(fileobj, too_large);
    if (fd >= 0 || *too_large || !PyErr_ExceptionMatches(PyExc_ValueError)) {
        return fd;
    }
    /* O(table size), only for objects that lost their fd. */
    for (int i = 0; i < self->io_capacity; i++) {
        if (self->io[i].reader_file == fileobj || self->io[i].writer_file == fileobj) {
            PyErr_Clear();
            *gone = 1;
            return i;
        }
    }
    return -1;
}

/* OSError (EBADF) unless fd is open, as the selector's register() raises:
 * checked before the table grows for it, and for the poll() backend, which
 * would take any number. */
static int
check_fd_is_open(int fd)
{
    if (fcntl(fd, F_GETFD) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* Room in the table for fd, which the caller knows to be open: the kernel
 * bounds open fds (fs.nr_open), so growing by doubling keeps the table under
 * twice the highest fd watched. The arithmetic is checked, for the count
 * (an int) as for the size in bytes. */
static int
ensure_capacity(LoopObject *self, int fd)
{
    if (fd < self->io_capacity) {
        return 0;
    }
    if (fd == INT_MAX) {
        PyErr_NoMemory(); /* a capacity past it is no int */
        return -1;
    }
    int newcap = self->io_capacity ? self->io_capacity : 64;
    while (newcap <= fd) {
        newcap = newcap <= INT_MAX / 2 ? newcap * 2 : INT_MAX;
    }
    if ((size_t)newcap > SIZE_MAX / sizeof(pa_io_watch)) {
        PyErr_NoMemory();
        return -1;
    }
    pa_io_watch *io = realloc(self->io, (size_t)newcap * sizeof(pa_io_watch));
    if (io == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(io + self->io_capacity, 0, (size_t)(newcap - self->io_capacity) * sizeof(pa_io_watch));
    self->io = io;
    self->io_capacity = newcap;
    return 0;
}

/* Tell the poller the interest for fd if it changed, or anyway when `renew`
 * or the slot asks for it (the file behind the fd may not be the one
 * registered): the backend then registers the fd as it is now, adding it or
 * modifying the registration it finds. */
static int
set_interest(LoopObject *self, int fd, uint32_t events, int renew)
{
    pa_io_watch *w = &self->io[fd];
    if (w->events == events && !((renew || w->renew) && events != 0)) {
        return 0;
    }
    if (pa_loop_is_inherited(self)) {
        if ((events & ~w->events) == 0 && !renew) {
            /* Less interest: the renewal reads it from the table. */
            w->events = events;
            return 0;
        }
        if (pa_loop_renew_after_fork(self) < 0) {
            return -1;
        }
        if (w->events == events) {
            return 0; /* registered by the renewal */
        }
    }
    self->metrics.interest_changes++;
    int rc = self->poller_ops->update(self->poller, fd, w->events, events);
    if (rc < 0) {
        errno = -rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    w->events = events;
    w->renew = 0;
    return 0;
}

/* Put handle h (reference stolen, or NULL to empty the slot) in the slot of
 * one direction, registered with `file` (borrowed, NULL for the loop's own
 * watchers); the handle it replaces (if any) is cancelled like asyncio does.
 * 1 if there was one, 0 if not, -1 on error. The poller's interest is the
 * caller's business. */
static int
install_watcher(LoopObject *self, int fd, uint32_t dir, PyObject *h, PyObject *file)
{
    pa_io_watch *w = &self->io[fd];
    PyObject **slot = dir == PA_READABLE ? &w->reader : &w->writer;
    PyObject **file_slot = dir == PA_READABLE ? &w->reader_file : &w->writer_file;
    PyObject *old = *slot, *old_file = *file_slot;
    *slot = h;
    *file_slot = Py_XNewRef(file);
    /* The table is consistent: Python code may run from here on. */
    Py_XDECREF(old_file);
    if (old == NULL) {
        return 0;
    }
    int rc = pa_handle_cancel_plain(self->state, (HandleObject *)old, self->debug);
    Py_DECREF(old);
    return rc < 0 ? -1 : 1;
}

int
pa_loop_check_no_transport(LoopObject *self, int fd, PyObject *fileobj)
{
    PyObject *transport = pa_loop_fd_transport(self, fd);
    if (transport == NULL) {
        return 0;
    }
    Py_INCREF(transport);
    PyObject *res = PyObject_CallMethod(transport, "is_closing", NULL);
    int closing = res ? PyObject_IsTrue(res) : -1;
    Py_XDECREF(res);
    if (closing == 0) {
        PyErr_Format(PyExc_RuntimeError, "File descriptor %R is used by transport %R", fileobj,
                     transport);
    }
    Py_DECREF(transport);
    return closing > 0 ? 0 : -1;
}

static PyObject *
add_watcher(LoopObject *self, PyObject *const *args, Py_ssize_t nargs, uint32_t dir,
            const char *method, int public)
{
    pa_state *st = self->state;
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() missing required arguments: 'fd' and 'callback'",
                     method);
        return NULL;
    }
    if (pa_loop_check_closed_keeping(self, args, nargs) < 0) {
        return NULL;
    }
    int gone, too_large;
    int fd = lookup_fd(self, args[0], &gone, &too_large);
    if (too_large) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return NULL;
    }
    /* The callback is checked in debug mode only, as call_soon()'s. */
    if (fd < 0 || (public && !gone && pa_loop_check_no_transport(self, fd, args[0]) < 0) ||
        (!gone && check_fd_is_open(fd) < 0) ||
        (self->debug && pa_check_callback(st, args[1], method) < 0) ||
        ensure_capacity(self, fd) < 0) {
        return NULL;
    }
    HandleObject *h = pa_handle_new(st, st->HandleType, (PyObject *)self, args[1], args + 2,
                                    nargs - 2, NULL, self->debug);
    if (h == NULL) {
        return NULL;
    }
    /* A closed object keeps its watchers, as in asyncio, but the kernel has
     * nothing left to watch for it. Otherwise the registration is renewed
     * even if the interest did not change: the fd may be a new file that
     * took the number of one closed while it was watched. */
    if (!gone && set_interest(self, fd, self->io[fd].events | dir, 1) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    if (install_watcher(self, fd, dir, Py_NewRef((PyObject *)h), args[0]) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

/* Take the handle out of its slot and cancel it: 1 if there was one, 0 if
 * not, -1 on error. The poller's interest is the caller's business. */
static int
drop_watcher(LoopObject *self, int fd, uint32_t dir)
{
    return install_watcher(self, fd, dir, NULL, NULL);
}

/* 1 if a callback was registered for that direction, 0 if not, -1 on error.
 * `gone` is the object the watcher was found by when it has no fd any more
 * (see lookup_fd), else NULL: the interest of every direction registered
 * with it is withdrawn, since the kernel keeps none for a closed file (epoll
 * dropped it; poll() would report the fd invalid at every call). */
static int
remove_watcher(LoopObject *self, int fd, uint32_t dir, PyObject *gone)
{
    if (self->closed || fd < 0 || fd >= self->io_capacity) {
        return 0;
    }
    pa_io_watch *w = &self->io[fd];
    uint32_t keep = w->events & ~dir;
    if (gone != NULL) {
        if (w->reader_file == gone) {
            keep &= ~PA_READABLE;
        }
        if (w->writer_file == gone) {
            keep &= ~PA_WRITABLE;
        }
    }
    if (set_interest(self, fd, keep, 0) < 0) {
        return -1;
    }
    return drop_watcher(self, fd, dir);
}

static PyObject *
remove_method(LoopObject *self, PyObject *fileobj, uint32_t dir, int public)
{
    if (self->closed) {
        Py_RETURN_FALSE;
    }
    int gone, too_large;
    int fd = lookup_fd(self, fileobj, &gone, &too_large);
    if (too_large) {
        Py_RETURN_FALSE; /* never watched */
    }
    if (fd < 0 || (public && !gone && pa_loop_check_no_transport(self, fd, fileobj) < 0)) {
        return NULL;
    }
    int r = remove_watcher(self, fd, dir, gone ? fileobj : NULL);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r);
}

static PyObject *
discard_handle(PyObject *h)
{
    if (h == NULL) {
        return NULL;
    }
    Py_DECREF(h);
    Py_RETURN_NONE;
}

PyObject *
pa_loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return discard_handle(add_watcher(self, args, nargs, PA_READABLE, "add_reader", 1));
}

PyObject *
pa_loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return discard_handle(add_watcher(self, args, nargs, PA_WRITABLE, "add_writer", 1));
}

PyObject *
pa_loop_private_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_watcher(self, args, nargs, PA_READABLE, "add_reader", 0);
}

PyObject *
pa_loop_private_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return add_watcher(self, args, nargs, PA_WRITABLE, "add_writer", 0);
}

int
pa_loop_watch_fd(LoopObject *self, int fd, uint32_t dir, PyObject *callback)
{
    /* A closed loop first: a transport let go of its callbacks when the
     * loop closed (pa_tr_release_watch_callbacks_of). */
    if (pa_loop_check_closed_keeping(self, &callback, callback != NULL) < 0) {
        return -1;
    }
    if (callback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the transport is closed");
        return -1;
    }
    if (ensure_capacity(self, fd) < 0) {
        return -1;
    }
    pa_state *st = self->state;
    HandleObject *h =
        pa_handle_new(st, st->HandleType, (PyObject *)self, callback, NULL, 0, NULL, self->debug);
    if (h == NULL) {
        return -1;
    }
    /* Renewed when the transport claimed the fd (pa_loop_claim_fd). */
    if (set_interest(self, fd, self->io[fd].events | dir, 0) < 0) {
        Py_DECREF(h);
        return -1;
    }
    return install_watcher(self, fd, dir, (PyObject *)h, NULL);
}

void
pa_loop_claim_fd(LoopObject *self, int fd)
{
    if (fd >= 0 && fd < self->io_capacity && self->io[fd].events != 0) {
        self->io[fd].renew = 1;
    }
}

int
pa_loop_set_fd_transport(LoopObject *self, int fd, PyObject *transport)
{
    if (fd < 0 || ensure_capacity(self, fd) < 0) {
        return -1;
    }
    self->io[fd].transport = transport;
    return 0;
}

void
pa_loop_drop_fd_transport(LoopObject *self, int fd, PyObject *transport)
{
    if (fd >= 0 && fd < self->io_capacity && self->io[fd].transport == transport) {
        self->io[fd].transport = NULL;
    }
}

PyObject *
pa_loop_fd_transport(LoopObject *self, int fd)
{
    return fd >= 0 && fd < self->io_capacity ? self->io[fd].transport : NULL;
}

int
pa_loop_unwatch_fd(LoopObject *self, int fd, uint32_t dir)
{
    return remove_watcher(self, fd, dir, NULL);
}

int
pa_loop_unwatch_fd_for(LoopObject *self, int fd, uint32_t dir, PyObject *callback)
{
    if (self->closed || fd < 0 || fd >= self->io_capacity) {
        return 0;
    }
    PyObject *h = dir == PA_READABLE ? self->io[fd].reader : self->io[fd].writer;
    if (h != NULL && ((HandleObject *)h)->callback != callback) {
        return 0;
    }
    return remove_watcher(self, fd, dir, NULL);
}

int
pa_loop_unwatch_fd_lazily(LoopObject *self, int fd, uint32_t dir)
{
    if (self->closed || fd < 0 || fd >= self->io_capacity) {
        return 0;
    }
    return drop_watcher(self, fd, dir);
}

int
pa_loop_is_watching(LoopObject *self, int fd, uint32_t dir)
{
    if (fd < 0 || fd >= self->io_capacity) {
        return 0;
    }
    PyObject *h = dir == PA_READABLE ? self->io[fd].reader : self->io[fd].writer;
    return h != NULL && !((HandleObject *)h)->cancelled;
}

PyObject *
pa_loop_remove_reader(LoopObject *self, PyObject *fileobj, int public)
{
    return remove_method(self, fileobj, PA_READABLE, public);
}

PyObject *
pa_loop_remove_writer(LoopObject *self, PyObject *fileobj, int public)
{
    return remove_method(self, fileobj, PA_WRITABLE, public);
}

/* Queue the handle watching one direction, or drop it if it was cancelled
 * (asyncio unregisters such an fd when it fires). An event with no watcher
 * at all is for an interest left behind by pa_loop_unwatch_fd_lazily(): it
 * is withdrawn before the next poll, unless a watcher takes it up again in
 * the meantime. That is the common case: a StreamReader above its limit
 * pauses its transport in data_received() and the task it woke resumes it,
 * and that task runs after the next poll (asyncio's order: the callbacks a
 * callback schedules run in the next iteration). Withdrawing at once cost
 * two epoll_ctl() per chunk of a large message read with readexactly(). */
static int
fire(LoopObject *self, int fd, uint32_t dir)
{
    pa_io_watch *w = &self->io[fd];
    PyObject *h = dir == PA_READABLE ? w->reader : w->writer;
    if (h == NULL) {
        if (w->unwatched == 0) {
            if (self->unwatched_count >= PA_EVENTS_PER_POLL) {
                return set_interest(self, fd, w->events & ~dir, 0); /* not reached */
            }
            self->unwatched_fds[self->unwatched_count++] = fd;
        }
        w->unwatched |= (uint8_t)dir;
        return 0;
    }
    if (((HandleObject *)h)->cancelled) {
        return remove_watcher(self, fd, dir, NULL) < 0 ? -1 : 0;
    }
    int rc = pa_readyqueue_push(&self->ready, Py_NewRef(h));
    if (rc < 0) {
        Py_DECREF(h);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void
forget_unwatched(LoopObject *self)
{
    while (self->unwatched_count > 0) {
        int fd = self->unwatched_fds[--self->unwatched_count];
        if (fd < self->io_capacity) {
            self->io[fd].unwatched = 0;
        }
    }
}

int
pa_loop_withdraw_unwatched(LoopObject *self)
{
    while (self->unwatched_count > 0) {
        int fd = self->unwatched_fds[--self->unwatched_count];
        if (fd >= self->io_capacity) {
            continue;
        }
        pa_io_watch *w = &self->io[fd];
        uint32_t drop = w->unwatched;
        w->unwatched = 0;
        if (w->reader != NULL) {
            drop &= ~(uint32_t)PA_READABLE;
        }
        if (w->writer != NULL) {
            drop &= ~(uint32_t)PA_WRITABLE;
        }
        if ((w->events & drop) == 0) {
            continue;
        }
        if (set_interest(self, fd, w->events & ~drop, 0) < 0) {
            /* The fd was closed since it polled ready (its owner closed a
             * socket behind its transport's back): the kernel dropped the
             * registration with the file, so the table just forgets it and
             * renews whatever is asked of that number next. */
            if (!PyErr_ExceptionMatches(PyExc_OSError) || fcntl(fd, F_GETFD) != -1) {
                forget_unwatched(self); /* the rest go at their next event */
                return -1;
            }
            PyErr_Clear();
            w->events &= ~drop;
            w->renew = 1;
        }
    }
    return 0;
}

int
pa_loop_dispatch_io(LoopObject *self, const pa_poll_event *events, int n)
{
    int woken = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].fd;
        if (fd == self->wake_rfd) {
            woken = 1;
            continue;
        }
        /* Re-read the table for every event: removing a cancelled handle
         * may run code that changed it. */
        if (fd < 0 || fd >= self->io_capacity) {
            continue;
        }
        uint32_t ev = events[i].events & self->io[fd].events;
        if ((ev & PA_READABLE) && fire(self, fd, PA_READABLE) < 0) {
            return -1;
        }
        if (fd < self->io_capacity && (ev & PA_WRITABLE) && fire(self, fd, PA_WRITABLE) < 0) {
            return -1;
        }
    }
    if (woken) {
        return pa_wakeup_drain(self);
    }
    return 0;
}

void
pa_loop_clear_io(LoopObject *self)
{
    self->unwatched_count = 0;
    for (int fd = 0; fd < self->io_capacity; fd++) {
        pa_io_watch *w = &self->io[fd];
        if (w->events != 0 && self->poller != NULL && !pa_loop_is_inherited(self)) {
            (void)self->poller_ops->update(self->poller, fd, w->events, 0);
        }
        w->events = 0;
        w->renew = 0;
        w->unwatched = 0;
        PyObject *reader = w->reader, *writer = w->writer;
        PyObject *reader_file = w->reader_file, *writer_file = w->writer_file;
        w->reader = w->writer = w->reader_file = w->writer_file = NULL;
        if (self->closed) {
            /* Holds no reference: each handle still holds its callback. */
            if (reader != NULL) {
                pa_tr_release_watch_callbacks_of(self->state, ((HandleObject *)reader)->callback);
            }
            if (writer != NULL) {
                pa_tr_release_watch_callbacks_of(self->state, ((HandleObject *)writer)->callback);
            }
        }
        Py_XDECREF(reader);
        Py_XDECREF(writer);
        Py_XDECREF(reader_file);
        Py_XDECREF(writer_file);
    }
}

int
pa_loop_traverse_io(LoopObject *self, visitproc visit, void *arg)
{
    for (int fd = 0; fd < self->io_capacity; fd++) {
        Py_VISIT(self->io[fd].reader);
        Py_VISIT(self->io[fd].writer);
        Py_VISIT(self->io[fd].reader_file);
        Py_VISIT(self->io[fd].writer_file);
    }
    return 0;
}
