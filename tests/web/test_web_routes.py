"""The client's server side: static files, the dev sign-in (absent in prod), the offline
GraphiQL page, and the client's operations valid against the schema."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from graphql import GraphQLSchema, build_schema, parse, print_schema, validate

from app.asgi import create_app
from app.auth import Role
from app.schema_export import schema
from app.web_client import OPERATIONS_DIR, WEB_DIR
from tests.wallet.wallet_builders import add_family, household

ME_ROLES = "{ me { roles subject } }"


@pytest.fixture
async def prod_client(settings, engine, session_factory):
    prod = settings.model_copy(
        update={"environment": "prod", "jwt_jwks_url": "http://127.0.0.1:9/jwks.json"}
    )
    app = create_app(prod, engine=engine, session_factory=session_factory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_the_client_and_its_modules_are_served(client):
    # when
    page = await client.get("/app/")
    module = await client.get("/app/main.js")
    operation = await client.get("/app/operations/Wallet.graphql")
    # then
    assert page.status_code == 200
    assert 'src="main.js"' in page.text
    assert module.status_code == 200
    assert "javascript" in module.headers["content-type"]
    assert operation.text == (OPERATIONS_DIR / "Wallet.graphql").read_text(encoding="utf-8")


async def test_dev_tokens_sign_in_the_demo_callers(client, gql, session):
    # given a family in the registry
    _family, (head, *_rest) = await add_family(session, household(1))
    await session.commit()
    # when
    response = await client.get("/app/dev-tokens")
    tokens = response.json()
    # then: each token is accepted by the API as the caller it names
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    [ours] = [c for c in tokens["citizens"] if c["name"] == f"{head.first_name} {head.last_name}"]
    citizen = await gql(ME_ROLES, token=ours["token"])
    school = await gql(ME_ROLES, token=tokens["school"])
    pharmacy = await gql(ME_ROLES, token=tokens["pharmacy"])
    assert citizen["data"]["me"] == {"roles": [Role.CITIZEN.value], "subject": head.iin}
    assert school["data"]["me"]["roles"] == [Role.SCHOOL.value]
    assert pharmacy["data"]["me"]["roles"] == [Role.PHARMACY.value]


async def test_prod_has_no_dev_tokens_and_no_graphiql(prod_client):
    # when
    tokens = await prod_client.get("/app/dev-tokens")
    ide = await prod_client.get("/graphql", headers={"accept": "text/html"})
    client_page = await prod_client.get("/app/")
    # then: the client itself is still served; it signs in with eGov there
    assert tokens.status_code == 404
    assert "token" not in tokens.text
    assert "graphiql" not in ide.text.lower()
    assert client_page.status_code == 200


async def test_graphiql_loads_only_the_apps_own_assets_and_the_examples(client):
    # when
    page = await client.get("/graphql", headers={"accept": "text/html"})
    # then
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    assert all(source.startswith("/app/") for source in sources), sources
    for source in sources:
        assert (await client.get(source)).status_code == 200, source
    assert "query Wallet" in page.text
    assert "mutation RedeemMeal" in page.text


def test_vendored_assets_keep_their_licences():
    for directory in (WEB_DIR / "vendor").iterdir():
        if directory.is_dir():
            assert (directory / "LICENSE").is_file(), directory


def operation_files() -> list[Path]:
    return sorted(OPERATIONS_DIR.glob("*.graphql"))


@pytest.mark.parametrize("path", operation_files(), ids=lambda p: p.stem)
def test_each_operation_is_one_named_operation_valid_against_the_schema(path):
    # given
    document = parse(path.read_text(encoding="utf-8"))
    operations = [d for d in document.definitions if d.kind == "operation_definition"]
    # then: named as its file, so the trusted-documents registry can list it by name
    assert [o.name.value for o in operations] == [path.stem]
    # and every field it uses is in the schema: a field that disappears fails here, it is
    # not skipped (the client would break on it)
    assert validation_errors(schema._schema, path) == []


def validation_errors(against: GraphQLSchema, path: Path) -> list[str]:
    """What the schema finds wrong with the client's operation in `path`."""
    document = parse(path.read_text(encoding="utf-8"))
    return [error.message for error in validate(against, document)]


def test_validation_fails_when_a_field_the_client_uses_disappears():
    # given a schema without `Query.myPupils`, which MyPupils.graphql reads
    sdl = re.sub(
        r'(  """(?:(?!""").)*"""\n)?  myPupils:[^\n]*\n',
        "",
        print_schema(schema._schema),
        flags=re.S,
    )
    assert "myPupils" not in sdl
    # when
    errors = validation_errors(build_schema(sdl), OPERATIONS_DIR / "MyPupils.graphql")
    # then
    assert errors == ["Cannot query field 'myPupils' on type 'Query'."]


SCREENS_DIR = WEB_DIR / "screens"
REQUIRES = re.compile(r"export const requires = \[([^\]]*)\];")


def screen_requirements() -> dict[str, set[str]]:
    """Each screen module's `requires`: the root fields it needs (app/web/main.js)."""
    found = {}
    for path in sorted(SCREENS_DIR.glob("*.js")):
        match = REQUIRES.search(path.read_text(encoding="utf-8"))
        if match:
            found[path.stem] = set(re.findall(r'"(\w+)"', match.group(1)))
    return found


def test_every_screens_root_fields_are_in_the_schema():
    # given the root fields each screen needs; the client hides a screen whose fields the
    # server lacks, so a field gone from the schema must fail here instead
    root_fields = set(schema._schema.query_type.fields) | set(schema._schema.mutation_type.fields)
    requirements = screen_requirements()
    # then
    assert len(requirements) >= 9, requirements
    missing = {screen: needs - root_fields for screen, needs in requirements.items()}
    assert {screen: gone for screen, gone in missing.items() if gone} == {}
