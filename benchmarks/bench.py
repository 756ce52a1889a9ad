#!/usr/bin/env python3
"""The benchmark machinery: data, NSD and dnsrewrite side by side, dnsperf runs.

Run through the wrappers, which install what is missing first:

    benchmarks/throughput.sh [--duration 15] [--rounds 2] [--rev REV]
    benchmarks/latency.sh    [--duration 10] [--rates 25,75] [--rev REV]

Both servers serve the same data on loopback, each pinned to core 1 (`taskset -c 1`):
NSD from the zone that `dnsrewrite export-zone` writes, dnsrewrite from the cluster
file itself. dnsperf runs pinned to core 0 with the same query file against each in
turn (NSD, dnsrewrite, NSD, dnsrewrite, ...), with `-v` so that every response's
latency is recorded and percentiles can be computed (dnsperf 2.10 prints only the
mean and standard deviation). Each run also records the CPU time the server's
processes used, which says whether the server or the load generator was the limit.

`--rev REV` measures a committed revision instead of the working tree: it is
extracted with `git archive` into a temporary directory and run from there (the
export too), so concurrent edits of dnsrewrite/ do not change what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
SERVER_CPU = "1"
CLIENT_CPU = "0"
ZONE = "cluster.local"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def read_json(path: str) -> dict:
    with open(path) as handle:
        return json.load(handle)


def write_json(path: str, value: object) -> None:
    with open(path, "w") as handle:
        json.dump(value, handle, indent=1)


def spawn(cmd: list[str], logfile: str) -> subprocess.Popen:
    """Start `cmd` in a session of its own (so stopping it stops its children)."""
    with open(logfile, "w") as handle:
        return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def cpu_times() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    times = {}
    with open("/proc/stat") as handle:
        for line in handle:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                numbers = [int(v) for v in values]
                idle = numbers[3] + numbers[4]  # idle + iowait
                times[name[3:]] = (sum(numbers) - idle, sum(numbers))
    return times


def busy_pct(before: dict, after: dict, cpu: str) -> float:
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return 100 * busy / total if total else 0.0


def wait_quiet(max_wait: float, threshold: float = 15.0) -> None:
    """Wait (up to max_wait s) until both benchmark CPUs are under threshold% busy."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_times()
        time.sleep(2)
        after = cpu_times()
        load = {cpu: busy_pct(before, after, cpu) for cpu in (CLIENT_CPU, SERVER_CPU)}
        if all(v < threshold for v in load.values()):
            return
        if time.monotonic() > deadline:
            log(f"CPUs still busy ({load}); measuring anyway")
            return
        log(f"waiting for other work to finish: CPU busy {load}")


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


# --- data ---------------------------------------------------------------------------------
@dataclass
class Data:
    out: str
    cluster: str
    config: str
    queries: str
    zone: str
    code: str  # where the dnsrewrite package is imported from
    rev: str  # "working tree" or the commit


def code_dir(rev: str | None, scratch: str) -> tuple[str, str]:
    if not rev:
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "dnsrewrite"],
                               capture_output=True, text=True).stdout.strip()
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        return ROOT, f"working tree at {head}" + (" with uncommitted changes" if dirty else "")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", rev], check=True,
                            capture_output=True, text=True).stdout.strip()
    target = os.path.join(scratch, f"src-{commit}")
    os.makedirs(target, exist_ok=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "dnsrewrite"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target, f"commit {commit}"


def dnsrewrite_cmd(code: str) -> list[str]:
    return [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from dnsrewrite.cli import main; sys.exit(main())", code]


def prepare(services: int, namespaces: int, rev: str | None, scratch: str) -> Data:
    os.makedirs(OUT, exist_ok=True)
    cluster = os.path.join(OUT, "cluster.json")
    stamp = os.path.join(OUT, "stamp.json")
    wanted = {"services": services, "namespaces": namespaces}
    current = read_json(stamp) if os.path.exists(stamp) else None
    if current != wanted or not os.path.exists(cluster):
        log(f"generating {services} Services in {namespaces} namespaces")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_cluster.py"), str(services),
                        str(namespaces), "--out", OUT], check=True)
        write_json(stamp, wanted)
    code, label = code_dir(rev, scratch)
    zone = os.path.join(OUT, f"{ZONE}.zone" if not rev else f"{ZONE}.{label.split()[-1]}.zone")
    package = os.path.join(code, "dnsrewrite")
    sources = [os.path.join(package, f) for f in os.listdir(package) if f.endswith(".py")]
    newest_input = max(os.path.getmtime(p) for p in [cluster, *sources])
    if not os.path.exists(zone) or os.path.getmtime(zone) < newest_input:
        log(f"exporting the zone with dnsrewrite export-zone ({label}); about 40 s per "
            "10,000 Services")
        started = time.monotonic()
        with open(zone + ".tmp", "w") as handle:
            subprocess.run([*dnsrewrite_cmd(code), "export-zone", "--config",
                            os.path.join(OUT, "config.yaml")], stdout=handle, check=True)
        os.replace(zone + ".tmp", zone)
        log(f"exported {zone} in {time.monotonic() - started:.1f}s")
    return Data(OUT, cluster, os.path.join(OUT, "config.yaml"), os.path.join(OUT, "queries.txt"),
                zone, code, label)


# --- servers ------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    logfile: str

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the server's session (NSD forks)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        sid = self.process.pid
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # session id (field 6 of stat)
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the session we started
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    import dns.message
    import dns.query
    import dns.rcode

    deadline = time.monotonic() + timeout
    query = dns.message.make_query(ZONE, "SOA", use_edns=False)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited with {server.process.returncode}; "
                             f"see {server.logfile}")
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=0.5)
            if reply.rcode() == dns.rcode.NOERROR and reply.answer:
                return
        except Exception:  # not listening yet
            pass
        time.sleep(0.2)
    raise SystemExit(f"{server.name} not answering on 127.0.0.1:{server.port}")


def start_nsd(data: Data, scratch: str, port: int) -> Server:
    workdir = os.path.join(scratch, "nsd")
    os.makedirs(workdir, exist_ok=True)
    zonefile = os.path.join(workdir, f"{ZONE}.zone")
    shutil.copyfile(data.zone, zonefile)
    conf = os.path.join(workdir, "nsd.conf")
    with open(conf, "w") as handle:
        handle.write(f"""# NSD for the benchmark: loopback only, one server process, no database.
server:
    ip-address: 127.0.0.1
    port: {port}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{workdir}"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    pidfile: "{workdir}/nsd.pid"
    logfile: "{workdir}/nsd.log"
    verbosity: 1
    hide-version: yes
    # Response rate limiting off: dnsperf is one source sending at full speed.
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    # minimal-responses stays at its default (no), so NSD adds the A/AAAA of SRV targets
    # in the additional section as dnsrewrite does (it also adds the apex NS in authority).
remote-control:
    control-enable: no
zone:
    name: {ZONE}
    zonefile: "{zonefile}"
""")
    subprocess.run(["nsd-checkconf", conf], check=True)
    subprocess.run(["nsd-checkzone", ZONE, zonefile], check=True, stdout=subprocess.DEVNULL)
    logfile = os.path.join(workdir, "nsd.stderr")
    process = spawn(["taskset", "-c", SERVER_CPU, "nsd", "-d", "-c", conf], logfile)
    server = Server("nsd", port, process, logfile)
    wait_ready(server)
    return server


def start_dnsrewrite(data: Data, scratch: str, port: int) -> Server:
    logfile = os.path.join(scratch, "dnsrewrite.stderr")
    admin = free_port()
    cmd = ["taskset", "-c", SERVER_CPU, *dnsrewrite_cmd(data.code), "serve",
           "--config", data.config, "--listen", f"127.0.0.1:{port}"]
    help_text = subprocess.run([*dnsrewrite_cmd(data.code), "serve", "--help"],
                               capture_output=True, text=True).stdout
    if "--admin-listen" in help_text:
        cmd += ["--admin-listen", f"127.0.0.1:{admin}"]  # metrics on, on loopback
    process = spawn(cmd, logfile)
    server = Server("dnsrewrite", port, process, logfile)
    wait_ready(server)
    return server


# --- dnsperf ------------------------------------------------------------------------------
@dataclass
class Run:
    server: str
    offered_qps: float | None
    duration_s: float
    sent: int
    completed: int
    lost: int
    qps: float
    avg_ms: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    server_cpu_pct: float  # CPU time of the server's processes / wall time
    other_on_server_cpu_pct: float  # CPU SERVER_CPU busy with anything else meanwhile
    client_cpu_busy_pct: float  # CPU CLIENT_CPU (dnsperf's) busy, dnsperf included
    loadavg_before: float
    rcodes: dict[str, int] = field(default_factory=dict)


def read_dnsperf(path: str) -> tuple[list[float], dict[str, int], dict[str, str]]:
    """What `dnsperf -v` wrote: every answered query's latency in seconds (sorted),
    replies by rcode (T: timed out, I: interrupted), and the summary lines."""
    latencies: list[float] = []
    rcodes: dict[str, int] = {}
    summary: dict[str, str] = {}
    with open(path) as handle:
        for line in handle:
            if line.startswith("> "):
                parts = line.split()
                rcodes[parts[1]] = rcodes.get(parts[1], 0) + 1
                if parts[1] not in ("T", "I"):
                    latencies.append(float(parts[-1]))
            elif ":" in line and line.startswith("  "):
                key, _, value = line.strip().partition(":")
                summary[key] = value.split()[0] if value.split() else ""
    latencies.sort()
    return latencies, rcodes, summary


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def dnsperf(server: Server, data: Data, duration: float, clients: int, outstanding: int,
            rate: float | None, scratch: str) -> Run:
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(server.port),
           "-d", data.queries, "-l", str(duration), "-c", str(clients), "-q", str(outstanding),
           "-v"]
    if rate:
        cmd += ["-Q", str(int(rate))]
    outfile = os.path.join(scratch, "dnsperf.out")
    loadavg = os.getloadavg()[0]
    cpu_before, started, system_before = server.cpu_seconds(), time.monotonic(), cpu_times()
    with open(outfile, "w") as handle:
        subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, check=True)
    elapsed = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    system_after = cpu_times()
    latencies, rcodes, summary = read_dnsperf(outfile)
    return Run(
        server=server.name,
        offered_qps=rate,
        duration_s=float(summary.get("Run time (s)", duration)),
        sent=int(summary["Queries sent"]),
        completed=int(summary["Queries completed"]),
        lost=int(summary["Queries lost"]),
        qps=float(summary["Queries per second"]),
        avg_ms=float(summary["Average Latency (s)"]) * 1000,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        p999_ms=percentile(latencies, 0.999) * 1000,
        max_ms=(latencies[-1] if latencies else float("nan")) * 1000,
        server_cpu_pct=100 * cpu / elapsed,
        other_on_server_cpu_pct=max(
            0.0, busy_pct(system_before, system_after, SERVER_CPU) - 100 * cpu / elapsed),
        client_cpu_busy_pct=busy_pct(system_before, system_after, CLIENT_CPU),
        loadavg_before=loadavg,
        rcodes=rcodes,
    )


def print_runs(runs: list[Run]) -> None:
    header = (f"{'#':>2} {'server':<10} {'offered':>8} {'qps':>9} {'sent':>9} {'lost':>6} "
              f"{'avg ms':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'srv CPU':>7} "
              f"{'other':>6} {'cli CPU':>7}")
    print(header)
    for index, r in enumerate(runs, 1):
        offered = f"{r.offered_qps:.0f}" if r.offered_qps else "max"
        print(f"{index:>2} {r.server:<10} {offered:>8} {r.qps:>9.0f} {r.sent:>9} {r.lost:>6} "
              f"{r.avg_ms:>7.3f} {r.p50_ms:>7.3f} {r.p99_ms:>7.3f} {r.p999_ms:>7.3f} "
              f"{r.server_cpu_pct:>6.0f}% {r.other_on_server_cpu_pct:>5.0f}% "
              f"{r.client_cpu_busy_pct:>6.0f}%")
    print("srv CPU: the server's CPU time / wall time; other: CPU 1 busy with anything else; "
          "cli CPU: CPU 0 (dnsperf's) busy")


def environment(data: Data, args: argparse.Namespace) -> dict:
    def version(cmd: list[str]) -> str:
        result = subprocess.run(cmd, capture_output=True, text=True)
        text = (result.stdout + result.stderr).strip().splitlines()
        return next((line for line in text if "ersion" in line), text[0] if text else "?")

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), "?"),
        "python": sys.version.split()[0],
        "dnsrewrite": data.rev,
        "nsd": version(["nsd", "-v"]),
        "dnsperf": version(["dnsperf", "-h"]),
        "services": args.services,
        "namespaces": args.namespaces,
        "queries": data.queries,
    }


# --- commands -----------------------------------------------------------------------------
def with_servers(
    args: argparse.Namespace, body: Callable[[Data, list[Server], str], int]
) -> int:
    scratch = tempfile.mkdtemp(prefix="dnsrewrite-bench-")
    servers: list[Server] = []
    try:
        data = prepare(args.services, args.namespaces, args.rev, scratch)
        servers.append(start_nsd(data, scratch, free_port()))
        servers.append(start_dnsrewrite(data, scratch, free_port()))
        log(f"NSD on 127.0.0.1:{servers[0].port}, dnsrewrite ({data.rev}) on "
            f"127.0.0.1:{servers[1].port}, both pinned to CPU {SERVER_CPU}; dnsperf on "
            f"CPU {CLIENT_CPU}")
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        return body(data, servers, scratch)
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"kept {scratch}")


def cmd_throughput(args: argparse.Namespace) -> int:
    def body(data: Data, servers: list[Server], scratch: str) -> int:
        runs = []
        for round_ in range(args.rounds):
            for server in servers:
                log(f"round {round_ + 1}: dnsperf against {server.name} for {args.duration}s")
                runs.append(dnsperf(server, data, args.duration, args.clients, args.outstanding,
                                    None, scratch))
        print_runs(runs)
        nsd = statistics.mean(r.qps for r in runs if r.server == "nsd")
        ours = statistics.mean(r.qps for r in runs if r.server == "dnsrewrite")
        nsd_cpu = statistics.mean(r.server_cpu_pct for r in runs if r.server == "nsd") / 100
        ours_cpu = statistics.mean(r.server_cpu_pct for r in runs if r.server == "dnsrewrite") / 100
        print(f"mean qps: NSD {nsd:.0f}, dnsrewrite {ours:.0f}; ratio dnsrewrite/NSD "
              f"{ours / nsd:.3f} (goal >= 0.5)")
        print(f"per CPU-second of the server: NSD {nsd / nsd_cpu:.0f}, dnsrewrite "
              f"{ours / ours_cpu:.0f} qps; ratio {ours / ours_cpu / (nsd / nsd_cpu):.3f} "
              "(NSD below 100% CPU means dnsperf, not NSD, was the limit)")
        print(f"lost: NSD {sum(r.lost for r in runs if r.server == 'nsd')}, dnsrewrite "
              f"{sum(r.lost for r in runs if r.server == 'dnsrewrite')}")
        result = {"kind": "throughput", "env": environment(data, args),
                  "dnsperf": {"clients": args.clients, "outstanding": args.outstanding,
                              "duration_s": args.duration},
                  "runs": [asdict(r) for r in runs], "mean_qps": {"nsd": nsd, "dnsrewrite": ours},
                  "ratio": ours / nsd,
                  "per_cpu_second_qps": {"nsd": nsd / nsd_cpu, "dnsrewrite": ours / ours_cpu},
                  "ratio_per_cpu_second": ours / ours_cpu / (nsd / nsd_cpu)}
        path = os.path.join(OUT, "throughput.json")
        write_json(path, result)
        log(f"wrote {path}")
        return 0

    return with_servers(args, body)


def cmd_latency(args: argparse.Namespace) -> int:
    def body(data: Data, servers: list[Server], scratch: str) -> int:
        path = os.path.join(OUT, "throughput.json")
        maxima = {}
        max_runs = []
        if os.path.exists(path) and not args.remeasure:
            maxima = read_json(path)["mean_qps"]
            log(f"max qps from {path}: {maxima}")
        for server in servers:
            if server.name not in maxima:
                log(f"measuring the max of {server.name} ({args.duration}s)")
                max_runs.append(dnsperf(server, data, args.duration, args.clients,
                                        args.outstanding, None, scratch))
                maxima[server.name] = max_runs[-1].qps
        runs = []
        for percent in args.rates:
            for server in servers:
                rate = maxima[server.name] * percent / 100
                log(f"{server.name} at {percent}% of {maxima[server.name]:.0f} = {rate:.0f} qps "
                    f"for {args.duration}s")
                runs.append(dnsperf(server, data, args.duration, args.clients, args.outstanding,
                                    rate, scratch))
        print_runs(runs)
        if max_runs:
            print("max (unpaced) runs:")
            print_runs(max_runs)
        result = {"kind": "latency", "env": environment(data, args), "max_qps": maxima,
                  "rates_pct": args.rates, "runs": [asdict(r) for r in runs],
                  "max_runs": [asdict(r) for r in max_runs]}
        out = os.path.join(OUT, "latency.json")
        write_json(out, result)
        log(f"wrote {out}")
        if args.plot:
            subprocess.run([sys.executable, os.path.join(HERE, "plot_latency.py"), out,
                            "-o", args.plot], check=True)
        return 0

    return with_servers(args, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "latency"):
        p = sub.add_parser(name)
        p.add_argument("--services", type=int, default=10_000)
        p.add_argument("--namespaces", type=int, default=1_000)
        p.add_argument("--rev", help="measure this git revision instead of the working tree")
        p.add_argument("--keep", action="store_true", help="keep the scratch directory")
        p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                       help="first wait up to this long for CPUs 0 and 1 to be idle")
        p.add_argument("--clients", type=int, default=4, help="dnsperf -c")
        p.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
        if name == "throughput":
            p.add_argument("--duration", type=float, default=15)
            p.add_argument("--rounds", type=int, default=2)
        elif name == "latency":
            p.add_argument("--duration", type=float, default=10)
            p.add_argument("--rates", type=lambda t: [int(x) for x in t.split(",")],
                           default=[25, 75], help="percent of max, e.g. 25,75")
            p.add_argument("--remeasure", action="store_true",
                           help="measure the max now instead of reading throughput.json")
            p.add_argument("--plot", metavar="PNG",
                           help="then chart p50/p99 against offered load into PNG "
                                "(plot_latency.py, matplotlib)")
    args = parser.parse_args()
    handler = {"throughput": cmd_throughput, "latency": cmd_latency}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
