"""Transports as asyncio's classes, on both loops: every transport a loop
makes is an instance of the asyncio transport classes asyncio's own is an
instance of, and what asyncio's transports inherit from those classes can
be replaced there (test suites patch asyncio.Transport.get_extra_info, as
websockets' do) and the replacement is what the transport runs."""
import asyncio
import os
import socket
import sys
from unittest import mock

import pytest

from _net_helpers import run

CLASSES = (asyncio.BaseTransport, asyncio.ReadTransport, asyncio.WriteTransport,
           asyncio.Transport, asyncio.DatagramTransport, asyncio.SubprocessTransport)


def classes_of(transport):
    return sorted(cls.__name__ for cls in CLASSES if isinstance(transport, cls))


async def every_kind_of_transport(loop):
    """(label, transport) for each kind of transport the loop makes; the
    caller closes them (close_all())."""
    made = []
    accepted = loop.create_future()

    class Accepted(asyncio.Protocol):
        def connection_made(self, transport):
            accepted.set_result(transport)
    server = await loop.create_server(Accepted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    made += [("tcp client", client), ("tcp accepted", await accepted)]
    a, b = socket.socketpair()
    unix, _ = await loop.create_connection(asyncio.Protocol, sock=a)
    b.close()
    made.append(("unix", unix))
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                local_addr=("127.0.0.1", 0))
    made.append(("udp", udp))
    rfd, wfd = os.pipe()
    rpipe, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(rfd, "rb", 0))
    wpipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(wfd, "wb", 0))
    made += [("read pipe", rpipe), ("write pipe", wpipe)]
    child_lost = loop.create_future()

    class Child(asyncio.SubprocessProtocol):
        def connection_lost(self, exc):
            child_lost.set_result(None)
    child, _ = await loop.subprocess_exec(
        Child, sys.executable, "-c", "pass",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    child.lost = child_lost
    made += [("subprocess", child), ("child stdin", child.get_pipe_transport(0)),
             ("child stdout", child.get_pipe_transport(1))]
    return server, made


async def close_all(server, made):
    for _, tr in made:
        tr.close()
    server.close()
    await server.wait_closed()
    await dict(made)["subprocess"].lost
    await asyncio.sleep(0.01)


def classes_by_kind(loop):
    """The asyncio classes each kind of transport the loop makes is an
    instance of."""
    async def main():
        server, made = await every_kind_of_transport(loop)
        try:
            return {label: classes_of(tr) for label, tr in made}
        finally:
            await close_all(server, made)
    return run(loop, main())


def test_transports_are_instances_of_asyncios_classes(loop):
    got = classes_by_kind(loop)
    reference_loop = asyncio.new_event_loop()
    try:
        expected = classes_by_kind(reference_loop)
    finally:
        reference_loop.close()
    if sys.version_info < (3, 12) and not isinstance(loop, asyncio.BaseEventLoop):
        # 3.11's UDP transport is not a DatagramTransport (3.12 made it one,
        # as the docs say it is); ours is on every version:
        # docs/differences.md.
        expected["udp"] = sorted(expected["udp"] + ["DatagramTransport"])
    assert got == expected
    # The write pipe is a Transport in asyncio (through _FlowControlMixin).
    assert "Transport" in got["write pipe"] and "ReadTransport" in got["write pipe"]


def test_write_pipe_refuses_read_methods_as_asyncio(loop):
    async def main():
        rfd, wfd = os.pipe()
        os.close(rfd)
        wpipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(wfd, "wb", 0))
        try:
            for name in ("pause_reading", "resume_reading", "is_reading"):
                with pytest.raises(NotImplementedError):
                    getattr(wpipe, name)()
        finally:
            wpipe.close()
            await asyncio.sleep(0.01)
    run(loop, main())


def patched_labels(loop, where):
    """The kinds of transport whose get_extra_info() answers with a mock put
    on asyncio.<where>, and whether the real answers come back after."""
    async def main():
        server, made = await every_kind_of_transport(loop)
        try:
            real = {label: tr.get_extra_info("sockname") for label, tr in made}
            with mock.patch(f"asyncio.{where}.get_extra_info") as patched:
                patched.return_value = ("sock", 1234)
                during = {label: tr.get_extra_info("sockname") for label, tr in made}
            after = {label: tr.get_extra_info("sockname") for label, tr in made}
            assert after == real
            assert real["tcp accepted"][0] == "127.0.0.1"
            return sorted(label for label, value in during.items() if value == ("sock", 1234))
        finally:
            await close_all(server, made)
    return run(loop, main())


@pytest.mark.parametrize("where", ["Transport", "ReadTransport", "BaseTransport"])
def test_get_extra_info_patched_on_asyncio_classes(loop, where):
    """A mock put on asyncio's class answers for the transports that inherit
    asyncio's get_extra_info through it, as on asyncio's loop."""
    got = patched_labels(loop, where)
    reference_loop = asyncio.new_event_loop()
    try:
        assert got == patched_labels(reference_loop, where)
    finally:
        reference_loop.close()
    assert {"tcp client", "tcp accepted", "unix", "udp"} <= set(got)
    if where == "Transport":
        assert "read pipe" not in got      # a ReadTransport only
    else:
        assert "read pipe" in got


def test_wrapping_get_extra_info_sees_every_item(loop):
    """A replacement that calls asyncio's own get_extra_info (a wrapping
    mock) reads the transport's `_extra`: it finds every item, including
    those of an accepted connection that are made when first asked for."""
    original = asyncio.BaseTransport.get_extra_info
    names = ("peername", "sockname", "socket")

    async def main():
        server, made = await every_kind_of_transport(loop)
        try:
            by_label = dict(made)
            accepted, client = by_label["tcp accepted"], by_label["tcp client"]
            with mock.patch.object(asyncio.Transport, "get_extra_info", autospec=True,
                                   side_effect=original) as patched:
                during = [accepted.get_extra_info(name) for name in names]
                default = accepted.get_extra_info("nothing", "dflt")
                assert patched.call_count == 4
            peer, sockname, sock = during
            assert peer == client.get_extra_info("sockname")
            assert sockname[0] == "127.0.0.1"
            assert sock is not None and sock.getsockname() == sockname
            assert default == "dflt"
        finally:
            await close_all(server, made)
    run(loop, main())
