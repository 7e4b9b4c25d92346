/*
 * transport.h - the stream transport of a connected socket (TCP or Unix).
 *
 * The C type (pyasync._core.StreamTransportBase) holds everything on the
 * data path: reading into the protocol (Protocol or BufferedProtocol),
 * write/writelines with a try-first send and a contiguous write buffer,
 * flow control (pause_writing/resume_writing at the high/low marks),
 * half-close, close/abort and the single connection_lost. Its base class is
 * asyncio.Transport itself, so transports pass isinstance() checks; that
 * class's one slot (`_extra`, the get_extra_info() dict) is the first field
 * of our layout. pyasync/_transports.py subclasses it in Python for what
 * runs once per connection (set-up, repr, the unclosed-transport warning).
 *
 * Ownership: the loop's watcher table owns the handles that call
 * _read_ready/_write_ready (bound methods: the cycle transport -> loop ->
 * handle -> transport lasts while the fd is watched). The socket is closed
 * by _call_connection_lost(), which runs exactly once.
 */
#ifndef PYASYNC_TRANSPORT_H
#define PYASYNC_TRANSPORT_H

#include "state.h"

int pa_transport_register_type(PyObject *module, pa_state *st);

#endif /* PYASYNC_TRANSPORT_H */
