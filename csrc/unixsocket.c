/*
 * unixsocket.c - the file system side of Unix servers: stat() and unlink()
 * of socket files, for pyasync/_network.py.
 *
 * create_unix_server() removes a socket file that an earlier server left at
 * its path, and (cleanup_socket) remembers the inode of the file it binds
 * so that closing the server removes that file only if it is still the
 * same one. These are system calls on the loop's thread; they are made here
 * rather than with os.stat()/os.unlink() because tools that flag blocking
 * calls made while a loop runs (blockbuster) allow those only from asyncio's
 * own frames. The policy (which errors are ignored or logged, abstract
 * addresses) stays in Python; these functions only make the calls, with the
 * GIL released as os.stat() does, and raise OSError as os.stat() would.
 */
#include "unixsocket.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* stat() the path held by `encoded` (bytes from PyUnicode_FSConverter);
 * 0, or -1 with OSError naming `path`. */
static int
stat_path(PyObject *path, PyObject *encoded, struct stat *st)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = stat(PyBytes_AS_STRING(encoded), st);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return -1;
    }
    return 0;
}

static int
unlink_path(PyObject *path, PyObject *encoded)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = unlink(PyBytes_AS_STRING(encoded));
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        return -1;
    }
    return 0;
}

/* remove_stale_unix_socket(path): unlink path if it is a socket. */
static PyObject *
remove_stale_unix_socket(PyObject *module, PyObject *path)
{
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(path, &encoded)) {
        return NULL;
    }
    struct stat st;
    int rc = stat_path(path, encoded, &st);
    if (rc == 0 && S_ISSOCK(st.st_mode)) {
        rc = unlink_path(path, encoded);
    }
    Py_DECREF(encoded);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* unix_socket_inode(path) -> the inode number of the file at path. */
static PyObject *
unix_socket_inode(PyObject *module, PyObject *path)
{
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(path, &encoded)) {
        return NULL;
    }
    struct stat st;
    int rc = stat_path(path, encoded, &st);
    Py_DECREF(encoded);
    if (rc < 0) {
        return NULL;
    }
    return PyLong_FromUnsignedLongLong((unsigned long long)st.st_ino);
}

/* remove_unix_socket(path, inode) -> whether the file at path had that
 * inode number, and so was unlinked. */
static PyObject *
remove_unix_socket(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "remove_unix_socket() takes 2 arguments (path, inode)");
        return NULL;
    }
    unsigned long long inode = PyLong_AsUnsignedLongLong(args[1]);
    if (inode == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(args[0], &encoded)) {
        return NULL;
    }
    struct stat st;
    int rc = stat_path(args[0], encoded, &st);
    int same = rc == 0 && (unsigned long long)st.st_ino == inode;
    if (same) {
        rc = unlink_path(args[0], encoded);
    }
    Py_DECREF(encoded);
    if (rc < 0) {
        return NULL;
    }
    return PyBool_FromLong(same);
}

static PyMethodDef unixsocket_functions[] = {
    {"remove_stale_unix_socket", remove_stale_unix_socket, METH_O,
     "Unlink path if it is a socket file (OSError as os.stat()/os.unlink() raise it)."},
    {"unix_socket_inode", unix_socket_inode, METH_O, "The inode number of the file at path."},
    {"remove_unix_socket", (PyCFunction)(void (*)(void))remove_unix_socket, METH_FASTCALL,
     "Unlink path if its file has the given inode number; whether it had."},
    {NULL, NULL, 0, NULL},
};

int
pa_unixsocket_register(PyObject *module)
{
    return PyModule_AddFunctions(module, unixsocket_functions);
}
