"""Clear messages, not a blank page, when there is no camera to use.

Each case needs its own browser: --use-fake-ui-for-media-stream grants the camera for the
whole browser, so a refusal needs a browser without it (shared/BROWSER_TESTING.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

from tests.e2e.conftest import FIXTURES, PageProbe, Server, launch, open_probe

pytestmark = pytest.mark.browser


@pytest.fixture(params=["refused", "absent"])
def camera_problem(
    request: pytest.FixtureRequest, playwright: Playwright, chromium: Path
) -> Iterator[tuple[str, Browser]]:
    args = {
        "refused": ["--use-fake-device-for-media-stream", "--deny-permission-prompts"],
        "absent": ["--use-fake-device-for-media-stream=device-count=0", "--use-fake-ui-for-media-stream"],
    }[request.param]
    browser = launch(playwright, chromium, args)
    yield request.param, browser
    browser.close()


EXPECTED = {"refused": "Camera access was refused", "absent": "No camera was found"}


def test_camera_problem_is_explained(camera_problem: tuple[str, Browser], server: Server) -> None:
    problem, browser = camera_problem
    probe: PageProbe = open_probe(browser)
    page = probe.page
    page.goto(server.url + "/")
    page.wait_for_selector("#messages li[data-key='camera']")
    message = page.text_content("#messages li[data-key='camera']")
    assert EXPECTED[problem] in message
    assert "still image" in message  # says what can be done instead
    # Said over the picture too, with a way to try again, and the rest of the page works.
    assert page.is_visible("#stage-note")
    assert EXPECTED[problem] in page.text_content("#stage-note")
    assert page.is_visible("#retry-camera")
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'websocket'")
    page.wait_for_function("() => /MB of/.test(document.getElementById('memory-text').textContent)")
    # What the message offers works: a still image gets its hands drawn, without the note.
    drawn = probe.draw_probe(
        media="#still",
        mirrored=False,
        min_hands=2,
        action=lambda: page.set_input_files("#still-input", str(FIXTURES / "hands" / "person_sitting_two_hands.jpg")),
    )
    assert all(all(hand) for hand in drawn["hits"])
    assert not page.is_visible("#stage-note")
    page.click("#back-to-camera")
    assert page.is_visible("#stage-note")
    probe.context.close()
    assert probe.page_errors == []
