"""Differential test: random small asyncio programs must leave the same
trace on asyncio and on pyasync.

A seeded generator writes a program (Python source) from pieces: timers
(call_soon, call_later, call_at, some cancelled), callbacks that raise, tasks
spawned, awaited and cancelled, TaskGroups, asyncio.timeout() and wait_for(),
gather(), wait(), shield(), a queue, a lock, an event, and a context
variable. The program logs what happens as it runs into a trace: an ordered
list of strings, each prefixed with the virtual tick at which it happened.
The program runs once on each loop; the traces must be equal.

Time is virtual. Both loops honour an overridden loop.time(), so the test
replaces it with a clock that moves one tick (1.0 s) per loop iteration,
driven by a callback that queues itself with call_soon(): the loop never
sleeps (a program of hundreds of ticks runs in milliseconds), and which
timers are due at which iteration is exact, the same on both loops, never a
matter of real-time jitter.

Coincident deadlines. Delays are a few whole ticks plus a random fraction,
so many timers fall due in the same iteration, out of the order they were
scheduled in; they run in deadline order on both loops. Exactly equal
deadlines are avoided: every delay also gets a unique tiny offset (a
counter, far below the fraction's step). asyncio's heap gives no order for
equal deadlines while pyasync keeps them FIFO (docs/differences.md), so
equal deadlines would compare asyncio's heap layout, not behaviour.

Order by id. asyncio.TaskGroup keeps its tasks in a set and cancels them
in the set's order, which follows the tasks' addresses and so changes from
run to run; the programs use a TaskGroup subclass that keeps them in
insertion order (OrderedTaskGroup), on both loops. Sets that the programs
see (asyncio.wait()'s results) are logged sorted.

When a seed differs, the failure shows the seed, the program, the first
differing trace entry with its neighbours, and a shrunk program (snippets
removed while the traces still differ).

Seeds: a fixed set runs in CI. Longer runs, for releases:
    PYASYNC_DIFF_SEEDS=100000 pytest tests/faults/test_differential.py
    PYASYNC_DIFF_SEEDS=5000-6000 pytest tests/faults/test_differential.py
(see tests/faults/README.md)."""
import asyncio
import contextvars
import functools
import itertools
import os
import random
import re
import selectors
import socket

import pytest

import pyasync

HAS_EAGER_TASKS = hasattr(asyncio, "eager_task_factory")

# With pyasync's poll() backend, programs do no socket I/O: see reference_loop().
POLL_BACKEND = os.environ.get("PYASYNC_POLLER") == "poll"

TICK = 1.0
# A program that has not finished by then is cut off (the same on both loops).
HORIZON_TICKS = 400
RUNAWAY_TICKS = 2000

# Seeds that showed a difference between the loops; they always run. (A
# seed names a program for one generator: changing the generator moves
# them.)
#   67, 123 (3.13.0, eager task factory, both pollers): asyncio names a
#   task made without a name 'None' (its create_task() calls set_name(None)
#   after the factory; CPython gh-128308), pyasync names it Task-<n>.
#   Expected failures where asyncio has the bug (see
#   asyncio_names_factory_tasks_none()).
REGRESSION_SEEDS = [67, 123]


def seeds_to_run():
    spec = os.environ.get("PYASYNC_DIFF_SEEDS", "200")
    if "-" in spec:
        first, last = (int(x) for x in spec.split("-"))
        chosen = range(first, last)
    else:
        chosen = range(int(spec))
    return sorted(set(chosen) | set(REGRESSION_SEEDS))


# ---------------------------------------------------------------------------
# The generator: a program is a set of async functions, each a list of
# snippets. A snippet is self-contained (it defines the names it uses), so
# any of them can be removed when shrinking a failing program.
# ---------------------------------------------------------------------------

class Program:
    def __init__(self, seed, eager=False):
        self.seed = seed
        self.eager = eager    # run with the loop's eager task factory
        self.functions = {}   # name -> list of snippets (lists of lines)

    def reachable(self):
        """The functions main calls, directly or not (shrinking leaves the
        others behind; they are not shown)."""
        seen = {"main"}
        todo = ["main"]
        while todo:
            for line in itertools.chain.from_iterable(self.functions[todo.pop()]):
                for callee in re.findall(r"\b(f\d+)\(", line):
                    if callee not in seen:
                        seen.add(callee)
                        todo.append(callee)
        return seen

    def source(self):
        out = [f"# program of seed {self.seed}"
               + (" (eager task factory)" if self.eager else "")]
        reachable = self.reachable()
        for fname, snippets in self.functions.items():
            if fname not in reachable:
                continue
            out += [f"async def {fname}(name):",
                    "    log(name, 'start')",
                    "    try:"]
            for snippet in snippets:
                out += ["        " + line for line in snippet]
            out += ["        pass",
                    "    except asyncio.CancelledError:",
                    "        log(name, 'cancelled')",
                    "        raise",
                    "    except Exception as exc:",
                    "        log(name, 'raised', describe(exc))",
                    "        raise",
                    "    log(name, 'end')",
                    "    return name + ':ret'",
                    ""]
        return "\n".join(out)

    def without(self, fname, index):
        other = Program(self.seed, self.eager)
        other.functions = {f: list(s) for f, s in self.functions.items()}
        del other.functions[fname][index]
        return other

    def snippet_count(self):
        return sum(len(s) for s in self.functions.values())


class Generator:
    MAX_DEPTH = 3
    MAX_FUNCTIONS = 14

    def __init__(self, seed):
        self.rng = random.Random(seed)
        # One program in five runs with eager tasks (3.12+): asyncio's
        # eager_task_factory on asyncio, pyasync's on pyasync.
        self.program = Program(seed, eager=HAS_EAGER_TASKS and self.rng.random() < 0.2)
        self.labels = itertools.count(1)

    def generate(self):
        self.function(0, "main")
        return self.program

    def delay(self):
        # Whole ticks (often the same few, so that deadlines meet in one
        # iteration) plus a fraction; d() adds the unique offset at run time.
        return f"d({self.rng.choice((0, 0, 1, 1, 2, 3, 5, 8))}, {self.rng.randrange(256)})"

    def function(self, depth, fname=None):
        if fname is None:
            fname = f"f{len(self.program.functions)}"
        snippets = []
        self.program.functions[fname] = snippets
        count = self.rng.randint(3, 8) if depth == 0 else self.rng.randint(1, 5)
        spawned = []
        for _ in range(count):
            snippets.append(self.snippet(depth, spawned))
        return fname

    def sub(self, depth):
        """A new function to call from a snippet at `depth`, or None when
        deep enough."""
        if depth >= self.MAX_DEPTH or len(self.program.functions) >= self.MAX_FUNCTIONS:
            return None
        return self.function(depth + 1)

    def snippet(self, depth, spawned):
        r = self.rng
        label = f"L{next(self.labels)}"
        kinds = ["log", "sleep", "sleep0", "call_soon", "call_later", "call_at",
                 "cancel_timer", "boom", "var_set", "var_get", "lock", "event_set",
                 "event_clear", "event_wait", "queue_put", "queue_get", "queue_nowait",
                 "raise", "spawn", "join", "cancel_task",
                 "await_sub", "gather", "wait", "wait_for", "timeout", "shield",
                 "taskgroup", "reschedule",
                 "threadsafe", "cancel_soon", "future", "timeout_at", "sleep_result",
                 "semaphore", "condition_wait", "condition_notify", "cancelling",
                 "sock_recv", "reader", "transport"]
        weights = [3, 4, 2, 3, 3, 2, 2, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1,
                   1, 3, 2, 2, 2, 2, 2, 2, 2, 1, 2, 1,
                   1, 1, 2, 1, 1, 1, 1, 1, 1,
                   2, 2, 2]
        kind = r.choices(kinds, weights)[0]
        if POLL_BACKEND and kind in ("sock_recv", "reader", "transport"):
            kind = "log"
        n = f"name + ' {label}'"
        child = f"name + '/{label}'"

        if kind == "log":
            return [f"log(name, '{label}')"]
        if kind == "sleep":
            return [f"await asyncio.sleep({self.delay()})", f"log(name, '{label} slept')"]
        if kind == "sleep0":
            return ["await asyncio.sleep(0)", f"log(name, '{label} sleep0')"]
        if kind == "call_soon":
            return [f"loop.call_soon(cb, {n})"]
        if kind == "call_later":
            return [f"loop.call_later({self.delay()}, cb, {n})"]
        if kind == "call_at":
            return [f"loop.call_at(loop.time() + {self.delay()}, cb, {n})"]
        if kind == "cancel_timer":
            return [f"h = loop.call_later({self.delay()}, cb, {n})",
                    f"await asyncio.sleep({self.delay()})",
                    "h.cancel()",
                    f"log(name, '{label} cancelled a timer')"]
        if kind == "boom":
            how = r.choice(["loop.call_soon(boom, {n})",
                            "loop.call_later(%s, boom, {n})" % self.delay()])
            return [how.format(n=n)]
        if kind == "var_set":
            return [f"var.set({n})", f"log(name, '{label} var', var.get())"]
        if kind == "var_get":
            return [f"log(name, '{label} var', var.get())"]
        if kind == "lock":
            return ["async with shared.lock:",
                    f"    log(name, '{label} locked')",
                    f"    await asyncio.sleep({self.delay()})",
                    f"    log(name, '{label} unlocking')"]
        if kind == "event_set":
            return ["shared.event.set()", f"log(name, '{label} event set')"]
        if kind == "event_clear":
            return ["shared.event.clear()", f"log(name, '{label} event cleared')"]
        if kind == "event_wait":
            return ["try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    "        await shared.event.wait()",
                    f"    log(name, '{label} event seen')",
                    "except TimeoutError:",
                    f"    log(name, '{label} event timeout')"]
        if kind == "queue_put":
            return ["try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    f"        await shared.queue.put({n})",
                    f"    log(name, '{label} put')",
                    "except TimeoutError:",
                    f"    log(name, '{label} put timeout')"]
        if kind == "queue_get":
            return ["try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    "        item = await shared.queue.get()",
                    f"    log(name, '{label} got', item)",
                    "except TimeoutError:",
                    f"    log(name, '{label} get timeout')"]
        if kind == "queue_nowait":
            if r.random() < 0.5:
                return ["try:",
                        f"    shared.queue.put_nowait({n})",
                        f"    log(name, '{label} put_nowait')",
                        "except asyncio.QueueFull:",
                        f"    log(name, '{label} full')"]
            return ["try:",
                    f"    log(name, '{label} get_nowait', shared.queue.get_nowait())",
                    "except asyncio.QueueEmpty:",
                    f"    log(name, '{label} empty')"]
        if kind == "threadsafe":
            return [f"loop.call_soon_threadsafe(cb, {n})"]
        if kind == "cancel_soon":
            return [f"h = loop.call_soon(cb, {n} + ' never')",
                    f"loop.call_soon(cb, {n})",
                    "h.cancel()"]
        if kind == "future":
            # Done callbacks run in the order they were added, one raises,
            # one is removed again; the result comes from a timer (or the
            # future is cancelled by one).
            settle = r.choice(["fut.set_result, {n}", "fut.cancel", "fut.set_exception, "
                               "ValueError({n})"]).format(n=n)
            return ["fut = loop.create_future()",
                    f"fut.add_done_callback(lambda f: log(name, '{label} first', "
                    "'cancelled' if f.cancelled() else describe(f.exception())))",
                    f"fut.add_done_callback(lambda f: boom({n} + ' done callback'))",
                    f"gone = lambda f: log(name, '{label} removed callback ran')",
                    "fut.add_done_callback(gone)",
                    f"log(name, '{label} removed', fut.remove_done_callback(gone))",
                    f"loop.call_later({self.delay()}, {settle})",
                    "try:",
                    f"    log(name, '{label} future', await fut)",
                    "except asyncio.CancelledError:",
                    "    if not fut.cancelled():",
                    "        raise",
                    f"    log(name, '{label} future cancelled')",
                    "except ValueError as exc:",
                    f"    log(name, '{label} future failed', describe(exc))"]
        if kind == "timeout_at":
            return ["try:",
                    f"    async with asyncio.timeout_at(loop.time() + {self.delay()}):",
                    f"        await asyncio.sleep({self.delay()})",
                    f"    log(name, '{label} in time')",
                    "except TimeoutError:",
                    f"    log(name, '{label} timeout_at expired')"]
        if kind == "sleep_result":
            return [f"log(name, '{label} sleep result', "
                    f"await asyncio.sleep({self.delay()}, {n}))"]
        if kind == "semaphore":
            return ["async with shared.semaphore:",
                    f"    log(name, '{label} in semaphore', shared.semaphore.locked())",
                    f"    await asyncio.sleep({self.delay()})"]
        if kind == "condition_wait":
            return ["try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    "        async with shared.condition:",
                    "            await shared.condition.wait()",
                    f"            log(name, '{label} notified')",
                    "except TimeoutError:",
                    f"    log(name, '{label} not notified')"]
        if kind == "condition_notify":
            return ["async with shared.condition:",
                    f"    shared.condition.notify({r.choice([1, 2])})",
                    f"    log(name, '{label} notify')"]
        if kind == "cancelling":
            return ["me = asyncio.current_task()",
                    f"log(name, '{label} task', task_name(me), me.cancelling(), me.done())"]
        if kind == "sock_recv":
            return ["a, b = socketpair()",
                    "try:",
                    f"    loop.call_later({self.delay()}, b.send, b'{label} data')",
                    "    try:",
                    f"        async with asyncio.timeout({self.delay()}):",
                    f"            log(name, '{label} recv', await loop.sock_recv(a, 100))",
                    "    except TimeoutError:",
                    f"        log(name, '{label} recv timeout')",
                    "finally:",
                    "    a.close()",
                    "    b.close()"]
        if kind == "reader":
            return ["a, b = socketpair()",
                    "got = loop.create_future()",
                    "def on_readable(a=a, got=got):",
                    f"    log(name, '{label} readable', a.recv(100))",
                    "    loop.remove_reader(a)",
                    "    if not got.done():",
                    "        got.set_result(None)",
                    "loop.add_reader(a, on_readable)",
                    "try:",
                    f"    loop.call_later({self.delay()}, b.send, b'{label} ping')",
                    "    try:",
                    f"        async with asyncio.timeout({self.delay()}):",
                    "            await got",
                    "    except TimeoutError:",
                    f"        log(name, '{label} not readable in time')",
                    "finally:",
                    "    loop.remove_reader(a)",
                    "    a.close()",
                    "    b.close()"]
        if kind == "transport":
            return ["a, b = socketpair()",
                    f"transport, _ = await loop.create_connection(lambda: Logged({n}), sock=a)",
                    "try:",
                    f"    loop.call_later({self.delay()}, b.send, b'{label} hello')",
                    f"    loop.call_later({self.delay()}, b.shutdown, SHUT_WR)",
                    f"    await asyncio.sleep({self.delay()})",
                    f"    transport.write(b'{label} reply')",
                    "    await asyncio.sleep(0)",
                    f"    log(name, '{label} peer got', recv_now(b))",
                    "finally:",
                    "    transport.close()",
                    "    b.close()"]
        if kind == "raise":
            if depth == 0:
                return [f"log(name, '{label} would raise')"]
            return [f"raise ValueError({n})"]
        if kind == "join":
            if not spawned:
                return [f"log(name, '{label} nothing to join')"]
            return [f"await join(name + '/{r.choice(spawned)}')"]
        if kind == "cancel_task":
            if not spawned:
                return [f"log(name, '{label} nothing to cancel')"]
            return [f"cancel_task(name + '/{r.choice(spawned)}', {n})"]

        # The rest call new functions.
        f1 = self.sub(depth)
        if f1 is None:
            return [f"log(name, '{label} too deep')"]
        if kind == "spawn":
            spawned.append(label)
            return [f"spawn({f1}({child}), {child})"]
        if kind == "await_sub":
            return ["try:",
                    f"    log(name, '{label} got', await {f1}({child}))",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        if kind == "wait_for":
            return ["try:",
                    f"    log(name, '{label} got', await asyncio.wait_for({f1}({child}), "
                    f"{self.delay()}))",
                    "except TimeoutError:",
                    f"    log(name, '{label} wait_for timeout')",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        if kind == "timeout":
            return ["try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    f"        log(name, '{label} got', await {f1}({child}))",
                    "except TimeoutError:",
                    f"    log(name, '{label} timeout')",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        if kind == "reschedule":
            return ["try:",
                    "    async with asyncio.timeout(None) as cm:",
                    f"        cm.reschedule(loop.time() + {self.delay()})",
                    f"        log(name, '{label} got', await {f1}({child}))",
                    f"    log(name, '{label} expired', cm.expired())",
                    "except TimeoutError:",
                    f"    log(name, '{label} rescheduled timeout')",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        if kind == "shield":
            return [f"t = spawn({f1}({child}), {child})",
                    "try:",
                    f"    async with asyncio.timeout({self.delay()}):",
                    f"        log(name, '{label} shielded', await asyncio.shield(t))",
                    "except TimeoutError:",
                    f"    log(name, '{label} shield timeout', t.done())",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        f2 = self.sub(depth)
        if f2 is None:
            return [f"log(name, '{label} too deep for two')"]
        if kind == "gather":
            flag = r.choice([True, False])
            return ["try:",
                    f"    log(name, '{label} gathered', await asyncio.gather("
                    f"{f1}({child} + 'a'), {f2}({child} + 'b'), return_exceptions={flag}))",
                    "except Exception as exc:",
                    f"    log(name, '{label} caught', describe(exc))"]
        if kind == "wait":
            when = r.choice(["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"])
            timeout = r.choice(["None", self.delay()])
            return [f"ts = [spawn({f1}({child} + 'a'), {child} + 'a'),",
                    f"      spawn({f2}({child} + 'b'), {child} + 'b')]",
                    f"done, pending = await asyncio.wait(ts, timeout={timeout}, "
                    f"return_when=asyncio.{when})",
                    f"log(name, '{label} done', names(done), 'pending', names(pending))"]
        if kind == "taskgroup":
            return ["try:",
                    "    async with TaskGroup() as tg:",
                    f"        tg.create_task({f1}({child} + 'a'), name={child} + 'a')",
                    f"        tg.create_task({f2}({child} + 'b'), name={child} + 'b')",
                    f"        log(name, '{label} in group')",
                    f"    log(name, '{label} group done')",
                    "except Exception as exc:",
                    f"    log(name, '{label} group failed', describe(exc))"]
        raise AssertionError(kind)


# ---------------------------------------------------------------------------
# Running a program
# ---------------------------------------------------------------------------

class VirtualClock:
    """loop.time() that moves one tick per loop iteration (see above)."""

    def __init__(self, loop):
        self.loop = loop
        self.now = 1000.0
        self.ticks = 0
        self.handle = None

    def time(self):
        return self.now

    def _tick(self):
        self.now += TICK
        self.ticks += 1
        if self.ticks > RUNAWAY_TICKS:
            self.loop.stop()
            return
        self.handle = self.loop.call_soon(self._tick)

    def start(self):
        self.handle = self.loop.call_soon(self._tick)

    def stop(self):
        self.handle.cancel()


def describe(value):
    """A deterministic text for a logged value (no ids, no addresses)."""
    if isinstance(value, BaseExceptionGroup):
        return f"{type(value).__name__}[{', '.join(describe(e) for e in value.exceptions)}]"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}({', '.join(describe(a) for a in value.args)})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return repr(value)


def task_name(task, none_is_default=False):
    """The name of a task, with default names (Task-<global counter>)
    reduced to Task-N: the counter runs on from one program to the next.
    none_is_default: count the name 'None' as a default one too (see
    asyncio_names_factory_tasks_none())."""
    if creation_order(task)[0] == 0 or (none_is_default and task.get_name() == "None"):
        return "Task-N"
    return task.get_name()


def creation_order(task):
    name = task.get_name()
    if name.startswith("Task-") and name[5:].isdigit():
        return (0, int(name[5:]), "")
    return (1, 0, name)


class OrderedTaskGroup(asyncio.TaskGroup):
    """asyncio.TaskGroup with its tasks in insertion order. TaskGroup keeps
    them in a set, so the order in which it cancels them (and they log it)
    follows their ids, which differ from run to run. The programs use this
    on both loops (pyasync runs asyncio.TaskGroup on its own tasks)."""

    def __init__(self):
        super().__init__()
        self._tasks = InsertionOrderedSet()


class InsertionOrderedSet:
    """What TaskGroup uses of its set, in insertion order."""

    def __init__(self):
        self._items = {}

    def add(self, item):
        self._items[item] = None

    def discard(self, item):
        self._items.pop(item, None)

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self):
        return len(self._items)


def reference_loop():
    """asyncio's loop with the selector closest to pyasync's poller. When
    several files are ready in one poll, their callbacks run in the order
    the selector reports them, which no API promises: epoll reports them in
    the order they became ready (asyncio's default selector and pyasync's
    epoll backend agree), poll() in the order of its array (CPython's poll
    object and pyasync's poll backend order a file closed and replaced
    under the same number differently). So under PYASYNC_POLLER=poll the
    reference is asyncio's PollSelector and the programs do no socket I/O
    (the generator leaves those snippets out); timers, tasks and the rest
    are still compared."""
    if POLL_BACKEND:
        return asyncio.SelectorEventLoop(selectors.PollSelector())
    return asyncio.new_event_loop()


def socketpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def recv_now(sock):
    try:
        return sock.recv(100)
    except BlockingIOError:
        return "nothing yet"
    except OSError as exc:
        return describe(exc)


class Shared:
    def __init__(self):
        self.lock = asyncio.Lock()
        self.event = asyncio.Event()
        self.queue = asyncio.Queue(maxsize=2)
        self.semaphore = asyncio.Semaphore(2)
        self.condition = asyncio.Condition()


def run_program(program, loop_kind, none_is_default_name=False):
    """Run program on a new loop of loop_kind; returns its trace."""
    loop = reference_loop() if loop_kind == "asyncio" else pyasync.new_event_loop()
    clock = VirtualClock(loop)
    loop.time = clock.time
    trace = []
    tasks = {}
    offsets = itertools.count(1)

    def log(*parts):
        trace.append(f"{clock.ticks}: " + " ".join(str(p) for p in parts))

    def d(ticks, fraction):
        # fraction steps of 1/512 tick; the unique offset stays below one.
        return ticks * TICK + fraction / 512 + next(offsets) / 2**32

    def cb(label):
        log("cb", label, "var", var.get())

    def boom(label):
        raise ValueError(label)

    def spawn(coro, tname):
        task = loop.create_task(coro, name=tname)
        tasks[tname] = task
        return task

    async def join(tname):
        task = tasks.get(tname)
        if task is None:
            log("join", tname, "no such task")
            return
        try:
            log("join", tname, describe(await task))
        except asyncio.CancelledError:
            if not task.cancelled() or asyncio.current_task().cancelling():
                raise
            log("join", tname, "was cancelled")
        except Exception as exc:
            log("join", tname, "raised", describe(exc))

    def cancel_task(tname, msg):
        task = tasks.get(tname)
        log("cancel", tname, "no such task" if task is None else task.cancel(msg))

    def names(task_set):
        return sorted(t.get_name() for t in task_set)

    def handler(lp, context):
        words = " ".join(context.get("message", "").split()[:3])
        log("handler", words, describe(context.get("exception")))

    class Logged(asyncio.Protocol):
        """Logs what its transport tells it."""

        def __init__(self, label):
            self.label = label

        def connection_made(self, transport):
            log(self.label, "made")

        def data_received(self, data):
            log(self.label, "data", data)

        def eof_received(self):
            log(self.label, "eof")

        def connection_lost(self, exc):
            log(self.label, "lost", describe(exc))

    var = contextvars.ContextVar("var", default="-")
    namespace = {"asyncio": asyncio, "loop": loop, "log": log, "d": d, "cb": cb,
                 "boom": boom, "spawn": spawn, "join": join, "cancel_task": cancel_task,
                 "names": names, "describe": describe, "var": var,
                 "task_name": lambda task: task_name(task, none_is_default_name),
                 "TaskGroup": OrderedTaskGroup, "socketpair": socketpair,
                 "recv_now": recv_now, "Logged": Logged, "SHUT_WR": socket.SHUT_WR}

    async def run_main():
        namespace["shared"] = Shared()
        try:
            async with asyncio.timeout(HORIZON_TICKS * TICK):
                log("main returned", await namespace["main"]("main"))
        except TimeoutError:
            log("horizon")
        except Exception as exc:
            log("main raised", describe(exc))
        except asyncio.CancelledError as exc:
            # A cancellation that escapes main (3.11's TaskGroup inside
            # asyncio.timeout() can leak one): part of the trace.
            log("main cancelled", describe(exc))
        for task in tasks.values():
            task.cancel()
        outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
        for tname, outcome in zip(tasks, outcomes):
            log("final", tname, describe(outcome))
        # Tasks the program made without spawn() (the children gather() and
        # wait_for() wrap coroutines in) can outlive main: cancel them too,
        # in the order they were made (their default names count up).
        for _ in range(10):
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if not others:
                break
            for task in sorted(others, key=creation_order):
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    exec(compile(program.source(), f"<seed {program.seed}>", "exec"), namespace)
    loop.set_exception_handler(handler)
    if program.eager:
        loop.set_task_factory(asyncio.eager_task_factory if loop_kind == "asyncio"
                              else pyasync.eager_task_factory)
    clock.start()
    try:
        loop.run_until_complete(run_main())
    except RuntimeError as exc:
        log("loop stopped", describe(exc))
    finally:
        clock.stop()
        for task in tasks.values():
            task.cancel()
        loop.close()
    return trace


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def differs(program):
    return first_difference(run_program(program, "asyncio"),
                            run_program(program, "pyasync")) is not None


def shrink(program, budget=400):
    """Remove snippets, one at a time, while the traces still differ."""
    changed = True
    while changed and budget > 0:
        changed = False
        for fname in list(program.functions):
            i = 0
            while i < len(program.functions[fname]) and budget > 0:
                budget -= 1
                smaller = program.without(fname, i)
                if differs(smaller):
                    program = smaller
                    changed = True
                else:
                    i += 1
    return program


def excerpt(trace, index, around=4):
    lines = []
    for i in range(max(0, index - around), min(len(trace), index + around + 1)):
        mark = ">>" if i == index else "  "
        lines.append(f"{mark} [{i}] {trace[i]}")
    return "\n".join(lines) or "   (trace ends)"


@functools.cache
def asyncio_names_factory_tasks_none():
    """CPython 3.13.0's create_task() calls set_name(None) after a task
    factory (gh-128308), so a task made through one without a name is
    named 'None'; pyasync does not copy the bug (docs/differences.md)."""
    if not HAS_EAGER_TASKS:
        return False
    loop = asyncio.new_event_loop()
    try:
        loop.set_task_factory(asyncio.eager_task_factory)

        async def nothing():
            pass
        return loop.create_task(nothing()).get_name() == "None"
    finally:
        loop.close()


def only_factory_names_differ(program):
    """True if the traces agree once a task named 'None' counts as one with
    a default name: the one difference that asyncio's gh-128308 explains."""
    return first_difference(run_program(program, "asyncio", none_is_default_name=True),
                            run_program(program, "pyasync", none_is_default_name=True)) is None


# With eager tasks, a TaskGroup that is already aborting refuses create_task()
# and leaves the coroutine unawaited (both loops, as asyncio 3.12/3.13 do).
@pytest.mark.filterwarnings("ignore:coroutine '.*' was never awaited:RuntimeWarning")
@pytest.mark.parametrize("seed", seeds_to_run())
def test_same_trace_on_both_loops(seed):
    program = Generator(seed).generate()
    reference = run_program(program, "asyncio")
    assert reference, "the program logged nothing"
    ours = run_program(program, "pyasync")
    index = first_difference(reference, ours)
    if index is None:
        return
    if program.eager and asyncio_names_factory_tasks_none() \
            and only_factory_names_differ(program):
        # Checked on this program's traces, not on a list of seeds: any
        # other difference still fails, and once either side changes (a
        # CPython without the bug, or a pyasync that copies it) there is no
        # difference left to excuse.
        pytest.xfail("asyncio of this CPython names a task made through a task factory "
                     "'None' (gh-128308); pyasync does not copy the bug")
    if first_difference(reference, run_program(program, "asyncio")) is not None:
        pytest.fail(f"seed {seed}: asyncio itself is not deterministic on this program; "
                    f"the test harness must be fixed\n{program.source()}")
    small = shrink(program)
    small_ref = run_program(small, "asyncio")
    small_ours = run_program(small, "pyasync")
    small_index = first_difference(small_ref, small_ours)
    pytest.fail(
        f"seed {seed}: traces differ at entry {index}\n"
        f"asyncio: {reference[index] if index < len(reference) else '(trace ended)'}\n"
        f"pyasync: {ours[index] if index < len(ours) else '(trace ended)'}\n"
        f"--- asyncio around it\n{excerpt(reference, index)}\n"
        f"--- pyasync around it\n{excerpt(ours, index)}\n"
        f"--- program\n{program.source()}\n"
        f"--- shrunk program ({small.snippet_count()} snippets), "
        f"differs at entry {small_index}\n{small.source()}\n"
        f"--- its asyncio trace\n" + "\n".join(small_ref) +
        "\n--- its pyasync trace\n" + "\n".join(small_ours))
