"""Test helpers: build queries with dnspython, answer them in-process or over sockets,
and compare replies with zone-file text as CoreDNS's tests do."""

from __future__ import annotations

import shutil
import subprocess

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from dnsrewrite.answer import Answerer


def make_query(name: str, rdtype: str = "A", *, edns: int | None = 0, payload: int = 1232,
               do: bool = False, qid: int | None = None) -> dns.message.Message:
    if edns is None:  # dnspython turns EDNS on whenever a payload is passed
        query = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        query = dns.message.make_query(name, rdtype, use_edns=edns, payload=payload,
                                       want_dnssec=do)
    if qid is not None:
        query.id = qid
    return query


def ask(answerer: Answerer, name: str, rdtype: str = "A", *, tcp: bool = False,
        **kwargs: object) -> dns.message.Message:
    """Answer in-process: the same bytes the sockets would carry."""
    query = make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    reply = answerer.answer(query.to_wire(), tcp)
    assert reply is not None, "no reply"
    return dns.message.from_wire(reply)


def udp(host: str, port: int, name: str, rdtype: str = "A", **kwargs: object) -> dns.message.Message:
    return dns.query.udp(make_query(name, rdtype, **kwargs), host, port=port, timeout=3,
                         ignore_trailing=False)  # type: ignore[arg-type]


def tcp(host: str, port: int, name: str, rdtype: str = "A", **kwargs: object) -> dns.message.Message:
    return dns.query.tcp(make_query(name, rdtype, **kwargs), host, port=port, timeout=3)  # type: ignore[arg-type]


def _norm_line(line: str, ignore_serial: bool = True) -> str:
    """Canonical text of one zone-file record line: lowercase names, SOA serial zeroed."""
    name, ttl, klass, rdtype, *rdata = line.split(None, 4)
    rrset = dns.rrset.from_text(name, int(ttl), klass, rdtype, *rdata)
    return _norm_rrset_lines(rrset, ignore_serial)[0]


def _norm_rrset_lines(rrset: dns.rrset.RRset, ignore_serial: bool = True) -> list[str]:
    lines = []
    for rdata in rrset:
        if ignore_serial and rrset.rdtype == dns.rdatatype.SOA:
            rdata = rdata.replace(serial=0)
        lines.append(f"{rrset.name.to_text().lower()} {rrset.ttl} IN "
                     f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text().lower()}")
    return lines


def section_lines(section: list[dns.rrset.RRset]) -> list[str]:
    """Sorted canonical lines of a reply section (CoreDNS test.SortAndCheck sorts too)."""
    return sorted(line for rrset in section for line in _norm_rrset_lines(rrset))


def expected_lines(lines: tuple[str, ...] | list[str]) -> list[str]:
    return sorted(_norm_line(line) for line in lines)


def rcode_text(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def dig_path() -> str:
    path = shutil.which("dig")
    assert path, "dig is required: apt-get install -y bind9-dnsutils (the README's test command does)"
    return path


def dig(port: int, *args: str, host: str = "127.0.0.1") -> str:
    out = subprocess.run([dig_path(), f"@{host}", "-p", str(port), "+time=2", "+tries=1", *args],
                         capture_output=True, text=True, timeout=15)
    return out.stdout
