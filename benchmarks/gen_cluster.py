#!/usr/bin/env python3
"""Generate a benchmark cluster and a dnsperf query file.

    python benchmarks/gen_cluster.py N_SERVICES N_NAMESPACES [--out DIR] [--seed N] [--yaml]

Writes into DIR (default benchmarks/out):

* cluster.json  a `kubectl get namespaces,services,endpointslices -A -o json` style v1 List
                (`--yaml` writes cluster.yaml instead; JSON loads several times faster);
* config.yaml   a dnsrewrite config serving it (gateway set, ttl 5), for `serve` and
                `export-zone` alike;
* queries.txt   a dnsperf data file ("name TYPE" per line): 70% A, 10% AAAA, 10% SRV,
                10% NXDOMAIN, over the generated Services.

The cluster: namespaces ns-00000..; every even-numbered one carries the enrollment
label (half enrolled). A dual-stack InternalGateway in mesh-gateway with two ready
endpoints. Services are spread round-robin over the namespaces: about 70% single-stack
ClusterIP, 15% dual-stack ClusterIP, 13% headless (2-3 endpoints, half with hostnames),
2% ExternalName to an outside name. Every non-ExternalName Service has an EndpointSlice
(2 endpoints for ClusterIP Services, one of them not ready in 1 case out of 10). Most
Services use ports the gateway exposes (so enrolled ones are rewritten); 1 in 10 has
a port it does not (5432), so it keeps its real records even when enrolled.

Queries: A and AAAA over every Service's name; SRV over Services with ports (half the
bare name, half `_<port>._<proto>`): ExternalName Services have no SRV and are left out
of SRV queries; NXDOMAIN the way `ndots:5` search paths make them (an outside name under
`<ns>.svc.<zone>`, `svc.<zone>` and `<zone>`) and missing Services in existing namespaces.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import sys

ZONE = "cluster.local"
GATEWAY_NS, GATEWAY_NAME = "mesh-gateway", "internal-gateway"
GATEWAY_PORTS = [("http", 80, "TCP"), ("https", 443, "TCP"), ("grpc", 9090, "TCP"),
                 ("http-alt", 8080, "TCP")]
SERVICE_IPV4 = ipaddress.IPv4Address("10.96.0.0")
SERVICE_IPV6 = ipaddress.IPv6Address("fd00:10:96::")
POD_IPV4 = ipaddress.IPv4Address("10.128.0.0")
POD_IPV6 = ipaddress.IPv6Address("fd00:10:244::")
OUTSIDE = ["www.google.com", "api.github.com", "s3.amazonaws.com", "login.microsoftonline.com",
           "registry-1.docker.io", "pypi.org", "sts.amazonaws.com", "example.com"]


def port(name: str, number: int, protocol: str = "TCP") -> dict:
    return {"name": name, "port": number, "protocol": protocol}


class Generator:
    def __init__(self, n_services: int, n_namespaces: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_services = n_services
        self.namespaces = [f"ns-{i:05d}" for i in range(n_namespaces)]
        self.items: list[dict] = []
        self.services: list[dict] = []  # summaries for the query file
        self._svc4 = 16  # 10.96.0.1-15 left alone (kubernetes, kube-dns)
        self._svc6 = 16
        self._pod4 = 1
        self._pod6 = 1

    def svc_ipv4(self) -> str:
        self._svc4 += 1
        return str(SERVICE_IPV4 + self._svc4)

    def svc_ipv6(self) -> str:
        self._svc6 += 1
        return str(SERVICE_IPV6 + self._svc6)

    def pod_ipv4(self) -> str:
        self._pod4 += 1
        return str(POD_IPV4 + self._pod4)

    def pod_ipv6(self) -> str:
        self._pod6 += 1
        return str(POD_IPV6 + self._pod6)

    # --- objects ----------------------------------------------------------------
    def namespace(self, name: str, enrolled: bool) -> None:
        labels = {"kubernetes.io/metadata.name": name}
        if enrolled:
            labels["dnsrewrite.io/enroll"] = "true"
        self.items.append({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": name, "labels": labels}})

    def service(self, ns: str, name: str, spec: dict) -> None:
        self.items.append({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": name, "namespace": ns}, "spec": spec})

    def slice(self, ns: str, service: str, family: str, endpoints: list[dict],
              ports: list[dict]) -> None:
        self.items.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-{family.lower()}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": family, "endpoints": endpoints, "ports": ports,
        })

    def gateway(self) -> None:
        self.namespace(GATEWAY_NS, enrolled=False)
        self.service(GATEWAY_NS, GATEWAY_NAME, {
            "type": "ClusterIP", "clusterIP": "10.96.0.100",
            "clusterIPs": ["10.96.0.100", "fd00:10:96::100"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
            "ports": [port(*p) for p in GATEWAY_PORTS]})
        self.slice(GATEWAY_NS, GATEWAY_NAME, "IPv4",
                   [{"addresses": [ip], "conditions": {"ready": True}}
                    for ip in ("10.127.0.10", "10.127.0.11")],
                   [port(*p) for p in GATEWAY_PORTS])

    def build(self) -> None:
        self.gateway()
        for i, ns in enumerate(self.namespaces):
            self.namespace(ns, enrolled=i % 2 == 0)
        rng = self.rng
        for i in range(self.n_services):
            ns = self.namespaces[i % len(self.namespaces)]
            name = f"svc-{i:06d}"
            roll = rng.random()
            if rng.random() < 0.1:
                ports = [port("postgres", 5432)]
            elif rng.random() < 0.5:
                ports = [port("http", 80), port("grpc", 9090)]
            else:
                ports = [port("http", 80)]
            if roll < 0.02:
                target = rng.choice(OUTSIDE)
                self.service(ns, name, {"type": "ExternalName", "externalName": target})
                self.services.append({"ns": ns, "name": name, "kind": "external", "ports": []})
                continue
            if roll < 0.15:
                self.headless(ns, name, ports)
                continue
            dual = roll < 0.30
            ips = [self.svc_ipv4()] + ([self.svc_ipv6()] if dual else [])
            spec = {"type": "ClusterIP", "clusterIP": ips[0], "clusterIPs": ips,
                    "ipFamilies": ["IPv4", "IPv6"] if dual else ["IPv4"], "ports": ports}
            if dual:
                spec["ipFamilyPolicy"] = "PreferDualStack"
            self.service(ns, name, spec)
            endpoints = [{"addresses": [self.pod_ipv4()],
                          "conditions": {"ready": rng.random() >= 0.1 or k == 0}}
                         for k in range(2)]
            self.slice(ns, name, "IPv4", endpoints, ports)
            self.services.append({"ns": ns, "name": name, "kind": "dual" if dual else "v4",
                                  "ports": ports})

    def headless(self, ns: str, name: str, ports: list[dict]) -> None:
        self.service(ns, name, {"type": "ClusterIP", "clusterIP": "None",
                                "clusterIPs": ["None"], "ports": ports})
        named = self.rng.random() < 0.5
        count = self.rng.choice((2, 3))
        endpoints = []
        for k in range(count):
            endpoint: dict = {"addresses": [self.pod_ipv4()], "conditions": {"ready": True}}
            if named:
                endpoint["hostname"] = f"{name}-{k}"
            endpoints.append(endpoint)
        self.slice(ns, name, "IPv4", endpoints, ports)
        self.services.append({"ns": ns, "name": name, "kind": "headless", "ports": ports})

    # --- queries ----------------------------------------------------------------
    def queries(self, count: int) -> list[str]:
        rng = self.rng
        with_ports = [s for s in self.services if s["ports"]]
        lines = []
        for _ in range(count):
            roll = rng.random()
            if roll < 0.70:
                s = rng.choice(self.services)
                lines.append(f"{s['name']}.{s['ns']}.svc.{ZONE} A")
            elif roll < 0.80:
                s = rng.choice(self.services)
                lines.append(f"{s['name']}.{s['ns']}.svc.{ZONE} AAAA")
            elif roll < 0.90:
                s = rng.choice(with_ports)
                base = f"{s['name']}.{s['ns']}.svc.{ZONE}"
                if rng.random() < 0.5:
                    lines.append(f"{base} SRV")
                else:
                    p = rng.choice(s["ports"])
                    lines.append(f"_{p['name']}._{p['protocol'].lower()}.{base} SRV")
            else:
                lines.append(self.nxdomain())
        return lines

    def nxdomain(self) -> str:
        rng = self.rng
        outside = rng.choice(OUTSIDE)
        ns = rng.choice(self.namespaces)
        qtype = rng.choice(("A", "A", "AAAA"))
        shape = rng.randrange(4)
        if shape == 0:
            name = f"{outside}.{ns}.svc.{ZONE}"
        elif shape == 1:
            name = f"{outside}.svc.{ZONE}"
        elif shape == 2:
            name = f"{outside}.{ZONE}"
        else:
            name = f"missing-{rng.randrange(10**6):06d}.{ns}.svc.{ZONE}"
        return f"{name} {qtype}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n_services", type=int)
    parser.add_argument("n_namespaces", type=int)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=100_000, help="lines in queries.txt")
    parser.add_argument("--yaml", action="store_true", help="write cluster.yaml, not JSON")
    args = parser.parse_args()
    if args.n_services < 1 or args.n_namespaces < 1:
        parser.error("N_SERVICES and N_NAMESPACES must be positive")
    gen = Generator(args.n_services, args.n_namespaces, args.seed)
    gen.build()
    os.makedirs(args.out, exist_ok=True)
    document = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                "items": gen.items}
    cluster_name = "cluster.yaml" if args.yaml else "cluster.json"
    cluster_path = os.path.join(args.out, cluster_name)
    with open(cluster_path, "w", encoding="utf-8") as handle:
        if args.yaml:
            import yaml

            yaml.safe_dump(document, handle, sort_keys=False)
        else:
            json.dump(document, handle, separators=(",", ":"))
    with open(os.path.join(args.out, "config.yaml"), "w", encoding="utf-8") as handle:
        handle.write(
            "# Generated by benchmarks/gen_cluster.py: the benchmark cluster, served as-is.\n"
            f"cluster_file: {cluster_name}\n"
            "zones: [cluster.local, in-addr.arpa, ip6.arpa]\n"
            "ttl_s: 5\n"
            "log_level: warning\n"
            "rewrite:\n"
            f"  gateway: {GATEWAY_NS}/{GATEWAY_NAME}\n"
            "  ttl_s: 5\n"
        )
    lines = gen.queries(args.queries)
    with open(os.path.join(args.out, "queries.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    kinds: dict[str, int] = {}
    for s in gen.services:
        kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
    print(f"{cluster_path}: {len(gen.items)} objects, services {kinds}, "
          f"{len(gen.namespaces)} namespaces (half enrolled); "
          f"{os.path.join(args.out, 'queries.txt')}: {len(lines)} queries", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
