"""TLS servers: echo throughput and full handshakes on asyncio, uvloop and pyasync.

    python bench/tlsbench.py [--rounds N] [--loops asyncio,uvloop,pyasync]
                             [--only echo16k,echo64k,handshake]
                             [--duration S] [--warmup S] [--json FILE]

Every loop kind runs bench/echo_server.py (an asyncio.Protocol echo server,
loop.create_server(ssl=...)) with a self-signed P-256 certificate, in a
fresh process per sample, and Python client processes load it:

  echo16k, echo64k  4 TLS connections, each sending a message of 16 KiB or
                    64 KiB and reading the echo before the next; the rate is
                    MB/s (echoed bytes), the cost server CPU µs per MB, and
                    the client reports the p99 and worst latency of one
                    message (a stall shows there)
  handshake         2 client processes each opening TLS connections one
                    after the other (a full handshake: no session resumed),
                    closing each at once; the rate is handshakes/s, the cost
                    server CPU µs per handshake

The server runs on the first CPU and the clients on the second. Each round
runs every workload once, the loop kinds in turn; the report gives medians
over the rounds and pyasync's ratios ([min-max] of the per-round ratios).
Needs the openssl command (for the certificate). See bench/README.md.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from run import _csv, child_env  # bench/ is sys.path[0] when run as a script
from echo import (_exit_status, _free_tcp_port, _proc_cpu_seconds, _raise_interrupt, _table,
                  _tail, _wait_ready, spawn, stop, stop_all)
from httpbench import median_cells
import workloads

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
ECHO_SERVER = os.path.join(BENCH_DIR, "echo_server.py")
WORKLOADS = {"echo16k": 16 * 1024, "echo64k": 64 * 1024, "handshake": 0}
SUBJECT = "pyasync"

log = lambda *a, **k: print(*a, file=sys.stderr, flush=True, **k)  # noqa: E731

# One client process: echo messages of SIZE (or, SIZE 0, make handshakes)
# from START to END (time.time()), counting only what completes in
# [MEASURE, END]; prints a JSON line.
CLIENT = r'''
import json, socket, ssl, sys, time
host, port, size, start, measure, end = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                         float(sys.argv[4]), float(sys.argv[5]),
                                         float(sys.argv[6]))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
while time.time() < start:
    time.sleep(0.001)
done, lat = 0, []
if size == 0:
    while True:
        now = time.time()
        if now >= end:
            break
        with socket.create_connection((host, port)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                pass
        if now >= measure:
            done += 1
else:
    msg = b"x" * size
    raw = socket.create_connection((host, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    buf = bytearray(size)
    view = memoryview(buf)
    while True:
        t0 = time.time()
        if t0 >= end:
            break
        s.sendall(msg)
        got = 0
        while got < size:
            n = s.recv_into(view[got:])
            if not n:
                raise SystemExit("server closed the connection")
            got += n
        if t0 >= measure:
            done += 1
            lat.append(time.time() - t0)
    s.close()
lat.sort()
print(json.dumps({"done": done,
                  "p99_us": lat[int(len(lat) * 0.99)] * 1e6 if lat else None,
                  "max_us": lat[-1] * 1e6 if lat else None}))
'''


class SampleError(Exception):
    pass


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def run_sample(kind, workload, args, env, tls, tmpdir, seq):
    server_cpu, client_cpu = args.cpus[0], args.cpus[1]
    port = _free_tcp_port("127.0.0.1")
    cmd = [sys.executable, ECHO_SERVER, "--loop", kind, "--style", "protocol", "--transport",
           "tcp", "--addr", "127.0.0.1:%d" % port, "--tls", tls]
    server = None
    clients = []
    with open(os.path.join(tmpdir, "server%d.err" % seq), "w+") as err_file:
        try:
            server = spawn(cmd, cpu=server_cpu, stdout=subprocess.PIPE, stderr=err_file,
                           stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
            if _wait_ready(server, 20.0) != "ready":
                err_file.seek(0)
                raise SampleError("server not ready (%s):\n%s"
                                  % (_exit_status(server.poll()), _tail(err_file.read())))
            size = WORKLOADS[workload]
            nclients = args.connections if size else args.handshake_procs
            start = time.time() + 0.5  # every client started and waiting
            measure, end = start + args.warmup, start + args.warmup + args.duration
            for _ in range(nclients):
                clients.append(spawn([sys.executable, "-c", CLIENT, "127.0.0.1", str(port),
                                      str(size), repr(start), repr(measure), repr(end)],
                                     cpu=client_cpu, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True))
            time.sleep(max(0.0, measure - time.time()))
            cpu0 = _proc_cpu_seconds(server.pid)
            time.sleep(max(0.0, end - time.time()))
            cpu1 = _proc_cpu_seconds(server.pid)
            results = []
            for c in clients:
                out, cerr = c.communicate(timeout=30)
                if c.returncode != 0:
                    raise SampleError("client failed: %s" % _tail(cerr))
                results.append(json.loads(out.strip().splitlines()[-1]))
            if cpu0 is None or cpu1 is None or server.poll() is not None:
                err_file.seek(0)
                raise SampleError("server died: %s" % _tail(err_file.read()))
            done = sum(r["done"] for r in results)
            if done == 0:
                raise SampleError("nothing completed")
            per = 2 * size / 1e6 if size else 1  # MB echoed (both ways) or one handshake
            result = {"rate": done * per / args.duration,
                      "cpu_us": (cpu1 - cpu0) / (done * per) * 1e6}
            if size:
                result["p99_us"] = max(r["p99_us"] for r in results)
                result["max_us"] = max(r["max_us"] for r in results)
            return result
        finally:
            for c in clients:
                stop(c, grace=1.0)
            stop(server, grace=2.0)


def report(workloads_run, kinds, samples, failures):
    others = [k for k in ("uvloop", "asyncio") if k in kinds and k != SUBJECT] \
        if SUBJECT in kinds else []
    tables = (("rate: MB/s echoed (both ways) or handshakes/s, median over the rounds",
               "rate", "%.1f"),
              ("server CPU in microseconds per MB or per handshake (median); pyasync/X below "
               "1 means pyasync pays less", "cpu_us", "%.1f"),
              ("echo latency of one message, p99 / worst in microseconds (median over the "
               "rounds)", None, None))
    for title, field, fmt in tables:
        print()
        print(title)
        head = ["workload"] + kinds + (["%s/%s" % (SUBJECT, o) for o in others]
                                       if field else [])
        rows = []
        for w in workloads_run:
            per_round = samples.get(w, [])
            row = [w]
            if field is None:
                if not WORKLOADS[w]:
                    continue
                for k in kinds:
                    p99 = [r[k]["p99_us"] for r in per_round if k in r]
                    worst = [r[k]["max_us"] for r in per_round if k in r]
                    row.append("%.0f / %.0f" % (statistics.median(p99), statistics.median(worst))
                               if p99 else "failed")
            else:
                row += median_cells(per_round, kinds, field, fmt, others)
            rows.append(row)
        print("\n".join(_table(head, rows, left=1)))
    if failures:
        print()
        print("FAILURES")
        for (w, k), text in failures.items():
            print("  %s %s: %s" % (w, k, text))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", default=",".join(workloads.LOOP_KINDS))
    parser.add_argument("--only", help="workloads among %s" % ", ".join(WORKLOADS))
    parser.add_argument("--connections", type=int, default=4, help="echo connections")
    parser.add_argument("--handshake-procs", type=int, default=2,
                        help="client processes making handshakes")
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load first")
    parser.add_argument("--json", metavar="FILE", help="also write the raw samples here")
    args = parser.parse_args(argv)
    args.loops = _csv(args.loops)
    if any(k not in workloads.LOOP_KINDS for k in args.loops):
        parser.error("--loops: among %s" % ", ".join(workloads.LOOP_KINDS))
    args.workloads = _csv(args.only) if args.only else list(WORKLOADS)
    if any(w not in WORKLOADS for w in args.workloads):
        parser.error("--only: among %s" % ", ".join(WORKLOADS))
    args.cpus = sorted(os.sched_getaffinity(0))
    if len(args.cpus) < 2:
        parser.error("needs 2 CPUs: one for the server, one for the clients")
    if shutil.which("openssl") is None:
        parser.error("the openssl command is needed to make the certificate")
    return args


def main(argv=None):
    args = parse_args(argv)
    env = child_env()
    samples = {w: [] for w in args.workloads}
    failures = {}
    tmpdir = tempfile.mkdtemp(prefix="pyasync-tls-")
    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    seq = 0
    try:
        tls = "%s:%s" % make_certificate(tmpdir)
        for rnd in range(1, args.rounds + 1):
            log("round %d/%d:" % (rnd, args.rounds), end="")
            for w in args.workloads:
                log(" " + w, end="")
                results = {}
                for kind in args.loops:
                    if (w, kind) in failures:
                        continue
                    seq += 1
                    try:
                        results[kind] = run_sample(kind, w, args, env, tls, tmpdir, seq)
                    except (SampleError, subprocess.TimeoutExpired, ValueError) as exc:
                        failures[(w, kind)] = str(exc)
                samples[w].append(results)
            log("")
    except KeyboardInterrupt:
        log("\ninterrupted: reporting the rounds done")
    finally:
        stop_all()
        for s, h in old.items():
            signal.signal(s, h)
        shutil.rmtree(tmpdir, ignore_errors=True)
    print("TLS servers (asyncio.Protocol echo, loop.create_server(ssl=...)), %gs measured "
          "after %gs of load, %d rounds; %s" % (args.duration, args.warmup, args.rounds,
                                                 time.strftime("%Y-%m-%d %H:%M")))
    report(args.workloads, args.loops, samples, failures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "cpus"},
                       "samples": samples}, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
