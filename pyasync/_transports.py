"""Socket transports: the C data path plus their once-per-connection parts.

pyasync._core.StreamTransportBase (csrc/transport.c) is a subclass of
asyncio.Transport, and DatagramTransportBase (csrc/dgramtransport.c) one of
asyncio.DatagramTransport, that do the reading, writing, flow control and
closing.
This subclass adds what runs once per connection made by Python code: the
extra info asyncio gives (socket, sockname, peername), TCP_NODELAY, attaching
to the server, scheduling connection_made() and the first read; and the repr.
Connections a server accepts are set up by csrc/accept.c without this
__init__, and the warning for a transport never closed is the C types'
finaliser.
"""
import socket

from asyncio import constants, futures, trsock

from . import _compat
from ._core import DatagramTransportBase, StreamTransportBase


def set_nodelay(sock):
    """TCP_NODELAY on a TCP socket, as asyncio sets it on its transports."""
    if (sock.family in (socket.AF_INET, socket.AF_INET6) and
            sock.type == socket.SOCK_STREAM and sock.proto == socket.IPPROTO_TCP):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _repr(transport):
    info = [type(transport).__name__]
    if not transport._has_socket:
        info.append('closed')
    elif transport._closing:
        info.append('closing')
    info.append(f'fd={transport._sock_fd}')
    loop = transport._loop
    if transport._has_socket and loop is not None and not loop.is_closed():
        reading = 'polling' if loop._is_watching_read(transport._sock_fd) else 'idle'
        info.append(f'read={reading}')
        writing = 'polling' if loop._is_watching_write(transport._sock_fd) else 'idle'
        info.append(f'write=<{writing}, bufsize={transport.get_write_buffer_size()}>')
    return '<{}>'.format(' '.join(info))


def _base_extra(info, sock):
    info['socket'] = trsock.TransportSocket(sock)
    try:
        info['sockname'] = sock.getsockname()
    except OSError:
        info['sockname'] = None
    if 'peername' not in info:
        try:
            info['peername'] = sock.getpeername()
        except OSError:
            info['peername'] = None


def _start(loop, transport, protocol, waiter):
    loop.call_soon(protocol.connection_made, transport)
    # Reading starts only once connection_made() has run.
    loop.call_soon(transport._start_reading)
    if waiter is not None:
        loop.call_soon(futures._set_result_unless_cancelled, waiter, None)


class SocketTransport(StreamTransportBase):
    """The transport of a connected TCP or Unix stream socket."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        super().__init__(loop, sock, protocol, dict(extra) if extra else None, server)
        _base_extra(self._extra, sock)
        if server is not None:
            _compat.server_attach(server, self)
        set_nodelay(sock)
        _start(loop, self, protocol, waiter)

    __repr__ = _repr


class DatagramTransport(DatagramTransportBase):
    """The transport of a UDP or Unix datagram socket."""

    def __init__(self, loop, sock, protocol, address=None, waiter=None, extra=None):
        super().__init__(loop, sock, protocol, address, dict(extra) if extra else None)
        _base_extra(self._extra, sock)
        _start(loop, self, protocol, waiter)

    __repr__ = _repr
