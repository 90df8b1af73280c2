"""Requests that are not valid HTTP still get the contract's JSON error.

aiohttp refuses a request it cannot parse (a bad request line or header, a body longer than
its ``Content-Length`` running into the next request, a malformed chunk size, both
``Content-Length`` and ``Transfer-Encoding``) before any route or middleware sees it, and
answers in plain text from ``RequestHandler.handle_error``. ``ContractErrorsRequestHandler``
keeps aiohttp's handling (its logging, which ``__main__`` strips of request bytes, and its
refusal once a response has started) and replaces only the body: ``bad_request`` (400) for what
the client sent, ``internal`` (500) otherwise. The connection is closed after it, as aiohttp does.

aiohttp builds its connection handlers from the name ``RequestHandler`` in ``aiohttp.web_server``
and offers no argument to choose another class, so :func:`install` rebinds that name, once per
process. ``tests/test_hostile_transport.py`` checks the JSON on each kind of refusal, so an
aiohttp upgrade that moves this seam fails the tests instead of silently answering plain text.
"""

from __future__ import annotations

from aiohttp import web, web_protocol, web_server
from aiohttp.web_request import BaseRequest

from server.errors import BadRequest, InternalError, SignwireError
from server.transport.http import error_response


class ContractErrorsRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering unparseable requests with the contract's JSON."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: logs, and raises if part of a response was already sent.
        super().handle_error(request, status, exc, message)
        error: SignwireError = (
            InternalError("the server failed on this request")
            if status >= 500
            else BadRequest("the request is not valid HTTP (malformed request line, header or body framing)")
        )
        response = error_response(error)
        response.force_close()
        return response


def install() -> None:
    """Make aiohttp build ``ContractErrorsRequestHandler`` for every connection (idempotent)."""
    web_server.RequestHandler = ContractErrorsRequestHandler  # type: ignore[attr-defined]
