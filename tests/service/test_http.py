"""The ASGI app's HTTP surface: probes, request ids, and GraphQL over GET/POST."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from app.asgi import create_app
from app.db import create_engine
from app.settings import Settings


async def test_livez(client):
    response = await client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_readyz_reports_a_database_that_cannot_be_reached(settings):
    # Given an app whose database server does not answer (nothing listens on port 9)
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:9/socialwallet"}
    )
    engine = create_engine(broken)
    app = create_app(broken, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    await engine.dispose()
    # Then it says it is not ready, without details
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down"}


async def test_request_id_is_generated_and_echoed(client):
    response = await client.get("/livez")
    assert len(response.headers["x-request-id"]) == 32


async def test_a_well_formed_client_request_id_is_kept(client):
    response = await client.get("/livez", headers={"x-request-id": "app-7f3a9c01"})
    assert response.headers["x-request-id"] == "app-7f3a9c01"


async def test_a_malformed_client_request_id_is_replaced(client):
    response = await client.get("/livez", headers={"x-request-id": "bad id\n injected"})
    assert response.headers["x-request-id"] != "bad id\n injected"
    assert len(response.headers["x-request-id"]) == 32


async def test_queries_without_personal_data_work_over_get(client, token_for):
    from app.auth import Role

    token = token_for(Role.OPERATOR, "op-1")
    response = await client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_queries_of_personal_data_are_refused_over_get(client, token_for):
    from app.auth import Role

    token = token_for(Role.OPERATOR, "op-1")
    response = await client.get(
        "/graphql",
        params={"query": "{ me { subject } }"},
        headers={"authorization": f"Bearer {token}"},
    )
    body = response.json()
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["PERSONAL_DATA_OVER_GET"]


async def test_graphiql_is_served_in_dev(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_every_request_is_logged_as_json_with_its_request_id(client, capsys):
    from app.logging import configure_logging

    configure_logging(level="INFO", json=True)
    try:
        response = await client.get("/livez")
    finally:
        logging.getLogger().handlers.clear()
    err = capsys.readouterr().err
    # Other lines may share stderr (a slow background task of another test, a warning): pick
    # this request's own line by its id, and say what was there if it is missing.
    request_id = response.headers["x-request-id"]
    mine = [line for line in _json_lines(err) if line.get("request_id") == request_id]
    assert [line.get("event") for line in mine] == ["request"], err[-2000:]
    assert mine[0]["path"] == "/livez"
    assert mine[0]["status"] == 200


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


@pytest.fixture
def prod_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"environment": "prod", "jwt_jwks_url": "http://127.0.0.1:9/jwks.json"}
    )


async def test_prod_serves_no_graphiql(prod_settings, engine):
    app = create_app(prod_settings, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404 or "graphiql" not in response.text.lower()


def test_prod_settings_demand_an_identity_provider():
    with pytest.raises(ValueError, match="JWT_JWKS_URL"):
        Settings(environment="prod", jwt_jwks_url=None)
