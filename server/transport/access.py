"""Who may connect: the ``Host`` a request names, the ``Origin`` allowlist, the optional token.

Pure decisions on header values, raised as ``Forbidden`` / ``Unauthorized``; the middleware in
``http.py`` calls them for every request, before any handler (and so before any upgrade).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from server.errors import Forbidden, Unauthorized

#: Host names of the loopback interface, as ``urlsplit(...).hostname`` gives them (IPv6 unbracketed).
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


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
        if scheme in ("http", "https") and host in _LOOPBACK_NAMES:
            return
    raise Forbidden(f"origin {origin[:100]!r} is not allowed to use this server")


def _hostname(host_header: str) -> str | None:
    """The name in a ``Host`` header without its port, lower case, IPv6 without brackets."""
    try:
        name = urlsplit(f"//{host_header}").hostname
    except ValueError:  # "[::1" and the like
        return None
    return name or None


def check_host(host_header: str | None, *, allowed: tuple[str, ...], bound_host: str) -> None:
    """Allow a request only under a name this server answers to (the DNS-rebinding guard).

    A page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 reaches the server as
    its own origin, so the ``Origin`` check alone would let it in; the ``Host`` it sends still
    says ``evil.example``. With ``allowed`` empty, a server bound to a loopback address answers
    only to ``localhost``, ``127.0.0.1`` and ``::1``; one bound elsewhere answers to any name.
    With ``allowed`` set, only those names (any port), or any name if it holds ``"*"``.

    Raises:
        Forbidden: the request's ``Host`` is missing, malformed, or not a name allowed here.
    """
    if "*" in allowed:
        return
    if not allowed and _hostname(bound_host) not in _LOOPBACK_NAMES:
        return
    permitted = {a.lower() for a in allowed} if allowed else _LOOPBACK_NAMES
    name = _hostname(host_header) if host_header else None
    if name is None or name not in permitted:
        shown = (host_header or "")[:100]
        raise Forbidden(f"host {shown!r} is not a name this server answers to (see server.allowed_hosts)")


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
