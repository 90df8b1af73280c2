"""The one aiohttp application: page, static files, ``/ws``, ``/api/*``, health and metrics.

Owns wiring only: which routes exist, which typed state the handlers share, and the lifetime of
long-lived resources (the model worker pool and the sign store open and close in
``cleanup_ctx``). It never imports mediapipe or cv2: the model lives in its worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from server.config import Config
from server.metrics import Metrics
from server.model.pool import ModelPool
from server.transport import framing, keys
from server.transport.budget import FrameBudget
from server.transport.http import add_cors_headers, add_http_routes, error_middleware
from server.transport.limits import ClientLimits
from server.transport.websocket import websocket_handler

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    model: keys.Model | None = None,
    recognizer: keys.Recognizer | None = None,
) -> web.Application:
    """Build the application.

    Args:
        config: the validated configuration.
        model: a model to use instead of starting worker processes (tests pass fakes).
        recognizer: sign recognition to use instead of opening the configured one.

    Returns:
        An application ready for ``web.run_app`` or a test client.
    """
    frames = config.frames
    framing.install()
    # aiohttp's own body limit is a backstop: handlers read bodies piece by piece and refuse
    # them at the contract's limit before this is reached.
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=frames.max_bytes + frames.multipart_overhead_bytes + 1,
    )
    metrics = Metrics()
    app[keys.CONFIG] = config
    app[keys.METRICS] = metrics
    app[keys.SOCKETS] = set()
    app[keys.CONNECTIONS] = set()
    app[keys.LIMITS] = ClientLimits(
        max_connections_per_ip=config.server.max_connections_per_ip,
        frames_per_s=config.server.max_frames_per_s_per_ip,
    )
    # Every connection holds at most two frames (one being answered, one waiting).
    app[keys.BUDGET] = FrameBudget(max_bytes=frames.max_pending_bytes, max_frames=2 * config.server.max_connections)

    async def model_ctx(app: web.Application) -> AsyncIterator[None]:
        owned = model is None
        pool: keys.Model = (
            ModelPool(config, on_restart=lambda reason: metrics.restarts.labels(reason).inc())
            if model is None
            else model
        )
        app[keys.MODEL] = pool
        metrics.process_roles = lambda: [("server", os.getpid()), *(("model", pid) for pid in pool.pids())]
        yield
        if owned:
            await pool.close()

    async def signs_ctx(app: web.Application) -> AsyncIterator[None]:
        if recognizer is not None:
            app[keys.RECOGNIZER] = recognizer
            yield
            return
        from server.signs import open_recognizer

        opened = open_recognizer(config.signs)
        app[keys.RECOGNIZER] = opened
        yield
        opened.close()

    async def close_sockets(app: web.Application) -> None:
        # Runs once the listening sockets are closed (no new clients) and before the model
        # pool closes: every connection gets the answer to the frame it has in flight, all
        # within one grace period, then 1001.
        grace_s = config.server.shutdown_grace_s
        connections: set[keys.LiveConnection] = app[keys.CONNECTIONS]
        await asyncio.gather(*(conn.close_for_shutdown(grace_s) for conn in list(connections)))
        sockets: set[web.WebSocketResponse] = app[keys.SOCKETS]
        for ws in list(sockets):  # upgrades caught mid-handshake
            with contextlib.suppress(ConnectionError):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    app.cleanup_ctx.append(model_ctx)
    app.cleanup_ctx.append(signs_ctx)
    app.on_shutdown.append(close_sockets)
    app.on_response_prepare.append(add_cors_headers)
    app.router.add_get("/ws", websocket_handler)
    add_http_routes(app)
    from server.transport.signs import add_sign_routes

    add_sign_routes(app, keys.RECOGNIZER)
    return app
