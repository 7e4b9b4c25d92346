/*
 * compat.h - the one place where CPython version differences (3.11 .. 3.13) live.
 *
 * Everything else in csrc/ calls the pa_* wrappers below instead of testing
 * PY_VERSION_HEX itself, so a new Python version is supported by editing
 * this file alone.
 */
#ifndef PYASYNC_COMPAT_H
#define PYASYNC_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000
#error "pyasync needs CPython 3.11 or newer"
#endif
/* Not tested on 3.14 yet (it changed asyncio's task registry and policies,
 * and the Future and Task layouts below follow each version), nor on a
 * free-threaded build, where the GIL does not order the loop's state. */
#if PY_VERSION_HEX >= 0x030E0000
#error "pyasync supports CPython 3.11 to 3.13; 3.14 and later are not tested yet"
#endif
#ifdef Py_GIL_DISABLED
#error "pyasync does not support free-threaded CPython builds"
#endif

/* Take the raised exception as one object (new reference), clearing it. */
static inline PyObject *
pa_err_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Re-raise an exception taken by pa_err_take(); steals the reference. */
static inline void
pa_err_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) {
        return;
    }
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
#endif
}

/* Look up an attribute that may be missing: 1 found, 0 missing, -1 error. */
static inline int
pa_get_optional_attr(PyObject *obj, PyObject *name, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, result);
#else
    *result = PyObject_GetAttr(obj, name);
    if (*result != NULL) {
        return 1;
    }
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
#endif
}

/* Whether the interpreter is shutting down (public only from 3.13). */
static inline int
pa_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* 3.13: asyncio.Server._attach() and _detach() take the transport (the
 * server keeps its clients for close_clients()/abort_clients()); before,
 * they take nothing and count. */
#define PA_SERVER_ATTACH_TAKES_TRANSPORT (PY_VERSION_HEX >= 0x030D0000)

/* 3.13: a StopIteration given to Future.set_exception() is wrapped in a
 * RuntimeError (and set); before, set_exception() raised TypeError. */
#define PA_FUTURE_WRAPS_STOPITERATION (PY_VERSION_HEX >= 0x030D0000)

/* 3.12: the (type, value, traceback) signature of throw() is deprecated. */
#define PA_THROW_3ARGS_DEPRECATED (PY_VERSION_HEX >= 0x030C0000)

/* 3.12: Task(..., eager_start=...) and eager task factories. */
#define PA_HAS_EAGER_TASKS (PY_VERSION_HEX >= 0x030C0000)

/* 3.13: Task.uncancel() clears a pending cancellation when the count of
 * requests drops to zero. */
#define PA_UNCANCEL_CLEARS_MUST_CANCEL (PY_VERSION_HEX >= 0x030D0000)

/* TaskGroup, 3.12: a task already done when created (eager) is handled at
 * once instead of through a done-callback. */
#define PA_TASKGROUP_HANDLES_DONE_TASKS (PY_VERSION_HEX >= 0x030C0000)

/* TaskGroup, 3.13: the parent's cancellation is uncancelled after the tasks
 * are waited for (not before), CancelledError subclasses count, a refused
 * coroutine is closed, and an ExceptionGroup re-cancels a parent that is
 * still being cancelled. */
#define PA_TASKGROUP_313 (PY_VERSION_HEX >= 0x030D0000)

/* writelines() of a socket transport: from 3.12 asyncio's own returns at
 * once for a false argument (None, 0, an empty list) and takes a memoryview
 * of each piece; 3.11's joins the pieces with b"".join() and writes that. */
#define PA_WRITELINES_PIECEWISE (PY_VERSION_HEX >= 0x030C0000)

/* Datagram transports, 3.13: sendto(b"") sends an empty datagram (before,
 * it was dropped), and a queued datagram counts 8 bytes of header on top of
 * its length in the write buffer size, from when it is queued until it is
 * sent. (asyncio 3.13 before CPython gh-135444 took only the length away
 * when sending, so the size never returned to 0: not copied, see
 * docs/differences.md.) */
#define PA_DGRAM_SENDS_EMPTY (PY_VERSION_HEX >= 0x030D0000)
#define PA_DGRAM_HEADER_SIZE (PY_VERSION_HEX >= 0x030D0000 ? 8 : 0)

/* A number that changes whenever `type` or one of its bases is modified (an
 * attribute set or deleted, the bases replaced), or 0 when there is none at
 * the moment: CPython's method-cache version tag (tp_version_tag, 3.11-3.13).
 * A type gets one again when an attribute is next looked up on it. */
static inline unsigned int
pa_type_version(PyTypeObject *type)
{
    return type->tp_version_tag;
}

/* ---------------------------------------------------------------- Future and Task layout
 *
 * pyasync.Future and pyasync.Task are subclasses of CPython's C Future and
 * Task (_asyncio.Future, _asyncio.Task), so isinstance(x, asyncio.Future)
 * holds. They do not add a second copy of the state: they use the base's
 * own fields, laid out as Modules/_asynciomodule.c of each version lays them
 * out, with the same meaning (state values, bits). The base's methods, if
 * Python code calls them on our objects (asyncio.Future.done(fut)), read
 * the same state. pa_future_register_types() checks the sizes and the
 * dict/weakref offsets of the running interpreter's types against these
 * before it builds our types, and refuses to load on a mismatch.
 *
 * PA_ASYNCIO_FUTURE_FIELDS: the whole of _asyncio.Future.
 * PA_ASYNCIO_TASK_FIELDS: what _asyncio.Task adds after it.
 * PA_FUTURE_MANAGED_DICT: the instance dict and weakrefs are the
 * interpreter's (3.13), not fields.
 */
#if PY_VERSION_HEX >= 0x030D0000
#define PA_ASYNCIO_FUTURE_FIELDS                                                                   \
    PyObject_HEAD                                                                                  \
    PyObject *loop;                                                                                \
    PyObject *callback0;                                                                           \
    PyObject *context0;                                                                            \
    PyObject *callbacks;                                                                           \
    PyObject *exception;                                                                           \
    PyObject *exception_tb;                                                                        \
    PyObject *result;                                                                              \
    PyObject *source_tb;                                                                           \
    PyObject *cancel_msg;                                                                          \
    PyObject *cancelled_exc;                                                                       \
    pa_fut_state state;                                                                            \
    /* the Task's two flags share this word */                                                     \
    unsigned log_tb : 1;                                                                           \
    unsigned blocking : 1;
#define PA_ASYNCIO_TASK_FIELDS                                                                     \
    unsigned must_cancel : 1;                                                                      \
    unsigned log_destroy_pending : 1;                                                              \
    int num_cancels_requested;                                                                     \
    PyObject *fut_waiter;                                                                          \
    PyObject *coro;                                                                                \
    PyObject *name;                                                                                \
    PyObject *context;
#define PA_FUTURE_MANAGED_DICT 1
#else
#define PA_ASYNCIO_FUTURE_FIELDS                                                                   \
    PyObject_HEAD                                                                                  \
    PyObject *loop;                                                                                \
    PyObject *callback0;                                                                           \
    PyObject *context0;                                                                            \
    PyObject *callbacks;                                                                           \
    PyObject *exception;                                                                           \
    PyObject *exception_tb;                                                                        \
    PyObject *result;                                                                              \
    PyObject *source_tb;                                                                           \
    PyObject *cancel_msg;                                                                          \
    pa_fut_state state;                                                                            \
    int log_tb;                                                                                    \
    int blocking;                                                                                  \
    PyObject *dict;                                                                                \
    PyObject *weakreflist;                                                                         \
    PyObject *cancelled_exc;
#define PA_ASYNCIO_TASK_FIELDS                                                                     \
    PyObject *fut_waiter;                                                                          \
    PyObject *coro;                                                                                \
    PyObject *name;                                                                                \
    PyObject *context;                                                                             \
    int must_cancel;                                                                               \
    int log_destroy_pending;                                                                       \
    int num_cancels_requested;
#define PA_FUTURE_MANAGED_DICT 0
#endif

/* The instance dict and weak references of a Future or Task, wherever the
 * interpreter keeps them. */
#if PA_FUTURE_MANAGED_DICT
#define PA_FUTURE_VISIT_DICT(fut, visit, arg)                                                      \
    do {                                                                                           \
        int vret_ = PyObject_VisitManagedDict((PyObject *)(fut), visit, arg);                      \
        if (vret_) {                                                                               \
            return vret_;                                                                          \
        }                                                                                          \
    } while (0)
#define PA_FUTURE_CLEAR_DICT(fut) PyObject_ClearManagedDict((PyObject *)(fut))
#define PA_FUTURE_CLEAR_WEAKREFS(fut) PyObject_ClearWeakRefs((PyObject *)(fut))
#else
#define PA_FUTURE_VISIT_DICT(fut, visit, arg) Py_VISIT((fut)->dict)
#define PA_FUTURE_CLEAR_DICT(fut) Py_CLEAR((fut)->dict)
#define PA_FUTURE_CLEAR_WEAKREFS(fut)                                                              \
    do {                                                                                           \
        if ((fut)->weakreflist != NULL) {                                                          \
            PyObject_ClearWeakRefs((PyObject *)(fut));                                             \
        }                                                                                          \
    } while (0)
#endif

/* Before 3.13, Popen names cwd as the file of any failure of its child
 * before exec (it could not tell them apart); 3.13 names it for chdir only. */
#define PA_PRE_EXEC_FAILURE_NAMES_CWD (PY_VERSION_HEX < 0x030D0000)

/* From 3.12 Popen's C helper reads its int arguments (the child's stdio
 * fds, umask, process group) with PyLong_AsInt()'s words for one too large
 * or too small; 3.11's with PyArg_ParseTuple()'s, as spawn() does. */
#define PA_SPAWN_OVERFLOW_WORDS_OF_ASINT (PY_VERSION_HEX >= 0x030C0000)

#endif /* PYASYNC_COMPAT_H */
