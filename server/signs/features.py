"""Hand landmarks to feature vectors that do not care where the hand is, how big it is or how it leans.

Owns the geometry of sign recognition: which hand is mirrored onto which, the keypoint format
shared with Kazuhito00's ``keypoint.csv`` (label index + 42 wrist-relative, max-abs-normalised
x, y values), and the feature vector every classifier here reads. It does not own any model,
threshold or state. Pure numpy; every function takes whole batches (``(N, 21, 3)``) so training
and serving run the same code.

Conventions:

* **Canonical hand.** Features describe a *right hand as an unmirrored camera sees it*. A left
  hand (and a right hand on a mirrored, selfie-view frame) is flipped left-right first, so one
  model serves both hands. With ``Hand.handedness`` in the contract's convention (the signer's
  own hand) and landmarks in the coordinates of the frame as sent, the hand needs flipping when
  it is a left hand on an unmirrored frame or a right hand on a mirrored one.
* **Keypoints.** 21 (x, y) pairs of the canonical hand, the wrist subtracted, divided by the
  largest absolute value, so x0 = y0 = 0 and max |v| = 1; y grows downwards. Kazuhito00's rows
  are already in this orientation (on "Open" the thumb lies to the image right of the little
  finger, as on an unmirrored right palm), so that file imports as it is.
* **Features.** The wrist-relative points are turned in the image plane so the wrist-to-middle-
  knuckle line points up, and divided by the palm's size: that removes position, scale and tilt.
  Because a few letters differ *only* by how the hand is turned (H is a sideways U, P a
  downward K, Q a downward G), the removed angle is kept as two extra features (its cosine and
  sine, weighted by :data:`ORIENTATION_WEIGHT`); a small tilt moves them a little, a quarter
  turn a lot. Depth (z) is not used: ``/api/landmarks`` clients may send none (it is then 0)
  and the keypoint format has none.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from server.landmarks import NUM_LANDMARKS, Hand, Handedness

FloatArray = npt.NDArray[np.float64]

#: Landmark indices (MediaPipe order).
WRIST = 0
MIDDLE_MCP = 9
#: The four knuckles (index, middle, ring, little finger MCP): together they span the palm.
PALM_KNUCKLES = (5, 9, 13, 17)

#: Values in one keypoint row (21 points x (x, y)).
KEYPOINT_VALUES = 2 * NUM_LANDMARKS
#: Length of the feature vector: 20 points x (x, y) (the wrist is always 0) + cos, sin.
FEATURE_SIZE = 2 * (NUM_LANDMARKS - 1) + 2
#: Weight of the orientation pair against the shape values (which are about 0.5-3 each): big
#: enough to tell H from U, small enough that a 20 degree lean barely moves a hand.
ORIENTATION_WEIGHT = 1.0
#: Taught signs weigh the orientation less: a person teaching a gesture shows it at whatever
#: angle comes naturally, and ten examples cannot cover them all (measured on the Kazuhito00
#: gestures: nearest-example accuracy 87.6% at 1.0, 90-91% at 0.3).
TAUGHT_ORIENTATION_WEIGHT = 0.3
#: Below this palm size (in the input's units) the hand is degenerate: all points on top of
#: each other. Its features are all zero rather than a division by ~0.
_MIN_SCALE = 1e-9


def needs_flip(handedness: Handedness, *, mirrored: bool = False) -> bool:
    """Whether a hand must be flipped left-right to become the canonical (right, unmirrored) hand.

    Args:
        handedness: the signer's own hand, in the contract's convention.
        mirrored: whether the landmarks are in the coordinates of a mirrored (selfie-view) frame.

    Returns:
        True for a left hand on an unmirrored frame or a right hand on a mirrored one.
    """
    return (handedness is Handedness.LEFT) != mirrored


def canonical_points(hands: list[Hand] | tuple[Hand, ...], *, mirrored: bool = False) -> FloatArray:
    """The landmarks of several hands as one ``(N, 21, 3)`` array, left hands flipped onto right.

    Args:
        hands: hands with 21 landmarks each.
        mirrored: whether the landmarks are in the coordinates of a mirrored frame.

    Returns:
        float64 array; x of flipped hands negated (only relative positions matter downstream).

    Raises:
        ValueError: a hand without exactly 21 three-dimensional points.
    """
    points = np.array([hand.landmarks for hand in hands], dtype=np.float64).reshape(len(hands), -1)
    if points.shape[1] != 3 * NUM_LANDMARKS:
        raise ValueError(f"expected {NUM_LANDMARKS} (x, y, z) points per hand, got {points.shape[1] / 3:g}")
    points = points.reshape(len(hands), NUM_LANDMARKS, 3)
    flip = np.array([needs_flip(hand.handedness, mirrored=mirrored) for hand in hands], dtype=bool)
    points[flip, :, 0] *= -1.0
    return points


def keypoints_from_points(points: FloatArray) -> FloatArray:
    """Canonical points to keypoint rows (the Kazuhito00 format).

    Args:
        points: ``(N, 21, 2 or 3)`` canonical hands; z, if any, is dropped.

    Returns:
        ``(N, 42)``: x0, y0, ..., x20, y20, wrist-relative, divided by the row's largest
        absolute value (a degenerate row, all points equal, stays all zero).
    """
    xy = points[:, :, :2] - points[:, WRIST : WRIST + 1, :2]
    flat = xy.reshape(len(points), KEYPOINT_VALUES)
    biggest = np.abs(flat).max(axis=1, keepdims=True)
    return np.divide(flat, biggest, out=np.zeros_like(flat), where=biggest > _MIN_SCALE)


def points_from_keypoints(keypoints: FloatArray) -> FloatArray:
    """Keypoint rows back to ``(N, 21, 3)`` canonical points with z = 0.

    Raises:
        ValueError: rows that are not 42 values long.
    """
    if keypoints.ndim != 2 or keypoints.shape[1] != KEYPOINT_VALUES:
        raise ValueError(f"expected rows of {KEYPOINT_VALUES} keypoint values, got shape {keypoints.shape}")
    points = np.zeros((len(keypoints), NUM_LANDMARKS, 3), dtype=np.float64)
    points[:, :, :2] = keypoints.reshape(len(keypoints), NUM_LANDMARKS, 2)
    return points


def features_from_points(points: FloatArray, orientation_weight: float = ORIENTATION_WEIGHT) -> FloatArray:
    """The feature vectors of canonical hands: invariant to position, scale and in-plane tilt.

    Args:
        points: ``(N, 21, 2 or 3)`` canonical hands (see :func:`canonical_points`), in any
            unit where x and y have the same scale; z is ignored.
        orientation_weight: multiplies the (cos, sin) pair.

    Returns:
        ``(N, FEATURE_SIZE)`` float64: the 20 non-wrist points, turned so the wrist-to-middle-
        knuckle line points up (negative y) and divided by the mean wrist-to-knuckle distance,
        then ``orientation_weight * (cos a, sin a)`` of the angle ``a`` that was removed (0 for
        an upright hand, positive when the fingers lean towards +x). A degenerate hand gives
        all zeros.
    """
    # Complex numbers x + iy turn a rotation into one multiplication: fewer numpy calls, which is
    # what a one-hand batch (the serving case) spends its time on.
    z = points[:, :, 0] + 1j * points[:, :, 1]
    rel = z[:, 1:] - z[:, WRIST : WRIST + 1]
    ref = rel[:, MIDDLE_MCP - 1]
    length = np.abs(ref)
    scale = np.abs(rel[:, [k - 1 for k in PALM_KNUCKLES]]).mean(axis=1)
    ok = (scale > _MIN_SCALE) & (length > _MIN_SCALE)
    unit = np.where(ok, ref / np.where(ok, length, 1.0), -1j)
    # ref = |ref| (sin a - i cos a) with a measured from "up" (0, -1) towards +x (y grows down).
    # Multiplying by -i * conj(unit) turns ref onto -i |ref|: straight up.
    turned = rel * (-1j * np.conj(unit) / np.where(ok, scale, 1.0))[:, None]
    out = np.empty((len(points), FEATURE_SIZE))
    out[:, 0 : FEATURE_SIZE - 2 : 2] = turned.real
    out[:, 1 : FEATURE_SIZE - 2 : 2] = turned.imag
    out[:, -2] = -unit.imag * orientation_weight
    out[:, -1] = unit.real * orientation_weight
    out[~ok] = 0.0
    return out


#: Each taught example is also kept stretched vertically by these factors (the capture's aspect
#: ratio, and so the y scale of normalised coordinates, may differ between teaching and use, and
#: an imported keypoint file comes from an unknown camera), and mirrored left-right (x factor
#: -1): in two dimensions a palm and the back of the same hand are mirror images, handedness
#: from the model is sometimes wrong, and the keypoint format records none (the Kazuhito00 table
#: mixes both: its "Open" rows show the thumb on either side).
TAUGHT_STRETCHES = ((1.0, 0.8), (1.0, 1.0), (1.0, 1.25), (-1.0, 0.8), (-1.0, 1.0), (-1.0, 1.25))


def taught_features(points: FloatArray) -> FloatArray:
    """Features of taught examples, one block of N rows per factor of :data:`TAUGHT_STRETCHES`.

    Args:
        points: ``(N, 21, 2 or 3)`` canonical hands.

    Returns:
        ``(len(TAUGHT_STRETCHES) * N, FEATURE_SIZE)``; row ``i + k * N`` is example ``i``
        stretched by factor ``k``.
    """
    blocks = []
    for factors in TAUGHT_STRETCHES:
        stretched = points[:, :, :2] * np.array(factors)
        blocks.append(features_from_points(stretched, TAUGHT_ORIENTATION_WEIGHT))
    out: FloatArray = np.concatenate(blocks)
    return out
