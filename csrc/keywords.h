/*
 * keywords.h - parameters passed by keyword to the loop's C methods.
 *
 * asyncio's loop methods are Python functions, so every parameter before
 * *args may be given by keyword: loop.call_later(delay=1, callback=f),
 * loop.create_task(coro=c), loop.remove_reader(fd=r). The C methods parse
 * positions, the fast way; when a keyword names one of those leading
 * parameters, pa_call_with_params_bound() moves it to its position and
 * calls the method again, so only such calls pay for it.
 */
#ifndef PYASYNC_KEYWORDS_H
#define PYASYNC_KEYWORDS_H

#include "state.h"

/* A METH_FASTCALL | METH_KEYWORDS method. */
typedef PyObject *(*pa_fastcall_method)(PyObject *self, PyObject *const *args, Py_ssize_t nargsf,
                                        PyObject *kwnames);

/* Whether one of kwnames is one of params (a NULL-terminated list of the
 * method's leading parameter names). False at once for NULL kwnames. */
int pa_keywords_name_params(PyObject *kwnames, const char *const *params);

/* method(self, ...) with the keywords naming params moved to their
 * positions; the other keywords are passed on as keywords. TypeError, as
 * Python gives it, for a parameter given twice or one left out before a
 * parameter given by keyword. */
PyObject *pa_call_with_params_bound(pa_fastcall_method method, PyObject *self, const char *fname,
                                    const char *const *params, PyObject *const *args,
                                    Py_ssize_t nargsf, PyObject *kwnames);

/* TypeError naming the first keyword, for a method that takes none beyond
 * its leading parameters; 0 if kwnames is NULL or empty. */
int pa_reject_keywords(const char *fname, PyObject *kwnames);

/* The single argument of method(param): by position or by keyword. */
int pa_parse_single_arg(const char *fname, const char *param, PyObject *const *args,
                        Py_ssize_t nargsf, PyObject *kwnames, PyObject **value);

/* First statement of a method whose leading parameters are the listed
 * names (the method's own variables must be called self, args, nargsf and
 * kwnames): if a keyword names one of them, return the method's result with
 * it bound to its position. */
#define PA_BIND_LEADING_KEYWORDS(method, fname, ...)                                               \
    do {                                                                                           \
        static const char *const leading_[] = {__VA_ARGS__, NULL};                                 \
        if (pa_keywords_name_params(kwnames, leading_)) {                                          \
            return pa_call_with_params_bound((pa_fastcall_method)(void (*)(void))(method),         \
                                             (PyObject *)self, fname, leading_, args, nargsf,      \
                                             kwnames);                                             \
        }                                                                                          \
    } while (0)

#endif /* PYASYNC_KEYWORDS_H */
