#!/usr/bin/env python3
"""Send every query of a dnsperf query file to NSD and dnsrewrite and diff the answers.

    benchmarks/diffcheck.sh [--strict] [--show 20] [--rev REV]
        (installs what is missing, starts both servers as throughput.sh does, runs this)
    python benchmarks/diffcheck.py --queries FILE --nsd HOST:PORT --dnsrewrite HOST:PORT
        (against two servers already running)

Each distinct (name, type) of the file is asked of both servers over UDP without
EDNS, exactly as dnsperf sends it (a truncated reply is retried over TCP), with
dnspython. Compared: RCODE, the AA bit, TC over UDP, and the answer, authority and
additional sections as sets of (name, TTL, type, rdata), names case-insensitive,
order ignored, TTLs compared exactly (sections of the TCP reply after a TC).

Normalized unless --strict, each counted and reported:

* the SOA serial: both serve the same data, but the serial is the time the data
  was loaded (`export-zone` writes the exporting process's), so it is set to 0;
* NSD's apex NS in the authority section of positive answers: NSD adds it when
  `minimal-responses` is off (its default, kept so that NSD adds the A/AAAA of SRV
  targets as we do); it is not data, and CoreDNS and dnsrewrite send none.
* additional records one server left out for space: where the answers are the same
  and one server's additional section is a subset of the other's, and its reply
  (over UDP without EDNS, so 512 bytes at most) has no room for any address record
  it left out (owner compressed after its first label). RFC 2181 §9 lets a server
  leave them out without TC; NSD's authority NS takes the room that dnsrewrite uses
  for more A records, and NSD does not compress against SRV targets.

Exit status 0 when every answer matches, 1 on any difference, 2 on a server that
does not answer.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

Row = tuple[str, int, str, str]  # owner (lowercase), TTL, type, rdata (lowercase)


@dataclass
class Answer:
    rcode: str
    flags: frozenset[str]
    sections: dict[str, frozenset[Row]]
    tcp: bool
    size: int  # the UDP reply's length as received (0 after a TCP retry)


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def read_queries(path: str) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2 and not line.startswith("#"):
                seen[(parts[0], parts[1].upper())] = None
    return list(seen)


class Client:
    def __init__(self, addr: tuple[str, int], timeout: float) -> None:
        self.addr = addr
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                                  socket.SOCK_DGRAM)

    def ask(self, name: str, qtype: str) -> dns.message.Message:
        query = dns.message.make_query(name, qtype, use_edns=False)  # RD=1, as dnsperf
        wire = query.to_wire()
        self.sock.settimeout(self.timeout)
        for attempt in range(3):
            try:
                self.sock.sendto(wire, self.addr)
                while True:  # skip a late reply to an earlier, retried query
                    data = self.sock.recv(65535)
                    reply = dns.message.from_wire(data)
                    if reply.id == query.id:
                        break
                reply.wire_size = len(data)  # type: ignore[attr-defined]
                break
            except TimeoutError:
                if attempt == 2:
                    raise
        if reply.flags & dns.flags.TC:
            reply = dns.query.tcp(query, self.addr[0], port=self.addr[1], timeout=self.timeout)
            reply.udp_truncated = True  # type: ignore[attr-defined]
        return reply


def rows(section: list, strict: bool, notes: Counter) -> frozenset[Row]:
    out = set()
    for rrset in section:
        for rdata in rrset:
            text = rdata.to_text().lower()
            if rrset.rdtype == dns.rdatatype.SOA and not strict:
                fields = text.split()
                if fields[2] != "0":
                    notes["SOA serial set to 0"] += 1
                fields[2] = "0"
                text = " ".join(fields)
            out.add((rrset.name.to_text().lower(), rrset.ttl,
                     dns.rdatatype.to_text(rrset.rdtype), text))
    return frozenset(out)


def summarize(reply: dns.message.Message, strict: bool, notes: Counter, is_nsd: bool) -> Answer:
    answer = rows(reply.answer, strict, notes)
    authority = rows(reply.authority, strict, notes)
    if is_nsd and not strict and answer and reply.rcode() == dns.rcode.NOERROR:
        apex_ns = frozenset(r for r in authority if r[2] == "NS")
        if apex_ns:
            notes["NSD authority NS in a positive answer dropped"] += 1
            authority = authority - apex_ns
    truncated = getattr(reply, "udp_truncated", False)
    flags = frozenset(["AA"] if reply.flags & dns.flags.AA else []) | (
        {"TC over UDP"} if truncated else set())
    return Answer(
        rcode=dns.rcode.to_text(reply.rcode()),
        flags=flags,
        sections={"answer": answer, "authority": authority,
                  "additional": rows(reply.additional, strict, notes)},
        tcp=truncated,
        size=getattr(reply, "wire_size", 0),
    )


def address_rr_size(row: Row) -> int:
    """Bytes of an A/AAAA record whose owner is compressed after its first label (a
    server need not compress against the SRV target in RDATA, RFC 2782)."""
    first_label = row[0].split(".")[0]
    return len(first_label) + 1 + 2 + 10 + (4 if row[2] == "A" else 16)


def additional_left_out_for_space(a: Answer, b: Answer) -> bool:
    """Same answers; one additional section a subset of the other, and no room in
    that server's UDP reply for any record it left out."""
    if (a.rcode, a.flags, a.tcp) != (b.rcode, b.flags, b.tcp) or any(
            a.sections[s] != b.sections[s] for s in ("answer", "authority")):
        return False
    small, big = sorted((a, b), key=lambda x: len(x.sections["additional"]))
    missing = big.sections["additional"] - small.sections["additional"]
    return (small.sections["additional"] < big.sections["additional"] and not small.tcp
            and all(r[2] in ("A", "AAAA") for r in missing)
            and small.size + min(map(address_rr_size, missing)) > 512)


def describe(a: Answer, b: Answer) -> list[str]:
    lines = []
    if a.rcode != b.rcode:
        lines.append(f"rcode: nsd {a.rcode}, dnsrewrite {b.rcode}")
    if a.flags != b.flags:
        lines.append(f"flags: nsd {sorted(a.flags)}, dnsrewrite {sorted(b.flags)}")
    for section in ("answer", "authority", "additional"):
        only_a = a.sections[section] - b.sections[section]
        only_b = b.sections[section] - a.sections[section]
        for row in sorted(only_a):
            lines.append(f"{section}: only nsd:       {' '.join(map(str, row))}")
        for row in sorted(only_b):
            lines.append(f"{section}: only dnsrewrite: {' '.join(map(str, row))}")
    return lines


def shape(name: str, qtype: str, diff: list[str]) -> str:
    """A coarse class of a difference, to group thousands of them."""
    kind = "_port._proto name" if name.startswith("_") else "name"
    parts = set()
    for line in diff:
        head, _, rest = line.partition(": ")
        if head in ("rcode", "flags"):
            parts.add(line)
        else:  # "<section>: only <server>: <owner> <ttl> <type> <rdata>"
            who, _, row = rest.partition(": ")
            parts.add(f"{head} {who} {row.split()[2]}")
    return f"{qtype} at a {kind}: {'; '.join(sorted(parts))}"


Result = tuple[Counter, Counter, dict, int]


def check(args: argparse.Namespace, queries: list[tuple[str, str]]) -> Result:
    """Ask both servers every query of `queries` (one client process)."""
    nsd = Client(parse_addr(args.nsd), args.timeout)
    ours = Client(parse_addr(args.dnsrewrite), args.timeout)
    notes: Counter = Counter()
    shapes: Counter = Counter()
    examples: dict[str, tuple[str, str, list[str]]] = {}
    tcp = 0
    for name, qtype in queries:
        a = summarize(nsd.ask(name, qtype), args.strict, notes, is_nsd=True)
        b = summarize(ours.ask(name, qtype), args.strict, notes, is_nsd=False)
        tcp += a.tcp or b.tcp
        diff = describe(a, b)
        if diff and not args.strict and additional_left_out_for_space(a, b):
            notes["additional records left out for space by one server"] += 1
        elif diff:
            key = shape(name, qtype, diff)
            shapes[key] += 1
            examples.setdefault(key, (name, qtype, [
                *diff, f"reply bytes over UDP (0: TCP): nsd {a.size}, dnsrewrite {b.size}"]))
    return notes, shapes, examples, tcp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", help="dnsperf data file (default: the generated one)")
    parser.add_argument("--nsd", metavar="HOST:PORT", help="default: start one (bench.py)")
    parser.add_argument("--dnsrewrite", metavar="HOST:PORT", help="default: start one")
    parser.add_argument("--services", type=int, default=10_000, help="when starting servers")
    parser.add_argument("--namespaces", type=int, default=1_000, help="when starting servers")
    parser.add_argument("--rev", help="when starting servers: this git revision of dnsrewrite")
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wait-quiet", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--strict", action="store_true",
                        help="no normalization (SOA serial, NSD's authority NS)")
    parser.add_argument("--limit", type=int, default=0, help="check only the first N queries")
    parser.add_argument("--show", type=int, default=10, help="print this many differences")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=2, help="client processes")
    args = parser.parse_args()
    if bool(args.nsd) != bool(args.dnsrewrite):
        parser.error("give both --nsd and --dnsrewrite, or neither")
    if not args.nsd:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bench

        def body(data: bench.Data, servers: list[bench.Server], scratch: str) -> int:
            nsd, ours = servers
            args.nsd, args.dnsrewrite = f"127.0.0.1:{nsd.port}", f"127.0.0.1:{ours.port}"
            args.queries = args.queries or data.queries
            return run(args)

        return bench.with_servers(args, body)
    if not args.queries:
        parser.error("--queries is needed with --nsd/--dnsrewrite")
    return run(args)


def run(args: argparse.Namespace) -> int:
    queries = read_queries(args.queries)
    if args.limit:
        queries = queries[: args.limit]
    started = time.monotonic()
    jobs = max(1, args.jobs)
    chunks = [(args, queries[i::jobs]) for i in range(jobs)]
    notes: Counter = Counter()
    shapes: Counter = Counter()
    examples: dict[str, tuple[str, str, list[str]]] = {}
    tcp = 0
    try:
        if jobs == 1:
            results = [check(*chunks[0])]
        else:
            with multiprocessing.Pool(jobs) as pool:
                results = pool.starmap(check, chunks)
    except (dns.exception.Timeout, TimeoutError) as err:
        print(f"diffcheck: a server did not answer: {err}", file=sys.stderr)
        return 2
    for part_notes, part_shapes, part_examples, part_tcp in results:
        notes.update(part_notes)
        shapes.update(part_shapes)
        for key, example in part_examples.items():
            examples.setdefault(key, example)
        tcp += part_tcp
    different = sum(shapes.values())
    elapsed = time.monotonic() - started
    print(f"diffcheck: {len(queries)} distinct queries from {args.queries} in {elapsed:.1f}s, "
          f"{tcp} retried over TCP after TC; {different} differ")
    for note, count in sorted(notes.items()):
        print(f"  normalized: {note} ({count}x)")
    for index, (key, count) in enumerate(shapes.most_common()):
        name, qtype, diff = examples[key]
        print(f"  [{count}x] {key}")
        if index < args.show:
            print(f"    e.g. {name} {qtype}")
            for line in diff:
                print(f"      {line}")
    return 1 if different else 0



if __name__ == "__main__":
    sys.exit(main())
