"""The JSON of the wire contract (``shared/API.md``), built and parsed in one place.

Owns the shape of every message both transports send (``result``, ``error``) and the parsing
of every JSON a client sends (WebSocket text messages, ``/api/landmarks`` bodies). Pure: values
in, dicts out, or :class:`~server.errors.BadRequest` naming what was expected and what came.
It does not own transport framing, sizes on the wire, or sign recognition.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from server.errors import BadRequest, SignwireError
from server.landmarks import NUM_LANDMARKS, FrameResult, Hand, Handedness, Point, Sign

#: Client-sent landmark coordinates may stray a little outside [0, 1]; far outside is garbage.
MAX_ABS_COORDINATE = 10.0
#: More hands than this in one client message is not a hand-tracking client.
MAX_HANDS_PER_MESSAGE = 4


def encode_sign(sign: Sign | None) -> dict[str, Any] | None:
    if sign is None:
        return None
    return {
        "label": sign.label,
        "confidence": round(sign.confidence, 4),
        "stable": sign.stable,
        "source": sign.source.value,
    }


def encode_hand(hand: Hand) -> dict[str, Any]:
    out: dict[str, Any] = {
        "handedness": hand.handedness.value,
        "score": hand.score,
        "landmarks": [list(point) for point in hand.landmarks],
    }
    if hand.world_landmarks is not None:
        out["world_landmarks"] = [list(point) for point in hand.world_landmarks]
    return out


def encode_frame_result(
    result: FrameResult,
    *,
    seq: int | None,
    sign: Sign | None,
    total_ms: float,
    dropped: int | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """The ``result`` message for a frame the model answered.

    Args:
        result: what the worker found.
        seq: the frame's number on its WebSocket, ``None`` on HTTP.
        sign: the recognised sign or ``None``.
        total_ms: server time from the frame's arrival to this answer.
        dropped: frames skipped since the last answer (WebSocket only; omitted on HTTP).
        text: the text built so far for this session (an added field), if any.
    """
    timings = {
        "decode": round(result.decode_ms, 3),
        "inference": round(result.inference_ms, 3),
        "total": round(total_ms, 3),
    }
    return _result(
        seq=seq,
        size=(result.width, result.height),
        hands=result.hands,
        sign=sign,
        timings_ms=timings,
        dropped=dropped,
        text=text,
        tracked=result.tracked,
    )


def encode_landmarks_result(
    hands: tuple[Hand, ...],
    *,
    sign: Sign | None,
    total_ms: float,
    dropped: int | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """The ``result`` for landmarks a client sent (``/api/landmarks``, WebSocket ``landmarks``)."""
    return _result(
        seq=None,
        size=(None, None),
        hands=hands,
        sign=sign,
        timings_ms={"total": round(total_ms, 3)},
        dropped=dropped,
        text=text,
    )


def _result(
    *,
    seq: int | None,
    size: tuple[int | None, int | None],
    hands: tuple[Hand, ...],
    sign: Sign | None,
    timings_ms: dict[str, float],
    dropped: int | None,
    text: str | None,
    **added: Any,
) -> dict[str, Any]:
    """A ``result`` message: the contract's fields, then ``added`` ones, ``dropped`` and ``text`` when set."""
    message: dict[str, Any] = {
        "type": "result",
        "seq": seq,
        "width": size[0],
        "height": size[1],
        "hands": [encode_hand(hand) for hand in hands],
        "sign": encode_sign(sign),
        "timings_ms": timings_ms,
        **added,
    }
    if dropped is not None:
        message["dropped"] = dropped
    if text is not None:
        message["text"] = text
    return message


def encode_error(
    error: SignwireError, *, seq: int | None = None, include_seq: bool = False, dropped: int | None = None
) -> dict[str, Any]:
    """The ``error`` message.

    Args:
        error: what went wrong.
        seq: on the WebSocket, the frame it answers (``include_seq``; ``None`` for a text message).
        include_seq: whether to carry ``seq`` (WebSocket answers to frames do).
        dropped: frames skipped on the way to the frame it answers (WebSocket; an added field).
    """
    message: dict[str, Any] = {"type": "error", "code": error.code, "message": str(error)}
    if include_seq:
        message["seq"] = seq
    if dropped is not None:
        message["dropped"] = dropped
    return message


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON; NaN and infinity are refused (they are not JSON)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str | bytes) -> Any:
    """Parse client JSON strictly: ``NaN``/``Infinity`` are errors, not numbers.

    Raises:
        BadRequest: not valid JSON.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _parse_point(value: object, where: str) -> Point:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise BadRequest(f"{where}: expected [x, y] or [x, y, z], got {_preview(value)}")
    coords: list[float] = []
    for axis, v in zip("xyz", value, strict=False):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise BadRequest(f"{where}.{axis}: expected a number, got {_preview(v)}")
        try:
            f = float(v)
        except OverflowError:  # an integer literal with hundreds of digits
            f = math.inf
        if not math.isfinite(f) or abs(f) > MAX_ABS_COORDINATE:
            raise BadRequest(f"{where}.{axis}: expected a finite number within ±{MAX_ABS_COORDINATE:g}, got {v!r}")
        coords.append(f)
    if len(coords) == 2:
        coords.append(0.0)
    return (coords[0], coords[1], coords[2])


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_hand(value: object, where: str = "hands[0]") -> Hand:
    """One client-sent hand: ``{"handedness": "Left"|"Right", "landmarks": [[x, y, z?] x 21]}``.

    Raises:
        BadRequest: anything else, naming the field.
    """
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: expected an object, got {_preview(value)}")
    handedness = value.get("handedness")
    if not isinstance(handedness, str) or handedness not in (Handedness.LEFT, Handedness.RIGHT):
        raise BadRequest(f'{where}.handedness: expected "Left" or "Right", got {_preview(handedness)}')
    side = Handedness(handedness)
    points = value.get("landmarks")
    if not isinstance(points, list) or len(points) != NUM_LANDMARKS:
        count = len(points) if isinstance(points, list) else _preview(points)
        raise BadRequest(f"{where}.landmarks: expected {NUM_LANDMARKS} points, got {count}")
    landmarks = tuple(_parse_point(p, f"{where}.landmarks[{i}]") for i, p in enumerate(points))
    score = value.get("score", 1.0)
    # Compared as given: float() of an integer with hundreds of digits would overflow.
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise BadRequest(f"{where}.score: expected a number in [0, 1], got {_preview(score)}")
    return Hand(handedness=side, score=float(score), landmarks=landmarks, world_landmarks=None)


def parse_hands(obj: object) -> tuple[Hand, ...]:
    """The ``hands`` of a client message: ``{"hands": [hand, ...], ...}``.

    Raises:
        BadRequest: not an object with a list of at most four valid hands.
    """
    if not isinstance(obj, dict):
        raise BadRequest(f"expected a JSON object with a 'hands' list, got {_preview(obj)}")
    hands = obj.get("hands")
    if not isinstance(hands, list):
        raise BadRequest(f"hands: expected a list, got {_preview(hands)}")
    if len(hands) > MAX_HANDS_PER_MESSAGE:
        raise BadRequest(f"hands: expected at most {MAX_HANDS_PER_MESSAGE} hands, got {len(hands)}")
    return tuple(parse_hand(hand, f"hands[{i}]") for i, hand in enumerate(hands))


def parse_session(obj: dict[str, Any]) -> str | None:
    """An optional client session id: 1-64 printable ASCII characters.

    Raises:
        BadRequest: present but not such a string.
    """
    session = obj.get("session")
    if session is None:
        return None
    return check_session_id(session)


def check_session_id(session: object) -> str:
    if not isinstance(session, str) or not 1 <= len(session) <= 64 or not all(33 <= ord(c) <= 126 for c in session):
        raise BadRequest(f"session: expected 1-64 printable ASCII characters, got {_preview(session)}")
    return session


@dataclass(frozen=True, slots=True)
class Hello:
    mirrored: bool


@dataclass(frozen=True, slots=True)
class LandmarksMessage:
    hands: tuple[Hand, ...]


@dataclass(frozen=True, slots=True)
class Reset:
    pass


ClientMessage = Hello | LandmarksMessage | Reset


def parse_client_message(text: str) -> ClientMessage:
    """A WebSocket text message from a client.

    Raises:
        BadRequest: not JSON, not an object, an unknown ``type`` or bad fields.
    """
    obj = loads(text)
    if not isinstance(obj, dict):
        raise BadRequest(f"expected a JSON object with a 'type', got {_preview(obj)}")
    kind = obj.get("type")
    if kind == "hello":
        mirrored = obj.get("mirrored", False)
        if not isinstance(mirrored, bool):
            raise BadRequest(f"hello.mirrored: expected true or false, got {_preview(mirrored)}")
        return Hello(mirrored=mirrored)
    if kind == "landmarks":
        return LandmarksMessage(hands=parse_hands(obj))
    if kind == "reset":
        return Reset()
    raise BadRequest(f'type: expected "hello", "landmarks" or "reset", got {_preview(kind)}')


def parse_flag(value: str | None) -> bool:
    """A query-string boolean: ``1``/``true``/``yes`` (any case) are true, absent is false.

    Raises:
        BadRequest: any other value.
    """
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no", ""):
        return False
    raise BadRequest(f"expected 1/true or 0/false, got {_preview(value)}")
