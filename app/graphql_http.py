"""GraphQL over HTTP: strawberry's ASGI view with our context, trusted documents, and the
media type and status codes of the GraphQL-over-HTTP draft.

- A client that accepts `application/graphql-response+json` gets it, with status codes that
  say what went wrong: a document that does not parse 400, one that does not validate 422
  (as our issue asks; the draft allows any 4xx), other request errors (a variable that
  does not coerce, an unknown or untrusted document) 400, a mutation refused by the rate
  limit 429 (with Retry-After), an unexpected failure before
  execution 500, and 200 whenever execution started (field errors travel beside the data).
  A request error's body has no `data` entry, as the draft says.
- Any other client gets `application/json` and 200, as before.
- A mutation over GET is 405 with `Allow: POST`; a body over GRAPHQL_MAX_BODY_BYTES is 413;
  a POST not sent as application/json is 415. Every such refusal of the HTTP request (and
  bad JSON, 400) is a GraphQL error body in graphql-response+json, whatever the Accept.
- Variables that do not coerce are 400 even when the document is invalid too (graphql-http's
  audit 86EE): validation runs first, so their coercion is tried when choosing the status.
- Persisted queries: the registry's documents, and in open mode Automatic Persisted Queries
  (graphql_schema/trusted_documents.py).
- In `prod` the messages of parse and validation errors are masked too (their codes stay),
  so a client learns nothing of the schema by probing.
"""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from cross_web import HTTPException
from graphql import GraphQLError, get_operation_ast, parse
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from app.auth import AuthenticatedUser, RejectedUser
from app.metrics import GRAPHQL_ERRORS, GRAPHQL_LATENCY, GRAPHQL_REQUESTS, count_redemptions
from app.qr_key import qr_signing_key
from app.replicas import UNKNOWN_WRITE_POSITION
from app.settings import Settings
from app.web_client import OPERATIONS_DIR as CLIENT_OPERATIONS_DIR
from app.web_client import graphiql_page
from graphql_schema.context import Context
from graphql_schema.errors import INTERNAL_SERVER_ERROR, RATE_LIMITED, error_code
from graphql_schema.extensions import (
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    classify,
)
from graphql_schema.limits import PERSONAL_DATA_OVER_GET
from graphql_schema.loaders import Loaders
from graphql_schema.trusted_documents import (
    OPERATIONS_DIR,
    DocumentRefused,
    OperationRegistry,
    build_document_store,
    document_hash,
    persisted_hash,
)
from wallet.i18n import negotiate

log = structlog.get_logger("socialwallet.graphql")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"

# The codes of errors about the document itself, and what prod says instead of the details.
DOCUMENT_ERRORS = {
    GRAPHQL_PARSE_FAILED: "The document could not be parsed.",
    GRAPHQL_VALIDATION_FAILED: "The document is not valid for this API.",
}
VALIDATION_CODES = frozenset({GRAPHQL_VALIDATION_FAILED, PERSONAL_DATA_OVER_GET})


def prefers_graphql_response_json(accept: str) -> bool:
    """True when the Accept header ranks graphql-response+json at least as high as JSON."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        weights[media.lower()] = max(q, weights.get(media.lower(), 0.0))
    ours = weights.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return ours > 0 and ours >= weights.get(APPLICATION_JSON, 0.0)


def status_for(result: ExecutionResult) -> int:
    """The draft's status code for a result served as graphql-response+json."""
    errors = result.errors or []
    if result.data is not None or not errors or any(e.path for e in errors):
        return 200
    codes = {error_code(e) for e in errors}
    if RATE_LIMITED in codes:
        return 429
    if GRAPHQL_PARSE_FAILED in codes:
        return 400
    if codes & VALIDATION_CODES:
        return 422
    if codes == {INTERNAL_SERVER_ERROR}:
        return 500
    return 400


def _executed(result: ExecutionResult) -> bool:
    """True when execution started: data, or only field errors (which carry a path)."""
    errors = result.errors or []
    return result.data is not None or all(e.path for e in errors)


def _masked(error: GraphQLError) -> GraphQLError:
    code = error_code(error) or GRAPHQL_VALIDATION_FAILED
    return GraphQLError(DOCUMENT_ERRORS[code], positions=error.positions, extensions={"code": code})


# The stable codes of errors about the HTTP request itself, before any GraphQL ran.
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
MUTATION_OVER_GET = "Mutations are sent by POST."


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def http_error_response(exc: HTTPException) -> Response:
    """A refusal of the HTTP request (bad JSON, a method or media type we do not take, a body
    too large) as a GraphQL response body: clients parse one kind of error body only."""
    code = HTTP_ERROR_CODES.get(exc.status_code, "BAD_REQUEST")
    headers = {"content-type": f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"}
    if exc.status_code == 405:
        headers["allow"] = "POST" if exc.reason == MUTATION_OVER_GET else "GET, POST"
    body = {"errors": [{"message": exc.reason, "extensions": {"code": code}}]}
    return Response(
        json.dumps(body, ensure_ascii=False), status_code=exc.status_code, headers=headers
    )


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "The request body is too large.")


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive` that refuses a body growing past `limit` bytes (chunked, or lying about
    its Content-Length), so an oversized document is never held in memory whole."""
    seen = 0

    async def receive_within_limit() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge()
        return message

    return receive_within_limit


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI view with our per-request context, trusted documents and statuses."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        operations: OperationRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.session_factory = session_factory
        # The server's own operations, the reference client's and the mobile builds'
        # (Apollo's manifest): one registry.
        self.operations = operations or OperationRegistry.load(
            OPERATIONS_DIR, CLIENT_OPERATIONS_DIR, manifest=settings.trusted_documents_manifest
        )
        # Documents registered by Automatic Persisted Queries (open mode only).
        self.remembered = build_document_store(settings.redis_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(
            scope=scope, receive=_limited(receive, self.settings.graphql_max_body_bytes)
        )
        declared = request.headers.get("content-length", "")
        try:
            if (
                declared.isascii()
                and declared.isdigit()
                and int(declared) > self.settings.graphql_max_body_bytes
            ):
                raise BodyTooLarge()
            if request.method == "POST" and _media_type(request) != APPLICATION_JSON:
                raise HTTPException(415, "Send the request as application/json.")
            response = await self.run(request)
        except HTTPException as exc:
            log.warning("graphql.http_refused", status=exc.status_code, reason=exc.reason)
            response = http_error_response(exc)
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        """The request's JSON, or 400: a body nested too deep for the decoder (20,000 `[`)
        raises RecursionError, and a body that is not an object would fail further on."""
        try:
            parsed = super().parse_json(data)
        except RecursionError:
            raise HTTPException(400, "The request body is nested too deeply.") from None
        except ValueError:  # not UTF-8, or a number too long to read
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return parsed

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET carrying only a persisted query's hash has no `query` either: it is not a
        # browser asking for the IDE.
        return "extensions" not in request.query_params and super().should_render_graphql_ide(
            request
        )

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        sub_response.graphql_response_json = prefers_graphql_response_json(  # type: ignore[attr-defined]
            request.headers.get("accept", "")
        )
        request.state.sub_response = sub_response
        return sub_response

    async def execute_single(  # type: ignore[override]
        self, request: Request, request_adapter: Any, sub_response: Response, context: Context,
        root_value: None, request_data: GraphQLRequestData,
    ) -> ExecutionResult:  # fmt: skip
        request.state.graphql_started = time.perf_counter()
        request.state.graphql_request = request_data
        enforce = self.settings.enforces_trusted_documents
        sha256 = persisted_hash(request_data.extensions)
        sent_whole = request_data.query is not None
        # APQ is for documents not registered otherwise, and never in trusted-only mode.
        apq = sha256 is not None and not enforce and self.operations.get(sha256) is None
        remembered = await self.remembered.get(sha256) if apq and not sent_whole else None
        try:
            request_data.query = self.operations.resolve(
                query=request_data.query,
                extensions=request_data.extensions,
                enforce=enforce,
                remembered=remembered,
            )
            request.state.graphql_operation = self._operation_label(request_data.query)
        except DocumentRefused as refused:
            error = GraphQLError(refused.message, extensions={"code": refused.code})
            return ExecutionResult(data=None, errors=[error])
        try:
            result = await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, MUTATION_OVER_GET) from exc
            raise
        # APQ: a hash sent with its (verified) query is remembered once the document ran, so
        # a document that does not parse or validate is never stored.
        if apq and sent_whole and _executed(result):
            await self.remembered.put(sha256, request_data.query)
        await self._mark_write(context)
        return result

    async def _mark_write(self, context: Context) -> None:
        """After a caller's mutation: its reads stay on the primary until a replica has
        replayed it (read-your-writes across every API process, app/replicas.py)."""
        principal = context.principal
        if context.replicas is None or context.operation_type != "mutation" or not principal:
            return
        try:
            await context.replicas.mark_write(principal.subject)
        except Exception as exc:
            # Where the primary was is unknown: the caller reads on the primary for a while.
            log.warning("replicas.mark_failed", error=type(exc).__name__)
            await context.replicas.marks.mark(principal.subject, UNKNOWN_WRITE_POSITION)

    def _variables_coerce(self, sent: GraphQLRequestData) -> bool:
        """Whether the request's variables coerce to its operation's variable types."""
        if not sent.query:
            return True
        try:
            document = parse(sent.query, max_tokens=self.settings.graphql_max_tokens)
        except GraphQLError:
            return True
        operation = get_operation_ast(document, sent.operation_name)
        if operation is None or not operation.variable_definitions:
            return True
        if sent.variables is not None and not isinstance(sent.variables, dict):
            return False
        coerced = get_variable_values(
            self.schema._schema, operation.variable_definitions, sent.variables or {}
        )
        return not isinstance(coerced, list)

    def _operation_label(self, query: str | None) -> str:
        """A registered operation's name, else "unregistered": clients cannot mint labels."""
        document = self.operations.get(document_hash(query)) if query else None
        return document.name if document else "unregistered"

    def _observe(self, request: Request, result: ExecutionResult) -> None:
        operation = getattr(request.state, "graphql_operation", "unregistered")
        started = getattr(request.state, "graphql_started", None)
        if started is not None:
            GRAPHQL_LATENCY.labels(operation=operation).observe(time.perf_counter() - started)
        GRAPHQL_REQUESTS.labels(
            operation=operation, outcome="error" if result.errors else "ok"
        ).inc()
        for error in result.errors or ():
            GRAPHQL_ERRORS.labels(code=error_code(error) or INTERNAL_SERVER_ERROR).inc()

    def _log_refusals(self, request: Request, errors: list[GraphQLError]) -> None:
        """The client's mistakes at warning, one line, codes only: no traceback, no values
        (which may be personal data). Unexpected errors are logged by the schema."""
        codes = sorted({error_code(e) or INTERNAL_SERVER_ERROR for e in errors})
        refused = [code for code in codes if code != INTERNAL_SERVER_ERROR]
        if refused:
            log.warning(
                "graphql.refused",
                operation=getattr(request.state, "graphql_operation", "unregistered"),
                codes=refused,
            )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:  # type: ignore[override]
        if result.errors:
            result.errors = [classify(error) for error in result.errors]
            self._log_refusals(request, result.errors)
        self._observe(request, result)
        if result.errors and self.settings.is_prod:
            result.errors = [
                _masked(e) if error_code(e) in DOCUMENT_ERRORS else e for e in result.errors
            ]
        response = await super().process_result(request, result)
        sub_response = request.state.sub_response
        if getattr(sub_response, "graphql_response_json", False):
            status = status_for(result)
            # Variables that do not coerce are a 400 even when the document is invalid too:
            # validation runs first, so their coercion is tried here.
            sent = getattr(request.state, "graphql_request", None)
            if status == 422 and sent is not None and not self._variables_coerce(sent):
                status = 400
            sub_response.status_code = status
            if status != 200:
                response.pop("data", None)  # a request error: execution never started
        return response

    def create_response(self, response_data: Any, sub_response: Response) -> Response:  # type: ignore[override]
        response = super().create_response(response_data, sub_response)
        if getattr(sub_response, "graphql_response_json", False):
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        # Our GraphiQL page loads its assets from /app/vendor, not a CDN (dev only).
        return graphiql_page()

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        factory = self.session_factory or request.app.state.session_factory
        user = request.scope.get("user")
        settings = self.settings
        context = Context(
            request=request,
            response=response,
            settings=settings,
            session_factory=factory,
            qr_key=lambda: qr_signing_key(settings),
            count_redemptions=count_redemptions,
            principal=user.principal if isinstance(user, AuthenticatedUser) else None,
            auth_rejection=user.rejection if isinstance(user, RejectedUser) else None,
            language=negotiate(request.headers.get("accept-language")),
            rate_limiter=getattr(request.app.state, "rate_limiter", None),
            driver_transactions=getattr(request.app.state, "driver_transactions", None),
            meal_coalescer=getattr(request.app.state, "meal_coalescer", None),
            replicas=getattr(request.app.state, "replicas", None),
        )
        # The DataLoaders only read, and tolerate lag: a replica in a query (app/replicas.py).
        context.loaders = Loaders(context.read_session_factory)
        return context
