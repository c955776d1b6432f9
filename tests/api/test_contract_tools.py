"""The contract as other tools read it: graphql-http's GraphQL-over-HTTP audits against a real
server, and graphql-codegen (typescript-operations) over the schema and the client's documents.

Both are npm packages, installed by `make api-tools` into the ignored .tools/api (the fixture
runs it when they are missing; `make test` does too).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.schema_export import schema as exported_schema
from tests.api.codegen import API_TOOLS, REPO, run_codegen
from tests.live_server import serving

AUDIT_SCRIPT = Path(__file__).parent / "node" / "graphql_http_audit.cjs"
# MAY-level audits we decline on purpose: a GET may carry no variables of personal-data
# fields (the audits' GET asks `__type` with variables; see docs/api.md).
DECLINED = {"D6D5", "6A70"}


@pytest.fixture(scope="module")
def api_tools() -> Path:
    if not (API_TOOLS / ".installed").exists():
        done = subprocess.run(  # noqa: S603 - our own make target
            [tool("make"), "api-tools"], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            pytest.fail(f"`make api-tools` failed (needs node and npm):\n{done.stderr}")
    return API_TOOLS


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the contract tools need node, npm and make")
    return path


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app as `socialwallet serve` runs it, on its own SQLite file."""
    with serving(tmp_path_factory.mktemp("audit")) as (url, _env):
        yield f"{url}/graphql"


def test_the_server_passes_graphql_https_audits(api_tools, live_url):
    # when graphql-http's audit list is run against the server
    done = subprocess.run(  # noqa: S603 - our own script
        [tool("node"), str(AUDIT_SCRIPT), str(api_tools), live_url],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]

    # then every MUST and SHOULD holds (an error is a MUST broken, a warning a SHOULD)
    assert len(results) > 50
    failed = [r for r in results if r["status"] in {"error", "warn"}]
    assert failed == []
    # and the only MAYs declined are the ones we decline on purpose
    assert {r["id"] for r in results if r["status"] == "notice"} <= DECLINED


def schema_file(tmp_path: Path, sdl: str | None = None) -> Path:
    path = tmp_path / "schema.graphql"
    path.write_text(sdl if sdl is not None else exported_schema.as_str())
    return path


def test_codegen_builds_types_for_every_client_operation(api_tools, tmp_path):
    # given the schema (the committed file equals it: test_schema_contract.py)
    schema = schema_file(tmp_path)
    # when graphql-codegen runs over it and the client's documents
    done = run_codegen(schema=schema, out=tmp_path / "out")
    # then it succeeds with a result type for each operation
    assert done.returncode == 0, done.stdout + done.stderr
    generated = (tmp_path / "out" / "operations.ts").read_text()
    names = [p.stem for pattern in ("app/web/operations", "graphql_schema/operations")
             for p in (REPO / pattern).glob("*.graphql")]  # fmt: skip
    for name in names:
        kind = "Mutation" if f"mutation {name}" in _document(name) else "Query"
        assert f"export type {name}{kind} = " in generated, name


def test_codegen_fails_when_a_client_operation_does_not_fit_the_schema(api_tools, tmp_path):
    # given a schema where childMeals (which the client asks for) is gone
    sdl = exported_schema.as_str()
    broken = re.sub(r"\n  childMeals\(.*?\): ChildMealConnection!", "", sdl, flags=re.S)
    assert broken != sdl
    # when graphql-codegen runs over it
    done = run_codegen(schema=schema_file(tmp_path, broken), out=tmp_path / "out")
    # then the build fails, as a mobile team's would
    assert done.returncode != 0


def _document(name: str) -> str:
    for folder in ("app/web/operations", "graphql_schema/operations"):
        path = REPO / folder / f"{name}.graphql"
        if path.exists():
            return path.read_text()
    raise FileNotFoundError(name)
