/*
 * poller_epoll.c - epoll backend (Linux).
 *
 * Kernel quirks handled here:
 * - epoll tracks open file descriptions, not fd numbers: an fd closed without
 *   being removed may keep reporting events through a dup. Removal of an fd
 *   that is already closed fails with EBADF (or ENOENT when the number now
 *   names another file); that is not an error for the caller, who only wants
 *   the registration gone.
 * - Closing the last fd of a file drops its registration silently: the next
 *   file given that number is not registered, though the loop's table may
 *   still hold an interest for the number. So MOD falls back to ADD on
 *   ENOENT, and ADD to MOD on EEXIST: either way the file now behind the fd
 *   is registered with the interest asked for.
 * - EPOLLERR and EPOLLHUP are always reported; like the selectors module we
 *   report them as both readable and writable, and the loop masks the result
 *   with what was asked for.
 * - Regular files cannot be polled (EPERM); the caller gets -EPERM.
 */
#ifdef __linux__

#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EPOLL_BATCH 1024

struct pa_poller {
    int epfd;
    struct epoll_event batch[EPOLL_BATCH];
};

static int
epoll_create_poller(pa_poller **out)
{
    pa_poller *p = malloc(sizeof(*p));
    if (p == NULL) {
        return -ENOMEM;
    }
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int err = errno;
        free(p);
        return -err;
    }
    *out = p;
    return 0;
}

static void
epoll_destroy(pa_poller *p)
{
    close(p->epfd);
    free(p);
}

static uint32_t
to_epoll(uint32_t events)
{
    uint32_t ev = 0;
    if (events & PA_READABLE) {
        ev |= EPOLLIN;
    }
    if (events & PA_WRITABLE) {
        ev |= EPOLLOUT;
    }
    return ev;
}

static int
epoll_update(pa_poller *p, int fd, uint32_t old, uint32_t events)
{
    struct epoll_event ev = {0};
    ev.events = to_epoll(events);
    ev.data.fd = fd;
    int op = old == 0 ? EPOLL_CTL_ADD : (events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
    if (epoll_ctl(p->epfd, op, fd, &ev) == 0) {
        return 0;
    }
    int err = errno;
    if (op == EPOLL_CTL_DEL && (err == EBADF || err == ENOENT)) {
        return 0;
    }
    if (op == EPOLL_CTL_MOD && err == ENOENT) {
        /* The fd was closed and reopened under us: register it afresh. */
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
            return 0;
        }
        err = errno;
    } else if (op == EPOLL_CTL_ADD && err == EEXIST) {
        /* Still registered (the loop had withdrawn it from its table only). */
        if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) {
            return 0;
        }
        err = errno;
    }
    return -err;
}

static int
epoll_wait_events(pa_poller *p, pa_poll_event *out, int max, int timeout_ms)
{
    if (max > EPOLL_BATCH) {
        max = EPOLL_BATCH;
    }
    int n = epoll_wait(p->epfd, p->batch, max, timeout_ms);
    if (n < 0) {
        return -errno;
    }
    for (int i = 0; i < n; i++) {
        uint32_t ev = p->batch[i].events;
        uint32_t r = 0;
        if (ev & ~(uint32_t)EPOLLOUT) {
            r |= PA_READABLE;
        }
        if (ev & ~(uint32_t)EPOLLIN) {
            r |= PA_WRITABLE;
        }
        out[i].fd = p->batch[i].data.fd;
        out[i].events = r;
    }
    return n;
}

const pa_poller_ops pa_epoll_ops = {
    .name = "epoll",
    .create = epoll_create_poller,
    .destroy = epoll_destroy,
    .update = epoll_update,
    .wait = epoll_wait_events,
};

#endif /* __linux__ */
