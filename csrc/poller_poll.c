/*
 * poller_poll.c - poll() backend, portable to every POSIX system.
 *
 * Keeps a dense array of struct pollfd plus an fd -> slot index so that add,
 * modify and remove are O(1) (removal moves the last slot into the hole).
 * wait() is O(number of watched fds), the price of poll().
 *
 * Quirk: poll() reports POLLNVAL for an fd that was closed while registered;
 * like the selectors module we report it as readable and writable so that
 * the callbacks run and find out.
 */
#include "poller.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pa_poller {
    struct pollfd *fds;
    int count;
    int capacity;
    int *slot_of_fd; /* -1 when the fd is not watched */
    int slot_capacity;
};

static int
poll_create_poller(pa_poller **out)
{
    pa_poller *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

static void
poll_destroy(pa_poller *p)
{
    free(p->fds);
    free(p->slot_of_fd);
    free(p);
}

static short
to_poll(uint32_t events)
{
    short ev = 0;
    if (events & PA_READABLE) {
        ev |= POLLIN;
    }
    if (events & PA_WRITABLE) {
        ev |= POLLOUT;
    }
    return ev;
}

/* Room in the index for fd, grown by doubling with checked arithmetic (the
 * loop only hands over open fds, which the kernel bounds). */
static int
ensure_slot_index(pa_poller *p, int fd)
{
    if (fd < p->slot_capacity) {
        return 0;
    }
    if (fd == INT_MAX) {
        return -ENOMEM; /* a capacity past it is no int */
    }
    int newcap = p->slot_capacity ? p->slot_capacity : 64;
    while (newcap <= fd) {
        newcap = newcap <= INT_MAX / 2 ? newcap * 2 : INT_MAX;
    }
    if ((size_t)newcap > SIZE_MAX / sizeof(int)) {
        return -ENOMEM;
    }
    int *slots = realloc(p->slot_of_fd, (size_t)newcap * sizeof(int));
    if (slots == NULL) {
        return -ENOMEM;
    }
    for (int i = p->slot_capacity; i < newcap; i++) {
        slots[i] = -1;
    }
    p->slot_of_fd = slots;
    p->slot_capacity = newcap;
    return 0;
}

static int
poll_update(pa_poller *p, int fd, uint32_t old, uint32_t events)
{
    if (fd < 0) {
        return -EBADF;
    }
    int rc = ensure_slot_index(p, fd);
    if (rc < 0) {
        return rc;
    }
    int slot = p->slot_of_fd[fd];
    if (events == 0) {
        if (slot >= 0) {
            int last = --p->count;
            if (slot != last) {
                p->fds[slot] = p->fds[last];
                p->slot_of_fd[p->fds[slot].fd] = slot;
            }
            p->slot_of_fd[fd] = -1;
        }
        return 0;
    }
    if (slot < 0) {
        if (p->count == p->capacity) {
            if (p->capacity > INT_MAX / 2) {
                return -ENOMEM;
            }
            int newcap = p->capacity ? p->capacity * 2 : 64;
            struct pollfd *fds = realloc(p->fds, (size_t)newcap * sizeof(struct pollfd));
            if (fds == NULL) {
                return -ENOMEM;
            }
            p->fds = fds;
            p->capacity = newcap;
        }
        slot = p->count++;
        p->fds[slot].fd = fd;
        p->slot_of_fd[fd] = slot;
    }
    p->fds[slot].events = to_poll(events);
    p->fds[slot].revents = 0;
    return 0;
}

static int
poll_wait_events(pa_poller *p, pa_poll_event *out, int max, int timeout_ms)
{
    int n = poll(p->fds, (nfds_t)p->count, timeout_ms);
    if (n < 0) {
        return -errno;
    }
    int got = 0;
    for (int i = 0; i < p->count && got < n && got < max; i++) {
        short rev = p->fds[i].revents;
        if (rev == 0) {
            continue;
        }
        uint32_t r = 0;
        if (rev & ~POLLOUT) {
            r |= PA_READABLE;
        }
        if (rev & ~POLLIN) {
            r |= PA_WRITABLE;
        }
        out[got].fd = p->fds[i].fd;
        out[got].events = r;
        got++;
    }
    return got;
}

const pa_poller_ops pa_poll_ops = {
    .name = "poll",
    .create = poll_create_poller,
    .destroy = poll_destroy,
    .update = poll_update,
    .wait = poll_wait_events,
};
