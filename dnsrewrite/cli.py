"""Command line: `dnsrewrite serve | check-config`.

Flags override the config file through the same validation, so an error
names the same key whether it came from the file or a flag.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from typing import Any

from dnsrewrite import clusterfile, config, logs


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="YAML config file (see config/)")
    parser.add_argument("--listen", action="append", metavar="HOST:PORT",
                        help="serve UDP and TCP here (repeatable; default 127.0.0.1:5353)")
    parser.add_argument("--cluster-file", metavar="PATH",
                        help="serve the objects in this kubectl -o yaml/json snapshot")
    parser.add_argument("--zone", action="append", metavar="ZONE",
                        help="zone to serve (repeatable; default cluster.local in-addr.arpa "
                             "ip6.arpa)")
    parser.add_argument("--gateway", metavar="NAMESPACE/NAME",
                        help="gateway Service whose ClusterIPs answer for enrolled Services")
    parser.add_argument("--enroll-selector", metavar="SELECTOR",
                        help="namespace label selector that enrolls (default "
                             "dnsrewrite.io/enroll=true)")
    parser.add_argument("--ttl", type=int, metavar="SECONDS", help="record TTL (0-3600)")
    parser.add_argument("--admin-listen", metavar="HOST:PORT",
                        help="admin HTTP: /health /ready /metrics /explain /status "
                             "(default 127.0.0.1:8080)")
    parser.add_argument("--kubeconfig", metavar="PATH",
                        help="watch the cluster of this kubeconfig (default: in-cluster, "
                             "$KUBECONFIG, ~/.kube/config) when no cluster file is given")
    parser.add_argument("--hold-down", type=float, metavar="SECONDS",
                        help="after a gateway recovers, wait this long before rewriting to it")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "listen": args.listen,
        "cluster_file": args.cluster_file,
        "zones": args.zone,
        "rewrite.gateway": args.gateway,
        "rewrite.enroll_selector": args.enroll_selector,
        "ttl_s": args.ttl,
        "rewrite.hold_down_s": args.hold_down,
        "kubernetes.kubeconfig": args.kubeconfig,
        "admin_listen": args.admin_listen,
    }
    return {key: value for key, value in mapping.items() if value is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnsrewrite",
        description="Authoritative cluster.local DNS that answers enrolled Services with the "
                    "mesh gateway's VIP and everything else as CoreDNS would.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the DNS server in the foreground")
    _add_config_flags(serve)
    check = commands.add_parser("check-config",
                                help="validate the config (and cluster file) and exit")
    _add_config_flags(check)
    explain = commands.add_parser(
        "explain", help="say why a name resolves as it does (offline, from the cluster file)")
    explain.add_argument("name", help="query name, e.g. reviews.bookinfo.svc.cluster.local")
    explain.add_argument("type", nargs="?", default="A", help="query type (default A)")
    _add_config_flags(explain)
    export = commands.add_parser(
        "export-zone", help="write what the server answers as an RFC 1035 zone file "
                            "(--zone: the zone to export, default the cluster domain)")
    _add_config_flags(export)
    export.add_argument("--output-dir", metavar="DIR",
                        help="write each --zone to DIR/<zone>.zone instead of stdout")
    return parser


def load_config(args: argparse.Namespace) -> config.Config:
    try:
        return config.load(args.config, _overrides(args))
    except config.ConfigError as err:
        print(f"dnsrewrite: config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if cfg.cluster_file:
        try:
            snapshot = clusterfile.load(cfg.cluster_file)
        except clusterfile.ClusterFileError as err:
            print(f"dnsrewrite: {err}", file=sys.stderr)
            return 2
        for reason in snapshot.skipped:
            print(f"skipped: {reason}", file=sys.stderr)
        print(f"cluster file: {len(snapshot.namespaces)} namespaces, {len(snapshot.services)} "
              f"services, {len(snapshot.slices)} endpointslices")
    print("config ok")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    logs.setup(cfg.log_format, cfg.log_level)
    # The cluster data is acyclic and freed by reference counting; the cyclic collector's
    # full passes over millions of objects stall every thread (benchmarks/RESULTS.md:
    # up to 1.7 s during a 100,000-Service relist). Collect young objects less often and
    # full passes rarely.
    gc.set_threshold(50_000, 50, 1_000)
    # While watchers convert a list and the writer derives, the UDP thread waits for the
    # GIL behind them; handing it over every 1 ms instead of 5 keeps those waits short.
    sys.setswitchinterval(0.001)
    from dnsrewrite.app import App

    async def main() -> None:
        await App(cfg, config_path=args.config, overrides=_overrides(args)).run()

    try:
        asyncio.run(main())
    except OSError as err:
        print(f"dnsrewrite: cannot listen: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import json
    import time

    from dnsrewrite.app import App
    from dnsrewrite.explain import explain

    cfg = load_config(args)
    if not cfg.cluster_file:
        print("dnsrewrite: explain works offline from a cluster file: give --cluster-file",
              file=sys.stderr)
        return 2
    logs.setup(cfg.log_format, "warning")
    app = App(cfg)
    if not app.load_cluster_file():
        return 2
    result = explain(app.answerer, app.view, args.name, args.type, time.time())
    print(json.dumps(result, indent=2))
    return 0


def cmd_export_zone(args: argparse.Namespace) -> int:
    from dnsrewrite import export

    zones, args.zone = args.zone, None  # here --zone picks the zones to export, not to serve
    cfg = load_config(args)
    logs.setup(cfg.log_format, "warning")
    return export.run(cfg, zones or [cfg.cluster_domain], args.output_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": cmd_serve, "check-config": cmd_check_config, "explain": cmd_explain,
                "export-zone": cmd_export_zone}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
