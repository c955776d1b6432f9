"""Error codes the API speaks, and how errors reach the client.

    GraphQLError (graphql-core)
    └── ApiError                  an expected refusal; `extensions.code` is stable
        ├── Unauthenticated       UNAUTHENTICATED: no token, or a token we refuse
        ├── Forbidden             FORBIDDEN: a valid caller without the right role/ownership
        ├── RateLimited           RATE_LIMITED: too many requests; `retryAfter` seconds
        └── InvalidInput          BAD_USER_INPUT, INVALID_IIN, ...: input we refuse

    ValueError
    └── InvalidValue              BAD_USER_INPUT: a scalar refused an input value (an id out of
                                  range, NUL in text, a date out of bounds); graphql-core wraps
                                  it in its own error, `error_code` finds it there

Anything else raised while resolving is unexpected: in `prod` it is masked to
"Unexpected error." with code INTERNAL_SERVER_ERROR, so no stack trace or SQL reaches a client.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from familymap.iin import InvalidIIN

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
INVALID_IIN = InvalidIIN.code
NOT_FOUND = "NOT_FOUND"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
RATE_LIMITED = "RATE_LIMITED"

INVALID_PERIOD = "INVALID_PERIOD"

EXPECTED_CODES = frozenset(
    {
        UNAUTHENTICATED,
        FORBIDDEN,
        BAD_USER_INPUT,
        INVALID_IIN,
        NOT_FOUND,
        INVALID_PERIOD,
        RATE_LIMITED,
    }
)


class ApiError(GraphQLError):
    """An expected error with a stable code in `extensions.code`."""

    code = BAD_USER_INPUT

    def __init__(self, message: str, *, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code or self.code, **extensions})


class InvalidValue(ValueError):
    """An input value a scalar refuses; its message says what is allowed, not what was sent."""

    code = BAD_USER_INPUT


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


class Forbidden(ApiError):
    code = FORBIDDEN


class RateLimited(ApiError):
    code = RATE_LIMITED

    def __init__(self, *, bucket: str, retry_after: int) -> None:
        super().__init__(
            f"Too many requests ({bucket}); try again in {retry_after} s.",
            retryAfter=retry_after,
        )
        self.retry_after = retry_after


def error_code(error: GraphQLError) -> str | None:
    """The stable code of an error, looking through graphql-core's wrapping."""
    code = (error.extensions or {}).get("code")
    if code:
        return code
    original = error.original_error
    if isinstance(original, GraphQLError):
        inner = error_code(original)
        if inner is None and error.path is None:
            # graphql-core's own complaint about a variable's value ("Int cannot represent
            # 'x'"), raised before execution: the client's input, not our failure.
            return BAD_USER_INPUT
        return inner
    if isinstance(original, InvalidIIN | InvalidValue):
        return original.code
    return None


def is_expected(error: GraphQLError) -> bool:
    """True for refusals we meant to send: they are shown to the client as they are."""
    if error_code(error) in EXPECTED_CODES:
        return True
    # Parse and validation errors (no original exception, no path) describe the client's
    # document, not our internals.
    return error.original_error is None and error.path is None
