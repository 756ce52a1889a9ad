#!/usr/bin/env python3
"""Chart latency (p50, p99) against offered load for dnsrewrite and NSD.

    .venv/bin/pip install -r benchmarks/requirements.txt   # matplotlib, benchmark-only
    benchmarks/latency.sh --remeasure --rates 10,25,50,75,90
    .venv/bin/python benchmarks/plot_latency.py [out/latency.json] [-o benchmarks/latency.png]

Reads the JSON that `latency.sh` writes (its fixed-rate runs, and the unpaced max runs
when it was given `--remeasure`) and draws two panels: latency against offered qps,
and against the percentage of each server's own maximum. Log scale for latency.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", default=os.path.join(HERE, "out", "latency.json"))
    parser.add_argument("-o", "--output", default=os.path.join(HERE, "latency.png"))
    args = parser.parse_args()
    try:
        import matplotlib
    except ImportError:
        print("matplotlib missing: .venv/bin/pip install -r benchmarks/requirements.txt",
              file=sys.stderr)
        return 2
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(args.input) as handle:
        data = json.load(handle)
    maxima = data["max_qps"]
    env = data["env"]
    fig, (ax_abs, ax_pct) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    colors = {"nsd": "tab:blue", "dnsrewrite": "tab:orange"}
    labels = {"nsd": "NSD", "dnsrewrite": "dnsrewrite"}
    for server in ("nsd", "dnsrewrite"):
        runs = sorted((r for r in data["runs"] if r["server"] == server),
                      key=lambda r: r["offered_qps"])
        full = [r for r in data.get("max_runs", []) if r["server"] == server]
        points = [(r["offered_qps"], r["qps"], r["p50_ms"], r["p99_ms"]) for r in runs]
        points += [(None, r["qps"], r["p50_ms"], r["p99_ms"]) for r in full]
        if not points:
            continue
        offered = [p[0] if p[0] is not None else p[1] for p in points]
        pct = [100 * o / maxima[server] for o in offered]
        for ax, xs in ((ax_abs, offered), (ax_pct, pct)):
            ax.plot(xs, [p[2] for p in points], "o-", color=colors[server],
                    label=f"{labels[server]} p50")
            ax.plot(xs, [p[3] for p in points], "s--", color=colors[server],
                    label=f"{labels[server]} p99")
    for ax in (ax_abs, ax_pct):
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.axhline(2.0, color="grey", lw=0.8, ls=":")
    ax_abs.set_xlabel("offered load (queries/s" + ("; each server's rightmost point is "
                      "unpaced, at its answered rate)" if data.get("max_runs") else ")"))
    ax_pct.set_xlabel("offered load (% of the server's own maximum)")
    ax_abs.set_ylabel("latency (ms, dnsperf -v per response)")
    ax_pct.axvline(25, color="grey", lw=0.8, ls=":")
    ax_pct.axvline(75, color="grey", lw=0.8, ls=":")
    ax_pct.text(25, 0.5, " goal p99 ≤ 0.5 ms at 25%", fontsize=7, va="bottom")
    ax_pct.text(75, 2.0, " ≤ 2 ms at 75%", fontsize=7, va="bottom")
    ax_pct.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"dnsrewrite ({env['dnsrewrite']}) vs {env['nsd']}, {env['date']}, "
                 f"{env['services']:,} Services; server on CPU 1, dnsperf on CPU 0", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
