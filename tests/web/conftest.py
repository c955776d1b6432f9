"""Browser-test fixtures: the real server on a free loopback port (a fresh SQLite file,
migrated, seeded with the demo data, offers made), and Debian's headless Chromium.

Playwright's own browser download does not work here, so the tests drive the system's
`chromium` (`apt-get install chromium`; `make test` and `.ci/run` install it). Without it they
are skipped, unless REQUIRE_BROWSER is set (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.live_server import SOCIALWALLET, serving

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    for candidate in (*CHROMIUM_CANDIDATES, shutil.which("chromium") or ""):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = "no chromium binary (apt-get install -y chromium; `make test` installs it)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"REQUIRE_BROWSER is set but there is {reason}")
        pytest.skip(reason)
    return path


@dataclass(frozen=True)
class LiveServer:
    url: str
    env: dict[str, str]

    def mint(self, role: str, subject: str) -> str:
        """A dev token from the server's own dev issuer (`socialwallet token`)."""
        minted = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [str(SOCIALWALLET), "token", "--role", role, "--subject", subject],
            env=self.env, check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return minted.stdout.strip()

    def graphql(self, query: str, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query}, headers=headers, timeout=30
        )
        return response.json()

    def root_fields(self) -> set[str]:
        body = self.graphql(
            '{ q: __type(name: "Query") { fields { name } } '
            'm: __type(name: "Mutation") { fields { name } } }'
        )
        return {f["name"] for t in body["data"].values() for f in t["fields"]}

    def dev_tokens(self) -> dict:
        return httpx.get(f"{self.url}/app/dev-tokens", timeout=30).json()


@pytest.fixture(scope="session")
def live_server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app as `make run` serves it, on its own SQLite file whatever DATABASE_URL says."""
    setup = (("migrate",), ("seed-demo",), ("offers", "issue"))
    with serving(tmp_path_factory.mktemp("live"), setup=setup, LOG_JSON="true") as (url, env):
        yield LiveServer(url, env)


# Module-scoped: Playwright's sync API runs an event loop of its own in this thread, which
# must be gone before the async tests of other modules run theirs.
@pytest.fixture(scope="module")
def browser(chromium: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server: LiveServer):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    # The page's clock joins the suite's pinned timeline (tests/clock.py), as the server has.
    context.clock.install(time=datetime.now(UTC))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The server's Content-Security-Policy (app/middleware.py): whatever it blocks, Chromium
    # reports on the console; the client must run without a single violation.
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
    assert violations == [], f"CSP violations: {violations}"


@pytest.fixture
def screenshot():
    """Save a screenshot to SCREENSHOTS_DIR (`make screenshots`: docs/screenshots)."""
    directory = os.environ.get("SCREENSHOTS_DIR")

    def take(page, name: str) -> None:
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=False)

    return take
