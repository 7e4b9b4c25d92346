/*
 * wakeup.c - the loop's self-pipe.
 *
 * One non-blocking pipe carries two kinds of bytes, as in asyncio: a zero
 * byte written by call_soon_threadsafe() to wake a loop blocked in poll, and
 * signal numbers written by CPython's C-level signal handler once the pipe is
 * installed with signal.set_wakeup_fd(). At most one wakeup byte is in flight
 * (`wake_pending`), so a burst of threadsafe calls costs one write. The flag
 * is only touched with the GIL held, which orders the writer threads and the
 * loop's drain.
 */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int
pa_wakeup_open(LoopObject *self)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return -errno;
    }
    self->wake_rfd = fds[0];
    self->wake_wfd = fds[1];
    self->wake_pending = 0;
    int rc = self->poller_ops->update(self->poller, fds[0], 0, PA_READABLE);
    if (rc < 0) {
        pa_wakeup_close(self);
        return rc;
    }
    return 0;
}

void
pa_wakeup_close(LoopObject *self)
{
    if (self->wake_rfd >= 0) {
        if (self->poller != NULL && !pa_loop_is_inherited(self)) {
            (void)self->poller_ops->update(self->poller, self->wake_rfd, PA_READABLE, 0);
        }
        close(self->wake_rfd);
        self->wake_rfd = -1;
    }
    if (self->wake_wfd >= 0) {
        close(self->wake_wfd);
        self->wake_wfd = -1;
    }
}

void
pa_wakeup_notify(LoopObject *self)
{
    /* An inherited loop: its pipe is the parent's, and no thread of this
     * process polls it before renewing it (see afterfork.c). */
    if (self->wake_pending || self->wake_wfd < 0 || pa_loop_is_inherited(self)) {
        return;
    }
    static const char zero = 0;
    ssize_t n;
    do {
        n = write(self->wake_wfd, &zero, 1);
    } while (n < 0 && errno == EINTR);
    /* A full pipe (EAGAIN) already guarantees a wakeup. */
    if (n == 1 || errno == EAGAIN) {
        self->wake_pending = 1;
    }
}

int
pa_wakeup_drain(LoopObject *self)
{
    unsigned char buf[512];
    unsigned char signals[512];
    size_t nsignals = 0;
    for (;;) {
        ssize_t n = read(self->wake_rfd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break; /* EAGAIN: drained */
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != 0 && nsignals < sizeof(signals)) {
                signals[nsignals++] = buf[i];
            }
        }
        if ((size_t)n < sizeof(buf)) {
            break;
        }
    }
    self->wake_pending = 0;
    for (size_t i = 0; i < nsignals; i++) {
        PyObject *signum = PyLong_FromLong(signals[i]);
        if (signum == NULL) {
            return -1;
        }
        PyObject *res =
            PyObject_CallMethodOneArg((PyObject *)self, self->state->str_handle_signal, signum);
        Py_DECREF(signum);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    return 0;
}
