"""The model worker process: decode a frame, run the hand engine, answer. One frame at a time.

Started by ``pool.py`` as ``python -m server.model.worker``; it talks only over its stdin
(requests) and a private duplicate of its stdout (replies), framed by ``protocol.py``. File
descriptor 1 is pointed at stderr at start, so anything native code prints cannot corrupt the
replies. It owns the engine and every decoded pixel; it knows nothing of HTTP or WebSockets.

Requests (header ``op``):

- ``init`` (first message): the settings; no reply.
- ``load``: build the engine now; reply ``{"ok": true}``.
- ``frame`` (body: the encoded image; ``session``, ``mirrored``): reply the hands or an error.
- ``end`` (``session``): forget that session's tracking state; no reply.

A reply echoes the request's ``id``. Errors the client caused come back as
``{"ok": false, "code": ..., "message": ...}``; an unexpected exception is logged here with its
traceback and answered as ``internal``. A native crash kills the process: the pool sees EOF.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from server.errors import SignwireError
from server.frames import FrameLimits, decode_frame
from server.model.engine import HandEngine, RawHand
from server.model.files import as_complexity
from server.model.protocol import PREFIX, decode_header, decode_prefix, encode_message

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    engine: str
    complexity: str
    max_hands: int
    min_detection_confidence: float
    min_tracking_confidence: float
    tracking_sessions: int
    max_bytes: int
    limits: FrameLimits
    detect_interval_frames: int = 1
    threads: int = 1

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> WorkerSettings:
        limits = FrameLimits(**header["limits"])
        fields = {k: v for k, v in header.items() if k not in ("op", "limits")}
        return cls(limits=limits, **fields)


def build_engine(settings: WorkerSettings) -> HandEngine:
    """The engine the settings name, with its models loaded."""
    if settings.engine == "mediapipe":
        from server.model.hands import MediaPipeEngine

        engine = MediaPipeEngine(
            complexity=settings.complexity,
            max_hands=settings.max_hands,
            min_detection_confidence=settings.min_detection_confidence,
            min_tracking_confidence=settings.min_tracking_confidence,
            tracking_sessions=settings.tracking_sessions,
        )
        engine.load()
        return engine
    if settings.engine == "litert":
        from server.model.litert import LiteRTEngine

        # One set of interpreters serves every session; a session's tracking state is a few
        # regions, so the bound is on count only (least recently used sessions are forgotten).
        return LiteRTEngine(
            as_complexity(settings.complexity),
            max_hands=settings.max_hands,
            min_detection_confidence=settings.min_detection_confidence,
            min_tracking_confidence=settings.min_tracking_confidence,
            detect_interval_frames=settings.detect_interval_frames,
            max_sessions=max(1, settings.tracking_sessions),
            num_threads=settings.threads,
        )
    raise ValueError(f"unknown engine {settings.engine!r}")


def hand_to_wire(hand: RawHand, mirrored: bool) -> dict[str, Any]:
    """A hand in the contract's convention.

    MediaPipe labels hands as if the image were mirrored (selfie view). For a mirrored frame
    that is the signer's own hand; for a frame as a camera sees it, the label is swapped.
    """
    label = hand.label
    if not mirrored:
        label = "Right" if label == "Left" else "Left"
    return {
        "handedness": label,
        "score": round(hand.score, 4),
        # Rounded as whole arrays: iterating numpy scalars one by one cost ~0.4 ms a frame.
        "landmarks": np.round(hand.landmarks.astype(np.float64), 6).tolist(),
        "world_landmarks": np.round(hand.world_landmarks.astype(np.float64), 6).tolist(),
    }


class Worker:
    """The request loop, separated from process plumbing so tests can drive it in-process."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._engine: HandEngine | None = None

    def engine(self) -> HandEngine:
        if self._engine is None:
            started = time.perf_counter()
            self._engine = build_engine(self.settings)
            log.info(
                "model loaded: %s %s in %.0f ms",
                self.settings.engine,
                self.settings.complexity,
                (time.perf_counter() - started) * 1e3,
            )
        return self._engine

    def handle(self, header: dict[str, Any], body: bytes) -> dict[str, Any] | None:
        """Answer one request; ``None`` for requests that get no reply."""
        op = header.get("op")
        reply_id = header.get("id")
        try:
            if op == "frame":
                return {"id": reply_id, "ok": True, **self._frame(header, body)}
            if op == "load":
                self.engine()
                return {"id": reply_id, "ok": True}
            if op == "end":
                if self._engine is not None:
                    self._engine.end_session(str(header["session"]))
                return None
            raise ValueError(f"unknown op {op!r}")
        except SignwireError as exc:
            return {"id": reply_id, "ok": False, "code": exc.code, "message": str(exc)}
        except Exception:
            log.exception("model worker failed on a %s request", op)
            return {"id": reply_id, "ok": False, "code": "internal", "message": "the model failed on this frame"}

    def _frame(self, header: dict[str, Any], body: bytes) -> dict[str, Any]:
        started = time.perf_counter()
        frame = decode_frame(body, self.settings.limits)
        decoded = time.perf_counter()
        session = header.get("session")
        if not isinstance(session, str) or self.settings.tracking_sessions == 0:
            session = None  # detection from scratch: no state to keep or to mix up
        hands, tracked = self.engine().process(frame.rgb, session)
        done = time.perf_counter()
        mirrored = bool(header.get("mirrored", False))
        return {
            "width": int(frame.rgb.shape[1]),
            "height": int(frame.rgb.shape[0]),
            "hands": [hand_to_wire(hand, mirrored) for hand in hands],
            "tracked": tracked,
            "decode_ms": round((decoded - started) * 1e3, 3),
            "inference_ms": round((done - decoded) * 1e3, 3),
        }

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_message(stream: BinaryIO, max_body_bytes: int) -> tuple[dict[str, Any], bytes] | None:
    prefix = _read_exactly(stream, PREFIX.size)
    if prefix is None:
        return None
    header_len, body_len = decode_prefix(prefix, max_body_bytes)
    raw = _read_exactly(stream, header_len)
    body = _read_exactly(stream, body_len) if body_len else b""
    if raw is None or body is None:
        return None
    return decode_header(raw), body


def _drop_signals_meant_for_the_server() -> None:
    """Discard a Ctrl-C or SIGTERM sent to the server's process group while we were forked.

    The pool forks a worker with these signals blocked (see ``pool.py``): until the child has
    left the group (``setsid``, between fork and exec) a signal to the group reaches it too,
    and would kill a worker whose frame the server still means to answer. Such a signal waits
    here, pending; setting the action to "ignore" discards it (POSIX), and only then are the
    signals unblocked. From now on the worker is in its own session, so a SIGTERM is meant for
    it and kills it as usual. SIGINT stays ignored: the server decides when a worker stops.
    """
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    for signum in held:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def main() -> int:
    """Serve requests from stdin until it closes."""
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray native prints go to stderr, never into the reply stream
    _drop_signals_meant_for_the_server()
    logging.basicConfig(
        level=os.environ.get("SIGNWIRE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s [worker %(process)d] %(name)s: %(message)s",
    )
    requests = sys.stdin.buffer
    first = _read_message(requests, 0)
    if first is None:
        return 0
    settings = WorkerSettings.from_header(first[0])
    worker = Worker(settings)
    # The multipart envelope never reaches the worker: only the image bytes do.
    while (message := _read_message(requests, settings.max_bytes)) is not None:
        reply = worker.handle(*message)
        if reply is not None:
            replies.write(encode_message(reply))
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
