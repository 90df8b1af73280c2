"""The sign endpoints over real HTTP (``aiohttp_client``) with the server's error middleware."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.config import Config
from server.messages import parse_hands
from server.metrics import Metrics
from server.signs import Recognizer, SignsConfig, open_recognizer
from server.signs.features import points_from_keypoints
from server.signs.train import DEFAULT_FIXTURES, load_gestures
from server.transport import keys
from server.transport.http import error_middleware
from server.transport.signs import add_sign_routes

RECOGNIZER = web.AppKey("test_recognizer", Recognizer)


def _hand_json(row: np.ndarray, handedness: str = "Right") -> dict[str, Any]:
    pts = points_from_keypoints(row[None])[0] * 0.2 + np.array([0.5, 0.5, 0.0])
    return {"handedness": handedness, "landmarks": [[float(x), float(y), float(z)] for x, y, z in pts]}


def recognizer_hands(row: np.ndarray) -> list[Any]:
    return list(parse_hands({"hands": [_hand_json(row)]}))


@pytest.fixture(scope="module")
def gesture_rows() -> dict[str, np.ndarray]:
    names, idx, keypoints = load_gestures(DEFAULT_FIXTURES)
    return {name: keypoints[idx == g] for g, name in enumerate(names)}


async def _client(aiohttp_client: Any, tmp_path: Path, **signs: Any) -> tuple[TestClient[Any, Any], Recognizer]:
    config = Config(signs=SignsConfig(db_path=str(tmp_path / "signs.sqlite3"), **signs))
    app = web.Application(middlewares=[error_middleware])
    app[keys.CONFIG] = config
    app[keys.METRICS] = Metrics()
    recognizer = open_recognizer(config.signs)
    app[RECOGNIZER] = recognizer

    async def close(app: web.Application) -> AsyncIterator[None]:
        yield
        recognizer.close()

    app.cleanup_ctx.append(close)
    add_sign_routes(app, RECOGNIZER)
    return await aiohttp_client(app), recognizer


async def _error(response: Any, status: int, code: str) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["type"] == "error", body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["message"])


async def test_list_teach_recognise_forget(aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any]) -> None:
    client, recognizer = await _client(aiohttp_client, tmp_path)
    listed = await (await client.get("/api/signs")).json()
    assert len(listed["signs"]) == 24
    assert listed["signs"][0] == {"label": "A", "source": "builtin", "examples": 300}

    rows = gesture_rows["Close"]
    one = await client.post("/api/signs/fist/examples", json={"hands": [_hand_json(rows[0])]})
    assert one.status == 200
    assert await one.json() == {"label": "fist", "examples": 1}
    many = {"examples": [{"hands": [_hand_json(r)]} for r in rows[1:10]]}
    resp = await client.post("/api/signs/fist/examples", json=many)
    assert await resp.json() == {"label": "fist", "examples": 10}
    sign = recognizer.classify(recognizer_hands(rows[20]))  # the very next frame
    assert sign is not None
    assert sign.label == "fist"
    listed = await (await client.get("/api/signs")).json()
    assert {"label": "fist", "source": "taught", "examples": 10} in listed["signs"]

    gone = await client.delete("/api/signs/fist")
    assert gone.status == 200
    assert await gone.json() == {"label": "fist", "deleted": True}
    await _error(await client.delete("/api/signs/fist"), 404, "not_found")
    await _error(await client.delete("/api/signs/B"), 400, "bad_request")


async def test_mirrored_query_flag_is_accepted(
    aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any]
) -> None:
    client, _ = await _client(aiohttp_client, tmp_path)
    resp = await client.post(
        "/api/signs/wave/examples?mirrored=1", json={"hands": [_hand_json(gesture_rows["Open"][0])]}
    )
    assert resp.status == 200
    await _error(await client.post("/api/signs/wave/examples?mirrored=maybe", json={"hands": []}), 400, "bad_request")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/signs/A/examples", None),  # a built-in label
        ("/api/signs/has%20space/examples", None),
        ("/api/signs/" + "x" * 33 + "/examples", None),
        ("/api/signs/ok/examples", {"hands": []}),  # no hand to learn from
        ("/api/signs/ok/examples", {"examples": []}),
        ("/api/signs/ok/examples", {"examples": "nope"}),
        ("/api/signs/ok/examples", {"hands": [{"handedness": "Right", "landmarks": [[0.1, 0.2]] * 20}]}),
        ("/api/signs/ok/examples", {"hands": [{"handedness": "Up", "landmarks": [[0.1, 0.2]] * 21}]}),
        ("/api/signs/ok/examples", {"hands": [{"handedness": "Right", "landmarks": [[0.1, "y"]] * 21}]}),
        ("/api/signs/ok/examples", [1, 2, 3]),
    ],
)
async def test_bad_teach_requests(
    aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any], path: str, body: Any
) -> None:
    client, recognizer = await _client(aiohttp_client, tmp_path)
    payload = body if body is not None else {"hands": [_hand_json(gesture_rows["Open"][0])]}
    await _error(await client.post(path, json=payload), 400, "bad_request")
    assert all(s["source"] == "builtin" for s in recognizer.list_signs())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_values_are_bad_requests(
    aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any], constant: str
) -> None:
    client, _ = await _client(aiohttp_client, tmp_path)
    text = json.dumps({"hands": [_hand_json(gesture_rows["Open"][0])]}).replace("0.5", constant, 1)
    assert constant in text
    resp = await client.post("/api/signs/ok/examples", data=text, headers={"Content-Type": "application/json"})
    await _error(resp, 400, "bad_request")


async def test_oversized_bodies_are_413(aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any]) -> None:
    client, _ = await _client(aiohttp_client, tmp_path, max_body_bytes=2000)
    big = {"examples": [{"hands": [_hand_json(gesture_rows["Open"][i])]} for i in range(5)]}
    await _error(await client.post("/api/signs/ok/examples", json=big), 413, "frame_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: cut off while reading
        for _ in range(10):
            yield b" " * 500

    await _error(await client.post("/api/signs/ok/examples", data=chunks()), 413, "frame_too_large")


async def test_too_many_examples_in_one_request(
    aiohttp_client: Any, tmp_path: Path, gesture_rows: dict[str, Any]
) -> None:
    client, _ = await _client(aiohttp_client, tmp_path, max_examples_per_request=3)
    body = {"examples": [{"hands": [_hand_json(gesture_rows["Open"][i])]} for i in range(4)]}
    message = await _error(await client.post("/api/signs/ok/examples", json=body), 400, "bad_request")
    assert "at most 3" in message
