"""Typed application state (``web.AppKey``) and the seams the transports call through.

The seams are ``Protocol``s so tests pass fakes without inheritance: :class:`Model` is what a
transport needs of the worker pool, :class:`Recognizer` and :class:`SignSession` what it needs
of sign recognition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from server.config import Config
from server.landmarks import FrameResult, Hand, Sign
from server.metrics import Metrics
from server.transport.budget import FrameBudget
from server.transport.limits import ClientLimits


class Model(Protocol):
    restarts: int

    @property
    def model_loaded(self) -> bool: ...

    def pids(self) -> list[int]: ...

    async def infer(self, data: bytes, *, session: str | None, mirrored: bool) -> FrameResult: ...

    async def end_session(self, session: str) -> None: ...

    async def close(self) -> None: ...


class LiveConnection(Protocol):
    """An open WebSocket connection as shutdown sees it."""

    async def close_for_shutdown(self, grace_s: float) -> None: ...


class SignSession(Protocol):
    def observe(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None: ...

    def reset(self) -> None: ...

    @property
    def text(self) -> str: ...


class Recognizer(Protocol):
    def new_session(self) -> SignSession: ...

    def session_for(self, key: str) -> SignSession: ...

    def classify(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None: ...

    def close(self) -> None: ...


CONFIG = web.AppKey("config", Config)
METRICS = web.AppKey("metrics", Metrics)
MODEL = web.AppKey("model", Model)
RECOGNIZER = web.AppKey("recognizer", Recognizer)
BUDGET = web.AppKey("budget", FrameBudget)
#: Per-client-IP connection counts and frame rates.
LIMITS = web.AppKey("limits", ClientLimits)
#: Open WebSocket connections: on shutdown each answers its frame in flight, then closes 1001.
CONNECTIONS: web.AppKey[set[LiveConnection]] = web.AppKey("connections", set[LiveConnection])
#: Open WebSocket responses, closed with 1001 on shutdown.
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
