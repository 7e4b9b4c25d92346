"""CPython's own test_taskgroups, run with pyasync.TaskGroup in place of
asyncio.TaskGroup and on pyasync's loop (the conformance runner covers
asyncio.TaskGroup on pyasync's loop; this covers our C TaskGroup)."""
import asyncio
import io
import unittest
from asyncio import taskgroups

import pytest

import pyasync

test_taskgroups = pytest.importorskip("test.test_asyncio.test_taskgroups")


def test_cpython_taskgroup_suite_on_pyasync_taskgroup(monkeypatch):
    groups = []

    class CountingTaskGroup(pyasync.TaskGroup):
        def __init__(self):
            super().__init__()
            groups.append(self)
    monkeypatch.setattr(asyncio, "TaskGroup", CountingTaskGroup)
    monkeypatch.setattr(taskgroups, "TaskGroup", CountingTaskGroup)
    created = []
    real_new_event_loop = pyasync.new_event_loop

    def counting_factory():
        loop = real_new_event_loop()
        created.append(loop)
        return loop
    # IsolatedAsyncioTestCase makes its loop through the policy.
    policy = pyasync.EventLoopPolicy()
    monkeypatch.setattr(policy, "_loop_factory", counting_factory)
    old_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    try:
        suite = unittest.TestLoader().loadTestsFromModule(test_taskgroups)
        stream = io.StringIO()
        result = unittest.TextTestRunner(stream=stream, verbosity=0).run(suite)
    finally:
        asyncio.set_event_loop_policy(old_policy)
    assert result.testsRun >= 30
    assert result.wasSuccessful(), stream.getvalue()[-4000:]
    assert len(groups) >= 30, "the suite did not use pyasync.TaskGroup"
    assert created, "the suite did not run on pyasync loops"
    assert all(isinstance(lp, pyasync.Loop) for lp in created)
