"""Admin HTTP server (aiohttp), separate from DNS: health, ready, metrics, explain, status.

Read-only: nothing here changes state. `/health` answers while the process
runs (CoreDNS `health`); `/ready` is 503 until the data is synced and while
shutting down (CoreDNS `ready`); `/metrics` is Prometheus text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dnsrewrite.explain import explain

if TYPE_CHECKING:
    from dnsrewrite.app import App


def make_admin_app(app: App) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(_: web.Request) -> web.Response:
        if app.ready and not app.shutting_down:
            return web.Response(text="OK")
        reason = "shutting down" if app.shutting_down else "not synced"
        return web.Response(status=503, text=reason)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(app.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def explain_handler(request: web.Request) -> web.Response:
        name = request.query.get("name", "").strip()
        if not name:
            return web.json_response({"error": "give ?name=NAME[&type=TYPE]"}, status=400)
        qtype = request.query.get("type", "A")
        try:
            result = explain(app.answerer, app.view, name, qtype, time.time())
        except Exception as err:  # a bad name or type from the operator: say so
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(result)

    async def status(_: web.Request) -> web.Response:
        view, now = app.view, time.time()
        return web.json_response({
            "synced": view.synced,
            "ready": app.ready and not app.shutting_down,
            "generation": view.generation,
            "data_age_s": round(now - app.data_confirmed_at(), 3),
            "namespaces": len(view.namespaces),
            "services": len(view.services),
            "decisions": {state.value: n for state, n in view.decisions.items()},
            "gateways": {
                name: {"service": "/".join(g.ref), "exists": g.exists, "vips": list(g.vips),
                       "ready_endpoints": g.ready_endpoints, "healthy": g.healthy,
                       "in_service": g.in_service}
                for name, g in view.gateways.items()
            },
            "source": "cluster-file" if app.cfg.cluster_file else "kubernetes",
        })

    web_app = web.Application()
    web_app.router.add_get("/health", health)
    web_app.router.add_get("/ready", ready)
    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_get("/explain", explain_handler)
    web_app.router.add_get("/status", status)
    return web_app
