"""Domain errors: a stable code for machines and a message a person can act on.

The web layer maps each class to an HTTP status; domain code never imports HTTP.
"""

from __future__ import annotations

from typing import Any


class RetainError(Exception):
    """Base class. `code` is dotted and stable (e.g. ``auth.invalid_credentials``)."""

    default_code = "error"

    def __init__(self, code: str | None = None, message: str = "", details: Any = None) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.details = details
        super().__init__(self.message)


class ConfigError(RetainError):
    default_code = "config.invalid"


class ValidationFailed(RetainError):
    default_code = "validation_error"


class NotFound(RetainError):
    default_code = "not_found"


class PermissionDenied(RetainError):
    default_code = "forbidden"


class NotAuthenticated(RetainError):
    default_code = "unauthenticated"


class Conflict(RetainError):
    default_code = "conflict"


class RateLimited(RetainError):
    default_code = "rate_limited"

    def __init__(self, code: str | None = None, message: str = "", retry_after: int = 60) -> None:
        super().__init__(code, message, {"retry_after_seconds": retry_after})
        self.retry_after = retry_after
