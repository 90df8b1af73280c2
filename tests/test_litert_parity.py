"""Parity of the LiteRT hand engine with MediaPipe's own hand graph, on the shared fixtures.

The reference is the real graph (``mp.solutions.hands``) run in this test process; the engine
under test never imports mediapipe (``test_litert_engine.py`` checks that in a subprocess). Both
see the same pixels: each photo fitted within 640x480 as the server fits frames.

Criteria (issue 7): same hand count and handedness as the graph in image mode, each hand's mean
landmark distance (normalised x, y) at most 0.002, for lite and full; over a video streamed as
one session, tracking against the graph's tracking mode: the share of frames with a hand within
2 percentage points and the median per-frame landmark distance at most 0.005.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from server.model.engine import RawHand
from server.model.litert.engine import LiteRTEngine

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
PHOTO_DIRS = ("hands", "no_hands", "hard_cases")
PHOTOS = sorted(p for d in PHOTO_DIRS for p in (FIXTURES / d).glob("*") if p.suffix.lower() in {".jpg", ".png"})
VIDEOS = sorted((FIXTURES / "videos").glob("*.mp4"))
COMPLEXITIES = {"lite": 0, "full": 1}

MAX_MEAN_DISTANCE_PHOTO = 0.002
MAX_MEDIAN_DISTANCE_VIDEO = 0.005
MAX_HAND_SHARE_GAP_VIDEO = 0.02

# The graph's hand_rects_from_landmarks and palm_detections streams are not outputs of
# mp.solutions.hands, so the stage-by-stage checks build the same graph with them exposed.
GRAPH_PATH = "mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"


@dataclass(frozen=True, slots=True)
class RefHand:
    label: str
    score: float
    landmarks: npt.NDArray[np.float64]
    world_landmarks: npt.NDArray[np.float64]


def fit_within(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Shrink to fit 640x480 as shared/API.md says the server does (never enlarge)."""
    h, w = rgb.shape[:2]
    s = min(1.0, 640 / w, 480 / h)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)  # type: ignore[return-value]


def load_rgb(path: Path) -> npt.NDArray[np.uint8]:
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cannot read {path}"
    return fit_within(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))


def graph_hands(result: object) -> list[RefHand]:
    out: list[RefHand] = []
    multi = getattr(result, "multi_hand_landmarks", None)
    if not multi:
        return out
    handedness = result.multi_handedness  # type: ignore[attr-defined]
    world = result.multi_hand_world_landmarks  # type: ignore[attr-defined]
    for lm, hd, wl in zip(multi, handedness, world, strict=True):
        c = hd.classification[0]
        out.append(
            RefHand(
                c.label,
                c.score,
                np.array([[q.x, q.y, q.z] for q in lm.landmark]),
                np.array([[q.x, q.y, q.z] for q in wl.landmark]),
            )
        )
    return out


def mean_distance(a: npt.NDArray[np.float64], b: npt.NDArray[np.float32]) -> float:
    return float(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean())


def assert_same_hands(ref: list[RefHand], got: list[RawHand], what: str) -> None:
    assert len(got) == len(ref), f"{what}: graph found {len(ref)} hands, LiteRT {len(got)}"
    for i, (r, g) in enumerate(zip(ref, got, strict=True)):
        assert g.label == r.label, f"{what} hand {i}: graph {r.label}, LiteRT {g.label}"
        d = mean_distance(r.landmarks, g.landmarks)
        assert d <= MAX_MEAN_DISTANCE_PHOTO, f"{what} hand {i}: mean landmark distance {d:.5f}"
        assert g.landmarks.shape == (21, 3)
        assert g.landmarks.dtype == np.float32
        assert g.world_landmarks.shape == (21, 3)
        assert g.world_landmarks.dtype == np.float32
        # Same model, same crop: the other outputs agree as closely as the landmarks do.
        assert abs(g.score - r.score) < 1e-3, f"{what} hand {i}: handedness score"
        assert np.abs(g.world_landmarks - r.world_landmarks).max() < 1e-3, f"{what} hand {i}: world"
        assert np.abs(g.landmarks[:, 2] - r.landmarks[:, 2]).max() < 1e-3, f"{what} hand {i}: z"


@pytest.fixture(scope="module", params=list(COMPLEXITIES))
def complexity(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def engine(complexity: str) -> Iterator[LiteRTEngine]:
    e = LiteRTEngine(complexity, max_hands=2, detect_interval_frames=1)  # type: ignore[arg-type]
    yield e
    e.close()


@pytest.fixture(scope="module")
def image_graph(complexity: str) -> Iterator[object]:
    import mediapipe as mp

    hands = mp.solutions.hands.Hands(
        static_image_mode=True,
        max_num_hands=2,
        model_complexity=COMPLEXITIES[complexity],
        min_detection_confidence=0.5,
    )
    yield hands
    hands.close()


def test_fixture_photos_are_present() -> None:
    # A fresh clone without shared/ beside it must fail loudly, not pass on zero photos.
    assert len(PHOTOS) >= 20, f"photos missing under {FIXTURES}"
    assert len(VIDEOS) == 2, f"videos missing under {FIXTURES}"


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_photo_matches_graph(photo: Path, engine: LiteRTEngine, image_graph: object) -> None:
    rgb = load_rgb(photo)
    ref = graph_hands(image_graph.process(rgb))  # type: ignore[attr-defined]
    hands, tracked = engine.process(rgb, None)
    assert tracked is False
    assert_same_hands(ref, hands, photo.name)


# -- composed frames: overlapping hands, extreme aspect ratios ------------------------------


def _paste(canvas: npt.NDArray[np.uint8], img: npt.NDArray[np.uint8], x: int, y: int) -> None:
    h, w = img.shape[:2]
    canvas[y : y + h, x : x + w] = img


def two_overlapping_hands() -> npt.NDArray[np.uint8]:
    """A hand photo and its mirror image pasted so that their hand regions overlap."""
    hand = load_rgb(FIXTURES / "hands" / "open_hand_photo.jpg")
    hand = cv2.resize(hand, (300, round(300 * hand.shape[0] / hand.shape[1])))  # type: ignore[assignment]
    canvas = np.full((480, 640, 3), 127, np.uint8)
    h = min(hand.shape[0], 480)
    _paste(canvas, hand[:h], 90, 0)
    _paste(canvas, np.ascontiguousarray(hand[:h, ::-1]), 250, 0)
    return canvas


def padded(photo: str, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A fixture photo scaled to fit (width, height) and centred on an edge-replicated canvas."""
    img = load_rgb(FIXTURES / "hands" / photo)
    s = min(width / img.shape[1], height / img.shape[0])
    img = cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))))  # type: ignore[assignment]
    top = (height - img.shape[0]) // 2
    left = (width - img.shape[1]) // 2
    return cv2.copyMakeBorder(  # type: ignore[return-value]
        img, top, height - img.shape[0] - top, left, width - img.shape[1] - left, cv2.BORDER_REPLICATE
    )


#: name -> (frame builder, hands the graph finds in it). The count guards the case itself: a
#: letterbox or de-duplication test that finds no hand tests nothing.
COMPOSED: dict[str, tuple[Callable[[], npt.NDArray[np.uint8]], int]] = {
    "two_overlapping_hands": (two_overlapping_hands, 2),
    "very_wide_640x100": (lambda: padded("open_hand_photo.jpg", 640, 100), 1),
    "very_tall_100x480": (lambda: padded("thumb_up_photo.jpg", 100, 480), 1),
    "wide_640x128": (lambda: padded("hand_crop_224.jpg", 640, 128), 1),
    "tall_128x480": (lambda: padded("hand_crop_224.jpg", 128, 480), 1),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_composed_frame_matches_graph(name: str, engine: LiteRTEngine, image_graph: object) -> None:
    build, expected_hands = COMPOSED[name]
    rgb = np.ascontiguousarray(build())
    ref = graph_hands(image_graph.process(rgb))  # type: ignore[attr-defined]
    assert len(ref) == expected_hands, f"{name}: the composed frame no longer shows what it should"
    hands, _ = engine.process(rgb, None)
    assert_same_hands(ref, hands, name)


# -- stage by stage ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage_graph(complexity: str) -> Iterator[object]:
    from mediapipe.python.solution_base import SolutionBase

    graph = SolutionBase(
        binary_graph_path=GRAPH_PATH,
        side_inputs={
            "model_complexity": COMPLEXITIES[complexity],
            "num_hands": 2,
            "use_prev_landmarks": False,
        },
        outputs=["multi_hand_landmarks", "palm_detections", "hand_rects_from_landmarks"],
    )
    yield graph
    graph.close()


@pytest.mark.parametrize("photo", [p for p in PHOTOS if p.parent.name == "hands"], ids=lambda p: p.name)
def test_stages_match_graph(photo: Path, engine: LiteRTEngine, stage_graph: object) -> None:
    """Palm detections to 1e-5 and tracked regions to 1e-3 of the graph's own streams."""
    rgb = load_rgb(photo)
    out = stage_graph.process(rgb)  # type: ignore[attr-defined]
    _, _, trace = engine.process_traced(rgb, None)
    palms = out.palm_detections or []
    assert len(trace.palms) == len(palms)
    for ref, mine in zip(palms, trace.palms, strict=True):
        bb = ref.location_data.relative_bounding_box
        kp = np.array([[k.x, k.y] for k in ref.location_data.relative_keypoints])
        assert abs(ref.score[0] - mine.score) < 1e-5
        assert np.allclose([bb.xmin, bb.ymin, bb.width, bb.height], mine.box, atol=1e-5)
        assert np.allclose(kp, mine.keypoints, atol=1e-5)
    rects = out.hand_rects_from_landmarks or []
    assert len(trace.next_rects) == len(rects)
    for ref, rect in zip(rects, trace.next_rects, strict=True):
        got = [rect.x_center, rect.y_center, rect.width, rect.height, rect.rotation]
        want = [ref.x_center, ref.y_center, ref.width, ref.height, ref.rotation]
        assert np.allclose(got, want, atol=1e-3), (got, want)


# -- tracking over the videos -------------------------------------------------------------


def read_video(path: Path) -> list[npt.NDArray[np.uint8]]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(fit_within(np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))))
    finally:
        cap.release()
    assert frames, f"no frames decoded from {path}"
    return frames


def frame_distance(ref: list[RefHand], got: list[RawHand]) -> float | None:
    """Mean over the graph's hands of the distance to the nearest LiteRT hand; None if either is empty."""
    if not ref or not got:
        return None
    return float(np.mean([min(mean_distance(r.landmarks, g.landmarks) for g in got) for r in ref]))


#: (id, videos streamed back to back as one session, detect_interval_frames). The graph in
#: tracking mode is one Hands object fed the same frames.
VIDEO_CASES = [
    *[(f"{v.stem}-interval{i}", [v], i) for v in VIDEOS for i in (1, 5)],
    ("both-videos-one-session-interval1", VIDEOS, 1),
]


def compare_tracking(videos: list[Path], interval: int, complexity: str) -> tuple[int, int, int, list[float]]:
    """Stream the videos as one session through the engine and the graph's tracking mode.

    Returns:
        frames, frames where the graph found a hand, frames where LiteRT did, per-frame distances.
    """
    import mediapipe as mp

    engine = LiteRTEngine(complexity, max_hands=2, detect_interval_frames=interval)  # type: ignore[arg-type]
    graph = mp.solutions.hands.Hands(
        static_image_mode=False,
        max_num_hands=2,
        model_complexity=COMPLEXITIES[complexity],
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )
    frames = ref_with_hand = got_with_hand = 0
    distances: list[float] = []
    try:
        for video in videos:
            for rgb in read_video(video):
                ref = graph_hands(graph.process(rgb))
                got, _ = engine.process(rgb, "video")
                frames += 1
                ref_with_hand += bool(ref)
                got_with_hand += bool(got)
                d = frame_distance(ref, got)
                if d is not None:
                    distances.append(d)
    finally:
        graph.close()
        engine.close()
    return frames, ref_with_hand, got_with_hand, distances


@pytest.mark.parametrize(("videos", "interval"), [c[1:] for c in VIDEO_CASES], ids=[c[0] for c in VIDEO_CASES])
def test_video_tracking_matches_graph(videos: list[Path], interval: int, complexity: str) -> None:
    frames, ref_with_hand, got_with_hand, distances = compare_tracking(videos, interval, complexity)
    gap = abs(ref_with_hand - got_with_hand) / frames
    assert gap <= MAX_HAND_SHARE_GAP_VIDEO, (ref_with_hand, got_with_hand, frames)
    assert distances, "no frame where both found a hand"
    assert float(np.median(distances)) <= MAX_MEDIAN_DISTANCE_VIDEO
