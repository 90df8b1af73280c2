"""Framing between the server and a model worker over the worker's stdin/stdout pipes.

A message is ``!II`` (header length, body length), a UTF-8 JSON header, then raw body bytes
(the encoded frame; empty for replies). Pure: bytes in, bytes out. JSON rather than pickle so
that nothing the worker writes can execute code in the server.
"""

from __future__ import annotations

import json
import struct
from typing import Any

PREFIX = struct.Struct("!II")
#: Headers are small dicts; anything larger is a protocol fault, not a message.
MAX_HEADER_BYTES = 1 << 20


class ProtocolError(Exception):
    """The peer sent something that is not a message of this protocol."""


def encode_message(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One message as bytes: prefix, JSON header, body."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    return PREFIX.pack(len(raw), len(body)) + raw + body


def decode_prefix(prefix: bytes, max_body_bytes: int) -> tuple[int, int]:
    """The header and body lengths a prefix announces.

    Raises:
        ProtocolError: a length is beyond what either side would ever send.
    """
    header_len, body_len = PREFIX.unpack(prefix)
    if header_len > MAX_HEADER_BYTES or body_len > max_body_bytes:
        raise ProtocolError(f"message lengths out of range: header {header_len}, body {body_len}")
    return header_len, body_len


def decode_header(raw: bytes) -> dict[str, Any]:
    """Parse a header; it must be a JSON object.

    Raises:
        ProtocolError: not JSON, or not an object.
    """
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    return header
