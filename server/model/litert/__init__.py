"""MediaPipe's hand models run directly on LiteRT, without the MediaPipe graph (issue 7).

``engine.LiteRTEngine`` implements the worker's hand-engine seam; the modules beside it are the
pure stages of the hand graph ``hand_landmark_tracking_cpu`` (mediapipe 0.10.21), each citing the
graph node its constants come from:

- ``anchors``: SSD anchors of the palm detector;
- ``palm``: palm tensors to palm detections to hand regions;
- ``geometry``: rotated regions, their de-duplication, and the crop into a model tensor;
- ``landmark``: landmark tensors to projected landmarks, presence, handedness, world landmarks;
- ``tracking``: per-session state and when to run palm detection;
- ``models``: the model files inside the mediapipe wheel, found without importing mediapipe.

Hands are ``server.model.engine.RawHand``, the seam's own type.

Nothing here imports mediapipe; LiteRT is imported only when an engine is built.
"""

from __future__ import annotations

from server.model.engine import RawHand
from server.model.litert.engine import LiteRTEngine

__all__ = ["LiteRTEngine", "RawHand"]
