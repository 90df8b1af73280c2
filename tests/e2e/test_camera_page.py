"""The page with a (fake) camera: frames go to /ws, results come back, the skeleton is drawn
over the hand, the numbers and the memory panel fill in.

Chromium's camera plays ``open_hand_640x360.mp4``: one hand, the subject's right, in every
frame (expected.json), 16:9 so that a stretched picture or overlay shows.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from tests.e2e.conftest import RESULTS, PageProbe, Server

pytestmark = pytest.mark.browser

#: The brief's promise: hands on screen within seconds of opening the page. The first frame
#: also loads the model in a fresh worker, which is inside this budget.
FIRST_HANDS_S = 10.0


def has_hands(message: object) -> bool:
    return isinstance(message, dict) and message.get("type") == "result" and len(message.get("hands", [])) > 0


def open_page(probe: PageProbe, server: Server) -> float:
    """Opens the page; returns when navigation started (time.monotonic())."""
    started = time.monotonic()
    probe.page.goto(server.url + "/")
    return started


def test_results_with_hands_arrive_over_the_websocket(probe: PageProbe, server: Server) -> None:
    started = open_page(probe, server)
    probe.page.wait_for_function("() => document.getElementById('transport').dataset.transport === 'websocket'")
    socket = probe.sockets[0]
    left_ms = max(1.0, (FIRST_HANDS_S - (time.monotonic() - started)) * 1000)
    socket.wait_for_event("framereceived", predicate=lambda payload: '"landmarks"' in payload, timeout=left_ms)
    assert time.monotonic() - started < FIRST_HANDS_S

    assert socket.url.endswith("/ws")
    # The first message says what the page sends: the camera image as the camera sees it.
    assert probe.sent[0] == '{"type":"hello","mirrored":false}'
    frames = [payload for payload in probe.sent if isinstance(payload, bytes)]
    assert frames, "no binary frame was sent"
    assert all(frame[:3] == b"\xff\xd8\xff" for frame in frames), "frames must be JPEG bytes"
    picture = cv2.imdecode(np.frombuffer(frames[-1], np.uint8), cv2.IMREAD_COLOR)
    # 640 x 360 fits within 640 x 480 as it is: the page keeps the 16:9 shape.
    assert picture.shape[:2] == (360, 640)

    with_hands = [result for result in probe.results() if result["hands"]]
    first = with_hands[0]
    assert (first["width"], first["height"]) == (640, 360)
    assert len(first["hands"][0]["landmarks"]) == 21
    # The signer's own hand: the clip shows a right hand. This only holds if `hello`
    # told the server the truth about mirroring. (Most, not all: the model may waver.)
    labels = [result["hands"][0]["handedness"] for result in with_hands]
    assert labels.count("Right") > len(labels) / 2, labels
    # One frame in flight: each answer's seq is the next frame's number, none skipped.
    seqs = [result["seq"] for result in probe.results()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(result["dropped"] == 0 for result in probe.results())


def test_skeleton_is_drawn_over_the_reported_landmarks(probe: PageProbe, server: Server) -> None:
    open_page(probe, server)
    drawn = probe.draw_probe(media="#video", mirrored=True, timeout_ms=int(FIRST_HANDS_S * 1000))

    assert drawn["mediaSize"] == [640, 360]
    assert all(all(hand) for hand in drawn["hits"]), f"landmarks without skeleton pixels: {drawn['hits']}"
    assert drawn["stray"] == 0, f"{drawn['stray']} painted pixels far from any hand"
    # What was drawn is what the server said for that frame.
    answer = next(result for result in probe.results() if result["seq"] == drawn["seq"])
    assert drawn["hands"] == answer["hands"]


def test_numbers_and_memory_panel_fill_in(probe: PageProbe, server: Server) -> None:
    open_page(probe, server)
    page = probe.page
    page.wait_for_function("() => parseFloat(document.getElementById('fps').textContent) > 0")
    page.wait_for_function("() => /^\\d+ ms$/.test(document.getElementById('latency').textContent)")
    page.wait_for_function("() => /^\\d+\\.\\d KiB$/.test(document.getElementById('frame-size').textContent)")
    page.wait_for_function("() => /^\\d+$/.test(document.getElementById('dropped').textContent)")
    page.wait_for_function(
        "() => /^\\d+\\.\\d MB of \\d+ MB limit/.test(document.getElementById('memory-text').textContent)"
    )
    memory = server.get_json("/api/memory")
    assert f"of {memory['limit_mb']:.0f} MB limit" in page.text_content("#memory-text")
    # The chart has a line on it.
    inked = page.evaluate("""() => {
        const chart = document.getElementById('memory-chart');
        const data = chart.getContext('2d').getImageData(0, 0, chart.width, chart.height).data;
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
        return inked;
    }""")
    assert inked > 100
    page.wait_for_function(
        "() => /In view: (Right|Left) hand/.test(document.getElementById('hands-summary').textContent)"
    )


def test_screenshot_of_the_page_with_a_drawn_hand(probe: PageProbe, server: Server) -> None:
    """Freezes the video, lets the frozen frame's answer be drawn, stops sending (with the
    keyboard, as a person without a mouse would) and writes results/page_screenshot.png."""
    open_page(probe, server)
    page = probe.page
    # The clip opens with the hand seen edge-on; wait (bounded) for the open palm, whose
    # landmarks span over a third of the frame's height, and a few memory readings.
    for _ in range(100):
        drawn = probe.draw_probe(media="#video", mirrored=True, timeout_ms=int(FIRST_HANDS_S * 1000))
        heights = [point[1] for point in drawn["hands"][0]["landmarks"]]
        if max(heights) - min(heights) > 0.35:
            break
    page.wait_for_function("() => Number(document.getElementById('memory-chart').dataset.readings) >= 3")
    page.evaluate("() => document.getElementById('video').pause()")
    # The drawing after next is of a frame grabbed from the paused video: skeleton and
    # picture then match exactly.
    drawn = probe.draw_probe(media="#video", mirrored=True, skip=1)
    assert all(all(hand) for hand in drawn["hits"])
    page.focus("#pause")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('pause').getAttribute('aria-pressed') === 'true'")
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "page_screenshot.png"))


def test_interval_zero_sends_as_soon_as_each_answer_arrives(probe: PageProbe, server: Server) -> None:
    """?interval=0: no pause between frames, yet the page stays responsive (a pacer that only
    chained promises while the camera was starting once froze the page before `load`)."""
    probe.page.goto(server.url + "/?interval=0")
    assert probe.page.input_value("#interval") == "0"
    probe.draw_probe(media="#video", mirrored=True, timeout_ms=int(FIRST_HANDS_S * 1000))
    probe.page.fill("#interval", "300")
    probe.page.dispatch_event("#interval", "change")
    seqs = [result["seq"] for result in probe.results()]
    assert seqs == list(range(1, len(seqs) + 1))
