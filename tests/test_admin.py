"""The admin HTTP server over real HTTP, metrics as Prometheus parses them, reload and
graceful shutdown while queries flow."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from dnsrewrite import config
from tests.conftest import DEMO_CONFIG, ROOT, ServerThread
from tests.dnsclient import udp
from tests.test_cli import free_port, wait_answering


def get(server: ServerThread, path: str) -> tuple[int, str]:
    host, port = server.app.admin_bound
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(metrics: dict, name: str, **labels: str) -> float:
    return sum(v for (n, lbls), v in metrics.items()
               if n == name and all(dict(lbls).get(k) == val for k, val in labels.items()))


def test_health_ready_status_and_explain(demo_server):
    assert get(demo_server, "/health") == (200, "OK")
    assert get(demo_server, "/ready")[0] == 200
    status = json.loads(get(demo_server, "/status")[1])
    assert status["synced"] and status["services"] == 13
    assert status["gateways"]["default"]["ready_endpoints"] == 2
    code, body = get(demo_server, "/explain?name=reviews.bookinfo.svc.cluster.local&type=A")
    result = json.loads(body)
    assert code == 200 and result["decision"]["state"] == "rewritten"
    assert result["answer"] == ["reviews.bookinfo.svc.cluster.local. 5 IN A 10.96.0.100"]
    assert get(demo_server, "/explain")[0] == 400


def test_metrics_use_coredns_names_and_move_with_queries(demo_server):
    before = samples(get(demo_server, "/metrics")[1])
    for _ in range(3):
        udp("127.0.0.1", demo_server.port, "reviews.bookinfo.svc.cluster.local.")
    udp("127.0.0.1", demo_server.port, "nope.legacy.svc.cluster.local.")
    udp("127.0.0.1", demo_server.port, "example.com.")
    after = samples(get(demo_server, "/metrics")[1])
    server = f"dns://127.0.0.1:{demo_server.port}"
    key = dict(server=server, zone="cluster.local.", view="", proto="udp", family="1", type="A")
    assert total(after, "coredns_dns_requests_total", **key) - \
        total(before, "coredns_dns_requests_total", **key) == 4
    assert total(after, "coredns_dns_responses_total", rcode="NXDOMAIN") == 1
    assert total(after, "coredns_dns_responses_total", zone="dropped", rcode="REFUSED") == 1
    assert total(after, "coredns_dns_request_duration_seconds_count", zone="cluster.local.") >= 4
    assert total(after, "coredns_dns_request_size_bytes_count", proto="udp") >= 5
    assert total(after, "coredns_dns_response_size_bytes_count", proto="udp") >= 5
    assert ("coredns_panics_total", ()) in after
    assert total(after, "coredns_build_info") == 1
    assert total(after, "dnsrewrite_rewritten_answers_total") == 3
    assert total(after, "dnsrewrite_decisions", state="rewritten") == 3
    assert total(after, "dnsrewrite_gateway_ready_endpoints", gateway="default") == 2
    assert total(after, "dnsrewrite_gateway_fail_open", gateway="default") == 0
    assert total(after, "dnsrewrite_data_generation") >= 1
    assert total(after, "dnsrewrite_kubernetes_dns_programming_duration_seconds_count") >= 1
    text = get(demo_server, "/metrics")[1]
    assert "reviews" not in text  # labels never carry a query name


def _write_config(path, extra: str) -> None:
    with open(DEMO_CONFIG) as handle:
        text = handle.read()
    text = text.replace(
        "cluster_file: demo-cluster.yaml",
        f"cluster_file: {os.path.join(ROOT, 'config', 'demo-cluster.yaml')}")
    path.write_text(text + extra)


def test_config_reload_good_then_bad_while_queries_flow(tmp_path):
    cfg_path = tmp_path / "dnsrewrite.yaml"
    _write_config(cfg_path, "")
    overrides = {"listen": ["127.0.0.1:0"], "admin_listen": "127.0.0.1:0"}
    server = ServerThread(config.load(str(cfg_path), overrides))
    server.start()
    app = server.app
    app.config_path, app.overrides = str(cfg_path), overrides
    stop, errors, answered = threading.Event(), [], [0]

    def load() -> None:
        while not stop.is_set():
            try:
                reply = udp("127.0.0.1", server.port, "billing.legacy.svc.cluster.local.")
                assert reply.answer, reply
                answered[0] += 1
            except Exception as err:  # any lost or wrong answer fails the test
                errors.append(err)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        _write_config(cfg_path, "\nttl_s: 42\n")
        assert app.reload_config()
        assert udp("127.0.0.1", server.port, "billing.legacy.svc.cluster.local.").answer[0].ttl == 42
        _write_config(cfg_path, "\nttl_s: 99999\n")
        assert not app.reload_config()
        assert app.reload_failures == 1
        assert udp("127.0.0.1", server.port, "billing.legacy.svc.cluster.local.").answer[0].ttl == 42
        metrics = samples(get(server, "/metrics")[1])
        assert total(metrics, "dnsrewrite_reload_failures_total") == 1
    finally:
        stop.set()
        worker.join()
        server.stop()
    assert not errors and answered[0] > 10


def test_sigterm_turns_ready_503_answers_through_the_lame_duck_and_loses_nothing(tmp_path):
    cfg_path = tmp_path / "dnsrewrite.yaml"
    _write_config(cfg_path, "\nshutdown:\n  lameduck_s: 1.5\n")
    port, admin = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dnsrewrite", "serve", "--config",
                             str(cfg_path), "--listen", f"127.0.0.1:{port}",
                             "--admin-listen", f"127.0.0.1:{admin}"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_answering(port)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 1.0
        saw_503 = False
        answered = 0
        while time.monotonic() < deadline:
            assert udp("127.0.0.1", port, "billing.legacy.svc.cluster.local.").answer
            answered += 1
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1)
            except urllib.error.HTTPError as err:
                saw_503 = saw_503 or err.code == 503
        assert saw_503 and answered > 10
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(tmp_path, ignore_errors=True)
