/*
 * taskgroup.h - pyasync.TaskGroup, asyncio.TaskGroup in C.
 */
#ifndef PYASYNC_TASKGROUP_H
#define PYASYNC_TASKGROUP_H

#include "state.h"

int pa_taskgroup_register_types(PyObject *module, pa_state *st);

#endif /* PYASYNC_TASKGROUP_H */
