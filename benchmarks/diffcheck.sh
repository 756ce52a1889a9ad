#!/usr/bin/env bash
# benchmarks/diffcheck.sh [options]: see `.venv/bin/python benchmarks/diffcheck.py --help`.
source "$(dirname "$0")/_setup.sh"
exec "$PY" "$ROOT/benchmarks/diffcheck.py" "$@"
