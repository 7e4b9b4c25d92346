/*
 * module.c - the pyasync._core extension module: state, types, helpers.
 *
 * Multi-phase initialisation with heap types only. The Python package calls
 * _set_helpers() once at import to hand over the few Python callables the C
 * code uses on slow paths (formatting, logging, asyncio's full coroutine
 * checks); the hot paths never call them.
 */
#include "state.h"
#include "handle.h"
#include "loop.h"

#if !defined(__linux__) && !defined(__unix__) && !defined(__APPLE__)
#error "pyasync needs a POSIX system with poll() (epoll on Linux)"
#endif

static PyObject *
set_helpers(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"format_callback_source", "extract_stack", "iscoroutinefunction",
                             "iscoroutine", "format_handle", "logger", "get_running_loop", NULL};
    PyObject *fcs, *es, *icf, *ic, *fh, *lg, *grl;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOOO:_set_helpers", kwlist, &fcs, &es, &icf,
                                     &ic, &fh, &lg, &grl)) {
        return NULL;
    }
    pa_state *st = pa_get_state(module);
    Py_XSETREF(st->format_callback_source, Py_NewRef(fcs));
    Py_XSETREF(st->extract_stack, Py_NewRef(es));
    Py_XSETREF(st->iscoroutinefunction, Py_NewRef(icf));
    Py_XSETREF(st->iscoroutine, Py_NewRef(ic));
    Py_XSETREF(st->format_handle, Py_NewRef(fh));
    Py_XSETREF(st->logger, Py_NewRef(lg));
    Py_XSETREF(st->get_running_loop, Py_NewRef(grl));
    Py_RETURN_NONE;
}

static PyObject *
pollers(PyObject *module, PyObject *Py_UNUSED(ignored))
{
#ifdef __linux__
    return Py_BuildValue("(ss)", pa_epoll_ops.name, pa_poll_ops.name);
#else
    return Py_BuildValue("(s)", pa_poll_ops.name);
#endif
}

static PyMethodDef module_methods[] = {
    {"_set_helpers", (PyCFunction)(void (*)(void))set_helpers, METH_VARARGS | METH_KEYWORDS,
     "Install the Python helpers used on slow paths."},
    {"pollers", pollers, METH_NOARGS, "Names of the poller backends built in."},
    {NULL, NULL, 0, NULL},
};

#define INTERN(field, text)                                                                        \
    do {                                                                                           \
        st->field = PyUnicode_InternFromString(text);                                              \
        if (st->field == NULL) {                                                                   \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static int
module_exec(PyObject *module)
{
    pa_state *st = pa_get_state(module);
    INTERN(str_call_exception_handler, "call_exception_handler");
    INTERN(str_run_forever_setup, "_run_forever_setup");
    INTERN(str_run_forever_cleanup, "_run_forever_cleanup");
    INTERN(str_handle_signal, "_handle_signal");
    INTERN(str_timer_handle_cancelled, "_timer_handle_cancelled");
    INTERN(str_get_debug, "get_debug");
    INTERN(str_run, "run");
    INTERN(str_warning, "warning");
    INTERN(str_fileno, "fileno");
    INTERN(str_message, "message");
    INTERN(str_exception, "exception");
    INTERN(str_handle, "handle");
    INTERN(str_source_traceback, "source_traceback");
    if (pa_handle_register_types(module, st) < 0 || pa_loop_register_type(module, st) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    pa_state *st = pa_get_state(module);
    Py_VISIT(st->LoopType);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->TimerHandleType);
    Py_VISIT(st->format_callback_source);
    Py_VISIT(st->extract_stack);
    Py_VISIT(st->iscoroutinefunction);
    Py_VISIT(st->iscoroutine);
    Py_VISIT(st->format_handle);
    Py_VISIT(st->logger);
    Py_VISIT(st->get_running_loop);
    return 0;
}

static int
module_clear(PyObject *module)
{
    pa_state *st = pa_get_state(module);
    pa_handle_freelist_clear(st);
    Py_CLEAR(st->LoopType);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->TimerHandleType);
    Py_CLEAR(st->format_callback_source);
    Py_CLEAR(st->extract_stack);
    Py_CLEAR(st->iscoroutinefunction);
    Py_CLEAR(st->iscoroutine);
    Py_CLEAR(st->format_handle);
    Py_CLEAR(st->logger);
    Py_CLEAR(st->get_running_loop);
    Py_CLEAR(st->str_call_exception_handler);
    Py_CLEAR(st->str_run_forever_setup);
    Py_CLEAR(st->str_run_forever_cleanup);
    Py_CLEAR(st->str_handle_signal);
    Py_CLEAR(st->str_timer_handle_cancelled);
    Py_CLEAR(st->str_get_debug);
    Py_CLEAR(st->str_run);
    Py_CLEAR(st->str_warning);
    Py_CLEAR(st->str_fileno);
    Py_CLEAR(st->str_message);
    Py_CLEAR(st->str_exception);
    Py_CLEAR(st->str_handle);
    Py_CLEAR(st->str_source_traceback);
    return 0;
}

static void
module_free(void *module)
{
    (void)module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

struct PyModuleDef pa_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyasync._core",
    .m_doc = "The C core of pyasync: event loop, handles, timers and pollers.",
    .m_size = sizeof(pa_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&pa_module_def);
}
