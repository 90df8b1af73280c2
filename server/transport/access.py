"""Who may connect: the ``Origin`` allowlist and the optional bearer token.

Pure decisions on header values, raised as ``Forbidden`` / ``Unauthorized``; the middleware in
``http.py`` calls them for every request, before any handler (and so before any upgrade).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from server.errors import Forbidden, Unauthorized

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def check_origin(
    origin: str | None,
    *,
    own_origin: str,
    allowed: tuple[str, ...],
    allow_localhost: bool,
) -> None:
    """Allow a request whose ``Origin`` is absent, the server's own, listed, or (if enabled) local.

    Args:
        origin: the request's ``Origin`` header, if any.
        own_origin: ``scheme://host[:port]`` as the client reached the server.
        allowed: extra origins from the configuration, exact matches.
        allow_localhost: also allow ``http(s)://localhost|127.0.0.1|[::1]`` on any port.

    Raises:
        Forbidden: any other origin, including ``null``.
    """
    if origin is None:
        return
    normalised = origin.rstrip("/").lower()
    if normalised == own_origin.lower() or normalised in (a.rstrip("/").lower() for a in allowed):
        return
    if allow_localhost:
        try:
            parts = urlsplit(normalised)
            scheme, host = parts.scheme, parts.hostname
        except ValueError:  # e.g. "http://[not-an-ip": refused below, never a 500
            scheme, host = "", None
        if scheme in ("http", "https") and host is not None and (host in _LOCAL_HOSTS or f"[{host}]" in _LOCAL_HOSTS):
            return
    raise Forbidden(f"origin {origin[:100]!r} is not allowed to use this server")


def check_token(expected: str, authorization: str | None, query_token: str | None) -> None:
    """Require ``Authorization: Bearer <expected>`` (or ``?token=`` where allowed) when set.

    Raises:
        Unauthorized: a token is configured and the request does not carry it.
    """
    if not expected:
        return
    presented: str | None = None
    # The auth scheme is case-insensitive (RFC 9110 11.1); the token itself is compared exactly.
    if authorization is not None and authorization[:7].lower() == "bearer ":
        presented = authorization[7:].strip()
    elif query_token is not None:
        presented = query_token
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("this server needs a token: send Authorization: Bearer <token>")
