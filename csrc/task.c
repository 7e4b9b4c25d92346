/*
 * task.c - pyasync.Task: a Future that drives a coroutine.
 *
 * The step logic follows asyncio.Task.__step and __wakeup of each supported
 * CPython version: send into (or throw into) the coroutine, then act on what
 * it yielded:
 *   - one of our futures, blocking: wait on it (wakeup_cb as its callback);
 *   - any object following the asyncio future protocol: the same, through
 *     _asyncio_future_blocking / add_done_callback / cancel;
 *   - None (a bare yield): run again at the next iteration;
 *   - anything else: schedule a step that throws asyncio's RuntimeError.
 * The current task is entered and left through asyncio's own _enter_task /
 * _leave_task, and tasks are registered with asyncio's _register_task, so
 * asyncio.current_task() and asyncio.all_tasks() see them.
 *
 * Ownership: a queued task is owned by the ready queue like any handle; its
 * pending_arg (exception or future) is owned by the task until the entry
 * runs. A task holds no callable bound to itself, so a finished task is freed
 * by reference counting alone.
 */
#include "task.h"
#include "handle.h"
#include "loop.h"
#include "taskregistry.h"

static PyObject *task_step(pa_state *st, TaskObject *task, PyObject *exc);

/* ---------------------------------------------------------------- helpers */

/* A task created from an empty context keeps context == NULL until it needs
 * one (its first step, or get_context()): the fresh empty Context made then
 * is equivalent to the copy asyncio takes at creation, and a task that runs
 * once and finishes returns it to CPython's context free list at once. */
static PyObject *
task_context(TaskObject *task)
{
    if (task->context == NULL) {
        task->context = PyContext_New();
    }
    return task->context; /* borrowed; NULL with an exception on failure */
}

/* The context, for a caller that keeps it (task.h): from now on it is the
 * task's context for good. */
PyObject *
pa_task_context_shared(TaskObject *task)
{
    task->context_shared = 1;
    return task_context(task);
}

/* When a task is done and its context was made by us, never handed out and
 * is still empty, nobody can tell it from a fresh one: drop it, so that
 * finished tasks kept in a list (gather's children) hold no Context. */
static void
release_private_context(TaskObject *task)
{
    if (task->state != PA_FUT_PENDING && !task->context_shared && task->context != NULL &&
        PyObject_Length(task->context) == 0) {
        Py_CLEAR(task->context);
    }
}

static inline int
is_exact_future_or_task(pa_state *st, PyObject *obj)
{
    return Py_IS_TYPE(obj, st->FutureType) || Py_IS_TYPE(obj, st->TaskType);
}

static int
call_helper2(PyObject *func, PyObject *a, PyObject *b, PyObject **result)
{
    PyObject *args[2] = {a, b};
    PyObject *res = PyObject_Vectorcall(func, args, 2, NULL);
    if (res == NULL) {
        return -1;
    }
    if (result != NULL) {
        *result = res;
    } else {
        Py_DECREF(res);
    }
    return 0;
}

#if PA_HAS_EAGER_TASKS
static int
call_helper1(PyObject *func, PyObject *arg)
{
    PyObject *res = PyObject_CallOneArg(func, arg);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}
#endif

static PyMethodDef task_step_def;
static PyMethodDef task_wakeup_def;

/* Whether an entry for `task` can go straight into its loop's ready queue. */
static inline int
can_queue_directly(pa_state *st, TaskObject *task, PyObject *loop)
{
    return task->pending == PA_TASK_NONE && pa_loop_fast_path(st, loop);
}

/* Queue the task itself; `arg` is a new reference or NULL. Inlined: it is
 * most of a task step's scheduling. */
static inline Py_ALWAYS_INLINE int
queue_task(pa_state *st, TaskObject *task, int kind, PyObject *arg)
{
    LoopObject *lp = (LoopObject *)task->loop;
    if (lp->closed) {
        PyObject *kept[2] = {(PyObject *)task, arg};
        (void)pa_loop_raise_closed(lp, kept, arg != NULL ? 2 : 1);
        Py_XDECREF(arg);
        return -1;
    }
    task->pending = (char)kind;
    task->pending_arg = arg;
    if (pa_loop_push_ready(lp, (PyObject *)task, 0) < 0) {
        pa_task_drop_pending(task);
        return -1;
    }
    return 0;
}

/* loop.call_soon(<bound C callable>, *args, context=task's context). */
static int
call_soon_bound(pa_state *st, TaskObject *task, PyMethodDef *def, PyObject *arg)
{
    PyObject *ctx = pa_task_context_shared(task);
    PyObject *callable = ctx ? PyCFunction_New(def, (PyObject *)task) : NULL;
    if (callable == NULL) {
        return -1;
    }
    int rc = pa_call_soon(st, task->loop, callable, arg ? &arg : NULL, arg ? 1 : 0, ctx);
    Py_DECREF(callable);
    return rc;
}

static int
schedule_step(pa_state *st, TaskObject *task, PyObject *exc)
{
    if (can_queue_directly(st, task, task->loop)) {
        return queue_task(st, task, PA_TASK_STEP, Py_XNewRef(exc));
    }
    return call_soon_bound(st, task, &task_step_def, exc);
}

int
pa_task_schedule_wakeup(pa_state *st, TaskObject *task, PyObject *fut)
{
    if (can_queue_directly(st, task, task->loop)) {
        return queue_task(st, task, PA_TASK_WAKEUP, Py_NewRef(fut));
    }
    return call_soon_bound(st, task, &task_wakeup_def, fut);
}

PyObject *
pa_task_wakeup_callable(TaskObject *task)
{
    return PyCFunction_New(&task_wakeup_def, (PyObject *)task);
}

void
pa_task_drop_pending(TaskObject *task)
{
    task->pending = PA_TASK_NONE;
    Py_CLEAR(task->pending_arg);
}

/* Schedule a step that throws RuntimeError(message) into the coroutine. */
static int
schedule_error(pa_state *st, TaskObject *task, PyObject *message)
{
    if (message == NULL) {
        return -1;
    }
    PyObject *exc = PyObject_CallOneArg(PyExc_RuntimeError, message);
    Py_DECREF(message);
    if (exc == NULL) {
        return -1;
    }
    int rc = schedule_step(st, task, exc);
    Py_DECREF(exc);
    return rc;
}

/* future.cancel(msg=msg) for the future a task waits on: direct for our
 * exact types, the method otherwise. 1 if it was cancelled, 0 if not. */

static int
cancel_waiter(pa_state *st, PyObject *waiter, PyObject *msg)
{
    if (Py_IS_TYPE(waiter, st->FutureType)) {
        return pa_future_cancel(st, (FutureObject *)waiter, msg);
    }
    if (Py_IS_TYPE(waiter, st->TaskType)) {
        return pa_task_cancel(st, (TaskObject *)waiter, msg);
    }
    PyObject *meth = PyObject_GetAttr(waiter, st->str_cancel);
    if (meth == NULL) {
        return -1;
    }
    PyObject *args[1] = {msg ? msg : Py_None};
    PyObject *res = PyObject_Vectorcall(meth, args, 0, st->kwnames_msg);
    Py_DECREF(meth);
    if (res == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(res);
    Py_DECREF(res);
    return r;
}

/* asyncio.futures._get_loop(): get_loop() if there is one, else _loop. */
static PyObject *
future_loop(pa_state *st, PyObject *fut)
{
    if (is_exact_future_or_task(st, fut)) {
        PyObject *loop = ((FutureObject *)fut)->loop;
        return Py_NewRef(loop ? loop : Py_None);
    }
    PyObject *getloop;
    int r = pa_get_optional_attr(fut, st->str_get_loop, &getloop);
    if (r < 0) {
        return NULL;
    }
    if (r > 0) {
        PyObject *res = PyObject_CallNoArgs(getloop);
        Py_DECREF(getloop);
        return res;
    }
    return PyObject_GetAttr(fut, st->str_loop_attr);
}

/* ---------------------------------------------------------------- the step */

/* Start waiting on a future the coroutine yielded with blocking set. */
static int
wait_on(pa_state *st, TaskObject *task, PyObject *fut)
{
    if (fut == (PyObject *)task) {
        return schedule_error(st, task, PyUnicode_FromFormat("Task cannot await on itself: %R",
                                                             task));
    }
    if (is_exact_future_or_task(st, fut)) {
        /* Our future (exact type: a subclass may override add_done_callback):
         * register the task itself; the marker tells the future to wake it
         * rather than call it. */
        ((FutureObject *)fut)->blocking = 0;
        if (pa_future_add_done_callback(st, (FutureObject *)fut, (PyObject *)task,
                                        st->wakeup_marker) < 0) {
            return -1;
        }
    } else {
        if (PyObject_SetAttr(fut, st->str_asyncio_future_blocking, Py_False) < 0) {
            return -1;
        }
        PyObject *ctx = pa_task_context_shared(task);
        PyObject *meth = ctx ? PyObject_GetAttr(fut, st->str_add_done_callback) : NULL;
        PyObject *wakeup = meth ? pa_task_wakeup_callable(task) : NULL;
        if (wakeup == NULL) {
            Py_XDECREF(meth);
            return -1;
        }
        PyObject *args[2] = {wakeup, ctx};
        PyObject *res = PyObject_Vectorcall(meth, args, 1, st->kwnames_context);
        Py_DECREF(wakeup);
        Py_DECREF(meth);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    Py_XSETREF(task->fut_waiter, Py_NewRef(fut));
    if (task->must_cancel) {
        int r = cancel_waiter(st, fut, task->cancel_msg);
        if (r < 0) {
            return -1;
        }
        if (r) {
            task->must_cancel = 0;
        }
    }
    return 0;
}

/* Act on what the coroutine yielded. */
static int
handle_yield(pa_state *st, TaskObject *task, PyObject *result)
{
    PyObject *blocking = NULL;
    /* Exact types only, as CPython's Task: a subclass may override the
     * protocol methods (get_loop, add_done_callback). */
    int is_ours = is_exact_future_or_task(st, result);
    if (!is_ours) {
        if (result == Py_None) {
            /* A bare yield gives up the loop for one iteration. */
            return schedule_step(st, task, NULL);
        }
        if (pa_get_optional_attr(result, st->str_asyncio_future_blocking, &blocking) < 0) {
            return -1;
        }
        if (blocking == Py_None) {
            Py_CLEAR(blocking);
        }
    }
    if (is_ours || blocking != NULL) {
        PyObject *loop = future_loop(st, result);
        if (loop == NULL) {
            Py_XDECREF(blocking);
            return -1;
        }
        int same_loop = loop == task->loop;
        Py_DECREF(loop);
        if (!same_loop) {
            Py_XDECREF(blocking);
            return schedule_error(
                st, task,
                PyUnicode_FromFormat("Task %R got Future %R attached to a different loop", task,
                                     result));
        }
        int is_blocking = is_ours ? ((FutureObject *)result)->blocking : PyObject_IsTrue(blocking);
        Py_XDECREF(blocking);
        if (is_blocking < 0) {
            return -1;
        }
        if (is_blocking) {
            return wait_on(st, task, result);
        }
        return schedule_error(
            st, task,
            PyUnicode_FromFormat("yield was used instead of yield from in task %R with %R", task,
                                 result));
    }
    if (PyGen_Check(result)) {
        return schedule_error(st, task,
                              PyUnicode_FromFormat("yield was used instead of yield from for "
                                                   "generator in task %R with %R",
                                                   task, result));
    }
    return schedule_error(st, task, PyUnicode_FromFormat("Task got bad yield: %R", result));
}

/* Send exc (or None) into the coroutine and settle the outcome. Returns -1
 * with an exception set only for what must leave the loop (KeyboardInterrupt,
 * SystemExit) or for internal errors. */
static int
run_and_handle_result(pa_state *st, TaskObject *task, PyObject *exc)
{
    PyObject *coro = Py_NewRef(task->coro);
    PyObject *result = NULL;
    PySendResult status;
    if (exc == NULL) {
        status = PyIter_Send(coro, Py_None, &result);
    } else {
        result = PyObject_CallMethodOneArg(coro, st->str_throw, exc);
        if (result != NULL) {
            status = PYGEN_NEXT;
        } else if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
            PyObject *stop = pa_err_take();
            result = PyObject_GetAttr(stop, st->str_value);
            Py_DECREF(stop);
            status = result ? PYGEN_RETURN : PYGEN_ERROR;
        } else {
            status = PYGEN_ERROR;
        }
    }
    Py_DECREF(coro);
    if (status != PYGEN_NEXT && pa_loop_check(st, task->loop)) {
        ((LoopObject *)task->loop)->metrics.tasks_finished++;
    }

    FutureObject *fut = (FutureObject *)task;
    int rc;
    switch (status) {
    case PYGEN_RETURN:
        if (task->must_cancel) {
            /* Cancelled right before the coroutine returned. */
            task->must_cancel = 0;
            rc = pa_future_cancel(st, fut, task->cancel_msg) < 0 ? -1 : 0;
        } else {
            rc = pa_future_set_result(st, fut, result);
        }
        Py_DECREF(result);
        return rc;
    case PYGEN_NEXT:
        rc = handle_yield(st, task, result);
        Py_DECREF(result);
        return rc;
    default:
        break;
    }
    if (PyErr_ExceptionMatches(st->CancelledError)) {
        /* Keep the original CancelledError: it is what result() raises. */
        Py_XSETREF(fut->cancelled_exc, pa_err_take());
        return pa_future_cancel(st, fut, NULL) < 0 ? -1 : 0;
    }
    int fatal = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
                PyErr_ExceptionMatches(PyExc_SystemExit);
    PyObject *error = pa_err_take();
    rc = pa_future_set_exception(st, fut, error);
    if (rc == 0 && fatal) {
        pa_err_restore(error);
        return -1;
    }
    Py_DECREF(error);
    return rc;
}

static PyObject *
task_step(pa_state *st, TaskObject *task, PyObject *exc)
{
    if (task->state != PA_FUT_PENDING) {
        PyErr_Format(st->InvalidStateError, "_step(): already done: %R, %R", task,
                     exc ? exc : Py_None);
        return NULL;
    }
    PyObject *own_exc = NULL;
    if (task->must_cancel) {
        int is_cancel = exc ? PyObject_IsInstance(exc, st->CancelledError) : 0;
        if (is_cancel < 0) {
            return NULL;
        }
        if (!is_cancel) {
            own_exc = pa_future_make_cancelled_error(st, (FutureObject *)task);
            if (own_exc == NULL) {
                return NULL;
            }
            exc = own_exc;
        }
        task->must_cancel = 0;
    }
    Py_CLEAR(task->fut_waiter);
    if (call_helper2(st->enter_task, task->loop, (PyObject *)task, NULL) < 0) {
        Py_XDECREF(own_exc);
        return NULL;
    }
    int rc = run_and_handle_result(st, task, exc);
    Py_XDECREF(own_exc);
    if (task->state != PA_FUT_PENDING) {
        pa_registry_remove(st, &task->registry_entry);
    }
    PyObject *pending = rc < 0 ? pa_err_take() : NULL;
    if (call_helper2(st->leave_task, task->loop, (PyObject *)task, NULL) < 0) {
        if (pending != NULL) {
            PyObject *leave_exc = pa_err_take();
            PyException_SetContext(leave_exc, pending);
            pa_err_restore(leave_exc);
        }
        return NULL;
    }
    if (pending != NULL) {
        pa_err_restore(pending);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* step_cb: step(exc=None). */
static PyObject *
task_step_entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_step() takes at most 1 argument");
        return NULL;
    }
    PyObject *exc = nargs == 1 && args[0] != Py_None ? args[0] : NULL;
    return task_step(pa_state_of(self), (TaskObject *)self, exc);
}

/* The future the task waits on is done: step with its outcome. */
static PyObject *
task_wakeup(pa_state *st, TaskObject *task, PyObject *fut)
{
    PyObject *res;
    if (is_exact_future_or_task(st, fut)) {
        res = pa_future_result(st, (FutureObject *)fut);
    } else {
        res = PyObject_CallMethod(fut, "result", NULL);
    }
    if (res == NULL) {
        PyObject *exc = pa_err_take();
        PyObject *r = task_step(st, task, exc);
        Py_DECREF(exc);
        return r;
    }
    Py_DECREF(res);
    return task_step(st, task, NULL);
}

static PyObject *
task_wakeup_entry(PyObject *self, PyObject *fut)
{
    return task_wakeup(pa_state_of(self), (TaskObject *)self, fut);
}

int
pa_task_run_pending(pa_state *st, TaskObject *task)
{
    int kind = task->pending;
    PyObject *arg = task->pending_arg; /* owned from here on */
    task->pending = PA_TASK_NONE;
    task->pending_arg = NULL;
    if (kind == PA_TASK_NONE) {
        Py_XDECREF(arg);
        return 0;
    }
    PyObject *ctx = task_context(task);
    if (ctx == NULL) {
        Py_XDECREF(arg);
        return -1;
    }
    Py_INCREF(ctx);
    PyObject *res = NULL;
    if (PyContext_Enter(ctx) == 0) {
        res = kind == PA_TASK_STEP ? task_step(st, task, arg) : task_wakeup(st, task, arg);
        if (PyContext_Exit(ctx) < 0) {
            Py_CLEAR(res);
        }
    }
    Py_DECREF(ctx);
    release_private_context(task);
    int rc = 0;
    if (res == NULL) {
        /* Report it as asyncio would report its Handle: build one now. */
        if (PyErr_ExceptionMatches(PyExc_SystemExit) ||
            PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            rc = -1;
        } else {
            PyObject *exc = pa_err_take();
            PyObject *callable =
                PyCFunction_New(kind == PA_TASK_STEP ? &task_step_def : &task_wakeup_def,
                                (PyObject *)task);
            HandleObject *h = callable ? pa_handle_new(st, st->HandleType, task->loop, callable,
                                                       arg ? &arg : NULL, arg ? 1 : 0,
                                                       pa_task_context_shared(task), 0)
                                       : NULL;
            Py_XDECREF(callable);
            if (h == NULL) {
                Py_DECREF(exc);
                rc = -1;
            } else {
                pa_err_restore(exc);
                rc = pa_handle_report_error(st, h);
                Py_DECREF(h);
            }
        }
    } else {
        Py_DECREF(res);
    }
    Py_XDECREF(arg);
    return rc;
}

static PyMethodDef task_step_def = {"_step", (PyCFunction)(void (*)(void))task_step_entry,
                                    METH_FASTCALL, NULL};
/* Named as CPython's C Task names its own: a future's repr shows
 * "cb=[Task.task_wakeup()]" on both. */
static PyMethodDef task_wakeup_def = {"task_wakeup", (PyCFunction)task_wakeup_entry, METH_O,
                                      NULL};

/* ---------------------------------------------------------------- cancellation */

int
pa_task_cancel(pa_state *st, TaskObject *task, PyObject *msg)
{
    task->log_tb = 0;
    if (task->state != PA_FUT_PENDING) {
        return 0;
    }
    task->num_cancels_requested++;
    if (task->fut_waiter != NULL) {
        /* Keep fut_waiter: it may be a task that ignores the request, and
         * then we have to cancel it again later. */
        PyObject *waiter = Py_NewRef(task->fut_waiter);
        int r = cancel_waiter(st, waiter, msg);
        Py_DECREF(waiter);
        if (r != 0) {
            return r;
        }
    }
    task->must_cancel = 1;
    Py_XSETREF(task->cancel_msg, Py_XNewRef(msg == Py_None ? NULL : msg));
    return 1;
}

/* ---------------------------------------------------------------- eager start */

#if PA_HAS_EAGER_TASKS
/* Run the first step now, inside Task(), as asyncio's eager tasks do. */
static int
eager_start(pa_state *st, TaskObject *task)
{
    PyObject *prev;
    if (call_helper2(st->swap_current_task, task->loop, (PyObject *)task, &prev) < 0) {
        return -1;
    }
    int rc = call_helper1(st->register_eager_task, (PyObject *)task);
    if (rc == 0) {
        if (task_context(task) == NULL || PyContext_Enter(task->context) < 0) {
            rc = -1;
        } else {
            rc = run_and_handle_result(st, task, NULL);
            PyObject *pending = rc < 0 ? pa_err_take() : NULL;
            if (PyContext_Exit(task->context) < 0) {
                rc = -1;
            }
            release_private_context(task);
            if (pending != NULL) {
                pa_err_restore(pending);
            }
        }
        PyObject *pending = rc < 0 ? pa_err_take() : NULL;
        if (call_helper1(st->unregister_eager_task, (PyObject *)task) < 0) {
            rc = -1;
        }
        if (pending != NULL) {
            PyErr_Clear();
            pa_err_restore(pending);
        }
    }
    PyObject *pending = rc < 0 ? pa_err_take() : NULL;
    PyObject *cur = NULL;
    int swap = call_helper2(st->swap_current_task, task->loop, prev, &cur);
    Py_DECREF(prev);
    Py_XDECREF(cur);
    if (pending != NULL) {
        if (swap < 0) {
            PyErr_Clear();
        }
        pa_err_restore(pending);
        return -1;
    }
    if (swap < 0) {
        return -1;
    }
    if (task->state != PA_FUT_PENDING) {
        Py_CLEAR(task->coro);
        return 0;
    }
    return pa_registry_add(st, (PyObject *)task, &task->registry_entry);
}
#endif

/* ---------------------------------------------------------------- type slots */

/* Initialise a task: everything Task.__init__ does after parsing. */
static int
task_init(pa_state *st, TaskObject *self, PyObject *coro, PyObject *loop, PyObject *name,
          PyObject *context, int eager)
{
    self->log_destroy_pending = 0;
    if (pa_future_init(st, (FutureObject *)self, loop) < 0) {
        return -1;
    }
    int is_coro = PyCoro_CheckExact(coro);
    if (!is_coro) {
        PyObject *res = PyObject_CallOneArg(st->iscoroutine, coro);
        if (res == NULL) {
            return -1;
        }
        is_coro = PyObject_IsTrue(res);
        Py_DECREF(res);
        if (is_coro < 0) {
            return -1;
        }
    }
    if (!is_coro) {
        PyErr_Format(PyExc_TypeError, "a coroutine was expected, got %R", coro);
        return -1;
    }
    Py_CLEAR(self->name);
    if (name == NULL || name == Py_None) {
        self->name_number = ++st->task_name_counter;
    } else {
        self->name = PyUnicode_Check(name) ? Py_NewRef(name) : PyObject_Str(name);
        if (self->name == NULL) {
            return -1;
        }
    }
    if (context == NULL || context == Py_None) {
        PyObject *copy = PyContext_CopyCurrent();
        Py_ssize_t size = copy ? PyObject_Length(copy) : -1;
        if (size < 0) {
            Py_XDECREF(copy);
            return -1;
        }
        if (size == 0) {
            Py_CLEAR(copy); /* see task_context() */
        }
        Py_XSETREF(self->context, copy);
    } else {
        Py_XSETREF(self->context, Py_NewRef(context));
    }
    self->context_shared = self->context != NULL;
    Py_XSETREF(self->coro, Py_NewRef(coro));
    Py_CLEAR(self->fut_waiter);
    pa_task_drop_pending(self);
    self->num_cancels_requested = 0;
    self->must_cancel = 0;
    self->log_destroy_pending = 1;
    if (pa_loop_check(st, self->loop)) {
        ((LoopObject *)self->loop)->metrics.tasks_created++;
    }
#if PA_HAS_EAGER_TASKS
    if (eager) {
        int running;
        if (pa_loop_check(st, self->loop)) {
            running = ((LoopObject *)self->loop)->running;
        } else {
            PyObject *res = PyObject_CallMethod(self->loop, "is_running", NULL);
            running = res ? PyObject_IsTrue(res) : -1;
            Py_XDECREF(res);
            if (running < 0) {
                return -1;
            }
        }
        if (running) {
            return eager_start(st, self);
        }
    }
#else
    (void)eager;
#endif
    if (schedule_step(st, self, NULL) < 0) {
        return -1;
    }
    return pa_registry_add(st, (PyObject *)self, &self->registry_entry);
}

PyObject *
pa_task_new(pa_state *st, PyObject *coro, PyObject *loop, PyObject *name, PyObject *context,
            int eager)
{
    TaskObject *task = (TaskObject *)st->TaskType->tp_alloc(st->TaskType, 0);
    if (task == NULL) {
        return NULL;
    }
    if (task_init(st, task, coro, loop, name, context, eager) < 0) {
        Py_DECREF(task);
        return NULL;
    }
    return (PyObject *)task;
}

static int
Task_tp_init(TaskObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *coro, *loop = Py_None, *name = Py_None, *context = Py_None;
    int eager = 0;
#if PA_HAS_EAGER_TASKS
    static char *kwlist[] = {"coro", "loop", "name", "context", "eager_start", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOOp:Task", kwlist, &coro, &loop, &name,
                                     &context, &eager)) {
        return -1;
    }
#else
    static char *kwlist[] = {"coro", "loop", "name", "context", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOO:Task", kwlist, &coro, &loop, &name,
                                     &context)) {
        return -1;
    }
#endif
    pa_state *st = pa_state_of((PyObject *)self);
    if (st == NULL || pa_check_ready(st) < 0) {
        return -1;
    }
    return task_init(st, self, coro, loop, name, context, eager);
}

static int
Task_tp_traverse(TaskObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    Py_VISIT(self->context);
    Py_VISIT(self->name);
    Py_VISIT(self->fut_waiter);
    Py_VISIT(self->pending_arg);
    Py_VISIT(self->registry_entry);
    return pa_future_traverse((FutureObject *)self, visit, arg);
}

static int
Task_tp_clear(TaskObject *self)
{
    if (self->registry_entry != NULL) {
        pa_state *st = pa_state_of_quiet((PyObject *)self);
        if (st != NULL) {
            pa_registry_remove(st, &self->registry_entry);
        } else {
            Py_CLEAR(self->registry_entry);
        }
    }
    Py_CLEAR(self->coro);
    Py_CLEAR(self->context);
    Py_CLEAR(self->name);
    Py_CLEAR(self->fut_waiter);
    pa_task_drop_pending(self);
    (void)pa_future_clear((FutureObject *)self);
    PA_FUTURE_CLEAR_DICT(self);
    return 0;
}

/* "Task was destroyed but it is pending!", then the Future's own report of
 * an exception never retrieved. */
static void
Task_finalize(TaskObject *self)
{
    pa_state *st = pa_state_of_quiet((PyObject *)self);
    if (st != NULL && self->loop != NULL && self->state == PA_FUT_PENDING &&
        self->log_destroy_pending) {
        PyObject *saved = pa_err_take();
        PyObject *msg = PyUnicode_FromString("Task was destroyed but it is pending!");
        if (msg == NULL || pa_loop_report(st, self->loop, msg, st->str_task, (PyObject *)self,
                                          NULL, self->source_tb) < 0) {
            PyErr_WriteUnraisable((PyObject *)self);
        }
        Py_XDECREF(msg);
        pa_err_restore(saved);
    }
    /* The Future part, called directly: looking it up through the type
     * would find a subclass's own finalizer again, or CPython's, once the
     * module state is gone at shutdown. */
    pa_future_finalize((FutureObject *)self);
}

static void
Task_dealloc(TaskObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0) {
        return; /* resurrected */
    }
    PyObject_GC_UnTrack(self);
    PA_FUTURE_CLEAR_WEAKREFS(self);
    (void)Task_tp_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
Task_repr(TaskObject *self)
{
    return pa_future_repr((PyObject *)self, pa_state_of((PyObject *)self)->task_repr_info);
}

static PyType_Slot Task_slots[] = {
    {Py_tp_init, Task_tp_init},
    {Py_tp_dealloc, Task_dealloc},
    {Py_tp_traverse, Task_tp_traverse},
    {Py_tp_clear, Task_tp_clear},
    {Py_tp_finalize, Task_finalize},
    {Py_tp_repr, Task_repr},
    {Py_tp_methods, pa_task_methods},
    {Py_tp_getset, pa_task_getset},
    {Py_tp_doc, "A coroutine wrapped in a Future, in C."},
    {0, NULL},
};

static PyType_Spec Task_spec = {
    .name = "pyasync.Task",
    .basicsize = sizeof(TaskObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Task_slots,
};

int
pa_task_register_type(PyObject *module, pa_state *st)
{
    /* pyasync.Task(pyasync.Future, _asyncio.Task), whose layout
     * pa_future_register_types() checked. Our Future adds no field to
     * _asyncio.Future, so the two bases' layouts agree and both
     * isinstance(task, pyasync.Future) and isinstance(task, asyncio.Task)
     * hold. */
    PyObject *asyncio_mod = PyImport_ImportModule("asyncio"); /* see pa_future_register_types() */
    if (asyncio_mod == NULL) {
        return -1;
    }
    PyObject *task_base = PyObject_GetAttrString(asyncio_mod, "Task");
    Py_DECREF(asyncio_mod);
    if (task_base == NULL) {
        return -1;
    }
    PyObject *bases = PyTuple_Pack(2, (PyObject *)st->FutureType, task_base);
    Py_DECREF(task_base);
    if (bases == NULL) {
        return -1;
    }
    st->TaskType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &Task_spec, bases);
    Py_DECREF(bases);
    if (st->TaskType == NULL || PyModule_AddType(module, st->TaskType) < 0) {
        return -1;
    }
    return 0;
}
