"""features.py: invariances, mirroring, the keypoint format, and the fixtures' orientation."""

from __future__ import annotations

import numpy as np
import pytest

from server.landmarks import Hand, Handedness
from server.signs.features import (
    FEATURE_SIZE,
    KEYPOINT_VALUES,
    canonical_points,
    features_from_points,
    keypoints_from_points,
    needs_flip,
    points_from_keypoints,
)
from server.signs.train import ASL_CSV, DEFAULT_FIXTURES, load_gestures, load_letters


@pytest.fixture(scope="module")
def letters_points() -> np.ndarray:
    return load_letters(DEFAULT_FIXTURES / ASL_CSV).points[::50]


def _turn(points: np.ndarray, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    out = points.copy()
    out[:, :, 0] = points[:, :, 0] * np.cos(a) - points[:, :, 1] * np.sin(a)
    out[:, :, 1] = points[:, :, 0] * np.sin(a) + points[:, :, 1] * np.cos(a)
    return out


def test_shape_features_ignore_position_scale_and_tilt(letters_points: np.ndarray) -> None:
    base = features_from_points(letters_points)
    moved = features_from_points(letters_points * 3.7 + np.array([0.2, -0.4, 0.1]))
    np.testing.assert_allclose(moved, base, atol=1e-9)
    turned = features_from_points(_turn(letters_points, 20.0))
    # The shape part is unchanged; only the orientation pair moves, and only a little.
    np.testing.assert_allclose(turned[:, :-2], base[:, :-2], atol=1e-9)
    assert np.abs(turned[:, -2:] - base[:, -2:]).max() < 0.4


def test_a_quarter_turn_moves_the_orientation_features_a_lot(letters_points: np.ndarray) -> None:
    base = features_from_points(letters_points)
    turned = features_from_points(_turn(letters_points, 90.0))
    assert np.linalg.norm(turned[:, -2:] - base[:, -2:], axis=1).min() > 1.0


def test_left_hand_is_mirrored_onto_right() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(0.2, 0.8, (21, 3))
    right = Hand(Handedness.RIGHT, 0.9, tuple(map(tuple, pts)))
    mirror = pts.copy()
    mirror[:, 0] = 1.0 - mirror[:, 0]
    left = Hand(Handedness.LEFT, 0.9, tuple(map(tuple, mirror)))
    both = features_from_points(canonical_points([right, left]))
    np.testing.assert_allclose(both[0], both[1], atol=1e-9)
    # The same left hand on a mirrored (selfie) frame is geometrically a right hand.
    selfie = canonical_points([left], mirrored=True)
    as_right = canonical_points([Hand(Handedness.RIGHT, 1.0, left.landmarks)])
    np.testing.assert_allclose(features_from_points(selfie), features_from_points(as_right), atol=1e-12)


def test_needs_flip_table() -> None:
    assert needs_flip(Handedness.LEFT)
    assert not needs_flip(Handedness.RIGHT)
    assert needs_flip(Handedness.RIGHT, mirrored=True)
    assert not needs_flip(Handedness.LEFT, mirrored=True)


def test_keypoints_round_trip_and_format() -> None:
    _names, _idx, keypoints = load_gestures(DEFAULT_FIXTURES)
    rows = keypoints[:50]
    again = keypoints_from_points(points_from_keypoints(rows))
    np.testing.assert_allclose(again, rows, atol=1e-12)
    assert again.shape[1] == KEYPOINT_VALUES
    np.testing.assert_allclose(np.abs(again).max(axis=1), 1.0)
    assert np.all(again[:, :2] == 0.0)


def test_both_fixtures_end_up_in_the_same_orientation(letters_points: np.ndarray) -> None:
    # On a flat palm facing the camera the index knuckle (5) lies on the thumb side; in the
    # canonical hand (a right hand, unmirrored) that is +x of the little-finger knuckle (17).
    letters = load_letters(DEFAULT_FIXTURES / ASL_CSV)
    b = letters.points[letters.y == letters.labels.index("B")]
    assert np.median(b[:, 5, 0] - b[:, 17, 0]) > 0
    # Kazuhito00's table mixes both (palm and back, or both hands: it records no handedness);
    # its first "Open" rows are in the canonical orientation, so the file imports unflipped.
    names, idx, keypoints = load_gestures(DEFAULT_FIXTURES)
    open_hand = points_from_keypoints(keypoints[idx == names.index("Open")][:200])
    assert np.mean(open_hand[:, 5, 0] > open_hand[:, 17, 0]) > 0.6


def test_degenerate_hand_gives_zero_features() -> None:
    same = np.full((1, 21, 3), 0.5)
    out = features_from_points(same)
    assert out.shape == (1, FEATURE_SIZE)
    assert not out.any()


def test_wrong_point_count_is_refused() -> None:
    hand = Hand(Handedness.RIGHT, 1.0, ((0.0, 0.0, 0.0),) * 20)
    with pytest.raises(ValueError, match="21"):
        canonical_points([hand])
    with pytest.raises(ValueError, match="42"):
        points_from_keypoints(np.zeros((1, 40)))
