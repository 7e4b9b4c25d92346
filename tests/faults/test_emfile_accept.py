"""Out of file descriptors while accepting. In a child process (so that the
limit cannot hurt anything else) the soft RLIMIT_NOFILE is lowered until
only a few descriptors are free, and more clients connect than can be
accepted. accept() then fails with EMFILE: the loop must report it to the
exception handler, pause accepting (a listening socket that stays readable
would otherwise spin the loop), go on serving the connections it has, and
resume once descriptors are free again, as asyncio does."""
import errno
import json
import subprocess

from ._support import TESTS_DIR, child_command, new_loop_source

CHILD = new_loop_source() + r'''
import errno, json, os, resource, socket

N_CLIENTS = 24
FREE_FDS = 5

loop = new_loop()
reports = []
loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
accepted = []


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        accepted.append(self)

    def data_received(self, data):
        self.transport.write(data)


def highest_open_fd():
    # Not counting the descriptor that listdir() itself had open.
    def is_open(fd):
        try:
            os.fstat(fd)
            return True
        except OSError:
            return False
    return max(fd for fd in map(int, os.listdir("/proc/self/fd")) if is_open(fd))


async def ping(sock, payload):
    await loop.sock_sendall(sock, payload)
    got = b""
    while len(got) < len(payload):
        data = await loop.sock_recv(sock, 1024)
        if not data:
            break
        got += data
    return got == payload


async def wait_for_count(n, seconds):
    deadline = loop.time() + seconds
    while len(accepted) < n and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def main():
    result = {}
    server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=128)
    addr = server.sockets[0].getsockname()
    clients = [socket.socket() for _ in range(N_CLIENTS)]
    # Ballast fills every free descriptor number up to the last one; with
    # the soft limit just above it, no new descriptor can be made until
    # ballast is closed.
    ballast = [os.open(os.devnull, os.O_RDONLY) for _ in range(N_CLIENTS + 16)]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest_open_fd() + 1, hard))
    try:
        socket.socket().close()
        result["limit_works"] = False
    except OSError as exc:
        result["limit_works"] = exc.errno == errno.EMFILE
    for _ in range(FREE_FDS):
        os.close(ballast.pop())
    # FREE_FDS descriptors are free: the connections queue in the backlog and
    # the server accepts until accept() fails.
    for c in clients:
        c.connect(addr)
        c.setblocking(False)
    deadline = loop.time() + 10
    while not reports and loop.time() < deadline:
        await asyncio.sleep(0.01)
    result["accepted_at_emfile"] = len(accepted)
    # Paused: no further attempt (no report) during the next 0.3 s. A loop
    # that kept polling the readable listening socket would fail again at
    # every iteration.
    first_batch = len(reports)
    await asyncio.sleep(0.3)
    result["reports_in_first_batch"] = first_batch
    result["reports_during_pause"] = len(reports) - first_batch
    # The connections already accepted are served while accepting pauses.
    served = [await ping(clients[i], b"before %d" % i) for i in range(len(accepted))]
    result["served_during_pause"] = all(served) and len(served) > 0
    result["serving_during_pause"] = server.is_serving()

    # Free descriptors: the server resumes and takes every waiting client.
    for fd in ballast:
        os.close(fd)
    ballast.clear()
    await wait_for_count(N_CLIENTS, 10)
    result["accepted_after_free"] = len(accepted)
    result["all_echo"] = all([await ping(c, b"after %d" % i) for i, c in enumerate(clients)])
    fresh = socket.socket()
    fresh.setblocking(False)
    await loop.sock_connect(fresh, addr)
    await wait_for_count(N_CLIENTS + 1, 10)
    result["fresh_echo"] = await ping(fresh, b"fresh")
    result["serving"] = server.is_serving()
    result["reports"] = [
        {"message": ctx.get("message"),
         "errno": getattr(ctx.get("exception"), "errno", None),
         "has_socket": ctx.get("socket") is not None}
        for ctx in reports]
    for c in clients + [fresh]:
        c.close()
    for p in accepted:
        p.transport.close()
    server.close()
    await server.wait_closed()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return result


try:
    print(json.dumps(loop.run_until_complete(asyncio.wait_for(main(), 40))))
finally:
    loop.close()
'''


def test_server_survives_emfile_and_resumes(loop_kind):
    proc = subprocess.run(child_command(CHILD, loop_kind), capture_output=True, text=True,
                          timeout=90, cwd=TESTS_DIR)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["limit_works"], "the child could not exhaust its descriptors"
    # Some were accepted before the descriptors ran out, not all.
    assert 0 < result["accepted_at_emfile"] < 24, result
    assert result["served_during_pause"] and result["serving_during_pause"], result
    assert result["accepted_after_free"] == 24, result
    assert result["all_echo"] and result["fresh_echo"] and result["serving"], result
    reports = result["reports"]
    assert reports, "EMFILE was not reported to the exception handler"
    for report in reports:
        assert report == {"message": "socket.accept() out of system resource",
                          "errno": errno.EMFILE, "has_socket": True}, reports
    assert result["reports_during_pause"] == 0, "accepting did not pause after EMFILE"
