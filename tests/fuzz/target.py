"""The fuzz target, importable without atheris: two answerers over one demo app's views
(reply cache on and off), every input answered as UDP and TCP and checked by the oracle."""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter

from dnsrewrite.answer import Answerer
from tests.conftest import demo_config, loaded_app
from tests.fuzz.known import KNOWN_PANICS, panic_site
from tests.fuzz.oracle import OracleError, check


class PanicLog(logging.Handler):
    """Collects the exceptions the answerer logs when its safety net catches one."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.caught: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.caught.append(record.exc_info[1])

    def take(self) -> list[BaseException]:
        caught, self.caught = self.caught, []
        return caught


def capture_panics(quiet: bool = True) -> PanicLog:
    """Attach a PanicLog to the `dnsrewrite` logger (and, with `quiet`, silence the rest)."""
    handler = PanicLog()
    logger = logging.getLogger("dnsrewrite")
    handler.saved = (logger.level, logger.propagate)  # type: ignore[attr-defined]
    if quiet:
        logger.setLevel(logging.ERROR)
        logger.propagate = False
    logger.addHandler(handler)
    return handler


def release_panics(handler: PanicLog) -> None:
    logger = logging.getLogger("dnsrewrite")
    logger.removeHandler(handler)
    logger.level, logger.propagate = handler.saved  # type: ignore[attr-defined]


class Target:
    def __init__(self, strict: bool = False, quiet: bool = True, verbose: bool = False) -> None:
        self.panic_log = capture_panics(quiet)
        self.app = loaded_app(demo_config())
        self.on = self.app.answerer
        self.off = Answerer(demo_config(reply_cache_size=0), lambda: self.app.view)
        assert self.on.cache is not None and self.off.cache is None
        self.strict = strict
        self.verbose = verbose  # say on stderr when a known panic is first hit
        self.known: Counter[tuple[str, str]] = Counter()
        self.inputs = 0

    def close(self) -> None:
        release_panics(self.panic_log)
        self.app.writer.stop()

    def one_input(self, data: bytes) -> None:
        self.inputs += 1
        for tcp in (False, True):
            got = self.on.answer(data, tcp)
            again = self.on.answer(data, tcp)  # served from the cache if it was cached
            want = self.off.answer(data, tcp)
            self._panics(data, tcp)
            if got != want or again != want:
                raise OracleError(f"reply cache on/off differ (tcp={tcp}): {got!r} {again!r} "
                                  f"{want!r}")
            check(data, got, tcp)

    def _panics(self, data: bytes, tcp: bool) -> None:
        for exc in self.panic_log.take():
            site = panic_site(exc)
            if site in KNOWN_PANICS and not self.strict:
                if self.verbose and not self.known[site]:
                    print(f"known panic {site} first hit by {data!r}", file=sys.stderr)
                self.known[site] += 1
                continue
            raise OracleError(f"panic {site} answering {data!r} (tcp={tcp})") from exc

    def summary(self) -> str:
        lines = [f"inputs: {self.inputs}, known panics hit: {sum(self.known.values())}"]
        lines += [f"  {site}: {n}  ({KNOWN_PANICS[site]})" for site, n in self.known.items()]
        return "\n".join(lines)


def mutate(rng: random.Random, data: bytes, corpus: list[bytes], max_len: int = 4096) -> bytes:
    """One to four random edits of `data`, libFuzzer style (without atheris, and in CI)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and out:  # flip a bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # set a byte to an interesting value
            out[rng.randrange(len(out))] = rng.choice((0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF,
                                                        rng.randrange(256)))
        elif op == 2:  # insert random bytes
            i = rng.randrange(len(out) + 1)
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and len(out) > 1:  # delete a range
            i = rng.randrange(len(out))
            del out[i : i + rng.randint(1, 8)]
        elif op == 4:  # truncate
            del out[rng.randrange(len(out) + 1):]
        elif op == 5 and corpus:  # splice with another input
            other = rng.choice(corpus)
            i, j = rng.randrange(len(out) + 1), rng.randrange(len(other) + 1)
            out = out[:i] + other[j:]
        elif op == 6 and len(out) >= 12:  # rewrite a 16-bit header field
            i = rng.randrange(2, 12, 2)
            out[i : i + 2] = rng.choice((b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\xff\xff",
                                         rng.randbytes(2)))
    return bytes(out[:max_len])
