/*
 * writequeue.h - what a stream or pipe transport still has to write: a queue
 * of segments, each the unsent rest of a write().
 *
 * A large write of an immutable `bytes` is kept by reference: the transport
 * holds the object and writes from its storage, as libuv does with the
 * buffers it is given, so a 256 KiB write that the kernel takes 64 KiB of
 * copies nothing. Everything else is copied (asyncio copies too): small
 * writes, which are packed together into blocks so that many of them leave
 * in one system call, and mutable buffers (bytearray, memoryview, array),
 * which the caller may change after write() returns.
 *
 * Only exact `bytes` are kept: a subclass could define __del__, and releasing
 * a segment must never run Python code (the queue is cleared from inside
 * write callbacks, close() and tp_clear).
 */
#ifndef PYASYNC_WRITEQUEUE_H
#define PYASYNC_WRITEQUEUE_H

#include <Python.h>
#include <sys/uio.h>

/* Writes of at least this many bytes of an exact bytes object are kept by
 * reference; shorter ones are copied into a block. Chosen by measurement
 * (docs/design.md, "The write queue"). */
#define PA_WQ_REF_MIN (4 * 1024)
/* The size of a copy block; a drained block this size is kept for reuse. */
#define PA_WQ_BLOCK (16 * 1024)
/* The most segments one system call is given. */
#define PA_WQ_IOV 64

typedef struct {
    PyObject *owner;  /* the bytes kept alive, or NULL: `block` is ours */
    char *block;      /* a copy block from malloc() (owner == NULL) */
    const char *data; /* the first byte not yet written */
    Py_ssize_t len;   /* bytes not yet written */
    Py_ssize_t room;  /* copy block: bytes free after data + len */
} pa_wq_segment;

typedef struct {
    pa_wq_segment *segs; /* segs[head] .. segs[head + count - 1], in order */
    Py_ssize_t head, count, cap;
    Py_ssize_t size; /* bytes not yet written, over all segments */
    char *spare;     /* a drained PA_WQ_BLOCK block, kept for the next copy */
} pa_writequeue;

/* Queue `len` bytes at `data`. `owner` is the object they belong to, kept by
 * reference when it is an exact bytes object and the write is large enough;
 * otherwise (or with owner NULL) the bytes are copied. 0, or -1 with
 * MemoryError (nothing queued). */
int pa_wq_push(pa_writequeue *q, PyObject *owner, const char *data, Py_ssize_t len);

/* Fill up to `max` iovecs with the queue's first segments; their number. */
int pa_wq_iov(const pa_writequeue *q, struct iovec *iov, int max);

/* The kernel took the first n bytes: release the segments written out. */
void pa_wq_consume(pa_writequeue *q, Py_ssize_t n);

/* Drop everything queued and give back all memory, the spare block too. */
void pa_wq_clear(pa_writequeue *q);

#endif /* PYASYNC_WRITEQUEUE_H */
