/*
 * taskregistry.c - see taskregistry.h.
 *
 * The set is the one asyncio.tasks held when pyasync was imported, as for
 * CPython's own Task (its C module keeps the set it made). Its
 * data/_iterating/_pending_removals are cached: WeakSet never rebinds them
 * after __init__.
 */
#include "taskregistry.h"

void
pa_registry_clear(pa_state *st)
{
    Py_CLEAR(st->registry_set);
    Py_CLEAR(st->registry_data);
    Py_CLEAR(st->registry_iterating);
    Py_CLEAR(st->registry_pending);
}

/* Point the cache at `wset`; 0 if it is not a WeakSet we can fill directly. */
static int
cache_set(pa_state *st, PyObject *wset)
{
    pa_registry_clear(st);
    if (!Py_IS_TYPE(wset, (PyTypeObject *)st->WeakSet)) {
        return 0;
    }
    PyObject *data = PyObject_GetAttrString(wset, "data");
    PyObject *iterating = data ? PyObject_GetAttrString(wset, "_iterating") : NULL;
    PyObject *pending = iterating ? PyObject_GetAttrString(wset, "_pending_removals") : NULL;
    if (pending == NULL || !PySet_CheckExact(data) || !PySet_CheckExact(iterating) ||
        !PyList_CheckExact(pending)) {
        Py_XDECREF(data);
        Py_XDECREF(iterating);
        Py_XDECREF(pending);
        return PyErr_Occurred() ? -1 : 0;
    }
    st->registry_set = Py_NewRef(wset);
    st->registry_data = data;
    st->registry_iterating = iterating;
    st->registry_pending = pending;
    return 1;
}

int
pa_registry_add(pa_state *st, PyObject *task, PyObject **entry)
{
    PyObject *wset = st->task_registry;
    if (wset != st->registry_set && cache_set(st, wset) < 0) {
        return -1;
    }
    if (wset != st->registry_set || PyList_GET_SIZE(st->registry_pending) > 0) {
        /* Unusual: let asyncio do it (it also commits pending removals). */
        PyObject *res = PyObject_CallOneArg(st->register_task, task);
        Py_XDECREF(res);
        return res ? 0 : -1;
    }
    PyObject *ref = PyWeakref_NewRef(task, NULL);
    if (ref == NULL) {
        return -1;
    }
    if (PySet_Add(st->registry_data, ref) < 0) {
        Py_DECREF(ref);
        return -1;
    }
    Py_XSETREF(*entry, ref);
    return 0;
}

void
pa_registry_remove(pa_state *st, PyObject **entry)
{
    PyObject *ref = *entry;
    if (ref == NULL) {
        return;
    }
    *entry = NULL;
    if (st->registry_data != NULL) {
        PyObject *saved = pa_err_take();
        int rc;
        if (PySet_GET_SIZE(st->registry_iterating) > 0) {
            /* Being iterated: removing now would break the iteration. */
            rc = PyList_Append(st->registry_pending, ref);
        } else {
            rc = PySet_Discard(st->registry_data, ref);
        }
        if (rc < 0) {
            PyErr_WriteUnraisable(ref);
        }
        pa_err_restore(saved);
    }
    Py_DECREF(ref);
}
