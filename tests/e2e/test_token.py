"""A server with a token: the page passes it on from its own address (/?token=...), as
``?token=`` on /ws (browsers cannot set headers there) and as a Bearer header on /api/*;
without it the page says what is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.conftest import default_toml, start_server
from tests.e2e.conftest import PageProbe, Server, open_probe

pytestmark = pytest.mark.browser

TOKEN = "e2e-secret-token"


@pytest.fixture(scope="module")
def token_server() -> Iterator[Server]:
    process = start_server(default_toml(), env={"SIGNWIRE_TOKEN": TOKEN})
    try:
        yield Server(url=process.url, log=process)
    finally:
        process.stop()


def test_the_token_in_the_page_address_opens_everything(probe: PageProbe, token_server: Server) -> None:
    page = probe.page
    with page.expect_request(lambda request: "/api/memory" in request.url) as memory_request:
        page.goto(f"{token_server.url}/?token={TOKEN}")
    assert memory_request.value.headers["authorization"] == f"Bearer {TOKEN}"
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'websocket'")
    assert probe.sockets[0].url.endswith(f"/ws?token={TOKEN}")
    probe.draw_probe(media="#video", mirrored=True, timeout_ms=15_000)
    page.wait_for_function("() => /MB of/.test(document.getElementById('memory-text').textContent)")


def test_without_the_token_the_page_says_so(token_server: Server, browser: Browser) -> None:
    probe = open_probe(browser)
    page = probe.page
    page.goto(token_server.url + "/")
    page.wait_for_selector("#messages li[data-key='answer']")
    message = page.text_content("#messages li[data-key='answer']")
    assert "(unauthorized)" in message
    assert "/?token=" in message
    assert "unavailable" in page.text_content("#memory-text")
    probe.context.close()
    # The refused upgrade and the 401 answers are logged by Chromium as console errors;
    # only a thrown error would be the page's fault.
    assert probe.page_errors == []
