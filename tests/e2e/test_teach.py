"""The teach panel: capture a few seconds of landmarks from the results, POST them as
examples, see the sign listed, forget it again."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PageProbe, Server

pytestmark = pytest.mark.browser


def test_teach_posts_captured_landmarks_and_lists_the_sign(probe: PageProbe, server: Server) -> None:
    page = probe.page
    page.goto(server.url + "/")
    page.wait_for_function("() => /Built in: A B C/.test(document.getElementById('builtin-signs').textContent)")
    probe.draw_probe(media="#video", mirrored=True)  # a hand is in view
    page.fill("#teach-label", "WAVE")
    page.fill("#teach-seconds", "1")
    # Three seconds to get ready, one of capture, then the POST.
    with page.expect_response(lambda r: r.url.endswith("/api/signs/WAVE/examples"), timeout=15_000) as answer:
        page.click("#teach-start")
    body = answer.value.request.post_data_json
    assert answer.value.status == 200, answer.value.text()
    examples = body["examples"]
    assert len(examples) >= 1
    for example in examples:
        assert list(example) == ["hands"]
        for hand in example["hands"]:
            assert set(hand) == {"handedness", "landmarks"}
            assert hand["handedness"] in ("Left", "Right")
            assert len(hand["landmarks"]) == 21
            assert all(len(point) == 3 for point in hand["landmarks"])
    held = answer.value.json()
    assert held["label"] == "WAVE"
    assert held["examples"] >= len(examples)
    page.wait_for_function("() => /Taught \"WAVE\"/.test(document.getElementById('teach-progress').textContent)")
    page.wait_for_selector("#taught-signs li:has-text('WAVE')")
    signs = server.get_json("/api/signs")["signs"]
    assert any(sign["label"] == "WAVE" and sign["source"] != "builtin" for sign in signs)
    # The hand is still in view, held as it was taught: the server now names it.
    page.wait_for_function("() => document.getElementById('sign-label').textContent === 'WAVE'", timeout=15_000)
    # Held long enough, it becomes stable and is written as a word; Clear empties the text.
    page.wait_for_function("() => document.getElementById('text-out').textContent.includes('WAVE')", timeout=15_000)
    page.click("#clear-text")
    assert page.text_content("#text-out") == ""

    page.click("#taught-signs button[aria-label='Forget the sign WAVE']")
    page.wait_for_function("() => /Forgot \"WAVE\"/.test(document.getElementById('teach-progress').textContent)")
    page.wait_for_selector("#taught-signs li:has-text('WAVE')", state="detached")
