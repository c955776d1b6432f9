"""The reference client in a real browser (Debian's headless Chromium), phone-sized, against
the real server with the demo data: a citizen's wallet in three languages, an offer accepted,
the spending chart, the child's QR code served at the canteen, the meal in the parent's
history and chart, and feedback on it. A field these tests drive that is missing from the
schema fails them; nothing here skips for it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from app.web_client import OPERATIONS_DIR

pytestmark = pytest.mark.usefixtures("live_server")

VOUCHER_FIELDS = {"myPupils", "mealQrToken", "redeemMeal", "childMeals", "leaveFeedback"}


def sign_in(page, live_server, who: str) -> None:
    """who: "citizen:<n>" (the n-th demo citizen), "school" or "pharmacy"."""
    page.goto(f"{live_server.url}/app/")
    page.evaluate("sessionStorage.removeItem('sw.token')")  # signed out
    page.reload()
    if who.startswith("citizen:"):
        page.click(f"[data-citizen='{who.split(':')[1]}']")
    else:
        page.click(f"[data-role='{who}']")
    page.wait_for_selector("[data-screen-view]")


def open_screen(page, screen: str) -> None:
    page.click(f"[data-screen='{screen}']")
    page.wait_for_selector(f"[data-screen-view='{screen}']")


def require_fields(live_server, fields: set[str]) -> None:
    """The fields a test drives are in the server's schema: a missing one fails, never skips."""
    missing = fields - live_server.root_fields()
    assert not missing, f"this server's schema has no {', '.join(sorted(missing))}"


def test_a_citizen_sees_family_welfare_and_entitlements_in_three_languages(
    page, live_server, screenshot
):
    # when
    sign_in(page, live_server, "citizen:0")
    # then: the family screen with the five welfare criteria, in Kazakh first
    assert page.locator("[data-criterion]").count() == 5
    assert page.locator("[data-members] li").count() >= 2
    assert page.locator("[data-screen='family']").inner_text() == "Отбасы"
    screenshot(page, "family")
    assert fits_the_phone(page)
    kazakh_level = page.locator("[data-welfare] .badge").inner_text()
    # when the language changes, the client's texts and the API's texts change with it
    page.select_option("#language", "ru")
    page.wait_for_selector("[data-screen-view='family']")
    assert page.locator("[data-screen='family']").inner_text() == "Семья"
    page.select_option("#language", "en")
    page.wait_for_selector("[data-screen-view='family']")
    assert page.locator("[data-screen='family']").inner_text() == "Family"
    assert page.locator("h2").inner_text() == "My family"
    assert page.locator("[data-welfare] .badge").inner_text() != kazakh_level
    # and entitlements come with their reasons
    open_screen(page, "entitlements")
    first = page.locator("[data-entitlement]").first
    first.locator("summary").click()
    assert first.locator(".reasons li").count() >= 1
    screenshot(page, "entitlements")
    # the language is remembered for the next visit
    page.reload()
    page.wait_for_selector("[data-screen-view]")
    assert page.locator("#language").input_value() == "en"


def fits_the_phone(page) -> bool:
    """Nothing sticks out sideways: the page scrolls only up and down."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_requests_carry_the_documents_hash_in_apollos_persisted_query_format(page, live_server):
    # given
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data_json) if r.url.endswith("/graphql") else None,
    )
    # when
    sign_in(page, live_server, "citizen:0")
    open_screen(page, "offers")
    # then: each request names its document by the SHA-256 of the file the client fetched,
    # and sends the text too only where the server did not know the hash
    operations = {p.stem: p.read_text(encoding="utf-8") for p in OPERATIONS_DIR.glob("*.graphql")}
    named = {b["operationName"] for b in bodies}
    assert {"Wallet", "Offers"} <= named
    for body in bodies:
        expected = hashlib.sha256(operations[body["operationName"]].encode()).hexdigest()
        assert body["extensions"]["persistedQuery"] == {"version": 1, "sha256Hash": expected}
        if "query" in body:
            assert body["query"] == operations[body["operationName"]]


def test_a_citizen_accepts_an_offer(page, live_server, screenshot):
    # given
    sign_in(page, live_server, "citizen:0")
    page.select_option("#language", "en")
    open_screen(page, "offers")
    assert fits_the_phone(page)
    offered = page.locator("[data-state='OFFERED']")
    assert offered.count() >= 1
    screenshot(page, "offers")
    programme = offered.first.get_attribute("data-offer")
    # when
    offered.first.locator("[data-accept]").click()
    # then: the answer is recorded, and still there after a reload
    card = page.locator(f"[data-offer='{programme}']")
    page.wait_for_selector(".message.ok")
    assert page.locator(".message.ok").inner_text() == "Your consent is recorded."
    assert card.get_attribute("data-state") != "OFFERED"
    page.reload()
    page.wait_for_selector("[data-screen-view='offers']")
    assert page.locator(f"[data-offer='{programme}']").get_attribute("data-state") in {
        "ACCEPTED", "NEEDS_BANK_ACCOUNT", "ASSIGNED", "PAID",
    }  # fmt: skip


def test_the_spending_chart_draws_twelve_months_and_the_categories(page, live_server, screenshot):
    # when
    sign_in(page, live_server, "citizen:0")
    open_screen(page, "spending")
    # then
    assert page.locator("[data-chart='month'] [data-month]").count() == 12
    assert page.locator("[data-chart='category']").count() == 1
    assert page.locator("[data-total]").count() == 1
    screenshot(page, "spending")


def test_every_screen_is_offered_to_its_callers(page, live_server):
    # The client hides a screen whose fields the server lacks; against our own server that
    # must never happen, so a field gone from the schema fails here rather than hiding a tab.
    # when
    sign_in(page, live_server, "citizen:0")
    tabs = page.locator("#nav a").evaluate_all("links => links.map(a => a.dataset.screen)")
    # then
    assert tabs == [
        "family", "entitlements", "offers", "spending", "meals", "medicines", "access",
    ]  # fmt: skip
    for role, screen in (("school", "canteen"), ("pharmacy", "pharmacy")):
        sign_in(page, live_server, role)
        assert page.locator("#nav a").evaluate_all("a => a.map(l => l.dataset.screen)") == [screen]
        assert page.locator("[data-unavailable]").count() == 0


def last_school_day() -> date:
    """The latest school day up to today: the canteen serves a past day when today is not."""
    from vouchers.calendar import is_school_day  # issue 6

    day = datetime.now(UTC).date()
    for _ in range(120):
        if is_school_day(day):
            return day
        day -= timedelta(days=1)
    pytest.skip("no school day in the last 120 days (summer holidays)")


def category_amount(page, category: str) -> int:
    bar = page.locator(f"[data-chart='category'] [data-category='{category}']")
    return int(bar.get_attribute("data-amount")) if bar.count() else 0


def test_a_childs_qr_code_is_served_at_the_canteen_and_the_parent_sees_and_rates_the_meal(
    page, live_server, screenshot
):
    require_fields(live_server, VOUCHER_FIELDS | {"schoolPupils"})
    served_on = last_school_day()
    # given a parent whose child has a meal voucher at the demo school
    citizens = live_server.dev_tokens()["citizens"]
    for index in range(len(citizens)):
        sign_in(page, live_server, f"citizen:{index}")
        page.select_option("#language", "en")
        open_screen(page, "meals")
        if page.locator("[data-show-qr]").count():
            parent = f"citizen:{index}"
            break
    else:
        pytest.fail("no demo citizen has a child with a meal voucher")
    open_screen(page, "spending")
    before = category_amount(page, "SCHOOL_MEALS")
    open_screen(page, "meals")
    pupil = page.locator("[data-pupil]").filter(has=page.locator("[data-show-qr]")).first
    child_id = pupil.get_attribute("data-pupil")
    meals_before = page.locator(f"[data-meal-history='{child_id}'] [data-meal]").count()
    # when the parent shows the QR code: a real QR image of the token
    pupil.locator("[data-show-qr]").click()
    qr = page.wait_for_selector("img[data-qr-token]")
    token = qr.get_attribute("data-qr-token")
    assert qr.get_attribute("src").startswith("data:image/")
    assert token
    assert fits_the_phone(page)
    screenshot(page, "meal-qr")
    # and the canteen pastes the token and serves the meal
    sign_in(page, live_server, "school")
    page.select_option("#language", "en")
    page.fill("[data-qr-input]", token)
    page.fill("#served-on", served_on.isoformat())
    page.click("[data-redeem]")
    status = page.wait_for_selector("[data-redeem-status] .message")
    assert "ok" in status.get_attribute("class"), status.inner_text()
    assert page.locator("[data-today-meals] [data-served]").count() >= 1
    assert "QR" not in page.locator("[data-redeem-status]").inner_text()  # the child's name
    assert fits_the_phone(page)
    screenshot(page, "canteen")
    # then the meal is in the parent's history, and the parent rates it
    sign_in(page, live_server, parent)
    open_screen(page, "meals")
    history = page.locator(f"[data-meal-history='{child_id}'] [data-meal]")
    assert history.count() == meals_before + 1
    meal = history.filter(has_text=f"{served_on:%B} {served_on.day}, {served_on.year}").first
    meal.locator("[data-star='4']").check()
    meal.locator("[data-feedback-comment]").fill("Hot and tasty")
    meal.locator("button[type='submit']").click()
    page.wait_for_selector(".message.ok")
    assert page.locator(".message.ok").first.inner_text() == "Thank you, your feedback is recorded."
    meal.scroll_into_view_if_needed()
    screenshot(page, "meal-history")
    # and the spending chart shows the meal
    open_screen(page, "spending")
    assert category_amount(page, "SCHOOL_MEALS") > before
    assert int(page.locator("[data-service='MEAL_SERVED'] strong").inner_text()) >= 1
    screenshot(page, "spending-meals")


OPERATOR_LOOKUP = "query OperatorLookup($iin: IIN!) { person(iin: $iin) { iin } }"


def token_subject(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def test_who_accessed_my_data(page, live_server, screenshot):
    require_fields(live_server, {"myDataAccess"})
    # given an operator looked the demo citizen up in the registry
    citizen_iin = token_subject(live_server.dev_tokens()["citizens"][0]["token"])
    operator = live_server.mint("OPERATOR", "operator-web-test")
    looked_up = httpx.post(
        f"{live_server.url}/graphql",
        json={"query": OPERATOR_LOOKUP, "variables": {"iin": citizen_iin}},
        headers={"authorization": f"Bearer {operator}"},
        timeout=30,
    ).json()
    assert looked_up["data"]["person"]["iin"] == citizen_iin, looked_up
    # when
    sign_in(page, live_server, "citizen:0")
    page.select_option("#language", "en")
    open_screen(page, "access")
    # then: the lookup is listed, with who did it
    entry = page.locator("[data-access='OperatorLookup']")
    assert entry.count() >= 1
    assert "operator-web-test" in entry.first.inner_text()
    screenshot(page, "access")


def test_the_pharmacy_screen_refuses_an_unknown_prescription(page, live_server, screenshot):
    require_fields(live_server, {"dispenseMedicine", "pharmacyDispensings"})
    # given
    sign_in(page, live_server, "pharmacy")
    page.select_option("#language", "en")
    # when
    page.fill("#rx-prescription", "RX-DOES-NOT-EXIST")
    page.fill("#rx-drug", "A10BA02")
    page.click("[data-dispense]")
    # then: the API's refusal is shown as a sentence, its stable code kept off the screen
    status = page.wait_for_selector("[data-dispense-status] .message.error")
    assert status.get_attribute("data-code") == "NOT_FOUND"
    assert status.inner_text() == "Not found. Check the number."
    screenshot(page, "pharmacy")


RECORD_PRESCRIPTION = """
mutation Rx($input: PrescriptionInput!) { recordPrescription(input: $input) { __typename } }
"""


def test_the_pharmacy_finds_a_prescription_before_dispensing(page, live_server, screenshot):
    require_fields(live_server, {"prescription", "recordPrescription"})
    # given the health system sent an e-prescription for the demo citizen
    citizen_iin = token_subject(live_server.dev_tokens()["citizens"][0]["token"])
    source = live_server.mint("SOURCE_SYSTEM", "damumed-web-test")
    recorded = httpx.post(
        f"{live_server.url}/graphql",
        json={"query": RECORD_PRESCRIPTION, "variables": {"input": {
            "externalId": "RX-WEB-1", "patientIin": citizen_iin, "drugCode": "A10BA02",
            "quantity": 3, "unitPriceTiyn": 150_000, "validUntil": "2099-12-31",
            "prescribingOrg": "Polyclinic 1"}}},
        headers={"authorization": f"Bearer {source}"},
        timeout=30,
    ).json()  # fmt: skip
    assert recorded["data"]["recordPrescription"]["__typename"] == "PrescriptionRecorded"
    # when the pharmacist looks it up by its id
    sign_in(page, live_server, "pharmacy")
    page.select_option("#language", "en")
    page.fill("#rx-prescription", "RX-WEB-1")
    page.click("[data-find]")
    # then the patient (no IIN), the drug by name and code and what is left are shown, and
    # the drug is filled in
    found = page.wait_for_selector("[data-prescription] .message")
    assert "Metformin (A10BA02)" in found.inner_text() and "3/3" in found.inner_text()
    assert citizen_iin not in found.inner_text()
    assert page.input_value("#rx-drug") == "A10BA02"
    screenshot(page, "pharmacy-find")


def test_graphiql_works_offline_with_the_example_operations(page, live_server, screenshot):
    # given: every request that leaves the server is refused, as with no internet
    outside: list[str] = []

    def only_loopback(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.set_viewport_size({"width": 1100, "height": 800})
    # when
    page.goto(f"{live_server.url}/graphql")
    page.wait_for_selector(".graphiql-tab")
    # then: the IDE is up with a tab per example, and asked nothing of the internet
    tabs = page.locator(".graphiql-tab").all_inner_texts()
    assert any("Wallet" in tab for tab in tabs), tabs
    assert any("RedeemMeal" in tab for tab in tabs), tabs
    assert outside == []
    screenshot(page, "graphiql")


def valid_iban(account: str) -> str:
    """A Kazakh IBAN with correct ISO 13616 check digits for a 16-character account."""
    digits = "".join(str(int(ch, 36)) for ch in f"{account}KZ00")
    return f"KZ{98 - int(digits) % 97:02d}{account}"


def test_a_citizen_with_no_bank_account_gives_an_iban_and_the_offer_is_paid(
    page, live_server, screenshot
):
    # given the large family's mother, who has no bank account on record
    sign_in(page, live_server, "citizen:1")
    page.select_option("#language", "en")
    open_screen(page, "offers")
    benefit = page.locator("[data-state='OFFERED'][data-kind='benefit']").first
    offer_id = benefit.get_attribute("data-offer-id")
    # when she accepts, the payment waits for an account
    benefit.locator("[data-accept]").click()
    page.wait_for_selector("[data-bank-form]")
    card = page.locator(f"[data-offer-id='{offer_id}']")
    assert card.get_attribute("data-state") == "NEEDS_BANK_ACCOUNT"
    # a wrong IBAN is refused with its code
    page.fill("#iban", "KZ000000000000000000")
    page.click("[data-bank-form] button[type='submit']")
    refused = page.wait_for_selector("[data-bank-form] .message.error")
    assert refused.get_attribute("data-code") == "INVALID_IBAN"
    assert refused.inner_text() == "That IBAN is not valid."
    # then with a right one the offer is paid
    page.fill("#iban", valid_iban("6017000000001234"))
    page.click("[data-bank-form] button[type='submit']")
    saved = page.wait_for_selector("[data-bank-form] .message.ok")
    assert saved.inner_text().startswith("Account saved:")
    assert "6017000000001234" not in saved.inner_text()  # masked
    assert card.get_attribute("data-state") != "NEEDS_BANK_ACCOUNT"
    screenshot(page, "bank-account")
