"""messages.py: client JSON parsed strictly, results and errors shaped as the contract says."""

from __future__ import annotations

import json
import math

import pytest

from server import messages
from server.errors import BadRequest, FrameTooLarge
from server.landmarks import FrameResult, Hand, Handedness, Sign, SignSource

POINTS = [[0.5, 0.5, 0.0]] * 21


def hand_json(**overrides: object) -> dict[str, object]:
    return {"handedness": "Right", "landmarks": POINTS, **overrides}


def test_hello_reset_and_landmarks_parse() -> None:
    assert messages.parse_client_message('{"type":"hello","mirrored":true}') == messages.Hello(mirrored=True)
    assert messages.parse_client_message('{"type":"reset"}') == messages.Reset()
    parsed = messages.parse_client_message(json.dumps({"type": "landmarks", "hands": [hand_json()]}))
    assert isinstance(parsed, messages.LandmarksMessage)
    assert parsed.hands[0].handedness is Handedness.RIGHT
    assert len(parsed.hands[0].landmarks) == 21


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "expected a JSON object"),
        ('{"type":"dance"}', 'type: expected "hello", "landmarks" or "reset", got \'dance\''),
        ("{}", "type: expected"),
        ('{"type":"hello","mirrored":"yes"}', "hello.mirrored: expected true or false"),
        ('{"type":"landmarks"}', "hands: expected a list"),
        ('{"type":"landmarks","hands":[{"handedness":"Up","landmarks":[]}]}', "hands\\[0\\].handedness"),
        ('{"type":"landmarks","hands":[{"handedness":"Left","landmarks":[[0,0]]}]}', "expected 21 points, got 1"),
        ('{"type":"landmarks","hands":[{"handedness":"Left","landmarks":[[NaN,0,0]]}]}', "not valid JSON"),
    ],
)
def test_bad_client_messages_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        messages.parse_client_message(text)


@pytest.mark.parametrize(
    "point",
    [[1e308, 0, 0], [0, -1e9, 0], ["0", 0, 0], [True, 0, 0], [0], [0, 0, 0, 0], None],
)
def test_bad_points_are_refused(point: object) -> None:
    with pytest.raises(BadRequest, match=r"landmarks\[3\]"):
        messages.parse_hands({"hands": [hand_json(landmarks=[*POINTS[:3], point, *POINTS[4:]])]})


def test_z_is_optional_and_defaults_to_zero() -> None:
    (hand,) = messages.parse_hands({"hands": [hand_json(landmarks=[[0.1, 0.2]] * 21)]})
    assert hand.landmarks[0] == (0.1, 0.2, 0.0)


def test_slightly_outside_the_frame_is_allowed() -> None:
    (hand,) = messages.parse_hands({"hands": [hand_json(landmarks=[[-0.05, 1.07, 0.0]] * 21)]})
    assert hand.landmarks[0][0] == -0.05


def test_too_many_hands_are_refused() -> None:
    with pytest.raises(BadRequest, match="at most 4 hands"):
        messages.parse_hands({"hands": [hand_json()] * 5})


@pytest.mark.parametrize("session", ["", "x" * 65, "has space", 7])
def test_bad_session_ids_are_refused(session: object) -> None:
    with pytest.raises(BadRequest, match="session"):
        messages.parse_session({"session": session})


def test_result_shape_follows_the_contract() -> None:
    hand = Hand(Handedness.LEFT, 0.9, ((0.1, 0.2, 0.0),) * 21, ((0.0, 0.0, 0.0),) * 21)
    result = FrameResult(width=640, height=360, hands=(hand,), decode_ms=0.7, inference_ms=5.1)
    sign = Sign("A", 0.93, True, SignSource.BUILTIN)
    message = messages.encode_frame_result(result, seq=17, sign=sign, total_ms=6.4, dropped=2)
    assert message["type"] == "result"
    assert message["seq"] == 17
    assert (message["width"], message["height"]) == (640, 360)
    assert message["hands"][0]["handedness"] == "Left"
    assert len(message["hands"][0]["landmarks"]) == 21
    assert len(message["hands"][0]["world_landmarks"]) == 21
    assert message["sign"] == {"label": "A", "confidence": 0.93, "stable": True, "source": "builtin"}
    assert message["timings_ms"] == {"decode": 0.7, "inference": 5.1, "total": 6.4}
    assert message["dropped"] == 2
    assert json.loads(messages.dumps(message)) == message


def test_error_shape_follows_the_contract() -> None:
    error = FrameTooLarge("frame is 6291456 bytes; the limit is 5242880")
    assert messages.encode_error(error) == {
        "type": "error",
        "code": "frame_too_large",
        "message": "frame is 6291456 bytes; the limit is 5242880",
    }


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON"):
        messages.dumps({"x": math.nan})


@pytest.mark.parametrize(("value", "flag"), [(None, False), ("1", True), ("true", True), ("TRUE", True), ("0", False)])
def test_query_flags(value: str | None, flag: bool) -> None:
    assert messages.parse_flag(value) is flag


def test_bad_query_flag() -> None:
    with pytest.raises(BadRequest):
        messages.parse_flag("maybe")
