"""The value an engine returns per hand.

Mirrors ``RawHand`` of the engine seam (``server/model/engine.py``, owned by the worker). It is
defined here until that module is committed, so this package never depends on an uncommitted
file; the two have the same fields and once the seam lands this module should re-export it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class RawHand:
    """One hand as an engine reports it.

    Attributes:
        label: "Left" or "Right" as MediaPipe reports it (MediaPipe assumes a mirrored image).
        score: the handedness score, 0-1.
        landmarks: (21, 3) float32; x, y normalised to the image, z as MediaPipe gives it.
        world_landmarks: (21, 3) float32, metres.
    """

    label: str
    score: float
    landmarks: npt.NDArray[np.float32]
    world_landmarks: npt.NDArray[np.float32]
