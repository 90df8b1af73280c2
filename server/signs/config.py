"""The ``[signs]`` table of ``config.toml``: every limit and threshold of sign recognition.

Owns the names, defaults and meanings of the settings; ``server/config.py`` reads and validates
the file once and builds this dataclass with keyword arguments. Nothing here reads a file or
the environment.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignsConfig:
    """Settings of sign recognition (``[signs]`` in ``config.toml``); every field has a default."""

    # SQLite file holding taught signs; relative paths are relative to the working directory.
    db_path: str = "data/signs.sqlite3"
    # Built-in letter weights (.npz); empty means the file shipped in server/signs/.
    weights_path: str = ""
    # Multiplies the "unknown" distance threshold calibrated on held-out data (stored with the
    # weights): above 1 accepts stranger shapes, below 1 answers null more often.
    unknown_scale: float = 1.0
    # A built-in letter whose probability is below this is reported as null, not a guess.
    min_confidence: float = 0.5
    # A hand farther than this (feature units, see features.py) from every taught example
    # matches no taught sign.
    taught_max_distance: float = 3.0
    # A taught sign beats an accepted letter when its nearest example is at most this many
    # times as far as the nearest letter prototype (taught signs have few examples).
    taught_preference: float = 2.0
    # Frames in the majority-vote window that smooths per-frame labels.
    smoothing_frames: int = 5
    # Frames the smoothed label must hold before ``stable`` turns true (and text grows).
    stable_frames: int = 6
    # Consecutive frames without a hand after which a space is added to the text.
    space_after_frames: int = 15
    # The text a session builds keeps at most this many characters (the newest).
    max_text_chars: int = 256
    # HTTP sign sessions (?session=ID) kept at once; the least recently used is dropped.
    max_sessions: int = 256
    # An HTTP sign session unused for this long is dropped.
    session_idle_s: float = 600.0
    # Largest request body accepted by POST /api/signs/{label}/examples (413 above).
    max_body_bytes: int = 1_048_576
    # Examples one POST /api/signs/{label}/examples may carry.
    max_examples_per_request: int = 50
    # Taught labels held at once (with max_examples_per_label, bounds memory and time per frame:
    # see results/bench_signs.json).
    max_labels: int = 32
    # Examples held per taught label.
    max_examples_per_label: int = 50
