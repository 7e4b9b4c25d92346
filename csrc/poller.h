/*
 * poller.h - the I/O readiness interface that the loop polls.
 *
 * A backend is private state plus a handful of operations (create, add,
 * modify, delete, wait, free). The loop owns the table of watchers indexed by
 * fd and tells the backend the old and new interest masks on every change, so
 * a backend never has to remember more than the kernel needs. wait() only
 * reports what fired. Every operation returns 0 (or a count) or -errno; none
 * touches Python objects, so wait() is safe to call with the GIL released.
 *
 * Backends: epoll (poller_epoll.c, the default on Linux) and poll()
 * (poller_poll.c). PYASYNC_POLLER=epoll|poll picks one.
 */
#ifndef PYASYNC_POLLER_H
#define PYASYNC_POLLER_H

#include <stdint.h>

#define PA_READABLE 1u
#define PA_WRITABLE 2u

typedef struct {
    int fd;
    uint32_t events; /* PA_READABLE | PA_WRITABLE; errors and hang-ups report both */
} pa_poll_event;

typedef struct pa_poller pa_poller;

typedef struct {
    const char *name;
    int (*create)(pa_poller **out);
    void (*destroy)(pa_poller *p);
    /* old == 0 means the fd is new to the poller; events == 0 means remove it;
     * old == events renews the registration (the fd may name a new file).
     * Removing an fd that is closed, or names a file the poller does not
     * know, succeeds. */
    int (*update)(pa_poller *p, int fd, uint32_t old, uint32_t events);
    /* timeout_ms < 0 blocks until an event; returns the number of events. */
    int (*wait)(pa_poller *p, pa_poll_event *out, int max, int timeout_ms);
} pa_poller_ops;

extern const pa_poller_ops pa_epoll_ops;
extern const pa_poller_ops pa_poll_ops;

/* The backend named by name, or by $PYASYNC_POLLER when name is NULL or empty;
 * NULL if the name is unknown. */
const pa_poller_ops *pa_poller_lookup(const char *name);

#endif /* PYASYNC_POLLER_H */
