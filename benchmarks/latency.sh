#!/usr/bin/env bash
# benchmarks/latency.sh [options]: see `.venv/bin/python benchmarks/bench.py latency --help`.
# Fixed-rate dnsperf -Q runs at 25% and 75% of each server's max (from throughput.json).
source "$(dirname "$0")/_setup.sh"
exec "$PY" "$ROOT/benchmarks/bench.py" latency "$@"
