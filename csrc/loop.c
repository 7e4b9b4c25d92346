/*
 * loop.c - the Loop type: create_future() and create_task(), the clock and
 * its overrides, run_forever() and close(). Scheduling callbacks (call_soon,
 * call_later, call_at) is in schedule.c; one iteration of the loop is in
 * runloop.c.
 *
 * The pieces of run_forever() that deal with interpreter-wide state (running
 * loop, async generator hooks, coroutine origin tracking) are Python methods
 * of the subclass in pyasync/_loop.py, called once per run_forever().
 */
#include "loop.h"
#include "keywords.h"

#include <limits.h>
#include "clock.h"
#include "handle.h"
#include "future.h"
#include "task.h"

#include <errno.h>
#include <math.h>
#include <structmember.h>


/* ---------------------------------------------------------------- checks */

/* The error is raised by a Python helper whose frame, kept by the
 * traceback, holds `kept`: a future that fails to schedule its callbacks
 * drops them at once, and the callback may be the last reference to a task
 * whose coroutine chain is running the code that cancelled the future. In
 * asyncio the frames of the failed call_soon() keep it alive until the error
 * is dropped; so do we. Without the helper (before it is installed, or at
 * shutdown) it is a plain RuntimeError. */
int
pa_loop_raise_closed(LoopObject *loop, PyObject *const *kept, Py_ssize_t nkept)
{
    pa_state *st = loop->state;
    PyObject *helper = st != NULL ? st->raise_loop_closed : NULL;
    if (helper == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    PyObject *res = PyObject_Vectorcall(helper, kept, (size_t)nkept, NULL);
    if (res != NULL) { /* the helper always raises */
        Py_DECREF(res);
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
    }
    return -1;
}

int
pa_loop_check_subtype(pa_state *st, PyTypeObject *type)
{
    if (!PyType_IsSubtype(type, st->LoopType)) {
        return 0;
    }
    /* A strong reference: a freed type's address may be reused by another. */
    Py_XSETREF(st->loop_subtype_seen, (PyTypeObject *)Py_NewRef(type));
    return 1;
}

/* ---------------------------------------------------------------- the clock */

static int type_has_our_method(pa_state *st, PyTypeObject *type, const char *name);

void
pa_loop_check_methods_of_type(LoopObject *loop)
{
    PyTypeObject *type = Py_TYPE(loop);
    loop->call_soon_is_ours_in_type = (char)type_has_our_method(loop->state, type, "call_soon");
    loop->time_is_ours_in_type = (char)type_has_our_method(loop->state, type, "time");
    loop->methods_type = type;
    /* The lookups above give the type a version tag if it had none. */
    loop->methods_type_version = pa_type_version(type);
}

/* pa_loop_now() for an overridden time(). */
int
pa_loop_now_overridden(LoopObject *self, double *now)
{
    PyObject *res = PyObject_CallMethodNoArgs((PyObject *)self, self->state->str_time);
    if (res == NULL) {
        return -1;
    }
    double t = PyFloat_AsDouble(res);
    Py_DECREF(res);
    if (t == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(t)) {
        /* Every deadline computed from it would be NaN: never due. */
        PyErr_SetString(PyExc_ValueError, "loop.time() returned NaN");
        return -1;
    }
    *now = t;
    return 0;
}

/* ---------------------------------------------------------------- shared helpers */

int
pa_loop_get_debug(pa_state *st, PyObject *loop)
{
    if (loop == NULL || loop == Py_None) {
        return 0;
    }
    if (pa_loop_check(st, loop)) {
        return ((LoopObject *)loop)->debug;
    }
    PyObject *res = PyObject_CallMethodNoArgs(loop, st->str_get_debug);
    if (res == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(res);
    Py_DECREF(res);
    return r;
}

int
pa_loop_report(pa_state *st, PyObject *loop, PyObject *message, PyObject *key, PyObject *obj,
               PyObject *exc, PyObject *source_tb)
{
    PyObject *ctx = PyDict_New();
    if (ctx == NULL) {
        return -1;
    }
    int has_tb = source_tb != NULL ? PyObject_IsTrue(source_tb) : 0;
    PyObject *res = NULL;
    if (has_tb >= 0 && PyDict_SetItem(ctx, st->str_message, message) == 0 &&
        PyDict_SetItem(ctx, key, obj) == 0 &&
        (exc == NULL || PyDict_SetItem(ctx, st->str_exception, exc) == 0) &&
        (!has_tb || PyDict_SetItem(ctx, st->str_source_traceback, source_tb) == 0)) {
        res = PyObject_CallMethodOneArg(loop, st->str_call_exception_handler, ctx);
    }
    Py_DECREF(ctx);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}
/* ---------------------------------------------------------------- futures and tasks */

static PyObject *
Loop_create_future(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_future_new(self->state, (PyObject *)self);
}

int
pa_parse_task_args(const char *fname, Py_ssize_t npos, PyObject *const *args, Py_ssize_t nargsf,
                   PyObject *kwnames, PyObject **name, PyObject **context)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    *name = *context = NULL;
    if (nargs != npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd positional argument%s (%zd given)",
                     fname, npos, npos == 1 ? "" : "s", nargs);
        return -1;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[nargs + i] == Py_None ? NULL : args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "name") == 0) {
            *name = value;
        } else if (PyUnicode_CompareWithASCIIString(key, "context") == 0) {
            *context = value;
        } else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         key);
            return -1;
        }
    }
    return 0;
}

/* create_task(coro, *, name=None, context=None): our Task, or what the task
 * factory makes (called as factory(loop, coro[, context=context]), named
 * afterwards), as asyncio does. */
static PyObject *
Loop_create_task(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(Loop_create_task, "create_task", "coro");
    PyObject *name, *context;
    if (pa_parse_create_task_args(args, nargsf, kwnames, &name, &context) < 0) {
        return NULL;
    }
    if (pa_loop_check_closed_keeping(self, args, 1) < 0) {
        return NULL;
    }
    pa_state *st = self->state;
    if (self->task_factory == NULL) {
        return pa_task_new(st, args[0], (PyObject *)self, name, context, 0);
    }
    PyObject *factory = Py_NewRef(self->task_factory);
    PyObject *fargs[3] = {(PyObject *)self, args[0], context};
    PyObject *task = PyObject_Vectorcall(factory, fargs, 2, context ? st->kwnames_context : NULL);
    Py_DECREF(factory);
    if (task != NULL && name != NULL) {
        PyObject *res = PyObject_CallMethod(task, "set_name", "(O)", name);
        if (res == NULL) {
            Py_CLEAR(task);
        }
        Py_XDECREF(res);
    }
    return task;
}

static PyObject *
Loop_set_task_factory(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                      PyObject *kwnames)
{
    PyObject *factory;
    if (pa_parse_single_arg("set_task_factory", "factory", args, nargsf, kwnames, &factory) < 0) {
        return NULL;
    }
    if (factory != Py_None && !PyCallable_Check(factory)) {
        PyErr_SetString(PyExc_TypeError, "task factory must be a callable or None");
        return NULL;
    }
    Py_XSETREF(self->task_factory, factory == Py_None ? NULL : Py_NewRef(factory));
    Py_RETURN_NONE;
}

static PyObject *
Loop_get_task_factory(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->task_factory ? self->task_factory : Py_None);
}

static int
check_not_running(LoopObject *self)
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return -1;
    }
    PyObject *running = PyObject_CallNoArgs(self->state->get_running_loop);
    if (running == NULL) {
        return -1;
    }
    int other = running != Py_None;
    Py_DECREF(running);
    if (other) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot run the event loop while another loop is running");
        return -1;
    }
    return 0;
}

static PyObject *
Loop_run_forever(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    pa_state *st = self->state;
    if (pa_loop_check_closed(self) < 0 || check_not_running(self) < 0) {
        return NULL;
    }
    PyObject *exc = NULL;
    PyObject *res = PyObject_CallMethodNoArgs((PyObject *)self, st->str_run_forever_setup);
    if (res == NULL) {
        exc = pa_err_take();
    } else {
        Py_DECREF(res);
        self->running = 1;
        self->thread_id = PyThread_get_thread_ident();
        for (;;) {
            if (pa_loop_run_once(self) < 0) {
                exc = pa_err_take();
                break;
            }
            if (self->stopping) {
                break;
            }
        }
    }
    self->running = 0;
    self->stopping = 0;
    self->thread_id = 0;
    res = PyObject_CallMethodNoArgs((PyObject *)self, st->str_run_forever_cleanup);
    if (res == NULL) {
        if (exc != NULL) {
            PyObject *cleanup_exc = pa_err_take();
            PyException_SetContext(cleanup_exc, exc); /* steals exc */
            pa_err_restore(cleanup_exc);
        }
        return NULL;
    }
    Py_DECREF(res);
    if (exc != NULL) {
        pa_err_restore(exc);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_stop(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    self->stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *
Loop_is_running(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
Loop_is_closed(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Loop_get_debug(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->debug);
}

static PyObject *
is_watching(LoopObject *self, PyObject *fdobj, uint32_t dir)
{
    long fd = PyLong_AsLong(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(fd >= 0 && fd <= INT_MAX && pa_loop_is_watching(self, (int)fd, dir));
}

/* _is_watching_read(fd): for reprs, like asyncio's test of its selector. */
static PyObject *
Loop_is_watching_read(LoopObject *self, PyObject *fdobj)
{
    return is_watching(self, fdobj, PA_READABLE);
}

static PyObject *
Loop_is_watching_write(LoopObject *self, PyObject *fdobj)
{
    return is_watching(self, fdobj, PA_WRITABLE);
}

/* _transport_of(fd): the transport that owns fd, or None. */
static PyObject *
Loop_transport_of(LoopObject *self, PyObject *fdobj)
{
    long fd = PyLong_AsLong(fdobj);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *transport = fd >= 0 && fd <= INT_MAX ? pa_loop_fd_transport(self, (int)fd) : NULL;
    return Py_NewRef(transport ? transport : Py_None);
}

static PyObject *
Loop_time(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(pa_loop_own_clock_now(self));
}

/* ---------------------------------------------------------------- teardown */

static void
release_queues(LoopObject *self)
{
    while (self->ready.count > 0) {
        PyObject *entry = pa_readyqueue_pop(&self->ready);
        if (pa_task_check(self->state, entry)) {
            pa_task_drop_pending((TaskObject *)entry);
        }
        Py_DECREF(entry);
    }
    while (self->timers.count > 0) {
        pa_loop_timer_unschedule(pa_timerheap_pop(&self->timers));
    }
    self->timer_cancelled_count = 0;
    pa_loop_clear_io(self);
}

static void
release_os_resources(LoopObject *self)
{
    pa_wakeup_close(self);
    if (self->poller != NULL) {
        self->poller_ops->destroy(self->poller);
        self->poller = NULL;
    }
}

/* The C half of close(): pyasync/_loop.py adds signal handlers and the
 * default executor around it. */
static PyObject *
Loop_close_core(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return NULL;
    }
    if (self->closed) {
        Py_RETURN_NONE;
    }
    self->closed = 1;
    release_queues(self);
    release_os_resources(self);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- internals used by the shim */

static PyObject *
Loop_write_to_self(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    pa_wakeup_notify(self);
    Py_RETURN_NONE;
}

static int
check_handle(LoopObject *self, PyObject *handle)
{
    if (!PyObject_TypeCheck(handle, self->state->HandleType)) {
        PyErr_Format(PyExc_TypeError, "expected a pyasync Handle, got %R", handle);
        return -1;
    }
    return 0;
}

static PyObject *
Loop_add_callback(LoopObject *self, PyObject *handle)
{
    if (check_handle(self, handle) < 0) {
        return NULL;
    }
    if (!((HandleObject *)handle)->cancelled && pa_loop_push_ready(self, handle, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_add_callback_signalsafe(LoopObject *self, PyObject *handle)
{
    if (check_handle(self, handle) < 0) {
        return NULL;
    }
    if (!((HandleObject *)handle)->cancelled && pa_loop_push_ready(self, handle, 0) < 0) {
        return NULL;
    }
    pa_wakeup_notify(self);
    Py_RETURN_NONE;
}

static PyObject *
Loop_use_virtual_clock(LoopObject *self, PyObject *start)
{
    double t = PyFloat_AsDouble(start);
    if (t == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!isfinite(t)) {
        PyErr_SetString(PyExc_ValueError, "the virtual clock must start at a finite time");
        return NULL;
    }
    if (self->vclock.on && t < self->vclock.now) {
        PyErr_SetString(PyExc_ValueError, "the virtual clock cannot go back");
        return NULL;
    }
    if (!self->vclock.on && self->timers.count > 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the virtual clock must be set before any timer is scheduled");
        return NULL;
    }
    self->vclock.on = 1;
    self->vclock.now = t;
    Py_RETURN_NONE;
}

static PyObject *
Loop_metrics(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return pa_metrics_snapshot((PyObject *)self);
}

static PyObject *
Loop_timer_handle_cancelled(LoopObject *self, PyObject *handle)
{
    if (PyObject_TypeCheck(handle, self->state->TimerHandleType) &&
        ((HandleObject *)handle)->scheduled) {
        pa_loop_note_timer_cancelled(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_get_thread_id(LoopObject *self, void *closure)
{
    if (!self->running) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->thread_id);
}

static PyObject *
Loop_get_debug_attr(LoopObject *self, void *closure)
{
    return PyBool_FromLong(self->debug);
}

static int
Loop_set_debug_attr(LoopObject *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _debug");
        return -1;
    }
    int r = PyObject_IsTrue(value);
    if (r < 0) {
        return -1;
    }
    self->debug = (char)r;
    return 0;
}

static PyObject *
Loop_get_stopping(LoopObject *self, void *closure)
{
    return PyBool_FromLong(self->stopping);
}

static int
Loop_set_stopping(LoopObject *self, PyObject *value, void *closure)
{
    int r = value ? PyObject_IsTrue(value) : 0;
    if (r < 0) {
        return -1;
    }
    self->stopping = (char)r;
    return 0;
}

static PyObject *
Loop_get_closed(LoopObject *self, void *closure)
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Loop_get_current_handle(LoopObject *self, void *closure)
{
    return Py_NewRef(self->current_handle ? self->current_handle : Py_None);
}

static PyObject *
Loop_get_scheduled(LoopObject *self, void *closure)
{
    PyObject *list = PyList_New((Py_ssize_t)self->timers.count);
    if (list == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < self->timers.count; i++) {
        PyList_SET_ITEM(list, (Py_ssize_t)i, Py_NewRef(self->timers.entries[i].timer));
    }
    return list;
}

static PyObject *
Loop_get_ready_count(LoopObject *self, void *closure)
{
    return PyLong_FromSize_t(self->ready.count);
}

/* How many entries the ready queue and the timer heap have room for: the
 * tests check that the memory of a burst goes back. */
static PyObject *
Loop_get_ready_capacity(LoopObject *self, void *closure)
{
    return PyLong_FromSize_t(self->ready.items != NULL ? self->ready.mask + 1 : 0);
}

static PyObject *
Loop_get_timers_capacity(LoopObject *self, void *closure)
{
    return PyLong_FromSize_t(self->timers.capacity);
}

static PyObject *
Loop_get_wakeup_fd(LoopObject *self, void *closure)
{
    /* The pipe of this process: the fd is given to signal.set_wakeup_fd(). */
    if (!self->closed && pa_loop_own_kernel_state(self) < 0) {
        return NULL;
    }
    return PyLong_FromLong(self->wake_wfd);
}

static PyObject *
Loop_get_poller(LoopObject *self, void *closure)
{
    return PyUnicode_FromString(self->poller_ops->name);
}

/* ---------------------------------------------------------------- type slots */

/* Whether `type` still has LoopBase's own method `name`. */
static int
type_has_our_method(pa_state *st, PyTypeObject *type, const char *name)
{
    PyObject *ours = PyDict_GetItemString(st->LoopType->tp_dict, name); /* borrowed */
    PyObject *found = PyObject_GetAttrString((PyObject *)type, name);
    if (found == NULL) {
        PyErr_Clear();
        return 0;
    }
    int same = found == ours;
    Py_DECREF(found);
    return same;
}

/* Setting or deleting call_soon or time on an instance turns the fast path
 * or the C clock off or back on (see pa_loop_fast_path, pa_loop_clock_is_ours). */
static int
Loop_setattro(LoopObject *self, PyObject *name, PyObject *value)
{
    int rc = PyObject_GenericSetAttr((PyObject *)self, name, value);
    if (rc == 0 && PyUnicode_Check(name)) {
        if (PyUnicode_CompareWithASCIIString(name, "call_soon") == 0) {
            self->call_soon_set_on_instance = value != NULL;
        } else if (PyUnicode_CompareWithASCIIString(name, "time") == 0) {
            self->time_set_on_instance = value != NULL;
        }
    }
    return rc;
}

static PyObject *
Loop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    pa_state *st = pa_state_from_type(type);
    if (st == NULL || pa_check_ready(st) < 0) {
        return NULL;
    }
    const pa_poller_ops *ops = pa_poller_lookup(NULL);
    if (ops == NULL) {
        PyErr_Format(PyExc_ValueError, "unknown poller in PYASYNC_POLLER: %s (use epoll or poll)",
                     getenv("PYASYNC_POLLER"));
        return NULL;
    }
    LoopObject *self = (LoopObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->state = st;
    self->module = Py_NewRef(PyType_GetModuleByDef(type, &pa_module_def));
    self->poller_ops = ops;
    self->owner_pid = pa_process_pid;
    self->wake_rfd = self->wake_wfd = -1;
    self->clock_resolution = pa_clock_resolution();
    pa_loop_check_methods_of_type(self);
    self->slow_callback_duration = 0.1;
    pa_timerheap_init(&self->timers);
    int rc = pa_readyqueue_init(&self->ready);
    if (rc == 0) {
        self->events = PyMem_Calloc(PA_EVENTS_PER_POLL, sizeof(pa_poll_event));
        self->unwatched_fds = PyMem_Calloc(PA_EVENTS_PER_POLL, sizeof(int));
        rc = self->events && self->unwatched_fds ? 0 : -ENOMEM;
    }
    if (rc == 0) {
        rc = ops->create(&self->poller);
    }
    if (rc == 0) {
        rc = pa_wakeup_open(self);
    }
    if (rc < 0) {
        errno = -rc;
        PyErr_SetFromErrno(rc == -ENOMEM ? PyExc_MemoryError : PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->module);
    Py_VISIT(self->task_factory);
    for (size_t i = 0; i < self->ready.count; i++) {
        Py_VISIT(pa_readyqueue_peek_at(&self->ready, i));
    }
    for (size_t i = 0; i < self->timers.count; i++) {
        Py_VISIT(self->timers.entries[i].timer);
    }
    int rc = pa_metrics_traverse(&self->metrics, visit, arg);
    return rc != 0 ? rc : pa_loop_traverse_io(self, visit, arg);
}

static int
Loop_clear(LoopObject *self)
{
    Py_CLEAR(self->task_factory);
    pa_metrics_clear(&self->metrics);
    if (self->ready.items != NULL) {
        release_queues(self);
    }
    return 0;
}

static void
Loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)Loop_clear(self);
    release_os_resources(self);
    pa_readyqueue_fini(&self->ready);
    pa_timerheap_fini(&self->timers);
    free(self->io);
    self->io = NULL;
    PyMem_Free(self->events);
    PyMem_Free(self->unwatched_fds);
    Py_CLEAR(self->module);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
Loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(Loop_add_reader, "add_reader", "fd", "callback");
    if (pa_reject_keywords("add_reader", kwnames) < 0) {
        return NULL;
    }
    return pa_loop_add_reader(self, args, PyVectorcall_NARGS(nargsf));
}

static PyObject *
Loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(Loop_add_writer, "add_writer", "fd", "callback");
    if (pa_reject_keywords("add_writer", kwnames) < 0) {
        return NULL;
    }
    return pa_loop_add_writer(self, args, PyVectorcall_NARGS(nargsf));
}

static PyObject *
Loop_private_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                        PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(Loop_private_add_reader, "_add_reader", "fd", "callback");
    if (pa_reject_keywords("_add_reader", kwnames) < 0) {
        return NULL;
    }
    return pa_loop_private_add_reader(self, args, PyVectorcall_NARGS(nargsf));
}

static PyObject *
Loop_private_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                        PyObject *kwnames)
{
    PA_BIND_LEADING_KEYWORDS(Loop_private_add_writer, "_add_writer", "fd", "callback");
    if (pa_reject_keywords("_add_writer", kwnames) < 0) {
        return NULL;
    }
    return pa_loop_private_add_writer(self, args, PyVectorcall_NARGS(nargsf));
}

/* remove_reader()/remove_writer() refuse a transport's fd; the private
 * _remove_reader()/_remove_writer() (the loop's own servers and pidfds)
 * do not. */
#define REMOVE_METHOD(func, name, impl, public)                                                    \
    static PyObject *func(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,              \
                          PyObject *kwnames)                                                       \
    {                                                                                              \
        PyObject *fd;                                                                              \
        if (pa_parse_single_arg(name, "fd", args, nargsf, kwnames, &fd) < 0) {                     \
            return NULL;                                                                           \
        }                                                                                          \
        return impl(self, fd, public);                                                             \
    }

REMOVE_METHOD(Loop_remove_reader, "remove_reader", pa_loop_remove_reader, 1)
REMOVE_METHOD(Loop_remove_writer, "remove_writer", pa_loop_remove_writer, 1)
REMOVE_METHOD(Loop_private_remove_reader, "_remove_reader", pa_loop_remove_reader, 0)
REMOVE_METHOD(Loop_private_remove_writer, "_remove_writer", pa_loop_remove_writer, 0)

static PyMethodDef Loop_methods[] = {
    {"call_soon", (PyCFunction)(void (*)(void))pa_loop_m_call_soon, METH_FASTCALL | METH_KEYWORDS,
     "call_soon($self, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be "
     "called at the next iteration."},
    {"call_soon_threadsafe", (PyCFunction)(void (*)(void))pa_loop_m_call_soon_threadsafe,
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe($self, callback, *args, context=None)\n--\n\nLike call_soon(), "
     "callable from any thread."},
    {"call_later", (PyCFunction)(void (*)(void))pa_loop_m_call_later, METH_FASTCALL | METH_KEYWORDS,
     "call_later($self, delay, callback, *args, context=None)\n--\n\nArrange for "
     "callback(*args) to be called after delay seconds."},
    {"call_at", (PyCFunction)(void (*)(void))pa_loop_m_call_at, METH_FASTCALL | METH_KEYWORDS,
     "call_at($self, when, callback, *args, context=None)\n--\n\nArrange for callback(*args) to "
     "be called at loop time `when`."},
    {"create_future", (PyCFunction)Loop_create_future, METH_NOARGS,
     "create_future($self, /)\n--\n\nCreate a pyasync.Future attached to this loop."},
    {"create_task", (PyCFunction)(void (*)(void))Loop_create_task, METH_FASTCALL | METH_KEYWORDS,
     "create_task($self, coro, *, name=None, context=None)\n--\n\nSchedule a coroutine as a "
     "Task."},
    {"set_task_factory", (PyCFunction)(void (*)(void))Loop_set_task_factory, METH_FASTCALL | METH_KEYWORDS,
     "set_task_factory($self, factory)\n--\n\nSet the factory create_task() uses (None for "
     "pyasync.Task)."},
    {"get_task_factory", (PyCFunction)Loop_get_task_factory, METH_NOARGS,
     "get_task_factory($self, /)\n--\n\n"},
    {"run_forever", (PyCFunction)Loop_run_forever, METH_NOARGS,
     "run_forever($self, /)\n--\n\nRun until stop() is called."},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS,
     "stop($self, /)\n--\n\nStop after the current iteration."},
    {"is_running", (PyCFunction)Loop_is_running, METH_NOARGS, "is_running($self, /)\n--\n\n"},
    {"is_closed", (PyCFunction)Loop_is_closed, METH_NOARGS, "is_closed($self, /)\n--\n\n"},
    {"get_debug", (PyCFunction)Loop_get_debug, METH_NOARGS, "get_debug($self, /)\n--\n\n"},
    {"time", (PyCFunction)Loop_time, METH_NOARGS,
     "time($self, /)\n--\n\nThe loop's clock (time.monotonic())."},
    {"add_reader", (PyCFunction)(void (*)(void))Loop_add_reader, METH_FASTCALL | METH_KEYWORDS,
     "add_reader($self, fd, callback, *args)\n--\n\nCall callback(*args) whenever fd is "
     "readable."},
    {"add_writer", (PyCFunction)(void (*)(void))Loop_add_writer, METH_FASTCALL | METH_KEYWORDS,
     "add_writer($self, fd, callback, *args)\n--\n\nCall callback(*args) whenever fd is "
     "writable."},
    {"remove_reader", (PyCFunction)(void (*)(void))Loop_remove_reader, METH_FASTCALL | METH_KEYWORDS,
     "remove_reader($self, fd)\n--\n\nStop watching fd for reading; True if it was watched."},
    {"remove_writer", (PyCFunction)(void (*)(void))Loop_remove_writer, METH_FASTCALL | METH_KEYWORDS,
     "remove_writer($self, fd)\n--\n\nStop watching fd for writing; True if it was watched."},
    {"_add_reader", (PyCFunction)(void (*)(void))Loop_private_add_reader, METH_FASTCALL | METH_KEYWORDS,
     "_add_reader($self, fd, callback, *args)\n--\n\nLike add_reader() but returns the handle."},
    {"_add_writer", (PyCFunction)(void (*)(void))Loop_private_add_writer, METH_FASTCALL | METH_KEYWORDS,
     "_add_writer($self, fd, callback, *args)\n--\n\nLike add_writer() but returns the handle."},
    {"_remove_reader", (PyCFunction)(void (*)(void))Loop_private_remove_reader, METH_FASTCALL | METH_KEYWORDS,
     "_remove_reader($self, fd)\n--\n\n"},
    {"_remove_writer", (PyCFunction)(void (*)(void))Loop_private_remove_writer, METH_FASTCALL | METH_KEYWORDS,
     "_remove_writer($self, fd)\n--\n\n"},
#define SOCKOP_ENTRY(name, func, sig)                                                              \
    {name, (PyCFunction)(void (*)(void))func, METH_FASTCALL | METH_KEYWORDS,                       \
     name sig "\n--\n\n"}
    SOCKOP_ENTRY("sock_recv", pa_loop_sock_recv, "($self, sock, n)"),
    SOCKOP_ENTRY("sock_recv_into", pa_loop_sock_recv_into, "($self, sock, buf)"),
    SOCKOP_ENTRY("sock_recvfrom", pa_loop_sock_recvfrom, "($self, sock, bufsize)"),
    SOCKOP_ENTRY("sock_recvfrom_into", pa_loop_sock_recvfrom_into, "($self, sock, buf, nbytes=0)"),
    SOCKOP_ENTRY("sock_sendto", pa_loop_sock_sendto, "($self, sock, data, address)"),
    SOCKOP_ENTRY("sock_sendall", pa_loop_sock_sendall, "($self, sock, data)"),
    SOCKOP_ENTRY("sock_accept", pa_loop_sock_accept, "($self, sock)"),
    {"_transport_of", (PyCFunction)Loop_transport_of, METH_O,
     "_transport_of($self, fd, /)\n--\n\nThe transport that owns fd, or None."},
    {"_is_watching_read", (PyCFunction)Loop_is_watching_read, METH_O,
     "_is_watching_read($self, fd, /)\n--\n\n"},
    {"_is_watching_write", (PyCFunction)Loop_is_watching_write, METH_O,
     "_is_watching_write($self, fd, /)\n--\n\n"},
    {"_close_core", (PyCFunction)Loop_close_core, METH_NOARGS,
     "_close_core($self, /)\n--\n\nRelease the queues, watchers, poller and self-pipe."},
    {"_write_to_self", (PyCFunction)Loop_write_to_self, METH_NOARGS,
     "_write_to_self($self, /)\n--\n\n"},
    {"_add_callback", (PyCFunction)Loop_add_callback, METH_O,
     "_add_callback($self, handle, /)\n--\n\n"},
    {"_add_callback_signalsafe", (PyCFunction)Loop_add_callback_signalsafe, METH_O,
     "_add_callback_signalsafe($self, handle, /)\n--\n\n"},
    {"_use_virtual_clock", (PyCFunction)Loop_use_virtual_clock, METH_O,
     PyDoc_STR("_use_virtual_clock($self, start, /)\n--\n\n"
               "Make time() virtual, starting at `start` (pyasync.testing).")},
    {"_metrics", (PyCFunction)Loop_metrics, METH_NOARGS,
     PyDoc_STR("_metrics($self, /)\n--\n\nWhat pyasync.metrics() returns; turns timing on.")},
    {"_timer_handle_cancelled", (PyCFunction)Loop_timer_handle_cancelled, METH_O,
     "_timer_handle_cancelled($self, handle, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Loop_members[] = {
    {"_virtual_jump_limit", T_DOUBLE, offsetof(LoopObject, vclock.jump_limit), 0,
     PyDoc_STR("virtual time: timers up to this time may be jumped to")},
    {"_virtual_threshold", T_DOUBLE, offsetof(LoopObject, vclock.threshold), 0,
     PyDoc_STR("virtual time: real seconds of I/O waited for before a jump")},
    {"_virtual_threads_busy", T_PYSSIZET, offsetof(LoopObject, vclock.threads_busy), 0,
     PyDoc_STR("virtual time: executor jobs in flight (time then follows the real clock)")},
    {"slow_callback_duration", T_DOUBLE, offsetof(LoopObject, slow_callback_duration), 0,
     "In debug mode, callbacks slower than this (seconds) are logged."},
    {"_clock_resolution", T_DOUBLE, offsetof(LoopObject, clock_resolution), READONLY, NULL},
    {"_timer_cancelled_count", T_PYSSIZET, offsetof(LoopObject, timer_cancelled_count), READONLY,
     NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef Loop_getset[] = {
    {"_debug", (getter)Loop_get_debug_attr, (setter)Loop_set_debug_attr, NULL, NULL},
    {"_stopping", (getter)Loop_get_stopping, (setter)Loop_set_stopping, NULL, NULL},
    {"_closed", (getter)Loop_get_closed, NULL, NULL, NULL},
    {"_thread_id", (getter)Loop_get_thread_id, NULL, NULL, NULL},
    {"_current_handle", (getter)Loop_get_current_handle, NULL, NULL, NULL},
    {"_scheduled", (getter)Loop_get_scheduled, NULL, "Timers in the heap (a copy).", NULL},
    {"_ready_count", (getter)Loop_get_ready_count, NULL, NULL, NULL},
    {"_ready_capacity", (getter)Loop_get_ready_capacity, NULL, NULL, NULL},
    {"_timers_capacity", (getter)Loop_get_timers_capacity, NULL, NULL, NULL},
    {"_wakeup_fd", (getter)Loop_get_wakeup_fd, NULL, "Write end of the self-pipe.", NULL},
    {"_poller", (getter)Loop_get_poller, NULL, "Name of the poller backend.", NULL},
    {"_task_factory", (getter)Loop_get_task_factory, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Loop_slots[] = {
    {Py_tp_new, Loop_new},
    {Py_tp_dealloc, Loop_dealloc},
    {Py_tp_traverse, Loop_traverse},
    {Py_tp_clear, Loop_clear},
    {Py_tp_setattro, Loop_setattro},
    {Py_tp_methods, Loop_methods},
    {Py_tp_members, Loop_members},
    {Py_tp_getset, Loop_getset},
    {Py_tp_doc, "The C core of pyasync's event loop (use pyasync.Loop)."},
    {0, NULL},
};

static PyType_Spec Loop_spec = {
    .name = "pyasync._core.LoopBase",
    .basicsize = sizeof(LoopObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Loop_slots,
};

int
pa_loop_register_type(PyObject *module, pa_state *st)
{
    if (pa_process_watch_forks() < 0) {
        return -1;
    }
    st->LoopType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Loop_spec, NULL);
    if (st->LoopType == NULL || PyModule_AddType(module, st->LoopType) < 0) {
        return -1;
    }
    return 0;
}
