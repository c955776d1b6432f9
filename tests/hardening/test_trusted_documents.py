"""Trusted documents: in prod only the registered operations run; dev runs anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.auth import Role
from app.cli.commands import cli
from app.settings import Settings
from app.web_client import OPERATIONS_DIR as CLIENT_OPERATIONS_DIR
from graphql_schema.schema import build_schema
from graphql_schema.trusted_documents import (
    OPERATIONS_DIR,
    DocumentRefused,
    OperationRegistry,
    document_hash,
)

ME_TEXT = (OPERATIONS_DIR / "Me.graphql").read_text()
ME_HASH = document_hash(ME_TEXT)
HOMEMADE = "{ me { subject } }"
runner = CliRunner()


def persisted(sha256: str, version: int = 1) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


@pytest.fixture
def operator(token_for) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(Role.OPERATOR, 'op-1')}"}


def codes(response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_prod_runs_a_registered_operation_by_hash_alone(prod_client_for, operator):
    async with prod_client_for() as client:
        response = await client.post(
            "/graphql", json={"extensions": persisted(ME_HASH)}, headers=operator
        )
    assert response.json()["data"]["me"]["subject"] == "op-1"


async def test_prod_runs_a_registered_operation_sent_whole(prod_client_for, operator):
    async with prod_client_for() as client:
        with_hash = {"query": ME_TEXT, "extensions": persisted(ME_HASH)}
        by_text_and_hash = await client.post("/graphql", json=with_hash, headers=operator)
        by_text = await client.post("/graphql", json={"query": ME_TEXT}, headers=operator)
    assert by_text_and_hash.json()["data"]["me"]["roles"] == ["OPERATOR"]
    assert by_text.json()["data"]["me"]["roles"] == ["OPERATOR"]


async def test_prod_refuses_a_homemade_document(prod_client_for, operator):
    async with prod_client_for() as client:
        response = await client.post("/graphql", json={"query": HOMEMADE}, headers=operator)
    assert response.json().get("data") is None
    assert codes(response) == ["OPERATION_NOT_TRUSTED"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"extensions": persisted("ab" * 32)}, "PERSISTED_QUERY_NOT_FOUND"),
        ({"query": HOMEMADE, "extensions": persisted(ME_HASH)}, "PERSISTED_QUERY_HASH_MISMATCH"),
        ({"extensions": persisted(ME_HASH, version=2)}, "PERSISTED_QUERY_NOT_SUPPORTED"),
    ],
    ids=["unknown-hash", "hash-mismatch", "version-2"],
)
async def test_prod_refuses_bad_persisted_queries(prod_client_for, operator, payload, code):
    async with prod_client_for() as client:
        response = await client.post("/graphql", json=payload, headers=operator)
    assert codes(response) == [code]


def test_an_unknown_hash_says_what_apollo_clients_expect():
    # Apollo's persisted-query link retries with the whole document on this message.
    registry = OperationRegistry.load()
    with pytest.raises(DocumentRefused) as refused:
        registry.resolve(query=None, extensions=persisted("cd" * 32), enforce=False)
    assert refused.value.message == "PersistedQueryNotFound"
    assert refused.value.code == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_hash_works_over_get_and_the_get_rules_still_hold(prod_client_for, operator):
    # Me returns personal data, so over GET it is refused, but after the hash was resolved.
    async with prod_client_for() as client:
        response = await client.get(
            "/graphql",
            params={"extensions": json.dumps(persisted(ME_HASH))},
            headers={**operator, "accept": "*/*"},
        )
    assert codes(response) == ["PERSONAL_DATA_OVER_GET"]


async def test_an_operation_name_registered_twice_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for directory in ("a", "b"):
        (tmp_path / directory / "Me.graphql").write_text("query Me { me { subject } }")
    with pytest.raises(ValueError, match="registered twice"):
        OperationRegistry.load(tmp_path / "a", tmp_path / "b")


async def test_dev_runs_anything(gql, token_for):
    body = await gql(HOMEMADE, token=token_for(Role.OPERATOR, "op-2"))
    assert body == {"data": {"me": {"subject": "op-2"}}}


def test_the_repository_operations_are_valid_against_the_schema():
    # The server's own operations and the reference client's
    registry = OperationRegistry.load(OPERATIONS_DIR, CLIENT_OPERATIONS_DIR)
    names = {d.name for d in registry.documents}
    assert names >= {"Me", "Person", "RecordLifeEvent", "OfferFunnel", "AcceptOffer", "RedeemMeal"}
    assert registry.check(build_schema(Settings(environment="dev"))._schema) == {}


def test_the_repository_operations_are_within_the_limits(settings):
    from graphql_schema.limits import limit_rules

    registry = OperationRegistry.load(OPERATIONS_DIR, CLIENT_OPERATIONS_DIR)
    schema = build_schema(settings)._schema
    problems = registry.check(
        schema, rules=(limit_rules(settings),), max_tokens=settings.graphql_max_tokens
    )
    assert problems == {}


def test_check_finds_a_document_over_the_limits(tmp_path: Path, settings):
    from graphql_schema.limits import limit_rules

    aliases = " ".join(f"a{i}: subject" for i in range(settings.graphql_max_aliases + 1))
    (tmp_path / "Greedy.graphql").write_text(f"query Greedy {{ me {{ {aliases} }} }}\n")
    problems = OperationRegistry.load(tmp_path).check(
        build_schema(settings)._schema, rules=(limit_rules(settings),)
    )
    assert "aliases found" in problems["Greedy"][0]


def test_check_finds_a_broken_document(tmp_path: Path):
    (tmp_path / "Broken.graphql").write_text("query Broken { me { nosuchfield } }\n")
    (tmp_path / "Misnamed.graphql").write_text("query Other { me { subject } }\n")
    (tmp_path / "Unparsable.graphql").write_text("query Unparsable { me { \n")
    problems = OperationRegistry.load(tmp_path).check(
        build_schema(Settings(environment="dev"))._schema
    )
    assert set(problems) == {"Broken", "Misnamed", "Unparsable"}
    assert "nosuchfield" in problems["Broken"][0]


def test_cli_lists_and_checks_the_operations():
    listed = runner.invoke(cli, ["operations", "list"])
    assert listed.exit_code == 0
    assert f"{ME_HASH}  query     Me" in listed.output
    checked = runner.invoke(cli, ["operations", "check"])
    assert checked.exit_code == 0, checked.output


def test_cli_check_fails_on_a_broken_registry(tmp_path: Path):
    (tmp_path / "Broken.graphql").write_text("query Broken { me { nosuchfield } }\n")
    result = runner.invoke(cli, ["operations", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "Broken" in result.output
