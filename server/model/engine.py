"""The seam between the worker loop and a hand engine.

A hand engine takes fitted RGB pixels and returns hands in *MediaPipe's own* handedness
convention (which assumes a mirrored, selfie-view image); the worker converts to the wire
contract's convention. Engines own their tracking state per session and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class RawHand:
    """One hand as an engine reports it.

    Attributes:
        label: "Left" or "Right" as MediaPipe reports it (mirrored-image convention).
        score: the handedness score, 0-1.
        landmarks: (21, 3) float32; x, y normalised to the image, z as MediaPipe gives it.
        world_landmarks: (21, 3) float32, metres.
    """

    label: str
    score: float
    landmarks: npt.NDArray[np.float32]
    world_landmarks: npt.NDArray[np.float32]


class HandEngine(Protocol):
    def process(self, rgb: npt.NDArray[np.uint8], session: str | None) -> tuple[list[RawHand], bool]:
        """Find hands in one frame.

        Args:
            rgb: HxWx3 uint8 RGB, already fitted within 640x480, at least 1x1.
            session: the tracking session, or ``None`` for detection from scratch (no state).

        Returns:
            The hands, and whether the frame was answered from a tracking state.
        """
        ...

    def end_session(self, session: str) -> None:
        """Forget a session's tracking state (unknown sessions are ignored)."""
        ...

    def model_files(self) -> list[tuple[str, str]]:
        """(absolute path, sha256 hex) of every model file the engine uses."""
        ...

    def close(self) -> None: ...
