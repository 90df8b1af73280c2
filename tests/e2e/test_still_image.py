"""A still image picked with the file input (or dropped on the view) gets its landmarks
drawn over it: two hands, on landscape and portrait pictures, shown unmirrored."""

from __future__ import annotations

import base64
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import FIXTURES, PageProbe, Server

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("name", "sent_size"),
    [
        # 960 x 640 (3:2), two hands: shrunk to fit 640 x 480 by the page.
        ("person_sitting_two_hands.jpg", (640, 427)),
        # 384 x 512 portrait, two hands: shrunk to fit 480 px high.
        ("gesture_call_17d804b5.jpg", (360, 480)),
    ],
)
def test_still_image_gets_both_hands_drawn(
    probe: PageProbe, server: Server, name: str, sent_size: tuple[int, int]
) -> None:
    page = probe.page
    page.goto(server.url + "/")
    with page.expect_response(lambda response: urlparse(response.url).path == "/api/frame") as answer:
        drawn = probe.draw_probe(
            media="#still",
            mirrored=False,
            min_hands=2,
            action=lambda: page.set_input_files("#still-input", str(FIXTURES / "hands" / name)),
        )
    result = answer.value.json()
    assert (result["width"], result["height"]) == sent_size
    assert len(result["hands"]) == 2
    assert drawn["hands"] == result["hands"]
    assert all(all(hand) for hand in drawn["hits"]), f"landmarks without skeleton pixels: {drawn['hits']}"
    assert drawn["stray"] == 0
    # A still is one picture, not part of the signing session.
    assert "session" not in urlparse(answer.value.url).query
    assert page.is_visible("#still")
    assert not page.is_visible("#video")
    assert "2 hands found" in page.text_content("#hands-summary")

    page.click("#back-to-camera")
    probe.draw_probe(media="#video", mirrored=True)
    assert page.is_visible("#video")
    assert not page.is_visible("#still")


def test_a_file_that_is_not_an_image_is_refused_in_words(probe: PageProbe, server: Server, tmp_path) -> None:
    page = probe.page
    page.goto(server.url + "/")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.set_input_files("#still-input", str(notes))
    page.wait_for_selector("#messages li[data-key='still']")
    assert "is not a JPEG, PNG or WebP image" in page.text_content("#messages li[data-key='still']")


def test_a_dropped_image_gets_its_hands_drawn(probe: PageProbe, server: Server) -> None:
    """Drag and drop onto the view, as a person would drop a file from their desktop."""
    page = probe.page
    page.goto(server.url + "/")
    picture = base64.b64encode((FIXTURES / "hands" / "person_sitting_two_hands.jpg").read_bytes()).decode()
    # The file is built in the page from the test's bytes, then dropped on the stage.
    # (Base64 only to carry the bytes into the test's script; the page sends them as JPEG.)
    transfer = page.evaluate_handle(
        """(picture) => {
            const bytes = Uint8Array.from(atob(picture), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'hands.jpg', { type: 'image/jpeg' }));
            return transfer;
        }""",
        picture,
    )
    page.dispatch_event("#stage", "dragover", {"dataTransfer": transfer})
    drawn = probe.draw_probe(
        media="#still",
        mirrored=False,
        min_hands=2,
        action=lambda: page.dispatch_event("#stage", "drop", {"dataTransfer": transfer}),
    )
    assert all(all(hand) for hand in drawn["hits"])
    assert drawn["stray"] == 0
