"""stability.py: smoothing, hysteresis, ``stable`` as a level, text and spaces."""

from __future__ import annotations

from server.landmarks import Sign, SignSource
from server.signs.stability import Stabilizer


def _stab(**overrides: int) -> Stabilizer:
    settings = {"smoothing_frames": 5, "stable_frames": 4, "space_after_frames": 3, "max_text_chars": 20}
    settings.update(overrides)
    return Stabilizer(**settings)


def _sign(label: str, confidence: float = 0.9) -> Sign:
    return Sign(label, confidence, False, SignSource.BUILTIN)


def _feed(stab: Stabilizer, labels: str) -> list[Sign | None]:
    """One frame per character: a letter, '.' for a hand with no sign, '_' for no hand."""
    out = []
    for ch in labels:
        raw = None if ch in "._" else _sign(ch)
        out.append(stab.push(raw, hand_present=ch != "_"))
    return out


def test_stable_turns_true_once_and_stays_true_while_held() -> None:
    stab = _stab()
    out = _feed(stab, "AAAAAAAA")
    flags = [s.stable if s else None for s in out]
    # Shown from the 3rd frame (majority of 5), stable after 4 frames shown, then it stays.
    assert flags == [None, None, False, False, False, True, True, True]
    assert stab.text == "A"


def test_a_single_odd_frame_changes_nothing() -> None:
    stab = _stab()
    out = _feed(stab, "AAAAAABAAAA.AAA")
    labels = [s.label if s else None for s in out[3:]]
    assert labels[3:] == ["A"] * (len(labels) - 3)
    assert stab.text == "A"


def test_a_new_letter_needs_a_majority_and_settles_again() -> None:
    stab = _stab()
    out = _feed(stab, "AAAAAABBBBBBB")
    said = [(s.label, s.stable) if s else None for s in out]
    assert said[6] == ("A", True)  # one B is not enough
    assert said[8] == ("B", False)  # three Bs of five: B is shown, not yet stable
    assert said[-1] == ("B", True)
    assert stab.text == "AB"


def test_no_sign_majority_gives_none_and_a_letter_again_is_appended_again() -> None:
    stab = _stab()
    _feed(stab, "AAAAAA.....AAAAAA")
    assert stab.text == "AA"


def test_no_hand_gives_none_and_then_one_space() -> None:
    stab = _stab()
    out = _feed(stab, "AAAAAA__________BBBBBB")
    assert out[6] is None
    assert stab.text == "A B"


def test_no_leading_or_double_space() -> None:
    stab = _stab()
    _feed(stab, "________AAAAAA______________")
    assert stab.text == "A "


def test_long_label_is_a_word() -> None:
    stab = _stab()
    for ch in "AAAAAA":
        stab.push(_sign(ch), hand_present=True)
    for _ in range(6):
        stab.push(Sign("hello", 0.8, False, SignSource.TAUGHT), hand_present=True)
    assert stab.text == "A hello "


def test_text_is_bounded_and_reset_forgets() -> None:
    stab = _stab(max_text_chars=5)
    for letter in "ABCDEFG":
        _feed(stab, letter * 6 + ".....")
    assert stab.text == "CDEFG"
    stab.reset()
    assert stab.text == ""
    assert _feed(stab, "A") == [None]


def test_confidence_is_averaged_over_the_window() -> None:
    stab = _stab(smoothing_frames=3, stable_frames=1)
    stab.push(_sign("A", 0.6), hand_present=True)
    stab.push(_sign("A", 0.9), hand_present=True)
    out = stab.push(_sign("A", 0.9), hand_present=True)
    assert out is not None
    assert abs(out.confidence - 0.8) < 1e-9
