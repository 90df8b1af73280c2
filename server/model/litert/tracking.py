"""Per-session tracking state and the rule for when to run palm detection.

Owns what one session remembers between frames (the hand regions derived from its last
landmarks, and how long ago palm detection last ran) and a bounded store of such states keyed by
session id, with least-recently-used eviction. Runs no model and touches no pixels: the engine
asks :meth:`SessionState.needs_detection`, runs the models, and hands the outcome back with
:meth:`SessionState.advance`.

The rule generalises the hand graph's (``hand_landmark_tracking_cpu``: palm detection runs
whenever fewer than ``num_hands`` regions came out of the previous frame's landmarks). With
``detect_interval_frames == 1`` it is exactly that rule; larger intervals skip palm detection
while at least one hand is tracked and none was just lost, to find a newly raised hand within
``detect_interval_frames`` frames at a fraction of the cost.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from server.model.litert.geometry import NormRect


@dataclass(slots=True)
class SessionState:
    """What one session carries from frame to frame (a few hundred bytes).

    Attributes:
        rects: the regions to run the landmark model on next frame, from this frame's landmarks.
        frames_since_detection: frames processed since palm detection last ran.
        lost_hand: a tracked region failed the presence test on the last frame.
    """

    rects: list[NormRect] = field(default_factory=list)
    frames_since_detection: int = 0
    lost_hand: bool = False

    def needs_detection(self, max_hands: int, detect_interval_frames: int) -> bool:
        """Whether this frame must run palm detection.

        Never when ``max_hands`` hands are tracked (the graph's rule, checked first so that
        interval 1 is exactly the graph even when a third overlapping region was dropped);
        otherwise always when nothing is tracked (the first frame, or every hand gone) or a
        hand was lost on the last frame, and else once every ``detect_interval_frames`` frames,
        to pick up a hand that entered the view.
        """
        if len(self.rects) >= max_hands:
            return False
        if not self.rects or self.lost_hand:
            return True
        return self.frames_since_detection + 1 >= detect_interval_frames

    def advance(self, rects: list[NormRect], *, detected: bool, lost_hand: bool) -> None:
        """Record this frame's outcome: the next regions, whether detection ran, whether a
        tracked hand was lost."""
        self.rects = rects
        self.frames_since_detection = 0 if detected else self.frames_since_detection + 1
        self.lost_hand = lost_hand


class SessionStore:
    """Session states by id, at most ``max_sessions`` of them, least recently used evicted first.

    Not thread-safe: one worker process serves frames one at a time. An evicted session simply
    starts again from palm detection on its next frame, so eviction costs latency, never
    correctness.
    """

    def __init__(self, max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self._max_sessions = max_sessions
        self._states: OrderedDict[str, SessionState] = OrderedDict()

    def get(self, session: str) -> SessionState:
        """The session's state, created empty when new; marks it most recently used."""
        state = self._states.get(session)
        if state is None:
            state = SessionState()
            self._states[session] = state
            while len(self._states) > self._max_sessions:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(session)
        return state

    def discard(self, session: str) -> None:
        """Forget a session; unknown ids are ignored."""
        self._states.pop(session, None)

    def clear(self) -> None:
        self._states.clear()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, session: object) -> bool:
        return session in self._states
