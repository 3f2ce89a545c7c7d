"""The error answers each API operation can give, declared in the OpenAPI in one shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"], description="Stable, dotted")
    message: str = Field(description="What went wrong, for a person")
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


MEANING = {
    400: "The request is malformed",
    401: "No valid API key or session",
    403: "The key lacks the scope, or the role does not allow this",
    404: "No such record",
    409: "The record's state does not allow this (already done, not enough points, …)",
    413: "The body is larger than this route accepts",
    422: "A field is missing or out of its bounds",
    429: "Too many attempts; retry after the given seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code with the error shape."""
    return {code: {"model": ErrorOut, "description": MEANING[code]} for code in codes}


# Every /api/v1 operation can answer these: unreadable body, no key, wrong scope, body too
# large, bad field.
COMMON = errors(400, 401, 403, 413, 422)
