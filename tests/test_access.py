"""Who may connect: Origin rules, the token, CORS, per-IP connection and frame-rate limits.

Pure decisions (``access.py``, ``limits.py``) are tested as functions; what the transports do
with them runs against the real application with a fake model on a loopback port, through
independent clients (aiohttp's client for HTTP, ``websockets`` for the WebSocket).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.errors import Busy, Forbidden, Unauthorized
from server.transport.access import check_host, check_origin, check_token
from server.transport.limits import ClientLimits
from tests.conftest import FakeModel, FakeRecognizer, client_ws_url, expect_error, make_config

JPEG = b"\xff\xd8\xff" + b"\x00" * 100
OWN = "http://127.0.0.1:8000"

Client = TestClient[web.Request, web.Application]


# ------------------------------------------------------------------ Origin (pure)


@pytest.mark.parametrize(
    "origin",
    [
        None,  # not a browser
        OWN,
        OWN + "/",
        "HTTP://127.0.0.1:8000",
        "http://localhost:5173",
        "https://localhost",
        "http://127.0.0.1:9999",
        "http://[::1]:8080",
        "https://partner.example",  # listed below
    ],
)
def test_allowed_origins(origin: str | None) -> None:
    check_origin(origin, own_origin=OWN, allowed=("https://partner.example/",), allow_localhost=True)


@pytest.mark.parametrize(
    "origin",
    [
        "null",  # sandboxed iframes, file:// pages, redirects
        "http://localhost.evil.com",
        "http://localhost.evil.com:8000",
        "http://127.0.0.1.nip.io:8000",
        "http://evil.com#@localhost",
        "http://localhost@evil.com",
        "http://evil.example",
        "https://partner.example.evil.com",
        "https://partner.example:8443",
        "ws://localhost:8000",
        "file://",
        "http://[::2]:8000",
        "",
        "http://",
        "http://[not-an-ip",
    ],
)
def test_foreign_and_look_alike_origins_are_forbidden(origin: str) -> None:
    with pytest.raises(Forbidden):
        check_origin(origin, own_origin=OWN, allowed=("https://partner.example",), allow_localhost=True)


def test_localhost_can_be_switched_off() -> None:
    with pytest.raises(Forbidden):
        check_origin("http://localhost:5173", own_origin=OWN, allowed=(), allow_localhost=False)
    check_origin(OWN, own_origin=OWN, allowed=(), allow_localhost=False)


# ------------------------------------------------------------------ token (pure)


@pytest.mark.parametrize(
    ("authorization", "query"),
    [("Bearer s3cret", None), ("bearer s3cret", None), ("BEARER  s3cret ", None), (None, "s3cret")],
)
def test_token_accepted(authorization: str | None, query: str | None) -> None:
    check_token("s3cret", authorization, query)


@pytest.mark.parametrize(
    ("authorization", "query"),
    [
        (None, None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer s3cre", None),
        ("Bearer s3cret2", None),
        ("Basic s3cret", None),
        ("s3cret", None),
        ("Bearer wrong", "s3cret"),  # a wrong header is not rescued by the query
        (None, "S3CRET"),
        ("Bearer sécret", None),
    ],
)
def test_token_refused(authorization: str | None, query: str | None) -> None:
    with pytest.raises(Unauthorized) as refused:
        check_token("s3cret", authorization, query)
    assert "s3cret" not in str(refused.value)


def test_no_token_configured_lets_everyone_in() -> None:
    check_token("", None, None)


# ------------------------------------------------------------------ limits (pure)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_allows_a_one_second_burst_then_refills() -> None:
    clock = FakeClock()
    limits = ClientLimits(max_connections_per_ip=1, frames_per_s=5, clock=clock)
    for _ in range(5):
        limits.take_frame("10.0.0.1")
    with pytest.raises(Busy) as busy:
        limits.take_frame("10.0.0.1")
    assert busy.value.retry_after_s == 1
    limits.take_frame("10.0.0.2")  # another client has its own budget
    clock.now += 0.2  # one frame's worth
    limits.take_frame("10.0.0.1")
    with pytest.raises(Busy):
        limits.take_frame("10.0.0.1")
    clock.now += 60  # a long pause refills to the burst, not beyond
    for _ in range(5):
        limits.take_frame("10.0.0.1")
    with pytest.raises(Busy):
        limits.take_frame("10.0.0.1")


def test_slow_rates_ask_for_a_longer_wait() -> None:
    clock = FakeClock()
    limits = ClientLimits(max_connections_per_ip=1, frames_per_s=0.25, clock=clock)
    limits.take_frame("a")
    with pytest.raises(Busy) as busy:
        limits.take_frame("a")
    assert busy.value.retry_after_s == 4


def test_rate_zero_disables_the_limit() -> None:
    limits = ClientLimits(max_connections_per_ip=1, frames_per_s=0, clock=FakeClock())
    for _ in range(10_000):
        limits.take_frame("a")
    assert limits.tracked_ips == 0


def test_rate_buckets_are_bounded() -> None:
    limits = ClientLimits(max_connections_per_ip=1, frames_per_s=1, clock=FakeClock(), max_tracked_ips=100)
    for i in range(10_000):
        limits.take_frame(f"10.0.{i // 256}.{i % 256}")
    assert limits.tracked_ips == 100


def test_connections_per_ip_are_counted_and_forgotten() -> None:
    limits = ClientLimits(max_connections_per_ip=2, frames_per_s=0)
    limits.open_connection("a")
    limits.open_connection("a")
    with pytest.raises(Busy) as busy:
        limits.open_connection("a")
    assert busy.value.retry_after_s >= 1
    limits.open_connection("b")
    limits.close_connection("a")
    limits.open_connection("a")
    for _ in range(2):
        limits.close_connection("a")
    assert limits.connections("a") == 0


# ------------------------------------------------------------------ Host (pure)


@pytest.mark.parametrize(
    ("host", "allowed", "bound"),
    [
        ("127.0.0.1:8000", (), "127.0.0.1"),
        ("localhost:8000", (), "127.0.0.1"),
        ("LOCALHOST", (), "localhost"),
        ("[::1]:8000", (), "::1"),
        ("evil.example:8000", (), "0.0.0.0"),  # bound to every interface: any name, as before
        ("signwire.example", ("signwire.example",), "127.0.0.1"),  # a reverse proxy's name
        ("Signwire.Example:443", ("signwire.example",), "0.0.0.0"),
        ("anything.example", ("*",), "127.0.0.1"),
    ],
)
def test_allowed_hosts(host: str, allowed: tuple[str, ...], bound: str) -> None:
    check_host(host, allowed=allowed, bound_host=bound)


@pytest.mark.parametrize(
    ("host", "allowed", "bound"),
    [
        ("evil.example:8000", (), "127.0.0.1"),  # DNS rebinding onto a loopback server
        ("127.0.0.1.nip.io:8000", (), "127.0.0.1"),
        ("localhost.evil.example", (), "localhost"),
        (None, (), "127.0.0.1"),
        ("", (), "127.0.0.1"),
        ("[::1", (), "127.0.0.1"),  # malformed: refused, never a 500
        ("localhost:8000", ("signwire.example",), "127.0.0.1"),  # a list replaces the default
        ("evil.example", ("signwire.example",), "0.0.0.0"),
    ],
)
def test_refused_hosts(host: str | None, allowed: tuple[str, ...], bound: str) -> None:
    with pytest.raises(Forbidden, match=r"server\.allowed_hosts"):
        check_host(host, allowed=allowed, bound_host=bound)


# ------------------------------------------------------------------ through the app


async def start(aiohttp_client: Any, model: FakeModel | None = None, **server: Any) -> Client:
    config = make_config(frames={"max_bytes": 4096}, server=server)
    app = create_app(config, model=model or FakeModel(), recognizer=FakeRecognizer())
    client: Client = await aiohttp_client(app)
    return client


async def test_allowed_cross_origin_is_echoed_never_wildcard(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, allowed_origins=["https://partner.example"])
    response = await client.post("/api/frame", data=JPEG, headers={"Origin": "https://partner.example"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    # Errors are readable by the allowed page too.
    error = await client.post("/api/landmarks", data=b"{", headers={"Origin": "https://partner.example"})
    await expect_error(error, 400, "bad_request")
    assert error.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    # Without an Origin there is nothing to echo, but caches still learn that answers vary by it.
    plain = await client.get("/api/memory")
    assert "Access-Control-Allow-Origin" not in plain.headers
    assert "Origin" in plain.headers["Vary"]
    for path in ("/api/memory", "/healthz", "/metrics"):
        response = await client.get(path, headers={"Origin": "https://partner.example"})
        assert response.headers.get("Access-Control-Allow-Origin") != "*"


async def test_foreign_origin_gets_403_and_no_cors_headers(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client)
    for origin in ("null", "http://localhost.evil.com", "https://evil.example"):
        response = await client.post("/api/frame", data=JPEG, headers={"Origin": origin})
        await expect_error(response, 403, "forbidden")
        assert "Access-Control-Allow-Origin" not in response.headers
        await expect_error(await client.get("/ws", headers={"Origin": origin}), 403, "forbidden")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(client_ws_url(client), origin=websockets.Origin("http://localhost.evil.com")):
            pass
    assert refused.value.response.status_code == 403
    assert (await client.post("/api/frame", data=JPEG)).status == 200  # still serving


async def test_a_rebound_host_name_gets_403_on_the_api_and_the_websocket(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client)
    rebound = {"Host": f"evil.example:{client.port}", "Origin": f"http://evil.example:{client.port}"}
    await expect_error(await client.post("/api/frame", data=JPEG, headers=rebound), 403, "forbidden")
    await expect_error(await client.get("/api/memory", headers=rebound), 403, "forbidden")
    await expect_error(await client.get("/ws", headers=rebound), 403, "forbidden")
    # What is not the API stays open (a load balancer's probe names whatever host it likes).
    assert (await client.get("/healthz", headers=rebound)).status == 200
    assert (await client.post("/api/frame", data=JPEG)).status == 200  # still serving its own name


async def test_listed_host_names_replace_the_loopback_default(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, allowed_hosts=["signwire.example"])
    proxied = {"Host": "signwire.example", "Origin": "http://signwire.example"}
    assert (await client.post("/api/frame", data=JPEG, headers=proxied)).status == 200
    await expect_error(await client.post("/api/frame", data=JPEG), 403, "forbidden")


async def test_preflight_answers_methods_and_headers(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, allowed_origins=["https://partner.example"], token="s3cret")
    headers = {
        "Origin": "https://partner.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    # A preflight carries no credentials, so the token is not asked for.
    response = await client.options("/api/frame", headers=headers)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    foreign = await client.options("/api/frame", headers={**headers, "Origin": "https://evil.example"})
    await expect_error(foreign, 403, "forbidden")
    await expect_error(await client.options("/api/nothing-here", headers=headers), 404, "not_found")
    # The real request still needs the token.
    await expect_error(
        await client.post("/api/frame", data=JPEG, headers={"Origin": "https://partner.example"}), 401, "unauthorized"
    )
    ok = await client.post(
        "/api/frame", data=JPEG, headers={"Origin": "https://partner.example", "Authorization": "Bearer s3cret"}
    )
    assert ok.status == 200


async def test_token_is_never_echoed(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, token="tok-0123456789")
    for headers in ({"Authorization": "Bearer tok-0123456789x"}, {}):
        response = await client.get("/api/memory", headers=headers)
        assert response.status == 401
        assert "tok-0123456789" not in await response.text()
    # ?token= is for /ws only (browsers cannot set headers there); an API call must use the header.
    await expect_error(await client.get("/api/memory?token=tok-0123456789"), 401, "unauthorized")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(client_ws_url(client) + "?token=nope"):
            pass
    assert refused.value.response.status_code == 401
    async with websockets.connect(
        client_ws_url(client), additional_headers={"Authorization": "Bearer tok-0123456789"}
    ) as ws:
        await ws.send(JPEG)
        assert json.loads(await ws.recv())["type"] == "result"


async def test_connections_per_ip_answer_busy_with_retry_after(aiohttp_client: Any) -> None:
    client = await start(aiohttp_client, max_connections_per_ip=2)
    async with websockets.connect(client_ws_url(client)) as first, websockets.connect(client_ws_url(client)):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(client_ws_url(client)):
                pass
        response = refused.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert json.loads(response.body or b"{}")["code"] == "busy"
        await first.send(JPEG)  # the open ones are unaffected
        assert json.loads(await first.recv())["type"] == "result"
    # Closing gives the slots back.
    async with websockets.connect(client_ws_url(client)) as again:
        await again.send(JPEG)
        assert json.loads(await again.recv())["type"] == "result"


async def test_frame_rate_per_ip_answers_busy_on_both_transports(aiohttp_client: Any) -> None:
    # 0.001 frames per second: one frame, then the next would be 1000 s away. Deterministic.
    client = await start(aiohttp_client, max_frames_per_s_per_ip=0.001)
    assert (await client.post("/api/frame", data=JPEG)).status == 200
    refused = await client.post("/api/frame", data=JPEG)
    await expect_error(refused, 429, "busy")
    assert int(refused.headers["Retry-After"]) >= 1
    async with websockets.connect(client_ws_url(client)) as ws:
        await ws.send(JPEG)
        answer = json.loads(await ws.recv())
        assert (answer["type"], answer["code"], answer["seq"]) == ("error", "busy", 1)
        # Landmarks are not frames: still answered, and the connection stays open.
        await ws.send(json.dumps({"type": "landmarks", "hands": []}))
        assert json.loads(await ws.recv())["type"] == "result"
    # Health and memory are not rate limited.
    assert (await client.get("/api/memory")).status == 200
