"""Stable error codes on every error the API returns.

Applied where the response is built (the view's `process_result`), not in a schema
extension: with the parser cache on, a syntax error escapes the extensions' operation hook,
and every error, whatever path it took, must leave with a code.
"""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from familymap.i18n import translate
from graphql_schema.errors import INTERNAL_SERVER_ERROR, INVALID_IIN, error_code

GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def _with_code(error: GraphQLError, code: str, message: str | None = None) -> GraphQLError:
    return GraphQLError(
        message or error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


def _innermost(error: GraphQLError) -> BaseException:
    inner: BaseException = error
    while isinstance(inner, GraphQLError) and inner.original_error is not None:
        inner = inner.original_error
    return inner


def classify(error: GraphQLError) -> GraphQLError:
    """Give an error the code a client can branch on, whatever raised it."""
    code = error_code(error)
    if code is None:
        if isinstance(error, GraphQLSyntaxError):
            code = GRAPHQL_PARSE_FAILED
        elif error.path is None and error.original_error is None:
            code = GRAPHQL_VALIDATION_FAILED
        else:
            code = INTERNAL_SERVER_ERROR
    if code == INVALID_IIN:
        # graphql-core's message quotes the refused value whole ("found: '9001…'"); an IIN,
        # even a mistyped one, must not travel back in clear. Ours is masked.
        return _with_code(error, code, str(_innermost(error)))
    if (error.extensions or {}).get("code") == code:
        return error
    return _with_code(error, code)


class MaskUnexpected(MaskErrors):
    """strawberry's MaskErrors, keeping the code: a masked error is INTERNAL_SERVER_ERROR.

    strawberry's masked error has no code, no path and no original error; one raised before
    execution (a variable's value) would then read as a validation failure, a client's
    mistake, and hide the failure from every test and dashboard that counts codes.
    """

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        # Said in the request's language, like every refusal (docs/i18n.md).
        context = getattr(self.execution_context, "context", None)
        masked.message = translate("error.unexpected", getattr(context, "language", None))
        return masked
