/*
 * state.h - per-module state shared by every pyasync type.
 *
 * There are no static PyObject globals: everything the C code needs from
 * Python (types, helper callables from the pyasync package, interned names)
 * lives here. Every Loop keeps a strong reference to the module, so the state
 * outlives every object that points at it.
 */
#ifndef PYASYNC_STATE_H
#define PYASYNC_STATE_H

#include "compat.h"

typedef struct {
    PyTypeObject *LoopType;
    PyTypeObject *loop_subtype_seen;  /* the last subclass of LoopType checked */
    PyTypeObject *HandleType;
    PyTypeObject *TimerHandleType;

    /* Helpers installed by pyasync/__init__.py through _core._set_helpers(). */
    PyObject *format_callback_source; /* (func, args, debug) -> str */
    PyObject *extract_stack;          /* (frame) -> list of frame summaries */
    PyObject *iscoroutinefunction;    /* the full (slow) check of asyncio */
    PyObject *iscoroutine;            /* the full (slow) check of asyncio */
    PyObject *format_handle;          /* (handle) -> str, for slow-callback warnings */
    PyObject *logger;                 /* asyncio's logger */
    PyObject *get_running_loop;       /* asyncio.events._get_running_loop */
    PyObject *get_event_loop;         /* asyncio.events.get_event_loop */
    PyObject *future_repr_info;       /* asyncio.base_futures._future_repr_info */
    PyObject *InvalidStateError;      /* asyncio.InvalidStateError */
    PyObject *CancelledError;         /* asyncio.CancelledError */
    PyObject *enter_task;             /* asyncio.tasks._enter_task */
    PyObject *leave_task;             /* asyncio.tasks._leave_task */
    PyObject *register_task;          /* asyncio.tasks._register_task */
    PyObject *swap_current_task;      /* asyncio.tasks._swap_current_task (3.12+), else None */
    PyObject *register_eager_task;    /* asyncio.tasks._register_eager_task (3.12+), else None */
    PyObject *unregister_eager_task;  /* asyncio.tasks._unregister_eager_task (3.12+), else None */
    PyObject *task_repr_info;         /* asyncio.base_tasks._task_repr_info */
    PyObject *task_get_stack;         /* asyncio.base_tasks._task_get_stack */
    PyObject *task_print_stack;       /* asyncio.base_tasks._task_print_stack */
    PyObject *get_running_loop_strict; /* asyncio.events.get_running_loop */
    PyObject *current_task;           /* asyncio.tasks.current_task */
    PyObject *task_registry;          /* asyncio.tasks._scheduled_tasks (3.11: _all_tasks) */
    PyObject *WeakSet;                /* weakref.WeakSet */
    PyObject *BufferedProtocol;       /* asyncio.BufferedProtocol */
    PyObject *StreamReaderProtocol;   /* asyncio.StreamReaderProtocol */
    PyObject *socket_type;            /* _socket.socket, the base of socket.socket */
    PyObject *socket_class;           /* socket.socket */
    PyObject *TransportSocket;        /* asyncio.trsock.TransportSocket */
    PyObject *check_ssl_socket;       /* pyasync._network._check_ssl_socket(sock) */
    PyObject *raise_loop_closed;      /* pyasync._loop._raise_loop_closed(*kept) */
    PyObject *base_get_extra_info;    /* asyncio.BaseTransport.get_extra_info, as defined */

    /* The registry set and its parts, cached by taskregistry.c. */
    PyObject *registry_set;
    PyObject *registry_data;
    PyObject *registry_iterating;
    PyObject *registry_pending;

    /* Free list of dead Handle/TimerHandle objects, linked through their
     * `callback` field. Reusing them skips the allocator and, above all, the
     * GC's allocation counter: bursts of call_soon() would otherwise trigger
     * young collections that walk the whole ready queue. */
    void *handle_freelist;
    int handle_freelist_len;
    void *futureiter_freelist;        /* the same for await iterators (future.c) */
    int futureiter_freelist_len;
    void *sockop_freelist;            /* and for sock_*() operations (sockop.c) */
    int sockop_freelist_len;

    PyTypeObject *FutureType;
    PyTypeObject *FutureIterType;
    PyTypeObject *TaskType;
    PyTypeObject *TaskGroupType;
    PyTypeObject *TaskGroupExitType;
    PyTypeObject *EagerTaskFactoryType;
    PyTypeObject *TransportType;
    PyTypeObject *SockOpType;
    PyTypeObject *DgramTransportType;
    PyTypeObject *ReadPipeTransportType;
    PyTypeObject *WritePipeTransportType;
    PyTypeObject *SendfileOperationType;
    PyTypeObject *SSLProtocolType;
    struct pa_ssl_names *ssl;         /* sslproto.c: made with the first SSL protocol */
    PyObject *SendfileNotAvailableError; /* asyncio.SendfileNotAvailableError */
    char *recv_buffer;                /* scratch for transports' recv(), made when first needed */
    unsigned long long task_name_counter;

    /* Interned attribute names. */
    PyObject *str_call_exception_handler;
    PyObject *str_run_forever_setup;
    PyObject *str_run_forever_cleanup;
    PyObject *str_handle_signal;
    PyObject *str_timer_handle_cancelled;
    PyObject *str_get_debug;
    PyObject *str_run;
    PyObject *str_warning;
    PyObject *str_fileno;
    PyObject *str_message;
    PyObject *str_exception;
    PyObject *str_handle;
    PyObject *str_source_traceback;
    PyObject *str_call_soon;
    PyObject *str_time;
    PyObject *str_context;
    PyObject *str_future;
    PyObject *kwnames_context;        /* ("context",) for vectorcall */
    PyObject *kwnames_msg;            /* ("msg",) */
    PyObject *kwnames_name;           /* ("name",) */
    PyObject *kwnames_name_context;   /* ("name", "context") */
    PyObject *kwnames_eager_task;     /* ("loop", "name", "context", "eager_start") */
    PyObject *wakeup_marker;          /* stands for the context of a task's wakeup callback */
    PyObject *fresh_context;          /* stands for "a fresh empty context, made when needed" */
    PyObject *str_throw;
    PyObject *str_value;
    PyObject *str_task;
    PyObject *str_asyncio_future_blocking;
    PyObject *str_add_done_callback;
    PyObject *str_cancel;
    PyObject *str_get_loop;
    PyObject *str_loop_attr;
    PyObject *str_data_received;
    PyObject *str_get_buffer;
    PyObject *str_buffer_updated;

    /* Interned names of the transports (transport.c, dgramtransport.c):
     * protocol callbacks, socket and deque methods. */
    PyObject *str_pause_writing;
    PyObject *str_resume_writing;
    PyObject *str_eof_received;
    PyObject *str_connection_lost;
    PyObject *str_datagram_received;
    PyObject *str_error_received;
    PyObject *str_call_connection_lost;
    PyObject *str_detach_server;
    PyObject *str_socket;
    PyObject *str_recv;
    PyObject *str_recv_into;
    PyObject *str_recvfrom_into;
    PyObject *str_accept;
    PyObject *str_gettimeout;
    PyObject *str_read_ready;
    PyObject *str_sockname;
    PyObject *str_connection_made;
    PyObject *str_start_reading;
    PyObject *str_attach;
    PyObject *str_detach;
    PyObject *str_close;
    PyObject *str_recvfrom;
    PyObject *str_send;
    PyObject *str_sendto;
    PyObject *str_append;
    PyObject *str_appendleft;
    PyObject *str_popleft;
    PyObject *str_clear;
    PyObject *str_set_result;
    PyObject *str_set_exception;
    PyObject *str_create_future;
    PyObject *str_debug;
    PyObject *str_peername;
    PyObject *str_get_extra_info;
} pa_state;

extern struct PyModuleDef pa_module_def;

static inline pa_state *
pa_get_state(PyObject *module)
{
    return (pa_state *)PyModule_GetState(module);
}

/* The state reached from a type defined by this module (slow: walks the MRO;
 * only for entry points that have no loop at hand). */
static inline pa_state *
pa_state_from_type(PyTypeObject *tp)
{
    if (tp->tp_mro == NULL) {
        /* The type itself was cleared (garbage collection at interpreter
         * shutdown can clear it before its last instances). */
        PyErr_SetString(PyExc_RuntimeError, "pyasync type already cleared");
        return NULL;
    }
    PyObject *mod = PyType_GetModuleByDef(tp, &pa_module_def);
    return mod ? pa_get_state(mod) : NULL;
}

/* The state of an instance of one of our types: O(1) for our own types,
 * a walk of the MRO for Python subclasses of them. */
static inline pa_state *
pa_state_of(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && ht->ht_module != NULL) {
        return pa_get_state(ht->ht_module);
    }
    return pa_state_from_type(tp);
}

/* pa_state_of() for deallocators, clear and finalize slots: NULL when the
 * state is gone, without touching the error indicator (an exception may be
 * propagating through the code that dropped the last reference). */
static inline pa_state *
pa_state_of_quiet(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
    if ((tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && ht->ht_module != NULL) {
        return pa_get_state(ht->ht_module);
    }
    PyObject *saved = pa_err_take();
    pa_state *st = pa_state_from_type(tp);
    if (st == NULL) {
        PyErr_Clear();
    }
    pa_err_restore(saved);
    return st;
}

/* A getter's value for an optional field: the object, or None. */
static inline PyObject *
pa_ref_or_none(PyObject *value)
{
    return Py_NewRef(value ? value : Py_None);
}

/* The helpers are installed by pyasync/__init__.py; using the types before
 * that (a failed package import, or _core imported by hand) must raise, not
 * call through NULL. */
static inline int
pa_check_ready(pa_state *st)
{
    if (st->format_callback_source == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "pyasync._core is not initialised: import pyasync first");
        return -1;
    }
    return 0;
}

#endif /* PYASYNC_STATE_H */
