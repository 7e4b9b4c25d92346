"""Pipe transports: the C data path plus their once-per-pipe parts.

pyasync._core.ReadPipeTransportBase and WritePipeTransportBase
(csrc/pipetransport.c) are subclasses of asyncio.ReadTransport and
asyncio.WriteTransport that do the reading, writing, flow control and
closing. These subclasses add what runs once per pipe, as asyncio's
_UnixReadPipeTransport and _UnixWritePipeTransport do: the file type check,
non-blocking mode, scheduling connection_made() and the first read, the
repr and the warning for a transport never closed. PipesMixin gives the
loop connect_read_pipe() and connect_write_pipe().
"""
import os
import stat
import sys
import warnings

from asyncio import futures
from asyncio.log import logger

from ._core import ReadPipeTransportBase, WritePipeTransportBase


def _repr(transport, writes=False, extra=()):
    """asyncio's repr of a pipe transport: 'polling' while the loop waits to
    read (a read pipe), or to write buffered data (a write pipe)."""
    info = [type(transport).__name__]
    if transport._pipe is None:
        info.append('closed')
    elif transport._closing:
        info.append('closing')
    info.append(f'fd={transport._fileno}')
    loop = transport._loop
    if transport._pipe is not None and loop is not None and not loop.is_closed():
        if writes:
            watching = loop._is_watching_write(transport._fileno)
        else:
            watching = loop._is_watching_read(transport._fileno)
        info.append('polling' if watching else 'idle')
        info.extend(extra)
    elif transport._pipe is not None:
        info.append('open')
    else:
        info.append('closed')
    return '<{}>'.format(' '.join(info))


def _warn_unclosed(transport, warn):
    if transport._pipe is not None:
        warn(f"unclosed transport {transport!r}", ResourceWarning, source=transport)
        # Through the loop, which stops watching the fd before it is closed.
        transport._close_unclosed()


def _file_type(pipe):
    mode = os.fstat(pipe.fileno()).st_mode
    return stat.S_ISFIFO(mode), stat.S_ISSOCK(mode), stat.S_ISCHR(mode)


class ReadPipeTransport(ReadPipeTransportBase):
    """The read end of a pipe, FIFO, socket or character device."""

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        if not any(_file_type(pipe)):
            raise ValueError("Pipe transport is for pipes/sockets only.")
        extra = dict(extra) if extra else {}
        extra['pipe'] = pipe
        super().__init__(loop, pipe, protocol, extra)
        os.set_blocking(self._fileno, False)
        loop.call_soon(protocol.connection_made, self)
        # Reading starts only once connection_made() has run.
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    __repr__ = _repr

    def __del__(self, _warn=warnings.warn):
        _warn_unclosed(self, _warn)


class WritePipeTransport(WritePipeTransportBase):
    """The write end of a pipe, FIFO, socket or character device."""

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        is_fifo, is_socket, is_char = _file_type(pipe)
        if not (is_fifo or is_socket or is_char):
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        extra = dict(extra) if extra else {}
        extra['pipe'] = pipe
        super().__init__(loop, pipe, protocol, extra)
        os.set_blocking(self._fileno, False)
        loop.call_soon(protocol.connection_made, self)
        # The kernel tells of the reading end going away by making the
        # write end readable, for sockets, and for pipes except on AIX.
        if is_socket or (is_fifo and not sys.platform.startswith("aix")):
            loop.call_soon(self._watch_peer)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        return _repr(self, True, [f'bufsize={self.get_write_buffer_size()}'])

    def __del__(self, _warn=warnings.warn):
        _warn_unclosed(self, _warn)


class PipesMixin:
    """connect_read_pipe() and connect_write_pipe() of the loop."""

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return WritePipeTransport(self, pipe, protocol, waiter, extra)

    async def _connect_pipe(self, make_transport, protocol_factory, pipe, what):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = make_transport(pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self.get_debug():
            logger.debug('%s pipe %r connected: (%r, %r)',
                         what, pipe.fileno(), transport, protocol)
        return transport, protocol

    async def connect_read_pipe(self, protocol_factory, pipe):
        return await self._connect_pipe(self._make_read_pipe_transport, protocol_factory, pipe,
                                        'Read')

    async def connect_write_pipe(self, protocol_factory, pipe):
        return await self._connect_pipe(self._make_write_pipe_transport, protocol_factory,
                                        pipe, 'Write')
