"""Property-based fuzzing of client JSON: only ``SignwireError`` comes out of the parsers.

``parse_client_message`` (every WebSocket text message) and ``parse_hands`` (``/api/landmarks``
bodies, WebSocket ``landmarks``) take whatever a client sends. Hypothesis feeds them arbitrary
text, arbitrary JSON documents (with NaN, infinities, integers too big for a float, deep
nesting) and near-valid messages with one thing wrong, and checks that each call returns a
parsed value that respects the contract or raises ``BadRequest``, never anything else. The
short run is part of ``make test``; ``python -m tests.bench.bench_fuzz`` runs it far longer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from server.errors import BadRequest
from server.landmarks import NUM_LANDMARKS
from server.messages import (
    MAX_ABS_COORDINATE,
    MAX_HANDS_PER_MESSAGE,
    Hello,
    LandmarksMessage,
    Reset,
    parse_client_message,
    parse_hands,
)

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1.5, max_value=1.5),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.booleans(),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6),
    max_leaves=40,
)

POINT = st.lists(NUMBERS, min_size=0, max_size=4) | SCALARS
HAND = st.fixed_dictionaries(
    {
        "handedness": st.sampled_from(["Left", "Right", "left", "", "Middle"]) | SCALARS,
        "landmarks": st.lists(POINT, min_size=NUM_LANDMARKS - 2, max_size=NUM_LANDMARKS + 2) | SCALARS,
    },
    optional={"score": NUMBERS | SCALARS, "world_landmarks": JSON_VALUES},
)
VALID_HAND = st.fixed_dictionaries(
    {
        "handedness": st.sampled_from(["Left", "Right"]),
        "landmarks": st.lists(
            st.lists(st.floats(min_value=-2, max_value=2), min_size=2, max_size=3),
            min_size=NUM_LANDMARKS,
            max_size=NUM_LANDMARKS,
        ),
    }
)
HANDS_DOC = st.fixed_dictionaries(
    {"hands": st.lists(HAND | VALID_HAND, max_size=MAX_HANDS_PER_MESSAGE + 2) | JSON_VALUES},
    optional={"session": SCALARS, "type": st.sampled_from(["landmarks", "hello", "reset"]) | SCALARS},
)
MESSAGE_DOC = st.one_of(
    HANDS_DOC,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["hello", "reset", "landmarks", "HELLO", "teleport"]) | SCALARS},
        optional={"mirrored": SCALARS, "hands": JSON_VALUES},
    ),
    JSON_VALUES,
)


def dumps_loosely(value: Any) -> str:
    """JSON as a careless client writes it: NaN and Infinity literals included."""
    return json.dumps(value, allow_nan=True)


def check_hands(hands: tuple[Any, ...]) -> None:
    assert len(hands) <= MAX_HANDS_PER_MESSAGE
    for hand in hands:
        assert len(hand.landmarks) == NUM_LANDMARKS
        assert 0.0 <= hand.score <= 1.0
        for point in hand.landmarks:
            assert len(point) == 3
            assert all(math.isfinite(v) and abs(v) <= MAX_ABS_COORDINATE for v in point)


def check_message(text: str) -> str:
    try:
        parsed: Hello | LandmarksMessage | Reset | BadRequest = parse_client_message(text)
    except BadRequest as error:
        parsed = error
    if isinstance(parsed, BadRequest):
        assert str(parsed)
        return "bad_request"
    assert isinstance(parsed, (Hello, LandmarksMessage, Reset))
    if isinstance(parsed, LandmarksMessage):
        check_hands(parsed.hands)
    return type(parsed).__name__


def check_hands_document(obj: Any) -> str:
    try:
        hands: tuple[Any, ...] | BadRequest = parse_hands(obj)
    except BadRequest as error:
        hands = error
    if isinstance(hands, BadRequest):
        assert str(hands)
        return "bad_request"
    check_hands(hands)
    return "hands"


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(max_size=300))
@example("[" * 100_000)
@example('{"type": "landmarks", "hands": [{"handedness": "Right", "landmarks": [[1' + "0" * 400 + ", 0]]}]}")
def test_any_text_is_parsed_or_refused(text: str) -> None:
    check_message(text)


@SETTINGS
@given(MESSAGE_DOC)
def test_any_json_message_is_parsed_or_refused(doc: Any) -> None:
    check_message(dumps_loosely(doc))


@SETTINGS
@given(HANDS_DOC | JSON_VALUES)
@example({"hands": [{"handedness": "Right", "landmarks": [[0.5, 0.5]] * 21, "score": 10**400}]})
@example({"hands": [{"handedness": "Right", "landmarks": [[10**400, 0.5]] * 21}]})
def test_any_hands_document_is_parsed_or_refused(doc: Any) -> None:
    check_hands_document(doc)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(VALID_HAND, max_size=MAX_HANDS_PER_MESSAGE))
def test_valid_hands_are_always_accepted(hands: list[dict[str, Any]]) -> None:
    # The other side of the property: refusing everything would also "only raise BadRequest".
    assert check_hands_document({"hands": hands}) == "hands"
    assert check_message(json.dumps({"type": "landmarks", "hands": hands})) == "LandmarksMessage"
