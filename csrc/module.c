/*
 * module.c - the pyasync._core extension module: state, types, helpers.
 *
 * Multi-phase initialisation with heap types only. The Python package calls
 * _set_helpers() once at import to hand over the few Python callables the C
 * code uses on slow paths (formatting, logging, asyncio's full coroutine
 * checks); the hot paths never call them.
 */
#include "state.h"
#include <stddef.h>
#include "handle.h"
#include "loop.h"
#include "future.h"
#include "task.h"
#include "taskgroup.h"
#include "taskregistry.h"
#include "transport.h"
#include "sendfile.h"
#include "sslproto.h"
#include "spawn.h"
#include "unixsocket.h"

#if !defined(__linux__) && !defined(__unix__) && !defined(__APPLE__)
#error "pyasync needs a POSIX system with poll() (epoll on Linux)"
#endif

/* The helpers _set_helpers() accepts, and where each one is kept. */
static const struct {
    const char *name;
    size_t offset;
} helper_slots[] = {
    {"format_callback_source", offsetof(pa_state, format_callback_source)},
    {"extract_stack", offsetof(pa_state, extract_stack)},
    {"iscoroutinefunction", offsetof(pa_state, iscoroutinefunction)},
    {"iscoroutine", offsetof(pa_state, iscoroutine)},
    {"format_handle", offsetof(pa_state, format_handle)},
    {"logger", offsetof(pa_state, logger)},
    {"get_running_loop", offsetof(pa_state, get_running_loop)},
    {"get_event_loop", offsetof(pa_state, get_event_loop)},
    {"future_repr_info", offsetof(pa_state, future_repr_info)},
    {"InvalidStateError", offsetof(pa_state, InvalidStateError)},
    {"CancelledError", offsetof(pa_state, CancelledError)},
    {"enter_task", offsetof(pa_state, enter_task)},
    {"leave_task", offsetof(pa_state, leave_task)},
    {"register_task", offsetof(pa_state, register_task)},
    {"swap_current_task", offsetof(pa_state, swap_current_task)},
    {"register_eager_task", offsetof(pa_state, register_eager_task)},
    {"unregister_eager_task", offsetof(pa_state, unregister_eager_task)},
    {"task_repr_info", offsetof(pa_state, task_repr_info)},
    {"task_get_stack", offsetof(pa_state, task_get_stack)},
    {"task_print_stack", offsetof(pa_state, task_print_stack)},
    {"get_running_loop_strict", offsetof(pa_state, get_running_loop_strict)},
    {"current_task", offsetof(pa_state, current_task)},
    {"task_registry", offsetof(pa_state, task_registry)},
    {"WeakSet", offsetof(pa_state, WeakSet)},
    {"BufferedProtocol", offsetof(pa_state, BufferedProtocol)},
    {"StreamReaderProtocol", offsetof(pa_state, StreamReaderProtocol)},
    {"socket_type", offsetof(pa_state, socket_type)},
    {"socket_class", offsetof(pa_state, socket_class)},
    {"TransportSocket", offsetof(pa_state, TransportSocket)},
    {"check_ssl_socket", offsetof(pa_state, check_ssl_socket)},
    {"raise_loop_closed", offsetof(pa_state, raise_loop_closed)},
    {"base_get_extra_info", offsetof(pa_state, base_get_extra_info)},
};

#define N_HELPERS (sizeof(helper_slots) / sizeof(helper_slots[0]))

static PyObject **
helper_field(pa_state *st, size_t i)
{
    return (PyObject **)((char *)st + helper_slots[i].offset);
}

/* _set_helpers(**helpers): every helper must be given, by keyword. */
static PyObject *
set_helpers(PyObject *module, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || kwds == NULL ||
        PyDict_GET_SIZE(kwds) != (Py_ssize_t)N_HELPERS) {
        PyErr_Format(PyExc_TypeError, "_set_helpers() takes exactly %d keyword arguments",
                     (int)N_HELPERS);
        return NULL;
    }
    pa_state *st = pa_get_state(module);
    for (size_t i = 0; i < N_HELPERS; i++) {
        PyObject *value = PyDict_GetItemString(kwds, helper_slots[i].name); /* borrowed */
        if (value == NULL) {
            PyErr_Format(PyExc_TypeError, "_set_helpers() missing %s", helper_slots[i].name);
            return NULL;
        }
    }
    for (size_t i = 0; i < N_HELPERS; i++) {
        PyObject *value = PyDict_GetItemString(kwds, helper_slots[i].name);
        Py_XSETREF(*helper_field(st, i), Py_NewRef(value));
    }
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
    INTERN(str_call_soon, "call_soon");
    INTERN(str_time, "time");
    INTERN(str_context, "context");
    INTERN(str_future, "future");
    INTERN(str_throw, "throw");
    INTERN(str_value, "value");
    INTERN(str_task, "task");
    INTERN(str_asyncio_future_blocking, "_asyncio_future_blocking");
    INTERN(str_add_done_callback, "add_done_callback");
    INTERN(str_cancel, "cancel");
    INTERN(str_get_loop, "get_loop");
    INTERN(str_loop_attr, "_loop");
    INTERN(str_data_received, "data_received");
    INTERN(str_get_buffer, "get_buffer");
    INTERN(str_buffer_updated, "buffer_updated");
    INTERN(str_pause_writing, "pause_writing");
    INTERN(str_resume_writing, "resume_writing");
    INTERN(str_eof_received, "eof_received");
    INTERN(str_connection_lost, "connection_lost");
    INTERN(str_datagram_received, "datagram_received");
    INTERN(str_error_received, "error_received");
    INTERN(str_call_connection_lost, "_call_connection_lost");
    INTERN(str_detach_server, "_detach_server");
    INTERN(str_socket, "socket");
    INTERN(str_recv, "recv");
    INTERN(str_recv_into, "recv_into");
    INTERN(str_recvfrom_into, "recvfrom_into");
    INTERN(str_accept, "accept");
    INTERN(str_gettimeout, "gettimeout");
    INTERN(str_read_ready, "_read_ready");
    INTERN(str_sockname, "sockname");
    INTERN(str_connection_made, "connection_made");
    INTERN(str_start_reading, "_start_reading");
    INTERN(str_attach, "_attach");
    INTERN(str_detach, "_detach");
    INTERN(str_close, "close");
    INTERN(str_recvfrom, "recvfrom");
    INTERN(str_send, "send");
    INTERN(str_sendto, "sendto");
    INTERN(str_append, "append");
    INTERN(str_appendleft, "appendleft");
    INTERN(str_popleft, "popleft");
    INTERN(str_clear, "clear");
    INTERN(str_set_result, "set_result");
    INTERN(str_set_exception, "set_exception");
    INTERN(str_create_future, "create_future");
    INTERN(str_debug, "debug");
    INTERN(str_peername, "peername");
    INTERN(str_get_extra_info, "get_extra_info");
    st->kwnames_context = PyTuple_Pack(1, st->str_context);
    if (st->kwnames_context == NULL) {
        return -1;
    }
    st->kwnames_msg = Py_BuildValue("(s)", "msg");
    st->kwnames_name = Py_BuildValue("(s)", "name");
    st->kwnames_name_context = Py_BuildValue("(ss)", "name", "context");
    st->kwnames_eager_task = Py_BuildValue("(ssss)", "loop", "name", "context", "eager_start");
    if (st->kwnames_msg == NULL || st->kwnames_name == NULL || st->kwnames_name_context == NULL ||
        st->kwnames_eager_task == NULL) {
        return -1;
    }
    st->wakeup_marker = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    st->fresh_context = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (st->wakeup_marker == NULL || st->fresh_context == NULL) {
        return -1;
    }
    if (pa_handle_register_types(module, st) < 0 || pa_loop_register_type(module, st) < 0 ||
        pa_future_register_types(module, st) < 0 || pa_task_register_type(module, st) < 0 ||
        pa_taskgroup_register_types(module, st) < 0 ||
        pa_eager_factory_register_type(module, st) < 0 ||
        pa_transport_register_type(module, st) < 0 ||
        pa_acceptor_register_type(module, st) < 0 ||
        pa_sockop_register_type(module, st) < 0 ||
        pa_dgram_transport_register_type(module, st) < 0 ||
        pa_pipe_transport_register_types(module, st) < 0 ||
        pa_sslproto_register_types(module, st) < 0 ||
        pa_sendfile_register(module, st) < 0 || pa_unixsocket_register(module) < 0 ||
        pa_spawn_register(module) < 0) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    pa_state *st = pa_get_state(module);
    Py_VISIT(st->LoopType);
    Py_VISIT(st->loop_subtype_seen);
    Py_VISIT(st->HandleType);
    Py_VISIT(st->TimerHandleType);
    Py_VISIT(st->FutureType);
    Py_VISIT(st->FutureIterType);
    Py_VISIT(st->TaskType);
    Py_VISIT(st->TaskGroupType);
    Py_VISIT(st->TaskGroupExitType);
    Py_VISIT(st->EagerTaskFactoryType);
    Py_VISIT(st->TransportType);
    int vret = pa_sslproto_traverse_state(st, visit, arg);
    if (vret != 0) {
        return vret;
    }
    Py_VISIT(st->SockOpType);
    Py_VISIT(st->DgramTransportType);
    Py_VISIT(st->ReadPipeTransportType);
    Py_VISIT(st->WritePipeTransportType);
    Py_VISIT(st->SendfileOperationType);
    Py_VISIT(st->SendfileNotAvailableError);
    for (size_t i = 0; i < N_HELPERS; i++) {
        Py_VISIT(*helper_field(st, i));
    }
    Py_VISIT(st->registry_set);
    Py_VISIT(st->registry_data);
    Py_VISIT(st->registry_iterating);
    Py_VISIT(st->registry_pending);
    return 0;
}

static int
module_clear(PyObject *module)
{
    pa_state *st = pa_get_state(module);
    pa_handle_freelist_clear(st);
    pa_futureiter_freelist_clear(st);
    pa_sockop_freelist_clear(st);
    Py_CLEAR(st->LoopType);
    Py_CLEAR(st->HandleType);
    Py_CLEAR(st->TimerHandleType);
    Py_CLEAR(st->FutureType);
    Py_CLEAR(st->FutureIterType);
    Py_CLEAR(st->TaskType);
    Py_CLEAR(st->TaskGroupType);
    Py_CLEAR(st->TaskGroupExitType);
    for (size_t i = 0; i < N_HELPERS; i++) {
        Py_CLEAR(*helper_field(st, i));
    }
    pa_registry_clear(st);
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
    Py_CLEAR(st->str_call_soon);
    Py_CLEAR(st->str_time);
    Py_CLEAR(st->str_context);
    Py_CLEAR(st->str_future);
    Py_CLEAR(st->kwnames_context);
    Py_CLEAR(st->kwnames_msg);
    Py_CLEAR(st->kwnames_name);
    Py_CLEAR(st->kwnames_name_context);
    Py_CLEAR(st->kwnames_eager_task);
    Py_CLEAR(st->EagerTaskFactoryType);
    Py_CLEAR(st->wakeup_marker);
    Py_CLEAR(st->fresh_context);
    Py_CLEAR(st->str_throw);
    Py_CLEAR(st->str_value);
    Py_CLEAR(st->str_task);
    Py_CLEAR(st->str_asyncio_future_blocking);
    Py_CLEAR(st->str_add_done_callback);
    Py_CLEAR(st->str_cancel);
    Py_CLEAR(st->str_get_loop);
    Py_CLEAR(st->str_loop_attr);
    Py_CLEAR(st->str_data_received);
    Py_CLEAR(st->str_get_buffer);
    Py_CLEAR(st->str_buffer_updated);
    Py_CLEAR(st->str_pause_writing);
    Py_CLEAR(st->str_resume_writing);
    Py_CLEAR(st->str_eof_received);
    Py_CLEAR(st->str_connection_lost);
    Py_CLEAR(st->str_datagram_received);
    Py_CLEAR(st->str_error_received);
    Py_CLEAR(st->str_call_connection_lost);
    Py_CLEAR(st->str_detach_server);
    Py_CLEAR(st->str_socket);
    Py_CLEAR(st->str_recv);
    Py_CLEAR(st->str_recv_into);
    Py_CLEAR(st->str_recvfrom_into);
    Py_CLEAR(st->str_accept);
    Py_CLEAR(st->str_gettimeout);
    Py_CLEAR(st->str_read_ready);
    Py_CLEAR(st->str_sockname);
    Py_CLEAR(st->str_connection_made);
    Py_CLEAR(st->str_start_reading);
    Py_CLEAR(st->str_attach);
    Py_CLEAR(st->str_detach);
    Py_CLEAR(st->str_close);
    Py_CLEAR(st->str_recvfrom);
    Py_CLEAR(st->str_send);
    Py_CLEAR(st->str_sendto);
    Py_CLEAR(st->str_append);
    Py_CLEAR(st->str_appendleft);
    Py_CLEAR(st->str_popleft);
    Py_CLEAR(st->str_clear);
    Py_CLEAR(st->str_set_result);
    Py_CLEAR(st->str_set_exception);
    Py_CLEAR(st->str_create_future);
    Py_CLEAR(st->str_debug);
    Py_CLEAR(st->str_peername);
    Py_CLEAR(st->str_get_extra_info);
    Py_CLEAR(st->loop_subtype_seen);
    Py_CLEAR(st->TransportType);
    pa_sslproto_clear_state(st);
    Py_CLEAR(st->SockOpType);
    Py_CLEAR(st->DgramTransportType);
    Py_CLEAR(st->ReadPipeTransportType);
    Py_CLEAR(st->WritePipeTransportType);
    Py_CLEAR(st->SendfileOperationType);
    Py_CLEAR(st->SendfileNotAvailableError);
    free(st->recv_buffer); /* from posix_memalign(), see pa_tr_recv_buffer() */
    st->recv_buffer = NULL;
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
