"""connect_read_pipe() and connect_write_pipe(), on both loops: the order of
protocol callbacks, end of file, flow control, a reader that goes away,
closing without losing data, the file types accepted, and bad input."""
import asyncio
import errno
import os
import pty
import socket
import tempfile

import pytest

from _net_helpers import open_fd_count, payload, run


class Recorder(asyncio.Protocol):
    def __init__(self, loop):
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)


def is_reading(transport):
    """transport.is_reading(), or None where asyncio's read pipe transport
    does not have it (3.11 patch releases before it was added; pyasync's
    always has it)."""
    try:
        return transport.is_reading()
    except NotImplementedError:
        assert isinstance(transport._loop, asyncio.BaseEventLoop)
        return None


def pipe_files():
    r, w = os.pipe()
    return os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=0)


def test_read_pipe_data_then_eof_then_lost(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, got = await loop.connect_read_pipe(lambda: proto, rf)
        assert got is proto and proto.events == ["made"]
        assert isinstance(transport, asyncio.ReadTransport)
        assert transport.get_extra_info("pipe") is rf
        assert is_reading(transport) in (True, None) and not transport.is_closing()
        data = payload(1 << 20)
        wf.write(data[:1000])
        await asyncio.sleep(0.01)
        wf.close()
        exc = await asyncio.wait_for(proto.lost, 5)
        assert exc is None
        assert bytes(proto.data) == data[:1000]
        assert proto.events == ["made", "data", "eof", ("lost", None)]
        assert transport.is_closing()
        assert rf.closed, "the transport closes the pipe after connection_lost()"
        assert transport.get_extra_info("pipe") is rf

    run(loop, main())


def test_read_pipe_large_transfer_and_eof_received_true(loop):
    # eof_received() returning True does not keep a read pipe open.
    class KeepOpen(Recorder):
        def eof_received(self):
            super().eof_received()
            return True

    async def main():
        rf, wf = pipe_files()
        proto = KeepOpen(loop)
        await loop.connect_read_pipe(lambda: proto, rf)
        data = payload(4 << 20, seed=3)
        writer = loop.run_in_executor(None, lambda: (wf.write(data), wf.close()))
        await writer
        await asyncio.wait_for(proto.lost, 10)
        assert bytes(proto.data) == data
        assert proto.events == ["made", "data", "eof", ("lost", None)]

    run(loop, main())


def test_read_pipe_pause_and_resume(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_read_pipe(lambda: proto, rf)
        transport.pause_reading()
        assert is_reading(transport) in (False, None)
        transport.pause_reading()  # twice is fine
        wf.write(b"held")
        await asyncio.sleep(0.05)
        assert proto.data == b""
        transport.resume_reading()
        assert is_reading(transport) in (True, None)
        await asyncio.sleep(0.05)
        assert proto.data == b"held"
        transport.close()
        assert is_reading(transport) in (False, None)
        await asyncio.wait_for(proto.lost, 5)
        assert proto.events == ["made", "data", ("lost", None)]
        wf.close()

    run(loop, main())


def test_read_pipe_close_before_connection_made_runs(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport = loop._make_read_pipe_transport(rf, proto)
        transport.close()
        await asyncio.wait_for(proto.lost, 5)
        assert proto.events == ["made", ("lost", None)]
        assert rf.closed
        wf.close()

    run(loop, main())


def test_data_received_raising_goes_to_the_handler_and_reading_goes_on(loop):
    class Raises(Recorder):
        def data_received(self, data):
            super().data_received(data)
            raise RuntimeError("protocol bug")

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        rf, wf = pipe_files()
        proto = Raises(loop)
        transport, _ = await loop.connect_read_pipe(lambda: proto, rf)
        wf.write(b"one")
        await asyncio.sleep(0.05)
        wf.write(b"two")
        await asyncio.sleep(0.05)
        wf.close()
        await asyncio.wait_for(proto.lost, 5)
        assert proto.data == b"onetwo"
        assert len(errors) == 2
        assert all(isinstance(c["exception"], RuntimeError) for c in errors)
        assert proto.events[-2:] == ["eof", ("lost", None)]

    run(loop, main())


def test_stream_reader_over_a_read_pipe(loop):
    async def main():
        rf, wf = pipe_files()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rf)
        data = payload(3 << 20, seed=5)
        writer = loop.run_in_executor(None, lambda: (wf.write(data), wf.close()))
        got = await reader.read()
        await writer
        assert got == data
        assert reader.at_eof()

    run(loop, main())


def test_write_pipe_write_writelines_and_eof(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        assert isinstance(transport, asyncio.WriteTransport)
        assert transport.can_write_eof()
        assert transport.get_extra_info("pipe") is wf
        transport.write(b"abc")
        transport.write(bytearray(b"def"))
        transport.write(memoryview(b"xghi")[1:])
        transport.writelines([b"jk", bytearray(b"l"), memoryview(b"mn")])
        transport.writelines((b"o", b"pq"))  # a tuple is one argument, not two
        transport.writelines((b"r",))
        transport.writelines(())
        transport.write(b"")
        transport.write_eof()
        assert transport.is_closing()
        await asyncio.wait_for(proto.lost, 5)
        assert rf.read() == b"abcdefghijklmnopqr"
        assert proto.events == ["made", ("lost", None)]
        assert wf.closed
        rf.close()

    run(loop, main())


def test_write_pipe_flow_control_and_close_flushes(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        assert transport.get_write_buffer_limits() == (16384, 65536)
        transport.set_write_buffer_limits(high=20000)
        assert transport.get_write_buffer_limits() == (5000, 20000)
        data = payload(1 << 20, seed=7)
        transport.write(data)  # more than a pipe holds
        assert transport.get_write_buffer_size() > 0
        assert proto.events == ["made", "pause"]
        transport.close()  # flushes what is buffered first
        transport.write(b"dropped: written after close")
        reader = loop.run_in_executor(None, rf.read)
        got = await reader
        await asyncio.wait_for(proto.lost, 5)
        assert got == data
        assert proto.events == ["made", "pause", "resume", ("lost", None)]
        rf.close()

    run(loop, main())


def test_write_pipe_bulk_writes_after_the_buffer_drained_into_a_full_pipe(loop):
    # Each round drains the buffer into a pipe its reader has not read yet
    # (the pipe is full when the buffer empties), then writes again at once:
    # the write fails for want of room and must be flushed once the reader
    # reads. Every byte arrives, in order.
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        expected = bytearray()
        got = bytearray()
        for i in range(8):
            data = payload(3 * 65536 + 100 * i, seed=i)
            expected += data
            transport.write(data)
            while transport.get_write_buffer_size() > 0:
                got += await loop.run_in_executor(None, os.read, rf.fileno(), 65536)
        transport.close()
        got += await loop.run_in_executor(None, rf.read)
        await asyncio.wait_for(proto.lost, 5)
        assert bytes(got) == bytes(expected)
        rf.close()

    run(loop, main())


def test_write_pipe_drained_then_read_leaves_the_loop_idle(pyloop):
    # pyasync-only (pyasync.metrics): once its buffer drained, a write pipe
    # stops being watched; the interest it left in the poller for the pipe
    # it filled goes when the pipe next polls writable, and the loop then
    # sleeps instead of polling the writable pipe again and again.
    from pyasync import metrics

    async def main():
        rf, wf = pipe_files()
        transport, _ = await pyloop.connect_write_pipe(lambda: Recorder(pyloop), wf)
        transport.write(payload(3 * 65536))
        while transport.get_write_buffer_size() > 0:
            await pyloop.run_in_executor(None, os.read, rf.fileno(), 65536)
        while await pyloop.run_in_executor(None, _read_available, rf.fileno()):
            pass  # the pipe is empty: writable
        before = metrics(pyloop)["iterations"]
        await asyncio.sleep(0.1)
        iterations = metrics(pyloop)["iterations"] - before
        transport.close()
        rf.close()
        return iterations

    assert run(pyloop, main()) < 10


def _read_available(fd):
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


def test_write_pipe_abort_drops_the_buffer(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        transport.write(payload(1 << 20))
        buffered = transport.get_write_buffer_size()
        assert buffered > 0
        transport.abort()
        await asyncio.wait_for(proto.lost, 5)
        assert transport.get_write_buffer_size() == 0
        got = rf.read()
        assert len(got) == (1 << 20) - buffered
        assert proto.events[-1] == ("lost", None)
        rf.close()

    run(loop, main())


@pytest.mark.parametrize("buffered", [False, True])
def test_write_pipe_reader_goes_away(loop, buffered):
    # Nothing buffered: connection_lost(None); data still buffered:
    # connection_lost(BrokenPipeError). Either way nothing is reported.
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        await asyncio.sleep(0)
        if buffered:
            transport.write(payload(1 << 20))
            assert transport.get_write_buffer_size() > 0
        rf.close()
        exc = await asyncio.wait_for(proto.lost, 5)
        assert type(exc) is (BrokenPipeError if buffered else type(None))
        assert errors == []
        assert wf.closed

    run(loop, main())


def test_write_after_the_reader_went_away_is_a_broken_pipe(loop):
    # The write itself fails (EPIPE) before the loop saw the reader go: an
    # OSError of a write pipe is not reported (one of a read pipe is).
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        rf, wf = pipe_files()
        proto = Recorder(loop)
        transport, _ = await loop.connect_write_pipe(lambda: proto, wf)
        rf.close()
        transport.write(b"nobody reads this")
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, BrokenPipeError)
        assert errors == []
        for _ in range(6):
            transport.write(b"more")  # dropped, counted
        assert transport.get_write_buffer_size() == 0

    run(loop, main())


def test_bad_write_data_raises_assertion_error(loop):
    async def main():
        rf, wf = pipe_files()
        transport, proto = await loop.connect_write_pipe(asyncio.Protocol, wf)
        with pytest.raises(AssertionError, match="'text'"):
            transport.write("text")
        transport.close()
        await asyncio.sleep(0.01)
        rf.close()

    run(loop, main())


def test_regular_files_are_refused(loop):
    async def main():
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only"):
                await loop.connect_read_pipe(asyncio.Protocol, f)
            with pytest.raises(ValueError, match="Pipe transport is only for pipes, sockets and "
                               "character devices"):
                await loop.connect_write_pipe(asyncio.Protocol, f)

    run(loop, main())


def test_socket_as_a_pipe(loop):
    async def main():
        a, b = socket.socketpair()
        proto = Recorder(loop)
        transport, _ = await loop.connect_read_pipe(lambda: proto, a)
        b.sendall(b"over a socket")
        b.close()
        await asyncio.wait_for(proto.lost, 5)
        assert proto.data == b"over a socket"
        assert proto.events == ["made", "data", "eof", ("lost", None)]
        assert a.fileno() == -1

    run(loop, main())


def test_pty_end_of_output_is_eio(loop):
    # Reading the master side of a pty whose slave side closed gives EIO:
    # only logged, the transport is lost with that error.
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        master, slave = pty.openpty()
        proto = Recorder(loop)
        await loop.connect_read_pipe(lambda: proto, os.fdopen(master, "rb", buffering=0))
        os.write(slave, b"tty output\n")
        await asyncio.sleep(0.05)
        os.close(slave)
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, OSError) and exc.errno == errno.EIO
        assert b"tty output" in proto.data
        assert errors == []

    run(loop, main())


def test_no_fd_left_after_many_pipes(loop):
    async def main():
        for _ in range(200):
            rf, wf = pipe_files()
            rp = Recorder(loop)
            wp = Recorder(loop)
            rt, _ = await loop.connect_read_pipe(lambda: rp, rf)
            wt, _ = await loop.connect_write_pipe(lambda: wp, wf)
            wt.write(b"x" * 100)
            wt.close()
            await asyncio.wait_for(rp.lost, 5)
            await asyncio.wait_for(wp.lost, 5)
            assert rp.data == b"x" * 100

    before = open_fd_count()
    run(loop, main())
    assert open_fd_count() <= before


def test_unclosed_transport_warns_and_closes_its_pipe(loop):
    import gc
    import warnings

    async def main():
        rf, wf = pipe_files()
        await loop.connect_read_pipe(asyncio.Protocol, rf)
        return rf, wf

    rf, wf = run(loop, main())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.close()
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed transport" in str(w.message)
               for w in caught)
    assert rf.closed
    wf.close()


def test_forgetting_the_pipe_silences_the_finaliser(loop):
    import gc
    import warnings

    async def main():
        rf, wf = pipe_files()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rf)
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol, wf)
        return rf, wf, rt, wt

    rf, wf, rt, wt = run(loop, main())
    loop.close()
    assert "open" in repr(rt) and "open" in repr(wt)
    rf.close()
    wf.close()
    rt._pipe = None
    wt._pipe = None
    del rt, wt
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("end", ["read", "write"])
def test_close_after_the_finaliser_on_a_closed_loop_fails_as_on_asyncio(loop, end):
    # A transport collected unclosed only closes its pipe; a close() that
    # comes later (another finaliser at interpreter exit: asyncio's
    # subprocess transport) fails because the loop is closed, and asyncio's
    # subprocess transport stops there before killing its child.
    async def main():
        rfile, wfile = pipe_files()
        connect = loop.connect_read_pipe if end == "read" else loop.connect_write_pipe
        transport, _ = await connect(lambda: Recorder(loop), rfile if end == "read" else wfile)
        other = wfile if end == "read" else rfile
        return transport, other
    transport, other = run(loop, main())
    loop.close()
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        transport.__del__()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        transport.close()
    other.close()


def test_reprs_say_what_the_loop_waits_for(loop):
    """As asyncio's: a read pipe 'polling' while it reads; a write pipe
    'polling' only while it has data waiting to be written."""
    def state(transport):
        return repr(transport).rstrip(">").split(" ")[1:]   # without the class name

    async def main():
        rf, wf = pipe_files()
        rfd, wfd = rf.fileno(), wf.fileno()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rf)
        rt.pause_reading()
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol, wf)
        seen = [state(rt), state(wt)]
        wt.write(b"x" * (4 << 20))      # more than the pipe holds
        seen.append(state(wt))
        rt.resume_reading()
        while wt.get_write_buffer_size():
            await asyncio.sleep(0.01)
        seen += [state(rt), state(wt)]
        wt.close()
        rt.close()
        await asyncio.sleep(0.01)
        return seen, rfd, wfd
    seen, rfd, wfd = run(loop, main())
    assert seen[0] == [f"fd={rfd}", "idle"]
    assert seen[1] == [f"fd={wfd}", "idle", "bufsize=0"]
    assert seen[2][:2] == [f"fd={wfd}", "polling"] and seen[2][2] != "bufsize=0"
    assert seen[3] == [f"fd={rfd}", "polling"]
    assert seen[4] == [f"fd={wfd}", "idle", "bufsize=0"]
