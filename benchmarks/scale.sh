#!/usr/bin/env bash
# benchmarks/scale.sh scale|churn|memory|loop [options]: see `.venv/bin/python benchmarks/scale_bench.py --help`.
# 100,000 Services from the fake API (RSS, ready, relist stall, namespace flips); dnsperf under
# EndpointSlice churn; where the memory goes.
source "$(dirname "$0")/_setup.sh"
exec "$PY" "$ROOT/benchmarks/scale_bench.py" "$@"
