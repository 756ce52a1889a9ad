#!/usr/bin/env python3
"""Scale, programming latency, churn and memory of dnsrewrite fed by the fake API server.

    .venv/bin/python benchmarks/scale_bench.py scale  [--services 100000 --namespaces 10000]
    .venv/bin/python benchmarks/scale_bench.py churn  [--services 10000 --namespaces 1000]
    .venv/bin/python benchmarks/scale_bench.py memory [--services 20000 --namespaces 2000]
    .venv/bin/python benchmarks/scale_bench.py loop   [--services 10000 --namespaces 1000]

Every command first waits for CPUs 0 and 1 to be idle (`--wait-quiet`), runs the
`dnsrewrite` package copied from the working tree when the command starts (or
`--rev REV`, extracted with `git archive`), prints its figures and, unless
`--no-results`, appends them to benchmarks/RESULTS.md.

Processes and CPUs (2-CPU machine):
* dnsrewrite: `dnsrewrite serve` as a subprocess pinned to CPU 1 (`taskset -c 1`), with a
  kubeconfig pointing at the fake API, metrics on, run through `serve_traced.py`, which
  records gc pauses, list and publish timings in a trace file without changing the package;
* the fake API server (tests/fakeapi, a copy taken with dnsrewrite's) in a child process
  pinned to CPU 0, with everything that drives it: the bulk load, the relist, the
  namespace flips (update, then poll DNS every 1 ms), the EndpointSlice churn;
* the UDP probe (`scale`, `loop`): one A query every 2 ms from another child on CPU 0;
* dnsperf (`churn`): pinned to CPU 0, as in throughput.sh;
* this process: CPU 0, mostly asleep (polls /ready every 50 ms, reads /proc); in
  `memory` and `loop` it runs dnsrewrite itself instead, pinned to CPU 1.

`scale`: 100,000 Services in 10,000 namespaces, 3 single-stack endpoints each (every
eighth Service headless), half the namespaces enrolled. Measures the time from process
start to /ready, VmRSS after the sync and after a full relist (every watch made to
resume from a compacted resourceVersion: 410 -> list -> replace, all three kinds), the
longest probe reply during the relist, and the time from the update of a namespace to
its Services' answers changing (1,000 and 10 Services, enroll/unenroll alternating).
`--py-spy startup|relist` adds a py-spy profile of that phase (a separate, slower run).

`churn`: the benchmark cluster of throughput.sh (`gen_cluster.py 10000 1000`) served
from the fake API. dnsperf at full speed with the throughput.sh query file minus every
query that names a churned namespace, idle vs while the EndpointSlices of the last 10%
of namespaces are updated at `--rate 50` per second (one endpoint address changed per
update), interleaved: idle, churn, idle, churn.

`memory`: dnsrewrite in this process (only the delta is counted) with tracemalloc on,
fed by the fake API in a child: the top allocation sites by file:line after the sync,
and an accounting of every object reachable from the builder and the view, by what
holds it and by type, per Service and per endpoint.

`loop`: `scale`'s phases (sync, idle, relist, flips) at 10,000 Services with dnsrewrite
in this process instead (the App on its own loop thread, pinned to CPU 1, `scale`'s
config), to sample its event loop: every 5 ms a thread puts a callback on the loop and
records call -> run and intended tick -> run (the latter also counts gc pauses and GIL
waits that froze the sampler), beside the probe and every gc collection, per window.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import datetime
import gc
import http.client
import json
import math
import multiprocessing as mp
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402 - the dnsperf runner of throughput.sh, and small helpers

OUT = os.path.join(HERE, "out")
PY = sys.executable
SERVER_CPU, CLIENT_CPU = 1, 0
ZONE = "cluster.local"
ENROLL = {"dnsrewrite.io/enroll": "true"}
BIG, SMALL = 1000, 10
BIG_NS, SMALL_NS = "ns-0000", "ns-0001"
SAMPLED = 50
PROBE_INTERVAL_S = 0.002
FLIP_POLL_S = 0.001
LAG_INTERVAL_S = 0.005
RELIST_TAIL_S = 0.5
KINDS = ("Namespace", "Service", "EndpointSlice")


def note(message: str) -> None:
    print(f"[scale-bench] {message}", file=sys.stderr, flush=True)


# --- small helpers ---------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "lost"
    return f"{value * 1000:.1f}" if value < 10 else f"{value * 1000:.0f}"


def table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_times() -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per CPU."""
    out = {}
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                numbers = [int(v) for v in values]
                idle = numbers[3] + numbers[4]
                out[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return out


def busy(before: dict, after: dict, cpu: int) -> float:
    total = after[cpu][1] - before[cpu][1]
    return 100 * (after[cpu][0] - before[cpu][0]) / total if total else 0.0


def wait_quiet(max_wait: float, threshold: float = 15.0) -> dict[int, float]:
    """Wait (up to max_wait s) until CPUs 0 and 1 are both under threshold% busy."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_times()
        time.sleep(2)
        after = cpu_times()
        load = {cpu: round(busy(before, after, cpu)) for cpu in (CLIENT_CPU, SERVER_CPU)}
        if all(v < threshold for v in load.values()):
            return load
        if time.monotonic() > deadline:
            note(f"CPUs still busy {load}; measuring anyway")
            return load
        note(f"waiting for other work to finish: CPU busy % {load}")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon ... in kB."""
    values = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                values[key] = int(rest.split()[0])
    return values


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def metric(port: int, name: str) -> float:
    _, body = http_get(port, "/metrics", timeout=10)
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return math.nan


# --- what is measured: a copy of the code -------------------------------------------------
def snapshot_source(rev: str | None, scratch: str) -> tuple[str, str]:
    """Copy dnsrewrite/ and tests/fakeapi/ (working tree, or `rev`) into scratch/src."""
    target = os.path.join(scratch, "src")
    os.makedirs(os.path.join(target, "tests"), exist_ok=True)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    if rev:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", rev], check=True,
                                capture_output=True, text=True).stdout.strip()
        archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "dnsrewrite",
                                  "tests/fakeapi"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
        return target, f"commit {commit}"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(os.path.join(ROOT, "dnsrewrite"), os.path.join(target, "dnsrewrite"),
                    ignore=ignore)
    shutil.copytree(os.path.join(ROOT, "tests", "fakeapi"),
                    os.path.join(target, "tests", "fakeapi"), ignore=ignore)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "dnsrewrite"],
                           capture_output=True, text=True).stdout.split("\n")
    changed = sorted(os.path.basename(line[3:]) for line in dirty if line.strip())
    label = f"working tree at {head}"
    if changed:
        label += f" with uncommitted changes ({', '.join(changed)})"
    return target, label


# --- the fake API host (child process, CPU 0) ---------------------------------------------
class _Ips:
    """Unique IPv4 addresses counting up from a base (integer arithmetic: fast)."""

    def __init__(self, a: int, b: int) -> None:
        self.n = (a << 24) + (b << 16) + 10

    def next(self) -> str:
        n, self.n = self.n, self.n + 1
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def layout(n_services: int, n_namespaces: int) -> dict[str, int]:
    """Services per namespace: ns-0000 holds 1000 (when there are enough), ns-0001 ten,
    the rest spread round-robin over the other namespaces."""
    big = BIG if n_services >= 2 * BIG and n_namespaces >= 3 else 0
    small = min(SMALL, n_services)
    counts = {f"ns-{i:04d}": 0 for i in range(n_namespaces)}
    counts[BIG_NS], counts[SMALL_NS] = big, small
    regular = [ns for ns in counts if ns != SMALL_NS and not (ns == BIG_NS and big)]
    for j in range(max(n_services - big - small, 0)):
        counts[regular[j % len(regular)]] += 1
    return counts


def query_wire(name: str, qtype: str = "A") -> bytes:
    import dns.message

    return dns.message.make_query(name, qtype).to_wire()


def udp_socket(port: int, timeout: float = 1.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(timeout)
    return sock


def a_records(sock: socket.socket, wire: bytes, qid: int) -> list[str] | None:
    import dns.message
    import dns.rdatatype

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


class Host:
    """Owns the FakeApiServerThread and drives it; runs in the child process."""

    def __init__(self) -> None:
        self.api: Any = None
        self.sample: dict[str, list[tuple[str, str]]] = {}
        self.gateway_vip = ""
        self.churn_task: Any = None
        self.churned = 0
        self.churn_started = 0.0

    def _start_api(self) -> None:
        from tests.fakeapi.server import FakeApiServerThread

        self.api = FakeApiServerThread().start()

    def start_synthetic(self, n_services: int, n_namespaces: int) -> dict[str, Any]:
        """The scale cluster: 3 single-stack ready endpoints per Service, every eighth
        Service headless (never in the two flipped namespaces)."""
        from tests.fakeapi import objects as k8s

        self._start_api()
        ips = _Ips(10, 128)
        objs: list[dict] = [k8s.namespace("mesh")]
        gw = k8s.service("mesh", "gw", ports=[("http", 80, "TCP")])
        self.gateway_vip = gw["spec"]["clusterIP"]
        objs.append(gw)
        objs.append(k8s.endpoint_slice(
            "mesh", "gw-abcde", "gw", ports=[("http", 80, "TCP")],
            endpoints=[{"addresses": [ips.next()], "ready": True} for _ in range(3)]))
        counts = layout(n_services, n_namespaces)
        probe: list[str] = []
        enrolled_ns = headless = endpoints = 0
        for i, (ns, count) in enumerate(counts.items()):
            enrolled = i % 2 == 0 and ns not in (BIG_NS, SMALL_NS)
            enrolled_ns += enrolled
            objs.append(k8s.namespace(ns, ENROLL if enrolled else {}))
            members: list[tuple[str, str]] = []
            flipped = ns in (BIG_NS, SMALL_NS)
            for j in range(count):
                name = f"svc-{j:04d}"
                is_headless = not flipped and (i + j) % 8 == 7
                headless += is_headless
                svc = k8s.service(ns, name, ports=[("http", 80, "TCP")], headless=is_headless)
                objs.append(svc)
                objs.append(k8s.endpoint_slice(
                    ns, f"{name}-abcde", name, ports=[("http", 80, "TCP")],
                    endpoints=[{"addresses": [ips.next()], "ready": True} for _ in range(3)]))
                endpoints += 3
                if not is_headless:
                    members.append((f"{name}.{ns}.svc.{ZONE}.", svc["spec"]["clusterIP"]))
            if flipped and members:
                step = max(1, len(members) // SAMPLED)
                self.sample[ns] = members[::step][:SAMPLED]
            elif members and i % max(1, n_namespaces // 64) == 0:
                probe.append(members[0][0])
        self.api.load(objs, copy=False)
        return {"url": self.api.url, "probe_names": probe, "objects": len(objs),
                "enrolled_namespaces": enrolled_ns, "headless": headless,
                "endpoints": endpoints, "counts": {ns: counts[ns] for ns in (BIG_NS, SMALL_NS)}}

    def start_items(self, path: str) -> dict[str, Any]:
        """Load a gen_cluster.py List (kinds and apiVersions included)."""
        self._start_api()
        with open(path) as handle:
            items = json.load(handle)["items"]
        self.api.load(items, copy=False)
        kinds = collections.Counter(item["kind"] for item in items)
        return {"url": self.api.url, "objects": len(items), "kinds": dict(kinds)}

    def relist(self) -> int:
        """Bump, compact, close every watch: each resumes from an expired RV (410)."""
        server = self.api.server

        def expire_everything() -> int:
            server.bump_rv(1)
            server.compact()
            return server.close_watches()

        return self.api.call(expire_everything)

    def flip(self, port: int, ns: str, enroll: bool, sweep: bool) -> dict[str, Any]:
        """Update the namespace, poll one Service every 1 ms until its A record flips;
        with `sweep`, then check the sampled Services until every one has."""
        from tests.fakeapi import objects as k8s

        sample, vip = self.sample[ns], self.gateway_vip

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
                if time.monotonic() - t0 > 60:
                    raise RuntimeError(f"{ns} did not flip within 60 s")
                tick += FLIP_POLL_S
                delay = tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            result: dict[str, Any] = {"first": t_first, "t0": t0}
            if sweep:
                pending, stragglers, t_last = list(wires[1:]), -1, t_first
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
                    if time.monotonic() - t0 > 60:
                        raise RuntimeError(f"{ns}: {len(left)} sampled services never flipped")
                result.update(last=t_last, stragglers=max(stragglers, 0), sampled=len(wires))
            return result
        finally:
            sock.close()

    def start_churn(self, rate: float, namespaces: list[str]) -> int:
        """Update one EndpointSlice of `namespaces` every 1/rate s (round-robin), each time
        giving its first endpoint a new address; on the fake API's own loop."""
        server = self.api.server
        wanted = set(namespaces)
        keys = sorted(k for k in server.store.objects["endpointslices"]
                      if k.split("/", 1)[0] in wanted)
        ips = _Ips(10, 200)

        async def run() -> None:
            loop = asyncio.get_running_loop()
            tick = loop.time()
            i = 0
            while True:
                tick += 1 / rate
                await asyncio.sleep(max(0.0, tick - loop.time()))
                key = keys[i % len(keys)]
                current = server.store.objects["endpointslices"][key]
                endpoints = list(current.get("endpoints") or [])
                if not endpoints:
                    i += 1
                    continue
                endpoints[0] = {**endpoints[0], "addresses": [ips.next()]}
                server.update({**current, "kind": "EndpointSlice",
                               "apiVersion": "discovery.k8s.io/v1", "endpoints": endpoints})
                i += 1
                self.churned += 1

        def begin() -> None:
            self.churn_task = asyncio.ensure_future(run())

        self.churned = 0
        self.churn_started = time.monotonic()
        self.api.call(begin)
        return len(keys)

    def stop_churn(self) -> dict[str, float]:
        task = self.churn_task
        self.api.call(lambda: task.cancel())
        elapsed = time.monotonic() - self.churn_started
        return {"updates": self.churned, "seconds": elapsed}

    def cpu_seconds(self) -> float:
        t = os.times()
        return t.user + t.system

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None


def _host_main(conn: Any, src: str) -> None:
    os.sched_setaffinity(0, {CLIENT_CPU})
    sys.path.insert(0, src)
    host = Host()
    while True:
        method, args = conn.recv()
        if method == "exit":
            host.stop()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", getattr(host, method)(*args)))
        except Exception as err:
            conn.send(("err", f"{type(err).__name__}: {err}"))


class RemoteHost:
    def __init__(self, ctx: Any, src: str) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_host_main, args=(child, src), name="fakeapi-host",
                                daemon=True)
        self.proc.start()

    def call(self, method: str, *args: Any) -> Any:
        self.conn.send((method, args))
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"fake API host: {value}")
        return value

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError, EOFError, RuntimeError):
                self.call("exit")
            self.proc.join(10)


# --- the probe (child process, CPU 0) -----------------------------------------------------
def _probe_main(conn: Any, stop: Any) -> None:
    """Wait for (port, names); query every 2 ms until `stop`; send back send times,
    latencies (inf: no reply within 1 s) and the count lost."""
    os.sched_setaffinity(0, {CLIENT_CPU})
    port, names = conn.recv()
    wires = [query_wire(n) for n in names]
    sock = udp_socket(port, timeout=1.0)
    sent, lat = array.array("d"), array.array("d")
    lost = qid = 0
    tick = time.monotonic()
    while not stop.is_set():
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        tick = max(tick + PROBE_INTERVAL_S, time.monotonic())
        qid = (qid + 1) & 0xFFFF
        packet = struct.pack("!H", qid) + wires[qid % len(wires)][2:]
        t0 = time.monotonic()
        data = None
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
        except ConnectionRefusedError:
            break
        sent.append(t0)
        lat.append(time.monotonic() - t0 if data is not None else math.inf)
    conn.send((sent.tobytes(), lat.tobytes(), lost))


class Probe:
    """The probe child: `begin(port, names)` starts the queries; `finish()`, called before
    the server stops (no refused tail), ends them and returns [(sent at, latency)]."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=_probe_main, args=(child, self.stop), name="probe",
                                daemon=True)
        self.proc.start()

    def begin(self, port: int, names: list[str]) -> None:
        self.conn.send((port, names))

    def finish(self) -> list[tuple[float, float]] | None:
        self.stop.set()
        got = self.conn.recv() if self.conn.poll(10) else None
        self.proc.join(5)
        if got is None:
            return None
        sent, lats = array.array("d"), array.array("d")
        sent.frombytes(got[0])
        lats.frombytes(got[1])
        return list(zip(sent, lats, strict=True))


# --- dnsrewrite's configuration (the same for the subprocess and in-process) --------------
def write_kubeconfig(path: str, api_url: str) -> str:
    with open(path, "w") as handle:
        handle.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{api_url}"}}}}]
users: [{{name: bench, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: bench}}}}]
current-context: fake
""")
    return path


def write_config(scratch: str, api_url: str, gateway: str,
                 log_level: str = "info") -> tuple[str, int, int]:
    """config.yaml (and kubeconfig) in scratch: dnsrewrite watching the fake API on free
    loopback ports; returns (path, DNS port, admin port)."""
    port, admin = bench.free_port(), bench.free_port()
    kubeconfig = write_kubeconfig(os.path.join(scratch, "kubeconfig"), api_url)
    path = os.path.join(scratch, "config.yaml")
    with open(path, "w") as handle:
        handle.write(f"""# scale_bench.py: dnsrewrite watching the fake API server
listen: ["127.0.0.1:{port}"]
admin_listen: "127.0.0.1:{admin}"
zones: [cluster.local, in-addr.arpa, ip6.arpa]
ttl_s: 5
log_level: {log_level}
rewrite:
  gateway: {gateway}
  hold_down_s: 0
kubernetes:
  kubeconfig: {kubeconfig}
  backoff_initial_s: 0.05
  backoff_max_s: 0.3
shutdown:
  lameduck_s: 0
""")
    return path, port, admin


# --- dnsrewrite as a subprocess -----------------------------------------------------------
class Dnsrewrite:
    """`dnsrewrite serve` from the snapshot, pinned to CPU 1, traced (serve_traced.py)."""

    def __init__(self, src: str, scratch: str, api_url: str, gateway: str,
                 log_level: str = "info") -> None:
        self.trace_path = os.path.join(scratch, "trace.txt")
        self.log_path = os.path.join(scratch, "dnsrewrite.log")
        self.config_path, self.port, self.admin = write_config(scratch, api_url, gateway,
                                                               log_level)
        self.cmd = ["taskset", "-c", str(SERVER_CPU), PY, os.path.join(HERE, "serve_traced.py"),
                    src, self.trace_path, "serve", "--config", self.config_path]
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> Dnsrewrite:
        with open(self.log_path, "w") as log:
            self.started = time.monotonic()
            self.process = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            with open(self.log_path) as handle:
                tail = handle.read()[-3000:]
            raise SystemExit(f"dnsrewrite exited with {self.process.returncode}:\n{tail}")

    def wait_status(self, path: str, timeout: float, every: float = 0.05) -> float:
        """Poll admin `path` every 50 ms until 200; the monotonic time it answered.

        Not faster: each poll is an HTTP request that dnsrewrite serves on the CPU
        it is loading the cluster with (a kubelet polls every 10 s), and 100 polls/s
        cost it about 2 s of a 17 s start-up. So ready figures are within 50 ms.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, _ = http_get(self.admin, path, timeout=1.0)
                if status == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(every)
        raise SystemExit(f"dnsrewrite: {path} not 200 within {timeout} s")

    def trace(self) -> list[list[str]]:
        with open(self.trace_path) as handle:
            return [line.split() for line in handle if line.strip()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class InProcessApp:
    """dnsrewrite's App in this process on its own event-loop thread, as the tests run it
    (`memory`, `loop`); the snapshot must already be first on sys.path."""

    def __init__(self, cfg: Any) -> None:
        from dnsrewrite.app import App

        self.make_app = lambda: App(cfg)
        self.app: Any = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="app", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.app = self.make_app()
            await self.app.run(install_signals=False)

        self.loop.run_until_complete(main())

    def start(self) -> InProcessApp:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def wait_ready(self, timeout: float) -> float:
        """Until synced and DNS is bound; the monotonic time it was."""
        deadline = time.monotonic() + timeout
        while self.app is None or not (self.app.ready and self.app.server.bound):
            if not self.thread.is_alive():
                raise SystemExit("dnsrewrite (in-process) stopped before it was ready")
            if time.monotonic() > deadline:
                raise SystemExit(f"dnsrewrite (in-process) not ready within {timeout} s")
            time.sleep(0.01)
        return time.monotonic()

    def stop(self) -> None:
        if self.app is not None:
            self.loop.call_soon_threadsafe(self.app.request_stop, False)
        self.thread.join(15)


def records(trace: list[list[str]], kind: str) -> list[list[str]]:
    return [r for r in trace if r[0] == kind]


class PySpy:
    """py-spy record of a process for one phase, sampling only the thread that holds the
    GIL (`--gil`: where the interpreter's time goes, gc included under the frame that
    triggered it); summarized as top functions."""

    def __init__(self, pid: int, path: str, rate: int = 100) -> None:
        exe = os.path.join(os.path.dirname(PY), "py-spy")
        self.path = path
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
             "--threads", "--gil", "--output", path], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        return summarize_pyspy(self.path)


def summarize_pyspy(path: str, top: int = 15) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as handle:
        for line in handle:
            stack, _, count_text = line.rstrip().rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            frames = stack.split(";")
            thread = re.sub(r"^thread \((0x)?[0-9a-f]+\):?\s*", "", frames[0]).strip() or "?"
            threads[thread] += count
            total += count
            funcs = [re.sub(r":\d+\)$", ")", f) for f in frames[1:]]
            if funcs:
                own[funcs[-1]] += count
            for f in set(funcs):
                inclusive[f] += count
    if not total:
        return "(no samples)"
    lines = [f"{total} samples with the GIL held; by thread: " + ", ".join(
        f"{name} {100 * n / total:.0f}%" for name, n in threads.most_common(6))]
    lines.append("")
    lines.append(table(("rank", "own %", "function (own samples)"),
                       [(str(i), f"{100 * n / total:.1f}", f"`{f}`")
                        for i, (f, n) in enumerate(own.most_common(top), 1)]))
    lines.append("")
    skip = ("_bootstrap", "run (threading.py)", "_bootstrap_inner")
    inc = [(f, n) for f, n in inclusive.most_common(top + 10) if not f.startswith(skip)]
    lines.append(table(("rank", "incl. %", "function (inclusive samples)"),
                       [(str(i), f"{100 * n / total:.1f}", f"`{f}`")
                        for i, (f, n) in enumerate(inc[:top], 1)]))
    return "\n".join(lines)


# --- scale --------------------------------------------------------------------------------
def load_synthetic(host: RemoteHost, args: argparse.Namespace) -> dict[str, Any]:
    """The `scale` cluster into the fake API."""
    t = time.monotonic()
    info = host.call("start_synthetic", args.services, args.namespaces)
    note(f"fake API: {info['objects']} objects in {time.monotonic() - t:.1f} s "
         f"({args.services} Services of which {info['headless']} headless, "
         f"{info['endpoints']} endpoints, {args.namespaces} namespaces, "
         f"{info['enrolled_namespaces']} enrolled)")
    return info


def run_flips(host: RemoteHost, port: int, info: dict[str, Any], count: int,
              windows: dict[str, tuple[float, float]]) -> dict[str, list[dict[str, Any]]]:
    """`count` flips (enroll/unenroll alternating) of the 10-Service namespace, then of the
    1,000-Service one if there is one (its sampled Services swept too); a window each."""
    flips: dict[str, list[dict[str, Any]]] = {}
    big = info["counts"][BIG_NS] == BIG
    for ns, sweep in [(SMALL_NS, False)] + ([(BIG_NS, True)] if big else []):
        runs = []
        t = time.monotonic()
        for i in range(count):
            runs.append(host.call("flip", port, ns, i % 2 == 0, sweep))
            time.sleep(0.1)
        windows[f"flip {ns}"] = (t, time.monotonic())
        flips[ns] = runs
        note(f"flips of {ns}: p50 {ms(pct([r['first'] for r in runs], 50))} ms, "
             f"p99 {ms(pct([r['first'] for r in runs], 99))} ms")
    return flips


def cmd_scale(args: argparse.Namespace, scratch: str, src: str, label: str) -> tuple[str, str]:
    ctx = mp.get_context("spawn")
    host = RemoteHost(ctx, src)
    probe = Probe(ctx)
    server: Dnsrewrite | None = None
    spy: PySpy | None = None
    profiles: dict[str, str] = {}
    res: dict[str, Any] = {}
    try:
        info = load_synthetic(host, args)
        # The API's own time to serve the three lists to a bare client (bytes only).
        res["api_list_s"] = bare_list_time(info["url"], 500)
        note(f"the fake API serves the three lists (pages of 500) in {res['api_list_s']:.2f} s "
             "to a client that only reads the bytes")
        server = Dnsrewrite(src, scratch, info["url"], "mesh/gw").start()
        if "startup" in args.py_spy:
            while not os.path.getsize(server.trace_path) if os.path.exists(server.trace_path) \
                    else True:
                time.sleep(0.005)
            spy = PySpy(server.pid, os.path.join(scratch, "startup.pyspy"))
        t_health = server.wait_status("/health", 120)
        t_ready = server.wait_status("/ready", 600)
        if spy is not None:
            profiles["startup"] = spy.stop()
            spy = None
        res["ready"] = t_ready - server.started
        res["health_to_ready"] = t_ready - t_health
        trace = server.trace()
        start = float(records(trace, "start")[0][1])
        imported = records(trace, "imported")[0]
        res["import_s"] = float(imported[1]) - start
        res["rss_imported_mb"] = int(imported[2]) / 1024
        res["lists"] = {r[3]: (float(r[1]) - server.started, float(r[2]), int(r[4]))
                        for r in records(trace, "fetch")}
        res["list_total"] = {r[3]: float(r[2]) for r in records(trace, "list")}
        first_full = [r for r in records(trace, "publish") if r[4] == "1" and r[7] == "1"]
        res["initial_publish_s"] = float(first_full[0][2]) if first_full else math.nan
        note(f"ready in {res['ready']:.2f} s from process start ({res['health_to_ready']:.2f} s "
             f"after /health first answered); initial publish {res['initial_publish_s']:.2f} s")
        time.sleep(3)
        res["rss_synced"] = proc_status(server.pid)
        note(f"after sync: VmRSS {res['rss_synced']['VmRSS'] / 1024:.0f} MB, "
             f"VmHWM {res['rss_synced']['VmHWM'] / 1024:.0f} MB")

        # Idle, then a full relist, with the probe on.
        probe.begin(server.port, info["probe_names"])
        time.sleep(0.5)
        windows: dict[str, tuple[float, float]] = {}
        t = time.monotonic()
        time.sleep(3.0)
        windows["idle"] = (t, time.monotonic())
        cpu_before = cpu_times()
        if "relist" in args.py_spy:
            spy = PySpy(server.pid, os.path.join(scratch, "relist.pyspy"))
        t_relist = time.monotonic()
        closed = host.call("relist")
        done = wait_relisted(server, t_relist, 300)
        if spy is not None:
            profiles["relist"] = spy.stop()
            spy = None
        windows["relist"] = (t_relist, done + RELIST_TAIL_S)
        time.sleep(max(0.0, done + RELIST_TAIL_S - time.monotonic()))
        res["relist_cpu_busy"] = {c: busy(cpu_before, cpu_times(), c) for c in (0, 1)}
        res["relist_s"] = done - t_relist
        res["relist_closed"] = closed
        trace = server.trace()
        res["relist_publishes"] = [(float(r[1]) - t_relist, float(r[2]), float(r[3]))
                                   for r in records(trace, "publish")
                                   if float(r[1]) >= t_relist and r[4] == "1"]
        res["relist_lists"] = {r[3]: float(r[2]) for r in records(trace, "list")
                               if float(r[1]) >= t_relist}
        note(f"relist: {closed} watches closed; processed in {res['relist_s']:.2f} s; "
             f"{len(res['relist_publishes'])} full publishes")
        time.sleep(3)
        res["rss_relisted"] = proc_status(server.pid)
        note(f"after relist: VmRSS {res['rss_relisted']['VmRSS'] / 1024:.0f} MB")

        # Namespace flips.
        if "flips" in args.py_spy:
            spy = PySpy(server.pid, os.path.join(scratch, "flips.pyspy"))
        flips = run_flips(host, server.port, info, args.flips, windows)
        if spy is not None:
            profiles["flips"] = spy.stop()
            spy = None
        res["flips"] = flips
        res["flip_publishes"] = {
            ns: [float(r[2]) for r in records(server.trace(), "publish")
                 if windows[f"flip {ns}"][0] <= float(r[1]) <= windows[f"flip {ns}"][1]
                 and int(r[6]) > 0]
            for ns in flips}
        res["rss_end"] = proc_status(server.pid)
        res["gc"] = [(float(r[1]), float(r[2]), int(r[3])) for r in records(server.trace(), "gc")]
        res["startup_window"] = (server.started, t_ready)
        res["cpu_end"] = proc_cpu(server.pid)
    finally:
        if spy is not None:
            spy.stop()
        samples = probe.finish()
        if server is not None:
            server.stop()
        host.stop()
    if samples is None:
        raise SystemExit("the probe sent no results")
    return report_scale(args, res, info, windows, samples, profiles, label)


def bare_list_time(url: str, page: int) -> float:
    """Seconds for a plain HTTP client to page through the three kinds (reading bytes)."""
    from urllib.parse import quote, urlparse

    host = urlparse(url)
    paths = ("/api/v1/namespaces", "/api/v1/services",
             "/apis/discovery.k8s.io/v1/endpointslices")
    t0 = time.monotonic()
    for path in paths:
        token = ""
        while True:
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
            query = f"?limit={page}" + (f"&continue={quote(token)}" if token else "")
            conn.request("GET", path + query)
            body = conn.getresponse().read()
            conn.close()
            # The continue token is in the metadata at the head of the body.
            match = re.search(rb'"continue":\s*"([^"]+)"', body[:2000])
            if not match:
                break
            token = match.group(1).decode()
    return time.monotonic() - t0


def wait_relisted(server: Dnsrewrite, since: float, timeout: float) -> float:
    """After `since`: every kind replaced (`ClusterBuilder.replace_all` in the writer);
    returns the end of the first publish that began after the last replace, from which
    on the whole relist is served."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trace = server.trace()
        replaces = [r for r in records(trace, "replace") if float(r[1]) >= since]
        kinds = {k for r in replaces for k in r[3].split(",")}
        if kinds >= set(KINDS):
            last = max(float(r[1]) + float(r[2]) for r in replaces)
            after = [float(r[1]) + float(r[2]) for r in records(trace, "publish")
                     if float(r[1]) >= last]
            if after:
                return min(after)
        time.sleep(0.05)
    raise SystemExit("relist not processed in time")


PROBE_HEAD = ("window", "s", "probes", "lost", "p50 ms", "p99 ms", "max ms", "> 50 ms",
              "gc during max ms", "gc max pause ms", "gen-2 gcs")


def probe_rows(windows: dict[str, tuple[float, float]], samples: list[tuple[float, float]],
               gc_pauses: list[tuple[float, float, int]]) -> list[tuple[str, ...]]:
    """One PROBE_HEAD row per window: the probe's replies and the gc pauses (start,
    seconds, generation) in it."""
    rows = []
    for name, (start, end) in windows.items():
        replies = [(t, v) for t, v in samples if start <= t <= end]
        lat = [v for _, v in replies]
        worst_at, worst = max(replies, key=lambda r: r[1], default=(0.0, math.nan))
        in_window = [p for s, p, g in gc_pauses if start <= s <= end]
        gen2 = [p for s, p, g in gc_pauses if start <= s <= end and g == 2]
        # A lost probe waited 1 s (its timeout): the gc time inside that second.
        span = 1.0 if math.isinf(worst) else worst
        during_worst = sum(min(s + p, worst_at + span) - max(s, worst_at)
                           for s, p, _ in gc_pauses
                           if not math.isnan(worst) and s < worst_at + span
                           and s + p > worst_at)
        over = sum(1 for v in lat if v > 0.05)
        rows.append((name, f"{end - start:.1f}", str(len(lat)),
                     str(sum(math.isinf(v) for v in lat)), ms(pct(lat, 50)), ms(pct(lat, 99)),
                     ms(worst), str(over), ms(during_worst), ms(max(in_window, default=0.0)),
                     str(len(gen2))))
    return rows


def flip_table(flips: dict[str, list[dict[str, Any]]], counts: dict[str, int],
               publishes: dict[str, list[float]] | None = None) -> str:
    rows = []
    for ns, runs in flips.items():
        n = counts[ns]
        first = [r["first"] for r in runs]
        pubs = (publishes or {}).get(ns, [])
        rows.append((f"{n} ({ns})", "first polled Service", str(len(first)),
                     ms(pct(first, 50)), ms(pct(first, 99)), ms(max(first)),
                     f"publish p50 {ms(pct(pubs, 50))} ms" if pubs else ""))
        if runs and "last" in runs[0]:
            last = [r["last"] for r in runs]
            stragglers = sum(r["stragglers"] for r in runs)
            rows.append((f"{n} ({ns})", f"last of {runs[0]['sampled']} sampled",
                         str(len(last)), ms(pct(last, 50)), ms(pct(last, 99)),
                         ms(max(last)), f"{stragglers} unflipped when first checked"))
    return table(("Services flipped", "until", "flips", "p50 ms", "p99 ms", "max ms", "note"),
                 rows)


FLIPS_TEXT = ("Namespace flips (enroll/unenroll alternating; from `update(namespace)` on the "
              "fake API to the changed A answer, polled every 1 ms from the fake API's "
              "process; p99 of {} flips is their maximum):")


def report_scale(args: argparse.Namespace, res: dict, info: dict, windows: dict,
                 samples: list[tuple[float, float]], profiles: dict[str, str],
                 label: str) -> tuple[str, str]:
    gc_pauses = res["gc"]
    stall_table = table(PROBE_HEAD, probe_rows(windows, samples, gc_pauses))
    relist = [v for t, v in samples if windows["relist"][0] <= t <= windows["relist"][1]]
    flip_p99 = {info["counts"][ns]: pct([r["first"] for r in runs], 99)
                for ns, runs in res["flips"].items()}
    mb = lambda kb: f"{kb / 1024:.0f}"  # noqa: E731
    rss = res["rss_synced"]["VmRSS"] / 1024
    rss_relist = res["rss_relisted"]["VmRSS"] / 1024
    hwm = res["rss_relisted"]["VmHWM"] / 1024
    lists = ", ".join(f"{k} {v[2]:,} in {v[1]:.2f} s" for k, v in res["lists"].items())
    conv = ", ".join(f"{k} {v:.2f} s" for k, v in res["list_total"].items())
    relist_pubs = ", ".join(f"{d:.2f} s (CPU {c:.2f} s)" for _, d, c in res["relist_publishes"])
    relist_lists = ", ".join(f"{k} {v:.2f} s" for k, v in res["relist_lists"].items())
    relist_stall = max(relist, default=math.nan)
    relist_lost = sum(math.isinf(v) for v in relist)

    def stall_text(value: float, n_lost: int) -> str:
        if math.isinf(value):
            return (f"over 1 s ({n_lost} probes got no reply within the probe's 1 s timeout; "
                    "the longest gc pause is in the table)")
        return f"{ms(value)} ms"

    big_n = BIG if BIG in flip_p99 else None

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    def gc_text(start: float, end: float) -> str:
        pauses = [(p, g) for t, p, g in gc_pauses if start <= t <= end]
        gen2 = [p for p, g in pauses if g == 2]
        return (f"{sum(p for p, _ in pauses):.1f} s in gc pauses ({len(gen2)} gen-2 "
                f"collections, {sum(gen2):.1f} s; longest {ms(max(gen2, default=0.0))} ms)")

    gc_startup = gc_text(*res["startup_window"])
    gc_relist = gc_text(*windows["relist"])
    goals = [
        f"RSS after sync {rss:.0f} MB, after relist {rss_relist:.0f} MB (peak VmHWM "
        f"{hwm:.0f} MB); goal ≤ 250 MB: {verdict(max(rss, rss_relist) <= 250)}",
        f"ready {res['ready']:.2f} s after process start ({res['health_to_ready']:.2f} s after "
        f"the watchers started); goal ≤ 10 s: {verdict(res['ready'] <= 10)}",
        f"longest probe reply during the relist {stall_text(relist_stall, relist_lost)}; "
        f"goal ≤ 50 ms: {verdict(relist_stall <= 0.05)}",
    ]
    if big_n:
        goals.append(f"flip of {big_n} Services: p99 {ms(flip_p99[big_n])} ms; goal ≤ 100 ms: "
                     f"{verdict(flip_p99[big_n] <= 0.1)}")
    summary = "\n".join([
        f"- data: {args.services:,} Services ({info['headless']:,} headless) in "
        f"{args.namespaces:,} namespaces ({info['enrolled_namespaces']:,} enrolled), "
        f"{info['endpoints']:,} endpoints (3 per Service, IPv4), {info['objects']:,} API "
        "objects; dnsrewrite: `dnsrewrite serve` subprocess pinned to CPU 1 (VmRSS of that "
        "process); fake API, probe, flip driver: child processes pinned to CPU 0",
        f"- measured: {label}",
        *[f"- {g}" for g in goals],
        f"- start-up: interpreter + imports {res['import_s']:.2f} s (VmRSS "
        f"{res['rss_imported_mb']:.0f} MB before any data); lists fetched (HTTP + json): "
        f"{lists}; list + convert + submit per kind: {conv}; the initial publish (one "
        f"derivation of everything) {res['initial_publish_s']:.2f} s; {gc_startup} before "
        f"ready. A bare HTTP client pages through the same three lists in "
        f"{res['api_list_s']:.2f} s",
        f"- VmRSS / VmHWM / RssAnon MB: after sync {mb(res['rss_synced']['VmRSS'])} / "
        f"{mb(res['rss_synced']['VmHWM'])} / {mb(res['rss_synced'].get('RssAnon', 0))}; "
        f"after relist {mb(res['rss_relisted']['VmRSS'])} / {mb(res['rss_relisted']['VmHWM'])} / "
        f"{mb(res['rss_relisted'].get('RssAnon', 0))}; after the flips "
        f"{mb(res['rss_end']['VmRSS'])}",
        f"- relist ({res['relist_closed']} watches closed -> 410 -> list -> replace): served "
        f"{res['relist_s']:.2f} s after the trigger; lists {relist_lists}; full publishes "
        f"{relist_pubs or 'none'}; {gc_relist}; CPU busy during it: CPU 0 "
        f"{res['relist_cpu_busy'][0]:.0f}%, CPU 1 {res['relist_cpu_busy'][1]:.0f}%",
        "",
        "Probe (1 A query / 2 ms from another process; windows: idle 3 s, relist from the "
        f"trigger to {RELIST_TAIL_S} s after the last full publish, flips):",
        "",
        stall_table,
        "",
        FLIPS_TEXT.format(args.flips),
        "",
        flip_table(res["flips"], info["counts"], res["flip_publishes"]),
    ])
    for phase, profile in profiles.items():
        summary += (f"\n\npy-spy of the {phase} phase (`--gil`: 100 samples/s of whichever "
                    "dnsrewrite thread holds the GIL; a gc pause counts under the frame that "
                    f"set it off):\n\n{profile}")
    title = f"Scale: {args.services:,} Services, {info['endpoints']:,} endpoints"
    if profiles:
        title += f" (profiled run: py-spy on {', '.join(profiles)})"
    return title, summary


# --- loop (in-process) --------------------------------------------------------------------
class LoopLag:
    """Every 5 ms, from a thread, a callback onto the App's loop (call_soon_threadsafe).
    Two delays: call -> run (the loop's own lag), and intended 5 ms tick -> run, which also
    counts the time this thread was itself frozen (a gc pause, the GIL held elsewhere)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.samples: list[tuple[float, float]] = []  # (called, call -> run)
        self.grid: list[tuple[float, float]] = []  # (intended, intended -> run)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-lag", daemon=True)

    def _run(self) -> None:
        def ran(called: float, intended: float) -> None:
            now = time.monotonic()
            self.samples.append((called, now - called))
            self.grid.append((intended, now - intended))

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
    """Every cyclic-gc collection in this process: (start, seconds, generation), as the
    `gc` lines of serve_traced.py."""

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


def cmd_loop(args: argparse.Namespace, scratch: str, src: str, label: str) -> tuple[str, str]:
    import logging

    os.sched_setaffinity(0, {SERVER_CPU})
    sys.path.insert(0, src)
    ctx = mp.get_context("spawn")
    host = RemoteHost(ctx, src)  # the children before this process starts any thread
    probe = Probe(ctx)
    server: InProcessApp | None = None
    lag: LoopLag | None = None
    windows: dict[str, tuple[float, float]] = {}
    res: dict[str, Any] = {}
    log_file = open(os.path.join(scratch, "dnsrewrite.log"), "w")  # noqa: SIM115
    with GcPauses() as gcp:
        try:
            info = load_synthetic(host, args)
            from dnsrewrite import config, logs

            path, port, _ = write_config(scratch, info["url"], "mesh/gw")
            cfg = config.load(path)
            logs.setup(cfg.log_format, cfg.log_level)  # as `serve` logs, to a file
            logging.getLogger().handlers[0].setStream(log_file)
            server = InProcessApp(cfg).start()
            res["ready"] = server.wait_ready(600) - server.started
            app = server.app
            note(f"ready {res['ready']:.2f} s after App() started; "
                 f"{len(app.view.services)} Services in the view")

            # Idle, then a full relist, with the probe and the lag sampler on.
            lag = LoopLag(server.loop).start()
            probe.begin(port, info["probe_names"])
            time.sleep(0.5)
            t = time.monotonic()
            time.sleep(3.0)
            windows["idle"] = (t, time.monotonic())
            stats = app.kube_source.stats
            lists_before = dict(stats.lists)
            t_relist = time.monotonic()
            res["relist_closed"] = host.call("relist")
            while not all(stats.lists[k] > lists_before.get(k, 0) for k in KINDS):
                if time.monotonic() - t_relist > 300:
                    raise SystemExit("relist not processed in time")
                time.sleep(0.005)
            app.writer.submit(lambda builder: None).wait(300)  # the relist is published
            done = time.monotonic()
            res["relist_s"] = done - t_relist
            time.sleep(RELIST_TAIL_S)
            windows["relist"] = (t_relist, done + RELIST_TAIL_S)
            note(f"relist: {res['relist_closed']} watches closed; published "
                 f"{res['relist_s']:.2f} s after the trigger")
            time.sleep(0.5)
            res["flips"] = run_flips(host, port, info, args.flips, windows)
        finally:
            if lag is not None:
                lag.stop()
            samples = probe.finish()
            if server is not None:
                server.stop()
            host.stop()
            log_file.close()
    if samples is None or lag is None:
        raise SystemExit("the probe sent no results")
    rows = []
    for row, (start, end) in zip(probe_rows(windows, samples, gcp.pauses), windows.values(),
                                 strict=True):
        call_run = [v for t, v in lag.samples if start <= t <= end]
        tick_run = [v for t, v in lag.grid if start <= t <= end]
        rows.append((*row, ms(pct(call_run, 99)), ms(max(call_run, default=math.nan)),
                     ms(max(tick_run, default=math.nan))))
    head = (*PROBE_HEAD, "loop lag p99 ms", "loop lag max ms", "lag vs 5 ms tick max ms")
    relist = dict(zip(head, rows[1], strict=True))
    summary = "\n".join([
        f"- data: the `scale` cluster at {args.services:,} Services in {args.namespaces:,} "
        f"namespaces ({info['endpoints']:,} endpoints); dnsrewrite **in-process** (the App on "
        f"its own event-loop thread, as the tests run it, `scale`'s config: `udp_io: "
        f"{getattr(cfg, 'udp_io', 'asyncio')}`) in this process pinned to CPU {SERVER_CPU}, "
        "with the lag sampler and a gc callback; fake API, probe, flip driver: child processes pinned to CPU "
        f"{CLIENT_CPU}",
        f"- measured: {label}",
        f"- ready {res['ready']:.2f} s after `App()` started; relist ({res['relist_closed']} "
        f"watches closed -> 410 -> list -> replace) published {res['relist_s']:.2f} s after "
        f"the trigger; during it the loop lagged up to {relist['loop lag max ms']} ms (p99 "
        f"{relist['loop lag p99 ms']} ms), {relist['lag vs 5 ms tick max ms']} ms counting "
        f"the sampler's own freezes; the longest probe reply was {relist['max ms']} ms",
        "",
        "Probe as in `scale` (UDP, 1 A query / 2 ms); loop lag: a callback put on the App's "
        "event loop every 5 ms from a thread of this process, call -> run (how long TCP, "
        "admin and asyncio callbacks wait) and intended tick -> run (also the time the "
        "sampling thread was frozen: gc, the GIL); gc: every collection in the process:",
        "",
        table(head, rows),
        "",
        FLIPS_TEXT.format(args.flips),
        "",
        flip_table(res["flips"], info["counts"]),
    ])
    return f"Event-loop lag: {args.services:,} Services, dnsrewrite in-process", summary


# --- churn --------------------------------------------------------------------------------
def cmd_churn(args: argparse.Namespace, scratch: str, src: str, label: str) -> tuple[str, str]:

    data_dir = os.path.join(OUT, f"churn-{args.services}-{args.namespaces}")
    cluster = os.path.join(data_dir, "cluster.json")
    if not os.path.exists(cluster):
        note(f"generating {args.services} Services in {args.namespaces} namespaces")
        subprocess.run([PY, os.path.join(HERE, "gen_cluster.py"), str(args.services),
                        str(args.namespaces), "--out", data_dir], check=True)
    with open(cluster) as handle:
        items = json.load(handle)["items"]
    namespaces = sorted({item["metadata"]["namespace"] for item in items
                         if item["kind"] == "Service"
                         and item["metadata"]["namespace"].startswith("ns-")})
    churn_ns = namespaces[-max(1, len(namespaces) // 10):]
    churned = set(churn_ns)
    queries = os.path.join(scratch, "queries.txt")
    kept = total = 0
    with open(os.path.join(data_dir, "queries.txt")) as src_q, open(queries, "w") as dst:
        for line in src_q:
            total += 1
            labels = line.split()[0].split(".")
            if not churned.intersection(labels):
                dst.write(line)
                kept += 1
    note(f"queries: {kept} of {total} (those naming a churned namespace dropped)")

    class Data:
        pass

    data = Data()
    data.queries = queries  # type: ignore[attr-defined]

    ctx = mp.get_context("spawn")
    host = RemoteHost(ctx, src)
    server: Dnsrewrite | None = None
    runs: list[tuple[str, Any, dict]] = []
    profile = ""
    try:
        info = host.call("start_items", cluster)
        note(f"fake API: {info['objects']} objects {info['kinds']}")
        server = Dnsrewrite(src, scratch, info["url"], "mesh-gateway/internal-gateway",
                            log_level="warning").start()
        server.wait_status("/ready", 600)
        proc = bench.Server("dnsrewrite", server.port, server.process, server.log_path)
        note("warm-up: dnsperf 5 s")
        bench.dnsperf(proc, data, 5, args.clients, args.outstanding, None, scratch)
        for round_ in range(args.rounds):
            for mode in ("idle", "churn"):
                time.sleep(1)
                gen0 = metric(server.admin, "dnsrewrite_data_generation")
                host_cpu0 = host.call("cpu_seconds")
                t0 = time.monotonic()
                slices = host.call("start_churn", args.rate, churn_ns) if mode == "churn" else 0
                note(f"round {round_ + 1}: {mode}, dnsperf {args.duration} s")
                spy = (PySpy(server.pid, os.path.join(scratch, "churn.pyspy"))
                       if args.py_spy and mode == "churn" and not profile else None)
                run = bench.dnsperf(proc, data, args.duration, args.clients, args.outstanding,
                                    None, scratch)
                if spy is not None:
                    profile = spy.stop()
                churn = host.call("stop_churn") if mode == "churn" else {"updates": 0,
                                                                         "seconds": 0}
                t1 = time.monotonic()
                trace = server.trace()
                pubs = [r for r in records(trace, "publish") if t0 <= float(r[1]) <= t1]
                gcs = [r for r in records(trace, "gc") if t0 <= float(r[1]) <= t1]
                extra = {
                    "slices": slices, "updates": churn["updates"],
                    "rate": churn["updates"] / churn["seconds"] if churn["seconds"] else 0.0,
                    "generations": metric(server.admin, "dnsrewrite_data_generation") - gen0,
                    "publishes": len(pubs),
                    "publish_ms_p50": pct([float(r[2]) for r in pubs], 50),
                    "publish_ms_max": max((float(r[2]) for r in pubs), default=math.nan),
                    "publish_cpu_s": sum(float(r[3]) for r in pubs),
                    "host_cpu_pct": 100 * (host.call("cpu_seconds") - host_cpu0) / (t1 - t0),
                    "wall": t1 - t0,
                    "gc_s": sum(float(r[2]) for r in gcs),
                    "gc2": sum(1 for r in gcs if r[3] == "2"),
                    "gc_max": max((float(r[2]) for r in gcs), default=0.0),
                }
                runs.append((mode, run, extra))
                note(f"  {run.qps:.0f} qps, {extra['updates']} updates, "
                     f"{extra['publishes']} publishes")
    finally:
        if server is not None:
            server.stop()
        host.stop()
    rows = []
    for i, (mode, run, extra) in enumerate(runs, 1):
        rows.append((str(i), mode, f"{run.qps:,.0f}", str(run.lost), f"{run.p50_ms:.3f}",
                     f"{run.p99_ms:.3f}", f"{run.server_cpu_pct:.0f}%",
                     f"{run.other_on_server_cpu_pct:.0f}%", f"{run.client_cpu_busy_pct:.0f}%",
                     f"{extra['updates']} ({extra['rate']:.1f}/s)" if mode == "churn" else "-",
                     f"{extra['publishes']}",
                     f"{ms(extra['publish_ms_p50'])} / {ms(extra['publish_ms_max'])}"
                     if extra["publishes"] else "-",
                     f"{100 * extra['publish_cpu_s'] / extra['wall']:.1f}%",
                     f"{1000 * extra['gc_s']:.0f} / {extra['gc2']} / {ms(extra['gc_max'])}",
                     f"{extra['host_cpu_pct']:.0f}%"))
    idle = [r.qps for m, r, _ in runs if m == "idle"]
    churn_q = [r.qps for m, r, _ in runs if m == "churn"]
    ratio = (sum(churn_q) / len(churn_q)) / (sum(idle) / len(idle))
    ok = "**met**" if ratio >= 0.8 else "**missed**"
    summary = "\n".join([
        f"- data: `gen_cluster.py {args.services} {args.namespaces}` (the throughput.sh "
        f"cluster) loaded into the fake API ({info['objects']:,} objects); churn: the "
        f"EndpointSlices of the last {len(churn_ns)} namespaces ({churn_ns[0]}..{churn_ns[-1]}, "
        f"{runs[1][2]['slices'] if len(runs) > 1 else '?'} slices), one endpoint address "
        f"changed per update, round-robin, at {args.rate:g}/s; queries: the throughput.sh "
        f"file minus every line naming a churned namespace ({kept:,} of {total:,} lines)",
        f"- measured: {label}",
        f"- CPUs: dnsrewrite (`serve` subprocess, watching the fake API) pinned to CPU "
        f"{SERVER_CPU}; dnsperf (`-c {args.clients} -q {args.outstanding} -l {args.duration:g}`) "
        f"pinned to CPU {CLIENT_CPU}; the fake API server and the churn driver (an asyncio "
        f"task on its loop) in one child process pinned to CPU {CLIENT_CPU}",
        f"- **mean idle {sum(idle) / len(idle):,.0f} qps, under churn "
        f"{sum(churn_q) / len(churn_q):,.0f} qps: {100 * ratio:.0f}% of idle** (goal ≥ 80%: "
        f"{ok})",
        "",
        table(("#", "mode", "qps", "lost", "p50 ms", "p99 ms", "srv CPU", "other on CPU 1",
               "CPU 0 busy", "slice updates", "publishes", "publish p50 / max ms",
               "writer CPU", "gc ms / gen-2 / max ms", "fake API CPU"), rows),
        "",
        "srv CPU: dnsrewrite's CPU time / wall time; other on CPU 1: CPU 1 busy with anything "
        "else; CPU 0 busy: dnsperf + fake API + anything else; writer CPU: thread CPU time "
        "of `ClusterBuilder.publish` / wall time; gc: time in cyclic-gc collections (all threads, "
        "those >= 1 ms and every gen-2), gen-2 collections, longest; fake API CPU: its "
        "process's CPU / wall time.",
    ])
    if profile:
        summary += ("\n\npy-spy of dnsrewrite during the first churn run (`--gil`: 100 "
                    "samples/s of whichever thread holds the GIL; that run's figures include "
                    f"py-spy's cost):\n\n{profile}")
    title = f"Churn: {args.services:,} Services, EndpointSlice updates at {args.rate:g}/s"
    return title + (" (profiled run: py-spy)" if profile else ""), summary


# --- memory (in-process) ------------------------------------------------------------------
def deep_account(roots: list[tuple[str, Any]]) -> tuple[dict, dict]:
    """Bytes (sys.getsizeof) of every object reachable from each root, counted once, for the
    first root that reaches it; by root and by type. Classes, modules, functions, enum
    members and other module-level singletons are not followed."""
    import enum
    import types

    stop_types = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                  types.MethodType, enum.Enum, threading.Thread)
    seen: set[int] = set()
    by_root: dict[str, list[int]] = {}
    by_type: dict[str, list[int]] = {}
    for name, root in roots:
        count = size = 0
        stack = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, stop_types) or obj is None \
                    or isinstance(obj, bool):
                continue
            seen.add(id(obj))
            n = sys.getsizeof(obj)
            count += 1
            size += n
            t = by_type.setdefault(type(obj).__name__, [0, 0])
            t[0] += 1
            t[1] += n
            slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
            if slots and not isinstance(obj, (tuple, str, bytes)):
                for s in slots:
                    if hasattr(obj, s):
                        stack.append(getattr(obj, s))
            else:
                stack.extend(gc.get_referents(obj))
        by_root[name] = [count, size]
    return by_root, by_type


def cmd_memory(args: argparse.Namespace, scratch: str, src: str, label: str) -> tuple[str, str]:
    import logging
    import tracemalloc

    os.sched_setaffinity(0, {SERVER_CPU})
    sys.path.insert(0, src)
    ctx = mp.get_context("spawn")
    host = RemoteHost(ctx, src)
    info = load_synthetic(host, args)
    from dnsrewrite import config, kube  # kubernetes imported before the baseline
    from dnsrewrite.app import App  # noqa: F401 - so is the App (InProcessApp)

    logging.getLogger().handlers[:] = [logging.NullHandler()]
    logging.getLogger().setLevel(logging.INFO)
    kubeconfig = write_kubeconfig(os.path.join(scratch, "kubeconfig"), info["url"])
    cfg = config.load(None, {"listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0",
                             "rewrite": {"gateway": "mesh/gw", "hold_down_s": 0},
                             "kubernetes": {"kubeconfig": kubeconfig}})
    # The kubernetes client imports and builds its models lazily, at the first list and
    # watch: make those calls once so that the baseline holds them (not per Service).
    api = kube.make_api_client(kubeconfig)
    for resource in kube.RESOURCES:
        resource.method(api)(limit=1, _preload_content=False).data  # noqa: B018
        for _ in kube.watch_lines(api, resource, "", 1, 5):
            break
    del api
    gc.collect()
    rss0 = proc_status(os.getpid())["VmRSS"]
    tracemalloc.start(1)
    snap0 = tracemalloc.take_snapshot()
    server = InProcessApp(cfg).start()
    ready = server.wait_ready(900) - server.started
    time.sleep(2)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    traced, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = proc_status(os.getpid())["VmRSS"]
    app = server.app
    n = args.services
    endpoints = info["endpoints"]
    diff = snap1.compare_to(snap0, "lineno")
    total_diff = sum(d.size_diff for d in diff)
    scale = 100_000 / n
    rows = []
    for i, d in enumerate(sorted(diff, key=lambda d: -d.size_diff)[:15], 1):
        frame = d.traceback[0]
        where = frame.filename.replace(src + "/", "").replace(sys.prefix + "/", "")
        where = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", where)
        code = _source_line(frame.filename, frame.lineno)
        rows.append((str(i), f"`{where}:{frame.lineno}`", f"{d.size_diff / 2**20:.1f}",
                     f"{d.count_diff:,}", f"{d.size_diff / n:.0f}",
                     f"{d.count_diff / n:.2f}", f"{d.size_diff * scale / 2**20:.0f}",
                     f"`{code[:70]}`"))
    top = table(("rank", "file:line", "MB", "blocks", "bytes / Service", "blocks / Service",
                 f"MB at 100k (x{scale:g})", "line"), rows)
    builder, view = app.builder, app.view
    roots = [
        ("builder.services (Service, Port, ...)", builder.services),
        ("builder.slices (EndpointSlice, Endpoint, ...)", builder.slices),
        ("view.services (ServiceEntry, Target, Decision; Service objects counted above)",
         view.services),
        ("view.reverse (IP -> Services)", view.reverse),
        ("builder._slice_owner", getattr(builder, "_slice_owner", {})),
        ("builder._keys_by_namespace", getattr(builder, "_keys_by_namespace", {})),
        ("namespaces", builder.namespaces),
        ("answerer reply cache", getattr(getattr(app.answerer, "cache", None), "_entries", {})),
    ]
    by_root, by_type = deep_account(roots)
    acc_total = sum(v[1] for v in by_root.values())
    root_rows = [(name, f"{c:,}", f"{s / 2**20:.1f}", f"{s / n:.0f}",
                  f"{s * scale / 2**20:.0f}") for name, (c, s) in by_root.items()]
    type_rows = [(f"`{t}`", f"{c:,}", f"{c / n:.2f}", f"{s / 2**20:.1f}", f"{s / n:.0f}",
                  f"{s / c:.0f}")
                 for t, (c, s) in sorted(by_type.items(), key=lambda kv: -kv[1][1])[:15]]
    server.stop()
    host.stop()
    summary = "\n".join([
        f"- data: {n:,} Services in {args.namespaces:,} namespaces, {endpoints:,} endpoints "
        f"(the `scale` cluster at {n:,}); dnsrewrite **in-process** (App on its own loop "
        "thread, as the tests run it), only the delta from before `App()` counted; fake API "
        "in a child process",
        f"- measured: {label}",
        f"- ready in {ready:.1f} s under tracemalloc; Python allocations traced after sync: "
        f"{total_diff / 2**20:.1f} MB more than before `App()` ({total_diff / n:.0f} B per "
        f"Service, x{scale:g} = {total_diff * scale / 2**20:.0f} MB at 100,000); traced peak "
        f"{peak / 2**20:.0f} MB; VmRSS delta {(rss1 - rss0) / 1024:.0f} MB (tracemalloc's "
        "own tables included)",
        "",
        "tracemalloc, top 15 allocation sites still live after the sync (snapshot diff, by "
        "file:line of the allocating frame):",
        "",
        top,
        "",
        f"Objects reachable from each structure (sys.getsizeof, each object counted once, "
        f"for the first structure listed that reaches it; {acc_total / 2**20:.1f} MB in all, "
        f"{acc_total / n:.0f} B per Service, {acc_total / endpoints:.0f} B per endpoint if "
        "all were put on endpoints):",
        "",
        table(("structure", "objects", "MB", "bytes / Service", "MB at 100k"), root_rows),
        "",
        "The same objects by type (top 15):",
        "",
        table(("type", "objects", "per Service", "MB", "bytes / Service", "bytes each"),
              type_rows),
    ])
    return f"Memory: where the bytes go ({n:,} Services, in-process, tracemalloc)", summary


def _source_line(path: str, lineno: int) -> str:
    try:
        with open(path) as handle:
            for i, line in enumerate(handle, 1):
                if i == lineno:
                    return line.strip().replace("|", "\\|")
    except OSError:
        pass
    return ""


# --- main ---------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = {"scale": (100_000, 10_000), "churn": (10_000, 1_000),
                "memory": (20_000, 2_000), "loop": (10_000, 1_000)}
    helps = {"scale": "`dnsrewrite serve` subprocess: RSS, ready, relist stall, flips",
             "churn": "dnsperf qps idle vs under EndpointSlice churn",
             "memory": "in-process under tracemalloc: where the bytes go",
             "loop": "in-process: event-loop lag beside the probe (relist, flips)"}
    for name, (services, namespaces) in defaults.items():
        p = sub.add_parser(name, help=helps[name])
        p.add_argument("--services", type=int, default=services)
        p.add_argument("--namespaces", type=int, default=namespaces)
        p.add_argument("--rev", help="measure this git revision instead of the working tree")
        p.add_argument("--wait-quiet", type=float, default=300, metavar="SECONDS",
                       help="first wait up to this long for CPUs 0 and 1 to be idle (0: don't)")
        p.add_argument("--no-results", action="store_true",
                       help="print only; do not append to benchmarks/RESULTS.md")
        p.add_argument("--keep", action="store_true", help="keep the scratch directory")
        if name in ("scale", "loop"):
            p.add_argument("--flips", type=int, default=20)
        if name == "scale":
            p.add_argument("--py-spy", default="", metavar="PHASES",
                           type=lambda text: [x for x in text.split(",") if x],
                           help="profile these phases (startup,relist,flips) with py-spy, all "
                                "threads; the run's figures then include py-spy's cost")
        if name == "churn":
            p.add_argument("--rate", type=float, default=50, help="EndpointSlice updates/s")
            p.add_argument("--duration", type=float, default=15)
            p.add_argument("--rounds", type=int, default=2)
            p.add_argument("--clients", type=int, default=4)
            p.add_argument("--outstanding", type=int, default=100)
            p.add_argument("--py-spy", action="store_true",
                           help="profile dnsrewrite with py-spy during the first churn run")
    args = parser.parse_args()
    command = ".venv/bin/python benchmarks/scale_bench.py " + shlex.join(sys.argv[1:])
    os.sched_setaffinity(0, {CLIENT_CPU})
    load = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else {}
    began = time.monotonic()
    cpu0 = cpu_times()
    scratch = tempfile.mkdtemp(prefix="scale-bench-")
    try:
        src, label = snapshot_source(args.rev, scratch)
        handler = {"scale": cmd_scale, "churn": cmd_churn, "memory": cmd_memory,
                   "loop": cmd_loop}[args.command]
        title, summary = handler(args, scratch, src, label)
    finally:
        if args.keep:
            note(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    cpu1 = cpu_times()
    elapsed = time.monotonic() - began
    machine = (f"CPU busy before the run (other work): CPU 0 {load.get(0, math.nan):.0f}%, "
               f"CPU 1 {load.get(1, math.nan):.0f}%; during the run (all work, ours "
               f"included): CPU 0 {busy(cpu0, cpu1, 0):.0f}%, CPU 1 {busy(cpu0, cpu1, 1):.0f}%")
    header = (f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, nproc "
              f"{os.cpu_count()}, Python {sys.version.split()[0]}, `{command}` "
              f"({elapsed:.0f} s). {machine}.")
    print()
    print(f"## {title}\n\n{header}\n\n{summary}")
    if not args.no_results:
        section = f"\n## {title}\n\n{header}\n\n{summary}\n"
        path = os.path.join(HERE, "RESULTS.md")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, section.encode())
        finally:
            os.close(fd)
        note(f"appended to {os.path.relpath(path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
