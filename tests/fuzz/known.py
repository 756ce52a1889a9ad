"""Panics found by fuzzing and floods whose fix belongs in dnsrewrite/ and is pending.

A panic is an exception caught by `Answerer.answer`'s safety net (SERVFAIL, a
`coredns_panics_total` bump and a logged traceback). Each entry is keyed on
(exception type, innermost function) and has a reproducer in `known_bugs/`. The
fuzz harness counts these instead of stopping on them, so a long run keeps
looking for new ones; `tests/test_fuzz_corpus.py` replays the reproducers as
strict xfails, so fixing one turns its test into an XPASS failure: then delete
the entry here and move the reproducer into `corpus/`.
"""

from __future__ import annotations

import traceback

KNOWN_PANICS: dict[tuple[str, str], str] = {}


def panic_site(exc: BaseException) -> tuple[str, str]:
    """(exception type, innermost function) of a caught exception."""
    frames = traceback.extract_tb(exc.__traceback__)
    return type(exc).__name__, frames[-1].name if frames else "?"
