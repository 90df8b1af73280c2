"""The page in Firefox: the same page, driven through WebDriver BiDi, which Firefox speaks
itself (no geckodriver, and Playwright cannot drive a stock Firefox).

Firefox's fake camera (``media.navigator.streams.fake``) shows a test pattern, not a hand, so
hands are checked with a dropped still image. Chromium is the browser ``make browser``
installs; this test runs when Debian's ``firefox-esr`` is installed too and says loudly when
it is not.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import FIXTURES, PROBE_JS, Server

pytestmark = pytest.mark.browser

PREFS = """
user_pref("media.navigator.streams.fake", true);
user_pref("media.navigator.permission.disabled", true);
user_pref("remote.active-protocols", 1);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("network.dns.disableIPv6", true);
"""


class Bidi:
    """The few WebDriver BiDi commands the test needs, over one WebSocket."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.next_id = 0
        self.logs: list[dict[str, Any]] = []

    def command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.connection.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.connection.recv(timeout=60))
            if message.get("method") == "log.entryAdded":
                self.logs.append(message["params"])
            if message.get("id") == self.next_id:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, context: str, expression: str) -> Any:
        """Evaluates an expression that yields a JSON string (awaited if a promise)."""
        answer = self.command(
            "script.evaluate",
            {"expression": expression, "target": {"context": context}, "awaitPromise": True},
        )
        if answer.get("type") == "exception":
            raise AssertionError(answer["exceptionDetails"]["text"])
        return json.loads(answer["result"]["value"])


@pytest.fixture(scope="module")
def firefox() -> Iterator[Bidi]:
    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        pytest.skip(
            "!!! FIREFOX TEST SKIPPED: firefox-esr is not installed, so the page is checked in "
            "Chromium only. `apt-get install firefox-esr` to run it. !!!"
        )
    profile = Path(tempfile.mkdtemp(prefix="signwire-firefox-"))
    (profile / "user.js").write_text(PREFS)
    process = subprocess.Popen(
        [binary, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    found: dict[str, str] = {}
    listening = threading.Event()

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = re.search(rb"WebDriver BiDi listening on (ws://\S+)", line)
            if match:
                found["url"] = match.group(1).decode()
                listening.set()
        listening.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        if not listening.wait(60) or "url" not in found:
            raise RuntimeError("Firefox did not open its WebDriver BiDi port")
        with connect(found["url"].rstrip("/") + "/session", max_size=None) as connection:
            bidi = Bidi(connection)
            bidi.command("session.new", {"capabilities": {}})
            bidi.command("session.subscribe", {"events": ["log.entryAdded"]})
            yield bidi
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_page_works_in_firefox(firefox: Bidi, server: Server) -> None:
    context = firefox.command("browsingContext.getTree", {})["contexts"][0]["context"]
    firefox.command("browsingContext.navigate", {"context": context, "url": server.url + "/", "wait": "complete"})
    # Waits in the page for the state, bounded; nothing sleeps.
    state = firefox.evaluate(
        context,
        """new Promise((resolve, reject) => {
            const read = () => ({
              transport: document.getElementById('transport').dataset.transport,
              fps: parseFloat(document.getElementById('fps').textContent),
              memory: document.getElementById('memory-text').textContent,
              messages: [...document.querySelectorAll('#messages li')].map((item) => item.textContent),
              video: [document.getElementById('video').videoWidth, document.getElementById('video').videoHeight],
            });
            const deadline = performance.now() + 20000;
            const check = () => {
              const state = read();
              const live = state.transport === 'websocket' && state.fps > 0 && /MB of/.test(state.memory);
              if (live) resolve(JSON.stringify(state));
              else if (performance.now() > deadline) reject(new Error(JSON.stringify(state)));
              else requestAnimationFrame(check);
            };
            check();
        })""",
    )
    assert state["messages"] == []
    assert state["video"][0] > 0

    # Base64 only to carry the bytes into the test's script; the page sends them as JPEG.
    picture = base64.b64encode((FIXTURES / "hands" / "person_sitting_two_hands.jpg").read_bytes()).decode()
    args = {"mediaSelector": "#still", "mirrored": False, "minHands": 2, "skip": 0, "timeoutMs": 10000}
    drawn = firefox.evaluate(
        context,
        f"""(() => {{
            const drawn = ({PROBE_JS})({json.dumps(args)});
            const bytes = Uint8Array.from(atob('{picture}'), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'hands.jpg', {{ type: 'image/jpeg' }}));
            const stage = document.getElementById('stage');
            for (const type of ['dragover', 'drop']) {{
              stage.dispatchEvent(new DragEvent(type, {{ dataTransfer: transfer, bubbles: true, cancelable: true }}));
            }}
            return drawn.then(JSON.stringify);
        }})()""",
    )
    assert len(drawn["hands"]) == 2
    assert all(all(hand) for hand in drawn["hits"]), drawn["hits"]
    assert drawn["stray"] == 0
    errors = [entry for entry in firefox.logs if entry.get("level") == "error"]
    assert errors == []
