"""HTTP: the error middleware, access checks, and every plain HTTP endpoint of the contract.

Owns turning :class:`~server.errors.SignwireError` into the contract's JSON and status (the one
place for HTTP), reading frame bodies without ever buffering past the limit, and the handlers
for ``/``, ``/healthz``, ``/readyz``, ``/metrics``, ``/api/memory``, ``/api/frame`` and
``/api/landmarks``. The WebSocket lives in ``websocket.py``; sign teaching in ``signs.py``.

Cross-origin use is narrow on purpose: an origin the access rules allow gets its own origin
echoed (with ``Vary: Origin``), never ``*``, and ``OPTIONS`` preflights on ``/api/*`` are
answered here; bodies must arrive within ``server.body_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from server import messages
from server.errors import BadRequest, FrameTooLarge, InternalError, NotFound, SignwireError
from server.landmarks import Hand, Sign
from server.model.files import as_complexity, describe, hand_model_files
from server.transport import keys
from server.transport.access import check_host, check_origin, check_token

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
#: Reads from a request body come in pieces of at most this size.
_CHUNK_BYTES = 64 * 1024
#: A JSON body (landmarks) larger than this is not a landmarks message.
MAX_JSON_BYTES = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The request's ``Origin`` once the access rules allowed it: echoed in CORS headers.
CORS_ORIGIN = web.RequestKey("cors_origin", str)
#: Set when a body was cut off by its timeout: the connection is closed after the answer.
BODY_TIMED_OUT = web.RequestKey("body_timed_out", bool)
#: How long a browser may cache a preflight answer.
_PREFLIGHT_MAX_AGE_S = 600


def error_response(error: SignwireError) -> web.Response:
    """The contract's JSON for an error, with its status (and ``Retry-After`` for busy)."""
    response = web.json_response(messages.encode_error(error), status=error.status, dumps=messages.dumps)
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Access rules first, then the handler; every failure leaves as the contract's JSON."""
    metrics = request.app[keys.METRICS]
    try:
        config = request.app[keys.CONFIG].server
        origin = request.headers.get("Origin")
        check_origin(
            origin,
            own_origin=_own_origin(request),
            allowed=config.allowed_origins,
            allow_localhost=config.allow_localhost_origins,
        )
        if origin is not None:
            request[CORS_ORIGIN] = origin
        path = request.path
        if request.method == "OPTIONS" and path.startswith("/api/"):
            # A preflight carries no credentials, so it is answered before the token check.
            return _preflight_response(request)
        if path == "/ws" or path.startswith("/api/"):
            check_host(request.headers.get("Host"), allowed=config.allowed_hosts, bound_host=config.host)
            query_token = request.query.get("token") if path == "/ws" else None
            check_token(config.token, request.headers.get("Authorization"), query_token)
        return await handler(request)
    except SignwireError as error:
        metrics.observe_error("http", error.code)
        response = error_response(error)
        if request.get(BODY_TIMED_OUT):
            response.force_close()  # never wait on the rest of a trickled body
        return response
    except web.HTTPNotFound:
        metrics.observe_error("http", NotFound.code)
        return error_response(NotFound(f"nothing at {request.path[:200]}"))
    except web.HTTPMethodNotAllowed as exc:
        metrics.observe_error("http", BadRequest.code)
        response = error_response(
            BadRequest(
                f"{request.method} is not allowed on {request.path[:200]}; use {', '.join(sorted(exc.allowed_methods))}"
            )
        )
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        return response
    except web.HTTPRequestEntityTooLarge:
        metrics.observe_error("http", FrameTooLarge.code)
        return error_response(FrameTooLarge("the body is larger than the server accepts"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        metrics.observe_error("http", BadRequest.code)
        return error_response(BadRequest(exc.reason))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path[:200])
        metrics.observe_error("http", InternalError.code)
        return error_response(InternalError("the server failed on this request"))


def _preflight_response(request: web.Request) -> web.Response:
    """Answer a CORS preflight: which methods the path takes and which headers may be sent.

    Raises:
        NotFound: nothing is served at the path.
    """
    match_exception = request.match_info.http_exception
    if isinstance(match_exception, web.HTTPMethodNotAllowed):
        methods = sorted(set(match_exception.allowed_methods) - {"OPTIONS"})
    elif match_exception is not None:
        raise NotFound(f"nothing at {request.path[:200]}")
    else:
        methods = [request.method]
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": str(_PREFLIGHT_MAX_AGE_S),
        },
    )


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: echo an allowed ``Origin`` (never ``*``) and say answers vary by it."""
    if request.path.startswith("/api/"):
        vary = response.headers.get("Vary")
        if vary is None:
            response.headers["Vary"] = "Origin"
        elif "origin" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Origin"
    origin = request.get(CORS_ORIGIN)
    if origin is not None and response.status != 101:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the time a body may take to arrive (``server.body_timeout_s``; 0: unbounded).

    Raises:
        BadRequest: the body did not arrive in time; the connection is closed after the answer.
    """
    timeout_s = request.app[keys.CONFIG].server.body_timeout_s
    try:
        async with asyncio.timeout(timeout_s or None):
            yield
    except TimeoutError:
        request[BODY_TIMED_OUT] = True
        raise BadRequest(f"the body did not arrive within {timeout_s:g} s") from None


async def read_limited(stream_read: Callable[[int], Awaitable[bytes]], limit: int, what: str) -> bytes:
    """Read a body piece by piece, refusing it the moment it passes ``limit`` bytes.

    Raises:
        FrameTooLarge: more than ``limit`` bytes arrived.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream_read(_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise FrameTooLarge(f"{what} is over {limit} bytes; the limit is {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_frame_body(request: web.Request) -> bytes:
    """The image bytes of ``POST /api/frame``: the raw body, or the multipart field ``frame``.

    Never holds more than the frame limit (plus the multipart allowance) in memory, nor waits
    longer than ``server.body_timeout_s`` for it.

    Raises:
        FrameTooLarge: the image (or the whole multipart body) is over its limit.
        BadRequest: multipart without a ``frame`` field, a broken multipart body, or a body that
            did not arrive in time.
    """
    async with body_deadline(request):
        return await _read_frame_body(request)


async def _read_frame_body(request: web.Request) -> bytes:
    frames = request.app[keys.CONFIG].frames
    if request.content_type == "multipart/form-data":
        envelope_limit = frames.max_bytes + frames.multipart_overhead_bytes
        if request.content_length is not None and request.content_length > envelope_limit:
            raise FrameTooLarge(f"the multipart body is {request.content_length} bytes; the limit is {envelope_limit}")
        try:
            reader = await request.multipart()
            other_bytes = 0
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise BadRequest("nested multipart bodies are not accepted")
                if part.name == "frame":
                    return await read_limited(part.read_chunk, frames.max_bytes, "the frame")
                other = await read_limited(part.read_chunk, frames.multipart_overhead_bytes, "a form field")
                other_bytes += len(other)
                if other_bytes > frames.multipart_overhead_bytes:
                    raise FrameTooLarge(f"the form fields besides 'frame' pass {frames.multipart_overhead_bytes} bytes")
        except (ValueError, AssertionError, RuntimeError) as exc:
            raise BadRequest(f"the multipart body could not be read: {exc}") from None
        raise BadRequest("the multipart body has no field named 'frame'")
    if request.content_length is not None and request.content_length > frames.max_bytes:
        raise FrameTooLarge(f"frame is {request.content_length} bytes; the limit is {frames.max_bytes}")
    return await read_limited(request.content.read, frames.max_bytes, "the frame")


def recognise(
    app: web.Application, hands: Sequence[Hand], *, session: str | None, mirrored: bool
) -> tuple[Sign | None, str | None]:
    """The sign for an HTTP request's hands, and the session's text when it names a session.

    Without a session each request stands alone (``stable`` is never true). Landmarks stay in
    the coordinates of the frame as sent, so the recogniser needs ``mirrored`` to tell which way
    a selfie-view hand faces.
    """
    recognizer = app[keys.RECOGNIZER]
    if session is None:
        return recognizer.classify(hands, mirrored=mirrored), None
    sign_session = recognizer.session_for(session)
    return sign_session.observe(hands, mirrored=mirrored), sign_session.text


async def post_frame(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app = request.app
    mirrored = messages.parse_flag(request.query.get("mirrored"))
    session = request.query.get("session")
    if session is not None:
        session = messages.check_session_id(session)
    # Refused before the body is read: an over-rate client costs no frame buffer.
    app[keys.LIMITS].take_frame(request.remote or "-")
    data = await read_frame_body(request)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("http frame (%d bytes) to the model", len(data))
    metrics = app[keys.METRICS]
    with app[keys.BUDGET].holding(len(data)), metrics.in_flight.track_inprogress():
        # HTTP frames are detected from scratch: a POST has no connection to hold tracking state.
        result = await app[keys.MODEL].infer(data, session=None, mirrored=mirrored)
    sign, text = recognise(app, result.hands, session=session, mirrored=mirrored)
    total_ms = (time.perf_counter() - started) * 1e3
    metrics.observe_frame("http", result.decode_ms, result.inference_ms, total_ms)
    body = messages.encode_frame_result(result, seq=None, sign=sign, total_ms=total_ms, text=text)
    return web.json_response(body, dumps=messages.dumps)


async def read_json_body(request: web.Request, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON body of at most ``limit`` bytes, parsed strictly.

    Raises:
        FrameTooLarge: the body is over ``limit``.
        BadRequest: not valid JSON, or it did not arrive within ``server.body_timeout_s``.
    """
    if request.content_length is not None and request.content_length > limit:
        raise FrameTooLarge(f"the body is {request.content_length} bytes; the limit is {limit}")
    async with body_deadline(request):
        raw = await read_limited(request.content.read, limit, "the body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None
    return messages.loads(text)


async def post_landmarks(request: web.Request) -> web.Response:
    started = time.perf_counter()
    obj = await read_json_body(request)
    hands = messages.parse_hands(obj)
    session = messages.parse_session(obj)
    sign, text = recognise(request.app, hands, session=session, mirrored=False)
    total_ms = (time.perf_counter() - started) * 1e3
    body = messages.encode_landmarks_result(hands, sign=sign, total_ms=total_ms, text=text)
    return web.json_response(body, dumps=messages.dumps)


async def get_memory(request: web.Request) -> web.Response:
    app = request.app
    snapshot = app[keys.METRICS].memory()
    model = app[keys.MODEL]
    body = {
        "rss_mb": snapshot.rss_mb,
        "processes": [{"role": p.role, "pid": p.pid, "rss_mb": p.rss_mb} for p in snapshot.processes],
        "system": {
            "total_mb": snapshot.total_mb,
            "available_mb": snapshot.available_mb,
            "percent": snapshot.percent,
        },
        "limit_mb": app[keys.CONFIG].memory.limit_mb,
        "model_loaded": model.model_loaded,
        "frames_processed": app[keys.METRICS].frames_processed,
        "uptime_s": round(app[keys.METRICS].uptime_s(), 1),
        "worker_restarts": model.restarts,
    }
    return web.json_response(body, dumps=messages.dumps)


async def get_healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_readyz(request: web.Request) -> web.Response:
    """Ready when the model is loaded or its files are there to load; else 503 with the reason."""
    app = request.app
    model_config = app[keys.CONFIG].model
    try:
        paths = hand_model_files(as_complexity(model_config.complexity)).models()
        files = await asyncio.to_thread(_cached_describe, tuple(str(p) for p in paths))
    except (FileNotFoundError, OSError) as exc:
        body = {"ready": False, "reason": f"the hand model cannot be loaded: {exc}"}
        return web.json_response(body, status=503)
    model = app[keys.MODEL]
    body = {
        "ready": True,
        "model_loaded": model.model_loaded,
        "engine": model_config.engine,
        "complexity": model_config.complexity,
        "model_files": files,
        "workers": model_config.workers,
        "worker_restarts": model.restarts,
    }
    return web.json_response(body)


@functools.lru_cache(maxsize=4)
def _cached_describe(paths: tuple[str, ...]) -> list[dict[str, object]]:
    # The model files are part of the installed wheel and do not change while we run, so
    # each is hashed once per process.
    return [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in describe([Path(p) for p in paths])]


async def get_metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[keys.METRICS].exposition(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def get_index(request: web.Request) -> web.StreamResponse:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        raise NotFound("the web page is not installed")
    return web.FileResponse(index, headers={"Cache-Control": "no-cache"})


def add_http_routes(app: web.Application) -> None:
    app.router.add_get("/", get_index)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/readyz", get_readyz)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/api/memory", get_memory)
    app.router.add_post("/api/frame", post_frame)
    app.router.add_post("/api/landmarks", post_landmarks)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
