"""The one error tree of signwire, and nothing else.

Every rejection a client can see is an instance of :class:`SignwireError`; each subclass has
the stable machine ``code`` and the HTTP ``status`` of the wire contract (``shared/API.md``).
Transports turn them into answers in exactly one place each (``transport/http.py`` and
``transport/websocket.py``); pure modules only raise them.

::

    SignwireError                  (code, status)
    +-- FrameTooLarge              frame_too_large         413
    +-- UnsupportedMediaType       unsupported_media_type  415
    +-- BadImage                   bad_image               400
    +-- ImageTooLarge              image_too_large         400
    +-- BadRequest                 bad_request             400
    +-- NotFound                   not_found               404
    +-- Busy                       busy                    429 (+ Retry-After)
    +-- Forbidden                  forbidden               403
    +-- Unauthorized               unauthorized            401
    +-- ModelUnavailable           model_unavailable       503
    +-- InternalError              internal                500

:class:`ConfigError` is separate: it stops start-up and never reaches a client.
"""

from __future__ import annotations

from typing import ClassVar


class SignwireError(Exception):
    """Base of every error a client may receive.

    Args:
        message: one sentence for people: what was expected and what came.
    """

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class FrameTooLarge(SignwireError):
    code = "frame_too_large"
    status = 413


class UnsupportedMediaType(SignwireError):
    code = "unsupported_media_type"
    status = 415


class BadImage(SignwireError):
    code = "bad_image"
    status = 400


class ImageTooLarge(SignwireError):
    code = "image_too_large"
    status = 400


class BadRequest(SignwireError):
    code = "bad_request"
    status = 400


class NotFound(SignwireError):
    code = "not_found"
    status = 404


class Busy(SignwireError):
    """Too many connections, a client over its rate limit, or no model capacity free.

    Args:
        message: the sentence for people.
        retry_after_s: whole seconds the client should wait; sent as ``Retry-After``.
    """

    code = "busy"
    status = 429

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))


class Forbidden(SignwireError):
    code = "forbidden"
    status = 403


class Unauthorized(SignwireError):
    code = "unauthorized"
    status = 401


class ModelUnavailable(SignwireError):
    code = "model_unavailable"
    status = 503


class InternalError(SignwireError):
    code = "internal"
    status = 500


#: Every client-visible error class by its wire code (used to rebuild errors sent by the worker).
ERRORS_BY_CODE: dict[str, type[SignwireError]] = {
    cls.code: cls
    for cls in (
        FrameTooLarge,
        UnsupportedMediaType,
        BadImage,
        ImageTooLarge,
        BadRequest,
        NotFound,
        Busy,
        Forbidden,
        Unauthorized,
        ModelUnavailable,
        InternalError,
    )
}


def error_from_code(code: str, message: str) -> SignwireError:
    """Rebuild an error from its wire code; an unknown code becomes :class:`InternalError`."""
    cls = ERRORS_BY_CODE.get(code, InternalError)
    return cls(message)


class ConfigError(Exception):
    """A bad configuration: names the key, what was expected and what came. Stops start-up."""
