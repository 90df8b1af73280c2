"""LiteRTEngine: MediaPipe's hand pipeline on LiteRT, with per-session tracking.

Owns the two LiteRT interpreters (palm detection, hand landmarks) of one worker process and the
tracking state of every session that worker serves; composes the pure pieces (``palm.py``,
``landmark.py``, ``geometry.py``, ``tracking.py``) into the hand graph
``hand_landmark_tracking_cpu`` of mediapipe 0.10.21, frame for frame. It never imports mediapipe:
the ``.tflite`` files are read from the installed wheel by path (``models.py``).

One engine per worker serves every session: a session costs a :class:`~tracking.SessionState`
(a few rects), not a graph. Not thread-safe; the worker calls it one frame at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from server.model.engine import RawHand
from server.model.files import Complexity, describe, hand_model_files
from server.model.litert.anchors import generate_anchors
from server.model.litert.geometry import (
    NormRect,
    associate_rects,
    crop_to_tensor,
    pad_roi,
    rect_to_roi,
)
from server.model.litert.landmark import LANDMARK_INPUT_SIZE, decode_landmarks, tracking_rect
from server.model.litert.models import read_handedness_labels
from server.model.litert.palm import (
    NMS_MIN_SUPPRESSION_THRESHOLD,
    PALM_INPUT_SIZE,
    PalmDetection,
    decode_palms,
    palm_to_hand_rect,
    remove_letterbox,
    weighted_nms,
)
from server.model.litert.tracking import SessionStore

logger = logging.getLogger(__name__)

#: AssociationNormRectCalculator ``min_similarity_threshold`` in hand_landmark_tracking_cpu: a
#: region overlapping a later one by more than this IoU is the same hand.
ASSOCIATION_MIN_SIMILARITY = 0.5


@dataclass(frozen=True, slots=True)
class FrameTrace:
    """Intermediate values of one frame, for tests that compare stage by stage with the graph.

    Attributes:
        palms: palm detections on the frame (after NMS, letterbox removal and the max-hands
            clip), or empty when palm detection did not run.
        palm_rects: hand regions from those palms.
        rects: the regions the landmark model ran on (after de-duplication).
        next_rects: the regions tracked into the next frame (from present hands' landmarks).
    """

    palms: list[PalmDetection]
    palm_rects: list[NormRect]
    rects: list[NormRect]
    next_rects: list[NormRect]


def _load_interpreter(path: str, num_threads: int) -> Any:
    # Imported here so that importing this module (e.g. for its types, or in the server
    # process) does not load the LiteRT runtime. Interpreter applies the XNNPACK delegate by
    # default, like MediaPipe's InferenceCalculatorCpu with ``delegate { xnnpack {} }``.
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


class LiteRTEngine:
    """The hand engine of the worker seam, on LiteRT.

    Args:
        complexity: "lite" (model_complexity 0) or "full" (model_complexity 1).
        max_hands: the graph's ``num_hands``: most palms kept per detection, and the number of
            tracked hands at which palm detection stops.
        min_detection_confidence: palm score threshold (score >= this).
        min_tracking_confidence: hand presence threshold (presence > this), in image mode too,
            as in ``mp.solutions.hands``.
        detect_interval_frames: with some but fewer than ``max_hands`` hands tracked, run palm
            detection every this many frames (1 = every frame, exactly as the graph does).
        max_sessions: tracking states kept; the least recently used is dropped beyond this.
        num_threads: LiteRT CPU threads per interpreter.

    Raises:
        ValueError: an argument is out of range.
        FileNotFoundError: the mediapipe wheel or a model file in it is missing.
    """

    def __init__(
        self,
        complexity: Complexity = "full",
        *,
        max_hands: int = 2,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        detect_interval_frames: int = 1,
        max_sessions: int = 64,
        num_threads: int = 1,
    ) -> None:
        if max_hands < 1:
            raise ValueError(f"max_hands must be at least 1, got {max_hands}")
        if detect_interval_frames < 1:
            raise ValueError(f"detect_interval_frames must be at least 1, got {detect_interval_frames}")
        for name, value in (
            ("min_detection_confidence", min_detection_confidence),
            ("min_tracking_confidence", min_tracking_confidence),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        self.complexity: Complexity = complexity
        self.max_hands = max_hands
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.detect_interval_frames = detect_interval_frames

        files = hand_model_files(complexity)
        self._model_paths = files.models()
        self._labels = read_handedness_labels(files.handedness_labels)
        self._anchors = generate_anchors()
        self._sessions = SessionStore(max_sessions)

        self._palm: Any = _load_interpreter(str(files.palm_detection), num_threads)
        self._landmark: Any = _load_interpreter(str(files.hand_landmark), num_threads)
        self._palm_input = self._palm.get_input_details()[0]["index"]
        palm_outputs = self._palm.get_output_details()
        # The regressor ends in 18 values per box, the classifier in 1.
        self._palm_boxes = next(d["index"] for d in palm_outputs if d["shape"][-1] == 18)
        self._palm_scores = next(d["index"] for d in palm_outputs if d["shape"][-1] == 1)
        if self._anchors.shape[0] != int(np.prod(palm_outputs[0]["shape"][:-1])):
            raise ValueError("palm model box count does not match the anchor grid")
        self._landmark_input = self._landmark.get_input_details()[0]["index"]
        # The graph's SplitTensorVectorCalculator takes the outputs in model order: landmarks,
        # hand presence, handedness, world landmarks.
        outputs = self._landmark.get_output_details()
        if [int(np.prod(d["shape"])) for d in outputs] != [63, 1, 1, 63]:
            raise ValueError(f"unexpected landmark model outputs: {[d['shape'] for d in outputs]}")
        self._lm_out = [d["index"] for d in outputs]
        self._closed = False
        logger.info(
            "LiteRT hand engine ready: %s, max_hands=%d, detect_interval_frames=%d",
            complexity,
            max_hands,
            detect_interval_frames,
        )

    # -- the seam -------------------------------------------------------------------------

    def process(self, rgb: npt.NDArray[np.uint8], session: str | None) -> tuple[list[RawHand], bool]:
        """Find hands in one frame.

        Args:
            rgb: HxWx3 uint8 RGB, already fitted within 640x480.
            session: tracking session id, or None for image mode (palm detection, no state).

        Returns:
            The hands (MediaPipe's own handedness convention) and whether palm detection was
            skipped, i.e. the frame was answered from the session's tracked regions alone.

        Raises:
            ValueError: ``rgb`` is not an HxWx3 uint8 array.
            RuntimeError: the engine is closed.
        """
        hands, tracked, _ = self.process_traced(rgb, session)
        return hands, tracked

    def end_session(self, session: str) -> None:
        """Forget a session's tracking state (unknown ids are ignored)."""
        self._sessions.discard(session)

    def model_files(self) -> list[tuple[str, str]]:
        """(absolute path, sha256 hex) of the palm detection and hand landmark models.

        Hashed on request, not at start-up: a worker's start should load models, not read them
        twice (``/readyz`` hashes them in the server process).
        """
        return [(f.path, f.sha256) for f in describe(self._model_paths)]

    def close(self) -> None:
        """Drop the interpreters and every session; later calls to :meth:`process` raise."""
        self._closed = True
        self._sessions.clear()
        self._palm = None
        self._landmark = None

    # -- the pipeline ---------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    def process_traced(self, rgb: npt.NDArray[np.uint8], session: str | None) -> tuple[list[RawHand], bool, FrameTrace]:
        """:meth:`process`, also returning the frame's intermediate values."""
        if self._closed:
            raise RuntimeError("the LiteRT hand engine is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        if session is None:
            palms = self.detect_palms(rgb)
            palm_rects = [palm_to_hand_rect(p, width, height) for p in palms]
            rects = associate_rects(palm_rects, ASSOCIATION_MIN_SIMILARITY)
            hands, next_rects = self._run_landmarks(rgb, rects)
            return hands, False, FrameTrace(palms, palm_rects, rects, next_rects)

        state = self._sessions.get(session)
        detect = state.needs_detection(self.max_hands, self.detect_interval_frames)
        palms = self.detect_palms(rgb) if detect else []
        palm_rects = [palm_to_hand_rect(p, width, height) for p in palms]
        # Palm regions first, tracked regions last: a tracked region wins over a fresh detection
        # of the same hand, as in the graph's AssociationNormRectCalculator inputs.
        rects = associate_rects(palm_rects + state.rects, ASSOCIATION_MIN_SIMILARITY)
        hands, next_rects = self._run_landmarks(rgb, rects)
        state.advance(next_rects, detected=detect, lost_hand=len(next_rects) < len(state.rects))
        return hands, not detect, FrameTrace(palms, palm_rects, rects, next_rects)

    def detect_palms(self, rgb: npt.NDArray[np.uint8]) -> list[PalmDetection]:
        """Palm detection on the whole frame: at most ``max_hands`` palms, best first,
        normalised to the frame (the graph's ``palm_detections`` stream)."""
        height, width = rgb.shape[:2]
        roi, letterbox = pad_roi(rect_to_roi(None, width, height), PALM_INPUT_SIZE, PALM_INPUT_SIZE)
        tensor = crop_to_tensor(rgb, roi, PALM_INPUT_SIZE, PALM_INPUT_SIZE, "zero")
        self._palm.set_tensor(self._palm_input, tensor)
        self._palm.invoke()
        detections = decode_palms(
            self._palm.get_tensor(self._palm_boxes),
            self._palm.get_tensor(self._palm_scores),
            self._anchors,
            self.min_detection_confidence,
        )
        merged = weighted_nms(detections, NMS_MIN_SUPPRESSION_THRESHOLD)
        # ClipDetectionVectorSizeCalculator keeps the first num_hands, i.e. the best scores.
        return [remove_letterbox(d, letterbox) for d in merged[: self.max_hands]]

    def _run_landmarks(self, rgb: npt.NDArray[np.uint8], rects: list[NormRect]) -> tuple[list[RawHand], list[NormRect]]:
        height, width = rgb.shape[:2]
        hands: list[RawHand] = []
        next_rects: list[NormRect] = []
        for rect in rects:
            roi, letterbox = pad_roi(rect_to_roi(rect, width, height), LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE)
            if not (roi.width > 0.0 and roi.height > 0.0):
                # The graph's ImageToTensorCalculator rejects an empty or NaN region; a degenerate
                # region holds no hand, so it is skipped rather than failing the frame.
                continue
            tensor = crop_to_tensor(rgb, roi, LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE, "replicate")
            self._landmark.set_tensor(self._landmark_input, tensor)
            self._landmark.invoke()
            raw = [self._landmark.get_tensor(i) for i in self._lm_out]
            out = decode_landmarks(*raw, letterbox=letterbox, rect=rect, labels=self._labels)
            # ThresholdingCalculator: present when strictly above the threshold.
            if not out.presence > self.min_tracking_confidence:
                continue
            hands.append(RawHand(out.label, out.score, out.landmarks, out.world_landmarks))
            next_rects.append(tracking_rect(out.landmarks, width, height))
        return hands, next_rects
