"""The LiteRT hand engine's pure pieces and its session behaviour (parity is test_litert_parity.py).

Pure pieces run on made-up values; the engine runs on the shared fixture video. No timings here:
speed and memory are in tests/bench/bench_engines.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from server.model.litert.anchors import generate_anchors
from server.model.litert.engine import LiteRTEngine
from server.model.litert.geometry import (
    NormRect,
    PixelRoi,
    associate_rects,
    landmarks_to_rect,
    normalize_radians,
    pad_roi,
    transform_rect,
)
from server.model.litert.landmark import decode_handedness
from server.model.litert.palm import PalmDetection, weighted_nms
from server.model.litert.tracking import SessionState, SessionStore

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"


# -- anchors --------------------------------------------------------------------------------


def test_anchor_grid_matches_the_palm_model() -> None:
    a = generate_anchors()
    # 24x24 cells at stride 8 and 12x12 at stride 16 (three layers merged), 2 anchors each.
    assert a.shape == (24 * 24 * 2 + 12 * 12 * 6, 4)
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24, 1.0, 1.0])
    assert np.array_equal(a[0], a[1])  # two anchor shapes per cell, same centre
    assert np.allclose(a[24 * 24 * 2], [0.5 / 12, 0.5 / 12, 1.0, 1.0])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12, 1.0, 1.0])


# -- geometry -------------------------------------------------------------------------------


def test_normalize_radians_wraps_into_half_open_interval() -> None:
    assert normalize_radians(math.pi) == pytest.approx(-math.pi)
    assert normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert normalize_radians(0.25) == pytest.approx(0.25)


def test_pad_roi_letterboxes_the_short_side() -> None:
    wide = PixelRoi(320, 120, 640, 240, 0.0)
    padded, box = pad_roi(wide, 192, 192)
    assert (padded.width, padded.height) == (640, 640)
    assert (box.left, box.top, box.right, box.bottom) == (0.0, 0.3125, 0.0, 0.3125)
    tall = PixelRoi(50, 240, 100, 480, 0.0)
    padded, box = pad_roi(tall, 192, 192)
    assert (padded.width, padded.height) == (480, 480)
    assert box.left == pytest.approx((1 - 100 / 480) / 2)


def test_transform_rect_shifts_along_the_rotated_axis_and_squares_in_pixels() -> None:
    # Rotated a quarter turn, a shift "up" the rect (negative y) moves it along +x in the image.
    rect = NormRect(0.5, 0.5, 0.1, 0.2, math.pi / 2)
    out = transform_rect(rect, 200, 100, scale_x=2.0, scale_y=2.0, shift_y=-0.5, square_long=True)
    assert out.x_center == pytest.approx(0.5 + 0.5 * 0.2 * 100 / 200)
    assert out.y_center == pytest.approx(0.5)
    # Long side 0.2 * 100 = 20 px = 0.1 * 200 px: square in pixels, then doubled.
    assert out.width == pytest.approx(0.2)
    assert out.height == pytest.approx(0.4)


def test_landmarks_to_rect_is_upright_for_a_hand_pointing_up() -> None:
    pts = np.zeros((21, 2))
    pts[:, 0] = 0.5
    pts[:, 1] = np.linspace(0.8, 0.2, 21)  # wrist at the bottom, fingers above
    rect = landmarks_to_rect(pts, 100, 100)
    assert rect.rotation == pytest.approx(0.0)
    assert rect.x_center == pytest.approx(0.5)


def test_association_keeps_the_later_of_overlapping_rects() -> None:
    palm = NormRect(0.5, 0.5, 0.2, 0.2)
    tracked = NormRect(0.51, 0.5, 0.2, 0.2)
    other = NormRect(0.1, 0.1, 0.1, 0.1)
    assert associate_rects([palm, other, tracked], 0.5) == [other, tracked]
    # Touching but below the IoU threshold: both stay, in order.
    far = NormRect(0.65, 0.5, 0.2, 0.2)
    assert associate_rects([palm, far], 0.5) == [palm, far]


# -- palm and handedness decoding ---------------------------------------------------------------


def _palm(score: float, x: float) -> PalmDetection:
    return PalmDetection(score, (x, 0.0, 1.0, 1.0), np.full((7, 2), x))


def test_weighted_nms_averages_overlapping_boxes_by_score() -> None:
    out = weighted_nms([_palm(0.6, 0.2), _palm(0.9, 0.0), _palm(0.7, 5.0)], 0.3)
    assert [d.score for d in out] == [0.9, 0.7]
    merged = out[0]
    assert merged.box[0] == pytest.approx(0.6 * 0.2 / 1.5)
    assert merged.box[2] == pytest.approx(1.0)
    assert merged.keypoints[0, 0] == pytest.approx(0.6 * 0.2 / 1.5)


def test_handedness_is_the_likelier_label() -> None:
    assert decode_handedness(0.8, ("Left", "Right")) == ("Left", 0.8)
    label, score = decode_handedness(0.1, ("Left", "Right"))
    assert label == "Right"
    assert score == pytest.approx(0.9)


# -- tracking policy --------------------------------------------------------------------------


def test_detection_policy() -> None:
    rect = NormRect(0.5, 0.5, 0.2, 0.2)
    state = SessionState()
    assert state.needs_detection(max_hands=2, detect_interval_frames=5)  # first frame
    state.advance([rect], detected=True, lost_hand=False)
    # One of two hands tracked: detection every 5th frame only.
    due = []
    for _ in range(10):
        due.append(state.needs_detection(max_hands=2, detect_interval_frames=5))
        state.advance([rect], detected=due[-1], lost_hand=False)
    assert due == [False, False, False, False, True] * 2
    state.advance([rect], detected=False, lost_hand=True)
    assert state.needs_detection(max_hands=2, detect_interval_frames=5)  # a hand was just lost
    state.advance([rect, rect], detected=False, lost_hand=True)
    assert not state.needs_detection(max_hands=2, detect_interval_frames=5)  # all hands tracked
    state.advance([], detected=False, lost_hand=True)
    assert state.needs_detection(max_hands=2, detect_interval_frames=5)  # nothing tracked


def test_interval_one_is_the_graph_rule() -> None:
    state = SessionState([NormRect(0.5, 0.5, 0.2, 0.2)])
    assert state.needs_detection(max_hands=2, detect_interval_frames=1)
    assert not state.needs_detection(max_hands=1, detect_interval_frames=1)


def test_session_store_evicts_least_recently_used() -> None:
    store = SessionStore(max_sessions=2)
    a = store.get("a")
    store.get("b")
    assert store.get("a") is a  # touch a: b is now the oldest
    store.get("c")
    assert "a" in store
    assert "b" not in store
    assert len(store) == 2
    store.discard("a")
    store.discard("unknown")
    assert len(store) == 1
    with pytest.raises(ValueError, match="max_sessions"):
        SessionStore(0)


# -- the engine -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(FIXTURES / "videos" / "open_hand_640x360.mp4"))
    out: list[npt.NDArray[np.uint8]] = []
    try:
        while len(out) < 24:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            out.append(rgb)
    finally:
        cap.release()
    assert len(out) == 24, "the fixture video is missing or short"
    return out


@pytest.fixture(scope="module")
def engine() -> Iterator[LiteRTEngine]:
    e = LiteRTEngine("lite", max_hands=1, detect_interval_frames=1, max_sessions=4)
    yield e
    e.close()


def _run(engine: LiteRTEngine, frames: list[npt.NDArray[np.uint8]], session: str) -> list[npt.NDArray[np.float32]]:
    return [np.stack([h.landmarks for h in engine.process(f, session)[0]]) for f in frames]


def test_tracking_skips_detection_once_max_hands_are_tracked(
    engine: LiteRTEngine, frames: list[npt.NDArray[np.uint8]]
) -> None:
    tracked = [engine.process(f, "t")[1] for f in frames[:5]]
    engine.end_session("t")
    assert tracked == [False, True, True, True, True]
    assert engine.process(frames[0], None)[1] is False  # image mode never tracks


def test_sessions_never_share_state(engine: LiteRTEngine, frames: list[npt.NDArray[np.uint8]]) -> None:
    alone_a = _run(engine, frames[:12], "a")
    engine.end_session("a")
    alone_b = _run(engine, frames[12:], "b")
    engine.end_session("b")
    together_a, together_b = [], []
    for fa, fb in zip(frames[:12], frames[12:], strict=True):
        together_a += _run(engine, [fa], "a")
        together_b += _run(engine, [fb], "b")
        engine.process(fa, None)  # image mode in between must not disturb either
    engine.end_session("a")
    engine.end_session("b")
    for x, y in zip(alone_a + alone_b, together_a + together_b, strict=True):
        assert np.array_equal(x, y)


def test_sessions_are_bounded(engine: LiteRTEngine, frames: list[npt.NDArray[np.uint8]]) -> None:
    for i in range(10):
        engine.process(frames[0], f"s{i}")
    assert engine.session_count == 4
    for i in range(10):
        engine.end_session(f"s{i}")
    assert engine.session_count == 0


def test_rejects_what_is_not_an_rgb_frame(engine: LiteRTEngine) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        engine.process(np.zeros((4, 4), np.uint8), None)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        engine.process(np.zeros((4, 4, 3), np.float32), None)


def test_tiny_and_blank_frames_give_no_hands(engine: LiteRTEngine) -> None:
    assert engine.process(np.zeros((1, 1, 3), np.uint8), None) == ([], False)
    assert engine.process(np.full((480, 640, 3), 200, np.uint8), "blank")[0] == []
    engine.end_session("blank")


def test_model_files_are_the_wheels_with_their_hashes(engine: LiteRTEngine) -> None:
    files = engine.model_files()
    assert [Path(p).name for p, _ in files] == ["palm_detection_lite.tflite", "hand_landmark_lite.tflite"]
    for path, digest in files:
        assert Path(path).is_absolute()
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"complexity": "heavy"}, "complexity"),
        ({"max_hands": 0}, "max_hands"),
        ({"detect_interval_frames": 0}, "detect_interval_frames"),
        ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ({"max_sessions": 0}, "max_sessions"),
        ({"num_threads": 0}, "num_threads"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LiteRTEngine(**kwargs)  # type: ignore[arg-type]


def test_closed_engine_refuses_frames() -> None:
    e = LiteRTEngine("lite")
    e.close()
    with pytest.raises(RuntimeError, match="closed"):
        e.process(np.zeros((8, 8, 3), np.uint8), None)


def test_engine_never_imports_mediapipe() -> None:
    """The point of the engine: a worker with LiteRT and no MediaPipe graph runtime."""
    code = (
        "import json, sys, numpy as np\n"
        "from server.model.litert import LiteRTEngine\n"
        "e = LiteRTEngine('lite')\n"
        "e.process(np.zeros((48, 64, 3), np.uint8), 's')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'mediapipe')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
