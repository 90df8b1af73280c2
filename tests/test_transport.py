"""Both transports against a fake model: the contract's errors, limits, backpressure and access.

The fake model answers instantly or when a test opens its gate, so these tests show ordering
and bounds without the real model. The real model is exercised in test_model_real.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.errors import ModelUnavailable
from tests.conftest import FakeModel, FakeRecognizer, client_ws_url, expect_error, make_config

LIMIT = 4096
JPEG = b"\xff\xd8\xff" + b"\x00" * 100

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


@pytest.fixture
async def client(aiohttp_client: Any, model: FakeModel) -> Client:
    config = make_config(frames={"max_bytes": LIMIT, "multipart_overhead_bytes": 512})
    app = create_app(config, model=model, recognizer=FakeRecognizer())
    result: Client = await aiohttp_client(app)
    return result


async def start(aiohttp_client: Any, model: FakeModel, **tables: dict[str, Any]) -> Client:
    config = make_config(**{"frames": {"max_bytes": LIMIT}, **tables})
    result: Client = await aiohttp_client(create_app(config, model=model, recognizer=FakeRecognizer()))
    return result


# ------------------------------------------------------------------ HTTP


async def test_health_and_memory_answer_before_any_frame(client: Client, model: FakeModel) -> None:
    assert (await client.get("/healthz")).status == 200
    memory = await (await client.get("/api/memory")).json()
    assert memory["model_loaded"] is False
    assert [p["role"] for p in memory["processes"]] == ["server"]
    assert memory["rss_mb"] == pytest.approx(sum(p["rss_mb"] for p in memory["processes"]), abs=0.2)
    assert memory["limit_mb"] == 512
    assert memory["frames_processed"] == 0
    assert set(memory["system"]) == {"total_mb", "available_mb", "percent"}
    assert model.seen == []


async def test_frame_gets_a_result(client: Client, model: FakeModel) -> None:
    response = await client.post("/api/frame", data=JPEG, headers={"Content-Type": "image/jpeg"})
    assert response.status == 200
    body = await response.json()
    assert body["type"] == "result"
    assert body["seq"] is None
    assert body["hands"] == []
    assert body["sign"] is None
    assert set(body["timings_ms"]) >= {"decode", "inference", "total"}
    assert model.seen == [(None, False, len(JPEG))]


async def test_exactly_the_limit_is_accepted_and_one_byte_over_is_413(client: Client, model: FakeModel) -> None:
    assert (await client.post("/api/frame", data=JPEG + b"\x00" * (LIMIT - len(JPEG)))).status == 200
    await expect_error(await client.post("/api/frame", data=b"\x00" * (LIMIT + 1)), 413, "frame_too_large")
    assert [size for _, _, size in model.seen] == [LIMIT]


async def test_chunked_body_over_the_limit_is_413(client: Client, model: FakeModel) -> None:
    async def chunks() -> Any:
        for _ in range(LIMIT // 1000 + 2):
            yield b"\x00" * 1000

    await expect_error(await client.post("/api/frame", data=chunks()), 413, "frame_too_large")
    assert model.seen == []


async def test_multipart_field_frame(client: Client, model: FakeModel) -> None:
    form = aiohttp.FormData()
    form.add_field("note", "hello")
    form.add_field("frame", JPEG, filename="f.jpg", content_type="image/jpeg")
    assert (await client.post("/api/frame?mirrored=1", data=form)).status == 200
    assert model.seen == [(None, True, len(JPEG))]


async def test_multipart_without_the_field_is_bad_request(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("image", JPEG, filename="f.jpg", content_type="image/jpeg")
    body = await expect_error(await client.post("/api/frame", data=form), 400, "bad_request")
    assert "frame" in body["message"]


async def test_multipart_frame_over_the_limit_is_413(client: Client) -> None:
    form = aiohttp.FormData()
    form.add_field("frame", b"\x00" * (LIMIT + 1), filename="f.jpg", content_type="image/jpeg")
    await expect_error(await client.post("/api/frame", data=form), 413, "frame_too_large")


async def test_model_errors_map_to_their_status(client: Client, model: FakeModel) -> None:
    model.fail_with = ModelUnavailable("the model worker stopped")
    await expect_error(await client.post("/api/frame", data=JPEG), 503, "model_unavailable")


async def test_bad_query_values_are_bad_requests(client: Client) -> None:
    await expect_error(await client.post("/api/frame?mirrored=perhaps", data=JPEG), 400, "bad_request")
    await expect_error(await client.post("/api/frame?session=" + "x" * 100, data=JPEG), 400, "bad_request")


async def test_unknown_paths_and_methods_answer_contract_json(client: Client) -> None:
    await expect_error(await client.get("/nope"), 404, "not_found")
    response = await client.get("/api/frame")
    await expect_error(response, 400, "bad_request")
    assert response.headers["Allow"] == "POST"


async def test_landmarks_endpoint_echoes_hands(client: Client) -> None:
    hand = {"handedness": "Left", "landmarks": [[0.5, 0.5, 0.0]] * 21}
    body = await (await client.post("/api/landmarks", json={"hands": [hand]})).json()
    assert body["type"] == "result"
    assert (body["seq"], body["width"], body["height"]) == (None, None, None)
    assert body["hands"][0]["handedness"] == "Left"
    assert "total" in body["timings_ms"]
    await expect_error(await client.post("/api/landmarks", data=b"{nope"), 400, "bad_request")
    await expect_error(await client.post("/api/landmarks", data=b"{}" + b" " * 300_000), 413, "frame_too_large")


async def test_metrics_are_prometheus_text(client: Client) -> None:
    await client.post("/api/frame", data=JPEG)
    await client.post("/api/frame", data=b"\x00" * (LIMIT + 1))
    text = await (await client.get("/metrics")).text()
    assert 'signwire_frames_total{transport="http"} 1.0' in text
    assert 'signwire_errors_total{code="frame_too_large",transport="http"} 1.0' in text
    assert 'signwire_stage_seconds_bucket{le="0.0005",stage="decode"}' in text
    assert "signwire_rss_bytes " in text
    assert "signwire_worker_restarts_total" in text or "signwire_worker_restarts" in text
    assert "signwire_dropped_frames_total 0.0" in text


# ------------------------------------------------------------------ access


async def test_foreign_origin_is_forbidden_on_http_and_ws(aiohttp_client: Any, model: FakeModel) -> None:
    client = await start(aiohttp_client, model)
    await expect_error(
        await client.post("/api/frame", data=JPEG, headers={"Origin": "https://evil.example"}), 403, "forbidden"
    )
    await expect_error(await client.get("/ws", headers={"Origin": "http://localhost.evil.com"}), 403, "forbidden")
    own = f"http://{client.host}:{client.port}"
    assert (await client.post("/api/frame", data=JPEG, headers={"Origin": own})).status == 200
    assert (await client.post("/api/frame", data=JPEG, headers={"Origin": "http://localhost:5173"})).status == 200


async def test_token_is_required_on_ws_and_api_only(aiohttp_client: Any, model: FakeModel) -> None:
    client = await start(aiohttp_client, model, server={"token": "s3cret"})
    await expect_error(await client.post("/api/frame", data=JPEG), 401, "unauthorized")
    await expect_error(await client.get("/api/memory"), 401, "unauthorized")
    await expect_error(
        await client.post("/api/frame", data=JPEG, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized"
    )
    ok = await client.post("/api/frame", data=JPEG, headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    assert (await client.get("/healthz")).status == 200
    await expect_error(await client.get("/ws"), 401, "unauthorized")
    async with websockets.connect(client_ws_url(client) + "?token=s3cret") as ws:
        await ws.send(JPEG)
        assert json.loads(await ws.recv())["type"] == "result"


# ------------------------------------------------------------------ WebSocket


async def test_ws_answers_each_frame_with_its_seq(client: Client, model: FakeModel) -> None:
    async with websockets.connect(client_ws_url(client)) as ws:
        for seq in (1, 2, 3):
            await ws.send(JPEG)
            answer = json.loads(await ws.recv())
            assert (answer["type"], answer["seq"], answer["dropped"]) == ("result", seq, 0)


async def test_ws_keeps_only_the_newest_waiting_frame(client: Client, model: FakeModel) -> None:
    model.gate = asyncio.Event()
    async with websockets.connect(client_ws_url(client)) as ws:
        await ws.send(JPEG)  # seq 1 goes to the model and waits at the gate
        await asyncio.wait_for(model.started.wait(), 5)
        for _ in range(4):  # seqs 2-5 arrive while 1 is in flight
            await ws.send(JPEG)
        await ws.send(json.dumps({"type": "landmarks", "hands": []}))
        # The landmarks answer proves the reader has taken in every frame before it.
        assert json.loads(await ws.recv())["seq"] is None
        model.gate.set()
        first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
    assert (first["seq"], first["dropped"]) == (1, 0)
    assert (second["seq"], second["dropped"]) == (5, 3)
    assert len(model.seen) == 2


async def test_ws_frame_of_exactly_the_limit_is_accepted_and_one_over_closes_1009(client: Client) -> None:
    for compression in (None, "deflate"):
        async with websockets.connect(client_ws_url(client), compression=compression, max_size=None) as ws:
            await ws.send(JPEG + b"\x00" * (LIMIT - len(JPEG)))
            assert json.loads(await ws.recv())["type"] == "result"
            await ws.send(JPEG + b"\x00" * (LIMIT + 1 - len(JPEG)))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009, compression


async def test_ws_text_messages(client: Client, model: FakeModel) -> None:
    async with websockets.connect(client_ws_url(client)) as ws:
        await ws.send(json.dumps({"type": "hello", "mirrored": True}))
        await ws.send(JPEG)
        assert json.loads(await ws.recv())["seq"] == 1
        assert model.seen[-1][1] is True
        await ws.send("garbage")
        error = json.loads(await ws.recv())
        assert (error["type"], error["code"]) == ("error", "bad_request")
        await ws.send(json.dumps({"type": "teleport"}))
        assert json.loads(await ws.recv())["code"] == "bad_request"
        session_before = model.seen[-1][0]
        await ws.send(json.dumps({"type": "reset"}))
        await ws.send(JPEG)
        assert json.loads(await ws.recv())["seq"] == 2  # still open, seq keeps counting
        assert model.ended == [session_before]
        assert model.seen[-1][0] != session_before


async def test_ws_error_answers_carry_the_seq(client: Client, model: FakeModel) -> None:
    model.fail_with = ModelUnavailable("gone")
    async with websockets.connect(client_ws_url(client)) as ws:
        await ws.send(JPEG)
        answer = json.loads(await ws.recv())
    assert (answer["type"], answer["code"], answer["seq"]) == ("error", "model_unavailable", 1)


async def test_two_connections_never_share_a_session(client: Client, model: FakeModel) -> None:
    async with websockets.connect(client_ws_url(client)) as a, websockets.connect(client_ws_url(client)) as b:
        await a.send(JPEG)
        await a.recv()
        await b.send(JPEG)
        await b.recv()
    assert model.seen[0][0] != model.seen[1][0]
    assert set(model.ended) == {model.seen[0][0], model.seen[1][0]}


async def test_connection_cap_answers_busy_with_retry_after(aiohttp_client: Any, model: FakeModel) -> None:
    client = await start(aiohttp_client, model, server={"max_connections": 1})
    async with websockets.connect(client_ws_url(client)) as ws:
        await ws.send(JPEG)
        await ws.recv()
        response = await client.get(
            "/ws",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
            },
        )
        await expect_error(response, 429, "busy")
        assert int(response.headers["Retry-After"]) >= 1


async def test_frame_budget_answers_busy_instead_of_queueing(aiohttp_client: Any, model: FakeModel) -> None:
    # Room for one frame held server-wide: a second connection's frame is refused, not queued.
    client = await start(aiohttp_client, model, frames={"max_bytes": LIMIT, "max_pending_bytes": len(JPEG)})
    model.gate = asyncio.Event()
    async with websockets.connect(client_ws_url(client)) as a, websockets.connect(client_ws_url(client)) as b:
        await a.send(JPEG)
        await asyncio.wait_for(model.started.wait(), 5)
        await b.send(JPEG)
        refused = json.loads(await b.recv())
        assert (refused["code"], refused["seq"]) == ("busy", 1)
        model.gate.set()
        assert json.loads(await a.recv())["type"] == "result"
        await b.send(JPEG)
        assert json.loads(await b.recv())["type"] == "result"
