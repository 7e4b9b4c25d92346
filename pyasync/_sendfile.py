"""The loop's sendfile API: loop.sendfile() over a transport and
loop.sock_sendfile() over a socket.

The native path's sendfile() calls, and the waits for the socket between
them, are C (csrc/sendfile.c); this module checks the arguments as asyncio
does, picks the native path or the fallback (the file read in blocks in the
executor and written through the transport or sock_sendall()), and hands a
transport's fd and protocol over and back around it.
"""
import io
import os
import socket
import sys
from asyncio import constants, exceptions

from . import _core
from ._network import _check_ssl_socket

_MAX_SENDFILE_BLOCK = sys.maxsize // 2 + 1  # what one sendfile() is asked for at most

def _check_sendfile_params(sock, file, offset, count):
    if 'b' not in getattr(file, 'mode', 'b'):
        raise ValueError("file should be opened in binary mode")
    if sock.type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


class SendfileMixin:
    """sendfile() and sock_sendfile() of the loop."""

    async def sock_sendfile(self, sock, file, offset=0, count=None, *, fallback=True):
        # asyncio checks these two the other way round here.
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_ssl_socket(sock)
        _check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except exceptions.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count):
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file") from None
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # an empty file
        # The sendfile() calls, and the waits for the socket between them,
        # are C (csrc/sendfile.c).
        return await _core.sock_sendfile_native(self, sock, fileno, offset, count or 0,
                                                min(blocksize, _MAX_SENDFILE_BLOCK))

    async def _sock_sendfile_fallback(self, sock, file, offset, count):
        if offset:
            file.seek(offset)
        blocksize = min(count, constants.SENDFILE_FALLBACK_READBUFFER_SIZE) if count \
            else constants.SENDFILE_FALLBACK_READBUFFER_SIZE
        buf = bytearray(blocksize)
        sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    break
                await self.sock_sendall(sock, view[:read])
                sent += read
            return sent
        finally:
            if sent > 0 and hasattr(file, 'seek'):
                file.seek(offset + sent)

    async def sendfile(self, transport, file, offset=0, count=None, *, fallback=True):
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, '_sendfile_compatible', constants._SendfileMode.UNSUPPORTED)
        if mode is constants._SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is constants._SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except exceptions.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not "
                               f"supported for transport {transport!r}")
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport, file, offset, count):
        transport._own_fd(False)
        resume_reading = transport.is_reading()
        transport.pause_reading()
        await transport._make_empty_waiter()
        try:
            return await self.sock_sendfile(transport._sock, file, offset, count,
                                            fallback=False)
        finally:
            transport._reset_empty_waiter()
            if resume_reading:
                transport.resume_reading()
            transport._own_fd(True)

    async def _sendfile_fallback(self, transport, file, offset, count):
        if offset:
            file.seek(offset)
        blocksize = min(count, 16384) if count else 16384
        buf = bytearray(blocksize)
        sent = 0
        proto = _SendfileFallbackProtocol(transport)
        try:
            while True:
                if count:
                    blocksize = min(count - sent, blocksize)
                    if blocksize <= 0:
                        return sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    return sent
                await proto.drain()
                transport.write(view[:read])
                sent += read
        finally:
            if sent > 0 and hasattr(file, 'seek'):
                file.seek(offset + sent)
            await proto.restore()
            # Its future may hold the exception being raised through here.
            proto = None


class _NothingToWaitFor:
    """An awaitable that is done at once, without a trip round the loop."""

    def __await__(self):
        return
        yield


_NOTHING_TO_WAIT_FOR = _NothingToWaitFor()


class _SendfileFallbackProtocol:
    """Stands in for the transport's protocol while sendfile() writes the
    file through transport.write(): reading is paused, drain() waits for
    the write buffer to go below its low mark, and restore() puts the
    protocol back (telling it of a pause/resume it missed)."""

    def __init__(self, transport):
        self._transport = transport
        self._proto = transport.get_protocol()
        self._resume_reading = transport.is_reading()
        self._resume_writing = transport._protocol_paused
        transport.pause_reading()
        transport.set_protocol(self)
        self._writable = transport._loop.create_future() if self._resume_writing else None

    def drain(self):
        """Raise if the connection is closing; else an awaitable that ends
        when the write buffer is below its low mark. (Not a coroutine: its
        frame would be in the traceback of the error that _writable gets,
        and would hold this protocol and so _writable: a cycle.)"""
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        return self._writable if self._writable is not None else _NOTHING_TO_WAIT_FOR

    def connection_made(self, transport):
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc):
        if self._writable is not None:
            # The peer went away before the whole file was sent.
            self._writable.set_exception(
                exc if exc is not None else ConnectionError("Connection is closed by peer"))
        self._proto.connection_lost(exc)

    def pause_writing(self):
        if self._writable is None:
            self._writable = self._transport._loop.create_future()

    def resume_writing(self):
        if self._writable is not None:
            self._writable.set_result(False)
            self._writable = None

    def data_received(self, data):
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self):
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self):
        self._transport.set_protocol(self._proto)
        if self._resume_reading:
            self._transport.resume_reading()
        if self._writable is not None:
            # The buffer is still above its mark: hand the wait back.
            self._writable.cancel()
        if self._resume_writing:
            self._proto.resume_writing()
