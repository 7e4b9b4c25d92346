"""unittest.IsolatedAsyncioTestCase on pyasync.

Python 3.13 gives the test case a ``loop_factory`` class attribute; before,
the case's runner makes its loop with asyncio.new_event_loop(), so the
event loop policy chooses it: pyasync.EventLoopPolicy for the class.
The same tests run on asyncio's loop, as the reference.
"""
import asyncio
import sys
import unittest

import pyasync

import _ecosystem as eco


class Scenarios:
    expected_loop = None  # "asyncio" or "pyasync"

    async def asyncSetUp(self):
        self.server = await asyncio.start_server(self.echo, eco.LOCALHOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def asyncTearDown(self):
        self.server.close()
        await self.server.wait_closed()

    @staticmethod
    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def test_runs_on_the_expected_loop(self):
        loop = asyncio.get_running_loop()
        self.assertEqual(type(loop).__module__.split(".")[0], self.expected_loop)
        self.assertTrue(loop.get_debug())  # IsolatedAsyncioTestCase runs in debug mode

    async def test_echo_through_the_fixture_server(self):
        reader, writer = await asyncio.open_connection(eco.LOCALHOST, self.port)
        writer.write(b"ping\n")
        self.assertEqual(await reader.readline(), b"ping\n")
        writer.close()
        await writer.wait_closed()


class TestOnAsyncio(Scenarios, unittest.IsolatedAsyncioTestCase):
    expected_loop = "asyncio"


class TestOnPyasync(Scenarios, unittest.IsolatedAsyncioTestCase):
    expected_loop = "pyasync"

    if sys.version_info >= (3, 13):
        # staticmethod: a plain function as a class attribute would be
        # called as a method, with the test case as its argument.
        loop_factory = staticmethod(pyasync.new_event_loop)
    else:
        @classmethod
        def setUpClass(cls):
            super().setUpClass()
            cls.previous_policy = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(pyasync.EventLoopPolicy())

        @classmethod
        def tearDownClass(cls):
            asyncio.set_event_loop_policy(cls.previous_policy)
            super().tearDownClass()
