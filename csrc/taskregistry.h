/*
 * taskregistry.h - asyncio.all_tasks() sees our tasks, without a Python call
 * per task.
 *
 * asyncio keeps scheduled tasks in a weakref.WeakSet, the module global
 * asyncio.tasks._scheduled_tasks (_all_tasks on 3.11), and all_tasks() lists
 * it and keeps the tasks that are not done. Its _register_task() is a Python
 * WeakSet.add() per task, and every weak reference it makes carries a Python
 * callback that runs when the task dies: two Python calls per task, about a
 * quarter of the cost of a short task.
 *
 * We put the same kind of entry in the same set from C: a weak reference to
 * the task in WeakSet.data. Ours has no callback; the task takes its entry out
 * itself when it finishes or dies, honouring the WeakSet's rule that entries
 * are only queued for removal (_pending_removals) while it is being iterated.
 * Anything unusual (the global is not an exact WeakSet, removals are pending)
 * goes through asyncio's own _register_task.
 */
#ifndef PYASYNC_TASKREGISTRY_H
#define PYASYNC_TASKREGISTRY_H

#include "state.h"

/* Register `task`; *entry receives the reference to keep until
 * pa_registry_remove() (NULL when asyncio's own function registered it). */
int pa_registry_add(pa_state *st, PyObject *task, PyObject **entry);

/* Take the entry out of the set (the task finished or is dying) and clear
 * *entry. Never raises: keeps any exception already set. */
void pa_registry_remove(pa_state *st, PyObject **entry);

/* Drop the cached references to the registry set (module clear). */
void pa_registry_clear(pa_state *st);

#endif /* PYASYNC_TASKREGISTRY_H */
