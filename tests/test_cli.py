"""The command line as a user runs it: real processes, real signals, real dig."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.dnsclient import dig, udp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DNSREWRITE = [sys.executable, "-m", "dnsrewrite"]


def free_port() -> int:
    """A port free for both UDP and TCP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_sock, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp_sock:
            udp_sock.bind(("127.0.0.1", 0))
            port = udp_sock.getsockname()[1]
            try:
                tcp_sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def wait_answering(port: int, name: str = "billing.legacy.svc.cluster.local.") -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            udp("127.0.0.1", port, name)
            return
        except Exception:
            time.sleep(0.05)
    raise AssertionError("server did not answer")


@pytest.fixture
def serve(tmp_path):
    procs = []

    def start(*args: str) -> tuple[subprocess.Popen, int]:
        port = free_port()
        proc = subprocess.Popen([*DNSREWRITE, "serve", "--listen", f"127.0.0.1:{port}",
                                 "--admin-listen", "127.0.0.1:0", *args],
                                cwd=ROOT, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        wait_answering(port)
        return proc, port

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_help_lists_the_commands():
    out = subprocess.run([*DNSREWRITE, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "serve" in out.stdout and "check-config" in out.stdout
    out = subprocess.run([*DNSREWRITE, "serve", "--help"], capture_output=True, text=True)
    for flag in ("--listen", "--cluster-file", "--zone", "--gateway", "--enroll-selector",
                 "--ttl", "--config"):
        assert flag in out.stdout


def test_check_config_accepts_the_demo_and_rejects_a_bad_key(tmp_path):
    ok = subprocess.run([*DNSREWRITE, "check-config", "--config", "config/dnsrewrite.yaml"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "services" in ok.stdout and "config ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("rewrite:\n  ttl_s: 99999\n")
    out = subprocess.run([*DNSREWRITE, "check-config", "--config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert "rewrite.ttl_s: must be at most 3600" in out.stderr


def test_serve_refuses_to_start_on_a_bad_flag():
    out = subprocess.run([*DNSREWRITE, "serve", "--config", "config/dnsrewrite.yaml", "--ttl",
                          "9999"], capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert out.returncode == 2 and "ttl_s: must be at most 3600" in out.stderr


def test_serve_with_flags_only_and_no_config_file(serve):
    _, port = serve("--cluster-file", "config/demo-cluster.yaml",
                    "--gateway", "mesh-gateway/internal-gateway", "--ttl", "7")
    rewritten = udp("127.0.0.1", port, "reviews.bookinfo.svc.cluster.local.").answer[0]
    assert [r.to_text() for r in rewritten] == ["10.96.0.100"]
    assert rewritten.ttl == 5  # rewritten answers carry rewrite.ttl_s, not --ttl
    assert udp("127.0.0.1", port, "billing.legacy.svc.cluster.local.").answer[0].ttl == 7


def test_readme_demo_answers_as_documented(serve):
    _, port = serve("--config", "config/dnsrewrite.yaml")
    assert dig(port, "+short", "reviews.bookinfo.svc.cluster.local").split() == ["10.96.0.100"]
    assert dig(port, "+short", "billing.legacy.svc.cluster.local").split() == ["10.96.20.10"]
    assert dig(port, "+short", "+tcp", "billing.legacy.svc.cluster.local").split() == \
        ["10.96.20.10"]
    assert "status: REFUSED" in dig(port, "example.com")


def test_sighup_reloads_the_cluster_file_and_a_bad_file_keeps_the_data(serve, tmp_path):
    data = tmp_path / "cluster.yaml"
    shutil.copy(os.path.join(ROOT, "config", "demo-cluster.yaml"), data)
    proc, port = serve("--config", "config/dnsrewrite.yaml", "--cluster-file", str(data))
    assert dig(port, "+short", "billing.legacy.svc.cluster.local").split() == ["10.96.20.10"]

    data.write_text(data.read_text().replace("10.96.20.10", "10.96.20.99"))
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while dig(port, "+short", "billing.legacy.svc.cluster.local").split() != ["10.96.20.99"]:
        assert time.monotonic() < deadline, "reload not seen"
        time.sleep(0.05)

    data.write_text("items: [unclosed\n")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)  # nothing to await: the point is that the answer does NOT change
    assert proc.poll() is None
    assert dig(port, "+short", "billing.legacy.svc.cluster.local").split() == ["10.96.20.99"]


def test_sigterm_exits_cleanly(serve):
    proc, _ = serve("--config", "config/dnsrewrite.yaml")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    stderr = proc.stderr.read()
    assert "shutting down" in stderr
    assert "Traceback" not in stderr
