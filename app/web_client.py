"""The reference client at `/app/` and the offline GraphiQL page, served by the app itself.

The client is plain HTML, CSS and ES modules under `app/web/` (no build step); it talks only
to `/graphql`, with the documents in `app/web/operations/` (the trusted operations). Its
third-party scripts (React and GraphiQL for the IDE, a QR encoder) are vendored under
`app/web/vendor/`, so neither needs the internet.

Sign-in: in `dev` the client asks `/app/dev-tokens` for demo tokens minted by the local dev
issuer; that route does not exist in `prod` (404), where a citizen signs in with the eGov
identity provider and the client sends the provider's token as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.auth import DevIssuer, Role
from app.demo import DEMO_PHARMACY_ID, DEMO_SCHOOL_ID
from app.settings import Settings
from familymap.clock import astana_today
from familymap.tables import Person

WEB_DIR = Path(__file__).parent / "web"
OPERATIONS_DIR = WEB_DIR / "operations"

# The story families go in first (app/demo.py), so their heads are the first heads by id.
DEMO_CITIZENS = 5

# The examples GraphiQL opens with, one tab each: what a citizen, a canteen and a pharmacy do.
GRAPHIQL_EXAMPLES = ("Wallet", "Offers", "Spending", "MyPupils", "RedeemMeal", "MyDataAccess")


def web_routes(settings: Settings, dev_issuer: DevIssuer | None) -> list[BaseRoute]:
    """The client's routes: the dev sign-in (dev only) and the static files."""

    async def dev_tokens(request: Request) -> Response:
        if settings.is_prod or dev_issuer is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        async with request.app.state.session_factory() as session:
            heads = (
                await session.execute(
                    select(Person.iin, Person.first_name, Person.last_name)
                    .where(Person.role == "head")
                    .order_by(Person.id)
                    .limit(DEMO_CITIZENS)
                )
            ).all()
        return JSONResponse(
            {
                "citizens": [
                    {
                        "name": f"{first} {last}",
                        "token": dev_issuer.mint(roles=[Role.CITIZEN], subject=iin),
                    }
                    for iin, first, last in heads
                ],
                "school": dev_issuer.mint(roles=[Role.SCHOOL], subject=str(DEMO_SCHOOL_ID)),
                "pharmacy": dev_issuer.mint(roles=[Role.PHARMACY], subject=str(DEMO_PHARMACY_ID)),
            },
            headers={"cache-control": "no-store"},
        )

    return [
        Route("/app/dev-tokens", dev_tokens, methods=["GET"]),
        Mount("/app", StaticFiles(directory=WEB_DIR, html=True), name="app"),
    ]


def example_operations() -> list[tuple[str, str]]:
    """The client's operations GraphiQL preloads, as (name, document text)."""
    return [
        (name, (OPERATIONS_DIR / f"{name}.graphql").read_text(encoding="utf-8"))
        for name in GRAPHIQL_EXAMPLES
    ]


def graphiql_page() -> HTMLResponse:
    """GraphiQL from the app's own copies of its assets, with the examples in tabs."""
    headers = '{"Authorization": "Bearer <paste a dev token>"}'
    variables = {
        "Spending": {"year": astana_today().year},
        "RedeemMeal": {
            "input": {"idempotencyKey": "try-1", "mealType": "LUNCH", "qrToken": "<token>"}
        },
    }
    tabs = [
        {"query": text, "headers": headers, "variables": json.dumps(variables.get(name, {}))}
        for name, text in example_operations()
    ]
    # `</` inside a script would end it early; JSON may escape the slash.
    tabs_json = json.dumps(tabs).replace("</", "<\\/")
    return HTMLResponse(_GRAPHIQL_HTML.replace("__TABS__", tabs_json))


_GRAPHIQL_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Social Wallet GraphiQL</title>
  <link rel="icon" href="/app/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/app/vendor/graphiql/graphiql.min.css">
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading...</div>
  <script src="/app/vendor/react/react.production.min.js"></script>
  <script src="/app/vendor/react/react-dom.production.min.js"></script>
  <script src="/app/vendor/graphiql/graphiql.min.js"></script>
  <script>
    // Dev only. Paste a token from `socialwallet token` (or /app/dev-tokens) into Headers:
    // {"Authorization": "Bearer <token>"}.
    const tabs = __TABS__;
    const fetcher = GraphiQL.createFetcher({ url: "/graphql" });
    const root = ReactDOM.createRoot(document.getElementById("graphiql"));
    root.render(React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      defaultTabs: tabs,
    }));
  </script>
</body>
</html>
"""
