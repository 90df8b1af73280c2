"""Hostile clients at the transport level, against the real application with a fake model.

The model is a fake (it answers at once, or when a test opens its gate), so these tests are
about framing, limits and cleanup, not pixels: lying and chunked bodies, trickled and stalled
bodies, multipart without its field, JSON garbage to the landmark endpoints on both transports,
text garbage on the WebSocket, clients that vanish mid-frame, never read, or never answer a
ping. Each checks the exact status or close code and error code, then that the server still
answers a good frame; where a connection ends, that everything it held was given back.
HTTP goes through aiohttp's client, or raw sockets where a well-behaved client cannot misbehave
enough; the WebSocket through ``websockets`` or a raw socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.landmarks import Hand, Handedness
from server.transport import keys
from tests.conftest import FakeModel, FakeRecognizer, make_config

LIMIT = 4096
JPEG = b"\xff\xd8\xff" + b"\x00" * 100
POINTS = [[0.5, 0.5, 0.0]] * 21
GOOD_HANDS = {"hands": [{"handedness": "Right", "landmarks": POINTS}]}

Client = TestClient[web.Request, web.Application]


@dataclass
class WatchedModel(FakeModel):
    """A fake model that also says when a connection's session has been ended (its cleanup)."""

    ended_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def end_session(self, session: str) -> None:
        await super().end_session(session)
        self.ended_event.set()


@pytest.fixture
def model() -> WatchedModel:
    return WatchedModel()


async def start(aiohttp_client: Any, model: FakeModel, **server: Any) -> Client:
    config = make_config(
        frames={"max_bytes": LIMIT, "multipart_overhead_bytes": 512},
        server={"max_frames_per_s_per_ip": 0, **server},
    )
    client: Client = await aiohttp_client(create_app(config, model=model, recognizer=FakeRecognizer()))
    return client


@pytest.fixture
async def client(aiohttp_client: Any, model: WatchedModel) -> Client:
    return await start(aiohttp_client, model, body_timeout_s=0.5, ws_send_timeout_s=0.5)


@pytest.fixture
async def text_client(aiohttp_client: Any, model: WatchedModel) -> Client:
    """The shipped frame limit (5 MiB), which also bounds WebSocket text messages (aiohttp has one
    message limit); the text limit of 256 KiB is then the one that speaks."""
    config = make_config(server={"max_frames_per_s_per_ip": 0})
    text: Client = await aiohttp_client(create_app(config, model=model, recognizer=FakeRecognizer()))
    return text


def ws_url(client: Client) -> str:
    return f"ws://{client.host}:{client.port}/ws"


async def expect_error(response: aiohttp.ClientResponse, status: int, code: str) -> None:
    body = await response.json()
    assert (response.status, body["type"], body["code"]) == (status, "error", code), body
    assert body["message"]


async def still_serves(client: Client) -> None:
    """A good frame over each transport gets a result, and nothing is left held server-wide."""
    response = await client.post("/api/frame", data=JPEG, headers={"Content-Type": "image/jpeg"})
    assert (response.status, (await response.json())["type"]) == (200, "result")
    async with websockets.connect(ws_url(client)) as ws:
        await ws.send(JPEG)
        async with asyncio.timeout(10):
            assert json.loads(await ws.recv())["type"] == "result"
    landmarks = await client.post("/api/landmarks", json=GOOD_HANDS)
    assert landmarks.status == 200


async def send_then_receive(ws: websockets.ClientConnection, message: bytes | list[bytes]) -> str | bytes:
    """Send, then await the answer; a close may surface from either call."""
    await ws.send(message)
    async with asyncio.timeout(10):
        return await ws.recv()


def held(client: Client) -> tuple[int, int]:
    budget = client.server.app[keys.BUDGET]
    return budget.held_frames, budget.held_bytes


async def raw_http(client: Client, data: bytes, *, responses: int = 1, close_write: bool = False) -> bytes:
    """Send bytes on a fresh TCP connection; read ``responses`` whole answers, or until it closes."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        out = b""
        async with asyncio.timeout(10):
            for _ in range(responses):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    return out + exc.partial  # closed
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                out += head + await reader.readexactly(length)
        return out
    finally:
        writer.close()


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def json_bodies(raw: bytes) -> list[dict[str, Any]]:
    bodies = []
    for part in raw.split(b"HTTP/1.")[1:]:
        _, _, body = part.partition(b"\r\n\r\n")
        if body.startswith(b"{"):
            bodies.append(json.loads(body[: body.rindex(b"}") + 1]))
    return bodies


def assert_refused_as_bad_http(raw: bytes) -> None:
    """aiohttp could not parse the request: the contract's JSON all the same (the last answer in ``raw``)."""
    starts = [m.start() for m in re.finditer(rb"(?:^|\r\n)HTTP/1\.[01] \d{3} ", raw)]
    head, _, _ = raw[starts[-1] :].lstrip(b"\r\n").partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", raw[:200]
    assert b"Content-Type: application/json" in head
    body = json_bodies(raw)[-1]
    assert (body["type"], body["code"]) == ("error", "bad_request")
    assert "not valid HTTP" in body["message"]


# ------------------------------------------------------------------ HTTP bodies


async def test_exactly_the_limit_chunked_is_accepted_one_byte_over_is_413(client: Client, model: FakeModel) -> None:
    async def chunks(size: int) -> AsyncIterator[bytes]:
        data = JPEG + b"\x00" * (size - len(JPEG))
        for i in range(0, size, 1000):
            yield data[i : i + 1000]

    ok = await client.post("/api/frame", data=chunks(LIMIT))
    assert ok.status == 200
    assert ok.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert model.seen[-1][2] == LIMIT
    await expect_error(await client.post("/api/frame", data=chunks(LIMIT + 1)), 413, "frame_too_large")
    await still_serves(client)


async def test_declared_length_over_the_limit_is_refused_before_reading(client: Client, model: FakeModel) -> None:
    raw = await raw_http(
        client, f"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: {10**12}\r\n\r\n".encode() + JPEG
    )
    assert status_of(raw) == 413
    assert json_bodies(raw)[0]["code"] == "frame_too_large"
    assert model.seen == []
    await still_serves(client)


async def test_a_short_content_length_takes_only_that_many_bytes(client: Client, model: FakeModel) -> None:
    # The declared 103 bytes are the body; what follows is parsed as the next request.
    raw = await raw_http(
        client,
        b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: 103\r\n\r\n"
        + JPEG
        + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        responses=2,
    )
    first, second = json_bodies(raw)
    assert (first["type"], second) == ("result", {"status": "ok"})
    assert [size for _, _, size in model.seen] == [103]
    await still_serves(client)


async def test_a_short_content_length_followed_by_garbage_is_400(client: Client, model: FakeModel) -> None:
    raw = await raw_http(
        client, b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n" + JPEG + b"\r\n\r\n"
    )
    # The garbage after the body is not HTTP: the framing layer refuses the connection.
    assert status_of(raw) == 400
    assert_refused_as_bad_http(raw)
    assert b"\x00\x00\x00\x00" not in raw.split(b"\r\n\r\n", 1)[0]
    await still_serves(client)


async def test_malformed_chunk_sizes_are_400(client: Client, model: FakeModel) -> None:
    raw = await raw_http(
        client,
        b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
    )
    assert_refused_as_bad_http(raw)
    assert model.seen == []
    await still_serves(client)


async def test_both_content_length_and_chunked_is_400(client: Client, model: FakeModel) -> None:
    # The classic request-smuggling shape: never guess which framing the sender meant.
    raw = await raw_http(
        client,
        b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n",
    )
    assert_refused_as_bad_http(raw)
    assert model.seen == []
    await still_serves(client)


async def test_a_chunk_size_over_the_limit_is_413_without_buffering_it(client: Client, model: FakeModel) -> None:
    raw = await raw_http(
        client,
        b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{10**9:x}\r\n".encode()
        + JPEG * 50,
    )
    assert status_of(raw) == 413
    assert json_bodies(raw)[0]["code"] == "frame_too_large"
    await still_serves(client)


async def test_a_stalled_body_times_out_with_400_and_a_closed_connection(client: Client, model: FakeModel) -> None:
    # 1000 bytes declared, 50 sent, then silence: the body timeout (0.5 s here) answers.
    raw = await raw_http(
        client, b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n" + JPEG[:50]
    )
    assert status_of(raw) == 400
    (body,) = json_bodies(raw)
    assert (body["code"], "did not arrive" in body["message"]) == ("bad_request", True)
    assert b"Connection: close" in raw
    assert model.seen == []
    await still_serves(client)


async def test_a_trickled_chunked_body_times_out(client: Client, model: FakeModel) -> None:
    never = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield JPEG[:10]
        await never.wait()  # the rest never comes
        yield b""

    await expect_error(await client.post("/api/frame", data=trickle()), 400, "bad_request")
    assert model.seen == []
    await still_serves(client)


async def test_a_stalled_landmarks_body_times_out(client: Client) -> None:
    raw = await raw_http(
        client, b'POST /api/landmarks HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500\r\n\r\n{"hands"'
    )
    assert status_of(raw) == 400
    assert json_bodies(raw)[0]["code"] == "bad_request"
    await still_serves(client)


async def test_multipart_without_the_frame_field_is_400(client: Client, model: FakeModel) -> None:
    form = aiohttp.FormData()
    form.add_field("image", JPEG, content_type="image/jpeg", filename="a.jpg")
    await expect_error(await client.post("/api/frame", data=form), 400, "bad_request")
    assert model.seen == []
    await still_serves(client)


async def test_multipart_with_large_other_fields_is_413(client: Client, model: FakeModel) -> None:
    form = aiohttp.FormData()
    form.add_field("padding", "x" * 600)
    form.add_field("frame", JPEG, content_type="image/jpeg", filename="a.jpg")
    await expect_error(await client.post("/api/frame", data=form), 413, "frame_too_large")
    assert model.seen == []
    await still_serves(client)


async def test_multipart_frame_field_exactly_at_the_limit_is_accepted(client: Client, model: FakeModel) -> None:
    form = aiohttp.FormData()
    form.add_field("frame", JPEG + b"\x00" * (LIMIT - len(JPEG)), content_type="image/jpeg", filename="a.jpg")
    assert (await client.post("/api/frame", data=form)).status == 200
    assert model.seen[-1][2] == LIMIT
    await still_serves(client)


async def test_a_broken_multipart_body_is_400(client: Client, model: FakeModel) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="frame"\r\n\r\n' + JPEG  # never closed
    response = await client.post("/api/frame", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    # The part has no closing boundary: either refused as broken, or read to its end as the frame.
    assert response.status in (200, 400)
    if response.status == 400:
        await expect_error(response, 400, "bad_request")
    await still_serves(client)


async def test_multipart_without_a_boundary_is_400(client: Client, model: FakeModel) -> None:
    response = await client.post("/api/frame", data=JPEG, headers={"Content-Type": "multipart/form-data"})
    await expect_error(response, 400, "bad_request")
    await still_serves(client)


async def test_oversized_headers_are_refused(client: Client) -> None:
    # (That aiohttp's log of this refusal does not quote the bytes is checked on the real
    # process, whose logging __main__ sets up: test_access_logs.py.)
    raw = await raw_http(
        client, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Secret: " + b"s" * 20_000 + b"\r\n\r\n"
    )
    assert_refused_as_bad_http(raw)
    assert b"sssss" not in raw  # the refusal does not echo what was sent
    await still_serves(client)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n",
        b"GET /healthz SPDY/9\r\nHost: localhost\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n",
        b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
    ],
    ids=["tls-to-plain-port", "unknown-protocol", "space-in-header-name", "negative-length"],
)
async def test_requests_that_are_not_http_get_the_contracts_json(client: Client, request_bytes: bytes) -> None:
    assert_refused_as_bad_http(await raw_http(client, request_bytes))
    await still_serves(client)


@pytest.mark.parametrize(
    ("query", "code"),
    [("?mirrored=maybe", "bad_request"), ("?session=" + "x" * 65, "bad_request"), ("?session=%00", "bad_request")],
)
async def test_bad_query_values(client: Client, query: str, code: str) -> None:
    await expect_error(await client.post(f"/api/frame{query}", data=JPEG), 400, code)
    await still_serves(client)


# ------------------------------------------------------------------ landmarks JSON, both transports


def hand(points: Any = POINTS, **extra: Any) -> dict[str, Any]:
    return {"hands": [{"handedness": "Right", "landmarks": points, **extra}]}


def deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_LANDMARKS: list[tuple[str, str]] = [
    ("garbage", "this is not json"),
    ("truncated", '{"hands": [{"handedness": "Right", "landmarks": [[0.5'),
    ("array", "[1, 2, 3]"),
    ("null", "null"),
    ("hands-not-a-list", '{"hands": {"0": 1}}'),
    ("20-points", json.dumps(hand([[0.5, 0.5, 0.0]] * 20))),
    ("22-points", json.dumps(hand([[0.5, 0.5, 0.0]] * 22))),
    ("no-points", json.dumps(hand([]))),
    ("4-coords", json.dumps(hand([[0.5, 0.5, 0.0, 1.0]] * 21))),
    ("1-coord", json.dumps(hand([[0.5]] * 21))),
    ("string-coords", json.dumps(hand([["0.5", "0.5"]] * 21))),
    ("bool-coords", json.dumps(hand([[True, False]] * 21))),
    ("nan", json.dumps(hand(POINTS)).replace("0.5", "NaN", 1)),
    ("infinity", json.dumps(hand(POINTS)).replace("0.5", "-Infinity", 1)),
    ("overflow-to-inf", json.dumps(hand(POINTS)).replace("0.5", "1e400", 1)),
    ("huge", json.dumps(hand(POINTS)).replace("0.5", "1e300", 1)),
    ("huge-int", json.dumps(hand(POINTS)).replace("0.5", "9" * 4000, 1)),
    ("handedness", json.dumps({"hands": [{"handedness": "Middle", "landmarks": POINTS}]})),
    ("score", json.dumps(hand(POINTS, score=7))),
    ("huge-int-score", json.dumps(hand(POINTS, score=10**400))),
    ("five-hands", json.dumps({"hands": hand()["hands"] * 5})),
    ("deep-nesting", '{"hands": ' + deep(100_000) + "}"),
    ("session-too-long", json.dumps({**hand(), "session": "s" * 65})),
]


@pytest.mark.parametrize(("name", "text"), BAD_LANDMARKS, ids=[b[0] for b in BAD_LANDMARKS])
async def test_bad_landmarks_over_http(client: Client, name: str, text: str) -> None:
    await expect_error(
        await client.post("/api/landmarks", data=text, headers={"Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    await still_serves(client)


WS_BAD_LANDMARKS = [b for b in BAD_LANDMARKS if b[0] != "session-too-long"]  # no session on the WebSocket


@pytest.mark.parametrize(("name", "text"), WS_BAD_LANDMARKS, ids=[b[0] for b in WS_BAD_LANDMARKS])
async def test_bad_landmarks_over_websocket(text_client: Client, name: str, text: str) -> None:
    client = text_client
    if text.startswith("{"):
        text = '{"type": "landmarks", ' + text[1:]
    async with websockets.connect(ws_url(client)) as ws:
        await ws.send(text)
        answer = json.loads(await ws.recv())
        assert (answer["type"], answer["code"]) == ("error", "bad_request"), answer
        await ws.send(json.dumps({"type": "landmarks", **GOOD_HANDS}))  # the connection stays open
        assert json.loads(await ws.recv())["type"] == "result"
    await still_serves(client)


async def test_landmarks_body_over_its_limit_is_413(client: Client) -> None:
    body = json.dumps({**hand(), "padding": "x" * 300_000})
    await expect_error(await client.post("/api/landmarks", data=body), 413, "frame_too_large")
    await still_serves(client)


async def test_landmarks_body_not_utf8_is_400(client: Client) -> None:
    await expect_error(await client.post("/api/landmarks", data=b'{"hands": "\xff\xfe"}'), 400, "bad_request")
    await still_serves(client)


# ------------------------------------------------------------------ WebSocket messages


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "",
        "{}",
        '{"type": null}',
        '{"type": "teleport"}',
        '{"type": "HELLO"}',
        '{"type": "hello", "mirrored": "yes"}',
        '{"type": ["hello"]}',
        '"hello"',
        deep(10_000),
    ],
)
async def test_websocket_text_garbage_is_bad_request_and_the_connection_stays(text_client: Client, text: str) -> None:
    client = text_client
    async with websockets.connect(ws_url(client)) as ws:
        await ws.send(text)
        answer = json.loads(await ws.recv())
        assert (answer["type"], answer["code"]) == ("error", "bad_request")
        await ws.send(JPEG)
        assert (json.loads(await ws.recv())["seq"]) == 1
    await still_serves(client)


async def test_websocket_text_over_its_limit_is_refused_and_the_connection_stays(text_client: Client) -> None:
    client = text_client
    async with websockets.connect(ws_url(client), max_size=None) as ws:
        await ws.send('{"type": "hello", "x": "' + "x" * 300_000 + '"}')
        answer = json.loads(await ws.recv())
        assert (answer["type"], answer["code"]) == ("error", "frame_too_large")
        await ws.send(JPEG)
        assert json.loads(await ws.recv())["type"] == "result"
    await still_serves(client)


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_websocket_frame_one_byte_over_closes_1009(client: Client, compression: str | None) -> None:
    async with websockets.connect(ws_url(client), compression=compression, max_size=None) as ws:
        await ws.send(JPEG + b"\x00" * (LIMIT - len(JPEG)))
        assert json.loads(await ws.recv())["type"] == "result"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await send_then_receive(ws, JPEG + b"\x00" * (LIMIT + 1 - len(JPEG)))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert held(client) == (0, 0)
    await still_serves(client)


async def test_a_fragmented_frame_is_reassembled_and_limited_as_a_whole(client: Client, model: FakeModel) -> None:
    async with websockets.connect(ws_url(client)) as ws:
        await ws.send([JPEG[:50], JPEG[50:]])  # two fragments, one message
        assert json.loads(await ws.recv())["seq"] == 1
        assert model.seen[-1][2] == len(JPEG)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            # Every fragment is small; the message is over the limit.
            await send_then_receive(ws, [JPEG] + [b"\x00" * 1000] * 4)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    await still_serves(client)


async def test_a_burst_is_answered_or_counted_as_dropped(client: Client, model: FakeModel) -> None:
    model.gate = asyncio.Event()
    sent = 40
    async with websockets.connect(ws_url(client)) as ws:
        for _ in range(sent):
            await ws.send(JPEG)
        await ws.send(json.dumps({"type": "landmarks", "hands": []}))
        assert json.loads(await ws.recv())["seq"] is None  # every frame has been read by now
        model.gate.set()
        answers = []
        async with asyncio.timeout(10):
            while not answers or answers[-1]["seq"] != sent:
                answers.append(json.loads(await ws.recv()))
    assert all(a["type"] == "result" for a in answers)
    assert len(answers) + sum(a["dropped"] for a in answers) == sent
    assert len(answers) == 2  # the first, then only the newest
    assert held(client) == (0, 0)
    await still_serves(client)


# ------------------------------------------------------------------ clients that vanish, stall or never read


async def test_client_that_disconnects_mid_frame_releases_everything(client: Client, model: WatchedModel) -> None:
    model.gate = asyncio.Event()
    ws = await websockets.connect(ws_url(client))
    await ws.send(JPEG)
    await asyncio.wait_for(model.started.wait(), 10)
    await ws.send(JPEG)  # one more waiting behind it
    await ws.send(json.dumps({"type": "landmarks", "hands": []}))
    await ws.recv()
    ws.transport.abort()  # vanish without a close frame
    async with asyncio.timeout(10):
        await model.ended_event.wait()
    model.gate.set()
    assert held(client) == (0, 0)
    assert client.server.app[keys.CONNECTIONS] == set()
    await still_serves(client)


def ws_handshake(host: str, port: int, *, rcvbuf: int | None = None) -> socket.socket:
    """A raw WebSocket client: handshake done, then it does only what the test tells it to."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, declared: int | None = None) -> bytes:
    length = len(payload) if declared is None else declared
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", length)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_client_that_stops_mid_message_releases_everything(client: Client, model: WatchedModel) -> None:
    def run() -> None:
        with ws_handshake(client.host, client.port) as sock:
            # A frame header promising 4000 bytes, 100 of them sent, then the socket goes away.
            sock.sendall(masked_frame(2, JPEG, declared=4000))

    await asyncio.to_thread(run)
    async with asyncio.timeout(10):
        await model.ended_event.wait()
    assert model.seen == []
    assert held(client) == (0, 0)
    await still_serves(client)


async def test_client_that_never_reads_is_cut_off_by_the_send_timeout(aiohttp_client: Any) -> None:
    # Huge answers (200 fake hands, ~400 KB each) fill the socket buffers after a few frames even
    # on loopback, whose kernel buffers are generous; the client never reads.
    hands = tuple(
        Hand(
            handedness=Handedness.RIGHT,
            score=0.9,
            landmarks=((0.123456, 0.654321, 0.0),) * 21,
            world_landmarks=((0.01, 0.02, 0.03),) * 21,
        )
        for _ in range(200)
    )
    model = WatchedModel(hands=hands)
    client = await start(aiohttp_client, model, ws_send_timeout_s=0.5, ws_heartbeat_s=0)
    stop = asyncio.Event()

    def run() -> int:
        sent = 0
        with ws_handshake(client.host, client.port, rcvbuf=4096) as sock:
            # A partial send would break the framing, so sends block (bounded) and any failure
            # (the server cut the connection) ends the loop.
            sock.settimeout(5)
            frame = masked_frame(2, JPEG)
            while not stop.is_set():
                try:
                    sock.sendall(frame)
                except OSError:
                    break
                sent += 1
        return sent

    sender = asyncio.create_task(asyncio.to_thread(run))
    try:
        async with asyncio.timeout(30):
            await model.ended_event.wait()  # the server gave up on the connection and cleaned up
    finally:
        stop.set()
    sent = await sender
    assert sent > 0
    assert held(client) == (0, 0)
    assert client.server.app[keys.CONNECTIONS] == set()
    await still_serves(client)


async def test_a_peer_that_never_answers_pings_is_closed(aiohttp_client: Any) -> None:
    model = WatchedModel()
    client = await start(aiohttp_client, model, ws_heartbeat_s=0.2)

    def run() -> bytes:
        received = b""
        with ws_handshake(client.host, client.port) as sock:
            # Read (so the server's writes go through) but never send a pong.
            while chunk := sock.recv(4096):
                received += chunk
        return received

    received = await asyncio.wait_for(asyncio.to_thread(run), 30)
    assert received[:1] == b"\x89"  # the server pinged first, then gave up and closed
    async with asyncio.timeout(10):
        await model.ended_event.wait()
    await still_serves(client)


async def test_an_idle_websocket_is_closed_1001(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, WatchedModel(), ws_idle_timeout_s=0.3, ws_heartbeat_s=0)
    async with websockets.connect(ws_url(client)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    await still_serves(client)


async def test_many_half_open_connections_do_not_hold_frames(client: Client, model: WatchedModel) -> None:
    # 20 clients each start a frame and vanish; nothing is left held and the server still works.
    def run() -> None:
        for _ in range(20):
            with ws_handshake(client.host, client.port) as sock:
                sock.sendall(masked_frame(2, JPEG, declared=3000))

    await asyncio.to_thread(run)
    await still_serves(client)
    assert [size for _, _, size in model.seen] == [len(JPEG)] * 2  # only still_serves' own frames
    assert held(client) == (0, 0)
