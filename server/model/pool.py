"""The supervisor of the model workers: start lazily, feed one frame at a time, restart, recycle.

Lives in the server process and never imports mediapipe or cv2. Each worker is a child
process (``python -m server.model.worker``) that the pool owns: it is started on the first
frame (so an idle server stays small), sent one request at a time under a lock (a worker is
single-threaded; the lock is also the only queue, and its waiters are bounded by the server's
connection cap), killed and replaced when it dies, hangs or answers garbage (the frame in
flight gets ``model_unavailable``, the next one a fresh worker), and recycled between frames
when it passes an RSS watermark or a frame count. Sessions stick to one worker so tracking
state stays where it was built.

A replacement is started and its model loaded as soon as the old worker is gone (a watcher task
notices a death even between frames), so an idle moment absorbs the ~1 s load instead of the next
frame. It is never started *before* the old one is gone: two workers at once would cost a second
model's memory (~170 MB) inside the 512 MB budget. Frames that arrive meanwhile wait on the lock.
Workers run in their own session, so a signal sent to the server's process group (Ctrl-C, a
supervisor's SIGTERM) reaches only the server, which stops them itself after answering frames in
flight; if the server dies, a worker sees EOF on its stdin and exits. A worker leaves the group
only inside the child, after the fork: a group signal in that gap used to kill the worker being
started (its frame failed mid-shutdown), so workers are forked with those signals blocked and
drop any that were pending as they start (``worker.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from server.config import Config
from server.errors import InternalError, ModelUnavailable, error_from_code
from server.landmarks import FrameResult, Hand, Handedness
from server.model.protocol import PREFIX, ProtocolError, decode_header, decode_prefix, encode_message

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: How a worker is started.
WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "server.model.worker")

#: Called with the reason ("crash", "timeout", "protocol", "rss", "frames") on every restart.
RestartHook = Callable[[str], None]
#: Signals a terminal or a supervisor sends to the server's whole process group.
_GROUP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


class _GroupSignalHold(threading.local):
    """How many worker starts in this thread hold the group signals, and what to unblock after.

    A start holds them across awaits, so the starts of two workers can overlap: the first to
    begin blocks the signals and the last to end unblocks them. (Each restoring "its" previous
    mask would leave them blocked for good when the second start ends last: the server would
    then never see SIGTERM.)
    """

    depth = 0
    unblock: frozenset[signal.Signals] = frozenset()


_hold = _GroupSignalHold()


@contextlib.contextmanager
def _group_signals_held() -> Iterator[None]:
    """Block the group signals in this thread while a worker is forked.

    The child inherits the block through fork and exec, so a group signal that lands before it
    has left the group stays pending there until the worker drops it. The server's own copy of
    the signal is delivered when the last overlapping hold ends, and handled as usual.
    """
    if _hold.depth == 0:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _GROUP_SIGNALS)
        _hold.unblock = frozenset(_GROUP_SIGNALS - previous)
    _hold.depth += 1
    try:
        yield
    finally:
        _hold.depth -= 1
        if _hold.depth == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _hold.unblock)


def _hands_from_reply(items: list[dict[str, Any]]) -> tuple[Hand, ...]:
    return tuple(
        Hand(
            handedness=Handedness(item["handedness"]),
            score=float(item["score"]),
            landmarks=tuple((float(x), float(y), float(z)) for x, y, z in item["landmarks"]),
            world_landmarks=tuple((float(x), float(y), float(z)) for x, y, z in item["world_landmarks"]),
        )
        for item in items
    )


def init_message(config: Config) -> bytes:
    """The first message a worker reads: its settings, from the config."""
    model, frames = config.model, config.frames
    return encode_message(
        {
            "op": "init",
            "engine": model.engine,
            "complexity": model.complexity,
            "max_hands": model.max_hands,
            "min_detection_confidence": model.min_detection_confidence,
            "min_tracking_confidence": model.min_tracking_confidence,
            "tracking_sessions": model.tracking_sessions,
            "detect_interval_frames": model.detect_interval_frames,
            "threads": model.threads,
            "max_bytes": frames.max_bytes,
            "limits": {
                "max_pixels": frames.max_pixels,
                "max_side_px": frames.max_side_px,
                "fit_width_px": frames.fit_width_px,
                "fit_height_px": frames.fit_height_px,
            },
        }
    )


class WorkerHandle:
    """One worker process and the lock that keeps it to one request at a time."""

    def __init__(self, index: int, config: Config, on_restart: RestartHook) -> None:
        self.index = index
        self._config = config
        self._on_restart = on_restart
        self._lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._closing = False
        #: The process a recycle has been scheduled for (so it is scheduled once).
        self._retiring: asyncio.subprocess.Process | None = None
        #: Watchers of the live process (cancelled on close) and replacements under way
        #: (awaited on close: cancelling one mid-start could leave a process unrecorded).
        self._watchers: set[asyncio.Task[None]] = set()
        self._respawns: set[asyncio.Task[None]] = set()
        self.loaded = False
        self.frames_since_start = 0
        self.sessions: set[str] = set()
        #: Seconds from noticing a worker was gone to its replacement's model being loaded.
        self.last_restart_s: float | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def _start(self) -> asyncio.subprocess.Process:
        """Start a worker and send it its settings (its model loads on the first request).

        Raises:
            ModelUnavailable: the process could not be started, or exited at once.
        """
        env = dict(os.environ)
        # Decoded frames must never be bigger than the header check allows; cv2 reads this
        # once, at import, so it is set before the worker imports cv2.
        frames = self._config.frames
        env["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(frames.max_pixels)
        env.setdefault("MALLOC_ARENA_MAX", "2")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        try:
            with _group_signals_held():
                process = await asyncio.create_subprocess_exec(
                    *WORKER_COMMAND,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=_PROJECT_ROOT,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ModelUnavailable(f"the model worker could not be started: {exc}") from exc
        # Recorded before the next await, so a close() racing this start still stops it.
        self._process = process
        self._retiring = None
        self.loaded = False
        self.frames_since_start = 0
        self._spawn(self._watchers, self._watch(process), f"worker-{self.index}-watch-{process.pid}")
        assert process.stdin is not None
        try:
            process.stdin.write(init_message(self._config))
            await process.stdin.drain()
        except ConnectionError as exc:
            await self._stop("crash", graceful=False)
            raise ModelUnavailable("the model worker exited as it started; a fresh one takes the next frame") from exc
        log.info("model worker %d started (pid %d)", self.index, process.pid)
        return process

    @staticmethod
    def _spawn(tasks: set[asyncio.Task[None]], coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        """Notice a worker dying on its own, even between frames, and replace it at once."""
        await process.wait()
        if self._process is process:
            self._schedule_respawn("crash", retire=process)

    def _schedule_respawn(self, reason: str, retire: asyncio.subprocess.Process | None) -> None:
        if not self._closing:
            self._spawn(self._respawns, self._respawn(reason, retire=retire), f"worker-{self.index}-respawn")

    async def _respawn(self, reason: str, retire: asyncio.subprocess.Process | None) -> None:
        """Replace ``retire`` (or start a worker if there is none) and load its model now.

        Runs under the lock, so frames wait for the replacement instead of failing; a failed
        load is left to the next frame's own start, never retried in a loop from here.
        """
        noticed = time.perf_counter()
        async with self._lock:
            current = self._process
            if self._closing:
                return
            if current is not None and current is retire:
                await self._stop(reason, graceful=reason in ("rss", "frames"))
            elif current is not None and current.returncode is None:
                return  # a live worker is already in place
            elif current is not None:
                await self._stop("crash", graceful=False)
            # Read through the property: close() may have begun while the old worker was
            # stopping, which a re-read of the attribute would hide from mypy's narrowing.
            if self.closing:
                return
            try:
                await self._start()
                await self._exchange_locked({"op": "load"}, b"", respawn_on_failure=False)
            except ModelUnavailable as exc:
                log.warning("model worker %d: the replacement did not load: %s", self.index, exc)
                return
            self.last_restart_s = time.perf_counter() - noticed
            log.info(
                "model worker %d ready again %.0f ms after it was replaced (%s)",
                self.index,
                self.last_restart_s * 1e3,
                reason,
            )

    async def _stop(self, reason: str, *, graceful: bool) -> None:
        process, self._process = self._process, None
        self.loaded = False
        if process is None:
            return
        if graceful and process.stdin is not None:
            process.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                graceful = False
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if reason != "shutdown":
            self._on_restart(reason)
            log.warning("model worker %d (pid %d) replaced: %s", self.index, process.pid, reason)

    async def _read_reply(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        assert process.stdout is not None
        prefix = await process.stdout.readexactly(PREFIX.size)
        header_len, _body_len = decode_prefix(prefix, 0)
        return decode_header(await process.stdout.readexactly(header_len))

    async def request(self, header: dict[str, Any], body: bytes = b"") -> dict[str, Any]:
        """Send one request and await its reply, restarting the worker on any failure.

        The exchange is shielded: a caller cancelled mid-frame (its client left) must not leave
        an unread reply in the pipe, which would hand it to the next request.

        Raises:
            ModelUnavailable: the worker died, hung or broke the protocol on this request.
        """
        return await asyncio.shield(self._exchange(header, body))

    async def _exchange(self, header: dict[str, Any], body: bytes) -> dict[str, Any]:
        async with self._lock:
            return await self._exchange_locked(header, body, respawn_on_failure=True)

    async def _exchange_locked(
        self, header: dict[str, Any], body: bytes, *, respawn_on_failure: bool
    ) -> dict[str, Any]:
        """One request and its reply; the caller holds the lock."""
        if self._closing:
            raise ModelUnavailable("the server is shutting down")
        process = self._process
        if process is None or process.returncode is not None:
            if process is not None:
                await self._stop("crash", graceful=False)
            process = await self._start()
        model = self._config.model
        timeout_s = model.frame_timeout_s if self.loaded else model.start_timeout_s
        request_id = next(self._ids)
        try:
            async with asyncio.timeout(timeout_s):
                assert process.stdin is not None
                process.stdin.write(encode_message({**header, "id": request_id}, body))
                await process.stdin.drain()
                reply = await self._read_reply(process)
            if reply.get("id") != request_id:
                raise ProtocolError(f"reply to request {reply.get('id')}, expected {request_id}")
        except TimeoutError:
            await self._fail("timeout", respawn_on_failure)
            raise ModelUnavailable(
                f"the model did not answer within {timeout_s:g} s; a fresh worker takes the next frame"
            ) from None
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self._fail("crash", respawn_on_failure)
            raise ModelUnavailable(
                "the model worker stopped while processing this frame; a fresh one takes the next frame"
            ) from exc
        except ProtocolError as exc:
            log.error("model worker %d broke the protocol: %s", self.index, exc)
            await self._fail("protocol", respawn_on_failure)
            raise ModelUnavailable("the model worker answered garbage; it has been replaced") from exc
        self.loaded = True
        if header.get("op") == "frame":
            self.frames_since_start += 1
            reason = self._recycle_reason(process)
            if reason is not None and self._retiring is not process:
                # Replaced after this reply is on its way, by a task that queues on the lock
                # like a frame: the caller does not wait for the old worker to exit.
                self._retiring = process
                self._schedule_respawn(reason, retire=process)
        return reply

    async def _fail(self, reason: str, respawn: bool) -> None:
        await self._stop(reason, graceful=False)
        if respawn:
            self._schedule_respawn(reason, retire=None)

    def _recycle_reason(self, process: asyncio.subprocess.Process) -> str | None:
        """Why the worker should be replaced between frames ("frames", "rss"), or ``None``."""
        model = self._config.model
        if model.recycle_after_frames and self.frames_since_start >= model.recycle_after_frames:
            return "frames"
        if model.recycle_rss_mb:
            try:
                rss_mb = psutil.Process(process.pid).memory_info().rss / 2**20
            except psutil.Error:
                return None
            if rss_mb > model.recycle_rss_mb:
                return "rss"
        return None

    async def end_session(self, session: str) -> None:
        self.sessions.discard(session)
        process = self._process
        if process is None or process.returncode is not None or process.stdin is None:
            return
        async with self._lock:
            if self._process is process and process.stdin is not None and not process.stdin.is_closing():
                with contextlib.suppress(ConnectionError):
                    process.stdin.write(encode_message({"op": "end", "session": session}))
                    await process.stdin.drain()

    async def close(self) -> None:
        self._closing = True
        watchers = list(self._watchers)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, *list(self._respawns), return_exceptions=True)
        async with self._lock:
            await self._stop("shutdown", graceful=True)


class ModelPool:
    """Every model worker of the server, and which session goes to which.

    Args:
        config: the whole configuration (model and frame limits are used).
        on_restart: called with the reason on each worker replacement (metrics).
    """

    def __init__(self, config: Config, on_restart: RestartHook | None = None) -> None:
        self._config = config
        self.restarts = 0
        self._hook = on_restart
        self.workers = [WorkerHandle(i, config, self._restarted) for i in range(config.model.workers)]
        self._by_session: dict[str, WorkerHandle] = {}
        self._round_robin = itertools.cycle(self.workers)

    def _restarted(self, reason: str) -> None:
        self.restarts += 1
        if self._hook is not None:
            self._hook(reason)

    @property
    def model_loaded(self) -> bool:
        return any(worker.loaded for worker in self.workers)

    def pids(self) -> list[int]:
        return [pid for worker in self.workers if (pid := worker.pid) is not None]

    def _worker_for(self, session: str | None) -> WorkerHandle:
        if session is None:
            idle = [worker for worker in self.workers if not worker.busy]
            return idle[0] if idle else next(self._round_robin)
        worker = self._by_session.get(session)
        if worker is None:
            worker = min(self.workers, key=lambda w: len(w.sessions))
            worker.sessions.add(session)
            self._by_session[session] = worker
        return worker

    async def infer(self, data: bytes, *, session: str | None, mirrored: bool) -> FrameResult:
        """Decode and run the hand model on one encoded frame.

        Args:
            data: the encoded image (already within the size limit).
            session: the tracking session, or ``None`` for detection from scratch.
            mirrored: the client sends selfie-view frames (changes handedness only).

        Raises:
            SignwireError: the frame was refused (bad image, too large) or the model failed.
        """
        worker = self._worker_for(session)
        reply = await worker.request({"op": "frame", "session": session, "mirrored": mirrored}, data)
        if not reply.get("ok"):
            raise error_from_code(str(reply.get("code")), str(reply.get("message")))
        try:
            return FrameResult(
                width=int(reply["width"]),
                height=int(reply["height"]),
                hands=_hands_from_reply(reply["hands"]),
                decode_ms=float(reply["decode_ms"]),
                inference_ms=float(reply["inference_ms"]),
                tracked=bool(reply["tracked"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InternalError("the model worker's reply was malformed") from exc

    async def load(self) -> None:
        """Start every worker and load its model now rather than on the first frame."""
        await asyncio.gather(*(worker.request({"op": "load"}) for worker in self.workers))

    async def end_session(self, session: str) -> None:
        """Forget a session's tracking state on its worker."""
        worker = self._by_session.pop(session, None)
        if worker is not None:
            await worker.end_session(session)

    async def close(self) -> None:
        await asyncio.gather(*(worker.close() for worker in self.workers))
