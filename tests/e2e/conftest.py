"""Fixtures for the page tests: the real server, Debian's Chromium and a fake camera.

The page is tested the way a person uses it: ``python -m server`` in a subprocess (the real
model, no fakes), the page loaded from it in headless Chromium driven by Playwright, and
Chromium's fake camera fed a fixture video converted at test time. What we learned about
Chromium here is in ``shared/BROWSER_TESTING.md``; the flags below follow it.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (``make browser``
installs it). If Chromium is missing and cannot be installed, every test in this folder is
skipped with a loud reason, never passed.

``SIGNWIRE_E2E_URL=http://host:port`` runs the tests against a server that is already
running instead of starting one (handy while developing the page).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, WebSocket, sync_playwright

from tests.conftest import FIXTURES, REPO, default_toml, start_server

CHROMIUM = Path("/usr/bin/chromium")
RESULTS = REPO / "results"
PROBE_JS = (Path(__file__).parent / "overlay_probe.js").read_text()
#: The fixture video the fake camera plays: one open hand, 640 x 360 (16:9), 25 fps. A
#: 16:9 file arrives unchanged when the page asks for ideal 640 x 480, so a stretch or a
#: wrong overlay mapping shows (a 4:3 one would hide it).
CAMERA_VIDEO = FIXTURES / "videos" / "open_hand_640x360.mp4"

#: Flags every browser gets (shared/BROWSER_TESTING.md). Playwright adds --headless and
#: --no-sandbox itself.
BASE_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    # Nothing leaves the machine: every host name fails except the loopback server.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def _install_chromium() -> str:
    """Try what ``make browser`` does; return why it failed ("" when it worked)."""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return "apt-get is not available to this user"
    try:
        subprocess.run([apt, "update", "-qq"], check=True, capture_output=True, timeout=600)
        subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as error:
        return f"apt-get install chromium failed: {error}"
    return "" if CHROMIUM.exists() else "apt-get ran but /usr/bin/chromium is still missing"


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        why = _install_chromium()
        if why:
            pytest.skip(
                f"!!! BROWSER TESTS SKIPPED: {CHROMIUM} is absent and could not be installed ({why}). "
                "The web page is NOT tested in this run. Install it with `make browser` "
                "(apt-get install chromium) and run again. !!!"
            )
    return CHROMIUM


@dataclass
class Server:
    """Where the page under test is served."""

    url: str
    log: Any = None

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)


def _wait_for_health(url: str, process: subprocess.Popen[bytes] | None) -> None:
    """Polls GET /healthz, bounded; the pause between tries is a wait on the process."""
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process is None:
            continue
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"the server exited with {process.returncode} before /healthz answered")
    raise RuntimeError(f"{url}/healthz did not answer 200")


@pytest.fixture(scope="package")
def server() -> Iterator[Server]:
    """The real server, in its own process group, with a throw-away signs database. It stops
    with the last page test, so its model worker does not sit beside the rest of the suite."""
    outside = os.environ.get("SIGNWIRE_E2E_URL")
    if outside:
        _wait_for_health(outside.rstrip("/"), None)
        yield Server(url=outside.rstrip("/"))
        return
    process = start_server(default_toml())
    try:
        _wait_for_health(process.url, process.process)
        yield Server(url=process.url, log=process)
    finally:
        process.stop()


def write_y4m(video: Path, out: Path) -> Path:
    """Converts a video to Y4M 4:2:0 (C420jpeg), which Chromium's fake camera plays at the
    file's own frame rate, looping.

    Args:
        video: any file OpenCV can read.
        out: the .y4m to write.
    Returns:
        out.
    """
    capture = cv2.VideoCapture(str(video))
    fps = round(capture.get(cv2.CAP_PROP_FPS)) or 25
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    frames = 0
    with out.open("wb") as y4m:
        y4m.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            y4m.write(b"FRAME\n")
            # I420 is the three planes Y, U, V one after the other, as Y4M 4:2:0 wants them.
            y4m.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
            frames += 1
    capture.release()
    if frames == 0:
        raise RuntimeError(f"OpenCV read no frame from {video}")
    return out


@pytest.fixture(scope="session")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CAMERA_VIDEO.is_file():
        pytest.fail(f"the fixture video is missing: {CAMERA_VIDEO} (shared/ must sit beside the repository)")
    return write_y4m(CAMERA_VIDEO, tmp_path_factory.mktemp("camera") / "open_hand_640x360.y4m")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Package scope, not session: while Playwright's sync API is open its event loop counts
    as running in this thread, and every asyncio test after it would fail with "cannot be
    called from a running event loop". It closes when the last page test is done."""
    with sync_playwright() as driver:
        yield driver


def launch(playwright: Playwright, chromium: Path, args: list[str]) -> Browser:
    return playwright.chromium.launch(executable_path=str(chromium), headless=True, args=BASE_ARGS + args)


@pytest.fixture(scope="package")
def browser(playwright: Playwright, chromium: Path, camera_file: Path) -> Iterator[Browser]:
    """Chromium whose camera is granted and plays the fixture video."""
    browser = launch(
        playwright,
        chromium,
        [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_file}",
        ],
    )
    yield browser
    browser.close()


@dataclass
class PageProbe:
    """A page plus what it did: errors it threw, WebSocket traffic, console errors."""

    page: Page
    context: BrowserContext
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)
    sent: list[bytes | str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def results(self) -> list[dict[str, Any]]:
        return [message for message in self.received if message.get("type") == "result"]

    def draw_probe(
        self,
        *,
        media: str,
        mirrored: bool,
        min_hands: int = 1,
        skip: int = 0,
        timeout_ms: int = 10_000,
        action: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """Waits for the overlay's next drawing with at least ``min_hands`` hands (after
        skipping ``skip`` of them) and measures it; see overlay_probe.js.

        ``action`` (choosing a still image, dropping one) runs once the probe is listening: a
        still is drawn once, so a probe set up after the action could miss its only drawing.
        """
        args = {
            "mediaSelector": media,
            "mirrored": mirrored,
            "minHands": min_hands,
            "skip": skip,
            "timeoutMs": timeout_ms,
        }
        if action is None:
            result: dict[str, Any] = self.page.evaluate(PROBE_JS, args)
            return result
        # Armed now, awaited after the action; marked handled so a timeout is not an uncaught rejection.
        self.page.evaluate(
            f"(args) => {{ const drawn = (\n{PROBE_JS}\n)(args); drawn.catch(() => {{}});"
            " window.__drawProbe = drawn; }",
            args,
        )
        action()
        armed: dict[str, Any] = self.page.evaluate("() => window.__drawProbe")
        return armed


def open_probe(browser: Browser, init_script: str | None = None) -> PageProbe:
    # Scale factor 1 and a fixed viewport keep screenshots and pixel maths plain.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    probe = PageProbe(page=page, context=context)
    page.on("pageerror", lambda error: probe.page_errors.append(str(error)))
    page.on("console", lambda message: probe.console_errors.append(message.text) if message.type == "error" else None)

    def on_socket(socket: WebSocket) -> None:
        probe.sockets.append(socket)
        # Not the bound method itself: Playwright tags each handler with an attribute.
        socket.on("framesent", lambda payload: probe.sent.append(payload))  # noqa: PLW0108
        socket.on("framereceived", lambda payload: probe.received.append(json.loads(payload)))

    page.on("websocket", on_socket)
    return probe


@pytest.fixture
def probe(browser: Browser) -> Iterator[PageProbe]:
    """A fresh page (its own context) in the camera browser; it must neither throw nor log
    an error (a missing favicon or asset would)."""
    probe = open_probe(browser)
    yield probe
    probe.context.close()
    assert probe.page_errors == [], f"the page threw: {probe.page_errors}"
    assert probe.console_errors == [], f"the page logged errors: {probe.console_errors}"
