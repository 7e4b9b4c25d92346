/*
 * virtualclock.h - virtual time for tests (pyasync.testing).
 *
 * A loop with a virtual clock reads `now` instead of CLOCK_MONOTONIC. When
 * the loop would block until a timer, it polls for I/O for at most
 * `threshold` real seconds instead, and if nothing happened it sets `now`
 * to that timer's deadline: hours of sleeps and timeouts pass at once, in
 * deadline order. Timers after `jump_limit` are not jumped to (manual mode
 * moves the limit with pyasync.testing.advance()). While executor jobs are
 * in flight (`threads_busy`), a thread will call back later: the loop
 * blocks for real, and the clock advances by the real time that passed,
 * as a real clock would.
 */
#ifndef PYASYNC_VIRTUALCLOCK_H
#define PYASYNC_VIRTUALCLOCK_H

#include <Python.h>

enum { PA_VCLOCK_NONE, PA_VCLOCK_JUMP, PA_VCLOCK_FOLLOW_REAL };

typedef struct {
    char on;
    char pending;            /* what the poll in progress decides (PA_VCLOCK_*) */
    double now;
    double jump_limit;       /* +inf with autojump */
    double threshold;        /* real seconds of I/O waited for before a jump */
    Py_ssize_t threads_busy; /* executor jobs in flight, counted by pyasync.testing */
    double target;           /* JUMP: the deadline; FOLLOW_REAL: the longest step */
    double poll_started;     /* FOLLOW_REAL: CLOCK_MONOTONIC before the poll */
} pa_virtual_clock;

#endif
