"""Persisted queries as Apollo does them: APQ registers a hash sent with its query (open mode),
and trusted mode also runs the reprinted documents of an Apollo persisted-query manifest."""

from __future__ import annotations

import json

import httpx
import pytest

from app.asgi import create_app
from app.auth import Role
from graphql_schema.trusted_documents import (
    DocumentStore,
    RedisDocumentStore,
    document_hash,
    load_manifest,
)

HOMEMADE = "query Mine { me { subject roles } }"
# What Apollo Kotlin sends for the repository's Me operation: reprinted, with __typename.
KOTLIN_ME = "query Me {\n  me {\n    __typename\n    subject\n    roles\n  }\n}"


def persisted(sha256: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


def manifest(tmp_path, operations: list[dict]):
    path = tmp_path / "persisted-query-manifest.json"
    payload = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def operator(token_for) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-apq')}"}


@pytest.fixture
def client_for(settings, engine, session_factory):
    """A client of an app with these settings changed."""

    def open_client(**overrides) -> httpx.AsyncClient:
        app = create_app(
            settings.model_copy(update=overrides), engine=engine, session_factory=session_factory
        )
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    return open_client


def codes(response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_apq_registers_a_hash_sent_with_its_query_and_answers_it_alone_later(
    client, operator
):
    # given a document the server has never seen, and its hash
    sha256 = document_hash(HOMEMADE)
    first = await client.post("/graphql", json={"extensions": persisted(sha256)}, headers=operator)
    assert codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]

    # when the client sends hash and query (Apollo's second round trip)
    whole = {"query": HOMEMADE, "extensions": persisted(sha256)}
    registered = await client.post("/graphql", json=whole, headers=operator)
    # and later the hash alone
    later = await client.post("/graphql", json={"extensions": persisted(sha256)}, headers=operator)

    # then both run, the second without the query
    assert registered.json()["data"]["me"]["subject"] == "op-apq"
    assert later.json() == registered.json()


async def test_apq_stores_nothing_for_a_wrong_hash_or_a_document_that_does_not_validate(
    client, operator
):
    # given a hash that is not the query's, and a document that does not validate
    wrong = {"query": HOMEMADE, "extensions": persisted("ab" * 32)}
    invalid_text = "query Bad { me { noSuchField } }"
    invalid = {"query": invalid_text, "extensions": persisted(document_hash(invalid_text))}

    # when they are sent
    refused = await client.post("/graphql", json=wrong, headers=operator)
    await client.post("/graphql", json=invalid, headers=operator)

    # then the hashes are still unknown
    assert codes(refused) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    for sha256 in ("ab" * 32, document_hash(invalid_text)):
        response = await client.post(
            "/graphql", json={"extensions": persisted(sha256)}, headers=operator
        )
        assert codes(response) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_trusted_mode_never_registers_by_apq(client_for, operator):
    # given a trusted-only server
    async with client_for(trusted_documents_only=True) as client:
        sha256 = document_hash(HOMEMADE)
        # when a client tries to register its own document
        whole = {"query": HOMEMADE, "extensions": persisted(sha256)}
        refused = await client.post("/graphql", json=whole, headers=operator)
        alone = await client.post(
            "/graphql", json={"extensions": persisted(sha256)}, headers=operator
        )
    # then it is refused, and not remembered
    assert codes(refused) == ["OPERATION_NOT_TRUSTED"]
    assert codes(alone) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_trusted_mode_runs_the_documents_of_apollos_manifest(client_for, operator, tmp_path):
    # given Apollo Kotlin's manifest holding its reprint of Me
    sha256 = document_hash(KOTLIN_ME)
    path = manifest(tmp_path, [{"id": sha256, "name": "Me", "type": "query", "body": KOTLIN_ME}])

    async with client_for(trusted_documents_only=True, trusted_documents_manifest=path) as client:
        # when the app sends the hash alone, and then hash and body
        alone = await client.post(
            "/graphql", json={"extensions": persisted(sha256)}, headers=operator
        )
        whole = await client.post(
            "/graphql",
            json={"query": KOTLIN_ME, "extensions": persisted(sha256)},
            headers=operator,
        )
    # then both run, as the repository's own Me would
    expected = {
        "data": {"me": {"__typename": "Viewer", "subject": "op-apq", "roles": ["OPERATOR"]}}
    }
    assert alone.json() == expected
    assert whole.json() == expected


def test_a_manifest_whose_id_is_not_the_hash_of_its_body_is_refused(tmp_path):
    # given a manifest entry whose id does not hash its body
    path = manifest(tmp_path, [{"id": "0" * 64, "name": "Me", "type": "query", "body": KOTLIN_ME}])
    # then it is refused when loaded, rather than never matching a request
    with pytest.raises(ValueError, match="not the SHA-256"):
        load_manifest(path)


def test_a_file_that_is_not_apollos_manifest_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"Me": document_hash(KOTLIN_ME)}))
    with pytest.raises(ValueError, match="apollo-persisted-query-manifest"):
        load_manifest(path)


async def test_the_in_process_store_is_bounded():
    # given a store of at most two documents and 100 bytes
    store = DocumentStore(max_entries=2, max_bytes=100)
    # when three are registered, and one too large
    for text in ("a", "b", "c"):
        await store.put(document_hash(text), text)
    await store.put(document_hash("x" * 101), "x" * 101)
    # then the least recently used and the too large are not kept
    assert len(store) == 2
    assert await store.get(document_hash("a")) is None
    assert await store.get(document_hash("c")) == "c"
    assert await store.get(document_hash("x" * 101)) is None


class FakeRedis:
    """Just what RedisDocumentStore calls: GET and SET with an expiry."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, int]] = {}

    async def get(self, key: str) -> bytes | None:
        value = self.values.get(key)
        return None if value is None else value[0]

    async def set(self, key: str, value: str, *, ex: int) -> None:
        self.values[key] = (value.encode(), ex)


async def test_the_redis_store_keeps_documents_with_an_expiry():
    # given a Redis-backed store
    redis = FakeRedis()
    store = RedisDocumentStore(redis=redis, ttl_seconds=60)
    # when a document is registered
    await store.put(document_hash(HOMEMADE), HOMEMADE)
    # then any worker reads it back, and Redis expires it
    assert await RedisDocumentStore(redis=redis).get(document_hash(HOMEMADE)) == HOMEMADE
    assert redis.values[f"sw:apq:{document_hash(HOMEMADE)}"][1] == 60


class UnreachableRedis:
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    async def set(self, key: str, value: str, *, ex: int) -> None:
        raise ConnectionError("down")


async def test_redis_being_down_is_a_miss_not_an_error():
    # given Redis cannot be reached
    store = RedisDocumentStore(redis=UnreachableRedis())
    # when a document is registered and asked for
    await store.put(document_hash(HOMEMADE), HOMEMADE)
    # then it is a miss: the client resends the query, as after any miss
    assert await store.get(document_hash(HOMEMADE)) is None
