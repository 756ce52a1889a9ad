#!/usr/bin/env bash
# benchmarks/throughput.sh [options]: see `.venv/bin/python benchmarks/bench.py throughput --help`.
# Runs for 10,000 Services by default: NSD and dnsrewrite, interleaved; prints the ratio.
source "$(dirname "$0")/_setup.sh"
exec "$PY" "$ROOT/benchmarks/bench.py" throughput "$@"
