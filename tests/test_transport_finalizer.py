"""A transport collected without close(): what the program sees of it
afterwards is what asyncio's __del__ leaves (the socket closed, the
transport not "closing" until close() is called), and StreamWriter's
finaliser, which asks is_closing(), warns as on asyncio."""
import asyncio
import gc
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
