"""HTTP endpoints for signs: ``GET /api/signs``, ``POST /api/signs/{label}/examples``, ``DELETE /api/signs/{label}``.

Thin handlers: read a bounded body, parse it with ``messages.py``, call the recognizer once,
answer JSON. Every failure is raised from ``server/errors.py`` and turned into the contract's
JSON by the error middleware (``http.py``). An over-long body is ``frame_too_large`` (413, the
contract's only 413 and what ``/api/landmarks`` answers too); a bad label, bad JSON, a wrong
point count or a non-finite value is ``bad_request``; forgetting an unknown label ``not_found``.

Teaching and forgetting write to SQLite (a commit may wait on the disk), so they run in a
worker thread; the recognizer serialises them and swaps its model in one assignment, so frames
classified meanwhile on the event loop see the old or the new signs, never a mix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from server import messages
from server.errors import BadRequest
from server.landmarks import Hand
from server.transport import keys
from server.transport.http import read_json_body


class SignCatalog(Protocol):
    """What these endpoints need of the recognizer (``server.signs.Recognizer`` has it)."""

    def list_signs(self) -> list[dict[str, object]]: ...

    def teach(self, label: str, examples: Sequence[Sequence[Hand]], *, mirrored: bool = False) -> int: ...

    def forget(self, label: str) -> None: ...


def parse_examples(obj: object, max_examples: int) -> list[tuple[Hand, ...]]:
    """The examples of a teach body: ``{"hands": [...]}`` or ``{"examples": [{"hands": [...]}, ...]}``.

    Raises:
        BadRequest: neither shape, no example, more than ``max_examples``, or a bad hand.
    """
    if isinstance(obj, dict) and "examples" in obj:
        items = obj["examples"]
        if not isinstance(items, list) or not items:
            raise BadRequest('examples: expected a non-empty list of {"hands": [...]} objects')
        if len(items) > max_examples:
            raise BadRequest(f"examples: expected at most {max_examples} per request, got {len(items)}")
        out = []
        for i, item in enumerate(items):
            try:
                out.append(messages.parse_hands(item))
            except BadRequest as exc:
                raise BadRequest(f"examples[{i}]: {exc}") from None
        return out
    return [messages.parse_hands(obj)]


def add_sign_routes(app: web.Application, recognizer_key: web.AppKey[Any]) -> None:
    """Add the sign endpoints.

    Args:
        app: the application; its ``keys.CONFIG`` gives ``signs.max_body_bytes`` and
            ``signs.max_examples_per_request``.
        recognizer_key: where the recognizer lives in the app state. Typed ``Any`` because
            ``AppKey`` is invariant and the app's key names a narrower protocol; the value must
            satisfy :class:`SignCatalog`.
    """

    def catalog(request: web.Request) -> SignCatalog:
        recognizer: SignCatalog = request.app[recognizer_key]
        return recognizer

    async def get_signs(request: web.Request) -> web.Response:
        return web.json_response({"signs": catalog(request).list_signs()}, dumps=messages.dumps)

    async def post_examples(request: web.Request) -> web.Response:
        label = request.match_info["label"]
        mirrored = messages.parse_flag(request.query.get("mirrored"))
        config = request.app[keys.CONFIG].signs
        obj = await read_json_body(request, config.max_body_bytes)
        examples = parse_examples(obj, config.max_examples_per_request)
        total = await asyncio.to_thread(catalog(request).teach, label, examples, mirrored=mirrored)
        return web.json_response({"label": label, "examples": total}, dumps=messages.dumps)

    async def delete_sign(request: web.Request) -> web.Response:
        label = request.match_info["label"]
        await asyncio.to_thread(catalog(request).forget, label)
        return web.json_response({"label": label, "deleted": True}, dumps=messages.dumps)

    app.router.add_get("/api/signs", get_signs)
    app.router.add_post("/api/signs/{label}/examples", post_examples)
    app.router.add_delete("/api/signs/{label}", delete_sign)
