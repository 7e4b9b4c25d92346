/*
 * taskapi.c - what Python sees of a Task beyond the step: cancel(),
 * cancelling(), uncancel(), names, context, stacks and repr info, and the
 * private attributes asyncio's own code and tests read (_coro, _fut_waiter,
 * _must_cancel, _log_destroy_pending, _num_cancels_requested). task.c runs
 * the coroutine and owns the type; its slots use the tables at the end.
 */
#include "task.h"

static PyObject *
Task_cancel(TaskObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *msg;
    if (pa_parse_cancel_args(args, nargs, kwnames, &msg) < 0) {
        return NULL;
    }
    int r = pa_task_cancel(pa_state_of((PyObject *)self), self, msg);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
Task_cancelling(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(self->num_cancels_requested);
}

static PyObject *
Task_uncancel(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->num_cancels_requested > 0) {
        self->num_cancels_requested--;
#if PA_UNCANCEL_CLEARS_MUST_CANCEL
        if (self->num_cancels_requested == 0) {
            self->must_cancel = 0;
        }
#endif
    }
    return PyLong_FromSsize_t(self->num_cancels_requested);
}

static PyObject *
Task_get_coro(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self->coro ? self->coro : Py_None);
}

static PyObject *
Task_get_context(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->loop == NULL) {
        Py_RETURN_NONE;
    }
    return Py_XNewRef(pa_task_context_shared(self));
}

static PyObject *
Task_get_name(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->name == NULL) {
        self->name = PyUnicode_FromFormat("Task-%llu", self->name_number);
        if (self->name == NULL) {
            return NULL;
        }
    }
    return Py_NewRef(self->name);
}

static PyObject *
Task_set_name(TaskObject *self, PyObject *value)
{
    PyObject *name = PyUnicode_Check(value) ? Py_NewRef(value) : PyObject_Str(value);
    if (name == NULL) {
        return NULL;
    }
    Py_XSETREF(self->name, name);
    Py_RETURN_NONE;
}

static PyObject *
Task_get_stack(TaskObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", NULL};
    PyObject *limit = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$O:get_stack", kwlist, &limit)) {
        return NULL;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    PyObject *argv[2] = {(PyObject *)self, limit};
    return PyObject_Vectorcall(st->task_get_stack, argv, 2, NULL);
}

static PyObject *
Task_print_stack(TaskObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", "file", NULL};
    PyObject *limit = Py_None, *file = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OO:print_stack", kwlist, &limit, &file)) {
        return NULL;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    PyObject *argv[3] = {(PyObject *)self, limit, file};
    return PyObject_Vectorcall(st->task_print_stack, argv, 3, NULL);
}

static PyObject *
Task_repr_info(TaskObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyObject_CallOneArg(pa_state_of((PyObject *)self)->task_repr_info, (PyObject *)self);
}

static PyObject *
Task_set_result(TaskObject *self, PyObject *Py_UNUSED(result))
{
    PyErr_SetString(PyExc_RuntimeError, "Task does not support set_result operation");
    return NULL;
}

static PyObject *
Task_set_exception(TaskObject *self, PyObject *Py_UNUSED(exc))
{
    PyErr_SetString(PyExc_RuntimeError, "Task does not support set_exception operation");
    return NULL;
}

static PyObject *
Task_get_coro_attr(TaskObject *self, void *closure)
{
    return Py_NewRef(self->coro ? self->coro : Py_None);
}

static PyObject *
Task_get_fut_waiter(TaskObject *self, void *closure)
{
    return Py_NewRef(self->fut_waiter ? self->fut_waiter : Py_None);
}

static PyObject *
Task_get_must_cancel(TaskObject *self, void *closure)
{
    return PyBool_FromLong(self->must_cancel);
}

/* The flags are bitfields on 3.13 (compat.h): no pointer to them. */
static int
parse_flag(PyObject *value)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete attribute");
        return -1;
    }
    return PyObject_IsTrue(value);
}

static int
Task_set_must_cancel(TaskObject *self, PyObject *value, void *closure)
{
    int r = parse_flag(value);
    if (r < 0) {
        return -1;
    }
    self->must_cancel = r != 0;
    return 0;
}

static PyObject *
Task_get_log_destroy_pending(TaskObject *self, void *closure)
{
    return PyBool_FromLong(self->log_destroy_pending);
}

static int
Task_set_log_destroy_pending(TaskObject *self, PyObject *value, void *closure)
{
    int r = parse_flag(value);
    if (r < 0) {
        return -1;
    }
    self->log_destroy_pending = r != 0;
    return 0;
}

static PyObject *
Task_get_num_cancels(TaskObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->num_cancels_requested);
}

PyMethodDef pa_task_methods[] = {
    {"cancel", (PyCFunction)(void (*)(void))Task_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel($self, /, msg=None)\n--\n\nRequest that the task cancel itself."},
    {"cancelling", (PyCFunction)Task_cancelling, METH_NOARGS,
     "cancelling($self, /)\n--\n\nThe number of pending cancellation requests."},
    {"uncancel", (PyCFunction)Task_uncancel, METH_NOARGS,
     "uncancel($self, /)\n--\n\nDecrement the cancellation requests; return what remains."},
    {"get_coro", (PyCFunction)Task_get_coro, METH_NOARGS, "get_coro($self, /)\n--\n\n"},
    {"get_context", (PyCFunction)Task_get_context, METH_NOARGS, "get_context($self, /)\n--\n\n"},
    {"get_name", (PyCFunction)Task_get_name, METH_NOARGS, "get_name($self, /)\n--\n\n"},
    {"set_name", (PyCFunction)Task_set_name, METH_O, "set_name($self, value, /)\n--\n\n"},
    {"get_stack", (PyCFunction)(void (*)(void))Task_get_stack, METH_VARARGS | METH_KEYWORDS,
     "get_stack($self, /, *, limit=None)\n--\n\n"},
    {"print_stack", (PyCFunction)(void (*)(void))Task_print_stack, METH_VARARGS | METH_KEYWORDS,
     "print_stack($self, /, *, limit=None, file=None)\n--\n\n"},
    {"set_result", (PyCFunction)Task_set_result, METH_O, "set_result($self, result, /)\n--\n\n"},
    {"set_exception", (PyCFunction)Task_set_exception, METH_O,
     "set_exception($self, exception, /)\n--\n\n"},
    {"_repr_info", (PyCFunction)Task_repr_info, METH_NOARGS, "_repr_info($self, /)\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

PyGetSetDef pa_task_getset[] = {
    {"_coro", (getter)Task_get_coro_attr, NULL, NULL, NULL},
    {"_fut_waiter", (getter)Task_get_fut_waiter, NULL, NULL, NULL},
    {"_must_cancel", (getter)Task_get_must_cancel, (setter)Task_set_must_cancel, NULL, NULL},
    {"_log_destroy_pending", (getter)Task_get_log_destroy_pending,
     (setter)Task_set_log_destroy_pending, NULL, NULL},
    {"_num_cancels_requested", (getter)Task_get_num_cancels, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
