"""Shared test fixtures: fixture paths, a real server process, and fakes for transport tests.

The real server (``real_server``) is ``python -m server`` in a subprocess on a free loopback
port, started once per test session and shared by the tests that need the real model: the
model worker starts on its first frame, which costs a second or two, so sharing it keeps
``make test`` short. Tests that need their own settings start their own with ``start_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.config import Config, parse_config
from server.errors import ModelUnavailable
from server.landmarks import FrameResult, Hand, Sign

REPO = Path(__file__).resolve().parents[1]
FIXTURES = (REPO / ".." / "shared" / "fixtures").resolve()


def load_expected() -> dict[str, Any]:
    with (FIXTURES / "expected.json").open() as f:
        data: dict[str, Any] = json.load(f)
    return data


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    if not FIXTURES.is_dir():
        pytest.fail(f"the shared fixtures are missing: {FIXTURES}")
    return load_expected()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``python -m server`` child on a loopback port, its output copied to ``log_path``.

    ``wait_for`` blocks (bounded, no polling) until the server prints a line, so a test can wait
    for what the server says it is doing rather than for a guessed time.
    """

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    config_path: Path
    _lines: list[str] = field(default_factory=list)
    _ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def copy_output(self) -> None:
        """Copy the child's output to the log file and to ``wait_for``'s waiters (a thread's job)."""
        assert self.process.stdout is not None
        with self.log_path.open("wb") as log:
            for raw in self.process.stdout:
                log.write(raw)
                log.flush()
                with self._changed:
                    self._lines.append(raw.decode(errors="replace"))
                    self._changed.notify_all()
        self.process.stdout.close()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def next_line_with(self, text: str, timeout_s: float) -> str | None:
        """The first output line containing ``text``; None if the output ended or time ran out first."""

        def found() -> str | bool | None:
            return next((line for line in self._lines if text in line), None) or self._ended

        with self._changed:
            line = self._changed.wait_for(found, timeout_s)
        return line if isinstance(line, str) else None

    def wait_for(self, text: str, timeout_s: float) -> str:
        """Like ``next_line_with``, but a missing line fails the test with the server's output."""
        line = self.next_line_with(text, timeout_s)
        assert line is not None, f"no {text!r} within {timeout_s} s (exit {self.process.poll()}):\n{self.log_text()}"
        return line

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def write_config(directory: Path, toml: str) -> Path:
    path = directory / "config.toml"
    path.write_text(toml)
    return path


def start_server(
    toml: str = "",
    env: dict[str, str] | None = None,
    ready_timeout_s: float = 60.0,
    command_prefix: Sequence[str] = (),
) -> ServerProcess:
    """Start ``python -m server`` with ``toml`` as its whole config file; return once it listens.

    A thread copies the child's output to a log file and wakes ``wait_for`` on every line; the
    start waits (bounded) for the line that says the server listens, never a fixed time. ``command_prefix``
    runs the server under another command (the soak benchmark's cgroup launcher).
    """
    directory = Path(tempfile.mkdtemp(prefix="signwire-test-"))
    config_path = write_config(directory, toml)
    log_path = directory / "server.log"
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k != "SIGNWIRE_TOKEN"}
    child_env.update({"PORT": str(port), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", **(env or {})})
    process = subprocess.Popen(
        [*command_prefix, sys.executable, "-m", "server", "--config", str(config_path)],
        cwd=REPO,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ServerProcess(process=process, port=port, log_path=log_path, config_path=config_path)
    threading.Thread(target=server.copy_output, name=f"server-log-{port}", daemon=True).start()
    if server.next_line_with("signwire listening on", ready_timeout_s) is None or process.poll() is not None:
        server.stop()
        raise RuntimeError(f"server did not start (exit {process.returncode}):\n{server.log_text()}")
    return server


#: The default model settings plus a signs database in a temp folder.
def default_toml(extra: str = "", db_dir: Path | None = None) -> str:
    db = (db_dir or Path(tempfile.mkdtemp(prefix="signwire-db-"))) / "signs.sqlite3"
    return f'[signs]\ndb_path = "{db}"\n' + extra


@pytest.fixture(scope="session")
def real_server() -> Iterator[ServerProcess]:
    """One real server for the session, on the shipped defaults (LiteRT, lite models)."""
    server = start_server(default_toml())
    try:
        yield server
    finally:
        server.stop()


#: MediaPipe's own graph with the full models: exactly how expected.json was made.
MEDIAPIPE_FULL = '\n[model]\nengine = "mediapipe"\ncomplexity = "full"\ntracking_sessions = 0\n'


@pytest.fixture(scope="session")
def full_server() -> Iterator[ServerProcess]:
    """A real server on MediaPipe's graph with the full models, as expected.json was made."""
    server = start_server(default_toml() + MEDIAPIPE_FULL)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- helpers for transport tests


async def expect_error(response: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's error JSON with its status and code; return the body."""
    assert response.status == status
    body: dict[str, Any] = await response.json()
    assert (body["type"], body["code"]) == ("error", code)
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def client_ws_url(client: TestClient[web.Request, web.Application]) -> str:
    """The WebSocket URL of an aiohttp test client's server."""
    return f"ws://{client.host}:{client.port}/ws"


# ---------------------------------------------------------------- fakes for transport tests


def make_config(**tables: dict[str, Any]) -> Config:
    """A validated config from TOML-shaped tables (only what a test needs to change)."""
    return parse_config(tables)


@dataclass
class FakeModel:
    """A model that answers from a script, and can be held to show backpressure.

    ``gate``: when set, ``infer`` waits for it before answering (tests open it).
    ``seen``: every call, in order, as (session, mirrored, size).
    """

    hands: tuple[Hand, ...] = ()
    gate: asyncio.Event | None = None
    fail_with: Exception | None = None
    seen: list[tuple[str | None, bool, int]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    ended: list[str] = field(default_factory=list)

    @property
    def model_loaded(self) -> bool:
        return bool(self.seen)

    def pids(self) -> list[int]:
        return []

    async def infer(self, data: bytes, *, session: str | None, mirrored: bool) -> FrameResult:
        self.seen.append((session, mirrored, len(data)))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return FrameResult(width=64, height=48, hands=self.hands, decode_ms=0.1, inference_ms=0.2)

    async def end_session(self, session: str) -> None:
        self.ended.append(session)

    async def close(self) -> None:
        return None


class FakeSignSession:
    def __init__(self) -> None:
        self.observed = 0
        self.text = ""

    def observe(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None:
        self.observed += 1
        return None

    def reset(self) -> None:
        self.observed = 0


class FakeRecognizer:
    def __init__(self) -> None:
        self.sessions: dict[str, FakeSignSession] = {}

    def new_session(self) -> FakeSignSession:
        return FakeSignSession()

    def session_for(self, key: str) -> FakeSignSession:
        return self.sessions.setdefault(key, FakeSignSession())

    def classify(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None:
        return None

    def close(self) -> None:
        return None


__all__ = ["FIXTURES", "REPO", "FakeModel", "FakeRecognizer", "ModelUnavailable", "ServerProcess", "make_config"]
