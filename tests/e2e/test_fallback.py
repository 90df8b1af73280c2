"""When the WebSocket cannot open, the page keeps working over POST /api/frame and goes
back to the WebSocket when it can.

Chromium cannot be told to fail a WebSocket (request blocking skips them, and Playwright's
route_web_socket mocks one instead of failing it), so an init script replaces
``window.WebSocket`` before the page loads with one that fails like a refused connection:
``error`` then ``close`` with 1006.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Response

from tests.e2e.conftest import PageProbe, Server, open_probe

pytestmark = pytest.mark.browser

#: Installs window.FailingWebSocket and makes the first `failures` sockets fail
#: (all of them when failures < 0). window.webSocketAttempts counts constructions.
FAILING_SOCKET = """
(() => {
  const failures = %d;
  const RealWebSocket = window.WebSocket;
  class FailingWebSocket extends EventTarget {
    static CONNECTING = 0; static OPEN = 1; static CLOSING = 2; static CLOSED = 3;
    constructor(url) {
      super();
      this.url = String(url);
      this.readyState = 0;
      this.binaryType = "blob";
      setTimeout(() => {
        this.readyState = 3;
        this.dispatchEvent(new Event("error"));
        this.dispatchEvent(new CloseEvent("close", { code: 1006, wasClean: false }));
      }, 0);
    }
    send() { throw new DOMException("the socket is not open", "InvalidStateError"); }
    close() {}
  }
  window.webSocketAttempts = 0;
  window.WebSocket = new Proxy(RealWebSocket, {
    construct(target, args) {
      window.webSocketAttempts += 1;
      return failures < 0 || window.webSocketAttempts <= failures
        ? new FailingWebSocket(...args) : new target(...args);
    },
  });
})();
"""


def frame_answer(response: Response) -> bool:
    return urlparse(response.url).path == "/api/frame"


@pytest.fixture
def no_websocket(browser: Browser):
    probe = open_probe(browser, init_script=FAILING_SOCKET % -1)
    yield probe
    probe.context.close()
    assert probe.page_errors == []


@pytest.fixture
def websocket_back_after_one_failure(browser: Browser):
    probe = open_probe(browser, init_script=FAILING_SOCKET % 1)
    yield probe
    probe.context.close()
    assert probe.page_errors == []


def test_falls_back_to_http_and_results_keep_arriving(no_websocket: PageProbe, server: Server) -> None:
    page = no_websocket.page
    answers: list[Response] = []
    page.on("response", lambda response: answers.append(response) if frame_answer(response) else None)
    page.goto(server.url + "/")
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'http'")
    assert "HTTP" in page.text_content("#transport")
    # Results keep arriving: five more answers, each waited for, with a hand drawn.
    no_websocket.draw_probe(media="#video", mirrored=True, timeout_ms=10_000)
    for _ in range(5):
        page.wait_for_event("response", predicate=frame_answer, timeout=10_000)
    page.wait_for_function("() => parseFloat(document.getElementById('fps').textContent) > 0")
    assert page.evaluate("() => window.webSocketAttempts") >= 1
    assert re.search(r"WebSocket is unavailable", page.text_content("#messages"))

    sessions = set()
    for response in answers:
        query = parse_qs(urlparse(response.url).query)
        sessions.add(query["session"][0])
        assert "mirrored" not in query, "the page sends unmirrored frames"
        assert response.request.method == "POST"
        assert response.request.headers["content-type"] == "image/jpeg"
        assert response.status == 200
        assert response.json()["type"] == "result"
    # One random session for the page load, so sign state persists across posts.
    assert len(sessions) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", sessions.pop())
    assert any(response.json()["hands"] for response in answers)
    assert no_websocket.sockets == []


def test_goes_back_to_the_websocket_when_it_opens_again(
    websocket_back_after_one_failure: PageProbe, server: Server
) -> None:
    probe = websocket_back_after_one_failure
    page = probe.page
    page.goto(server.url + "/")
    page.wait_for_event("response", predicate=frame_answer, timeout=10_000)
    # The retry is a second after the failure; then frames go over the socket again.
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'websocket'")
    probe.sockets[0].wait_for_event("framereceived", timeout=10_000)
    assert page.evaluate("() => window.webSocketAttempts") == 2
    assert page.text_content("#messages").strip() == ""
