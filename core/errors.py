"""Domain errors: a stable code for machines and a message a person can act on.

The web layer maps each class to an HTTP status; domain code never imports HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class RetainError(Exception):
    """Base class. `code` is dotted and stable (e.g. ``auth.invalid_credentials``).

    `message` is an English template with its `params` apart, so the staff pages can show the
    refusal in the reader's language (`web.rendering.say`) while the API, the CLI and the logs
    read `.message`, the English filled in:

        raise NotFound("receipt.not_found", "No receipt with id %(id)s.", id=receipt_id)

    `pybabel extract -F babel_staff.cfg` finds the template (the error classes are keywords);
    a param that is itself a word the staff catalog translates is marked `N_("Budget")`."""

    default_code = "error"

    def __init__(
        self, code: str | None = None, message: str = "", details: Any = None, **params: Any
    ) -> None:
        self.code = code or self.default_code
        self.template = message
        self.params = params
        self.message = (message % params if params else message) or self.code
        self.details = details
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt whole on the far side of a pickle (a Dask worker's error), code included.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[RetainError], state: dict[str, Any]) -> RetainError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


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

    def __init__(
        self, code: str | None = None, message: str = "", retry_after: int = 60, **params: Any
    ) -> None:
        super().__init__(code, message, {"retry_after_seconds": retry_after}, **params)
        self.retry_after = retry_after


class Invalid(ValidationFailed):
    """Several fields refused at once; `fields` maps each field's name to its message. The
    code is the first problem's, so a client that read one error code still reads it."""

    def __init__(
        self,
        fields: dict[str, str],
        codes: dict[str, str] | None = None,
        errors: dict[str, RetainError] | None = None,
    ) -> None:
        self.fields = dict(fields)
        self.codes = dict(codes or {})
        # Each field's refusal itself, so a page can say it in the reader's language.
        self.errors = dict(errors or {})
        first = next(iter(self.fields), "")
        details = {
            "fields": [
                {"field": f, "code": self.codes.get(f, f"{f}.invalid"), "message": m}
                for f, m in self.fields.items()
            ]
        }
        code = self.codes.get(first, "form.invalid")
        super().__init__(code, " ".join(self.fields.values()), details)


class Problems:
    """Collects every field's problem instead of stopping at the first, so a person fixes a
    form in one go: `problems.check("budget", lambda: check_amount(...))`, then
    `problems.raise_any()`. Field names are the service's keyword names, which the forms use."""

    def __init__(self) -> None:
        self.errors: dict[str, RetainError] = {}  # each field's first refusal, in order

    @property
    def by_field(self) -> dict[str, str]:
        """Each field's problem in English (`web.rendering.say_each` says it to a reader)."""
        return {field: error.message for field, error in self.errors.items()}

    @property
    def codes(self) -> dict[str, str]:
        return {field: error.code for field, error in self.errors.items()}

    def add(self, field: str, message: str, code: str | None = None, **params: Any) -> None:
        """Note `message` (a template like an error's, filled from `params`) against `field`."""
        self.refuse(field, ValidationFailed(code or f"{field}.invalid", message, **params))

    def refuse(self, field: str, error: RetainError) -> None:
        if field not in self.errors:  # a field's first problem is the one to fix
            self.errors[field] = error

    def check(self, field: str, run: Callable[[], T]) -> T | None:
        """`run()`, or None with its refusal noted against `field`."""
        try:
            return run()
        except ValidationFailed as exc:
            self.refuse(field, exc)
            return None

    def __contains__(self, field: str) -> bool:
        return field in self.errors

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_any(self) -> None:
        if self.errors:
            raise Invalid(self.by_field, self.codes, self.errors)
