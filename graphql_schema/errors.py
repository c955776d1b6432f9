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
"Unexpected error." (in the request's language) with code INTERNAL_SERVER_ERROR, so no stack
trace or SQL reaches a client.

An ApiError is raised with a catalogue message id and its values
(`ApiError("error.month_range")`, `Forbidden("error.needs_role", values={"allowed": ...})`);
`translate_errors` writes every such error in the request's language (`Context.language`,
from Accept-Language) before the response leaves. `refusal_text` does the same for the
domain's refusals that mutations return as data (docs/i18n.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError

from familymap.i18n import Refusal, has_message, translate
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
    """An expected error with a stable code in `extensions.code`, its message a catalogue id
    (with `values` for its slots), written in English until `translate_errors` runs. A text
    that is no catalogue id (a refusal's own words) is shown as it is."""

    code = BAD_USER_INPUT

    def __init__(
        self,
        message_id: str,
        *,
        code: str | None = None,
        values: dict[str, Any] | None = None,
        **extensions: Any,
    ) -> None:
        self.message_id = message_id
        self.values = values or {}
        super().__init__(self.text("en"), extensions={"code": code or self.code, **extensions})

    def text(self, language: str | None) -> str:
        """The message in `language`."""
        if not has_message(self.message_id):
            return self.message_id
        return translate(self.message_id, language, **self.values)


class InvalidValue(Refusal, ValueError):
    """An input value a scalar refuses; its message (a catalogue id) says what is allowed, not
    what was sent."""

    code = BAD_USER_INPUT


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


class Forbidden(ApiError):
    code = FORBIDDEN


class RateLimited(ApiError):
    code = RATE_LIMITED

    def __init__(self, *, bucket: str, retry_after: int) -> None:
        super().__init__(
            "error.rate_limited",
            values={"bucket": bucket, "seconds": retry_after},
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


def _catalogued(error: BaseException | None) -> ApiError | Refusal | None:
    while isinstance(error, GraphQLError):
        if isinstance(error, ApiError):
            return error
        error = error.original_error
    return error if isinstance(error, Refusal) else None


def translate_errors(errors: Iterable[GraphQLError], *, language: str | None) -> None:
    """Write each of our refusals among `errors` in `language` (in place: strawberry sends
    these very objects)."""
    for error in errors:
        refusal = _catalogued(error)
        if refusal is None:
            continue
        said = refusal.text(language)
        # graphql-core frames a scalar's refusal with where it was ("Variable '$day' got
        # invalid value ...; <ours>"): only our part changes language.
        english = refusal.text("en")
        error.message = error.message.replace(english, said) if english in error.message else said


def refusal_text(refused: Exception, language: str | None) -> str:
    """What a domain refusal returned as data says, in `language`: its own catalogue message
    (or that of the refusal it passes on), else the catalogue's text for its code, else its own
    words."""
    if isinstance(refused, Refusal):
        return refused.text(language)
    if isinstance(refused.__cause__, Refusal):  # a domain refusal passed on (fulfilment)
        return refused.__cause__.text(language)
    code = getattr(refused, "code", None)
    if code is not None and has_message(f"code.{code}"):
        return translate(f"code.{code}", language)
    return str(refused)
