"""Echo servers: requests/s and latency of asyncio, uvloop and pyasync against C.

    python bench/echo.py [--rounds N] [--loops asyncio,uvloop,pyasync]
                         [--only tcp,unix,protocol,streams,sock,streams256k,exactly,1k,...]
                         [--sizes 1k,10k,100k] [--connections C] [--duration S]
                         [--warmup S] [--client-procs P] [--no-c]
                         [--pin same|split|none] [--subject KIND] [--json FILE] [--quick]
                         [--churn]

For each transport (tcp, unix), message size and server style (protocol,
streams, sock; streams256k and exactly when asked for), every loop kind serves echo requests from bench/echo_client
(C, epoll) in a fresh `python bench/echo_server.py` process; a C epoll server
(bench/echo_c_server, "c-epoll") gives the machine's limit once per transport
and size. Each round runs every configuration once, alternating the loop
kinds, and the report gives medians over the rounds and pyasync's ratios
(per-round [min-max], as in bench/run.py). It also gives what the server
pays per request: its CPU time (user + system, from /proc) divided by the
requests served. With --churn every request comes on a new connection
(connect, one echo, close: connection churn, 64 connections of 64 bytes
unless told otherwise), so that figure is the cost of a connection's life.
See bench/README.md, "Echo servers".
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from run import _csv, _git_revision, child_env  # bench/ is sys.path[0] when run as a script
import workloads

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
ECHO_SERVER = os.path.join(BENCH_DIR, "echo_server.py")
C_SOURCES = ("echo_c_server", "echo_client")
DEFAULT_BUILD_DIR = os.path.join(BENCH_DIR, ".build")
CFLAGS = ["-O2", "-Wall", "-Wextra"]

TRANSPORTS = ("tcp", "unix")
STYLES = ("protocol", "streams", "sock", "streams256k", "exactly")
DEFAULT_STYLES = ("protocol", "streams", "sock")  # the others when asked for
DEFAULT_SIZES = "1k,10k,100k"
C_KIND = "c-epoll"
OPTIONAL_LOOPS = {"uvloop"}
SUBJECT = "pyasync"                 # default --subject: the loop the ratios are about
RATIO_ORDER = ("uvloop", "asyncio", "pyasync")  # order of the "subject/X" columns
NOISY_SPREAD = 0.25      # median (max-min)/median of rps above which the report warns
CLIENT_BUSY = 0.90       # client CPU per client process above which it may be the limit
UNFAIR = 0.5             # fewest/most requests per connection below which the report warns

log = lambda *a, **k: print(*a, file=sys.stderr, flush=True, **k)  # noqa: E731


# --------------------------------------------------------------------------
# Building the C programs
# --------------------------------------------------------------------------

def build_c(build_dir, names=C_SOURCES):
    """Compile the C programs `names` (bench/NAME.c; by default echo_c_server
    and echo_client) into build_dir if missing or stale.

    Returns {name: executable path}. A binary is stale when its source is
    newer. Compiler warnings are shown: the sources are meant to be
    warning-free with -Wall -Wextra.
    """
    cc = os.environ.get("CC", "gcc")
    os.makedirs(build_dir, exist_ok=True)
    exes = {}
    for name in names:
        src = os.path.join(BENCH_DIR, name + ".c")
        exe = os.path.join(build_dir, name)
        if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
            tmp = "%s.%d.tmp" % (exe, os.getpid())
            cmd = [cc] + CFLAGS + ["-o", tmp, src]
            log("building %s: %s" % (name, " ".join(cmd)))
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.SubprocessError) as exc:
                raise SystemExit("cannot run %s: %s" % (cc, exc))
            if proc.returncode != 0:
                raise SystemExit("building %s failed:\n%s" % (name, proc.stderr))
            if proc.stderr.strip():
                log(proc.stderr.rstrip())
            os.replace(tmp, exe)
        exes[name] = exe
    return exes


# --------------------------------------------------------------------------
# Child processes: own process group, die with us, killed on every exit path
# --------------------------------------------------------------------------

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not glibc/Linux
    _libc = None
PR_SET_PDEATHSIG = 1
LIVE = set()  # Popen objects not yet reaped


def _preexec(cpu):
    def setup():
        # start_new_session already made the child its own process group, so
        # terminal signals and our killpg() reach it and its children. If
        # this driver dies without cleaning up (SIGKILL), the kernel sends
        # the child SIGKILL: no orphan servers.
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


def spawn(cmd, cpu=None, **kwargs):
    proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_preexec(cpu), **kwargs)
    LIVE.add(proc)
    return proc


def stop(proc, grace=3.0):
    """SIGTERM the process group, SIGKILL it after `grace` seconds, reap."""
    if proc is None:
        return
    if proc.returncode is None:  # not reaped, so the group id is still ours
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            f.close()
    LIVE.discard(proc)


def stop_all():
    for proc in list(LIVE):
        stop(proc, grace=1.0)


def _raise_interrupt(signo, frame):
    raise KeyboardInterrupt("signal %d" % signo)


def _exit_status(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


def _idlest_cpu(allowed, interval=0.1):
    """The CPU among `allowed` with the most idle time over `interval` seconds.

    Used by --pin same: a CPU fixed in advance may be the one another tenant
    of a shared machine is busy on.
    """
    def idle():
        out = {}
        try:
            with open("/proc/stat") as f:
                for line in f:
                    name, *fields = line.split()
                    if name.startswith("cpu") and name[3:].isdigit():
                        out[int(name[3:])] = int(fields[3]) + int(fields[4])  # idle + iowait
        except OSError:
            pass
        return out
    before = idle()
    time.sleep(interval)
    after = idle()
    scores = {cpu: after.get(cpu, 0) - before.get(cpu, 0) for cpu in allowed}
    return max(sorted(scores), key=lambda cpu: scores[cpu])


def _proc_cpu_seconds(pid):
    """user + system CPU seconds of a process, from /proc (None if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(text, lines=8):
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept)


def _error_summary(stderr_text):
    """One line for a traceback: its last line, plus the function that raised
    when the exception carries no message (e.g. a bare NotImplementedError)."""
    lines = [line.rstrip() for line in stderr_text.strip().splitlines() if line.strip()]
    if not lines:
        return "no error output"
    last = lines[-1].strip()
    if ":" not in last:
        for line in reversed(lines):
            s = line.strip()
            if s.startswith("File ") and ", in " in s:
                last += " (in %s)" % s.rsplit(", in ", 1)[1]
                break
    return last


# --------------------------------------------------------------------------
# One sample: a fresh server, one client run
# --------------------------------------------------------------------------

class SampleError(Exception):
    def __init__(self, phase, summary, detail=""):
        super().__init__(summary)
        self.phase = phase      # "start": the server never became ready; "run": later
        self.summary = summary  # one line for the table's note
        self.detail = detail    # stderr tails for the FAILURES section


def _free_tcp_port(host):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_ready(proc, timeout):
    """Read the server's stdout until a READY line: "ready", "exited" or "timeout"."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            return "exited"  # EOF on stdout
        buf += chunk
        if any(line.strip() == b"READY" for line in buf.split(b"\n")[:-1]):
            return "ready"
    return "timeout"


def run_sample(kind, style, transport, size, args, exes, tmpdir, env, seq):
    """Run one server + client pair; return the client's result dict.

    Raises SampleError if the server does not start, dies, or the client
    reports an error (wrong echo, stall, closed connection, no requests).
    """
    if args.pin == "same":
        server_cpu = client_cpu = _idlest_cpu(args.cpus)
    elif args.pin == "split":
        server_cpu, client_cpu = args.cpus[0], args.cpus[1]
    else:
        server_cpu = client_cpu = None
    for attempt in range(3):
        if transport == "tcp":
            host = args.host
            addr = "%s:%d" % ("[%s]" % host if ":" in host else host, _free_tcp_port(host))
        else:
            addr = os.path.join(tmpdir, "s%d.sock" % seq)
        if kind == C_KIND:
            cmd = [exes["echo_c_server"], "--transport", transport, "--addr", addr]
        else:
            cmd = [sys.executable, ECHO_SERVER, "--loop", kind, "--style", style,
                   "--transport", transport, "--addr", addr, "--size", str(size)]
        err_path = os.path.join(tmpdir, "server%d.err" % seq)
        server = client = None
        with open(err_path, "w+") as err_file:
            try:
                server = spawn(cmd, cpu=server_cpu, stdout=subprocess.PIPE,
                               stderr=err_file, stdin=subprocess.DEVNULL, env=env, cwd=REPO_ROOT)
                state = _wait_ready(server, args.start_timeout)
                if state != "ready":
                    stop(server, grace=0.5)
                    err_file.seek(0)
                    text = err_file.read()
                    if "Address already in use" in text and transport == "tcp" and attempt < 2:
                        continue  # lost the race for the free port: try another
                    how = _exit_status(server.returncode) if state == "exited" else \
                        "not READY within %gs" % args.start_timeout
                    summary = _error_summary(text) if text.strip() else how
                    raise SampleError("start", summary,
                                      "\n".join(filter(None, ["    " + how, _tail(text, 5)])))

                cpu0, t0 = _proc_cpu_seconds(server.pid), time.monotonic()
                client_cmd = [exes["echo_client"], "--transport", transport, "--addr", addr,
                              "-c", str(args.connections), "-s", str(size),
                              "-d", repr(args.duration), "-w", repr(args.warmup),
                              "-p", str(args.client_procs), "-t", repr(args.stall_timeout)]
                if args.churn:
                    client_cmd.append("--churn")
                client = spawn(client_cmd, cpu=client_cpu,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
                limit = args.warmup + args.duration + args.stall_timeout + 10
                try:
                    out, cerr = client.communicate(timeout=limit)
                except subprocess.TimeoutExpired:
                    stop(client, grace=0.5)
                    raise SampleError("run", "client did not finish within %gs" % limit)
                cpu1, t1 = _proc_cpu_seconds(server.pid), time.monotonic()
                server_rc = server.poll()
                err_file.seek(0)
                server_err = err_file.read()

                result = None
                for line in reversed(out.splitlines()):
                    if line.startswith("{"):
                        try:
                            result = json.loads(line)
                        except ValueError:
                            pass
                        break
                if client.returncode != 0 or result is None or not result.get("requests"):
                    if cerr.strip():
                        summary = cerr.strip().splitlines()[-1].replace("echo_client: ", "")
                    elif result is not None and not result.get("requests"):
                        summary = "no request completed in the measured window"
                    else:
                        summary = "client: %s, no result" % _exit_status(client.returncode)
                    if server_rc is not None:
                        summary = "server %s; %s" % (_exit_status(server_rc), summary)
                    detail = "    client %s:\n%s\n    server stderr:\n%s" % (
                        _exit_status(client.returncode), _tail(cerr), _tail(server_err) or
                        "    (empty)")
                    raise SampleError("run", summary, detail)
                if server_rc is not None:
                    raise SampleError("run", "server %s during the run"
                                      % _exit_status(server_rc), _tail(server_err))
                if result.get("conn_max"):
                    result["fairness"] = round(result["conn_min"] / result["conn_max"], 3)
                if cpu0 is not None and cpu1 is not None and t1 > t0:
                    result["server_cpu"] = round((cpu1 - cpu0) / (t1 - t0), 3)
                    # CPU per request: the share over the whole run (warm-up
                    # included, whose load is the same) over the rate.
                    result["server_us"] = (cpu1 - cpu0) / (t1 - t0) / result["rps"] * 1e6
                result["warnings"] = sorted({line.strip() for line in server_err.splitlines()
                                             if line.startswith("warning:")})
                return result
            finally:
                stop(client, grace=1.0)
                stop(server)
                if transport == "unix" and os.path.exists(addr):
                    os.unlink(addr)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

def _values(by_round, field):
    return [r[field] for r in by_round.values() if r.get(field) is not None]


def summarize(by_round, field):
    vals = _values(by_round, field)
    if not vals:
        return None
    med = statistics.median(vals)
    return {"median": med, "min": min(vals), "max": max(vals),
            "spread": (max(vals) - min(vals)) / med if med else 0.0}


def paired_ratio(num, den, field="rps"):
    """median(num) / median(den), and [min-max] of the same-round ratios."""
    if not num or not den:
        return None
    a, b = summarize(num, field), summarize(den, field)
    if not a or not b or not b["median"]:
        return None
    per_round = [num[r][field] / den[r][field] for r in num if r in den and den[r][field]]
    return {"ratio": a["median"] / b["median"],
            "min": min(per_round) if per_round else None,
            "max": max(per_round) if per_round else None}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _size_name(n):
    if n % (1024 * 1024) == 0:
        return "%dMiB" % (n // (1024 * 1024))
    if n % 1024 == 0:
        return "%dKiB" % (n // 1024)
    return "%dB" % n


def _fmt_rps(x):
    if x >= 99950:
        return "%.0fk" % (x / 1000)
    if x >= 1000:
        return "%.1fk" % (x / 1000)
    return "%.0f" % x


def _fmt_us(x):
    return "%.0f" % x if x >= 10 else "%.1f" % x


def _fmt_ratio(r, percent=False):
    if r is None:
        return "n/a"
    if percent:
        text = "%.0f%%" % (r["ratio"] * 100)
        if r["min"] is not None and r["max"] != r["min"]:
            text += " [%.0f-%.0f]" % (r["min"] * 100, r["max"] * 100)
        return text
    text = "%.2fx" % r["ratio"]
    if r["min"] is not None and r["max"] != r["min"]:
        text += " [%.2f-%.2f]" % (r["min"], r["max"])
        if r["min"] < 1.0 < r["max"]:
            text += " ~"
    return text


def _table(headers, rows, left=3):
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) if i < left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in [headers] + rows]


def baselines_for(subject, kinds):
    return [b for b in RATIO_ORDER if b != subject and b in kinds] if subject in kinds else []


def build_rows(configs, kinds, samples, errors, notes, subject):
    """One row per (transport, style, size): cells for the three tables."""
    def note_ref(err):
        key = (err["kind"], err["summary"])
        if key not in notes:
            notes[key] = {"n": len(notes) + 1, "where": []}
        where = "%s %s%s" % (err["transport"], err["style"] or "",
                             "" if err.get("size") is None else " " + _size_name(err["size"]))
        if where not in notes[key]["where"]:
            notes[key]["where"].append(where)
        return "n/a[%d]" % notes[key]["n"]

    rows = []
    for transport, style, size in configs:
        row = {"transport": transport, "style": style, "size": size, "rps": {}, "lat": {},
               "cpu": {}, "fair": {}, "stats": {}, "us": {}}
        for kind in kinds:
            key = (transport, None if kind == C_KIND else style, size)
            by_round = samples.get(key, {}).get(kind, {})
            err = errors.get(key, {}).get(kind) or errors.get(key[:2], {}).get(kind)
            if err:
                row["rps"][kind] = row["lat"][kind] = row["cpu"][kind] = row["us"][kind] = \
                    note_ref(err)
                continue
            st = summarize(by_round, "rps")
            if st is None:
                row["rps"][kind] = row["lat"][kind] = row["cpu"][kind] = row["us"][kind] = "-"
                continue
            row["stats"][kind] = st
            row["rps"][kind] = "%s (%2.0f%%)" % (_fmt_rps(st["median"]), st["spread"] * 100)
            p50, p99 = summarize(by_round, "p50_us"), summarize(by_round, "p99_us")
            row["lat"][kind] = "%s / %s" % (_fmt_us(p50["median"]), _fmt_us(p99["median"]))
            row["cpu"][kind] = " / ".join(
                "%.2f" % st["median"] if st else "?" for st in (
                    summarize(by_round, f) for f in ("server_cpu", "client_cpu", "fairness")))
            fair = summarize(by_round, "fairness")
            row["fair"][kind] = fair["median"] if fair else None
            us = summarize(by_round, "server_us")
            row["us"][kind] = "%.1f" % us["median"] if us else "?"
        mine = samples.get((transport, style, size), {}).get(subject)
        row["ratios"] = {b: paired_ratio(mine, samples.get((transport, style, size), {}).get(b))
                         for b in baselines_for(subject, kinds)}
        row["us_ratios"] = {b: paired_ratio(mine, samples.get((transport, style, size), {}).get(b),
                                            "server_us")
                            for b in baselines_for(subject, kinds)}
        row["vs_c"] = paired_ratio(mine, samples.get((transport, None, size), {}).get(C_KIND))
        rows.append(row)
    return rows


def print_report(rows, kinds, loop_info, errors, notes, meta, subject, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p()
    p("Python %s (%s), %d round(s)%s, %s" % (
        meta["python"], meta["executable"], meta["rounds_done"],
        " [--quick]" if meta["quick"] else "", meta["machine"]))
    p("%d connections, %g s measured after %g s warm-up per sample, %d client process(es)%s, "
      "fresh server per sample, order %s" % (
          meta["connections"], meta["duration"], meta["warmup"], meta["client_procs"],
          {"same": ", server and client pinned to the idlest CPU", "split": ", server and "
           "client pinned to different CPUs"}.get(meta["pin"], ", not pinned"),
          " -> ".join(kinds)))
    for kind in list(loop_info):
        li = loop_info[kind]
        if li["status"] == "ok":
            p("  %-8s %s  (%s)" % (kind, li["version"], li["where"]))
        else:
            p("  %-8s %s: %s" % (kind, li["status"].upper(), _error_summary(li["error"])))
    p()

    ratio_cols = baselines_for(subject, kinds)
    show_c = subject in kinds and C_KIND in kinds

    headers = ["transport", "style", "size"] + list(kinds) + \
        ["%s/%s" % (subject, b) for b in ratio_cols] + (["%s %% of %s" % (subject, C_KIND)]
                                                        if show_c else [])
    table = []
    for row in rows:
        cells = [row["transport"], row["style"], _size_name(row["size"])]
        cells += [row["rps"][k] for k in kinds]
        cells += [_fmt_ratio(row["ratios"].get(b)) for b in ratio_cols]
        if show_c:
            cells.append(_fmt_ratio(row["vs_c"], percent=True))
        table.append(cells)
    p("%s/s: median over the rounds (spread)"
      % ("connections (one echo each)" if meta.get("churn") else "requests"))
    for line in _table(headers, table):
        p(line)
    p()
    p("latency p50 / p99 in microseconds: medians over the rounds")
    for line in _table(["transport", "style", "size"] + list(kinds),
                       [[r["transport"], r["style"], _size_name(r["size"])] +
                        [r["lat"][k] for k in kinds] for r in rows]):
        p(line)
    p()
    what = "connection" if meta.get("churn") else "request"
    p("server CPU per %s in microseconds (user + system): medians; %s/X below 1 means %s "
      "pays less" % (what, subject, subject))
    for line in _table(["transport", "style", "size"] + list(kinds) +
                       ["%s/%s" % (subject, b) for b in ratio_cols],
                       [[r["transport"], r["style"], _size_name(r["size"])] +
                        [r["us"][k] for k in kinds] +
                        [_fmt_ratio(r["us_ratios"].get(b)) for b in ratio_cols] for r in rows]):
        p(line)
    p()
    p("server CPU / client CPU (cores) / fairness (fewest / most requests on one connection):"
      " medians")
    for line in _table(["transport", "style", "size"] + list(kinds),
                       [[r["transport"], r["style"], _size_name(r["size"])] +
                        [r["cpu"][k] for k in kinds] for r in rows]):
        p(line)
    p()
    if C_KIND in kinds:
        p("%s is measured once per transport and size; its figures repeat on each style row."
          % C_KIND)
    if ratio_cols:
        p("%s/X: %s median rps / X median rps, > 1 means %s serves more requests/s; [min-max]"
          % (subject, subject, subject))
        p("of the ratios within each round (back-to-back samples); '~' = range crosses 1.0"
          " (noise).")
    if show_c:
        p("%s %% of %s: the same for %s against the C server of the same round."
          % (subject, C_KIND, subject))

    for (kind, summary), note in sorted(notes.items(), key=lambda kv: kv[1]["n"]):
        p("[%d] %s: n/a: %s  (%s)" % (note["n"], kind, summary, ", ".join(note["where"])))

    warnings = []
    spreads = [st["spread"] for r in rows for st in r["stats"].values()]
    if spreads and statistics.median(spreads) > NOISY_SPREAD:
        warnings.append("noisy run (median spread %.0f%%): the machine was busy; do not quote "
                        "these numbers, rerun when it is idle." % (statistics.median(spreads) * 100))
    busy = sorted({"%s %s %s" % (k, r["transport"], _size_name(r["size"]))
                   for r in rows for k in r["stats"]
                   if (st := meta["client_cpu"].get((r["transport"], r["style"], r["size"], k)))
                   and st >= CLIENT_BUSY * meta["client_procs"]})
    if busy:
        warnings.append("the client used >= %.0f%% of its CPU for: %s. It may be a bottleneck "
                        "there too (see \"CPU placement\" in bench/README.md)."
                        % (CLIENT_BUSY * 100, ", ".join(busy)))
    unfair = sorted("%s %s %s %s (%.2f)" % (k, r["transport"], r["style"], _size_name(r["size"]), f)
                    for r in rows for k, f in r["fair"].items() if f is not None and f < UNFAIR)
    if unfair:
        warnings.append("unfair service (fairness < %.1f): %s. Some connections were served "
                        "far more often than others; rps are real but the latency percentiles "
                        "mix fast and starved connections." % (UNFAIR, ", ".join(unfair)))
    if C_KIND in kinds:
        faster = sorted({"%s %s %s %s" % (k, r["transport"], r["style"], _size_name(r["size"]))
                         for r in rows if C_KIND in r["stats"]
                         for k, st in r["stats"].items()
                         if k != C_KIND and st["median"] > r["stats"][C_KIND]["median"]})
        if faster:
            warnings.append("faster than %s: %s. The reference is not the limit there (client-"
                            "bound or noise)." % (C_KIND, ", ".join(faster)))
    server_warnings = sorted({"%s: %s" % (k, w) for k, w in meta["server_warnings"]})
    for w in server_warnings:
        warnings.append("server said: " + w)
    for w in warnings:
        p()
        p("WARNING: " + w)

    failures = [e for by_kind in errors.values() for e in by_kind.values()]
    if failures:
        p()
        p("FAILURES (each skipped in later rounds):")
        for e in failures:
            p("  %s %s %s%s (round %d, %s): %s" % (
                e["kind"], e["transport"], e["style"] or "",
                "" if e.get("size") is None else " " + _size_name(e["size"]), e["round"],
                "at start" if e["phase"] == "start" else "during the run", e["summary"]))
            if e["detail"] and e["detail"].strip() != e["summary"]:
                p(e["detail"])
    for kind, li in loop_info.items():
        if li["status"] == "failed":
            p()
            p("%s FAILED to load:\n%s" % (kind, li["error"]))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_size(text):
    t = text.strip().lower().replace("ib", "").replace("b", "")
    mult = 1
    if t.endswith("k"):
        mult, t = 1024, t[:-1]
    elif t.endswith("m"):
        mult, t = 1024 * 1024, t[:-1]
    if not t.isdigit() or int(t) <= 0:
        raise ValueError(text)
    return int(t) * mult


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="samples per configuration and loop "
                        "(default 5, or 1 with --quick)")
    parser.add_argument("--loops", default=",".join(workloads.LOOP_KINDS),
                        help="Python loop kinds, in alternation order (default: %(default)s); "
                             "the C server is added unless --no-c")
    parser.add_argument("--no-c", action="store_true", help="do not run the C reference server")
    parser.add_argument("--subject", default=SUBJECT,
                        help="the loop whose ratios to the others are reported (default "
                             "%(default)s; e.g. uvloop to try the report before pyasync has "
                             "networking)")
    parser.add_argument("--only", help="comma-separated transports (tcp, unix), styles "
                        "(protocol, streams, sock by default; streams256k, exactly) and/or sizes "
                        "(1k, 10k, ...); each dimension not mentioned keeps its defaults")
    parser.add_argument("--sizes", help="message sizes in bytes, k = KiB (default: %s, or "
                        "64 with --churn)" % DEFAULT_SIZES)
    parser.add_argument("--connections", type=int,
                        help="concurrent connections, one request in flight on each "
                             "(default 10, or 64 with --churn)")
    parser.add_argument("--churn", action="store_true",
                        help="a new connection for every request (connection churn)")
    parser.add_argument("--duration", type=float, help="measured seconds per sample "
                        "(default 2, or 1 with --quick)")
    parser.add_argument("--warmup", type=float, help="seconds of load before measuring "
                        "(default 1, or 0.3 with --quick)")
    parser.add_argument("--client-procs", type=int, default=1,
                        help="client processes sharing the connections (default %(default)s)")
    parser.add_argument("--pin", choices=("same", "split", "none"), default="same",
                        help="CPU placement: server and client both on the CPU that was the "
                             "idlest just before the sample (same, the default: the most "
                             "stable here), server and client on two different CPUs (split), "
                             "or left to the scheduler (none); see README")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address (default %(default)s)")
    parser.add_argument("--start-timeout", type=float, default=20.0,
                        help="seconds a server may take to print READY (default %(default)s)")
    parser.add_argument("--stall-timeout", type=float, default=10.0,
                        help="the client gives up after this many seconds without data "
                             "(default %(default)s)")
    parser.add_argument("--build-dir", default=DEFAULT_BUILD_DIR,
                        help="where the C programs are built (default bench/.build)")
    parser.add_argument("--json", metavar="FILE", help="also write raw samples and summary here")
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 1 s: a smoke test, not a measurement")
    args = parser.parse_args(argv)

    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.sizes is None:
        args.sizes = "64" if args.churn else DEFAULT_SIZES
    if args.connections is None:
        args.connections = 64 if args.churn else 10
    if args.duration is None:
        args.duration = 1.0 if args.quick else 2.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rounds and --duration must be positive, --warmup >= 0")
    if args.connections < 1 or not 1 <= args.client_procs <= args.connections:
        parser.error("need 1 <= --client-procs <= --connections")
    args.cpus = sorted(os.sched_getaffinity(0))
    if args.pin == "split" and len(args.cpus) < 2:
        parser.error("--pin split needs 2 CPUs")

    args.loops = _csv(args.loops)
    unknown = [k for k in args.loops if k not in workloads.LOOP_KINDS]
    if unknown or len(set(args.loops)) != len(args.loops):
        parser.error("--loops: need distinct kinds among %s" % ", ".join(workloads.LOOP_KINDS))
    if args.subject not in workloads.LOOP_KINDS:
        parser.error("--subject: one of %s" % ", ".join(workloads.LOOP_KINDS))
    try:
        args.sizes = [parse_size(s) for s in _csv(args.sizes)]
    except ValueError as exc:
        parser.error("bad size %s" % exc)
    args.transports, args.styles = list(TRANSPORTS), list(DEFAULT_STYLES)
    if args.only:
        tokens = _csv(args.only)
        transports = [t for t in tokens if t in TRANSPORTS]
        styles = [t for t in tokens if t in STYLES]
        sizes = []
        for t in tokens:
            if t in TRANSPORTS or t in STYLES:
                continue
            try:
                sizes.append(parse_size(t))
            except ValueError:
                parser.error("--only: %r is not a transport (%s), a style (%s) or a size"
                             % (t, ", ".join(TRANSPORTS), ", ".join(STYLES)))
        args.transports = transports or args.transports
        args.styles = styles or args.styles
        args.sizes = sizes or args.sizes
    if not args.loops and args.no_c:
        parser.error("nothing to run")
    return args


def probe_loops(kinds, env, timeout):
    info = {}
    for kind in kinds:
        try:
            proc = subprocess.run([sys.executable, ECHO_SERVER, "--probe", kind],
                                  capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=REPO_ROOT)
            err = proc.stderr if proc.returncode else None
            result = json.loads(proc.stdout.strip().splitlines()[-1]) if not err else None
        except subprocess.TimeoutExpired:
            result, err = None, "timed out after %gs" % timeout
        except (ValueError, IndexError):
            result, err = None, proc.stdout + proc.stderr or "no output"
        if result is not None:
            info[kind] = dict(result, status="ok")
        else:
            info[kind] = {"status": "skipped" if kind in OPTIONAL_LOOPS else "failed",
                          "error": err}
    return info


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    load_at_start = os.getloadavg()[0]
    env = child_env()
    exes = build_c(args.build_dir)

    loop_info = probe_loops(args.loops, env, args.start_timeout)
    for kind in args.loops:
        if loop_info[kind]["status"] != "ok":
            log("note: %s %s: %s" % (kind, loop_info[kind]["status"],
                                     _error_summary(loop_info[kind]["error"])))
    kinds = ([] if args.no_c else [C_KIND]) + \
        [k for k in args.loops if loop_info[k]["status"] == "ok"]
    if not args.no_c:
        loop_info[C_KIND] = {"status": "ok", "version": "gcc %s" % " ".join(CFLAGS),
                             "where": exes["echo_c_server"]}

    configs = [(t, st, sz) for t in args.transports for st in args.styles for sz in args.sizes]
    # samples[(transport, style or None for C, size)][kind][round] = client result
    samples = {}
    # errors[key][kind]: start failures use (transport, style), run failures the full key.
    errors = {}
    server_warnings = set()
    rounds_done = 0
    seq = 0
    tmpdir = tempfile.mkdtemp(prefix="pyasync-echo-")
    old_handlers = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for rnd in range(1, args.rounds + 1):
            log("round %d/%d:" % (rnd, args.rounds), end="")
            for transport in args.transports:
                for size in args.sizes:
                    log(" %s/%s" % (transport, _size_name(size)), end="")
                    plan = [] if args.no_c else [(C_KIND, None)]
                    plan += [(k, st) for st in args.styles for k in kinds if k != C_KIND]
                    for kind, style in plan:
                        key = (transport, style, size)
                        if kind in errors.get(key, {}) or kind in errors.get(key[:2], {}):
                            continue  # failed once already: don't pay for it every round
                        seq += 1
                        try:
                            result = run_sample(kind, style, transport, size, args, exes,
                                                tmpdir, env, seq)
                        except SampleError as exc:
                            err = {"kind": kind, "transport": transport, "style": style,
                                   "size": None if exc.phase == "start" else size,
                                   "round": rnd, "phase": exc.phase,
                                   "summary": exc.summary, "detail": exc.detail}
                            errors.setdefault(key[:2] if exc.phase == "start" else key,
                                              {})[kind] = err
                            log("\n  n/a: %s %s %s %s: %s" % (kind, transport, style or "",
                                                              _size_name(size), exc.summary))
                            continue
                        result["round"] = rnd
                        samples.setdefault(key, {}).setdefault(kind, {})[rnd] = result
                        for w in result.get("warnings", ()):
                            server_warnings.add((kind, w))
                        log(".", end="")
            log()
            rounds_done = rnd
    except KeyboardInterrupt:
        log("\ninterrupted: reporting the %d complete round(s)" % rounds_done)
        for by_kind in samples.values():
            for by_round in by_kind.values():
                by_round.pop(rounds_done + 1, None)
    finally:
        stop_all()
        shutil.rmtree(tmpdir, ignore_errors=True)
        for s, h in old_handlers.items():
            signal.signal(s, h)
    log("%d samples in %.0f s" % (sum(len(r) for k in samples.values() for r in k.values()),
                                  time.time() - started))

    client_cpu = {}
    for (transport, style, size), by_kind in samples.items():
        for kind, by_round in by_kind.items():
            st = summarize(by_round, "client_cpu")
            for sty in ([style] if style else args.styles):
                if st:
                    client_cpu[(transport, sty, size, kind)] = st["median"]
    meta = {
        "python": platform.python_version(), "executable": sys.executable,
        "machine": "%s, %d CPUs, load %.1f at start" % (platform.machine(), os.cpu_count() or 0,
                                                        load_at_start),
        "rounds": args.rounds, "rounds_done": rounds_done, "quick": args.quick,
        "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
        "client_procs": args.client_procs, "pin": args.pin, "sizes": args.sizes,
        "transports": args.transports, "styles": args.styles, "order": kinds,
        "subject": args.subject, "churn": args.churn,
        "git": _git_revision(),
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "elapsed_s": round(time.time() - started, 1),
        "client_cpu": client_cpu, "server_warnings": server_warnings,
    }
    notes = {}
    rows = build_rows(configs, kinds, samples, errors, notes, args.subject)
    print_report(rows, kinds, loop_info, errors, notes, meta, args.subject)

    if args.json:
        dump = {
            "meta": {k: v for k, v in meta.items() if k not in ("client_cpu", "server_warnings")},
            "loops": loop_info,
            "samples": [dict(r, transport=t, style=st, size=sz, loop=k)
                        for (t, st, sz), by_kind in samples.items()
                        for k, by_round in by_kind.items() for r in by_round.values()],
            "errors": [e for by_kind in errors.values() for e in by_kind.values()],
            "summary": [{"transport": r["transport"], "style": r["style"], "size": r["size"],
                         "rps": r["stats"], "ratios": r["ratios"], "vs_c_epoll": r["vs_c"],
                         "server_us_ratios": r["us_ratios"]}
                        for r in rows],
        }
        dump["meta"]["server_warnings"] = sorted("%s: %s" % kw for kw in server_warnings)
        with open(args.json, "w") as f:
            json.dump(dump, f, indent=1)
        log("wrote %s" % args.json)

    failed = bool(errors) or rounds_done < args.rounds or any(
        li["status"] == "failed" for li in loop_info.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
