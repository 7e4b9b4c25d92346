/*
 * afterfork.c - a loop in a process forked from the one that made it.
 *
 * fork() gives the child copies of the loop's fds, but the epoll instance
 * and the self-pipe behind them stay shared with the parent: a child that
 * unregistered its watchers (EPOLL_CTL_DEL) when closing the loop would
 * make the parent's loop deaf, one that polled would take the parent's
 * events, and a wakeup byte written or read would be the parent's. So a loop
 * remembers the process that made its poller and self-pipe (`owner_pid`) and
 * never touches them from another process:
 *
 * - closing or collecting the loop in the child only closes the child's
 *   copies of the fds (closing a copy leaves the parent's registrations in
 *   place: epoll drops a registration only when the file's last fd closes);
 * - using it in the child (polling, adding a watcher, the wakeup fd) first
 *   renews it: a poller and a self-pipe of the child's own, with every fd
 *   that has a watcher registered again (libuv's uv_loop_fork() does the
 *   same when asked; here it happens on first use). Removing a watcher
 *   before that only changes the table, which the renewal reads;
 * - call_soon_threadsafe() in the child before the renewal writes nothing:
 *   no thread of the child can be polling that loop yet, and the first poll
 *   renews it.
 *
 * The pid of the running process is kept up to date by a pthread_atfork()
 * handler, so that telling whether a loop is inherited costs a comparison,
 * not a getpid() system call. It is process-wide by nature: fork() copies
 * the whole process, whatever interpreter or module instance forked.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

pid_t pa_process_pid;

static void
remember_pid(void)
{
    pa_process_pid = getpid();
}

static pthread_once_t watch_forks_once = PTHREAD_ONCE_INIT;
static int watch_forks_error;

static void
watch_forks(void)
{
    remember_pid();
    watch_forks_error = pthread_atfork(NULL, NULL, remember_pid);
}

int
pa_process_watch_forks(void)
{
    (void)pthread_once(&watch_forks_once, watch_forks);
    if (watch_forks_error != 0) {
        errno = watch_forks_error;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* Register again, with the new poller, every fd that has a watcher, for the
 * directions it is watched in; an fd the child closed since the fork is
 * left with no interest (its watcher stays, as a selector's key would). */
static void
register_watchers_again(LoopObject *self)
{
    for (int fd = 0; fd < self->io_capacity; fd++) {
        pa_io_watch *w = &self->io[fd];
        uint32_t watched =
            (w->reader != NULL ? PA_READABLE : 0) | (w->writer != NULL ? PA_WRITABLE : 0);
        uint32_t events = w->events & watched;
        w->events = 0;
        w->renew = 0;
        if (events != 0 && self->poller_ops->update(self->poller, fd, 0, events) == 0) {
            w->events = events;
        }
    }
}

int
pa_loop_renew_after_fork(LoopObject *self)
{
    /* Our copies of the parent's epoll fd and self-pipe: closed, never
     * unregistered from. */
    pa_wakeup_close(self);
    if (self->poller != NULL) {
        self->poller_ops->destroy(self->poller);
        self->poller = NULL;
    }
    int rc = self->poller_ops->create(&self->poller);
    if (rc < 0) {
        self->poller = NULL;
        goto fail;
    }
    /* The watchers first: an fd the child closed cannot then be mistaken
     * for the new self-pipe, which may take its number. */
    register_watchers_again(self);
    rc = pa_wakeup_open(self);
    if (rc < 0) {
        self->poller_ops->destroy(self->poller);
        self->poller = NULL;
        goto fail;
    }
    self->owner_pid = pa_process_pid;
    return 0;

fail:
    /* Still inherited: the next use tries again. */
    errno = -rc;
    PyErr_SetFromErrno(rc == -ENOMEM ? PyExc_MemoryError : PyExc_OSError);
    return -1;
}
