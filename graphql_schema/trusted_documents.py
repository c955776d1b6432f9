"""Trusted documents: the app's own operations, registered by the SHA-256 of their text.

Each `.graphql` file in `graphql_schema/operations/` is one document: one named operation
(and the fragments it uses). A client sends the hash in Apollo's persisted-query format,
`{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}`, with or without
the text; in `prod` only registered documents run, so an attacker cannot send a document of
their own making however the limits are set. The hash is of the file's exact text (UTF-8),
which is what a client that reads the same file sends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    def load(cls, *directories: Path) -> OperationRegistry:
        """Read every `*.graphql` file of the directories (this package's by default); an
        operation name used twice is refused, so a name always means one document."""
        documents: dict[str, TrustedDocument] = {}
        for directory in directories or (OPERATIONS_DIR,):
            for path in sorted(directory.glob("*.graphql")):
                if path.stem in documents:
                    raise ValueError(f"operation {path.stem} is registered twice: {path}")
                text = path.read_text(encoding="utf-8")
                documents[path.stem] = TrustedDocument(path.stem, path, text, document_hash(text))
        return cls(list(documents.values()))

    def get(self, sha256: str) -> TrustedDocument | None:
        return self._by_hash.get(sha256.lower())

    def resolve(
        self, *, query: str | None, extensions: dict[str, Any] | None, enforce: bool
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
                if document is None:
                    # Apollo clients recognise this message and code.
                    raise DocumentRefused(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
                return document.text
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
