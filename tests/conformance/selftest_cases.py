"""Synthetic tests for checking the runner itself (run.py --selftest).

One test per kind of outcome the runner must tell apart, including a test
that hangs (ended by the per-test timeout) and one that kills its process
(as a crash of the C extension would); the worker is restarted after each
and the remaining tests still run. Not part of the conformance table.
"""
import asyncio
import ctypes
import time
import unittest

from . import exclusions, harness

MODULE = "_selftest"

# outcome each test must get from the runner
EXPECTED = {
    "_selftest.SelfTest.test_a_pass": "pass",
    "_selftest.SelfTest.test_b_fail": "fail",
    "_selftest.SelfTest.test_c_error": "error",
    "_selftest.SelfTest.test_d_hang": "error",       # per-test timeout
    "_selftest.SelfTest.test_e_pass_after_hang": "pass",
    "_selftest.SelfTest.test_f_crash": "error",      # worker killed by SIGSEGV
    "_selftest.SelfTest.test_g_pass_after_crash": "pass",
    "_selftest.SelfTest.test_h_xfail": "xfail",
    "_selftest.SelfTest.test_i_xpass": "xpass",
    "_selftest.SelfTest.test_j_excluded": "excluded",
    "_selftest.SelfTest.test_k_skip": "skip",
}


class SelfTest(unittest.TestCase):
    def run_on_loop(self, coro):
        loop = harness.new_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()

    def test_a_pass(self):
        self.assertEqual(self.run_on_loop(asyncio.sleep(0, 42)), 42)

    def test_b_fail(self):
        self.assertEqual(self.run_on_loop(asyncio.sleep(0, 1)), 2)

    def test_c_error(self):
        async def boom():
            raise ZeroDivisionError
        self.run_on_loop(boom())

    def test_d_hang(self):
        time.sleep(3600)

    def test_e_pass_after_hang(self):
        self.run_on_loop(asyncio.sleep(0))

    def test_f_crash(self):
        ctypes.string_at(0)  # SIGSEGV

    def test_g_pass_after_crash(self):
        self.run_on_loop(asyncio.sleep(0))

    def test_h_xfail(self):
        self.fail("expected")

    def test_i_xpass(self):
        self.run_on_loop(asyncio.sleep(0))

    def test_j_excluded(self):
        self.fail("must not run")

    def test_k_skip(self):
        self.skipTest("skipped by the test itself")


def build():
    exclusions.EXPECTED_FAILURES_COMMON.update({
        "_selftest.SelfTest.test_h_xfail": "selftest",
        "_selftest.SelfTest.test_i_xpass": "selftest",
    })
    exclusions.EXCLUDED_COMMON["_selftest.SelfTest.test_j_excluded"] = "selftest"
    return [SelfTest]
