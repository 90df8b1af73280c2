"""Nothing private leaks: no token, image bytes or landmarks in the logs, no frame on disk.

Runs ``python -m server`` at its default INFO level with a token from ``SIGNWIRE_TOKEN`` and a
fresh ``TMPDIR``, then does everything that might be logged: frames over both transports
(carrying a unique marker after the JPEG's end), landmarks with distinctive numbers, right and
wrong tokens in the header and in ``?token=``, a malformed request that aiohttp refuses with a
traceback, oversized headers, a bad image. Then it reads everything the process tree printed and
every file it could have written, and looks for each secret in every form it could take.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import websockets

from tests.conftest import FIXTURES, REPO, default_toml, start_server

pytestmark = pytest.mark.model

TOKEN = "tok-" + uuid.uuid4().hex
WRONG_TOKEN = "wrong-" + uuid.uuid4().hex
MARKER = ("marker-" + uuid.uuid4().hex).encode()
PHOTO = (FIXTURES / "hands" / "open_hand_photo.jpg").read_bytes() if FIXTURES.is_dir() else b""
FRAME = PHOTO + MARKER  # bytes after the end-of-image marker: decoded as the same photo
LANDMARK = 0.4242424242
HANDS = {"hands": [{"handedness": "Right", "landmarks": [[LANDMARK, 0.5, 0.0]] * 21}]}


def secret_forms() -> dict[str, list[bytes]]:
    body = PHOTO[600:648]  # image data past the headers
    return {
        "token": [TOKEN.encode()],
        "wrong token": [WRONG_TOKEN.encode()],
        "frame marker": [MARKER, MARKER.hex().encode(), base64.b64encode(MARKER)],
        "image bytes": [body.hex().encode(), base64.b64encode(body)[:40], repr(body[:24]).encode()[2:-1]],
        "landmark": [str(LANDMARK).encode(), b"0.424242"],
    }


def files_written_since(roots: list[Path], since: float) -> list[Path]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules")]
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                if stat.st_mtime >= since and stat.st_size < 64 * 2**20 and path.is_file():
                    found.append(path)
    return found


async def test_no_token_frame_or_landmarks_in_logs_or_on_disk(tmp_path: Path) -> None:
    tmpdir = tmp_path / "server-tmp"
    tmpdir.mkdir()
    started = time.time() - 1
    server = start_server(default_toml(db_dir=tmp_path), env={"SIGNWIRE_TOKEN": TOKEN, "TMPDIR": str(tmpdir)})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/api/frame", data=io.BytesIO(FRAME), headers=auth) as r:
                assert r.status == 200
                assert len((await r.json())["hands"]) == 1
            async with http.post(f"{server.url}/api/landmarks", json=HANDS, headers=auth) as r:
                assert r.status == 200
            async with http.post(
                f"{server.url}/api/frame", data=FRAME, headers={"Authorization": f"Bearer {WRONG_TOKEN}"}
            ) as r:
                assert r.status == 401
                assert WRONG_TOKEN not in await r.text()
            async with http.post(f"{server.url}/api/frame", data=b"\xff\xd8\xff" + MARKER, headers=auth) as r:
                assert (r.status, (await r.json())["code"]) == (400, "bad_image")
            async with http.get(f"{server.url}/api/memory", headers={"X-Big": "x" * 10_000 + MARKER.decode()}) as r:
                assert r.status in (400, 431)
        async with websockets.connect(f"{server.ws_url}?token={TOKEN}", max_size=None) as ws:
            await ws.send(FRAME)
            assert json.loads(await ws.recv())["type"] == "result"
            await ws.send(json.dumps({"type": "landmarks", **HANDS}))
            assert json.loads(await ws.recv())["type"] == "result"
            await ws.send("not json " + MARKER.decode())
            assert json.loads(await ws.recv())["code"] == "bad_request"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{server.ws_url}?token={WRONG_TOKEN}"):
                pass
        # A body longer than its Content-Length: aiohttp refuses the rest as a malformed request
        # and logs that with a traceback quoting the bytes, unless __main__'s filter removes them.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /api/frame HTTP/1.1\r\nHost: localhost\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 10\r\n\r\n".encode()
            + PHOTO[:10]
            + MARKER
            + PHOTO[600:648]
            + b"\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(10):
            assert (await reader.read(12)).startswith(b"HTTP/1.")
        writer.close()
    finally:
        server.stop()
    log = server.log_text().encode()
    assert b"signwire listening on" in log
    assert b"refused a malformed HTTP request" in log  # the malformed request was logged, briefly
    for what, forms in secret_forms().items():
        for form in forms:
            assert form not in log, f"{what} ({form[:20]!r}) is in the server log"
    # Frames are never written to disk: no file the server could have written holds the marker.
    for path in files_written_since([tmpdir, tmp_path, REPO], started):
        if path == server.log_path:
            continue
        data = path.read_bytes()
        assert MARKER not in data, f"a frame was written to {path}"
        assert TOKEN.encode() not in data, f"the token was written to {path}"
