"""A transport collected without close(): what the program sees of it
afterwards is what asyncio's __del__ leaves (the socket closed, the
transport not "closing" until close() is called), and StreamWriter's
finaliser, which asks is_closing(), warns as on asyncio."""
import asyncio
import gc
import os
import socket
import warnings

import pytest


class Resurrect:
    """Sits in the transport's reference cycle; its finaliser keeps the
    transport, to look at it after every finaliser of the cycle ran."""
    kept = []

    def __init__(self, transport):
        self.transport = transport

    def __del__(self):
        self.kept.append(self.transport)


class Plain(asyncio.Protocol):
    pass  # (asyncio.Protocol has __slots__)


def connect(loop, protocol_factory):
    listener = socket.create_server(("127.0.0.1", 0))

    async def main():
        return await loop.create_connection(protocol_factory, *listener.getsockname())
    transport, protocol = loop.run_until_complete(main())
    return listener, transport, protocol


def collect_quietly():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if not str(w.message).startswith("unclosed <socket")]


def test_a_transport_closed_by_its_finaliser_is_not_closing(loop):
    """(The loop is closed first: an open loop still holds the transport.)
    A close() afterwards fails with "Event loop is closed", as asyncio's
    does when it schedules connection_lost(), and the transport is closing
    from then on."""
    listener, transport, protocol = connect(loop, Plain)
    protocol.cycle = Resurrect(transport)  # transport -> protocol -> Resurrect -> transport
    loop.close()
    del transport, protocol
    messages = collect_quietly()
    transport = Resurrect.kept.pop()
    try:
        assert any(m.startswith("unclosed transport") for m in messages), messages
        assert (transport.is_closing(), transport.is_reading()) == (False, True)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            transport.close()
        assert (transport.is_closing(), transport.is_reading()) == (True, False)
        transport.close()  # closing already: nothing to do
    finally:
        listener.close()
        del transport
        gc.collect()


def test_a_streamwriter_collected_with_its_transport_warns(loop):
    """Collected in one pass, transport first (allocation order, with the
    collector held off while they are made), on a closed loop: the writer's
    finaliser sees its transport not closing and warns 'loop is closed'."""
    listener = socket.create_server(("127.0.0.1", 0))
    gc.collect()
    gc.disable()
    try:
        writer = loop.run_until_complete(asyncio.open_connection(*listener.getsockname()))[1]
        writer.cycle = writer
        loop.close()
        del writer
        messages = collect_quietly()
    finally:
        gc.enable()
        listener.close()
    assert "loop is closed" in messages, messages


@pytest.mark.parametrize("kind", ["udp", "read_pipe", "write_pipe"])
def test_a_transport_left_open_past_its_loop_warns_once(loop, kind):
    """A datagram or pipe transport left open when its loop closes, then let
    go: one ResourceWarning, for the transport, whose finaliser closes the
    socket or file before that object could warn of its own (asyncio's
    transports of these kinds are in no reference cycle; pyasync's drop
    theirs when the loop closes). The fd is closed either way."""
    peer = None

    async def main():
        nonlocal peer
        if kind == "udp":
            return await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        r, w = os.pipe()
        if kind == "read_pipe":
            peer = w
            return await loop.connect_read_pipe(Plain, os.fdopen(r, "rb", 0))
        peer = r
        return await loop.connect_write_pipe(Plain, os.fdopen(w, "wb", 0))
    transport, _ = loop.run_until_complete(main())
    fd = transport.get_extra_info("socket" if kind == "udp" else "pipe").fileno()
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del transport
        gc.collect()
    try:
        messages = [str(w.message) for w in caught if w.category is ResourceWarning]
        assert len(messages) == 1, messages
        assert messages[0].startswith("unclosed transport")
        with pytest.raises(OSError):
            os.fstat(fd)
    finally:
        if peer is not None:
            os.close(peer)


def test_a_transport_of_a_closed_loop_refuses_to_read_again(loop):
    """After its loop closed (and the transport let go of its watch
    callbacks), resume_reading() raises what asyncio raises."""
    r, w = os.pipe()

    async def main():
        transport, _ = await loop.connect_read_pipe(Plain, os.fdopen(r, "rb", 0))
        transport.pause_reading()
        return transport
    transport = loop.run_until_complete(main())
    loop.close()
    try:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            transport.resume_reading()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            del transport  # its finaliser closes the pipe
            gc.collect()
        os.close(w)
