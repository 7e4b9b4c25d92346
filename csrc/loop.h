/*
 * loop.h - the event loop object.
 *
 * Ownership: the loop owns every handle in its ready queue, its timer heap and
 * its watcher table (strong references). `current_handle` is borrowed and only
 * set while that handle runs (the ready queue popped it into a local that
 * keeps it alive). The wakeup pipe is created with the loop and closed by
 * close() or dealloc.
 */
#ifndef PYASYNC_LOOP_H
#define PYASYNC_LOOP_H

#include "state.h"
#include "clock.h"
#include "metrics.h"
#include "poller.h"
#include "readyqueue.h"
#include "timerheap.h"
#include "virtualclock.h"

#include <sys/types.h>

typedef struct {
    PyObject *reader;      /* Handle or NULL */
    PyObject *writer;      /* Handle or NULL */
    PyObject *reader_file; /* what add_reader() was given (an int or a file object); NULL */
    PyObject *writer_file; /* for an empty slot and for the loop's own watchers (transports) */
    PyObject *transport;   /* borrowed: the transport that owns the fd, or NULL
                            * (pa_loop_set_fd_transport) */
    uint32_t events;       /* interest registered with the poller */
    char renew;            /* that registration may be of a file the fd no longer names:
                            * the next interest given re-registers it (pa_loop_claim_fd) */
    uint8_t unwatched;     /* directions polled ready with no watcher: their interest is
                            * withdrawn before the next poll unless one comes back
                            * (pa_loop_withdraw_unwatched) */
} pa_io_watch;

typedef struct {
    PyObject_HEAD
    pa_state *state;
    PyObject *module;                 /* keeps `state` alive */
    pa_readyqueue ready;
    pa_timerheap timers;
    const pa_poller_ops *poller_ops;
    pa_poller *poller;
    pa_io_watch *io;                  /* indexed by fd */
    int io_capacity;
    pa_poll_event *events;            /* buffer for one poll */
    int *unwatched_fds;               /* fds whose io[fd].unwatched is set (at most one poll's) */
    int unwatched_count;
    int wake_rfd, wake_wfd;           /* self-pipe: wakeups (0 bytes) and signal numbers */
    int wake_pending;                 /* a wakeup byte is in the pipe, not yet drained */
    pid_t owner_pid;                  /* process that made the poller and self-pipe */
    unsigned long thread_id;          /* thread running the loop, valid while running */
    PyObject *current_handle;         /* borrowed, set while a handle runs */
    PyObject *task_factory;           /* set_task_factory(), or NULL */
    Py_ssize_t timer_cancelled_count; /* cancelled timers still in the heap */
    double clock_resolution;
    double slow_callback_duration;
    /* Overrides of call_soon() and time(): on the instance (seen by
     * setattr), or in the type, whose answer is kept for `methods_type` at
     * `methods_type_version` (see pa_loop_methods_of_type). */
    char call_soon_set_on_instance;
    char time_set_on_instance;
    char call_soon_is_ours_in_type;   /* methods_type's call_soon() is LoopBase's own */
    char time_is_ours_in_type;        /* methods_type's time() is LoopBase's own */
    PyTypeObject *methods_type;       /* borrowed, only compared: the type last checked */
    unsigned int methods_type_version; /* its version tag then (0: unknown, check again) */
    pa_loop_metrics metrics;          /* pyasync.metrics(), in metrics.c */
    pa_virtual_clock vclock;          /* pyasync.testing's virtual time, if on */
    char running;
    char stopping;
    char closed;
    char debug;
} LoopObject;

int pa_loop_register_type(PyObject *module, pa_state *st);

/* After fork(), in afterfork.c. The pid of this process, kept up to date
 * across fork() once pa_process_watch_forks() ran (-1 with an exception if
 * it could not). */
extern pid_t pa_process_pid;
int pa_process_watch_forks(void);

/* Whether the loop's poller and self-pipe are those of the process it was
 * forked from: then they must not be touched (see afterfork.c). */
static inline int
pa_loop_is_inherited(LoopObject *loop)
{
    return loop->owner_pid != pa_process_pid;
}

/* Give an inherited loop a poller and a self-pipe of this process's own,
 * its watchers registered with it. 0, or -1 with an exception (the loop is
 * then still inherited). */
int pa_loop_renew_after_fork(LoopObject *loop);

/* Renew the loop if it is inherited: before anything that needs its poller
 * or self-pipe. */
static inline int
pa_loop_own_kernel_state(LoopObject *loop)
{
    return pa_loop_is_inherited(loop) ? pa_loop_renew_after_fork(loop) : 0;
}

/* A scheduled timer of this loop was cancelled: it stays in the heap until
 * dropped, and is counted for compaction and for metrics(). */
static inline void
pa_loop_note_timer_cancelled(LoopObject *loop)
{
    loop->timer_cancelled_count++;
    loop->metrics.timers_cancelled++;
}

/* Events read per poll (the size of `events`). */
#define PA_EVENTS_PER_POLL 1024

/* One iteration of the loop (runloop.c): 0, or -1 with an exception. */
int pa_loop_run_once(LoopObject *self);

/* Take a timer out of the heap's care (it is no longer scheduled) and drop
 * the heap's reference. */
void pa_loop_timer_unschedule(PyObject *timer);

int pa_loop_check_subtype(pa_state *st, PyTypeObject *type);

/* Whether obj is a pyasync loop. Every loop a user makes is of a subclass
 * (pyasync.Loop): the last subclass that passed is remembered, which spares
 * the MRO walk on each task step. */
static inline int
pa_loop_check(pa_state *st, PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    return type == st->LoopType || type == st->loop_subtype_seen ||
           pa_loop_check_subtype(st, type);
}

/* Recheck which of call_soon() and time() the loop's type overrides, when
 * the type or its version tag changed since the last check (a subclass, a
 * class patched after the loop was made, a new __class__). */
void pa_loop_check_methods_of_type(LoopObject *loop);

static inline void
pa_loop_methods_of_type(LoopObject *loop)
{
    PyTypeObject *type = Py_TYPE(loop);
    unsigned int version = pa_type_version(type);
    if (type != loop->methods_type || version != loop->methods_type_version || version == 0) {
        pa_loop_check_methods_of_type(loop);
    }
}

/* Whether the loop's clock is LoopBase.time(), read in C. Anything that
 * replaces time() -- an instance attribute (unittest.mock.patch.object), a
 * subclass, a patched class, a new __class__ -- moves the clock asyncio's
 * way: deadlines, due timers and the poll timeout then follow self.time().
 * The type's answer is kept until its version tag changes, so the common
 * case costs two comparisons. Inline: every loop iteration asks. */
static inline int
pa_loop_clock_is_ours(LoopObject *self)
{
    if (self->time_set_on_instance) {
        return 0;
    }
    pa_loop_methods_of_type(self);
    return self->time_is_ours_in_type;
}

/* LoopBase.time(): the virtual clock if pyasync.testing set one, else
 * CLOCK_MONOTONIC. */
static inline double
pa_loop_own_clock_now(LoopObject *self)
{
    return self->vclock.on ? self->vclock.now : pa_clock_now();
}

/* What an overridden time() says (see pa_loop_now). */
int pa_loop_now_overridden(LoopObject *self, double *now);

/* The loop's time: its own clock, or what self.time() says when it is
 * overridden. 0, or -1 with an exception. */
static inline int
pa_loop_now(LoopObject *self, double *now)
{
    if (pa_loop_clock_is_ours(self)) {
        *now = pa_loop_own_clock_now(self);
        return 0;
    }
    return pa_loop_now_overridden(self, now);
}

/* Whether callbacks for this loop may be queued directly: a pyasync loop,
 * outside debug mode, whose call_soon() nobody replaced, on the instance or
 * in its class, before or after the loop was made (asyncio's Future and Task
 * go through loop.call_soon(), so an override must see every call). Two
 * comparisons besides the flags while the type is unchanged. */
static inline int
pa_loop_fast_path(pa_state *st, PyObject *obj)
{
    if (!pa_loop_check(st, obj)) {
        return 0;
    }
    LoopObject *loop = (LoopObject *)obj;
    if (loop->debug || loop->call_soon_set_on_instance) {
        return 0;
    }
    pa_loop_methods_of_type(loop);
    return loop->call_soon_is_ours_in_type;
}

int pa_loop_raise_closed(LoopObject *loop, PyObject *const *kept, Py_ssize_t nkept);

/* Raise RuntimeError('Event loop is closed') and return -1 if it is. The
 * exception holds the `nkept` objects of `kept` (what the refused call was
 * given) until it is dropped, as asyncio's does through its frames. */
static inline int
pa_loop_check_closed_keeping(LoopObject *loop, PyObject *const *kept, Py_ssize_t nkept)
{
    return loop->closed ? pa_loop_raise_closed(loop, kept, nkept) : 0;
}

static inline int
pa_loop_check_closed(LoopObject *loop)
{
    return pa_loop_check_closed_keeping(loop, NULL, 0);
}

/* Queue a handle (new reference taken) and wake the loop if it is polling
 * and `threadsafe` asks for it. */
int pa_loop_push_ready(LoopObject *loop, PyObject *handle, int threadsafe);

/* loop.call_soon(callback, *args, context=context) for any loop: queued
 * directly as a handle on a pyasync loop outside debug mode (no Python call),
 * through the loop's call_soon() method otherwise. At most 2 args. context
 * may be st->fresh_context: a new empty context, made only if needed.
 * The callback is not checked on the direct path: our own callers pass
 * callables, and a done-callback that is not callable must fail when it runs
 * (reported to the exception handler, the other callbacks still scheduled),
 * as with asyncio, whose call_soon() checks only in debug mode. */
int pa_call_soon(pa_state *st, PyObject *loop, PyObject *callback, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *context);

/* The Loop type's call_soon(), call_soon_threadsafe(), call_later() and
 * call_at() methods (schedule.c), for its method table in loop.c. */
PyObject *pa_loop_m_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                              PyObject *kwnames);
PyObject *pa_loop_m_call_soon_threadsafe(LoopObject *self, PyObject *const *args,
                                         Py_ssize_t nargsf, PyObject *kwnames);
PyObject *pa_loop_m_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                               PyObject *kwnames);
PyObject *pa_loop_m_call_at(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf,
                            PyObject *kwnames);

/* The debug flag of any loop: read directly from ours, asked through
 * get_debug() from any other (0 for NULL/None). -1 on error. */
int pa_loop_get_debug(pa_state *st, PyObject *loop);

/* loop.call_exception_handler({"message": message, key: obj, "exception":
 * exc, "source_traceback": source_tb}), as asyncio builds it: exc is left
 * out when NULL, source_tb when NULL or empty. 0, or -1 with an exception. */
int pa_loop_report(pa_state *st, PyObject *loop, PyObject *message, PyObject *key, PyObject *obj,
                   PyObject *exc, PyObject *source_tb);

/* Parse fname(<npos positional>, *, name=None, context=None): create_task of
 * the loop and of TaskGroup, and the eager task factory. name and context
 * come back NULL when absent or None. */
int pa_parse_task_args(const char *fname, Py_ssize_t npos, PyObject *const *args,
                       Py_ssize_t nargsf, PyObject *kwnames, PyObject **name, PyObject **context);

static inline int
pa_parse_create_task_args(PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames,
                          PyObject **name, PyObject **context)
{
    return pa_parse_task_args("create_task", 1, args, nargsf, kwnames, name, context);
}

/* Watch fd for one direction (PA_READABLE or PA_WRITABLE) with a callback
 * taking no arguments, run in a copy of the current context; replaces (and
 * cancels) the previous watcher, as add_reader() does. 0, or -1 with an
 * exception. In iowatch.c, like the rest of this block. */
int pa_loop_watch_fd(LoopObject *self, int fd, uint32_t dir, PyObject *callback);

/* fd names a file new to the loop (a transport took it): an interest the
 * table still records for that number (left by an owner that closed its
 * file without the loop, or by an earlier file watched through add_reader())
 * may be gone from the kernel with that file, so the next interest asked
 * for it is registered afresh. */
void pa_loop_claim_fd(LoopObject *self, int fd);

/* Which transport owns an fd, so that add_reader() and the sock_*() methods
 * refuse it (asyncio keeps a WeakValueDictionary for this). The table holds
 * a borrowed reference: a transport drops its entry when it closes its fd
 * and when it is cleared (pa_loop_drop_fd_transport), so an entry never
 * outlives its transport. Setting needs memory for the fd's slot: -1 with
 * MemoryError. */
int pa_loop_set_fd_transport(LoopObject *self, int fd, PyObject *transport);
void pa_loop_drop_fd_transport(LoopObject *self, int fd, PyObject *transport);
PyObject *pa_loop_fd_transport(LoopObject *self, int fd); /* borrowed, or NULL */
/* RuntimeError ("File descriptor ... is used by transport ...") and -1 if a
 * transport that is not closing owns fd, as asyncio's
 * _ensure_fd_no_transport(): add_reader() and the other public watcher
 * methods, and the sock_*() operations before they wait. */
int pa_loop_check_no_transport(LoopObject *self, int fd, PyObject *fileobj);

/* Stop watching: 1 if a watcher was removed, 0 if none, -1 on error. */
int pa_loop_unwatch_fd(LoopObject *self, int fd, uint32_t dir);

/* The same for the owner whose watchers run `callback`: its watcher goes,
 * and so does an interest that no watcher holds (left by
 * pa_loop_unwatch_fd_lazily), but a watcher of someone else stays: the
 * owner's file may have been closed behind its back and the number given
 * to a new file, watched by its own owner. */
int pa_loop_unwatch_fd_for(LoopObject *self, int fd, uint32_t dir, PyObject *callback);

/* The same, but the poller keeps its interest until an event comes for it
 * (then it is withdrawn before the next poll, unless a watcher took it up
 * again meanwhile: pa_loop_withdraw_unwatched) or a watcher takes it up
 * again: stopping and restarting between two polls, or in the iteration
 * after a poll that found the fd ready, costs no system call.
 * Only for fds whose owner withdraws the interest with pa_loop_unwatch_fd()
 * before closing them (transports). */
int pa_loop_unwatch_fd_lazily(LoopObject *self, int fd, uint32_t dir);

/* Whether a live watcher is registered for that direction. */
int pa_loop_is_watching(LoopObject *self, int fd, uint32_t dir);

/* Watcher methods, implemented in iowatch.c. */
PyObject *pa_loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *pa_loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *pa_loop_remove_reader(LoopObject *self, PyObject *fileobj, int public);
PyObject *pa_loop_remove_writer(LoopObject *self, PyObject *fileobj, int public);
PyObject *pa_loop_private_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs);

/* The sock_*() methods (csrc/sockop.c): each returns an awaitable SockOp. */
int pa_sockop_register_type(PyObject *module, pa_state *st);
void pa_sockop_freelist_clear(pa_state *st);
#define PA_SOCKOP_DECL(name)                                                                       \
    PyObject *name(LoopObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
PA_SOCKOP_DECL(pa_loop_sock_recv);
PA_SOCKOP_DECL(pa_loop_sock_recv_into);
PA_SOCKOP_DECL(pa_loop_sock_recvfrom);
PA_SOCKOP_DECL(pa_loop_sock_recvfrom_into);
PA_SOCKOP_DECL(pa_loop_sock_sendto);
PA_SOCKOP_DECL(pa_loop_sock_sendall);
PA_SOCKOP_DECL(pa_loop_sock_accept);
PyObject *pa_loop_private_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs);
/* Queue the callbacks of fds that fired. */
int pa_loop_dispatch_io(LoopObject *self, const pa_poll_event *events, int n);
/* Withdraw the interests that fired with no watcher and got none back since
 * (see fire() in iowatch.c): before each poll that has any pending
 * (unwatched_count). 0, or -1 with an exception. */
int pa_loop_withdraw_unwatched(LoopObject *self);
/* Forget every watcher (close()). */
void pa_loop_clear_io(LoopObject *self);
int pa_loop_traverse_io(LoopObject *self, visitproc visit, void *arg);

/* Self-pipe, implemented in wakeup.c. Pure C helpers return 0 or -errno. */
int pa_wakeup_open(LoopObject *self);
void pa_wakeup_close(LoopObject *self);
void pa_wakeup_notify(LoopObject *self);
/* Drain the pipe and hand every signal number found to the loop's
 * _handle_signal(); -1 with an exception set if that raised. */
int pa_wakeup_drain(LoopObject *self);

#endif /* PYASYNC_LOOP_H */
