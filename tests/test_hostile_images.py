"""Hostile and odd images against the real server, over both transports.

Every case sends one crafted frame to ``python -m server`` (real MediaPipe worker) by
``POST /api/frame`` (aiohttp's client) and as a WebSocket binary message (``websockets``), checks
the exact status and error code of the contract (or the exact fitted size of a ``result``), and
then checks that the server still answers a real photo with its hand, on the same WebSocket
connection when the contract keeps it open. Decompression bombs are also held to a memory cost
read from ``GET /api/memory`` before and after.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import numpy as np
import pytest
import websockets
from PIL import Image

from tests.conftest import FIXTURES, ServerProcess

pytestmark = pytest.mark.model

MAX_BYTES = 5 * 1024 * 1024
PHOTO = (FIXTURES / "hands" / "open_hand_photo.jpg").read_bytes() if FIXTURES.is_dir() else b""
#: What a bomb may add to the server's tree RSS, measured after it was answered.
BOMB_BUDGET_MB = 20.0


# ------------------------------------------------------------------ image makers


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def gradient(width: int, height: int) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)


def rgb(width: int, height: int) -> Image.Image:
    return Image.fromarray(gradient(width, height), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, rows: int = 1, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose data holds a few zero rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    row_bytes = 1 + min(width, 1 << 16)  # filter byte + pixels (capped: a bomb's data is small)
    idat = zlib.compress(b"\x00" * row_bytes * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_bomb_legal(width: int, height: int) -> bytes:
    """A real, complete PNG of zeros: tiny on the wire, ``width * height`` grey pixels decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def webp_lossless_declaring(width: int, height: int) -> bytes:
    """A real 1x1 lossless WebP with its VP8L header patched to declare ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 8  # chunk tag, chunk size, then the 0x2f signature
    assert data[at] == 0x2F
    bits = int.from_bytes(data[at + 1 : at + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
    data[at + 1 : at + 5] = bits.to_bytes(4, "little")
    return bytes(data)


def webp_extended_declaring(width: int, height: int) -> bytes:
    """A VP8X (extended) WebP whose canvas is ``width`` x ``height`` (24-bit fields, up to 2^24)."""
    inner = encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)[12:]  # the VP8L chunk
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + inner
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real small JPEG with its frame header (SOF0) patched to declare ``width`` x ``height``."""
    data = bytearray(encode(rgb(16, 16), "JPEG"))
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height, width
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_rotated(data: bytes, orientation: int) -> bytes:
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes(), quality=90)


def padded_jpeg(size: int) -> bytes:
    """The photo with bytes after its end-of-image marker, to exactly ``size`` bytes."""
    return PHOTO + b"\x00" * (size - len(PHOTO))


def fit(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, 640 / width, 480 / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _broken_crc() -> bytes:
    data = bytearray(encode(rgb(32, 32), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    return bytes(data)


# (id, bytes, expected): expected is (status, code) for a refusal or ("fit", width, height).
Expectation = tuple[Any, ...]


def refusals() -> list[tuple[str, Callable[[], bytes], Expectation]]:
    photo_w, photo_h = Image.open(io.BytesIO(PHOTO)).size if PHOTO else (1, 1)
    half = PHOTO[: len(PHOTO) // 2]
    return [
        ("empty", lambda: b"", (400, "bad_image")),
        ("random-bytes", lambda: np.random.default_rng(1).bytes(4096), (415, "unsupported_media_type")),
        ("gif", lambda: encode(rgb(32, 32).convert("P"), "GIF"), (415, "unsupported_media_type")),
        ("bmp", lambda: encode(rgb(32, 32), "BMP"), (415, "unsupported_media_type")),
        ("tiff", lambda: encode(rgb(32, 32), "TIFF"), (415, "unsupported_media_type")),
        (
            "svg",
            lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9" height="9e9"/>',
            (415, "unsupported_media_type"),
        ),
        (
            "html",
            lambda: b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
            (415, "unsupported_media_type"),
        ),
        ("json", lambda: b'{"type": "hello"}', (415, "unsupported_media_type")),
        ("jpeg-magic-only", lambda: b"\xff\xd8\xff", (400, "bad_image")),
        (
            "jpeg-magic-then-garbage",
            lambda: b"\xff\xd8\xff\xe0" + np.random.default_rng(2).bytes(2000),
            (400, "bad_image"),
        ),
        ("jpeg-truncated-half", lambda: half, (400, "bad_image")),
        ("png-truncated", lambda: encode(rgb(64, 64), "PNG")[:-40], (400, "bad_image")),
        ("png-header-only", lambda: encode(rgb(64, 64), "PNG")[:33], (400, "bad_image")),
        ("png-broken-crc", _broken_crc, (400, "bad_image")),
        ("png-zero-sized", lambda: png_declaring(0, 0), (400, "bad_image")),
        ("webp-truncated", lambda: encode(rgb(64, 64), "WEBP")[:40], (400, "bad_image")),
        ("webp-riff-only", lambda: b"RIFF\x04\x00\x00\x00WEBP", (400, "bad_image")),
        ("bomb-png-100000-square", lambda: png_declaring(100_000, 100_000), (400, "image_too_large")),
        ("bomb-png-2^31-wide", lambda: png_declaring(2**31 - 1, 1), (400, "image_too_large")),
        ("bomb-png-8193-side", lambda: png_declaring(8193, 1), (400, "image_too_large")),
        ("bomb-png-one-pixel-over", lambda: png_declaring(4001, 4000), (400, "image_too_large")),
        (
            "bomb-png-16-bit-rgba",
            lambda: png_declaring(50_000, 50_000, bit_depth=16, colour=6),
            (400, "image_too_large"),
        ),
        ("bomb-webp-lossless-16384", lambda: webp_lossless_declaring(16384, 16384), (400, "image_too_large")),
        ("bomb-webp-vp8x-2^24", lambda: webp_extended_declaring(2**24, 2**24), (400, "image_too_large")),
        ("bomb-jpeg-65500", lambda: jpeg_declaring(65500, 65500), (400, "image_too_large")),
        ("thin-8193x1", lambda: encode(rgb(8193, 1), "PNG"), (400, "image_too_large")),
        ("ok-photo", lambda: PHOTO, ("fit", *fit(photo_w, photo_h))),
        ("ok-1x1", lambda: encode(rgb(1, 1), "PNG"), ("fit", 1, 1)),
        ("ok-1x1-jpeg", lambda: encode(rgb(1, 1), "JPEG"), ("fit", 1, 1)),
        ("ok-thin-8192x1", lambda: encode(rgb(8192, 1), "PNG"), ("fit", 640, 1)),
        ("ok-tall-1x8192", lambda: encode(rgb(1, 8192), "PNG"), ("fit", 1, 480)),
        ("ok-thin-8192x3-jpeg", lambda: encode(rgb(8192, 3), "JPEG"), ("fit", 640, 1)),
        (
            "ok-png-16-bit-grey",
            lambda: encode(Image.fromarray(gradient(64, 48)[:, :, 0].astype(np.uint16) * 257), "PNG"),
            ("fit", 64, 48),
        ),
        ("ok-png-16-bit-rgb", lambda: _png16_rgb(64, 48), ("fit", 64, 48)),
        ("ok-jpeg-cmyk", lambda: encode(rgb(96, 64).convert("CMYK"), "JPEG"), ("fit", 96, 64)),
        ("ok-jpeg-grey", lambda: encode(rgb(96, 64).convert("L"), "JPEG"), ("fit", 96, 64)),
        ("ok-jpeg-progressive", lambda: encode(rgb(800, 600), "JPEG", progressive=True), ("fit", 640, 480)),
        ("ok-png-rgba", lambda: encode(rgb(64, 48).convert("RGBA"), "PNG"), ("fit", 64, 48)),
        ("ok-png-la", lambda: encode(rgb(64, 48).convert("LA"), "PNG"), ("fit", 64, 48)),
        (
            "ok-png-palette-transparent",
            lambda: encode(rgb(64, 48).convert("P"), "PNG", transparency=0),
            ("fit", 64, 48),
        ),
        ("ok-png-1-bit", lambda: encode(rgb(64, 48).convert("1"), "PNG"), ("fit", 64, 48)),
        ("ok-webp-lossy-alpha", lambda: encode(rgb(64, 48).convert("RGBA"), "WEBP"), ("fit", 64, 48)),
        ("ok-webp-animated", _animated_webp, ("fit", 64, 48)),
        ("ok-exif-rotated-6", lambda: exif_rotated(PHOTO, 6), ("fit", *fit(photo_h, photo_w))),
        ("ok-exif-rotated-8", lambda: exif_rotated(PHOTO, 8), ("fit", *fit(photo_h, photo_w))),
        ("ok-exif-orientation-garbage", lambda: exif_rotated(PHOTO, 99), ("fit", *fit(photo_w, photo_h))),
        ("ok-trailing-garbage", lambda: PHOTO + b"<script>alert(1)</script>" * 100, ("fit", *fit(photo_w, photo_h))),
        ("ok-max-legal-png-bomb", lambda: png_bomb_legal(4000, 4000), ("fit", 480, 480)),
        ("ok-exactly-5MiB", lambda: padded_jpeg(MAX_BYTES), ("fit", *fit(photo_w, photo_h))),
    ]


def _png16_rgb(width: int, height: int) -> bytes:
    # Pillow cannot write 16-bit RGB PNGs; build the rows by hand (big-endian samples).
    pixels = gradient(width, height).astype(">u2") * 257
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def _animated_webp() -> bytes:
    frames = [rgb(64, 48), rgb(64, 48).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)


CASES = refusals()


# ------------------------------------------------------------------ clients


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, server: ServerProcess, data: bytes) -> tuple[int, dict[str, Any]]:
    # BytesIO: aiohttp warns that a multi-megabyte bytes body would block its loop.
    body_io = io.BytesIO(data)
    async with http.post(f"{server.url}/api/frame", data=body_io, headers={"Content-Type": "image/jpeg"}) as r:
        body: dict[str, Any] = await r.json()
        return r.status, body


async def ws_answer(ws: websockets.ClientConnection, data: bytes) -> dict[str, Any]:
    """Send a frame and await its answer; a close may surface from either call."""
    await ws.send(data)
    async with asyncio.timeout(60):
        answer: dict[str, Any] = json.loads(await ws.recv())
    return answer


async def assert_serves_photo_http(http: aiohttp.ClientSession, server: ServerProcess) -> None:
    status, body = await post(http, server, PHOTO)
    assert (status, body["type"], len(body["hands"])) == (200, "result", 1), body


def check(expected: Expectation, status: int | None, body: dict[str, Any]) -> None:
    """``status`` is the HTTP status, or ``None`` on the WebSocket (where only the code counts)."""
    if expected[0] == "fit":
        assert (status or 200, body["type"]) == (200, "result"), body
        assert (body["width"], body["height"]) == expected[1:], body
    else:
        assert (status or expected[0], body["type"], body["code"]) == (expected[0], "error", expected[1]), body
        assert body["message"]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_image_over_http(
    real_server: ServerProcess, http: aiohttp.ClientSession, name: str, make: Callable[[], bytes], expected: Expectation
) -> None:
    status, body = await post(http, real_server, make())
    check(expected, status, body)
    await assert_serves_photo_http(http, real_server)


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_image_over_websocket(
    real_server: ServerProcess, name: str, make: Callable[[], bytes], expected: Expectation
) -> None:
    async with websockets.connect(real_server.ws_url, max_size=None, compression=None) as ws:
        answer = await ws_answer(ws, make())
        check(expected, None, answer)
        assert answer["seq"] == 1
        # An error is a message: the connection stays open and answers the next frame. The
        # reset says "new scene": a tracking engine would otherwise look for the hand where
        # the previous (e.g. rotated) frame had it, and find it only on its next detection.
        await ws.send(json.dumps({"type": "reset"}))
        after = await ws_answer(ws, PHOTO)
        assert (after["type"], after["seq"], len(after["hands"])) == ("result", 2, 1), after


# ------------------------------------------------------------------ the size limit, end to end


async def test_exactly_5_mib_is_accepted_and_one_byte_over_refused_over_http(
    real_server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, real_server, padded_jpeg(MAX_BYTES))
    assert (status, body["type"], len(body["hands"])) == (200, "result", 1)
    status, body = await post(http, real_server, padded_jpeg(MAX_BYTES + 1))
    assert (status, body["code"]) == (413, "frame_too_large")
    await assert_serves_photo_http(http, real_server)


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_exactly_5_mib_over_websocket_then_one_byte_over_closes_1009(
    real_server: ServerProcess, http: aiohttp.ClientSession, compression: str | None
) -> None:
    async with websockets.connect(real_server.ws_url, max_size=None, compression=compression) as ws:
        answer = await ws_answer(ws, padded_jpeg(MAX_BYTES))
        assert (answer["type"], answer["seq"], len(answer["hands"])) == ("result", 1, 1)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws_answer(ws, padded_jpeg(MAX_BYTES + 1))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    async with websockets.connect(real_server.ws_url, compression=compression) as ws:
        after = await ws_answer(ws, PHOTO)
        assert (after["type"], after["seq"], len(after["hands"])) == ("result", 1, 1)


async def test_a_deflate_bomb_message_closes_1009_without_inflating_it_all(
    real_server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    # 64 MiB of zeros deflate to ~64 KiB on the wire: the server must stop inflating at the limit.
    before = await memory(http, real_server)
    async with websockets.connect(real_server.ws_url, max_size=None, compression="deflate") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws_answer(ws, b"\xff\xd8\xff" + b"\x00" * (64 * 2**20))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    after = await memory(http, real_server)
    assert after["server_rss_mb"] - before["server_rss_mb"] < BOMB_BUDGET_MB, (before, after)
    await assert_serves_photo_http(http, real_server)


# ------------------------------------------------------------------ bombs cost little memory


async def memory(http: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with http.get(f"{server.url}/api/memory") as r:
        body: dict[str, Any] = await r.json()
    body["server_rss_mb"] = next(p["rss_mb"] for p in body["processes"] if p["role"] == "server")
    return body


BOMBS = [c for c in CASES if c[0].startswith(("bomb-", "ok-max-legal"))]


async def test_decompression_bombs_cost_less_than_20_mb(
    real_server: ServerProcess, http: aiohttp.ClientSession
) -> None:
    await assert_serves_photo_http(http, real_server)  # the model is loaded before measuring
    worst = 0.0
    for name, make, expected in BOMBS:
        data = make()
        assert len(data) < 200_000, name  # small on the wire, huge when decoded
        before = await memory(http, real_server)
        for _ in range(3):
            status, body = await post(http, real_server, data)
            check(expected, status, body)
        after = await memory(http, real_server)
        cost = after["rss_mb"] - before["rss_mb"]
        worst = max(worst, cost)
        assert cost < BOMB_BUDGET_MB, (name, before["rss_mb"], after["rss_mb"])
    await assert_serves_photo_http(http, real_server)
    print(f"worst bomb RSS cost: {worst:.1f} MB")  # shown with -s; the bound is the assertion


def test_cases_are_many_and_distinct() -> None:
    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names) >= 30
    payloads = [c[1]() for c in CASES if c[0] not in ("ok-photo", "ok-exactly-5MiB")]
    assert len({hash(p) for p in payloads}) == len(payloads)
