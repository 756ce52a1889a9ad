#!/usr/bin/env python3
"""Malformed floods and TCP abuse against a live `dnsrewrite serve` (issue 7, item 3).

    .venv/bin/python benchmarks/flood.py                      # 200,000 datagrams, 2,000 frames
    .venv/bin/python benchmarks/flood.py --datagrams 20000 --batch 10000 --frames 200

Starts `dnsrewrite serve --config config/dnsrewrite.yaml --listen 127.0.0.1:PORT
--admin-listen 127.0.0.1:0` as a subprocess (PORT 0 by default: the port is read from
its "listening" log line), warms it up with valid queries, then:

* UDP: `--datagrams` malformed datagrams in batches of `--batch`, paced at `--rate` per
  second: random bytes, truncated real queries, bit-flipped real queries, QR set, huge
  section counts, broken EDNS, compression pointers in the question. After each batch a
  probe query (A, UDP) must answer within `--probe-ms`.
* TCP: `--frames` malformed frames in four batches: random frames, zero-length frames,
  oversized lengths with short bodies, bit-flipped and QR-set queries, and slowloris
  connections that send a partial frame and wait; each batch is followed by a probe. The
  slowloris connections must all be closed by the server (idle timeout).
* TCP: 1,000 pipelined queries on one connection, all answered with matching IDs.
* Optionally (`--cap-check`) more connections than `tcp.max_connections` at once: the
  cap holds and a new connection is served once they are gone.

Measured: packets and frames tried, replies, kernel UDP receive-buffer drops (from
/proc/net/snmp, machine-wide), probe latencies, the server's RSS (VmRSS) before and
after and its peak (VmHWM), coredns_panics_total, and whether the process is alive.
Prints a summary, writes benchmarks/out/flood.json, exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field

import dns.flags
import dns.message
import dns.query

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
HOST = "127.0.0.1"
DNSREWRITE = os.path.join(ROOT, ".venv", "bin", "dnsrewrite")
DEMO_CONFIG = os.path.join(ROOT, "config", "dnsrewrite.yaml")
PROBE_NAME = "reviews.bookinfo.svc.cluster.local"
PROBE_ANSWER = "10.96.0.100"

# Real queries the malformed ones are made from: every shape the demo cluster answers.
SEED_QUESTIONS = [
    ("reviews.bookinfo.svc.cluster.local", "A"),
    ("billing.legacy.svc.cluster.local", "AAAA"),
    ("db.legacy.svc.cluster.local", "A"),
    ("_postgres._tcp.db.legacy.svc.cluster.local", "SRV"),
    ("payments-api.legacy.svc.cluster.local", "CNAME"),
    ("10.20.96.10.in-addr.arpa", "PTR"),
    ("cluster.local", "SOA"),
    ("cluster.local", "NS"),
    ("nosuch.legacy.svc.cluster.local", "A"),
    ("example.com", "A"),
    ("10-244-1-5.legacy.pod.cluster.local", "A"),
    ("dns-version.cluster.local", "TXT"),
]


def seed_queries() -> list[bytes]:
    out = []
    for name, rdtype in SEED_QUESTIONS:
        for edns, do in ((False, False), (0, False), (0, True)):
            query = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=do)
            out.append(query.to_wire())
    return out


def frame(message: bytes) -> bytes:
    """RFC 1035 §4.2.2: a two-byte length, then the message."""
    return struct.pack("!H", len(message)) + message


# --- the server ------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    admin: tuple[str, int]
    log_path: str
    scratch: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self, key: str) -> int:
        """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def metric(self, name: str) -> float:
        """Sum of every series of one metric family from /metrics."""
        url = f"http://{self.admin[0]}:{self.admin[1]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(None, 1)[1])
        return total

    def ready(self) -> int:
        url = f"http://{self.admin[0]}:{self.admin[1]}/ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code

    def stop(self) -> None:
        if self.alive():
            # A second SIGTERM skips the lame-duck period (App.request_stop).
            self.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(port: int = 0, overrides: dict | None = None, timeout: float = 30.0,
                 config: str = DEMO_CONFIG, prefix: tuple[str, ...] = ()) -> Server:
    """`dnsrewrite serve` on 127.0.0.1:PORT from `config` (plus `overrides`), optionally
    behind a `prefix` such as `taskset -c 1` (which execs it: the PID stays the server's)."""
    scratch = tempfile.mkdtemp(prefix="dnsrewrite-serve-")
    import yaml

    with open(config) as handle:
        data = yaml.safe_load(handle)
    if data.get("cluster_file"):
        data["cluster_file"] = os.path.join(os.path.dirname(os.path.abspath(config)),
                                            data["cluster_file"])
    data["log_level"] = "info"  # the "listening" lines tell the ports
    for key, value in (overrides or {}).items():
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    config_path = os.path.join(scratch, "config.yaml")
    with open(config_path, "w") as handle:
        yaml.safe_dump(data, handle)
    log_path = os.path.join(scratch, "server.log")
    cmd = [*prefix, DNSREWRITE, "serve", "--config", config_path, "--listen", f"{HOST}:{port}",
           "--admin-listen", f"{HOST}:0"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)
    deadline = time.monotonic() + timeout
    dns_port = admin = None
    while time.monotonic() < deadline and (dns_port is None or admin is None):
        if proc.poll() is not None:
            break
        with open(log_path) as handle:
            text = handle.read()
        found = re.search(r'msg=listening address="?[\d.]+:(\d+)', text)
        dns_port = int(found.group(1)) if found else None
        found = re.search(r"msg=\"admin listening\" address=\"\('([\d.]+)', (\d+)\)", text)
        admin = (found.group(1), int(found.group(2))) if found else None
        time.sleep(0.05)
    if dns_port is None or admin is None:
        proc.kill()
        with open(log_path) as handle:
            raise RuntimeError(f"server did not start:\n{handle.read()[-3000:]}")
    return Server(proc, dns_port, admin, log_path, scratch)


# --- probes ------------------------------------------------------------------------------


def probe_udp(port: int, timeout: float = 1.0, qid: int | None = None) -> float | None:
    """Latency in ms of one A query over UDP with a correct answer, or None."""
    query = dns.message.make_query(PROBE_NAME, "A", use_edns=False)
    if qid is not None:
        query.id = qid
    started = time.perf_counter()
    try:
        reply = dns.query.udp(query, HOST, port=port, timeout=timeout)
    except Exception:
        return None
    elapsed = (time.perf_counter() - started) * 1000
    ok = reply.id == query.id and any(
        rr.to_text() == PROBE_ANSWER for rrset in reply.answer for rr in rrset)
    return elapsed if ok else None


def probe_tcp(port: int, timeout: float = 2.0) -> float | None:
    query = dns.message.make_query(PROBE_NAME, "A", use_edns=False)
    started = time.perf_counter()
    try:
        reply = dns.query.tcp(query, HOST, port=port, timeout=timeout)
    except Exception:
        return None
    elapsed = (time.perf_counter() - started) * 1000
    ok = any(rr.to_text() == PROBE_ANSWER for rrset in reply.answer for rr in rrset)
    return elapsed if ok else None


def probes(port: int, count: int = 3) -> list[float | None]:
    """`count` UDP probes in a row, sent straight after a batch (no settling time)."""
    return [probe_udp(port) for _ in range(count)]


def udp_drops() -> int:
    """Machine-wide UDP RcvbufErrors (datagrams the kernel dropped for a full buffer)."""
    with open("/proc/net/snmp") as handle:
        lines = [line.split() for line in handle if line.startswith("Udp:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("RcvbufErrors")])


# --- malformed datagrams -----------------------------------------------------------------


def bitflip(rng: random.Random, packet: bytes, flips: int) -> bytes:
    data = bytearray(packet)
    for _ in range(flips):
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def malformed(rng: random.Random, seeds: list[bytes]) -> tuple[str, bytes]:
    """One malformed message and its kind."""
    seed = rng.choice(seeds)
    kind = rng.choice(KINDS)
    if kind == "random":
        return kind, rng.randbytes(rng.randrange(0, 600))
    if kind == "truncated":
        return kind, seed[: rng.randrange(0, len(seed))]
    if kind == "bitflip":
        return kind, bitflip(rng, seed, rng.randint(1, 8))
    if kind == "qr-set":
        return kind, seed[:2] + bytes([seed[2] | 0x80]) + seed[3:]
    if kind == "huge-counts":
        counts = struct.pack("!HHHH", *(rng.choice((0, 1, 2, 0xFFFF, rng.randrange(1 << 16)))
                                        for _ in range(4)))
        return kind, seed[:4] + counts + seed[12:]
    if kind == "bad-edns":
        # An OPT whose option length runs past the record, or a second OPT.
        opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x08" + struct.pack("!HH", 10, 200)
        (arcount,) = struct.unpack_from("!H", seed, 10)
        return kind, seed[:10] + struct.pack("!H", arcount + 1) + seed[12:] + opt
    if kind == "pointer":
        # Compression pointers where no name may use them, pointing forward, at
        # themselves, or past the end.
        ptr = struct.pack("!H", 0xC000 | rng.choice((12, 13, 0x3FFF, len(seed))))
        return kind, seed[:12] + ptr + struct.pack("!HH", 1, 1) + seed[12:]
    # "long": a name of many tiny labels, over 255 bytes
    return kind, seed[:12] + b"\x01a" * rng.randint(120, 300) + b"\x00\x00\x01\x00\x01"


KINDS = ("random", "truncated", "bitflip", "qr-set", "huge-counts", "bad-edns", "pointer", "long")


@dataclass
class UdpBatch:
    sent: int = 0
    replies: int = 0
    kernel_drops: int = 0
    seconds: float = 0.0
    probe_ms: list[float | None] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def udp_batch(port: int, count: int, rate: float, rng: random.Random,
              seeds: list[bytes]) -> UdpBatch:
    """Send `count` malformed datagrams paced at `rate`/s, counting the replies."""
    batch = UdpBatch()
    kinds: Counter[str] = Counter()
    drops_before = udp_drops()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setblocking(False)
    started = time.monotonic()
    chunk = 50
    try:
        for first in range(0, count, chunk):
            for _ in range(min(chunk, count - first)):
                kind, packet = malformed(rng, seeds)
                kinds[kind] += 1
                try:
                    sock.sendto(packet, (HOST, port))
                    batch.sent += 1
                except BlockingIOError:
                    select.select([], [sock], [], 0.1)
                except OSError:
                    pass  # e.g. EMSGSIZE: not a datagram at all
            batch.replies += _drain(sock)
            ahead = started + (first + chunk) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        batch.seconds = time.monotonic() - started
        batch.probe_ms = probes(port)
        # Replies still in flight: a short settle to count them, after the probes.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            batch.replies += _drain(sock)
            time.sleep(0.02)
    finally:
        sock.close()
    batch.kernel_drops = udp_drops() - drops_before
    batch.kinds = dict(kinds)
    return batch


def _drain(sock: socket.socket) -> int:
    n = 0
    while True:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            return n
        if len(data) >= 12 and data[2] & 0x80:
            n += 1


# --- TCP abuse ---------------------------------------------------------------------------


def tcp_connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes; (data, closed by the server)."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data), True
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return bytes(data), True
    except TimeoutError:
        return bytes(data), False


def count_frames(data: bytes) -> int:
    n, offset = 0, 0
    while offset + 2 <= len(data):
        (length,) = struct.unpack_from("!H", data, offset)
        if offset + 2 + length > len(data):
            break
        n += 1
        offset += 2 + length
    return n


TCP_KINDS = ("random", "zero-length", "oversized", "bitflip", "qr-set")


@dataclass
class TcpBatch:
    frames: int = 0
    connections: int = 0
    replies: int = 0
    closed_by_server: int = 0
    slowloris: int = 0
    slowloris_closed: int = 0
    seconds: float = 0.0
    probe_ms: list[float | None] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def tcp_batch(port: int, frames: int, rng: random.Random, seeds: list[bytes],
              slowloris: int) -> tuple[TcpBatch, list[socket.socket]]:
    """`frames` malformed frames over many connections, plus `slowloris` held-open ones.

    Each connection carries 1-10 frames, then half-closes; the server answers what it can
    and closes (at once for a zero-length or QR-set frame, on our EOF otherwise).
    """
    batch = TcpBatch()
    kinds: Counter[str] = Counter()
    started = time.monotonic()
    held = []
    for _ in range(slowloris):
        sock = tcp_connect(port)
        message = frame(rng.choice(seeds))
        sock.sendall(message[: rng.randrange(1, len(message) - 1)])  # never a whole frame
        held.append(sock)
        batch.frames += 1
        kinds["slowloris"] += 1
    batch.slowloris = len(held)
    while batch.frames < frames + slowloris:
        kind = rng.choice(TCP_KINDS)
        n = min(rng.randint(1, 10), frames + slowloris - batch.frames)
        stream = bytearray()
        for _ in range(n):
            seed = rng.choice(seeds)
            if kind == "random":
                stream += frame(rng.randbytes(rng.randrange(0, 300)))
            elif kind == "zero-length":
                stream += frame(seed) + frame(b"")
            elif kind == "oversized":
                stream += struct.pack("!H", rng.randrange(len(seed) + 1, 65536)) + seed
            elif kind == "bitflip":
                stream += frame(bitflip(rng, seed, rng.randint(1, 8)))
            else:
                stream += frame(seed[:2] + bytes([seed[2] | 0x80]) + seed[3:])
        kinds[kind] += n
        batch.frames += n
        with tcp_connect(port) as sock:
            batch.connections += 1
            try:
                sock.sendall(bytes(stream))
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server already closed on an earlier frame: fine
            data, closed = read_until_closed(sock, timeout=5.0)
            batch.replies += count_frames(data)
            batch.closed_by_server += closed
    batch.probe_ms = probes(port)
    batch.seconds = time.monotonic() - started
    batch.kinds = dict(kinds)
    return batch, held


def wait_closed(socks: list[socket.socket], timeout: float) -> int:
    """How many of `socks` the server closes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    closed = 0
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
        for sock in readable:
            try:
                data = sock.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                closed += 1
                pending.remove(sock)
    for sock in socks:
        sock.close()
    return closed


def pipelined(port: int, count: int = 1000) -> dict:
    """`count` queries in one send on one connection: every ID answered once, in order."""
    rng = random.Random(1000)
    names = [name for name, _ in SEED_QUESTIONS]
    sent = {}
    stream = bytearray()
    for qid in rng.sample(range(1 << 16), count):
        name = rng.choice(names)
        query = dns.message.make_query(name, "A", use_edns=rng.random() < 0.5)
        query.id = qid
        sent[qid] = name
        stream += frame(query.to_wire())
    started = time.monotonic()
    answered: list[int] = []
    wrong_question = 0
    with tcp_connect(port, timeout=10) as sock:
        sock.sendall(bytes(stream))
        buffer = bytearray()
        while len(answered) < count:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 2:
                (length,) = struct.unpack_from("!H", buffer)
                if len(buffer) < 2 + length:
                    break
                reply = dns.message.from_wire(bytes(buffer[2 : 2 + length]))
                del buffer[: 2 + length]
                answered.append(reply.id)
                if reply.question[0].name.to_text().rstrip(".").lower() != sent.get(reply.id):
                    wrong_question += 1
    return {
        "sent": count,
        "answered": len(answered),
        "ids_match": sorted(answered) == sorted(sent),
        "wrong_question": wrong_question,
        "seconds": round(time.monotonic() - started, 3),
    }


def connection_cap(port: int, cap: int, extra: int = 50) -> dict:
    """Open cap + extra connections at once: at most `cap` are served."""
    socks = []
    for _ in range(cap + extra):
        try:
            socks.append(tcp_connect(port))
        except OSError:
            break
    query = dns.message.make_query(PROBE_NAME, "A", use_edns=False).to_wire()
    served = refused = 0
    for sock in socks:
        try:
            sock.sendall(frame(query))
        except OSError:
            refused += 1
            continue
    for sock in socks:
        data, _ = read_until_closed_or_frame(sock, 5.0)
        if count_frames(data):
            served += 1
        else:
            refused += 1
    for sock in socks:
        sock.close()
    time.sleep(0.5)
    after = probe_tcp(port)
    return {"opened": len(socks), "served": served, "refused": refused, "cap": cap,
            "probe_after_ms": after}


def read_until_closed_or_frame(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while count_frames(data) == 0:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data), True
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return bytes(data), True
    except TimeoutError:
        pass
    return bytes(data), False


# --- the run -----------------------------------------------------------------------------


def warm_up(port: int, count: int = 1000) -> None:
    seeds = seed_queries()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        for i in range(count):
            sock.sendto(seeds[i % len(seeds)], (HOST, port))
            with contextlib.suppress(TimeoutError):
                sock.recv(65535)


def run(datagrams: int = 200_000, batch: int = 20_000, frames: int = 2_000,
        slowloris: int = 200, rate: float = 10_000.0, probe_ms: float = 50.0,
        pipeline: int = 1_000, cap_check: bool = False, idle_timeout_s: float | None = None,
        reply_cache_size: int | None = None, seed: int = 7, rss_limit_mb: float = 5.0,
        log=print) -> dict:
    """The whole flood; returns the result dict (`ok` says whether every check passed)."""
    overrides: dict = {}
    if idle_timeout_s is not None:
        overrides["tcp.idle_timeout_s"] = idle_timeout_s
    if reply_cache_size is not None:
        overrides["reply_cache_size"] = reply_cache_size
    server = start_server(overrides=overrides)
    rng = random.Random(seed)
    seeds = seed_queries()
    result: dict = {"port": server.port, "pid": server.pid, "overrides": overrides}
    failures: list[str] = []
    try:
        warm_up(server.port)
        time.sleep(0.5)
        rss_before = server.status("VmRSS")
        result["rss_before_kb"] = rss_before
        log(f"server pid {server.pid} on {HOST}:{server.port}, RSS {rss_before / 1024:.1f} MB "
            "after warm-up")
        udp_batches = []
        for index in range(0, datagrams, batch):
            b = udp_batch(server.port, min(batch, datagrams - index), rate, rng, seeds)
            udp_batches.append(b)
            log(f"udp batch {len(udp_batches):>2}: sent {b.sent:>6} in {b.seconds:5.1f} s, "
                f"replies {b.replies:>6}, kernel drops {b.kernel_drops:>5}, probes ms "
                f"{fmt_probes(b.probe_ms)}, RSS {server.status('VmRSS') / 1024:.1f} MB, "
                f"alive {server.alive()}")
            if not all(p is not None and p <= probe_ms for p in b.probe_ms):
                failures.append(f"udp batch {len(udp_batches)}: probe {fmt_probes(b.probe_ms)}")
            if not server.alive():
                failures.append("server died")
                break
        result["udp"] = [asdict(b) for b in udp_batches]
        tcp_batches, held = [], []
        per_batch = max(1, frames // 4)
        for index in range(0, frames, per_batch):
            n = min(per_batch, frames - index)
            loris = slowloris // 4 if index + n < frames else slowloris - 3 * (slowloris // 4)
            b, socks = tcp_batch(server.port, n - loris if n > loris else n, rng, seeds, loris)
            held += socks
            tcp_batches.append(b)
            log(f"tcp batch {len(tcp_batches)}: {b.frames} frames on {b.connections} "
                f"connections (+{b.slowloris} slowloris held), replies {b.replies}, "
                f"closed by server {b.closed_by_server}/{b.connections}, probes ms "
                f"{fmt_probes(b.probe_ms)}, alive {server.alive()}")
            if not all(p is not None and p <= probe_ms for p in b.probe_ms):
                failures.append(f"tcp batch {len(tcp_batches)}: probe {fmt_probes(b.probe_ms)}")
            if b.closed_by_server != b.connections:
                failures.append(f"tcp batch {len(tcp_batches)}: "
                                f"{b.connections - b.closed_by_server} connections left open")
        idle = idle_timeout_s if idle_timeout_s is not None else 10.0
        closed = wait_closed(held, timeout=idle + 5.0)
        result["slowloris"] = {"held": len(held), "closed_by_server": closed,
                               "idle_timeout_s": idle}
        log(f"slowloris: {closed}/{len(held)} closed by the server within idle timeout + 5 s")
        if closed != len(held):
            failures.append(f"slowloris: {len(held) - closed} never closed")
        for b in tcp_batches:
            b.slowloris_closed = b.slowloris  # all or the failure above says otherwise
        result["tcp"] = [asdict(b) for b in tcp_batches]
        if pipeline:
            result["pipelined"] = pipe = pipelined(server.port, pipeline)
            log(f"pipelined: {pipe['answered']}/{pipe['sent']} answered, IDs match "
                f"{pipe['ids_match']}, wrong question {pipe['wrong_question']}, "
                f"{pipe['seconds']} s")
            if not pipe["ids_match"] or pipe["wrong_question"]:
                failures.append("pipelined queries not all answered with matching IDs")
        if cap_check:
            result["cap"] = cap = connection_cap(server.port, 1000)
            log(f"connection cap: opened {cap['opened']}, served {cap['served']}, "
                f"refused {cap['refused']} (cap {cap['cap']}); probe after "
                f"{cap['probe_after_ms']} ms")
            if cap["served"] > cap["cap"] or cap["probe_after_ms"] is None:
                failures.append("connection cap did not hold")
        time.sleep(1.0)
        result["alive"] = server.alive()
        if server.alive():
            result["rss_after_kb"] = rss_after = server.status("VmRSS")
            result["rss_peak_kb"] = server.status("VmHWM")
            result["rss_growth_kb"] = rss_after - rss_before
            result["panics"] = server.metric("coredns_panics_total")
            result["requests_counted"] = server.metric("coredns_dns_requests_total")
            result["ready_status"] = server.ready()
            result["final_probe_udp_ms"] = probe_udp(server.port)
            result["final_probe_tcp_ms"] = probe_tcp(server.port)
        else:
            failures.append("server died")
    finally:
        server.stop()
        result["exit_code"] = server.proc.returncode
        with open(server.log_path) as handle:
            text = handle.read()
        result["log_errors"] = len(re.findall(r"level=error", text))
        result["log_tracebacks"] = text.count("Traceback")
    result["datagrams_sent"] = sum(b["sent"] for b in result.get("udp", []))
    result["udp_replies"] = sum(b["replies"] for b in result.get("udp", []))
    result["kernel_drops"] = sum(b["kernel_drops"] for b in result.get("udp", []))
    result["frames_sent"] = sum(b["frames"] for b in result.get("tcp", []))
    all_probes = [p for b in result.get("udp", []) + result.get("tcp", []) for p in b["probe_ms"]]
    result["probe_ms_max"] = max((p for p in all_probes if p is not None), default=None)
    result["probes_failed"] = sum(p is None for p in all_probes)
    if result.get("panics"):
        failures.append(f"{result['panics']:.0f} panics")
    if result.get("rss_growth_kb", 0) > rss_limit_mb * 1024:
        failures.append(f"RSS grew {result['rss_growth_kb'] / 1024:.1f} MB "
                        f"(limit {rss_limit_mb} MB)")
    result["failures"] = failures
    result["ok"] = not failures
    return result


def fmt_probes(values: list[float | None]) -> str:
    return "/".join("lost" if v is None else f"{v:.1f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000, help="datagrams per batch")
    parser.add_argument("--frames", type=int, default=2_000, help="malformed TCP frames")
    parser.add_argument("--slowloris", type=int, default=200,
                        help="of the frames, partial ones on connections held open")
    parser.add_argument("--rate", type=float, default=10_000, help="datagrams per second")
    parser.add_argument("--probe-ms", type=float, default=50.0)
    parser.add_argument("--pipeline", type=int, default=1000)
    parser.add_argument("--cap-check", action="store_true",
                        help="also open more than tcp.max_connections (1000) at once")
    parser.add_argument("--idle-timeout", type=float, help="tcp.idle_timeout_s (default 10)")
    parser.add_argument("--reply-cache-size", type=int, help="reply_cache_size (default 100000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rss-limit-mb", type=float, default=5.0,
                        help="RSS growth that fails the run (issue 7: < 5 MB)")
    parser.add_argument("--out", default=os.path.join(OUT, "flood.json"))
    args = parser.parse_args()
    result = run(args.datagrams, args.batch, args.frames, args.slowloris, args.rate,
                 args.probe_ms, args.pipeline, args.cap_check, args.idle_timeout,
                 args.reply_cache_size, args.seed, args.rss_limit_mb)
    result["args"] = vars(args)
    result["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    growth = result.get("rss_growth_kb")
    print()
    print(f"datagrams tried      {result['datagrams_sent']:,} "
          f"(replies {result['udp_replies']:,}, kernel buffer drops {result['kernel_drops']:,})")
    print(f"TCP frames tried     {result['frames_sent']:,}")
    print(f"probe latency        max {result['probe_ms_max']} ms, failed "
          f"{result['probes_failed']}")
    if growth is not None:
        print(f"RSS                  {result['rss_before_kb'] / 1024:.1f} MB -> "
              f"{result['rss_after_kb'] / 1024:.1f} MB (growth {growth / 1024:+.1f} MB, "
              f"peak {result['rss_peak_kb'] / 1024:.1f} MB)")
    print(f"panics               {result.get('panics')}")
    print(f"alive                {result['alive']} (exit code after SIGTERM "
          f"{result['exit_code']})")
    print(f"checks               {'all passed' if result['ok'] else result['failures']}")
    print(f"written              {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
