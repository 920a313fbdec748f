"""Domain exceptions, mapped to HTTP in one place (``install_handlers``).

Messages are written in English and translated for the user through the gettext catalogue;
``params`` are interpolated after translation.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


class NotFound(DomainError):
    """Also what a user gets for an object outside their scope: existence is not leaked."""

    status_code = 404
    code = "not_found"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    """For actions on objects the user may see but not change; unseen objects are NotFound."""

    status_code = 403
    code = "forbidden"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class Locked(DomainError):
    status_code = 423
    code = "locked"


class Unavailable(DomainError):
    """The service cannot answer yet (e.g. no boundaries imported); not the caller's fault."""

    status_code = 503
    code = "unavailable"
