/*
 * clock.h - the loop's clock.
 *
 * asyncio's loop.time() is time.monotonic(), which on Linux reads
 * CLOCK_MONOTONIC; we read the same clock so that deadlines computed by
 * Python code and by the loop agree exactly.
 */
#ifndef PYASYNC_CLOCK_H
#define PYASYNC_CLOCK_H

#include <time.h>

static inline double
pa_clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double
pa_clock_resolution(void)
{
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC, &ts) != 0) {
        return 1e-9;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif /* PYASYNC_CLOCK_H */
