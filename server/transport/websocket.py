"""The WebSocket endpoint ``/ws``: frames in, one answer per processed frame out.

Owns the per-connection protocol of the contract: ``seq`` numbering, one frame at a time with
only the newest waiting frame kept (the rest counted in ``dropped``), the text messages
(``hello``, ``landmarks``, ``reset``), the 1009 close for an oversized frame and 1001 on
shutdown. Two tasks per connection: the handler reads (so it always sees the newest frame and
control messages), a processor answers frames. Everything per connection dies with it.

Hostile peers are bounded here too: connection slots (server-wide and per client IP) are taken
before the handshake, frames count against their IP's rate, an answer the client does not read
within ``server.ws_send_timeout_s`` closes the connection (so unread answers never pile up), and
on shutdown every connection first gets the answer to the frame it has in flight, then 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from server import messages
from server.errors import Busy, FrameTooLarge, InternalError, SignwireError
from server.transport import keys
from server.transport.http import error_response

log = logging.getLogger(__name__)

#: A text (control) message longer than this is not one of ours.
MAX_TEXT_BYTES = 256 * 1024


@dataclass(slots=True)
class _Pending:
    seq: int
    data: bytes
    arrived: float


@dataclass(slots=True, eq=False)  # compared and hashed by identity: kept in a set
class Connection:
    """What one WebSocket connection remembers; nothing of it is shared."""

    ws: web.WebSocketResponse
    app: web.Application
    short_id: str
    mirrored: bool = False
    seq: int = 0
    dropped: int = 0
    pending: _Pending | None = None
    transport: asyncio.Transport | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set while no frame waits or is with the model: what shutdown waits for.
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set on shutdown: frames that arrive from now on are not taken.
    closing: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tracking_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.idle.set()

    async def send(self, message: dict[str, object]) -> None:
        """Send one answer; a client that does not take it within the send timeout is cut off.

        Without the timeout a client that never reads would park this connection's processor
        on a full socket forever, holding its frames; with it, the connection is aborted and
        everything it held is released by the handler's cleanup.
        """
        if self.ws.closed:
            return
        timeout_s = self.app[keys.CONFIG].server.ws_send_timeout_s or None
        async with self.send_lock:
            try:
                async with asyncio.timeout(timeout_s):
                    await self.ws.send_str(messages.dumps(message))
            except ConnectionResetError:
                pass
            except TimeoutError:
                log.info("ws %s did not read its answers for %g s; closing", self.short_id, timeout_s)
                if self.transport is not None:
                    self.transport.abort()

    async def close_for_shutdown(self, grace_s: float) -> None:
        """Stop taking frames, answer the one in flight (within ``grace_s``), then close 1001."""
        self.closing = True
        try:
            async with asyncio.timeout(grace_s):
                await self.idle.wait()
        except TimeoutError:
            log.warning("ws %s: frame still unanswered after %g s of shutdown", self.short_id, grace_s)
        with contextlib.suppress(ConnectionError):
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped

    def replace_pending(self, item: _Pending) -> None:
        """Keep only the newest waiting frame; the one it replaces is dropped, unanswered."""
        budget = self.app[keys.BUDGET]
        budget.take(len(item.data))
        if self.pending is not None:
            budget.give_back(len(self.pending.data))
            self.dropped += 1
            self.app[keys.METRICS].dropped.inc()
        self.pending = item
        self.idle.clear()
        self.wake.set()

    def clear_pending(self) -> None:
        if self.pending is not None:
            self.app[keys.BUDGET].give_back(len(self.pending.data))
            self.pending = None


async def _answer_frames(conn: Connection, sign_session: keys.SignSession) -> None:
    """The processor: answer the newest waiting frame, one at a time, until cancelled."""
    app = conn.app
    model = app[keys.MODEL]
    metrics = app[keys.METRICS]
    budget = app[keys.BUDGET]
    while True:
        await conn.wake.wait()
        conn.wake.clear()
        item, conn.pending = conn.pending, None
        if item is None:
            continue
        # The frames this one replaced were skipped on its way: its answer reports them.
        dropped = conn.take_dropped()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("ws %s frame %d (%d bytes) to the model", conn.short_id, item.seq, len(item.data))
        seq = item.seq
        error: SignwireError | None = None
        message: dict[str, object] = {}
        metrics.in_flight.inc()
        try:
            result = await model.infer(item.data, session=conn.tracking_id, mirrored=conn.mirrored)
            sign = sign_session.observe(result.hands, mirrored=conn.mirrored)
            total_ms = (time.perf_counter() - item.arrived) * 1e3
            metrics.observe_frame("ws", result.decode_ms, result.inference_ms, total_ms)
            message = messages.encode_frame_result(
                result,
                seq=seq,
                sign=sign,
                total_ms=total_ms,
                dropped=dropped,
                text=sign_session.text,
            )
        except SignwireError as exc:
            error = exc
        except Exception:
            log.exception("ws %s: unexpected failure on frame %d", conn.short_id, seq)
            error = InternalError("the server failed on this frame")
        finally:
            metrics.in_flight.dec()
            budget.give_back(len(item.data))
            del item
        if error is not None:
            metrics.observe_error("ws", error.code)
            message = messages.encode_error(error, seq=seq, include_seq=True, dropped=dropped)
        await conn.send(message)
        if conn.pending is None:
            conn.idle.set()


async def _on_text(conn: Connection, text: str, sign_session: keys.SignSession) -> None:
    started = time.perf_counter()
    if len(text) > MAX_TEXT_BYTES:
        raise FrameTooLarge(f"a text message may be at most {MAX_TEXT_BYTES} bytes")
    parsed = messages.parse_client_message(text)
    if isinstance(parsed, messages.Hello):
        conn.mirrored = parsed.mirrored
    elif isinstance(parsed, messages.Reset):
        old, conn.tracking_id = conn.tracking_id, uuid.uuid4().hex
        await conn.app[keys.MODEL].end_session(old)
        sign_session.reset()
    else:
        sign = sign_session.observe(parsed.hands, mirrored=conn.mirrored)
        total_ms = (time.perf_counter() - started) * 1e3
        await conn.send(
            messages.encode_landmarks_result(
                parsed.hands, sign=sign, total_ms=total_ms, dropped=0, text=sign_session.text
            )
        )


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    config = app[keys.CONFIG]
    sockets = app[keys.SOCKETS]
    limits = app[keys.LIMITS]
    client_ip = request.remote or "-"
    if len(sockets) >= config.server.max_connections:
        app[keys.METRICS].observe_error("ws", Busy.code)
        return error_response(
            Busy(f"the server already has {config.server.max_connections} connections", retry_after_s=5)
        )
    try:
        limits.open_connection(client_ip)
    except Busy as error:
        app[keys.METRICS].observe_error("ws", error.code)
        return error_response(error)
    max_bytes = config.frames.max_bytes
    # aiohttp refuses an uncompressed message of exactly max_msg_size but a compressed one only
    # above it: give the library one byte of room and check the exact limit here.
    ws = web.WebSocketResponse(
        max_msg_size=max_bytes + 1,
        heartbeat=config.server.ws_heartbeat_s or None,
        receive_timeout=config.server.ws_idle_timeout_s or None,
    )
    # The slots are held from before the handshake's first await, so upgrades racing each
    # other cannot pass the caps.
    sockets.add(ws)
    try:
        await ws.prepare(request)
    except BaseException:
        sockets.discard(ws)
        limits.close_connection(client_ip)
        raise
    conn = Connection(ws=ws, app=app, short_id=uuid.uuid4().hex[:8], transport=request.transport)
    sign_session = app[keys.RECOGNIZER].new_session()
    connections = app[keys.CONNECTIONS]
    connections.add(conn)
    app[keys.METRICS].connections.inc()
    log.info("ws %s open from %s", conn.short_id, request.remote)
    processor = asyncio.create_task(_answer_frames(conn, sign_session), name=f"ws-{conn.short_id}")
    close_code: int = WSCloseCode.OK
    try:
        while True:
            try:
                msg = await ws.receive()
            except TimeoutError:
                close_code = WSCloseCode.GOING_AWAY
                log.info("ws %s idle for %.0f s; closing", conn.short_id, config.server.ws_idle_timeout_s)
                break
            if msg.type == WSMsgType.BINARY:
                conn.seq += 1
                data: bytes = msg.data
                if len(data) > max_bytes:
                    close_code = WSCloseCode.MESSAGE_TOO_BIG
                    app[keys.METRICS].observe_error("ws", FrameTooLarge.code)
                    break
                if conn.closing:
                    continue  # arrived after shutdown began: only frames already taken are answered
                try:
                    limits.take_frame(client_ip)
                    conn.replace_pending(_Pending(conn.seq, data, time.perf_counter()))
                except Busy as error:
                    app[keys.METRICS].observe_error("ws", error.code)
                    await conn.send(messages.encode_error(error, seq=conn.seq, include_seq=True))
                del data
            elif msg.type == WSMsgType.TEXT:
                try:
                    await _on_text(conn, msg.data, sign_session)
                except SignwireError as error:
                    app[keys.METRICS].observe_error("ws", error.code)
                    await conn.send(messages.encode_error(error))
            elif msg.type == WSMsgType.ERROR:
                exc = ws.exception()
                if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG or "too big" in str(exc).lower():
                    app[keys.METRICS].observe_error("ws", FrameTooLarge.code)
                log.info("ws %s error: %s", conn.short_id, exc)
                break
            else:  # CLOSE, CLOSING, CLOSED
                break
    finally:
        processor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await processor
        conn.clear_pending()
        conn.idle.set()
        connections.discard(conn)
        sockets.discard(ws)
        limits.close_connection(client_ip)
        app[keys.METRICS].connections.dec()
        with contextlib.suppress(SignwireError):
            await app[keys.MODEL].end_session(conn.tracking_id)
        if not ws.closed:
            message = b"frame_too_large" if close_code == WSCloseCode.MESSAGE_TOO_BIG else b""
            await ws.close(code=close_code, message=message)
        log.info("ws %s closed (%s)", conn.short_id, ws.close_code)
    return ws
