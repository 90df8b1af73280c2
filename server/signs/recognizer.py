"""The recognizer: built-in letters + taught signs, per-client sessions, teaching and forgetting.

Owns the decision from one frame's hands to a :class:`~server.landmarks.Sign` or ``None``, the
rules for labels that may be taught, and the bounded table of HTTP sessions. It does not own
the arithmetic (``features.py``, ``classifier.py``), time (``stability.py``) or the disk
(``store.py``), and it never touches the network.

One :class:`Recognizer` lives per server process. Its models are immutable snapshots swapped
in one assignment, so a frame classified while a teach runs in another thread sees either the
old or the new set, never half of each; writes are serialised by a lock. A taught sign is
recognised from the first frame classified after :meth:`Recognizer.teach` returns.

Which answer wins: the hand with the highest ``score`` is classified. A built-in letter is
*accepted* when its probability is at least ``min_confidence`` and the hand lies within
``unknown_distance * unknown_scale`` of a letter prototype. A taught sign is answered when the
hand lies within ``taught_max_distance`` of one of its examples and either no letter is
accepted or the taught example is at most ``taught_preference`` times as far as the nearest
letter prototype; otherwise the accepted letter, otherwise ``None``. The preference exists
because ten taught examples cover a shape far more sparsely than 720 letter prototypes do.
Measured with Open/Close/Pointer taught (10 each): "taught always wins" took 97% of held-out
letter frames; "nearest wins" (preference 1) recognised 88% of the gestures' held-out rows;
preference 2 recognises 90.7% and leaves 98.9% of letter frames to the letters.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.errors import BadRequest, NotFound
from server.landmarks import Hand, Sign, SignSource
from server.signs.classifier import DEFAULT_WEIGHTS_PATH, LetterModel, TaughtModel, load_letter_model
from server.signs.config import SignsConfig
from server.signs.features import (
    TAUGHT_ORIENTATION_WEIGHT,
    TAUGHT_STRETCHES,
    FloatArray,
    canonical_points,
    features_from_points,
    keypoints_from_points,
    points_from_keypoints,
    taught_features,
)
from server.signs.stability import Stabilizer
from server.signs.store import SignStore, SqliteSignStore

#: A taught label: 1-32 ASCII letters, digits, ``_`` or ``-``. Case matters, but a label equal
#: to a built-in letter in any case ("a") is refused, so text never mixes the two.
LABEL_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")


def check_label(label: str) -> str:
    """Return ``label`` if it follows :data:`LABEL_PATTERN`.

    Raises:
        BadRequest: it does not.
    """
    if not LABEL_PATTERN.fullmatch(label):
        shown = label if len(label) <= 40 else label[:37] + "..."
        raise BadRequest(f"label: expected 1-32 letters, digits, '_' or '-', got {shown!r}")
    return label


@dataclass(frozen=True, slots=True)
class _Taught:
    """The taught signs as the classifier sees them, plus the raw rows for counting/export."""

    model: TaughtModel
    examples: dict[str, FloatArray]


def _build_taught(examples: dict[str, FloatArray]) -> _Taught:
    labels = tuple(sorted(examples))
    if not labels:
        return _Taught(model=TaughtModel.empty(), examples={})
    rows = np.concatenate([examples[label] for label in labels])
    owners = np.concatenate([np.full(len(examples[label]), i, dtype=np.int64) for i, label in enumerate(labels)])
    model = TaughtModel(
        labels=labels,
        features=taught_features(points_from_keypoints(rows)).astype(np.float32),
        owners=np.tile(owners, len(TAUGHT_STRETCHES)),
    )
    return _Taught(model=model, examples=dict(examples))


class SignSession:
    """One client's sign state: smoothing, ``stable`` and text. Never shared between clients."""

    def __init__(self, recognizer: Recognizer, config: SignsConfig) -> None:
        self._recognizer = recognizer
        self._stabilizer = Stabilizer(
            smoothing_frames=config.smoothing_frames,
            stable_frames=config.stable_frames,
            space_after_frames=config.space_after_frames,
            max_text_chars=config.max_text_chars,
        )

    def observe(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None:
        """Take one answered frame's hands (possibly none) and say which sign to show.

        Args:
            hands: the hands found in the frame.
            mirrored: whether the landmarks are in a mirrored (selfie-view) frame's coordinates.

        Returns:
            The smoothed sign, ``stable`` per ``stability.py``, or ``None``.
        """
        raw = self._recognizer.classify(hands, mirrored=mirrored)
        return self._stabilizer.push(raw, hand_present=bool(hands))

    def reset(self) -> None:
        """Forget every frame and the text (WebSocket ``reset``)."""
        self._stabilizer.reset()

    @property
    def text(self) -> str:
        """The text built so far from stable signs."""
        return self._stabilizer.text


@dataclass(slots=True)
class _Entry:
    session: SignSession
    last_used: float


class Recognizer:
    """Built-in letters and taught signs for one server process.

    Args:
        config: the ``[signs]`` settings.
        letters: the built-in letter model.
        store: where taught signs persist; loaded at once.
        clock: monotonic seconds, for idle sessions (tests pass a fake).
    """

    def __init__(
        self,
        config: SignsConfig,
        letters: LetterModel,
        store: SignStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._letters = letters
        self._reserved = frozenset(label.upper() for label in letters.labels)
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._taught = _build_taught(store.load())
        self._sessions: OrderedDict[str, _Entry] = OrderedDict()
        self._unknown_distance = letters.unknown_distance * config.unknown_scale

    # Sessions -------------------------------------------------------------------------------

    def new_session(self) -> SignSession:
        """A fresh session for one connection; the caller owns it and drops it with the connection."""
        return SignSession(self, self._config)

    def session_for(self, key: str) -> SignSession:
        """The session of an HTTP client (``?session=ID``), created on first use.

        At most ``max_sessions`` are kept: the least recently used goes first, and any unused
        for ``session_idle_s`` is dropped. A dropped session comes back empty.
        """
        now = self._clock()
        while self._sessions:
            oldest_key, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_used <= self._config.session_idle_s:
                break
            del self._sessions[oldest_key]
        entry = self._sessions.get(key)
        if entry is None:
            entry = _Entry(self.new_session(), now)
            self._sessions[key] = entry
            while len(self._sessions) > max(1, self._config.max_sessions):
                self._sessions.popitem(last=False)
        entry.last_used = now
        self._sessions.move_to_end(key)
        return entry.session

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    # Classification -------------------------------------------------------------------------

    def classify(self, hands: Sequence[Hand], *, mirrored: bool = False) -> Sign | None:
        """Classify one frame on its own: ``stable`` is always false.

        Args:
            hands: the frame's hands; the one with the highest ``score`` is described.
            mirrored: whether the landmarks are in a mirrored frame's coordinates.

        Returns:
            The sign, or ``None`` for no hand or a shape that matches no sign well.
        """
        if not hands:
            return None
        hand = max(hands, key=lambda h: h.score)
        points = canonical_points([hand], mirrored=mirrored)
        if not np.isfinite(points).all():
            return None
        return self.classify_points(points)

    def classify_points(self, points: FloatArray) -> Sign | None:
        """Classify one canonical hand (``(1, 21, 2 or 3)``, see ``features.py``); ``stable`` is false."""
        letter_features = features_from_points(points)
        if not letter_features.any():
            return None  # a degenerate hand: every point in one place
        index, prob, distance = self._letters.predict(letter_features)
        letter_distance = float(distance[0])
        letter_ok = prob[0] >= self._config.min_confidence and letter_distance <= self._unknown_distance
        taught = self._taught.model  # one read: a concurrent teach swaps the whole snapshot
        limit = self._config.taught_max_distance
        if taught.labels:
            label, near, other = taught.nearest(features_from_points(points, TAUGHT_ORIENTATION_WEIGHT))
            d = float(near[0])
            if d <= limit and (not letter_ok or d <= self._config.taught_preference * letter_distance):
                # How much nearer this label is than any other taught label (1/2 when equally
                # near, towards 1 when the others are far or absent), times how close the match is.
                rival = min(float(other[0]), limit)
                closeness = 1.0 - 0.5 * d / limit if limit > 0 else 1.0
                confidence = (rival / (d + rival) if d + rival > 0 else 1.0) * closeness
                return Sign(taught.labels[int(label[0])], confidence, False, SignSource.TAUGHT)
        if letter_ok:
            return Sign(self._letters.labels[int(index[0])], float(prob[0]), False, SignSource.BUILTIN)
        return None

    # Signs ----------------------------------------------------------------------------------

    def list_signs(self) -> list[dict[str, object]]:
        """Every sign: built-in letters first, then taught labels, each with its example count."""
        out: list[dict[str, object]] = [
            {"label": label, "source": SignSource.BUILTIN.value, "examples": n}
            for label, n in zip(self._letters.labels, self._letters.examples, strict=True)
        ]
        taught = self._taught.examples
        out += [
            {"label": label, "source": SignSource.TAUGHT.value, "examples": len(taught[label])}
            for label in sorted(taught)
        ]
        return out

    def teach(self, label: str, examples: Sequence[Sequence[Hand]], *, mirrored: bool = False) -> int:
        """Teach ``label`` from examples, each the hands of one frame (the best-scored hand is used).

        Args:
            label: the sign's name, see :data:`LABEL_PATTERN`.
            examples: one or more frames' hands.
            mirrored: whether the landmarks are in a mirrored frame's coordinates.

        Returns:
            The total number of examples now held for ``label``.

        Raises:
            BadRequest: a bad or built-in label, no or too many examples, a frame without a hand,
                non-finite or degenerate points, or a limit on labels or examples reached.
        """
        check_label(label)
        self._refuse_builtin(label)
        if not examples:
            raise BadRequest("examples: expected at least one example")
        if len(examples) > self._config.max_examples_per_request:
            raise BadRequest(
                f"examples: expected at most {self._config.max_examples_per_request} per request, got {len(examples)}"
            )
        chosen: list[Hand] = []
        for i, hands in enumerate(examples):
            if not hands:
                raise BadRequest(f"examples[{i}]: expected at least one hand")
            chosen.append(max(hands, key=lambda h: h.score))
        try:
            points = canonical_points(chosen, mirrored=mirrored)
        except ValueError as exc:
            raise BadRequest(f"examples: {exc}") from None
        if not np.isfinite(points).all():
            raise BadRequest("examples: expected finite coordinates, got NaN or infinity")
        degenerate = ~features_from_points(points).any(axis=1)
        if degenerate.any():
            raise BadRequest(f"examples[{int(np.argmax(degenerate))}]: every point is in the same place")
        return self._add(label, keypoints_from_points(points))

    def import_keypoints(self, label: str, keypoints: FloatArray) -> int:
        """Teach ``label`` from rows in the keypoint format (e.g. read by ``store.read_keypoint_csv``).

        Returns:
            The total number of examples now held for ``label``.

        Raises:
            BadRequest: as :meth:`teach`, or rows that are not 42 finite, not all-zero values.
        """
        check_label(label)
        self._refuse_builtin(label)
        rows = np.asarray(keypoints, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 42 or not len(rows) or not np.isfinite(rows).all():
            raise BadRequest(f"{label}: expected rows of 42 finite keypoint values")
        rows = keypoints_from_points(points_from_keypoints(rows))
        if not rows.any(axis=1).all():
            raise BadRequest(f"{label}: an example has every point in the same place")
        return self._add(label, rows)

    def _add(self, label: str, keypoints: FloatArray) -> int:
        with self._lock:
            held = self._taught.examples
            if label not in held and len(held) >= self._config.max_labels:
                raise BadRequest(f"label: {len(held)} signs are taught already; the limit is {self._config.max_labels}")
            total = len(held.get(label, ())) + len(keypoints)
            if total > self._config.max_examples_per_label:
                limit = self._config.max_examples_per_label
                raise BadRequest(f"examples: {label!r} would hold {total} examples; the limit is {limit}")
            self._store.add(label, keypoints)
            updated = dict(held)
            updated[label] = np.concatenate([held[label], keypoints]) if label in held else keypoints
            self._taught = _build_taught(updated)
        return total

    def forget(self, label: str) -> None:
        """Forget a taught sign.

        Raises:
            BadRequest: a bad label or a built-in one.
            NotFound: no sign of that name is taught.
        """
        check_label(label)
        self._refuse_builtin(label)
        with self._lock:
            if label not in self._taught.examples:
                raise NotFound(f"no taught sign named {label!r}")
            self._store.delete(label)
            updated = {k: v for k, v in self._taught.examples.items() if k != label}
            self._taught = _build_taught(updated)

    def taught_examples(self) -> dict[str, FloatArray]:
        """Every taught example as keypoints (for export)."""
        return dict(self._taught.examples)

    def close(self) -> None:
        """Close the store; the recognizer must not be used afterwards."""
        with self._lock:
            self._sessions.clear()
            self._store.close()

    def _refuse_builtin(self, label: str) -> None:
        if label.upper() in self._reserved:
            raise BadRequest(f"label: {label!r} is a built-in sign and cannot be taught or forgotten")


def open_recognizer(
    config: SignsConfig, *, store: SignStore | None = None, clock: Callable[[], float] = time.monotonic
) -> Recognizer:
    """Load the built-in letters and the taught signs.

    Args:
        config: the ``[signs]`` settings (``weights_path``, ``db_path``, thresholds, limits).
        store: storage to use instead of the SQLite file at ``config.db_path`` (tests).
        clock: monotonic seconds, for idle HTTP sessions.

    Raises:
        ValueError: the weights or the taught-sign database are damaged.
        OSError, sqlite3.Error: a file cannot be opened.
    """
    letters = load_letter_model(Path(config.weights_path) if config.weights_path else DEFAULT_WEIGHTS_PATH)
    opened = store if store is not None else SqliteSignStore(config.db_path)
    try:
        return Recognizer(config, letters, opened, clock=clock)
    except BaseException:
        if store is None:
            opened.close()
        raise
