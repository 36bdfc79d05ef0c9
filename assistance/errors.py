"""Errors a person can read: every refusal carries a code, a message and maybe a field."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal by the rules; mapped to a 4xx `{"error": {code, message, field}}`."""

    status = 422

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Unauthorized(DomainError):
    status = 401


class Conflict(DomainError):
    status = 409


class Gone(DomainError):
    status = 410


class Unavailable(DomainError):
    status = 503


class TooManyRequests(DomainError):
    """A rate limit (assistance/rate_limits.py): 429 with `Retry-After`."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after
