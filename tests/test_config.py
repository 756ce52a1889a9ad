"""Config loading: defaults, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from dnsrewrite import config
from dnsrewrite.selector import parse_selector


def write(tmp_path, text: str) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_match_the_kubeadm_corefile():
    cfg = config.load(None)
    assert cfg.zones == ("cluster.local", "in-addr.arpa", "ip6.arpa")
    assert cfg.ttl_s == 5 and cfg.rewrite.ttl_s == 5
    assert cfg.rewrite.enroll_selector == "dnsrewrite.io/enroll=true"
    assert cfg.listen_addresses[0] == config.ListenAddress("127.0.0.1", 5353)
    assert cfg.edns_udp_payload == 1232


def test_the_shipped_config_is_valid_and_points_at_the_demo():
    cfg = config.load("config/dnsrewrite.yaml")
    assert cfg.cluster_file.endswith("config/demo-cluster.yaml")
    assert cfg.rewrite.gateway_ref == ("mesh-gateway", "internal-gateway")


def test_every_field_is_documented():
    for key, _default, doc in config.describe():
        assert doc, key


@pytest.mark.parametrize(("text", "message"), [
    ("ttl_s: 7200\n", "ttl_s: must be at most 3600, got 7200"),
    ("ttl_s: -1\n", "ttl_s: must be at least 0"),
    ("ttl_s: five\n", "ttl_s: expected an integer"),
    ("tll_s: 5\n", "tll_s: unknown key"),
    ("rewrite:\n  gatway: a/b\n", "rewrite.gatway: unknown key"),
    ("rewrite:\n  gateway: nobody\n", "rewrite.gateway: expected NAMESPACE/NAME"),
    ("rewrite:\n  enroll_selector: 'a in b'\n", "rewrite.enroll_selector:"),
    ("rewrite: 3\n", "rewrite: expected a mapping"),
    ("listen: ['localhost']\n", "listen: expected HOST:PORT"),
    ("listen: ['example.com:53']\n", "listen: host must be an IP address"),
    ("zones: [in-addr.arpa]\n", "zones: at least one forward zone"),
    ("zones: ['a..b']\n", "zones: not a valid zone name"),
    ("log_format: xml\n", "log_format: must be one of logfmt, json"),
    ("edns_udp_payload: 100\n", "edns_udp_payload: must be at least 512"),
    ("nameserver:\n  addresses: [nope]\n", "nameserver.addresses: not an IP address"),
    ("- a\n", "must hold a mapping"),
    ("ttl_s: [\n", "is not valid YAML"),
])
def test_bad_config_names_the_key(tmp_path, text, message):
    with pytest.raises(config.ConfigError) as err:
        config.load(write(tmp_path, text))
    assert message in str(err.value)


def test_flags_override_the_file_and_share_its_validation(tmp_path):
    path = write(tmp_path, "ttl_s: 10\nrewrite:\n  gateway: a/b\n")
    cfg = config.load(path, {"ttl_s": 20, "rewrite.gateway": "gw/internal"})
    assert cfg.ttl_s == 20 and cfg.rewrite.gateway == "gw/internal"
    with pytest.raises(config.ConfigError, match="^ttl_s: must be at most 3600"):
        config.load(path, {"ttl_s": 4000})


def test_relative_cluster_file_is_relative_to_the_config(tmp_path):
    cfg = config.load(write(tmp_path, "cluster_file: data/cluster.yaml\n"))
    assert cfg.cluster_file == str(tmp_path / "data" / "cluster.yaml")


def test_ipv6_listen_address():
    cfg = config.load(None, {"listen": ["[::1]:53", "0.0.0.0:5353"]})
    assert [str(a) for a in cfg.listen_addresses] == ["[::1]:53", "0.0.0.0:5353"]


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("dnsrewrite.io/enroll=true", {"dnsrewrite.io/enroll": "true"}, True),
    ("dnsrewrite.io/enroll=true", {"dnsrewrite.io/enroll": "false"}, False),
    ("dnsrewrite.io/enroll==true", {"dnsrewrite.io/enroll": "true"}, True),
    ("env!=prod", {}, True),
    ("env!=prod", {"env": "prod"}, False),
    ("env in (dev, staging)", {"env": "staging"}, True),
    ("env in (dev,staging)", {"env": "prod"}, False),
    ("env notin (prod)", {"env": "dev"}, True),
    ("env notin (prod)", {}, True),
    ("mesh", {"mesh": ""}, True),
    ("!mesh", {"mesh": "x"}, False),
    ("mesh,env in (a,b),!legacy", {"mesh": "1", "env": "b"}, True),
    ("mesh,env in (a,b),!legacy", {"mesh": "1", "env": "b", "legacy": "y"}, False),
    ("", {"anything": "x"}, True),
])
def test_label_selectors(selector, labels, matches):
    assert parse_selector(selector).matches(labels) is matches


def test_every_key_is_documented_in_the_shipped_config_file():
    import yaml

    with open("config/dnsrewrite.yaml") as handle:
        shipped = yaml.safe_load(handle)

    def flatten(data, prefix=""):
        for key, value in data.items():
            if isinstance(value, dict) and key != "gateways":
                yield from flatten(value, f"{prefix}{key}.")
            else:
                yield prefix + key

    assert sorted(flatten(shipped)) == sorted(key for key, _d, _doc in config.describe())
