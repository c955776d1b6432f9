"""The layer order is a test: import-linter checks the contracts in pyproject.toml.

bench -> app -> graphql_schema -> vouchers -> wallet -> familymap: each package imports only
those to its right, and the domain packages (familymap, wallet, vouchers) never import
strawberry, starlette or graphql-core. docs/architecture.md draws the same picture.

The contracts are also run on a copy of the code with one import against them added, so
this test fails if the contracts stop catching what they exist to catch.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Top-level directories that are not layers of the service.
NOT_LAYERS = {"tests", "migrations", "docs", "build", "var"}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: the copies below must be read afresh, and the repository keeps no cache.
    return subprocess.run(  # noqa: S603 - our own venv's lint-imports, fixed arguments
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_the_code_keeps_the_layer_contracts():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout, run.stdout


def test_every_package_of_the_service_is_a_layer():
    """A new top-level package cannot slip past the contracts unlayered."""
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_LAYERS and not path.parent.name.startswith(".")
    }
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    assert packages == set(layers)
    assert layers == ["bench", "app", "graphql_schema", "vouchers", "wallet", "familymap"]


def _copy_of_the_code(destination: Path) -> Path:
    def not_python(directory: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name == "__pycache__"
            or (not name.endswith(".py") and not (Path(directory) / name).is_dir())
        }

    for path in ROOT.glob("*/__init__.py"):
        package = path.parent.name
        if package not in NOT_LAYERS:
            shutil.copytree(ROOT / package, destination / package, ignore=not_python)
    shutil.copy(ROOT / "pyproject.toml", destination / "pyproject.toml")
    return destination


@pytest.fixture(scope="module")
def code_copy(tmp_path_factory) -> Path:
    """The service's Python files, copied: they keep the contracts as they are."""
    copy = _copy_of_the_code(tmp_path_factory.mktemp("layers"))
    run = lint_imports(copy)
    assert run.returncode == 0, run.stdout + run.stderr
    return copy


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        # The cycle this project had: the schema reading the app's settings.
        ("graphql_schema/_bad.py", "from app.settings import Settings", "Layers"),
        # The wallet reaching up into the vouchers that stand on it.
        ("wallet/_bad.py", "import vouchers.meals", "Layers"),
        # The app importing the benchmarks.
        ("app/_bad.py", "import bench.redeem", "Layers"),
        # A domain package importing the web framework or the GraphQL library.
        ("familymap/_bad.py", "from starlette.requests import Request", "never import"),
        ("vouchers/_bad.py", "import strawberry", "never import"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(code_copy, module, bad_import, broken):
    bad = code_copy / module
    bad.write_text(f"{bad_import}  # noqa: F401\n")
    try:
        run = lint_imports(code_copy)
    finally:
        bad.unlink()
    assert run.returncode != 0
    assert "1 broken" in run.stdout, run.stdout
    (line,) = [line for line in run.stdout.splitlines() if line.endswith("BROKEN")]
    assert broken in line
    assert module.removesuffix(".py").replace("/", ".") in run.stdout


def test_the_app_settings_give_the_schema_what_it_reads():
    """graphql_schema reads its settings through the SchemaSettings protocol (never
    app.settings): the app's Settings has each of its members, of its type, and the schema
    reads no setting the protocol does not declare."""
    import re
    from typing import get_type_hints

    from app.settings import Settings
    from graphql_schema.settings import SchemaSettings

    declared = {
        name: get_type_hints(member.fget)["return"]
        for name, member in vars(SchemaSettings).items()
        if isinstance(member, property)
    }
    settings = Settings()
    for name, kind in declared.items():
        assert isinstance(getattr(settings, name), kind), name
    read = {
        match
        for path in (ROOT / "graphql_schema").rglob("*.py")
        for match in re.findall(r"settings\.([a-z_]+)", path.read_text())
    }
    assert read and read <= set(declared), read - set(declared)
