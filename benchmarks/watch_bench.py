#!/usr/bin/env python3
"""Watcher benchmark: start-up sync, event-loop stall during a full relist, label-flip latency.

    .venv/bin/python benchmarks/watch_bench.py [--services 10000] [--namespaces 1000]

Loopback only. dnsrewrite runs in this process as the tests run it (`ServerThread`
from tests/conftest.py), watching the fake API server (`tests/fakeapi`) through a
kubeconfig file that points at its http URL.

Three processes, so that what is measured is dnsrewrite and not its harness:
* this one: dnsrewrite (DNS loop, admin, three watcher threads, the writer), the
  event-loop lag sampler and a gc pause recorder;
* the fake API server (a FakeApiServerThread in a child process; `--api-in-process`
  puts it here instead, sharing dnsrewrite's GIL as in tests/test_watch.py). The
  label flips are driven from there too: update the Namespace, then poll DNS;
* the UDP probe: one query every 2 ms, each reply's latency recorded.

Phases: bulk load -> App start until ready (synced) -> idle (probe baseline) ->
full relist of all three kinds (bump + compact + close every watch in one step on
the fake's loop, so every resume gets 410 -> list -> replace) -> label flips of a
10-Service namespace and of a 1000-Service one, 20 each (enroll, unenroll, ...).
A summary table is printed and appended to benchmarks/RESULTS.md (`--no-results`:
print only).
"""

from __future__ import annotations

import argparse
import array
import datetime
import gc
import logging
import math
import multiprocessing as mp
import os
import shlex
import socket
import struct
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import dns.message  # noqa: E402
import dns.rdatatype  # noqa: E402

from dnsrewrite import config  # noqa: E402
from dnsrewrite.logs import StructuredFormatter  # noqa: E402

ENROLL = {"dnsrewrite.io/enroll": "true"}
ZONE = "cluster.local"
BIG, SMALL = 1000, 10  # Services in the two namespaces that get flipped
BIG_NS, SMALL_NS = "ns-0000", "ns-0001"
FLIPS = 20
SAMPLED = 50  # Services of the big namespace checked until the last one has flipped
PROBE_INTERVAL_S = 0.002
LAG_INTERVAL_S = 0.005
FLIP_POLL_S = 0.001
IDLE_S = 3.0
RELIST_TAIL_S = 0.5  # the relist window runs this long past the publish of the relist


def note(message: str) -> None:
    print(f"[watch-bench] {message}", file=sys.stderr, flush=True)


# --- DNS over UDP, minimal ------------------------------------------------------------
def query_wire(name: str) -> bytes:
    return dns.message.make_query(name, "A").to_wire()


def a_records(sock: socket.socket, wire: bytes, qid: int) -> list[str] | None:
    """One A query on a connected UDP socket; sorted addresses, None on timeout."""
    packet = struct.pack("!H", qid & 0xFFFF) + wire[2:]
    sock.send(packet)
    while True:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None
        if data[:2] == packet[:2]:
            break
    reply = dns.message.from_wire(data)
    return sorted(r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A
                  for r in rrset)


def udp_socket(port: int, timeout: float = 1.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(timeout)
    return sock


# --- the cluster -------------------------------------------------------------------------
def layout(n_services: int, n_namespaces: int) -> dict[str, int]:
    """Services per namespace: ns-0000 holds 1000 (when --services allows), ns-0001 ten,
    the rest are spread over the other namespaces."""
    big = BIG if n_services >= 2 * BIG and n_namespaces >= 3 else 0
    small = min(SMALL, n_services)
    counts = {f"ns-{i:04d}": 0 for i in range(n_namespaces)}
    counts[BIG_NS] = big
    counts[SMALL_NS] = small
    regular = [ns for ns in counts if ns not in (SMALL_NS,) and not (ns == BIG_NS and big)]
    rest = n_services - big - small
    if rest > 0 and not regular:
        raise SystemExit("need at least 3 namespaces for that many services")
    for j in range(max(rest, 0)):
        counts[regular[j % len(regular)]] += 1
    return counts


class _Ips:
    """Unique endpoint addresses from 10.128.0.0/9 (integer arithmetic: fast)."""

    def __init__(self) -> None:
        self.n = (10 << 24) + (128 << 16) + 10

    def next(self) -> str:
        n, self.n = self.n, self.n + 1
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class ApiHost:
    """Owns the FakeApiServerThread; runs in the fake-API child process (or in-process)."""

    def __init__(self) -> None:
        self.api: Any = None
        self.sample: dict[str, list[tuple[str, str]]] = {}  # namespace -> [(qname, ClusterIP)]
        self.gateway_vip = ""

    def start(self, n_services: int, n_namespaces: int) -> dict[str, Any]:
        from tests.fakeapi import objects as k8s
        from tests.fakeapi.server import FakeApiServerThread

        self.api = FakeApiServerThread().start()
        ips = _Ips()
        objs: list[dict] = [k8s.namespace("mesh")]
        gw = k8s.service("mesh", "gw", ports=[("http", 80, "TCP")])
        self.gateway_vip = gw["spec"]["clusterIP"]
        objs.append(gw)
        objs.append(k8s.endpoint_slice(
            "mesh", "gw-abcde", "gw", ports=[("http", 80, "TCP")],
            endpoints=[{"addresses": [ips.next()], "ready": True} for _ in range(3)]))
        counts = layout(n_services, n_namespaces)
        probe: list[str] = []
        enrolled_ns = 0
        for i, (ns, count) in enumerate(counts.items()):
            # Half the namespaces enrolled; the two that get flipped start out not enrolled.
            enrolled = i % 2 == 0 and ns not in (BIG_NS, SMALL_NS)
            enrolled_ns += enrolled
            objs.append(k8s.namespace(ns, ENROLL if enrolled else {}))
            members: list[tuple[str, str]] = []
            for j in range(count):
                name = f"svc-{j:04d}"
                svc = k8s.service(ns, name, ports=[("http", 80, "TCP")])
                objs.append(svc)
                objs.append(k8s.endpoint_slice(
                    ns, f"{name}-abcde", name, ports=[("http", 80, "TCP")],
                    endpoints=[{"addresses": [ips.next()], "ready": True} for _ in range(3)]))
                members.append((f"{name}.{ns}.svc.{ZONE}.", svc["spec"]["clusterIP"]))
            if ns in (BIG_NS, SMALL_NS) and members:
                step = max(1, len(members) // SAMPLED)
                self.sample[ns] = members[::step][:SAMPLED]
            elif members and i % max(1, n_namespaces // 64) == 0:
                probe.append(members[0][0])  # a mix of rewritten and real answers
        self.api.load(objs, copy=False)
        return {"url": self.api.url, "gateway_vip": self.gateway_vip, "probe_names": probe,
                "objects": len(objs), "enrolled_namespaces": enrolled_ns,
                "counts": {ns: counts[ns] for ns in (BIG_NS, SMALL_NS)}}

    def relist(self) -> int:
        """Every watch must resume from a compacted RV (410) and so relist and replace.
        Bump first: a watcher whose RV equals the current one would not be expired."""
        server = self.api.server

        def expire_everything() -> int:
            server.bump_rv(1)
            server.compact()
            return server.close_watches()

        return self.api.call(expire_everything)

    def flip(self, port: int, ns: str, enroll: bool, sweep: bool) -> dict[str, Any]:
        """Update the namespace, then poll one Service every 1 ms until its A record
        flips; with `sweep`, then check the sampled Services until every one has."""
        from tests.fakeapi import objects as k8s

        sample = self.sample[ns]
        vip = self.gateway_vip

        def flipped(answer: list[str] | None, cluster_ip: str) -> bool:
            return answer == ([vip] if enroll else [cluster_ip])

        wires = [(query_wire(qname), ip) for qname, ip in sample]
        sock = udp_socket(port)
        qid = 0
        try:
            first_wire, first_ip = wires[0]
            before = a_records(sock, first_wire, qid)
            if flipped(before, first_ip):
                raise RuntimeError(f"{ns} already answers as if flipped: {before}")
            obj = k8s.namespace(ns, ENROLL if enroll else {})
            t0 = time.monotonic()
            self.api.update(obj)
            tick = t0
            while True:
                qid += 1
                if flipped(a_records(sock, first_wire, qid), first_ip):
                    t_first = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > 30:
                    raise RuntimeError(f"{ns} did not flip within 30 s")
                tick += FLIP_POLL_S
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            result: dict[str, Any] = {"first": t_first}
            if sweep:
                pending = list(wires[1:])
                stragglers = -1  # Services still unflipped on the first pass
                t_last = t_first
                while pending:
                    left = []
                    for wire, ip in pending:
                        qid += 1
                        if flipped(a_records(sock, wire, qid), ip):
                            t_last = time.monotonic() - t0
                        else:
                            left.append((wire, ip))
                    if stragglers < 0:
                        stragglers = len(left)
                    pending = left
                    if time.monotonic() - t0 > 30:
                        raise RuntimeError(f"{ns}: {len(left)} sampled services never flipped")
                result.update(last=t_last, stragglers=max(stragglers, 0), sampled=len(wires))
            return result
        finally:
            sock.close()

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None


def _host_main(conn: Any) -> None:
    host = ApiHost()
    while True:
        method, args = conn.recv()
        if method == "exit":
            host.stop()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", getattr(host, method)(*args)))
        except Exception as err:  # surfaced in the parent
            conn.send(("err", f"{type(err).__name__}: {err}"))


class RemoteHost:
    """ApiHost in a child process, same methods."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_host_main, args=(child,), name="fakeapi-host", daemon=True)
        self.proc.start()

    def _call(self, method: str, *args: Any) -> Any:
        self.conn.send((method, args))
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"fake API host: {value}")
        return value

    def __getattr__(self, method: str) -> Any:
        return lambda *args: self._call(method, *args)

    def stop(self) -> None:
        if self.proc.is_alive():
            self._call("exit")
            self.proc.join(10)


# --- the probe process -------------------------------------------------------------------
def _probe_main(conn: Any, stop: Any) -> None:
    """Wait for (port, names), then query every 2 ms until `stop`; send back
    (send times, latencies, lost) as bytes."""
    port, names = conn.recv()
    wires = [query_wire(n) for n in names]
    sock = udp_socket(port, timeout=1.0)
    sent, lat = array.array("d"), array.array("d")
    lost = 0
    qid = 0
    tick = time.monotonic()
    while not stop.is_set():
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        tick = max(tick + PROBE_INTERVAL_S, time.monotonic())
        qid = (qid + 1) & 0xFFFF
        wire = wires[qid % len(wires)]
        packet = struct.pack("!H", qid) + wire[2:]
        t0 = time.monotonic()
        try:
            sock.send(packet)
            while True:
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    lost += 1
                    data = None
                    break
                if data[:2] == packet[:2]:
                    break
        except ConnectionRefusedError:  # the server has gone: done
            break
        sent.append(t0)
        lat.append(time.monotonic() - t0 if data is not None else math.inf)
    conn.send((sent.tobytes(), lat.tobytes(), lost))


# --- measurements in this process --------------------------------------------------------
class LoopLag:
    """Every 5 ms, a callback onto the server loop (call_soon_threadsafe). Two delays:
    call -> run (the loop's own lag), and intended 5 ms tick -> run, which also counts
    the time this sampling thread was itself frozen (a stop-the-world gc pause
    freezes it too, so call -> run alone misses those)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.samples: list[tuple[float, float]] = []  # (called, call -> run)
        self.grid: list[tuple[float, float]] = []  # (intended, intended -> run)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-lag", daemon=True)

    def _run(self) -> None:
        samples, grid = self.samples, self.grid

        def ran(called: float, intended: float) -> None:
            now = time.monotonic()
            samples.append((called, now - called))
            grid.append((intended, now - intended))

        intended = time.monotonic()
        while not self._stop.is_set():
            self.loop.call_soon_threadsafe(ran, time.monotonic(), intended)
            intended = max(intended + LAG_INTERVAL_S, time.monotonic())
            self._stop.wait(max(0.0, intended - time.monotonic()))

    def start(self) -> LoopLag:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class GcPauses:
    """Every cyclic-GC collection in this process: (start, seconds, generation)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.monotonic()
        else:
            self.pauses.append((self._start, time.monotonic() - self._start, info["generation"]))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def window(pairs: list[tuple[float, float]], start: float, end: float) -> list[float]:
    return [v for t, v in pairs if start <= t <= end]


def gc_overlap(pauses: list[tuple[float, float, int]], start: float, length: float) -> float:
    """Seconds of gc pause inside [start, start + length]."""
    if math.isnan(length):
        return math.nan
    end = start + min(length, 60.0)
    return sum(min(s + p, end) - max(s, start) for s, p, _ in pauses if s < end and s + p > start)


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "lost"
    return f"{value * 1000:.1f}" if value < 1 else f"{value * 1000:.0f}"


def kubeconfig(path: str, url: str) -> str:
    with open(path, "w") as handle:
        handle.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{url}"}}}}]
users: [{{name: bench, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: bench}}}}]
current-context: fake
""")
    return path


def quiet_logging() -> None:
    """As the CLI logs (logfmt, info), but to /dev/null; errors still reach stderr."""
    sink = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    sink.setFormatter(StructuredFormatter("logfmt"))
    loud = logging.StreamHandler(sys.stderr)
    loud.setLevel(logging.ERROR)
    loud.setFormatter(StructuredFormatter("logfmt"))
    root = logging.getLogger()
    root.handlers[:] = [sink, loud]
    root.setLevel(logging.INFO)


def cpu_busy(seconds: float = 2.0) -> float:
    """Whole-machine CPU busy % over `seconds` (from /proc/stat)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return 100 * (busy1 - busy0) / max(1, total1 - total0)


def wait_quiet(max_wait: float, threshold: float = 15.0) -> float:
    """Wait (up to max_wait s) until the machine is under threshold% busy; returns the last
    reading. Other benchmarks on the same CPUs would skew both theirs and ours."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = cpu_busy()
        if busy < threshold or time.monotonic() > deadline:
            if busy >= threshold:
                note(f"CPUs still {busy:.0f}% busy; measuring anyway")
            return busy
        note(f"waiting for other work to finish: CPUs {busy:.0f}% busy")


def wait_until(check: Any, timeout: float, what: str, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(step)


# --- main --------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=1_000)
    parser.add_argument("--api-in-process", action="store_true",
                        help="run the fake API server in dnsrewrite's process (shares its GIL)")
    parser.add_argument("--wait-quiet", type=float, default=300, metavar="SECONDS",
                        help="first wait up to this long for the CPUs to be idle (0: don't)")
    parser.add_argument("--no-results", action="store_true",
                        help="print the summary only; do not append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.services < SMALL or args.namespaces < 2:
        parser.error("need at least 10 services and 2 namespaces")
    command = ".venv/bin/python benchmarks/watch_bench.py " + shlex.join(sys.argv[1:])
    busy_before = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else math.nan
    began = time.monotonic()

    from tests.conftest import ServerThread  # imported late: pytest is slow to import

    # Children first, before this process starts any thread.
    ctx = mp.get_context("spawn")
    host: Any = ApiHost() if args.api_in_process else RemoteHost(ctx)
    probe_conn, probe_child = ctx.Pipe()
    probe_stop = ctx.Event()
    probe = ctx.Process(target=_probe_main, args=(probe_child, probe_stop), name="probe",
                        daemon=True)
    probe.start()

    t = time.monotonic()
    info = host.start(args.services, args.namespaces)
    note(f"fake API: {info['objects']} objects loaded in {time.monotonic() - t:.1f} s "
         f"({args.services} services, {args.namespaces} namespaces, "
         f"{info['enrolled_namespaces']} enrolled), {info['url']}")
    big = info["counts"][BIG_NS] == BIG

    quiet_logging()
    tmp = tempfile.mkdtemp(prefix="watch-bench-")
    cfg = config.load(None, {
        "listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
        "rewrite": {"gateway": "mesh/gw", "hold_down_s": 0},
        "kubernetes": {"kubeconfig": kubeconfig(os.path.join(tmp, "kubeconfig"), info["url"]),
                       "backoff_initial_s": 0.05, "backoff_max_s": 0.3},
    })

    results: dict[str, Any] = {}
    dns_server = None
    lag = None
    with GcPauses() as gcp:
        try:
            # 1. start-up: App start until the view is synced.
            t_start = time.monotonic()
            dns_server = ServerThread(cfg).start()
            t_bound = time.monotonic()
            app = dns_server.app
            wait_until(lambda: app.ready, 120, "initial sync")
            t_ready = time.monotonic()
            results["ready"] = t_ready - t_start
            results["bound"] = t_bound - t_start
            results["view_services"] = len(app.view.services)
            note(f"ready in {results['ready']:.2f} s (DNS bound after {results['bound']:.2f} s); "
                 f"{results['view_services']} services in the view")
            port = dns_server.port

            # 2. idle baseline, then a full relist, with the probe and the lag sampler on.
            lag = LoopLag(dns_server.loop).start()
            probe_conn.send((port, info["probe_names"]))
            time.sleep(0.5)  # let the probe warm up
            windows: dict[str, tuple[float, float]] = {}
            t = time.monotonic()
            time.sleep(IDLE_S)
            windows["idle"] = (t, time.monotonic())

            stats = app.kube_source.stats
            lists_before = dict(stats.lists)
            expired_before = stats.restarts["expired"]
            gc_before = len(gcp.pauses)
            t = time.monotonic()
            closed = host.relist()
            wait_until(lambda: all(stats.lists[k] > lists_before.get(k, 0)
                                   for k in ("Namespace", "Service", "EndpointSlice")),
                       60, "relist")
            app.writer.submit(lambda builder: None).wait(60)  # the relist is published
            t_relisted = time.monotonic()
            time.sleep(RELIST_TAIL_S)
            windows["relist"] = (t, time.monotonic())
            results["relist"] = t_relisted - t
            results["relist_expired"] = stats.restarts["expired"] - expired_before
            results["relist_closed"] = closed
            results["view_after_relist"] = len(app.view.services)
            note(f"relist: {closed} watches closed, {results['relist_expired']} expired, "
                 f"relisted and published in {results['relist']:.2f} s, "
                 f"{len(gcp.pauses) - gc_before} gc collections")
            time.sleep(0.5)

            # 3. label flips, 20 each way and back, 10 and 1000 Services.
            flips: dict[str, list[dict[str, Any]]] = {}
            targets = [(SMALL_NS, False)] + ([(BIG_NS, True)] if big else [])
            for ns, sweep in targets:
                runs = []
                t = time.monotonic()
                for i in range(FLIPS):
                    runs.append(host.flip(port, ns, i % 2 == 0, sweep))
                    time.sleep(0.05)
                windows[f"flip {ns}"] = (t, time.monotonic())
                flips[ns] = runs
                note(f"flips of {ns}: p50 {ms(pct([r['first'] for r in runs], 50))} ms")
            time.sleep(0.2)
        finally:
            probe_stop.set()
            if lag is not None:
                lag.stop()
            # The probe's results come before the server stops: no refused tail.
            got = probe_conn.recv() if probe_conn.poll(10) else None
            if dns_server is not None:
                dns_server.stop()
            host.stop()
            probe.join(5)
    if got is None:
        raise SystemExit("the probe sent no results")
    sent_b, lat_b, lost = got
    sent, lats = array.array("d"), array.array("d")
    sent.frombytes(sent_b)
    lats.frombytes(lat_b)
    probe_samples = list(zip(sent, lats, strict=True))
    elapsed = time.monotonic() - began

    # --- summary ---------------------------------------------------------------------
    rows = []
    for name, (start, end) in windows.items():
        replies = [(t, v) for t, v in probe_samples if start <= t <= end]
        latencies = [v for _, v in replies]
        worst_at, worst = max(replies, key=lambda r: r[1], default=(0.0, math.nan))
        loop_lag = window(lag.samples if lag else [], start, end)
        grid_lag = window(lag.grid if lag else [], start, end)
        pauses = [p for s, p, g in gcp.pauses if start <= s <= end]
        gen2 = [p for s, p, g in gcp.pauses if start <= s <= end and g == 2]
        rows.append((name, f"{end - start:.1f}", str(len(replies)),
                     str(sum(math.isinf(v) for v in latencies)),
                     ms(pct(latencies, 50)), ms(pct(latencies, 99)), ms(worst),
                     ms(gc_overlap(gcp.pauses, worst_at, worst)),
                     ms(pct(loop_lag, 99)), ms(max(loop_lag, default=math.nan)),
                     ms(max(grid_lag, default=math.nan)),
                     ms(max(pauses, default=0.0)), str(len(gen2))))
    head = ("window", "s", "queries", "lost", "reply p50 ms", "reply p99 ms", "reply max ms",
            "gc during max reply ms", "loop lag p99 ms", "loop lag max ms",
            "lag vs 5 ms tick max ms", "gc max pause ms", "gen2 gcs")
    stall_table = _table(head, rows)

    flip_rows = []
    for ns, runs in flips.items():
        label = f"{info['counts'][ns]} services ({ns})"
        first = [r["first"] for r in runs]
        flip_rows.append((label, "one service", ms(pct(first, 50)), ms(pct(first, 99)),
                          ms(max(first)), ""))
        if runs and "last" in runs[0]:
            last = [r["last"] for r in runs]
            stragglers = sum(r["stragglers"] for r in runs)
            flip_rows.append((label, f"last of {runs[0]['sampled']} sampled", ms(pct(last, 50)),
                              ms(pct(last, 99)), ms(max(last)),
                              f"{stragglers} unflipped when first checked"
                              + (" (one atomic swap: the gap is the check's own time)"
                                 if stragglers == 0 else "")))
    flip_table = _table(("namespace flipped", "until", "p50 ms", "p99 ms", "max ms", "note"),
                        flip_rows)

    relist = dict(zip(head, rows[1], strict=True)) if len(rows) > 1 else {}
    idle = dict(zip(head, rows[0], strict=True)) if rows else {}
    interpretation = _interpret(results, relist, idle, flips, info)
    where = "in-process (shares dnsrewrite's GIL)" if args.api_in_process else "child process"
    summary = "\n".join([
        f"- ready (App start -> synced): {results['ready']:.2f} s for "
        f"{results['view_services']} services; relist of all three kinds "
        f"({results['relist_expired']} x 410) published in {results['relist']:.2f} s",
        f"- fake API server: {where}; probe: 1 UDP query / 2 ms from a separate process; "
        f"loop lag: call_soon_threadsafe every 5 ms; relist window runs "
        f"{RELIST_TAIL_S} s past the publish; machine {busy_before:.0f}% busy before the run",
        "",
        stall_table,
        "",
        f"Label flip, {FLIPS} flips each (enroll/unenroll alternating), time from "
        "`api.update(namespace)` to the answer changing (one service polled every 1 ms; "
        "then the sampled ones checked in turn):",
        "",
        flip_table,
        "",
        f"Interpretation: {interpretation}",
    ])
    print()
    print(summary)
    note(f"total run time {elapsed:.0f} s")
    if not args.no_results:
        section = (
            "\n## Watcher: label-flip latency and event-loop stall\n\n"
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, nproc {os.cpu_count()}, "
            f"Python {sys.version.split()[0]}, `{command}` ({elapsed:.0f} s)\n\n"
            f"{summary}\n"
        )
        path = os.path.join(HERE, "RESULTS.md")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, section.encode())  # one append: safe beside another writer
        finally:
            os.close(fd)
        note(f"appended to {os.path.relpath(path, ROOT)}")
    return 0


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _interpret(results: dict, relist: dict, idle: dict, flips: dict, info: dict) -> str:
    parts = []
    if relist:
        parts.append(
            f"a full relist of {results['view_services']} services stalls UDP replies for up to "
            f"{relist['reply max ms']} ms (p99 {relist['reply p99 ms']} ms vs "
            f"{idle.get('reply p99 ms', '-')} ms idle), {relist['gc during max reply ms']} ms "
            f"of which was a stop-the-world gc pause; the loop lags up to "
            f"{relist['loop lag max ms']} ms call->run ({relist['lag vs 5 ms tick max ms']} ms "
            "counting gc)")
    for ns, runs in flips.items():
        first = [r["first"] for r in runs]
        text = f"a {info['counts'][ns]}-service flip shows in {ms(pct(first, 50))} ms p50"
        if runs and "last" in runs[0]:
            text += (f" and all {runs[0]['sampled']} sampled services follow by "
                     f"{ms(pct([r['last'] for r in runs], 50))} ms p50")
        parts.append(text)
    return "; ".join(parts) + "."


if __name__ == "__main__":
    sys.exit(main())
