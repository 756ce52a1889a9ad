#!/usr/bin/env python3
"""Write the seed corpus for fuzz_answer.py: real queries of every shape, and malformed ones.

    .venv/bin/python tests/fuzz/make_corpus.py      # rewrites tests/fuzz/corpus/ and known_bugs/

One file per message, named after what it is. Deterministic: the same bytes every run
(fixed IDs, no randomness), so the committed corpus only changes when this file does.
"""

from __future__ import annotations

import os
import shutil
import struct

import dns.message

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
KNOWN_BUGS = os.path.join(HERE, "known_bugs")

A, NS, SOA, PTR, TXT, AAAA, SRV, OPT = 1, 2, 6, 12, 16, 28, 33, 41


def header(qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def qname(name: str) -> bytes:
    labels = [label.encode("latin-1") for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def question(name: str, qtype: int = A, qclass: int = 1) -> bytes:
    return qname(name) + struct.pack("!HH", qtype, qclass)


def opt(size: int = 1232, version: int = 0, do: bool = False, z: int = 0,
        options: bytes = b"", owner: bytes = b"\x00") -> bytes:
    ttl = (version << 16) | (0x8000 if do else 0) | z
    return owner + struct.pack("!HHIH", OPT, size, ttl, len(options)) + options


def raw(name: str, qtype: int = A, qclass: int = 1, *, flags: int = 0x0100,
        edns: bytes | None = None, qid: int = 0x1234) -> bytes:
    return header(qid, flags, ar=0 if edns is None else 1) + question(name, qtype, qclass) + \
        (edns or b"")


def dnspython(name: str, rdtype: str, **kwargs: object) -> bytes:
    query = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    query.id = 0x4242
    return query.to_wire()


REVIEWS = "reviews.bookinfo.svc.cluster.local"
COOKIE = struct.pack("!HH", 10, 8) + bytes(range(1, 9))
ECS = struct.pack("!HHHBB", 8, 4, 1, 0, 0)
NSID = struct.pack("!HH", 3, 0)
EXPIRE = struct.pack("!HH", 9, 0)
UNKNOWN = struct.pack("!HH", 100, 0)


def valid() -> dict[str, bytes]:
    names = {
        "a-enrolled": (REVIEWS, A),
        "aaaa-enrolled": (REVIEWS, AAAA),
        "a-plain": ("billing.legacy.svc.cluster.local", A),
        "aaaa-dualstack": ("web.legacy.svc.cluster.local", AAAA),
        "a-headless": ("db.legacy.svc.cluster.local", A),
        "srv-headless-port": ("_postgres._tcp.db.legacy.svc.cluster.local", SRV),
        "srv-bare": ("billing.legacy.svc.cluster.local", SRV),
        "cname-externalname": ("payments-api.legacy.svc.cluster.local", A),
        "a-endpoint": ("db-0.db.legacy.svc.cluster.local", A),
        "a-pod-v4": ("10-244-1-5.legacy.pod.cluster.local", A),
        "aaaa-pod-v6": ("fd00--1.legacy.pod.cluster.local", AAAA),
        "ptr-v4": ("10.20.96.10.in-addr.arpa", PTR),
        "ptr-v6": ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa", PTR),
        "ptr-partial": ("96.10.in-addr.arpa", PTR),
        "soa-apex": ("cluster.local", SOA),
        "ns-apex": ("cluster.local", NS),
        "txt-dns-version": ("dns-version.cluster.local", TXT),
        "a-ns-dns": ("ns.dns.cluster.local", A),
        "nxdomain-service": ("nosuch.legacy.svc.cluster.local", A),
        "nxdomain-namespace": ("nosuch.svc.cluster.local", A),
        "nodata-type666": ("billing.legacy.svc.cluster.local", 666),
        "any-apex": ("cluster.local", 255),
        "axfr": ("cluster.local", 252),
        "ixfr": ("cluster.local", 251),
        "refused-example-com": ("example.com", A),
        "refused-root-ns": (".", NS),
        "casing-0x20": ("ReViEwS.BookInfo.SVC.Cluster.LOCAL", A),
        "search-path-ndots": ("api.github.com.legacy.svc.cluster.local", A),
    }
    out = {}
    for label, (name, qtype) in names.items():
        out[label] = raw(name, qtype)
        out[label + "-edns"] = raw(name, qtype, edns=opt())
    out["a-enrolled-edns-do"] = raw(REVIEWS, edns=opt(do=True))
    out["a-enrolled-edns-512"] = raw(REVIEWS, edns=opt(size=512))
    out["a-enrolled-edns-4096"] = raw(REVIEWS, edns=opt(size=4096))
    out["a-enrolled-edns-0"] = raw(REVIEWS, edns=opt(size=0))
    out["soa-edns1"] = raw("cluster.local", SOA, edns=opt(version=1))
    out["soa-edns1-opt"] = raw("cluster.local", SOA, edns=opt(version=1, options=UNKNOWN))
    out["soa-ednsopt-100"] = raw("cluster.local", SOA, edns=opt(options=UNKNOWN))
    out["soa-ednsflags-0x80"] = raw("cluster.local", SOA, edns=opt(z=0x80))
    out["soa-optlist"] = raw("cluster.local", SOA, edns=opt(options=NSID + ECS + EXPIRE + COOKIE))
    out["soa-cookie-do"] = raw("cluster.local", SOA, edns=opt(do=True, options=COOKIE))
    out["soa-zflag"] = raw("cluster.local", SOA, flags=0x0040)
    out["soa-all-header-flags"] = raw("cluster.local", SOA, flags=0x07F0)
    out["dnskey-edns-512-do"] = raw("cluster.local", 48, edns=opt(size=512, do=True))
    out["class-ch-version-bind"] = raw("version.bind", TXT, qclass=3)
    out["class-any"] = raw(REVIEWS, A, qclass=255)
    out["class-none"] = raw(REVIEWS, A, qclass=254)
    out["opcode-notify"] = raw("cluster.local", SOA, flags=4 << 11)
    out["opcode-update-edns"] = raw("cluster.local", SOA, flags=5 << 11, edns=opt())
    out["opcode-15-header-only"] = header(flags=15 << 11, qd=0)
    out["qdcount-0-cookie-probe"] = header(qd=0, ar=1) + opt(options=COOKIE)
    out["dnspython-a"] = dnspython(REVIEWS, "A")
    out["dnspython-srv-edns-do"] = dnspython("_http._tcp.reviews.bookinfo.svc.cluster.local",
                                             "SRV", use_edns=0, want_dnssec=True)
    out["soa-tsig-signed"] = header(0x5151, 0, ar=1) + question("cluster.local", SOA) + tsig_rr()
    # Panics found by fuzzing and the flood, fixed: kept as regression seeds.
    out["is-octet-superscript-ptr"] = raw("\xb2.0.0.10.in-addr.arpa", PTR)  # '²'.isdigit()
    out["scoped-ipv6-pod-aaaa"] = raw("fe80--1%eth0.legacy.pod.cluster.local", AAAA)
    out["longest-name-255"] = raw(".".join(["a" * 63] * 3 + ["a" * 47, "cluster", "local"]))
    return out


def tsig_rr(key: str = "wellknown", original_id: int = 0x5151) -> bytes:
    """A TSIG record (RFC 8945 §4.2) with a fixed time and a zero MAC: what `dig -y` sends,
    minus the clock, so the corpus stays byte-identical across runs."""
    rdata = (qname("hmac-sha256") + struct.pack("!HIH", 0, 1_700_000_000, 300)
             + struct.pack("!H", 32) + bytes(32) + struct.pack("!HHH", original_id, 0, 0))
    return qname(key) + struct.pack("!HHIH", 250, 255, 0, len(rdata)) + rdata


def malformed() -> dict[str, bytes]:
    good = raw(REVIEWS, edns=opt(do=True))
    return {
        "empty": b"",
        "short-11-bytes": good[:11],
        "header-only-qd1": header(),
        "qr-set": raw(REVIEWS, flags=0x8100),
        "qdcount-2": header(qd=2) + question(REVIEWS) * 2,
        "answer-record-in-query": header(an=1) + question(REVIEWS) + qname(REVIEWS)
        + struct.pack("!HHIH", A, 1, 5, 4) + bytes(4),
        "name-cut-mid-label": header() + question(REVIEWS)[:10],
        "no-root-label": header() + qname(REVIEWS)[:-1],
        "type-class-missing": header() + qname(REVIEWS),
        "pointer-in-question": header() + b"\x07reviews\xc0\x0c" + struct.pack("!HH", A, 1),
        "pointer-loop-in-opt-owner": header(ar=1) + question(REVIEWS) + b"\xc0\x1e"
        + struct.pack("!HHIH", OPT, 1232, 0, 0),
        "extended-label-0x40": header() + b"\x41" + b"a" * 65 + b"\x00" + struct.pack("!HH", A, 1),
        "name-256-bytes": raw(".".join(["a" * 63] * 3 + ["a" * 48, "cluster", "local"])),
        "two-opts": header(ar=2) + question(REVIEWS) + opt() + opt(),
        "opt-owner-not-root": raw(REVIEWS, edns=opt(owner=qname("cluster.local"))),
        "opt-option-overruns": raw(REVIEWS, edns=opt()[:-2] + struct.pack("!H", 8)
                                   + struct.pack("!HH", 10, 200)),
        "opt-truncated-option": raw(REVIEWS, edns=opt(options=b"\x00\x0a\x00")),
        "opt-rdlength-past-end": raw(REVIEWS, edns=opt()[:-2] + b"\xff\xff"),
        "arcount-65535": good[:10] + b"\xff\xff" + good[12:],
        "all-counts-65535": good[:4] + b"\xff" * 8 + good[12:],
        "trailing-garbage": good + b"\xde\xad\xbe\xef",
        "nul-and-high-bytes-in-label": raw("a\x00b.\xff\xfe.svc.cluster.local"),
        "dot-in-label": header() + b"\x03a.b\x07cluster\x05local\x00" + struct.pack("!HH", A, 1),
    }


def known_bugs() -> dict[str, bytes]:
    """Reproducers of the panics in known.py whose fix is pending (none at the moment)."""
    return {}


def write(directory: str, items: dict[str, bytes]) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    if not items:
        open(os.path.join(directory, ".keep"), "w").close()  # git keeps no empty directory
    for label, data in items.items():
        with open(os.path.join(directory, label), "wb") as handle:
            handle.write(data)


def main() -> None:
    corpus = {**valid(), **{"malformed-" + k: v for k, v in malformed().items()}}
    write(CORPUS, corpus)
    write(KNOWN_BUGS, known_bugs())
    print(f"{len(corpus)} inputs in {CORPUS}, {len(known_bugs())} in {KNOWN_BUGS}")


if __name__ == "__main__":
    main()
