"""API fuzzing: pyasync's objects called with odd arguments must raise or
return, never crash the interpreter.

Every public and private method and attribute of every pyasync type - the
loop (and its C base), Handle, TimerHandle, Future, Task, the await
iterator, TaskGroup and its awaitables, the eager task factory, the stream,
datagram and TLS transports (and the C bases of the first two), servers,
sendfile's operation object - and every function of pyasync and
pyasync._core, is called with odd arguments: None, negative and huge integers, NaN,
wrong types, empty and huge bytes, objects whose __index__, __fspath__,
fileno(), __bool__ or __eq__ raise, callables that do nothing or raise. Each
method runs on a fresh instance, a closed (or finished) one and one made by
T.__new__(T) without __init__. Then every attribute is written with each odd
value and deleted, and seeded random sequences of calls, writes and
deletions run on each instance, so that the state one call leaves behind
meets the next call.

The fuzzer is this file run as a program, in a child process: a crash kills
the child, and the test reports the calls it logged last. A run is
deterministic for its seed (random choices only come from it) and bounded:
no call may legitimately block. run_forever() and run_until_complete() get a
stop() queued first, coroutines that methods return run under a short
timeout, and after each batch the loop runs two iterations to carry out what
the calls scheduled. No integer below 3 is ever passed (it could name stdin,
stdout or stderr): the fds given are those of a socketpair the fuzzer owns,
moved above 100 so that they are not signal numbers either. Names never
reach a resolver: the child's socket.getaddrinfo() takes numeric hosts only.
"""
import asyncio
import contextlib
import fcntl
import functools
import gc
import inspect
import itertools
import json
import logging
import os
import random
import socket
import ssl
import subprocess
import sys
import time
import warnings

SEED = 20240607
MAX_SECONDS = 60  # the child's watchdog; a run takes a few seconds

# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------


def _child_env():
    import pyasync
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyasync.__file__)))
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def test_fuzz_api(tmp_path):
    log = tmp_path / "calls.log"
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", os.path.abspath(__file__),
         str(SEED), str(log)],
        cwd=tmp_path, env=_child_env(), capture_output=True, text=True,
        timeout=MAX_SECONDS + 30)
    if proc.returncode != 0:
        try:
            last = log.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            last = ["(no log)"]
        raise AssertionError(
            f"the fuzzer died with exit code {proc.returncode}; its last calls:\n"
            + "\n".join(last) + "\n--- stderr:\n" + proc.stderr[-4000:])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    # Every kind of object was made and fuzzed in each of its states.
    expected = {f"{kind}/{state}" for kind, states in EXPECTED_STATES.items()
                for state in states}
    assert set(summary["instances"]) == expected
    # The others refuse to exist: T.__new__(T) raises for Handle,
    # TimerHandle, the await iterator, TaskGroup's awaitables, the eager
    # task factory and the sendfile operation (asyncio's TLS transport and
    # Server are not ours; modules and factories are not closed).
    assert set(summary["refused"]) == {
        f"{kind}/{state}" for kind in KINDS for state in ("fresh", "closed", "uninit")
        if kind in EXPECTED_STATES and f"{kind}/{state}" not in expected}
    assert summary["calls"] >= 20000, summary


# kind -> the states it must have been fuzzed in ("uninit" only where
# T.__new__(T) gives an object; types that refuse it are checked to refuse).
EXPECTED_STATES = {
    "Loop": ("fresh", "closed", "uninit"),
    "LoopBase": ("fresh", "closed", "uninit"),
    "Handle": ("fresh", "closed"),
    "TimerHandle": ("fresh", "closed"),
    "Future": ("fresh", "closed", "uninit"),
    "Task": ("fresh", "closed", "uninit"),
    "FutureIter": ("fresh", "closed"),
    "TaskGroup": ("fresh", "closed", "uninit"),
    "TaskGroupAwaitable": ("fresh", "closed"),
    "SocketTransport": ("fresh", "closed", "uninit"),
    "StreamTransportBase": ("fresh", "closed", "uninit"),
    "DatagramTransport": ("fresh", "closed", "uninit"),
    "UnconnectedDatagramTransport": ("fresh", "closed"),
    "DatagramTransportBase": ("fresh", "closed", "uninit"),
    "TLSTransport": ("fresh", "closed"),
    "Server": ("fresh", "closed"),
    "SendfileOperation": ("fresh", "closed"),
    "core_module": ("fresh",),
    "pyasync_module": ("fresh",),
}
if sys.version_info >= (3, 12):
    EXPECTED_STATES["EagerTaskFactory"] = ("fresh",)


# ---------------------------------------------------------------------------
# Odd values
# ---------------------------------------------------------------------------


class _Raises:
    def __init__(self, what):
        self.what = what

    def _fail(self, *args, **kwargs):
        raise RuntimeError(f"fuzz: {self.what}")


class BadIndex(_Raises):
    def __init__(self):
        super().__init__("__index__")
    __index__ = __int__ = __float__ = _Raises._fail


class BadFspath(_Raises):
    def __init__(self):
        super().__init__("__fspath__")
    __fspath__ = _Raises._fail


class BadFileno(_Raises):
    def __init__(self):
        super().__init__("fileno")
    fileno = _Raises._fail


class BadDunders(_Raises):
    """Fails at everything Python lets an object fail at."""

    def __init__(self):
        super().__init__("dunder")
    __bool__ = __eq__ = __ne__ = __lt__ = __len__ = __iter__ = _Raises._fail
    __getitem__ = __contains__ = __index__ = __call__ = _Raises._fail
    __hash__ = _Raises._fail

    def __getattr__(self, name):
        raise RuntimeError(f"fuzz: attribute {name}")


def _noop(*args, **kwargs):
    return None


def _raiser(*args, **kwargs):
    raise RuntimeError("fuzz: callable")


# More than a socket buffer takes at once, for transports. Elsewhere bytes
# are also iterables of ints (create_server() makes one lookup per host it
# is given, asyncio's too): a smaller one keeps that from taking the run.
HUGE_BYTES = b"\0" * (1 << 20)
LARGE_BYTES = b"\0" * (1 << 12)


def odd_values(env):
    """(label, value) pairs: odd values, and the loop and a socket of a pair
    that the fuzzer owns (env.own), for methods that want a real one."""
    own = env.own
    return [
        ("None", None),
        ("-1", -1),
        ("2**31-1", 2 ** 31 - 1),
        ("2**63", 2 ** 63),
        ("-2**63-1", -2 ** 63 - 1),
        ("2**200", 2 ** 200),
        ("nan", float("nan")),
        ("-inf", float("-inf")),
        ("str", "fuzz"),
        ("str with NUL", "fu\0zz"),
        ("b''", b""),
        ("bytes", b"fuzz"),
        ("huge bytes", HUGE_BYTES if env.transport_kind else LARGE_BYTES),
        ("bytearray", bytearray(b"fuzz")),
        ("memoryview", memoryview(b"fuzz")),
        ("object()", object()),
        ("bad __index__", BadIndex()),
        ("bad __fspath__", BadFspath()),
        ("bad fileno", BadFileno()),
        ("bad dunders", BadDunders()),
        ("list", [b"a", 7]),
        ("dict", {}),
        ("exception", ValueError("fuzz")),
        ("noop", _noop),
        ("raiser", _raiser),
        ("own fd", own.fileno()),
        ("own socket", own),
        ("loop", env.loop),
    ]


# Names never called: __del__ would close a transport's socket behind its
# back (asyncio's transports do the same), the rest are the object protocol
# itself, not pyasync's code.
SKIPPED = {
    "__del__", "__class__", "__new__", "__init_subclass__", "__subclasshook__",
    "__getattribute__", "__getattr__", "__setattr__", "__delattr__", "__dir__",
    "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__sizeof__",
    "__format__", "__class_getitem__", "__doc__", "__module__", "__dict__",
    "__weakref__", "__slots__", "__abstractmethods__", "__annotations__",
}


# ---------------------------------------------------------------------------
# The fuzzer (runs in the child)
# ---------------------------------------------------------------------------


class Fuzzer:
    def __init__(self, seed, log_path):
        import pyasync
        from pyasync import _core
        self.pyasync = pyasync
        self.core = _core
        self.rng = random.Random(seed)
        self.log = open(log_path, "w", buffering=1)
        self.calls = 0
        self.instances = set()
        self.refused = set()
        self.abstract_names = itertools.count()
        self.ssl_context = None

    # ----------------------------------------------------------- logging

    def note(self, text):
        self.log.write(text + "\n")

    # ----------------------------------------------------------- environment

    def owned_pair(self, family=socket.AF_UNIX, type_=socket.SOCK_STREAM):
        a, b = socket.socketpair(family, type_)
        return self.raise_fd(a), self.raise_fd(b)

    @staticmethod
    def raise_fd(sock):
        # Above 100: never a standard stream, never a signal number.
        fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 100)
        new = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
        sock.close()
        new.setblocking(False)
        return new

    def new_env(self, kind):
        return Env(self, transport_kind="Transport" in kind)

    # ----------------------------------------------------------- calling

    def call(self, env, obj, label, name, func, args):
        self.calls += 1
        self.note(f"{label}.{name}({', '.join(a for a, _ in args)})")
        values = [v for _, v in args]
        if name in ("run_forever", "run_until_complete"):
            env.queue_stop(obj)
        try:
            res = func(*values)
        except BaseException:
            return
        env.drive(res)

    def call_all_ways(self, env, obj, label, name, odd):
        try:
            func = getattr(obj, name)
        except Exception:
            return
        if not callable(func):
            return
        self.call(env, obj, label, name, func, [])
        for arg in odd:
            self.call(env, obj, label, name, func, [arg])
        # Each odd value first, then second, next to a plausible partner:
        # a callback after it (add_reader(fd, cb), call_later(delay, cb),
        # run_in_executor(executor, func)...), data or a factory before it.
        fillers = [arg for arg in odd if arg[0] in ("noop", "bytes", "own fd", "loop")]
        noop = next(arg for arg in fillers if arg[0] == "noop")
        for arg in odd:
            self.call(env, obj, label, name, func, [arg, noop])
            self.call(env, obj, label, name, func, [self.rng.choice(fillers), arg])
        for _ in range(4):
            self.call(env, obj, label, name, func, self.rng.sample(odd, 3))

    def attributes(self, env, obj, label, names, odd):
        for name in names:
            for arg_label, value in odd:
                self.calls += 1
                self.note(f"{label}.{name} = {arg_label}")
                with contextlib.suppress(BaseException):
                    setattr(obj, name, value)
                with contextlib.suppress(BaseException):
                    getattr(obj, name)
            self.calls += 1
            self.note(f"del {label}.{name}")
            with contextlib.suppress(BaseException):
                delattr(obj, name)
            with contextlib.suppress(BaseException):
                getattr(obj, name)
            with contextlib.suppress(BaseException):
                repr(obj)
        env.pump()

    def sequence(self, env, obj, label, names, odd, length, writable):
        for _ in range(length):
            name = self.rng.choice(names)
            roll = self.rng.random() if writable else 1.0
            if roll < 0.1:
                arg_label, value = self.rng.choice(odd)
                self.calls += 1
                self.note(f"{label}.{name} = {arg_label}")
                with contextlib.suppress(BaseException):
                    setattr(obj, name, value)
            elif roll < 0.15:
                self.calls += 1
                self.note(f"del {label}.{name}")
                with contextlib.suppress(BaseException):
                    delattr(obj, name)
            elif roll < 0.2 or roll == 1.0 and self.rng.random() < 0.05:
                self.note("(loop iteration)")
                env.pump()
            else:
                try:
                    func = getattr(obj, name)
                except Exception:
                    continue
                if callable(func):
                    nargs = self.rng.choice((0, 0, 1, 1, 1, 2, 3))
                    self.call(env, obj, label, name, func, self.rng.sample(odd, nargs))
        env.pump()

    # ----------------------------------------------------------- instances

    def make(self, kind, state):
        """A new (env, obj) for kind/state, None if T.__new__(T) refused."""
        env = self.new_env(kind)
        try:
            obj = getattr(Makers, kind)(self, env, state)
        except _Refused:
            obj = _Refused
        except Exception:
            if state != "uninit":
                raise
            obj = _Refused  # T.__new__(T) raised: the type refuses it
        if obj is _Refused:
            self.refused.add(f"{kind}/{state}")
            env.close()
            return None
        return env, obj

    def names_of(self, obj):
        names = []
        for name in sorted(set(dir(obj)) | set(dir(type(obj)))):
            if name in SKIPPED or (inspect.ismodule(obj) and name.startswith("__")):
                continue
            if inspect.ismodule(obj) and inspect.ismodule(getattr(obj, name, None)):
                continue  # the modules a module imported are not its API
            names.append(name)
        return names

    def fuzz_kind(self, kind, states):
        for state in states:
            made = self.make(kind, state)
            if made is None:
                continue
            env, obj = made
            label = f"{kind}/{state}"
            self.instances.add(label)
            names = self.names_of(obj)
            env.close()
            # Each method on an instance of its own.
            for name in names:
                env, obj = self.make(kind, state)
                self.call_all_ways(env, obj, label, name, odd_values(env))
                env.pump()
                env.close()
            # Attributes: written with each odd value, deleted. (Not those of
            # the modules: the fuzzer itself needs them.)
            writable = not inspect.ismodule(obj)
            if writable:
                env, obj = self.make(kind, state)
                self.attributes(env, obj, label, names, odd_values(env))
                env.close()
            # Random sequences.
            for _ in range(3):
                env, obj = self.make(kind, state)
                self.sequence(env, obj, label, names, odd_values(env), 60, writable)
                env.close()
            gc.collect()

    def run(self):
        for kind in KINDS:
            if kind == "EagerTaskFactory" and sys.version_info < (3, 12):
                continue
            self.fuzz_kind(kind, ("fresh", "closed", "uninit"))
        gc.collect()
        return {"calls": self.calls, "instances": sorted(self.instances),
                "refused": sorted(self.refused)}


class _Refused(Exception):
    """T.__new__(T) (or the state asked for) does not exist for this kind."""


class Env:
    """What one instance lives in: a pyasync loop, a socketpair the fuzzer
    owns (its fds are the only ones given as arguments), and what to close
    afterwards."""

    def __init__(self, fuzzer, transport_kind=False):
        self.fuzzer = fuzzer
        self.transport_kind = transport_kind
        self.core = fuzzer.core
        self.loop = fuzzer.pyasync.new_event_loop()
        self.own, self.own_peer = fuzzer.owned_pair()
        self.sockets = [self.own, self.own_peer]
        self.files = []
        self.loops = [self.loop]
        self.closed = False

    def usable(self, loop=None):
        loop = self.loop if loop is None else loop
        base = self.core.LoopBase
        return isinstance(loop, base) and not base.is_closed(loop) and \
            not base.is_running(loop)

    def queue_stop(self, obj):
        base = self.core.LoopBase
        if isinstance(obj, base) and self.usable(obj):
            with contextlib.suppress(BaseException):
                base.call_soon(obj, functools.partial(base.stop, obj))

    def pump(self, loop=None):
        """Two iterations of the loop, whatever the calls did to it (its
        Python methods may be shadowed: the C ones are called directly)."""
        loop = self.loop if loop is None else loop
        base = self.core.LoopBase
        for _ in range(2):
            if not self.usable(loop):
                return
            with contextlib.suppress(BaseException):
                base.call_soon(loop, functools.partial(base.stop, loop))
                base.run_forever(loop)
            self.reset_globals()

    @staticmethod
    def reset_globals():
        asyncio.events._set_running_loop(None)
        sys.set_asyncgen_hooks(firstiter=None, finalizer=None)

    def run(self, awaitable, timeout=0.02):
        """Run a coroutine or awaitable on the loop, for at most `timeout`
        seconds (and a second whatever it does with its cancellation)."""
        loop = self.loop
        pyasync = self.fuzzer.pyasync
        if not isinstance(loop, pyasync.Loop) or not self.usable():
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            return

        async def bounded():
            return await asyncio.wait_for(_await(awaitable), timeout)

        base = self.core.LoopBase
        guard = None
        with contextlib.suppress(BaseException):
            guard = base.call_later(loop, 1.0, functools.partial(base.stop, loop))
        with contextlib.suppress(BaseException):
            pyasync.Loop.run_until_complete(loop, bounded())
        if guard is not None:
            guard.cancel()
        self.reset_globals()

    def drive(self, result):
        if inspect.iscoroutine(result) or type(result).__name__ == "TaskGroupExit":
            self.run(result)

    def close(self):
        if self.closed:
            return
        self.closed = True
        base = self.core.LoopBase
        for loop in self.loops:
            if isinstance(loop, base):
                if base.is_running(loop):
                    continue
                with contextlib.suppress(BaseException):
                    self.fuzzer.pyasync.Loop.close(loop)
                with contextlib.suppress(BaseException):
                    base._close_core(loop)
        for sock in self.sockets + self.files:
            sock.close()
        self.reset_globals()
        # pyasync.install() may have been called: back to asyncio's policy.
        asyncio.set_event_loop_policy(None)


async def _await(awaitable):
    return await awaitable


async def _sleeper():
    await asyncio.sleep(3600)


async def _done():
    return 1


async def _failing():
    raise ValueError("fuzz: task")


class _Protocol(asyncio.Protocol):
    pass


class _DatagramProtocol(asyncio.DatagramProtocol):
    pass


class Makers:
    """One maker per kind: (fuzzer, env, state) -> object. The object's loop
    is env.loop (the Loop kinds put themselves there)."""

    @staticmethod
    def Loop(fz, env, state):
        pyasync = fz.pyasync
        if state == "uninit":
            loop = pyasync.Loop.__new__(pyasync.Loop)
        else:
            loop = pyasync.new_event_loop()
        env.loops.append(loop)
        env.loop = loop
        if state == "closed":
            loop.close()
        return loop

    @staticmethod
    def LoopBase(fz, env, state):
        base = fz.core.LoopBase
        loop = base.__new__(base) if state == "uninit" else base()
        env.loops.append(loop)
        env.loop = loop
        if state == "closed":
            base._close_core(loop)
        return loop

    @staticmethod
    def Handle(fz, env, state):
        if state == "uninit":
            return fz.pyasync.Handle.__new__(fz.pyasync.Handle)
        h = env.loop.call_soon(_noop, 1)
        if state == "closed":
            h.cancel()
        return h

    @staticmethod
    def TimerHandle(fz, env, state):
        if state == "uninit":
            return fz.pyasync.TimerHandle.__new__(fz.pyasync.TimerHandle)
        h = env.loop.call_later(3600, _noop, 1)
        if state == "closed":
            h.cancel()
        return h

    @staticmethod
    def Future(fz, env, state):
        if state == "uninit":
            return fz.pyasync.Future.__new__(fz.pyasync.Future)
        fut = env.loop.create_future()
        if state == "closed":
            fut.set_result(1)
        return fut

    @staticmethod
    def Task(fz, env, state):
        if state == "uninit":
            return fz.pyasync.Task.__new__(fz.pyasync.Task)
        if state == "closed":
            task = env.loop.create_task(_done())
            env.loop.run_until_complete(task)
            return task
        return env.loop.create_task(_sleeper())

    @staticmethod
    def FutureIter(fz, env, state):
        fut = env.loop.create_future()
        it = fut.__await__()
        if state == "uninit":
            return type(it).__new__(type(it))
        if state == "closed":
            fut.set_result(1)
        return it

    @staticmethod
    def TaskGroup(fz, env, state):
        tg_type = fz.pyasync.TaskGroup
        if state == "uninit":
            return tg_type.__new__(tg_type)
        tg = tg_type()
        if state == "closed":
            async def use():
                async with tg:
                    tg.create_task(_done())
            env.loop.run_until_complete(use())
        return tg

    @staticmethod
    def TaskGroupAwaitable(fz, env, state):
        tg = fz.pyasync.TaskGroup()
        aw = tg.__aenter__()
        if state == "uninit":
            return type(aw).__new__(type(aw))
        if state == "closed":
            async def enter():
                return await aw
            env.loop.run_until_complete(enter())
        return aw

    @staticmethod
    def EagerTaskFactory(fz, env, state):
        factory_type = fz.core.EagerTaskFactory
        if state == "uninit":
            return factory_type.__new__(factory_type)
        if state == "closed":
            raise _Refused  # nothing to close
        return fz.pyasync.create_eager_task_factory()

    # -- transports

    @staticmethod
    def _finish(env, transport, state):
        env.pump()
        if state == "closed":
            transport.close()
            env.pump()
        return transport

    @staticmethod
    def SocketTransport(fz, env, state):
        from pyasync._transports import SocketTransport
        if state == "uninit":
            return SocketTransport.__new__(SocketTransport)
        a, b = fz.owned_pair()
        env.sockets += [a, b]
        tr = env.loop._make_socket_transport(a, _Protocol())
        return Makers._finish(env, tr, state)

    @staticmethod
    def StreamTransportBase(fz, env, state):
        base = fz.core.StreamTransportBase
        if state == "uninit":
            return base.__new__(base)
        a, b = fz.owned_pair()
        env.sockets += [a, b]
        tr = base(env.loop, a, _Protocol())
        tr._start_reading()
        return Makers._finish(env, tr, state)

    @staticmethod
    def _connected_dgram_pair(fz, env):
        # A receiver bound to an abstract name (no file), and a sender
        # connected to it: the sender's peername is that name.
        name = f"\0pyasync-fuzz-{os.getpid()}-{next(fz.abstract_names)}"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(name)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.connect(name)
        receiver, sender = fz.raise_fd(receiver), fz.raise_fd(sender)
        env.sockets += [receiver, sender]
        return sender, name

    @staticmethod
    def DatagramTransport(fz, env, state):
        from pyasync._transports import DatagramTransport
        if state == "uninit":
            return DatagramTransport.__new__(DatagramTransport)
        sender, name = Makers._connected_dgram_pair(fz, env)
        tr = env.loop._make_datagram_transport(sender, _DatagramProtocol(), name)
        return Makers._finish(env, tr, state)

    @staticmethod
    def UnconnectedDatagramTransport(fz, env, state):
        if state == "uninit":
            raise _Refused
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock = fz.raise_fd(sock)
        env.sockets.append(sock)
        tr = env.loop._make_datagram_transport(sock, _DatagramProtocol())
        return Makers._finish(env, tr, state)

    @staticmethod
    def DatagramTransportBase(fz, env, state):
        base = fz.core.DatagramTransportBase
        if state == "uninit":
            return base.__new__(base)
        sender, name = Makers._connected_dgram_pair(fz, env)
        tr = base(env.loop, sender, _DatagramProtocol(), name,
                  {"peername": sender.getpeername()})
        tr._start_reading()
        return Makers._finish(env, tr, state)

    @staticmethod
    def TLSTransport(fz, env, state):
        if state == "uninit":
            raise _Refused  # asyncio's own Python class
        a, b = fz.owned_pair()
        env.sockets += [a, b]
        if fz.ssl_context is None:
            # No CA certificates: loading them would take most of the run.
            fz.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tr = env.loop._make_ssl_transport(a, _Protocol(), fz.ssl_context,
                                          server_hostname="fuzz.invalid")
        return Makers._finish(env, tr, state)

    @staticmethod
    def SendfileOperation(fz, env, state):
        # Made by _core.sock_sendfile_native(); reachable from Python through
        # its future's done callback (a bound method of the operation).
        a, b = fz.owned_pair()
        env.sockets += [a, b]
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        if not os.path.exists("sendfile.data"):
            with open("sendfile.data", "wb") as f:
                f.write(HUGE_BYTES)
        file = open("sendfile.data", "rb")
        env.files.append(file)
        fut = fz.core.sock_sendfile_native(env.loop, a, file.fileno(), 0, 0, len(HUGE_BYTES))
        op = fut._callbacks[0][0].__self__
        if state == "uninit":
            return type(op).__new__(type(op))
        if state == "closed":
            fut.cancel()
            env.pump()
        return op

    # -- the modules' functions (and the types called as constructors)

    @staticmethod
    def core_module(fz, env, state):
        if state != "fresh":
            raise _Refused
        return fz.core

    @staticmethod
    def pyasync_module(fz, env, state):
        if state != "fresh":
            raise _Refused
        return fz.pyasync

    @staticmethod
    def Server(fz, env, state):
        if state == "uninit":
            raise _Refused  # asyncio's own Python class
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env.sockets.append(listener)
        server = env.loop.run_until_complete(
            env.loop.create_server(_Protocol, sock=listener))
        if state == "closed":
            server.close()
            env.pump()
        return server


KINDS = [name for name in vars(Makers) if not name.startswith("_")]


def _numeric_only_resolver():
    real_getaddrinfo = socket.getaddrinfo
    real_getnameinfo = socket.getnameinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        return real_getaddrinfo(host, port, family, type, proto,
                                flags | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)

    def getnameinfo(sockaddr, flags):
        return real_getnameinfo(sockaddr, flags | socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)

    socket.getaddrinfo = getaddrinfo
    socket.getnameinfo = getnameinfo


def main(argv):
    import faulthandler
    seed, log_path = int(argv[1]), argv[2]
    faulthandler.enable()
    faulthandler.dump_traceback_later(MAX_SECONDS, exit=True)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)
    _numeric_only_resolver()
    started = time.monotonic()
    # Methods such as Task.print_stack() write to sys.stdout: only the
    # summary goes there.
    out, sys.stdout = sys.stdout, open(os.devnull, "w")
    summary = Fuzzer(seed, log_path).run()
    summary["seconds"] = round(time.monotonic() - started, 1)
    out.write(json.dumps(summary) + "\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv)
