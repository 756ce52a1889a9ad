#!/usr/bin/env python3
"""Fuzz the query path, decode -> answer -> encode, over the demo cluster (issue 7, item 2).

    benchmarks/fuzz.sh SECONDS                      # the one-command long run
    .venv/bin/python tests/fuzz/fuzz_answer.py -max_total_time=120 -max_len=1024 \
        benchmarks/out/fuzz-corpus tests/fuzz/corpus

With atheris (`.venv/bin/pip install atheris`), libFuzzer drives `Answerer.answer`
with coverage feedback from the instrumented `dnsrewrite` package; new inputs go to
the first corpus directory (so pass a scratch one first to keep the seed corpus
as committed), a failing input is written to `crash-<sha1>`. Without atheris the
same checks run in a random-mutation loop over the corpus (same flags:
`-max_total_time`, `-runs`, `-seed`, `-max_len`).

Every input is answered as UDP and as TCP by two answerers over the same view, one
with the reply cache and one without (each asked twice, so the second is a cache
hit), and must satisfy `oracle.check`: no exception escapes; no reply exactly when
the query has fewer than 12 bytes or QR set; a reply parses with dnspython, echoes
the ID, opcode and question bytes, is <= 512 bytes for UDP without EDNS and
<= min(max(client size, 512), 1232) with it; the bytes are identical with the cache
on and off. A panic (an exception caught by the answerer's safety net: SERVFAIL
plus a logged traceback) fails the run, except the known ones in `known.py`,
which are counted and printed at exit (`FUZZ_STRICT=1` fails on those too).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import random
import sys
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    import atheris
except ImportError:  # the fallback loop below does the same checks without coverage
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["dnsrewrite"]):
        import dnsrewrite.answer  # noqa: F401
        import dnsrewrite.app  # noqa: F401

from tests.fuzz.target import Target, mutate  # noqa: E402

# --- without atheris: random mutations of the corpus --------------------------------------


def _flags(argv: list[str]) -> tuple[dict[str, int], list[str]]:
    flags, paths = {}, []
    for arg in argv[1:]:
        if arg.startswith("-") and "=" in arg:
            key, _, value = arg.lstrip("-").partition("=")
            flags[key] = int(value) if value.lstrip("-").isdigit() else 0
        elif not arg.startswith("-"):
            paths.append(arg)
    return flags, paths


def load_corpus(paths: list[str]) -> list[bytes]:
    out = []
    for path in paths:
        names = [os.path.join(path, n) for n in sorted(os.listdir(path))] \
            if os.path.isdir(path) else [path]
        for name in names:
            if os.path.isfile(name):
                with open(name, "rb") as handle:
                    out.append(handle.read())
    return out


def fallback(argv: list[str], one_input: Callable[[bytes], None]) -> int:
    flags, paths = _flags(argv)
    corpus = load_corpus(paths) or [b""]
    rng = random.Random(flags.get("seed", 0) or time.time_ns())
    deadline = time.monotonic() + flags.get("max_total_time", 60)
    runs, max_len = flags.get("runs", -1), flags.get("max_len", 4096)
    done = 0
    print(f"no atheris: random-mutation loop over {len(corpus)} corpus inputs", file=sys.stderr)
    for data in corpus:
        one_input(data)
    while time.monotonic() < deadline and done != runs:
        data = mutate(rng, rng.choice(corpus), corpus, max_len)
        try:
            one_input(data)
        except Exception:
            name = "crash-" + hashlib.sha1(data).hexdigest()
            with open(name, "wb") as handle:
                handle.write(data)
            print(f"failing input written to {name}", file=sys.stderr)
            raise
        done += 1
    print(f"done: {done} mutated inputs", file=sys.stderr)
    return 0


def main(argv: list[str]) -> int:
    target = Target(strict=os.environ.get("FUZZ_STRICT") == "1", verbose=True)
    atexit.register(lambda: print(target.summary(), file=sys.stderr))
    if atheris is None:
        return fallback(argv, target.one_input)
    atheris.Setup(argv, target.one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
