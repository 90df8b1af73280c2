"""Per-session smoothing, hysteresis, ``stable`` and the text built from stable signs.

Owns the time dimension of recognition for *one* client: a short majority-vote window over
per-frame answers, the rule that decides when the shown label changes, when ``stable`` turns
true, and when a letter (or a space) joins the text. It does not classify anything and holds
no hand, only labels; its memory is bounded by the window and ``max_text_chars``.

The rules (``shared/API.md``, "Signs"):

* **Smoothing.** The last ``smoothing_frames`` answers vote; "no sign" and "no hand" vote too.
* **Hysteresis.** The shown label changes only when another label (or "no sign") has a strict
  majority of the window; until then the current one stays, even through a frame or two of
  doubt. So a flicker never reaches the client.
* **Stable** is a level, not a pulse: false while a new label settles, true from the frame it
  has been shown for ``stable_frames`` frames, and on every following frame while it stays
  shown. A client building text appends on the frame where it turns from false to true, as
  the contract says; the server's own ``text`` does exactly that. To sign a double letter,
  the signer relaxes the hand (or shows another shape) between the two, as fingerspellers do.
* **Text.** A single-character label is appended as it is; a longer (taught) label is appended
  as a word, with spaces around it. After ``space_after_frames`` frames without a hand, one
  space is added (never two in a row, never at the start).
* A frame without a hand answers ``None`` even while the vote still holds a label: there is
  no hand to describe.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from server.landmarks import Sign, SignSource


@dataclass(frozen=True, slots=True)
class _Vote:
    label: str
    source: SignSource
    confidence: float


class Stabilizer:
    """The time rules for one client; mutable, never shared between clients.

    Args:
        smoothing_frames: size of the voting window (>= 1).
        stable_frames: frames a shown label must hold before ``stable`` is true (>= 1).
        space_after_frames: frames without a hand that add a space (>= 1).
        max_text_chars: the text keeps at most this many of its newest characters.
    """

    def __init__(
        self, *, smoothing_frames: int, stable_frames: int, space_after_frames: int, max_text_chars: int
    ) -> None:
        self._window_size = max(1, smoothing_frames)
        self._window: deque[_Vote | None] = deque(maxlen=self._window_size)
        self._stable_frames = max(1, stable_frames)
        self._space_after = max(1, space_after_frames)
        self._max_text = max(0, max_text_chars)
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen and the text."""
        self._window.clear()
        self._shown: tuple[str, SignSource] | None = None
        self._held = 0
        self._stable = False
        self._without_hand = 0
        self._text = ""

    @property
    def text(self) -> str:
        return self._text

    def push(self, raw: Sign | None, *, hand_present: bool) -> Sign | None:
        """Take one frame's answer and say what to show.

        Args:
            raw: the frame's own classification (``stable`` ignored), ``None`` for no sign.
            hand_present: whether the frame had a hand at all.

        Returns:
            The smoothed sign with ``stable`` set, or ``None``.
        """
        self._window.append(None if raw is None else _Vote(raw.label, raw.source, raw.confidence))
        self._without_hand = 0 if hand_present else self._without_hand + 1
        if self._without_hand == self._space_after and self._text and not self._text.endswith(" "):
            self._append(" ")

        counts: dict[tuple[str, SignSource] | None, int] = {}
        for vote in self._window:
            key = None if vote is None else (vote.label, vote.source)
            counts[key] = counts.get(key, 0) + 1
        leader = max(counts, key=lambda k: counts[k])
        # A strict majority of the full window, so the first frames after a reset cannot win alone.
        if leader != self._shown and 2 * counts[leader] > self._window_size:
            self._shown, self._held, self._stable = leader, 0, False
        self._held += 1
        if self._shown is not None and not self._stable and self._held >= self._stable_frames:
            self._stable = True
            self._append_label(self._shown[0])

        if self._shown is None or not hand_present:
            return None
        label, source = self._shown
        confidences = [v.confidence for v in self._window if v is not None and (v.label, v.source) == self._shown]
        confidence = sum(confidences) / len(confidences) if confidences else 0.0
        return Sign(label=label, confidence=confidence, stable=self._stable, source=source)

    def _append_label(self, label: str) -> None:
        if len(label) == 1:
            self._append(label)
            return
        if self._text and not self._text.endswith(" "):
            self._append(" ")
        self._append(label + " ")

    def _append(self, piece: str) -> None:
        self._text = (self._text + piece)[-self._max_text :] if self._max_text else ""
