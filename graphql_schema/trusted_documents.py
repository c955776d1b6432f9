"""Trusted documents: the app's own operations, registered by the SHA-256 of their text.

Each `.graphql` file in `graphql_schema/operations/` is one document: one named operation
(and the fragments it uses). A client sends the hash in Apollo's persisted-query format,
`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}`, with or without
the text; in `prod` only registered documents run, so an attacker cannot send a document of
their own making however the limits are set. The hash is of the file's exact text (UTF-8),
which is what a client that reads the same file sends.

Apollo Kotlin and iOS reprint documents (adding `__typename`), so their hashes never match our
files: their build emits a persisted-query manifest
(`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name",
"type", "body"}]}`), which `TRUSTED_DOCUMENTS_MANIFEST` names; its bodies are registered too,
by the hash of the exact body the client sends (an `id` that is not that hash is refused).

In open mode (not trusted-only) Automatic Persisted Queries work as Apollo's link expects: a
hash sent with its query is checked and, once the document has run, remembered
(`DocumentStore`: in Redis when REDIS_URL is set, else in this process, bounded), so later
requests send the hash alone.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from graphql import (
    ASTValidationRule,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)
from graphql.error import GraphQLError

OPERATIONS_DIR = Path(__file__).parent / "operations"
MANIFEST_FORMAT = "apollo-persisted-query-manifest"

log = structlog.get_logger("socialwallet.apq")

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
OPERATION_NOT_TRUSTED = "OPERATION_NOT_TRUSTED"


def document_hash(text: str) -> str:
    """The SHA-256 of a document's text, in lower-case hex (Apollo's `sha256Hash`)."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    name: str
    path: Path
    text: str
    sha256: str

    @property
    def operation_type(self) -> str:
        """query or mutation, read from the document itself."""
        for definition in parse(self.text).definitions:
            if isinstance(definition, OperationDefinitionNode):
                return definition.operation.value
        return "none"


class DocumentRefused(Exception):
    """A request naming a document we will not run; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OperationRegistry:
    """The registered documents, by hash."""

    def __init__(self, documents: list[TrustedDocument]) -> None:
        self.documents = sorted(documents, key=lambda d: d.name)
        self._by_hash = {d.sha256: d for d in documents}

    @classmethod
    def load(cls, *directories: Path, manifest: Path | None = None) -> OperationRegistry:
        """Read every `*.graphql` file of the directories (this package's by default), and an
        Apollo persisted-query manifest if given; an operation name used twice among the files
        is refused, so a file's name always means one document."""
        documents: dict[str, TrustedDocument] = {}
        for directory in directories or (OPERATIONS_DIR,):
            for path in sorted(directory.glob("*.graphql")):
                if path.stem in documents:
                    raise ValueError(f"operation {path.stem} is registered twice: {path}")
                text = path.read_text(encoding="utf-8")
                documents[path.stem] = TrustedDocument(path.stem, path, text, document_hash(text))
        # A mobile build's reprint of an operation keeps its name but not its hash.
        extra = load_manifest(manifest) if manifest is not None else []
        return cls([*documents.values(), *extra])

    def get(self, sha256: str) -> TrustedDocument | None:
        return self._by_hash.get(sha256.lower())

    def resolve(
        self,
        *,
        query: str | None,
        extensions: dict[str, Any] | None,
        enforce: bool,
        remembered: str | None = None,
    ) -> str | None:
        """The document text to run for a request, or DocumentRefused."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is not None:
            if not isinstance(persisted, dict) or persisted.get("version") != 1:
                raise DocumentRefused(
                    PERSISTED_QUERY_NOT_SUPPORTED, "Only persistedQuery version 1 is supported."
                )
            sha256 = persisted.get("sha256Hash")
            if not isinstance(sha256, str):
                raise DocumentRefused(PERSISTED_QUERY_NOT_SUPPORTED, "sha256Hash is missing.")
            if query is not None:
                if document_hash(query) != sha256.lower():
                    raise DocumentRefused(
                        PERSISTED_QUERY_HASH_MISMATCH, "The sha256Hash is not the query's hash."
                    )
            else:
                document = self.get(sha256)
                if document is not None:
                    return document.text
                if remembered is not None and not enforce:
                    return remembered  # registered earlier by APQ (open mode only)
                # Apollo clients recognise this message and code, and resend with the query.
                raise DocumentRefused(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        if query is None:
            return None  # strawberry answers "No GraphQL query found in the request" (400)
        if enforce and self.get(document_hash(query)) is None:
            raise DocumentRefused(
                OPERATION_NOT_TRUSTED, "Only the app's registered operations run here."
            )
        return query

    def check(
        self,
        schema: GraphQLSchema,
        *,
        rules: tuple[type[ASTValidationRule], ...] = (),
        max_tokens: int | None = None,
    ) -> dict[str, list[str]]:
        """Every registered document's problems against `schema` and the app's limits
        (`rules`, `max_tokens`): empty when all would run."""
        problems: dict[str, list[str]] = {}
        for document in self.documents:
            found: list[str] = []
            try:
                parsed = parse(document.text, max_tokens=max_tokens)
            except GraphQLError as error:
                problems[document.name] = [error.message]
                continue
            operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) != 1 or operations[0].name is None:
                found.append("a document holds exactly one named operation")
            elif operations[0].name.value != document.name:
                found.append(
                    f"the operation is named {operations[0].name.value}, the file {document.name}"
                )
            found += [
                error.message for error in validate(schema, parsed, [*specified_rules, *rules])
            ]
            if found:
                problems[document.name] = found
        return problems


def persisted_hash(extensions: dict[str, Any] | None) -> str | None:
    """The `sha256Hash` of a version-1 persisted query, lower-cased, if the request has one."""
    persisted = (extensions or {}).get("persistedQuery")
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        return None
    sha256 = persisted.get("sha256Hash")
    return sha256.lower() if isinstance(sha256, str) else None


def load_manifest(path: Path) -> list[TrustedDocument]:
    """The operations of an Apollo persisted-query manifest; ValueError for a file that is not
    one, or an operation whose `id` is not the SHA-256 of its `body` (clients send that hash)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an {MANIFEST_FORMAT}")
    if data.get("version") != 1:
        raise ValueError(f"{path}: only version 1 of the manifest is supported")
    documents = []
    for operation in data.get("operations", []):
        body, name = operation.get("body"), operation.get("name")
        if not isinstance(body, str) or not isinstance(name, str):
            raise ValueError(f"{path}: every operation needs a name and a body")
        sha256 = document_hash(body)
        if str(operation.get("id", "")).lower() != sha256:
            raise ValueError(f"{path}: the id of {name} is not the SHA-256 of its body")
        documents.append(TrustedDocument(name, path, body, sha256))
    return documents


class DocumentStore:
    """Documents registered by Automatic Persisted Queries, by hash, in this process: the
    most recently used `max_entries`, at most `max_bytes` of text in all."""

    def __init__(self, *, max_entries: int = 2000, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0

    async def get(self, sha256: str) -> str | None:
        text = self._texts.get(sha256)
        if text is not None:
            self._texts.move_to_end(sha256)
        return text

    async def put(self, sha256: str, text: str) -> None:
        if sha256 in self._texts or len(text.encode()) > self.max_bytes:
            return
        self._texts[sha256] = text
        self._bytes += len(text.encode())
        while len(self._texts) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._texts.popitem(last=False)
            self._bytes -= len(dropped.encode())

    def __len__(self) -> int:
        return len(self._texts)


class RedisDocumentStore:
    """APQ documents in Redis, shared by every worker, each kept `ttl_seconds` after its last
    registration. Redis being unreachable is a miss (the client resends the query), never an
    error."""

    def __init__(self, *, redis: Any, prefix: str = "sw:apq:", ttl_seconds: int = 7 * 86400):
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_seconds

    async def get(self, sha256: str) -> str | None:
        from redis.exceptions import RedisError

        try:
            value = await self._redis.get(self._prefix + sha256)
        except (RedisError, OSError) as exc:
            log.warning("apq.redis_unreachable", error=type(exc).__name__)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, sha256: str, text: str) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.set(self._prefix + sha256, text, ex=self._ttl)
        except (RedisError, OSError) as exc:
            log.warning("apq.redis_unreachable", error=type(exc).__name__)


def build_document_store(redis_url: str | None) -> DocumentStore | RedisDocumentStore:
    """Redis-backed when REDIS_URL is set, else in-process."""
    if redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return RedisDocumentStore(redis=redis)
    return DocumentStore()
