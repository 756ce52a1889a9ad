#!/usr/bin/env python3
"""cProfile of `ClusterBuilder.publish`: a namespace flip and EndpointSlice updates.

    taskset -c 1 .venv/bin/python benchmarks/profile_publish.py [--services 10000]
        [--namespaces 1000] [--updates 200] [--rev REV]

No sockets, threads or API server: the `scale` cluster of scale_bench.py (3 IPv4
endpoints per Service, every eighth headless, half the namespaces enrolled, 1,000
Services in ns-0000) is built with the fake API's object builders, converted with
`model.*_from_api` and loaded into a `ClusterBuilder` as the watchers do, then:

* `--updates` EndpointSlice updates, one publish each (what 50 updates/s elsewhere cost
  the writer), timed, then profiled;
* the flip of ns-0000 (1,000 Services; enroll, then unenroll), one publish each, timed,
  then profiled.

Prints the wall time per publish and cProfile's top entries by own time (`tottime`)
and by cumulative time. The dnsrewrite package is imported from the working tree (or
`--rev`, extracted with `git archive`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=1_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--rev", help="profile this git revision instead of the working tree")
    args = parser.parse_args()
    src = ROOT
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "dnsrewrite"],
                           capture_output=True, text=True).stdout.split("\n")
    changed = sorted(os.path.basename(line[3:]) for line in dirty if line.strip())
    label = f"working tree at {head}" + (f" with uncommitted changes ({', '.join(changed)})"
                                         if changed else "")
    if args.rev:
        label = f"commit {args.rev}"
        src = tempfile.mkdtemp(prefix="profile-publish-")
        archive = subprocess.run(["git", "-C", ROOT, "archive", args.rev, "dnsrewrite",
                                  "tests/fakeapi"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    sys.path.insert(0, src)
    sys.path.insert(1, HERE)
    import logging

    from scale_bench import BIG_NS, ENROLL, SMALL_NS, _Ips, layout

    from dnsrewrite import config
    from dnsrewrite.cluster import ClusterBuilder
    from dnsrewrite.model import endpoint_slice_from_api, namespace_from_api, service_from_api
    from dnsrewrite.policy import Policy
    from tests.fakeapi import objects as k8s

    logging.disable(logging.CRITICAL)  # the decision log is not what is profiled here
    cfg = config.load(None, {"rewrite": {"gateway": "mesh/gw", "hold_down_s": 0}})
    builder = ClusterBuilder(Policy(cfg.rewrite))
    ips = _Ips(10, 128)
    namespaces = [namespace_from_api(k8s.namespace("mesh"))]
    services = [service_from_api(k8s.service("mesh", "gw", ports=[("http", 80, "TCP")]))]
    slices = [endpoint_slice_from_api(k8s.endpoint_slice(
        "mesh", "gw-abcde", "gw", ports=[("http", 80, "TCP")],
        endpoints=[{"addresses": [ips.next()], "ready": True} for _ in range(3)]))]
    raw_slices = {}
    for i, (ns, count) in enumerate(layout(args.services, args.namespaces).items()):
        enrolled = i % 2 == 0 and ns not in (BIG_NS, SMALL_NS)
        namespaces.append(namespace_from_api(k8s.namespace(ns, ENROLL if enrolled else {})))
        for j in range(count):
            name = f"svc-{j:04d}"
            headless = ns not in (BIG_NS, SMALL_NS) and (i + j) % 8 == 7
            services.append(service_from_api(k8s.service(
                ns, name, ports=[("http", 80, "TCP")], headless=headless)))
            raw = k8s.endpoint_slice(ns, f"{name}-abcde", name, ports=[("http", 80, "TCP")],
                                     endpoints=[{"addresses": [ips.next()], "ready": True}
                                                for _ in range(3)])
            raw_slices[(ns, name)] = raw
            slices.append(endpoint_slice_from_api(raw))
    t = time.perf_counter()
    builder.replace_all(namespaces, services, slices)
    builder.synced = True
    builder.publish(time.time())
    gc.freeze()  # as the writer does after each publish
    print(f"measured: {label}")
    print(f"{args.services:,} Services, {len(slices):,} slices: initial publish "
          f"{time.perf_counter() - t:.2f} s")

    # EndpointSlice updates in the last 10% of namespaces, one publish each.
    churn_keys = [k for k in raw_slices if k[0] >= f"ns-{int(args.namespaces * 0.9):04d}"]
    churn_ips = _Ips(10, 200)

    def update(n: int) -> None:
        key = churn_keys[n % len(churn_keys)]
        raw = raw_slices[key]
        endpoints = [{**raw["endpoints"][0], "addresses": [churn_ips.next()]},
                     *raw["endpoints"][1:]]
        raw_slices[key] = raw = {**raw, "endpoints": endpoints}
        builder.set_slice(endpoint_slice_from_api(raw))
        builder.publish(time.time())
        gc.freeze()

    def timed(step, n: int, offset: int = 0) -> list[float]:
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            step(offset + i)
            times.append(time.perf_counter() - t0)
        return times

    def flip(n: int) -> None:
        builder.set_namespace(namespace_from_api(k8s.namespace(BIG_NS, ENROLL if n % 2 == 0
                                                               else {})))
        builder.publish(time.time())
        gc.freeze()

    first = timed(update, args.updates)
    again = timed(update, args.updates, args.updates)
    print(f"EndpointSlice update + publish: first {args.updates}: median "
          f"{1000 * statistics.median(first):.2f} ms; next {args.updates}: median "
          f"{1000 * statistics.median(again):.2f} ms (max {1000 * max(first + again):.1f})")
    view = builder.view
    for name in ("services", "reverse"):
        table = getattr(view, name, None)
        if type(table) is dict:
            clean = dict(table.items())  # the same entries, inserted once: no deleted slots
            copy_ms = min(timed(lambda _, t=table: dict(t), 5)) * 1000
            clean_ms = min(timed(lambda _, t=clean: dict(t), 5)) * 1000
            print(f"copying view.{name} ({len(table):,} entries) as publish does: "
                  f"{copy_ms:.2f} ms; the same entries in a freshly built dict: {clean_ms:.2f} ms")
    flips = timed(flip, 6)
    print(f"flip of {BIG_NS} (1,000 Services) + publish: median "
          f"{1000 * statistics.median(flips):.1f} ms (each: "
          f"{', '.join(f'{1000 * v:.0f}' for v in flips)} ms)")

    for title, step, n in (("EndpointSlice update", update, args.updates),
                           (f"namespace flip ({BIG_NS}, 1,000 Services)", flip, 4)):
        profile = cProfile.Profile()
        profile.enable()
        for i in range(n):
            step(10 * args.updates + i)
        profile.disable()
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats(key).print_stats(args.top)
            lines = out.getvalue().splitlines()
            start = next(i for i, line in enumerate(lines) if "ncalls" in line)
            print(f"\n--- {title} x{n}, cProfile by {key}")
            print("\n".join(line.replace(src + "/", "") for line in lines[start:] if line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
