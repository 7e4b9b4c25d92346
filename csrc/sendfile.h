/*
 * sendfile.h - the native path of loop.sock_sendfile(): sendfile(2) into a
 * non-blocking socket, retried when the socket is writable (sendfile.c).
 */
#ifndef PYASYNC_SENDFILE_H
#define PYASYNC_SENDFILE_H

#include "state.h"

/* Add the operation type and _core.sock_sendfile_native() to the module. */
int pa_sendfile_register(PyObject *module, pa_state *st);

#endif /* PYASYNC_SENDFILE_H */
