"""The checks DESIGN.md asks for, run with the suite: ruff, mypy on dnsrewrite/, and the
import-linter contracts that keep the query path pure and kubernetes behind kube.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


@pytest.mark.parametrize("command", [
    ["ruff", "check", "dnsrewrite", "tests", "benchmarks"],
    ["mypy", "dnsrewrite"],
    ["lint-imports"],
], ids=["ruff", "mypy", "import-linter"])
def test_static_check_passes(command):
    out = subprocess.run([os.path.join(BIN, command[0]), *command[1:]], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
