/*
 * eagerfactory.c - pyasync's eager task factory (Python 3.12+).
 *
 * EagerTaskFactory(custom_task_constructor) is what
 * pyasync.create_eager_task_factory() returns: a callable
 * factory(loop, coro, *, name=None, context=None) that makes a task whose
 * first step runs inside the call. When the constructor is pyasync.Task
 * itself the task is made and started in C, with no Python call; any other
 * constructor is called with eager_start=True, as asyncio's factory does.
 */
#include "state.h"
#include "loop.h"
#include "task.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *task_constructor;
    vectorcallfunc vectorcall;
} EagerTaskFactoryObject;

static PyObject *
EagerTaskFactory_vectorcall(EagerTaskFactoryObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    PyObject *name, *context;
    if (pa_parse_task_args("factory", 2, args, nargsf, kwnames, &name, &context) < 0) {
        return NULL;
    }
    pa_state *st = pa_state_of((PyObject *)self);
    if (st == NULL || pa_check_ready(st) < 0) {
        return NULL;
    }
    PyObject *loop = args[0], *coro = args[1];
    if (self->task_constructor == (PyObject *)st->TaskType) {
        return pa_task_new(st, coro, loop, name, context, 1);
    }
    PyObject *call_args[5] = {coro, loop, name ? name : Py_None, context ? context : Py_None,
                              Py_True};
    return PyObject_Vectorcall(self->task_constructor, call_args, 1, st->kwnames_eager_task);
}

static PyObject *
EagerTaskFactory_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *constructor;
    static char *kwlist[] = {"custom_task_constructor", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:EagerTaskFactory", kwlist, &constructor)) {
        return NULL;
    }
    if (!PA_HAS_EAGER_TASKS) {
        PyErr_SetString(PyExc_RuntimeError, "eager tasks need Python 3.12 or newer");
        return NULL;
    }
    if (!PyCallable_Check(constructor)) {
        PyErr_Format(PyExc_TypeError, "custom_task_constructor must be callable, got %R",
                     constructor);
        return NULL;
    }
    EagerTaskFactoryObject *self = (EagerTaskFactoryObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->task_constructor = Py_NewRef(constructor);
    self->vectorcall = (vectorcallfunc)EagerTaskFactory_vectorcall;
    return (PyObject *)self;
}

static int
EagerTaskFactory_traverse(EagerTaskFactoryObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->task_constructor);
    return 0;
}

static int
EagerTaskFactory_clear(EagerTaskFactoryObject *self)
{
    Py_CLEAR(self->task_constructor);
    return 0;
}

static void
EagerTaskFactory_dealloc(EagerTaskFactoryObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    (void)EagerTaskFactory_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
EagerTaskFactory_repr(EagerTaskFactoryObject *self)
{
    return PyUnicode_FromFormat("<pyasync eager task factory for %R>", self->task_constructor);
}

static PyMemberDef EagerTaskFactory_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(EagerTaskFactoryObject, vectorcall), READONLY,
     NULL},
    {"custom_task_constructor", T_OBJECT, offsetof(EagerTaskFactoryObject, task_constructor),
     READONLY, "The callable that makes the tasks."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot EagerTaskFactory_slots[] = {
    {Py_tp_new, EagerTaskFactory_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_traverse, EagerTaskFactory_traverse},
    {Py_tp_clear, EagerTaskFactory_clear},
    {Py_tp_dealloc, EagerTaskFactory_dealloc},
    {Py_tp_repr, EagerTaskFactory_repr},
    {Py_tp_members, EagerTaskFactory_members},
    {Py_tp_doc, "EagerTaskFactory(custom_task_constructor)\n--\n\n"
                "A task factory whose tasks run their first step inside create_task()."},
    {0, NULL},
};

static PyType_Spec EagerTaskFactory_spec = {
    .name = "pyasync.EagerTaskFactory",
    .basicsize = sizeof(EagerTaskFactoryObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = EagerTaskFactory_slots,
};

int
pa_eager_factory_register_type(PyObject *module, pa_state *st)
{
    st->EagerTaskFactoryType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &EagerTaskFactory_spec, NULL);
    if (st->EagerTaskFactoryType == NULL ||
        PyModule_AddType(module, st->EagerTaskFactoryType) < 0) {
        return -1;
    }
    return 0;
}
