"""Hand landmark post-processing: the landmark model's four tensors in, one hand out.

Owns the decoding of the landmark model's outputs (landmarks, hand presence, handedness, world
landmarks), their projection from the crop back onto the frame, and the region that tracks the
hand into the next frame. Runs no model (``engine.py`` does) and keeps no state.

Constants are options of ``handlandmarkcpu__*`` and ``handlandmarklandmarkstoroi__*`` nodes in
``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb`` (mediapipe 0.10.21),
named beside each; ``tests/test_litert_constants.py`` checks them against the wheel's graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.model.litert.geometry import Letterbox, NormRect, landmarks_to_rect, transform_rect

# handlandmarkcpu__ImageToTensorCalculator: output_tensor_width/height, keep_aspect_ratio,
# border_mode unset (BORDER_REPLICATE), output_tensor_float_range [0, 1].
LANDMARK_INPUT_SIZE = 224

# handlandmarkcpu__TensorsToLandmarksCalculator_1: num_landmarks, input_image_width/height,
# normalize_z.
NUM_LANDMARKS = 21
NORMALIZE_Z = 0.4

# handlandmarkcpu__TensorsToClassificationCalculator: binary_classification with
# label_map_path mediapipe/modules/hand_landmark/handedness.txt ("Left", "Right"); the score is
# that of label 0, and label 1 gets 1 - score. The labels are read from the wheel's file.
DEFAULT_HANDEDNESS_LABELS = ("Left", "Right")

# handlandmarklandmarkstoroi__RectTransformationCalculator: the landmarks' tight rect grown to
# the region that should still hold the hand in the next frame.
TRACK_RECT_SCALE = 2.0  # scale_x, scale_y
TRACK_RECT_SHIFT_Y = -0.1  # shift_y
TRACK_RECT_SQUARE_LONG = True  # square_long

# The presence threshold (handlandmarkcpu__ThresholdingCalculator.threshold, 0.5 in the graph)
# is min_tracking_confidence, set by mp.solutions.hands through calculator_params; a parameter.


@dataclass(frozen=True, slots=True)
class LandmarkOutput:
    """One crop's worth of landmark model output, decoded.

    Attributes:
        presence: hand presence score (the model applies the sigmoid itself).
        label: handedness label in MediaPipe's own convention.
        score: handedness score for ``label``.
        landmarks: (21, 3) float32, x and y normalised to the frame, z scaled like x.
        world_landmarks: (21, 3) float32, metres, rotated back to the frame's orientation.
    """

    presence: float
    label: str
    score: float
    landmarks: npt.NDArray[np.float32]
    world_landmarks: npt.NDArray[np.float32]


def decode_handedness(raw: float, labels: tuple[str, str]) -> tuple[str, float]:
    """TensorsToClassificationCalculator, binary, top_k 1: the likelier of the two labels.

    Label 0 scores ``raw`` and label 1 scores ``1 - raw``; on an exact tie the sort MediaPipe
    uses keeps label 0 first.
    """
    first, second = raw, 1.0 - raw
    return (labels[0], first) if first >= second else (labels[1], second)


def project_landmarks(
    raw_landmarks: npt.NDArray[np.float32], letterbox: Letterbox, rect: NormRect
) -> npt.NDArray[np.float64]:
    """TensorsToLandmarks, LandmarkLetterboxRemoval and LandmarkProjection calculators.

    Pixels of the 224x224 crop become fractions of the crop (z divided by the width and by
    ``NORMALIZE_Z``), the letterbox comes off (z scaled like x), and the crop's frame is rotated
    and scaled back onto the image (z scaled by the rect's normalised width).
    """
    lm = np.asarray(raw_landmarks, dtype=np.float64).reshape(NUM_LANDMARKS, 3)
    x = lm[:, 0] / LANDMARK_INPUT_SIZE
    y = lm[:, 1] / LANDMARK_INPUT_SIZE
    z = lm[:, 2] / LANDMARK_INPUT_SIZE / NORMALIZE_Z
    sx = 1.0 - (letterbox.left + letterbox.right)
    sy = 1.0 - (letterbox.top + letterbox.bottom)
    x = (x - letterbox.left) / sx
    y = (y - letterbox.top) / sy
    z = z / sx
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    dx, dy = x - 0.5, y - 0.5
    px = (c * dx - s * dy) * rect.width + rect.x_center
    py = (s * dx + c * dy) * rect.height + rect.y_center
    pz = z * rect.width
    return np.stack([px, py, pz], axis=1)


def project_world_landmarks(raw_world: npt.NDArray[np.float32], rect: NormRect) -> npt.NDArray[np.float64]:
    """TensorsToLandmarks (absolute) then WorldLandmarkProjectionCalculator: metres, with the
    crop's rotation undone about the z axis (no translation or scale: the origin stays at the
    hand)."""
    w = np.asarray(raw_world, dtype=np.float64).reshape(NUM_LANDMARKS, 3)
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    x = c * w[:, 0] - s * w[:, 1]
    y = s * w[:, 0] + c * w[:, 1]
    return np.stack([x, y, w[:, 2]], axis=1)


def decode_landmarks(
    raw_landmarks: npt.NDArray[np.float32],
    raw_presence: npt.NDArray[np.float32],
    raw_handedness: npt.NDArray[np.float32],
    raw_world: npt.NDArray[np.float32],
    *,
    letterbox: Letterbox,
    rect: NormRect,
    labels: tuple[str, str] = DEFAULT_HANDEDNESS_LABELS,
) -> LandmarkOutput:
    """Decode one run of the landmark model on the crop of ``rect``.

    The caller gates on ``presence`` (ThresholdingCalculator: strictly greater than the
    threshold); decoding is cheap, so it is done regardless.
    """
    label, score = decode_handedness(float(np.asarray(raw_handedness).reshape(-1)[0]), labels)
    return LandmarkOutput(
        presence=float(np.asarray(raw_presence).reshape(-1)[0]),
        label=label,
        score=score,
        landmarks=project_landmarks(raw_landmarks, letterbox, rect).astype(np.float32),
        world_landmarks=project_world_landmarks(raw_world, rect).astype(np.float32),
    )


def tracking_rect(landmarks: npt.NDArray[np.float32], image_width: int, image_height: int) -> NormRect:
    """HandLandmarksToRect then RectTransformation: where to look for this hand next frame."""
    tight = landmarks_to_rect(np.asarray(landmarks[:, :2], dtype=np.float64), image_width, image_height)
    return transform_rect(
        tight,
        image_width,
        image_height,
        scale_x=TRACK_RECT_SCALE,
        scale_y=TRACK_RECT_SCALE,
        shift_y=TRACK_RECT_SHIFT_Y,
        square_long=TRACK_RECT_SQUARE_LONG,
    )
