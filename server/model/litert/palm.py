"""Palm detection post-processing: model tensors in, palm detections and hand regions out.

Owns what happens between the palm model's two output tensors and the rotated hand regions
that the landmark model will crop: box and keypoint decoding against the SSD anchors, the score
threshold, weighted non-maximum suppression, letterbox removal, and the palm-to-hand-region
transformation. Runs no model (``engine.py`` does) and keeps no state.

Every constant is an option of a node in ``mediapipe/modules/hand_landmark/
hand_landmark_tracking_cpu.binarypb`` (mediapipe 0.10.21), named in the comment beside it;
``tests/test_litert_constants.py`` checks them against the graph read from the wheel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.model.litert.geometry import Letterbox, NormRect, box_iou, rotation_to_target, transform_rect

# palmdetectioncpu__ImageToTensorCalculator: output_tensor_width/height, keep_aspect_ratio,
# border_mode BORDER_ZERO, output_tensor_float_range [0, 1].
PALM_INPUT_SIZE = 192

# palmdetectioncpu__TensorsToDetectionsCalculator.
NUM_BOXES = 2016  # num_boxes
NUM_COORDS = 18  # num_coords: 4 box values + 7 keypoints x 2
BOX_COORD_OFFSET = 0  # box_coord_offset
KEYPOINT_COORD_OFFSET = 4  # keypoint_coord_offset
NUM_KEYPOINTS = 7  # num_keypoints
NUM_VALUES_PER_KEYPOINT = 2  # num_values_per_keypoint
BOX_SCALE = 192.0  # x_scale, y_scale, w_scale, h_scale (all 192)
SCORE_CLIPPING_THRESH = 100.0  # score_clipping_thresh; sigmoid_score: true
# reverse_output_order: true, so boxes are (x, y, w, h) and keypoints (x, y): handled in decode.
# min_score_thresh 0.5 is the graph's default, overridden by min_detection_confidence (as
# mp.solutions.hands does via calculator_params), so it is a parameter here.

# palmdetectioncpu__NonMaxSuppressionCalculator: algorithm WEIGHTED, overlap INTERSECTION_OVER_UNION.
NMS_MIN_SUPPRESSION_THRESHOLD = 0.3  # min_suppression_threshold

# palmdetectiondetectiontoroi__DetectionsToRectsCalculator.
ROTATION_START_KEYPOINT = 0  # rotation_vector_start_keypoint_index (wrist centre)
ROTATION_END_KEYPOINT = 2  # rotation_vector_end_keypoint_index (middle finger MCP)
ROTATION_TARGET_RADIANS = math.radians(90.0)  # rotation_vector_target_angle_degrees: 90

# palmdetectiondetectiontoroi__RectTransformationCalculator: the palm box grown to the hand.
PALM_RECT_SCALE = 2.6  # scale_x, scale_y
PALM_RECT_SHIFT_Y = -0.5  # shift_y
PALM_RECT_SQUARE_LONG = True  # square_long


@dataclass(frozen=True, slots=True)
class PalmDetection:
    """One palm, normalised to the frame (after letterbox removal) or to the tensor (before).

    Attributes:
        score: sigmoid of the model's logit.
        box: (xmin, ymin, width, height).
        keypoints: (7, 2) x, y; 0 is the wrist centre, 2 the middle finger's base.
    """

    score: float
    box: tuple[float, float, float, float]
    keypoints: npt.NDArray[np.float64]


def decode_palms(
    raw_boxes: npt.NDArray[np.float32],
    raw_scores: npt.NDArray[np.float32],
    anchors: npt.NDArray[np.float32],
    min_score: float,
) -> list[PalmDetection]:
    """TensorsToDetectionsCalculator: decode the boxes whose score reaches ``min_score``.

    Args:
        raw_boxes: (1, 2016, 18) or (2016, 18) regressor output.
        raw_scores: (1, 2016, 1) or (2016, 1) classifier logits.
        anchors: (2016, 4) from :func:`anchors.generate_anchors`.
        min_score: keep detections with score >= this (min_detection_confidence).

    Returns:
        Detections in box order (not sorted), normalised to the model's letterboxed input.
    """
    boxes = np.asarray(raw_boxes, dtype=np.float32).reshape(NUM_BOXES, NUM_COORDS)
    logits = np.asarray(raw_scores, dtype=np.float32).reshape(NUM_BOXES)
    logits = np.clip(logits, -SCORE_CLIPPING_THRESH, SCORE_CLIPPING_THRESH)
    scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    b = boxes[keep].astype(np.float64)
    a = anchors[keep].astype(np.float64)
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    o = BOX_COORD_OFFSET
    x_center = b[:, o] / BOX_SCALE * aw + ax
    y_center = b[:, o + 1] / BOX_SCALE * ah + ay
    w = b[:, o + 2] / BOX_SCALE * aw
    h = b[:, o + 3] / BOX_SCALE * ah
    kp = b[:, KEYPOINT_COORD_OFFSET : KEYPOINT_COORD_OFFSET + NUM_KEYPOINTS * NUM_VALUES_PER_KEYPOINT]
    kp = kp.reshape(-1, NUM_KEYPOINTS, NUM_VALUES_PER_KEYPOINT)
    kx = kp[:, :, 0] / BOX_SCALE * aw[:, None] + ax[:, None]
    ky = kp[:, :, 1] / BOX_SCALE * ah[:, None] + ay[:, None]
    out: list[PalmDetection] = []
    for i in range(keep.size):
        # The calculator drops boxes the model predicted with a negative or NaN size.
        if not (w[i] >= 0.0 and h[i] >= 0.0):
            continue
        xmin = x_center[i] - w[i] / 2.0
        ymin = y_center[i] - h[i] / 2.0
        out.append(
            PalmDetection(
                score=float(scores[keep[i]]),
                box=(float(xmin), float(ymin), float(w[i]), float(h[i])),
                keypoints=np.stack([kx[i], ky[i]], axis=1),
            )
        )
    return out


def weighted_nms(detections: list[PalmDetection], min_suppression: float) -> list[PalmDetection]:
    """NonMaxSuppressionCalculator, WEIGHTED algorithm with IoU overlap.

    Repeatedly takes the best remaining detection, gathers every remaining detection whose IoU
    with it exceeds ``min_suppression`` (itself included), and replaces it by their
    score-weighted average box and keypoints, keeping the best one's score.

    Returns:
        The merged detections, best score first.
    """
    remaining = sorted(detections, key=lambda d: d.score, reverse=True)
    out: list[PalmDetection] = []
    while remaining:
        best = remaining[0]
        candidates: list[PalmDetection] = []
        rest: list[PalmDetection] = []
        for det in remaining:
            (candidates if box_iou(det.box, best.box) > min_suppression else rest).append(det)
        if candidates:
            weights = np.array([c.score for c in candidates], dtype=np.float64)
            total = float(weights.sum())
            corners = np.array([(c.box[0], c.box[1], c.box[0] + c.box[2], c.box[1] + c.box[3]) for c in candidates])
            xmin, ymin, xmax, ymax = (weights @ corners) / total
            keypoints = np.tensordot(weights, np.stack([c.keypoints for c in candidates]), 1) / total
            best = PalmDetection(best.score, (xmin, ymin, xmax - xmin, ymax - ymin), keypoints)
        out.append(best)
        if len(rest) == len(remaining):
            break  # nothing was merged, not even the best itself (NaN box): stop, as MediaPipe does
        remaining = rest
    return out


def remove_letterbox(detection: PalmDetection, letterbox: Letterbox) -> PalmDetection:
    """DetectionLetterboxRemovalCalculator: from the padded tensor's coordinates to the frame's."""
    sx = 1.0 - (letterbox.left + letterbox.right)
    sy = 1.0 - (letterbox.top + letterbox.bottom)
    xmin, ymin, w, h = detection.box
    kp = detection.keypoints
    keypoints = np.stack([(kp[:, 0] - letterbox.left) / sx, (kp[:, 1] - letterbox.top) / sy], axis=1)
    box = ((xmin - letterbox.left) / sx, (ymin - letterbox.top) / sy, w / sx, h / sy)
    return PalmDetection(detection.score, box, keypoints)


def palm_to_hand_rect(detection: PalmDetection, image_width: int, image_height: int) -> NormRect:
    """DetectionsToRectsCalculator then RectTransformationCalculator: the hand region of a palm.

    The palm box's centre and size, rotated so the wrist-to-middle-finger vector points up, then
    shifted half a box towards the fingers, squared on the long side and scaled 2.6x so it holds
    the whole hand.
    """
    xmin, ymin, w, h = detection.box
    kp = detection.keypoints
    rotation = rotation_to_target(
        kp[ROTATION_START_KEYPOINT, 0] * image_width,
        kp[ROTATION_START_KEYPOINT, 1] * image_height,
        kp[ROTATION_END_KEYPOINT, 0] * image_width,
        kp[ROTATION_END_KEYPOINT, 1] * image_height,
        ROTATION_TARGET_RADIANS,
    )
    raw = NormRect(xmin + w / 2.0, ymin + h / 2.0, w, h, rotation)
    return transform_rect(
        raw,
        image_width,
        image_height,
        scale_x=PALM_RECT_SCALE,
        scale_y=PALM_RECT_SCALE,
        shift_y=PALM_RECT_SHIFT_Y,
        square_long=PALM_RECT_SQUARE_LONG,
    )
