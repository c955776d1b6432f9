"""Accessibility (issue 16, item 8): every screen in kk, ru and en passes axe-core with no
serious or critical violation (text contrast, labels, names, roles), input borders stand out
(3:1), and the client is usable by keyboard alone.

axe-core is vendored in tests/web/vendor/axe-core/ (npm `axe-core`, with its licence), so this
runs on a fresh clone with no download.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.web.test_client import open_screen, token_subject
from tests.web.test_readable_screens import CITIZEN_TABS, LANGUAGES, sign_in_as

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_violations(page) -> list[dict]:
    """The serious and critical violations axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's Content-Security-Policy
        # does not govern: a <script> tag with axe inline would be (rightly) blocked by it.
        page.evaluate(AXE.read_text())
    violations = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact,
                nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + ": " + n.failureSummary),
            }));
        }""",
        AXE_TAGS,
    )
    return [v for v in violations if v["impact"] in {"serious", "critical"}]


def weak_input_borders(page) -> list[str]:
    """Inputs whose border has less than 3:1 contrast with the white field behind it."""
    return page.evaluate(
        """() => {
            const lum = (rgb) => {
                const [r, g, b] = rgb.match(/\\d+/g).slice(0, 3).map((c) => {
                    c = Number(c) / 255;
                    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                });
                return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const white = lum("rgb(255, 255, 255)");
            return [...document.querySelectorAll("#view input:not([type=radio]), #view select, #view textarea")]
                .filter((el) => {
                    const border = lum(getComputedStyle(el).borderTopColor);
                    return (white + 0.05) / (border + 0.05) < 3;
                })
                .map((el) => el.id || el.name || el.tagName);
        }"""
    )


def check(page, where: str) -> None:
    assert axe_violations(page) == [], where
    assert weak_input_borders(page) == [], where


SOURCE_PRESCRIPTION = """
mutation Rx($input: PrescriptionInput!) { recordPrescription(input: $input) { __typename } }
"""


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_passes_axe_core(page, live_server, language):
    # the sign-in screen
    page.goto(f"{live_server.url}/app/")
    page.evaluate(f"localStorage.setItem('sw.lang', '{language}')")
    page.evaluate("sessionStorage.removeItem('sw.token')")
    page.reload()
    page.wait_for_selector("[data-citizen]")
    check(page, "sign-in")
    # every citizen screen, folded parts open and a QR code shown
    sign_in_as(page, live_server, "citizen:1", language)
    for tab in CITIZEN_TABS:
        open_screen(page, tab)
        page.locator("#view details").evaluate_all("all => all.forEach(d => (d.open = true))")
        if tab == "meals":
            page.locator("[data-show-qr]").first.click()
            page.wait_for_selector("[data-qr-countdown]")
        check(page, tab)
    # the canteen, after a meal served or refused
    sign_in_as(page, live_server, "school", language)
    page.locator("[data-serve-pupil]").first.click()
    page.wait_for_selector("[data-redeem-status] .message")
    check(page, "canteen")
    # the pharmacy, with a prescription found and dispensed (a success message)
    pensioner = live_server.dev_tokens()["citizens"][2]["token"]
    source = live_server.mint("SOURCE_SYSTEM", "damumed-a11y-test")
    prescription = f"RX-A11Y-{language}"
    httpx.post(
        f"{live_server.url}/graphql",
        json={"query": SOURCE_PRESCRIPTION, "variables": {"input": {
            "externalId": prescription, "patientIin": token_subject(pensioner),
            "drugCode": "C08CA01", "quantity": 1, "unitPriceTiyn": 50_000,
            "validUntil": "2099-12-31", "prescribingOrg": "Polyclinic 1"}}},
        headers={"authorization": f"Bearer {source}"},
        timeout=30,
    ).raise_for_status()  # fmt: skip
    sign_in_as(page, live_server, "pharmacy", language)
    page.fill("#rx-prescription", prescription)
    page.click("[data-find]")
    page.wait_for_selector("[data-prescription] .message")
    page.click("[data-dispense]")
    done = page.wait_for_selector("[data-dispense-status] .message")
    assert "ok" in done.get_attribute("class"), done.inner_text()
    check(page, "pharmacy")
    # and a refusal
    page.fill("#rx-prescription", "RX-DOES-NOT-EXIST")
    page.click("[data-find]")
    page.wait_for_selector("[data-prescription] .message.error")
    check(page, "pharmacy refusal")


def press_tab_until(page, selector: str, limit: int = 60) -> None:
    """Tab forward until the focused element matches `selector`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_client_is_usable_by_keyboard(page, live_server):
    # given the sign-in screen
    page.goto(f"{live_server.url}/app/")
    page.evaluate("localStorage.setItem('sw.lang', 'en')")
    page.evaluate("sessionStorage.removeItem('sw.token')")
    page.reload()
    page.wait_for_selector("[data-citizen]")
    # when a citizen signs in with Tab and Enter
    press_tab_until(page, "[data-citizen='3']")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-screen-view='family']")
    # and goes to her entitlements and unfolds what she is not eligible for
    press_tab_until(page, "[data-screen='entitlements']")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-screen-view='entitlements']")
    press_tab_until(page, "[data-not-eligible] > summary")
    page.keyboard.press("Enter")
    # then each step worked, and the focus was visible
    assert outline != "none"
    assert page.locator("[data-not-eligible]").first.get_attribute("open") is not None
    # and the language switch is labelled
    assert page.locator("#language").get_attribute("aria-label") in {"Тіл", "Язык", "Language"}
