/*
 * taskgroup.c - pyasync.TaskGroup: asyncio.TaskGroup of each supported
 * CPython version, in C.
 *
 * __aenter__ and __aexit__ return a TaskGroupExit, an awaitable written as a
 * small state machine. For __aenter__ it runs the entry checks when awaited
 * and returns the group. For __aexit__ it runs the prelude of asyncio's
 * __aexit__ on its
 * first step, then yields the group's "all tasks done" future as long as
 * tasks remain (a CancelledError thrown in while waiting aborts the group),
 * then runs the epilogue: re-raise a base error or the parent's cancellation,
 * or raise the BaseExceptionGroup of the tasks' errors.
 *
 * Version differences are the PA_TASKGROUP_* flags of compat.h.
 */
#include "taskgroup.h"
#include "future.h"
#include "loop.h"
#include "task.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *loop;
    PyObject *parent_task;
    PyObject *tasks;            /* set of the tasks not done yet */
    PyObject *errors;           /* list; NULL once raised (asyncio sets None) */
    PyObject *base_error;       /* a SystemExit/KeyboardInterrupt to re-raise */
    PyObject *on_completed_fut; /* set while __aexit__ waits for the tasks */
    PyObject *on_task_done;     /* bound C callable: the tasks' done-callback */
    PyObject *weakreflist;
    char entered;
    char exiting;
    char aborting;
    char parent_cancel_requested;
} TaskGroupObject;

typedef struct {
    PyObject_HEAD
    TaskGroupObject *tg;
    char is_enter;       /* awaiting __aenter__ (else __aexit__) */
    PyObject *et;        /* exception type leaving the block, or NULL */
    PyObject *exc;       /* its value */
    PyObject *propagate; /* the CancelledError to re-raise, or NULL */
    char started;
    char finished;
} ExitObject;

/* ---------------------------------------------------------------- helpers */

static int
is_base_error(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

/* The parent task or the loop of a group that __init__() reset while its
 * tasks or its __aexit__ were still going (asyncio's would fail on None). */
static int
require_entered(PyObject *obj)
{
    if (obj == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TaskGroup was re-initialized while in use");
        return -1;
    }
    return 0;
}

/* 1/0 for a method returning a bool, -1 on error. */
static int
call_bool_method(PyObject *obj, const char *name)
{
    if (require_entered(obj) < 0) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(obj, name, NULL);
    if (res == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(res);
    Py_DECREF(res);
    return r;
}

static Py_ssize_t
call_int_method(PyObject *obj, const char *name)
{
    if (require_entered(obj) < 0) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(obj, name, NULL);
    if (res == NULL) {
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(res);
    Py_DECREF(res);
    return n;
}

static int
call_void_method(PyObject *obj, const char *name)
{
    if (require_entered(obj) < 0) {
        return -1;
    }
    PyObject *res = PyObject_CallMethod(obj, name, NULL);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static void
raise_object(PyObject *exc)
{
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
}

/* Our exact Future/Task types are read directly; anything else (subclasses
 * included, which may override the methods) through its methods. */
static inline int
is_exact(pa_state *st, PyObject *obj)
{
    return Py_IS_TYPE(obj, st->TaskType) || Py_IS_TYPE(obj, st->FutureType);
}

static int
fut_done(pa_state *st, PyObject *fut)
{
    if (is_exact(st, fut)) {
        return ((FutureObject *)fut)->state != PA_FUT_PENDING;
    }
    return call_bool_method(fut, "done");
}

/* Cancel every task not done yet (a snapshot: cancel() may run code). */
static int
tg_abort(TaskGroupObject *tg)
{
    tg->aborting = 1;
    PyObject *snapshot = PySequence_List(tg->tasks);
    if (snapshot == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(snapshot) && rc == 0; i++) {
        PyObject *t = PyList_GET_ITEM(snapshot, i);
        int done = fut_done(pa_state_of((PyObject *)tg), t);
        if (done < 0) {
            rc = -1;
        } else if (!done) {
            rc = call_void_method(t, "cancel");
        }
    }
    Py_DECREF(snapshot);
    return rc;
}

/* Whether the loop's create_task() is LoopBase's own (not replaced). */
static int
type_has_our_create_task(pa_state *st, PyObject *loop)
{
    PyObject *ours = PyDict_GetItemString(st->LoopType->tp_dict, "create_task"); /* borrowed */
    PyObject *found = PyObject_GetAttrString(loop, "create_task");
    if (found == NULL) {
        PyErr_Clear();
        return 0;
    }
    /* A bound method of our descriptor: compare the function it wraps. */
    int same = PyCFunction_Check(found) && ours != NULL &&
               PyCFunction_GET_FUNCTION(found) ==
                   ((PyMethodDescrObject *)ours)->d_method->ml_meth;
    Py_DECREF(found);
    return same;
}

/* Refuse create_task(): close the coroutine (3.13) and raise. */
static PyObject *
refuse(TaskGroupObject *tg, PyObject *coro, const char *what)
{
#if PA_TASKGROUP_313
    PyObject *res = PyObject_CallMethod(coro, "close", NULL);
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
#else
    (void)coro;
#endif
    PyErr_Format(PyExc_RuntimeError, "TaskGroup %R %s", tg, what);
    return NULL;
}

/* ---------------------------------------------------------------- done-callback */

static PyObject *
tg_on_task_done(PyObject *self, PyObject *task)
{
    TaskGroupObject *tg = (TaskGroupObject *)self;
    pa_state *st = pa_state_of(self);
    if (PySet_Discard(tg->tasks, task) < 0) {
        return NULL;
    }
    if (tg->on_completed_fut != NULL && PySet_GET_SIZE(tg->tasks) == 0) {
        PyObject *fut = Py_NewRef(tg->on_completed_fut);
        int done = fut_done(st, fut);
        int rc = done;
        if (done == 0) {
            if (is_exact(st, fut)) {
                rc = pa_future_set_result(st, (FutureObject *)fut, Py_True);
            } else {
                PyObject *res = PyObject_CallMethod(fut, "set_result", "O", Py_True);
                rc = res ? 0 : -1;
                Py_XDECREF(res);
            }
        }
        Py_DECREF(fut);
        if (rc < 0) {
            return NULL;
        }
    }
    PyObject *exc;
    if (is_exact(st, task)) {
        FutureObject *f = (FutureObject *)task;
        if (f->state == PA_FUT_CANCELLED) {
            Py_RETURN_NONE;
        }
        f->log_tb = 0; /* exception() retrieves it */
        exc = Py_NewRef(f->exception ? f->exception : Py_None);
    } else {
        int cancelled = call_bool_method(task, "cancelled");
        if (cancelled < 0) {
            return NULL;
        }
        if (cancelled) {
            Py_RETURN_NONE;
        }
        exc = PyObject_CallMethod(task, "exception", NULL);
        if (exc == NULL) {
            return NULL;
        }
    }
    if (exc == Py_None) {
        Py_DECREF(exc);
        Py_RETURN_NONE;
    }
    if (tg->errors != NULL && PyList_Append(tg->errors, exc) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    if (is_base_error(exc) && tg->base_error == NULL) {
        tg->base_error = Py_NewRef(exc);
    }
    int parent_done = call_bool_method(tg->parent_task, "done");
    if (parent_done < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    if (parent_done) {
        PyObject *msg = PyUnicode_FromFormat(
            "Task %R has errored out but its parent task %S is already completed", task,
            tg->parent_task);
        int rc = msg ? pa_loop_report(st, tg->loop, msg, st->str_task, task, exc, NULL) : -1;
        Py_XDECREF(msg);
        Py_DECREF(exc);
        if (rc < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_DECREF(exc);
    if (!tg->aborting && !tg->parent_cancel_requested) {
        if (tg_abort(tg) < 0) {
            return NULL;
        }
        tg->parent_cancel_requested = 1;
        if (call_void_method(tg->parent_task, "cancel") < 0) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef tg_on_task_done_def = {"_on_task_done", (PyCFunction)tg_on_task_done, METH_O,
                                          NULL};

/* ---------------------------------------------------------------- TaskGroup methods */

/* A subclass may skip __init__: refuse to work on a half-made group. */
static int
ensure_init(TaskGroupObject *tg)
{
    if (tg->tasks == NULL || tg->errors == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TaskGroup object is not initialized");
        return -1;
    }
    return 0;
}

/* The body of __aenter__, run when it is awaited (as an `async def` would). */
static int
tg_enter(TaskGroupObject *self)
{
    pa_state *st = pa_state_of((PyObject *)self);
    if (ensure_init(self) < 0) {
        return -1;
    }
    if (self->entered) {
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R has already been entered", self);
        return -1;
    }
    if (self->loop == NULL) {
        self->loop = PyObject_CallNoArgs(st->get_running_loop_strict);
        if (self->loop == NULL) {
            return -1;
        }
    }
    Py_XSETREF(self->parent_task, PyObject_CallOneArg(st->current_task, self->loop));
    if (self->parent_task == NULL) {
        return -1;
    }
    if (self->parent_task == Py_None) {
        Py_CLEAR(self->parent_task);
        PyErr_Format(PyExc_RuntimeError, "TaskGroup %R cannot determine the parent task", self);
        return -1;
    }
    if (self->on_task_done == NULL) {
        self->on_task_done = PyCFunction_New(&tg_on_task_done_def, (PyObject *)self);
        if (self->on_task_done == NULL) {
            return -1;
        }
    }
    self->entered = 1;
    return 0;
}

static ExitObject *
new_await(TaskGroupObject *self, int is_enter, PyObject *et, PyObject *exc)
{
    pa_state *st = pa_state_of((PyObject *)self);
    ExitObject *ex = PyObject_GC_New(ExitObject, st->TaskGroupExitType);
    if (ex == NULL) {
        return NULL;
    }
    ex->tg = (TaskGroupObject *)Py_NewRef(self);
    ex->is_enter = (char)is_enter;
    ex->et = et == NULL || et == Py_None ? NULL : Py_NewRef(et);
    ex->exc = exc == NULL || exc == Py_None ? NULL : Py_NewRef(exc);
    ex->propagate = NULL;
    ex->started = 0;
    ex->finished = 0;
    PyObject_GC_Track(ex);
    return ex;
}

static PyObject *
TaskGroup_aenter(TaskGroupObject *self, PyObject *Py_UNUSED(ignored))
{
    return (PyObject *)new_await(self, 1, NULL, NULL);
}

static PyObject *
TaskGroup_aexit(TaskGroupObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__aexit__ expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (ensure_init(self) < 0 || !self->entered) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_RuntimeError, "TaskGroup %R has not been entered", self);
        }
        return NULL;
    }
    return (PyObject *)new_await(self, 0, args[0], args[1]);
}

static PyObject *
TaskGroup_create_task(TaskGroupObject *self, PyObject *const *args, Py_ssize_t nargsf,
                      PyObject *kwnames)
{
    pa_state *st = pa_state_of((PyObject *)self);
    PyObject *name, *context;
    if (pa_parse_create_task_args(args, nargsf, kwnames, &name, &context) < 0) {
        return NULL;
    }
    PyObject *coro = args[0];
    if (ensure_init(self) < 0) {
        return NULL;
    }
    if (!self->entered) {
        return refuse(self, coro, "has not been entered");
    }
    if (self->exiting && PySet_GET_SIZE(self->tasks) == 0) {
        return refuse(self, coro, "is finished");
    }
    if (self->aborting) {
        return refuse(self, coro, "is shutting down");
    }
    PyObject *task;
    if (pa_loop_check(st, self->loop) && ((LoopObject *)self->loop)->task_factory == NULL &&
        type_has_our_create_task(st, self->loop)) {
        task = pa_task_new(st, coro, self->loop, name, context, 0);
    } else {
        PyObject *meth = PyObject_GetAttrString(self->loop, "create_task");
        if (meth == NULL) {
            return NULL;
        }
        PyObject *callargs[3] = {coro, name ? name : Py_None, context};
        task = PyObject_Vectorcall(meth, callargs, 1,
                                   context == NULL ? st->kwnames_name : st->kwnames_name_context);
        Py_DECREF(meth);
    }
    if (task == NULL) {
        return NULL;
    }
#if PA_TASKGROUP_HANDLES_DONE_TASKS
    int done = fut_done(st, task);
    if (done < 0) {
        goto error;
    }
    if (done) {
        PyObject *r = tg_on_task_done((PyObject *)self, task);
        if (r == NULL) {
            goto error;
        }
        Py_DECREF(r);
        return task;
    }
    if (PySet_Add(self->tasks, task) < 0) {
        goto error;
    }
#endif
    if (is_exact(st, task)) {
        if (pa_future_add_done_callback_here(st, (FutureObject *)task, self->on_task_done) < 0) {
            goto error;
        }
    } else {
        PyObject *res = PyObject_CallMethod(task, "add_done_callback", "O", self->on_task_done);
        if (res == NULL) {
            goto error;
        }
        Py_DECREF(res);
    }
#if !PA_TASKGROUP_HANDLES_DONE_TASKS
    if (PySet_Add(self->tasks, task) < 0) {
        goto error;
    }
#endif
    return task;

error:
    Py_DECREF(task);
    return NULL;
}

static PyObject *
TaskGroup_repr(TaskGroupObject *self)
{
    if (self->tasks == NULL) {
        return PyUnicode_FromString("<TaskGroup>");
    }
    PyObject *parts = PyList_New(0);
    if (parts == NULL) {
        return NULL;
    }
    PyObject *item = PyUnicode_FromString("");
    int ok = item && PyList_Append(parts, item) == 0;
    Py_XDECREF(item);
    if (ok && PySet_GET_SIZE(self->tasks) > 0) {
        item = PyUnicode_FromFormat("tasks=%zd", PySet_GET_SIZE(self->tasks));
        ok = item && PyList_Append(parts, item) == 0;
        Py_XDECREF(item);
    }
    if (ok && self->errors != NULL && PyList_GET_SIZE(self->errors) > 0) {
        item = PyUnicode_FromFormat("errors=%zd", PyList_GET_SIZE(self->errors));
        ok = item && PyList_Append(parts, item) == 0;
        Py_XDECREF(item);
    }
    if (ok && (self->aborting || self->entered)) {
        item = PyUnicode_FromString(self->aborting ? "cancelling" : "entered");
        ok = item && PyList_Append(parts, item) == 0;
        Py_XDECREF(item);
    }
    PyObject *sep = ok ? PyUnicode_FromString(" ") : NULL;
    PyObject *joined = sep ? PyUnicode_Join(sep, parts) : NULL;
    PyObject *res = joined ? PyUnicode_FromFormat("<TaskGroup%U>", joined) : NULL;
    Py_XDECREF(joined);
    Py_XDECREF(sep);
    Py_DECREF(parts);
    return res;
}

/* ---------------------------------------------------------------- __aexit__'s awaitable */

/* asyncio's __aexit__ up to its first await. */
static int
exit_prelude(ExitObject *ex, pa_state *st)
{
    TaskGroupObject *tg = ex->tg;
    tg->exiting = 1;
    if (ex->exc != NULL && is_base_error(ex->exc) && tg->base_error == NULL) {
        tg->base_error = Py_NewRef(ex->exc);
    }
#if PA_TASKGROUP_313
    int is_cancel = ex->et != NULL && PyType_Check(ex->et) &&
                    PyObject_IsSubclass(ex->et, st->CancelledError) == 1;
    if (is_cancel) {
        Py_XSETREF(ex->propagate, Py_XNewRef(ex->exc));
    }
#else
    if (ex->et == st->CancelledError) {
        Py_XSETREF(ex->propagate, Py_XNewRef(ex->exc));
    }
    if (tg->parent_cancel_requested) {
        Py_ssize_t left = call_int_method(tg->parent_task, "uncancel");
        if (left == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (left == 0) {
            Py_CLEAR(ex->propagate);
        }
    }
#endif
    if (ex->et != NULL && !tg->aborting) {
        return tg_abort(tg);
    }
    return 0;
}

/* asyncio's __aexit__ after the tasks are done: what to raise. */
static PySendResult
exit_epilogue(ExitObject *ex, pa_state *st, PyObject **result)
{
    TaskGroupObject *tg = ex->tg;
    if (tg->base_error != NULL) {
        raise_object(tg->base_error);
        return PYGEN_ERROR;
    }
#if PA_TASKGROUP_313
    if (tg->parent_cancel_requested) {
        Py_ssize_t left = call_int_method(tg->parent_task, "uncancel");
        if (left == -1 && PyErr_Occurred()) {
            return PYGEN_ERROR;
        }
        if (left == 0) {
            Py_CLEAR(ex->propagate);
        }
    }
#endif
    Py_ssize_t nerrors = tg->errors ? PyList_GET_SIZE(tg->errors) : 0;
    if (ex->propagate != NULL && nerrors == 0) {
        raise_object(ex->propagate);
        return PYGEN_ERROR;
    }
#if PA_TASKGROUP_313
    int keep = ex->et != NULL &&
               !(PyType_Check(ex->et) && PyObject_IsSubclass(ex->et, st->CancelledError) == 1);
#else
    int keep = ex->et != NULL && ex->et != st->CancelledError;
#endif
    if (keep && tg->errors != NULL && PyList_Append(tg->errors, ex->exc) < 0) {
        return PYGEN_ERROR;
    }
    nerrors = tg->errors ? PyList_GET_SIZE(tg->errors) : 0;
    if (nerrors > 0) {
#if PA_TASKGROUP_313
        int cancelling = call_bool_method(tg->parent_task, "cancelling");
        if (cancelling < 0) {
            return PYGEN_ERROR;
        }
        if (cancelling && (call_void_method(tg->parent_task, "uncancel") < 0 ||
                           call_void_method(tg->parent_task, "cancel") < 0)) {
            return PYGEN_ERROR;
        }
#endif
        PyObject *errors = tg->errors;
        tg->errors = NULL;
        PyObject *group = PyObject_CallFunction(PyExc_BaseExceptionGroup, "sO",
                                                "unhandled errors in a TaskGroup", errors);
        Py_DECREF(errors);
        if (group == NULL) {
            return PYGEN_ERROR;
        }
        PyException_SetCause(group, NULL); /* raise ... from None */
        raise_object(group);
        Py_DECREF(group);
        return PYGEN_ERROR;
    }
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

/* One step: `thrown` is the exception thrown in while waiting, or NULL. */
static PySendResult
exit_step(ExitObject *ex, PyObject *thrown, PyObject **result)
{
    *result = NULL;
    TaskGroupObject *tg = ex->tg;
    pa_state *st = pa_state_of((PyObject *)tg);
    if (ex->finished) {
        if (thrown != NULL) {
            raise_object(thrown);
            return PYGEN_ERROR;
        }
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    if (ex->is_enter) {
        ex->finished = 1;
        if (tg_enter(tg) < 0) {
            return PYGEN_ERROR;
        }
        *result = Py_NewRef((PyObject *)tg);
        return PYGEN_RETURN;
    }
    if (!ex->started) {
        ex->started = 1;
        if (exit_prelude(ex, st) < 0) {
            ex->finished = 1;
            return PYGEN_ERROR;
        }
    } else if (thrown != NULL) {
        int is_cancel = PyObject_IsInstance(thrown, st->CancelledError);
        if (is_cancel <= 0) {
            ex->finished = 1;
            if (is_cancel == 0) {
                raise_object(thrown);
            }
            return PYGEN_ERROR;
        }
        if (!tg->aborting) {
            Py_XSETREF(ex->propagate, Py_NewRef(thrown));
            if (tg_abort(tg) < 0) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
        }
        Py_CLEAR(tg->on_completed_fut);
    } else {
        Py_CLEAR(tg->on_completed_fut);
    }
    while (PySet_GET_SIZE(tg->tasks) > 0) {
        if (tg->on_completed_fut == NULL) {
            if (require_entered(tg->loop) < 0) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
            tg->on_completed_fut = PyObject_CallMethod(tg->loop, "create_future", NULL);
            if (tg->on_completed_fut == NULL) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
        }
        PyObject *fut = tg->on_completed_fut;
        int done = call_bool_method(fut, "done");
        if (done < 0) {
            ex->finished = 1;
            return PYGEN_ERROR;
        }
        if (!done) {
            /* Wait: the awaiting task sees the blocking flag. */
            if (PyObject_SetAttr(fut, st->str_asyncio_future_blocking, Py_True) < 0) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
            *result = Py_NewRef(fut);
            return PYGEN_NEXT;
        }
        /* Already done: `await` would not suspend; a cancelled one raises. */
        int cancelled = call_bool_method(fut, "cancelled");
        if (cancelled < 0) {
            ex->finished = 1;
            return PYGEN_ERROR;
        }
        if (cancelled && !tg->aborting) {
            PyObject *err = PyObject_CallNoArgs(st->CancelledError);
            if (err == NULL) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
            Py_XSETREF(ex->propagate, err);
            if (tg_abort(tg) < 0) {
                ex->finished = 1;
                return PYGEN_ERROR;
            }
        }
        Py_CLEAR(tg->on_completed_fut);
    }
    ex->finished = 1;
    return exit_epilogue(ex, st, result);
}

static PySendResult
Exit_am_send(ExitObject *ex, PyObject *Py_UNUSED(arg), PyObject **result)
{
    return exit_step(ex, NULL, result);
}

static PyObject *
Exit_iternext(ExitObject *ex)
{
    PyObject *res;
    PySendResult r = exit_step(ex, NULL, &res);
    return pa_iternext_from_send(r, res);
}

/* send() and throw() are methods: the end is a StopIteration raised even
 * for None (tp_iternext alone may end by returning NULL without one). */
static PyObject *
finish_method(PySendResult r, PyObject *res)
{
    if (r == PYGEN_RETURN && res == Py_None) {
        Py_DECREF(res);
        PyErr_SetNone(PyExc_StopIteration);
        return NULL;
    }
    return pa_iternext_from_send(r, res);
}

static PyObject *
Exit_send(ExitObject *ex, PyObject *Py_UNUSED(value))
{
    PyObject *res;
    PySendResult r = exit_step(ex, NULL, &res);
    return finish_method(r, res);
}

static PyObject *
Exit_throw(ExitObject *ex, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *exc = pa_throw_args_to_exception(args, nargs);
    if (exc == NULL) {
        return NULL;
    }
    PyObject *res;
    PySendResult r = exit_step(ex, exc, &res);
    Py_DECREF(exc);
    return finish_method(r, res);
}

static PyObject *
Exit_close(ExitObject *ex, PyObject *Py_UNUSED(ignored))
{
    ex->finished = 1;
    Py_RETURN_NONE;
}

static int
Exit_traverse(ExitObject *ex, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(ex));
    Py_VISIT(ex->tg);
    Py_VISIT(ex->et);
    Py_VISIT(ex->exc);
    Py_VISIT(ex->propagate);
    return 0;
}

static int
Exit_clear(ExitObject *ex)
{
    Py_CLEAR(ex->tg);
    Py_CLEAR(ex->et);
    Py_CLEAR(ex->exc);
    Py_CLEAR(ex->propagate);
    return 0;
}

static void
Exit_dealloc(ExitObject *ex)
{
    PyTypeObject *tp = Py_TYPE(ex);
    PyObject_GC_UnTrack(ex);
    (void)Exit_clear(ex);
    tp->tp_free(ex);
    Py_DECREF(tp);
}

static PyMethodDef Exit_methods[] = {
    {"send", (PyCFunction)Exit_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))Exit_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)Exit_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Exit_slots[] = {
    {Py_tp_dealloc, Exit_dealloc},
    {Py_tp_traverse, Exit_traverse},
    {Py_tp_clear, Exit_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Exit_iternext},
    {Py_tp_methods, Exit_methods},
    {Py_am_await, PyObject_SelfIter},
    {Py_am_send, Exit_am_send},
    {0, NULL},
};

static PyType_Spec Exit_spec = {
    .name = "pyasync.TaskGroupExit",
    .basicsize = sizeof(ExitObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Exit_slots,
};

/* ---------------------------------------------------------------- TaskGroup type */

static int
TaskGroup_init(TaskGroupObject *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "TaskGroup() takes no arguments");
        return -1;
    }
    Py_CLEAR(self->loop);
    Py_CLEAR(self->parent_task);
    Py_CLEAR(self->base_error);
    Py_CLEAR(self->on_completed_fut);
    Py_XSETREF(self->tasks, PySet_New(NULL));
    Py_XSETREF(self->errors, PyList_New(0));
    if (self->tasks == NULL || self->errors == NULL) {
        return -1;
    }
    self->entered = self->exiting = self->aborting = self->parent_cancel_requested = 0;
    return 0;
}

static int
TaskGroup_traverse(TaskGroupObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->loop);
    Py_VISIT(self->parent_task);
    Py_VISIT(self->tasks);
    Py_VISIT(self->errors);
    Py_VISIT(self->base_error);
    Py_VISIT(self->on_completed_fut);
    Py_VISIT(self->on_task_done);
    return 0;
}

static int
TaskGroup_clear(TaskGroupObject *self)
{
    Py_CLEAR(self->loop);
    Py_CLEAR(self->parent_task);
    Py_CLEAR(self->tasks);
    Py_CLEAR(self->errors);
    Py_CLEAR(self->base_error);
    Py_CLEAR(self->on_completed_fut);
    Py_CLEAR(self->on_task_done);
    return 0;
}

static void
TaskGroup_dealloc(TaskGroupObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    (void)TaskGroup_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

#define TG_GETTER(field)                                                                           \
    static PyObject *TaskGroup_get_##field(TaskGroupObject *self, void *closure)                   \
    {                                                                                              \
        return pa_ref_or_none(self->field);                                                           \
    }
TG_GETTER(loop)
TG_GETTER(parent_task)
TG_GETTER(tasks)
TG_GETTER(errors)
TG_GETTER(base_error)
TG_GETTER(on_completed_fut)

#define TG_FLAG(field)                                                                             \
    static PyObject *TaskGroup_get_##field(TaskGroupObject *self, void *closure)                   \
    {                                                                                              \
        return PyBool_FromLong(self->field);                                                       \
    }
TG_FLAG(entered)
TG_FLAG(exiting)
TG_FLAG(aborting)
TG_FLAG(parent_cancel_requested)

static PyGetSetDef TaskGroup_getset[] = {
    {"_loop", (getter)TaskGroup_get_loop, NULL, NULL, NULL},
    {"_parent_task", (getter)TaskGroup_get_parent_task, NULL, NULL, NULL},
    {"_tasks", (getter)TaskGroup_get_tasks, NULL, NULL, NULL},
    {"_errors", (getter)TaskGroup_get_errors, NULL, NULL, NULL},
    {"_base_error", (getter)TaskGroup_get_base_error, NULL, NULL, NULL},
    {"_on_completed_fut", (getter)TaskGroup_get_on_completed_fut, NULL, NULL, NULL},
    {"_entered", (getter)TaskGroup_get_entered, NULL, NULL, NULL},
    {"_exiting", (getter)TaskGroup_get_exiting, NULL, NULL, NULL},
    {"_aborting", (getter)TaskGroup_get_aborting, NULL, NULL, NULL},
    {"_parent_cancel_requested", (getter)TaskGroup_get_parent_cancel_requested, NULL, NULL,
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef TaskGroup_methods[] = {
    {"__aenter__", (PyCFunction)TaskGroup_aenter, METH_NOARGS, NULL},
    {"__aexit__", (PyCFunction)(void (*)(void))TaskGroup_aexit, METH_FASTCALL, NULL},
    {"create_task", (PyCFunction)(void (*)(void))TaskGroup_create_task,
     METH_FASTCALL | METH_KEYWORDS,
     "create_task($self, coro, /, *, name=None, context=None)\n--\n\nSchedule a coroutine as a "
     "Task."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef TaskGroup_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TaskGroupObject, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot TaskGroup_slots[] = {
    {Py_tp_init, TaskGroup_init},
    {Py_tp_dealloc, TaskGroup_dealloc},
    {Py_tp_traverse, TaskGroup_traverse},
    {Py_tp_clear, TaskGroup_clear},
    {Py_tp_repr, TaskGroup_repr},
    {Py_tp_methods, TaskGroup_methods},
    {Py_tp_getset, TaskGroup_getset},
    {Py_tp_members, TaskGroup_members},
    {Py_tp_doc, "Asynchronous context manager for managing groups of tasks (asyncio's, in C)."},
    {0, NULL},
};

static PyType_Spec TaskGroup_spec = {
    .name = "pyasync.TaskGroup",
    .basicsize = sizeof(TaskGroupObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = TaskGroup_slots,
};

int
pa_taskgroup_register_types(PyObject *module, pa_state *st)
{
    st->TaskGroupExitType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Exit_spec, NULL);
    if (st->TaskGroupExitType == NULL) {
        return -1;
    }
    st->TaskGroupType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &TaskGroup_spec, NULL);
    if (st->TaskGroupType == NULL || PyModule_AddType(module, st->TaskGroupType) < 0) {
        return -1;
    }
    return 0;
}
