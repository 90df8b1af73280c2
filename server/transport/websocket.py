"""The WebSocket endpoint ``/ws``: frames in, one answer per processed frame out.

Owns the per-connection protocol of the contract: ``seq`` numbering, one frame at a time with
only the newest waiting frame kept (the rest counted in ``dropped``), the text messages
(``hello``, ``landmarks``, ``reset``), the 1009 close for an oversized frame and 1001 on
shutdown. Two tasks per connection: the handler reads (so it always sees the newest frame and
control messages), a processor answers frames. Everything per connection dies with it.
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


@dataclass(slots=True)
class Connection:
    """What one WebSocket connection remembers; nothing of it is shared."""

    ws: web.WebSocketResponse
    app: web.Application
    short_id: str
    mirrored: bool = False
    seq: int = 0
    dropped: int = 0
    pending: _Pending | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tracking_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def send(self, message: dict[str, object]) -> None:
        if self.ws.closed:
            return
        async with self.send_lock:
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(messages.dumps(message))

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
        metrics.in_flight.inc()
        try:
            result = await model.infer(item.data, session=conn.tracking_id, mirrored=conn.mirrored)
            sign = sign_session.observe(result.hands)
            total_ms = (time.perf_counter() - item.arrived) * 1e3
            metrics.observe_frame("ws", result.decode_ms, result.inference_ms, total_ms)
            message = messages.encode_frame_result(
                result,
                seq=item.seq,
                sign=sign,
                total_ms=total_ms,
                dropped=dropped,
                text=sign_session.text,
            )
        except SignwireError as error:
            metrics.observe_error("ws", error.code)
            message = {**messages.encode_error(error, seq=item.seq, include_seq=True), "dropped": dropped}
        except Exception:
            log.exception("ws %s: unexpected failure on frame %d", conn.short_id, item.seq)
            metrics.observe_error("ws", InternalError.code)
            message = {
                **messages.encode_error(
                    InternalError("the server failed on this frame"), seq=item.seq, include_seq=True
                ),
                "dropped": dropped,
            }
        finally:
            metrics.in_flight.dec()
            budget.give_back(len(item.data))
            del item
        await conn.send(message)


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
        sign = sign_session.observe(parsed.hands)
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
    if len(sockets) >= config.server.max_connections:
        app[keys.METRICS].observe_error("ws", Busy.code)
        return error_response(
            Busy(f"the server already has {config.server.max_connections} connections", retry_after_s=5)
        )
    max_bytes = config.frames.max_bytes
    # aiohttp refuses an uncompressed message of exactly max_msg_size but a compressed one only
    # above it: give the library one byte of room and check the exact limit here.
    ws = web.WebSocketResponse(
        max_msg_size=max_bytes + 1,
        heartbeat=config.server.ws_heartbeat_s or None,
        receive_timeout=config.server.ws_idle_timeout_s or None,
    )
    await ws.prepare(request)
    conn = Connection(ws=ws, app=app, short_id=uuid.uuid4().hex[:8])
    sign_session = app[keys.RECOGNIZER].new_session()
    sockets.add(ws)
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
                try:
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
        sockets.discard(ws)
        app[keys.METRICS].connections.dec()
        with contextlib.suppress(SignwireError):
            await app[keys.MODEL].end_session(conn.tracking_id)
        if not ws.closed:
            message = b"frame_too_large" if close_code == WSCloseCode.MESSAGE_TOO_BIG else b""
            await ws.close(code=close_code, message=message)
        log.info("ws %s closed (%s)", conn.short_id, ws.close_code)
    return ws
