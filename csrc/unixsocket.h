/*
 * unixsocket.h - the file of a Unix server's socket: removing a stale one
 * before bind(), and the server's own one when it closes (unixsocket.c).
 */
#ifndef PYASYNC_UNIXSOCKET_H
#define PYASYNC_UNIXSOCKET_H

#include "state.h"

/* Add _core.remove_stale_unix_socket(), _core.unix_socket_inode() and
 * _core.remove_unix_socket() to the module. */
int pa_unixsocket_register(PyObject *module);

#endif /* PYASYNC_UNIXSOCKET_H */
