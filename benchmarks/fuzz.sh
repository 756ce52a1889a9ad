#!/usr/bin/env bash
# benchmarks/fuzz.sh [SECONDS]: fuzz Answerer.answer for SECONDS (default 600) with atheris
# (installed into .venv when missing; without it the harness falls back to a random-mutation
# loop). New inputs go to benchmarks/out/fuzz-corpus, the committed seed corpus
# tests/fuzz/corpus is only read; a failing input is written to benchmarks/out/crash-<sha1>.
# See tests/fuzz/fuzz_answer.py for what is checked.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TO_RUN=${1:-600}
PY="$ROOT/.venv/bin/python"
"$PY" -c 'import atheris' 2>/dev/null || "$PY" -m pip install -q atheris \
    || echo "[fuzz] atheris did not install: using the random-mutation fallback" >&2
mkdir -p "$ROOT/benchmarks/out/fuzz-corpus"
cd "$ROOT/benchmarks/out"
exec "$PY" "$ROOT/tests/fuzz/fuzz_answer.py" -max_total_time="$SECONDS_TO_RUN" -max_len=1024 \
    -dict="$ROOT/tests/fuzz/dns.dict" -print_final_stats=1 \
    "$ROOT/benchmarks/out/fuzz-corpus" "$ROOT/tests/fuzz/corpus"
