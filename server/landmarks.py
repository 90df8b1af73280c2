"""Value types for what the hand model finds: :class:`Hand` and :class:`FrameResult`.

Pure data: no I/O, no model, no JSON (``messages.py`` owns the wire shape). Coordinates follow
``shared/API.md``: ``landmarks`` are (x, y, z) with x, y normalised to the frame the model saw;
``world_landmarks`` are metres; ``handedness`` is the signer's own hand for an unmirrored frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: MediaPipe's hand has 21 points: wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20.
NUM_LANDMARKS = 21

Point = tuple[float, float, float]


class Handedness(StrEnum):
    LEFT = "Left"
    RIGHT = "Right"

    def flipped(self) -> Handedness:
        return Handedness.RIGHT if self is Handedness.LEFT else Handedness.LEFT


@dataclass(frozen=True, slots=True)
class Hand:
    """One detected (or client-supplied) hand.

    Attributes:
        handedness: the signer's own hand, in the contract's convention.
        score: confidence in ``handedness``, 0-1.
        landmarks: 21 (x, y, z) points, x and y normalised to the frame.
        world_landmarks: 21 (x, y, z) points in metres, or ``None`` when a client sent none.
    """

    handedness: Handedness
    score: float
    landmarks: tuple[Point, ...]
    world_landmarks: tuple[Point, ...] | None = None


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What the model made of one frame.

    Attributes:
        width, height: the frame as the model saw it, after the fit to 640x480.
        hands: the hands found, possibly none.
        decode_ms, inference_ms: time spent in the worker on each stage.
        tracked: whether the frame was answered from a tracking state (vs detection from scratch).
    """

    width: int
    height: int
    hands: tuple[Hand, ...]
    decode_ms: float
    inference_ms: float
    tracked: bool = False


class SignSource(StrEnum):
    BUILTIN = "builtin"
    TAUGHT = "taught"


@dataclass(frozen=True, slots=True)
class Sign:
    """A recognised sign, as the contract's ``result.sign`` carries it.

    Attributes:
        label: the sign's name ("A", or a taught label).
        confidence: 0-1.
        stable: true once the label has held long enough to be shown to a reader.
        source: built-in or taught.
    """

    label: str
    confidence: float
    stable: bool
    source: SignSource
