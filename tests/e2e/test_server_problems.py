"""Clear messages, not a blank page, when the server cannot be reached or refuses frames,
and back to normal when it recovers. The WebSocket is made to fail (test_fallback.py's
init script) so every frame goes through POST /api/frame, which Playwright can intercept."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Route

from tests.e2e.conftest import PageProbe, Server, open_probe
from tests.e2e.test_fallback import FAILING_SOCKET

pytestmark = pytest.mark.browser


@pytest.fixture
def over_http(browser: Browser) -> Iterator[PageProbe]:
    """A page whose WebSocket always fails. Console errors are expected here (Chromium logs
    every refused or failed fetch), so only thrown errors fail the test."""
    probe = open_probe(browser, init_script=FAILING_SOCKET % -1)
    yield probe
    probe.context.close()
    assert probe.page_errors == []


def server_message(probe: PageProbe, key: str) -> str:
    probe.page.wait_for_selector(f"#messages li[data-key='{key}']")
    return probe.page.text_content(f"#messages li[data-key='{key}']") or ""


def test_unreachable_server_is_said_and_recovery_clears_it(over_http: PageProbe, server: Server) -> None:
    page = over_http.page
    page.goto(server.url + "/")
    over_http.draw_probe(media="#video", mirrored=True)
    page.route("**/api/frame*", lambda route: route.abort("connectionrefused"))
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'offline'")
    assert "cannot be reached" in server_message(over_http, "server")
    assert "unreachable" in page.text_content("#transport")
    page.unroute("**/api/frame*")
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'http'")
    over_http.draw_probe(media="#video", mirrored=True)
    assert "cannot be reached" not in page.text_content("#messages")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            503,
            json.dumps({"type": "error", "code": "model_unavailable", "message": "the model worker is restarting"}),
            "The server refused a frame: the model worker is restarting (model_unavailable).",
        ),
        (502, "<html>Bad Gateway</html>", "answered 502"),
    ],
)
def test_an_error_answer_is_shown_in_words(
    over_http: PageProbe, server: Server, status: int, body: str, expected: str
) -> None:
    page = over_http.page

    def refuse(route: Route) -> None:
        route.fulfill(status=status, body=body, content_type="application/json" if status == 503 else "text/html")

    page.route("**/api/frame*", refuse)
    page.goto(server.url + "/")
    assert expected in server_message(over_http, "answer")
    page.unroute("**/api/frame*")
    over_http.draw_probe(media="#video", mirrored=True)
    page.wait_for_selector("#messages li[data-key='answer']", state="detached")
