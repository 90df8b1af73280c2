"""Hand regions and the image crops cut from them, as MediaPipe's hand graph computes them.

Owns the rotated rectangles of the pipeline (:class:`NormRect`, normalised to the frame, and
:class:`PixelRoi`), their transformations and de-duplication, and the affine crop that turns a
region into a model input tensor. It knows nothing about the models' outputs (``palm.py`` and
``landmark.py``) or sessions (``tracking.py``).

Every function mirrors one calculator of ``hand_landmark_tracking_cpu.binarypb`` (mediapipe
0.10.21) and says which. The calculators work in float32; these work in float64, which moves
results by ~1e-7, far inside the parity tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

#: ``std::numeric_limits<float>::min()``: the smallest positive float32. MediaPipe's
#: HandLandmarksToRectCalculator seeds its running maxima with it (not with -inf), so a hand
#: entirely left of or above the frame gets a bounding box that reaches 0; reproduced on purpose.
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True, slots=True)
class NormRect:
    """A rotated rectangle normalised to the frame (MediaPipe's ``NormalizedRect``).

    Attributes:
        x_center, y_center: centre, as fractions of the frame's width and height.
        width, height: size, as fractions of the frame's width and height.
        rotation: radians, clockwise in image coordinates (y down), in [-pi, pi).
    """

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0


@dataclass(frozen=True, slots=True)
class PixelRoi:
    """A rotated rectangle in pixels (MediaPipe's ``RotatedRect`` inside ImageToTensorCalculator)."""

    center_x: float
    center_y: float
    width: float
    height: float
    rotation: float


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Padding added on each side of a crop, as fractions of the tensor (left, top, right, bottom)."""

    left: float
    top: float
    right: float
    bottom: float


def normalize_radians(angle: float) -> float:
    """Wrap an angle into [-pi, pi), as MediaPipe's ``NormalizeRadians``."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def rotation_to_target(x0: float, y0: float, x1: float, y1: float, target: float) -> float:
    """Rotation that turns the vector (x0, y0) -> (x1, y1), in pixels, to ``target`` radians.

    Shared by DetectionsToRectsCalculator (palm keypoints) and HandLandmarksToRectCalculator.
    """
    return normalize_radians(target - math.atan2(-(y1 - y0), x1 - x0))


def transform_rect(
    rect: NormRect,
    image_width: int,
    image_height: int,
    *,
    scale_x: float,
    scale_y: float,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    square_long: bool = False,
) -> NormRect:
    """RectTransformationCalculator on a normalised rect: shift along the rotated axes, then
    optionally square on the long side (in pixels), then scale.

    The shift is in units of the rect's own size, applied in the rect's rotated frame and
    converted through pixels so that it is isotropic on non-square frames.
    """
    w, h, r = rect.width, rect.height, rect.rotation
    if r == 0.0:
        x = rect.x_center + w * shift_x
        y = rect.y_center + h * shift_y
    else:
        dx = image_width * w * shift_x * math.cos(r) - image_height * h * shift_y * math.sin(r)
        dy = image_width * w * shift_x * math.sin(r) + image_height * h * shift_y * math.cos(r)
        x = rect.x_center + dx / image_width
        y = rect.y_center + dy / image_height
    if square_long:
        long_side = max(w * image_width, h * image_height)
        w = long_side / image_width
        h = long_side / image_height
    return NormRect(x, y, w * scale_x, h * scale_y, r)


#: The landmarks HandLandmarksToRectCalculator bounds and orients the hand with: wrist, thumb
#: 1-3 and the two joints nearest the palm of each finger, leaving out the fingertips, which move
#: the most between frames. Measured, not read: on mediapipe 0.10.21 the graph's
#: ``hand_rects_from_landmarks`` equals this subset's rect to 1e-6, and the rect of all 21 points
#: misses by up to 0.6 (the calculator's public source indexes a 12-point list; see
#: tests/test_litert_parity.py, which compares these rects with the graph's).
TRACKING_SUBSET = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)

#: Within that subset: the wrist, then what the calculator calls the index, middle and ring
#: finger joints (subset positions 4, 6, 8: landmarks 5, 9, 13, the knuckles).
_WRIST, _INDEX, _MIDDLE, _RING = 0, 4, 6, 8


def landmarks_to_rect(landmarks_xy: npt.NDArray[np.float64], image_width: int, image_height: int) -> NormRect:
    """HandLandmarksToRectCalculator: the tight rect around the hand, rotated upright.

    Uses the :data:`TRACKING_SUBSET` points. The rotation takes the wrist towards
    ((index + ring) / 2 + middle) / 2 of the knuckles; the rect is the tightest box around the
    points in that rotated frame.

    Args:
        landmarks_xy: (21, 2) normalised x, y.
    """
    pts = np.asarray(landmarks_xy, dtype=np.float64)[list(TRACKING_SUBSET)]
    x0, y0 = pts[_WRIST, 0] * image_width, pts[_WRIST, 1] * image_height
    mx = ((pts[_INDEX, 0] + pts[_RING, 0]) / 2.0 + pts[_MIDDLE, 0]) / 2.0 * image_width
    my = ((pts[_INDEX, 1] + pts[_RING, 1]) / 2.0 + pts[_MIDDLE, 1]) / 2.0 * image_height
    rotation = rotation_to_target(x0, y0, mx, my, math.pi / 2.0)
    reverse = normalize_radians(-rotation)

    max_x = max(_FLOAT32_TINY, float(pts[:, 0].max()))
    max_y = max(_FLOAT32_TINY, float(pts[:, 1].max()))
    min_x = float(pts[:, 0].min())
    min_y = float(pts[:, 1].min())
    cx_axis = (max_x + min_x) / 2.0
    cy_axis = (max_y + min_y) / 2.0

    ox = (pts[:, 0] - cx_axis) * image_width
    oy = (pts[:, 1] - cy_axis) * image_height
    c, s = math.cos(reverse), math.sin(reverse)
    px = ox * c - oy * s
    py = ox * s + oy * c
    pmax_x = max(_FLOAT32_TINY, float(px.max()))
    pmax_y = max(_FLOAT32_TINY, float(py.max()))
    pmin_x, pmin_y = float(px.min()), float(py.min())
    pcx = (pmax_x + pmin_x) / 2.0
    pcy = (pmax_y + pmin_y) / 2.0

    cr, sr = math.cos(rotation), math.sin(rotation)
    center_x = pcx * cr - pcy * sr + image_width * cx_axis
    center_y = pcx * sr + pcy * cr + image_height * cy_axis
    return NormRect(
        center_x / image_width,
        center_y / image_height,
        (pmax_x - pmin_x) / image_width,
        (pmax_y - pmin_y) / image_height,
        rotation,
    )


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (xmin, ymin, width, height) boxes; 0 when disjoint."""
    ax1, ay1 = a[0] + a[2], a[1] + a[3]
    bx1, by1 = b[0] + b[2], b[1] + b[3]
    if a[2] < 0 or a[3] < 0 or b[2] < 0 or b[3] < 0:
        return 0.0
    if bx1 < a[0] or ax1 < b[0] or by1 < a[1] or ay1 < b[1]:
        return 0.0
    inter = max(0.0, min(ax1, bx1) - max(a[0], b[0])) * max(0.0, min(ay1, by1) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0.0 else 0.0


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two (xmin, ymin, width, height) boxes, as MediaPipe's ``CalculateIou``."""
    return _iou(a, b)


def _axis_box(rect: NormRect) -> tuple[float, float, float, float]:
    # AssociationNormRectCalculator compares rects as axis-aligned boxes in normalised units,
    # ignoring rotation.
    return (
        rect.x_center - rect.width / 2.0,
        rect.y_center - rect.height / 2.0,
        rect.width,
        rect.height,
    )


def associate_rects(rects: list[NormRect], min_similarity: float) -> list[NormRect]:
    """AssociationNormRectCalculator: drop earlier rects that a later one overlaps.

    Rects are taken in order (the graph passes palm-detection rects first, then the rects
    tracked from the previous frame's landmarks), and each one evicts every rect already kept
    whose IoU with it exceeds ``min_similarity``; so a tracked region beats a fresh detection of
    the same hand, and the survivors keep their arrival order.
    """
    kept: list[NormRect] = []
    for rect in rects:
        box = _axis_box(rect)
        kept = [other for other in kept if _iou(box, _axis_box(other)) <= min_similarity]
        kept.append(rect)
    return kept


def rect_to_roi(rect: NormRect | None, image_width: int, image_height: int) -> PixelRoi:
    """ImageToTensorCalculator's ``GetRoi``: a normalised rect in pixels (None: the whole frame)."""
    if rect is None:
        return PixelRoi(0.5 * image_width, 0.5 * image_height, image_width, image_height, 0.0)
    return PixelRoi(
        rect.x_center * image_width,
        rect.y_center * image_height,
        rect.width * image_width,
        rect.height * image_height,
        rect.rotation,
    )


def pad_roi(roi: PixelRoi, tensor_width: int, tensor_height: int) -> tuple[PixelRoi, Letterbox]:
    """ImageToTensorCalculator's ``PadRoi`` with ``keep_aspect_ratio: true``.

    Grows the roi's short side so it has the tensor's aspect ratio, and reports the padding as
    fractions of the tensor, which letterbox removal later takes back off.
    """
    tensor_aspect = tensor_height / tensor_width
    roi_aspect = roi.height / roi.width
    if tensor_aspect > roi_aspect:
        vertical = (1.0 - roi_aspect / tensor_aspect) / 2.0
        padded = replace(roi, height=roi.width * tensor_aspect)
        return padded, Letterbox(0.0, vertical, 0.0, vertical)
    horizontal = (1.0 - tensor_aspect / roi_aspect) / 2.0
    padded = replace(roi, width=roi.height / tensor_aspect)
    return padded, Letterbox(horizontal, 0.0, horizontal, 0.0)


def crop_to_tensor(
    rgb: npt.NDArray[np.uint8],
    roi: PixelRoi,
    tensor_width: int,
    tensor_height: int,
    border: Literal["zero", "replicate"],
) -> npt.NDArray[np.float32]:
    """ImageToTensorCalculator's OpenCV converter: warp the rotated roi to a (1, H, W, 3) tensor
    with values in [0, 1].

    The same OpenCV calls as the calculator (``boxPoints`` of the rotated rect, a perspective
    transform onto the tensor corners, bilinear ``warpPerspective``, then scale by 1/255) give
    the same pixels, which is what keeps the models' outputs within 1e-5 of the graph's.
    """
    box = ((roi.center_x, roi.center_y), (roi.width, roi.height), math.degrees(roi.rotation))
    src = cv2.boxPoints(box).astype(np.float32)
    w, h = float(tensor_width), float(tensor_height)
    # boxPoints returns bottom-left, top-left, top-right, bottom-right; map them onto the
    # tensor's corners in the same order, as the calculator does.
    dst = np.array([[0.0, h], [0.0, 0.0], [w, 0.0], [w, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    border_mode = cv2.BORDER_CONSTANT if border == "zero" else cv2.BORDER_REPLICATE
    warped = cv2.warpPerspective(
        rgb, matrix, (tensor_width, tensor_height), flags=cv2.INTER_LINEAR, borderMode=border_mode
    )
    # 1/255 rounded to float32, as GetValueRangeTransformation(0, 255, 0, 1) computes it.
    tensor = warped.astype(np.float32) * np.float32(1.0 / 255.0)
    return tensor.reshape(1, tensor_height, tensor_width, 3)
