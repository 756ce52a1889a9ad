#!/usr/bin/env python3
"""Soak: fixed-rate load with data churn for DURATION_S seconds (issue 7, item 6).

    .venv/bin/python benchmarks/soak.py 600                 # 10 minutes at 50% of max
    .venv/bin/python benchmarks/soak.py 60 --max-qps 8000   # skip measuring the max

1. `gen_cluster.py` writes a cluster (`--services`, `--namespaces`; default 2,000 in 200)
   and its dnsperf query file into benchmarks/out/soak/.
2. `dnsrewrite serve` runs on it (pinned to CPU 1 with taskset when there are 2 CPUs;
   dnsperf on CPU 0). The maximum rate is measured with a short unpaced dnsperf run
   (`-c 4 -q 100`, `--max-seconds`), unless `--max-qps` gives it.
3. For DURATION_S, dnsperf runs back to back in `--interval`-second pieces at a fixed
   `--percent` of that maximum (`-Q`), with `-v` so every latency is kept; each piece
   gives the sent, lost, p50/p99/p99.9 of its interval, and the server's RSS (VmRSS) is
   sampled at its end.
4. Meanwhile the data keeps changing, every `--churn-every` seconds: 20 Services get new
   ClusterIPs, one namespace flips its enrollment label, one Service comes or goes.
   `--churn api` (default, the production path): the server watches the fake API server
   of tests/fakeapi (run in this process, loaded with the generated cluster) and the
   changes arrive as watch events. `--churn file`: the server serves the cluster file,
   which is rewritten, and gets SIGHUP: a full reload each time.

Reports lost queries, RSS growth (from the end of the first interval, once caches are
warm, to the end; and from start), p99 per interval, reloads and their failures, panics.
Writes benchmarks/out/soak.json. Exit 1 if a query was lost or the server died.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench import percentile, read_dnsperf  # noqa: E402
from flood import Server, start_server  # noqa: E402

ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
OUT = os.path.join(HERE, "out")
PY = sys.executable


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def pinned(cpu: str) -> tuple[str, ...]:
    return ("taskset", "-c", cpu) if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 \
        else ()


def dnsperf(port: int, queries: str, seconds: float, rate: float | None, scratch: str) -> dict:
    cmd = [*pinned("0"), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
           "-l", str(seconds), "-c", "4", "-q", "100" if rate is None else "500", "-v"]
    if rate is not None:
        cmd += ["-Q", str(int(rate))]
    path = os.path.join(scratch, "dnsperf.out")
    with open(path, "w") as handle:
        subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, check=True)
    seconds, rcodes, summary = read_dnsperf(path)
    latencies = [s * 1000 for s in seconds]
    return {
        "sent": int(summary["Queries sent"]),
        "completed": int(summary["Queries completed"]),
        "lost": int(summary["Queries lost"]),
        "qps": float(summary["Queries per second"]),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "p999_ms": percentile(latencies, 0.999),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "rcodes": rcodes,
    }


class Churn(threading.Thread):
    """Changes the cluster every `every` seconds; `apply` publishes the change."""

    def __init__(self, items: list[dict], every: float, seed: int = 1) -> None:
        super().__init__(name="churn", daemon=True)
        self.every = every
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.rounds = 0
        self.items = items
        self.services = [i for i in items if i["kind"] == "Service"
                         and i["spec"].get("clusterIP") not in (None, "None")
                         and i["metadata"]["namespace"] != "mesh-gateway"]
        self.namespaces = [i for i in items if i["kind"] == "Namespace"
                           and i["metadata"]["name"].startswith("ns-")]
        self.extra: dict | None = None

    def change(self) -> None:
        changed, created, deleted = [], None, None
        for svc in self.rng.sample(self.services, min(20, len(self.services))):
            ip = f"10.{100 + self.rng.randrange(20)}.{self.rng.randrange(256)}." \
                 f"{self.rng.randrange(1, 255)}"
            ips = [ip] + [x for x in svc["spec"].get("clusterIPs", [])[1:] if ":" in x]
            svc["spec"]["clusterIP"], svc["spec"]["clusterIPs"] = ip, ips
            changed.append(svc)
        ns = self.rng.choice(self.namespaces)
        labels = ns["metadata"].setdefault("labels", {})
        if labels.get("dnsrewrite.io/enroll") == "true":
            labels.pop("dnsrewrite.io/enroll")
        else:
            labels["dnsrewrite.io/enroll"] = "true"
        changed.append(ns)
        if self.extra is None:
            self.extra = created = {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": f"churn-{self.rounds}", "namespace": ns["metadata"]["name"]},
                "spec": {"clusterIP": "10.120.0.1", "clusterIPs": ["10.120.0.1"],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
            self.items.append(created)
        else:
            deleted, self.extra = self.extra, None
            self.items.remove(deleted)
        self.apply(changed, created, deleted)
        self.rounds += 1

    def apply(self, changed: list[dict], created: dict | None, deleted: dict | None) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.change()


class FileChurn(Churn):
    """Rewrites the cluster file and SIGHUPs the server: a full reload each time."""

    def __init__(self, server: Server, path: str, every: float) -> None:
        with open(path) as handle:
            self.document = json.load(handle)
        super().__init__(self.document["items"], every)
        self.server, self.path = server, path

    def apply(self, changed: list[dict], created: dict | None, deleted: dict | None) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(self.document, handle, separators=(",", ":"))
        os.replace(tmp, self.path)
        if self.server.alive():
            self.server.proc.send_signal(signal.SIGHUP)


class ApiChurn(Churn):
    """Updates objects in the fake API server: the server sees watch events."""

    def __init__(self, api: object, items: list[dict], every: float) -> None:
        super().__init__(items, every)
        self.api = api

    def apply(self, changed: list[dict], created: dict | None, deleted: dict | None) -> None:
        api: Any = self.api
        for obj in changed:
            api.update(obj)
        if created is not None:
            api.create(created)
        if deleted is not None:
            api.delete("Service", deleted["metadata"]["namespace"], deleted["metadata"]["name"])


def kubeconfig(path: str, url: str) -> str:
    with open(path, "w") as handle:
        handle.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "{url}"}}}}]
users: [{{name: soak, user: {{token: not-checked}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: soak}}}}]
current-context: fake
""")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("duration", type=float, help="seconds of fixed-rate load")
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--percent", type=float, default=50.0, help="of the maximum rate")
    parser.add_argument("--max-qps", type=float, help="skip measuring the maximum")
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--churn-every", type=float, default=5.0)
    parser.add_argument("--churn", choices=("api", "file"), default="api",
                        help="changes as watch events from the fake API, or file + SIGHUP")
    parser.add_argument("--out", default=os.path.join(OUT, "soak.json"))
    args = parser.parse_args()
    if not shutil.which("dnsperf"):
        log("dnsperf is missing: apt-get install -y dnsperf")
        return 2

    data = os.path.join(OUT, "soak")
    os.makedirs(data, exist_ok=True)
    subprocess.run([PY, os.path.join(HERE, "gen_cluster.py"), str(args.services),
                    str(args.namespaces), "--out", data, "--queries", "50000"], check=True)
    queries = os.path.join(data, "queries.txt")
    cluster_file = os.path.join(data, "cluster.json")
    api = None
    if args.churn == "api":
        from tests.fakeapi.server import FakeApiServerThread

        with open(cluster_file) as handle:
            items = json.load(handle)["items"]
        api = FakeApiServerThread(bookmark_interval=5.0).start()
        api.load(items)
        server = start_server(config=os.path.join(data, "config.yaml"), prefix=pinned("1"),
                              overrides={"cluster_file": None, "kubernetes.kubeconfig":
                                         kubeconfig(os.path.join(data, "kubeconfig"), api.url)})
        deadline = time.monotonic() + 60
        while server.ready() != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        churn: Churn = ApiChurn(api, items, args.churn_every)
    else:
        server = start_server(config=os.path.join(data, "config.yaml"), prefix=pinned("1"))
        churn = FileChurn(server, cluster_file, args.churn_every)
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "args": vars(args),
                    "git": subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                          capture_output=True, text=True).stdout.strip()}
    intervals: list[dict] = []
    try:
        log(f"server pid {server.pid} on port {server.port}; {args.services} Services; "
            f"churn: {args.churn}, ready {server.ready()}")
        if args.max_qps:
            max_qps = args.max_qps
        else:
            run = dnsperf(server.port, queries, args.max_seconds, None, server.scratch)
            max_qps = run["qps"]
            result["max_run"] = run
            log(f"max: {max_qps:.0f} qps (p99 {run['p99_ms']:.2f} ms at full load)")
        rate = max_qps * args.percent / 100
        result.update(max_qps=max_qps, rate_qps=rate)
        rss_start = server.status("VmRSS")
        result["rss_start_kb"] = rss_start
        churn.start()
        started = time.monotonic()
        log(f"soak: {rate:.0f} qps ({args.percent:.0f}% of max) for {args.duration:.0f} s, "
            f"churn every {args.churn_every:.0f} s")
        print(f"{'t s':>6} {'sent':>8} {'lost':>5} {'qps':>7} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'p99.9':>7} {'max ms':>7} {'RSS MB':>7} {'reloads':>7}", flush=True)
        while time.monotonic() - started < args.duration and server.alive():
            seconds = min(args.interval, args.duration - (time.monotonic() - started))
            if seconds < 1:
                break
            run = dnsperf(server.port, queries, seconds, rate, server.scratch)
            run["t_s"] = round(time.monotonic() - started, 1)
            run["rss_kb"] = server.status("VmRSS") if server.alive() else None
            run["reloads"] = churn.rounds
            intervals.append(run)
            print(f"{run['t_s']:>6.0f} {run['sent']:>8} {run['lost']:>5} {run['qps']:>7.0f} "
                  f"{run['p50_ms']:>7.3f} {run['p99_ms']:>7.3f} {run['p999_ms']:>7.3f} "
                  f"{run['max_ms']:>7.1f} {(run['rss_kb'] or 0) / 1024:>7.1f} "
                  f"{churn.rounds:>7}", flush=True)
        churn.stop.set()
        churn.join(5)
        result["alive"] = server.alive()
        if server.alive():
            result["panics"] = server.metric("coredns_panics_total")
            result["reload_failures"] = server.metric("dnsrewrite_reload_failures_total")
            result["generation"] = server.metric("dnsrewrite_data_generation")
    finally:
        churn.stop.set()
        server.stop()
        if api is not None:
            api.stop()
    result["intervals"] = intervals
    result["reloads"] = churn.rounds
    if intervals:
        p99s = [i["p99_ms"] for i in intervals]
        rss = [i["rss_kb"] for i in intervals if i["rss_kb"]]
        result.update(
            sent=sum(i["sent"] for i in intervals),
            lost=sum(i["lost"] for i in intervals),
            p99_ms_min=min(p99s), p99_ms_median=statistics.median(p99s), p99_ms_max=max(p99s),
            rss_warm_kb=rss[0], rss_end_kb=rss[-1], rss_max_kb=max(rss),
            rss_growth_pct_from_warm=100 * (rss[-1] - rss[0]) / rss[0],
            rss_growth_pct_from_start=100 * (rss[-1] - result["rss_start_kb"])
            / result["rss_start_kb"],
        )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    if not intervals:
        log("no interval completed")
        return 1
    print()
    print(f"sent {result['sent']:,}, lost {result['lost']:,}; offered {result['rate_qps']:.0f} qps "
          f"({args.percent:.0f}% of {result['max_qps']:.0f})")
    print(f"p99 per interval: min {result['p99_ms_min']:.3f} ms, median "
          f"{result['p99_ms_median']:.3f} ms, max {result['p99_ms_max']:.3f} ms")
    print(f"RSS: start {result['rss_start_kb'] / 1024:.1f} MB, after the first interval "
          f"{result['rss_warm_kb'] / 1024:.1f} MB, end {result['rss_end_kb'] / 1024:.1f} MB "
          f"(growth {result['rss_growth_pct_from_warm']:+.2f}% from warm, "
          f"{result['rss_growth_pct_from_start']:+.2f}% from start); max "
          f"{result['rss_max_kb'] / 1024:.1f} MB")
    print(f"reloads {result['reloads']} (failures {result.get('reload_failures')}), panics "
          f"{result.get('panics')}, alive {result['alive']}")
    print(f"written {args.out}")
    return 0 if result["alive"] and result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
