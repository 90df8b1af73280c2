"""Clean shutdown of the real process: SIGTERM answers what is in flight, closes 1001, leaves nothing.

``python -m server`` runs as a subprocess with DEBUG logs, so the test can wait for the line
that says a frame was handed to the model (the first frame also loads the model, so it is
certainly still in flight when SIGTERM arrives). Then: the frame in flight on the WebSocket and
the POST in flight are both answered, the WebSocket is closed with 1001, the process exits 0,
and no process it started is left (psutil).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import psutil
import pytest
import websockets

from server.config import parse_config
from server.model.pool import _group_signals_held, init_message
from server.model.protocol import PREFIX, decode_header, decode_prefix, encode_message
from tests.conftest import FIXTURES, REPO, ServerProcess, default_toml, start_server

pytestmark = pytest.mark.model

PHOTO = (FIXTURES / "hands" / "open_hand_photo.jpg").read_bytes() if FIXTURES.is_dir() else b""


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    started = start_server(default_toml("[server]\nshutdown_grace_s = 30\n"), env={"SIGNWIRE_LOG_LEVEL": "DEBUG"})
    try:
        yield started
    finally:
        started.kill()
        # Captured by pytest and shown only when the test failed: the server's side of the story.
        print(started.log_text())


async def post(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with http.post(f"{url}/api/frame", data=io.BytesIO(PHOTO), headers={"Content-Type": "image/jpeg"}) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("to_group", [False, True], ids=["sigterm-to-server", "sigterm-to-process-group"])
async def test_sigterm_answers_frames_in_flight_closes_1001_and_leaves_no_process(
    server: ServerProcess, to_group: bool
) -> None:
    async with aiohttp.ClientSession() as http, websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        await ws.send(PHOTO)
        # Handed to the model, which is still loading (waited for in a thread: the loop keeps running).
        await asyncio.to_thread(server.wait_for, "frame 1 (", 30)
        in_flight_post = asyncio.create_task(post(http, server.url))
        await asyncio.to_thread(server.wait_for, "http frame (", 30)
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert children, "the model worker should be running"
        if to_group:
            os.killpg(server.process.pid, signal.SIGTERM)
        else:
            server.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            answer = json.loads(await ws.recv())
            assert (answer["type"], answer["seq"], len(answer["hands"])) == ("result", 1, 1)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            status, body = await in_flight_post
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert (status, body["type"]) == (200, "result")
    assert await asyncio.to_thread(server.process.wait, 60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], alive
    server.wait_for("signwire stopped", 30)  # the output is copied by a thread: wait for it
    log = server.log_text()
    assert "Traceback" not in log


async def test_new_connections_are_refused_once_shutdown_begins(server: ServerProcess) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        await ws.send(PHOTO)
        await asyncio.to_thread(server.wait_for, "frame 1 (", 30)
        server.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            # The listening socket closes first, then the frame in flight is answered.
            assert json.loads(await ws.recv())["type"] == "result"
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", server.port)
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.to_thread(server.process.wait, 60) == 0


async def test_sigterm_stops_a_server_whose_two_workers_started_together(server: ServerProcess) -> None:
    """Two clients' first frames start both workers at once; SIGTERM must still stop everything."""
    async with websockets.connect(server.ws_url) as a, websockets.connect(server.ws_url) as b:
        await asyncio.gather(a.send(PHOTO), b.send(PHOTO))
        async with asyncio.timeout(60):
            answers = [json.loads(await ws.recv()) for ws in (a, b)]
        assert [answer["type"] for answer in answers] == ["result", "result"]
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert len(children) == 2, "each client should have started its own worker"
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], alive


def test_a_group_signal_pending_from_before_the_worker_left_the_group_is_dropped() -> None:
    """A SIGTERM sent to the group while a worker is being forked must not kill it.

    The pool forks with the group signals blocked; this builds the worst case by hand: ``sh``
    inherits the block, sends itself SIGTERM (it stays pending) and execs the worker, which
    keeps pending signals. The worker must drop that one, answer, and then still obey a
    SIGTERM sent to it afterwards (proof that it unblocked the signal rather than kept it blocked).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        worker = subprocess.Popen(
            ["sh", "-c", 'kill -TERM $$ && exec "$0" -m server.model.worker', sys.executable],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    with worker:
        try:
            assert worker.stdin is not None
            assert worker.stdout is not None
            worker.stdin.write(init_message(parse_config({})) + encode_message({"op": "load", "id": 1}))
            worker.stdin.flush()
            prefix = worker.stdout.read(PREFIX.size)
            assert len(prefix) == PREFIX.size, f"the worker died: exit {worker.wait(30)}"
            header_len, _ = decode_prefix(prefix, 0)
            assert decode_header(worker.stdout.read(header_len)) == {"ok": True, "id": 1}
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == -signal.SIGTERM
        finally:
            if worker.poll() is None:
                worker.kill()


@pytest.mark.parametrize("first_to_end", ["first-started", "second-started"])
async def test_overlapping_worker_starts_leave_the_group_signals_unblocked(first_to_end: str) -> None:
    """Two workers starting at once (two clients' first frames) hold the signals across awaits.

    Whichever start ends last, the server thread must end with SIGTERM deliverable again; the
    soak benchmark found a server that never saw its SIGTERM after both workers started together.
    """
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    assert signal.SIGTERM not in before
    entered = [asyncio.Event(), asyncio.Event()]
    release = [asyncio.Event(), asyncio.Event()]

    async def start(i: int) -> None:
        with _group_signals_held():
            entered[i].set()
            await release[i].wait()

    last = 1 if first_to_end == "first-started" else 0
    tasks = [asyncio.create_task(start(0))]
    await entered[0].wait()
    tasks.append(asyncio.create_task(start(1)))
    await entered[1].wait()
    assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set())
    release[1 - last].set()
    await tasks[1 - last]
    assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, set()), "still starting: held"
    release[last].set()
    await tasks[last]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
