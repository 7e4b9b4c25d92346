"""The socket stream transport: the C data path plus its once-per-connection parts.

pyasync._core.StreamTransportBase (csrc/transport.c) is a subclass of
asyncio.Transport that does the reading, writing, flow control and closing.
This subclass adds what runs once per connection: the extra info asyncio
gives (socket, sockname, peername), TCP_NODELAY, attaching to the server,
scheduling connection_made() and the first read, the repr and the warning for
a transport never closed.
"""
import socket
import warnings

from asyncio import constants, futures, trsock

from . import _compat
from ._core import StreamTransportBase


def set_nodelay(sock):
    """TCP_NODELAY on a TCP socket, as asyncio sets it on its transports."""
    if (sock.family in (socket.AF_INET, socket.AF_INET6) and
            sock.type == socket.SOCK_STREAM and sock.proto == socket.IPPROTO_TCP):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SocketTransport(StreamTransportBase):
    """The transport of a connected TCP or Unix stream socket."""

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        super().__init__(loop, sock, protocol, dict(extra) if extra else None, server)
        info = self._extra
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
        if server is not None:
            _compat.server_attach(server, self)
        loop._register_transport(self._sock_fd, self)
        set_nodelay(sock)
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def _detach_server(self):
        _compat.server_detach(self._server, self)

    def __repr__(self):
        info = [type(self).__name__]
        if self._sock is None:
            info.append('closed')
        elif self._closing:
            info.append('closing')
        info.append(f'fd={self._sock_fd}')
        loop = self._loop
        if self._sock is not None and loop is not None and not loop.is_closed():
            reading = 'polling' if loop._is_watching_read(self._sock_fd) else 'idle'
            info.append(f'read={reading}')
            writing = 'polling' if loop._is_watching_write(self._sock_fd) else 'idle'
            info.append(f'write=<{writing}, bufsize={self.get_write_buffer_size()}>')
        return '<{}>'.format(' '.join(info))

    def __del__(self, _warn=warnings.warn):
        sock = self._sock
        if sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            sock.close()
