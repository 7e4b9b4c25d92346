/*
 * poller.c - choice of the poller backend.
 */
#include "poller.h"

#include <stdlib.h>
#include <string.h>

const pa_poller_ops *
pa_poller_lookup(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        name = getenv("PYASYNC_POLLER");
    }
    if (name == NULL || name[0] == '\0') {
#ifdef __linux__
        return &pa_epoll_ops;
#else
        return &pa_poll_ops;
#endif
    }
#ifdef __linux__
    if (strcmp(name, "epoll") == 0) {
        return &pa_epoll_ops;
    }
#endif
    if (strcmp(name, "poll") == 0) {
        return &pa_poll_ops;
    }
    return NULL;
}
