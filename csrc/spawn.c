/*
 * spawn.c - _core.spawn(): start a child process, the way subprocess.Popen's
 * C helper does it for the keywords asyncio passes through most, without
 * Popen's Python around it.
 *
 * Why: starting a child costs its parent the whole fork and exec (the
 * parent waits, suspended, until the child has called execve()), about half
 * a millisecond on a small VM. pyasync/_subprocess.py calls spawn() from
 * worker threads with the GIL released, so the loop's thread goes on running
 * callbacks meanwhile and several children start at once on several cores.
 * Anything that needs Python in the child (preexec_fn) or name lookups
 * (user, group, extra_groups) still goes through subprocess.Popen.
 *
 * The child does what Popen's child does, in the same order: its signal
 * handlers back to the default (they are the parent's code) and the
 * caller's signal mask, the standard streams, the working directory, the
 * umask, SIGPIPE and SIGXFSZ back to the default (restore_signals), a new
 * session or process group, every other fd closed (close_fds, keeping
 * pass_fds), then execve() over the candidate paths. A failure before or in
 * execve() is sent to the parent through a close-on-exec pipe as (stage,
 * errno); the parent reaps that child and raises the OSError Popen raises:
 * with the program's name for a failed exec, the directory's for a failed
 * chdir(), no name otherwise.
 *
 * vfork() is used as Popen's helper uses it: the child shares the parent's
 * memory until execve(), so between the two it only makes system calls on
 * data prepared beforehand (no allocation, no locks, no Python), with every
 * signal blocked until its handlers are reset. Builds with AddressSanitizer
 * use fork(), which the sanitizer's runtime supports.
 */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define PA_SPAWN_USE_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PA_SPAWN_USE_FORK 1
#endif
#endif

/* Where the child failed, sent with errno through the error pipe. */
enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3 };

typedef struct {
    char **argv;        /* NULL-terminated */
    char **executables; /* candidate paths for execve(), NULL-terminated */
    char **envp;        /* NULL-terminated */
    const char *cwd;    /* or NULL */
    int stdio[3];       /* fds to become 0, 1 and 2; -1: inherited */
    const int *keep;    /* pass_fds, sorted, none below 3 */
    Py_ssize_t nkeep;
    int close_fds, restore_signals, setsid, pgid, umask; /* pgid, umask: -1 = unset */
    long max_fd;        /* where closing one by one stops without close_range() */
    sigset_t mask;      /* the caller's signal mask, for the child */
} spawn_request;

typedef struct {
    int stage, err;
} child_failure;

/* ------------------------------------------------------------ the child */

/* -1 with errno when fd is not open (a pass_fds entry closed before the
 * start): Popen's child fails then, and so does ours. */
static int
clear_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) {
        return -1;
    }
    if ((flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
        return -1;
    }
    return 0;
}

/* fd becomes `target`; an fd already there only loses close-on-exec. */
static int
move_fd(int fd, int target)
{
    if (fd == target) {
        return clear_cloexec(fd);
    }
    if (fd < 0) {
        return 0;
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

static int
setup_stdio(const spawn_request *r)
{
    int in = r->stdio[0], out = r->stdio[1], err = r->stdio[2];
    /* dup2() into 0 and 1 comes first: move away an fd that it would
     * overwrite before its own turn. */
    if (out == 0 && (out = dup(out)) < 0) {
        return -1;
    }
    while (err == 0 || err == 1) {
        if ((err = dup(err)) < 0) {
            return -1;
        }
    }
    return move_fd(in, 0) < 0 || move_fd(out, 1) < 0 || move_fd(err, 2) < 0 ? -1 : 0;
}

static void
close_fd_range(const spawn_request *r, int lo, int hi)
{
    if (lo > hi) {
        return;
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)lo, (unsigned int)hi, 0) == 0) {
        return;
    }
#endif
    long last = hi < r->max_fd ? hi : r->max_fd;
    for (long fd = lo; fd <= last; fd++) {
        (void)close((int)fd);
    }
}

/* Close every fd from 3 up except pass_fds and the error pipe. */
static void
close_other_fds(const spawn_request *r, int errpipe)
{
    int lo = 3;
    Py_ssize_t i = 0;
    int pipe_kept = 0;
    for (;;) {
        int next; /* the next fd to keep, in order */
        if (!pipe_kept && (i >= r->nkeep || errpipe < r->keep[i])) {
            next = errpipe;
            pipe_kept = 1;
        } else if (i < r->nkeep) {
            next = r->keep[i++];
        } else {
            break;
        }
        if (next >= lo) {
            close_fd_range(r, lo, next - 1);
            lo = next + 1;
        }
    }
    close_fd_range(r, lo, INT_MAX);
}

static void
reset_signals(const spawn_request *r)
{
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) {
            continue;
        }
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) < 0) {
            continue;
        }
        if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) {
            sa.sa_handler = SIG_DFL; /* the handler is the parent's code */
            (void)sigaction(sig, &sa, NULL);
        }
    }
    (void)sigprocmask(SIG_SETMASK, &r->mask, NULL);
}

static void
restore_default_signals(void)
{
    signal(SIGPIPE, SIG_DFL);
#ifdef SIGXFSZ
    signal(SIGXFSZ, SIG_DFL);
#endif
}

static void __attribute__((noreturn))
child_fail(int errpipe, int stage, int err)
{
    child_failure f = {stage, err};
    ssize_t n;
    do {
        n = write(errpipe, &f, sizeof(f));
    } while (n < 0 && errno == EINTR);
    _exit(255);
}

static void __attribute__((noreturn))
child_exec(const spawn_request *r, int errpipe)
{
    reset_signals(r);
    if (setup_stdio(r) < 0) {
        child_fail(errpipe, STAGE_SETUP, errno);
    }
    if (r->cwd != NULL && chdir(r->cwd) < 0) {
        child_fail(errpipe, STAGE_CHDIR, errno);
    }
    if (r->umask >= 0) {
        umask((mode_t)r->umask);
    }
    if (r->restore_signals) {
        restore_default_signals();
    }
    if (r->setsid && setsid() < 0) {
        child_fail(errpipe, STAGE_SETUP, errno);
    }
    if (r->pgid >= 0 && setpgid(0, r->pgid) < 0) {
        child_fail(errpipe, STAGE_SETUP, errno);
    }
    for (Py_ssize_t i = 0; i < r->nkeep; i++) {
        if (clear_cloexec(r->keep[i]) < 0) {
            child_fail(errpipe, STAGE_SETUP, errno);
        }
    }
    if (r->close_fds) {
        close_other_fds(r, errpipe);
    }
    /* The first error other than "not there" is the one reported, as
     * Popen's child does while searching PATH. */
    int saved = 0;
    for (char **exe = r->executables; *exe != NULL; exe++) {
        execve(*exe, r->argv, r->envp);
        if (errno != ENOENT && errno != ENOTDIR && saved == 0) {
            saved = errno;
        }
    }
    child_fail(errpipe, STAGE_EXEC, saved ? saved : errno);
}

/* ------------------------------------------------------------ the parent */

/* Start the child; its pid, or -1 with *failure filled in. Runs without
 * the GIL. */
static pid_t
start_child(spawn_request *r, child_failure *failure)
{
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        *failure = (child_failure){0, errno};
        return -1;
    }
    if (errpipe[1] < 3) {
        /* 0-2 were closed: the child's dup2() onto them would replace it. */
        int moved = fcntl(errpipe[1], F_DUPFD_CLOEXEC, 3);
        int err = errno;
        close(errpipe[1]);
        if (moved < 0) {
            close(errpipe[0]);
            *failure = (child_failure){0, err};
            return -1;
        }
        errpipe[1] = moved;
    }
    /* No handler may run in a child that shares our memory: every signal
     * is blocked around vfork(), and the child unblocks after resetting. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r->mask = old;
#ifdef PA_SPAWN_USE_FORK
    pid_t pid = fork();
#else
    pid_t pid = vfork();
#endif
    if (pid == 0) {
        child_exec(r, errpipe[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        *failure = (child_failure){0, fork_errno};
        return -1;
    }
    child_failure f;
    ssize_t n;
    do {
        n = read(errpipe[0], &f, sizeof(f));
    } while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof(f)) {
        /* It failed before its program ran: collect it. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        *failure = f;
        return -1;
    }
    return pid;
}

/* A NULL-terminated array of the strings of a sequence of bytes; the
 * bytes stay owned by the sequence. NULL with an exception. */
static char **
string_array(PyObject *seq, const char *what)
{
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    char **arr = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (arr == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(seq, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "spawn(): %s must be bytes", what);
            PyMem_Free(arr);
            return NULL;
        }
        arr[i] = PyBytes_AS_STRING(item);
        if (strlen(arr[i]) != (size_t)PyBytes_GET_SIZE(item)) {
            PyErr_SetString(PyExc_ValueError, "embedded null byte");
            PyMem_Free(arr);
            return NULL;
        }
    }
    return arr;
}

/* A private copy of this process's environment, in one block: other
 * threads may change it while the GIL is released. */
static char **
copy_environ(void)
{
    size_t count = 0, bytes = 0;
    for (char **e = environ; *e != NULL; e++) {
        count++;
        bytes += strlen(*e) + 1;
    }
    char **arr = PyMem_Malloc((count + 1) * sizeof(char *) + bytes);
    if (arr == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    char *p = (char *)(arr + count + 1);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(environ[i]) + 1;
        memcpy(p, environ[i], len);
        arr[i] = p;
        p += len;
    }
    arr[count] = NULL;
    return arr;
}

static PyObject *
raise_child_failure(const child_failure *f, PyObject *exec_name, PyObject *cwd_name)
{
    errno = f->err;
    if (f->stage == STAGE_EXEC) {
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, exec_name);
    }
    if ((f->stage == STAGE_CHDIR || PA_PRE_EXEC_FAILURE_NAMES_CWD) && cwd_name != Py_None) {
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, cwd_name);
    }
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* spawn(argv, executables, env, cwd, stdin, stdout, stderr, pass_fds,
 *       close_fds, restore_signals, start_new_session, process_group, umask,
 *       exec_name, cwd_name) -> pid
 *
 * argv, executables: sequences of bytes; env: a sequence of b"K=V" or None
 * (this process's environment); cwd: bytes or None; stdin/stdout/stderr:
 * the fds to become 0/1/2, or -1; pass_fds: a sorted tuple of ints >= 3;
 * process_group and umask: -1 when not given; exec_name and cwd_name: what
 * a failed exec or chdir names in its OSError. The GIL is released while
 * the child starts. */
static PyObject *
spawn(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *argv_obj, *exe_obj, *env_obj, *cwd_obj, *keep_obj, *exec_name, *cwd_name;
    spawn_request r;
    memset(&r, 0, sizeof(r));
    if (!PyArg_ParseTuple(args, "OOOOiiiOpppiiOO:spawn", &argv_obj, &exe_obj, &env_obj,
                          &cwd_obj, &r.stdio[0], &r.stdio[1], &r.stdio[2], &keep_obj,
                          &r.close_fds, &r.restore_signals, &r.setsid, &r.pgid, &r.umask,
                          &exec_name, &cwd_name)) {
#if PA_SPAWN_OVERFLOW_WORDS_OF_ASINT
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        }
#endif
        return NULL;
    }
    if (cwd_obj != Py_None && !PyBytes_Check(cwd_obj)) {
        PyErr_SetString(PyExc_TypeError, "spawn(): cwd must be bytes or None");
        return NULL;
    }
    /* Tuples: nothing can change them while the GIL is released. */
    PyObject *argv_seq = PySequence_Tuple(argv_obj);
    PyObject *exe_seq = argv_seq ? PySequence_Tuple(exe_obj) : NULL;
    PyObject *env_seq = NULL;
    PyObject *keep_seq = NULL;
    int *keep = NULL;
    PyObject *result = NULL;
    if (exe_seq == NULL) {
        goto done;
    }
    if (PyTuple_GET_SIZE(argv_seq) == 0 || PyTuple_GET_SIZE(exe_seq) == 0) {
        PyErr_SetString(PyExc_ValueError, "spawn(): argv and executables must not be empty");
        goto done;
    }
    if (env_obj != Py_None && (env_seq = PySequence_Tuple(env_obj)) == NULL) {
        goto done;
    }
    if ((keep_seq = PySequence_Tuple(keep_obj)) == NULL) {
        goto done;
    }
    r.nkeep = PyTuple_GET_SIZE(keep_seq);
    keep = PyMem_Calloc((size_t)r.nkeep + 1, sizeof(int));
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < r.nkeep; i++) {
        long fd = PyLong_AsLong(PyTuple_GET_ITEM(keep_seq, i));
        if (fd == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (fd < 3 || fd > INT_MAX || (i > 0 && fd <= keep[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "spawn(): pass_fds must be sorted fds >= 3");
            goto done;
        }
        keep[i] = (int)fd;
    }
    r.keep = keep;
    if ((r.argv = string_array(argv_seq, "argv")) == NULL ||
        (r.executables = string_array(exe_seq, "executables")) == NULL) {
        goto done;
    }
    r.envp = env_seq ? string_array(env_seq, "env") : copy_environ();
    if (r.envp == NULL) {
        goto done;
    }
    if (cwd_obj != Py_None) {
        r.cwd = PyBytes_AS_STRING(cwd_obj);
        if (strlen(r.cwd) != (size_t)PyBytes_GET_SIZE(cwd_obj)) {
            PyErr_SetString(PyExc_ValueError, "embedded null byte");
            goto done;
        }
    }
    r.max_fd = sysconf(_SC_OPEN_MAX);
    if (r.max_fd < 0) {
        r.max_fd = 256;
    }
    child_failure failure = {0, 0};
    pid_t pid;
    Py_BEGIN_ALLOW_THREADS
    pid = start_child(&r, &failure);
    Py_END_ALLOW_THREADS
    if (pid < 0) {
        raise_child_failure(&failure, exec_name, cwd_name);
        goto done;
    }
    result = PyLong_FromLong((long)pid);
done:
    PyMem_Free(r.argv);
    PyMem_Free(r.executables);
    PyMem_Free(r.envp);
    PyMem_Free(keep);
    Py_XDECREF(argv_seq);
    Py_XDECREF(exe_seq);
    Py_XDECREF(env_seq);
    Py_XDECREF(keep_seq);
    return result;
}

static PyMethodDef spawn_methods[] = {
    {"spawn", spawn, METH_VARARGS, "Start a child process (see csrc/spawn.c)."},
    {NULL, NULL, 0, NULL},
};

int
pa_spawn_register(PyObject *module)
{
    return PyModule_AddFunctions(module, spawn_methods);
}
