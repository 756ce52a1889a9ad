"""CoreDNS's own `plugin/kubernetes` test tables, ported as data (tests/coredns/).

Each fixture is served from a cluster file exactly as an operator would, with
the own IPs the CoreDNS tests inject, and every case is answered through the
real protocol gate and encoder. See tests/coredns/PORTING.md for what was
ported, left out, and where we deliberately differ.
"""

from __future__ import annotations

import os

import pytest

from dnsrewrite import config
from dnsrewrite.app import App
from tests.coredns import cases
from tests.dnsclient import ask, expected_lines, rcode_text, section_lines

HERE = os.path.join(os.path.dirname(__file__), "coredns")
_apps: dict[str, App] = {}


def app_for(fixture: str) -> App:
    if fixture not in _apps:
        cfg = config.from_mapping({
            "zones": [z.rstrip(".") for z in cases.ZONES],
            "ttl_s": cases.TTL,
            "cluster_file": os.path.join(HERE, fixture),
            "nameserver": {"addresses": list(cases.SERVER_OWN_IPS[fixture])},
        })
        app = App(cfg)
        assert app.load_cluster_file()
        _apps[fixture] = app
    return _apps[fixture]


def _cname_first(section) -> bool:
    """A CNAME must precede the records of its target (plugin/test/helpers.go CNAMEOrder)."""
    seen_other = False
    for rrset in section:
        if rrset.rdtype == 5 and seen_other:
            return False
        seen_other = seen_other or rrset.rdtype != 5
    return True


@pytest.mark.parametrize("case", cases.ALL_CASES,
                         ids=[f"{c.source.split('/')[-1]}-{c.qname}{c.qtype}" for c in cases.ALL_CASES])
def test_coredns_case(case: cases.Case) -> None:
    reply = ask(app_for(case.fixture).answerer, case.qname, case.qtype)
    assert rcode_text(reply) == case.rcode, case.source
    assert section_lines(reply.answer) == expected_lines(case.answer), case.source
    assert section_lines(reply.authority) == expected_lines(case.authority), case.source
    assert section_lines(reply.additional) == expected_lines(case.additional), case.source
    assert _cname_first(reply.answer), case.source


def test_case_sensitive_owner_names_are_echoed() -> None:
    """handler_case_test.go compares owner case exactly, not just case-insensitively."""
    for case in cases.CASE_CASES:
        reply = ask(app_for(case.fixture).answerer, case.qname, case.qtype)
        got = sorted(rrset.name.to_text() for rrset in reply.answer + reply.authority)
        want = sorted(line.split()[0] for line in case.answer + case.authority)
        assert got == want, case.source
