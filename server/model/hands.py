"""The MediaPipe engine: ``mp.solutions.hands`` graphs behind the :class:`HandEngine` seam.

Runs only inside the model worker. A graph is not thread-safe and, in tracking mode, carries
state from frame to frame, so:

- one *image-mode* graph (detection from scratch, no state) serves every frame that has no
  tracking slot, which makes it safe to share between sessions;
- up to ``tracking_sessions`` *tracking-mode* graphs are handed out one per session, first come
  first served; a session that finds every slot taken is answered by the image-mode graph
  (correct, just slower), so no session ever sees another's hands.

Graphs are created lazily: each costs about 60 MB that the process never returns, so a worker
only grows to what it has used. A slot freed by a session ending is ``reset()`` (clears the
tracking state) before the next session gets it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from server.model.engine import RawHand
from server.model.files import as_complexity, describe, hand_model_files

log = logging.getLogger(__name__)

_COMPLEXITY = {"lite": 0, "full": 1}


class MediaPipeEngine:
    """Hand landmarks from MediaPipe's own graph.

    Args:
        complexity: "lite" or "full" models.
        max_hands: the most hands reported per frame.
        min_detection_confidence, min_tracking_confidence: as MediaPipe defines them.
        tracking_sessions: how many sessions may hold a tracking graph at once (0: none).
    """

    def __init__(
        self,
        complexity: str,
        max_hands: int,
        min_detection_confidence: float,
        min_tracking_confidence: float,
        tracking_sessions: int,
    ) -> None:
        # Imported here, not at module level: importing this module must stay cheap, and only
        # the worker process ever constructs an engine.
        import mediapipe as mp

        self._hands_cls: Any = mp.solutions.hands.Hands
        self._complexity = complexity
        self._options = {
            "max_num_hands": max_hands,
            "model_complexity": _COMPLEXITY[complexity],
            "min_detection_confidence": min_detection_confidence,
            "min_tracking_confidence": min_tracking_confidence,
        }
        self._max_tracking = tracking_sessions
        self._image_graph: Any = None
        self._free: list[Any] = []
        self._by_session: dict[str, Any] = {}
        self._created_tracking = 0

    def _graph_for(self, session: str | None) -> tuple[Any, bool]:
        if session is not None:
            graph = self._by_session.get(session)
            if graph is not None:
                return graph, True
            if self._free:
                graph = self._free.pop()
            elif self._created_tracking < self._max_tracking:
                graph = self._hands_cls(static_image_mode=False, **self._options)
                self._created_tracking += 1
            if graph is not None:
                self._by_session[session] = graph
                return graph, True
        if self._image_graph is None:
            self._image_graph = self._hands_cls(static_image_mode=True, **self._options)
        return self._image_graph, False

    def load(self) -> None:
        """Build the image-mode graph now (the first frame would otherwise pay for it)."""
        self._graph_for(None)

    def process(self, rgb: npt.NDArray[np.uint8], session: str | None) -> tuple[list[RawHand], bool]:
        graph, tracked = self._graph_for(session)
        result = graph.process(rgb)
        hands: list[RawHand] = []
        found = result.multi_hand_landmarks or []
        world = result.multi_hand_world_landmarks or []
        labels = result.multi_handedness or []
        for landmarks, world_landmarks, handedness in zip(found, world, labels, strict=True):
            category = handedness.classification[0]
            hands.append(
                RawHand(
                    label=str(category.label),
                    score=float(category.score),
                    landmarks=np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32),
                    world_landmarks=np.array([(p.x, p.y, p.z) for p in world_landmarks.landmark], dtype=np.float32),
                )
            )
        return hands, tracked

    def end_session(self, session: str) -> None:
        graph = self._by_session.pop(session, None)
        if graph is not None:
            # reset() restarts the graph run: tracking state is gone before anyone else uses it.
            graph.reset()
            self._free.append(graph)

    def model_files(self) -> list[tuple[str, str]]:
        files = hand_model_files(as_complexity(self._complexity))
        return [(f.path, f.sha256) for f in describe(files.models())]

    def close(self) -> None:
        graphs = [self._image_graph, *self._free, *self._by_session.values()]
        for graph in graphs:
            if graph is not None:
                graph.close()
        self._image_graph = None
        self._free.clear()
        self._by_session.clear()
