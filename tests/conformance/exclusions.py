"""Tests the conformance runner does not hold pyasync to, with the reason.

Keys are "MODULE.CLASS.METHOD" (e.g. "test_events.PyasyncEventLoopTests.
test_add_fds_after_closing"); a key may use fnmatch wildcards (* ? [..]),
which match whole ids only.

EXCLUDED: tests that check the standard library's internals rather than
    loop behaviour (private attributes of BaseEventLoop or the selector
    loop, mocked selectors, stdlib class identity ...). They are skipped
    with the reason "excluded: ..." and reported in their own column.
    They apply to every --impl.

EXPECTED_FAILURES: tests that fail on pyasync, with a reason of one of
    three kinds:
      "later issue: ..."  the feature is not implemented yet;
      "DIFFERENCE (...)"  a deliberate difference listed in
                          docs/differences.md;
      "BUG: ..."          a known pyasync bug, reported, not yet fixed.
    They run as unittest expected failures, so one that starts passing shows
    up as an "unexpected success" and fails the run: remove it from the list.
    They apply to --impl pyasync only.

Each dict has a part common to all versions and parts per Python version
("3.11", "3.12", "3.13") and per pyasync poller ("epoll", "poll"); the
expected failures also have parts per asyncio debug mode ("on": the
PYTHONASYNCIODEBUG=1 or -X dev runs, "off"), for pyasync paths that debug
mode turns off.
"""
import fnmatch

# ---------------------------------------------------------------- reasons

# ---------------------------------------------------------------- excluded

EXCLUDED_COMMON = {
    "test_events.PyasyncEventLoopTests.test_create_server_multiple_hosts_ipv4":
        "mocks asyncio.base_events.socket, a module global of the stdlib loop; "
        "pyasync's create_server() lives in pyasync._network",
    "test_events.PyasyncEventLoopTests.test_create_server_multiple_hosts_ipv6":
        "mocks asyncio.base_events.socket, a module global of the stdlib loop; "
        "pyasync's create_server() lives in pyasync._network",
    "test_unix_events.PyasyncUnixSocketTests.test_create_unix_server_bind_error":
        "mocks asyncio.unix_events.socket, a module global of the stdlib loop; "
        "pyasync's create_unix_server() lives in pyasync._network (a real bind "
        "error: tests/test_net_server.py)",
    "test_events.PyasyncEventLoopTests.test_timeout_rounding":
        "counts loop iterations by replacing BaseEventLoop._run_once(); "
        "pyasync's iteration is C code with no _run_once() to hook",
    "test_events.PyasyncTimerTests.test_timer":
        "asserts the identity of the private _args tuple (h._args is args); "
        "pyasync stores the arguments inline in the C handle and builds a "
        "new, equal tuple on access (the rest of the test was checked by "
        "hand: _callback, cancel() clearing _callback/_args)",
}

# test_base_events' create_*() tests that replace the socket module of the
# stdlib loop (its @patch_socket patches asyncio.base_events.socket): on
# pyasync they reach the real socket module, so they fail or connect for real.
EXCLUDED_COMMON.update({
    f"test_base_events.PyasyncEventLoopWithSocketsTests.{name}":
        "mocks asyncio.base_events.socket, a module global of the stdlib loop; "
        "pyasync's create_connection/create_server/create_datagram_endpoint and "
        "sock_connect live in pyasync._network and C"
    for name in (
        "test_create_connection_bluetooth", "test_create_connection_ip_addr",
        "test_create_connection_ipv6_scope", "test_create_connection_multiple_errors",
        "test_create_connection_multiple_errors_local_addr",
        "test_create_connection_no_inet_pton", "test_create_connection_service_name",
        "test_create_connection_timeout", "test_create_datagram_endpoint_cant_bind",
        "test_create_datagram_endpoint_ip_addr", "test_create_datagram_endpoint_no_addrinfo",
        "test_create_datagram_endpoint_nosoreuseport",
        "test_create_datagram_endpoint_setblk_err",
        "test_create_datagram_endpoint_socket_err", "test_create_server_cant_bind",
        "test_create_server_nosoreuseport", "test_create_server_soreuseport_only_defined",
    )
})
EXCLUDED_COMMON.update({
    "test_base_events.PyasyncEventLoopWithSocketsTests.test_accept_connection_exception":
        "calls BaseSelectorEventLoop._accept_connection() with a mock socket; "
        "pyasync accepts in C (csrc/accept.c; EMFILE and errors: tests/test_accept.py)",
    "test_base_events.PyasyncEventLoopWithSocketsTests.test_accept_connection_retry":
        "calls BaseSelectorEventLoop._accept_connection() with a mock socket; "
        "pyasync accepts in C (csrc/accept.c; EMFILE and errors: tests/test_accept.py)",
    "test_base_events.PyasyncEventLoopWithSocketsTests.test_log_slow_callbacks":
        "patches asyncio.base_events.logger; pyasync's C loop warns of slow "
        "callbacks through the 'asyncio' logger it was given at import, which "
        "that patch does not replace (the same warnings: tests/test_callbacks.py)",
})


# test_tasks' BaseTaskTests variants on pyasync's loop (class names ending
# in "Tests"; the "_OnTestLoop" variants run these on test_utils.TestLoop).
_TASK_VARIANTS = ("PyasyncTask_PyasyncFuture_Tests",
                  "PyasyncTask_PyasyncFuture_SubclassTests",
                  "PyasyncTask_CFuture_Tests", "CTask_PyasyncFuture_Tests")

EXCLUDED_COMMON.update({
    f"test_tasks.{cls}.test_log_destroyed_pending_task":
        "drives the loop one iteration with BaseEventLoop._run_once() and "
        "checks len(loop._ready): stdlib loop internals a pyasync loop does "
        "not have (docs/differences.md); runs in the _OnTestLoop variant"
    for cls in _TASK_VARIANTS
})

EXCLUDED_BY_VERSION = {
    "3.11": {},
    "3.12": {},
    "3.13": {
        "test_runners.RunTests.test_loop_factory_default_event_loop":
            "runs asyncio.run(loop_factory=asyncio.EventLoop) and checks the "
            "loop is the stdlib SelectorEventLoop: tests the stdlib class, "
            "never touches pyasync",
    },
}

EXCLUDED_BY_POLLER = {
    "epoll": {},
    "poll": {},
}

# ---------------------------------------------------------------- expected failures

EXPECTED_FAILURES_COMMON = {
    # TCP: create_connection/create_server/connect_accepted_socket
    # TLS over TCP
    # Unix sockets
    # TLS over Unix sockets
    # UDP
    # documented differences
}

EXPECTED_FAILURES_BY_VERSION = {
    "3.11": {},
    "3.12": {
    },
    "3.13": {},
}

EXPECTED_FAILURES_BY_POLLER = {
    "epoll": {},
    "poll": {},
}

# by asyncio debug mode (PYTHONASYNCIODEBUG=1, -X dev): "on" or "off"
EXPECTED_FAILURES_BY_DEBUG = {
    "on": {},
    "off": {},
}


# ---------------------------------------------------------------- lookup

class Table:
    """A merged {key-or-pattern: reason} with whole-id matching."""

    def __init__(self, entries):
        self.entries = dict(entries)
        self.exact = {k: v for k, v in self.entries.items()
                      if not any(c in k for c in "*?[")}
        self.patterns = [(k, v) for k, v in self.entries.items()
                         if k not in self.exact]
        self.used = set()

    def lookup(self, test_id):
        if test_id in self.exact:
            self.used.add(test_id)
            return self.exact[test_id]
        for pat, reason in self.patterns:
            if fnmatch.fnmatchcase(test_id, pat):
                self.used.add(pat)
                return reason
        return None

    def unused(self, module=None):
        """Keys that matched no test (of `module`, if given)."""
        keys = [k for k in self.entries if k not in self.used]
        if module is not None:
            keys = [k for k in keys if k.split(".", 1)[0] == module]
        return keys


def _merge(common, by_version, by_poller, version, poller, by_debug=None,
           debug=None):
    out = dict(common)
    out.update(by_version.get(version, {}))
    if poller:
        out.update(by_poller.get(poller, {}))
    if by_debug and debug is not None:
        out.update(by_debug.get("on" if debug else "off", {}))
    return out


def excluded(version, poller=None):
    return Table(_merge(EXCLUDED_COMMON, EXCLUDED_BY_VERSION,
                        EXCLUDED_BY_POLLER, version, poller))


def expected_failures(version, poller=None, debug=None):
    return Table(_merge(EXPECTED_FAILURES_COMMON, EXPECTED_FAILURES_BY_VERSION,
                        EXPECTED_FAILURES_BY_POLLER, version, poller,
                        EXPECTED_FAILURES_BY_DEBUG, debug))
