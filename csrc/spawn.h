/*
 * spawn.h - starting a child process (spawn.c): the fork and exec behind
 * subprocess_exec() and subprocess_shell() when no keyword needs Python code
 * in the child (preexec_fn) or a lookup (user, group).
 */
#ifndef PYASYNC_SPAWN_H
#define PYASYNC_SPAWN_H

#include "state.h"

/* Add _core.spawn() to the module. */
int pa_spawn_register(PyObject *module);

#endif /* PYASYNC_SPAWN_H */
