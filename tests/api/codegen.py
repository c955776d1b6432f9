"""Run graphql-codegen (typescript + typescript-operations) on a schema and the client's
operations, as a mobile team's build does: `python -m tests.api.codegen SCHEMA OUT_DIR`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
API_TOOLS = REPO / ".tools" / "api"
DOCUMENTS = ["app/web/operations/*.graphql", "graphql_schema/operations/*.graphql"]


def run_codegen(*, schema: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """graphql-codegen's run over `schema` and the repository's documents, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "schema": str(schema.resolve()),
        "documents": [str(REPO / pattern) for pattern in DOCUMENTS],
        "generates": {
            str(out.resolve() / "operations.ts"): {
                "plugins": ["typescript", "typescript-operations"],
            }
        },
    }
    config_path = out.resolve() / "codegen.json"
    config_path.write_text(json.dumps(config, indent=2))
    return subprocess.run(  # noqa: S603 - a fixed tool of ours
        [str(API_TOOLS / "node_modules" / ".bin" / "graphql-codegen"), "--config", str(config_path)],
        # Plugins are resolved from the working directory: the tools' own.
        cwd=API_TOOLS, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


if __name__ == "__main__":
    done = run_codegen(schema=Path(sys.argv[1]), out=Path(sys.argv[2]))
    sys.stdout.write(done.stdout + done.stderr)
    sys.exit(done.returncode)
