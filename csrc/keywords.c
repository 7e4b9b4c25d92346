/*
 * keywords.c - parameters passed by keyword to the loop's C methods (see
 * keywords.h).
 */
#include "keywords.h"

#define MAX_PARAMS 4

static Py_ssize_t
param_index(PyObject *name, const char *const *params)
{
    for (Py_ssize_t j = 0; params[j] != NULL; j++) {
        if (PyUnicode_CompareWithASCIIString(name, params[j]) == 0) {
            return j;
        }
    }
    return -1;
}

int
pa_keywords_name_params(PyObject *kwnames, const char *const *params)
{
    if (kwnames == NULL) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
        if (param_index(PyTuple_GET_ITEM(kwnames, i), params) >= 0) {
            return 1;
        }
    }
    return 0;
}

PyObject *
pa_call_with_params_bound(pa_fastcall_method method, PyObject *self, const char *fname,
                          const char *const *params, PyObject *const *args, Py_ssize_t nargsf,
                          PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    Py_ssize_t nparams = 0;
    while (params[nparams] != NULL) {
        nparams++;
    }
    assert(nparams <= MAX_PARAMS);
    PyObject *bound[MAX_PARAMS] = {NULL};
    for (Py_ssize_t j = 0; j < nparams && j < nargs; j++) {
        bound[j] = args[j];
    }
    /* The new vector: the bound parameters, then the other keywords'
     * values, named by a new kwnames tuple. */
    PyObject **stack = PyMem_Malloc((size_t)(MAX_PARAMS + nkw) * sizeof(PyObject *));
    PyObject *rest_names = PyTuple_New(nkw);
    PyObject *result = NULL;
    if (stack == NULL || rest_names == NULL) {
        if (stack == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Py_ssize_t npos = nargs, nrest = 0;
    PyObject **rest_values = stack + MAX_PARAMS; /* moved down below */
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        Py_ssize_t j = param_index(name, params);
        if (j < 0) {
            PyTuple_SET_ITEM(rest_names, nrest, Py_NewRef(name));
            rest_values[nrest++] = args[nargs + i];
            continue;
        }
        if (bound[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         params[j]);
            goto done;
        }
        bound[j] = args[nargs + i];
        if (j + 1 > npos) {
            npos = j + 1;
        }
    }
    /* A parameter given by keyword means no *args: nargs < npos here. */
    for (Py_ssize_t j = 0; j < npos; j++) {
        if (bound[j] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: '%s'",
                         fname, params[j]);
            goto done;
        }
        stack[j] = bound[j];
    }
    memmove(stack + npos, rest_values, (size_t)nrest * sizeof(PyObject *));
    if (nrest > 0 && _PyTuple_Resize(&rest_names, nrest) < 0) {
        goto done;
    }
    result = method(self, stack, npos, nrest > 0 ? rest_names : NULL);
done:
    Py_XDECREF(rest_names);
    PyMem_Free(stack);
    return result;
}

int
pa_reject_keywords(const char *fname, PyObject *kwnames)
{
    if (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                 PyTuple_GET_ITEM(kwnames, 0));
    return -1;
}

int
pa_parse_single_arg(const char *fname, const char *param, PyObject *const *args, Py_ssize_t nargsf,
                    PyObject *kwnames, PyObject **value)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    *value = NULL;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes 1 positional argument but %zd were given", fname,
                     nargs);
        return -1;
    }
    if (nargs == 1) {
        *value = args[0];
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, param) != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname,
                         name);
            return -1;
        }
        if (*value != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         param);
            return -1;
        }
        *value = args[nargs + i];
    }
    if (*value == NULL) {
        PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: '%s'", fname,
                     param);
        return -1;
    }
    return 0;
}
