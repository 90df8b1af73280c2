"""The page works from the keyboard: every control is reached with Tab in reading order,
focus is visible, and the live regions a screen reader follows are in place."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PageProbe, Server

pytestmark = pytest.mark.browser


def test_tab_reaches_every_control_in_order(probe: PageProbe, server: Server) -> None:
    page = probe.page
    page.goto(server.url + "/")
    page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'websocket'")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.className"))
    expected = [
        "skip-link",
        "pause",
        "still-input",
        "interval",
        "clear-text",
        "teach-label",
        "teach-seconds",
        "teach-start",
    ]
    assert [name for name in reached if name in expected][: len(expected)] == expected
    # Focus is drawn: the focused control has an outline.
    page.focus("#pause")
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") == "solid"


def test_live_regions_are_in_place(probe: PageProbe, server: Server) -> None:
    page = probe.page
    page.goto(server.url + "/")
    assert page.get_attribute("#messages", "aria-live") == "polite"
    assert page.get_attribute("#text-out", "aria-live") == "polite"
    assert page.get_attribute("#teach-progress", "role") == "status"
    assert page.get_attribute("#overlay", "aria-hidden") == "true"
    assert page.get_attribute("#memory-chart", "role") == "img"
    # Every input has a label a screen reader can read.
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input')].filter((i) => i.labels.length === 0).map((i) => i.id)"
    )
    assert unlabelled == []
