# Sourced by the benchmark wrappers: install what the benchmarks need, then set $PY.
# Debian packages: dnsperf and nsd (root; apt-get only when one is missing). Python: the
# project's .venv with the test extras (dnspython), created when missing, and the
# benchmark-only packages of benchmarks/requirements.txt (matplotlib, py-spy).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v nsd >/dev/null || missing+=(nsd)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
    echo "[setup] apt-get install -y ${missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if (($(nproc) < 2)); then
    echo "[setup] need 2 CPUs (server on CPU 1, dnsperf on CPU 0); nproc is $(nproc)" >&2
    exit 1
fi
PY="$ROOT/.venv/bin/python"
if ! "$PY" -c 'import dnsrewrite, dns.message' 2>/dev/null; then
    echo "[setup] creating $ROOT/.venv with the project and its test extras" >&2
    [ -x "$PY" ] || python3 -m venv "$ROOT/.venv"
    "$PY" -m pip install -q -e "$ROOT[test]" >&2
fi
# Benchmark-only Python dependencies (the latency chart, py-spy profiles).
if ! "$PY" -c 'import matplotlib' 2>/dev/null || [ ! -x "$(dirname "$PY")/py-spy" ]; then
    echo "[setup] pip install -r benchmarks/requirements.txt" >&2
    "$PY" -m pip install -q -r "$ROOT/benchmarks/requirements.txt" >&2
fi
